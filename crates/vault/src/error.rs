//! Typed vault errors. None of them carries key material or plaintext.

/// Decrypting or encrypting one connection string failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("the encrypted connection string is truncated ({len} bytes); the registry entry is damaged: re-enter the connection string")]
    Truncated { len: usize },

    #[error("the encrypted connection string uses format v{version}, which this version of Tenantry does not know; upgrade Tenantry")]
    UnsupportedFormat { version: u8 },

    #[error("the connection string was encrypted with data key {found}, but the keyring holds key {expected}; restore the matching key or re-enter the connection string")]
    KeyMismatch { expected: String, found: String },

    #[error("the encrypted connection string does not authenticate for this tenant: it was altered, copied from another tenant, or the data key is wrong; re-enter the connection string")]
    Authentication,

    #[error("the decrypted connection string is not valid UTF-8; re-enter the connection string")]
    NotUtf8,

    #[error("encryption failed")]
    Encrypt,
}

impl VaultError {
    pub fn code(&self) -> &'static str {
        match self {
            VaultError::Truncated { .. } => "ciphertext_truncated",
            VaultError::UnsupportedFormat { .. } => "ciphertext_format_unknown",
            VaultError::KeyMismatch { .. } => "key_mismatch",
            VaultError::Authentication => "ciphertext_not_authentic",
            VaultError::NotUtf8 => "plaintext_not_utf8",
            VaultError::Encrypt => "encrypt_failed",
        }
    }
}

/// Reading or writing the data key in the OS keyring failed. Each variant is
/// a different thing for the user to fix; none of them ever leads to a new
/// key being written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyStoreError {
    #[error("the OS keyring is not available ({reason}); on Linux start a Secret Service (GNOME Keyring, KWallet) in a D-Bus session, or on a server without one choose the kernel keyring (`--key-store keyutils`, see the README)")]
    Unavailable { reason: String },

    #[error(
        "the OS keyring refused access ({reason}); unlock the keyring or allow Tenantry to use it"
    )]
    AccessDenied { reason: String },

    #[error("the keyring entry for the Tenantry data key is damaged ({reason}); restore it from a backup")]
    Corrupt { reason: String },

    #[error("the OS keyring failed: {reason}")]
    Other { reason: String },

    #[error("the member key file {path} cannot be used: {reason}")]
    KeyFile { path: String, reason: String },
}

impl KeyStoreError {
    pub fn code(&self) -> &'static str {
        match self {
            KeyStoreError::Unavailable { .. } => "keyring_unavailable",
            KeyStoreError::AccessDenied { .. } => "keyring_access_denied",
            KeyStoreError::Corrupt { .. } => "keyring_entry_corrupt",
            KeyStoreError::Other { .. } => "keyring_failed",
            KeyStoreError::KeyFile { .. } => "member_key_file_unusable",
        }
    }
}
