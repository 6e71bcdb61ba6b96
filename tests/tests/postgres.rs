//! PostgreSQL: stability (same template → same hash whatever the schema name,
//! creation order, spelling or generated names) and sensitivity (each single
//! real change → a different hash, in that object only), on the real server.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::HashMap;

use tenantry_introspect::{introspect, postgres, ConnectionUrl, Timeouts};
use tenantry_model::normalize::{collapse_whitespace, postgres_expression};
use tenantry_model::own_schema::{strip_own_schema, TextKind};
use tenantry_model::{hash_schema, ObjectKind::*, SchemaHash, SchemaSnapshot};
use tenantry_tests::{
    changed_objects, fixture, m, read_and_recheck, stored_fingerprints, Mutation, PgDatabase,
};

async fn snapshot(db: &PgDatabase, schema: &str) -> SchemaSnapshot {
    let url = ConnectionUrl::parse(&db.url()).unwrap();
    introspect(&url, Some(schema), Timeouts::default())
        .await
        .unwrap_or_else(|e| panic!("introspect {schema}: {e}"))
}

async fn hash_of(db: &PgDatabase, schema: &str) -> SchemaHash {
    hash_schema(&snapshot(db, schema).await)
}

#[tokio::test]
async fn the_template_hashes_alike_under_any_schema_name_and_creation_order() {
    let db = PgDatabase::create().await;
    let template = fixture("postgres", "template.sql");
    db.apply("public", &template).await;
    db.apply("tenant_42", &template).await;
    db.apply("Tenant \"B\"; drop", &template).await;
    db.apply("reordered", &fixture("postgres", "template_reordered.sql"))
        .await;

    let reference = hash_of(&db, "public").await;
    assert_eq!(
        reference.objects.iter().filter(|o| o.kind == Table).count(),
        8
    );
    for schema in ["tenant_42", "Tenant \"B\"; drop", "reordered"] {
        let h = hash_of(&db, schema).await;
        assert_eq!(
            changed_objects(&reference, &h),
            Default::default(),
            "schema {schema} differs from public:\n{:#?}\nvs\n{:#?}",
            snapshot(&db, schema).await,
            snapshot(&db, "public").await
        );
        assert_eq!(h.root, reference.root);
    }

    // A database-per-tenant tenant (schema public of another database).
    let other = PgDatabase::create().await;
    other.apply("public", &template).await;
    assert_eq!(hash_of(&other, "public").await.root, reference.root);
}

#[tokio::test]
async fn data_and_sequence_counters_are_not_schema() {
    let db = PgDatabase::create().await;
    let template = fixture("postgres", "template.sql");
    db.apply("a", &template).await;
    db.apply("b", &template).await;
    db.apply(
        "b",
        "INSERT INTO accounts (name) VALUES ('x'), ('y');
         INSERT INTO users (account_id, email) VALUES (1, 'a@example.com');
         SELECT nextval('invoice_number_seq'); SELECT nextval('invoice_number_seq');
         ANALYZE;",
    )
    .await;
    assert_eq!(hash_of(&db, "a").await.root, hash_of(&db, "b").await.root);
}

#[tokio::test]
async fn server_generated_names_are_matched_by_structure() {
    let db = PgDatabase::create().await;
    db.apply(
        "a",
        "CREATE TABLE t (id int PRIMARY KEY, email text UNIQUE, n int CHECK (n > 0));",
    )
    .await;
    // In b the server must pick other names: the natural ones are taken
    // when the constraints are created, and freed afterwards.
    db.apply(
        "b",
        "CREATE TABLE blocker (x int);
         CREATE INDEX t_email_key ON blocker (x);
         CREATE INDEX t_pkey ON blocker (x);
         CREATE TABLE t (id int, email text, n int);
         ALTER TABLE t ADD PRIMARY KEY (id);
         ALTER TABLE t ADD UNIQUE (email);
         ALTER TABLE t ADD CHECK (n > 0);
         DROP TABLE blocker;",
    )
    .await;
    let b = snapshot(&db, "b").await;
    let t = b.table("t").unwrap();
    assert_eq!(t.uniques[0].name.name, "t_email_key1");
    assert_eq!(t.primary_key.as_ref().unwrap().name.name, "t_pkey1");
    assert_eq!(hash_of(&db, "a").await.root, hash_schema(&b).root);
}

#[tokio::test]
async fn column_order_is_not_part_of_the_hash() {
    // Policy (ARCHITECTURE.md): a tenant upgraded by ALTER TABLE ADD COLUMN
    // and one created fresh from the newer template hash alike.
    let db = PgDatabase::create().await;
    db.apply("fresh", "CREATE TABLE t (id int, added text, name text);")
        .await;
    db.apply(
        "upgraded",
        "CREATE TABLE t (id int, name text); ALTER TABLE t ADD COLUMN added text;",
    )
    .await;
    assert_eq!(
        hash_of(&db, "fresh").await.root,
        hash_of(&db, "upgraded").await.root
    );
}

const MUTATIONS: &[Mutation] = &[
    m("extra table", "CREATE TABLE custom_reports (id int PRIMARY KEY);", Table, "custom_reports"),
    m("extra column", "ALTER TABLE users ADD COLUMN nickname text;", Table, "users"),
    m("dropped column", "ALTER TABLE tasks DROP COLUMN due_on;", Table, "tasks"),
    m("changed type", "ALTER TABLE projects ALTER COLUMN archived_at TYPE timestamp;", Table, "projects"),
    m("changed default", "ALTER TABLE accounts ALTER COLUMN plan SET DEFAULT 'pro';", Table, "accounts"),
    m("dropped default", "ALTER TABLE invoices ALTER COLUMN total_cents DROP DEFAULT;", Table, "invoices"),
    m("changed nullability", "ALTER TABLE users ALTER COLUMN full_name SET NOT NULL;", Table, "users"),
    m("dropped index", "DROP INDEX idx_tasks_project_state;", Table, "tasks"),
    m("renamed index", "ALTER INDEX idx_users_account RENAME TO users_account_ix;", Table, "users"),
    m("extra index", "CREATE INDEX ON comments (created_at);", Table, "comments"),
    m("changed partial predicate", "DROP INDEX idx_projects_live; CREATE INDEX idx_projects_live ON projects (account_id) WHERE archived_at IS NOT NULL;", Table, "projects"),
    m("changed FK action",
      "ALTER TABLE comments DROP CONSTRAINT comments_author_id_fkey;
       ALTER TABLE comments ADD FOREIGN KEY (author_id) REFERENCES users (id) ON DELETE CASCADE;",
      Table, "comments"),
    m("changed check",
      "ALTER TABLE tasks DROP CONSTRAINT tasks_priority_check;
       ALTER TABLE tasks ADD CHECK (priority BETWEEN 1 AND 9);",
      Table, "tasks"),
    m("renamed constraint", "ALTER TABLE invoices RENAME CONSTRAINT invoices_number_unique TO inv_num_uq;", Table, "invoices"),
    m("dropped primary key", "ALTER TABLE settings DROP CONSTRAINT settings_pkey;", Table, "settings"),
    m("changed view",
      "CREATE OR REPLACE VIEW open_tasks AS SELECT t.id, t.title, p.name AS project
         FROM tasks t JOIN projects p ON p.id = t.project_id WHERE t.state = 'todo';",
      View, "open_tasks"),
    m("extra enum label", "ALTER TYPE task_state ADD VALUE 'blocked';", Enum, "task_state"),
    m("changed sequence", "ALTER SEQUENCE invoice_number_seq INCREMENT BY 10;", Sequence, "invoice_number_seq"),
];

#[tokio::test]
async fn every_single_change_changes_the_hash_of_that_object_only() {
    let db = PgDatabase::create().await;
    let template = fixture("postgres", "template.sql");
    db.apply("reference", &template).await;
    let schemas: Vec<String> = (0..MUTATIONS.len()).map(|i| format!("mut_{i}")).collect();
    for (mutation, schema) in MUTATIONS.iter().zip(&schemas) {
        db.apply(schema, &template).await;
        db.apply(schema, mutation.sql).await;
    }
    let reference = hash_of(&db, "reference").await;

    // All mutated tenants in one batch, as a fleet scan would read them.
    let mut conn = db.connect().await;
    let batch = postgres::introspect_schemas(&mut conn, &schemas)
        .await
        .unwrap();
    for (mutation, schema) in MUTATIONS.iter().zip(&schemas) {
        let h = hash_schema(&batch[schema]);
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
async fn a_batch_reads_each_schema_exactly_like_a_single_read() {
    let db = PgDatabase::create().await;
    let template = fixture("postgres", "template.sql");
    let schemas: Vec<String> = (0..5).map(|i| format!("t{i}")).collect();
    for s in &schemas {
        db.apply(s, &template).await;
    }
    db.apply("t3", "ALTER TABLE users ADD COLUMN extra int;")
        .await;
    let mut with_missing = schemas.clone();
    with_missing.push("no_such_schema".into());
    let mut conn = db.connect().await;
    let batch = postgres::introspect_schemas(&mut conn, &with_missing)
        .await
        .unwrap();
    assert!(!batch.contains_key("no_such_schema"));
    for s in &schemas {
        assert_eq!(batch[s], snapshot(&db, s).await, "schema {s}");
    }
}

#[tokio::test]
async fn a_missing_schema_is_a_typed_error() {
    let db = PgDatabase::create().await;
    let url = ConnectionUrl::parse(&db.url()).unwrap();
    let err = introspect(&url, Some("ghost"), Timeouts::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "schema_not_found");
    assert!(err.to_string().contains("ghost"), "{err}");
}

#[tokio::test]
async fn an_empty_schema_is_an_empty_snapshot() {
    let db = PgDatabase::create().await;
    db.apply("empty", "").await;
    assert!(snapshot(&db, "empty").await.is_empty());
}

/// The fingerprint a full read computes from its own rows is the one the
/// fingerprint query reports, so a re-check can trust it; every single
/// change moves it; data, ANALYZE and VACUUM do not.
#[tokio::test]
async fn a_read_reports_the_queried_fingerprint_and_every_change_moves_it() {
    let db = PgDatabase::create().await;
    let template = fixture("postgres", "template.sql");
    let mut schemas: Vec<String> = (0..MUTATIONS.len()).map(|i| format!("fp_{i}")).collect();
    for schema in &schemas {
        db.apply(schema, &template).await;
    }
    // Objects the template lacks, which both sides must cover alike.
    db.apply(
        "fp_extras",
        "CREATE TYPE pair AS (a int, b int);
         CREATE DOMAIN positive AS int CHECK (VALUE > 0);
         CREATE TYPE mood AS ENUM ();
         CREATE TABLE p (id int, v positive, w pair) PARTITION BY RANGE (id);
         CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);
         CREATE MATERIALIZED VIEW mv AS SELECT 1 AS x;
         CREATE TABLE idt (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                           g int GENERATED ALWAYS AS (id * 2) STORED,
                           other int REFERENCES fp_0.accounts (id));",
    )
    .await;
    db.apply("fp_empty", "").await;
    schemas.extend(["fp_extras".to_owned(), "fp_empty".to_owned()]);

    let mut conn = db.connect().await;
    let before = read_and_recheck(&mut conn, &schemas).await;

    db.apply(
        "fp_0",
        "INSERT INTO accounts (name) VALUES ('x'); SELECT nextval('invoice_number_seq'); ANALYZE;",
    )
    .await;
    sqlx::raw_sql("VACUUM fp_0.accounts, fp_0.users")
        .execute(&mut conn)
        .await
        .unwrap();
    let same = postgres::catalog_fingerprints(&mut conn, &before)
        .await
        .unwrap();
    assert_eq!(same, before, "data, ANALYZE and VACUUM are not schema");

    for (i, mutation) in MUTATIONS.iter().enumerate() {
        db.apply(&format!("fp_{i}"), mutation.sql).await;
    }
    let mut asked = schemas.clone();
    asked.push("no_such_schema".into());
    let mut stored = before.clone();
    stored.insert("no_such_schema".into(), before["fp_empty"].clone());
    let after = postgres::catalog_fingerprints(&mut conn, &stored)
        .await
        .unwrap();
    let read = postgres::read_schemas(&mut conn, &asked).await.unwrap();
    for (i, mutation) in MUTATIONS.iter().enumerate() {
        let s = format!("fp_{i}");
        assert_ne!(
            after[&s], before[&s],
            "{}: fingerprint unchanged",
            mutation.name
        );
    }
    for s in &schemas {
        assert_eq!(read[s].fingerprint, after[s], "{s}");
    }
    assert_eq!(after["fp_extras"], before["fp_extras"]);
    assert!(!after.contains_key("no_such_schema"));
    assert!(!read.contains_key("no_such_schema"));
}

/// Defaults, checks and partial-index predicates are deparsed in the context
/// of the first table of the same name and columns in the batch. A tenant
/// whose columns differ gets its own context, so a batch reads every schema
/// exactly like a single read; and a check reads as the server's own
/// pg_get_constraintdef prints it.
#[tokio::test]
async fn expressions_deparsed_in_a_shared_context_read_as_the_server_prints_them() {
    let db = PgDatabase::create().await;
    let template = fixture("postgres", "template.sql");
    let schemas: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    for s in &schemas {
        db.apply(s, &template).await;
    }
    // b: columns that a check, a generated column and a partial index
    // refer to, renamed.
    db.apply(
        "b",
        "ALTER TABLE tasks RENAME COLUMN priority TO prio;
         ALTER TABLE projects RENAME COLUMN archived_at TO gone_at;
         ALTER TABLE invoice_lines RENAME COLUMN quantity TO qty;",
    )
    .await;
    // c: checks that pg_get_constraintdef still prints by itself.
    db.apply(
        "c",
        "ALTER TABLE accounts ADD CONSTRAINT name_short CHECK (length(name) < 100) NOT VALID;
         ALTER TABLE settings ADD CONSTRAINT key_lower CHECK (key = lower(key)) NO INHERIT;",
    )
    .await;
    let mut conn = db.connect().await;
    let batch = postgres::introspect_schemas(&mut conn, &schemas)
        .await
        .unwrap();
    // Introspection deparses with only pg_catalog on the search path.
    sqlx::query("SET search_path = pg_catalog")
        .execute(&mut conn)
        .await
        .unwrap();
    for s in &schemas {
        assert_eq!(batch[s], snapshot(&db, s).await, "schema {s}");
        let defs: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT c.relname::text, con.conname::text, pg_get_constraintdef(con.oid, true)
               FROM pg_constraint con
               JOIN pg_class c ON c.oid = con.conrelid
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = $1 AND con.contype = 'c'",
        )
        .bind(s)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert!(defs.len() >= 3, "{s}: {defs:?}");
        for (table, name, def) in defs {
            let check = batch[s]
                .tables
                .iter()
                .find(|t| t.name == table)
                .and_then(|t| t.checks.iter().find(|c| c.name.name == name))
                .unwrap_or_else(|| panic!("{s}.{table}: no check {name}"));
            assert_eq!(
                check.expression,
                collapse_whitespace(&strip_own_schema(&def, s, TextKind::Sql)),
                "{s}.{table}.{name}"
            );
        }
    }
    let table = |s: &str, t: &str| batch[s].tables.iter().find(|x| x.name == t).unwrap();
    assert!(
        table("b", "tasks").checks[0].expression.contains("prio"),
        "{:?}",
        table("b", "tasks").checks
    );
    let live = table("b", "projects")
        .indexes
        .iter()
        .find(|i| i.name.name == "idx_projects_live")
        .unwrap();
    assert_eq!(live.predicate.as_deref(), Some("gone_at IS NULL"));
    let line_cents = table("b", "invoice_lines")
        .columns
        .iter()
        .find(|c| c.name == "line_cents")
        .unwrap();
    assert!(
        line_cents
            .generated
            .as_ref()
            .is_some_and(|g| g.expression.contains("qty")),
        "{line_cents:?}"
    );
}

/// A foreign key to a table in a schema outside the batch is read with
/// that schema, table and columns; a serial column's sequence names its
/// owning column.
#[tokio::test]
async fn a_foreign_key_out_of_the_batch_names_its_target() {
    let db = PgDatabase::create().await;
    db.apply(
        "shared",
        "CREATE TABLE accounts (code text, id int PRIMARY KEY);",
    )
    .await;
    db.apply(
        "t1",
        "CREATE TABLE orders (id serial PRIMARY KEY,
                              account_id int REFERENCES shared.accounts (id));",
    )
    .await;
    let mut conn = db.connect().await;
    let batch = postgres::introspect_schemas(&mut conn, &["t1".to_owned()])
        .await
        .unwrap();
    let orders = &batch["t1"].tables[0];
    let fk = &orders.foreign_keys[0];
    assert_eq!(
        (
            fk.target_schema.as_deref(),
            fk.target_table.as_str(),
            fk.target_columns.as_slice()
        ),
        (Some("shared"), "accounts", ["id".to_owned()].as_slice())
    );
    assert_eq!(
        batch["t1"].sequences[0].owned_by.as_deref(),
        Some("orders.id")
    );
}

/// Column types are named once per distinct type and modifier, collations
/// and operator classes only where they differ from the default: each
/// column reads as `format_type`, its collation and its default as the
/// server prints them, and index keys keep their collation, operator class
/// and ordering.
#[tokio::test]
async fn types_collations_and_operator_classes_read_as_the_server_prints_them() {
    let db = PgDatabase::create().await;
    db.apply("shared", "CREATE TYPE kind AS ENUM ('x', 'y');")
        .await;
    db.apply(
        "ty",
        "CREATE TYPE mood AS ENUM ('a', 'b');
         CREATE DOMAIN positive AS int CHECK (VALUE > 0);
         CREATE TABLE things (
             id bigserial PRIMARY KEY,
             code varchar(20) COLLATE \"C\" NOT NULL,
             label text COLLATE \"POSIX\",
             plain text,
             tags varchar(30)[],
             price numeric(10,2) DEFAULT 0.5,
             at timestamp(3) with time zone DEFAULT now(),
             gap interval hour to minute,
             bits bit varying(8),
             m mood DEFAULT 'a',
             p positive,
             other shared.kind DEFAULT 'y',
             amount int DEFAULT 42,
             doubled int GENERATED ALWAYS AS (amount * 2) STORED);
         CREATE INDEX things_code ON things (code varchar_pattern_ops);
         CREATE INDEX things_label ON things (label COLLATE \"C\" DESC NULLS LAST);
         CREATE INDEX things_plain ON things (plain COLLATE \"POSIX\");
         CREATE INDEX things_lower ON things (lower(plain) text_pattern_ops) INCLUDE (price);",
    )
    .await;
    let mut conn = db.connect().await;
    let snap = postgres::introspect_schemas(&mut conn, &["ty".to_owned()])
        .await
        .unwrap()
        .remove("ty")
        .unwrap();
    // Introspection deparses with only pg_catalog on the search path.
    sqlx::query("SET search_path = pg_catalog")
        .execute(&mut conn)
        .await
        .unwrap();
    let things = snap.tables.iter().find(|t| t.name == "things").unwrap();
    let expected: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod),
                CASE WHEN a.attcollation <> t.typcollation THEN co.collname::text END,
                pg_get_expr(d.adbin, d.adrelid)
           FROM pg_attribute a
           JOIN pg_type t ON t.oid = a.atttypid
           LEFT JOIN pg_collation co ON co.oid = a.attcollation
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE a.attrelid = 'ty.things'::regclass AND a.attnum > 0 AND NOT a.attisdropped",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(expected.len(), things.columns.len());
    let strip = |s: &str| {
        collapse_whitespace(&postgres_expression(&strip_own_schema(
            s,
            "ty",
            TextKind::Sql,
        )))
    };
    for (name, data_type, collation, default) in expected {
        let column = things.columns.iter().find(|c| c.name == name).unwrap();
        assert_eq!(
            column.data_type,
            collapse_whitespace(&strip_own_schema(&data_type, "ty", TextKind::Names)),
            "{name}"
        );
        assert_eq!(column.collation, collation, "{name}");
        let read = match &column.generated {
            Some(g) => Some(g.expression.clone()),
            None => column.default.clone(),
        };
        assert_eq!(read, default.as_deref().map(strip), "{name}");
    }
    let column = |n: &str| things.columns.iter().find(|c| c.name == n).unwrap();
    assert_eq!(column("other").data_type, "shared.kind");
    assert_eq!(column("m").data_type, "mood");
    assert_eq!(column("code").collation.as_deref(), Some("C"));
    assert_eq!(column("plain").collation, None);
    assert!(column("doubled")
        .generated
        .as_ref()
        .is_some_and(|g| g.expression == "(amount * 2)"));

    let index = |n: &str| things.indexes.iter().find(|i| i.name.name == n).unwrap();
    let key = |n: &str| index(n).keys[0].clone();
    assert_eq!(key("things_code").options, "varchar_pattern_ops");
    let label = key("things_label");
    assert!(label.descending);
    assert_eq!(label.options, "collate C nulls last");
    assert_eq!(key("things_plain").options, "collate POSIX");
    assert_eq!(key("things_lower").options, "text_pattern_ops");
    assert_eq!(index("things_lower").include, ["price".to_owned()]);
}

/// What an extension installs into a tenant schema (here a view and a
/// type) is the extension's, not the tenant's: it is left out of the
/// snapshot and of the catalog fingerprint alike, while a column of an
/// extension's type is read with that type. The extensions themselves are
/// listed by name (format v7).
#[tokio::test]
async fn extension_members_are_not_part_of_the_schema() {
    let db = PgDatabase::create().await;
    db.apply(
        "ext_a",
        "CREATE EXTENSION pg_buffercache SCHEMA ext_a;
         CREATE EXTENSION citext SCHEMA ext_a;
         CREATE TABLE people (id int PRIMARY KEY, email citext NOT NULL);",
    )
    .await;
    let schemas = ["ext_a".to_owned()];
    let mut conn = db.connect().await;
    let read = postgres::read_schemas(&mut conn, &schemas).await.unwrap();
    let fingerprints = postgres::catalog_fingerprints(&mut conn, &stored_fingerprints(&read))
        .await
        .unwrap();
    let snap = &read["ext_a"].snapshot;
    assert_eq!(read["ext_a"].fingerprint, fingerprints["ext_a"]);
    assert!(snap.views.is_empty(), "{:?}", snap.views);
    assert_eq!(
        snap.tables
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        ["people"]
    );
    assert_eq!(snap.tables[0].columns[1].data_type, "citext");
    assert!(snap.enums.is_empty());
    let names = |s: &tenantry_model::SchemaSnapshot| {
        s.extensions
            .iter()
            .map(|x| x.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(snap), ["citext", "pg_buffercache"]);

    // Removing an extension leaves the tenant's own objects as they were;
    // only the list of extensions changes, and the re-check sees it.
    sqlx::raw_sql("DROP EXTENSION pg_buffercache")
        .execute(&mut conn)
        .await
        .unwrap();
    let again = postgres::read_schemas(&mut conn, &schemas).await.unwrap();
    let mut left = again["ext_a"].snapshot.clone();
    assert_eq!(names(&left), ["citext"]);
    left.extensions = snap.extensions.clone();
    assert_eq!(&left, snap);
    let now = postgres::catalog_fingerprints(&mut conn, &stored_fingerprints(&read))
        .await
        .unwrap();
    assert_ne!(now["ext_a"], fingerprints["ext_a"]);
    assert_eq!(now["ext_a"], again["ext_a"].fingerprint);
}

/// A catalog-only connection (scan, introspection) tells the planner that
/// catalog pages are in memory; the connection that runs migrations or a
/// user's import query keeps the server's own setting.
#[tokio::test]
async fn only_catalog_connections_change_the_planner_costs() {
    async fn cost(conn: &mut sqlx::PgConnection) -> String {
        sqlx::query_scalar("SELECT current_setting('random_page_cost')")
            .fetch_one(conn)
            .await
            .unwrap()
    }
    let db = PgDatabase::create().await;
    let url = ConnectionUrl::parse(&db.url()).unwrap();
    let mut catalog = postgres::connect_for_catalog(&url, Timeouts::default())
        .await
        .unwrap();
    let mut general = postgres::connect(&url, Timeouts::default()).await.unwrap();
    assert_eq!(cost(&mut catalog).await, "1.1");
    assert_eq!(
        cost(&mut general).await,
        cost(&mut db.connect().await).await
    );
}

/// Issue 14 ("the nightly re-check must never keep saying synced"): a change
/// made only outside the schema that changes what its objects print — the
/// function a default calls, the collation a column uses, the table a view
/// reads, their schema — changes the hash, and so must change the
/// fingerprint the re-check compares, exactly as a full read computes it.
/// (A type or a foreign key's table in another schema is not covered yet:
/// see the fingerprint's documentation.)
#[tokio::test]
async fn a_rename_outside_the_schema_moves_its_fingerprint_as_its_hash() {
    let db = PgDatabase::create().await;
    db.apply(
        "shared",
        "CREATE FUNCTION next_code() RETURNS text LANGUAGE sql AS 'SELECT ''x''';
         CREATE COLLATION ci FROM \"C\";
         CREATE DOMAIN amount AS numeric(10,2);
         CREATE TABLE rates (id int, rate numeric);",
    )
    .await;
    db.apply(
        "fo_1",
        "CREATE TABLE t (code text DEFAULT shared.next_code(),
                         name text COLLATE shared.ci,
                         total shared.amount);
         CREATE VIEW v AS SELECT id, rate FROM shared.rates;",
    )
    .await;
    let schemas = vec!["fo_1".to_owned()];
    let mut conn = db.connect().await;
    let mut last_fp = read_and_recheck(&mut conn, &schemas).await["fo_1"].clone();
    let mut last_hash = hash_of(&db, "fo_1").await.root;
    for (what, sql) in [
        (
            "a function a default calls",
            "ALTER FUNCTION shared.next_code() RENAME TO next_code_v2",
        ),
        (
            "a collation a column uses",
            "ALTER COLLATION shared.ci RENAME TO ci2",
        ),
        (
            "a table a view reads",
            "ALTER TABLE shared.rates RENAME TO rates2",
        ),
        ("their schema", "ALTER SCHEMA shared RENAME TO common"),
    ] {
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        let hash = hash_of(&db, "fo_1").await.root;
        assert_ne!(hash, last_hash, "{what}: the hash sees it");
        let stored = HashMap::from([("fo_1".to_owned(), last_fp.clone())]);
        let fp = postgres::catalog_fingerprints(&mut conn, &stored)
            .await
            .unwrap()["fo_1"]
            .clone();
        assert_ne!(fp, last_fp, "{what}: the re-check must see it too");
        let read = postgres::read_schemas(&mut conn, &schemas).await.unwrap();
        assert_eq!(read["fo_1"].fingerprint, fp, "{what}: a full read agrees");
        last_fp = fp;
        last_hash = hash;
    }
}
