//! MySQL / MariaDB introspection: one tenant is one database. Like the
//! PostgreSQL reader, [`introspect_schemas`] reads many databases of one
//! server per round trip (`TABLE_SCHEMA IN (…)`).
//!
//! Every `information_schema` column is read through `CAST(… AS CHAR)`:
//! MySQL 8 reports several of them as binary strings, MariaDB as text.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow};
use sqlx::{ConnectOptions, Connection};
use tenantry_model::naming::mysql as naming;
use tenantry_model::normalize::{
    collapse_whitespace, mysql_normalize_expression, mysql_strip_int_display_width,
};
use tenantry_model::own_schema::{strip_own_schema, TextKind};
use tenantry_model::{
    quote, CheckConstraint, Column, Deferrable, Event, ForeignKey, GeneratedColumn, Identity,
    Index, IndexKey, ObjectName, PrimaryKey, ReferentialAction, Routine, SchemaSnapshot, Sequence,
    Table, Trigger, TriggerState, View,
};

use crate::column::NamedColumns;
use crate::{describe, with_query_timeout, ConnectionUrl, Engine, IntrospectError, Timeouts};

/// How many databases one batch of catalog queries covers.
pub const SCHEMAS_PER_ROUND_TRIP: usize = 200;

/// Builds connect options. They print the password in `Debug`: never log them.
pub fn connect_options(url: &ConnectionUrl) -> Result<MySqlConnectOptions, IntrospectError> {
    let opts = MySqlConnectOptions::from_str(&url.driver_url()).map_err(|e| {
        IntrospectError::InvalidUrl {
            url: url.redacted().to_owned(),
            reason: url.scrub(&e.to_string()),
        }
    })?;
    Ok(opts.disable_statement_logging())
}

pub async fn connect(
    url: &ConnectionUrl,
    timeouts: Timeouts,
) -> Result<MySqlConnection, IntrospectError> {
    let opts = connect_options(url)?;
    crate::connect_within(url, timeouts, opts.connect(), connect_error).await
}

pub fn connect_error(url: &ConnectionUrl, e: &sqlx::Error) -> IntrospectError {
    let server = url.server_label();
    let reason = describe(url, e);
    match e.as_database_error().and_then(|d| d.code()).as_deref() {
        Some("28000") => IntrospectError::Authentication { server, reason },
        Some("42000") if reason.contains("Unknown database") => IntrospectError::DatabaseNotFound {
            server,
            database: url.database().unwrap_or_default(),
        },
        _ => IntrospectError::Connect { server, reason },
    }
}

pub fn catalog_error(url: &ConnectionUrl, e: &sqlx::Error) -> IntrospectError {
    IntrospectError::Catalog {
        server: url.server_label(),
        reason: describe(url, e),
    }
}

pub async fn close(conn: MySqlConnection) {
    let _ = conn.close().await;
}

/// Introspects one database; a missing one is [`IntrospectError::SchemaNotFound`].
pub async fn introspect_one(
    conn: &mut MySqlConnection,
    url: &ConnectionUrl,
    database: &str,
    timeouts: Timeouts,
) -> Result<SchemaSnapshot, IntrospectError> {
    let server = url.server_label();
    let schemas = [database.to_owned()];
    let mut found = with_query_timeout(&server, timeouts, async {
        introspect_schemas(conn, &schemas)
            .await
            .map_err(|e| catalog_error(url, &e))
    })
    .await?;
    found
        .remove(database)
        .ok_or_else(|| IntrospectError::SchemaNotFound {
            server,
            schema: database.to_owned(),
        })
}

/// Introspects many databases of one server; missing ones are absent.
pub async fn introspect_schemas(
    conn: &mut MySqlConnection,
    schemas: &[String],
) -> Result<BTreeMap<String, SchemaSnapshot>, sqlx::Error> {
    Ok(read_schemas(conn, schemas)
        .await?
        .into_iter()
        .map(|(name, read)| (name, read.snapshot))
        .collect())
}

/// One schema as a full read found it, with the catalog fingerprint of
/// what it read (see [`catalog_fingerprints`]), when there is a reliable one.
pub struct SchemaRead {
    pub snapshot: SchemaSnapshot,
    pub fingerprint: Option<String>,
}

async fn flavor(conn: &mut MySqlConnection) -> Result<Flavor, sqlx::Error> {
    let version: String = sqlx::query_scalar("SELECT CAST(VERSION() AS CHAR)")
        .fetch_one(&mut *conn)
        .await?;
    Ok(if version.to_ascii_lowercase().contains("mariadb") {
        // IGNORED indexes arrived in 10.6.
        let (major, minor) = version_of(&version);
        if (major, minor) >= (10, 6) {
            Flavor::MariaDb
        } else {
            Flavor::MariaDbBefore106
        }
    } else {
        Flavor::MySql
    })
}

async fn server_now(conn: &mut MySqlConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT CAST(UNIX_TIMESTAMP() AS SIGNED)")
        .fetch_one(&mut *conn)
        .await
}

/// [`introspect_schemas`], with each schema's catalog fingerprint.
pub async fn read_schemas(
    conn: &mut MySqlConnection,
    schemas: &[String],
) -> Result<BTreeMap<String, SchemaRead>, sqlx::Error> {
    let flavor = flavor(conn).await?;
    let now = server_now(conn).await?;
    let mut out = BTreeMap::new();
    let mut digests = Digests::default();
    for chunk in schemas.chunks(SCHEMAS_PER_ROUND_TRIP) {
        read_chunk(conn, chunk, flavor, &mut out, &mut digests).await?;
    }
    let mut prints = digests.finish(flavor, now);
    Ok(out
        .into_iter()
        .map(|(name, snapshot)| {
            let fingerprint = prints.remove(&name);
            (
                name,
                SchemaRead {
                    snapshot,
                    fingerprint,
                },
            )
        })
        .collect())
}

/// A digest per schema of the catalog rows a MariaDB re-check can ask for
/// cheaply: the schema's row, its tables' rows with their `CREATE_TIME`,
/// and the whole rows the model reads of its views, triggers, routines and
/// events. MariaDB rewrites a table's definition, and so moves its
/// `CREATE_TIME`, on every `ALTER` (columns, defaults, indexes, keys,
/// checks, options, partitions), so any DDL inside the schema changes the
/// digest.
///
/// `CREATE_TIME` has one-second resolution: a schema whose newest table
/// time is within a second of the server's clock when the pass began could
/// change again within that second unseen, so it gets no fingerprint (and
/// is read in full next time). Nor does a schema whose foreign keys name a
/// table in another database (renaming that table changes this schema's
/// model without writing anything in it), nor any schema on MySQL, whose
/// `information_schema.TABLES` times are cached statistics.
///
/// The digest is over exactly the rows [`read_schemas`] reads for these
/// objects, so a full read stores what a re-check would compute when
/// nothing changed. Schemas that do not exist are absent from the result.
pub async fn catalog_fingerprints(
    conn: &mut MySqlConnection,
    schemas: &[String],
) -> Result<HashMap<String, String>, sqlx::Error> {
    let flavor = flavor(conn).await?;
    if !flavor.is_mariadb() {
        return Ok(HashMap::new());
    }
    let now = server_now(conn).await?;
    let mut digests = Digests::default();
    for chunk in schemas.chunks(SCHEMAS_PER_ROUND_TRIP) {
        for sql in [
            SCHEMATA_SQL,
            TABLES_SQL,
            VIEWS_SQL,
            TRIGGERS_SQL,
            ROUTINES_SQL,
            EVENTS_SQL,
        ] {
            for row in fetch(conn, sql, chunk).await? {
                digests.add(&row)?;
            }
        }
    }
    Ok(digests.finish(flavor, now))
}

/// The rows of one re-check digest, by schema (see [`catalog_fingerprints`]).
#[derive(Default)]
struct Digests {
    lines: HashMap<String, Vec<String>>,
    newest: HashMap<String, i64>,
    unreliable: std::collections::HashSet<String>,
}

impl Digests {
    /// A row of one of the digested queries: its first column names the
    /// schema; every column goes in.
    fn add(&mut self, row: &MySqlRow) -> Result<(), sqlx::Error> {
        use sqlx::{Column, Row};
        let schema: String = row.try_get::<Option<String>, _>(0)?.unwrap_or_default();
        let mut line = String::new();
        for (i, column) in row.columns().iter().enumerate() {
            let value: Option<String> = row.try_get(i)?;
            if column.name() == "created" {
                if let Some(t) = value
                    .as_deref()
                    .and_then(|v| v.split('.').next()?.parse::<i64>().ok())
                {
                    let newest = self.newest.entry(schema.clone()).or_insert(t);
                    *newest = (*newest).max(t);
                }
            }
            match value {
                Some(v) => {
                    line.push_str(&v.len().to_string());
                    line.push(':');
                    line.push_str(&v);
                }
                None => line.push('-'),
            }
            line.push('|');
        }
        self.lines.entry(schema).or_default().push(line);
        Ok(())
    }

    fn finish(self, flavor: Flavor, now: i64) -> HashMap<String, String> {
        use sha2::{Digest, Sha256};
        if !flavor.is_mariadb() {
            return HashMap::new();
        }
        let Digests {
            lines,
            newest,
            unreliable,
        } = self;
        lines
            .into_iter()
            .filter(|(schema, _)| !unreliable.contains(schema))
            .filter(|(schema, _)| newest.get(schema).is_none_or(|t| *t < now - 1))
            .map(|(schema, mut rows)| {
                rows.sort_unstable();
                let mut h = Sha256::new();
                h.update(b"tenantry mariadb catalog v1\n");
                for r in &rows {
                    h.update(r.as_bytes());
                    h.update(b"\n");
                }
                (schema, format!("mariadb1:{}", hex::encode(h.finalize())))
            })
            .collect()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    MySql,
    MariaDb,
    /// MariaDB before 10.6: no IGNORED indexes.
    MariaDbBefore106,
}

impl Flavor {
    fn is_mariadb(self) -> bool {
        self != Flavor::MySql
    }

    /// `'YES'` for an index the optimizer is told to ignore (MariaDB's
    /// IGNORED, MySQL's invisible).
    fn ignored_index(self) -> &'static str {
        match self {
            Flavor::MariaDb => "CAST(IGNORED AS CHAR)",
            Flavor::MariaDbBefore106 => "'NO'",
            Flavor::MySql => "CASE WHEN IS_VISIBLE = 'NO' THEN 'YES' ELSE 'NO' END",
        }
    }
}

/// An expression or statement without the tenant's own qualifier, one
/// space between tokens.
fn strip(sql: &str, schema: &str) -> String {
    collapse_whitespace(&strip_own_schema(sql, schema, TextKind::Sql))
}

/// `10.11.19-MariaDB-…` → (10, 11).
fn version_of(version: &str) -> (u32, u32) {
    let mut parts = version
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok());
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

struct SchemaState {
    snap: SchemaSnapshot,
    default_collation: String,
    tables: HashMap<String, usize>,
    table_collations: HashMap<String, String>,
}

impl SchemaState {
    fn table_mut(&mut self, name: &str) -> Option<&mut Table> {
        let i = *self.tables.get(name)?;
        self.snap.tables.get_mut(i)
    }
}

/// (schema, table, constraint or index name)
type ObjectKey = (String, String, String);

#[derive(Default)]
struct FkColumns {
    /// (position, column, referenced column), sorted once all are read:
    /// the server is not asked to sort (it would sort the whole view).
    parts: Vec<(i64, String, String)>,
    target_schema: String,
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(",")
}

async fn fetch(
    conn: &mut MySqlConnection,
    sql: &str,
    schemas: &[String],
) -> Result<Vec<MySqlRow>, sqlx::Error> {
    let sql = sql.replace("{schemas}", &placeholders(schemas.len()));
    let mut q = sqlx::query(&sql);
    for s in schemas {
        q = q.bind(s);
    }
    q.fetch_all(&mut *conn).await
}

fn key_schema(row: &MySqlRow) -> Result<String, sqlx::Error> {
    get(row, "table_schema")
}

fn get(row: &MySqlRow, col: &str) -> Result<String, sqlx::Error> {
    Ok(row.col::<Option<String>>(col)?.unwrap_or_default())
}

fn get_opt(row: &MySqlRow, col: &str) -> Result<Option<String>, sqlx::Error> {
    row.col::<Option<String>>(col)
}

async fn read_chunk(
    conn: &mut MySqlConnection,
    schemas: &[String],
    flavor: Flavor,
    out: &mut BTreeMap<String, SchemaSnapshot>,
    digests: &mut Digests,
) -> Result<(), sqlx::Error> {
    let mut states: HashMap<String, SchemaState> = HashMap::new();
    for row in fetch(conn, SCHEMATA_SQL, schemas).await? {
        digests.add(&row)?;
        states.insert(
            get(&row, "schema_name")?,
            SchemaState {
                snap: SchemaSnapshot::new(Engine::Mysql),
                default_collation: get(&row, "collation")?,
                tables: HashMap::new(),
                table_collations: HashMap::new(),
            },
        );
    }
    if states.is_empty() {
        return Ok(());
    }

    let mut partitioned = false;
    for row in fetch(conn, TABLES_SQL, schemas).await? {
        digests.add(&row)?;
        let schema = get(&row, "table_schema")?;
        let Some(st) = states.get_mut(&schema) else {
            continue;
        };
        let name = get(&row, "table_name")?;
        match get(&row, "table_type")?.as_str() {
            "BASE TABLE" | "SYSTEM VERSIONED" => {
                let mut t = Table::new(name.clone());
                if let Some(engine) = get_opt(&row, "engine")? {
                    t.options.push(format!("engine={engine}"));
                }
                let collation = get(&row, "table_collation")?;
                if !collation.is_empty() && collation != st.default_collation {
                    t.options.push(format!("collation={collation}"));
                }
                if get(&row, "table_type")? == "SYSTEM VERSIONED" {
                    t.options.push("system_versioned".into());
                }
                let comment = get(&row, "table_comment")?;
                if !comment.is_empty() {
                    t.options
                        .push(format!("comment={}", quote::mysql_literal(&comment)));
                }
                // What the table was created or altered with beyond the
                // defaults: ROW_FORMAT, KEY_BLOCK_SIZE, CHECKSUM, …; how a
                // partitioned one is partitioned is read below.
                for option in get(&row, "create_options")?.split_whitespace() {
                    let option = option.to_ascii_lowercase();
                    if option == "partitioned" {
                        partitioned = true;
                    }
                    t.options.push(option);
                }
                st.table_collations.insert(name.clone(), collation);
                st.tables.insert(name, st.snap.tables.len());
                st.snap.tables.push(t);
            }
            "SEQUENCE" => st.snap.sequences.push(Sequence {
                // MariaDB sequences: their options are not in
                // information_schema before 11.5; they are read from the
                // sequence itself below.
                name,
                data_type: "sequence".into(),
                start: 0,
                increment: 0,
                min_value: 0,
                max_value: 0,
                cache: 0,
                cycle: false,
                owned_by: None,
                grants: Vec::new(),
                comment: None,
            }),
            _ => {}
        }
    }

    // A MariaDB sequence is a table of one row holding its options (the
    // counter, `next_not_cached_value`, is never read).
    for (schema, st) in states.iter_mut() {
        for q in st.snap.sequences.iter_mut() {
            let sql = format!(
                "SELECT CAST(start_value AS SIGNED), CAST(increment AS SIGNED),
                        CAST(minimum_value AS SIGNED), CAST(maximum_value AS SIGNED),
                        CAST(cache_size AS SIGNED), CAST(cycle_option AS SIGNED)
                   FROM {}.{}",
                quote::mysql(schema),
                quote::mysql(&q.name)
            );
            let (start, increment, min, max, cache, cycle): (i64, i64, i64, i64, i64, i64) =
                sqlx::query_as(&sql).fetch_one(&mut *conn).await?;
            q.start = start;
            q.increment = increment;
            q.min_value = min;
            q.max_value = max;
            q.cache = cache;
            q.cycle = cycle != 0;
        }
    }

    if partitioned {
        for row in fetch(conn, PARTITIONS_SQL, schemas).await? {
            let schema = get(&row, "table_schema")?;
            let Some(st) = states.get_mut(&schema) else {
                continue;
            };
            let Some(table) = st.table_mut(&get(&row, "table_name")?) else {
                continue;
            };
            let mut option = format!(
                "partition {} BY {}({}) VALUES {}",
                get(&row, "partition_name")?,
                get(&row, "method")?,
                get(&row, "expression")?,
                get(&row, "description")?
            );
            if let Some(sub) = get_opt(&row, "sub_method")? {
                option.push_str(&format!(
                    " SUBPARTITION BY {sub}({})",
                    get(&row, "sub_expression")?
                ));
            }
            table.options.push(strip(&option, &schema));
        }
    }

    for row in fetch(conn, COLUMNS_SQL, schemas).await? {
        let schema = get(&row, "table_schema")?;
        let Some(st) = states.get_mut(&schema) else {
            continue;
        };
        let table_name = get(&row, "table_name")?;
        let table_collation = st.table_collations.get(&table_name).cloned();
        let Some(table) = st.table_mut(&table_name) else {
            continue;
        };
        let column = column_from_row(&row, &schema, table_collation.as_deref(), flavor)?;
        let extra = get(&row, "extra")?.to_ascii_lowercase();
        if extra.split_whitespace().any(|w| w == "invisible") {
            table.options.push(format!("invisible({})", column.name));
        }
        let comment = get(&row, "column_comment")?;
        if !comment.is_empty() {
            table.options.push(format!(
                "comment({})={}",
                column.name,
                quote::mysql_literal(&comment)
            ));
        }
        table.columns.push(column);
    }

    // Foreign keys: rules from REFERENTIAL_CONSTRAINTS, columns from KEY_COLUMN_USAGE.
    let mut fk_columns: HashMap<ObjectKey, FkColumns> = HashMap::new();
    for row in fetch(conn, FK_COLUMNS_SQL, schemas).await? {
        let key = (
            get(&row, "table_schema")?,
            get(&row, "table_name")?,
            get(&row, "constraint_name")?,
        );
        let entry = fk_columns.entry(key).or_default();
        entry.parts.push((
            row.col::<i64>("position")?,
            get(&row, "column_name")?,
            get(&row, "referenced_column_name")?,
        ));
        entry.target_schema = get(&row, "referenced_table_schema")?;
        if !entry.target_schema.is_empty() && entry.target_schema != key_schema(&row)? {
            // A table elsewhere: renaming it changes this schema's model
            // without writing anything here.
            digests.unreliable.insert(key_schema(&row)?);
        }
    }
    for row in fetch(conn, FKS_SQL, schemas).await? {
        let schema = get(&row, "constraint_schema")?;
        let table_name = get(&row, "table_name")?;
        let name = get(&row, "constraint_name")?;
        let Some(st) = states.get_mut(&schema) else {
            continue;
        };
        let Some(table) = st.table_mut(&table_name) else {
            continue;
        };
        let FkColumns {
            mut parts,
            target_schema,
        } = fk_columns
            .remove(&(schema.clone(), table_name.clone(), name.clone()))
            .unwrap_or_default();
        parts.sort_by_key(|p| p.0);
        let (columns, target_columns): (Vec<String>, Vec<String>) =
            parts.into_iter().map(|(_, c, t)| (c, t)).unzip();
        let generated = naming::is_generated_foreign_key(&name, &table_name);
        table.foreign_keys.push(ForeignKey {
            name: ObjectName::new(name, generated),
            columns,
            target_schema: Some(target_schema).filter(|s| !s.is_empty() && *s != schema),
            target_table: get(&row, "referenced_table_name")?,
            target_columns,
            on_update: ReferentialAction::parse(&get(&row, "update_rule")?)
                .unwrap_or(ReferentialAction::Restrict),
            on_delete: ReferentialAction::parse(&get(&row, "delete_rule")?)
                .unwrap_or(ReferentialAction::Restrict),
            match_full: false,
            deferrable: Deferrable::NotDeferrable,
        });
    }

    // Indexes, one row per key part, put in order here (the server is not
    // asked to sort the view).
    let mut index_parts: BTreeMap<ObjectKey, Vec<(i64, MySqlRow)>> = BTreeMap::new();
    let statistics = STATISTICS_SQL.replace("{ignored}", flavor.ignored_index());
    for row in fetch(conn, &statistics, schemas).await? {
        let key = (
            get(&row, "table_schema")?,
            get(&row, "table_name")?,
            get(&row, "index_name")?,
        );
        let seq = row.col::<i64>("seq")?;
        index_parts.entry(key).or_default().push((seq, row));
    }
    for ((schema, table_name, index_name), mut parts) in index_parts {
        parts.sort_by_key(|p| p.0);
        let rows: Vec<MySqlRow> = parts.into_iter().map(|(_, r)| r).collect();
        let Some(st) = states.get_mut(&schema) else {
            continue;
        };
        let Some(table) = st.table_mut(&table_name) else {
            continue;
        };
        add_index(table, &index_name, &rows)?;
    }

    let checks_sql = match flavor {
        Flavor::MariaDb | Flavor::MariaDbBefore106 => CHECKS_MARIADB_SQL,
        Flavor::MySql => CHECKS_MYSQL_SQL,
    };
    for row in fetch(conn, checks_sql, schemas).await? {
        let schema = get(&row, "constraint_schema")?;
        let table_name = get(&row, "table_name")?;
        let Some(st) = states.get_mut(&schema) else {
            continue;
        };
        let Some(table) = st.table_mut(&table_name) else {
            continue;
        };
        let name = get(&row, "constraint_name")?;
        let column_names: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
        let generated = naming::is_generated_check(&name, &table_name, &column_names);
        table.checks.push(CheckConstraint {
            name: ObjectName::new(name, generated),
            expression: strip(&get(&row, "check_clause")?, &schema),
        });
    }

    for row in fetch(conn, VIEWS_SQL, schemas).await? {
        digests.add(&row)?;
        let schema = get(&row, "table_schema")?;
        let Some(st) = states.get_mut(&schema) else {
            continue;
        };
        let mut options = vec![format!(
            "security={}",
            get(&row, "security_type")?.to_ascii_lowercase()
        )];
        let check = get(&row, "check_option")?;
        if !check.is_empty() && check != "NONE" {
            options.push(format!("check_option={}", check.to_ascii_lowercase()));
        }
        st.snap.views.push(View {
            owner: None,
            name: get(&row, "table_name")?,
            materialized: false,
            definition: strip(&get(&row, "view_definition")?, &schema),
            options,
            grants: Vec::new(),
            indexes: Vec::new(),
        });
    }

    for row in fetch(conn, TRIGGERS_SQL, schemas).await? {
        digests.add(&row)?;
        let schema = get(&row, "trigger_schema")?;
        let Some(st) = states.get_mut(&schema) else {
            continue;
        };
        let table_name = get(&row, "event_object_table")?;
        let Some(table) = st.table_mut(&table_name) else {
            continue;
        };
        let name = get(&row, "trigger_name")?;
        let mut definition = format!(
            "CREATE TRIGGER {} {} {} ON {} FOR EACH {}",
            quote::mysql(&name),
            get(&row, "action_timing")?,
            get(&row, "event_manipulation")?,
            quote::mysql(&table_name),
            get(&row, "action_orientation")?,
        );
        // Among triggers of the same timing and event, the order they fire in.
        let order = get(&row, "action_order")?;
        if order != "1" {
            definition.push_str(&format!(" /* order {order} */"));
        }
        definition.push_str(&format!(
            " {}",
            strip(&get(&row, "action_statement")?, &schema)
        ));
        table.triggers.push(Trigger {
            name,
            definition,
            state: TriggerState::Enabled,
        });
    }

    for row in fetch(conn, ROUTINES_SQL, schemas).await? {
        digests.add(&row)?;
        let schema = get(&row, "routine_schema")?;
        let Some(st) = states.get_mut(&schema) else {
            continue;
        };
        let name = get(&row, "routine_name")?;
        let kind = get(&row, "routine_type")?.to_ascii_lowercase();
        let mut definition = format!(
            "CREATE {} {}({})",
            kind.to_ascii_uppercase(),
            quote::mysql(&name),
            get(&row, "params")?
        );
        if kind == "function" {
            definition.push_str(&format!(" RETURNS {}", get(&row, "returns")?));
        }
        definition.push_str(&format!(
            "\n    {}DETERMINISTIC {} SQL SECURITY {}",
            if get(&row, "is_deterministic")? == "YES" {
                ""
            } else {
                "NOT "
            },
            get(&row, "sql_data_access")?,
            get(&row, "security_type")?
        ));
        let comment = get(&row, "routine_comment")?;
        if !comment.is_empty() {
            definition.push_str(&format!(" COMMENT {}", quote::mysql_literal(&comment)));
        }
        definition.push_str(&format!(
            "\n{}",
            strip_own_schema(&get(&row, "routine_definition")?, &schema, TextKind::Sql).trim()
        ));
        st.snap.routines.push(Routine {
            owner: None,
            name,
            kind,
            arguments: String::new(),
            definition,
            grants: Vec::new(),
        });
    }

    for row in fetch(conn, EVENTS_SQL, schemas).await? {
        digests.add(&row)?;
        let schema = get(&row, "event_schema")?;
        let Some(st) = states.get_mut(&schema) else {
            continue;
        };
        let name = get(&row, "event_name")?;
        // A recurring event's STARTS defaults to the moment it was created,
        // which differs from tenant to tenant: it is not compared.
        let schedule = match get_opt(&row, "execute_at")? {
            Some(at) => format!("AT '{at}'"),
            None => {
                let mut s = format!(
                    "EVERY {} {}",
                    get(&row, "interval_value")?,
                    get(&row, "interval_field")?
                );
                if let Some(ends) = get_opt(&row, "ends")? {
                    s.push_str(&format!(" ENDS '{ends}'"));
                }
                s
            }
        };
        let status = match get(&row, "status")?.as_str() {
            "ENABLED" => "ENABLE".to_owned(),
            "DISABLED" => "DISABLE".to_owned(),
            _ => "DISABLE ON SLAVE".to_owned(),
        };
        let mut definition = format!(
            "CREATE EVENT {} ON SCHEDULE {schedule} ON COMPLETION {} {status}",
            quote::mysql(&name),
            get(&row, "on_completion")?
        );
        let comment = get(&row, "event_comment")?;
        if !comment.is_empty() {
            definition.push_str(&format!(" COMMENT {}", quote::mysql_literal(&comment)));
        }
        definition.push_str(&format!(
            "\nDO {}",
            strip(&get(&row, "event_definition")?, &schema)
        ));
        st.snap.events.push(Event { name, definition });
    }

    for (name, mut st) in states {
        st.snap.canonicalize();
        out.insert(name, st.snap);
    }
    Ok(())
}

fn column_from_row(
    row: &MySqlRow,
    schema: &str,
    table_collation: Option<&str>,
    flavor: Flavor,
) -> Result<Column, sqlx::Error> {
    let ordinal: i64 = row.col("ordinal_position")?;
    let column_type = get(row, "column_type")?;
    let mut c = Column::new(
        get(row, "column_name")?,
        u32::try_from(ordinal).unwrap_or(0),
        mysql_strip_int_display_width(&column_type),
    );
    c.nullable = get(row, "is_nullable")? == "YES";
    let extra = get(row, "extra")?.to_ascii_lowercase();
    let generation = get(row, "generation_expression")?;
    if extra.contains("generated") && !extra.contains("default_generated") && !generation.is_empty()
    {
        c.generated = Some(GeneratedColumn {
            expression: strip(&generation, schema),
            stored: extra.contains("stored") || extra.contains("persistent"),
        });
    } else {
        c.default = normalize_default(
            get_opt(row, "column_default")?,
            &column_type,
            &extra,
            flavor,
        );
    }
    if extra.contains("auto_increment") {
        c.identity = Some(Identity::AutoIncrement);
    }
    if let Some(pos) = extra.find("on update ") {
        c.on_update = Some(mysql_normalize_expression(
            &extra[pos + "on update ".len()..],
        ));
    }
    let collation = get(row, "collation_name")?;
    if !collation.is_empty() && Some(collation.as_str()) != table_collation {
        c.collation = Some(collation);
    }
    Ok(c)
}

/// MariaDB quotes literal defaults (`'abc'`) and reports "no default" on a
/// nullable column as the text `NULL`; MySQL leaves literals bare. Both are
/// brought to MariaDB's spelling, which tells a literal from an expression.
fn normalize_default(
    raw: Option<String>,
    column_type: &str,
    extra: &str,
    flavor: Flavor,
) -> Option<String> {
    let raw = raw?;
    if flavor.is_mariadb() {
        if raw == "NULL" {
            return None;
        }
        return Some(mysql_normalize_expression(&raw));
    }
    let t = column_type.to_ascii_lowercase();
    let is_text = [
        "char", "text", "enum", "set", "date", "time", "year", "binary", "blob",
    ]
    .iter()
    .any(|k| t.contains(k));
    if extra.contains("default_generated") {
        Some(mysql_normalize_expression(&raw))
    } else if is_text {
        Some(format!("'{}'", raw.replace('\'', "''")))
    } else {
        Some(raw)
    }
}

fn add_index(table: &mut Table, name: &str, rows: &[MySqlRow]) -> Result<(), sqlx::Error> {
    // An index the optimizer ignores, or its comment, is an option of the
    // table.
    if let Some(first) = rows.first() {
        if get(first, "ignored")? == "YES" {
            table.options.push(format!("ignored_index={name}"));
        }
        let comment = get(first, "index_comment")?;
        if !comment.is_empty() {
            table.options.push(format!(
                "index_comment({name})={}",
                quote::mysql_literal(&comment)
            ));
        }
    }
    let mut keys = Vec::new();
    let mut columns = Vec::new();
    for row in rows {
        let column = get_opt(row, "column_name")?;
        let mut key = match (&column, get_opt(row, "expression")?) {
            (Some(c), _) => IndexKey::column(c.clone()),
            (None, Some(expr)) => IndexKey::expression(collapse_whitespace(&expr)),
            (None, None) => IndexKey::expression("?"),
        };
        key.descending = get(row, "collation")? == "D";
        if let Some(sub) = get_opt(row, "sub_part")? {
            key.options = format!("prefix {sub}");
        }
        columns.extend(column);
        keys.push(key);
    }
    let first = rows.first();
    let non_unique = match first {
        Some(r) => get(r, "non_unique")? == "1",
        None => true,
    };
    if name == "PRIMARY" {
        table.primary_key = Some(PrimaryKey {
            name: ObjectName::new(name, true),
            columns,
        });
        return Ok(());
    }
    let method = match first {
        Some(r) => get(r, "index_type")?.to_ascii_lowercase(),
        None => "btree".into(),
    };
    let fk_names: Vec<&str> = table
        .foreign_keys
        .iter()
        .map(|f| f.name.name.as_str())
        .collect();
    let generated =
        naming::is_generated_index(name, columns.first().map(String::as_str), &fk_names);
    table.indexes.push(Index {
        name: ObjectName::new(name, generated),
        unique: !non_unique,
        method,
        keys,
        include: Vec::new(),
        predicate: None,
        invalid: false,
    });
    Ok(())
}

const SCHEMATA_SQL: &str = "
SELECT CAST(SCHEMA_NAME AS CHAR) AS schema_name, CAST(DEFAULT_COLLATION_NAME AS CHAR) AS collation
  FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ({schemas})";

const TABLES_SQL: &str = "
SELECT CAST(TABLE_SCHEMA AS CHAR) AS table_schema, CAST(TABLE_NAME AS CHAR) AS table_name,
       CAST(TABLE_TYPE AS CHAR) AS table_type, CAST(ENGINE AS CHAR) AS engine,
       CAST(TABLE_COLLATION AS CHAR) AS table_collation,
       CAST(TABLE_COMMENT AS CHAR) AS table_comment, CAST(CREATE_OPTIONS AS CHAR) AS create_options,
       CAST(UNIX_TIMESTAMP(CREATE_TIME) AS CHAR) AS created
  FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ({schemas})";

/// How the partitioned tables of `{schemas}` are partitioned (asked only
/// when one is: the view opens every table it lists).
const PARTITIONS_SQL: &str = "
SELECT CAST(TABLE_SCHEMA AS CHAR) AS table_schema, CAST(TABLE_NAME AS CHAR) AS table_name,
       CAST(PARTITION_NAME AS CHAR) AS partition_name, CAST(PARTITION_METHOD AS CHAR) AS method,
       CAST(PARTITION_EXPRESSION AS CHAR) AS expression,
       CAST(PARTITION_DESCRIPTION AS CHAR) AS description,
       CAST(SUBPARTITION_METHOD AS CHAR) AS sub_method,
       CAST(SUBPARTITION_EXPRESSION AS CHAR) AS sub_expression
  FROM information_schema.PARTITIONS
 WHERE TABLE_SCHEMA IN ({schemas}) AND PARTITION_NAME IS NOT NULL
   AND COALESCE(SUBPARTITION_ORDINAL_POSITION, 1) = 1";

const COLUMNS_SQL: &str = "
SELECT CAST(TABLE_SCHEMA AS CHAR) AS table_schema, CAST(TABLE_NAME AS CHAR) AS table_name,
       CAST(COLUMN_NAME AS CHAR) AS column_name, CAST(ORDINAL_POSITION AS SIGNED) AS ordinal_position,
       CAST(COLUMN_DEFAULT AS CHAR) AS column_default, CAST(IS_NULLABLE AS CHAR) AS is_nullable,
       CAST(COLUMN_TYPE AS CHAR) AS column_type, CAST(COLLATION_NAME AS CHAR) AS collation_name,
       CAST(EXTRA AS CHAR) AS extra, CAST(GENERATION_EXPRESSION AS CHAR) AS generation_expression,
       CAST(COLUMN_COMMENT AS CHAR) AS column_comment
  FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ({schemas})";

const FK_COLUMNS_SQL: &str = "
SELECT CAST(TABLE_SCHEMA AS CHAR) AS table_schema, CAST(TABLE_NAME AS CHAR) AS table_name,
       CAST(CONSTRAINT_NAME AS CHAR) AS constraint_name, CAST(COLUMN_NAME AS CHAR) AS column_name,
       CAST(REFERENCED_TABLE_SCHEMA AS CHAR) AS referenced_table_schema,
       CAST(REFERENCED_COLUMN_NAME AS CHAR) AS referenced_column_name,
       CAST(ORDINAL_POSITION AS SIGNED) AS position
  FROM information_schema.KEY_COLUMN_USAGE
 WHERE TABLE_SCHEMA IN ({schemas}) AND REFERENCED_TABLE_NAME IS NOT NULL";

const FKS_SQL: &str = "
SELECT CAST(CONSTRAINT_SCHEMA AS CHAR) AS constraint_schema, CAST(TABLE_NAME AS CHAR) AS table_name,
       CAST(CONSTRAINT_NAME AS CHAR) AS constraint_name,
       CAST(REFERENCED_TABLE_NAME AS CHAR) AS referenced_table_name,
       CAST(UPDATE_RULE AS CHAR) AS update_rule, CAST(DELETE_RULE AS CHAR) AS delete_rule
  FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA IN ({schemas})";

const STATISTICS_SQL: &str = "
SELECT CAST(TABLE_SCHEMA AS CHAR) AS table_schema, CAST(TABLE_NAME AS CHAR) AS table_name,
       CAST(INDEX_NAME AS CHAR) AS index_name, CAST(NON_UNIQUE AS CHAR) AS non_unique,
       CAST(COLUMN_NAME AS CHAR) AS column_name, CAST(SUB_PART AS CHAR) AS sub_part,
       CAST(INDEX_TYPE AS CHAR) AS index_type, CAST(COLLATION AS CHAR) AS collation,
       CAST(NULL AS CHAR) AS expression, {ignored} AS ignored,
       CAST(INDEX_COMMENT AS CHAR) AS index_comment, CAST(SEQ_IN_INDEX AS SIGNED) AS seq
  FROM information_schema.STATISTICS WHERE TABLE_SCHEMA IN ({schemas})";

const CHECKS_MARIADB_SQL: &str = "
SELECT CAST(CONSTRAINT_SCHEMA AS CHAR) AS constraint_schema, CAST(TABLE_NAME AS CHAR) AS table_name,
       CAST(CONSTRAINT_NAME AS CHAR) AS constraint_name, CAST(CHECK_CLAUSE AS CHAR) AS check_clause
  FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA IN ({schemas})";

const CHECKS_MYSQL_SQL: &str = "
SELECT CAST(tc.TABLE_SCHEMA AS CHAR) AS constraint_schema, CAST(tc.TABLE_NAME AS CHAR) AS table_name,
       CAST(cc.CONSTRAINT_NAME AS CHAR) AS constraint_name, CAST(cc.CHECK_CLAUSE AS CHAR) AS check_clause
  FROM information_schema.TABLE_CONSTRAINTS tc
  JOIN information_schema.CHECK_CONSTRAINTS cc
    ON cc.CONSTRAINT_SCHEMA = tc.CONSTRAINT_SCHEMA AND cc.CONSTRAINT_NAME = tc.CONSTRAINT_NAME
 WHERE tc.CONSTRAINT_TYPE = 'CHECK' AND tc.TABLE_SCHEMA IN ({schemas})";

const VIEWS_SQL: &str = "
SELECT CAST(TABLE_SCHEMA AS CHAR) AS table_schema, CAST(TABLE_NAME AS CHAR) AS table_name,
       CAST(VIEW_DEFINITION AS CHAR) AS view_definition, CAST(CHECK_OPTION AS CHAR) AS check_option,
       CAST(SECURITY_TYPE AS CHAR) AS security_type
  FROM information_schema.VIEWS WHERE TABLE_SCHEMA IN ({schemas})";

/// Triggers; the definer is left out (see ARCHITECTURE.md, "Definers").
/// Filtered on `EVENT_OBJECT_SCHEMA` (a trigger lives in its table's
/// schema, so the two are equal): that is the column MariaDB's
/// information_schema uses to pick the database to look in. On
/// `TRIGGER_SCHEMA` it opens the `.frm` of every table of every database
/// on the server for each query (EXPLAIN: "Scanned all databases"), a cost
/// that grew with the size of the whole server: 5.9 ms per tenant database
/// on a 105-database server, 0.1 ms on `EVENT_OBJECT_SCHEMA`.
const TRIGGERS_SQL: &str = "
SELECT CAST(TRIGGER_SCHEMA AS CHAR) AS trigger_schema, CAST(TRIGGER_NAME AS CHAR) AS trigger_name,
       CAST(EVENT_MANIPULATION AS CHAR) AS event_manipulation,
       CAST(EVENT_OBJECT_TABLE AS CHAR) AS event_object_table,
       CAST(ACTION_ORDER AS CHAR) AS action_order, CAST(ACTION_TIMING AS CHAR) AS action_timing,
       CAST(ACTION_ORIENTATION AS CHAR) AS action_orientation,
       CAST(ACTION_STATEMENT AS CHAR) AS action_statement
  FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA IN ({schemas})";

/// Functions and procedures with their parameters in order; the definer
/// is left out.
const ROUTINES_SQL: &str = "
SELECT CAST(r.ROUTINE_SCHEMA AS CHAR) AS routine_schema, CAST(r.ROUTINE_NAME AS CHAR) AS routine_name,
       CAST(r.ROUTINE_TYPE AS CHAR) AS routine_type, CAST(r.DTD_IDENTIFIER AS CHAR) AS returns,
       CAST(r.ROUTINE_DEFINITION AS CHAR) AS routine_definition,
       CAST(r.IS_DETERMINISTIC AS CHAR) AS is_deterministic,
       CAST(r.SQL_DATA_ACCESS AS CHAR) AS sql_data_access, CAST(r.SECURITY_TYPE AS CHAR) AS security_type,
       CAST(r.ROUTINE_COMMENT AS CHAR) AS routine_comment,
       CAST((SELECT GROUP_CONCAT(CONCAT_WS(' ', p.PARAMETER_MODE, p.PARAMETER_NAME, p.DTD_IDENTIFIER)
                                 ORDER BY p.ORDINAL_POSITION SEPARATOR ', ')
               FROM information_schema.PARAMETERS p
              WHERE p.SPECIFIC_SCHEMA = r.ROUTINE_SCHEMA AND p.SPECIFIC_NAME = r.SPECIFIC_NAME
                AND p.ROUTINE_TYPE = r.ROUTINE_TYPE AND p.ORDINAL_POSITION > 0) AS CHAR) AS params
  FROM information_schema.ROUTINES r WHERE r.ROUTINE_SCHEMA IN ({schemas})";

/// Scheduled events; the definer is left out.
const EVENTS_SQL: &str = "
SELECT CAST(EVENT_SCHEMA AS CHAR) AS event_schema, CAST(EVENT_NAME AS CHAR) AS event_name,
       CAST(EVENT_DEFINITION AS CHAR) AS event_definition, CAST(EXECUTE_AT AS CHAR) AS execute_at,
       CAST(INTERVAL_VALUE AS CHAR) AS interval_value, CAST(INTERVAL_FIELD AS CHAR) AS interval_field,
       CAST(ENDS AS CHAR) AS ends, CAST(STATUS AS CHAR) AS status,
       CAST(ON_COMPLETION AS CHAR) AS on_completion, CAST(EVENT_COMMENT AS CHAR) AS event_comment
  FROM information_schema.EVENTS WHERE EVENT_SCHEMA IN ({schemas})";
