//! AES-256-GCM encryption of connection strings, bound to their tenant.
//!
//! Format v1: `[0x01][key id: 8][nonce: 12][ciphertext ‖ tag: 16]`.
//! Associated data: `"tenantry.vault\0" ‖ 0x01 ‖ key id ‖ tenant id (i64 BE)`,
//! so a ciphertext copied onto another tenant, or re-labelled with another key
//! id or format byte, fails to authenticate.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use secrecy::{ExposeSecret, SecretString};

use crate::error::VaultError;
use crate::key::{DataKey, KeyId};

const FORMAT_V1: u8 = 1;
const HEADER: usize = 1 + 8 + 12;
const TAG: usize = 16;

/// Encrypts and decrypts with one data key.
pub struct Vault {
    key: DataKey,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Vault(key {})", self.key.id())
    }
}

impl Vault {
    pub fn new(key: DataKey) -> Self {
        Self { key }
    }

    pub fn key_id(&self) -> KeyId {
        self.key.id()
    }

    /// The text of an escrow file holding this vault's key, sealed under
    /// `passphrase` (see [`crate::escrow`]).
    pub fn escrow(
        &self,
        registry_id: &str,
        passphrase: &SecretString,
    ) -> Result<String, crate::escrow::EscrowError> {
        crate::escrow::seal(&self.key, registry_id, passphrase)
    }

    /// This vault's key wrapped for a member of registry `registry_id`
    /// (see [`crate::member`]).
    pub fn wrap_for(
        &self,
        registry_id: &str,
        member: &crate::MemberPublicKey,
    ) -> Result<Vec<u8>, crate::MemberKeyError> {
        crate::member::wrap(&self.key, registry_id, member)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(self.key.bytes()))
    }

    fn aad(key_id: &[u8; 8], tenant_id: i64) -> Vec<u8> {
        let mut aad = Vec::with_capacity(32);
        aad.extend_from_slice(b"tenantry.vault\0");
        aad.push(FORMAT_V1);
        aad.extend_from_slice(key_id);
        aad.extend_from_slice(&tenant_id.to_be_bytes());
        aad
    }

    /// Encrypts `plaintext` for `tenant_id` under a fresh random 96-bit nonce.
    pub fn encrypt(&self, tenant_id: i64, plaintext: &SecretString) -> Result<Vec<u8>, VaultError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let key_id = *self.key.id().as_bytes();
        let aad = Self::aad(&key_id, tenant_id);
        let body = self
            .cipher()
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.expose_secret().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Encrypt)?;
        let mut out = Vec::with_capacity(HEADER + body.len());
        out.push(FORMAT_V1);
        out.extend_from_slice(&key_id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decrypts a ciphertext made by [`Self::encrypt`] for `tenant_id`.
    pub fn decrypt(&self, tenant_id: i64, ciphertext: &[u8]) -> Result<SecretString, VaultError> {
        let version = *ciphertext.first().ok_or(VaultError::Truncated { len: 0 })?;
        if version != FORMAT_V1 {
            return Err(VaultError::UnsupportedFormat { version });
        }
        if ciphertext.len() < HEADER + TAG {
            return Err(VaultError::Truncated {
                len: ciphertext.len(),
            });
        }
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&ciphertext[1..9]);
        if key_id != *self.key.id().as_bytes() {
            return Err(VaultError::KeyMismatch {
                expected: self.key.id().to_string(),
                found: KeyId::from_bytes(key_id).to_string(),
            });
        }
        let nonce = Nonce::from_slice(&ciphertext[9..HEADER]);
        let aad = Self::aad(&key_id, tenant_id);
        let plain = self
            .cipher()
            .decrypt(
                nonce,
                Payload {
                    msg: &ciphertext[HEADER..],
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Authentication)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|e| {
                let mut bytes = e.into_bytes();
                zeroize::Zeroize::zeroize(&mut bytes);
                VaultError::NotUtf8
            })
    }

    /// A value stored beside the ciphertexts that proves, at start-up, that
    /// the keyring's key is the one they were made with (tenant id 0 is never
    /// a tenant's).
    pub fn key_check(&self) -> Result<Vec<u8>, VaultError> {
        self.encrypt(0, &SecretString::from(KEY_CHECK_TEXT.to_owned()))
    }

    /// True when `check` was made by [`Self::key_check`] with this key.
    pub fn verify_key_check(&self, check: &[u8]) -> Result<(), VaultError> {
        let text = self.decrypt(0, check)?;
        if text.expose_secret() == KEY_CHECK_TEXT {
            Ok(())
        } else {
            Err(VaultError::Authentication)
        }
    }
}

const KEY_CHECK_TEXT: &str = "tenantry key check v1";

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "postgres://app:Canary-7731@db1/acme";

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    fn vault() -> Vault {
        Vault::new(DataKey::generate())
    }

    #[test]
    fn round_trip_with_fresh_nonces() {
        let v = vault();
        let a = v.encrypt(7, &secret(CANARY)).unwrap();
        let b = v.encrypt(7, &secret(CANARY)).unwrap();
        assert_ne!(a, b, "each encryption must use a fresh nonce");
        assert_ne!(a[9..21], b[9..21]);
        assert_eq!(v.decrypt(7, &a).unwrap().expose_secret(), CANARY);
        assert!(!String::from_utf8_lossy(&a).contains("Canary"));
    }

    #[test]
    fn every_tampering_is_a_typed_error() {
        let v = vault();
        let good = v.encrypt(7, &secret(CANARY)).unwrap();
        // Flip one bit in each region: format byte, key id, nonce, body, tag.
        let regions = [
            (0usize, "format"),
            (3, "key id"),
            (12, "nonce"),
            (HEADER + 2, "body"),
            (good.len() - 1, "tag"),
        ];
        for (pos, what) in regions {
            let mut bad = good.clone();
            bad[pos] ^= 0x01;
            let err = v.decrypt(7, &bad).unwrap_err();
            let expected = match what {
                "format" => VaultError::UnsupportedFormat { version: 0 },
                "key id" => VaultError::KeyMismatch {
                    expected: v.key_id().to_string(),
                    found: KeyId::from_bytes(bad[1..9].try_into().unwrap()).to_string(),
                },
                _ => VaultError::Authentication,
            };
            assert_eq!(err, expected, "bit flip in {what}");
        }
        for len in [0, 1, 9, HEADER, HEADER + TAG - 1] {
            let err = v.decrypt(7, &good[..len]).unwrap_err();
            assert!(
                matches!(err, VaultError::Truncated { .. }),
                "truncated to {len}: {err:?}"
            );
        }
        // Truncated body that is still long enough for a tag.
        assert_eq!(
            v.decrypt(7, &good[..good.len() - 3]).unwrap_err(),
            VaultError::Authentication
        );
    }

    #[test]
    fn a_ciphertext_moved_to_another_tenant_does_not_decrypt() {
        let v = vault();
        let for_7 = v.encrypt(7, &secret(CANARY)).unwrap();
        assert_eq!(
            v.decrypt(8, &for_7).unwrap_err(),
            VaultError::Authentication
        );
    }

    #[test]
    fn a_wrong_key_is_told_apart() {
        let v = vault();
        let ct = v.encrypt(7, &secret(CANARY)).unwrap();
        let other = vault();
        assert!(matches!(
            other.decrypt(7, &ct).unwrap_err(),
            VaultError::KeyMismatch { .. }
        ));
        // Same key id, different key bytes (a forged or corrupted key).
        let mut stored = v.key.to_stored().expose_secret().to_owned();
        let last = stored.pop().unwrap();
        stored.push(if last == '0' { '1' } else { '0' });
        let forged = Vault::new(DataKey::from_stored(&SecretString::from(stored)).unwrap());
        assert_eq!(
            forged.decrypt(7, &ct).unwrap_err(),
            VaultError::Authentication
        );
        assert!(forged.verify_key_check(&v.key_check().unwrap()).is_err());
        assert!(v.verify_key_check(&v.key_check().unwrap()).is_ok());
    }

    #[test]
    fn errors_never_contain_the_plaintext() {
        let v = vault();
        let ct = v.encrypt(7, &secret(CANARY)).unwrap();
        let err = v.decrypt(9, &ct).unwrap_err();
        assert!(!format!("{err} {err:?}").contains("Canary"));
    }
}
