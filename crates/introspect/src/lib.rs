//! Reads a tenant's schema into the canonical [`SchemaSnapshot`]: a
//! PostgreSQL database or schema, a MySQL/MariaDB database, a SQLite file.
//!
//! Architecture invariant: introspection only reads. It never creates a
//! database, schema or file, and it never changes session state on a
//! connection it does not own. Catalog queries filter by schema *name*
//! lists (`= ANY($1)` / `IN (…)`) so a fleet of schema-per-tenant tenants
//! is read in a few round trips, not one per tenant.

mod column;
mod error;
pub mod mysql;
mod pg_acl;
pub mod postgres;
pub mod sqlite;
mod sqlite_sql;
mod target;

use std::time::Duration;

pub use error::IntrospectError;
pub use target::{redact, ConnectionUrl, REDACTED};
use tenantry_model::{Engine, SchemaSnapshot};

/// Bounds on how long introspection may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub connect: Duration,
    pub query: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            query: Duration::from_secs(60),
        }
    }
}

/// What to introspect: a URL and, for PostgreSQL schema-per-tenant, the
/// schema inside the database (default `public`). For MySQL/MariaDB the
/// schema is the database; `schema` overrides the one in the URL.
pub async fn introspect(
    url: &ConnectionUrl,
    schema: Option<&str>,
    timeouts: Timeouts,
) -> Result<SchemaSnapshot, IntrospectError> {
    match url.engine() {
        Engine::Postgres => {
            let schema = schema.unwrap_or("public");
            let mut conn = postgres::connect_for_catalog(url, timeouts).await?;
            let result = postgres::introspect_one(&mut conn, url, schema, timeouts).await;
            postgres::close(conn).await;
            result
        }
        Engine::Mysql => {
            let database = match schema.map(str::to_owned).or_else(|| url.database()) {
                Some(d) => d,
                None => {
                    return Err(IntrospectError::InvalidUrl {
                        url: url.redacted().to_owned(),
                        reason: "name the database in the URL path or with --schema".into(),
                    })
                }
            };
            let mut conn = mysql::connect(url, timeouts).await?;
            let result = mysql::introspect_one(&mut conn, url, &database, timeouts).await;
            mysql::close(conn).await;
            result
        }
        Engine::Sqlite => {
            if let Some(s) = schema.filter(|s| *s != "main") {
                return Err(IntrospectError::Unsupported {
                    what: format!(
                        "--schema `{s}` is not supported for SQLite: a SQLite tenant is one file"
                    ),
                });
            }
            sqlite::introspect_file(&url.sqlite_path(), timeouts).await
        }
    }
}

/// Awaits a connection attempt under the connect timeout, mapping a driver
/// failure with `map` (each engine knows its own error codes).
pub(crate) async fn connect_within<C>(
    url: &ConnectionUrl,
    timeouts: Timeouts,
    attempt: impl std::future::Future<Output = Result<C, sqlx::Error>>,
    map: fn(&ConnectionUrl, &sqlx::Error) -> IntrospectError,
) -> Result<C, IntrospectError> {
    match tokio::time::timeout(timeouts.connect, attempt).await {
        Err(_) => Err(IntrospectError::ConnectTimeout {
            server: url.server_label(),
            seconds: timeouts.connect.as_secs(),
        }),
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(map(url, &e)),
    }
}

/// Runs `fut` under the query timeout, mapping elapsed time to a typed error.
pub(crate) async fn with_query_timeout<T>(
    server: &str,
    timeouts: Timeouts,
    fut: impl std::future::Future<Output = Result<T, IntrospectError>>,
) -> Result<T, IntrospectError> {
    match tokio::time::timeout(timeouts.query, fut).await {
        Ok(r) => r,
        Err(_) => Err(IntrospectError::QueryTimeout {
            server: server.to_owned(),
            seconds: timeouts.query.as_secs(),
        }),
    }
}

/// Describes a driver error without anything that could carry a secret
/// (sqlx's configuration errors can quote the URL), then scrubs it.
pub(crate) fn describe(url: &ConnectionUrl, e: &sqlx::Error) -> String {
    let text = match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(io) => io.to_string(),
        sqlx::Error::Tls(t) => format!("TLS: {t}"),
        sqlx::Error::Protocol(p) => format!("protocol: {p}"),
        sqlx::Error::Configuration(_) => "invalid connection options".to_owned(),
        sqlx::Error::PoolTimedOut => "timed out waiting for a connection".to_owned(),
        sqlx::Error::ColumnDecode { index, source } => {
            format!("could not decode catalog column {index}: {source}")
        }
        other => other.to_string(),
    };
    url.scrub(&text)
}

#[cfg(test)]
mod send_tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn introspection_futures_are_send() {
        // Tauri commands and spawned scan tasks need Send futures.
        let url = ConnectionUrl::parse("sqlite:/nonexistent.db").unwrap();
        let path = std::path::PathBuf::from("/nonexistent.db");
        assert_send(&sqlite::introspect_file(&path, Timeouts::default()));
        assert_send(&introspect(&url, None, Timeouts::default()));
    }
}
