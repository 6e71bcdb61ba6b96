//! Benchmark: the registry at fleet scale.
//!
//! Registers N schema-per-tenant PostgreSQL tenants (default 10,000 and
//! 100,000) spread over 20 servers in a scratch SQLite registry, with a mix
//! of statuses, and prints:
//!   - the import (`Registry::import`: validate, encrypt, insert, audit);
//!   - in-process reads: every tenant (`list_tenants`), and one page of the
//!     console's fleet screen (`tenant_page`) unfiltered, filtered by status
//!     and server, and searched;
//!   - the real command, process start to output written, with its peak
//!     memory: `tenantry tenant list` and `tenant list --json`, the median of
//!     three runs, for every binary named in `TENANTRY_BENCH_CLI`
//!     (`label=path,label=path`; default the release build), so a branch and
//!     the previous main are timed side by side in one run. A label starting
//!     with `base` reads a copy recording only the first
//!     `TENANTRY_BENCH_BASE_MIGRATIONS` (default 15) migrations.
//!
//! Nothing here needs a database server: the tenants' servers are never
//! contacted.
//!
//! Run: `cargo build --release -p tenantry-cli &&
//!       cargo bench -p tenantry-tests --bench registry_scale`
//! Sizes: `TENANTRY_BENCH_REGISTRY=10000,100000`; `TENANTRY_BENCH_KEEP=/dir` keeps
//! the registries there (a PostgreSQL one: its database, URL printed). `TENANTRY_BENCH_REGISTRY_BACKEND=postgres` runs the
//! in-process steps on a team's registry in a scratch PostgreSQL database
//! instead (the commands then run on it, `--registry postgres://…`, for the
//! binaries not labelled `base`).

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use tenantry_model::hash::{CanonicalFormat, DriftHash};
use tenantry_model::SchemaStatus;
use tenantry_registry::import::{Fields, ImportRow};
use tenantry_registry::templates::TenantCheck;
use tenantry_registry::{Registry, RegistryPlace, TenantQuery};
use tenantry_vault::MemoryKeyStore;

const SERVERS: usize = 20;

fn sizes() -> Vec<usize> {
    std::env::var("TENANTRY_BENCH_REGISTRY")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn binaries() -> Vec<(String, PathBuf)> {
    match std::env::var("TENANTRY_BENCH_CLI") {
        Ok(list) => list
            .split(',')
            .filter_map(|item| {
                let (label, path) = item.split_once('=')?;
                Some((label.to_owned(), PathBuf::from(path)))
            })
            .collect(),
        Err(_) => vec![(
            "release".into(),
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/tenantry"),
        )],
    }
}

fn row(i: usize) -> ImportRow {
    let server = i % SERVERS;
    ImportRow {
        location: format!("row {i}"),
        fields: Fields {
            slug: format!("tenant-{i:06}"),
            display_name: Some(format!("Customer {i} GmbH")),
            schema: Some(format!("tenant_{i:06}")),
            template: Some("saas".into()),
            template_version: Some(
                if i.is_multiple_of(7) {
                    "1.0.0"
                } else {
                    "1.1.0"
                }
                .into(),
            ),
            ..Default::default()
        },
        url: format!(
            "postgres://app:bench-password@db{server:02}.example.internal:5432/fleet{}",
            i % 3
        )
        .into(),
    }
}

/// One process run: seconds from start to exit and peak resident memory in
/// MB (the process's own high-water mark, read from `/proc` until it exits).
fn run(bin: &Path, registry: &std::ffi::OsStr, args: &[&str]) -> (f64, f64) {
    let t = Instant::now();
    let mut child = std::process::Command::new(bin)
        .args(args)
        .arg("--registry")
        .arg(registry)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            if let Some(kb) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
        }
        std::thread::sleep(std::time::Duration::from_micros(500));
    };
    let secs = t.elapsed().as_secs_f64();
    assert!(status.success(), "{} {args:?} failed", bin.display());
    (secs, peak_kb as f64 / 1024.0)
}

fn median(mut v: Vec<(f64, f64)>) -> (f64, f64) {
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `TENANTRY_BENCH_KEEP=/dir` keeps the registries there (to profile a
    // command or open one in the console); otherwise a scratch folder.
    let scratch = tempfile::tempdir().unwrap();
    let dir = match std::env::var_os("TENANTRY_BENCH_KEEP") {
        Some(keep) => {
            std::fs::create_dir_all(&keep).unwrap();
            PathBuf::from(keep)
        }
        None => scratch.path().to_owned(),
    };
    let keys = MemoryKeyStore::default();
    println!("registry at scale: schema-per-tenant PostgreSQL tenants on {SERVERS} servers");
    println!(
        "{:<44} {:>8} {:>10} {:>8}",
        "step", "tenants", "seconds", "peak MB"
    );
    let on_postgres =
        std::env::var("TENANTRY_BENCH_REGISTRY_BACKEND").is_ok_and(|b| b == "postgres");
    if on_postgres {
        println!("(the registry: a PostgreSQL database)");
    }
    for n in sizes() {
        let path = dir.join(format!("registry-{n}.db"));
        for end in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{end}", path.display()));
        }
        let database = if on_postgres {
            Some(tenantry_tests::PgDatabase::create().await)
        } else {
            None
        };
        let registry = match &database {
            Some(db) => Registry::create_at(RegistryPlace::parse(&db.url()).unwrap())
                .await
                .unwrap(),
            None => Registry::create(&path).await.unwrap(),
        };
        let vault = registry.open_vault(&keys).await.unwrap();
        let t = Instant::now();
        registry
            .import(&vault, (0..n).map(row).collect())
            .await
            .unwrap();
        println!(
            "{:<44} {n:>8} {:>10.3}",
            "import",
            t.elapsed().as_secs_f64()
        );
        // A fleet after its scans: mostly synced, some drift, a few failed.
        // Recorded as a scan records them; the second time nothing changes,
        // which is the registry's share of a nightly re-check.
        let hash = |n: u8| -> DriftHash {
            format!(
                "v{}:{}",
                CanonicalFormat::CURRENT.number(),
                format!("{n:02x}").repeat(32)
            )
            .parse()
            .unwrap()
        };
        let checks: Vec<TenantCheck> = (0..n)
            .map(|i| {
                let (status, h) = match i % 20 {
                    0..=15 => (SchemaStatus::Synced, Some(hash(1))),
                    16 | 17 => (SchemaStatus::Customized, Some(hash(2 + (i % 5) as u8))),
                    18 => (SchemaStatus::Outdated, Some(hash(9))),
                    _ => (SchemaStatus::Failed, None),
                };
                TenantCheck {
                    slug: format!("tenant-{i:06}"),
                    status,
                    reason: (status == SchemaStatus::Failed).then(|| "connection refused".into()),
                    hash: h,
                    provisioned: false,
                    fingerprint: h.map(|_| format!("pgx9:40.{i}:")),
                }
            })
            .collect();
        for label in [
            "record_checks: first scan (every status moves)",
            "record_checks: re-check, nothing changed",
        ] {
            let t = Instant::now();
            registry.record_checks(&checks).await.unwrap();
            println!("{label:<44} {n:>8} {:>10.3}", t.elapsed().as_secs_f64());
        }

        let t = Instant::now();
        let all = registry.list_tenants().await.unwrap();
        assert_eq!(all.len(), n);
        drop(all);
        println!(
            "{:<44} {n:>8} {:>10.3}",
            "list_tenants (every row, in-process)",
            t.elapsed().as_secs_f64()
        );
        let pages = [
            ("fleet page: first 100", TenantQuery::default()),
            (
                "fleet page: customized on one server",
                TenantQuery {
                    status: Some(SchemaStatus::Customized),
                    server: Some("postgres://db07.example.internal:5432".into()),
                    ..Default::default()
                },
            ),
            (
                "fleet page: search \"customer 4711\"",
                TenantQuery {
                    search: "customer 4711".into(),
                    ..Default::default()
                },
            ),
            (
                "fleet page: sorted by status, deep offset",
                TenantQuery {
                    sort: tenantry_registry::TenantSort::Status,
                    offset: (n as u32).saturating_sub(150),
                    ..Default::default()
                },
            ),
        ];
        for (label, q) in pages {
            let t = Instant::now();
            let page = registry.tenant_page(&q).await.unwrap();
            let secs = t.elapsed().as_secs_f64();
            assert!(page.total as usize <= n);
            println!("{label:<44} {n:>8} {secs:>10.3}");
        }
        registry.close().await;
        if let Some(db) = &database {
            // The commands on the team's registry (`--registry postgres://…`);
            // a previous main may not know the newest migrations, so only
            // this build's.
            for (label, bin) in binaries()
                .into_iter()
                .filter(|(l, _)| !l.starts_with("base"))
            {
                if !bin.exists() {
                    println!("({label}: {} not built; skipped)", bin.display());
                    continue;
                }
                list_commands(&label, &bin, db.url().as_ref(), n);
            }
        }
        if let Some(db) = database {
            if std::env::var_os("TENANTRY_BENCH_KEEP").is_some() {
                println!("(kept: {})", db.url());
                std::mem::forget(db);
            }
            continue;
        }

        // A binary labelled `base…` is the previous main, which refuses a
        // registry with migrations it does not know: it reads a copy that
        // does not record them (their columns are left, unread).
        let older = dir.join(format!("registry-{n}-older.db"));
        std::fs::copy(&path, &older).unwrap();
        let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
            "sqlite:{}",
            older.display()
        ))
        .await
        .unwrap();
        let known: i64 = std::env::var("TENANTRY_BENCH_BASE_MIGRATIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(15);
        sqlx::query("DELETE FROM _sqlx_migrations WHERE version > ?1")
            .bind(known)
            .execute(&mut c)
            .await
            .unwrap();
        drop(c);
        for (label, bin) in binaries() {
            if !bin.exists() {
                println!("({label}: {} not built; skipped)", bin.display());
                continue;
            }
            let path = if label.starts_with("base") {
                &older
            } else {
                &path
            };
            list_commands(&label, &bin, path.as_os_str(), n);
        }
    }
}

/// `tenantry tenant list` and `tenant list --json` on `registry`: the
/// median of three runs, with peak memory.
fn list_commands(label: &str, bin: &Path, registry: &std::ffi::OsStr, n: usize) {
    for args in [&["tenant", "list"][..], &["tenant", "list", "--json"][..]] {
        let (secs, mb) = median((0..3).map(|_| run(bin, registry, args)).collect());
        println!(
            "{:<44} {n:>8} {secs:>10.3} {mb:>8.0}",
            format!("{label}: tenantry {}", args.join(" "))
        );
    }
}
