//! Shared harness for the cross-crate tests: real PostgreSQL and MariaDB
//! servers (URLs from `TENANTRY_TEST_PG_URL` / `TENANTRY_TEST_MYSQL_URL`,
//! defaulting to this machine's trust-auth servers), SQLite temp files, and
//! the fixtures under `tests/fixtures/`.
//!
//! Every test gets databases of its own with unique names, dropped when the
//! guard goes out of scope (also on panic), so tests run in parallel.

pub mod bench;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, MySqlConnection, PgConnection, SqliteConnection};
use tenantry_introspect::postgres::{self, SchemaRead};
use tenantry_model::{ObjectKind, SchemaHash};

pub fn pg_server_url() -> String {
    std::env::var("TENANTRY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

pub fn mysql_server_url() -> String {
    std::env::var("TENANTRY_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".to_owned())
}

pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

pub fn fixture(engine: &str, name: &str) -> String {
    let path = fixtures_dir().join(engine).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A name no other test (or concurrent test run) uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{n}_{nanos:x}", std::process::id())
}

pub fn pg_quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

pub fn mysql_quote(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

/// Runs an async block to completion on a fresh runtime in another thread:
/// for cleanup in `Drop`, which may run inside a test's runtime.
fn block_on_side<F, Fut>(f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(f());
        }
    })
    .join();
}

/// A scratch PostgreSQL database, dropped on drop.
pub struct PgDatabase {
    pub name: String,
}

impl PgDatabase {
    pub async fn create() -> Self {
        let name = unique_name("tenantry_test");
        let mut admin = PgConnection::connect(&format!("{}/postgres", pg_server_url()))
            .await
            .expect("PostgreSQL must be running for these tests (see README)");
        sqlx::raw_sql(&format!("CREATE DATABASE {}", pg_quote(&name)))
            .execute(&mut admin)
            .await
            .expect("create scratch database");
        Self { name }
    }

    /// A guard that only drops `name` at the end (for databases the code
    /// under test creates).
    pub fn adopt(name: &str) -> Self {
        Self {
            name: name.to_owned(),
        }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", pg_server_url(), self.name)
    }

    pub async fn connect(&self) -> PgConnection {
        PgConnection::connect(&self.url())
            .await
            .expect("connect to scratch database")
    }

    /// Applies `sql` inside `schema` (created if missing) the way a template
    /// is applied: one dedicated connection, one transaction, a
    /// transaction-local search_path.
    pub async fn apply(&self, schema: &str, sql: &str) {
        let mut conn = self.connect().await;
        let mut tx = conn.begin().await.expect("begin");
        sqlx::raw_sql(&format!("CREATE SCHEMA IF NOT EXISTS {}", pg_quote(schema)))
            .execute(&mut *tx)
            .await
            .expect("create schema");
        sqlx::query("SELECT set_config('search_path', $1, true)")
            .bind(pg_quote(schema))
            .execute(&mut *tx)
            .await
            .expect("set search_path");
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("applying SQL to schema {schema}: {e}\n{sql}"));
        tx.commit().await.expect("commit");
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        block_on_side(move || async move {
            if let Ok(mut admin) =
                PgConnection::connect(&format!("{}/postgres", pg_server_url())).await
            {
                let _ = sqlx::raw_sql(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    pg_quote(&name)
                ))
                .execute(&mut admin)
                .await;
            }
        });
    }
}

/// A scratch MySQL/MariaDB database, dropped on drop.
pub struct MysqlDatabase {
    pub name: String,
}

impl MysqlDatabase {
    pub async fn create() -> Self {
        Self::create_with("").await
    }

    /// `options` follows `CREATE DATABASE name`, e.g. `CHARACTER SET latin1`.
    pub async fn create_with(options: &str) -> Self {
        let name = unique_name("tenantry_test");
        let mut admin = MySqlConnection::connect(&format!("{}/", mysql_server_url()))
            .await
            .expect("MariaDB/MySQL must be running for these tests (see README)");
        sqlx::raw_sql(&format!("CREATE DATABASE {} {options}", mysql_quote(&name)))
            .execute(&mut admin)
            .await
            .expect("create scratch database");
        Self { name }
    }

    /// A guard that only drops `name` at the end.
    pub fn adopt(name: &str) -> Self {
        Self {
            name: name.to_owned(),
        }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", mysql_server_url(), self.name)
    }

    pub async fn connect(&self) -> MySqlConnection {
        MySqlConnection::connect(&self.url())
            .await
            .expect("connect to scratch database")
    }

    /// A connection to a database this guard does not own.
    pub async fn adopt_connect(name: &str) -> MySqlConnection {
        MySqlConnection::connect(&format!("{}/{name}", mysql_server_url()))
            .await
            .expect("connect")
    }

    pub async fn apply(&self, sql: &str) {
        let mut conn = self.connect().await;
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("applying SQL to {}: {e}\n{sql}", self.name));
    }
}

impl Drop for MysqlDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        block_on_side(move || async move {
            if let Ok(mut admin) =
                MySqlConnection::connect(&format!("{}/", mysql_server_url())).await
            {
                let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS {}", mysql_quote(&name)))
                    .execute(&mut admin)
                    .await;
            }
        });
    }
}

/// Creates a SQLite file at `path` holding `sql`.
pub async fn sqlite_file(path: &Path, sql: &str) {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = SqliteConnection::connect(&url)
        .await
        .expect("create SQLite file");
    sqlx::raw_sql(sql)
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("applying SQL to {}: {e}\n{sql}", path.display()));
    conn.close().await.expect("close");
}

/// The objects whose hash differs between two schemas, or that exist in one only.
pub fn changed_objects(a: &SchemaHash, b: &SchemaHash) -> BTreeSet<(ObjectKind, String)> {
    let left: BTreeSet<_> = a
        .objects
        .iter()
        .map(|o| (o.kind, o.name.clone(), o.hash))
        .collect();
    let right: BTreeSet<_> = b
        .objects
        .iter()
        .map(|o| (o.kind, o.name.clone(), o.hash))
        .collect();
    left.symmetric_difference(&right)
        .map(|(k, n, _)| (*k, n.clone()))
        .collect()
}

/// One single real change applied on top of a template, and the one object
/// whose hash it must change.
pub struct Mutation {
    pub name: &'static str,
    pub sql: &'static str,
    pub changes: (ObjectKind, &'static str),
}

pub const fn m(
    name: &'static str,
    sql: &'static str,
    kind: ObjectKind,
    object: &'static str,
) -> Mutation {
    Mutation {
        name,
        sql,
        changes: (kind, object),
    }
}

/// A registry with an in-memory key, in a temporary directory, for the
/// guard / scan / reset tests.
pub struct TestFleet {
    _dir: tempfile::TempDir,
    pub dir: PathBuf,
    pub registry: std::sync::Arc<tenantry_registry::Registry>,
    pub vault: std::sync::Arc<tenantry_vault::Vault>,
}

impl TestFleet {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_owned();
        let registry = tenantry_registry::Registry::create(&path.join("registry.db"))
            .await
            .expect("open registry");
        let vault = registry
            .open_vault(&tenantry_vault::MemoryKeyStore::default())
            .await
            .expect("open vault");
        Self {
            _dir: dir,
            dir: path,
            registry: std::sync::Arc::new(registry),
            vault: std::sync::Arc::new(vault),
        }
    }

    /// Measures and stores `template` using the scratch target `scratch`.
    pub async fn register(&self, template: &tenantry_fleet::Template, scratch: &str) {
        let url = tenantry_introspect::ConnectionUrl::parse(scratch).expect("scratch URL");
        tenantry_fleet::guard::register_template(
            &self.registry,
            template,
            &url,
            tenantry_introspect::Timeouts::default(),
        )
        .await
        .expect("register template");
    }

    /// Registers a tenant of template `saas` at `version`.
    pub async fn add(&self, slug: &str, url: &str, schema: Option<&str>, version: &str) {
        self.registry
            .add_tenant(
                &self.vault,
                tenantry_registry::NewTenant {
                    slug: slug.into(),
                    display_name: slug.into(),
                    url: tenantry_introspect::ConnectionUrl::parse(url).expect("tenant URL"),
                    schema: schema.map(str::to_owned),
                    template: Some("saas".into()),
                    template_version: Some(version.into()),
                    domains: vec![],
                    notes: String::new(),
                },
            )
            .await
            .expect("add tenant");
    }

    pub async fn guard(&self, slug: &str) -> tenantry_fleet::guard::GuardReport {
        tenantry_fleet::guard::guard_tenant(
            &self.registry,
            &self.vault,
            slug,
            tenantry_introspect::Timeouts::default(),
        )
        .await
        .expect("guard")
    }

    /// `sqlite:<dir>/<name>`.
    pub fn sqlite_url(&self, name: &str) -> String {
        format!("sqlite:{}", self.dir.join(name).display())
    }
}

/// `x-wal` / `x-shm` beside a SQLite database file `x`.
pub fn sqlite_side(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The fingerprints a scan stores from a full read, by schema: what a
/// re-check ([`postgres::catalog_fingerprints`]) compares with.
pub fn stored_fingerprints(read: &BTreeMap<String, SchemaRead>) -> HashMap<String, String> {
    read.iter()
        .map(|(schema, r)| (schema.clone(), r.fingerprint.clone()))
        .collect()
}

/// A full read of `schemas` and the re-check of what it stored, which must
/// agree while nothing changes: the fingerprints a scan would store.
pub async fn read_and_recheck(
    conn: &mut PgConnection,
    schemas: &[String],
) -> HashMap<String, String> {
    let read = postgres::read_schemas(conn, schemas)
        .await
        .expect("a full read of the schemas");
    let stored = stored_fingerprints(&read);
    let recheck = postgres::catalog_fingerprints(conn, &stored)
        .await
        .expect("a re-check of what the read stored");
    assert_eq!(
        recheck, stored,
        "a re-check right after a read agrees with it"
    );
    stored
}
