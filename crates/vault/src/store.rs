//! Where the data key lives: the OS keyring in every real build, an
//! in-memory store in unit tests.
//!
//! Each registry has its own keyring entries, named by the registry's id (a
//! random id stored in the registry) and the key's id:
//! `registry-<registry id>/key-<key id>`. A rotation writes a new entry and
//! never overwrites one, so rotating one registry (or a copy of its file)
//! cannot take the key of any other. Registries made before entries were
//! per registry kept their key in the shared `data-key` entry (and
//! `data-key-next` during a rotation); opening such a registry copies the key
//! that verifies into the registry's own entry and leaves the shared one for
//! the others.
//!
//! Opening the vault follows one rule: only a registry that holds no
//! ciphertext gets a new key. Every keyring failure is an error and writes
//! nothing.

#[cfg(any(test, feature = "test-support"))]
use std::collections::HashMap;
#[cfg(any(test, feature = "test-support"))]
use std::sync::Mutex;

use secrecy::{ExposeSecret, SecretString};

use crate::cipher::Vault;
use crate::error::{KeyStoreError, VaultError};
use crate::key::{DataKey, KeyId};

#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
compile_error!("Tenantry needs an OS keyring: Linux (Secret Service), macOS (Keychain) or Windows (Credential Manager)");

/// The name of one keyring entry (the keyring's "user" or "account").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyEntry(String);

impl KeyEntry {
    /// The entry holding key `key` of the registry `registry`.
    pub fn for_key(registry: &str, key: KeyId) -> Self {
        Self(format!("registry-{registry}/key-{key}"))
    }

    /// The entry holding this person's member key for the registry
    /// `registry` (see [`crate::member`]).
    pub fn member(registry: &str) -> Self {
        Self(format!("registry-{registry}/member"))
    }

    /// Whether this is a member key's entry (of any registry).
    pub fn is_member(&self) -> bool {
        self.0.starts_with("registry-") && self.0.ends_with("/member")
    }

    /// The entry holding the console's chosen registry, when it is a
    /// team's PostgreSQL registry: its URL, which may hold a password.
    pub fn console_registry() -> Self {
        Self("console/registry".to_owned())
    }

    /// The entry all registries shared before entries were per registry.
    pub const LEGACY_CURRENT: &'static str = "data-key";
    /// Its rotation slot.
    pub const LEGACY_NEXT: &'static str = "data-key-next";

    pub fn legacy(name: &'static str) -> Self {
        Self(name.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A store of secret texts, one per [`KeyEntry`]: a data key
/// ([`DataKey::to_stored`]) or a member's private key
/// ([`crate::MemberSecret::to_stored`]).
pub trait KeyStore: Send + Sync {
    /// `Ok(None)` only when the store positively answered "no such entry".
    fn load_text(&self, entry: &KeyEntry) -> Result<Option<SecretString>, KeyStoreError>;
    fn save_text(&self, entry: &KeyEntry, text: &SecretString) -> Result<(), KeyStoreError>;
    fn delete(&self, entry: &KeyEntry) -> Result<(), KeyStoreError>;
    /// The data key in `entry`.
    fn load(&self, entry: &KeyEntry) -> Result<Option<DataKey>, KeyStoreError> {
        self.load_text(entry)?
            .map(|t| DataKey::from_stored(&t))
            .transpose()
    }
    fn save(&self, entry: &KeyEntry, key: &DataKey) -> Result<(), KeyStoreError> {
        self.save_text(entry, &key.to_stored())
    }
    /// For settings screens and messages: which store, which service name.
    fn describe(&self) -> String;
    /// Which OS store this is, to be recorded with the registry's key;
    /// `None` for stores that are not the OS's (tests, the demo).
    fn kind(&self) -> Option<KeyStoreKind> {
        None
    }
}

/// Which of the OS's key stores holds a registry's data key. Chosen when
/// the registry's key is made and recorded in the registry, so every later
/// run (the console, the CLI, a nightly service) looks in the same place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyStoreKind {
    /// The desktop Secret Service (GNOME Keyring, KWallet) over D-Bus.
    SecretService,
    /// The Linux kernel keyring (keyutils): the user's persistent keyring,
    /// which needs no session bus. It lives in kernel memory: a reboot
    /// empties it, and so does its idle expiry (three days by default,
    /// renewed at every use).
    Keyutils,
    /// The macOS Keychain.
    Keychain,
    /// The Windows Credential Manager.
    CredentialManager,
}

impl KeyStoreKind {
    pub const ALL: [KeyStoreKind; 4] = [
        KeyStoreKind::SecretService,
        KeyStoreKind::Keyutils,
        KeyStoreKind::Keychain,
        KeyStoreKind::CredentialManager,
    ];

    /// The name the CLI takes and the registry records.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStoreKind::SecretService => "secret-service",
            KeyStoreKind::Keyutils => "keyutils",
            KeyStoreKind::Keychain => "keychain",
            KeyStoreKind::CredentialManager => "credential-manager",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The store a registry uses unless another is chosen.
    pub fn platform_default() -> Self {
        if cfg!(target_os = "macos") {
            KeyStoreKind::Keychain
        } else if cfg!(target_os = "windows") {
            KeyStoreKind::CredentialManager
        } else {
            KeyStoreKind::SecretService
        }
    }

    /// The stores this build can use.
    pub fn available() -> Vec<Self> {
        if cfg!(target_os = "linux") {
            vec![KeyStoreKind::SecretService, KeyStoreKind::Keyutils]
        } else {
            vec![Self::platform_default()]
        }
    }

    /// For messages: what the store is.
    pub fn title(self) -> &'static str {
        match self {
            KeyStoreKind::SecretService => "Secret Service",
            KeyStoreKind::Keyutils => "Linux kernel keyring",
            KeyStoreKind::Keychain => "macOS Keychain",
            KeyStoreKind::CredentialManager => "Windows Credential Manager",
        }
    }

    /// How long the store keeps a key, where it does not keep it for good.
    pub fn retention(self) -> Option<&'static str> {
        match self {
            KeyStoreKind::Keyutils => Some(
                "the kernel keyring forgets its keys at reboot and after its idle expiry (kernel.keys.persistent_keyring_expiry, renewed at every use): keep an escrow file (`tenantry key export`) and load it again with `tenantry key import`",
            ),
            _ => None,
        }
    }
}

impl std::fmt::Display for KeyStoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The OS keyring: the store of [`KeyStoreKind`] chosen for the registry
/// (the keyring crate's mock store is never compiled in, and every entry
/// names its store explicitly rather than relying on the crate's default).
pub struct OsKeyring {
    service: String,
    kind: KeyStoreKind,
}

/// The keyring service name Tenantry's data keys are stored under.
pub const DEFAULT_SERVICE: &str = "dev.tenantry.console";

impl OsKeyring {
    /// The platform's default store.
    pub fn new(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            kind: KeyStoreKind::platform_default(),
        }
    }

    /// The store `kind`, if this build and OS have it.
    pub fn with_kind(
        service: impl Into<String>,
        kind: KeyStoreKind,
    ) -> Result<Self, KeyStoreError> {
        if !KeyStoreKind::available().contains(&kind) {
            return Err(KeyStoreError::Unavailable {
                reason: format!(
                    "the {} is not available on this system; choose one of: {}",
                    kind.title(),
                    KeyStoreKind::available()
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        Ok(Self {
            service: service.into(),
            kind,
        })
    }

    fn entry(&self, entry: &KeyEntry) -> Result<keyring::Entry, KeyStoreError> {
        #[cfg(target_os = "linux")]
        {
            let credential = keyring::secret_service::SsCredential::new_with_target(
                None,
                &self.service,
                entry.as_str(),
            )
            .map_err(map_keyring_error)?;
            Ok(keyring::Entry::new_with_credential(Box::new(credential)))
        }
        #[cfg(not(target_os = "linux"))]
        {
            keyring::Entry::new(&self.service, entry.as_str()).map_err(map_keyring_error)
        }
    }

    #[cfg(target_os = "linux")]
    fn kernel(&self) -> Option<kernel::KernelKeyring> {
        (self.kind == KeyStoreKind::Keyutils).then(|| kernel::KernelKeyring::new(&self.service))
    }

    #[cfg(not(target_os = "linux"))]
    fn kernel(&self) -> Option<NoKernelKeyring> {
        None
    }
}

/// There is no kernel keyring off Linux (`with_kind` refuses it there).
#[cfg(not(target_os = "linux"))]
struct NoKernelKeyring;

#[cfg(not(target_os = "linux"))]
impl NoKernelKeyring {
    fn load(&self, _: &KeyEntry) -> Result<Option<SecretString>, KeyStoreError> {
        Ok(None)
    }
    fn save(&self, _: &KeyEntry, _: &SecretString) -> Result<(), KeyStoreError> {
        Ok(())
    }
    fn delete(&self, _: &KeyEntry) -> Result<(), KeyStoreError> {
        Ok(())
    }
}

/// The Linux kernel keyring (keyutils): each key is a `user` key in the
/// calling user's *persistent* keyring, described
/// `tenantry:<service>/<entry>`.
///
/// The persistent keyring belongs to the user id, not to a login session,
/// so a systemd service, a cron job or an SSH session of that user all see
/// the same keys, with no D-Bus and no session keyring (the keyring
/// crate's keyutils store adds keys to the session keyring first, which a
/// process without one cannot link onwards: EACCES). Each run links the
/// persistent keyring into its own process keyring, which makes the process
/// possess it and renews its expiry. Keys get the kernel's default
/// permissions: everything for a possessor, only "view" for other
/// processes of the same user that do not possess the keyring.
#[cfg(target_os = "linux")]
mod kernel {
    use linux_keyutils::{KeyError, KeyRing, KeyRingIdentifier};
    use secrecy::{ExposeSecret, SecretString};
    use zeroize::Zeroize;

    use super::KeyEntry;
    use crate::error::KeyStoreError;

    pub(super) struct KernelKeyring {
        service: String,
    }

    fn failed(e: KeyError) -> KeyStoreError {
        let reason = format!("kernel keyring: {e:?}");
        match e {
            KeyError::AccessDenied | KeyError::PermissionDenied => {
                KeyStoreError::AccessDenied { reason }
            }
            KeyError::OperationNotSupported | KeyError::KeyringDoesNotExist => {
                KeyStoreError::Unavailable { reason }
            }
            _ => KeyStoreError::Other { reason },
        }
    }

    impl KernelKeyring {
        pub(super) fn new(service: &str) -> Self {
            Self {
                service: service.to_owned(),
            }
        }

        fn description(&self, entry: &KeyEntry) -> String {
            format!("tenantry:{}/{}", self.service, entry.as_str())
        }

        fn keyring(&self) -> Result<KeyRing, KeyStoreError> {
            KeyRing::from_special_id(KeyRingIdentifier::Process, true).map_err(failed)?;
            KeyRing::get_persistent(KeyRingIdentifier::Process).map_err(failed)
        }

        pub(super) fn load(&self, entry: &KeyEntry) -> Result<Option<SecretString>, KeyStoreError> {
            let key = match self.keyring()?.search(&self.description(entry)) {
                Ok(k) => k,
                Err(KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked) => {
                    return Ok(None)
                }
                Err(e) => return Err(failed(e)),
            };
            let mut bytes = key.read_to_vec().map_err(failed)?;
            let text = String::from_utf8(std::mem::take(&mut bytes));
            bytes.zeroize();
            match text {
                Ok(t) => Ok(Some(SecretString::from(t))),
                Err(e) => {
                    e.into_bytes().zeroize();
                    Err(KeyStoreError::Corrupt {
                        reason: "the kernel keyring entry is not text".into(),
                    })
                }
            }
        }

        pub(super) fn save(
            &self,
            entry: &KeyEntry,
            text: &SecretString,
        ) -> Result<(), KeyStoreError> {
            self.keyring()?
                .add_key(&self.description(entry), text.expose_secret().as_bytes())
                .map(|_| ())
                .map_err(failed)
        }

        pub(super) fn delete(&self, entry: &KeyEntry) -> Result<(), KeyStoreError> {
            match self.keyring()?.search(&self.description(entry)) {
                Ok(k) => k.invalidate().map_err(failed),
                Err(KeyError::KeyDoesNotExist | KeyError::KeyExpired | KeyError::KeyRevoked) => {
                    Ok(())
                }
                Err(e) => Err(failed(e)),
            }
        }
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
    fn load_text(&self, entry: &KeyEntry) -> Result<Option<SecretString>, KeyStoreError> {
        if let Some(kernel) = self.kernel() {
            return kernel.load(entry);
        }
        match self.entry(entry)?.get_password() {
            Ok(p) => Ok(Some(SecretString::from(p))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_keyring_error(e)),
        }
    }

    fn save_text(&self, entry: &KeyEntry, text: &SecretString) -> Result<(), KeyStoreError> {
        if let Some(kernel) = self.kernel() {
            return kernel.save(entry, text);
        }
        self.entry(entry)?
            .set_password(text.expose_secret())
            .map_err(map_keyring_error)
    }

    fn delete(&self, entry: &KeyEntry) -> Result<(), KeyStoreError> {
        if let Some(kernel) = self.kernel() {
            return kernel.delete(entry);
        }
        match self.entry(entry)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_keyring_error(e)),
        }
    }

    fn describe(&self) -> String {
        format!("{} (service {})", self.kind.title(), self.service)
    }

    fn kind(&self) -> Option<KeyStoreKind> {
        Some(self.kind)
    }
}

/// An in-memory key store for tests. It forgets everything when dropped;
/// it exists only under `cfg(test)` or the `test-support` feature, which only
/// dev-dependencies turn on, so no real build can fall back to it.
#[cfg(any(test, feature = "test-support"))]
#[derive(Default)]
pub struct MemoryKeyStore {
    entries: Mutex<HashMap<KeyEntry, SecretString>>,
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

    /// The names of the entries held, sorted.
    pub fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .entries
            .lock()
            .map(|m| m.keys().map(|k| k.0.clone()).collect())
            .unwrap_or_default();
        names.sort();
        names
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
        f: impl FnOnce(&mut HashMap<KeyEntry, SecretString>) -> T,
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
    fn load_text(&self, entry: &KeyEntry) -> Result<Option<SecretString>, KeyStoreError> {
        self.with(|m| {
            m.get(entry)
                .map(|s| SecretString::from(s.expose_secret().to_owned()))
        })
    }

    fn save_text(&self, entry: &KeyEntry, text: &SecretString) -> Result<(), KeyStoreError> {
        self.with(|m| {
            m.insert(
                entry.clone(),
                SecretString::from(text.expose_secret().to_owned()),
            );
        })
    }

    fn delete(&self, entry: &KeyEntry) -> Result<(), KeyStoreError> {
        self.with(|m| {
            m.remove(entry);
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

    #[error("the registry holds encrypted connection strings but {store} has no entry {entry} (nor a shared Tenantry data key that opens them); restore the key they were made with (from its escrow file: `tenantry key import --from FILE`, or the keyring's own backup), or, if someone else made this registry, ask them to share it with you (`tenantry member key` here, then `tenantry member add` on theirs) — Tenantry will not create a new key over existing data")]
    KeyMissing { store: String, entry: String },

    #[error("the data key in {store}, entry {entry}, is not the one the registry was encrypted with ({reason}); restore the matching key — nothing was changed")]
    WrongKey {
        store: String,
        entry: String,
        reason: VaultError,
    },

    #[error("the new data key could not be read back from {store}, entry {entry}; the keyring does not persist it, so no key was adopted")]
    NotPersisted { store: String, entry: String },

    #[error("this registry's data key is kept in the {} ({recorded}), not the {} ({chosen}); run without --key-store, or place the key in the other store with `tenantry key import --from <escrow file> --key-store {chosen}`", recorded.title(), chosen.title())]
    StoreMismatch {
        recorded: KeyStoreKind,
        chosen: KeyStoreKind,
    },
}

impl OpenError {
    pub fn code(&self) -> &'static str {
        match self {
            OpenError::KeyStore(e) => e.code(),
            OpenError::KeyMissing { .. } => "key_missing",
            OpenError::WrongKey { .. } => "wrong_key",
            OpenError::NotPersisted { .. } => "key_not_persisted",
            OpenError::StoreMismatch { .. } => "key_store_mismatch",
        }
    }
}

/// How the vault was opened.
pub struct OpenedVault {
    pub vault: Vault,
    /// The keyring entry the key is in.
    pub entry: KeyEntry,
    /// A new key was made (first run): store `vault.key_check()` in the registry.
    pub created: bool,
    /// The key was found in the shared pre-registry-id entry (named here) and
    /// copied into the registry's own entry.
    pub migrated_from: Option<KeyEntry>,
}

/// What the registry records about its key: the key's id and a proof of key.
pub struct KeyRecord<'a> {
    pub key_id: KeyId,
    pub check: &'a [u8],
}

/// Saves `key` in `entry` and reads it back: a keyring that does not persist
/// what it is given must not be trusted with the only copy of a key.
pub fn save_verified(
    store: &dyn KeyStore,
    entry: &KeyEntry,
    key: &DataKey,
) -> Result<(), OpenError> {
    save_verified_text(store, entry, &key.to_stored())
}

/// Saves a secret text in `entry` and reads it back, as [`save_verified`].
pub fn save_verified_text(
    store: &dyn KeyStore,
    entry: &KeyEntry,
    text: &SecretString,
) -> Result<(), OpenError> {
    store.save_text(entry, text)?;
    match store.load_text(entry)? {
        Some(back) if back.expose_secret() == text.expose_secret() => Ok(()),
        _ => Err(OpenError::NotPersisted {
            store: store.describe(),
            entry: entry.to_string(),
        }),
    }
}

/// Opens the vault of registry `registry_id` with its key in `store`.
///
/// `record` is what the registry holds about its key (see
/// [`Vault::key_check`]), `None` when it holds no encrypted data yet: only
/// then is a new key made, in a new entry.
pub fn open_vault(
    store: &dyn KeyStore,
    registry_id: &str,
    record: Option<KeyRecord<'_>>,
) -> Result<OpenedVault, OpenError> {
    let Some(record) = record else {
        let key = DataKey::generate();
        let entry = KeyEntry::for_key(registry_id, key.id());
        save_verified(store, &entry, &key)?;
        return Ok(OpenedVault {
            vault: Vault::new(key),
            entry,
            created: true,
            migrated_from: None,
        });
    };
    let entry = KeyEntry::for_key(registry_id, record.key_id);
    if let Some(key) = store.load(&entry)? {
        let vault = Vault::new(key);
        return match vault.verify_key_check(record.check) {
            Ok(()) => Ok(OpenedVault {
                vault,
                entry,
                created: false,
                migrated_from: None,
            }),
            Err(reason) => Err(OpenError::WrongKey {
                store: store.describe(),
                entry: entry.to_string(),
                reason,
            }),
        };
    }
    // A registry from before per-registry entries: its key is in the shared
    // entry (or in the shared rotation slot, if a rotation was interrupted).
    for legacy in [KeyEntry::LEGACY_CURRENT, KeyEntry::LEGACY_NEXT] {
        let legacy = KeyEntry::legacy(legacy);
        let Some(key) = store.load(&legacy)? else {
            continue;
        };
        if Vault::new(DataKey::from_stored(&key.to_stored())?)
            .verify_key_check(record.check)
            .is_ok()
        {
            save_verified(store, &entry, &key)?;
            return Ok(OpenedVault {
                vault: Vault::new(key),
                entry,
                created: false,
                migrated_from: Some(legacy),
            });
        }
    }
    Err(OpenError::KeyMissing {
        store: store.describe(),
        entry: entry.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_first_run_creates_and_persists_a_key_then_reopens_it() {
        let store = MemoryKeyStore::default();
        let first = open_vault(&store, REG, None).unwrap();
        assert!(first.created);
        let check = first.vault.key_check().unwrap();
        let again = open_vault(
            &store,
            REG,
            Some(KeyRecord {
                key_id: first.vault.key_id(),
                check: &check,
            }),
        )
        .unwrap();
        assert!(!again.created);
        assert_eq!(again.vault.key_id(), first.vault.key_id());
        assert_eq!(again.entry, first.entry);
        assert!(again.entry.as_str().starts_with("registry-0123"));
    }

    #[test]
    fn two_registries_never_share_an_entry() {
        let store = MemoryKeyStore::default();
        let a = open_vault(&store, REG, None).unwrap();
        let b = open_vault(&store, "fedcba9876543210fedcba9876543210", None).unwrap();
        assert_ne!(a.entry, b.entry);
        assert_ne!(a.vault.key_id(), b.vault.key_id());
        assert_eq!(store.entries().len(), 2);
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
            let first = open_vault(&store, REG, None).unwrap();
            let check = first.vault.key_check().unwrap();
            let before = store.entries();
            store.fail_with(Some(f.clone()));
            let rec = || KeyRecord {
                key_id: first.vault.key_id(),
                check: &check,
            };
            assert_eq!(
                open_vault(&store, REG, Some(rec())).err().unwrap().code(),
                f.code()
            );
            assert_eq!(
                open_vault(&store, REG, None).err().unwrap().code(),
                f.code()
            );
            store.fail_with(None);
            assert_eq!(store.entries(), before);
            assert!(open_vault(&store, REG, Some(rec())).is_ok());
        }
    }

    #[test]
    fn a_missing_key_with_existing_ciphertexts_is_refused() {
        let store = MemoryKeyStore::default();
        let first = open_vault(&store, REG, None).unwrap();
        let check = first.vault.key_check().unwrap();
        store.delete(&first.entry).unwrap();
        let err = open_vault(
            &store,
            REG,
            Some(KeyRecord {
                key_id: first.vault.key_id(),
                check: &check,
            }),
        )
        .err()
        .unwrap();
        assert_eq!(err.code(), "key_missing");
        assert!(err.to_string().contains(first.entry.as_str()));
        assert!(store.entries().is_empty(), "no key may be created");
    }

    #[test]
    fn a_wrong_key_is_refused_and_left_in_place() {
        let store = MemoryKeyStore::default();
        let first = open_vault(&store, REG, None).unwrap();
        let check = first.vault.key_check().unwrap();
        let impostor = DataKey::generate();
        let impostor_id = impostor.id();
        store.save(&first.entry, &impostor).unwrap();
        let err = open_vault(
            &store,
            REG,
            Some(KeyRecord {
                key_id: first.vault.key_id(),
                check: &check,
            }),
        )
        .err()
        .unwrap();
        assert_eq!(err.code(), "wrong_key");
        assert_eq!(store.load(&first.entry).unwrap().unwrap().id(), impostor_id);
    }

    #[test]
    fn a_key_in_the_shared_legacy_entry_is_copied_and_the_shared_entry_kept() {
        for slot in [KeyEntry::LEGACY_CURRENT, KeyEntry::LEGACY_NEXT] {
            let store = MemoryKeyStore::default();
            let key = DataKey::generate();
            let id = key.id();
            let check = Vault::new(DataKey::from_stored(&key.to_stored()).unwrap())
                .key_check()
                .unwrap();
            store.save(&KeyEntry::legacy(slot), &key).unwrap();
            let opened = open_vault(
                &store,
                REG,
                Some(KeyRecord {
                    key_id: id,
                    check: &check,
                }),
            )
            .unwrap();
            assert_eq!(opened.migrated_from, Some(KeyEntry::legacy(slot)));
            assert_eq!(opened.vault.key_id(), id);
            assert_eq!(store.load(&opened.entry).unwrap().unwrap().id(), id);
            assert!(
                store.load(&KeyEntry::legacy(slot)).unwrap().is_some(),
                "other registries may still need the shared entry"
            );
        }
    }
}
