//! The one error type of this crate. Every message names what failed and
//! what to do, and never contains a password: driver text is scrubbed
//! through [`crate::ConnectionUrl::scrub`] before it is stored here.

#[derive(Debug, thiserror::Error)]
pub enum IntrospectError {
    #[error("invalid connection URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("cannot connect to {server}: {reason}")]
    Connect { server: String, reason: String },

    #[error("timed out after {seconds}s connecting to {server}; check host, port and firewall, or raise --connect-timeout")]
    ConnectTimeout { server: String, seconds: u64 },

    #[error("authentication failed for {server}: {reason}; check the user name and password")]
    Authentication { server: String, reason: String },

    #[error("database `{database}` does not exist on {server}")]
    DatabaseNotFound { server: String, database: String },

    #[error("schema `{schema}` does not exist on {server}")]
    SchemaNotFound { server: String, schema: String },

    #[error(
        "SQLite file {path} does not exist (Tenantry never creates a file it was asked to inspect)"
    )]
    SqliteFileNotFound { path: String },

    #[error("{what}")]
    Unsupported { what: String },

    #[error("reading the catalog of {server} timed out after {seconds}s; raise --query-timeout for very large catalogs")]
    QueryTimeout { server: String, seconds: u64 },

    #[error("reading the catalog of {server} failed: {reason}")]
    Catalog { server: String, reason: String },
}

impl IntrospectError {
    /// A stable machine-readable code, for `{code, message}` IPC errors and
    /// JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            IntrospectError::InvalidUrl { .. } => "invalid_url",
            IntrospectError::Connect { .. } => "connect_failed",
            IntrospectError::ConnectTimeout { .. } => "connect_timeout",
            IntrospectError::Authentication { .. } => "authentication_failed",
            IntrospectError::DatabaseNotFound { .. } => "database_not_found",
            IntrospectError::SchemaNotFound { .. } => "schema_not_found",
            IntrospectError::SqliteFileNotFound { .. } => "sqlite_file_not_found",
            IntrospectError::Unsupported { .. } => "unsupported",
            IntrospectError::QueryTimeout { .. } => "query_timeout",
            IntrospectError::Catalog { .. } => "catalog_failed",
        }
    }
}
