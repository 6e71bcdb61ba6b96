//! Setting a MySQL/MariaDB tenant's objects aside in a quarantine database
//! and bringing them back, for the reset and the backup restore.
//!
//! Tables move with one `RENAME TABLE` (all or none). Views and triggers
//! cannot move between databases (a table with a trigger refuses to, error
//! 1435): their definitions are saved in the quarantine first
//! (`_tenantry_views`, `_tenantry_triggers`), the triggers dropped, and on
//! the way back both are recreated from there. If the move fails, the
//! dropped triggers are recreated and the quarantine, which then holds only
//! those saved definitions, is dropped: a failed attempt leaves no orphan.
//!
//! Everything runs on one dedicated connection (closed by the caller), so
//! its `USE` and `sql_mode` never reach a pool.

use sqlx::mysql::MySqlConnection;
use sqlx::{Executor, Row};
use tenantry_introspect::ConnectionUrl;
use tenantry_model::quote::mysql as quote_my;

use crate::{catalog, FleetError};

/// The bookkeeping tables a quarantine holds besides the tenant's tables.
pub(crate) const BOOKKEEPING: [&str; 2] = ["_tenantry_views", "_tenantry_triggers"];

/// A trigger as `SHOW CREATE TRIGGER` gives it: enough to recreate it as it
/// was, definer and `sql_mode` included.
struct SavedTrigger {
    name: String,
    sql_mode: String,
    statement: String,
}

/// What was dropped from the tenant's database before its tables moved.
pub(crate) struct Prepared {
    triggers: Vec<SavedTrigger>,
}

async fn triggers_of(
    conn: &mut MySqlConnection,
    url: &ConnectionUrl,
    db: &str,
) -> Result<Vec<SavedTrigger>, FleetError> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(TRIGGER_NAME AS CHAR) FROM information_schema.TRIGGERS
          WHERE TRIGGER_SCHEMA = ? ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER",
    )
    .bind(db)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| catalog(url, &e))?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let row = conn
            .fetch_one(format!("SHOW CREATE TRIGGER {}.{}", quote_my(db), quote_my(&name)).as_str())
            .await
            .map_err(|e| catalog(url, &e))?;
        let text = |i: usize| -> Result<String, FleetError> {
            let bytes: Vec<u8> = row
                .try_get::<Vec<u8>, _>(i)
                .or_else(|_| row.try_get::<String, _>(i).map(String::into_bytes))
                .map_err(|e| catalog(url, &e))?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        out.push(SavedTrigger {
            name,
            sql_mode: text(1)?,
            statement: text(2)?,
        });
    }
    Ok(out)
}

/// Creates quarantine `q`, saves the definitions of `db`'s views and
/// triggers in it and drops the triggers, so that `db`'s tables can move.
/// `q` must not exist.
pub(crate) async fn prepare(
    conn: &mut MySqlConnection,
    url: &ConnectionUrl,
    db: &str,
    q: &str,
) -> Result<Prepared, FleetError> {
    let qq = quote_my(q);
    let views: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(VIEW_DEFINITION AS CHAR) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?",
    )
    .bind(db)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| catalog(url, &e))?;
    let triggers = triggers_of(conn, url, db).await?;
    conn.execute(format!("CREATE DATABASE {qq}").as_str())
        .await
        .map_err(|e| catalog(url, &e))?;
    let saved = async {
        conn.execute(
            format!(
                "CREATE TABLE {qq}.`_tenantry_views` (name VARCHAR(64) PRIMARY KEY, definition LONGTEXT NOT NULL);
                 CREATE TABLE {qq}.`_tenantry_triggers` (seq INT PRIMARY KEY, name VARCHAR(64) NOT NULL, sql_mode TEXT NOT NULL, statement LONGTEXT NOT NULL)"
            )
            .as_str(),
        )
        .await
        .map_err(|e| catalog(url, &e))?;
        for (name, definition) in &views {
            sqlx::query(&format!("INSERT INTO {qq}.`_tenantry_views` VALUES (?, ?)"))
                .bind(name)
                .bind(definition)
                .execute(&mut *conn)
                .await
                .map_err(|e| catalog(url, &e))?;
        }
        for (seq, t) in triggers.iter().enumerate() {
            sqlx::query(&format!("INSERT INTO {qq}.`_tenantry_triggers` VALUES (?, ?, ?, ?)"))
                .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                .bind(&t.name)
                .bind(&t.sql_mode)
                .bind(&t.statement)
                .execute(&mut *conn)
                .await
                .map_err(|e| catalog(url, &e))?;
        }
        Ok::<_, FleetError>(())
    }
    .await;
    if let Err(e) = saved {
        drop_empty_quarantine(conn, q).await;
        return Err(e);
    }
    let mut prepared = Prepared {
        triggers: Vec::new(),
    };
    for t in triggers {
        let dropped = conn
            .execute(format!("DROP TRIGGER {}.{}", quote_my(db), quote_my(&t.name)).as_str())
            .await;
        if let Err(e) = dropped {
            undo(conn, url, db, q, prepared).await;
            return Err(catalog(url, &e));
        }
        prepared.triggers.push(t);
    }
    Ok(prepared)
}

/// After a failed move: recreates the dropped triggers in `db` and drops
/// the quarantine, which holds nothing but the saved definitions.
pub(crate) async fn undo(
    conn: &mut MySqlConnection,
    url: &ConnectionUrl,
    db: &str,
    q: &str,
    prepared: Prepared,
) {
    let _ = conn.execute(format!("USE {}", quote_my(db)).as_str()).await;
    for t in &prepared.triggers {
        if let Err(e) = create_trigger(conn, &t.sql_mode, &t.statement).await {
            tracing::warn!(
                trigger = %tenantry_registry::escape_controls(&t.name),
                error = %url.scrub(&e.to_string()),
                "a trigger dropped for the move could not be recreated; its definition stays in the quarantine"
            );
            return;
        }
    }
    drop_empty_quarantine(conn, q).await;
}

/// Drops quarantine `q` only if it holds no table but the bookkeeping.
pub(crate) async fn drop_empty_quarantine(conn: &mut MySqlConnection, q: &str) {
    let others: Result<i64, _> = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME NOT IN (?, ?)",
    )
    .bind(q)
    .bind(BOOKKEEPING[0])
    .bind(BOOKKEEPING[1])
    .fetch_one(&mut *conn)
    .await;
    if matches!(others, Ok(0)) {
        let _ = conn
            .execute(format!("DROP DATABASE {}", quote_my(q)).as_str())
            .await;
    }
}

async fn create_trigger(
    conn: &mut MySqlConnection,
    sql_mode: &str,
    statement: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SET SESSION sql_mode = ?")
        .bind(sql_mode)
        .execute(&mut *conn)
        .await?;
    // The saved text is the server's own SHOW CREATE TRIGGER output.
    conn.execute(sqlx::raw_sql(statement)).await?;
    Ok(())
}

/// The rows of bookkeeping table `table` in quarantine `q`; none when the
/// quarantine has no such table (older ones lack `_tenantry_triggers`).
/// `columns` and `order` are literals of this module, never input.
async fn saved<T>(
    conn: &mut MySqlConnection,
    url: &ConnectionUrl,
    q: &str,
    table: &str,
    columns: &str,
    order: &str,
) -> Result<Vec<T>, FleetError>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::mysql::MySqlRow> + Send + Unpin,
{
    let present: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
    )
    .bind(q)
    .bind(table)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| catalog(url, &e))?;
    if present == 0 {
        return Ok(Vec::new());
    }
    sqlx::query_as(&format!(
        "SELECT {columns} FROM {}.{} ORDER BY {order}",
        quote_my(q),
        quote_my(table)
    ))
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| catalog(url, &e))
}

/// The tenant's tables in `q` (not the bookkeeping).
pub(crate) async fn tables_in(
    conn: &mut MySqlConnection,
    url: &ConnectionUrl,
    q: &str,
) -> Result<Vec<String>, FleetError> {
    sqlx::query_scalar(
        "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES
          WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT IN (?, ?)",
    )
    .bind(q)
    .bind(BOOKKEEPING[0])
    .bind(BOOKKEEPING[1])
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| catalog(url, &e))
}

/// Recreates in `db` the views and triggers saved in quarantine `q` (whose
/// tables were moved into `db`). Quarantines made before triggers were
/// saved have no `_tenantry_triggers`.
pub(crate) async fn recreate_saved(
    conn: &mut MySqlConnection,
    url: &ConnectionUrl,
    q: &str,
    db: &str,
) -> Result<(), FleetError> {
    let views: Vec<(String, String)> =
        saved(conn, url, q, BOOKKEEPING[0], "name, definition", "name").await?;
    conn.execute(format!("USE {}", quote_my(db)).as_str())
        .await
        .map_err(|e| catalog(url, &e))?;
    for (name, def) in views {
        conn.execute(format!("CREATE VIEW {} AS {def}", quote_my(&name)).as_str())
            .await
            .map_err(|e| catalog(url, &e))?;
    }
    put_back_triggers(conn, url, q, db).await?;
    Ok(())
}

/// Recreates in `db`, in their saved order, those triggers saved in `q`
/// that `db` does not have (all of them after a restore; after a reset
/// killed between dropping them and moving the tables, the dropped ones).
/// Quarantines made before triggers were saved have none. Returns how many
/// were recreated.
pub(crate) async fn put_back_triggers(
    conn: &mut MySqlConnection,
    url: &ConnectionUrl,
    q: &str,
    db: &str,
) -> Result<usize, FleetError> {
    let saved: Vec<(String, String, String)> = saved(
        conn,
        url,
        q,
        BOOKKEEPING[1],
        "name, sql_mode, statement",
        "seq",
    )
    .await?;
    let present: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(TRIGGER_NAME AS CHAR) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?",
    )
    .bind(db)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| catalog(url, &e))?;
    conn.execute(format!("USE {}", quote_my(db)).as_str())
        .await
        .map_err(|e| catalog(url, &e))?;
    let mut n = 0;
    for (name, sql_mode, statement) in saved {
        if present.contains(&name) {
            continue;
        }
        create_trigger(conn, &sql_mode, &statement)
            .await
            .map_err(|e| catalog(url, &e))?;
        n += 1;
    }
    Ok(n)
}
