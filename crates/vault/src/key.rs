//! The 256-bit data key and its identifier.

use std::fmt;

use aes_gcm::aead::{rand_core::RngCore, OsRng};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use zeroize::Zeroize;

use crate::error::KeyStoreError;

/// Identifies a data key without revealing it: 8 random bytes chosen when
/// the key is made, stored with it and with every ciphertext.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub(crate) [u8; 8]);

impl KeyId {
    pub fn from_bytes(b: [u8; 8]) -> Self {
        Self(b)
    }
    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
    /// Parses the 16 hex digits [`Display`](fmt::Display) writes.
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut id = [0u8; 8];
        hex::decode_to_slice(s, &mut id).ok()?;
        Some(Self(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A 256-bit AES key, zeroised on drop, never printed or serialised.
pub struct DataKey {
    id: KeyId,
    bytes: SecretBox<[u8; 32]>,
}

const STORED_PREFIX: &str = "tenantry-data-key:v1:";

/// Whether the last data key made in this process is locked in memory.
static KEY_MEMORY_LOCKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether data keys are kept out of swap (`mlock` of their page, where the
/// OS and `RLIMIT_MEMLOCK` allow), for `key status` and tests.
pub fn key_memory_locked() -> bool {
    KEY_MEMORY_LOCKED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Boxes key bytes and locks their page so it is never written to swap. The
/// lock is kept until the process ends (a page may hold more than one key;
/// unlocking one must not unlock another); the bytes are zeroised on drop.
fn pinned(bytes: Box<[u8; 32]>) -> SecretBox<[u8; 32]> {
    #[cfg(unix)]
    {
        let locked = region::lock(bytes.as_ptr(), bytes.len());
        KEY_MEMORY_LOCKED.store(locked.is_ok(), std::sync::atomic::Ordering::Relaxed);
        if let Ok(guard) = locked {
            std::mem::forget(guard);
        }
    }
    SecretBox::new(bytes)
}

impl DataKey {
    /// A fresh random key from the OS's CSPRNG.
    pub fn generate() -> Self {
        let mut id = [0u8; 8];
        OsRng.fill_bytes(&mut id);
        let mut bytes = Box::new([0u8; 32]);
        OsRng.fill_bytes(bytes.as_mut());
        Self {
            id: KeyId(id),
            bytes: pinned(bytes),
        }
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    /// A key from its id and bytes (read from an escrow file).
    pub(crate) fn from_parts(id: KeyId, bytes: Box<[u8; 32]>) -> Self {
        Self {
            id,
            bytes: pinned(bytes),
        }
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        self.bytes.expose_secret()
    }

    /// The text stored in the keyring: `tenantry-data-key:v1:<id>:<key>` (hex).
    pub fn to_stored(&self) -> SecretString {
        let mut key_hex = hex::encode(self.bytes());
        let s = format!("{STORED_PREFIX}{}:{key_hex}", self.id);
        key_hex.zeroize();
        SecretString::from(s)
    }

    /// Parses what [`Self::to_stored`] wrote.
    pub fn from_stored(stored: &SecretString) -> Result<Self, KeyStoreError> {
        let corrupt = |reason: &str| KeyStoreError::Corrupt {
            reason: reason.to_owned(),
        };
        let rest = stored
            .expose_secret()
            .strip_prefix(STORED_PREFIX)
            .ok_or_else(|| corrupt("not a Tenantry v1 data key"))?;
        let (id_hex, key_hex) = rest
            .split_once(':')
            .ok_or_else(|| corrupt("missing key id"))?;
        let mut id = [0u8; 8];
        hex::decode_to_slice(id_hex, &mut id).map_err(|_| corrupt("bad key id"))?;
        let mut bytes = Box::new([0u8; 32]);
        hex::decode_to_slice(key_hex, bytes.as_mut()).map_err(|_| corrupt("bad key length"))?;
        Ok(Self {
            id: KeyId(id),
            bytes: pinned(bytes),
        })
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataKey(id {}, •••)", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_their_stored_form_and_never_print() {
        let k = DataKey::generate();
        let back = DataKey::from_stored(&k.to_stored()).unwrap();
        assert_eq!(back.id(), k.id());
        assert_eq!(back.bytes(), k.bytes());
        let shown = format!("{k:?}");
        assert!(!shown.contains(&hex::encode(k.bytes())));
        assert_ne!(DataKey::generate().bytes(), k.bytes());
    }

    #[test]
    fn damaged_stored_keys_are_typed_errors() {
        for s in [
            "",
            "tenantry-data-key:v1:",
            "tenantry-data-key:v1:00:11",
            "other",
        ] {
            let err = DataKey::from_stored(&SecretString::from(s.to_owned())).unwrap_err();
            assert_eq!(err.code(), "keyring_entry_corrupt");
        }
    }
}
