//! The guarded reset-and-reapply on the real servers: plan with row counts,
//! exact confirmation, backup, stale plans, a killed connection, a MariaDB
//! failure after the backup, and SQLite.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use sqlx::Executor;
use tenantry_fleet::reset::{execute_reset, plan_reset};
use tenantry_fleet::{Migration, Template, TemplateVersion};
use tenantry_introspect::Timeouts;
use tenantry_model::{Engine, SchemaStatus};
use tenantry_registry::templates::{StoredTemplate, StoredVersion};
use tenantry_registry::AuditResult;
use tenantry_tests::{fixture, MysqlDatabase, PgDatabase, TestFleet};

/// The fixture template, with `prefix` run first (kept short: the server
/// shows only the first 1 kB of a running statement).
fn template(engine: Engine, prefix: &'static str) -> Template {
    let sql = format!("{prefix}{}", fixture(engine.as_str(), "template.sql"));
    Template {
        name: "saas".into(),
        engine,
        versions: vec![TemplateVersion {
            version: "1.0.0".into(),
            migrations: vec![Migration {
                name: "1.0.0/0001_init.sql".into(),
                sql: sql.into(),
            }],
        }],
    }
}

type Env = TestFleet;

async fn env() -> Env {
    TestFleet::new().await
}

/// Registers a tenant on saas 1.0.0 and provisions it.
trait Provisioned {
    async fn tenant(&self, slug: &str, url: &str, schema: Option<&str>);
}

impl Provisioned for TestFleet {
    async fn tenant(&self, slug: &str, url: &str, schema: Option<&str>) {
        self.add(slug, url, schema, "1.0.0").await;
        let g = self.guard(slug).await;
        assert_eq!(g.status, SchemaStatus::Synced, "{g:?}");
    }
}

async fn pg_count(db: &PgDatabase, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&mut db.connect().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_customized_postgres_tenant_is_reset_after_exact_confirmation_with_its_data_backed_up() {
    let e = env().await;
    let db = PgDatabase::create().await;
    e.register(&template(Engine::Postgres, ""), &db.url()).await;
    e.tenant("acme", &db.url(), Some("acme")).await;
    db.apply(
        "acme",
        "CREATE TABLE custom_reports (id int); INSERT INTO custom_reports SELECT generate_series(1, 250);
         ALTER TABLE users ADD COLUMN badge text;",
    )
    .await;

    let plan = plan_reset(&e.registry, &e.vault, "acme", Timeouts::default())
        .await
        .unwrap();
    let custom = plan
        .objects
        .iter()
        .find(|o| o.name == "custom_reports")
        .unwrap();
    assert_eq!(
        (custom.presence.as_str(), custom.rows),
        ("added", Some(250))
    );
    assert_eq!(
        plan.objects
            .iter()
            .find(|o| o.name == "users")
            .unwrap()
            .presence,
        "changed"
    );
    assert_ne!(plan.drift_hash, plan.template_hash);

    // Wrong and look-alike confirmations execute nothing.
    for typed in ["acme ", "ACME", "аcme", "", "acm"] {
        let err = execute_reset(&e.registry, &e.vault, &plan, typed, Timeouts::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "confirmation_mismatch", "{typed:?}");
    }
    assert_eq!(
        pg_count(
            &db,
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenantry_q_%'"
        )
        .await,
        0
    );
    assert_eq!(
        pg_count(&db, "SELECT count(*) FROM acme.custom_reports").await,
        250
    );
    let refused = e.registry.audit_log(Some("acme"), 50).await.unwrap();
    assert_eq!(
        refused
            .iter()
            .filter(|a| a.action == "reset" && a.result == AuditResult::Refused)
            .count(),
        5
    );

    let done = execute_reset(&e.registry, &e.vault, &plan, "acme", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(
        done.hash_after.as_deref(),
        Some(plan.template_hash.as_str())
    );
    let quarantine: String = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'tenantry_q_%'",
    )
    .fetch_one(&mut db.connect().await)
    .await
    .unwrap();
    assert_eq!(
        pg_count(
            &db,
            &format!("SELECT count(*) FROM {quarantine}.custom_reports")
        )
        .await,
        250
    );
    assert_eq!(
        e.registry.tenant("acme").await.unwrap().status,
        SchemaStatus::Synced
    );
    let backups = e.registry.backups(Some("acme")).await.unwrap();
    assert_eq!(backups.len(), 1);
    assert!(backups[0].location.contains(&quarantine));

    // Restore it: the custom table is back, the rebuilt schema becomes a backup.
    use tenantry_fleet::backup::{purge_backup, restore_backup};
    let id = backups[0].id;
    assert_eq!(
        restore_backup(&e.registry, &e.vault, id, "acme!", Timeouts::default())
            .await
            .unwrap_err()
            .code(),
        "confirmation_mismatch"
    );
    let displaced = restore_backup(&e.registry, &e.vault, id, "acme", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(
        pg_count(&db, "SELECT count(*) FROM acme.custom_reports").await,
        250
    );
    let live: Vec<_> = e
        .registry
        .backups(Some("acme"))
        .await
        .unwrap()
        .into_iter()
        .filter(|b| b.purged_at.is_none())
        .collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].location, displaced);
    purge_backup(
        &e.registry,
        &e.vault,
        live[0].id,
        "acme",
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        pg_count(
            &db,
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenantry_q_%'"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_stale_plan_is_refused_and_changes_nothing() {
    let e = env().await;
    let db = PgDatabase::create().await;
    e.register(&template(Engine::Postgres, ""), &db.url()).await;
    e.tenant("globex", &db.url(), Some("globex")).await;
    db.apply("globex", "CREATE TABLE custom_a (id int);").await;
    let plan = plan_reset(&e.registry, &e.vault, "globex", Timeouts::default())
        .await
        .unwrap();
    db.apply("globex", "CREATE TABLE custom_b (id int);").await;
    let err = execute_reset(&e.registry, &e.vault, &plan, "globex", Timeouts::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "plan_stale", "{err}");
    assert_eq!(pg_count(&db, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'globex' AND c.relname LIKE 'custom_%'").await, 2);
}

#[tokio::test]
async fn a_connection_killed_mid_reset_leaves_postgres_fully_old() {
    let e = env().await;
    let db = PgDatabase::create().await;
    // The template sleeps while it is applied, so the reset can be killed.
    e.register(
        &template(Engine::Postgres, "SELECT pg_sleep(2);\n"),
        &db.url(),
    )
    .await;
    e.tenant("initech", &db.url(), Some("initech")).await;
    db.apply(
        "initech",
        "CREATE TABLE tps (id int); INSERT INTO tps SELECT generate_series(1, 99);",
    )
    .await;
    let before = plan_reset(&e.registry, &e.vault, "initech", Timeouts::default())
        .await
        .unwrap();

    let (registry, vault, plan) = (
        Arc::clone(&e.registry),
        Arc::clone(&e.vault),
        before.clone(),
    );
    let reset = tokio::spawn(async move {
        execute_reset(&registry, &vault, &plan, "initech", Timeouts::default()).await
    });
    let mut admin = db.connect().await;
    let mut killed = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let n: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%pg_sleep%'",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if n > 0 {
            killed = true;
            break;
        }
    }
    if !killed {
        panic!(
            "the reset's backend was never seen applying the template: {:?}",
            reset.await.unwrap()
        );
    }
    let err = reset.await.unwrap().unwrap_err();
    assert!(
        matches!(err.code(), "migration_failed" | "catalog_failed"),
        "{err}"
    );
    let after = plan_reset(&e.registry, &e.vault, "initech", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(after.drift_hash, before.drift_hash, "fully old");
    assert_eq!(pg_count(&db, "SELECT count(*) FROM initech.tps").await, 99);
    assert_eq!(
        pg_count(
            &db,
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenantry_q_%'"
        )
        .await,
        0
    );
    assert_eq!(
        e.registry.tenant("initech").await.unwrap().status,
        SchemaStatus::Failed
    );
}

#[tokio::test]
async fn mariadb_reset_backs_up_then_reports_a_partial_failure_with_intact_data() {
    let e = env().await;
    let scratch = MysqlDatabase::create().await;
    let good = template(Engine::Mysql, "");
    e.register(&good, &scratch.url()).await;
    let t1 = MysqlDatabase::create().await;
    e.tenant("umbrella", &t1.url(), None).await;
    t1.apply("CREATE TABLE custom_log (id INT PRIMARY KEY, note TEXT); INSERT INTO custom_log VALUES (1, 'a'), (2, 'b'), (3, 'c');")
        .await;

    // A successful reset first, on a second tenant.
    let t2 = MysqlDatabase::create().await;
    e.tenant("hooli", &t2.url(), None).await;
    t2.apply("CREATE TABLE custom_x (id INT);").await;
    let plan = plan_reset(&e.registry, &e.vault, "hooli", Timeouts::default())
        .await
        .unwrap();
    let done = execute_reset(&e.registry, &e.vault, &plan, "hooli", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced, "{done:?}");
    let q = done.backup.trim_start_matches("database ").to_owned();
    let _drop_q = MysqlDatabase::adopt(&q);
    // Restore hooli's backup: custom_x and the template's views come back.
    let id = e.registry.backups(Some("hooli")).await.unwrap()[0].id;
    let displaced = tenantry_fleet::backup::restore_backup(
        &e.registry,
        &e.vault,
        id,
        "hooli",
        Timeouts::default(),
    )
    .await
    .unwrap();
    let _drop_d = MysqlDatabase::adopt(displaced.trim_start_matches("database "));
    let mut c = t2.connect().await;
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('custom_x', 'open_tasks')")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 2);

    // Now break the template's migration (same measured schema) and reset umbrella.
    let snapshot = e
        .registry
        .template_snapshot("saas", Engine::Mysql, "1.0.0")
        .await
        .unwrap();
    let hash = tenantry_model::hash_schema(&snapshot).root;
    e.registry
        .save_template(&StoredTemplate {
            name: "saas".into(),
            engine: Engine::Mysql,
            versions: vec![StoredVersion {
                version: "1.0.0".into(),
                migrations: vec![("1.0.0/0001_init.sql".into(), "CREATE TABLE accounts (id INT PRIMARY KEY); CREATE TABLE broken (x no_such_type);".into())],
                hash: Some(hash),
                snapshot: Some(snapshot),
                outside_allowed: None,
            }],
        })
        .await
        .unwrap();
    let checksum = |db: String, table: &'static str| async move {
        let mut c = MysqlDatabase::adopt_connect(&db).await;
        let row: (String, Option<i64>) =
            sqlx::query_as(&format!("CHECKSUM TABLE `{db}`.`{table}`"))
                .fetch_one(&mut c)
                .await
                .unwrap();
        row.1
    };
    let before_custom = checksum(t1.name.clone(), "custom_log").await;
    let before_users = checksum(t1.name.clone(), "users").await;
    let plan = plan_reset(&e.registry, &e.vault, "umbrella", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(
        plan.objects
            .iter()
            .find(|o| o.name == "custom_log")
            .unwrap()
            .rows,
        Some(3)
    );
    let err = execute_reset(
        &e.registry,
        &e.vault,
        &plan,
        "umbrella",
        Timeouts::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "partial_reset", "{err}");
    assert!(err.to_string().contains("tenantry_q_"), "{err}");
    let backups = e.registry.backups(Some("umbrella")).await.unwrap();
    let q = backups[0]
        .location
        .trim_start_matches("database ")
        .to_owned();
    let _drop_q2 = MysqlDatabase::adopt(&q);
    assert_eq!(checksum(q.clone(), "custom_log").await, before_custom);
    assert_eq!(checksum(q, "users").await, before_users);
    let rec = e.registry.tenant("umbrella").await.unwrap();
    assert_eq!(rec.status, SchemaStatus::Failed);
}

#[tokio::test]
async fn a_sqlite_tenant_is_reset_with_a_file_backup() {
    let e = env().await;
    let scratch = format!("sqlite:{}", e.dir.join("scratch.db").display());
    e.register(&template(Engine::Sqlite, ""), &scratch).await;
    let file = e.dir.join("wayne.db");
    e.tenant("wayne", &format!("sqlite:{}", file.display()), None)
        .await;
    let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite:{}",
        file.display()
    ))
    .await
    .unwrap();
    c.execute("CREATE TABLE batcave (id INTEGER); INSERT INTO batcave VALUES (1), (2);")
        .await
        .unwrap();
    drop(c);
    let plan = plan_reset(&e.registry, &e.vault, "wayne", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(
        plan.objects
            .iter()
            .find(|o| o.name == "batcave")
            .unwrap()
            .rows,
        Some(2)
    );
    assert_eq!(
        execute_reset(&e.registry, &e.vault, &plan, "Wayne", Timeouts::default())
            .await
            .unwrap_err()
            .code(),
        "confirmation_mismatch"
    );
    let done = execute_reset(&e.registry, &e.vault, &plan, "wayne", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced, "{done:?}");
    let backup = done.backup.trim_start_matches("file ");
    let mut b = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite:{backup}"))
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM batcave")
        .fetch_one(&mut b)
        .await
        .unwrap();
    assert_eq!(n, 2);
}

#[tokio::test]
async fn repair_creates_only_missing_objects_and_keeps_customisations() {
    use tenantry_fleet::repair::repair_tenant;
    let e = env().await;
    let db = PgDatabase::create().await;
    e.register(&template(Engine::Postgres, ""), &db.url()).await;
    e.tenant("soylent", &db.url(), Some("soylent")).await;
    db.apply(
        "soylent",
        "DROP VIEW open_tasks; DROP TABLE comments; DROP INDEX idx_users_account;
         CREATE TABLE custom_feed (id int); INSERT INTO custom_feed VALUES (1), (2);",
    )
    .await;
    let o = repair_tenant(&e.registry, &e.vault, "soylent", Timeouts::default())
        .await
        .unwrap();
    let mut created = o.created.clone();
    created.sort();
    assert_eq!(
        created,
        [
            "index idx_users_account on users",
            "sequence comments_id_seq",
            "table comments",
            "view open_tasks"
        ],
        "{o:?}"
    );
    assert!(o.not_repaired.is_empty(), "{o:?}");
    assert_eq!(o.status, SchemaStatus::Customized, "the custom table stays");
    let d =
        tenantry_fleet::drift::diff_tenant(&e.registry, &e.vault, "soylent", Timeouts::default())
            .await
            .unwrap();
    let differing: Vec<_> = d
        .diff
        .objects
        .iter()
        .filter(|x| x.presence != tenantry_model::diff::Presence::Identical)
        .map(|x| x.name.as_str())
        .collect();
    assert_eq!(differing, ["custom_feed"]);
    assert_eq!(
        pg_count(&db, "SELECT count(*) FROM soylent.custom_feed").await,
        2
    );
    assert_eq!(
        pg_count(
            &db,
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenantry_repair_%'"
        )
        .await,
        0
    );
    // The repaired table works: its serial and foreign keys point at the tenant's own tables.
    db.apply(
        "soylent",
        "INSERT INTO accounts (name) VALUES ('a'); INSERT INTO projects (account_id, name) VALUES (1, 'p');
         INSERT INTO tasks (project_id, title) VALUES (1, 't'); INSERT INTO comments (task_id, body) VALUES (1, 'ok');",
    )
    .await;

    // MariaDB and SQLite: missing tables and views come back.
    let scratch = MysqlDatabase::create().await;
    e.register(&template(Engine::Mysql, ""), &scratch.url())
        .await;
    let my = MysqlDatabase::create().await;
    e.tenant("tyrell", &my.url(), None).await;
    my.apply("DROP VIEW open_tasks; DROP TABLE settings;").await;
    let o = repair_tenant(&e.registry, &e.vault, "tyrell", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(o.status, SchemaStatus::Synced, "{o:?}");

    let lite_scratch = format!("sqlite:{}", e.dir.join("scratch.db").display());
    e.register(&template(Engine::Sqlite, ""), &lite_scratch)
        .await;
    let file = e.dir.join("cyberdyne.db");
    e.tenant("cyberdyne", &format!("sqlite:{}", file.display()), None)
        .await;
    let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite:{}",
        file.display()
    ))
    .await
    .unwrap();
    c.execute("DROP VIEW open_tasks; DROP INDEX idx_tasks_title; DROP TABLE settings;")
        .await
        .unwrap();
    drop(c);
    let o = repair_tenant(&e.registry, &e.vault, "cyberdyne", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(o.status, SchemaStatus::Synced, "{o:?}");
}

/// Issue 13, item 3: a SQLite tenant in WAL mode whose file is not named
/// `.db`, with committed rows still in its `-wal` (a connection keeps it
/// open, no checkpoint): the backup holds every row, and restoring it with
/// a `-wal` beside the tenant brings every row back, for good.
#[tokio::test]
async fn sqlite_wal_rows_survive_backup_and_restore_whatever_the_file_name() {
    use tenantry_fleet::backup::restore_backup;
    let e = env().await;
    let scratch = format!("sqlite:{}", e.dir.join("scratch.db").display());
    e.register(&template(Engine::Sqlite, ""), &scratch).await;
    let file = e.dir.join("stark.tenant");
    e.tenant("stark", &format!("sqlite:{}", file.display()), None)
        .await;
    let mut keeper = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite:{}",
        file.display()
    ))
    .await
    .unwrap();
    keeper
        .execute("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE ledger (id INTEGER PRIMARY KEY, note TEXT);")
        .await
        .unwrap();
    for chunk in 0..3 {
        let mut tx = sqlx::Connection::begin(&mut keeper).await.unwrap();
        for i in 0..500 {
            sqlx::query("INSERT INTO ledger (note) VALUES (?1)")
                .bind(format!("row {chunk}-{i}"))
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    let wal = tenantry_tests::sqlite_side(&file, "-wal");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "the rows are in the -wal"
    );

    let plan = plan_reset(&e.registry, &e.vault, "stark", Timeouts::default())
        .await
        .unwrap();
    let done = execute_reset(&e.registry, &e.vault, &plan, "stark", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced, "{done:?}");
    let backup = done.backup.trim_start_matches("file ").to_owned();
    let count = |path: String| async move {
        let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
            "sqlite:{path}?mode=ro"
        ))
        .await
        .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ledger")
            .fetch_one(&mut c)
            .await
            .unwrap_or(-1);
        n
    };
    assert_eq!(count(backup.clone()).await, 1500, "every committed row");

    // The tenant's -wal still exists (the keeper holds it): a restore must
    // not be undone by it.
    let id = e.registry.backups(Some("stark")).await.unwrap()[0].id;
    restore_backup(&e.registry, &e.vault, id, "stark", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(count(file.display().to_string()).await, 1500);
    drop(keeper);
    assert_eq!(
        count(file.display().to_string()).await,
        1500,
        "after the last connection closed and the -wal was checkpointed"
    );
}

/// Issue 13, item 5: a purge never drops or breaks anything outside the
/// quarantine: a view and a foreign key elsewhere make it a refusal that
/// names them; once they are gone, it purges.
#[tokio::test]
async fn purging_a_postgres_backup_refuses_while_objects_outside_depend_on_it() {
    use tenantry_fleet::backup::purge_backup;
    let e = env().await;
    let db = PgDatabase::create().await;
    e.register(&template(Engine::Postgres, ""), &db.url()).await;
    e.tenant("acme", &db.url(), Some("acme")).await;
    db.apply(
        "acme",
        "CREATE TABLE ledger (id int PRIMARY KEY); INSERT INTO ledger VALUES (1), (2);",
    )
    .await;
    let plan = plan_reset(&e.registry, &e.vault, "acme", Timeouts::default())
        .await
        .unwrap();
    let done = execute_reset(&e.registry, &e.vault, &plan, "acme", Timeouts::default())
        .await
        .unwrap();
    let q = done
        .backup
        .trim_start_matches("schema ")
        .split(" in ")
        .next()
        .unwrap()
        .to_owned();
    let qq = tenantry_model::quote::postgres(&q);
    db.apply(
        "public",
        &format!(
            "CREATE VIEW ledger_ids AS SELECT id FROM {qq}.ledger;
             CREATE TABLE payments (ledger_id int REFERENCES {qq}.ledger (id));"
        ),
    )
    .await;
    let id = e.registry.backups(Some("acme")).await.unwrap()[0].id;
    let err = purge_backup(&e.registry, &e.vault, id, "acme", Timeouts::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "purge_refused", "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("ledger_ids") && msg.contains("payments"),
        "{msg}"
    );
    let outside = "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'public' AND c.relname IN ('ledger_ids', 'payments')";
    assert_eq!(pg_count(&db, outside).await, 2);
    let fks = "SELECT count(*) FROM pg_constraint WHERE conrelid = 'public.payments'::regclass AND contype = 'f'";
    assert_eq!(pg_count(&db, fks).await, 1, "the foreign key is intact");
    let log = e.registry.audit_log(Some("acme"), 1).await.unwrap();
    assert_eq!(
        (log[0].action.as_str(), log[0].result),
        ("backup.purge", AuditResult::Refused)
    );

    db.apply("public", "DROP VIEW ledger_ids; DROP TABLE payments;")
        .await;
    purge_backup(&e.registry, &e.vault, id, "acme", Timeouts::default())
        .await
        .unwrap();
    let left = format!("SELECT count(*) FROM pg_namespace WHERE nspname = '{q}'");
    assert_eq!(pg_count(&db, &left).await, 0);
}

/// Issue 13, item 11: hostile table names (backslashes, quotes, backticks,
/// an injection attempt) on MariaDB go through plan, reset, restore and
/// purge as names: counted right, nothing injected, nothing lost.
#[tokio::test]
async fn hostile_table_names_on_mariadb_are_only_ever_names() {
    use tenantry_fleet::backup::{purge_backup, restore_backup};
    let e = env().await;
    let scratch = MysqlDatabase::create().await;
    e.register(&template(Engine::Mysql, ""), &scratch.url())
        .await;
    let t = MysqlDatabase::create().await;
    e.tenant("evil", &t.url(), None).await;
    let names = [r"back\slash", r"x\', SLEEP(4), '", "tick`tick", r"q'uote\"];
    for (i, n) in names.iter().enumerate() {
        let qn = tenantry_model::quote::mysql(n);
        t.apply(&format!(
            "CREATE TABLE {qn} (id INT); INSERT INTO {qn} VALUES {};",
            (0..=i)
                .map(|k| format!("({k})"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .await;
    }
    let started = std::time::Instant::now();
    let plan = plan_reset(&e.registry, &e.vault, "evil", Timeouts::default())
        .await
        .unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "nothing injected"
    );
    for (i, n) in names.iter().enumerate() {
        let o = plan.objects.iter().find(|o| o.name == *n).unwrap();
        assert_eq!(o.rows, Some(i as i64 + 1), "{n}");
    }
    let done = execute_reset(&e.registry, &e.vault, &plan, "evil", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced, "{done:?}");
    let _q = MysqlDatabase::adopt(done.backup.trim_start_matches("database "));
    let id = e.registry.backups(Some("evil")).await.unwrap()[0].id;
    let displaced = restore_backup(&e.registry, &e.vault, id, "evil", Timeouts::default())
        .await
        .unwrap();
    let _d = MysqlDatabase::adopt(displaced.trim_start_matches("database "));
    let mut c = t.connect().await;
    for (i, n) in names.iter().enumerate() {
        let count: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM {}",
            tenantry_model::quote::mysql(n)
        ))
        .fetch_one(&mut c)
        .await
        .unwrap();
        assert_eq!(count, i as i64 + 1, "{n}");
    }
    let displaced_id = e.registry.backups(Some("evil")).await.unwrap()[0].id;
    // A view in another database that reads the backup blocks its purge.
    let dq = tenantry_model::quote::mysql(displaced.trim_start_matches("database "));
    scratch
        .apply(&format!("CREATE VIEW peek AS SELECT * FROM {dq}.`users`"))
        .await;
    let err = purge_backup(
        &e.registry,
        &e.vault,
        displaced_id,
        "evil",
        Timeouts::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "purge_refused", "{err}");
    assert!(err.to_string().contains("peek"), "{err}");
    scratch.apply("DROP VIEW peek").await;
    purge_backup(
        &e.registry,
        &e.vault,
        displaced_id,
        "evil",
        Timeouts::default(),
    )
    .await
    .unwrap();
}

/// Issue 13, item 4: a backup belongs to the tenant it was taken from, not
/// to its slug: after the slug is removed and given to another customer,
/// restoring the old backup into the new schema is refused, and the new
/// tenant sees no old backups or history. On MariaDB, restoring a backup
/// whose quarantine database is gone is refused before anything changes.
#[tokio::test]
async fn backups_follow_the_tenant_not_its_slug_and_a_missing_backup_changes_nothing() {
    use tenantry_fleet::backup::restore_backup;
    let e = env().await;
    let db = PgDatabase::create().await;
    e.register(&template(Engine::Postgres, ""), &db.url()).await;
    e.tenant("acme", &db.url(), Some("old_customer")).await;
    db.apply(
        "old_customer",
        "CREATE TABLE secrets (v text); INSERT INTO secrets VALUES ('old');",
    )
    .await;
    let plan = plan_reset(&e.registry, &e.vault, "acme", Timeouts::default())
        .await
        .unwrap();
    execute_reset(&e.registry, &e.vault, &plan, "acme", Timeouts::default())
        .await
        .unwrap();
    let old_backup = e.registry.backups(None).await.unwrap()[0].clone();
    e.registry.remove_tenant("acme").await.unwrap();
    e.tenant("acme", &db.url(), Some("new_customer")).await;

    assert!(e.registry.backups(Some("acme")).await.unwrap().is_empty());
    assert!(
        e.registry
            .audit_log(Some("acme"), 100)
            .await
            .unwrap()
            .iter()
            .all(|a| a.action != "reset"),
        "the old customer's history is not the new one's"
    );
    let err = restore_backup(
        &e.registry,
        &e.vault,
        old_backup.id,
        "acme",
        Timeouts::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "backup_refused", "{err}");
    let leaked = "SELECT count(*) FROM pg_tables WHERE schemaname = 'new_customer' AND tablename = 'secrets'";
    assert_eq!(pg_count(&db, leaked).await, 0);

    // MariaDB: the quarantine database was dropped by hand.
    let scratch = MysqlDatabase::create().await;
    e.register(&template(Engine::Mysql, ""), &scratch.url())
        .await;
    let t = MysqlDatabase::create().await;
    e.tenant("hooli", &t.url(), None).await;
    t.apply("CREATE TABLE custom_x (id INT); INSERT INTO custom_x VALUES (1);")
        .await;
    let plan = plan_reset(&e.registry, &e.vault, "hooli", Timeouts::default())
        .await
        .unwrap();
    let done = execute_reset(&e.registry, &e.vault, &plan, "hooli", Timeouts::default())
        .await
        .unwrap();
    let q = done.backup.trim_start_matches("database ").to_owned();
    scratch
        .apply(&format!(
            "DROP DATABASE {}",
            tenantry_model::quote::mysql(&q)
        ))
        .await;
    let before: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
    )
    .fetch_one(&mut t.connect().await)
    .await
    .unwrap();
    assert!(before > 0);
    let id = e.registry.backups(Some("hooli")).await.unwrap()[0].id;
    let err = restore_backup(&e.registry, &e.vault, id, "hooli", Timeouts::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "backup_refused", "{err}");
    let after: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
    )
    .fetch_one(&mut t.connect().await)
    .await
    .unwrap();
    assert_eq!(after, before, "the tenant was not emptied");
}

/// Issue 13, item 2: when the intent cannot be journaled (here the registry
/// file was removed), the reset does not start: the tenant is untouched.
#[tokio::test]
async fn a_reset_whose_intent_cannot_be_journaled_changes_nothing() {
    let e = env().await;
    let db = PgDatabase::create().await;
    e.register(&template(Engine::Postgres, ""), &db.url()).await;
    e.tenant("acme", &db.url(), Some("acme")).await;
    db.apply(
        "acme",
        "CREATE TABLE ledger (id int); INSERT INTO ledger VALUES (1);",
    )
    .await;
    let plan = plan_reset(&e.registry, &e.vault, "acme", Timeouts::default())
        .await
        .unwrap();
    std::fs::rename(e.dir.join("registry.db"), e.dir.join("moved.db")).unwrap();
    let err = execute_reset(&e.registry, &e.vault, &plan, "acme", Timeouts::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "registry_vanished", "{err}");
    assert_eq!(pg_count(&db, "SELECT count(*) FROM acme.ledger").await, 1);
    let q = "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenantry_q_%'";
    assert_eq!(pg_count(&db, q).await, 0, "no quarantine was made");
}

async fn scanned(e: &Env) -> tenantry_fleet::scan::ScanResult {
    use tenantry_fleet::scan::{scan, CancelScan, ScanOptions};
    let r = scan(
        &e.registry,
        &e.vault,
        &ScanOptions::default(),
        &|_| {},
        &CancelScan::default(),
    )
    .await
    .unwrap();
    r.tenants[0].clone()
}

#[tokio::test]
async fn a_schema_name_with_quotes_scans_guards_and_resets_alike() {
    let e = env().await;
    let db = PgDatabase::create().await;
    e.register(&template(Engine::Postgres, ""), &db.url()).await;
    let hostile = r#"o'brien "co"."#;
    e.tenant("obrien", &db.url(), Some(hostile)).await;
    let first = scanned(&e).await;
    assert_eq!(first.status, SchemaStatus::Synced, "{first:?}");
    db.apply(hostile, "CREATE TABLE custom_x (id serial PRIMARY KEY);")
        .await;
    assert_eq!(scanned(&e).await.status, SchemaStatus::Customized);
    let plan = plan_reset(&e.registry, &e.vault, "obrien", Timeouts::default())
        .await
        .unwrap();
    let done = execute_reset(&e.registry, &e.vault, &plan, "obrien", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced, "{done:?}");
    let after = scanned(&e).await;
    assert_eq!(after.status, SchemaStatus::Synced, "{after:?}");
    assert_eq!(after.hash.as_deref(), done.hash_after.as_deref());
}

/// Issue 13, item 7: a MariaDB tenant with triggers is reset (a table with
/// a trigger cannot be renamed into another database, error 1435), leaves
/// no orphan quarantine, and its restore brings the triggers back working.
#[tokio::test]
async fn a_mariadb_tenant_with_triggers_is_reset_and_restored_with_them() {
    let e = env().await;
    let scratch = MysqlDatabase::create().await;
    e.register(&template(Engine::Mysql, ""), &scratch.url())
        .await;
    let t = MysqlDatabase::create().await;
    e.tenant("trig", &t.url(), None).await;
    t.apply(
        "CREATE TABLE custom_audit (id INT AUTO_INCREMENT PRIMARY KEY, what TEXT);
         CREATE TRIGGER accounts_audit AFTER INSERT ON accounts FOR EACH ROW
           BEGIN INSERT INTO custom_audit (what) VALUES (CONCAT('account ', NEW.name)); END;
         CREATE TRIGGER accounts_audit_2 AFTER INSERT ON accounts FOR EACH ROW FOLLOWS accounts_audit
           INSERT INTO custom_audit (what) VALUES ('second');
         INSERT INTO accounts (name) VALUES ('a');",
    )
    .await;
    let quarantines = || async {
        let mut c = t.connect().await;
        sqlx::query_scalar::<_, String>(
            "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE CONCAT('tenantry\\_q\\_', ?, '%')",
        )
        .bind(&t.name)
        .fetch_all(&mut c)
        .await
        .unwrap()
    };
    let before = quarantines().await;
    let plan = plan_reset(&e.registry, &e.vault, "trig", Timeouts::default())
        .await
        .unwrap();
    let done = execute_reset(&e.registry, &e.vault, &plan, "trig", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced, "{done:?}");
    let q = done.backup.trim_start_matches("database ").to_owned();
    let _drop_q = MysqlDatabase::adopt(&q);
    let mut c = t.connect().await;
    let triggers =
        "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()";
    let n: i64 = sqlx::query_scalar(triggers)
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 0, "the rebuilt tenant has the template's triggers only");
    let new: Vec<String> = quarantines()
        .await
        .into_iter()
        .filter(|x| !before.contains(x))
        .collect();
    assert_eq!(
        new,
        std::slice::from_ref(&q),
        "exactly one quarantine, the backup"
    );

    // Restore: the custom table, its rows and both triggers, in order, work again.
    let id = e.registry.backups(Some("trig")).await.unwrap()[0].id;
    let displaced = tenantry_fleet::backup::restore_backup(
        &e.registry,
        &e.vault,
        id,
        "trig",
        Timeouts::default(),
    )
    .await
    .unwrap();
    let _drop_d = MysqlDatabase::adopt(displaced.trim_start_matches("database "));
    let n: i64 = sqlx::query_scalar(triggers)
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(n, 2);
    sqlx::query("INSERT INTO accounts (name) VALUES ('b')")
        .execute(&mut c)
        .await
        .unwrap();
    let audit: Vec<String> = sqlx::query_scalar("SELECT what FROM custom_audit ORDER BY id")
        .fetch_all(&mut c)
        .await
        .unwrap();
    assert_eq!(audit, ["account a", "second", "account b", "second"]);
    // The restored backup's database held only bookkeeping: it is gone.
    assert!(!quarantines().await.contains(&q));
    // A second reset (the tenant has triggers again) works as well.
    let plan = plan_reset(&e.registry, &e.vault, "trig", Timeouts::default())
        .await
        .unwrap();
    let again = execute_reset(&e.registry, &e.vault, &plan, "trig", Timeouts::default())
        .await
        .unwrap();
    let _drop_again = MysqlDatabase::adopt(again.backup.trim_start_matches("database "));
    assert_eq!(again.status, SchemaStatus::Synced);
}

/// Issue 13, item 7: a MariaDB reset killed after it dropped the triggers
/// and before any table moved: its quarantine holds only their saved
/// definitions, is not offered as a backup, and resolving the operation
/// puts the triggers back.
#[tokio::test]
async fn a_mariadb_reset_killed_before_its_tables_moved_gets_its_triggers_back() {
    let e = env().await;
    let scratch = MysqlDatabase::create().await;
    e.register(&template(Engine::Mysql, ""), &scratch.url())
        .await;
    let t = MysqlDatabase::create().await;
    e.tenant("cut", &t.url(), None).await;
    t.apply(
        "CREATE TABLE custom_audit (what TEXT);
         CREATE TRIGGER accounts_audit AFTER INSERT ON accounts FOR EACH ROW INSERT INTO custom_audit VALUES (NEW.name);",
    )
    .await;
    // The state such a kill leaves, made by hand: the journal's intent, the
    // quarantine with the saved definition, the trigger dropped.
    let q = format!("tenantry_q_{}_cut", &t.name[..20]);
    let _drop_q = MysqlDatabase::adopt(&q);
    let mut c = t.connect().await;
    let (sql_mode, statement): (String, String) = {
        use sqlx::Row;
        let row = sqlx::query("SHOW CREATE TRIGGER accounts_audit")
            .fetch_one(&mut c)
            .await
            .unwrap();
        (row.get(1), row.get(2))
    };
    sqlx::raw_sql(&format!(
        "CREATE DATABASE `{q}`;
         CREATE TABLE `{q}`.`_tenantry_views` (name VARCHAR(64) PRIMARY KEY, definition LONGTEXT NOT NULL);
         CREATE TABLE `{q}`.`_tenantry_triggers` (seq INT PRIMARY KEY, name VARCHAR(64) NOT NULL, sql_mode TEXT NOT NULL, statement LONGTEXT NOT NULL);
         DROP TRIGGER accounts_audit;"
    ))
    .execute(&mut c)
    .await
    .unwrap();
    sqlx::query(&format!(
        "INSERT INTO `{q}`.`_tenantry_triggers` VALUES (0, 'accounts_audit', ?, ?)"
    ))
    .bind(&sql_mode)
    .bind(&statement)
    .execute(&mut c)
    .await
    .unwrap();
    let location = format!("database {q}");
    e.registry
        .begin_operation("cut", "reset", Some(&location))
        .await
        .unwrap();

    let exists = tenantry_fleet::backup::backup_exists(
        &e.registry,
        &e.vault,
        "cut",
        &location,
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert!(!exists, "saved definitions alone are not a backup");
    let done = tenantry_fleet::backup::put_back_interrupted(
        &e.registry,
        &e.vault,
        "cut",
        &location,
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert!(done.unwrap().starts_with("1 trigger(s)"));
    sqlx::query("INSERT INTO accounts (name) VALUES ('x')")
        .execute(&mut c)
        .await
        .unwrap();
    let audited: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM custom_audit")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(audited, 1, "the trigger works again");
    let left: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
    )
    .bind(&q)
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(left, 0, "the empty quarantine is gone");
    // Idempotent: nothing more to do.
    let again = tenantry_fleet::backup::put_back_interrupted(
        &e.registry,
        &e.vault,
        "cut",
        &location,
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert_eq!(again, None);
}

/// Issue 13, item 6: a database-per-tenant reset on PostgreSQL says what it
/// moves and keeps beyond the tables; the extensions installed in `public`
/// come back into the rebuilt schema, and `public` keeps its owner, grants
/// and comment, so the application keeps its access.
#[tokio::test]
async fn a_database_per_tenant_reset_keeps_extensions_owner_and_grants_of_public() {
    let e = env().await;
    let db = PgDatabase::create().await;
    // The template uses the extension's function, unqualified.
    let mut t = template(Engine::Postgres, "");
    let sql = format!(
        "CREATE EXTENSION IF NOT EXISTS pgcrypto;\n{}\nCREATE TABLE tokens (id uuid PRIMARY KEY DEFAULT gen_random_uuid());",
        fixture("postgres", "template.sql")
    );
    t.versions[0].migrations[0].sql = sql.into();
    let scratch = PgDatabase::create().await;
    // The scratch database already has the extension (in `public`), so
    // the template's CREATE EXTENSION IF NOT EXISTS does nothing in the
    // scratch schema: the template still installs it into the tenant's.
    scratch.apply("public", "CREATE EXTENSION pgcrypto").await;
    e.register(&t, &scratch.url()).await;
    // The tenant's own role (named after its database, the role rule's
    // tenant name for `public`): provisioning's, not compared.
    let role = format!("{}_app", db.name);
    let mut admin = db.connect().await;
    sqlx::raw_sql(&format!(
        "CREATE ROLE \"{role}\"; GRANT USAGE ON SCHEMA public TO \"{role}\" WITH GRANT OPTION;
         COMMENT ON SCHEMA public IS 'tenant''s \\ schema'"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let acl_before: String = sqlx::query_scalar(
        "SELECT pg_get_userbyid(nspowner) || ' ' || (SELECT array_agg(a ORDER BY a) FROM unnest(nspacl::text[]) a)::text FROM pg_namespace WHERE nspname = 'public'",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    e.tenant("whole", &db.url(), None).await;
    db.apply(
        "public",
        "CREATE FUNCTION custom_total(a int, b int) RETURNS int LANGUAGE sql AS 'SELECT a + b';
         CREATE TABLE custom_x (id int);",
    )
    .await;

    let plan = plan_reset(&e.registry, &e.vault, "whole", Timeouts::default())
        .await
        .unwrap();
    let said = plan.changes.join("\n");
    assert!(said.contains("custom_total(integer,integer)"), "{said}");
    assert!(said.contains("extension pgcrypto"), "{said}");
    assert!(
        said.contains(&format!("USAGE to {role} with grant option")),
        "{said}"
    );
    let done = execute_reset(&e.registry, &e.vault, &plan, "whole", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced, "{done:?}");

    let mut c = db.connect().await;
    let acl_after: String = sqlx::query_scalar(
        "SELECT pg_get_userbyid(nspowner) || ' ' || (SELECT array_agg(a ORDER BY a) FROM unnest(nspacl::text[]) a)::text FROM pg_namespace WHERE nspname = 'public'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(acl_after, acl_before);
    let comment: Option<String> =
        sqlx::query_scalar("SELECT obj_description('public'::regnamespace, 'pg_namespace')")
            .fetch_one(&mut c)
            .await
            .unwrap();
    assert_eq!(comment.as_deref(), Some("tenant's \\ schema"));
    let ext_schema: String = sqlx::query_scalar(
        "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pgcrypto'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(ext_schema, "public");
    sqlx::query("INSERT INTO tokens DEFAULT VALUES")
        .execute(&mut c)
        .await
        .unwrap();
    // The custom function went to the backup with the schema.
    let q = done.backup.split(' ').nth(1).unwrap().to_owned();
    let moved: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $1 AND p.proname = 'custom_total'",
    )
    .bind(&q)
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(moved, 1);
    let scan = scanned(&e).await;
    assert_eq!(scan.status, SchemaStatus::Synced, "{scan:?}");

    // An extension the template does not install, added to the tenant's
    // schema: drift, and a reset that would keep it (it is the database's)
    // is refused before anything changes.
    db.apply("public", "CREATE EXTENSION hstore").await;
    let scan = scanned(&e).await;
    assert_eq!(scan.status, SchemaStatus::Customized, "{scan:?}");
    let err = plan_reset(&e.registry, &e.vault, "whole", Timeouts::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "reset_refused", "{err}");
    let said = err.to_string();
    assert!(
        said.contains("hstore") && said.contains("nothing was changed"),
        "{said}"
    );
    drop(c);
    drop(admin);
    drop(db);
    use sqlx::Connection;
    let mut cleanup =
        sqlx::PgConnection::connect(&format!("{}/postgres", tenantry_tests::pg_server_url()))
            .await
            .unwrap();
    sqlx::raw_sql(&format!("DROP ROLE IF EXISTS \"{role}\""))
        .execute(&mut cleanup)
        .await
        .unwrap();
}

/// Issue 13, item 2: backups that no journal row or backup row names (a run
/// that died before journals existed, or a file copied back) are found by
/// their names on every engine, only for their own tenant, and adopted.
#[tokio::test]
async fn unrecorded_backups_are_discovered_and_adopted_on_every_engine() {
    use tenantry_fleet::backup::{adopt_orphan, discover_orphans, restore_backup};
    let e = env().await;
    let pg = PgDatabase::create().await;
    e.register(&template(Engine::Postgres, ""), &pg.url()).await;
    e.tenant("orph-pg", &pg.url(), Some("orph")).await;
    // A quarantine of this tenant, one of a tenant on `orph_2`, one that
    // merely starts alike.
    pg.apply(
        "tenantry_q_orph_1700000000",
        "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7);",
    )
    .await;
    pg.apply(
        "tenantry_q_orph_2_1700000000",
        "CREATE TABLE other (v int);",
    )
    .await;
    pg.apply("tenantry_q_orphx_1700000000", "CREATE TABLE other (v int);")
        .await;

    let my = MysqlDatabase::create().await;
    e.add("orph-my", &my.url(), None, "1.0.0").await;
    let q_my = format!("tenantry_q_{}_1700000000", &my.name);
    let q_empty = format!("tenantry_q_{}_1700000001", &my.name);
    let _d1 = MysqlDatabase::adopt(&q_my);
    let _d2 = MysqlDatabase::adopt(&q_empty);
    let mut c = my.connect().await;
    sqlx::raw_sql(&format!(
        "CREATE DATABASE `{q_my}`; CREATE TABLE `{q_my}`.kept (v INT);
         CREATE DATABASE `{q_empty}`; CREATE TABLE `{q_empty}`.`_tenantry_triggers` (seq INT);"
    ))
    .execute(&mut c)
    .await
    .unwrap();

    let file = e.dir.join("orph.db");
    tenantry_tests::sqlite_file(&file, "CREATE TABLE t (v int);").await;
    e.add("orph-lite", &e.sqlite_url("orph.db"), None, "1.0.0")
        .await;
    std::fs::copy(&file, e.dir.join("orph.1700000000.bak")).unwrap();
    std::fs::copy(&file, e.dir.join("orph.1700000001r.bak")).unwrap();
    std::fs::write(e.dir.join("orph.notes.bak"), b"x").unwrap();

    let found = discover_orphans(&e.registry, &e.vault, Timeouts::default())
        .await
        .unwrap();
    let mut shown: Vec<(String, String)> = found
        .iter()
        .map(|o| (o.tenant_slug.clone(), o.location.clone()))
        .collect();
    shown.sort();
    let lite = |n: &str| format!("file {}", e.dir.join(n).display());
    assert_eq!(
        shown,
        [
            ("orph-lite".to_owned(), lite("orph.1700000000.bak")),
            ("orph-lite".to_owned(), lite("orph.1700000001r.bak")),
            ("orph-my".to_owned(), format!("database {q_my}")),
            (
                "orph-pg".to_owned(),
                format!("schema tenantry_q_orph_1700000000 in {}", pg.name)
            ),
        ]
    );
    // Only an orphan of that very tenant can be adopted.
    for (slug, location) in [
        (
            "orph-pg",
            format!("schema tenantry_q_orph_2_1700000000 in {}", pg.name),
        ),
        (
            "orph-my",
            format!("schema tenantry_q_orph_1700000000 in {}", pg.name),
        ),
    ] {
        let err = adopt_orphan(&e.registry, &e.vault, slug, &location, Timeouts::default())
            .await
            .unwrap_err();
        assert_eq!(err.code(), "backup_refused", "{slug} {location}");
    }
    let pg_location = format!("schema tenantry_q_orph_1700000000 in {}", pg.name);
    adopt_orphan(
        &e.registry,
        &e.vault,
        "orph-pg",
        &pg_location,
        Timeouts::default(),
    )
    .await
    .unwrap();
    let listed = e.registry.backups(Some("orph-pg")).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].location, pg_location);
    // Adopted means usable: the restore brings the kept table back.
    restore_backup(
        &e.registry,
        &e.vault,
        listed[0].id,
        "orph-pg",
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert_eq!(pg_count(&pg, "SELECT v::bigint FROM orph.kept").await, 7);
    let again = discover_orphans(&e.registry, &e.vault, Timeouts::default())
        .await
        .unwrap();
    assert!(again.iter().all(|o| o.location != pg_location));
    let log = e.registry.audit_log(Some("orph-pg"), 20).await.unwrap();
    assert!(log
        .iter()
        .any(|a| a.action == "backup.adopt" && a.result == AuditResult::Ok));
}
