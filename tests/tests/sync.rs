//! The data-preserving sync on a real PostgreSQL: every kind of difference
//! the planner handles is brought back with the rows kept (counts and a
//! content checksum of every table on both sides); checked steps with
//! violating rows refuse with their numbers and change nothing; a
//! connection killed mid-sync leaves the tenant exactly as it was. On
//! MariaDB, where DDL commits statement by statement, the journal tells
//! exactly which steps ran and the resume finishes the rest.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use tenantry_fleet::sync::{execute_sync, plan_sync, KeepChoice};
use tenantry_fleet::{Migration, Template, TemplateVersion};
use tenantry_introspect::Timeouts;
use tenantry_model::sync::StepClass;
use tenantry_model::{Engine, SchemaStatus};
use tenantry_registry::AuditResult;
use tenantry_tests::{fixture, MysqlDatabase, PgDatabase, TestFleet};

fn template(engine: Engine) -> Template {
    template_of(engine, &fixture(engine.as_str(), "template.sql"))
}

/// Template `saas` 1.0.0 of `engine`, one migration of `sql`.
fn template_of(engine: Engine, sql: &str) -> Template {
    Template {
        name: "saas".into(),
        engine,
        versions: vec![TemplateVersion {
            version: "1.0.0".into(),
            migrations: vec![Migration {
                name: "1.0.0/0001_init.sql".into(),
                sql: sql.to_owned().into(),
            }],
        }],
    }
}

/// Registers `template` (measured on `url`) and tenant `slug` of it (in
/// `schema`), guarded to `synced`.
async fn provisioned(
    e: &TestFleet,
    template: &Template,
    url: &str,
    slug: &str,
    schema: Option<&str>,
) {
    e.register(template, url).await;
    e.add(slug, url, schema, "1.0.0").await;
    let g = e.guard(slug).await;
    assert_eq!(g.status, SchemaStatus::Synced, "{g:?}");
}

/// Runs `plan`, which must take the tenant to its template: `synced`, at
/// the template's hash, with nothing left to plan.
async fn synced_by(e: &TestFleet, plan: &tenantry_fleet::sync::SyncPlan, slug: &str) {
    let done = execute_sync(&e.registry, &e.vault, plan, slug, Timeouts::default())
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", plan.script()));
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(done.hash_after, plan.template_hash);
    let again = plan_of(e, slug).await;
    assert!(again.steps.is_empty(), "{:#?}", again.steps);
}

const ROWS: &str = "
INSERT INTO accounts (name, plan) SELECT 'account ' || g, 'pro' FROM generate_series(1, 40) g;
INSERT INTO users (account_id, email, full_name) SELECT 1 + g % 40, 'u' || g || '@example.com', 'User ' || g FROM generate_series(1, 300) g;
INSERT INTO projects (account_id, name) SELECT 1 + g % 40, 'project ' || g FROM generate_series(1, 120) g;
INSERT INTO tasks (project_id, assignee_id, title, priority) SELECT 1 + g % 120, 1 + g % 300, 'task ' || g, 1 + g % 5 FROM generate_series(1, 900) g;
INSERT INTO comments (task_id, author_id, body) SELECT 1 + g % 900, 1 + g % 300, 'comment ' || g FROM generate_series(1, 700) g;
INSERT INTO invoices (account_id, number, total_cents) SELECT 1 + g % 40, 'INV-' || g, g * 100 FROM generate_series(1, 200) g;
";

/// The template's tables with the columns both sides keep, for checksums.
const KEPT: &[(&str, &str)] = &[
    ("accounts", "id, name, plan"),
    ("users", "id, account_id, email, full_name, is_admin"),
    ("projects", "id, account_id, name, archived_at"),
    (
        "tasks",
        "id, project_id, assignee_id, title, state, priority, estimate, due_on",
    ),
    ("comments", "id, task_id, author_id, body"),
    ("invoices", "id, account_id, number, issued_on, total_cents"),
];

async fn contents(db: &PgDatabase, schema: &str) -> Vec<(String, i64, String)> {
    let mut c = db.connect().await;
    let mut out = Vec::new();
    for (table, cols) in KEPT {
        let (n, sum): (i64, Option<String>) = sqlx::query_as(&format!(
            "SELECT count(*), md5(string_agg(x::text, '|' ORDER BY x.id)) FROM (SELECT {cols} FROM {schema}.{table}) x"
        ))
        .fetch_one(&mut c)
        .await
        .unwrap();
        out.push(((*table).to_owned(), n, sum.unwrap_or_default()));
    }
    out
}

async fn count(db: &PgDatabase, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&mut db.connect().await)
        .await
        .unwrap()
}

/// The tenant's sync plan towards its template, keeping nothing.
async fn plan_of(e: &TestFleet, slug: &str) -> tenantry_fleet::sync::SyncPlan {
    plan_sync(
        &e.registry,
        &e.vault,
        slug,
        &KeepChoice::default(),
        Timeouts::default(),
    )
    .await
    .unwrap()
}

/// The tenant's sync plan, which nothing blocks.
async fn unblocked_plan(e: &TestFleet, slug: &str) -> tenantry_fleet::sync::SyncPlan {
    let plan = plan_of(e, slug).await;
    assert!(plan.blockers().is_empty(), "{:#?}", plan.steps);
    plan
}

/// Plans the tenant's sync, finds a blocker saying `blocker`, and checks
/// the apply is refused (before anything runs).
async fn refused_with(e: &TestFleet, slug: &str, blocker: &str) {
    let plan = plan_of(e, slug).await;
    let blockers = plan.blockers();
    assert!(
        blockers.iter().any(|b| b.contains(blocker)),
        "{blockers:#?}"
    );
    let err = execute_sync(&e.registry, &e.vault, &plan, slug, Timeouts::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "sync_refused");
}

async fn tenant(e: &TestFleet, db: &PgDatabase, slug: &str) {
    e.register(&template(Engine::Postgres), &db.url()).await;
    e.add(slug, &db.url(), Some(slug), "1.0.0").await;
    assert_eq!(e.guard(slug).await.status, SchemaStatus::Synced);
    db.apply(slug, ROWS).await;
}

#[tokio::test]
async fn a_customized_postgres_tenant_is_synced_with_every_row_kept() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    tenant(&e, &db, "acme").await;
    let before = contents(&db, "acme").await;
    db.apply(
        "acme",
        r#"
        CREATE TABLE custom_reports (id int); INSERT INTO custom_reports SELECT generate_series(1, 250);
        CREATE TABLE "x""; DROP TABLE users; --" (id int); INSERT INTO "x""; DROP TABLE users; --" VALUES (1);
        ALTER TABLE users ADD COLUMN badge text; UPDATE users SET badge = 'gold' WHERE id <= 17;
        ALTER TABLE users ADD COLUMN "it's ""odd""" int;
        ALTER TABLE accounts ALTER COLUMN name TYPE text;
        ALTER TABLE projects ALTER COLUMN name DROP NOT NULL;
        ALTER TABLE invoices ALTER COLUMN total_cents SET DEFAULT 100;
        DROP INDEX idx_tasks_project_state;
        CREATE INDEX custom_idx ON comments (body);
        ALTER TABLE tasks DROP CONSTRAINT tasks_priority_check;
        ALTER TABLE comments DROP COLUMN created_at;
        ALTER TABLE tasks DROP CONSTRAINT tasks_assignee_id_fkey;
        ALTER TABLE tasks ADD FOREIGN KEY (assignee_id) REFERENCES users (id) ON DELETE CASCADE;
        CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
        CREATE TRIGGER stamp_projects BEFORE UPDATE ON projects FOR EACH ROW EXECUTE FUNCTION stamp();
        CREATE VIEW big_accounts AS SELECT id FROM accounts WHERE plan = 'pro';
        "#,
    )
    .await;

    let plan = unblocked_plan(&e, "acme").await;
    let step = |needle: &str| {
        plan.steps
            .iter()
            .find(|s| s.action.contains(needle))
            .unwrap_or_else(|| panic!("no step {needle:?} in {:#?}", plan.steps))
    };
    let moved = plan
        .steps
        .iter()
        .find(|s| s.object == "table custom_reports")
        .unwrap();
    assert_eq!(
        (moved.class, moved.count),
        (StepClass::Destructive, Some(250))
    );
    let badge = step("custom columns");
    assert_eq!(
        (badge.class, badge.count),
        (StepClass::Destructive, Some(17))
    );
    assert_eq!(step("back from text").class, StepClass::Checked);
    assert_eq!(step("back from text").count, Some(0));
    assert_eq!(step("make name NOT NULL").count, Some(0));
    assert_eq!(step("revert the default").class, StepClass::Safe);
    assert_eq!(step("add the check").count, Some(0));
    assert_eq!(step("add the foreign key").count, Some(0));
    assert_eq!(step("missing column created_at").class, StepClass::Safe);
    assert!(plan.script().contains("BEGIN;"));

    let done = execute_sync(&e.registry, &e.vault, &plan, "acme", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(done.hash_after, plan.template_hash);
    // Every row of every template table is still there, unchanged.
    assert_eq!(contents(&db, "acme").await, before);
    // What was removed is in the quarantine, recorded as a backup.
    let location = done.quarantine.clone().unwrap();
    let q: String = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'tenantry_q_acme_%'",
    )
    .fetch_one(&mut db.connect().await)
    .await
    .unwrap();
    assert!(location.contains(&q), "{location}");
    assert_eq!(q, plan.quarantine, "the quarantine the plan named");
    assert_eq!(
        count(&db, &format!("SELECT count(*) FROM {q}.custom_reports")).await,
        250
    );
    assert_eq!(
        count(&db, &format!("SELECT count(badge) FROM {q}.users")).await,
        17
    );
    let backups = e.registry.backups(Some("acme")).await.unwrap();
    assert_eq!(backups[0].location, format!("removed by sync: {location}"));
    // A sync's quarantine is not a whole schema: restoring it is refused.
    let refused = tenantry_fleet::backup::restore_backup(
        &e.registry,
        &e.vault,
        backups[0].id,
        "acme",
        Timeouts::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.code(), "backup_refused");
    let record = e.registry.tenant("acme").await.unwrap();
    assert_eq!(record.status, SchemaStatus::Synced);
    let audit = e.registry.audit_log(Some("acme"), 20).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "sync"
        && a.result == AuditResult::Ok
        && a.detail.contains("removed data")));
    assert!(audit.iter().any(|a| a.action == "sync.start"));
    // A second plan has nothing left to do.
    let again = plan_of(&e, "acme").await;
    assert!(again.steps.is_empty(), "{:#?}", again.steps);
}

#[tokio::test]
async fn changed_and_missing_primary_keys_are_swapped_back_with_the_rows_kept() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    tenant(&e, &db, "umbrella").await;
    db.apply(
        "umbrella",
        r#"INSERT INTO settings (key, value) VALUES ('theme', '"dark"'), ('lang', '"en"');
        ALTER TABLE comments DROP CONSTRAINT comments_pkey;
        ALTER TABLE comments ADD CONSTRAINT "by task" PRIMARY KEY (task_id, id);
        ALTER TABLE settings DROP CONSTRAINT settings_pkey;"#,
    )
    .await;
    let before = contents(&db, "umbrella").await;
    let plan = unblocked_plan(&e, "umbrella").await;
    let adds: Vec<_> = plan
        .steps
        .iter()
        .filter(|s| s.action.starts_with("add the primary key"))
        .map(|s| (s.object.as_str(), s.class, s.count))
        .collect();
    assert_eq!(
        adds,
        [
            ("table comments", StepClass::Checked, Some(0)),
            ("table settings", StepClass::Checked, Some(0))
        ],
        "{:#?}",
        plan.steps
    );
    let done = execute_sync(
        &e.registry,
        &e.vault,
        &plan,
        "umbrella",
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(contents(&db, "umbrella").await, before);
    assert_eq!(
        count(&db, "SELECT count(*) FROM umbrella.settings").await,
        2
    );

    // A repeated key blocks the sync with its number, and nothing changes.
    db.apply(
        "umbrella",
        r#"ALTER TABLE settings DROP CONSTRAINT settings_pkey;
         INSERT INTO settings (key, value) VALUES ('theme', '"light"');"#,
    )
    .await;
    refused_with(
        &e,
        "umbrella",
        "2 rows with no value or a repeated value in the primary key",
    )
    .await;
    assert_eq!(
        count(&db, "SELECT count(*) FROM umbrella.settings").await,
        3
    );
}

#[tokio::test]
async fn an_enum_missing_labels_gets_them_back_in_place() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    tenant(&e, &db, "soylent").await;
    db.apply(
        "soylent",
        "DROP VIEW open_tasks;
         ALTER TYPE task_state RENAME TO old_state;
         CREATE TYPE task_state AS ENUM ('todo', 'done');
         ALTER TABLE tasks ALTER COLUMN state DROP DEFAULT;
         ALTER TABLE tasks ALTER COLUMN state TYPE task_state USING state::text::task_state;
         ALTER TABLE tasks ALTER COLUMN state SET DEFAULT 'todo';
         DROP TYPE old_state;
         CREATE VIEW open_tasks AS
             SELECT t.id, t.title, p.name AS project
               FROM tasks t JOIN projects p ON p.id = t.project_id
              WHERE t.state <> 'done';
         UPDATE tasks SET state = 'done' WHERE id <= 10;",
    )
    .await;
    let before = contents(&db, "soylent").await;
    let plan = plan_of(&e, "soylent").await;
    assert_eq!(plan.steps.len(), 1, "{:#?}", plan.steps);
    assert_eq!(
        (plan.steps[0].class, plan.steps[0].sql.concat()),
        (
            StepClass::Safe,
            "ALTER TYPE \"task_state\" ADD VALUE E'doing' AFTER E'todo'".to_owned()
        )
    );
    let done = execute_sync(&e.registry, &e.vault, &plan, "soylent", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(contents(&db, "soylent").await, before);
}

#[tokio::test]
async fn a_sequence_gets_the_templates_settings_back_and_keeps_its_current_value() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    tenant(&e, &db, "cyberdyne").await;
    db.apply(
        "cyberdyne",
        "SELECT nextval('invoice_number_seq') FROM generate_series(1, 7);
         ALTER SEQUENCE invoice_number_seq INCREMENT BY 5 MAXVALUE 500000 CACHE 10 CYCLE;",
    )
    .await;
    let last = "SELECT last_value FROM cyberdyne.invoice_number_seq";
    let value = count(&db, last).await;
    let plan = plan_of(&e, "cyberdyne").await;
    assert_eq!(plan.steps.len(), 1, "{:#?}", plan.steps);
    assert_eq!(
        (plan.steps[0].class, plan.steps[0].count),
        (StepClass::Checked, Some(0))
    );
    let done = execute_sync(
        &e.registry,
        &e.vault,
        &plan,
        "cyberdyne",
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(count(&db, last).await, value);
}

#[tokio::test]
async fn identity_modes_and_generated_columns_are_brought_back() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    tenant(&e, &db, "tyrell").await;
    db.apply(
        "tyrell",
        "INSERT INTO invoice_lines (invoice_id, line_no, description, quantity, unit_cents)
             SELECT id, 1, 'line', 2, 150 FROM invoices WHERE id <= 20;
         ALTER TABLE users ALTER COLUMN id SET GENERATED BY DEFAULT;
         ALTER TABLE invoice_lines ALTER COLUMN line_cents DROP EXPRESSION;
         UPDATE invoice_lines SET line_cents = 1 WHERE invoice_id = 3;",
    )
    .await;
    let before = contents(&db, "tyrell").await;
    let keep = KeepChoice::default();
    let plan = || plan_sync(&e.registry, &e.vault, "tyrell", &keep, Timeouts::default());
    // A value the tenant wrote itself would be recomputed: counted, refused.
    let first = plan().await.unwrap();
    let blockers = first.blockers();
    assert_eq!(blockers.len(), 1, "{:#?}", first.steps);
    assert!(
        blockers[0].contains("1 row whose line_cents differs from what the template computes"),
        "{blockers:#?}"
    );
    assert!(first
        .steps
        .iter()
        .any(|s| s.class == StepClass::Safe && s.sql.concat().contains("SET GENERATED ALWAYS")));
    db.apply(
        "tyrell",
        "UPDATE invoice_lines SET line_cents = quantity * unit_cents;",
    )
    .await;
    let second = plan().await.unwrap();
    assert!(second.blockers().is_empty(), "{:#?}", second.steps);
    let done = execute_sync(
        &e.registry,
        &e.vault,
        &second,
        "tyrell",
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(contents(&db, "tyrell").await, before);
    assert_eq!(
        count(
            &db,
            "SELECT sum(line_cents)::bigint FROM tyrell.invoice_lines"
        )
        .await,
        20 * 300
    );
}

#[tokio::test]
async fn one_kept_column_stays_with_its_values_while_the_rest_of_its_table_comes_back() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    tenant(&e, &db, "vandelay").await;
    db.apply(
        "vandelay",
        "ALTER TABLE users ADD COLUMN badge text; UPDATE users SET badge = 'gold' WHERE id <= 9;
         ALTER TABLE users ADD COLUMN nickname text;",
    )
    .await;
    let keep = KeepChoice {
        objects: vec!["column users.badge".into()],
        note: "loyalty programme, ticket 77".into(),
    };
    let plan = plan_sync(
        &e.registry,
        &e.vault,
        "vandelay",
        &keep,
        Timeouts::default(),
    )
    .await
    .unwrap();
    // The console offers each differing column to keep on its own.
    assert_eq!(
        plan.keepable_columns,
        ["column users.badge", "column users.nickname"]
    );
    let actions: Vec<&str> = plan.steps.iter().map(|s| s.action.as_str()).collect();
    assert!(
        actions
            .iter()
            .any(|a| a.contains("drop the custom column nickname")),
        "{actions:#?}"
    );
    assert!(!actions.iter().any(|a| a.contains("badge")), "{actions:#?}");
    let done = execute_sync(
        &e.registry,
        &e.vault,
        &plan,
        "vandelay",
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert_eq!(done.hash_after, plan.target_hash);
    assert_eq!(
        count(&db, "SELECT count(badge) FROM vandelay.users").await,
        9
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'vandelay' AND table_name = 'users' AND column_name = 'nickname'"
        )
        .await,
        0
    );
    let record = e.registry.tenant("vandelay").await.unwrap();
    assert_eq!(
        record.accepted_hash.as_deref(),
        Some(plan.target_hash.as_str())
    );
}

#[tokio::test]
async fn checked_steps_with_violating_rows_refuse_with_their_numbers_and_change_nothing() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    tenant(&e, &db, "globex").await;
    db.apply(
        "globex",
        "ALTER TABLE accounts ALTER COLUMN name TYPE text;
         UPDATE accounts SET name = repeat('x', 250) WHERE id <= 3;
         ALTER TABLE projects ALTER COLUMN name DROP NOT NULL;
         UPDATE projects SET name = NULL WHERE id <= 12;
         ALTER TABLE tasks DROP CONSTRAINT tasks_priority_check;
         UPDATE tasks SET priority = 9 WHERE id <= 2;
         ALTER TABLE users ADD COLUMN badge text;",
    )
    .await;
    let before = contents(&db, "globex").await;
    let plan = plan_of(&e, "globex").await;
    let blockers = plan.blockers();
    assert_eq!(blockers.len(), 3, "{blockers:#?}");
    assert!(
        blockers
            .iter()
            .any(|b| b.contains("3 values longer than 200")),
        "{blockers:#?}"
    );
    assert!(
        blockers
            .iter()
            .any(|b| b.contains("12 rows where name is NULL")),
        "{blockers:#?}"
    );
    assert!(
        blockers
            .iter()
            .any(|b| b.contains("2 rows that violate the check")),
        "{blockers:#?}"
    );
    let err = execute_sync(&e.registry, &e.vault, &plan, "globex", Timeouts::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "sync_refused");
    assert!(
        err.to_string().contains("12 rows where name is NULL"),
        "{err}"
    );
    let after = plan_of(&e, "globex").await;
    assert_eq!(after.drift_hash, plan.drift_hash);
    assert_eq!(contents(&db, "globex").await, before);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenantry_q_%'"
        )
        .await,
        0
    );
    let audit = e.registry.audit_log(Some("globex"), 20).await.unwrap();
    assert!(audit
        .iter()
        .any(|a| a.action == "sync" && a.result == AuditResult::Refused));

    // A wrong confirmation runs nothing either; a MariaDB tenant is
    // refused with what to use instead.
    let typo = execute_sync(&e.registry, &e.vault, &plan, "Globex", Timeouts::default())
        .await
        .unwrap_err();
    assert_eq!(typo.code(), "confirmation_mismatch");
}

#[tokio::test]
async fn a_connection_killed_mid_sync_leaves_the_tenant_exactly_as_it_was() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    tenant(&e, &db, "umbrella").await;
    db.apply(
        "umbrella",
        "CREATE TABLE custom_reports (id int); INSERT INTO custom_reports SELECT generate_series(1, 50);
         ALTER TABLE users ADD COLUMN badge text; UPDATE users SET badge = 'x';",
    )
    .await;
    let before = contents(&db, "umbrella").await;
    let plan = plan_of(&e, "umbrella").await;

    // Another session reads `users`, so the sync's ALTER on it waits after
    // it has already moved custom_reports; that is where it is killed.
    let mut reader = db.connect().await;
    sqlx::Executor::execute(
        &mut reader,
        "BEGIN; LOCK TABLE umbrella.users IN ACCESS SHARE MODE",
    )
    .await
    .unwrap();
    let (registry, vault, p) = (Arc::clone(&e.registry), Arc::clone(&e.vault), plan.clone());
    let sync = tokio::spawn(async move {
        execute_sync(&registry, &vault, &p, "umbrella", Timeouts::default()).await
    });
    let mut admin = db.connect().await;
    let mut killed = false;
    for _ in 0..200 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let n: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
              WHERE datname = current_database() AND pid <> pg_backend_pid()
                AND wait_event_type = 'Lock' AND query LIKE 'ALTER TABLE \"users\" DROP COLUMN%'",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap();
        if n > 0 {
            killed = true;
            break;
        }
    }
    sqlx::Executor::execute(&mut reader, "ROLLBACK")
        .await
        .unwrap();
    assert!(
        killed,
        "the sync was never seen waiting: {:?}",
        sync.await.unwrap()
    );
    let err = sync.await.unwrap().unwrap_err();
    assert!(
        matches!(err.code(), "sync_step_failed" | "catalog_failed"),
        "{err}"
    );
    let after = plan_of(&e, "umbrella").await;
    assert_eq!(after.drift_hash, plan.drift_hash, "exactly as it was");
    assert_eq!(contents(&db, "umbrella").await, before);
    assert_eq!(
        count(&db, "SELECT count(*) FROM umbrella.custom_reports").await,
        50
    );
    assert_eq!(
        count(&db, "SELECT count(badge) FROM umbrella.users").await,
        300
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenantry_q_%'"
        )
        .await,
        0
    );
    // The journal shows the attempt ended, and the audit log says how.
    assert!(e.registry.unfinished_operations().await.unwrap().is_empty());
    let audit = e.registry.audit_log(Some("umbrella"), 20).await.unwrap();
    assert!(audit
        .iter()
        .any(|a| a.action == "sync" && a.result == AuditResult::Failed));
}

#[tokio::test]
async fn tenants_with_the_same_customisation_share_one_plan_and_sync_as_a_group() {
    use tenantry_fleet::scan::{scan, CancelScan, ScanOptions};
    use tenantry_fleet::sync::{plan_fleet, sync_group};
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    tenant(&e, &db, "a1").await;
    for slug in ["a2", "b1"] {
        e.add(slug, &db.url(), Some(slug), "1.0.0").await;
        assert_eq!(e.guard(slug).await.status, SchemaStatus::Synced);
        db.apply(slug, ROWS).await;
    }
    for slug in ["a1", "a2"] {
        db.apply(
            slug,
            "ALTER TABLE users ADD COLUMN badge text; CREATE INDEX by_body ON comments (body);",
        )
        .await;
    }
    db.apply("b1", "ALTER TABLE projects ALTER COLUMN name DROP NOT NULL; UPDATE projects SET name = NULL WHERE id = 1;").await;
    scan(
        &e.registry,
        &e.vault,
        &ScanOptions::default(),
        &|_| {},
        &CancelScan::default(),
    )
    .await
    .unwrap();

    let plan = plan_fleet(
        &e.registry,
        &e.vault,
        SchemaStatus::Customized,
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert!(plan.unplanned.is_empty(), "{:?}", plan.unplanned);
    let sizes: Vec<Vec<String>> = plan.groups.iter().map(|g| g.tenants.clone()).collect();
    assert_eq!(
        sizes,
        vec![
            vec!["a1".to_owned(), "a2".to_owned()],
            vec!["b1".to_owned()]
        ]
    );
    assert!(plan.groups[0].blocked.is_empty());
    assert_eq!(plan.groups[1].blocked[0].slug, "b1");
    assert!(plan.groups[1].blocked[0].reasons[0].contains("1 row where name is NULL"));

    let hash = plan.groups[0].drift_hash.clone();
    let wrong = sync_group(
        &e.registry,
        &e.vault,
        &hash,
        &hash[..20],
        Timeouts::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(wrong.code(), "confirmation_mismatch");
    let before = contents(&db, "a2").await;
    let members = sync_group(&e.registry, &e.vault, &hash, &hash, Timeouts::default())
        .await
        .unwrap();
    let synced: Vec<&str> = members
        .iter()
        .filter(|m| m.outcome.is_some())
        .map(|m| m.slug.as_str())
        .collect();
    assert_eq!(synced, vec!["a1", "a2"], "{members:?}");
    assert_eq!(contents(&db, "a2").await, before);
    assert_eq!(
        e.registry.tenant("b1").await.unwrap().status,
        SchemaStatus::Customized
    );
}

#[tokio::test]
async fn kept_differences_stay_and_become_the_accepted_customisation() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    tenant(&e, &db, "hooli").await;
    db.apply(
        "hooli",
        "CREATE TABLE partner_feed (id int); INSERT INTO partner_feed SELECT generate_series(1, 40);
         CREATE TABLE scratch (id int);
         ALTER TABLE users ADD COLUMN badge text;",
    )
    .await;
    let without_note = KeepChoice {
        objects: vec!["table partner_feed".into()],
        note: " ".into(),
    };
    let err = plan_sync(
        &e.registry,
        &e.vault,
        "hooli",
        &without_note,
        Timeouts::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "sync_refused");
    let unknown = KeepChoice {
        objects: vec!["table accounts".into()],
        note: "x".into(),
    };
    let err = plan_sync(
        &e.registry,
        &e.vault,
        "hooli",
        &unknown,
        Timeouts::default(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("not one of the differences"),
        "{err}"
    );

    let keep = KeepChoice {
        objects: vec!["table partner_feed".into()],
        note: "partner integration, ticket 4411".into(),
    };
    let plan = plan_sync(&e.registry, &e.vault, "hooli", &keep, Timeouts::default())
        .await
        .unwrap();
    assert!(
        !plan.steps.iter().any(|s| s.object == "table partner_feed"),
        "{:#?}",
        plan.steps
    );
    assert!(plan.steps.iter().any(|s| s.object == "table scratch"));
    assert_ne!(plan.target_hash, plan.template_hash);
    let done = execute_sync(&e.registry, &e.vault, &plan, "hooli", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(done.hash_after, plan.target_hash);
    assert_eq!(done.status, SchemaStatus::Customized);
    assert_eq!(
        count(&db, "SELECT count(*) FROM hooli.partner_feed").await,
        40
    );
    let record = e.registry.tenant("hooli").await.unwrap();
    assert_eq!(
        record.accepted_hash.as_deref(),
        Some(plan.target_hash.as_str())
    );
    assert_eq!(
        record.accepted_note.as_deref(),
        Some("partner integration, ticket 4411")
    );
    assert!(record
        .status_reason
        .unwrap_or_default()
        .contains("kept by the sync: table partner_feed"));
    // A scan agrees: customized, and it is the accepted customisation.
    let r = tenantry_fleet::scan::scan(
        &e.registry,
        &e.vault,
        &tenantry_fleet::scan::ScanOptions::default(),
        &|_| {},
        &tenantry_fleet::scan::CancelScan::default(),
    )
    .await
    .unwrap();
    let hooli = r.tenants.iter().find(|t| t.slug == "hooli").unwrap();
    assert!(hooli.accepted, "{hooli:?}");
}

/// SQLite: the table rebuild keeps every row of every template table,
/// drops what is custom (kept in the file backup), refuses NULLs a NOT NULL
/// column would get, and a sync that fails leaves the file as it was.
#[tokio::test]
async fn a_sqlite_tenant_is_synced_by_table_rebuilds_with_its_rows_kept() {
    let e = TestFleet::new().await;
    let scratch = format!("sqlite:{}", e.dir.join("scratch.db").display());
    e.register(&template(Engine::Sqlite), &scratch).await;
    let file = e.dir.join("wayne.db");
    e.add(
        "wayne",
        &format!("sqlite:{}", file.display()),
        None,
        "1.0.0",
    )
    .await;
    let g = e.guard("wayne").await;
    assert_eq!(g.status, SchemaStatus::Synced, "{g:?}");
    let checksum = "SELECT count(*) || ':' || group_concat(id || name || email, '|') FROM (SELECT u.id, a.name, u.email FROM users u JOIN accounts a ON a.id = u.account_id ORDER BY u.id)";
    let sql = |s: &'static str| {
        let file = file.clone();
        async move { tenantry_tests::sqlite_file(&file, s).await }
    };
    sql("INSERT INTO accounts (name) VALUES ('Wayne'), ('Kent');
         INSERT INTO users (account_id, email) VALUES (1, 'bruce@wayne'), (2, 'clark@kent'), (1, 'alfred@wayne');
         CREATE TABLE batcave (id INTEGER); INSERT INTO batcave VALUES (1), (2);
         ALTER TABLE users ADD COLUMN cape TEXT; UPDATE users SET cape = 'black' WHERE id = 1;
         DROP INDEX idx_users_account;
         CREATE INDEX by_email ON users (email);")
        .await;
    let read = |q: &'static str| {
        let file = file.clone();
        async move {
            let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
                "sqlite:{}",
                file.display()
            ))
            .await
            .unwrap();
            let v: String = sqlx::query_scalar(q).fetch_one(&mut c).await.unwrap();
            v
        }
    };
    let before = read(checksum).await;
    let plan = unblocked_plan(&e, "wayne").await;
    let dropped = plan
        .steps
        .iter()
        .find(|s| s.object == "table batcave")
        .unwrap();
    assert_eq!(
        (dropped.class, dropped.count),
        (StepClass::Destructive, Some(2))
    );
    let users = plan
        .steps
        .iter()
        .find(|s| s.object == "table users")
        .unwrap();
    assert_eq!(
        (users.class, users.count),
        (StepClass::Destructive, Some(1))
    );
    assert!(plan.script().contains("PRAGMA foreign_key_check;"));

    let done = execute_sync(&e.registry, &e.vault, &plan, "wayne", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(done.hash_after, plan.template_hash);
    assert_eq!(read(checksum).await, before, "every row kept");
    let backup = done.quarantine.clone().unwrap();
    let backup = backup.trim_start_matches("file ");
    let mut b = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite:{backup}"))
        .await
        .unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM batcave")
        .fetch_one(&mut b)
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        e.registry.backups(Some("wayne")).await.unwrap()[0].location,
        format!("file {backup}")
    );

    // NULLs where the template wants a value: refused with the count,
    // nothing changed.
    sql("CREATE TABLE t2 AS SELECT * FROM projects; DROP TABLE projects;
         CREATE TABLE projects (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES accounts (id), name TEXT, archived_at TEXT, UNIQUE (account_id, name));
         CREATE INDEX idx_projects_live ON projects (account_id) WHERE archived_at IS NULL; DROP TABLE t2;
         INSERT INTO projects (account_id, name) VALUES (1, NULL), (2, 'ok');")
        .await;
    refused_with(&e, "wayne", "1 row where name is NULL").await;
    assert_eq!(read("SELECT count(*) || '' FROM projects").await, "2");

    // A value the template's CHECK refuses makes the copy fail mid-sync:
    // rolled back, the file as it was, no stray backup.
    sql("UPDATE projects SET name = 'named' WHERE name IS NULL;
         PRAGMA foreign_keys = OFF;
         CREATE TABLE a2 AS SELECT * FROM accounts; DROP TABLE accounts;
         CREATE TABLE accounts (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, plan TEXT NOT NULL DEFAULT 'free', created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
         INSERT INTO accounts SELECT * FROM a2; DROP TABLE a2;
         UPDATE accounts SET plan = 'gold' WHERE id = 2;")
        .await;
    let before = read(checksum).await;
    let plan = plan_of(&e, "wayne").await;
    let hash_before = plan.drift_hash.clone();
    let baks = || {
        std::fs::read_dir(&e.dir)
            .unwrap()
            .filter(|f| {
                f.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".bak")
            })
            .count()
    };
    let baks_before = baks();
    let err = execute_sync(&e.registry, &e.vault, &plan, "wayne", Timeouts::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "sync_step_failed", "{err}");
    assert!(err.to_string().contains("CHECK"), "{err}");
    assert_eq!(read(checksum).await, before);
    let again = plan_of(&e, "wayne").await;
    assert_eq!(again.drift_hash, hash_before);
    assert_eq!(baks(), baks_before);

    // A backup of the same second as another gets a `-n` name; one left
    // unrecorded (the process killed before recording it) is found by
    // `backup discover` like any other.
    let orphan = e.dir.join("wayne.1796520812-2.bak");
    std::fs::copy(&file, &orphan).unwrap();
    let found =
        tenantry_fleet::backup::discover_orphans(&e.registry, &e.vault, Timeouts::default())
            .await
            .unwrap();
    assert!(
        found
            .iter()
            .any(|o| o.tenant_slug == "wayne" && o.location == format!("file {}", orphan.display())),
        "{found:?}"
    );
}

#[tokio::test]
async fn a_sync_whose_intent_cannot_be_journaled_changes_nothing() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    tenant(&e, &db, "acme").await;
    db.apply(
        "acme",
        "CREATE TABLE ledger (id int); INSERT INTO ledger VALUES (1);",
    )
    .await;
    let plan = plan_of(&e, "acme").await;
    std::fs::rename(e.dir.join("registry.db"), e.dir.join("moved.db")).unwrap();
    let err = execute_sync(&e.registry, &e.vault, &plan, "acme", Timeouts::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "registry_vanished", "{err}");
    assert_eq!(count(&db, "SELECT count(*) FROM acme.ledger").await, 1);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenantry_q_%'"
        )
        .await,
        0
    );
}

// ------------------------------------------------------------ MariaDB

const MY_ROWS: &str = "
INSERT INTO accounts (name, plan) WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 40) SELECT CONCAT('account ', n), 'pro' FROM g;
INSERT INTO users (account_id, email, full_name) WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 300) SELECT 1 + n % 40, CONCAT('u', n, '@example.com'), CONCAT('User ', n) FROM g;
INSERT INTO projects (account_id, name) WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 120) SELECT 1 + n % 40, CONCAT('project ', n) FROM g;
INSERT INTO tasks (project_id, assignee_id, title, priority) WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 900) SELECT 1 + n % 120, 1 + n % 300, CONCAT('task ', n), 1 + n % 5 FROM g;
INSERT INTO invoices (account_id, number, total_cents) WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 200) SELECT 1 + n % 40, CONCAT('INV-', n), n * 100 FROM g;
INSERT INTO settings (`key`, value) VALUES ('theme', 'dark'), ('locale', 'fr');
";

/// The MariaDB template's tables with the columns both sides keep.
const MY_KEPT: &[(&str, &str, &str)] = &[
    ("accounts", "id, name, plan", "id"),
    ("users", "id, account_id, email, full_name, is_admin", "id"),
    ("projects", "id, account_id, name, archived_at", "id"),
    (
        "tasks",
        "id, project_id, assignee_id, title, state, priority, estimate, due_on",
        "id",
    ),
    ("invoices", "id, account_id, number, total_cents", "id"),
    ("settings", "`key`, value", "`key`"),
];

/// Every kept table's row count and a checksum of its rows.
async fn my_contents(db: &MysqlDatabase) -> Vec<(String, i64, String)> {
    let mut c = db.connect().await;
    sqlx::query("SET SESSION group_concat_max_len = 16777216")
        .execute(&mut c)
        .await
        .unwrap();
    let mut out = Vec::new();
    for (table, cols, order) in MY_KEPT {
        let (n, sum): (i64, Option<String>) = sqlx::query_as(&format!(
            "SELECT COUNT(*), MD5(GROUP_CONCAT(CONCAT_WS(',', {cols}) ORDER BY {order} SEPARATOR '|')) FROM {table}"
        ))
        .fetch_one(&mut c)
        .await
        .unwrap();
        out.push(((*table).to_owned(), n, sum.unwrap_or_default()));
    }
    out
}

async fn my_count(db: &str, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(&mut MysqlDatabase::adopt_connect(db).await)
        .await
        .unwrap()
}

/// The quarantine databases a sync of `db` left (dropped with the guards).
async fn my_quarantines(db: &MysqlDatabase) -> Vec<MysqlDatabase> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'tenantry\\_q\\_%'",
    )
    .fetch_all(&mut db.connect().await)
    .await
    .unwrap();
    let stem: String = db.name.chars().take(36).collect();
    names
        .into_iter()
        .filter(|n| n.starts_with(&format!("tenantry_q_{stem}_")))
        .map(|n| MysqlDatabase::adopt(&n))
        .collect()
}

async fn my_tenant(e: &TestFleet, slug: &str) -> MysqlDatabase {
    let my = MysqlDatabase::create().await;
    e.register(&template(Engine::Mysql), &my.url()).await;
    e.add(slug, &my.url(), None, "1.0.0").await;
    assert_eq!(e.guard(slug).await.status, SchemaStatus::Synced);
    my.apply(MY_ROWS).await;
    my
}

#[tokio::test]
async fn a_customized_mariadb_tenant_is_synced_step_by_step_with_every_row_kept() {
    let e = TestFleet::new().await;
    let my = my_tenant(&e, "initech").await;
    let before = my_contents(&my).await;
    my.apply(
        r#"
        CREATE TABLE custom_reports (id INT);
        INSERT INTO custom_reports WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 250) SELECT n FROM g;
        CREATE TABLE `x``; DROP TABLE users; --` (id INT);
        INSERT INTO `x``; DROP TABLE users; --` VALUES (1);
        CREATE TRIGGER custom_reports_stamp BEFORE INSERT ON custom_reports FOR EACH ROW SET NEW.id = NEW.id;
        ALTER TABLE users ADD COLUMN badge TEXT;
        UPDATE users SET badge = 'gold' WHERE id <= 17;
        ALTER TABLE users ADD COLUMN `it's "odd"` INT;
        ALTER TABLE accounts MODIFY name TEXT NOT NULL;
        ALTER TABLE projects MODIFY name VARCHAR(200) NULL;
        ALTER TABLE projects DROP COLUMN archived_at;
        ALTER TABLE invoices ALTER COLUMN total_cents SET DEFAULT 100;
        DROP INDEX idx_tasks_due ON tasks;
        CREATE INDEX custom_idx ON invoices (number);
        ALTER TABLE tasks MODIFY priority SMALLINT NOT NULL DEFAULT 3;
        ALTER TABLE invoices MODIFY number VARCHAR(40) NOT NULL CHECK (number LIKE 'INV-%');
        ALTER TABLE tasks DROP FOREIGN KEY tasks_ibfk_2;
        ALTER TABLE tasks ADD FOREIGN KEY (assignee_id) REFERENCES users (id) ON DELETE CASCADE;
        CREATE TRIGGER stamp_projects BEFORE UPDATE ON projects FOR EACH ROW SET NEW.name = NEW.name;
        CREATE VIEW big_accounts AS SELECT id FROM accounts WHERE plan = 'pro';
        DROP VIEW open_tasks;
        CREATE PROCEDURE custom_proc() SELECT 1;
        DROP TABLE invoice_lines;
        "#,
    )
    .await;

    let plan = unblocked_plan(&e, "initech").await;
    let step = |needle: &str| {
        plan.steps
            .iter()
            .find(|s| s.action.contains(needle) || s.object.contains(needle))
            .unwrap_or_else(|| panic!("no step {needle:?} in {:#?}", plan.steps))
    };
    let moved = step("table custom_reports");
    assert_eq!(
        (moved.class, moved.count),
        (StepClass::Destructive, Some(250))
    );
    let badge = step("custom columns");
    assert_eq!(
        (badge.class, badge.count),
        (StepClass::Destructive, Some(17))
    );
    assert_eq!(
        step("column name: back from text").class,
        StepClass::Checked
    );
    assert_eq!(step("column name: back from text").count, Some(0));
    assert_eq!(step("NOT NULL again").count, Some(0));
    assert_eq!(step("revert the default").class, StepClass::Safe);
    assert_eq!(step("add the check").count, Some(0));
    assert_eq!(step("add the foreign key (assignee_id)").count, Some(0));
    assert_eq!(step("missing column archived_at").class, StepClass::Safe);
    assert_eq!(step("create the missing table").class, StepClass::Safe);
    assert!(plan.script().contains("commit each statement"));

    let done = execute_sync(&e.registry, &e.vault, &plan, "initech", Timeouts::default())
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", plan.script()));
    let _quarantines = my_quarantines(&my).await;
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(done.hash_after, plan.template_hash);
    assert_eq!(done.applied.len(), plan.steps.len());
    // Every row of every template table is still there, unchanged
    // (archived_at came back empty, as it was in every row).
    assert_eq!(my_contents(&my).await, before);
    // What was removed is in the quarantine database, recorded as a backup.
    assert_eq!(
        done.quarantine.as_deref(),
        Some(&*format!("database {}", plan.quarantine))
    );
    assert_eq!(
        my_count(&plan.quarantine, "SELECT COUNT(*) FROM custom_reports").await,
        250
    );
    assert_eq!(
        my_count(
            &plan.quarantine,
            "SELECT COUNT(*) FROM `x``; DROP TABLE users; --`"
        )
        .await,
        1
    );
    assert_eq!(
        my_count(&plan.quarantine, "SELECT COUNT(badge) FROM users").await,
        17
    );
    let backups = e.registry.backups(Some("initech")).await.unwrap();
    assert_eq!(
        backups[0].location,
        format!("removed by sync: database {}", plan.quarantine)
    );
    // Every step is journaled as done.
    let op = e
        .registry
        .last_operation_of("initech", &["sync"])
        .await
        .unwrap()
        .unwrap();
    let journal = e.registry.operation_steps(op.id).await.unwrap();
    let total = plan.steps.len();
    assert!(journal.iter().any(|s| s
        == &format!(
            "step {total}/{total} done: [{}] {}: {}",
            plan.steps[total - 1].class.as_str(),
            plan.steps[total - 1].object,
            plan.steps[total - 1].action
        )));
    let record = e.registry.tenant("initech").await.unwrap();
    assert_eq!(record.status, SchemaStatus::Synced);
    let audit = e.registry.audit_log(Some("initech"), 20).await.unwrap();
    assert!(audit
        .iter()
        .any(|a| a.action == "sync" && a.result == AuditResult::Ok));
    // A second plan has nothing left to do.
    let again = plan_of(&e, "initech").await;
    assert!(again.steps.is_empty(), "{:#?}", again.steps);
}

#[tokio::test]
async fn mariadb_primary_keys_are_swapped_back_in_one_statement_with_the_rows_kept() {
    let e = TestFleet::new().await;
    let my = my_tenant(&e, "pied").await;
    my.apply(
        "ALTER TABLE settings DROP PRIMARY KEY;
         ALTER TABLE invoice_lines DROP PRIMARY KEY, ADD PRIMARY KEY (invoice_id, line_no, quantity);",
    )
    .await;
    let before = my_contents(&my).await;
    let plan = unblocked_plan(&e, "pied").await;
    let keys: Vec<_> = plan
        .steps
        .iter()
        .filter(|s| s.action.contains("the primary key"))
        .map(|s| (s.object.as_str(), s.sql.concat(), s.count))
        .collect();
    assert_eq!(keys.len(), 2, "{:#?}", plan.steps);
    assert!(keys.iter().any(|(o, sql, n)| *o == "table invoice_lines"
        && sql.contains("DROP PRIMARY KEY, ADD PRIMARY KEY (`invoice_id`, `line_no`)")
        && *n == Some(0)));
    let done = execute_sync(&e.registry, &e.vault, &plan, "pied", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(my_contents(&my).await, before);

    // Two rows with one key: the sync refuses with the number, untouched.
    my.apply(
        "ALTER TABLE settings DROP PRIMARY KEY;
         INSERT INTO settings (`key`, value) VALUES ('theme', 'light');",
    )
    .await;
    refused_with(
        &e,
        "pied",
        "2 rows with no value or a repeated value in the primary key",
    )
    .await;
}

#[tokio::test]
async fn mariadb_table_options_go_back_to_the_templates_with_the_rows_kept() {
    let e = TestFleet::new().await;
    let my = my_tenant(&e, "massive").await;
    my.apply("ALTER TABLE settings ENGINE=MyISAM COMMENT='ours' ROW_FORMAT=FIXED;")
        .await;
    let before = my_contents(&my).await;
    let plan = plan_of(&e, "massive").await;
    assert_eq!(plan.steps.len(), 1, "{:#?}", plan.steps);
    let sql = plan.steps[0].sql.concat();
    assert!(
        sql.contains("ENGINE=InnoDB")
            && sql.contains("COMMENT=''")
            && sql.contains("ROW_FORMAT=DEFAULT"),
        "{sql}"
    );
    let done = execute_sync(&e.registry, &e.vault, &plan, "massive", Timeouts::default())
        .await
        .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(my_contents(&my).await, before);
    assert_eq!(
        my_count(
            &my.name,
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'settings' AND ENGINE = 'InnoDB'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_mariadb_checked_step_with_violating_rows_refuses_with_its_numbers() {
    let e = TestFleet::new().await;
    let my = my_tenant(&e, "hooli").await;
    my.apply(
        "ALTER TABLE accounts MODIFY name TEXT NULL;
         UPDATE accounts SET name = NULL WHERE id <= 3;
         UPDATE accounts SET name = REPEAT('x', 300) WHERE id = 4;",
    )
    .await;
    let before = my_contents(&my).await;
    let plan = plan_of(&e, "hooli").await;
    let blockers = plan.blockers();
    assert_eq!(blockers.len(), 1, "{blockers:?}");
    assert!(
        blockers[0].contains("4 rows where name is NULL or longer than 200 characters"),
        "{blockers:?}"
    );
    let refused = execute_sync(&e.registry, &e.vault, &plan, "hooli", Timeouts::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "sync_refused");
    assert_eq!(my_contents(&my).await, before);
    assert!(my_quarantines(&my).await.is_empty());
}

#[tokio::test]
async fn a_mariadb_sync_stopped_mid_way_says_what_ran_and_the_resume_finishes_it() {
    let e = TestFleet::new().await;
    let my = my_tenant(&e, "umbrella").await;
    my.apply(
        "CREATE VIEW big_accounts AS SELECT id FROM accounts WHERE plan = 'pro';
         ALTER TABLE users ADD COLUMN badge TEXT;
         UPDATE users SET badge = 'gold' WHERE id <= 17;
         ALTER TABLE invoices ALTER COLUMN total_cents SET DEFAULT 100;",
    )
    .await;
    let before = my_contents(&my).await;
    let plan = plan_of(&e, "umbrella").await;
    let total = plan.steps.len();
    let invoices = plan
        .steps
        .iter()
        .position(|s| s.object == "table invoices")
        .unwrap();
    assert!(invoices >= 3, "{:#?}", plan.steps);

    // Another session holds a metadata lock on invoices: the sync's ALTER
    // there waits, and its connection is killed while it does.
    let mut holder = my.connect().await;
    sqlx::raw_sql("START TRANSACTION; SELECT * FROM invoices LIMIT 1;")
        .execute(&mut holder)
        .await
        .unwrap();
    let registry = e.registry.clone();
    let vault = e.vault.clone();
    let running = plan.clone();
    let sync = tokio::spawn(async move {
        execute_sync(&registry, &vault, &running, "umbrella", Timeouts::default()).await
    });
    let mut admin = my.connect().await;
    let victim = loop {
        let waiting: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(ID AS SIGNED) FROM information_schema.PROCESSLIST
              WHERE STATE LIKE 'Waiting for table metadata lock%' AND INFO LIKE '%invoices%'
                AND DB = ?",
        )
        .bind(&my.name)
        .fetch_optional(&mut admin)
        .await
        .unwrap();
        if let Some(id) = waiting {
            break id;
        }
        assert!(!sync.is_finished(), "the sync ended without waiting");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    sqlx::query(&format!("KILL CONNECTION {victim}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let stopped = sync.await.unwrap().unwrap_err();
    sqlx::raw_sql("COMMIT").execute(&mut holder).await.unwrap();
    let _quarantines = my_quarantines(&my).await;
    assert_eq!(stopped.code(), "sync_interrupted", "{stopped}");
    let text = stopped.to_string();
    assert!(
        text.contains(&format!("stopped at step {}/{total}", invoices + 1)),
        "{text}"
    );
    assert!(
        text.contains(&format!("the {invoices} steps before it stay done")),
        "{text}"
    );
    assert!(text.contains("--resume"), "{text}");
    // The tenant is marked failed; the journal tells exactly what ran.
    let record = e.registry.tenant("umbrella").await.unwrap();
    assert_eq!(record.status, SchemaStatus::Failed);
    let op = e
        .registry
        .last_operation_of("umbrella", &["sync"])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(op.outcome.as_deref(), Some("failed"));
    let journal = e.registry.operation_steps(op.id).await.unwrap();
    let done: Vec<&String> = journal.iter().filter(|s| s.contains(" done: ")).collect();
    assert_eq!(done.len(), invoices, "{journal:#?}");
    assert!(journal
        .last()
        .unwrap()
        .starts_with(&format!("step {}/{total} started: ", invoices + 1)));
    // The custom column's data moved before the stop, and is recorded.
    assert_eq!(
        my_count(&plan.quarantine, "SELECT COUNT(badge) FROM users").await,
        17
    );
    assert_eq!(e.registry.backups(Some("umbrella")).await.unwrap().len(), 1);

    // The resume plans exactly what is left, into the same quarantine.
    let rest =
        tenantry_fleet::sync::plan_resume(&e.registry, &e.vault, "umbrella", Timeouts::default())
            .await
            .unwrap();
    let resumes = rest.resumes.clone().unwrap();
    assert_eq!((resumes.operation, resumes.done.len()), (op.id, invoices));
    assert_eq!(rest.quarantine, plan.quarantine);
    assert_eq!(
        rest.steps
            .iter()
            .map(|s| (&s.object, &s.action))
            .collect::<Vec<_>>(),
        plan.steps[invoices..]
            .iter()
            .map(|s| (&s.object, &s.action))
            .collect::<Vec<_>>()
    );
    let done = execute_sync(
        &e.registry,
        &e.vault,
        &rest,
        "umbrella",
        Timeouts::default(),
    )
    .await
    .unwrap();
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(done.hash_after, plan.template_hash);
    assert_eq!(my_contents(&my).await, before);
    // One backup for the one quarantine; nothing left to resume.
    assert_eq!(e.registry.backups(Some("umbrella")).await.unwrap().len(), 1);
    let again =
        tenantry_fleet::sync::plan_resume(&e.registry, &e.vault, "umbrella", Timeouts::default())
            .await
            .unwrap_err();
    assert_eq!(again.code(), "sync_refused");
}

/// A template with code and row-level security: a trigger function, a
/// SQL function reading a table, triggers (one disabled), policies, RLS
/// enabled on one table and forced on another, grants to PUBLIC.
const CODE_TEMPLATE: &str = r#"
CREATE TABLE notes (id int PRIMARY KEY, owner text NOT NULL, body text, updated_at timestamptz);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
$$;
CREATE FUNCTION note_count(who text) RETURNS bigint LANGUAGE sql STABLE
  AS $$ SELECT count(*) FROM notes WHERE owner = who $$;
CREATE TRIGGER notes_touch BEFORE UPDATE ON notes FOR EACH ROW EXECUTE FUNCTION touch();
CREATE TRIGGER notes_touch_insert BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION touch();
ALTER TABLE notes DISABLE TRIGGER notes_touch_insert;
ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY notes_owner ON notes FOR SELECT USING (owner = current_user);
CREATE TABLE archive (id int PRIMARY KEY, owner text NOT NULL, moved_at timestamptz, updated_at timestamptz);
CREATE TRIGGER archive_touch BEFORE UPDATE ON archive FOR EACH ROW EXECUTE FUNCTION touch();
ALTER TABLE archive ENABLE ROW LEVEL SECURITY;
ALTER TABLE archive FORCE ROW LEVEL SECURITY;
CREATE POLICY archive_insert ON archive AS RESTRICTIVE FOR INSERT TO PUBLIC WITH CHECK (owner <> '');
GRANT SELECT ON notes TO PUBLIC;
GRANT SELECT (id, owner) ON archive TO PUBLIC;
REVOKE EXECUTE ON FUNCTION note_count(text) FROM PUBLIC;
"#;

#[tokio::test]
async fn functions_triggers_policies_and_row_security_are_brought_back_by_the_postgres_sync() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    let code = template_of(Engine::Postgres, CODE_TEMPLATE);
    provisioned(&e, &code, &db.url(), "wayne", Some("wayne")).await;
    db.apply(
        "wayne",
        r#"
        INSERT INTO notes (id, owner, body) SELECT g, 'u' || (g % 3), 'note ' || g FROM generate_series(1, 60) g;
        DROP TRIGGER notes_touch ON notes;
        ALTER TABLE notes ENABLE TRIGGER notes_touch_insert;
        DROP FUNCTION note_count(text);
        CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
        REVOKE EXECUTE ON FUNCTION touch() FROM PUBLIC;
        ALTER POLICY notes_owner ON notes USING (true);
        CREATE POLICY "custom; all" ON notes USING (true);
        ALTER TABLE notes FORCE ROW LEVEL SECURITY;
        REVOKE SELECT ON notes FROM PUBLIC;
        GRANT INSERT, UPDATE (body) ON notes TO PUBLIC;
        DROP TABLE archive;
        "#,
    )
    .await;
    let rows = |db: &PgDatabase| {
        let url = db.url();
        async move {
            let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
            let r: (i64, String) = sqlx::query_as(
                "SELECT count(*), md5(string_agg(n::text, '|' ORDER BY n.id)) FROM wayne.notes n",
            )
            .fetch_one(&mut c)
            .await
            .unwrap();
            r
        }
    };
    use sqlx::Connection;
    let before = rows(&db).await;
    let plan = unblocked_plan(&e, "wayne").await;
    // A routine's privileges: the template's revocation given to the one
    // recreated, the tenant's own revocation undone on the one replaced.
    let sql = plan.script();
    assert!(
        sql.contains("REVOKE EXECUTE ON ROUTINE \"note_count\"(who text) FROM PUBLIC")
            || sql.contains("REVOKE EXECUTE ON ROUTINE \"note_count\"(text) FROM PUBLIC"),
        "{sql}"
    );
    assert!(
        sql.contains("GRANT EXECUTE ON ROUTINE \"touch\"() TO PUBLIC"),
        "{sql}"
    );
    let has = |needle: &str| {
        assert!(
            plan.steps.iter().any(|s| s.action.contains(needle)),
            "no step {needle:?} in {:#?}",
            plan.steps
        )
    };
    has("create the missing function");
    has("replace the changed function");
    has("create the trigger notes_touch");
    has("trigger notes_touch_insert: disabled again");
    has("drop the changed policy notes_owner");
    has("create the policy notes_owner");
    has("drop the custom policy custom; all");
    has("no force row-level security");
    has("create the missing table");
    has("create the policy archive_insert");
    has("force row-level security");
    has("grant SELECT to public as the template does");
    has("undo the custom grant of INSERT to public");
    has("undo the custom grant of UPDATE (body) to public");
    has("grant SELECT (id) to public");
    synced_by(&e, &plan, "wayne").await;
    assert_eq!(rows(&db).await, before);
}

/// MariaDB code: triggers (one changed, one missing), a function and a
/// procedure, an event.
const MY_CODE_TEMPLATE: &str = "
CREATE TABLE notes (id INT PRIMARY KEY, body TEXT, updated_at DATETIME NULL) ENGINE=InnoDB;
CREATE TRIGGER notes_touch BEFORE UPDATE ON notes FOR EACH ROW SET NEW.updated_at = NOW();
CREATE TRIGGER notes_ins BEFORE INSERT ON notes FOR EACH ROW SET NEW.body = COALESCE(NEW.body, '');
CREATE FUNCTION note_count() RETURNS INT READS SQL DATA RETURN (SELECT COUNT(*) FROM notes);
CREATE PROCEDURE purge_notes() MODIFIES SQL DATA DELETE FROM notes WHERE body = '';
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DO DELETE FROM notes WHERE body = '';
";

#[tokio::test]
async fn mariadb_triggers_routines_and_events_are_brought_back_by_the_sync() {
    let e = TestFleet::new().await;
    let my = MysqlDatabase::create().await;
    let code = template_of(Engine::Mysql, MY_CODE_TEMPLATE);
    provisioned(&e, &code, &my.url(), "stark", None).await;
    my.apply(
        "INSERT INTO notes (id, body) VALUES (1, 'a'), (2, NULL), (3, 'c');
         DROP TRIGGER notes_touch;
         DROP TRIGGER notes_ins;
         CREATE TRIGGER notes_ins BEFORE INSERT ON notes FOR EACH ROW SET NEW.body = 'x';
         CREATE TRIGGER custom_trg AFTER INSERT ON notes FOR EACH ROW SET @seen = 1;
         DROP FUNCTION note_count;
         DROP PROCEDURE purge_notes;
         CREATE PROCEDURE purge_notes() DELETE FROM notes;
         DROP EVENT nightly;",
    )
    .await;
    let before: Vec<(i32, Option<String>)> =
        sqlx::query_as("SELECT id, body FROM notes ORDER BY id")
            .fetch_all(&mut my.connect().await)
            .await
            .unwrap();
    let plan = unblocked_plan(&e, "stark").await;
    synced_by(&e, &plan, "stark").await;
    let after: Vec<(i32, Option<String>)> =
        sqlx::query_as("SELECT id, body FROM notes ORDER BY id")
            .fetch_all(&mut my.connect().await)
            .await
            .unwrap();
    assert_eq!(after, before);
}

/// Owners and privileges name real roles in the statements a sync runs:
/// the template's owner for a table the tenant gave away and for one the
/// sync creates, the owner's own revoked privilege (`{owner}`), a view's,
/// an enum's and a sequence's privileges, an enum's comment, and the
/// schema's own grant. The role names need quoting.
#[tokio::test]
async fn owners_and_privileges_come_back_under_the_tenants_real_role_names() {
    use sqlx::Connection;
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    let id = &db.name[db.name.len() - 8..];
    let owner = format!("r{id} \"owner\"");
    let reader = format!("r{id}_Reader");
    let (o, r) = (
        tenantry_model::quote::postgres(&owner),
        tenantry_model::quote::postgres(&reader),
    );
    let mut admin = db.connect().await;
    sqlx::raw_sql(&format!("CREATE ROLE {o}; CREATE ROLE {r};"))
        .execute(&mut admin)
        .await
        .unwrap();
    let sql = format!(
        r#"
        CREATE TABLE ledger (id int PRIMARY KEY, amount int NOT NULL);
        CREATE TABLE notes (id int PRIMARY KEY, body text);
        REVOKE DELETE ON notes FROM CURRENT_USER;
        CREATE TABLE audit_trail (id int PRIMARY KEY, note text);
        ALTER TABLE audit_trail OWNER TO {o};
        CREATE TABLE archive (id int PRIMARY KEY, note text);
        ALTER TABLE archive OWNER TO {o};
        GRANT SELECT ON archive TO {r};
        CREATE VIEW big AS SELECT id, amount FROM ledger WHERE amount > 100;
        GRANT SELECT ON big TO {r};
        CREATE TYPE mood AS ENUM ('calm', 'busy');
        COMMENT ON TYPE mood IS 'how the ledger feels';
        REVOKE USAGE ON TYPE mood FROM PUBLIC;
        CREATE SEQUENCE tickets;
        GRANT USAGE ON SEQUENCE tickets TO {r};
        DO $$ BEGIN EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), '{reader}'); END $$;
        "#
    );
    let roles_template = template_of(Engine::Postgres, &sql);
    // The schema's own grant is a DO block, which the template lint
    // refuses unless it is told why.
    tenantry_fleet::guard::register_template_allowing(
        &e.registry,
        &roles_template,
        &tenantry_introspect::ConnectionUrl::parse(&db.url()).unwrap(),
        None,
        Timeouts::default(),
        Some("the schema grants USAGE on itself, by name"),
    )
    .await
    .unwrap();
    e.add("initech", &db.url(), Some("initech"), "1.0.0").await;
    let g = e.guard("initech").await;
    assert_eq!(g.status, SchemaStatus::Synced, "{g:?}");
    db.apply(
        "initech",
        &format!(
            r#"
            INSERT INTO ledger SELECT g, g * 10 FROM generate_series(1, 50) g;
            INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 20) g;
            INSERT INTO audit_trail SELECT g, 'entry ' || g FROM generate_series(1, 30) g;
            ALTER TABLE audit_trail OWNER TO CURRENT_USER;
            GRANT DELETE ON notes TO CURRENT_USER;
            DROP TABLE archive;
            DROP VIEW big;
            CREATE VIEW big AS SELECT id, amount FROM ledger WHERE amount > 100;
            COMMENT ON TYPE mood IS NULL;
            GRANT USAGE ON TYPE mood TO PUBLIC;
            REVOKE USAGE ON SEQUENCE tickets FROM {r};
            REVOKE USAGE ON SCHEMA initech FROM {r};
            "#
        ),
    )
    .await;
    let rows = || async {
        let mut c = sqlx::PgConnection::connect(&db.url()).await.unwrap();
        let mut out = Vec::new();
        for t in ["ledger", "notes", "audit_trail"] {
            let r: (i64, String) = sqlx::query_as(&format!(
                "SELECT count(*), md5(string_agg(x::text, '|' ORDER BY x.id)) FROM initech.{t} x"
            ))
            .fetch_one(&mut c)
            .await
            .unwrap();
            out.push(r);
        }
        out
    };
    let before = rows().await;
    let plan = unblocked_plan(&e, "initech").await;
    let script = plan.script();
    for needle in [
        format!("ALTER TABLE \"audit_trail\" OWNER TO {o}"),
        format!("ALTER TABLE \"archive\" OWNER TO {o}"),
        format!("GRANT SELECT ON TABLE \"archive\" TO {r}"),
        "REVOKE DELETE ON TABLE \"notes\" FROM \"postgres\" CASCADE".to_owned(),
        format!("GRANT SELECT ON TABLE \"big\" TO {r}"),
        "COMMENT ON TYPE \"mood\" IS E'how the ledger feels'".to_owned(),
        "REVOKE USAGE ON TYPE \"mood\" FROM PUBLIC CASCADE".to_owned(),
        format!("GRANT USAGE ON SEQUENCE \"tickets\" TO {r}"),
        format!("GRANT USAGE ON SCHEMA \"initech\" TO {r}"),
    ] {
        assert!(script.contains(&needle), "no {needle:?} in\n{script}");
    }
    let done = execute_sync(&e.registry, &e.vault, &plan, "initech", Timeouts::default())
        .await
        .unwrap_or_else(|err| panic!("{err}\n{script}"));
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(done.hash_after, plan.template_hash);
    assert_eq!(rows().await, before);
    let again = plan_of(&e, "initech").await;
    assert!(again.steps.is_empty(), "{:#?}", again.steps);
    // The roles are the server's, not the database's: gone with the test.
    sqlx::raw_sql(&format!(
        "DROP OWNED BY {o}, {r} CASCADE; DROP ROLE {o}, {r};"
    ))
    .execute(&mut admin)
    .await
    .unwrap();
}

/// Domains, composite and range types, and extensions: a missing range
/// type and a missing extension come back, a changed composite no column
/// uses is replaced, a custom domain and a custom extension go, a custom
/// comment on a domain is removed; the rows of the table whose columns
/// use the domains stay.
#[tokio::test]
async fn types_and_extensions_are_brought_back_by_the_postgres_sync() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    let types = template_of(
        Engine::Postgres,
        "
                CREATE EXTENSION citext;
                CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
                CREATE DOMAIN cents AS bigint NOT NULL DEFAULT 0;
                CREATE TYPE pair AS (a integer, b text);
                CREATE TYPE span AS RANGE (subtype = integer);
                CREATE TABLE items (id int PRIMARY KEY, qty positive, price cents, code citext);
                ",
    );
    provisioned(&e, &types, &db.url(), "hooli", Some("hooli")).await;
    db.apply(
        "hooli",
        "INSERT INTO items SELECT g, g, g * 100, 'C' || g FROM generate_series(1, 40) g;
         ALTER TABLE items ALTER COLUMN code TYPE text;
         DROP EXTENSION citext;
         CREATE EXTENSION hstore SCHEMA hooli;
         DROP TYPE span;
         DROP TYPE pair;
         CREATE TYPE pair AS (a integer);
         CREATE DOMAIN custom_code AS text CHECK (VALUE <> '');
         COMMENT ON DOMAIN positive IS 'tenant note';",
    )
    .await;
    let rows = || async {
        count(
            &db,
            "SELECT (count(*) + sum(qty) + sum(price) + sum(length(code::text)))::bigint FROM hooli.items",
        )
        .await
    };
    let before = rows().await;
    let plan = unblocked_plan(&e, "hooli").await;
    let has = |needle: &str| {
        assert!(
            plan.steps.iter().any(|s| s.action.contains(needle)),
            "no step {needle:?} in {:#?}",
            plan.steps
        )
    };
    has("install the missing extension");
    has("drop the custom extension");
    has("create the missing range");
    has("replace the changed composite");
    has("drop the custom domain");
    has("remove the custom comment");
    let install = plan
        .steps
        .iter()
        .find(|s| s.action.contains("install the missing extension"))
        .unwrap();
    assert_eq!(
        (install.class, install.count),
        (StepClass::Checked, Some(0))
    );
    synced_by(&e, &plan, "hooli").await;
    assert_eq!(rows().await, before);
}

/// A dropped identity comes back with the template's sequence options,
/// its sequence moved past the ids already there: the next row the
/// application inserts gets a new id, not one of them.
#[tokio::test]
async fn a_missing_identity_comes_back_continuing_after_the_existing_ids() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    tenant(&e, &db, "pied").await;
    db.apply("pied", "ALTER TABLE users ALTER COLUMN id DROP IDENTITY;")
        .await;
    let before = contents(&db, "pied").await;
    let plan = plan_of(&e, "pied").await;
    assert_eq!(plan.steps.len(), 1, "{:#?}", plan.steps);
    assert_eq!(
        (plan.steps[0].class, plan.steps[0].count),
        (StepClass::Checked, Some(0))
    );
    assert!(
        plan.steps[0].sql[0].contains("ADD GENERATED ALWAYS AS IDENTITY (START WITH 1"),
        "{:#?}",
        plan.steps
    );
    let done = execute_sync(&e.registry, &e.vault, &plan, "pied", Timeouts::default())
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", plan.script()));
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(contents(&db, "pied").await, before);
    db.apply(
        "pied",
        "INSERT INTO users (account_id, email) VALUES (1, 'new@example.com');",
    )
    .await;
    assert_eq!(
        count(
            &db,
            "SELECT id FROM pied.users WHERE email = 'new@example.com'"
        )
        .await,
        301
    );
}

/// An enum the tenant gave an extra label is rebuilt with the template's
/// labels: refused while rows hold the extra label (with their number),
/// then converted with the rows, the column's default and the view that
/// reads it kept.
#[tokio::test]
async fn an_enum_with_an_extra_label_is_rebuilt_once_no_row_uses_it() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    tenant(&e, &db, "vandelay").await;
    db.apply(
        "vandelay",
        "ALTER TYPE task_state ADD VALUE 'blocked' BEFORE 'done';",
    )
    .await;
    db.apply(
        "vandelay",
        "UPDATE tasks SET state = 'blocked' WHERE id <= 5;",
    )
    .await;
    refused_with(
        &e,
        "vandelay",
        "5 values that are not among the template's labels",
    )
    .await;
    db.apply(
        "vandelay",
        "UPDATE tasks SET state = 'doing' WHERE state = 'blocked';",
    )
    .await;
    let before = contents(&db, "vandelay").await;
    let plan = unblocked_plan(&e, "vandelay").await;
    let done = execute_sync(
        &e.registry,
        &e.vault,
        &plan,
        "vandelay",
        Timeouts::default(),
    )
    .await
    .unwrap_or_else(|err| panic!("{err}\n{}", plan.script()));
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(done.hash_after, plan.template_hash);
    assert_eq!(contents(&db, "vandelay").await, before);
    assert_eq!(
        count(&db, "SELECT count(*) FROM vandelay.open_tasks").await,
        count(
            &db,
            "SELECT count(*) FROM vandelay.tasks WHERE state <> 'done'"
        )
        .await
    );
}

/// MariaDB sequences: a missing one is created with the template's
/// settings, a changed one gets them back with its current value kept, a
/// custom one moves to the quarantine database with its value.
#[tokio::test]
async fn mariadb_sequences_are_brought_back_and_a_custom_one_is_quarantined() {
    let e = TestFleet::new().await;
    let my = MysqlDatabase::create().await;
    let seqs = template_of(Engine::Mysql, "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT) ENGINE=InnoDB;
                      CREATE SEQUENCE ticket_no START WITH 1000 INCREMENT BY 1 MINVALUE 1 MAXVALUE 999999 CACHE 10 NOCYCLE;
                      CREATE SEQUENCE batch_no START WITH 1 INCREMENT BY 5 NOCACHE;");
    provisioned(&e, &seqs, &my.url(), "umbrella", None).await;
    my.apply(
        "SELECT NEXT VALUE FOR ticket_no; SELECT NEXT VALUE FOR ticket_no;
         ALTER SEQUENCE ticket_no INCREMENT BY 7 MAXVALUE 5000000 CACHE 50;
         DROP SEQUENCE batch_no;
         CREATE SEQUENCE custom_no START WITH 40;
         SELECT NEXT VALUE FOR custom_no;",
    )
    .await;
    let next = |sql: &'static str| {
        let url = my.url();
        async move {
            use sqlx::Connection;
            let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
            let v: i64 = sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap();
            v
        }
    };
    let value = next("SELECT CAST(next_not_cached_value AS SIGNED) FROM ticket_no").await;
    let plan = unblocked_plan(&e, "umbrella").await;
    let has = |needle: &str| {
        assert!(
            plan.steps.iter().any(|s| s.action.contains(needle)),
            "no step {needle:?} in {:#?}",
            plan.steps
        )
    };
    has("create the missing sequence");
    has("the current value stays");
    has("move the custom sequence, with its current value");
    let done = execute_sync(
        &e.registry,
        &e.vault,
        &plan,
        "umbrella",
        Timeouts::default(),
    )
    .await
    .unwrap_or_else(|err| panic!("{err}\n{}", plan.script()));
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(done.hash_after, plan.template_hash);
    assert_eq!(
        next("SELECT CAST(next_not_cached_value AS SIGNED) FROM ticket_no").await,
        value
    );
    let quarantine = my_quarantines(&my).await;
    assert_eq!(quarantine.len(), 1);
    let kept: i64 = sqlx::query_scalar(&format!(
        "SELECT CAST(next_not_cached_value AS SIGNED) FROM `{}`.custom_no",
        quarantine[0].name
    ))
    .fetch_one(&mut my.connect().await)
    .await
    .unwrap();
    assert!(kept > 40, "{kept}");
    let again = plan_of(&e, "umbrella").await;
    assert!(again.steps.is_empty(), "{:#?}", again.steps);
}

/// One kept column on MariaDB: it stays with its values, the other custom
/// column of its table goes to the quarantine copy.
#[tokio::test]
async fn a_mariadb_kept_column_stays_with_its_values() {
    let e = TestFleet::new().await;
    let my = my_tenant(&e, "wonka").await;
    my.apply(
        "ALTER TABLE users ADD COLUMN badge VARCHAR(20) NULL;
         UPDATE users SET badge = 'gold' WHERE id <= 9;
         ALTER TABLE users ADD COLUMN nickname VARCHAR(20) NULL;",
    )
    .await;
    let keep = KeepChoice {
        objects: vec!["column users.badge".into()],
        note: "loyalty programme".into(),
    };
    let plan = plan_sync(&e.registry, &e.vault, "wonka", &keep, Timeouts::default())
        .await
        .unwrap();
    assert_eq!(
        plan.keepable_columns,
        ["column users.badge", "column users.nickname"]
    );
    let actions: Vec<&str> = plan.steps.iter().map(|s| s.action.as_str()).collect();
    assert!(!actions.iter().any(|a| a.contains("badge")), "{actions:#?}");
    let before = my_contents(&my).await;
    let done = execute_sync(&e.registry, &e.vault, &plan, "wonka", Timeouts::default())
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", plan.script()));
    assert_eq!(done.hash_after, plan.target_hash);
    assert_eq!(my_contents(&my).await, before);
    assert_eq!(
        my_count(&my.name, "SELECT count(badge) FROM users").await,
        9
    );
    assert_eq!(
        my_count(
            &my.name,
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'users' AND column_name = 'nickname'"
        )
        .await,
        0
    );
    let _quarantines = my_quarantines(&my).await;
}

/// A table's options come back with its rows: storage parameters (set and
/// reset), UNLOGGED, replica identity, the table's, a column's and an
/// index's comments, an index's storage parameters, a column's
/// compression, and an identity's sequence options (checked, the current
/// value kept). A missing table is created with its options.
#[tokio::test]
async fn table_options_and_comments_are_brought_back_with_the_rows() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    let opts = template_of(Engine::Postgres, "
                CREATE TABLE events (
                    id bigint GENERATED BY DEFAULT AS IDENTITY (INCREMENT BY 1 CACHE 1) PRIMARY KEY,
                    kind text NOT NULL,
                    payload text COMPRESSION pglz
                ) WITH (fillfactor = 80);
                CREATE INDEX events_kind ON events (kind) WITH (fillfactor = 70);
                COMMENT ON TABLE events IS 'what happened';
                COMMENT ON COLUMN events.kind IS 'the event''s kind';
                COMMENT ON INDEX events_kind IS 'by kind';
                ALTER TABLE events REPLICA IDENTITY FULL;
                CREATE UNLOGGED TABLE scratchpad (id int PRIMARY KEY, note text) WITH (autovacuum_enabled = false);
                COMMENT ON TABLE scratchpad IS 'temporary';
                ");
    provisioned(&e, &opts, &db.url(), "globex", Some("globex")).await;
    db.apply(
        "globex",
        "INSERT INTO events (kind, payload) SELECT 'k' || (g % 7), repeat('x', g) FROM generate_series(1, 120) g;
         ALTER TABLE events RESET (fillfactor);
         ALTER TABLE events SET (autovacuum_enabled = false);
         ALTER INDEX events_kind SET (fillfactor = 50);
         COMMENT ON TABLE events IS 'customer notes';
         COMMENT ON COLUMN events.kind IS NULL;
         COMMENT ON INDEX events_kind IS NULL;
         ALTER TABLE events REPLICA IDENTITY DEFAULT;
         ALTER TABLE events ALTER COLUMN payload SET COMPRESSION DEFAULT;
         ALTER TABLE events ALTER COLUMN id SET INCREMENT BY 10 SET CACHE 20;
         ALTER TABLE events SET UNLOGGED;
         DROP TABLE scratchpad;",
    )
    .await;
    let rows = "SELECT (count(*) + sum(length(payload)) + sum(id))::bigint FROM globex.events";
    let before = count(&db, rows).await;
    let plan = unblocked_plan(&e, "globex").await;
    synced_by(&e, &plan, "globex").await;
    assert_eq!(count(&db, rows).await, before);
}

/// Views with options and a comment, and a materialized view with its
/// index, come back: the materialized view filled by its query.
#[tokio::test]
async fn views_with_options_and_materialized_views_come_back() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    let views = template_of(Engine::Postgres, "
                CREATE TABLE orders (id int PRIMARY KEY, total int NOT NULL);
                CREATE VIEW big_orders WITH (security_barrier = true) AS SELECT id, total FROM orders WHERE total > 100;
                COMMENT ON VIEW big_orders IS 'orders over 100';
                CREATE MATERIALIZED VIEW order_totals AS SELECT count(*) AS n, sum(total) AS total FROM orders;
                CREATE UNIQUE INDEX order_totals_one ON order_totals (n);
                ");
    provisioned(&e, &views, &db.url(), "soylent", Some("soylent")).await;
    db.apply(
        "soylent",
        "INSERT INTO orders SELECT g, g * 7 FROM generate_series(1, 60) g;
         DROP VIEW big_orders;
         CREATE VIEW big_orders AS SELECT id, total FROM orders WHERE total > 100;
         DROP MATERIALIZED VIEW order_totals;",
    )
    .await;
    let plan = unblocked_plan(&e, "soylent").await;
    synced_by(&e, &plan, "soylent").await;
    assert_eq!(count(&db, "SELECT n FROM soylent.order_totals").await, 60);
}

/// MariaDB generated columns: an expression changed in the tenant, a
/// stored column made virtual, a generation the tenant dropped (its values
/// checked first) and one it added to a plain column all come back, the
/// rows kept.
#[tokio::test]
async fn mariadb_generated_columns_come_back() {
    let e = TestFleet::new().await;
    let my = MysqlDatabase::create().await;
    let gen = template_of(
        Engine::Mysql,
        "CREATE TABLE line_items (
                          id INT PRIMARY KEY,
                          qty INT NOT NULL,
                          price INT NOT NULL,
                          total INT AS (qty * price) STORED,
                          half INT AS (price DIV 2) STORED,
                          doubled INT AS (qty * 2) VIRTUAL,
                          note_len INT NULL
                      ) ENGINE=InnoDB;",
    );
    provisioned(&e, &gen, &my.url(), "acme", None).await;
    my.apply(
        "INSERT INTO line_items (id, qty, price, note_len) WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 50) SELECT n, n % 7, n * 3, NULL FROM g;
         ALTER TABLE line_items MODIFY COLUMN total INT AS (qty * price + 1) STORED;
         ALTER TABLE line_items DROP COLUMN half, ADD COLUMN half INT AS (price DIV 2) VIRTUAL AFTER total;
         ALTER TABLE line_items DROP COLUMN doubled, ADD COLUMN doubled INT NULL AFTER half;
         UPDATE line_items SET doubled = qty * 2;
         ALTER TABLE line_items MODIFY COLUMN note_len INT AS (qty + 1) STORED;",
    )
    .await;
    let rows =
        "SELECT CAST(COUNT(*) + SUM(qty) + SUM(price) + SUM(note_len) AS SIGNED) FROM line_items";
    let before = my_count(&my.name, rows).await;
    let plan = unblocked_plan(&e, "acme").await;
    let doubled = plan
        .steps
        .iter()
        .find(|s| s.action.contains("column doubled"))
        .unwrap();
    assert_eq!(
        (doubled.class, doubled.count),
        (StepClass::Checked, Some(0))
    );
    synced_by(&e, &plan, "acme").await;
    assert_eq!(my_count(&my.name, rows).await, before);
    assert_eq!(
        my_count(
            &my.name,
            "SELECT CAST(SUM(total) - SUM(qty * price) AS SIGNED) FROM line_items"
        )
        .await,
        0
    );
}

/// Exclusion constraints come back: one the tenant dropped, and one on a
/// table the sync creates; a conflicting row stops the sync, which then
/// changes nothing.
#[tokio::test]
async fn exclusion_constraints_come_back_and_a_conflict_changes_nothing() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    let excl = template_of(
        Engine::Postgres,
        "
                CREATE TABLE bookings (id int PRIMARY KEY, during int4range NOT NULL,
                    CONSTRAINT no_overlap EXCLUDE USING gist (during WITH &&));
                CREATE TABLE holds (id int PRIMARY KEY, span int4range,
                    EXCLUDE USING gist (span WITH &&));
                ",
    );
    provisioned(&e, &excl, &db.url(), "initrode", Some("initrode")).await;
    db.apply(
        "initrode",
        "ALTER TABLE bookings DROP CONSTRAINT no_overlap;
         INSERT INTO bookings SELECT g, int4range(g * 10, g * 10 + 5) FROM generate_series(1, 30) g;
         INSERT INTO bookings VALUES (100, int4range(11, 12));
         DROP TABLE holds;",
    )
    .await;
    let rows = "SELECT count(*) FROM initrode.bookings";
    let plan = unblocked_plan(&e, "initrode").await;
    let err = execute_sync(
        &e.registry,
        &e.vault,
        &plan,
        "initrode",
        Timeouts::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("no_overlap"), "{err}");
    assert_eq!(count(&db, rows).await, 31);
    let plan = plan_of(&e, "initrode").await;
    assert_eq!(plan.steps.len(), 3, "{:#?}", plan.steps);
    db.apply("initrode", "DELETE FROM bookings WHERE id = 100;")
        .await;
    let plan = plan_of(&e, "initrode").await;
    let done = execute_sync(
        &e.registry,
        &e.vault,
        &plan,
        "initrode",
        Timeouts::default(),
    )
    .await
    .unwrap_or_else(|err| panic!("{err}\n{}", plan.script()));
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(done.hash_after, plan.template_hash);
    assert_eq!(count(&db, rows).await, 30);
}

/// A primary key that foreign keys reference is swapped back too: the
/// keys that name it are dropped first and added again after, the rows
/// untouched.
#[tokio::test]
async fn a_referenced_primary_key_is_swapped_with_its_foreign_keys_added_again() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    tenant(&e, &db, "oceanic").await;
    db.apply(
        "oceanic",
        "ALTER TABLE accounts RENAME CONSTRAINT accounts_pkey TO accounts_pk;",
    )
    .await;
    let before = contents(&db, "oceanic").await;
    let plan = unblocked_plan(&e, "oceanic").await;
    let again: Vec<&str> = plan
        .steps
        .iter()
        .filter(|s| s.action == "add the foreign key to accounts again")
        .map(|s| s.object.as_str())
        .collect();
    assert_eq!(
        again,
        ["table invoices", "table projects", "table users"],
        "{:#?}",
        plan.steps
    );
    let done = execute_sync(&e.registry, &e.vault, &plan, "oceanic", Timeouts::default())
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", plan.script()));
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(contents(&db, "oceanic").await, before);
    assert!(plan_of(&e, "oceanic").await.steps.is_empty());
}

/// MariaDB: a primary key that foreign keys reference is swapped back in
/// one statement, the foreign keys dropped first and added again after.
#[tokio::test]
async fn a_mariadb_referenced_primary_key_is_swapped_with_its_foreign_keys_added_again() {
    let e = TestFleet::new().await;
    let my = my_tenant(&e, "oceanic").await;
    my.apply(
        "ALTER TABLE accounts ADD UNIQUE KEY account_id_only (id), DROP PRIMARY KEY, ADD PRIMARY KEY (id, name);",
    )
    .await;
    let before = my_contents(&my).await;
    let plan = unblocked_plan(&e, "oceanic").await;
    assert!(
        plan.steps
            .iter()
            .any(|s| s.action == "add the foreign key to accounts again"),
        "{:#?}",
        plan.steps
    );
    let done = execute_sync(&e.registry, &e.vault, &plan, "oceanic", Timeouts::default())
        .await
        .unwrap_or_else(|err| panic!("{err}\n{}", plan.script()));
    assert_eq!(done.status, SchemaStatus::Synced);
    assert_eq!(my_contents(&my).await, before);
    assert!(plan_of(&e, "oceanic").await.steps.is_empty());
}

/// A changed aggregate is dropped and created again, and a sequence the
/// tenant untied from its column is tied back.
#[tokio::test]
async fn a_changed_aggregate_and_a_sequence_owner_column_come_back() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    let agg = template_of(
        Engine::Postgres,
        "
                CREATE AGGREGATE joined(text) (SFUNC = textcat, STYPE = text, INITCOND = '');
                CREATE TABLE tickets (id int NOT NULL, note text);
                CREATE SEQUENCE tickets_seq OWNED BY tickets.id;
                ",
    );
    provisioned(&e, &agg, &db.url(), "massive", Some("massive")).await;
    db.apply(
        "massive",
        "INSERT INTO tickets SELECT g, 'n' || g FROM generate_series(1, 10) g;
         DROP AGGREGATE joined(text);
         CREATE AGGREGATE joined(text) (SFUNC = textcat, STYPE = text, INITCOND = '>');
         ALTER SEQUENCE tickets_seq OWNED BY NONE;",
    )
    .await;
    let plan = unblocked_plan(&e, "massive").await;
    synced_by(&e, &plan, "massive").await;
    assert_eq!(count(&db, "SELECT count(*) FROM massive.tickets").await, 10);
}

/// A function pinned to its own schema (`SET search_path FROM CURRENT`,
/// the usual hardening of a SECURITY DEFINER function) is created again
/// with the tenant's schema in that setting.
#[tokio::test]
async fn a_function_pinned_to_its_schema_comes_back_pinned_to_the_tenants() {
    let e = TestFleet::new().await;
    let db = PgDatabase::create().await;
    let pinned = template_of(
        Engine::Postgres,
        "
                CREATE TABLE secrets (id int PRIMARY KEY, v text);
                CREATE FUNCTION secret_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER
                    SET search_path FROM CURRENT AS $$ SELECT count(*) FROM secrets $$;
                ",
    );
    provisioned(&e, &pinned, &db.url(), "hooli-x", Some("Hooli-X")).await;
    db.apply("Hooli-X", "DROP FUNCTION secret_count();").await;
    let plan = unblocked_plan(&e, "hooli-x").await;
    assert!(
        plan.script().contains("SET search_path = \"Hooli-X\""),
        "{}",
        plan.script()
    );
    synced_by(&e, &plan, "hooli-x").await;
}
