//! Applying a template to one tenant, per engine, under a per-tenant lock.
//!
//! Architecture invariant: the lock is per schema (not only per database)
//! and released on every path: PostgreSQL takes a transaction-level advisory
//! lock in the provisioning transaction (commit, rollback and a dropped
//! connection all release it); MySQL/MariaDB take `GET_LOCK` on a dedicated
//! connection that is closed at the end; SQLite takes the file's write lock
//! with `BEGIN IMMEDIATE`. Migrations run on that one dedicated connection;
//! on PostgreSQL inside the transaction with a transaction-local
//! `search_path`, so nothing leaks into any pool.

use std::time::Duration;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Executor};
use tenantry_introspect::{mysql, postgres, ConnectionUrl, IntrospectError, Timeouts};
use tenantry_model::Engine;
use ts_rs::TS;

use crate::template::Migration;
use crate::{catalog, FleetError};

/// What the guard did to a tenant's schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum GuardAction {
    /// The database/schema did not exist: created, then the template applied.
    Created,
    /// The schema existed but held no objects: the template applied.
    Initialised,
    /// The schema already held objects: nothing done.
    AlreadyProvisioned,
}

impl GuardAction {
    pub fn as_str(self) -> &'static str {
        match self {
            GuardAction::Created => "created",
            GuardAction::Initialised => "initialised",
            GuardAction::AlreadyProvisioned => "already provisioned",
        }
    }
}

/// The result of provisioning one tenant.
#[derive(Debug, Clone)]
pub struct Provisioned {
    pub action: GuardAction,
    pub applied: Vec<String>,
}

/// Where the tenant's schema lives.
pub struct Place<'a> {
    pub url: &'a ConnectionUrl,
    /// PostgreSQL schema (`public` for database-per-tenant) or MySQL database.
    pub schema: &'a str,
}

/// Where the MySQL/MariaDB guard records its migrations, one by one, in the
/// registry's operation journal: DDL there commits statement by statement,
/// so a guard killed or failing part-way leaves a partly built schema that
/// the next guard must not call "already provisioned". PostgreSQL and
/// SQLite provision in one transaction and need no ledger.
pub struct Ledger<'a> {
    pub registry: &'a tenantry_registry::Registry,
    pub slug: &'a str,
    op: std::sync::Mutex<Option<i64>>,
}

/// A migration step as the ledger records it.
fn started(name: &str) -> String {
    format!("migration started: {name}")
}
fn done(name: &str) -> String {
    format!("migration done: {name}")
}

impl<'a> Ledger<'a> {
    pub fn new(registry: &'a tenantry_registry::Registry, slug: &'a str) -> Self {
        Self {
            registry,
            slug,
            op: std::sync::Mutex::new(None),
        }
    }

    fn op(&self) -> Option<i64> {
        self.op.lock().ok().and_then(|g| *g)
    }

    fn set_op(&self, id: i64) {
        if let Ok(mut g) = self.op.lock() {
            *g = Some(id);
        }
    }

    /// The journaled provisioning this guard recorded (to finish it).
    pub fn operation(&self) -> Option<i64> {
        self.op()
    }

    /// What an earlier guard of this tenant left: the migrations it
    /// completed, when it stopped between two migrations (resumable), or
    /// the one it stopped inside (not resumable). `None` when the last
    /// provisioning, reset or restore of the tenant finished.
    async fn earlier(&self) -> Result<Option<Earlier>, FleetError> {
        let Some(last) = self
            .registry
            .last_operation_of(self.slug, &["provision", "reset", "backup.restore"])
            .await?
        else {
            return Ok(None);
        };
        if last.kind != "provision" || last.outcome.as_deref() == Some("ok") {
            return Ok(None);
        }
        let steps = self.registry.operation_steps(last.id).await?;
        let completed: Vec<String> = steps
            .iter()
            .filter_map(|s| s.strip_prefix("migration done: ").map(str::to_owned))
            .collect();
        let inside = steps
            .iter()
            .filter_map(|s| s.strip_prefix("migration started: "))
            .find(|m| !completed.iter().any(|c| c == m))
            .map(str::to_owned);
        Ok(Some(match (inside, last.finished_at.is_none()) {
            (None, true) => Earlier::Resumable {
                op: last.id,
                completed,
            },
            (inside, _) => Earlier::Broken {
                op: last.id,
                migration: inside,
            },
        }))
    }

    async fn step(&self, step: String) -> Result<(), FleetError> {
        match self.op() {
            Some(op) => Ok(self.registry.record_step(op, &step).await?),
            None => Ok(()),
        }
    }
}

enum Earlier {
    Resumable { op: i64, completed: Vec<String> },
    Broken { op: i64, migration: Option<String> },
}

/// How long a guard waits for another guard of the same tenant.
const LOCK_WAIT: Duration = Duration::from_secs(60);

use tenantry_model::quote::{mysql as quote_my, postgres as quote_pg};

/// A transaction on `conn` holding the tenant lock of `schema` in the
/// connection's database (`pg_advisory_xact_lock` of [`pg_lock_key`]): the
/// lock the guard, reset, repair, upgrade, sync and restore of that schema
/// all take, so they never interleave. Released with the transaction.
pub(crate) async fn locked_tx<'c>(
    conn: &'c mut PgConnection,
    url: &ConnectionUrl,
    schema: &str,
) -> Result<sqlx::Transaction<'c, sqlx::Postgres>, FleetError> {
    let database: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| catalog(url, &e))?;
    let mut tx = conn.begin().await.map_err(|e| catalog(url, &e))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(pg_lock_key(&database, schema))
        .execute(&mut *tx)
        .await
        .map_err(|e| catalog(url, &e))?;
    Ok(tx)
}

/// The advisory-lock key of one (database, schema).
pub fn pg_lock_key(database: &str, schema: &str) -> i64 {
    let digest = Sha256::new()
        .chain_update(b"tenantry.guard\0")
        .chain_update(database.as_bytes())
        .chain_update(b"\0")
        .chain_update(schema.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

fn is_benign_exists(e: &sqlx::Error) -> bool {
    // duplicate_database, duplicate_schema, unique_violation on the catalog,
    // MySQL ER_DB_CREATE_EXISTS.
    matches!(
        e.as_database_error().and_then(|d| d.code()).as_deref(),
        Some("42P04") | Some("42P06") | Some("23505") | Some("HY000")
    ) && e.to_string().to_ascii_lowercase().contains("exist")
}

fn migration_error(
    url: &ConnectionUrl,
    migration: &str,
    e: &sqlx::Error,
    note: &str,
) -> FleetError {
    FleetError::Migration {
        migration: migration.to_owned(),
        path: url.server_label().into(),
        reason: format!("{}{note}", url.scrub(&e.to_string())),
    }
}

/// Takes the per-tenant lock on MySQL/MariaDB: a named lock held by `conn`
/// until [`mysql_unlock`] or until the connection closes.
pub(crate) async fn mysql_lock(
    conn: &mut MySqlConnection,
    url: &ConnectionUrl,
    schema: &str,
) -> Result<(), FleetError> {
    let got: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
        .bind(format!("tenantry:guard:{schema}"))
        .bind(i64::try_from(LOCK_WAIT.as_secs()).unwrap_or(60))
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| catalog(url, &e))?;
    if got == Some(1) {
        Ok(())
    } else {
        Err(FleetError::Locked {
            tenant: schema.to_owned(),
            seconds: LOCK_WAIT.as_secs(),
        })
    }
}

/// Releases [`mysql_lock`]'s lock (closing the connection would too).
pub(crate) async fn mysql_unlock(conn: &mut MySqlConnection, schema: &str) {
    let _ = sqlx::query("SELECT RELEASE_LOCK(?)")
        .bind(format!("tenantry:guard:{schema}"))
        .execute(&mut *conn)
        .await;
}

/// Creates the schema/database if missing and applies `migrations` if it
/// holds no objects. Idempotent and safe to race.
pub async fn provision(
    place: &Place<'_>,
    migrations: &[&Migration],
    timeouts: Timeouts,
    ledger: Option<&Ledger<'_>>,
) -> Result<Provisioned, FleetError> {
    let attempt = || async {
        match place.url.engine() {
            Engine::Postgres => provision_postgres(place, migrations, timeouts).await,
            Engine::Mysql => provision_mysql(place, migrations, timeouts, ledger).await,
            Engine::Sqlite => provision_sqlite(place, migrations).await,
        }
    };
    match attempt().await {
        // Someone outside the guard created the same object at the same
        // moment: the second attempt sees it and carries on.
        Err(FleetError::Raced) => attempt().await,
        other => other,
    }
}

async fn provision_postgres(
    place: &Place<'_>,
    migrations: &[&Migration],
    timeouts: Timeouts,
) -> Result<Provisioned, FleetError> {
    let url = place.url;
    let mut created = false;
    let mut conn: PgConnection = match postgres::connect(url, timeouts).await {
        Ok(c) => c,
        Err(IntrospectError::DatabaseNotFound { database, .. }) => {
            let maintenance = url.with_database("postgres")?;
            let mut admin = postgres::connect(&maintenance, timeouts).await?;
            match admin
                .execute(format!("CREATE DATABASE {}", quote_pg(&database)).as_str())
                .await
            {
                Ok(_) => created = true,
                Err(e) if is_benign_exists(&e) => {}
                Err(e) => return Err(migration_error(url, "(create database)", &e, "")),
            }
            postgres::close(admin).await;
            postgres::connect(url, timeouts).await?
        }
        Err(e) => return Err(e.into()),
    };
    let result = async {
        let database: String = sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| catalog(url, &e))?;
        let mut tx = conn.begin().await.map_err(|e| catalog(url, &e))?;
        sqlx::query("SELECT set_config('lock_timeout', $1, true)")
            .bind(format!("{}ms", LOCK_WAIT.as_millis()))
            .execute(&mut *tx)
            .await
            .map_err(|e| catalog(url, &e))?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(pg_lock_key(&database, place.schema))
            .execute(&mut *tx)
            .await
            .map_err(|e| catalog(url, &e))?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(place.schema)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| catalog(url, &e))?;
        if !exists {
            if let Err(e) = tx
                .execute(format!("CREATE SCHEMA {}", quote_pg(place.schema)).as_str())
                .await
            {
                return Err(if is_benign_exists(&e) {
                    FleetError::Raced
                } else {
                    migration_error(url, "(create schema)", &e, "")
                });
            }
            created = true;
        }
        let objects: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE n.nspname = $1 AND c.relkind IN ('r','p','v','m','S','f'))
                  + (SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
                      WHERE n.nspname = $1 AND t.typtype IN ('e','d','c','r')
                        AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.reltype = t.oid))",
        )
        .bind(place.schema)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| catalog(url, &e))?;
        if objects > 0 {
            tx.commit().await.map_err(|e| catalog(url, &e))?;
            return Ok(Provisioned {
                action: GuardAction::AlreadyProvisioned,
                applied: Vec::new(),
            });
        }
        sqlx::query("SELECT set_config('search_path', $1, true)")
            .bind(quote_pg(place.schema))
            .execute(&mut *tx)
            .await
            .map_err(|e| catalog(url, &e))?;
        let mut applied = Vec::new();
        for m in migrations {
            tx.execute(m.sql.as_ref()).await.map_err(|e| {
                migration_error(
                    url,
                    &m.name,
                    &e,
                    "; nothing was applied (the transaction was rolled back)",
                )
            })?;
            applied.push(m.name.to_string());
        }
        tx.commit().await.map_err(|e| catalog(url, &e))?;
        Ok(Provisioned {
            action: if created {
                GuardAction::Created
            } else {
                GuardAction::Initialised
            },
            applied,
        })
    }
    .await;
    postgres::close(conn).await;
    result
}

async fn provision_mysql(
    place: &Place<'_>,
    migrations: &[&Migration],
    timeouts: Timeouts,
    ledger: Option<&Ledger<'_>>,
) -> Result<Provisioned, FleetError> {
    let url = place.url;
    let server = url.with_database("")?;
    let mut conn: MySqlConnection = mysql::connect(&server, timeouts).await?;
    let result = async {
        mysql_lock(&mut conn, url, place.schema).await?;
        let exists: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?")
            .bind(place.schema)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| catalog(url, &e))?;
        let mut created = false;
        if exists == 0 {
            conn.execute(format!("CREATE DATABASE IF NOT EXISTS {}", quote_my(place.schema)).as_str())
                .await
                .map_err(|e| migration_error(url, "(create database)", &e, ""))?;
            created = true;
        }
        let objects: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?)
                  + (SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?)",
        )
        .bind(place.schema)
        .bind(place.schema)
        .fetch_one(&mut conn)
        .await
        .map_err(|e| catalog(url, &e))?;
        // What an earlier guard left, read under the tenant's lock.
        let earlier = match ledger {
            Some(l) => l.earlier().await?,
            None => None,
        };
        let completed = match earlier {
            Some(Earlier::Broken { op, migration }) => {
                return Err(FleetError::ProvisionIncomplete {
                    schema: place.schema.to_owned(),
                    operation: op,
                    stopped: migration.map_or_else(
                        || "after a failure".to_owned(),
                        |m| format!("inside migration {m}"),
                    ),
                });
            }
            Some(Earlier::Resumable { op, completed }) => {
                if let Some(l) = ledger {
                    l.set_op(op);
                    l.step("resumed".into()).await?;
                }
                completed
            }
            None if objects > 0 => {
                return Ok(Provisioned { action: GuardAction::AlreadyProvisioned, applied: Vec::new() });
            }
            None => {
                // The intent first: if it cannot be journaled, nothing runs.
                if let Some(l) = ledger {
                    let op = l.registry.begin_operation(l.slug, "provision", None).await?;
                    l.set_op(op);
                }
                Vec::new()
            }
        };
        // A dedicated connection, closed below: `USE` cannot leak anywhere.
        conn.execute(format!("USE {}", quote_my(place.schema)).as_str())
            .await
            .map_err(|e| catalog(url, &e))?;
        let mut applied = Vec::new();
        for m in migrations {
            if completed.iter().any(|c| *c == *m.name) {
                continue;
            }
            if let Some(l) = ledger {
                l.step(started(&m.name)).await?;
            }
            conn.execute(m.sql.as_ref()).await.map_err(|e| {
                let note = format!(
                    "; MySQL/MariaDB commit DDL implicitly, so the migrations before it ({}) and any statements of this one before the failure stay applied; `tenantry reset` rebuilds the tenant from the template",
                    if applied.is_empty() { "none".to_owned() } else { applied.join(", ") }
                );
                migration_error(url, &m.name, &e, &note)
            })?;
            if let Some(l) = ledger {
                l.step(done(&m.name)).await?;
            }
            applied.push(m.name.to_string());
        }
        Ok(Provisioned {
            action: if created { GuardAction::Created } else { GuardAction::Initialised },
            applied,
        })
    }
    .await;
    mysql_unlock(&mut conn, place.schema).await;
    mysql::close(conn).await;
    result
}

async fn provision_sqlite(
    place: &Place<'_>,
    migrations: &[&Migration],
) -> Result<Provisioned, FleetError> {
    let url = place.url;
    let path = url.sqlite_path();
    let created = !path.exists();
    let mut conn: SqliteConnection = crate::open_sqlite_writer(url, true).await?;
    let result = async {
        conn.execute("BEGIN IMMEDIATE")
            .await
            .map_err(|e| catalog(url, &e))?;
        let objects: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(|e| catalog(url, &e))?;
        if objects > 0 {
            return Ok(Provisioned {
                action: GuardAction::AlreadyProvisioned,
                applied: Vec::new(),
            });
        }
        let mut applied = Vec::new();
        for m in migrations {
            conn.execute(m.sql.as_ref()).await.map_err(|e| {
                migration_error(
                    url,
                    &m.name,
                    &e,
                    "; nothing was applied (the transaction was rolled back)",
                )
            })?;
            applied.push(m.name.to_string());
        }
        conn.execute("COMMIT").await.map_err(|e| catalog(url, &e))?;
        Ok(Provisioned {
            action: if created {
                GuardAction::Created
            } else {
                GuardAction::Initialised
            },
            applied,
        })
    }
    .await;
    if result.is_err()
        || matches!(
            result,
            Ok(Provisioned {
                action: GuardAction::AlreadyProvisioned,
                ..
            })
        )
    {
        let _ = conn.execute("ROLLBACK").await;
    }
    let _ = conn.close().await;
    result
}
