//! SQLite introspection: one tenant is one file, opened read-only. Pragmas
//! give columns, keys and indexes; the stored `CREATE` text gives what no
//! pragma exposes (CHECKs, generated expressions, collations, options).

use std::collections::BTreeMap;
use std::path::Path;

use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteRow};
use sqlx::{ConnectOptions, Connection, Row};
use tenantry_model::normalize::sqlite_normalize_type;
use tenantry_model::{
    CheckConstraint, Column, Deferrable, ForeignKey, GeneratedColumn, Identity, Index, IndexKey,
    ObjectName, PrimaryKey, ReferentialAction, SchemaSnapshot, Table, Trigger, TriggerState,
    UniqueConstraint, View,
};

use crate::sqlite_sql::{self, render, Tok};
use crate::{Engine, IntrospectError, Timeouts};

/// Opens `path` read-only; a missing file is an error, never created.
pub async fn open_read_only(path: &Path) -> Result<SqliteConnection, IntrospectError> {
    if !path.is_file() {
        return Err(IntrospectError::SqliteFileNotFound {
            path: path.display().to_string(),
        });
    }
    SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false)
        .disable_statement_logging()
        .connect()
        .await
        .map_err(|e| IntrospectError::Connect {
            server: path.display().to_string(),
            reason: e.to_string(),
        })
}

pub async fn introspect_file(
    path: &Path,
    timeouts: Timeouts,
) -> Result<SchemaSnapshot, IntrospectError> {
    let label = path.display().to_string();
    let mut conn = open_read_only(path).await?;
    let result = crate::with_query_timeout(&label, timeouts, async {
        introspect(&mut conn)
            .await
            .map_err(|e| IntrospectError::Catalog {
                server: label.clone(),
                reason: match &e {
                    sqlx::Error::Database(db) => db.message().to_owned(),
                    other => other.to_string(),
                },
            })
    })
    .await;
    let _ = conn.close().await;
    result
}

/// Introspects the `main` schema of an open connection.
pub async fn introspect(conn: &mut SqliteConnection) -> Result<SchemaSnapshot, sqlx::Error> {
    let mut snap = SchemaSnapshot::new(Engine::Sqlite);
    let objects = sqlx::query(
        "SELECT type, name, tbl_name, sql FROM sqlite_master \
         WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut index_sql: BTreeMap<String, String> = BTreeMap::new();
    let mut triggers: Vec<(String, Trigger)> = Vec::new();
    for o in &objects {
        let kind: String = o.try_get("type")?;
        let name: String = o.try_get("name")?;
        let sql: Option<String> = o.try_get("sql")?;
        match kind.as_str() {
            "index" => {
                if let Some(sql) = sql {
                    index_sql.insert(name, sql);
                }
            }
            // Tokenized and rendered: keyword case, spacing and comments
            // are not drift.
            "trigger" => triggers.push((
                o.try_get("tbl_name")?,
                Trigger {
                    name,
                    definition: render(&sqlite_sql::tokenize(&sql.unwrap_or_default())),
                    state: TriggerState::Enabled,
                },
            )),
            "view" => snap.views.push(View {
                owner: None,
                name,
                materialized: false,
                definition: sqlite_sql::view_query(&sql.unwrap_or_default()),
                options: Vec::new(),
                grants: Vec::new(),
                indexes: Vec::new(),
            }),
            _ => {}
        }
    }
    for o in &objects {
        if o.try_get::<String, _>("type")? == "table" {
            let name: String = o.try_get("name")?;
            let sql: String = o.try_get::<Option<String>, _>("sql")?.unwrap_or_default();
            let table = read_table(conn, &name, &sql, &index_sql).await?;
            snap.tables.push(table);
        }
    }
    for (table, trigger) in triggers {
        match snap.tables.iter_mut().find(|t| t.name == table) {
            Some(t) => t.triggers.push(trigger),
            // An INSTEAD OF trigger on a view is part of that view: one
            // of its options, hashed and shown with it.
            None => {
                if let Some(v) = snap.views.iter_mut().find(|v| v.name == table) {
                    v.options.push(format!("trigger={}", trigger.definition));
                }
            }
        }
    }
    snap.canonicalize();
    Ok(snap)
}

async fn read_table(
    conn: &mut SqliteConnection,
    name: &str,
    sql: &str,
    index_sql: &BTreeMap<String, String>,
) -> Result<Table, sqlx::Error> {
    let parsed = sqlite_sql::parse_create_table(sql);
    let mut table = Table::new(name);
    table.options = parsed.options.clone();
    if let Some(module) = &parsed.virtual_module {
        table.options.push(format!("virtual={module}"));
    }
    let defs: BTreeMap<&str, &[Tok]> = parsed
        .columns
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();

    let mut pk: Vec<(i64, String)> = Vec::new();
    let cols = sqlx::query(
        "SELECT cid, name, type, \"notnull\", dflt_value, pk, hidden FROM pragma_table_xinfo(?1)",
    )
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    for row in &cols {
        let col_name: String = row.try_get("name")?;
        let cid: i64 = row.try_get("cid")?;
        let declared: String = row
            .try_get::<Option<String>, _>("type")?
            .unwrap_or_default();
        let declared = declared
            .trim_end()
            .strip_suffix("GENERATED ALWAYS")
            .unwrap_or(&declared)
            .to_owned();
        let mut c = Column::new(
            col_name.clone(),
            u32::try_from(cid + 1).unwrap_or(0),
            sqlite_normalize_type(&declared),
        );
        c.nullable = row.try_get::<i64, _>("notnull")? == 0;
        c.default = row
            .try_get::<Option<String>, _>("dflt_value")?
            .map(|d| render(&sqlite_sql::tokenize(&d)));
        let def = defs.get(col_name.as_str()).copied().unwrap_or(&[]);
        let hidden: i64 = row.try_get("hidden")?;
        if hidden == 2 || hidden == 3 {
            if let Some((expression, _)) = sqlite_sql::generated_in(def) {
                c.generated = Some(GeneratedColumn {
                    expression,
                    stored: hidden == 3,
                });
            }
        }
        if sqlite_sql::has_keyword(def, "AUTOINCREMENT") {
            c.identity = Some(Identity::AutoIncrement);
        }
        c.collation = sqlite_sql::collation_in(def).filter(|c| c != "BINARY");
        for (check_name, expression) in sqlite_sql::checks_in(def) {
            table.checks.push(check(check_name, expression));
        }
        let pk_pos: i64 = row.try_get("pk")?;
        if pk_pos > 0 {
            pk.push((pk_pos, col_name));
        }
        table.columns.push(c);
    }
    for constraint in &parsed.constraints {
        for (check_name, expression) in sqlite_sql::checks_in(constraint) {
            table.checks.push(check(check_name, expression));
        }
    }
    if !pk.is_empty() {
        pk.sort();
        table.primary_key = Some(PrimaryKey {
            // SQLite does not report constraint names; a PK is matched by structure.
            name: ObjectName::new("", true),
            columns: pk.into_iter().map(|(_, c)| c).collect(),
        });
    }

    table.foreign_keys = read_foreign_keys(conn, name).await?;
    for (columns, deferrable) in sqlite_sql::foreign_key_deferrability(&parsed) {
        if let Some(fk) = table.foreign_keys.iter_mut().find(|f| f.columns == columns) {
            fk.deferrable = deferrable;
        }
    }

    let indexes = sqlx::query(
        "SELECT name, \"unique\", origin, partial FROM pragma_index_list(?1) ORDER BY name",
    )
    .bind(name)
    .fetch_all(&mut *conn)
    .await?;
    for ix in &indexes {
        let ix_name: String = ix.try_get("name")?;
        let origin: String = ix.try_get("origin")?;
        let unique = ix.try_get::<i64, _>("unique")? == 1;
        let parts = sqlx::query(
            "SELECT seqno, cid, name, \"desc\", coll FROM pragma_index_xinfo(?1) \
             WHERE key = 1 ORDER BY seqno",
        )
        .bind(&ix_name)
        .fetch_all(&mut *conn)
        .await?;
        match origin.as_str() {
            "pk" => {}
            "u" => table.uniques.push(UniqueConstraint {
                name: ObjectName::new(ix_name.clone(), ix_name.starts_with("sqlite_autoindex_")),
                columns: part_columns(&parts)?,
                nulls_not_distinct: false,
            }),
            _ => {
                let parsed = index_sql
                    .get(&ix_name)
                    .and_then(|s| sqlite_sql::parse_create_index(s));
                let mut keys = Vec::new();
                for (i, p) in parts.iter().enumerate() {
                    let cid: i64 = p.try_get("cid")?;
                    let mut key = if cid == -2 {
                        let expr = parsed
                            .as_ref()
                            .and_then(|x| x.keys.get(i))
                            .map(|k| key_expression(k))
                            .unwrap_or_else(|| "?".into());
                        IndexKey::expression(expr)
                    } else {
                        IndexKey::column(
                            p.try_get::<Option<String>, _>("name")?.unwrap_or_default(),
                        )
                    };
                    key.descending = p.try_get::<i64, _>("desc")? == 1;
                    let coll: String = p.try_get::<Option<String>, _>("coll")?.unwrap_or_default();
                    if !coll.is_empty() && !coll.eq_ignore_ascii_case("BINARY") {
                        key.options = format!("collate {}", coll.to_ascii_uppercase());
                    }
                    keys.push(key);
                }
                let predicate = if ix.try_get::<i64, _>("partial")? == 1 {
                    parsed.and_then(|p| p.predicate)
                } else {
                    None
                };
                table.indexes.push(Index {
                    name: ObjectName::new(ix_name, false),
                    unique,
                    method: "btree".into(),
                    keys,
                    include: Vec::new(),
                    predicate,
                    invalid: false,
                });
            }
        }
    }
    Ok(table)
}

fn check(name: Option<String>, expression: String) -> CheckConstraint {
    let generated = name.is_none();
    CheckConstraint {
        name: ObjectName::new(name.unwrap_or_default(), generated),
        expression,
    }
}

/// An index key's expression without its trailing `ASC`/`DESC`/`COLLATE x`,
/// which the pragma reports separately.
fn key_expression(key: &[Tok]) -> String {
    let mut end = key.len();
    if end > 0 && (key[end - 1].is_kw("ASC") || key[end - 1].is_kw("DESC")) {
        end -= 1;
    }
    if end >= 2 && key[end - 2].is_kw("COLLATE") {
        end -= 2;
    }
    render(&key[..end])
}

fn part_columns(parts: &[SqliteRow]) -> Result<Vec<String>, sqlx::Error> {
    parts
        .iter()
        .map(|p| Ok(p.try_get::<Option<String>, _>("name")?.unwrap_or_default()))
        .collect()
}

async fn read_foreign_keys(
    conn: &mut SqliteConnection,
    table: &str,
) -> Result<Vec<ForeignKey>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, seq, \"table\" AS target, \"from\" AS col, \"to\" AS target_col, \
         on_update, on_delete, \"match\" AS match_kind \
         FROM pragma_foreign_key_list(?1) ORDER BY id, seq",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    let mut by_id: BTreeMap<i64, ForeignKey> = BTreeMap::new();
    let mut implicit_targets: Vec<i64> = Vec::new();
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let target_col: Option<String> = r.try_get("target_col")?;
        let fk = by_id.entry(id).or_insert_with(|| ForeignKey {
            name: ObjectName::new("", true),
            columns: Vec::new(),
            target_schema: None,
            target_table: r.try_get("target").unwrap_or_default(),
            target_columns: Vec::new(),
            on_update: ReferentialAction::NoAction,
            on_delete: ReferentialAction::NoAction,
            match_full: false,
            deferrable: Deferrable::NotDeferrable,
        });
        fk.on_update = ReferentialAction::parse(&r.try_get::<String, _>("on_update")?)
            .unwrap_or(ReferentialAction::NoAction);
        fk.on_delete = ReferentialAction::parse(&r.try_get::<String, _>("on_delete")?)
            .unwrap_or(ReferentialAction::NoAction);
        fk.match_full = r
            .try_get::<String, _>("match_kind")?
            .eq_ignore_ascii_case("FULL");
        fk.columns.push(r.try_get("col")?);
        match target_col {
            Some(c) => fk.target_columns.push(c),
            None => implicit_targets.push(id),
        }
    }
    // `REFERENCES parent` without columns means the parent's primary key.
    implicit_targets.dedup();
    for id in implicit_targets {
        if let Some(fk) = by_id.get_mut(&id) {
            let pk: Vec<(i64, String)> = sqlx::query_as(
                "SELECT pk, name FROM pragma_table_info(?1) WHERE pk > 0 ORDER BY pk",
            )
            .bind(&fk.target_table)
            .fetch_all(&mut *conn)
            .await?;
            fk.target_columns = pk.into_iter().map(|(_, n)| n).collect();
        }
    }
    Ok(by_id.into_values().collect())
}
