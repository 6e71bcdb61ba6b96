//! Onboarding a fleet from a live reference instead of a folder of
//! migrations: the reference is captured as a template version (proven by
//! measuring the captured SQL), tenants with `_` in their slugs are
//! registered, guarded, scanned, compared and synced against it, and a
//! later capture of the changed reference becomes the next version, which
//! a tenant upgrades to. Refusals store nothing and are audited.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use tenantry_fleet::capture::{capture_template, CaptureRequest};
use tenantry_fleet::sync::{execute_sync, plan_sync, KeepChoice};
use tenantry_introspect::{ConnectionUrl, Timeouts};
use tenantry_model::{Engine, SchemaStatus};
use tenantry_registry::AuditResult;
use tenantry_tests::{fixture, MysqlDatabase, PgDatabase, TestFleet};

/// What the fixture template lacks and a reference usually has: functions,
/// a trigger, row security and a policy, comments, grants, and a table
/// whose names need quoting.
const EXTRAS: &str = r#"
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  -- a comment, and  spacing   the body keeps
  NEW.archived_at := coalesce(NEW.archived_at, NULL);
  RETURN NEW;
END $f$;
CREATE TRIGGER projects_touch BEFORE UPDATE ON projects FOR EACH ROW EXECUTE FUNCTION touch();
CREATE FUNCTION open_tasks(p int) RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT count(*) FROM tasks WHERE project_id = p $$;
ALTER TABLE invoices ENABLE ROW LEVEL SECURITY;
CREATE POLICY invoices_positive ON invoices FOR SELECT TO PUBLIC USING (total_cents >= 0);
COMMENT ON TABLE accounts IS 'A customer''s account';
COMMENT ON COLUMN users.email IS 'login';
GRANT SELECT ON accounts TO PUBLIC;
CREATE TABLE "we""ird; --" ("sp ace" serial PRIMARY KEY, "it's" text NOT NULL DEFAULT 'x');
"#;

async fn capture(
    e: &TestFleet,
    source: &str,
    schema: Option<&str>,
    version: &str,
) -> Result<tenantry_fleet::capture::CaptureReport, tenantry_fleet::FleetError> {
    let url = ConnectionUrl::parse(source).unwrap();
    capture_template(
        &e.registry,
        &CaptureRequest {
            source: &url,
            schema,
            name: "saas",
            version,
            scratch: None,
            scratch_name: None,
            timeouts: Timeouts::default(),
        },
    )
    .await
}

async fn upgrade(e: &TestFleet, slug: &str, to: &str) -> tenantry_fleet::upgrade::UpgradeOutcome {
    tenantry_fleet::upgrade::upgrade_tenant(
        &e.registry,
        &e.vault,
        slug,
        to,
        false,
        Timeouts::default(),
    )
    .await
    .unwrap()
}

async fn last_capture_audit(e: &TestFleet) -> (AuditResult, String) {
    let rows = e.registry.audit_log(None, 50).await.unwrap();
    let row = rows
        .iter()
        .find(|r| r.action == "template.capture")
        .unwrap();
    (row.result, row.detail.clone())
}

#[tokio::test]
async fn a_postgres_fleet_is_onboarded_from_a_reference_schema() {
    let e = TestFleet::new().await;
    let reference = PgDatabase::create().await;
    reference
        .apply(
            "tpl",
            &format!("{}\n{EXTRAS}", fixture("postgres", "template.sql")),
        )
        .await;

    let report = capture(&e, &reference.url(), Some("tpl"), "1.0.0")
        .await
        .unwrap();
    assert_eq!(report.lineage.len(), 1);
    let stored = e.registry.template("saas", Engine::Postgres).await.unwrap();
    let sql = &stored.versions[0].migrations[0].1;
    assert!(
        sql.contains("-- a comment, and  spacing   the body keeps"),
        "{sql}"
    );
    assert!(sql.contains(r#"CREATE TABLE "we""ird; --""#), "{sql}");
    assert!(
        !sql.contains("tpl."),
        "nothing names the reference schema: {sql}"
    );
    let (result, detail) = last_capture_audit(&e).await;
    assert_eq!(result, AuditResult::Ok);
    assert!(detail.contains("1.0.0"), "{detail}");

    // Tenants in both isolation modes, slugs with `_` as in the peer fleet.
    let fleet = PgDatabase::create().await;
    let own_db = PgDatabase::create().await;
    for slug in ["pgt_0001", "pgt_0002"] {
        e.add(slug, &fleet.url(), Some(slug), "1.0.0").await;
    }
    e.add("pgd_0001", &own_db.url(), None, "1.0.0").await;
    for slug in ["pgt_0001", "pgt_0002", "pgd_0001"] {
        let g = e.guard(slug).await;
        assert_eq!(g.status, SchemaStatus::Synced, "{slug}: {g:?}");
        assert_eq!(g.hash.as_deref(), Some(report.hash.as_str()));
    }
    let scan = tenantry_fleet::scan::scan(
        &e.registry,
        &e.vault,
        &tenantry_fleet::scan::ScanOptions::default(),
        &|_| {},
        &tenantry_fleet::scan::CancelScan::default(),
    )
    .await
    .unwrap();
    assert!(
        scan.tenants
            .iter()
            .all(|t| t.status == SchemaStatus::Synced),
        "{:?}",
        scan.tenants
    );

    // Drift, a diff, and a sync back with the rows kept.
    fleet
        .apply(
            "pgt_0002",
            "INSERT INTO accounts (name) VALUES ('a'), ('b');
             ALTER TABLE accounts ADD COLUMN region text;
             CREATE INDEX custom_idx ON accounts (name);",
        )
        .await;
    let diff =
        tenantry_fleet::drift::diff_tenant(&e.registry, &e.vault, "pgt_0002", Timeouts::default())
            .await
            .unwrap();
    assert!(!diff.diff.is_identical());
    let plan = plan_sync(
        &e.registry,
        &e.vault,
        "pgt_0002",
        &KeepChoice::default(),
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert!(plan.blockers().is_empty(), "{:#?}", plan.steps);
    let done = execute_sync(
        &e.registry,
        &e.vault,
        &plan,
        "pgt_0002",
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM pgt_0002.accounts")
        .fetch_one(&mut fleet.connect().await)
        .await
        .unwrap();
    assert_eq!(rows, 2);

    // The reference moves on; the next capture is the difference.
    reference
        .apply(
            "tpl",
            "ALTER TABLE accounts ADD COLUMN region text;
             CREATE TABLE audit_events (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, account_id int REFERENCES accounts (id), at timestamptz NOT NULL DEFAULT now());
             CREATE TRIGGER users_touch BEFORE UPDATE ON projects FOR EACH ROW EXECUTE FUNCTION touch();",
        )
        .await;
    let next = capture(&e, &reference.url(), Some("tpl"), "1.1.0")
        .await
        .unwrap();
    assert_eq!(next.lineage.len(), 2);
    let stored = e.registry.template("saas", Engine::Postgres).await.unwrap();
    let delta = &stored.versions[1].migrations[0].1;
    assert!(
        !delta.contains("CREATE TABLE \"accounts\""),
        "only the difference: {delta}"
    );
    let up = upgrade(&e, "pgt_0001", "1.1.0").await;
    assert_eq!(up.status, SchemaStatus::Synced);
    assert_eq!(up.hash, next.hash);

    // What capture cannot reproduce is refused, stored nowhere, audited.
    reference
        .apply(
            "tpl",
            "CREATE FUNCTION pinned() RETURNS int LANGUAGE sql SET search_path = tpl AS 'SELECT 1';",
        )
        .await;
    let refused = capture(&e, &reference.url(), Some("tpl"), "1.2.0")
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "capture_refused");
    assert!(refused.to_string().contains("pinned()"), "{refused}");
    reference
        .apply(
            "tpl",
            "DROP FUNCTION pinned(); DROP TRIGGER users_touch ON projects;",
        )
        .await;
    let removed = capture(&e, &reference.url(), Some("tpl"), "1.2.0")
        .await
        .unwrap_err();
    assert!(removed.to_string().contains("removed"), "{removed}");
    assert_eq!(
        e.registry
            .lineage("saas", Engine::Postgres)
            .await
            .unwrap()
            .len(),
        2
    );
    let (result, _) = last_capture_audit(&e).await;
    assert_eq!(result, AuditResult::Refused);
    // An existing version is never captured over.
    let again = capture(&e, &reference.url(), Some("tpl"), "1.1.0")
        .await
        .unwrap_err();
    assert!(
        again.to_string().contains("already has a version 1.1.0"),
        "{again}"
    );
}

#[tokio::test]
async fn a_sqlite_fleet_is_onboarded_from_a_reference_file() {
    let e = TestFleet::new().await;
    let reference = e.dir.join("reference.db");
    tenantry_tests::sqlite_file(
        &reference,
        &format!(
            "{}\nCREATE TABLE \"we\"\"ird\" (\"sp ace\" INTEGER PRIMARY KEY, v TEXT);",
            fixture("sqlite", "template.sql")
        ),
    )
    .await;
    let source = format!("sqlite:{}", reference.display());
    let report = capture(&e, &source, None, "1").await.unwrap();
    for slug in ["lite_0001", "lite_0002"] {
        e.add(slug, &e.sqlite_url(&format!("{slug}.db")), None, "1")
            .await;
        let g = e.guard(slug).await;
        assert_eq!(g.status, SchemaStatus::Synced, "{slug}: {g:?}");
        assert_eq!(g.hash.as_deref(), Some(report.hash.as_str()));
    }
    // Drift and a sync back.
    tenantry_tests::sqlite_file(
        &e.dir.join("lite_0002.db"),
        "INSERT INTO accounts (name) VALUES ('a'); CREATE TABLE custom (x);",
    )
    .await;
    let plan = plan_sync(
        &e.registry,
        &e.vault,
        "lite_0002",
        &KeepChoice::default(),
        Timeouts::default(),
    )
    .await
    .unwrap();
    let done = execute_sync(
        &e.registry,
        &e.vault,
        &plan,
        "lite_0002",
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced);

    // A later version may add objects; a changed table is refused.
    tenantry_tests::sqlite_file(&reference, "CREATE TABLE tags (id INTEGER PRIMARY KEY, label TEXT NOT NULL); CREATE INDEX tags_label ON tags (label);").await;
    let next = capture(&e, &source, None, "2").await.unwrap();
    assert_eq!(next.statements, 2);
    let up = upgrade(&e, "lite_0001", "2").await;
    assert_eq!((up.status, up.hash), (SchemaStatus::Synced, next.hash));
    tenantry_tests::sqlite_file(&reference, "ALTER TABLE tags ADD COLUMN colour TEXT;").await;
    let refused = capture(&e, &source, None, "3").await.unwrap_err();
    assert!(
        refused.to_string().contains("table tags changed"),
        "{refused}"
    );
    assert_eq!(
        e.registry
            .lineage("saas", Engine::Sqlite)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_mariadb_fleet_is_onboarded_from_a_reference_database() {
    let e = TestFleet::new().await;
    let reference = MysqlDatabase::create().await;
    reference.apply(&fixture("mysql", "template.sql")).await;
    reference
        .apply(
            "CREATE TABLE `we``ird; --` (`sp ace` int PRIMARY KEY AUTO_INCREMENT, v text);
             CREATE TRIGGER invoices_floor BEFORE INSERT ON invoices FOR EACH ROW BEGIN IF NEW.total_cents < 0 THEN SET NEW.total_cents = 0; END IF; END;
             CREATE PROCEDURE noop(IN x int) BEGIN SELECT x; END;
             CREATE FUNCTION twice(x int) RETURNS int DETERMINISTIC RETURN x * 2;
             CREATE VIEW a_over_open AS SELECT id FROM open_tasks;",
        )
        .await;
    let report = capture(&e, &reference.url(), None, "1").await.unwrap();
    let stored = e.registry.template("saas", Engine::Mysql).await.unwrap();
    let sql = &stored.versions[0].migrations[0].1;
    assert!(
        !sql.contains("DEFINER="),
        "no definer is carried over: {sql}"
    );
    let statements: String = sql.lines().filter(|l| !l.starts_with("--")).collect();
    assert!(
        !statements.contains(&reference.name),
        "no statement names the reference: {sql}"
    );

    let tenants: Vec<MysqlDatabase> =
        vec![MysqlDatabase::create().await, MysqlDatabase::create().await];
    for (i, db) in tenants.iter().enumerate() {
        let slug = format!("myt_000{i}");
        e.add(&slug, &db.url(), None, "1").await;
        let g = e.guard(&slug).await;
        assert_eq!(g.status, SchemaStatus::Synced, "{slug}: {g:?}");
        assert_eq!(g.hash.as_deref(), Some(report.hash.as_str()));
    }
    let diff =
        tenantry_fleet::drift::diff_tenant(&e.registry, &e.vault, "myt_0000", Timeouts::default())
            .await
            .unwrap();
    assert!(diff.diff.is_identical());

    // A later version adds a table; a changed one is refused.
    reference
        .apply("CREATE TABLE tags (id int PRIMARY KEY, label varchar(40) NOT NULL, account_id int unsigned, FOREIGN KEY (account_id) REFERENCES accounts (id));")
        .await;
    let next = capture(&e, &reference.url(), None, "2").await.unwrap();
    assert_eq!(next.statements, 1);
    let up = upgrade(&e, "myt_0001", "2").await;
    assert_eq!((up.status, up.hash), (SchemaStatus::Synced, next.hash));
    reference
        .apply("ALTER TABLE tags ADD COLUMN colour text;")
        .await;
    let refused = capture(&e, &reference.url(), None, "3").await.unwrap_err();
    assert_eq!(refused.code(), "capture_refused");
    assert!(
        refused.to_string().contains("table tags changed"),
        "{refused}"
    );
    assert_eq!(
        e.registry
            .lineage("saas", Engine::Mysql)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(last_capture_audit(&e).await.0, AuditResult::Refused);
}
