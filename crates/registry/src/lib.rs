//! The console's registry of templates and tenants: an embedded SQLite
//! database in the app's data directory, managed with sqlx migrations.
//!
//! Architecture invariant: a connection string enters the registry only as a
//! vault ciphertext bound to its tenant id, and leaves it only as a
//! [`ConnectionUrl`] (a typed secret). Records carry the redacted location.
//!
//! Architecture invariant: every operation that changes the registry, and
//! every refusal, appends to the audit log, which triggers keep append-only.

mod actor;
mod dialect;
mod error;
mod grants;
pub mod health;
pub mod history;
pub mod import;
pub mod journal;
pub mod members;
pub mod page;
pub mod pools;
mod roles;
pub mod templates;
mod validate;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::AnyPool;
use sqlx::{ConnectOptions, Connection, Executor, Row};
use tenantry_introspect::ConnectionUrl;
use tenantry_model::{Engine, SchemaStatus};
use tenantry_vault::{
    open_vault, save_verified, DataKey, KeyEntry, KeyId, KeyRecord, KeyStore, KeyStoreKind,
    OpenError, Vault,
};
use ts_rs::TS;

pub use dialect::Backend;
pub use error::RegistryError;
pub use members::{member_name, MemberAdded, MemberRecord, MemberRemoved};
pub use page::{StatusCounts, TenantPage, TenantQuery, TenantSort};
pub use roles::{Action, Caller, Role};
pub use validate::{display_name, escape_controls, Domain, Slug};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
/// The same schema on PostgreSQL. A PostgreSQL registry starts at the
/// SQLite registry's version 19 in one migration; every later migration is
/// written for both backends, under the same version.
static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations-postgres");

pub use actor::{current_actor, Actor};

/// The default registry location: `<data dir>/dev.tenantry.console/registry.db`,
/// the same directory the desktop app uses.
pub fn default_registry_path() -> Option<PathBuf> {
    let base = if cfg!(target_os = "windows") {
        std::env::var_os("APPDATA").map(PathBuf::from)
    } else if cfg!(target_os = "macos") {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join("Library/Application Support"))
    } else {
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
    }?;
    Some(base.join("dev.tenantry.console").join("registry.db"))
}

/// How a tenant is isolated from the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Isolation {
    Database,
    Schema,
}

impl Isolation {
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Database => "database",
            Isolation::Schema => "schema",
        }
    }
}

/// A tenant to add.
pub struct NewTenant {
    pub slug: String,
    pub display_name: String,
    pub url: ConnectionUrl,
    /// PostgreSQL schema for schema-per-tenant; `None` means the database's
    /// `public` schema (or, for MySQL, the database in the URL).
    pub schema: Option<String>,
    pub template: Option<String>,
    pub template_version: Option<String>,
    pub domains: Vec<String>,
    pub notes: String,
}

/// A registered tenant as the CLI and the console show it. It has no field
/// that can hold a secret: `location` is the redacted URL.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct TenantRecord {
    #[ts(type = "number")]
    pub id: i64,
    pub slug: String,
    pub display_name: String,
    #[ts(type = "\"postgres\" | \"mysql\" | \"sqlite\"")]
    pub engine: Engine,
    pub isolation: Isolation,
    pub schema_name: Option<String>,
    pub location: String,
    pub template: Option<String>,
    pub template_version: Option<String>,
    #[ts(type = "\"unknown\" | \"synced\" | \"customized\" | \"outdated\" | \"failed\"")]
    pub status: SchemaStatus,
    pub status_reason: Option<String>,
    pub initial_hash: Option<String>,
    pub current_hash: Option<String>,
    pub last_sync_at: Option<String>,
    pub notes: String,
    pub domains: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    /// A customisation accepted as this tenant's baseline, and why.
    pub accepted_hash: Option<String>,
    pub accepted_note: Option<String>,
    /// The revision of the registered details (migration 0021): an edit
    /// made from revision N is refused once the tenant is past it.
    #[ts(type = "number")]
    pub revision: i64,
    /// See migration 0004; internal to the scan.
    #[serde(skip)]
    #[ts(skip)]
    pub catalog_fingerprint: Option<String>,
}

/// The outcome recorded in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum AuditResult {
    Ok,
    Refused,
    Failed,
}

impl AuditResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditResult::Ok => "ok",
            AuditResult::Refused => "refused",
            AuditResult::Failed => "failed",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "ok" => AuditResult::Ok,
            "refused" => AuditResult::Refused,
            _ => AuditResult::Failed,
        }
    }
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct AuditEntry {
    #[ts(type = "number")]
    pub id: i64,
    pub at: String,
    pub actor: String,
    /// The host the operation ran on.
    pub host: Option<String>,
    pub tenant_slug: Option<String>,
    pub action: String,
    pub detail: String,
    pub result: AuditResult,
}

pub struct Registry {
    pool: AnyPool,
    backend: Backend,
    place: RegistryPlace,
    /// The file the registry was opened as (device and inode on Unix); for
    /// a SQLite registry only.
    identity: Option<FileIdentity>,
    /// Every journal entry this process writes, as it is written: the
    /// console's live progress of a reset or sync.
    journal_events: tokio::sync::broadcast::Sender<journal::JournalEvent>,
    /// The member this process acts for (see [`Registry::identify`]).
    caller: std::sync::Mutex<Option<Caller>>,
}

/// Where a registry lives: one person's SQLite file, or a team's
/// PostgreSQL database. `Debug` shows the redacted form.
pub enum RegistryPlace {
    File(PathBuf),
    /// The URL may hold a password: it is a typed secret.
    Postgres(ConnectionUrl),
}

impl RegistryPlace {
    /// A `--registry` value or `TENANTRY_REGISTRY`: a `postgres://` or
    /// `postgresql://` URL, or a path to a SQLite file (`sqlite:` prefix
    /// optional).
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let scheme = text.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("postgres" | "postgresql") => {
                let url = ConnectionUrl::parse(text).map_err(|e| RegistryError::Open {
                    path: tenantry_introspect::redact(text),
                    reason: e.to_string(),
                })?;
                Ok(RegistryPlace::Postgres(url))
            }
            Some(other) if other != "sqlite" && !other.contains(['/', '\\']) => {
                Err(RegistryError::Open {
                    path: tenantry_introspect::redact(text),
                    reason: format!(
                        "a registry lives in a SQLite file or a PostgreSQL database, not `{other}://`; pass a file path or a postgres:// URL"
                    ),
                })
            }
            _ => {
                let path = text
                    .strip_prefix("sqlite://")
                    .or_else(|| text.strip_prefix("sqlite:"))
                    .unwrap_or(text);
                if path.is_empty() {
                    return Err(RegistryError::Open {
                        path: String::new(),
                        reason: "the registry path is empty".into(),
                    });
                }
                Ok(RegistryPlace::File(PathBuf::from(path)))
            }
        }
    }

    /// The place as people are shown it: the file's path, or the redacted
    /// URL.
    pub fn shown(&self) -> String {
        match self {
            RegistryPlace::File(p) => p.display().to_string(),
            RegistryPlace::Postgres(url) => url.redacted().to_owned(),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            RegistryPlace::File(_) => Backend::Sqlite,
            RegistryPlace::Postgres(_) => Backend::Postgres,
        }
    }
}

impl std::fmt::Debug for RegistryPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

/// How long a registry write waits for another process's write lock.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The PostgreSQL advisory lock key every registry write takes ("TNRY" in
/// its high bytes); see [`Registry::write_tx`].
pub const REGISTRY_WRITE_LOCK: i64 = 0x544e_5259_0000_0001;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity(u64, u64);

#[cfg(unix)]
fn file_identity(path: &Path) -> std::io::Result<FileIdentity> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok(FileIdentity(m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_identity(path: &Path) -> std::io::Result<FileIdentity> {
    std::fs::metadata(path).map(|_| FileIdentity(0, 0))
}

/// Brings the registry's schema up to date. Another process may be doing
/// the same: a migration that lost that race finds the work done.
async fn run_migrations(
    pool: &AnyPool,
    backend: Backend,
    shown: &str,
) -> Result<(), RegistryError> {
    let migrator = match backend {
        Backend::Sqlite => &MIGRATOR,
        Backend::Postgres => &PG_MIGRATOR,
    };
    let mut last = None;
    for _ in 0..20 {
        match migrator.run(pool).await {
            Ok(()) => return Ok(()),
            Err(sqlx::migrate::MigrateError::VersionMissing(version)) => {
                return Err(RegistryError::TooNew {
                    path: shown.to_owned(),
                    version,
                })
            }
            Err(e) => {
                let busy = e.to_string().contains("locked") || e.to_string().contains("busy");
                if !busy {
                    return Err(RegistryError::Open {
                        path: shown.to_owned(),
                        reason: e.to_string(),
                    });
                }
                last = Some(e);
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    Err(RegistryError::Open {
        path: shown.to_owned(),
        reason: last.map(|e| e.to_string()).unwrap_or_default(),
    })
}

fn engine_str(e: Engine) -> &'static str {
    e.as_str()
}

pub(crate) fn parse_engine(s: &str) -> Engine {
    match s {
        "postgres" => Engine::Postgres,
        "mysql" => Engine::Mysql,
        _ => Engine::Sqlite,
    }
}

pub(crate) fn parse_status(s: &str) -> SchemaStatus {
    match s {
        "synced" => SchemaStatus::Synced,
        "customized" => SchemaStatus::Customized,
        "outdated" => SchemaStatus::Outdated,
        "failed" => SchemaStatus::Failed,
        _ => SchemaStatus::Unknown,
    }
}

impl Registry {
    /// Opens the existing registry at `path` and brings its schema up to
    /// date. A missing or empty (0-byte) file is an error: only an explicit
    /// first use ([`Registry::create`]) makes a registry, so a registry that
    /// was deleted or truncated is never silently replaced by an empty one.
    pub async fn open(path: &Path) -> Result<Self, RegistryError> {
        Self::open_file(path, false).await
    }

    /// Opens the registry at `path`, making a new one if there is no file
    /// there: for the first use (adding a tenant or template, the console's
    /// first start). An existing empty file is still refused.
    pub async fn create(path: &Path) -> Result<Self, RegistryError> {
        Self::open_file(path, true).await
    }

    /// [`Registry::open`] for a file or a PostgreSQL database. A database
    /// that holds no registry is refused as a missing file is.
    pub async fn open_at(place: RegistryPlace) -> Result<Self, RegistryError> {
        match place {
            RegistryPlace::File(path) => Self::open_file(&path, false).await,
            RegistryPlace::Postgres(url) => Self::open_postgres(url, false).await,
        }
    }

    /// [`Registry::create`] for a file or a PostgreSQL database: makes the
    /// registry's tables in an existing database that has none yet.
    pub async fn create_at(place: RegistryPlace) -> Result<Self, RegistryError> {
        match place {
            RegistryPlace::File(path) => Self::open_file(&path, true).await,
            RegistryPlace::Postgres(url) => Self::open_postgres(url, true).await,
        }
    }

    async fn open_file(path: &Path, create: bool) -> Result<Self, RegistryError> {
        sqlx::any::install_default_drivers();
        let shown = path.display().to_string();
        let open_err = |reason: String| RegistryError::Open {
            path: shown.clone(),
            reason,
        };
        let created = match std::fs::metadata(path) {
            Ok(m) if m.len() == 0 => return Err(RegistryError::Damaged {
                path: shown,
                reason:
                    "the file is empty (0 bytes): it was truncated, or its creation was interrupted"
                        .into(),
            }),
            Ok(m) if !m.is_file() => return Err(open_err("it is not a regular file".into())),
            Ok(_) => false,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !create {
                    return Err(RegistryError::Missing { path: shown });
                }
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
                }
                true
            }
            Err(e) => return Err(open_err(e.to_string())),
        };
        // SQLite's "not a database" and "malformed" mean the file's content
        // is damaged: say so, not merely that it could not be opened.
        let damaged_or = |reason: String| {
            if reason.contains("not a database") || reason.contains("malformed") {
                RegistryError::Damaged {
                    path: shown.clone(),
                    reason,
                }
            } else {
                open_err(reason)
            }
        };
        // One native connection first: the only one allowed to make the
        // file (the pool's never do, so a registry removed while in use is
        // an error, not a new empty file), and the one that puts the file
        // in WAL mode and finds a damaged file at once (the pool would
        // retry a failing connection until its timeout).
        let opts = connect_options(path).map_err(|e| open_err(e.to_string()))?;
        let c = opts
            .clone()
            .create_if_missing(created)
            .connect()
            .await
            .map_err(|e| damaged_or(e.to_string()))?;
        c.close().await.map_err(|e| open_err(e.to_string()))?;
        let any_opts = any_file_options(path).map_err(|e| open_err(e.to_string()))?;
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // What `connect_options` sets on a native connection
                    // and an `Any` URL cannot carry (the file is already in
                    // WAL mode, and foreign keys are on by default).
                    let busy = format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis());
                    conn.execute(busy.as_str()).await?;
                    Ok(())
                })
            })
            .connect_with(any_opts)
            .await
            .map_err(|e| damaged_or(e.to_string()))?;
        run_migrations(&pool, Backend::Sqlite, &shown)
            .await
            .map_err(|e| match e {
                RegistryError::Open { reason, .. } => damaged_or(reason),
                other => other,
            })?;
        let identity = file_identity(path).map_err(|e| open_err(e.to_string()))?;
        Self::opened(
            pool,
            RegistryPlace::File(path.to_owned()),
            Some(identity),
            created,
        )
        .await
    }

    async fn open_postgres(url: ConnectionUrl, create: bool) -> Result<Self, RegistryError> {
        sqlx::any::install_default_drivers();
        let shown = url.redacted().to_owned();
        let open_err = |reason: String| RegistryError::Open {
            path: shown.clone(),
            reason,
        };
        let opts = AnyConnectOptions::from_str(url.driver_secret().expose_secret())
            .map_err(|e| open_err(tenantry_introspect::redact(&e.to_string())))?
            .disable_statement_logging();
        // One connection first, with a deadline: a server that refuses or
        // is not there is said at once (the pool would retry it until its
        // acquire timeout).
        let probe = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            sqlx::AnyConnection::connect_with(&opts),
        )
        .await
        .map_err(|_| open_err("the server did not answer within 10 s".into()))?
        .map_err(|e| open_err(tenantry_introspect::redact(&e.to_string())))?;
        let _ = probe.close().await;
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(15))
            .connect_with(opts)
            .await
            .map_err(|e| open_err(tenantry_introspect::redact(&e.to_string())))?;
        let existing: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables
              WHERE table_schema = current_schema() AND table_name = 'registry_identity'",
        )
        .fetch_one(&pool)
        .await
        .map_err(|e| open_err(e.to_string()))?;
        if existing == 0 && !create {
            pool.close().await;
            return Err(RegistryError::Missing { path: shown });
        }
        // A member's own login may read the registry without owning its
        // tables (see `grants`): a registry already at this version is not
        // migrated again, which would need the owner's rights.
        let latest = PG_MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        let applied: i64 = if existing == 0 {
            0
        } else {
            sqlx::query_scalar(
                "SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success",
            )
            .fetch_one(&pool)
            .await
            .unwrap_or(0)
        };
        if applied != latest {
            run_migrations(&pool, Backend::Postgres, &shown).await?;
        }
        Self::opened(pool, RegistryPlace::Postgres(url), None, existing == 0).await
    }

    async fn opened(
        pool: AnyPool,
        place: RegistryPlace,
        identity: Option<FileIdentity>,
        created: bool,
    ) -> Result<Self, RegistryError> {
        let registry = Self {
            pool,
            backend: place.backend(),
            place,
            identity,
            journal_events: tokio::sync::broadcast::channel(256).0,
            caller: std::sync::Mutex::new(None),
        };
        if created {
            registry
                .audit(
                    None,
                    "registry.create",
                    &format!("new registry at {}", registry.place.shown()),
                    AuditResult::Ok,
                )
                .await?;
        }
        registry.fill_place_keys().await;
        Ok(registry)
    }

    /// Gives tenants registered before place keys existed their key (from
    /// the redacted location: no secret is needed). Best effort: a registry
    /// that cannot be written now is still readable, and the next writable
    /// open fills them.
    async fn fill_place_keys(&self) {
        let rows: Vec<(i64, String, Option<String>)> = match sqlx::query_as(
            "SELECT id, location, schema_name FROM tenants WHERE place_key IS NULL OR server IS NULL",
        )
        .fetch_all(&self.pool)
        .await
        {
            Ok(rows) if !rows.is_empty() => rows,
            _ => return,
        };
        let fill = async {
            let mut tx = self.write_tx().await?;
            for (id, location, schema) in &rows {
                let Ok(url) = ConnectionUrl::parse(location) else {
                    continue;
                };
                sqlx::query("UPDATE tenants SET place_key = $1, server = $2 WHERE id = $3")
                    .bind(url.place_key(schema.as_deref()))
                    .bind(url.server_key())
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, RegistryError>(())
        };
        if let Err(e) = fill.await {
            tracing::warn!(code = e.code(), "tenant place keys not filled yet");
        }
    }

    /// Tenants that share one schema with another tenant (registered before
    /// that was refused), as groups of slugs.
    pub async fn shared_places(&self) -> Result<Vec<Vec<String>>, RegistryError> {
        let rows: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT {} FROM (SELECT slug, place_key FROM tenants
              WHERE place_key IN (SELECT place_key FROM tenants WHERE place_key IS NOT NULL
                                   GROUP BY place_key HAVING count(*) > 1)
              ORDER BY place_key, slug) g GROUP BY place_key",
            self.backend.joined_slugs()
        ))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(g,)| g.split(' ').map(str::to_owned).collect())
            .collect())
    }

    /// Fails when the registry's file was removed or replaced since it was
    /// opened: writes would go to a file nobody will read again.
    fn check_file(&self) -> Result<(), RegistryError> {
        let (Some(identity), RegistryPlace::File(path)) = (self.identity, &self.place) else {
            return Ok(());
        };
        match file_identity(path) {
            Ok(id) if id == identity => Ok(()),
            _ => Err(RegistryError::Vanished {
                path: path.display().to_string(),
            }),
        }
    }

    /// A write transaction that holds the registry's one write lock from
    /// its start, waiting up to [`BUSY_TIMEOUT`] for another writer, so
    /// that what it read before writing is still true when it commits.
    ///
    /// SQLite: `BEGIN IMMEDIATE` (a deferred transaction that read first
    /// and then wanted to write would fail at once with "database is
    /// locked" when another process committed in between). PostgreSQL: a
    /// transaction-scoped advisory lock that every registry writer takes,
    /// on every console and CLI run sharing the database.
    pub(crate) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, RegistryError> {
        self.check_file()?;
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query(&format!(
                    "SET LOCAL lock_timeout = '{}s'",
                    BUSY_TIMEOUT.as_secs()
                ))
                .execute(&mut *tx)
                .await?;
                let _: i64 = sqlx::query_scalar(
                    "SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) AS locked",
                )
                .bind(REGISTRY_WRITE_LOCK)
                .fetch_one(&mut *tx)
                .await?;
                Ok(tx)
            }
        }
    }

    /// A read-only transaction that sees one snapshot of the registry from
    /// its first read to its end, on both backends (PostgreSQL's default,
    /// read committed, would take a new snapshot per statement).
    pub(crate) async fn read_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, RegistryError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin().await?,
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?
            }
        })
    }

    /// Where the registry lives (a file, or a PostgreSQL database).
    pub fn place(&self) -> &RegistryPlace {
        &self.place
    }

    /// The registry's file, for a SQLite registry.
    pub fn file(&self) -> Option<&Path> {
        match &self.place {
            RegistryPlace::File(path) => Some(path),
            RegistryPlace::Postgres(_) => None,
        }
    }

    /// [`RegistryPlace::shown`]: the path, or the redacted URL.
    pub fn shown(&self) -> String {
        self.place.shown()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The registry's id, which names its keyring entries.
    pub async fn registry_id(&self) -> Result<String, RegistryError> {
        Ok(
            sqlx::query_scalar("SELECT registry_id FROM registry_identity WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// The OS key store holding the registry's data key: the one recorded,
    /// the platform's default for a registry that has a key but predates
    /// the record, `None` for a registry with no key yet.
    pub async fn key_store(&self) -> Result<Option<KeyStoreKind>, RegistryError> {
        let (recorded, has_key): (Option<String>, i64) = sqlx::query_as(
            "SELECT key_store, CASE WHEN EXISTS (SELECT 1 FROM vault_meta) THEN 1 ELSE 0 END
               FROM registry_identity WHERE id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        match recorded {
            Some(name) => {
                KeyStoreKind::parse(&name)
                    .map(Some)
                    .ok_or_else(|| RegistryError::InvalidInput {
                        field: "registry_identity.key_store",
                        reason: format!(
                        "the registry records an unknown key store `{name}`; use a newer Tenantry"
                    ),
                    })
            }
            None if has_key != 0 => Ok(Some(KeyStoreKind::platform_default())),
            None => Ok(None),
        }
    }

    async fn record_key_store(&self, kind: KeyStoreKind) -> Result<(), RegistryError> {
        sqlx::query("UPDATE registry_identity SET key_store = $1 WHERE id = 1")
            .bind(kind.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The text of an escrow file holding the registry's data key sealed
    /// under `passphrase`. Audited (the key's id, never the key).
    pub async fn export_key(
        &self,
        vault: &Vault,
        passphrase: &secrecy::SecretString,
    ) -> Result<String, RegistryError> {
        self.authorize(crate::Action::Keys).await?;
        let text = vault.escrow(&self.registry_id().await?, passphrase)?;
        self.audit(
            None,
            "key.export",
            &format!("data key {} sealed into an escrow file", vault.key_id()),
            AuditResult::Ok,
        )
        .await?;
        Ok(text)
    }

    /// Places the key sealed in an escrow file into `keys` (read back to
    /// check it persisted) and records that store as the registry's. The key
    /// must be this registry's: its id and key check must match, or nothing
    /// is written. Audited either way.
    pub async fn import_key(
        &self,
        keys: &dyn KeyStore,
        escrow_text: &str,
        passphrase: &secrecy::SecretString,
    ) -> Result<Vault, RegistryError> {
        self.authorize(crate::Action::Keys).await?;
        let result = self.import_key_inner(keys, escrow_text, passphrase).await;
        let (detail, outcome) = match &result {
            Ok(v) => (
                format!(
                    "data key {} loaded from an escrow file into {}",
                    v.key_id(),
                    keys.describe()
                ),
                AuditResult::Ok,
            ),
            Err(e) => (e.to_string(), AuditResult::Failed),
        };
        self.audit(None, "key.import", &detail, outcome).await?;
        result
    }

    async fn import_key_inner(
        &self,
        keys: &dyn KeyStore,
        escrow_text: &str,
        passphrase: &secrecy::SecretString,
    ) -> Result<Vault, RegistryError> {
        let registry_id = self.registry_id().await?;
        let header = tenantry_vault::escrow::read_header(escrow_text)?;
        if header.registry_id != registry_id {
            return Err(RegistryError::InvalidInput {
                field: "escrow file",
                reason: format!(
                    "it holds the key of registry {}, and this registry is {registry_id}; import the file made for this registry",
                    header.registry_id
                ),
            });
        }
        let meta: Option<(String, Vec<u8>)> =
            sqlx::query_as("SELECT key_id, key_check FROM vault_meta WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?;
        let Some((key_id, check)) = meta else {
            return Err(RegistryError::InvalidInput {
                field: "escrow file",
                reason: "this registry has no data key yet, so no escrowed key can be its key"
                    .into(),
            });
        };
        if key_id != header.key_id.to_string() {
            return Err(RegistryError::InvalidInput {
                field: "escrow file",
                reason: format!(
                    "it holds data key {}, and the registry's current key is {key_id} (the key was rotated since); export the current key after each rotation",
                    header.key_id
                ),
            });
        }
        let (_, key) = tenantry_vault::escrow::open(escrow_text, passphrase)?;
        let vault = Vault::new(DataKey::from_stored(&key.to_stored())?);
        vault
            .verify_key_check(&check)
            .map_err(|reason| OpenError::WrongKey {
                store: "the escrow file".into(),
                entry: format!("key {key_id}"),
                reason,
            })?;
        let entry = KeyEntry::for_key(&registry_id, key.id());
        // An entry that already opens the registry stays as it is; one that
        // is missing, unreadable or holds another key gets the verified key.
        let present = match keys.load(&entry) {
            Ok(Some(k)) => Vault::new(k).verify_key_check(&check).is_ok(),
            _ => false,
        };
        if !present {
            save_verified(keys, &entry, &key)?;
        }
        if let Some(kind) = keys.kind() {
            self.record_key_store(kind).await?;
        }
        Ok(vault)
    }

    /// The keyring entry holding the data key `key`.
    pub async fn key_entry(&self, key: KeyId) -> Result<KeyEntry, RegistryError> {
        Ok(KeyEntry::for_key(&self.registry_id().await?, key))
    }

    /// Opens the vault with the data key in `keys`. On a registry that holds
    /// no encrypted data yet, a new key is made in a new entry of its own and
    /// its key check recorded; in every other case the registry's key must
    /// open its data, or nothing happens.
    pub async fn open_vault(&self, keys: &dyn KeyStore) -> Result<Vault, RegistryError> {
        let result = self.open_vault_inner(keys).await;
        if let Err(e) = &result {
            // A keyring refusal is a refusal like any other: recorded, once
            // per run of identical failures (the console asks on every
            // screen). The original error matters more than a failure to
            // log it.
            let detail = escape_controls(&e.to_string());
            let last: Option<(String, String)> =
                sqlx::query_as("SELECT action, detail FROM audit_log ORDER BY id DESC LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await
                    .unwrap_or(None);
            if last != Some(("key.open".to_owned(), detail)) {
                let _ = self
                    .audit(None, "key.open", &e.to_string(), AuditResult::Failed)
                    .await;
            }
        }
        result
    }

    async fn open_vault_inner(&self, keys: &dyn KeyStore) -> Result<Vault, RegistryError> {
        let registry_id = self.registry_id().await?;
        let meta: Option<(String, Vec<u8>)> =
            sqlx::query_as("SELECT key_id, key_check FROM vault_meta WHERE id = 1")
                .fetch_optional(&self.pool)
                .await?;
        let record = match &meta {
            Some((key_id, check)) => Some(KeyRecord {
                key_id: KeyId::from_hex(key_id).ok_or_else(|| RegistryError::InvalidInput {
                    field: "vault_meta.key_id",
                    reason: "the registry's record of its data key is damaged".into(),
                })?,
                check,
            }),
            None => {
                let encrypted: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
                    .fetch_one(&self.pool)
                    .await?;
                if encrypted > 0 {
                    return Err(OpenError::KeyMissing {
                        store: keys.describe(),
                        entry: "(the registry's key check is missing)".into(),
                    }
                    .into());
                }
                None
            }
        };
        let key_id = record.as_ref().map(|r| r.key_id);
        let check = record.as_ref().map(|r| r.check.to_vec());
        // On a shared registry, a member opens the data key wrapped for
        // them, with their member key from their own store.
        let as_member = || async {
            let members = self.member_count().await?;
            match (key_id, &check, members > 0) {
                (Some(key_id), Some(check), true) => {
                    let key = self
                        .open_as_member(keys, &registry_id, key_id, members)
                        .await?;
                    let vault = Vault::new(key);
                    vault
                        .verify_key_check(check)
                        .map_err(|reason| OpenError::WrongKey {
                            store: "this registry's members".into(),
                            entry: format!("the data key wrapped for you (key {key_id})"),
                            reason,
                        })?;
                    Ok(Some(vault))
                }
                _ => Ok::<_, RegistryError>(None),
            }
        };
        if let (Some(recorded), Some(chosen)) = (self.key_store().await?, keys.kind()) {
            if recorded != chosen {
                // The store recorded is the one holding the registry's own
                // data key; a member may keep their member key elsewhere (a
                // server's kernel keyring).
                return match as_member().await? {
                    Some(vault) => Ok(vault),
                    None => Err(OpenError::StoreMismatch { recorded, chosen }.into()),
                };
            }
        }
        let opened = match open_vault(keys, &registry_id, record) {
            Err(OpenError::KeyMissing { store, entry }) => {
                return match as_member().await? {
                    Some(vault) => Ok(vault),
                    None => Err(OpenError::KeyMissing { store, entry }.into()),
                };
            }
            other => other?,
        };
        if opened.created {
            if let Some(kind) = keys.kind() {
                self.record_key_store(kind).await?;
            }
            sqlx::query(
                "INSERT INTO vault_meta (id, key_id, key_check) VALUES (1, $1, $2)
                 ON CONFLICT (id) DO UPDATE SET key_id = excluded.key_id, key_check = excluded.key_check",
            )
            .bind(opened.vault.key_id().to_string())
            .bind(opened.vault.key_check()?)
            .execute(&self.pool)
            .await?;
        }
        if let Some(from) = &opened.migrated_from {
            self.audit(
                None,
                "key.migrate",
                &format!(
                    "the data key {} was copied from the shared keyring entry {from} into this registry's own entry {}; the shared entry was left for other registries",
                    opened.vault.key_id(),
                    opened.entry
                ),
                AuditResult::Ok,
            )
            .await?;
        }
        Ok(opened.vault)
    }

    /// Appends to the audit log: the OS account and host, the tenant's slug
    /// and id, and the chain hashes (see [`Registry::verify_audit`]). Control
    /// characters in the texts are escaped, so no row can forge another.
    pub async fn audit(
        &self,
        tenant: Option<&str>,
        action: &str,
        detail: &str,
        result: AuditResult,
    ) -> Result<(), RegistryError> {
        // The write lock first: rows are chained one after another.
        let mut tx = self.write_tx().await?;
        audit_in(&mut tx, &self.actor_name(), tenant, action, detail, result).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks the audit log's hash chain from its first chained row to its
    /// last: every row's hash must match its content and the next row must
    /// name it as its predecessor. Rows from before the chain existed are
    /// counted, not checked.
    pub async fn verify_audit(&self) -> Result<AuditVerification, RegistryError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, host, tenant_slug, tenant_id, action, detail, result, prev_hash, row_hash
               FROM audit_log ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut report = AuditVerification::default();
        let mut prev: Option<String> = None;
        for r in &rows {
            let row = AuditRow {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                actor: r.try_get("actor")?,
                host: r.try_get("host")?,
                tenant_slug: r.try_get("tenant_slug")?,
                tenant_id: r.try_get("tenant_id")?,
                action: r.try_get("action")?,
                detail: r.try_get("detail")?,
                result: r.try_get("result")?,
                prev_hash: r.try_get("prev_hash")?,
            };
            let stored: Option<String> = r.try_get("row_hash")?;
            let broken = |why: String| AuditBreak { id: row.id, why };
            match (&stored, &prev) {
                (None, None) => {
                    report.unchained += 1;
                    continue;
                }
                (None, Some(_)) => {
                    report.broken =
                        Some(broken("the row has no hash, after the chain began".into()));
                    break;
                }
                (Some(stored), _) => {
                    let expected_prev =
                        prev.clone().unwrap_or_else(|| AUDIT_CHAIN_START.to_owned());
                    if row.prev_hash.as_deref() != Some(expected_prev.as_str()) {
                        report.broken = Some(broken(
                            "it does not follow the row before it: a row was removed, inserted or changed".into(),
                        ));
                        break;
                    }
                    if *stored != row.hash() {
                        report.broken = Some(broken(
                            "its content does not match its hash: the row was edited".into(),
                        ));
                        break;
                    }
                    report.chained += 1;
                    prev = Some(stored.clone());
                }
            }
        }
        report.head = prev;
        Ok(report)
    }

    /// Records a refusal or failure of `action` and hands the error back.
    async fn audited<T>(
        &self,
        tenant: Option<&str>,
        action: &str,
        result: Result<T, RegistryError>,
    ) -> Result<T, RegistryError> {
        if let Err(e) = &result {
            let outcome = match e {
                RegistryError::Database { .. }
                | RegistryError::Vault(_)
                | RegistryError::KeyStore(_)
                | RegistryError::Introspect(_) => AuditResult::Failed,
                _ => AuditResult::Refused,
            };
            // The original error matters more than a failure to log it.
            let _ = self.audit(tenant, action, &e.to_string(), outcome).await;
        }
        result
    }

    /// Adds a tenant: validates everything first, then stores it with its
    /// connection string encrypted for its id, in one transaction.
    pub async fn add_tenant(
        &self,
        vault: &Vault,
        new: NewTenant,
    ) -> Result<TenantRecord, RegistryError> {
        self.authorize(crate::Action::Tenants).await?;
        let slug_text = new.slug.clone();
        let result = self.add_tenant_inner(vault, new).await;
        let result = self.audited(Some(&slug_text), "tenant.add", result).await?;
        self.audit(
            Some(&result.slug),
            "tenant.add",
            &format!("{} tenant at {}", result.engine, result.location),
            AuditResult::Ok,
        )
        .await?;
        Ok(result)
    }

    async fn add_tenant_inner(
        &self,
        vault: &Vault,
        new: NewTenant,
    ) -> Result<TenantRecord, RegistryError> {
        let mut tx = self.write_tx().await?;
        let slug = insert_tenant(&mut tx, vault, new).await?;
        tx.commit().await?;
        self.tenant(slug.as_str()).await
    }

    /// Every tenant, by slug.
    pub async fn list_tenants(&self) -> Result<Vec<TenantRecord>, RegistryError> {
        use futures_util::TryStreamExt;
        self.tenants_by_slug().try_collect().await
    }

    /// Every tenant, by slug, as the registry reads them, from one snapshot:
    /// a fleet of 100,000 is listed without holding it in memory.
    ///
    /// Read [`CHUNK`] tenants at a time ([`tenant_chunk`]): on SQLite each
    /// chunk is one JSON value SQLite builds (a row at a time costs a
    /// hand-off between SQLite's worker thread and this task per tenant,
    /// which was most of the time of a 100,000-tenant listing); on
    /// PostgreSQL plain rows, which it sends faster than it builds JSON.
    pub fn tenants_by_slug(
        &self,
    ) -> impl futures_util::Stream<Item = Result<TenantRecord, RegistryError>> + Send + '_ {
        use futures_util::{stream, StreamExt, TryStreamExt};
        let start: Option<(sqlx::Transaction<'static, sqlx::Any>, String)> = None;
        let chunk = tenant_chunk(self.backend);
        stream::try_unfold((start, false), move |(state, done)| {
            let chunk = chunk.clone();
            async move {
                if done {
                    return Ok::<_, RegistryError>(None);
                }
                let (mut tx, after) = match state {
                    Some(s) => s,
                    None => (self.read_tx().await?, String::new()),
                };
                let records = match self.backend {
                    Backend::Sqlite => {
                        let json: String = sqlx::query_scalar(&chunk)
                            .bind(&after)
                            .bind(CHUNK)
                            .fetch_one(&mut *tx)
                            .await?;
                        let mut rows: Vec<StoredTenant> =
                            serde_json::from_str(&json).map_err(|e| RegistryError::Database {
                                reason: format!("a tenant row could not be read: {e}"),
                            })?;
                        rows.sort_unstable_by(|a, b| a.slug.cmp(&b.slug));
                        rows.into_iter().map(StoredTenant::into_record).collect()
                    }
                    Backend::Postgres => sqlx::query(&chunk)
                        .bind(&after)
                        .bind(CHUNK)
                        .fetch_all(&mut *tx)
                        .await?
                        .iter()
                        .map(record_from_row)
                        .collect::<Result<Vec<_>, _>>()?,
                };
                let last = records.len() < CHUNK as usize;
                let next = match records.last() {
                    Some(r) if !last => Some((tx, r.slug.clone())),
                    _ => None,
                };
                let records: Vec<Result<TenantRecord, RegistryError>> =
                    records.into_iter().map(Ok).collect();
                Ok(Some((stream::iter(records), (next, last))))
            }
        })
        .try_flatten()
        .boxed()
    }

    /// Every tenant's server (`postgres://host:port`, `mysql://host:port`,
    /// `sqlite:<dir>`), by slug: what `scan --shard` splits the fleet by.
    /// One JSON value from SQLite, not a row per tenant.
    pub async fn servers_by_slug(
        &self,
    ) -> Result<std::collections::HashMap<String, String>, RegistryError> {
        let json: String = sqlx::query_scalar(match self.backend {
            Backend::Sqlite => "SELECT json_group_object(slug, COALESCE(server, '')) FROM tenants",
            Backend::Postgres => {
                "SELECT CAST(COALESCE(json_object_agg(slug, COALESCE(server, '')), '{}') AS text) FROM tenants"
            }
        })
        .fetch_one(&self.pool)
        .await?;
        serde_json::from_str(&json).map_err(|e| RegistryError::Database {
            reason: format!("the tenants' servers could not be read: {e}"),
        })
    }

    pub async fn tenant(&self, slug: &str) -> Result<TenantRecord, RegistryError> {
        let row = sqlx::query(&format!(
            "{} WHERE t.slug = $1",
            tenant_select(self.backend)
        ))
        .bind(slug)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| RegistryError::TenantNotFound {
            slug: slug.to_owned(),
        })?;
        record_from_row(&row)
    }

    /// Removes a tenant from the registry (its database is not touched).
    pub async fn remove_tenant(&self, slug: &str) -> Result<(), RegistryError> {
        self.remove_tenant_as(
            slug,
            "tenant.remove",
            "removed from the registry; its database was not touched",
        )
        .await
    }

    /// [`Registry::remove_tenant`], audited as `action` with `detail`.
    pub async fn remove_tenant_as(
        &self,
        slug: &str,
        action: &str,
        detail: &str,
    ) -> Result<(), RegistryError> {
        self.authorize(crate::Action::Tenants).await?;
        let result = async {
            // The removal and its audit row commit together: no removal
            // goes unrecorded, whatever happens to the process.
            let mut tx = self.write_tx().await?;
            let done = sqlx::query("DELETE FROM tenants WHERE slug = $1")
                .bind(slug)
                .execute(&mut *tx)
                .await?;
            tenant_touched(&done, slug)?;
            // After the DELETE, so the row names the slug alone, as rows
            // about a tenant that is gone do (`audit_log` finds it by slug).
            audit_in(
                &mut tx,
                &self.actor_name(),
                Some(slug),
                action,
                detail,
                AuditResult::Ok,
            )
            .await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        self.audited(Some(slug), action, result).await
    }

    /// Adds a domain to a tenant; a domain another tenant owns is refused,
    /// naming the owner.
    pub async fn add_domain(&self, slug: &str, domain: &str) -> Result<(), RegistryError> {
        self.authorize(crate::Action::Tenants).await?;
        let result = async {
            let d = Domain::parse(domain)?;
            let id = self.tenant(slug).await?.id;
            let owner: Option<String> = sqlx::query_scalar(
                "SELECT t.slug FROM tenant_domains d JOIN tenants t ON t.id = d.tenant_id WHERE d.domain = $1",
            )
            .bind(d.as_str())
            .fetch_optional(&self.pool)
            .await?;
            match owner {
                Some(o) if o == slug => Ok(d),
                Some(owner) => Err(RegistryError::DomainTaken {
                    domain: d.to_string(),
                    owner,
                }),
                None => {
                    sqlx::query("INSERT INTO tenant_domains (domain, tenant_id) VALUES ($1, $2)")
                        .bind(d.as_str())
                        .bind(id)
                        .execute(&self.pool)
                        .await?;
                    Ok(d)
                }
            }
        }
        .await;
        let d = self
            .audited(Some(slug), "tenant.domain.add", result)
            .await?;
        self.audit(Some(slug), "tenant.domain.add", d.as_str(), AuditResult::Ok)
            .await
    }

    /// The tenant's decrypted connection URL, as a typed secret.
    pub async fn connection(
        &self,
        vault: &Vault,
        slug: &str,
    ) -> Result<ConnectionUrl, RegistryError> {
        let row: Option<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT id, connection_ct FROM tenants WHERE slug = $1")
                .bind(slug)
                .fetch_optional(&self.pool)
                .await?;
        let (id, ct) = row.ok_or_else(|| RegistryError::TenantNotFound {
            slug: slug.to_owned(),
        })?;
        let plain = decrypt_connection(vault, id, &ct, slug)?;
        Ok(ConnectionUrl::parse(plain.expose_secret())?)
    }

    /// Re-encrypts every tenant's connection string under a new data key.
    ///
    /// Crash safety: the new key is stored (and read back) in a new keyring
    /// entry of its own; the registry is re-encrypted and switched to it in
    /// one transaction. A crash before the commit leaves the registry on the
    /// old key; after it, on the new one. No entry is ever overwritten: the
    /// previous key stays in its entry, so a copy or backup of this registry
    /// file made before the rotation still opens, and no other registry's
    /// key can be touched.
    pub async fn rotate_key(
        &self,
        keys: &dyn KeyStore,
        old: &Vault,
    ) -> Result<(Vault, usize), RegistryError> {
        self.authorize(crate::Action::Keys).await?;
        let result = self.rotate_key_inner(keys, old, None).await;
        let (vault, n, members) = self.audited(None, "key.rotate", result).await?;
        let entry = self.key_entry(vault.key_id()).await?;
        self.audit(
            None,
            "key.rotate",
            &format!(
                "{n} connection strings re-encrypted under key {} (entry {}), wrapped for {members} members; the previous key {} stays in its own entry for copies of the registry made before",
                vault.key_id(),
                entry,
                old.key_id()
            ),
            AuditResult::Ok,
        )
        .await?;
        Ok((vault, n))
    }

    /// Rotates the data key; with `remove`, that member is removed in the
    /// same transaction and the new key is wrapped for the others only.
    /// Returns the new vault, the connection strings re-encrypted and the
    /// members the new key was wrapped for.
    pub(crate) async fn rotate_key_inner(
        &self,
        keys: &dyn KeyStore,
        old: &Vault,
        remove: Option<&str>,
    ) -> Result<(Vault, usize, usize), RegistryError> {
        let registry_id = self.registry_id().await?;
        let next = DataKey::generate();
        let entry = KeyEntry::for_key(&registry_id, next.id());
        save_verified(keys, &entry, &next)?;
        let new = Vault::new(next);
        let outcome = async {
            let mut tx = self.write_tx().await?;
            members::current_key(&mut tx, old.key_id()).await?;
            if let Some(name) = remove {
                members::delete_member(&mut tx, name).await?;
            }
            let wrapped = members::rewrap_all(&mut tx, &registry_id, &new).await?;
            let rows: Vec<(i64, String, Vec<u8>)> =
                sqlx::query_as("SELECT id, slug, connection_ct FROM tenants ORDER BY id")
                    .fetch_all(&mut *tx)
                    .await?;
            for (id, slug, ct) in &rows {
                let plain = decrypt_connection(old, *id, ct, slug)?;
                let re = new.encrypt(*id, &plain)?;
                sqlx::query(&format!(
                    "UPDATE tenants SET connection_ct = $1, updated_at = {now} WHERE id = $2",
                    now = self.backend.now()
                ))
                .bind(re)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(&format!(
                "INSERT INTO vault_meta (id, key_id, key_check, rotated_at)
                 VALUES (1, $1, $2, {now})
                 ON CONFLICT (id) DO UPDATE SET key_id = excluded.key_id,
                     key_check = excluded.key_check, rotated_at = excluded.rotated_at",
                now = self.backend.now()
            ))
            .bind(new.key_id().to_string())
            .bind(new.key_check()?)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<(usize, usize), RegistryError>((rows.len(), wrapped))
        }
        .await;
        match outcome {
            Ok((n, wrapped)) => Ok((new, n, wrapped)),
            Err(e) => {
                // The registry still uses the old key; the new entry is void.
                let _ = keys.delete(&entry);
                Err(e)
            }
        }
    }

    /// Moves the tenant's record to another template version (after an
    /// upgrade): a new revision, so an edit made before it cannot put the
    /// old version back.
    pub async fn set_template_version(
        &self,
        slug: &str,
        version: &str,
    ) -> Result<(), RegistryError> {
        self.authorize(crate::Action::Upgrade).await?;
        let done = sqlx::query(&format!(
            "UPDATE tenants SET template_version = $2, updated_at = {now}, revision = revision + 1
              WHERE slug = $1",
            now = self.backend.now()
        ))
        .bind(slug)
        .bind(version)
        .execute(&self.pool)
        .await?;
        tenant_touched(&done, slug)
    }

    /// Records `hash` as the tenant's accepted customisation, with a note
    /// saying why, so scans stop alerting on it while it stays unchanged.
    pub async fn accept_baseline(
        &self,
        slug: &str,
        hash: &str,
        note: &str,
    ) -> Result<(), RegistryError> {
        self.authorize(crate::Action::Accept).await?;
        let result = async {
            if note.trim().is_empty() || note.chars().count() > 1000 {
                return Err(RegistryError::InvalidInput {
                    field: "note",
                    reason: "say in 1–1000 characters why this customisation is accepted".into(),
                });
            }
            let done = sqlx::query(&format!(
                "UPDATE tenants SET accepted_hash = $2, accepted_note = $3,
                        accepted_at = {now} WHERE slug = $1",
                now = self.backend.now()
            ))
            .bind(slug)
            .bind(hash)
            .bind(note.trim())
            .execute(&self.pool)
            .await?;
            tenant_touched(&done, slug)
        }
        .await;
        self.audited(Some(slug), "baseline.accept", result).await?;
        self.audit(
            Some(slug),
            "baseline.accept",
            &format!("{hash}: {}", note.trim()),
            AuditResult::Ok,
        )
        .await
    }

    /// The newest audit entries, optionally for one tenant.
    pub async fn audit_log(
        &self,
        slug: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, RegistryError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, host, tenant_slug, action, detail, result FROM audit_log
              WHERE $1 IS NULL
                 OR tenant_id = (SELECT id FROM tenants WHERE slug = $1)
                 OR (tenant_id IS NULL AND tenant_slug = $1
                     AND NOT EXISTS (SELECT 1 FROM tenants t WHERE t.slug = $1
                                      AND t.created_at > audit_log.at))
              ORDER BY id DESC LIMIT $2",
        )
        .bind(slug)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    host: r.try_get("host")?,
                    tenant_slug: r.try_get("tenant_slug")?,
                    action: r.try_get("action")?,
                    detail: r.try_get("detail")?,
                    result: AuditResult::parse(&r.try_get::<String, _>("result")?),
                })
            })
            .collect()
    }

    /// Closes the registry and folds its write-ahead log into the file, so
    /// a closed registry is one file again (to copy, back up or move).
    ///
    /// The pool closes its connections at once, and SQLite removes the WAL
    /// only when a closing connection knows it is the last: two closing
    /// together can both miss it and leave the WAL behind. One more
    /// connection, alone, checkpoints and settles it. Another process still
    /// using the registry keeps the WAL, as it must; a registry removed
    /// meanwhile is not recreated (`create_if_missing(false)`).
    pub async fn close(self) {
        self.pool.close().await;
        let RegistryPlace::File(path) = &self.place else {
            return;
        };
        let Ok(opts) = connect_options(path) else {
            return;
        };
        let opts = opts
            .create_if_missing(false)
            .busy_timeout(std::time::Duration::from_secs(1));
        if let Ok(mut c) = opts.connect().await {
            let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut c)
                .await;
            let _ = c.close().await;
        }
    }
}

/// The native connections to the registry file: the one that creates and
/// checks it on open, the one that folds the WAL in on close (the pool's
/// are [`any_file_options`]).
fn connect_options(path: &Path) -> Result<SqliteConnectOptions, sqlx::Error> {
    Ok(SqliteConnectOptions::from_str("sqlite://")?
        .filename(path)
        .foreign_keys(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(BUSY_TIMEOUT)
        .disable_statement_logging())
}

/// The pool's connections to a registry file, through sqlx's `Any` driver
/// (the statements are shared with PostgreSQL). The path is
/// percent-encoded whole, so no character of it is read as URL syntax.
fn any_file_options(path: &Path) -> Result<AnyConnectOptions, sqlx::Error> {
    let absolute = std::path::absolute(path)?;
    let text = absolute
        .to_str()
        .ok_or_else(|| sqlx::Error::Configuration("the registry path is not valid UTF-8".into()))?;
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'/')
        .remove(b'-')
        .remove(b'_')
        .remove(b'.');
    let encoded = percent_encoding::utf8_percent_encode(text, KEEP);
    Ok(AnyConnectOptions::from_str(&format!("sqlite://{encoded}"))?.disable_statement_logging())
}

/// What `prev_hash` of the first chained audit row holds.
const AUDIT_CHAIN_START: &str = "tenantry.audit.chain-start";

/// One audit row as it is hashed.
struct AuditRow {
    id: i64,
    at: String,
    actor: String,
    host: Option<String>,
    tenant_slug: Option<String>,
    tenant_id: Option<i64>,
    action: String,
    detail: String,
    result: String,
    prev_hash: Option<String>,
}

impl AuditRow {
    /// SHA-256 over a versioned, length-prefixed encoding of every field,
    /// the predecessor's hash included; hex.
    fn hash(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"tenantry.audit-row.v1\0");
        let mut text = |s: Option<&str>| match s {
            None => h.update([0u8]),
            Some(s) => {
                h.update([1u8]);
                h.update((s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
        };
        text(self.prev_hash.as_deref());
        text(Some(&self.id.to_string()));
        text(Some(&self.at));
        text(Some(&self.actor));
        text(self.host.as_deref());
        text(self.tenant_slug.as_deref());
        text(self.tenant_id.map(|i| i.to_string()).as_deref());
        text(Some(&self.action));
        text(Some(&self.detail));
        text(Some(&self.result));
        hex::encode(h.finalize())
    }
}

/// The outcome of [`Registry::verify_audit`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditVerification {
    /// Rows whose hashes and links check out.
    pub chained: u64,
    /// Rows from before the chain existed (not checkable).
    pub unchained: u64,
    /// The last good row's hash: note it down to detect a cut-off tail later.
    pub head: Option<String>,
    /// The first row where the chain breaks.
    pub broken: Option<AuditBreak>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditBreak {
    pub id: i64,
    pub why: String,
}

/// Validates `new` and inserts it inside the caller's transaction; its
/// connection string is encrypted for the new row's id.
/// A new or updated tenant's fields, checked: everything but conflicts
/// with other tenants, which need the registry.
pub(crate) struct CheckedTenant {
    pub slug: Slug,
    pub name: String,
    pub domains: Vec<Domain>,
    pub engine: Engine,
    pub schema: Option<String>,
    pub isolation: Isolation,
    pub place: String,
    /// The server it lives on (`ConnectionUrl::server_key`).
    pub server: String,
}

pub(crate) fn check_tenant(new: &NewTenant) -> Result<CheckedTenant, RegistryError> {
    let slug = Slug::parse(&new.slug)?;
    let name = display_name(&new.display_name)?;
    let domains = new
        .domains
        .iter()
        .map(|d| Domain::parse(d))
        .collect::<Result<Vec<_>, _>>()?;
    let engine = new.url.engine();
    let schema = new.schema.clone().filter(|s| !s.is_empty());
    if let Some(s) = &schema {
        if s.contains('\0') || s.len() > 63 {
            return Err(RegistryError::InvalidInput {
                field: "schema",
                reason: format!(
                    "{} is not a valid schema name (at most 63 bytes, no NUL)",
                    validate::shown(s)
                ),
            });
        }
        if engine == Engine::Sqlite {
            return Err(RegistryError::InvalidInput {
                field: "schema",
                reason: "a SQLite tenant is one file and has no schema to choose".into(),
            });
        }
    }
    let isolation = match (engine, schema.as_deref()) {
        (Engine::Postgres, Some(s)) if s != "public" => Isolation::Schema,
        _ => Isolation::Database,
    };
    if engine == Engine::Mysql && schema.is_none() && new.url.database().is_none() {
        return Err(RegistryError::InvalidInput {
            field: "url",
            reason: "a MySQL/MariaDB tenant needs its database in the URL path or --schema".into(),
        });
    }
    for (field, value) in [
        ("template", &new.template),
        ("template version", &new.template_version),
    ] {
        if let Some(v) = value {
            if v.is_empty() || v.len() > 100 || v.chars().any(char::is_control) {
                return Err(RegistryError::InvalidInput {
                    field,
                    reason: format!("{} must be 1–100 printable characters", validate::shown(v)),
                });
            }
        }
    }
    let place = new.url.place_key(schema.as_deref());
    Ok(CheckedTenant {
        slug,
        name,
        domains,
        engine,
        schema,
        isolation,
        place,
        server: new.url.server_key(),
    })
}

/// A domain of `domains` another tenant than `id` (any, for `None`)
/// already answers on, or the place (database, schema, file) another
/// tenant already has: refused, naming the owner.
pub(crate) async fn check_conflicts(
    tx: &mut sqlx::AnyConnection,
    checked: &CheckedTenant,
    url: &ConnectionUrl,
    id: Option<i64>,
) -> Result<(), RegistryError> {
    let me = id.unwrap_or(-1);
    for d in &checked.domains {
        let owner: Option<String> = sqlx::query_scalar(
            "SELECT t.slug FROM tenant_domains d JOIN tenants t ON t.id = d.tenant_id
              WHERE d.domain = $1 AND t.id <> $2",
        )
        .bind(d.as_str())
        .bind(me)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(owner) = owner {
            return Err(RegistryError::DomainTaken {
                domain: d.to_string(),
                owner,
            });
        }
    }
    let owner: Option<String> =
        sqlx::query_scalar("SELECT slug FROM tenants WHERE place_key = $1 AND id <> $2")
            .bind(&checked.place)
            .bind(me)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(owner) = owner {
        let where_ = match (&checked.schema, checked.engine) {
            (_, Engine::Sqlite) => format!("the file {}", url.server_label()),
            (Some(s), _) => format!("schema {} on {}", validate::shown(s), url.server_label()),
            (None, _) => format!("the database {}", url.server_label()),
        };
        return Err(RegistryError::PlaceTaken {
            place: escape_controls(&where_),
            owner,
        });
    }
    Ok(())
}

pub(crate) async fn insert_tenant(
    tx: &mut sqlx::AnyConnection,
    vault: &Vault,
    new: NewTenant,
) -> Result<Slug, RegistryError> {
    let checked = check_tenant(&new)?;
    let slug = &checked.slug;
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM tenants WHERE slug = $1")
        .bind(slug.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_some() {
        return Err(RegistryError::DuplicateSlug {
            slug: slug.to_string(),
        });
    }
    check_conflicts(&mut *tx, &checked, &new.url, None).await?;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO tenants (id, slug, display_name, engine, isolation, schema_name, location,
                              connection_ct, template, template_version, notes, place_key, server)
         VALUES ((SELECT MAX(m) + 1 FROM (SELECT COALESCE(MAX(id), 0) AS m FROM tenants
                                          UNION ALL SELECT COALESCE(MAX(id), 0) FROM tenant_ids_used) AS ids),
                 $1, $2, $3, $4, $5, $6, $12, $7, $8, $9, $10, $11) RETURNING id",
    )
    .bind(slug.as_str())
    .bind(&checked.name)
    .bind(engine_str(checked.engine))
    .bind(checked.isolation.as_str())
    .bind(&checked.schema)
    .bind(new.url.redacted())
    .bind(&new.template)
    .bind(&new.template_version)
    .bind(&new.notes)
    .bind(&checked.place)
    .bind(&checked.server)
    .bind(Vec::<u8>::new())
    .fetch_one(&mut *tx)
    .await?;
    let ct = vault.encrypt(id, &url_secret(&new.url))?;
    sqlx::query("UPDATE tenants SET connection_ct = $1 WHERE id = $2")
        .bind(ct)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    insert_domains(&mut *tx, id, checked.domains.iter().map(Domain::as_str)).await?;
    Ok(checked.slug)
}

/// Records the domains tenant `id` answers on (checked by
/// [`check_conflicts`] first).
pub(crate) async fn insert_domains(
    tx: &mut sqlx::AnyConnection,
    id: i64,
    domains: impl Iterator<Item = &str>,
) -> Result<(), RegistryError> {
    for d in domains {
        sqlx::query("INSERT INTO tenant_domains (domain, tenant_id) VALUES ($1, $2)")
            .bind(d)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

impl TenantRecord {
    /// Where the tenant's schema lives, short, for people beside its slug:
    /// `schema tenant_42`, `database pgt_0001`, or the SQLite file. Never
    /// anything secret: it is read from the redacted location.
    pub fn place(&self) -> String {
        if let Some(s) = &self.schema_name {
            if self.isolation == Isolation::Schema || self.engine == Engine::Mysql {
                let what = if self.engine == Engine::Mysql {
                    "database"
                } else {
                    "schema"
                };
                return format!("{what} {}", escape_controls(s));
            }
        }
        if self.engine == Engine::Sqlite {
            let path = self.location.trim_start_matches("sqlite:");
            let file = Path::new(path)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.to_owned());
            return format!("file {}", escape_controls(&file));
        }
        match ConnectionUrl::parse(&self.location)
            .ok()
            .and_then(|u| u.database())
        {
            Some(db) => format!("database {}", escape_controls(&db)),
            None => escape_controls(&self.location),
        }
    }
}

/// `TenantNotFound` when an update or delete by slug touched no row.
fn tenant_touched(done: &sqlx::any::AnyQueryResult, slug: &str) -> Result<(), RegistryError> {
    if done.rows_affected() == 0 {
        return Err(RegistryError::TenantNotFound {
            slug: slug.to_owned(),
        });
    }
    Ok(())
}

/// Tenant `id`'s connection string from its ciphertext, a failure naming
/// the tenant (never the text).
pub(crate) fn decrypt_connection(
    vault: &Vault,
    id: i64,
    ct: &[u8],
    slug: &str,
) -> Result<SecretString, RegistryError> {
    vault
        .decrypt(id, ct)
        .map_err(|source| RegistryError::Decrypt {
            slug: slug.to_owned(),
            source,
        })
}

/// The URL text as a secret, for encryption.
fn url_secret(url: &ConnectionUrl) -> SecretString {
    url.to_secret()
}

/// The columns of a [`TenantRecord`], from `tenants t`.
pub(crate) fn tenant_select(backend: Backend) -> String {
    format!(
        "SELECT t.id, t.slug, t.display_name, t.engine, t.isolation, t.schema_name, t.location,
       t.template, t.template_version, t.status, t.status_reason, t.initial_hash,
       t.current_hash, t.last_sync_at, t.notes, t.created_at, t.updated_at, t.catalog_fingerprint,
       t.accepted_hash, t.accepted_note, t.revision, {} AS domains
  FROM tenants t",
        backend.tenant_domains()
    )
}

pub(crate) fn record_from_row(r: &sqlx::any::AnyRow) -> Result<TenantRecord, RegistryError> {
    Ok(StoredTenant {
        id: r.try_get("id")?,
        slug: r.try_get("slug")?,
        display_name: r.try_get("display_name")?,
        engine: r.try_get("engine")?,
        isolation: r.try_get("isolation")?,
        schema_name: r.try_get("schema_name")?,
        location: r.try_get("location")?,
        template: r.try_get("template")?,
        template_version: r.try_get("template_version")?,
        status: r.try_get("status")?,
        status_reason: r.try_get("status_reason")?,
        initial_hash: r.try_get("initial_hash")?,
        current_hash: r.try_get("current_hash")?,
        last_sync_at: r.try_get("last_sync_at")?,
        notes: r.try_get("notes")?,
        domains: r.try_get("domains")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        catalog_fingerprint: r.try_get("catalog_fingerprint")?,
        accepted_hash: r.try_get("accepted_hash")?,
        accepted_note: r.try_get("accepted_note")?,
        revision: r.try_get("revision")?,
    }
    .into_record())
}

/// A `tenants` row as stored (the columns of [`tenant_select`]), read from
/// a row or from the JSON of [`tenant_chunk`].
#[derive(serde::Deserialize)]
struct StoredTenant {
    id: i64,
    slug: String,
    display_name: String,
    engine: String,
    isolation: String,
    schema_name: Option<String>,
    location: String,
    template: Option<String>,
    template_version: Option<String>,
    status: String,
    status_reason: Option<String>,
    initial_hash: Option<String>,
    current_hash: Option<String>,
    last_sync_at: Option<String>,
    notes: String,
    /// Space-separated, sorted.
    domains: String,
    created_at: String,
    updated_at: String,
    catalog_fingerprint: Option<String>,
    accepted_hash: Option<String>,
    accepted_note: Option<String>,
    revision: i64,
}

impl StoredTenant {
    fn into_record(self) -> TenantRecord {
        TenantRecord {
            id: self.id,
            slug: self.slug,
            display_name: self.display_name,
            engine: parse_engine(&self.engine),
            isolation: if self.isolation == "schema" {
                Isolation::Schema
            } else {
                Isolation::Database
            },
            schema_name: self.schema_name,
            location: self.location,
            template: self.template,
            template_version: self.template_version,
            status: parse_status(&self.status),
            status_reason: self.status_reason,
            initial_hash: self.initial_hash,
            current_hash: self.current_hash,
            last_sync_at: self.last_sync_at,
            notes: self.notes,
            domains: self.domains.split_whitespace().map(str::to_owned).collect(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            catalog_fingerprint: self.catalog_fingerprint,
            accepted_hash: self.accepted_hash,
            accepted_note: self.accepted_note,
            revision: self.revision,
        }
    }
}

/// Tenants per chunk of [`Registry::tenants_by_slug`].
const CHUNK: i64 = 2000;

/// The next [`CHUNK`] tenants after slug $1 (at most $2): on SQLite one
/// JSON array of [`StoredTenant`] objects (in no particular order), on
/// PostgreSQL rows of [`tenant_select`] in slug order.
fn tenant_chunk(backend: Backend) -> String {
    match backend {
        Backend::Sqlite => format!(
            "SELECT json_group_array(json_object(
                 'id', t.id, 'slug', t.slug, 'display_name', t.display_name, 'engine', t.engine,
                 'isolation', t.isolation, 'schema_name', t.schema_name, 'location', t.location,
                 'template', t.template, 'template_version', t.template_version, 'status', t.status,
                 'status_reason', t.status_reason, 'initial_hash', t.initial_hash,
                 'current_hash', t.current_hash, 'last_sync_at', t.last_sync_at, 'notes', t.notes,
                 'created_at', t.created_at, 'updated_at', t.updated_at,
                 'catalog_fingerprint', t.catalog_fingerprint, 'accepted_hash', t.accepted_hash,
                 'accepted_note', t.accepted_note, 'revision', t.revision, 'domains', {}))
               FROM (SELECT * FROM tenants WHERE slug > $1 ORDER BY slug LIMIT $2) t",
            backend.tenant_domains()
        ),
        Backend::Postgres => format!(
            "{} WHERE t.slug > $1 ORDER BY t.slug LIMIT $2",
            tenant_select(backend)
        ),
    }
}

/// Appends one audit row inside `tx` (which holds the write lock): the row
/// commits with whatever else the transaction does, or not at all.
pub(crate) async fn audit_in(
    tx: &mut sqlx::AnyConnection,
    actor_name: &str,
    tenant: Option<&str>,
    action: &str,
    detail: &str,
    result: AuditResult,
) -> Result<(), RegistryError> {
    audit_many_in(
        tx,
        actor_name,
        &[AuditNote {
            tenant,
            action,
            detail,
            result,
        }],
    )
    .await
}

/// One row for [`audit_many_in`].
pub(crate) struct AuditNote<'a> {
    pub tenant: Option<&'a str>,
    pub action: &'a str,
    pub detail: &'a str,
    pub result: AuditResult,
}

/// Audit rows appended per statement by [`audit_many_in`].
const AUDIT_BATCH: usize = 2000;

/// Appends `notes` to the audit log inside `tx` (which holds the write
/// lock), chained in order, at one time: the last row and the tenants' ids
/// are read once and the rows go in [`AUDIT_BATCH`] per statement, so a
/// scan that moves 100,000 statuses does not make 400,000 round trips.
pub(crate) async fn audit_many_in(
    tx: &mut sqlx::AnyConnection,
    actor_name: &str,
    notes: &[AuditNote<'_>],
) -> Result<(), RegistryError> {
    if notes.is_empty() {
        return Ok(());
    }
    let backend = Backend::of(tx);
    let actor = current_actor();
    let last: Option<(i64, Option<String>)> =
        sqlx::query_as("SELECT id, row_hash FROM audit_log ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
    let at: String = sqlx::query_scalar(&format!("SELECT {}", backend.now()))
        .fetch_one(&mut *tx)
        .await?;
    let mut slugs: Vec<&str> = notes.iter().filter_map(|n| n.tenant).collect();
    slugs.sort_unstable();
    slugs.dedup();
    let ids: std::collections::HashMap<String, i64> = if slugs.is_empty() {
        Default::default()
    } else {
        sqlx::query_as::<_, (String, i64)>(&format!(
            "SELECT slug, id FROM tenants WHERE slug IN ({})",
            backend.json_strings("$1")
        ))
        .bind(serde_json::to_string(&slugs).unwrap_or_default())
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect()
    };
    let (mut id, mut prev) = match last {
        Some((id, hash)) => (id + 1, hash),
        None => (1, None),
    };
    let actor_name = validate::escape_controls(actor_name);
    let host = validate::escape_controls(&actor.host);
    let insert = format!(
        "INSERT INTO audit_log (id, at, actor, host, tenant_slug, tenant_id, action, detail, result, prev_hash, row_hash)
         SELECT CAST(value ->> 0 AS BIGINT), value ->> 1, value ->> 2, value ->> 3, value ->> 4,
                CAST(value ->> 5 AS BIGINT), value ->> 6, value ->> 7, value ->> 8, value ->> 9,
                value ->> 10
           FROM {}",
        backend.json_elements("$1")
    );
    for batch in notes.chunks(AUDIT_BATCH) {
        let mut rows = Vec::with_capacity(batch.len());
        for note in batch {
            let row = AuditRow {
                id,
                at: at.clone(),
                actor: actor_name.clone(),
                host: Some(host.clone()),
                tenant_slug: note.tenant.map(validate::escape_controls),
                tenant_id: note.tenant.and_then(|t| ids.get(t).copied()),
                action: validate::escape_controls(note.action),
                detail: validate::escape_controls(note.detail),
                result: note.result.as_str().to_owned(),
                prev_hash: Some(prev.take().unwrap_or_else(|| AUDIT_CHAIN_START.to_owned())),
            };
            let row_hash = row.hash();
            rows.push(serde_json::json!([
                row.id,
                row.at,
                row.actor,
                row.host,
                row.tenant_slug,
                row.tenant_id,
                row.action,
                row.detail,
                row.result,
                row.prev_hash,
                row_hash,
            ]));
            prev = Some(row_hash);
            id += 1;
        }
        let rows = serde_json::to_string(&rows).map_err(|e| RegistryError::Database {
            reason: format!("cannot encode the audit rows: {e}"),
        })?;
        sqlx::query(&insert).bind(rows).execute(&mut *tx).await?;
    }
    Ok(())
}
