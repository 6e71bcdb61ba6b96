//! Applying template migrations to a SQLite file: all in one transaction,
//! into a temporary file that is moved into place without clobbering, so a
//! failed or concurrent run never leaves a half-built or overwritten tenant.

use std::path::{Path, PathBuf};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};

use crate::{FleetError, Migration};

/// Builds a new SQLite file at `path` from `migrations`. If `path` already
/// exists (another process won the race) it is left as it is.
pub async fn apply_sqlite_migrations(
    path: &Path,
    migrations: &[&Migration],
) -> Result<(), FleetError> {
    let tmp = temp_sibling(path);
    let result = build(&tmp, migrations, path).await;
    let outcome = match result {
        Ok(()) => match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(source) => Err(FleetError::Io {
                action: "create",
                path: path.to_owned(),
                source,
            }),
        },
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&tmp);
    outcome
}

fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "tenant.db".into());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

async fn build(tmp: &Path, migrations: &[&Migration], target: &Path) -> Result<(), FleetError> {
    let _ = std::fs::remove_file(tmp);
    let fail = |migration: &str, reason: String| FleetError::Migration {
        migration: migration.to_owned(),
        path: target.to_owned(),
        reason,
    };
    let mut conn = SqliteConnectOptions::new()
        .filename(tmp)
        .create_if_missing(true)
        .foreign_keys(true)
        .disable_statement_logging()
        .connect()
        .await
        .map_err(|e| fail("(open)", e.to_string()))?;
    let mut tx = conn
        .begin()
        .await
        .map_err(|e| fail("(begin)", e.to_string()))?;
    for m in migrations {
        // `Executor::execute` on a `&str` runs every statement in it; unlike
        // `raw_sql(..).execute(..)` its future is provably `Send`.
        tx.execute(m.sql.as_ref())
            .await
            .map_err(|e| fail(&m.name, e.to_string()))?;
    }
    tx.commit()
        .await
        .map_err(|e| fail("(commit)", e.to_string()))?;
    conn.close()
        .await
        .map_err(|e| fail("(close)", e.to_string()))?;
    Ok(())
}
