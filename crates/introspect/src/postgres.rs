//! PostgreSQL introspection, for database-per-tenant (schema `public`) and
//! schema-per-tenant (many schemas in one database) alike.
//!
//! [`introspect_schemas`] reads any number of schemas with seven catalog
//! queries per chunk of [`SCHEMAS_PER_ROUND_TRIP`] schemas. PostgreSQL's
//! catalogs have no index on the namespace column, so a per-schema query
//! would scan `pg_class`/`pg_attribute` once per tenant; a batch scans them
//! once per chunk.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::{ConnectOptions, Connection, Row};
use tenantry_model::naming::postgres as naming;
use tenantry_model::normalize::{collapse_whitespace, strip_schema_qualifier};
use tenantry_model::{
    CheckConstraint, Column, Deferrable, EnumType, ForeignKey, GeneratedColumn, Identity, Index,
    IndexKey, ObjectName, PrimaryKey, ReferentialAction, SchemaSnapshot, Sequence, Table,
    TableKind, UniqueConstraint, View,
};

use crate::{describe, with_query_timeout, ConnectionUrl, Engine, IntrospectError, Timeouts};

/// How many schemas one batch of catalog queries covers.
pub const SCHEMAS_PER_ROUND_TRIP: usize = 500;

/// Builds connect options from a URL. The options print the password in
/// `Debug`: never log them.
pub fn connect_options(
    url: &ConnectionUrl,
    timeouts: Timeouts,
) -> Result<PgConnectOptions, IntrospectError> {
    let opts =
        PgConnectOptions::from_str(&url.driver_url()).map_err(|e| IntrospectError::InvalidUrl {
            url: url.redacted().to_owned(),
            reason: url.scrub(&e.to_string()),
        })?;
    let statement_timeout = format!("{}ms", timeouts.query.as_millis());
    Ok(opts
        .application_name("tenantry")
        .options([("statement_timeout", statement_timeout.as_str())])
        .disable_statement_logging())
}

/// Opens one connection, bounded by the connect timeout.
pub async fn connect(
    url: &ConnectionUrl,
    timeouts: Timeouts,
) -> Result<PgConnection, IntrospectError> {
    let opts = connect_options(url, timeouts)?;
    crate::connect_within(url, timeouts, opts.connect(), connect_error).await
}

/// Maps a connect failure to the error a user can act on.
pub fn connect_error(url: &ConnectionUrl, e: &sqlx::Error) -> IntrospectError {
    let server = url.server_label();
    let reason = describe(url, e);
    match e.as_database_error().and_then(|d| d.code()).as_deref() {
        Some("28P01") | Some("28000") => IntrospectError::Authentication { server, reason },
        Some("3D000") => IntrospectError::DatabaseNotFound {
            server,
            database: url.database().unwrap_or_default(),
        },
        _ => IntrospectError::Connect { server, reason },
    }
}

pub async fn close(conn: PgConnection) {
    // A failed goodbye only means the server already went away.
    let _ = conn.close().await;
}

/// Introspects one schema; a missing schema is [`IntrospectError::SchemaNotFound`].
pub async fn introspect_one(
    conn: &mut PgConnection,
    url: &ConnectionUrl,
    schema: &str,
    timeouts: Timeouts,
) -> Result<SchemaSnapshot, IntrospectError> {
    let server = url.server_label();
    let schemas = [schema.to_owned()];
    let mut found = with_query_timeout(&server, timeouts, async {
        introspect_schemas(conn, &schemas)
            .await
            .map_err(|e| catalog_error(url, &e))
    })
    .await?;
    found
        .remove(schema)
        .ok_or_else(|| IntrospectError::SchemaNotFound {
            server,
            schema: schema.to_owned(),
        })
}

/// Maps a catalog query failure, scrubbed.
pub fn catalog_error(url: &ConnectionUrl, e: &sqlx::Error) -> IntrospectError {
    if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("57014") {
        return IntrospectError::QueryTimeout {
            server: url.server_label(),
            seconds: 0,
        };
    }
    IntrospectError::Catalog {
        server: url.server_label(),
        reason: describe(url, e),
    }
}

/// Introspects many schemas of one database. Schemas that do not exist are
/// absent from the result.
pub async fn introspect_schemas(
    conn: &mut PgConnection,
    schemas: &[String],
) -> Result<BTreeMap<String, SchemaSnapshot>, sqlx::Error> {
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int4")
        .fetch_one(&mut *conn)
        .await?;
    let mut out = BTreeMap::new();
    for chunk in schemas.chunks(SCHEMAS_PER_ROUND_TRIP) {
        read_chunk(conn, chunk, version, &mut out).await?;
    }
    Ok(out)
}

/// A digest per schema of the catalog rows that make it up (the `xmin` of
/// each row in pg_class, pg_attribute, pg_attrdef, pg_constraint, pg_index,
/// pg_type, pg_enum, pg_sequence and pg_rewrite): the row count and the sum
/// of a 64-bit hash of each (oid, xmin) — order-free, so nothing is sorted. Any DDL inside the schema
/// writes one of these rows and changes the digest; ANALYZE and VACUUM update
/// in place and do not. Changes made only outside the schema (a referenced
/// type renamed elsewhere) are not seen: a full scan reads everything.
/// Schemas that do not exist are absent from the result.
pub async fn catalog_fingerprints(
    conn: &mut PgConnection,
    schemas: &[String],
) -> Result<HashMap<String, String>, sqlx::Error> {
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int4")
        .fetch_one(&mut *conn)
        .await?;
    // hashtextextended arrived in PostgreSQL 11; older servers sort and md5.
    let sql = if version >= 110_000 {
        FINGERPRINT_SQL.to_owned()
    } else {
        FINGERPRINT_SQL.replace(
            "count(p.item)::text || '.' || COALESCE(sum(hashtextextended(p.item, 0)::numeric), 0)::text",
            "md5(COALESCE(string_agg(p.item, ',' ORDER BY p.item), ''))",
        )
    };
    let rows: Vec<(String, String)> = sqlx::query_as(&sql)
        .bind(schemas)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(schema, digest)| (schema, format!("pgx2:{digest}")))
        .collect())
}

const FINGERPRINT_SQL: &str = "
WITH ns AS (SELECT oid, nspname FROM pg_namespace WHERE nspname = ANY($1)),
rels AS (SELECT c.oid, c.relnamespace, c.xmin FROM pg_class c JOIN ns ON ns.oid = c.relnamespace),
parts AS (
    SELECT relnamespace AS ns, 'c' || oid || ':' || xmin AS item FROM rels
    UNION ALL SELECT r.relnamespace, 'a' || a.attrelid || '.' || a.attnum || ':' || a.xmin
      FROM pg_attribute a JOIN rels r ON r.oid = a.attrelid WHERE a.attnum > 0
    UNION ALL SELECT r.relnamespace, 'd' || d.oid || ':' || d.xmin FROM pg_attrdef d JOIN rels r ON r.oid = d.adrelid
    UNION ALL SELECT con.connamespace, 'k' || con.oid || ':' || con.xmin
      FROM pg_constraint con JOIN ns ON ns.oid = con.connamespace
    UNION ALL SELECT r.relnamespace, 'i' || i.indexrelid || ':' || i.xmin FROM pg_index i JOIN rels r ON r.oid = i.indrelid
    UNION ALL SELECT t.typnamespace, 't' || t.oid || ':' || t.xmin FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
    UNION ALL SELECT t.typnamespace, 'e' || e.oid || ':' || e.xmin
      FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN ns ON ns.oid = t.typnamespace
    UNION ALL SELECT r.relnamespace, 's' || q.seqrelid || ':' || q.xmin FROM pg_sequence q JOIN rels r ON r.oid = q.seqrelid
    UNION ALL SELECT r.relnamespace, 'r' || w.oid || ':' || w.xmin FROM pg_rewrite w JOIN rels r ON r.oid = w.ev_class
)
SELECT ns.nspname::text,
       count(p.item)::text || '.' || COALESCE(sum(hashtextextended(p.item, 0)::numeric), 0)::text
  FROM ns LEFT JOIN parts p ON p.ns = ns.oid
 GROUP BY ns.nspname";

/// Where a table lives while its snapshot is being assembled.
struct TableSlot {
    schema: String,
    index: usize,
}

/// Column names and collations by (table oid, attribute number).
#[derive(Default)]
struct Attributes {
    names: HashMap<(i64, i16), String>,
    collations: HashMap<(i64, i16), i64>,
}

impl Attributes {
    fn names_of(&self, relid: i64, attnums: &[i16]) -> Vec<String> {
        attnums
            .iter()
            .map(|n| {
                self.names
                    .get(&(relid, *n))
                    .cloned()
                    .unwrap_or_else(|| format!("#{n}"))
            })
            .collect()
    }
}

/// Names of non-default operator classes and of collations, by oid.
struct IndexCatalogs {
    opclasses: HashMap<i64, String>,
    collations: HashMap<i64, String>,
}

impl IndexCatalogs {
    async fn read(conn: &mut PgConnection) -> Result<Self, sqlx::Error> {
        let opclasses: Vec<(i64, String)> =
            sqlx::query_as("SELECT oid::int8, opcname::text FROM pg_opclass WHERE NOT opcdefault")
                .fetch_all(&mut *conn)
                .await?;
        let collations: Vec<(i64, String)> =
            sqlx::query_as("SELECT oid::int8, collname::text FROM pg_collation")
                .fetch_all(&mut *conn)
                .await?;
        Ok(Self {
            opclasses: opclasses.into_iter().collect(),
            collations: collations.into_iter().collect(),
        })
    }
}

/// The default collation's oid (`DEFAULT_COLLATION_OID`).
const DEFAULT_COLLATION: i64 = 100;

async fn read_chunk(
    conn: &mut PgConnection,
    schemas: &[String],
    version: i32,
    out: &mut BTreeMap<String, SchemaSnapshot>,
) -> Result<(), sqlx::Error> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1)")
            .bind(schemas)
            .fetch_all(&mut *conn)
            .await?;
    let mut snaps: HashMap<String, SchemaSnapshot> = names
        .into_iter()
        .map(|n| (n, SchemaSnapshot::new(Engine::Postgres)))
        .collect();
    if snaps.is_empty() {
        return Ok(());
    }
    let mut tables: HashMap<i64, TableSlot> = HashMap::new();

    for row in sqlx::query(RELATIONS_SQL)
        .bind(schemas)
        .fetch_all(&mut *conn)
        .await?
    {
        let schema: String = row.try_get("nspname")?;
        let Some(snap) = snaps.get_mut(&schema) else {
            continue;
        };
        let oid: i64 = row.try_get("oid")?;
        let name: String = row.try_get("relname")?;
        let relkind: String = row.try_get("relkind")?;
        let reloptions: Option<Vec<String>> = row.try_get("reloptions")?;
        let mut options: Vec<String> = reloptions.unwrap_or_default();
        match relkind.as_str() {
            "r" | "p" => {
                let mut t = Table::new(name);
                if relkind == "p" {
                    t.kind = TableKind::Partitioned;
                }
                if row.try_get::<String, _>("persistence")? == "u" {
                    options.push("persistence=unlogged".into());
                }
                if let Some(key) = row.try_get::<Option<String>, _>("partition_key")? {
                    options.push(format!("partition_by={}", strip(&key, &schema)));
                }
                if let Some(bound) = row.try_get::<Option<String>, _>("partition_of")? {
                    options.push(format!("partition_of={}", strip(&bound, &schema)));
                }
                t.options = options;
                tables.insert(
                    oid,
                    TableSlot {
                        schema: schema.clone(),
                        index: snap.tables.len(),
                    },
                );
                snap.tables.push(t);
            }
            "v" | "m" => {
                let def: Option<String> = row.try_get("viewdef")?;
                snap.views.push(View {
                    name,
                    materialized: relkind == "m",
                    definition: strip(&def.unwrap_or_default(), &schema),
                    options,
                });
            }
            _ => {}
        }
    }

    // Column names by (table, attnum): constraints and indexes come back as
    // attribute numbers and are resolved here, which is far cheaper than
    // resolving them per row in the catalog query.
    let mut attrs = Attributes::default();
    for row in sqlx::query(COLUMNS_SQL)
        .bind(schemas)
        .fetch_all(&mut *conn)
        .await?
    {
        let relid: i64 = row.try_get("relid")?;
        let attnum: i16 = row.try_get("attnum")?;
        attrs.names.insert((relid, attnum), row.try_get("attname")?);
        attrs
            .collations
            .insert((relid, attnum), row.try_get("collation_oid")?);
        let Some((table, schema)) = slot(&mut snaps, &tables, &row)? else {
            continue;
        };
        table.columns.push(column_from_row(&row, &schema)?);
    }

    let constraints_sql = CONSTRAINTS_SQL.replace(
        "{nulls_not_distinct}",
        if version >= 150_000 {
            "COALESCE(ix.indnullsnotdistinct, false)"
        } else {
            "false"
        },
    );
    let constraints = sqlx::query(&constraints_sql)
        .bind(schemas)
        .fetch_all(&mut *conn)
        .await?;
    // Foreign keys to tables outside this batch: fetch their column names.
    let mut outside: Vec<i64> = Vec::new();
    for row in &constraints {
        let target: Option<i64> = row.try_get("confrelid")?;
        if let Some(t) = target.filter(|t| *t != 0 && !tables.contains_key(t)) {
            outside.push(t);
        }
    }
    outside.sort_unstable();
    outside.dedup();
    if !outside.is_empty() {
        let rows: Vec<(i64, i16, String)> = sqlx::query_as(
            "SELECT attrelid::int8, attnum, attname::text FROM pg_attribute
              WHERE attrelid = ANY($1) AND attnum > 0 AND NOT attisdropped",
        )
        .bind(&outside)
        .fetch_all(&mut *conn)
        .await?;
        for (relid, attnum, name) in rows {
            attrs.names.insert((relid, attnum), name);
        }
    }
    for row in &constraints {
        let Some((table, schema)) = slot(&mut snaps, &tables, row)? else {
            continue;
        };
        add_constraint(table, &schema, row, &attrs)?;
    }

    let catalogs = IndexCatalogs::read(conn).await?;
    for row in sqlx::query(INDEXES_SQL)
        .bind(schemas)
        .fetch_all(&mut *conn)
        .await?
    {
        let Some((table, schema)) = slot(&mut snaps, &tables, &row)? else {
            continue;
        };
        let index = index_from_row(&table.name, &schema, &row, &attrs, &catalogs)?;
        table.indexes.push(index);
    }

    for row in sqlx::query(ENUMS_SQL)
        .bind(schemas)
        .fetch_all(&mut *conn)
        .await?
    {
        let schema: String = row.try_get("nspname")?;
        if let Some(snap) = snaps.get_mut(&schema) {
            snap.enums.push(EnumType {
                name: row.try_get("typname")?,
                labels: row.try_get("labels")?,
            });
        }
    }

    for row in sqlx::query(SEQUENCES_SQL)
        .bind(schemas)
        .fetch_all(&mut *conn)
        .await?
    {
        let schema: String = row.try_get("nspname")?;
        if let Some(snap) = snaps.get_mut(&schema) {
            snap.sequences.push(Sequence {
                name: row.try_get("relname")?,
                data_type: row.try_get("data_type")?,
                start: row.try_get("seqstart")?,
                increment: row.try_get("seqincrement")?,
                min_value: row.try_get("seqmin")?,
                max_value: row.try_get("seqmax")?,
                cache: row.try_get("seqcache")?,
                cycle: row.try_get("seqcycle")?,
                owned_by: row.try_get("owned_by")?,
            });
        }
    }

    for (name, mut snap) in snaps {
        snap.canonicalize();
        out.insert(name, snap);
    }
    Ok(())
}

/// The table a catalog row belongs to, and its schema name.
fn slot<'a>(
    snaps: &'a mut HashMap<String, SchemaSnapshot>,
    tables: &HashMap<i64, TableSlot>,
    row: &PgRow,
) -> Result<Option<(&'a mut Table, String)>, sqlx::Error> {
    let relid: i64 = row.try_get("relid")?;
    let Some(slot) = tables.get(&relid) else {
        return Ok(None);
    };
    Ok(snaps
        .get_mut(&slot.schema)
        .and_then(|s| s.tables.get_mut(slot.index))
        .map(|t| (t, slot.schema.clone())))
}

fn strip(sql: &str, schema: &str) -> String {
    collapse_whitespace(&strip_schema_qualifier(sql, schema))
}

fn column_from_row(row: &PgRow, schema: &str) -> Result<Column, sqlx::Error> {
    let attnum: i16 = row.try_get("attnum")?;
    let mut c = Column::new(
        row.try_get::<String, _>("attname")?,
        u32::try_from(attnum).unwrap_or(0),
        strip(&row.try_get::<String, _>("data_type")?, schema),
    );
    c.nullable = !row.try_get::<bool, _>("attnotnull")?;
    let default: Option<String> = row.try_get("default_expr")?;
    let generated: String = row.try_get("attgenerated")?;
    if generated == "s" {
        c.generated = default.map(|d| GeneratedColumn {
            expression: strip(&d, schema),
            stored: true,
        });
    } else {
        c.default = default.map(|d| strip(&d, schema));
    }
    c.identity = match row.try_get::<String, _>("attidentity")?.as_str() {
        "a" => Some(Identity::Always),
        "d" => Some(Identity::ByDefault),
        _ => None,
    };
    c.collation = row.try_get("collation")?;
    Ok(c)
}

fn action(code: &str) -> ReferentialAction {
    ReferentialAction::parse(code).unwrap_or(ReferentialAction::NoAction)
}

fn add_constraint(
    table: &mut Table,
    schema: &str,
    row: &PgRow,
    attrs: &Attributes,
) -> Result<(), sqlx::Error> {
    let name: String = row.try_get("conname")?;
    let contype: String = row.try_get("contype")?;
    let relid: i64 = row.try_get("relid")?;
    let conkey: Option<Vec<i16>> = row.try_get("conkey")?;
    let columns = attrs.names_of(relid, &conkey.unwrap_or_default());
    let addition = naming::column_addition(columns.iter().map(|c| Some(c.as_str())));
    match contype.as_str() {
        "p" => {
            let generated = naming::is_generated(&name, &table.name, None, "pkey");
            table.primary_key = Some(PrimaryKey {
                name: ObjectName::new(name, generated),
                columns,
            });
        }
        "u" => {
            let generated = naming::is_generated(&name, &table.name, Some(&addition), "key");
            table.uniques.push(UniqueConstraint {
                name: ObjectName::new(name, generated),
                columns,
                nulls_not_distinct: row.try_get("nulls_not_distinct")?,
            });
        }
        "f" => {
            let generated = naming::is_generated(&name, &table.name, Some(&addition), "fkey");
            let target_schema: Option<String> = row.try_get("target_schema")?;
            let deferrable = match (
                row.try_get::<bool, _>("condeferrable")?,
                row.try_get::<bool, _>("condeferred")?,
            ) {
                (false, _) => Deferrable::NotDeferrable,
                (true, false) => Deferrable::InitiallyImmediate,
                (true, true) => Deferrable::InitiallyDeferred,
            };
            table.foreign_keys.push(ForeignKey {
                name: ObjectName::new(name, generated),
                columns,
                target_schema: target_schema.filter(|s| s != schema),
                target_table: row
                    .try_get::<Option<String>, _>("target_table")?
                    .unwrap_or_default(),
                target_columns: attrs.names_of(
                    row.try_get::<Option<i64>, _>("confrelid")?.unwrap_or(0),
                    &row.try_get::<Option<Vec<i16>>, _>("confkey")?
                        .unwrap_or_default(),
                ),
                on_update: action(&row.try_get::<String, _>("confupdtype")?),
                on_delete: action(&row.try_get::<String, _>("confdeltype")?),
                match_full: row.try_get::<String, _>("confmatchtype")? == "f",
                deferrable,
            });
        }
        "c" | "x" => {
            let (name2, label) = if contype == "c" {
                // A CHECK over exactly one column is named after it.
                let single = (columns.len() == 1).then(|| columns[0].clone());
                (single, "check")
            } else {
                (Some(addition), "excl")
            };
            let generated = naming::is_generated(&name, &table.name, name2.as_deref(), label);
            let def: String = row
                .try_get::<Option<String>, _>("definition")?
                .unwrap_or_default();
            table.checks.push(CheckConstraint {
                name: ObjectName::new(name, generated),
                expression: strip(&def, schema),
            });
        }
        _ => {}
    }
    Ok(())
}

fn expression_label(def: &str) -> String {
    let head: String = def
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
        .collect();
    let rest = &def[head.len()..];
    match head.rsplit('.').next() {
        Some(f) if !f.is_empty() && rest.starts_with('(') => f.to_owned(),
        _ => "expr".to_owned(),
    }
}

fn index_from_row(
    table: &str,
    schema: &str,
    row: &PgRow,
    attrs: &Attributes,
    catalogs: &IndexCatalogs,
) -> Result<Index, sqlx::Error> {
    let relid: i64 = row.try_get("relid")?;
    let name: String = row.try_get("index_name")?;
    let unique: bool = row.try_get("indisunique")?;
    let nkey = usize::try_from(row.try_get::<i32, _>("nkey")?).unwrap_or(0);
    let attnums: Vec<i16> = row.try_get("keys")?;
    let options: Vec<i16> = row.try_get("options")?;
    let defs: Option<Vec<String>> = row.try_get("key_defs")?;
    let opclasses: Vec<i64> = row.try_get("opclasses")?;
    let collations: Vec<i64> = row.try_get("collations")?;

    // A key column is a table column (attnum > 0) or an expression (0),
    // whose text comes from pg_get_indexdef.
    let key_text = |i: usize| -> Option<String> {
        defs.as_ref()
            .and_then(|d| d.get(i))
            .map(|d| strip(d, schema))
    };
    let column_of = |i: usize| -> Option<String> {
        attnums
            .get(i)
            .filter(|n| **n > 0)
            .and_then(|n| attrs.names.get(&(relid, *n)).cloned())
    };
    // PostgreSQL names an expression key after its outermost function
    // (`lower(email)` → `lower`), anything else `expr`.
    let key_names: Vec<Option<String>> = (0..attnums.len())
        .map(|i| {
            column_of(i).or_else(|| {
                Some(
                    key_text(i)
                        .map(|d| expression_label(&d))
                        .unwrap_or_else(|| "expr".into()),
                )
            })
        })
        .collect();
    let addition = naming::column_addition(key_names.iter().map(|c| c.as_deref()));
    let label = if unique { "key" } else { "idx" };
    let generated = naming::is_generated(&name, table, Some(&addition), label);

    let mut keys = Vec::new();
    let mut include = Vec::new();
    for i in 0..attnums.len() {
        let column = column_of(i);
        if i >= nkey {
            include.push(column.or_else(|| key_text(i)).unwrap_or_default());
            continue;
        }
        let mut key = match column {
            Some(c) => IndexKey::column(c),
            None => IndexKey::expression(key_text(i).unwrap_or_else(|| "?".into())),
        };
        let option = options.get(i).copied().unwrap_or(0);
        let desc = option & 1 == 1;
        let nulls_first = option & 2 == 2;
        key.descending = desc;
        let mut opts = Vec::new();
        let collation = collations.get(i).copied().unwrap_or(0);
        let inherited = match attnums.get(i).copied().unwrap_or(0) {
            0 => collation == DEFAULT_COLLATION,
            n => attrs.collations.get(&(relid, n)).copied().unwrap_or(0) == collation,
        };
        if collation != 0 && !inherited {
            if let Some(c) = catalogs.collations.get(&collation) {
                opts.push(format!("collate {c}"));
            }
        }
        if let Some(o) = opclasses.get(i).and_then(|o| catalogs.opclasses.get(o)) {
            opts.push(strip(o, schema));
        }
        // Descending keys sort NULLs first by default, ascending last.
        if nulls_first != desc {
            opts.push(if nulls_first {
                "nulls first".into()
            } else {
                "nulls last".into()
            });
        }
        key.options = opts.join(" ");
        keys.push(key);
    }
    let predicate: Option<String> = row.try_get("predicate")?;
    Ok(Index {
        name: ObjectName::new(name, generated),
        unique,
        method: row.try_get("amname")?,
        keys,
        include,
        predicate: predicate.map(|p| strip(&p, schema)),
    })
}

/// Tables and views; objects that belong to an extension are the
/// extension's, not the template's.
const RELATIONS_SQL: &str =
    "SELECT c.oid::int8 AS oid, n.nspname::text AS nspname, c.relname::text AS relname,
            c.relkind::text AS relkind, c.relpersistence::text AS persistence,
            c.reloptions::text[] AS reloptions,
            CASE WHEN c.relkind IN ('v','m') THEN pg_get_viewdef(c.oid, true) END AS viewdef,
            CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key,
            CASE WHEN c.relispartition THEN
                 (SELECT pc.relname::text FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
                   WHERE i.inhrelid = c.oid LIMIT 1) || ' ' || pg_get_expr(c.relpartbound, c.oid)
            END AS partition_of
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ANY($1) AND c.relkind IN ('r','p','v','m')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d
             WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')";

const COLUMNS_SQL: &str = "
SELECT a.attrelid::int8 AS relid, a.attname::text AS attname, a.attnum AS attnum,
       format_type(a.atttypid, a.atttypmod) AS data_type, a.attnotnull,
       pg_get_expr(ad.adbin, ad.adrelid) AS default_expr,
       a.attidentity::text AS attidentity, a.attgenerated::text AS attgenerated,
       a.attcollation::int8 AS collation_oid,
       CASE WHEN a.attcollation <> t.typcollation THEN co.collname::text END AS collation
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
  LEFT JOIN pg_collation co ON co.oid = a.attcollation
 WHERE n.nspname = ANY($1) AND c.relkind IN ('r','p') AND a.attnum > 0 AND NOT a.attisdropped";

/// Key columns come back as attribute numbers; only CHECK and EXCLUDE
/// constraints are deparsed (the expensive part).
const CONSTRAINTS_SQL: &str = "
SELECT con.conrelid::int8 AS relid, con.conname::text AS conname, con.contype::text AS contype,
       con.conkey AS conkey, con.confrelid::int8 AS confrelid, con.confkey AS confkey,
       fn.nspname::text AS target_schema, fc.relname::text AS target_table,
       con.confupdtype::text AS confupdtype, con.confdeltype::text AS confdeltype,
       con.confmatchtype::text AS confmatchtype, con.condeferrable, con.condeferred,
       CASE WHEN con.contype IN ('c','x') THEN pg_get_constraintdef(con.oid, true) END AS definition,
       {nulls_not_distinct} AS nulls_not_distinct
  FROM pg_constraint con
  JOIN pg_class c ON c.oid = con.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_index ix ON ix.indexrelid = con.conindid
  LEFT JOIN pg_class fc ON fc.oid = con.confrelid
  LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
 WHERE n.nspname = ANY($1) AND con.contype IN ('p','u','f','c','x') AND con.conrelid <> 0";

/// Indexes that do not back a constraint; keys as attribute numbers, only
/// expression indexes deparsed. The int2vector/oidvector columns are 0-based
/// arrays, which go through text to become ordinary 1-based arrays.
const INDEXES_SQL: &str = "
SELECT ix.indrelid::int8 AS relid, ic.relname::text AS index_name, ix.indisunique, am.amname::text AS amname,
       ix.indnkeyatts::int4 AS nkey, string_to_array(ix.indkey::text, ' ')::int2[] AS keys,
       string_to_array(ix.indoption::text, ' ')::int2[] AS options,
       CASE WHEN ix.indexprs IS NOT NULL THEN
            ARRAY(SELECT pg_get_indexdef(ix.indexrelid, k, true) FROM generate_series(1, ix.indnatts) k ORDER BY k)
       END AS key_defs,
       string_to_array(ix.indclass::text, ' ')::int8[] AS opclasses,
       string_to_array(ix.indcollation::text, ' ')::int8[] AS collations,
       pg_get_expr(ix.indpred, ix.indrelid, true) AS predicate
  FROM pg_index ix
  JOIN pg_class ic ON ic.oid = ix.indexrelid
  JOIN pg_class c ON c.oid = ix.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_am am ON am.oid = ic.relam
 WHERE n.nspname = ANY($1) AND c.relkind IN ('r','p')
   AND NOT EXISTS (SELECT 1 FROM pg_constraint con
                    WHERE con.conindid = ix.indexrelid AND con.contype IN ('p','u','x'))";

const ENUMS_SQL: &str = "
SELECT n.nspname::text AS nspname, t.typname::text AS typname,
       ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid
              ORDER BY e.enumsortorder) AS labels
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname = ANY($1) AND t.typtype = 'e'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
        WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')";

const SEQUENCES_SQL: &str = "
SELECT n.nspname::text AS nspname, c.relname::text AS relname,
       format_type(s.seqtypid, NULL) AS data_type,
       s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
       (SELECT tc.relname::text || '.' || a.attname::text
          FROM pg_depend d
          JOIN pg_class tc ON tc.oid = d.refobjid
          JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'a'
         LIMIT 1) AS owned_by
  FROM pg_sequence s
  JOIN pg_class c ON c.oid = s.seqrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = ANY($1)
   AND NOT EXISTS (SELECT 1 FROM pg_depend d
        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('i','e'))";
