//! Benchmark: fleet drift scans end to end.
//!
//! Builds, from a 40-table template:
//!   - N PostgreSQL tenant schemas in one database (default 1000),
//!   - D PostgreSQL tenant databases (default 100),
//!   - M MariaDB tenant databases (default 100),
//!
//! registers them in a scratch registry, and prints for each fleet the time
//! of a full scan (`tenantry_fleet::scan::scan`: decrypt, batch, introspect,
//! hash, classify, record in the registry) and tenants/second. When a
//! release `tenantry` binary exists and a Secret Service is reachable (run
//! under `scripts/with-keyring.sh`), it also times the real command,
//! process start to JSON written: `tenantry scan --json > file`, three runs
//! each of a full scan and of a re-check, and prints the median.
//! PostgreSQL fleets are vacuumed and checkpointed before they are timed, as
//! a real fleet's catalog is long settled. For the PostgreSQL databases it
//! also prints the floor: connecting to each and closing, nothing read.
//!
//! Run: `cargo build --release -p tenantry-cli &&
//!       bash scripts/with-keyring.sh cargo bench -p tenantry-tests --bench scan_fleet`
//! Sizes: `TENANTRY_BENCH_SCHEMAS=1000 TENANTRY_BENCH_PG_DBS=100 TENANTRY_BENCH_MYSQL_DBS=100`.

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::Path;
use std::time::Instant;

use sqlx::Connection;
use tenantry_fleet::guard::register_template;
use tenantry_fleet::scan::{scan, CancelScan, ScanOptions};
use tenantry_fleet::{Migration, Template, TemplateVersion};
use tenantry_introspect::{ConnectionUrl, Timeouts};
use tenantry_model::Engine;
use tenantry_registry::import::ImportRow;
use tenantry_registry::Registry;
use tenantry_tests::bench::{mysql_template, pg_template};
use tenantry_tests::{
    mysql_quote, mysql_server_url, pg_quote, pg_server_url, unique_name, MysqlDatabase, PgDatabase,
};
use tenantry_vault::{KeyStore, OsKeyring};

/// How many tenants' reads run at once, in the scan and in the floor.
const CONCURRENCY: usize = 8;

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn template(engine: Engine, sql: String) -> Template {
    Template {
        name: "bench".into(),
        engine,
        versions: vec![TemplateVersion {
            version: "1.0.0".into(),
            migrations: vec![Migration {
                name: "1.0.0/0001.sql".into(),
                sql: sql.into(),
            }],
        }],
    }
}

fn row(slug: &str, url: &str, schema: Option<&str>) -> ImportRow {
    ImportRow {
        location: slug.to_owned(),
        fields: tenantry_registry::import::Fields {
            slug: slug.to_owned(),
            schema: schema.map(str::to_owned),
            template: Some("bench".into()),
            template_version: Some("1.0.0".into()),
            ..Default::default()
        },
        url: url.to_owned().into(),
    }
}

/// A key store for the bench: the real keyring when one answers, so the
/// CLI can be timed too; otherwise the scan is timed in-process only.
fn keys(service: &str) -> Option<OsKeyring> {
    let k = OsKeyring::new(service);
    k.load(&tenantry_vault::KeyEntry::legacy("tenantry-bench-probe"))
        .ok()
        .map(|_| k)
}

async fn timed_scan(
    label: &str,
    n: usize,
    registry_path: &Path,
    service: &str,
    keys: &dyn KeyStore,
) {
    let registry = Registry::open(registry_path).await.unwrap();
    let vault = registry.open_vault(keys).await.unwrap();
    let t = Instant::now();
    let report = scan(
        &registry,
        &vault,
        &ScanOptions {
            concurrency: CONCURRENCY,
            ..Default::default()
        },
        &|_| {},
        &CancelScan::default(),
    )
    .await
    .unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(
        report.counts.synced as usize, n,
        "{label}: every tenant must be synced: {:?}",
        report.counts
    );
    println!("{label:<34} {n:>6} {secs:>10.3} {:>12.0}", n as f64 / secs);
    registry.close().await;

    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/tenantry");
    if bin.is_file() {
        let out = registry_path.with_extension("json");
        for (what, extra) in [
            ("full, process start to JSON", Some("--full")),
            ("re-check of unchanged fleet", None),
        ] {
            let mut args = vec!["scan", "--json", "--fail-on", "never"];
            args.extend(extra);
            // Three runs, so one noisy run does not make the figure.
            let runs: Vec<f64> = (0..3)
                .map(|_| {
                    let t = Instant::now();
                    let status = std::process::Command::new(&bin)
                        .args(&args)
                        .env("TENANTRY_REGISTRY", registry_path)
                        .env("TENANTRY_KEYRING_SERVICE", service)
                        .stdout(std::fs::File::create(&out).unwrap())
                        .status()
                        .unwrap();
                    assert!(status.success());
                    t.elapsed().as_secs_f64()
                })
                .collect();
            print_median(&format!("  `tenantry scan`: {what}"), n, runs);
        }
    }
}

/// What the database-per-tenant figure cannot go below: a connection to
/// every database and its close, nothing read, with the scan's connection
/// options and concurrency, in process (no process start). The rest of the
/// scan's time is the catalog statements and the client's work on them.
async fn connection_floor(dbs: &[PgDatabase]) {
    let mut runs: Vec<f64> = Vec::new();
    for _ in 0..3 {
        let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
        let mut tasks = tokio::task::JoinSet::new();
        let t = Instant::now();
        for db in dbs {
            let permit = std::sync::Arc::clone(&semaphore)
                .acquire_owned()
                .await
                .unwrap();
            let url = ConnectionUrl::parse(&db.url()).unwrap();
            tasks.spawn(async move {
                let conn =
                    tenantry_introspect::postgres::connect_for_catalog(&url, Timeouts::default())
                        .await
                        .unwrap();
                tenantry_introspect::postgres::close(conn).await;
                drop(permit);
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        runs.push(t.elapsed().as_secs_f64());
    }
    print_median("  floor: connect + close only", dbs.len(), runs);
}

/// Prints three timed runs of `n` tenants as their median, with all three.
fn print_median(label: &str, n: usize, mut runs: Vec<f64>) {
    runs.sort_by(f64::total_cmp);
    let secs = runs[1];
    println!(
        "{label:<34} {n:>6} {secs:>10.3} {:>12.0}   (median of {:.3} / {:.3} / {:.3})",
        n as f64 / secs,
        runs[0],
        runs[1],
        runs[2]
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let service = format!("dev.tenantry.bench.{}", std::process::id());
    let os_keys = keys(&service);
    let mut made_keys = Vec::new();
    let memory;
    let keys: &dyn KeyStore = match &os_keys {
        Some(k) => k,
        None => {
            println!("(no Secret Service: timing the scan in-process only; run under scripts/with-keyring.sh to time the CLI too)");
            memory = tenantry_vault::MemoryKeyStore::default();
            &memory
        }
    };
    let dir = tempfile::tempdir().unwrap();
    println!("fleet scan, 40-table template, concurrency {CONCURRENCY}");
    println!(
        "{:<34} {:>6} {:>10} {:>12}",
        "fleet", "tenants", "scan s", "tenants/s"
    );

    // 1. Schema-per-tenant PostgreSQL.
    let n = size("TENANTRY_BENCH_SCHEMAS", 1000);
    if n > 0 {
        let db = PgDatabase::create().await;
        let sql = pg_template();
        let mut conn = db.connect().await;
        let schemas: Vec<String> = (0..n).map(|i| format!("tenant_{i:05}")).collect();
        for chunk in schemas.chunks(25) {
            let mut script = String::from("BEGIN;\n");
            for s in chunk {
                script.push_str(&format!(
                    "CREATE SCHEMA {q};\nSET LOCAL search_path = {q};\n{sql}",
                    q = pg_quote(s)
                ));
            }
            script.push_str("COMMIT;\n");
            sqlx::raw_sql(&script).execute(&mut conn).await.unwrap();
        }
        // A fleet's catalog is long settled when it is scanned: vacuum it
        // (hint bits, visibility) and checkpoint, so the timing does not
        // include the first reader's clean-up after 40,000 CREATE TABLEs.
        sqlx::raw_sql("VACUUM ANALYZE")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::raw_sql("CHECKPOINT")
            .execute(&mut conn)
            .await
            .unwrap();
        let path = dir.path().join("schemas.db");
        let registry = Registry::create(&path).await.unwrap();
        let vault = registry.open_vault(keys).await.unwrap();
        made_keys.push(registry.key_entry(vault.key_id()).await.unwrap());
        register_template(
            &registry,
            &template(Engine::Postgres, sql),
            &ConnectionUrl::parse(&db.url()).unwrap(),
            Timeouts::default(),
        )
        .await
        .unwrap();
        let rows = schemas
            .iter()
            .map(|s| row(&s.replace('_', "-"), &db.url(), Some(s)))
            .collect();
        registry.import(&vault, rows).await.unwrap();
        registry.close().await;
        timed_scan("PostgreSQL, schema per tenant", n, &path, &service, keys).await;
    }

    // 2. Database-per-tenant PostgreSQL.
    let d = size("TENANTRY_BENCH_PG_DBS", 100);
    if d > 0 {
        let sql = pg_template();
        let template_db = PgDatabase::create().await;
        let mut conn = template_db.connect().await;
        sqlx::raw_sql(&sql).execute(&mut conn).await.unwrap();
        sqlx::raw_sql("VACUUM ANALYZE")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
        let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", pg_server_url()))
            .await
            .unwrap();
        let mut dbs = Vec::new();
        for _ in 0..d {
            let name = unique_name("tenantry_bench");
            sqlx::raw_sql(&format!(
                "CREATE DATABASE {} TEMPLATE {}",
                pg_quote(&name),
                pg_quote(&template_db.name)
            ))
            .execute(&mut admin)
            .await
            .unwrap();
            dbs.push(PgDatabase::adopt(&name));
        }
        sqlx::raw_sql("CHECKPOINT")
            .execute(&mut admin)
            .await
            .unwrap();
        let path = dir.path().join("pg-dbs.db");
        let registry = Registry::create(&path).await.unwrap();
        let vault = registry.open_vault(keys).await.unwrap();
        made_keys.push(registry.key_entry(vault.key_id()).await.unwrap());
        register_template(
            &registry,
            &template(Engine::Postgres, sql),
            &ConnectionUrl::parse(&template_db.url()).unwrap(),
            Timeouts::default(),
        )
        .await
        .unwrap();
        let rows = dbs
            .iter()
            .enumerate()
            .map(|(i, db)| row(&format!("pg-{i:04}"), &db.url(), None))
            .collect();
        registry.import(&vault, rows).await.unwrap();
        registry.close().await;
        timed_scan("PostgreSQL, database per tenant", d, &path, &service, keys).await;
        connection_floor(&dbs).await;
    }

    // 3. MariaDB databases.
    let m = size("TENANTRY_BENCH_MYSQL_DBS", 100);
    if m > 0 {
        let sql = mysql_template();
        let mut admin = sqlx::MySqlConnection::connect(&format!("{}/", mysql_server_url()))
            .await
            .unwrap();
        let mut dbs = Vec::new();
        for _ in 0..m {
            let name = unique_name("tenantry_bench");
            sqlx::raw_sql(&format!(
                "CREATE DATABASE {q}; USE {q}; {sql}",
                q = mysql_quote(&name)
            ))
            .execute(&mut admin)
            .await
            .unwrap();
            dbs.push(MysqlDatabase::adopt(&name));
        }
        let scratch = MysqlDatabase::create().await;
        let path = dir.path().join("mysql-dbs.db");
        let registry = Registry::create(&path).await.unwrap();
        let vault = registry.open_vault(keys).await.unwrap();
        made_keys.push(registry.key_entry(vault.key_id()).await.unwrap());
        register_template(
            &registry,
            &template(Engine::Mysql, sql),
            &ConnectionUrl::parse(&scratch.url()).unwrap(),
            Timeouts::default(),
        )
        .await
        .unwrap();
        let rows = dbs
            .iter()
            .enumerate()
            .map(|(i, db)| row(&format!("my-{i:04}"), &db.url(), None))
            .collect();
        registry.import(&vault, rows).await.unwrap();
        registry.close().await;
        timed_scan("MariaDB, database per tenant", m, &path, &service, keys).await;
    }
    if let Some(k) = &os_keys {
        for entry in &made_keys {
            let _ = k.delete(entry);
        }
    }
}
