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

fn pg_template(schema: &str) -> String {
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
         CREATE PROCEDURE tidy(n int) LANGUAGE sql AS $$DELETE FROM t WHERE id < n$$;"
    )
}

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
    ];
    let schemas: Vec<String> = (0..=cases.len() + 1)
        .map(|i| format!("c{id}_{i}"))
        .collect();
    let mut conn = db.connect().await;
    pg_roles(&mut conn, &schemas, true).await;
    for s in &schemas {
        db.apply(s, &pg_template(s)).await;
    }
    let before = postgres::catalog_fingerprints(&mut conn, &schemas)
        .await
        .unwrap();
    for ((_, sql, ..), s) in cases.iter().zip(&schemas[2..]) {
        db.apply(s, sql).await;
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
