//! Tenantry's vault: connection strings encrypted with AES-256-GCM (a fresh
//! random 96-bit nonce each time, the tenant id as associated data, a
//! versioned encoding), under a 256-bit data key held in the OS keyring.
//!
//! Architecture invariant: no key or plaintext is ever printed, logged or
//! serialised: keys and decrypted strings are `secrecy` types (redacted
//! `Debug`, no `Serialize`, zeroised on drop), and errors carry neither.

mod cipher;
mod error;
pub mod escrow;
mod key;
mod key_file;
pub mod member;
mod process;
mod store;

pub use cipher::Vault;
pub use error::{KeyStoreError, VaultError};
pub use key::{key_memory_locked, DataKey, KeyId};
pub use key_file::MemberKeyFile;
pub use member::{MemberKeyError, MemberPublicKey, MemberSecret};
pub use process::{harden_process, ProcessHardening};
#[cfg(any(test, feature = "test-support"))]
pub use store::MemoryKeyStore;
pub use store::{
    open_vault, save_verified, save_verified_text, KeyEntry, KeyRecord, KeyStore, KeyStoreKind,
    OpenError, OpenedVault, OsKeyring, DEFAULT_SERVICE,
};
