//! The schema guard and the fleet scan on the real servers: create /
//! initialise / skip on every engine and isolation mode, eight concurrent
//! guards on fifty tenants, a failing template, and a scan over a fleet with
//! known drift.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use tenantry_fleet::guard::{guard_tenant, verify_setup};
use tenantry_fleet::provision::{pg_lock_key, GuardAction};
use tenantry_fleet::scan::{scan, CancelScan, ScanOptions};
use tenantry_fleet::{Migration, Template, TemplateVersion};
use tenantry_introspect::Timeouts;
use tenantry_model::diff::{Area, Presence};
use tenantry_model::{Engine, SchemaStatus};
use tenantry_tests::{fixture, unique_name, MysqlDatabase, PgDatabase, TestFleet};

const V110: [(&str, &str); 3] = [
    ("postgres", "ALTER TABLE users ADD COLUMN locale text NOT NULL DEFAULT 'en'; CREATE TABLE webhooks (id serial PRIMARY KEY, url text NOT NULL);"),
    ("mysql", "ALTER TABLE users ADD COLUMN locale VARCHAR(10) NOT NULL DEFAULT 'en'; CREATE TABLE webhooks (id INT AUTO_INCREMENT PRIMARY KEY, url TEXT NOT NULL);"),
    ("sqlite", "ALTER TABLE users ADD COLUMN locale TEXT NOT NULL DEFAULT 'en'; CREATE TABLE webhooks (id INTEGER PRIMARY KEY, url TEXT NOT NULL);"),
];

fn template(engine: Engine) -> Template {
    let dir = engine.as_str();
    let v110 = V110.iter().find(|(e, _)| *e == dir).unwrap().1;
    Template {
        name: "saas".into(),
        engine,
        versions: vec![
            TemplateVersion {
                version: "1.0.0".into(),
                migrations: vec![Migration {
                    name: "1.0.0/0001_init.sql".into(),
                    sql: fixture(dir, "template.sql").into(),
                }],
            },
            TemplateVersion {
                version: "1.1.0".into(),
                migrations: vec![Migration::fixed("1.1.0/0002_locale.sql", v110)],
            },
        ],
    }
}

type Fleet = TestFleet;

async fn fleet() -> Fleet {
    TestFleet::new().await
}

#[tokio::test]
async fn postgres_guard_creates_initialises_and_skips_in_both_isolation_modes() {
    let f = fleet().await;
    let db = PgDatabase::create().await;
    f.register(&template(Engine::Postgres), &db.url()).await;

    // Schema-per-tenant: missing schema → created; empty schema → initialised.
    f.add("s-new", &db.url(), Some("tenant_new"), "1.1.0").await;
    db.apply("tenant_empty", "").await;
    f.add("s-empty", &db.url(), Some("tenant_empty"), "1.1.0")
        .await;
    let r = f.guard("s-new").await;
    assert_eq!(
        (r.action, r.status),
        (Some(GuardAction::Created), SchemaStatus::Synced),
        "{r:?}"
    );
    assert_eq!(r.applied, ["1.0.0/0001_init.sql", "1.1.0/0002_locale.sql"]);
    let r = f.guard("s-empty").await;
    assert_eq!(
        (r.action, r.status),
        (Some(GuardAction::Initialised), SchemaStatus::Synced),
        "{r:?}"
    );
    let again = f.guard("s-new").await;
    assert_eq!(again.action, Some(GuardAction::AlreadyProvisioned));
    let record = f.registry.tenant("s-new").await.unwrap();
    assert_eq!(record.status, SchemaStatus::Synced);
    assert_eq!(record.initial_hash, record.current_hash);
    assert!(record.last_sync_at.is_some());

    // Database-per-tenant: a database that does not exist yet.
    let name = unique_name("tenantry_test_dbt");
    let _drop = PgDatabase::adopt(&name);
    let url = format!("{}/{name}", tenantry_tests::pg_server_url());
    f.add("d-new", &url, None, "1.0.0").await;
    let r = f.guard("d-new").await;
    assert_eq!(
        (r.action, r.status),
        (Some(GuardAction::Created), SchemaStatus::Synced),
        "{r:?}"
    );

    assert!(verify_setup(&f.registry, &f.vault, Timeouts::default())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn mysql_and_sqlite_guards_create_initialise_and_skip() {
    let f = fleet().await;
    let scratch = MysqlDatabase::create().await;
    f.register(&template(Engine::Mysql), &scratch.url()).await;
    let name = unique_name("tenantry_test_my");
    let _drop = MysqlDatabase::adopt(&name);
    f.add(
        "m-new",
        &format!("{}/{name}", tenantry_tests::mysql_server_url()),
        None,
        "1.1.0",
    )
    .await;
    let r = f.guard("m-new").await;
    assert_eq!(
        (r.action, r.status),
        (Some(GuardAction::Created), SchemaStatus::Synced),
        "{r:?}"
    );
    assert_eq!(
        f.guard("m-new").await.action,
        Some(GuardAction::AlreadyProvisioned)
    );
    let empty = MysqlDatabase::create().await;
    f.add("m-empty", &empty.url(), None, "1.0.0").await;
    assert_eq!(
        f.guard("m-empty").await.action,
        Some(GuardAction::Initialised)
    );

    let sqlite_scratch = format!("sqlite:{}", f.dir.join("scratch.db").display());
    f.register(&template(Engine::Sqlite), &sqlite_scratch).await;
    f.add(
        "l-new",
        &format!("sqlite:{}", f.dir.join("l-new.db").display()),
        None,
        "1.1.0",
    )
    .await;
    let r = f.guard("l-new").await;
    assert_eq!(
        (r.action, r.status),
        (Some(GuardAction::Created), SchemaStatus::Synced),
        "{r:?}"
    );
    assert_eq!(
        f.guard("l-new").await.action,
        Some(GuardAction::AlreadyProvisioned)
    );
}

#[tokio::test]
async fn eight_concurrent_guards_on_fifty_tenants_apply_each_migration_exactly_once() {
    let f = fleet().await;
    let db = PgDatabase::create().await;
    f.register(&template(Engine::Postgres), &db.url()).await;
    let slugs: Vec<String> = (0..50).map(|i| format!("t{i:02}")).collect();
    for s in &slugs {
        f.add(s, &db.url(), Some(&format!("tenant_{s}")), "1.1.0")
            .await;
    }
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (registry, vault, slugs) =
            (Arc::clone(&f.registry), Arc::clone(&f.vault), slugs.clone());
        tasks.spawn(async move {
            let mut order = slugs;
            order.rotate_left(worker * 6);
            for s in order {
                let r = guard_tenant(&registry, &vault, &s, Timeouts::default())
                    .await
                    .unwrap();
                assert!(r.error.is_none(), "{r:?}");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let log = f.registry.audit_log(None, 10_000).await.unwrap();
    for s in &slugs {
        let applied = log
            .iter()
            .filter(|e| {
                e.tenant_slug.as_deref() == Some(s.as_str())
                    && e.action == "guard"
                    && e.detail.starts_with("created and applied")
            })
            .count();
        let skipped = log
            .iter()
            .filter(|e| {
                e.tenant_slug.as_deref() == Some(s.as_str())
                    && e.detail.starts_with("already provisioned")
            })
            .count();
        assert_eq!((applied, skipped), (1, 7), "tenant {s}");
        assert_eq!(
            f.registry.tenant(s).await.unwrap().status,
            SchemaStatus::Synced
        );
    }
    let mut conn = db.connect().await;
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(held, 0, "no guard lock may outlive its guard");
}

#[tokio::test]
async fn a_failing_template_rolls_back_and_releases_the_lock_at_once() {
    let f = fleet().await;
    let db = PgDatabase::create().await;
    let mut broken = template(Engine::Postgres);
    f.register(&broken, &db.url()).await;
    broken.versions.push(TemplateVersion {
        version: "1.2.0".into(),
        migrations: vec![Migration::fixed(
            "1.2.0/0003_broken.sql",
            "CREATE TABLE ok_table (id int); ALTER TABLE no_such_table ADD COLUMN x int;",
        )],
    });
    // Store the broken version without measuring it (it cannot be measured).
    f.registry
        .save_template(&tenantry_registry::templates::StoredTemplate {
            name: "saas".into(),
            engine: Engine::Postgres,
            versions: broken
                .versions
                .iter()
                .map(|v| tenantry_registry::templates::StoredVersion {
                    version: v.version.clone(),
                    migrations: v
                        .migrations
                        .iter()
                        .map(|m| (m.name.to_string(), m.sql.to_string()))
                        .collect(),
                    hash: None,
                    snapshot: None,
                    outside_allowed: None,
                })
                .collect(),
        })
        .await
        .unwrap();
    f.add("broken", &db.url(), Some("tenant_broken"), "1.2.0")
        .await;
    let r = f.guard("broken").await;
    assert_eq!(r.status, SchemaStatus::Failed);
    assert_eq!(r.error_code.as_deref(), Some("migration_failed"));
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("1.2.0/0003_broken.sql"),
        "{r:?}"
    );
    let record = f.registry.tenant("broken").await.unwrap();
    assert_eq!(record.status, SchemaStatus::Failed);
    assert!(record.status_reason.unwrap().contains("no_such_table"));

    let mut conn = db.connect().await;
    let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(pg_lock_key(&db.name, "tenant_broken"))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(free, "the lock must be free as soon as the guard failed");
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'tenant_broken'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        tables, 0,
        "a failed provisioning leaves nothing half-applied on PostgreSQL"
    );
}

#[tokio::test]
async fn a_scan_reports_exactly_the_drifted_tenants() {
    let f = fleet().await;
    let db = PgDatabase::create().await;
    let my_scratch = MysqlDatabase::create().await;
    for (engine, scratch) in [
        (Engine::Postgres, db.url()),
        (Engine::Mysql, my_scratch.url()),
        (
            Engine::Sqlite,
            format!("sqlite:{}", f.dir.join("scratch.db").display()),
        ),
    ] {
        f.register(&template(engine), &scratch).await;
    }
    // 20 PostgreSQL schemas, 4 MariaDB databases, 4 SQLite files, all on 1.1.0.
    for i in 0..20 {
        f.add(
            &format!("pg-{i:02}"),
            &db.url(),
            Some(&format!("ps_{i:02}")),
            "1.1.0",
        )
        .await;
    }
    let my_dbs: Vec<MysqlDatabase> = futures_create(4).await;
    for (i, d) in my_dbs.iter().enumerate() {
        f.add(&format!("my-{i}"), &d.url(), None, "1.1.0").await;
    }
    for i in 0..4 {
        f.add(
            &format!("lite-{i}"),
            &format!("sqlite:{}", f.dir.join(format!("lite-{i}.db")).display()),
            None,
            "1.1.0",
        )
        .await;
    }
    for t in f.registry.list_tenants().await.unwrap() {
        let r = f.guard(&t.slug).await;
        assert_eq!(r.status, SchemaStatus::Synced, "{r:?}");
    }
    // Known drift.
    db.apply("ps_03", "CREATE TABLE custom_reports (id int);")
        .await;
    db.apply("ps_11", "DROP INDEX idx_users_account;").await;
    my_dbs[2]
        .apply("ALTER TABLE users ADD COLUMN badge VARCHAR(20);")
        .await;
    tenantry_tests::sqlite_file(
        &f.dir.join("lite-1.db"),
        "CREATE INDEX custom_ix ON tasks (title);",
    )
    .await;
    // Left on 1.0.0 but recorded as 1.1.0: outdated.
    db.apply("ps_outdated", &fixture("postgres", "template.sql"))
        .await;
    f.add("pg-outdated", &db.url(), Some("ps_outdated"), "1.1.0")
        .await;
    // A schema that was never created: failed.
    f.add("pg-missing", &db.url(), Some("ps_never_created"), "1.1.0")
        .await;

    let seen = std::sync::Mutex::new(0usize);
    let report = scan(
        &f.registry,
        &f.vault,
        &ScanOptions {
            concurrency: 4,
            ..Default::default()
        },
        &|p| *seen.lock().unwrap() = p.done,
        &CancelScan::default(),
    )
    .await
    .unwrap();
    let with = |s: SchemaStatus| {
        report
            .tenants
            .iter()
            .filter(|t| t.status == s)
            .map(|t| t.slug.as_str())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        with(SchemaStatus::Customized),
        ["lite-1", "my-2", "pg-03", "pg-11"],
        "{report:#?}"
    );
    assert_eq!(with(SchemaStatus::Outdated), ["pg-outdated"]);
    assert_eq!(with(SchemaStatus::Failed), ["pg-missing"]);
    assert_eq!(report.counts.synced, 24);
    assert_eq!(*seen.lock().unwrap(), 30, "progress reaches the total");
    let missing = report
        .tenants
        .iter()
        .find(|t| t.slug == "pg-missing")
        .unwrap();
    assert!(missing
        .reason
        .as_deref()
        .unwrap()
        .contains("does not exist"));
    let rec = f.registry.tenant("pg-03").await.unwrap();
    assert_eq!(rec.status, SchemaStatus::Customized);
    assert_ne!(rec.current_hash, rec.initial_hash);

    // The drift, table by table.
    let d = tenantry_fleet::drift::diff_tenant(&f.registry, &f.vault, "pg-03", Timeouts::default())
        .await
        .unwrap();
    let differing: Vec<_> = d
        .diff
        .objects
        .iter()
        .filter(|o| o.presence != Presence::Identical)
        .map(|o| (o.name.as_str(), o.presence))
        .collect();
    assert_eq!(differing, [("custom_reports", Presence::Added)]);
    let d = tenantry_fleet::drift::diff_tenant(&f.registry, &f.vault, "pg-11", Timeouts::default())
        .await
        .unwrap();
    let users = d.diff.objects.iter().find(|o| o.name == "users").unwrap();
    assert_eq!(users.presence, Presence::Changed);
    assert!(
        users.changes.iter().any(|c| c.area == Area::Index
            && c.presence == Presence::Missing
            && c.item.contains("idx_users_account")),
        "{:?}",
        users.changes
    );
    assert!(
        users.unified.contains("-CREATE INDEX idx_users_account"),
        "{}",
        users.unified
    );
    let d = tenantry_fleet::drift::diff_tenant(&f.registry, &f.vault, "pg-00", Timeouts::default())
        .await
        .unwrap();
    assert!(d.diff.is_identical());

    // A second scan reuses the stored hashes of unchanged PostgreSQL
    // schemas, and still sees a change made since.
    let again = scan(
        &f.registry,
        &f.vault,
        &ScanOptions::default(),
        &|_| {},
        &CancelScan::default(),
    )
    .await
    .unwrap();
    // MariaDB databases are reused too once their tables are more than a
    // second old (how many is a matter of timing here, so they are
    // counted apart).
    let reused_pg = |r: &tenantry_fleet::scan::ScanReport| {
        r.tenants
            .iter()
            .filter(|t| t.reused && t.slug.starts_with("pg-"))
            .count()
    };
    assert_eq!(
        reused_pg(&again),
        21,
        "20 + outdated PostgreSQL schemas, not the missing one: {again:#?}"
    );
    assert!(again
        .tenants
        .iter()
        .all(|t| !t.reused || !t.slug.starts_with("lite-")));
    assert_eq!(again.counts.customized, 4);
    db.apply("ps_05", "ALTER TABLE accounts ADD COLUMN region text;")
        .await;
    my_dbs[0]
        .apply("ALTER TABLE tasks ADD COLUMN flagged TINYINT;")
        .await;
    let third = scan(
        &f.registry,
        &f.vault,
        &ScanOptions::default(),
        &|_| {},
        &CancelScan::default(),
    )
    .await
    .unwrap();
    assert_eq!(reused_pg(&third), 20);
    let ps05 = third.tenants.iter().find(|t| t.slug == "pg-05").unwrap();
    assert_eq!(
        (ps05.status, ps05.reused),
        (SchemaStatus::Customized, false)
    );
    let my0 = third.tenants.iter().find(|t| t.slug == "my-0").unwrap();
    assert_eq!((my0.status, my0.reused), (SchemaStatus::Customized, false));
    let full = scan(
        &f.registry,
        &f.vault,
        &ScanOptions {
            full: true,
            ..Default::default()
        },
        &|_| {},
        &CancelScan::default(),
    )
    .await
    .unwrap();
    assert_eq!(full.reused, 0);
    assert_eq!(full.counts.customized, 6);

    // A filtered re-scan, and a cancelled one.
    let one = scan(
        &f.registry,
        &f.vault,
        &ScanOptions {
            tenants: Some(vec!["pg-11".into()]),
            ..Default::default()
        },
        &|_| {},
        &CancelScan::default(),
    )
    .await
    .unwrap();
    assert_eq!(one.tenants.len(), 1);
    let cancel = CancelScan::default();
    cancel.cancel();
    let cancelled = scan(
        &f.registry,
        &f.vault,
        &ScanOptions {
            concurrency: 1,
            ..Default::default()
        },
        &|_| {},
        &cancel,
    )
    .await
    .unwrap();
    assert!(cancelled.cancelled);
    assert!(cancelled.tenants.len() < 30);
}

async fn futures_create(n: usize) -> Vec<MysqlDatabase> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(MysqlDatabase::create().await);
    }
    out
}

#[tokio::test]
async fn shared_customisations_are_grouped_and_an_accepted_one_is_not_alerted() {
    let f = fleet().await;
    let db = PgDatabase::create().await;
    f.register(&template(Engine::Postgres), &db.url()).await;
    for s in ["g1", "g2", "g3"] {
        f.add(s, &db.url(), Some(s), "1.1.0").await;
        f.guard(s).await;
    }
    for s in ["g1", "g2"] {
        db.apply(s, "CREATE TABLE partner_feed (id int);").await;
    }
    let report = scan(
        &f.registry,
        &f.vault,
        &ScanOptions::default(),
        &|_| {},
        &CancelScan::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.groups.len(), 1);
    assert_eq!(report.groups[0].tenants, ["g1", "g2"]);

    tenantry_fleet::drift::accept_customisation(
        &f.registry,
        &f.vault,
        "g1",
        "partner feed agreed with Acme, ticket 4411",
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert!(tenantry_fleet::drift::accept_customisation(
        &f.registry,
        &f.vault,
        "g2",
        "  ",
        Timeouts::default()
    )
    .await
    .is_err());
    let report = scan(
        &f.registry,
        &f.vault,
        &ScanOptions::default(),
        &|_| {},
        &CancelScan::default(),
    )
    .await
    .unwrap();
    let g1 = report.tenants.iter().find(|t| t.slug == "g1").unwrap();
    assert_eq!((g1.status, g1.accepted), (SchemaStatus::Customized, true));
    assert!(g1.reason.as_deref().unwrap().contains("ticket 4411"));
    assert!(
        !report
            .tenants
            .iter()
            .find(|t| t.slug == "g2")
            .unwrap()
            .accepted
    );

    // A further change is not covered by the acceptance.
    db.apply("g1", "CREATE TABLE more_custom (id int);").await;
    let report = scan(
        &f.registry,
        &f.vault,
        &ScanOptions::default(),
        &|_| {},
        &CancelScan::default(),
    )
    .await
    .unwrap();
    assert!(
        !report
            .tenants
            .iter()
            .find(|t| t.slug == "g1")
            .unwrap()
            .accepted
    );
}

#[tokio::test]
async fn upgrades_check_drift_first_and_verify_the_result() {
    use tenantry_fleet::upgrade::upgrade_tenant;
    let f = fleet().await;
    let db = PgDatabase::create().await;
    let my = MysqlDatabase::create().await;
    for (engine, scratch) in [
        (Engine::Postgres, db.url()),
        (Engine::Mysql, my.url()),
        (
            Engine::Sqlite,
            format!("sqlite:{}", f.dir.join("scratch.db").display()),
        ),
    ] {
        f.register(&template(engine), &scratch).await;
    }
    let my_tenant = MysqlDatabase::create().await;
    f.add("u-pg", &db.url(), Some("u_pg"), "1.0.0").await;
    f.add("u-custom", &db.url(), Some("u_custom"), "1.0.0")
        .await;
    f.add("u-my", &my_tenant.url(), None, "1.0.0").await;
    f.add(
        "u-lite",
        &format!("sqlite:{}", f.dir.join("u-lite.db").display()),
        None,
        "1.0.0",
    )
    .await;
    for s in ["u-pg", "u-custom", "u-my", "u-lite"] {
        assert_eq!(f.guard(s).await.status, SchemaStatus::Synced);
    }
    for s in ["u-pg", "u-my", "u-lite"] {
        let o = upgrade_tenant(
            &f.registry,
            &f.vault,
            s,
            "1.1.0",
            false,
            Timeouts::default(),
        )
        .await
        .unwrap();
        assert_eq!(
            (o.from.as_str(), o.status),
            ("1.0.0", SchemaStatus::Synced),
            "{s}: {o:?}"
        );
        assert_eq!(o.applied, ["1.1.0/0002_locale.sql"]);
        let rec = f.registry.tenant(s).await.unwrap();
        assert_eq!(
            (rec.template_version.as_deref(), rec.status),
            (Some("1.1.0"), SchemaStatus::Synced)
        );
    }
    // Already there: refused.
    let err = upgrade_tenant(
        &f.registry,
        &f.vault,
        "u-pg",
        "1.1.0",
        false,
        Timeouts::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "upgrade_refused");

    // A customized tenant is refused unless allowed, and nothing is applied.
    db.apply("u_custom", "CREATE TABLE custom_reports (id int);")
        .await;
    let err = upgrade_tenant(
        &f.registry,
        &f.vault,
        "u-custom",
        "1.1.0",
        false,
        Timeouts::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "upgrade_refused", "{err}");
    assert_eq!(
        f.registry
            .tenant("u-custom")
            .await
            .unwrap()
            .template_version
            .as_deref(),
        Some("1.0.0")
    );
    let o = upgrade_tenant(
        &f.registry,
        &f.vault,
        "u-custom",
        "1.1.0",
        true,
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert_eq!(o.status, SchemaStatus::Customized);
    assert!(o.warning.is_some());
    let log = f.registry.audit_log(Some("u-custom"), 20).await.unwrap();
    assert!(log
        .iter()
        .any(|e| e.action == "upgrade" && e.result == tenantry_registry::AuditResult::Refused));
}

/// Issue 13, item 13: a template that reaches outside the tenant is refused
/// when added (before its SQL runs anywhere) and, if it came in before the
/// lint knew it, by the guard and the reset; an explicit, audited allowance
/// lets an intended one through.
#[tokio::test]
async fn a_template_reaching_outside_the_tenant_is_refused_unless_allowed() {
    use tenantry_fleet::guard::register_template_allowing;
    use tenantry_registry::AuditResult;
    let f = fleet().await;
    let db = PgDatabase::create().await;
    db.apply(
        "public",
        "CREATE TABLE customer_data (v int); INSERT INTO customer_data VALUES (1), (2);",
    )
    .await;
    let public_rows = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM public.customer_data")
            .fetch_one(&mut db.connect().await)
            .await
            .unwrap_or(-1)
    };
    let hostile = [
        "DROP SCHEMA public CASCADE;",
        "DO $$ BEGIN EXECUTE 'TRUNCATE public.customer_data'; END $$;",
        "TRUNCATE customer_data;",
        "SET search_path = public; DELETE FROM customer_data;",
        "DELETE FROM public.customer_data;",
        "CREATE FUNCTION wipe() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN DELETE FROM public.customer_data; RETURN NULL; END $f$;",
    ];
    let with = |extra: &str| {
        let mut t = template(Engine::Postgres);
        t.versions.truncate(1);
        let sql = format!("{}\n{extra}", fixture("postgres", "template.sql"));
        t.versions[0].migrations = vec![Migration {
            name: "1.0.0/0001_init.sql".into(),
            sql: sql.into(),
        }];
        t
    };
    let scratch = tenantry_introspect::ConnectionUrl::parse(&db.url()).unwrap();
    for extra in hostile {
        let err = register_template_allowing(
            &f.registry,
            &with(extra),
            &scratch,
            None,
            Timeouts::default(),
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "template_reaches_outside", "{extra}: {err}");
        assert_eq!(public_rows().await, 2, "{extra}: nothing may run");
    }
    let refused = f.registry.audit_log(None, 100).await.unwrap();
    assert_eq!(
        refused
            .iter()
            .filter(|a| a.action == "template.save" && a.result == AuditResult::Refused)
            .count(),
        hostile.len()
    );
    // The view joining with aliases is not mistaken for another schema.
    f.register(&template(Engine::Postgres), &db.url()).await;

    // A registry that took the hostile template before the lint knew it:
    // the guard refuses, the public data stays.
    let old = with(hostile[0]);
    f.registry
        .save_template(&tenantry_registry::templates::StoredTemplate {
            name: "saas".into(),
            engine: Engine::Postgres,
            versions: vec![tenantry_registry::templates::StoredVersion {
                version: "1.0.0".into(),
                migrations: vec![(
                    "1.0.0/0001_init.sql".into(),
                    old.versions[0].migrations[0].sql.to_string(),
                )],
                hash: None,
                snapshot: None,
                outside_allowed: None,
            }],
        })
        .await
        .unwrap();
    f.add("victim", &db.url(), Some("t_victim"), "1.0.0").await;
    let r = f.guard("victim").await;
    assert_eq!(
        r.error_code.as_deref(),
        Some("template_reaches_outside"),
        "{r:?}"
    );
    assert_eq!(public_rows().await, 2);
    let plan =
        tenantry_fleet::reset::plan_reset(&f.registry, &f.vault, "victim", Timeouts::default())
            .await;
    assert_eq!(
        plan.err().map(|e| e.code()),
        Some("template_reaches_outside")
    );
    assert_eq!(public_rows().await, 2);

    // Allowed on purpose, with a reason: stored, audited, applied.
    let intended = with("CREATE TABLE public.tenant_seen (schema_name text);");
    register_template_allowing(
        &f.registry,
        &intended,
        &scratch,
        None,
        Timeouts::default(),
        Some("a shared registry table, reviewed in PR 42"),
    )
    .await
    .unwrap();
    let stored = f.registry.template("saas", Engine::Postgres).await.unwrap();
    assert!(stored.versions[0]
        .outside_allowed
        .as_deref()
        .unwrap()
        .starts_with("a shared registry table, reviewed in PR 42 (allowed by "));
    let log = f.registry.audit_log(None, 100).await.unwrap();
    assert!(log
        .iter()
        .any(|a| a.action == "template.allow_outside" && a.detail.contains("PR 42")));
}

/// Issue 13, item 7: on MariaDB every migration of the guard is journaled.
/// A guard killed inside a migration leaves a partly built schema: the next
/// guard says so (never "already provisioned") and a reset rebuilds it; a
/// guard that stopped between two migrations is resumed where it stopped.
#[tokio::test]
async fn a_mariadb_guard_killed_part_way_is_reported_then_rebuilt_or_resumed() {
    use sqlx::Connection;
    let f = fleet().await;
    let gate = unique_name("tenantry_gate");
    let second = format!(
        "CREATE TABLE webhooks (id INT PRIMARY KEY); SELECT GET_LOCK('{gate}', 60); CREATE TABLE later (id INT);"
    );
    let scratch = MysqlDatabase::create().await;
    f.register(
        &Template {
            name: "saas".into(),
            engine: Engine::Mysql,
            versions: vec![TemplateVersion {
                version: "1.0.0".into(),
                migrations: vec![
                    Migration {
                        name: "1.0.0/0001_init.sql".into(),
                        sql: fixture("mysql", "template.sql").into(),
                    },
                    Migration {
                        name: "1.0.0/0002_gate.sql".into(),
                        sql: second.clone().into(),
                    },
                ],
            }],
        },
        &scratch.url(),
    )
    .await;
    let db = MysqlDatabase::create().await;
    f.add("half", &db.url(), None, "1.0.0").await;

    // The test holds the gate: the guard blocks inside 0002, after its
    // first statement committed. Then the "process" dies: the task is
    // dropped and its connection killed.
    let mut holder = MysqlDatabase::adopt_connect(&db.name).await;
    let got: i64 = sqlx::query_scalar("SELECT GET_LOCK(?, 5)")
        .bind(&gate)
        .fetch_one(&mut holder)
        .await
        .unwrap();
    assert_eq!(got, 1);
    let registry = Arc::clone(&f.registry);
    let vault = Arc::clone(&f.vault);
    let guard =
        tokio::spawn(
            async move { guard_tenant(&registry, &vault, "half", Timeouts::default()).await },
        );
    let mut watcher = MysqlDatabase::adopt_connect(&db.name).await;
    let blocked = loop {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE CONCAT('%GET_LOCK(''', ?, '''%') AND ID <> CONNECTION_ID()",
        )
        .bind(&gate)
        .fetch_optional(&mut watcher)
        .await
        .unwrap();
        if let Some(id) = id {
            break id;
        }
        assert!(!guard.is_finished(), "the guard never reached the gate");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    guard.abort();
    sqlx::query(&format!("KILL CONNECTION {blocked}"))
        .execute(&mut watcher)
        .await
        .unwrap();
    let _ = sqlx::query("SELECT RELEASE_LOCK(?)")
        .bind(&gate)
        .execute(&mut holder)
        .await;
    holder.close().await.unwrap();
    // The task stood in for a process; a dead process is what the journal
    // then holds (this process, alive, would keep the tenant busy).
    let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite:{}",
        f.registry.file().unwrap().display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE operations SET pid = 2147483646 WHERE finished_at IS NULL")
        .execute(&mut c)
        .await
        .unwrap();
    drop(c);

    let ops = f.registry.unfinished_operations().await.unwrap();
    assert_eq!(ops.len(), 1, "{ops:?}");
    assert_eq!(ops[0].kind, "provision");
    assert_eq!(
        ops[0].last_step.as_deref(),
        Some("migration started: 1.0.0/0002_gate.sql")
    );
    let again = f.guard("half").await;
    assert_eq!(
        again.error_code.as_deref(),
        Some("provision_incomplete"),
        "{again:?}"
    );
    assert!(
        again
            .error
            .as_deref()
            .unwrap()
            .contains("inside migration 1.0.0/0002_gate.sql"),
        "{again:?}"
    );
    assert_eq!(
        f.registry.tenant("half").await.unwrap().status,
        SchemaStatus::Failed
    );

    // A reset rebuilds it (the partial tables set aside); then the guard
    // sees a finished schema.
    let plan =
        tenantry_fleet::reset::plan_reset(&f.registry, &f.vault, "half", Timeouts::default())
            .await
            .unwrap();
    let done = tenantry_fleet::reset::execute_reset(
        &f.registry,
        &f.vault,
        &plan,
        "half",
        Timeouts::default(),
    )
    .await
    .unwrap();
    let _q = MysqlDatabase::adopt(done.backup.trim_start_matches("database "));
    let mut c = db.connect().await;
    let later: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'later'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(later, 1, "the reset applied every migration");
    assert_eq!(done.status, SchemaStatus::Synced, "{done:?}");
    let after = f.guard("half").await;
    assert_eq!(
        (after.action, after.status),
        (Some(GuardAction::AlreadyProvisioned), SchemaStatus::Synced),
        "{after:?}"
    );

    // Stopped between two migrations: resumed with the rest only.
    let db2 = MysqlDatabase::create().await;
    f.add("between", &db2.url(), None, "1.0.0").await;
    db2.apply(&fixture("mysql", "template.sql")).await;
    let op = f
        .registry
        .begin_operation("between", "provision", None)
        .await
        .unwrap();
    for step in [
        "migration started: 1.0.0/0001_init.sql",
        "migration done: 1.0.0/0001_init.sql",
    ] {
        f.registry.record_step(op, step).await.unwrap();
    }
    let resumed = f.guard("between").await;
    assert_eq!(resumed.error, None, "{resumed:?}");
    assert_eq!(resumed.applied, ["1.0.0/0002_gate.sql"]);
    assert_eq!(resumed.status, SchemaStatus::Synced);
    assert!(f
        .registry
        .unfinished_operations()
        .await
        .unwrap()
        .iter()
        .all(|o| o.tenant_slug != "between"));
    assert_eq!(
        f.registry
            .operation_steps(op)
            .await
            .unwrap()
            .last()
            .map(String::as_str),
        Some("migration done: 1.0.0/0002_gate.sql")
    );
}

/// Issue 13, item 17: a template that cannot be measured and an accept
/// whose tenant cannot be read are recorded as failures in the audit log.
#[tokio::test]
async fn failed_template_adds_and_accepts_are_audited() {
    use tenantry_registry::AuditResult;
    let f = fleet().await;
    let db = PgDatabase::create().await;
    let mut broken = template(Engine::Postgres);
    broken.versions[0].migrations[0].sql = "CREATE TABLE a (x no_such_type);".into();
    let scratch = tenantry_introspect::ConnectionUrl::parse(&db.url()).unwrap();
    let err = tenantry_fleet::guard::register_template(
        &f.registry,
        &broken,
        &scratch,
        Timeouts::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "migration_failed");
    f.add(
        "gone",
        &format!("{}/tenantry_no_such_db", tenantry_tests::pg_server_url()),
        Some("x"),
        "1.0.0",
    )
    .await;
    let err = tenantry_fleet::drift::accept_customisation(
        &f.registry,
        &f.vault,
        "gone",
        "ok",
        Timeouts::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "database_not_found", "{err}");
    let log = f.registry.audit_log(None, 50).await.unwrap();
    assert!(log.iter().any(|a| a.action == "template.save"
        && a.result == AuditResult::Failed
        && a.detail.contains("not measured")));
    assert!(log.iter().any(|a| a.action == "baseline.accept"
        && a.result == AuditResult::Failed
        && a.tenant_slug.as_deref() == Some("gone")));
}

/// Rewrites a registry's stored hashes as a format v1 canonicaliser would
/// have left them (the same digits under the `v1:` stamp; what matters is
/// the stamp, which says another canonicaliser made them).
async fn as_if_measured_by_format_v1(f: &Fleet) {
    use sqlx::Connection;
    let mut c =
        sqlx::SqliteConnection::connect(&format!("sqlite:{}", f.dir.join("registry.db").display()))
            .await
            .unwrap();
    sqlx::raw_sql(
        "UPDATE template_versions SET schema_hash = 'v1:' || substr(schema_hash, 4);
         UPDATE tenants SET current_hash = 'v1:' || substr(current_hash, 4),
                            initial_hash = 'v1:' || substr(initial_hash, 4),
                            accepted_hash = 'v1:' || substr(accepted_hash, 4);",
    )
    .execute(&mut c)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_canonical_format_change_is_remeasured_and_never_reported_as_drift() {
    let f = fleet().await;
    let db = PgDatabase::create().await;
    f.register(&template(Engine::Postgres), &db.url()).await;
    f.register(&template(Engine::Sqlite), &f.sqlite_url("scratch.db"))
        .await;
    f.add("pg-a", &db.url(), Some("fmt_a"), "1.1.0").await;
    f.add("lite-a", &f.sqlite_url("lite-a.db"), None, "1.1.0")
        .await;
    f.guard("pg-a").await;
    f.guard("lite-a").await;
    let scan_now = || async {
        scan(
            &f.registry,
            &f.vault,
            &ScanOptions::default(),
            &|_| {},
            &CancelScan::default(),
        )
        .await
        .unwrap()
    };
    let first = scan_now().await;
    assert_eq!(first.counts.synced, 2, "{first:#?}");
    as_if_measured_by_format_v1(&f).await;

    // The SQLite template is re-measured on the spot; the PostgreSQL one
    // needs a scratch server: its tenant is unknown, with what to run,
    // never customized. The stored v1 tenant hash is not reused although
    // the catalog fingerprint is unchanged.
    let second = scan_now().await;
    let by = |slug: &str| {
        second
            .tenants
            .iter()
            .find(|t| t.slug == slug)
            .unwrap()
            .clone()
    };
    assert_eq!(by("lite-a").status, SchemaStatus::Synced, "{second:#?}");
    let pg = by("pg-a");
    assert_eq!(pg.status, SchemaStatus::Unknown, "{pg:#?}");
    assert!(!pg.reused);
    assert!(
        pg.reason
            .as_deref()
            .unwrap()
            .contains("tenantry template remeasure"),
        "{pg:#?}"
    );
    let lineage = f.registry.lineage("saas", Engine::Sqlite).await.unwrap();
    assert!(lineage
        .iter()
        .all(|v| v.hash.to_string().starts_with("v7:")));

    let remeasured = tenantry_fleet::guard::remeasure_template(
        &f.registry,
        "saas",
        Engine::Postgres,
        &tenantry_introspect::ConnectionUrl::parse(&db.url()).unwrap(),
        None,
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert!(remeasured
        .iter()
        .all(|v| v.hash.to_string().starts_with("v7:")));
    let third = scan_now().await;
    assert_eq!(third.counts.synced, 2, "{third:#?}");
    let audit = f.registry.audit_log(None, 50).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|a| a.action == "template.remeasure")
            .count(),
        2,
        "both re-measures are audited"
    );
}

/// `template add --scratch-name`: a MySQL account with rights on one
/// database only (`GRANT ALL ON name.*`) measures a template in it, and
/// it is gone afterwards; a chosen scratch that holds objects is refused
/// and left as it was; the hash is the one a made-up scratch gives.
#[tokio::test]
async fn a_chosen_scratch_database_needs_rights_on_it_alone_and_is_never_one_in_use() {
    use sqlx::{Connection, Executor};
    use tenantry_fleet::guard::{measure, measure_in};
    use tenantry_introspect::ConnectionUrl;
    use tenantry_model::hash_schema;

    let t = template(Engine::Mysql);
    let root = ConnectionUrl::parse(&tenantry_tests::mysql_server_url()).unwrap();
    let reference = measure(&t, &root, Timeouts::default()).await.unwrap();

    let name = unique_name("scr");
    let user = unique_name("u");
    let mut admin =
        sqlx::MySqlConnection::connect(&format!("{}/", tenantry_tests::mysql_server_url()))
            .await
            .unwrap();
    for host in ["%", "localhost"] {
        admin
            .execute(
                format!(
                    "CREATE USER '{user}'@'{host}' IDENTIFIED BY 'Scratch-Pw-1';
                     GRANT ALL PRIVILEGES ON `{name}`.* TO '{user}'@'{host}'"
                )
                .as_str(),
            )
            .await
            .unwrap();
    }
    let limited =
        ConnectionUrl::parse(&format!("mysql://{user}:Scratch-Pw-1@127.0.0.1:3306")).unwrap();
    // A made-up name needs CREATE DATABASE on the server: refused.
    assert!(measure(&t, &limited, Timeouts::default()).await.is_err());
    let measured = measure_in(&t, &limited, Some(&name), Timeouts::default())
        .await
        .unwrap();
    assert_eq!(measured.len(), reference.len());
    for ((v, a), (w, b)) in measured.iter().zip(&reference) {
        assert_eq!(v, w);
        assert_eq!(hash_schema(a).root, hash_schema(b).root, "version {v}");
    }
    let left: Option<String> = sqlx::query_scalar(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
    )
    .bind(&name)
    .fetch_optional(&mut admin)
    .await
    .unwrap();
    assert_eq!(left, None, "the scratch database is dropped afterwards");

    // One that holds something is someone's: refused, untouched.
    admin
        .execute(format!("CREATE DATABASE `{name}`; CREATE TABLE `{name}`.keep (id int)").as_str())
        .await
        .unwrap();
    let err = measure_in(&t, &limited, Some(&name), Timeouts::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "scratch_not_empty", "{err}");
    let kept: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'keep'",
    )
    .bind(&name)
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert_eq!(kept, 1);
    admin
        .execute(format!("DROP DATABASE `{name}`").as_str())
        .await
        .unwrap();
    for host in ["%", "localhost"] {
        admin
            .execute(format!("DROP USER '{user}'@'{host}'").as_str())
            .await
            .unwrap();
    }
}

/// The same on PostgreSQL: a chosen scratch schema is made and dropped;
/// one holding anything — even a kind the model does not read, such as a
/// collation — is refused and left as it was.
#[tokio::test]
async fn a_chosen_scratch_schema_holding_anything_is_refused_and_kept() {
    use tenantry_fleet::guard::{measure, measure_in};
    use tenantry_introspect::ConnectionUrl;
    use tenantry_model::hash_schema;

    let db = PgDatabase::create().await;
    let url = ConnectionUrl::parse(&db.url()).unwrap();
    let t = template(Engine::Postgres);
    let reference = measure(&t, &url, Timeouts::default()).await.unwrap();
    let measured = measure_in(&t, &url, Some("measure_here"), Timeouts::default())
        .await
        .unwrap();
    assert_eq!(
        hash_schema(&measured[1].1).root,
        hash_schema(&reference[1].1).root
    );
    let mut conn = db.connect().await;
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'measure_here'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(left, 0, "dropped afterwards");

    db.apply("measure_here", "CREATE COLLATION keep (locale = 'C')")
        .await;
    let err = measure_in(&t, &url, Some("measure_here"), Timeouts::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "scratch_not_empty", "{err}");
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_collation WHERE collname = 'keep'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(kept, 1);
}
