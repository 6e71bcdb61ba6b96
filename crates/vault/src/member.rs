//! Per-member envelopes of the data key: a registry shared by a team keeps
//! its data key wrapped once for each member, under that member's X25519
//! public key; the member's private key stays in their own OS keyring.
//!
//! Wrap format v1: `[0x01][ephemeral public key: 32][nonce: 12][key ‖ tag: 48]`.
//! The key-encryption key is HKDF-SHA256 of the X25519 agreement between a
//! fresh ephemeral key and the member's key (salt: both public keys, info:
//! `tenantry.member-wrap.v1`), used once with AES-256-GCM. Associated data:
//! `"tenantry.member\0" ‖ 0x01 ‖ registry id ‖ 0x00 ‖ data key id ‖ member
//! public key`, so a wrap moved onto another registry, another member or
//! another key id does not open.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use crate::error::KeyStoreError;
use crate::key::{DataKey, KeyId};

const FORMAT_V1: u8 = 1;
const WRAPPED_LEN: usize = 1 + 32 + 12 + 32 + 16;
const STORED_PREFIX: &str = "tenantry-member-key:v1:";
const PUBLIC_PREFIX: &str = "tenantry-member-v1:";

/// Wrapping or unwrapping a member's copy of the data key failed. None of
/// the variants carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemberKeyError {
    #[error("this is not a Tenantry member public key ({reason}); paste the whole line that `tenantry member key` printed on the member's machine (it starts with `{PUBLIC_PREFIX}`)")]
    BadPublicKey { reason: String },

    #[error("the data key wrapped for this member does not open with this member's private key (it was altered, or made for another key or registry); ask an admin to remove and add the member again")]
    WrapDamaged,

    #[error("wrapping the data key failed")]
    Encrypt,
}

impl MemberKeyError {
    pub fn code(&self) -> &'static str {
        match self {
            MemberKeyError::BadPublicKey { .. } => "member_key_invalid",
            MemberKeyError::WrapDamaged => "member_wrap_damaged",
            MemberKeyError::Encrypt => "member_wrap_failed",
        }
    }
}

/// A member's private key (X25519), kept in that member's OS keyring;
/// zeroised on drop, never printed or serialised.
pub struct MemberSecret(StaticSecret);

impl std::fmt::Debug for MemberSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemberSecret(public {})", self.public().fingerprint())
    }
}

impl MemberSecret {
    /// A fresh key pair from the OS's CSPRNG.
    pub fn generate() -> Self {
        Self(StaticSecret::random_from_rng(OsRng))
    }

    pub fn public(&self) -> MemberPublicKey {
        MemberPublicKey(PublicKey::from(&self.0).to_bytes())
    }

    /// The text stored in the keyring: `tenantry-member-key:v1:<key>` (hex).
    pub fn to_stored(&self) -> SecretString {
        let bytes = Zeroizing::new(self.0.to_bytes());
        let mut key_hex = hex::encode(bytes.as_slice());
        let s = format!("{STORED_PREFIX}{key_hex}");
        key_hex.zeroize();
        SecretString::from(s)
    }

    /// Parses what [`Self::to_stored`] wrote.
    pub fn from_stored(stored: &SecretString) -> Result<Self, KeyStoreError> {
        let corrupt = |reason: &str| KeyStoreError::Corrupt {
            reason: reason.to_owned(),
        };
        let key_hex = stored
            .expose_secret()
            .strip_prefix(STORED_PREFIX)
            .ok_or_else(|| corrupt("not a Tenantry v1 member key"))?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(key_hex, bytes.as_mut()).map_err(|_| corrupt("bad key length"))?;
        Ok(Self(StaticSecret::from(*bytes)))
    }
}

/// A member's public key, as `tenantry member key` prints it and
/// `tenantry member add` takes it: `tenantry-member-v1:<64 hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct MemberPublicKey([u8; 32]);

impl MemberPublicKey {
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A short name for the key, to compare by eye (first 8 bytes of its
    /// SHA-256, hex).
    pub fn fingerprint(&self) -> String {
        hex::encode(&Sha256::digest(self.0)[..8])
    }

    /// Reads a key from its text (surrounding whitespace ignored). A key of
    /// small order, whose agreement with any key is the same known value, is
    /// refused.
    pub fn parse(text: &str) -> Result<Self, MemberKeyError> {
        let bad = |reason: &str| MemberKeyError::BadPublicKey {
            reason: reason.to_owned(),
        };
        let hex_part = text
            .trim()
            .strip_prefix(PUBLIC_PREFIX)
            .ok_or_else(|| bad("it does not start with the member-key prefix"))?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes)
            .map_err(|_| bad("it is not 64 hexadecimal digits after the prefix"))?;
        let probe = StaticSecret::random_from_rng(OsRng);
        if !probe
            .diffie_hellman(&PublicKey::from(bytes))
            .was_contributory()
        {
            return Err(bad(
                "it is a point of small order, which no real key pair has",
            ));
        }
        Ok(Self(bytes))
    }
}

impl std::fmt::Display for MemberPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", hex::encode(self.0))
    }
}

impl std::fmt::Debug for MemberPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemberPublicKey({})", self.fingerprint())
    }
}

fn aad(registry_id: &str, key_id: KeyId, member: &MemberPublicKey) -> Vec<u8> {
    let mut aad = Vec::with_capacity(96);
    aad.extend_from_slice(b"tenantry.member\0");
    aad.push(FORMAT_V1);
    aad.extend_from_slice(registry_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(key_id.as_bytes());
    aad.extend_from_slice(member.as_bytes());
    aad
}

fn key_encryption_key(
    shared: &[u8; 32],
    ephemeral: &[u8; 32],
    member: &MemberPublicKey,
) -> Zeroizing<[u8; 32]> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(member.as_bytes());
    let mut kek = Zeroizing::new([0u8; 32]);
    hkdf::Hkdf::<Sha256>::new(Some(&salt), shared)
        .expand(b"tenantry.member-wrap.v1", kek.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    kek
}

/// The data key `key` of registry `registry_id`, wrapped for `member`.
pub fn wrap(
    key: &DataKey,
    registry_id: &str,
    member: &MemberPublicKey,
) -> Result<Vec<u8>, MemberKeyError> {
    let ephemeral = StaticSecret::random_from_rng(OsRng);
    let ephemeral_public = PublicKey::from(&ephemeral).to_bytes();
    let shared = ephemeral.diffie_hellman(&PublicKey::from(member.0));
    if !shared.was_contributory() {
        return Err(MemberKeyError::BadPublicKey {
            reason: "it is a point of small order".into(),
        });
    }
    let kek = key_encryption_key(shared.as_bytes(), &ephemeral_public, member);
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let body = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(kek.as_ref()))
        .encrypt(
            &nonce,
            Payload {
                msg: key.bytes(),
                aad: &aad(registry_id, key.id(), member),
            },
        )
        .map_err(|_| MemberKeyError::Encrypt)?;
    let mut out = Vec::with_capacity(WRAPPED_LEN);
    out.push(FORMAT_V1);
    out.extend_from_slice(&ephemeral_public);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    Ok(out)
}

/// Opens a wrap made by [`wrap`] for `secret`'s public key: the data key
/// `key_id` of registry `registry_id`.
pub fn unwrap(
    secret: &MemberSecret,
    registry_id: &str,
    key_id: KeyId,
    wrapped: &[u8],
) -> Result<DataKey, MemberKeyError> {
    if wrapped.len() != WRAPPED_LEN || wrapped[0] != FORMAT_V1 {
        return Err(MemberKeyError::WrapDamaged);
    }
    let mut ephemeral = [0u8; 32];
    ephemeral.copy_from_slice(&wrapped[1..33]);
    let member = secret.public();
    let shared = secret.0.diffie_hellman(&PublicKey::from(ephemeral));
    if !shared.was_contributory() {
        return Err(MemberKeyError::WrapDamaged);
    }
    let kek = key_encryption_key(shared.as_bytes(), &ephemeral, &member);
    let plain = Zeroizing::new(
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(kek.as_ref()))
            .decrypt(
                Nonce::from_slice(&wrapped[33..45]),
                Payload {
                    msg: &wrapped[45..],
                    aad: &aad(registry_id, key_id, &member),
                },
            )
            .map_err(|_| MemberKeyError::WrapDamaged)?,
    );
    let mut bytes = Box::new([0u8; 32]);
    bytes.copy_from_slice(&plain);
    Ok(DataKey::from_parts(key_id, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Vault;

    const REG: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_member_unwraps_the_key_wrapped_for_them_and_nobody_else_does() {
        let key = DataKey::generate();
        let alice = MemberSecret::generate();
        let bob = MemberSecret::generate();
        let wrapped = wrap(&key, REG, &alice.public()).unwrap();
        assert_eq!(wrapped.len(), WRAPPED_LEN);
        let back = unwrap(&alice, REG, key.id(), &wrapped).unwrap();
        assert_eq!(back.id(), key.id());
        let check = Vault::new(DataKey::from_stored(&key.to_stored()).unwrap())
            .key_check()
            .unwrap();
        Vault::new(back).verify_key_check(&check).unwrap();
        assert_eq!(
            unwrap(&bob, REG, key.id(), &wrapped).err(),
            Some(MemberKeyError::WrapDamaged)
        );
        // Another registry, another key id, a flipped byte: nothing opens.
        assert!(unwrap(
            &alice,
            "fedcba9876543210fedcba9876543210",
            key.id(),
            &wrapped
        )
        .is_err());
        assert!(unwrap(&alice, REG, DataKey::generate().id(), &wrapped).is_err());
        for i in [0, 1, 40, WRAPPED_LEN - 1] {
            let mut bad = wrapped.clone();
            bad[i] ^= 1;
            assert!(unwrap(&alice, REG, key.id(), &bad).is_err(), "byte {i}");
        }
        assert!(unwrap(&alice, REG, key.id(), &wrapped[..50]).is_err());
    }

    #[test]
    fn keys_round_trip_through_their_texts_and_bad_texts_are_refused() {
        let secret = MemberSecret::generate();
        let again = MemberSecret::from_stored(&secret.to_stored()).unwrap();
        assert_eq!(again.public(), secret.public());
        let text = secret.public().to_string();
        assert_eq!(
            MemberPublicKey::parse(&format!("  {text}\n")).unwrap(),
            secret.public()
        );
        for bad in [
            "",
            "tenantry-member-v1:",
            "tenantry-member-v1:zz",
            &text[..text.len() - 2],
            &text.replace("tenantry-member-v1:", "ssh-ed25519 "),
            // Small-order points: the identity and a point of order 8.
            "tenantry-member-v1:0000000000000000000000000000000000000000000000000000000000000000",
            "tenantry-member-v1:e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        ] {
            assert_eq!(
                MemberPublicKey::parse(bad).err().map(|e| e.code()),
                Some("member_key_invalid"),
                "{bad}"
            );
        }
        assert!(MemberSecret::from_stored(&SecretString::from(
            "tenantry-data-key:v1:00".to_owned()
        ))
        .is_err());
    }

    #[test]
    fn debug_output_never_shows_the_private_key() {
        let secret = MemberSecret::generate();
        let stored = secret.to_stored();
        let hex_key = stored.expose_secret().strip_prefix(STORED_PREFIX).unwrap();
        let shown = format!("{secret:?} {:?}", secret.public());
        assert!(!shown.contains(hex_key));
        assert!(shown.contains(&secret.public().fingerprint()));
    }
}
