//! MySQL/MariaDB: stability and sensitivity of the hash on the real server.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use tenantry_introspect::{introspect, mysql, ConnectionUrl, Timeouts};
use tenantry_model::{hash_schema, ObjectKind::*, SchemaHash, SchemaSnapshot};
use tenantry_tests::{changed_objects, fixture, m, Mutation, MysqlDatabase};

async fn snapshot(db: &MysqlDatabase) -> SchemaSnapshot {
    let url = ConnectionUrl::parse(&db.url()).unwrap();
    introspect(&url, None, Timeouts::default())
        .await
        .unwrap_or_else(|e| panic!("introspect {}: {e}", db.name))
}

async fn hash_of(db: &MysqlDatabase) -> SchemaHash {
    hash_schema(&snapshot(db).await)
}

#[tokio::test]
async fn the_template_hashes_alike_across_databases_spellings_and_inherited_charsets() {
    let template = fixture("mysql", "template.sql");
    let a = MysqlDatabase::create().await;
    a.apply(&template).await;
    let reference = hash_of(&a).await;
    assert_eq!(
        reference.objects.iter().filter(|o| o.kind == Table).count(),
        7
    );

    let b = MysqlDatabase::create().await;
    b.apply(&fixture("mysql", "template_reordered.sql")).await;
    let c = MysqlDatabase::create_with("CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci").await;
    c.apply(&template).await;
    for db in [&b, &c] {
        let h = hash_of(db).await;
        assert_eq!(
            changed_objects(&reference, &h),
            Default::default(),
            "{} differs:\n{:#?}\nvs\n{:#?}",
            db.name,
            snapshot(db).await,
            snapshot(&a).await
        );
        assert_eq!(h.root, reference.root);
    }
}

#[tokio::test]
async fn auto_increment_counters_and_data_are_not_schema() {
    let template = fixture("mysql", "template.sql");
    let a = MysqlDatabase::create().await;
    a.apply(&template).await;
    let b = MysqlDatabase::create().await;
    b.apply(&template).await;
    b.apply(
        "INSERT INTO accounts (name) VALUES ('x'), ('y'), ('z');
         ALTER TABLE projects AUTO_INCREMENT = 5000;
         ANALYZE TABLE accounts;",
    )
    .await;
    assert_eq!(hash_of(&a).await.root, hash_of(&b).await.root);
}

const MUTATIONS: &[Mutation] = &[
    m("extra table", "CREATE TABLE custom_reports (id INT PRIMARY KEY);", Table, "custom_reports"),
    m("extra column", "ALTER TABLE users ADD COLUMN nickname VARCHAR(50);", Table, "users"),
    m("dropped column", "ALTER TABLE tasks DROP COLUMN estimate;", Table, "tasks"),
    m("changed type", "ALTER TABLE projects MODIFY archived_at TIMESTAMP NULL;", Table, "projects"),
    m("changed default", "ALTER TABLE invoices ALTER COLUMN total_cents SET DEFAULT 100;", Table, "invoices"),
    m("changed nullability", "ALTER TABLE users MODIFY full_name VARCHAR(200) NOT NULL;", Table, "users"),
    m("dropped index", "DROP INDEX idx_tasks_due ON tasks;", Table, "tasks"),
    m("renamed index", "ALTER TABLE tasks RENAME INDEX idx_tasks_due TO tasks_due_ix;", Table, "tasks"),
    m("changed FK action",
      "ALTER TABLE users DROP FOREIGN KEY users_ibfk_1;
       ALTER TABLE users ADD FOREIGN KEY (account_id) REFERENCES accounts (id) ON DELETE RESTRICT;",
      Table, "users"),
    m("changed check",
      "ALTER TABLE invoices DROP CONSTRAINT invoices_total_positive;
       ALTER TABLE invoices ADD CONSTRAINT invoices_total_positive CHECK (total_cents > 0);",
      Table, "invoices"),
    m("changed enum values",
      "ALTER TABLE tasks MODIFY state ENUM('todo','doing','done','blocked') NOT NULL DEFAULT 'todo';",
      Table, "tasks"),
    m("changed on update", "ALTER TABLE accounts MODIFY updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP;", Table, "accounts"),
    m("changed engine", "ALTER TABLE settings ENGINE=MyISAM;", Table, "settings"),
    m("explicit column collation",
      "ALTER TABLE settings MODIFY value TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;",
      Table, "settings"),
    m("changed view",
      "CREATE OR REPLACE VIEW open_tasks AS SELECT t.id, t.title, p.name AS project
         FROM tasks t JOIN projects p ON p.id = t.project_id WHERE t.state = 'todo';",
      View, "open_tasks"),
];

#[tokio::test]
async fn every_single_change_changes_the_hash_of_that_object_only() {
    let template = fixture("mysql", "template.sql");
    let reference_db = MysqlDatabase::create().await;
    reference_db.apply(&template).await;
    let reference = hash_of(&reference_db).await;
    let mut dbs = Vec::new();
    for mutation in MUTATIONS {
        let db = MysqlDatabase::create().await;
        db.apply(&template).await;
        db.apply(mutation.sql).await;
        dbs.push(db);
    }
    // All mutated tenants of the server in one batch.
    let names: Vec<String> = dbs.iter().map(|d| d.name.clone()).collect();
    let mut conn = reference_db.connect().await;
    let batch = mysql::introspect_schemas(&mut conn, &names).await.unwrap();
    for (mutation, db) in MUTATIONS.iter().zip(&dbs) {
        let snap = &batch[&db.name];
        assert_eq!(
            *snap,
            snapshot(db).await,
            "{}: batch and single read differ",
            mutation.name
        );
        let h = hash_schema(snap);
        assert_ne!(
            h.root, reference.root,
            "{}: root hash unchanged",
            mutation.name
        );
        let (kind, name) = mutation.changes;
        assert_eq!(
            changed_objects(&reference, &h),
            [(kind, name.to_owned())].into_iter().collect(),
            "{}: wrong objects changed",
            mutation.name
        );
    }
}

#[tokio::test]
async fn a_missing_database_is_a_typed_error() {
    let db = MysqlDatabase::create().await;
    let url = ConnectionUrl::parse(&db.url()).unwrap();
    let err = introspect(
        &url,
        Some("ghost_db_that_is_not_there"),
        Timeouts::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "schema_not_found", "{err}");
}

/// Index key parts and foreign key columns come back in their declared
/// order (sorted by position on the client, not by name or by the
/// server's row order).
#[tokio::test]
async fn key_parts_and_foreign_key_columns_keep_their_declared_order() {
    let db = MysqlDatabase::create().await;
    db.apply(
        "CREATE TABLE p (a int, b int, PRIMARY KEY (b, a));
         CREATE TABLE c (m int, z int, a int, x int, y int,
                         KEY k_zam (z, a, m),
                         CONSTRAINT c_p FOREIGN KEY (y, x) REFERENCES p (b, a));",
    )
    .await;
    let snap = snapshot(&db).await;
    let c = snap.table("c").unwrap();
    let k = c.indexes.iter().find(|i| i.name.name == "k_zam").unwrap();
    let keys: Vec<String> = k
        .keys
        .iter()
        .map(|key| match &key.target {
            tenantry_model::IndexKeyTarget::Column { name } => name.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(keys, ["z", "a", "m"]);
    let fk = &c.foreign_keys[0];
    assert_eq!(fk.columns, ["y", "x"]);
    assert_eq!(fk.target_columns, ["b", "a"]);
    let p = snap.table("p").unwrap();
    assert_eq!(
        p.primary_key.as_ref().unwrap().columns,
        ["b", "a"],
        "{:?}",
        p.primary_key
    );
}

/// What a re-check must notice beyond the hash mutations above: objects
/// whose rows it reads whole, and renames.
const RECHECK_MUTATIONS: &[&str] = &[
    "CREATE TRIGGER stamp BEFORE INSERT ON settings FOR EACH ROW SET NEW.value = NEW.value;",
    "CREATE PROCEDURE noop() SELECT 1;",
    "CREATE EVENT tidy ON SCHEDULE EVERY 1 DAY DO DELETE FROM settings WHERE 1 = 0;",
    "DROP VIEW open_tasks;",
    "RENAME TABLE settings TO app_settings;",
    "ALTER TABLE settings COMMENT 'tenant settings';",
];

/// The MariaDB re-check: a full read stores the fingerprint a re-check then
/// computes for an unchanged database; every change (each hash mutation
/// and each object the re-check reads whole) gives another fingerprint,
/// or none while the change is within the second the clock can tell apart,
/// never the old one; a database whose foreign keys name another database
/// gets none and is always read in full.
#[tokio::test]
async fn a_mariadb_recheck_reuses_unchanged_databases_and_never_misses_a_change() {
    let template = fixture("mysql", "template.sql");
    let untouched = MysqlDatabase::create().await;
    untouched.apply(&template).await;
    let changes: Vec<&str> = MUTATIONS
        .iter()
        .map(|m| m.sql)
        .chain(RECHECK_MUTATIONS.iter().copied())
        .collect();
    let mut dbs = Vec::new();
    for _ in &changes {
        let db = MysqlDatabase::create().await;
        db.apply(&template).await;
        dbs.push(db);
    }
    let outside = MysqlDatabase::create().await;
    outside.apply(&format!(
        "CREATE TABLE linked (id INT PRIMARY KEY, account_id INT UNSIGNED, FOREIGN KEY (account_id) REFERENCES `{}`.accounts (id));",
        untouched.name
    ))
    .await;
    // Out of the second the tables were made in.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let names: Vec<String> = dbs
        .iter()
        .chain([&untouched, &outside])
        .map(|d| d.name.clone())
        .collect();
    let mut conn = untouched.connect().await;
    let full = mysql::read_schemas(&mut conn, &names).await.unwrap();
    let before = mysql::catalog_fingerprints(&mut conn, &names)
        .await
        .unwrap();
    for db in dbs.iter().chain([&untouched]) {
        let stored = full[&db.name].fingerprint.as_ref();
        assert!(
            stored.is_some(),
            "{}: a settled database has a fingerprint",
            db.name
        );
        assert_eq!(
            stored,
            before.get(&db.name),
            "{}: full read and re-check agree",
            db.name
        );
    }
    assert_eq!(
        full[&outside.name].fingerprint, None,
        "a foreign key into another database"
    );

    for (sql, db) in changes.iter().zip(&dbs) {
        db.apply(sql).await;
    }
    let at_once = mysql::catalog_fingerprints(&mut conn, &names)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let later = mysql::catalog_fingerprints(&mut conn, &names)
        .await
        .unwrap();
    for (sql, db) in changes.iter().zip(&dbs) {
        assert_ne!(
            at_once.get(&db.name),
            before.get(&db.name),
            "missed at once: {sql}"
        );
        assert!(later.contains_key(&db.name), "settled again: {sql}");
        assert_ne!(later.get(&db.name), before.get(&db.name), "missed: {sql}");
    }
    assert_eq!(
        later.get(&untouched.name),
        before.get(&untouched.name),
        "an unchanged database keeps its fingerprint"
    );
}
