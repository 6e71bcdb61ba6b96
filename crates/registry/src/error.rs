//! The registry's error type. Messages say what failed and what to do, and
//! never contain a connection string.

use tenantry_introspect::IntrospectError;
use tenantry_vault::escrow::EscrowError;
use tenantry_vault::{KeyStoreError, MemberKeyError, OpenError, VaultError};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid tenant slug {given}: {reason}")]
    InvalidSlug { given: String, reason: String },

    #[error("invalid domain {given}: {reason}")]
    InvalidDomain { given: String, reason: String },

    #[error("invalid display name {given}: {reason}")]
    InvalidDisplayName { given: String, reason: String },

    #[error("invalid {field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },

    #[error("a tenant with slug `{slug}` already exists")]
    DuplicateSlug { slug: String },

    #[error("domain `{domain}` already belongs to tenant `{owner}`")]
    DomainTaken { domain: String, owner: String },

    #[error("tenant `{owner}` already lives in {place}: two tenants on one schema would each see the other's changes, and a reset of one would empty the other; give this tenant its own schema (--schema) or database, or remove `{owner}` first")]
    PlaceTaken { place: String, owner: String },

    #[error("no tenant with slug `{slug}`; `tenantry tenant list` shows the registered ones")]
    TenantNotFound { slug: String },

    #[error("the registry at {path} cannot be opened: {reason}")]
    Open { path: String, reason: String },

    #[error("there is no registry at {path}; a registry is made by its first use (`tenantry tenant add`, `tenant import`, `template add` or the console), or pass --registry PATH to use another one")]
    Missing { path: String },

    #[error("the registry at {path} is damaged: {reason}; restore it from a backup, or move it away to start a new registry — nothing was changed")]
    Damaged { path: String, reason: String },

    #[error("the registry file {path} was removed or replaced while Tenantry was using it; nothing more was written to it — restore the file and run the command again")]
    Vanished { path: String },

    #[error("the registry at {path} was written by a newer Tenantry (migration {version} is unknown); upgrade Tenantry")]
    TooNew { path: String, version: i64 },

    #[error("the registry database failed: {reason}")]
    Database { reason: String },

    #[error("import failed at {location}: {reason}")]
    Import { location: String, reason: String },

    #[error("the connection string of tenant `{slug}` cannot be decrypted: {source}")]
    Decrypt {
        slug: String,
        #[source]
        source: VaultError,
    },

    #[error("this registry's data key is shared with its members ({members}), and {detail}; run `tenantry member key` on this machine and ask a member to add you with the key it prints (`tenantry member add NAME --public-key KEY`)")]
    NotAMember { members: i64, detail: String },

    #[error("tenant `{slug}` is busy: operation {operation} ({what}) has not finished; wait for it, or if it died, resolve it on that host or with `tenantry operations resolve {operation}`")]
    TenantBusy {
        slug: String,
        operation: i64,
        /// Its kind, when, by whom and where.
        what: String,
    },

    #[error("{location}: tenant `{slug}` was changed since revision {expected}, the one this row was made from (it is at revision {current}, updated {updated_at}); nothing was imported — read it again (`tenantry tenant show {slug} --json`) and make the change on top of revision {current}")]
    TenantChanged {
        location: String,
        slug: String,
        expected: i64,
        current: i64,
        updated_at: String,
    },

    #[error("{location}: tenant `{slug}` is not registered any more, and the row was made from its revision {expected}; nothing was imported — leave `revision` out to register it again")]
    TenantGone {
        location: String,
        slug: String,
        expected: i64,
    },

    #[error("`{name}` is a {role} of this registry and may not {doing} (it needs {needed}); ask an admin: `tenantry member role {name} {needed}`")]
    RoleRefused {
        name: String,
        role: crate::Role,
        needed: crate::Role,
        doing: &'static str,
    },

    #[error("no member named `{name}`; `tenantry member list` shows the members")]
    MemberNotFound { name: String },

    #[error("{what} is already a member of this registry")]
    MemberTaken { what: String },

    #[error("{reason}")]
    MemberRefused { reason: String },

    #[error(transparent)]
    Member(#[from] MemberKeyError),

    #[error(transparent)]
    Vault(#[from] VaultError),

    #[error(transparent)]
    VaultOpen(#[from] OpenError),

    #[error(transparent)]
    KeyStore(#[from] KeyStoreError),

    #[error(transparent)]
    Escrow(#[from] EscrowError),

    #[error(transparent)]
    Introspect(#[from] IntrospectError),
}

impl RegistryError {
    pub fn code(&self) -> &'static str {
        match self {
            RegistryError::InvalidSlug { .. } => "invalid_slug",
            RegistryError::InvalidDomain { .. } => "invalid_domain",
            RegistryError::InvalidDisplayName { .. } => "invalid_display_name",
            RegistryError::InvalidInput { .. } => "invalid_input",
            RegistryError::DuplicateSlug { .. } => "duplicate_slug",
            RegistryError::DomainTaken { .. } => "domain_taken",
            RegistryError::PlaceTaken { .. } => "place_taken",
            RegistryError::TenantNotFound { .. } => "tenant_not_found",
            RegistryError::Open { .. } => "registry_open_failed",
            RegistryError::TooNew { .. } => "registry_too_new",
            RegistryError::Missing { .. } => "registry_missing",
            RegistryError::Damaged { .. } => "registry_damaged",
            RegistryError::Vanished { .. } => "registry_vanished",
            RegistryError::Database { .. } => "registry_failed",
            RegistryError::Import { .. } => "import_failed",
            RegistryError::Decrypt { source, .. } => source.code(),
            RegistryError::NotAMember { .. } => "not_a_member",
            RegistryError::RoleRefused { .. } => "role_refused",
            RegistryError::TenantBusy { .. } => "tenant_busy",
            RegistryError::TenantChanged { .. } => "tenant_changed",
            RegistryError::TenantGone { .. } => "tenant_gone",
            RegistryError::MemberNotFound { .. } => "member_not_found",
            RegistryError::MemberTaken { .. } => "member_taken",
            RegistryError::MemberRefused { .. } => "member_refused",
            RegistryError::Member(e) => e.code(),
            RegistryError::Vault(e) => e.code(),
            RegistryError::VaultOpen(e) => e.code(),
            RegistryError::KeyStore(e) => e.code(),
            RegistryError::Escrow(e) => e.code(),
            RegistryError::Introspect(e) => e.code(),
        }
    }
}

impl From<sqlx::Error> for RegistryError {
    fn from(e: sqlx::Error) -> Self {
        RegistryError::Database {
            reason: match &e {
                sqlx::Error::Database(db) => db.message().to_owned(),
                other => other.to_string(),
            },
        }
    }
}
