//! Key escrow: the data key sealed under a passphrase, in a small text file
//! the operator keeps somewhere safe (a password manager, a safe, a second
//! machine). It is how a key outlives its keyring: the kernel keyring a
//! headless server uses forgets its keys at reboot, and a desktop keyring
//! can be lost with its user profile.
//!
//! The file holds no plaintext key: the key is sealed with AES-256-GCM under
//! a key derived from the passphrase by Argon2id (64 MiB, 3 passes), with a
//! fresh random salt and nonce, and every header line (format, registry,
//! key id, KDF parameters) is authenticated as associated data, so a file
//! edited to claim another registry or weaker parameters does not open.
//!
//! ```text
//! tenantry-key-escrow v1
//! registry 0123…
//! key 89ab…
//! kdf argon2id m=65536 t=3 p=1
//! salt <32 hex>
//! nonce <24 hex>
//! sealed <96 hex>
//! ```

use aes_gcm::aead::{rand_core::RngCore, Aead, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroize;

use crate::key::{DataKey, KeyId};

const MAGIC: &str = "tenantry-key-escrow v1";
/// Argon2id parameters of files this version writes (memory in KiB).
const M_COST: u32 = 65536;
const T_COST: u32 = 3;
const P_COST: u32 = 1;
/// The most memory a file may ask for (1 GiB), so a hostile file cannot make
/// `import` allocate without bound.
const MAX_M_COST: u32 = 1 << 20;
const MAX_T_COST: u32 = 16;
/// The shortest passphrase accepted for a new file.
pub const MIN_PASSPHRASE_CHARS: usize = 12;

/// Sealing or opening an escrow file failed. No variant carries key
/// material or the passphrase.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscrowError {
    #[error("the passphrase is too short ({chars} characters); use at least {MIN_PASSPHRASE_CHARS}, ideally several random words")]
    WeakPassphrase { chars: usize },

    #[error("this is not a Tenantry key escrow file ({reason})")]
    Malformed { reason: String },

    #[error("the escrow file does not open with this passphrase (or it was altered); nothing was changed — check the passphrase and the file")]
    WrongPassphrase,

    #[error("the escrow file asks for key-derivation costs above the limit ({reason}); it was not written by Tenantry")]
    Unreasonable { reason: String },

    #[error("sealing the key failed")]
    Seal,
}

impl EscrowError {
    pub fn code(&self) -> &'static str {
        match self {
            EscrowError::WeakPassphrase { .. } => "weak_passphrase",
            EscrowError::Malformed { .. } => "escrow_malformed",
            EscrowError::WrongPassphrase => "escrow_wrong_passphrase",
            EscrowError::Unreasonable { .. } => "escrow_unreasonable",
            EscrowError::Seal => "escrow_seal_failed",
        }
    }
}

/// What an escrow file says about itself before it is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrowHeader {
    /// The registry whose key it holds.
    pub registry_id: String,
    pub key_id: KeyId,
}

struct Kdf {
    m: u32,
    t: u32,
    p: u32,
}

fn derive(passphrase: &SecretString, salt: &[u8], kdf: &Kdf) -> Result<Box<[u8; 32]>, EscrowError> {
    let params = argon2::Params::new(kdf.m, kdf.t, kdf.p, Some(32)).map_err(|e| {
        EscrowError::Unreasonable {
            reason: e.to_string(),
        }
    })?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Box::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.expose_secret().as_bytes(), salt, out.as_mut())
        .map_err(|e| EscrowError::Unreasonable {
            reason: e.to_string(),
        })?;
    Ok(out)
}

fn header_text(registry_id: &str, key_id: KeyId, kdf: &Kdf, salt: &[u8], nonce: &[u8]) -> String {
    format!(
        "{MAGIC}\nregistry {registry_id}\nkey {key_id}\nkdf argon2id m={} t={} p={}\nsalt {}\nnonce {}\n",
        kdf.m,
        kdf.t,
        kdf.p,
        hex::encode(salt),
        hex::encode(nonce)
    )
}

/// Seals `key` of registry `registry_id` under `passphrase`: the text of an
/// escrow file.
pub fn seal(
    key: &DataKey,
    registry_id: &str,
    passphrase: &SecretString,
) -> Result<String, EscrowError> {
    let chars = passphrase.expose_secret().chars().count();
    if chars < MIN_PASSPHRASE_CHARS {
        return Err(EscrowError::WeakPassphrase { chars });
    }
    let kdf = Kdf {
        m: M_COST,
        t: T_COST,
        p: P_COST,
    };
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let mut nonce = [0u8; 12];
    OsRng.fill_bytes(&mut nonce);
    let header = header_text(registry_id, key.id(), &kdf, &salt, &nonce);
    let mut wrapping = derive(passphrase, &salt, &kdf)?;
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(wrapping.as_ref()));
    wrapping.zeroize();
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: key.bytes(),
                aad: header.as_bytes(),
            },
        )
        .map_err(|_| EscrowError::Seal)?;
    Ok(format!("{header}sealed {}\n", hex::encode(sealed)))
}

struct Parsed {
    header: EscrowHeader,
    kdf: Kdf,
    salt: Vec<u8>,
    nonce: [u8; 12],
    sealed: Vec<u8>,
    /// The authenticated header lines, exactly as the file has them.
    aad: String,
}

fn parse(text: &str) -> Result<Parsed, EscrowError> {
    let bad = |reason: &str| EscrowError::Malformed {
        reason: reason.to_owned(),
    };
    let mut lines = text.lines();
    if lines.next() != Some(MAGIC) {
        return Err(bad("it does not start with `tenantry-key-escrow v1`"));
    }
    let mut field = |name: &str| -> Result<&str, EscrowError> {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|l| l.strip_prefix(' '))
            .ok_or_else(|| bad(&format!("the `{name}` line is missing or out of order")))
    };
    let registry_id = field("registry")?.to_owned();
    if registry_id.is_empty() || !registry_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad("the registry id is not hexadecimal"));
    }
    let key_id = KeyId::from_hex(field("key")?).ok_or_else(|| bad("the key id is damaged"))?;
    let kdf_line = field("kdf")?;
    let mut kdf = Kdf { m: 0, t: 0, p: 0 };
    let mut parts = kdf_line.split(' ');
    if parts.next() != Some("argon2id") {
        return Err(bad("the key derivation is not argon2id"));
    }
    for part in parts {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| bad("the kdf line is damaged"))?;
        let v: u32 = v.parse().map_err(|_| bad("the kdf line is damaged"))?;
        match k {
            "m" => kdf.m = v,
            "t" => kdf.t = v,
            "p" => kdf.p = v,
            _ => return Err(bad("the kdf line has an unknown parameter")),
        }
    }
    if kdf.m > MAX_M_COST || kdf.t > MAX_T_COST || kdf.p > 16 {
        return Err(EscrowError::Unreasonable {
            reason: format!("m={} t={} p={}", kdf.m, kdf.t, kdf.p),
        });
    }
    let salt = hex::decode(field("salt")?).map_err(|_| bad("the salt is damaged"))?;
    let mut nonce = [0u8; 12];
    hex::decode_to_slice(field("nonce")?, &mut nonce).map_err(|_| bad("the nonce is damaged"))?;
    let sealed = hex::decode(field("sealed")?).map_err(|_| bad("the sealed key is damaged"))?;
    if sealed.len() != 32 + 16 {
        return Err(bad("the sealed key has the wrong length"));
    }
    let aad = header_text(&registry_id, key_id, &kdf, &salt, &nonce);
    Ok(Parsed {
        header: EscrowHeader {
            registry_id,
            key_id,
        },
        kdf,
        salt,
        nonce,
        sealed,
        aad,
    })
}

/// What the file claims (registry, key id), without the passphrase.
pub fn read_header(text: &str) -> Result<EscrowHeader, EscrowError> {
    Ok(parse(text)?.header)
}

/// Opens an escrow file with `passphrase`.
pub fn open(text: &str, passphrase: &SecretString) -> Result<(EscrowHeader, DataKey), EscrowError> {
    let parsed = parse(text)?;
    let mut wrapping = derive(passphrase, &parsed.salt, &parsed.kdf)?;
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(wrapping.as_ref()));
    wrapping.zeroize();
    let mut plain = cipher
        .decrypt(
            Nonce::from_slice(&parsed.nonce),
            Payload {
                msg: &parsed.sealed,
                aad: parsed.aad.as_bytes(),
            },
        )
        .map_err(|_| EscrowError::WrongPassphrase)?;
    let mut bytes = Box::new([0u8; 32]);
    bytes.copy_from_slice(&plain);
    plain.zeroize();
    Ok((
        parsed.header.clone(),
        DataKey::from_parts(parsed.header.key_id, bytes),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: &str = "0123456789abcdef0123456789abcdef";

    fn pass(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn a_sealed_key_opens_with_its_passphrase_only() {
        let key = DataKey::generate();
        let text = seal(&key, REG, &pass("correct horse battery")).unwrap();
        assert!(
            !text.contains(&hex::encode(key.bytes())),
            "no plaintext key"
        );
        let (header, back) = open(&text, &pass("correct horse battery")).unwrap();
        assert_eq!(header.registry_id, REG);
        assert_eq!(back.id(), key.id());
        assert_eq!(back.bytes(), key.bytes());
        assert_eq!(read_header(&text).unwrap(), header);
        assert_eq!(
            open(&text, &pass("correct horse batterx")).err(),
            Some(EscrowError::WrongPassphrase)
        );
    }

    #[test]
    fn short_passphrases_are_refused() {
        let key = DataKey::generate();
        assert_eq!(
            seal(&key, REG, &pass("hunter2")).err().map(|e| e.code()),
            Some("weak_passphrase")
        );
    }

    #[test]
    fn an_edited_header_does_not_open() {
        let key = DataKey::generate();
        let text = seal(&key, REG, &pass("correct horse battery")).unwrap();
        // Another registry, a weaker KDF, another key id: each is either
        // refused as damaged or fails authentication; none opens.
        let edits = [
            text.replace(REG, "fedcba9876543210fedcba9876543210"),
            text.replace("t=3", "t=1"),
            text.replace(&format!("key {}", key.id()), "key 0000000000000000"),
            text.replace("m=65536", "m=4294967295"),
            text.replace("argon2id", "argon2i"),
            text.lines().take(5).collect::<Vec<_>>().join("\n"),
            String::from("tenantry-data-key:v1:00:00"),
        ];
        for edited in edits {
            assert!(
                open(&edited, &pass("correct horse battery")).is_err(),
                "{edited}"
            );
        }
    }

    #[test]
    fn errors_never_carry_the_passphrase() {
        let canary = "canary-passphrase-Zq9!";
        let key = DataKey::generate();
        let text = seal(&key, REG, &pass(canary)).unwrap();
        assert!(!text.contains(canary));
        let e = open(&text, &pass("canary-other-passphrase")).unwrap_err();
        assert!(!format!("{e} {e:?}").contains("canary"));
    }
}
