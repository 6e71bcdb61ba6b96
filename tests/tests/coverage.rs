//! Schema coverage (canonical format v2): triggers, routines, row-level
//! security and policies, MySQL/MariaDB events, on the real servers. For
//! each kind, a stability case (the same objects built under another
//! schema name, with each tenant's own role, hash alike) and sensitivity
//! cases (one real change moves that object's hash and no other); on
//! PostgreSQL, the re-check (catalog fingerprint) sees every change a full
//! read sees.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;

use tenantry_introspect::{introspect, postgres, ConnectionUrl, Timeouts};
use tenantry_model::{hash_schema, ObjectKind, SchemaHash, TriggerState};
use tenantry_tests::{changed_objects, sqlite_file, MysqlDatabase, PgDatabase};

fn pg_template(schema: &str, reader: &str) -> String {
    format!(
        "CREATE TABLE t (id int PRIMARY KEY, note text, owner text, updated_at timestamptz);
         CREATE TABLE other (id int PRIMARY KEY);
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql
             SET search_path = {schema}, pg_temp
             AS $$BEGIN NEW.updated_at := now(); RETURN NEW; END$$;
         CREATE TRIGGER audit BEFORE UPDATE OF note ON t FOR EACH ROW
             WHEN (OLD.note IS DISTINCT FROM NEW.note) EXECUTE FUNCTION touch();
         ALTER TABLE t ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own ON t FOR SELECT TO {schema}_app USING (owner = current_user);
         CREATE PROCEDURE tidy(n int) LANGUAGE sql AS $$DELETE FROM t WHERE id < n$$;
         CREATE TYPE mood AS ENUM ('calm', 'busy');
         CREATE SEQUENCE counter;
         CREATE TABLE users (id int PRIMARY KEY, password_hash text, m mood,
                             n bigint DEFAULT nextval('counter'));
         CREATE VIEW v AS SELECT t.id FROM t t JOIN users p ON p.id = t.id;
         GRANT SELECT ON t TO {schema}_app;
         GRANT SELECT (id), UPDATE (password_hash) ON users TO {reader};
         REVOKE EXECUTE ON FUNCTION touch() FROM PUBLIC;"
    )
}

/// What `public` holds in the database: objects named like the tenant's
/// own, which a migration run with the wrong search path would use.
const PG_PUBLIC: &str = "
    CREATE TABLE t (id int PRIMARY KEY);
    CREATE TYPE mood AS ENUM ('calm', 'busy');
    CREATE SEQUENCE counter;";

/// Roles are the cluster's, not the database's: each test run makes its
/// own and drops them at the end.
async fn pg_roles(conn: &mut sqlx::PgConnection, schemas: &[String], create: bool) {
    for s in schemas {
        let sql = if create {
            format!("CREATE ROLE {s}_app")
        } else {
            format!("DROP ROLE IF EXISTS {s}_app")
        };
        let _ = sqlx::raw_sql(&sql).execute(&mut *conn).await;
    }
}

#[tokio::test]
async fn postgres_triggers_routines_and_row_security_are_hashed_and_rechecked() {
    let db = PgDatabase::create().await;
    // Schema names unique to this database, so that the roles named after
    // them do not meet another run's.
    let id = &db.name[db.name.len() - 8..];
    let cases: Vec<(&str, String, ObjectKind, &str)> = vec![
        ("trigger dropped", "DROP TRIGGER audit ON t".into(), ObjectKind::Table, "t"),
        ("trigger disabled", "ALTER TABLE t DISABLE TRIGGER audit".into(), ObjectKind::Table, "t"),
        ("trigger on replica only", "ALTER TABLE t ENABLE REPLICA TRIGGER audit".into(), ObjectKind::Table, "t"),
        (
            "trigger WHEN changed",
            "DROP TRIGGER audit ON t; CREATE TRIGGER audit BEFORE UPDATE OF note ON t FOR EACH ROW EXECUTE FUNCTION touch()".into(),
            ObjectKind::Table,
            "t",
        ),
        (
            "trigger function rewritten",
            "CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$".into(),
            ObjectKind::Routine,
            "touch()",
        ),
        ("function made SECURITY DEFINER", "ALTER FUNCTION touch() SECURITY DEFINER".into(), ObjectKind::Routine, "touch()"),
        ("function search_path changed", "ALTER FUNCTION touch() SET search_path = public".into(), ObjectKind::Routine, "touch()"),
        ("procedure body changed", "CREATE OR REPLACE PROCEDURE tidy(n int) LANGUAGE sql AS $$DELETE FROM t$$".into(), ObjectKind::Routine, "tidy(IN n integer)"),
        ("row security disabled", "ALTER TABLE t DISABLE ROW LEVEL SECURITY".into(), ObjectKind::Table, "t"),
        ("row security forced", "ALTER TABLE t FORCE ROW LEVEL SECURITY".into(), ObjectKind::Table, "t"),
        ("policy loosened", "ALTER POLICY own ON t USING (true)".into(), ObjectKind::Table, "t"),
        ("policy given to PUBLIC", "ALTER POLICY own ON t TO public".into(), ObjectKind::Table, "t"),
        ("policy given to another tenant's role", format!("ALTER POLICY own ON t TO c{id}_0_app"), ObjectKind::Table, "t"),
        ("restrictive policy added", "CREATE POLICY extra ON t AS RESTRICTIVE USING (id > 0)".into(), ObjectKind::Table, "t"),
        ("trigger added on another table", "CREATE TRIGGER t2 AFTER INSERT ON other FOR EACH STATEMENT EXECUTE FUNCTION touch()".into(), ObjectKind::Table, "other"),
        // Privileges, through the role rule.
        ("column granted to PUBLIC", "GRANT SELECT (password_hash) ON users TO PUBLIC".into(), ObjectKind::Table, "users"),
        ("column grant taken from a fixed role", format!("REVOKE UPDATE (password_hash) ON users FROM r{id}_reader"), ObjectKind::Table, "users"),
        ("table granted to another tenant's role", format!("GRANT SELECT ON t TO c{id}_0_app"), ObjectKind::Table, "t"),
        ("grant option added", format!("GRANT SELECT (id) ON users TO r{id}_reader WITH GRANT OPTION"), ObjectKind::Table, "users"),
        ("owner's own privilege revoked", "REVOKE TRUNCATE ON t FROM CURRENT_USER".into(), ObjectKind::Table, "t"),
        ("function EXECUTE given back to PUBLIC", "GRANT EXECUTE ON FUNCTION touch() TO PUBLIC".into(), ObjectKind::Routine, "touch()"),
        ("sequence granted to PUBLIC", "GRANT USAGE ON SEQUENCE counter TO PUBLIC".into(), ObjectKind::Sequence, "counter"),
        ("type USAGE revoked from PUBLIC", "REVOKE USAGE ON TYPE mood FROM PUBLIC".into(), ObjectKind::Enum, "mood"),
        ("view granted to PUBLIC", "GRANT SELECT ON v TO PUBLIC".into(), ObjectKind::View, "v"),
        ("schema CREATE granted to PUBLIC", "GRANT CREATE ON SCHEMA {s} TO PUBLIC".into(), ObjectKind::Schema, "schema"),
        // The same names in `public`: another schema's objects.
        ("view reads public's table", "CREATE OR REPLACE VIEW v AS SELECT t.id FROM public.t t JOIN users p ON p.id = t.id".into(), ObjectKind::View, "v"),
        ("default draws from public's sequence", "ALTER TABLE users ALTER COLUMN n SET DEFAULT nextval('public.counter')".into(), ObjectKind::Table, "users"),
        ("column of public's type", "ALTER TABLE users ALTER COLUMN m TYPE public.mood USING m::text::public.mood".into(), ObjectKind::Table, "users"),
    ];
    let schemas: Vec<String> = (0..=cases.len() + 1)
        .map(|i| format!("c{id}_{i}"))
        .collect();
    let mut conn = db.connect().await;
    let reader = format!("r{id}_reader");
    pg_roles(&mut conn, &schemas, true).await;
    sqlx::raw_sql(&format!("CREATE ROLE {reader}"))
        .execute(&mut conn)
        .await
        .unwrap();
    db.apply("public", PG_PUBLIC).await;
    for s in &schemas {
        db.apply(s, &pg_template(s, &reader)).await;
    }
    let before = postgres::catalog_fingerprints(&mut conn, &schemas)
        .await
        .unwrap();
    for ((_, sql, ..), s) in cases.iter().zip(&schemas[2..]) {
        db.apply(s, &sql.replace("{s}", s)).await;
    }
    let read = postgres::read_schemas(&mut conn, &schemas).await.unwrap();
    let after = postgres::catalog_fingerprints(&mut conn, &schemas)
        .await
        .unwrap();
    let reference = hash_schema(&read[&schemas[0]].snapshot);
    // Stability: another schema name, its own role, its own search_path.
    assert_eq!(
        reference,
        hash_schema(&read[&schemas[1]].snapshot),
        "the same template under another schema name hashes alike"
    );
    let t = read[&schemas[0]].snapshot.table("t").unwrap();
    assert_eq!(t.triggers.len(), 1);
    assert_eq!(t.triggers[0].state, TriggerState::Enabled);
    assert_eq!(t.policies[0].roles, vec!["{tenant}_app".to_owned()]);
    assert!(t.options.contains(&"row_security=enabled".to_owned()));
    assert_eq!(read[&schemas[0]].snapshot.routines.len(), 2);
    let users = read[&schemas[0]].snapshot.table("users").unwrap();
    assert_eq!(
        users
            .grants
            .iter()
            .map(|g| g.sql("TABLE users"))
            .collect::<Vec<_>>(),
        [
            format!("GRANT SELECT (id) ON TABLE users TO {reader};"),
            format!("GRANT UPDATE (password_hash) ON TABLE users TO {reader};")
        ]
    );
    // The tenant's own role's privileges come from provisioning, not from
    // the template: left out.
    assert!(t.grants.is_empty(), "{:?}", t.grants);
    assert_eq!(
        users.column("n").unwrap().default.as_deref(),
        Some("nextval('counter'::regclass)")
    );
    assert!(read[&schemas[0]].snapshot.grants.is_empty());
    for ((what, _, kind, object), s) in cases.iter().zip(&schemas[2..]) {
        let h = hash_schema(&read[s].snapshot);
        assert_eq!(
            changed_objects(&reference, &h),
            BTreeSet::from([(*kind, (*object).to_owned())]),
            "{what}: exactly that object's hash moves"
        );
        assert_ne!(before[s], after[s], "{what}: the re-check sees it");
        assert_eq!(read[s].fingerprint, after[s], "{what}: a full read agrees");
    }
    // The untouched schemas' fingerprints are unchanged.
    assert_eq!(before[&schemas[0]], after[&schemas[0]]);
    drop(conn);
    let mut conn = db.connect().await;
    for s in &schemas {
        let _ = sqlx::raw_sql(&format!("DROP SCHEMA {s} CASCADE"))
            .execute(&mut conn)
            .await;
    }
    pg_roles(&mut conn, &schemas, false).await;
    let _ = sqlx::raw_sql(&format!("DROP ROLE IF EXISTS {reader}"))
        .execute(&mut conn)
        .await;
}

/// Schemas named like the aliases and literals their objects use: the
/// tenant's own qualifier is told from an alias or a string by its place
/// in the statement, never by its text.
#[tokio::test]
async fn postgres_schemas_named_like_aliases_or_literals_hash_alike() {
    let db = PgDatabase::create().await;
    let template = "
        CREATE TYPE kind AS ENUM ('t.read', 'p.write');
        CREATE TABLE tasks (id int PRIMARY KEY, k kind DEFAULT 't.read',
                            note text DEFAULT 'p.note' CHECK (note <> 't.x'));
        CREATE TABLE projects (id int PRIMARY KEY, task int REFERENCES tasks);
        CREATE VIEW open_tasks AS
            SELECT t.id, p.id AS project, extract(epoch FROM now()) AS at
              FROM tasks t JOIN projects p ON p.task = t.id
             WHERE t.note IS DISTINCT FROM 'p.done';
        CREATE FUNCTION first_task() RETURNS int LANGUAGE sql STABLE
            AS $$SELECT t.id FROM tasks t ORDER BY t.id LIMIT 1$$;";
    let schemas = ["t", "p", "tenant_x"].map(String::from);
    for s in &schemas {
        db.apply(s, template).await;
    }
    let mut conn = db.connect().await;
    let read = postgres::read_schemas(&mut conn, &schemas).await.unwrap();
    let h = |s: &str| hash_schema(&read[s].snapshot);
    assert_eq!(h("t"), h("tenant_x"), "schema t");
    assert_eq!(h("p"), h("tenant_x"), "schema p");
    let view = &read["t"].snapshot.views[0];
    assert!(
        view.definition
            .contains("FROM tasks t JOIN projects p ON p.task = t.id"),
        "{}",
        view.definition
    );
    let tasks = read["t"].snapshot.table("tasks").unwrap();
    assert_eq!(
        tasks.column("k").unwrap().default.as_deref(),
        Some("'t.read'::kind")
    );
}

/// What PostgreSQL prints for the same schema after a `pg_dump` and
/// restore, and the other spelling of `now()`, hash alike.
#[tokio::test]
async fn postgres_dump_and_restore_spellings_hash_alike() {
    let db = PgDatabase::create().await;
    db.apply(
        "original",
        "CREATE TABLE t (s varchar(10) CHECK (s IN ('a', 'b')),
                         n numeric CHECK (n IN (1, 2)),
                         at timestamptz DEFAULT now());",
    )
    .await;
    // The checks as pg_dump writes them, and CURRENT_TIMESTAMP.
    db.apply(
        "restored",
        "CREATE TABLE t (s varchar(10) CHECK (((s)::text = ANY ((ARRAY['a'::character varying, 'b'::character varying])::text[]))),
                         n numeric CHECK ((n = ANY (ARRAY[(1)::numeric, (2)::numeric]))),
                         at timestamptz DEFAULT CURRENT_TIMESTAMP);",
    )
    .await;
    let schemas = ["original", "restored"].map(String::from);
    let mut conn = db.connect().await;
    let read = postgres::read_schemas(&mut conn, &schemas).await.unwrap();
    assert_eq!(
        read["original"].snapshot.tables,
        read["restored"].snapshot.tables
    );
    let t = read["restored"].snapshot.table("t").unwrap();
    assert!(
        t.checks
            .iter()
            .any(|c| c.expression.contains("ARRAY['a'::character varying::text")),
        "{:?}",
        t.checks
    );
}

async fn mysql_hash(db: &MysqlDatabase) -> SchemaHash {
    let url = ConnectionUrl::parse(&db.url()).unwrap();
    hash_schema(&introspect(&url, None, Timeouts::default()).await.unwrap())
}

const MYSQL_TEMPLATE: &str = "
    CREATE TABLE t (id int PRIMARY KEY, note text, n int DEFAULT 0);
    CREATE TRIGGER audit BEFORE UPDATE ON t FOR EACH ROW SET NEW.n = OLD.n + 1;
    CREATE FUNCTION twice(x int) RETURNS int DETERMINISTIC RETURN x * 2;
    CREATE PROCEDURE tidy(IN lim int) BEGIN DELETE FROM t WHERE id < lim; END;
    CREATE EVENT cleanup ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO DELETE FROM t WHERE n > 100;
";

#[tokio::test]
async fn mysql_triggers_routines_and_events_are_hashed() {
    let cases: [(&str, &str, ObjectKind, &str); 7] = [
        ("trigger dropped", "DROP TRIGGER audit", ObjectKind::Table, "t"),
        (
            "trigger body changed",
            "DROP TRIGGER audit; CREATE TRIGGER audit BEFORE UPDATE ON t FOR EACH ROW SET NEW.n = 0",
            ObjectKind::Table,
            "t",
        ),
        (
            "trigger timing changed",
            "DROP TRIGGER audit; CREATE TRIGGER audit AFTER INSERT ON t FOR EACH ROW SET @x = 1",
            ObjectKind::Table,
            "t",
        ),
        (
            "function body changed",
            "DROP FUNCTION twice; CREATE FUNCTION twice(x int) RETURNS int DETERMINISTIC RETURN x * 3",
            ObjectKind::Routine,
            "twice()",
        ),
        (
            "procedure made SQL SECURITY INVOKER",
            "ALTER PROCEDURE tidy SQL SECURITY INVOKER",
            ObjectKind::Routine,
            "tidy()",
        ),
        ("event enabled", "ALTER EVENT cleanup ENABLE", ObjectKind::Event, "cleanup"),
        (
            "event schedule changed",
            "ALTER EVENT cleanup ON SCHEDULE EVERY 1 HOUR STARTS '2030-01-01 00:00:00'",
            ObjectKind::Event,
            "cleanup",
        ),
    ];
    let reference = MysqlDatabase::create().await;
    reference.apply(MYSQL_TEMPLATE).await;
    let twin = MysqlDatabase::create().await;
    // Another order of creation.
    twin.apply(
        "CREATE TABLE t (id int PRIMARY KEY, note text, n int DEFAULT 0);
         CREATE EVENT cleanup ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO DELETE FROM t WHERE n > 100;
         CREATE PROCEDURE tidy(IN lim int) BEGIN DELETE FROM t WHERE id < lim; END;
         CREATE FUNCTION twice(x int) RETURNS int DETERMINISTIC RETURN x * 2;
         CREATE TRIGGER audit BEFORE UPDATE ON t FOR EACH ROW SET NEW.n = OLD.n + 1;",
    )
    .await;
    let h = mysql_hash(&reference).await;
    assert_eq!(
        h,
        mysql_hash(&twin).await,
        "another order, another name: alike"
    );
    assert!(h.object(ObjectKind::Event, "cleanup").is_some());
    for (what, sql, kind, object) in cases {
        let db = MysqlDatabase::create().await;
        db.apply(MYSQL_TEMPLATE).await;
        db.apply(sql).await;
        assert_eq!(
            changed_objects(&h, &mysql_hash(&db).await),
            BTreeSet::from([(kind, object.to_owned())]),
            "{what}: exactly that object's hash moves"
        );
    }
}

#[tokio::test]
async fn sqlite_triggers_are_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let template = "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER DEFAULT 0);
        CREATE TABLE other (id INTEGER PRIMARY KEY);
        CREATE TRIGGER audit AFTER UPDATE ON t BEGIN UPDATE t SET n = n + 1 WHERE id = NEW.id; END;";
    let hash = |name: &'static str, sql: String| {
        let path = dir.path().join(name);
        async move {
            sqlite_file(&path, &sql).await;
            let url = ConnectionUrl::parse(&format!("sqlite:{}", path.display())).unwrap();
            hash_schema(&introspect(&url, None, Timeouts::default()).await.unwrap())
        }
    };
    let reference = hash("a.db", template.into()).await;
    let spaced = hash(
        "b.db",
        "CREATE TABLE other (id INTEGER PRIMARY KEY);
         CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER DEFAULT 0);
         create   trigger audit after update on t begin
             update t set n = n + 1 where id = NEW.id;
         end;"
            .into(),
    )
    .await;
    assert_eq!(reference, spaced, "spelling and layout are not drift");
    for (i, (what, extra)) in [
        ("trigger dropped", "DROP TRIGGER audit;"),
        (
            "trigger body changed",
            "DROP TRIGGER audit; CREATE TRIGGER audit AFTER UPDATE ON t BEGIN SELECT 1; END;",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let name: &'static str = ["c0.db", "c1.db"][i];
        let h = hash(name, format!("{template}\n{extra}")).await;
        assert_eq!(
            changed_objects(&reference, &h),
            BTreeSet::from([(ObjectKind::Table, "t".to_owned())]),
            "{what}"
        );
    }
}
