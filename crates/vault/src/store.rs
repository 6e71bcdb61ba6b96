//! Where the data key lives: the OS keyring in every real build, an
//! in-memory store in unit tests. Opening the vault follows one rule: only a
//! keyring that answers "no entry", for a registry that holds no ciphertext,
//! may get a new key. Every other answer is an error and writes nothing.

#[cfg(any(test, feature = "test-support"))]
use std::collections::HashMap;
#[cfg(any(test, feature = "test-support"))]
use std::sync::Mutex;

use secrecy::{ExposeSecret, SecretString};

use crate::cipher::Vault;
use crate::error::{KeyStoreError, VaultError};
use crate::key::DataKey;

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
compile_error!("Tenantry needs an OS keyring: Linux (Secret Service), macOS (Keychain) or Windows (Credential Manager)");

/// The two keyring entries: the key in use, and the next key while a
/// rotation is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySlot {
    Current,
    Next,
}

impl KeySlot {
    fn user(self) -> &'static str {
        match self {
            KeySlot::Current => "data-key",
            KeySlot::Next => "data-key-next",
        }
    }
}

pub trait KeyStore: Send + Sync {
    /// `Ok(None)` only when the store positively answered "no such entry".
    fn load(&self, slot: KeySlot) -> Result<Option<DataKey>, KeyStoreError>;
    fn save(&self, slot: KeySlot, key: &DataKey) -> Result<(), KeyStoreError>;
    fn delete(&self, slot: KeySlot) -> Result<(), KeyStoreError>;
    /// For settings screens and messages: which store, which service name.
    fn describe(&self) -> String;
}

/// The platform keyring: Secret Service on Linux, Keychain on macOS,
/// Credential Manager on Windows (the features are set in Cargo.toml; the
/// keyring crate's mock store is never compiled in).
pub struct OsKeyring {
    service: String,
}

/// The keyring service name Tenantry's data key is stored under.
pub const DEFAULT_SERVICE: &str = "dev.tenantry.console";

impl OsKeyring {
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
        }
    }

    fn entry(&self, slot: KeySlot) -> Result<keyring::Entry, KeyStoreError> {
        keyring::Entry::new(&self.service, slot.user()).map_err(map_keyring_error)
    }
}

fn map_keyring_error(e: keyring::Error) -> KeyStoreError {
    let reason = e.to_string();
    match e {
        keyring::Error::NoStorageAccess(_) => KeyStoreError::AccessDenied { reason },
        keyring::Error::PlatformFailure(_) => KeyStoreError::Unavailable { reason },
        keyring::Error::BadEncoding(_) | keyring::Error::Ambiguous(_) => {
            KeyStoreError::Corrupt { reason }
        }
        _ => KeyStoreError::Other { reason },
    }
}

impl KeyStore for OsKeyring {
    fn load(&self, slot: KeySlot) -> Result<Option<DataKey>, KeyStoreError> {
        match self.entry(slot)?.get_password() {
            Ok(p) => DataKey::from_stored(&SecretString::from(p)).map(Some),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_keyring_error(e)),
        }
    }

    fn save(&self, slot: KeySlot, key: &DataKey) -> Result<(), KeyStoreError> {
        self.entry(slot)?
            .set_password(key.to_stored().expose_secret())
            .map_err(map_keyring_error)
    }

    fn delete(&self, slot: KeySlot) -> Result<(), KeyStoreError> {
        match self.entry(slot)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_keyring_error(e)),
        }
    }

    fn describe(&self) -> String {
        let store = if cfg!(target_os = "macos") {
            "macOS Keychain"
        } else if cfg!(target_os = "windows") {
            "Windows Credential Manager"
        } else {
            "Secret Service"
        };
        format!("{store} (service {})", self.service)
    }
}

/// An in-memory key store for tests. It forgets everything when dropped;
/// it exists only under `cfg(test)` or the `test-support` feature, which only
/// dev-dependencies turn on, so no real build can fall back to it.
#[cfg(any(test, feature = "test-support"))]
#[derive(Default)]
pub struct MemoryKeyStore {
    entries: Mutex<HashMap<KeySlot, SecretString>>,
    failure: Mutex<Option<KeyStoreError>>,
}

#[cfg(any(test, feature = "test-support"))]
impl MemoryKeyStore {
    /// Makes every following call fail with `e` (or succeed again with `None`).
    pub fn fail_with(&self, e: Option<KeyStoreError>) {
        if let Ok(mut f) = self.failure.lock() {
            *f = e;
        }
    }

    fn check(&self) -> Result<(), KeyStoreError> {
        match self.failure.lock() {
            Ok(f) => f.clone().map_or(Ok(()), Err),
            Err(_) => Err(KeyStoreError::Other {
                reason: "poisoned".into(),
            }),
        }
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut HashMap<KeySlot, SecretString>) -> T,
    ) -> Result<T, KeyStoreError> {
        self.check()?;
        let mut map = self.entries.lock().map_err(|_| KeyStoreError::Other {
            reason: "poisoned".into(),
        })?;
        Ok(f(&mut map))
    }
}

#[cfg(any(test, feature = "test-support"))]
impl KeyStore for MemoryKeyStore {
    fn load(&self, slot: KeySlot) -> Result<Option<DataKey>, KeyStoreError> {
        match self.with(|m| {
            m.get(&slot)
                .map(|s| SecretString::from(s.expose_secret().to_owned()))
        })? {
            Some(s) => DataKey::from_stored(&s).map(Some),
            None => Ok(None),
        }
    }

    fn save(&self, slot: KeySlot, key: &DataKey) -> Result<(), KeyStoreError> {
        self.with(|m| {
            m.insert(slot, key.to_stored());
        })
    }

    fn delete(&self, slot: KeySlot) -> Result<(), KeyStoreError> {
        self.with(|m| {
            m.remove(&slot);
        })
    }

    fn describe(&self) -> String {
        "in-memory test store".into()
    }
}

/// Opening the vault failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),

    #[error("the registry holds encrypted connection strings but {store} has no Tenantry data key; restore the key (or the keyring) it was made with — Tenantry will not create a new key over existing data")]
    KeyMissing { store: String },

    #[error("the data key in {store} is not the one the registry was encrypted with ({reason}); restore the matching key — nothing was changed")]
    WrongKey { store: String, reason: VaultError },

    #[error("the new data key could not be read back from {store}; the keyring does not persist it, so no key was adopted")]
    NotPersisted { store: String },
}

impl OpenError {
    pub fn code(&self) -> &'static str {
        match self {
            OpenError::KeyStore(e) => e.code(),
            OpenError::KeyMissing { .. } => "key_missing",
            OpenError::WrongKey { .. } => "wrong_key",
            OpenError::NotPersisted { .. } => "key_not_persisted",
        }
    }
}

/// How the vault was opened.
pub struct OpenedVault {
    pub vault: Vault,
    /// A new key was made (first run): store `vault.key_check()` in the registry.
    pub created: bool,
    /// An interrupted rotation was finished: the next key became current.
    pub promoted_next: bool,
}

/// Opens the vault with the key in `store`.
///
/// `key_check` is the registry's proof of key (see [`Vault::key_check`]),
/// `None` when the registry holds no encrypted data yet.
pub fn open_vault(
    store: &dyn KeyStore,
    key_check: Option<&[u8]>,
) -> Result<OpenedVault, OpenError> {
    let current = store.load(KeySlot::Current)?;
    let Some(check) = key_check else {
        if let Some(key) = current {
            return Ok(OpenedVault {
                vault: Vault::new(key),
                created: false,
                promoted_next: false,
            });
        }
        // "No entry" and nothing encrypted: the one case that makes a key.
        let key = DataKey::generate();
        let id = key.id();
        store.save(KeySlot::Current, &key)?;
        match store.load(KeySlot::Current)? {
            Some(back) if back.id() == id => {}
            _ => {
                return Err(OpenError::NotPersisted {
                    store: store.describe(),
                })
            }
        }
        return Ok(OpenedVault {
            vault: Vault::new(key),
            created: true,
            promoted_next: false,
        });
    };
    let mismatch = match current {
        Some(key) => {
            let vault = Vault::new(key);
            match vault.verify_key_check(check) {
                Ok(()) => {
                    return Ok(OpenedVault {
                        vault,
                        created: false,
                        promoted_next: false,
                    })
                }
                Err(e) => Some(e),
            }
        }
        None => None,
    };
    // A rotation may have committed the registry before the keyring's
    // current entry was replaced: the next key then opens it.
    if let Some(next) = store.load(KeySlot::Next)? {
        let vault = Vault::new(next);
        if vault.verify_key_check(check).is_ok() {
            let promoted = DataKey::from_stored(&store_text(store, KeySlot::Next)?)?;
            store.save(KeySlot::Current, &promoted)?;
            store.delete(KeySlot::Next)?;
            return Ok(OpenedVault {
                vault,
                created: false,
                promoted_next: true,
            });
        }
    }
    match mismatch {
        Some(reason) => Err(OpenError::WrongKey {
            store: store.describe(),
            reason,
        }),
        None => Err(OpenError::KeyMissing {
            store: store.describe(),
        }),
    }
}

fn store_text(store: &dyn KeyStore, slot: KeySlot) -> Result<SecretString, KeyStoreError> {
    store
        .load(slot)?
        .map(|k| k.to_stored())
        .ok_or_else(|| KeyStoreError::Corrupt {
            reason: "the next key vanished during promotion".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_run_creates_and_persists_a_key_then_reopens_it() {
        let store = MemoryKeyStore::default();
        let first = open_vault(&store, None).unwrap();
        assert!(first.created);
        let check = first.vault.key_check().unwrap();
        let again = open_vault(&store, Some(&check)).unwrap();
        assert!(!again.created);
        assert_eq!(again.vault.key_id(), first.vault.key_id());
    }

    #[test]
    fn keyring_failures_never_create_or_overwrite_a_key() {
        let failures = [
            KeyStoreError::Unavailable {
                reason: "no D-Bus".into(),
            },
            KeyStoreError::AccessDenied {
                reason: "locked".into(),
            },
            KeyStoreError::Other {
                reason: "boom".into(),
            },
        ];
        for f in failures {
            let store = MemoryKeyStore::default();
            let original = open_vault(&store, None).unwrap().vault.key_id();
            store.fail_with(Some(f.clone()));
            let err = open_vault(&store, None).err().unwrap();
            assert_eq!(err.code(), f.code());
            store.fail_with(None);
            assert_eq!(
                store.load(KeySlot::Current).unwrap().unwrap().id(),
                original
            );
        }
    }

    #[test]
    fn a_missing_key_with_existing_ciphertexts_is_refused() {
        let store = MemoryKeyStore::default();
        let check = open_vault(&store, None).unwrap().vault.key_check().unwrap();
        store.delete(KeySlot::Current).unwrap();
        let err = open_vault(&store, Some(&check)).err().unwrap();
        assert_eq!(err.code(), "key_missing");
        assert!(
            store.load(KeySlot::Current).unwrap().is_none(),
            "no key may be created"
        );
    }

    #[test]
    fn a_wrong_key_is_refused_and_left_in_place() {
        let store = MemoryKeyStore::default();
        let check = open_vault(&store, None).unwrap().vault.key_check().unwrap();
        let impostor = DataKey::generate();
        store.save(KeySlot::Current, &impostor).unwrap();
        let err = open_vault(&store, Some(&check)).err().unwrap();
        assert_eq!(err.code(), "wrong_key");
        assert_eq!(
            store.load(KeySlot::Current).unwrap().unwrap().id(),
            impostor.id()
        );
    }

    #[test]
    fn an_interrupted_rotation_is_finished_on_open() {
        let store = MemoryKeyStore::default();
        open_vault(&store, None).unwrap();
        // The registry was re-encrypted with the next key, then the process died.
        let next = DataKey::generate();
        let next_id = next.id();
        store.save(KeySlot::Next, &next).unwrap();
        let check = Vault::new(DataKey::from_stored(&next.to_stored()).unwrap())
            .key_check()
            .unwrap();
        let opened = open_vault(&store, Some(&check)).unwrap();
        assert!(opened.promoted_next);
        assert_eq!(opened.vault.key_id(), next_id);
        assert_eq!(store.load(KeySlot::Current).unwrap().unwrap().id(), next_id);
        assert!(store.load(KeySlot::Next).unwrap().is_none());
    }
}
