//! SQLite: stability and sensitivity of the hash on real files.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use tenantry_introspect::{introspect, ConnectionUrl, Timeouts};
use tenantry_model::{hash_schema, ObjectKind::*, SchemaHash, SchemaSnapshot};
use tenantry_tests::{changed_objects, fixture, m, sqlite_file, Mutation};

async fn snapshot(path: &Path) -> SchemaSnapshot {
    let url = ConnectionUrl::parse(&format!("sqlite:{}", path.display())).unwrap();
    introspect(&url, None, Timeouts::default())
        .await
        .unwrap_or_else(|e| panic!("introspect {}: {e}", path.display()))
}

async fn hash_of(path: &Path) -> SchemaHash {
    hash_schema(&snapshot(path).await)
}

async fn tenant(dir: &Path, name: &str, sql: &[&str]) -> PathBuf {
    let path = dir.join(format!("{name}.db"));
    sqlite_file(&path, &sql.concat()).await;
    path
}

#[tokio::test]
async fn the_template_hashes_alike_whatever_the_spelling_and_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = tenant(dir.path(), "a", &[&fixture("sqlite", "template.sql")]).await;
    let b = tenant(
        dir.path(),
        "b",
        &[&fixture("sqlite", "template_reordered.sql")],
    )
    .await;
    let reference = hash_of(&a).await;
    assert_eq!(
        reference.objects.iter().filter(|o| o.kind == Table).count(),
        7
    );
    let h = hash_of(&b).await;
    assert_eq!(
        changed_objects(&reference, &h),
        Default::default(),
        "{:#?}\nvs\n{:#?}",
        snapshot(&b).await,
        snapshot(&a).await
    );
}

#[tokio::test]
async fn data_and_autoincrement_counters_are_not_schema() {
    let dir = tempfile::tempdir().unwrap();
    let template = fixture("sqlite", "template.sql");
    let a = tenant(dir.path(), "a", &[&template]).await;
    let b = tenant(
        dir.path(),
        "b",
        &[
            &template,
            "INSERT INTO accounts (name) VALUES ('x'), ('y'); ANALYZE;",
        ],
    )
    .await;
    assert_eq!(hash_of(&a).await.root, hash_of(&b).await.root);
}

const MUTATIONS: &[Mutation] = &[
    m("extra table", "CREATE TABLE custom_reports (id INTEGER PRIMARY KEY);", Table, "custom_reports"),
    m("extra column", "ALTER TABLE users ADD COLUMN nickname TEXT;", Table, "users"),
    m("dropped column", "ALTER TABLE tasks DROP COLUMN due_on;", Table, "tasks"),
    m("dropped index", "DROP INDEX idx_tasks_project_state;", Table, "tasks"),
    m("renamed index", "DROP INDEX idx_users_account; CREATE INDEX users_account_ix ON users (account_id);", Table, "users"),
    m("changed partial predicate",
      "DROP INDEX idx_projects_live; CREATE INDEX idx_projects_live ON projects (account_id) WHERE archived_at IS NOT NULL;",
      Table, "projects"),
    m("changed expression index", "DROP INDEX idx_tasks_title; CREATE INDEX idx_tasks_title ON tasks (upper(title));", Table, "tasks"),
    m("changed view",
      "DROP VIEW open_tasks; CREATE VIEW open_tasks AS SELECT t.id, t.title FROM tasks t WHERE t.state = 'todo';",
      View, "open_tasks"),
    // SQLite cannot ALTER a column, a constraint or a key: such changes are
    // made by rebuilding the table, as a migration tool would.
    m("changed type",
      "CREATE TABLE s2 (key TEXT PRIMARY KEY, value BLOB NOT NULL DEFAULT '{}');
       DROP TABLE settings; ALTER TABLE s2 RENAME TO settings;",
      Table, "settings"),
    m("changed default",
      "CREATE TABLE s2 (key TEXT PRIMARY KEY, value TEXT NOT NULL DEFAULT '[]');
       DROP TABLE settings; ALTER TABLE s2 RENAME TO settings;",
      Table, "settings"),
    m("changed check",
      "CREATE TABLE i2 (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES accounts (id),
          number TEXT NOT NULL, total_cents INTEGER NOT NULL DEFAULT 0,
          CONSTRAINT invoices_total_positive CHECK (total_cents > 0), UNIQUE (account_id, number));
       DROP TABLE invoice_lines; DROP TABLE invoices; ALTER TABLE i2 RENAME TO invoices;
       CREATE TABLE invoice_lines (
          invoice_id INTEGER NOT NULL REFERENCES invoices (id) ON DELETE CASCADE, line_no INTEGER NOT NULL,
          description TEXT NOT NULL, quantity INTEGER NOT NULL CHECK (quantity > 0), unit_cents INTEGER NOT NULL,
          line_cents INTEGER GENERATED ALWAYS AS (quantity * unit_cents) STORED,
          PRIMARY KEY (invoice_id, line_no)) WITHOUT ROWID;",
      Table, "invoices"),
    m("changed FK action",
      "PRAGMA foreign_keys = OFF;
       CREATE TABLE u2 (id INTEGER PRIMARY KEY,
          account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE RESTRICT,
          email TEXT NOT NULL UNIQUE COLLATE NOCASE, full_name TEXT, is_admin INTEGER NOT NULL DEFAULT 0);
       DROP TABLE users; ALTER TABLE u2 RENAME TO users;
       CREATE INDEX idx_users_account ON users (account_id);",
      Table, "users"),
];

#[tokio::test]
async fn every_single_change_changes_the_hash_of_that_object_only() {
    let dir = tempfile::tempdir().unwrap();
    let template = fixture("sqlite", "template.sql");
    let reference = hash_of(&tenant(dir.path(), "reference", &[&template]).await).await;
    for (i, mutation) in MUTATIONS.iter().enumerate() {
        let path = tenant(dir.path(), &format!("m{i}"), &[&template, mutation.sql]).await;
        let h = hash_of(&path).await;
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
async fn a_missing_file_is_an_error_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ghost.db");
    let url = ConnectionUrl::parse(&format!("sqlite:{}", path.display())).unwrap();
    let err = introspect(&url, None, Timeouts::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "sqlite_file_not_found");
    assert!(!path.exists());
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    std::fs::write(
        &path,
        "this is not a database, just text that is long enough to matter",
    )
    .unwrap();
    let before = std::fs::read(&path).unwrap();
    let url = ConnectionUrl::parse(&format!("sqlite:{}", path.display())).unwrap();
    let err = introspect(&url, None, Timeouts::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not a database"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the file must be left as it was"
    );
}
