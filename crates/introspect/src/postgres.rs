//! PostgreSQL introspection, for database-per-tenant (schema `public`) and
//! schema-per-tenant (many schemas in one database) alike.
//!
//! [`read_schemas`] reads any number of schemas with a handful of catalog
//! queries per chunk of [`SCHEMAS_PER_ROUND_TRIP`] schemas. PostgreSQL's
//! catalogs have no index on the namespace column, so a per-schema query
//! would scan `pg_class` once per tenant; a chunk scans it once, and every
//! other catalog is reached from the tables' oids through its own index.
//! The same rows give each schema's catalog fingerprint, so a full read
//! needs no second pass to know what a later re-check compares with.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use futures_util::TryStreamExt;
use rustc_hash::FxHashMap;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow, PgTypeInfo, PgValueRef};
use sqlx::{ConnectOptions, Connection};
use tenantry_model::naming::postgres as naming;
use tenantry_model::normalize::{collapse_whitespace, postgres_expression};
use tenantry_model::own_schema::{strip_own_schema, TextKind};
use tenantry_model::sync::TenantRoles;
use tenantry_model::{
    CheckConstraint, Column, Deferrable, EnumType, Extension, ForeignKey, GeneratedColumn, Grant,
    Identity, Index, IndexKey, ObjectName, Policy, PrimaryKey, ReferentialAction, Routine,
    SchemaSnapshot, Sequence, Table, TableKind, Trigger, TriggerState, UniqueConstraint, UserType,
    View,
};

use crate::column::NamedColumns;
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
        .options([
            ("statement_timeout", statement_timeout.as_str()),
            // Catalog reads are many short index lookups: compiling them
            // (JIT) or fanning them out to parallel workers costs more than
            // it saves, and a fleet scan already runs its own reads side by
            // side.
            ("jit", "off"),
            ("max_parallel_workers_per_gather", "0"),
        ])
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

/// Opens one connection that only reads the catalog (an introspection, a
/// scan): [`connect`], with the planner told that catalog pages are as good
/// as always in memory, where a random read costs what a sequential one
/// does. At the default cost (4) it reads all of pg_attribute to find a few
/// tables' columns, and a fleet of databases pushes those pages through
/// shared buffers again for every tenant. Migrations and users' own
/// queries keep the server's planner settings.
pub async fn connect_for_catalog(
    url: &ConnectionUrl,
    timeouts: Timeouts,
) -> Result<PgConnection, IntrospectError> {
    let opts = connect_options(url, timeouts)?.options([
        ("random_page_cost", "1.1"),
        ("search_path", CATALOG_SEARCH_PATH),
    ]);
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

/// Who the role rule's placeholders stand for in `schema`, read as `read`
/// saw it: what a sync plan needs to write real role names
/// ([`TenantRoles`]).
pub async fn tenant_roles(
    conn: &mut PgConnection,
    schema: &str,
    read: Option<&SchemaRead>,
) -> Result<TenantRoles, sqlx::Error> {
    let (schema_owner, usual_owner, current_user, database): (String, String, String, String) =
        sqlx::query_as(
            // A schema not there yet (a sync creates it) is the session's.
            "SELECT coalesce(pg_get_userbyid(n.nspowner)::text, current_user::text),
                    coalesce(pg_get_userbyid(coalesce($2::oid, n.nspowner))::text, current_user::text),
                    current_user::text, current_database()::text
               FROM (SELECT 1) one
               LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = $1",
        )
        .bind(schema)
        .bind(read.and_then(|r| r.usual_owner))
        .fetch_one(&mut *conn)
        .await?;
    Ok(TenantRoles {
        schema: schema.to_owned(),
        tenant: if schema == "public" {
            database
        } else {
            schema.to_owned()
        },
        schema_owner,
        usual_owner,
        current_user,
    })
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

/// A schema as one read found it: its snapshot, and the catalog fingerprint
/// of exactly the catalog rows it was built from.
#[derive(Debug, Clone)]
pub struct SchemaRead {
    pub snapshot: SchemaSnapshot,
    pub fingerprint: String,
    /// The role (oid) owning most of the schema's objects, which the
    /// snapshot's owners are relative to; `None` when it has none.
    pub usual_owner: Option<i64>,
}

/// Introspects many schemas of one database. Schemas that do not exist are
/// absent from the result.
pub async fn introspect_schemas(
    conn: &mut PgConnection,
    schemas: &[String],
) -> Result<BTreeMap<String, SchemaSnapshot>, sqlx::Error> {
    Ok(read_schemas(conn, schemas)
        .await?
        .into_iter()
        .map(|(name, read)| (name, read.snapshot))
        .collect())
}

/// Reads many schemas of one database, each with the catalog fingerprint
/// [`catalog_fingerprints`] would report for it at the same moment.
/// Schemas that do not exist are absent from the result.
pub async fn read_schemas(
    conn: &mut PgConnection,
    schemas: &[String],
) -> Result<BTreeMap<String, SchemaRead>, sqlx::Error> {
    let queries = Queries::new(server_version(conn).await?);
    let mut previous = None;
    let mut out = BTreeMap::new();
    let mut read = Ok(());
    for chunk in schemas.chunks(SCHEMAS_PER_ROUND_TRIP) {
        read = match read_chunk(conn, chunk, &queries, &mut out).await {
            // Not a catalog connection: pin the search path (once) and
            // read the chunk again.
            Ok(Read::SearchPath(current)) if previous.is_none() => {
                match pin_search_path(conn).await {
                    Ok(()) => {
                        previous = Some(current);
                        read_chunk(conn, chunk, &queries, &mut out)
                            .await
                            .map(|_| ())
                    }
                    Err(e) => Err(e),
                }
            }
            other => other.map(|_| ()),
        };
        if read.is_err() {
            break;
        }
    }
    if let Some(previous) = previous {
        // After a failure inside a transaction this fails too, and the
        // rollback undoes the setting anyway.
        let restored = sqlx::query("SELECT set_config('search_path', $1, false)")
            .bind(previous)
            .execute(&mut *conn)
            .await;
        if read.is_ok() {
            restored?;
        }
    }
    read.map(|()| out)
}

/// The search path catalog text is deparsed under: `pg_catalog` alone, so
/// the server qualifies every user object it prints, and the tenant's own
/// schema can be told from every other one (see
/// [`tenantry_model::own_schema`]). Under the usual `"$user", public`,
/// `public.tasks` would print as `tasks`, like the tenant's own table.
const CATALOG_SEARCH_PATH: &str = "pg_catalog";

/// Sets [`CATALOG_SEARCH_PATH`] for the session. A [`connect_for_catalog`]
/// connection has it from the start (a scan pays nothing); any other (a
/// migration's, which reads its schema before and after inside its own
/// transaction) gets its own value put back by [`read_schemas`].
async fn pin_search_path(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config('search_path', $1, false)")
        .bind(CATALOG_SEARCH_PATH)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What [`read_chunk`] did.
enum Read {
    Done,
    /// Nothing: the session's search path (this value) is not
    /// [`CATALOG_SEARCH_PATH`].
    SearchPath(String),
}

/// The server's version number (150004 for 15.4): as the server announced
/// it at connect, or asked for when it did not.
async fn server_version(conn: &mut PgConnection) -> Result<i32, sqlx::Error> {
    if let Some(v) = conn
        .server_version_num()
        .and_then(|v| i32::try_from(v).ok())
    {
        return Ok(v);
    }
    sqlx::query_scalar("SELECT current_setting('server_version_num')::int4")
        .fetch_one(&mut *conn)
        .await
}

/// A digest per schema of the catalog rows its snapshot is read from: every
/// relation of the schema (pg_class, and pg_rewrite for views and rules),
/// its tables' and views' columns, defaults, constraints, indexes,
/// triggers and policies (pg_attribute, pg_attrdef, pg_constraint,
/// pg_index and the indexes' pg_class rows, pg_trigger, pg_policy), its
/// types, enum labels and domain checks (pg_type, pg_enum, pg_constraint),
/// its sequences (pg_sequence), routines (pg_proc), comments
/// (pg_description) and its own pg_namespace row: the row count and the
/// sum of a 64-bit hash of each row's key and `xmin`, so it is order-free
/// and nothing is sorted. Any DDL inside the schema writes one of these
/// rows and changes the digest; ANALYZE and VACUUM update in place and do
/// not.
///
/// Objects outside the schema that it names (what its defaults,
/// constraints, indexes, views, triggers, policies or domains call, the
/// tables its views read and its foreign keys reference, the types of its
/// columns, and their schemas) change what its catalog text prints without
/// writing any row inside it. The full read that stored `known`'s value
/// listed them in it; here their rows are read again by oid, one short
/// query for the whole call, and counted with the rest. A schema can only
/// come to name another object through DDL inside it, which moves the
/// digest anyway, so the stored list is the one a full read would find.
///
/// `known` maps each schema to the fingerprint stored by its last read;
/// the result is what a full read would store now, equal to it when
/// nothing changed. [`read_schemas`] computes the same digest from the
/// rows it reads, so a full read stores a fingerprint without a second pass
/// over the catalog. Schemas that do not exist are absent from the result.
pub async fn catalog_fingerprints(
    conn: &mut PgConnection,
    known: &HashMap<String, String>,
) -> Result<HashMap<String, String>, sqlx::Error> {
    let queries = Queries::new(server_version(conn).await?);
    let schemas: Vec<&String> = known.keys().collect();
    let mut digests: Vec<(String, Digest)> = Vec::with_capacity(schemas.len());
    for chunk in schemas.chunks(SCHEMAS_PER_ROUND_TRIP) {
        let rows: Vec<(String, i64, String)> = sqlx::query_as(&queries.fingerprints)
            .bind(chunk)
            .fetch_all(&mut *conn)
            .await?;
        for (schema, count, sum) in rows {
            let mut digest = Digest::default();
            digest.add_counted(u64::try_from(count).unwrap_or(0), sum.parse().unwrap_or(0));
            digests.push((schema, digest));
        }
    }
    let listed: HashMap<&String, Vec<OutsideRef>> = known
        .iter()
        .map(|(schema, stored)| (schema, OutsideRef::listed_in(stored)))
        .filter(|(_, list)| !list.is_empty())
        .collect();
    let mut now: HashMap<OutsideRef, Option<Xmin>> = HashMap::new();
    let asked: BTreeSet<OutsideRef> = listed.values().flatten().copied().collect();
    if !asked.is_empty() {
        let kinds: Vec<String> = asked.iter().map(|o| o.kind.letter().to_string()).collect();
        let oids: Vec<i64> = asked.iter().map(|o| o.oid).collect();
        let rows: Vec<(String, i64, Option<Xmin>)> = sqlx::query_as(&queries.outside_now)
            .bind(&kinds)
            .bind(&oids)
            .fetch_all(&mut *conn)
            .await?;
        for (kind, oid, xmin) in rows {
            if let Some(kind) = kind.chars().next().and_then(OutsideKind::from_letter) {
                now.insert(OutsideRef { kind, oid }, xmin);
            }
        }
    }
    Ok(digests
        .into_iter()
        .map(|(schema, mut digest)| {
            for object in listed.get(&schema).into_iter().flatten() {
                let xmin = now.get(object).copied().flatten();
                digest.add_outside(*object, xmin);
            }
            let fingerprint = digest.fingerprint();
            (schema, fingerprint)
        })
        .collect())
}

/// The prefix of a catalog fingerprint. What it covers or how it is
/// computed changes the prefix, so a value stored by an older version never
/// matches (the schema is simply read again).
const FINGERPRINT_FORMAT: &str = "pgx9";

/// The catalogs whose rows a fingerprint covers; each seeds its rows'
/// hashes with its own number.
#[derive(Clone, Copy)]
enum Catalog {
    Class = 1,
    Attribute = 2,
    AttrDef = 3,
    Constraint = 4,
    Index = 5,
    Type = 6,
    Enum = 7,
    Sequence = 8,
    Rewrite = 9,
    /// An object outside the schema that one of its objects refers to.
    Outside = 10,
    /// The schema of such an object.
    OutsideNamespace = 11,
    /// A routine (function, procedure, aggregate) of the schema.
    Proc = 12,
    Trigger = 13,
    Policy = 14,
    /// The schema's own row (its privileges).
    Namespace = 15,
    /// A comment on a relation, a column or a routine.
    Description = 16,
    /// An extension installed into the schema.
    Extension = 17,
}

/// A row version's `xmin` (PostgreSQL's `xid`), read as text (`xmin::text`).
/// sqlx has no `xid` type: a result column of that type makes it look the
/// type up on the server, one more statement and round trip on every new
/// connection, which a fleet of databases pays once per tenant.
#[derive(Clone, Copy)]
struct Xmin(u32);

impl sqlx::Type<sqlx::Postgres> for Xmin {
    fn type_info() -> PgTypeInfo {
        <&str as sqlx::Type<sqlx::Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for Xmin {
    fn decode(value: PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as sqlx::Decode<'r, sqlx::Postgres>>::decode(value)?;
        Ok(Self(text.parse()?))
    }
}

/// A catalog row's fingerprint item, computed here exactly as the
/// fingerprint query computes it on the server:
/// `hashint8extended(key, (catalog << 32) + xmin)`. Hashing here spares
/// the server an integer conversion and a function call per catalog row.
fn item(catalog: Catalog, key: i64, xmin: u32) -> i64 {
    let seed = ((catalog as i64) << 32) + i64::from(xmin);
    hashint8extended(key, seed)
}

/// PostgreSQL's `hashint8extended`: the 64-bit key folded to 32 bits as
/// `hashint8` folds it, then Bob Jenkins' lookup3 hash of one 32-bit word
/// with a 64-bit seed (`hash_bytes_uint32_extended`).
fn hashint8extended(value: i64, seed: i64) -> i64 {
    let bits = value as u64;
    let high = (bits >> 32) as u32;
    let mut low = bits as u32;
    low ^= if value >= 0 { high } else { !high };
    hash_uint32_extended(low, seed as u64) as i64
}

fn hash_uint32_extended(k: u32, seed: u64) -> u64 {
    fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
        *a = a.wrapping_sub(*c);
        *a ^= c.rotate_left(4);
        *c = c.wrapping_add(*b);
        *b = b.wrapping_sub(*a);
        *b ^= a.rotate_left(6);
        *a = a.wrapping_add(*c);
        *c = c.wrapping_sub(*b);
        *c ^= b.rotate_left(8);
        *b = b.wrapping_add(*a);
        *a = a.wrapping_sub(*c);
        *a ^= c.rotate_left(16);
        *c = c.wrapping_add(*b);
        *b = b.wrapping_sub(*a);
        *b ^= a.rotate_left(19);
        *a = a.wrapping_add(*c);
        *c = c.wrapping_sub(*b);
        *c ^= b.rotate_left(4);
        *b = b.wrapping_add(*a);
    }
    fn finish(a: &mut u32, b: &mut u32, c: &mut u32) {
        *c ^= *b;
        *c = c.wrapping_sub(b.rotate_left(14));
        *a ^= *c;
        *a = a.wrapping_sub(c.rotate_left(11));
        *b ^= *a;
        *b = b.wrapping_sub(a.rotate_left(25));
        *c ^= *b;
        *c = c.wrapping_sub(b.rotate_left(16));
        *a ^= *c;
        *a = a.wrapping_sub(c.rotate_left(4));
        *b ^= *a;
        *b = b.wrapping_sub(a.rotate_left(14));
        *c ^= *b;
        *c = c.wrapping_sub(b.rotate_left(24));
    }
    let init = 0x9e37_79b9_u32.wrapping_add(4).wrapping_add(3_923_095);
    let (mut a, mut b, mut c) = (init, init, init);
    if seed != 0 {
        a = a.wrapping_add((seed >> 32) as u32);
        b = b.wrapping_add(seed as u32);
        mix(&mut a, &mut b, &mut c);
    }
    a = a.wrapping_add(k);
    finish(&mut a, &mut b, &mut c);
    (u64::from(b) << 32) | u64::from(c)
}

/// The running digest of one schema's catalog rows, as the server's
/// `count(h)` and `sum(h)` compute it, and the objects outside the schema
/// that it names, counted by their rows' `xmin` too.
#[derive(Default, Clone)]
struct Digest {
    count: u64,
    sum: i128,
    outside: BTreeSet<OutsideRef>,
}

impl Digest {
    /// Counts a catalog row by its key and `xmin` (absent on the null side
    /// of an outer join).
    fn add_row(&mut self, catalog: Catalog, key: i64, xmin: Option<Xmin>) {
        self.add(xmin.map(|x| item(catalog, key, x.0)));
    }

    fn add(&mut self, item: Option<i64>) {
        if let Some(h) = item {
            self.count += 1;
            self.sum += i128::from(h);
        }
    }

    /// Adds items the server counted and summed.
    fn add_counted(&mut self, count: u64, sum: i128) {
        self.count += count;
        self.sum += sum;
    }

    /// Counts an object outside the schema that the schema names, by its
    /// row's `xmin` (absent when it no longer exists), and lists it.
    /// Each object once, as the re-check reads each listed object once.
    fn add_outside(&mut self, object: OutsideRef, xmin: Option<Xmin>) {
        if self.outside.insert(object) {
            self.add_row(object.catalog(), object.oid, xmin);
        }
    }

    /// A type in another schema that the schema names (a domain's base
    /// type, a composite type's attribute type), then the schema it lives
    /// in: renaming either changes how the type prints.
    fn add_outside_type(
        &mut self,
        (oid, xmin): (i64, Option<Xmin>),
        (ns, ns_xmin): (i64, Option<Xmin>),
    ) {
        self.add_outside(
            OutsideRef {
                kind: OutsideKind::Type,
                oid,
            },
            xmin,
        );
        let namespace = OutsideRef {
            kind: OutsideKind::Namespace,
            oid: ns,
        };
        self.add_outside(namespace, ns_xmin);
    }

    /// `pgx…:<count>.<sum>`, then `:` and the outside objects when there
    /// are any: a re-check reads their rows again from the stored value.
    fn fingerprint(&self) -> String {
        let mut text = format!("{FINGERPRINT_FORMAT}:{}.{}", self.count, self.sum);
        for (i, object) in self.outside.iter().enumerate() {
            text.push(if i == 0 { ':' } else { ',' });
            text.push(object.kind.letter());
            text.push_str(&object.oid.to_string());
        }
        text
    }
}

/// The catalog of an object outside a schema that the schema names: what
/// its default, constraint, index, view, trigger, policy or domain calls
/// (a user function, collation, operator or operator class), what its
/// views read and its foreign keys reference (a table), what its columns
/// are of (a type), and the schema each of them lives in.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
enum OutsideKind {
    Class,
    Type,
    Proc,
    Collation,
    Operator,
    OpClass,
    Namespace,
}

impl OutsideKind {
    const ALL: [Self; 7] = [
        Self::Class,
        Self::Type,
        Self::Proc,
        Self::Collation,
        Self::Operator,
        Self::OpClass,
        Self::Namespace,
    ];

    /// The letter that names the kind in the queries and in a stored
    /// fingerprint.
    fn letter(self) -> char {
        match self {
            Self::Class => 'c',
            Self::Type => 't',
            Self::Proc => 'f',
            Self::Collation => 'l',
            Self::Operator => 'o',
            Self::OpClass => 'k',
            Self::Namespace => 'n',
        }
    }

    fn from_letter(letter: char) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.letter() == letter)
    }
}

/// An object outside a schema that the schema names.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
struct OutsideRef {
    kind: OutsideKind,
    oid: i64,
}

impl OutsideRef {
    fn catalog(self) -> Catalog {
        match self.kind {
            OutsideKind::Namespace => Catalog::OutsideNamespace,
            _ => Catalog::Outside,
        }
    }

    /// The objects a stored fingerprint of the current format lists;
    /// none for another format (which never matches anyway) or a value
    /// that does not parse.
    fn listed_in(fingerprint: &str) -> Vec<Self> {
        let Some(rest) = fingerprint
            .strip_prefix(FINGERPRINT_FORMAT)
            .and_then(|r| r.strip_prefix(':'))
        else {
            return Vec::new();
        };
        let Some((_, list)) = rest.split_once(':') else {
            return Vec::new();
        };
        list.split(',')
            .map_while(|item| {
                let mut chars = item.chars();
                let kind = OutsideKind::from_letter(chars.next()?)?;
                let oid = chars.as_str().parse().ok()?;
                Some(Self { kind, oid })
            })
            .collect()
    }
}

/// The schemas in `$1` that exist, as a materialized CTE `ns`.
const NAMESPACES_CTE: &str =
    "ns AS MATERIALIZED (SELECT n.oid, n.nspname, n.nspacl, n.nspowner, n.xmin
                            FROM pg_namespace n WHERE n.nspname = ANY($1))";

/// `oid` is no member of an extension, as a `catalog` (`pg_class`,
/// `pg_type`) object. The extensions' members are read once (an
/// uncorrelated sublink) through pg_depend's index on the referenced
/// object, not probed per row.
fn not_in_extension(oid: &str, catalog: &str) -> String {
    format!(
        "{oid} <> ALL(ARRAY(SELECT d.objid FROM pg_depend d
            WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
              AND d.classid = '{catalog}'::regclass))"
    )
}

/// What the privileges of `acl` (an `aclitem[]`, NULL for the default)
/// are read from, as `text[]`: the name of `owner`, the ACL's items, an
/// empty string, and the items of `baseline` (what the object has by
/// default); NULL when `acl` is NULL, as it is for every object whose
/// privileges were never changed. [`crate::pg_acl`] tells them apart.
fn acl_read(acl: &str, baseline: &str, owner: &str) -> String {
    format!(
        "CASE WHEN {acl} IS NOT NULL THEN
             ARRAY[pg_get_userbyid({owner})::text] || {acl}::text[] || ''::text || ({baseline})::text[]
         END"
    )
}

/// The types of the schemas in `$1` a column can name (not arrays), as a
/// materialized CTE `ty`, so the planner joins first and runs the
/// extension check only on what is left.
const TYPES_CTE: &str = "ty AS MATERIALIZED (
    SELECT t.oid, t.xmin, t.typname, t.typtype, t.typnamespace, t.typacl, t.typowner, n.nspname,
           t.typbasetype, t.typtypmod, t.typnotnull, t.typcollation, t.typrelid,
           CASE WHEN t.typtype = 'd' THEN t.typdefaultbin END AS typdefaultbin,
           CASE WHEN t.typtype = 'r' THEN
                (SELECT r.rngsubtype FROM pg_range r WHERE r.rngtypid = t.oid) END AS rngsubtype
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspname = ANY($1) AND t.typcategory <> 'A')";

const CONSTRAINT_TYPES: &str = "con.contype IN ('p','u','f','c','x')";

/// `FirstNormalObjectId`: every object below it was made by initdb (the
/// built-in functions, collations, operators), none of them in a tenant's
/// schema; a range from here reaches the user's own through the catalog's
/// oid index, where a filter on the namespace would read all of pg_proc.
const FIRST_USER_OID: u32 = 16384;

/// Whether the database has any user function, collation, operator or
/// operator class (the `callee` rows of the outside query): four index
/// range probes above `FirstNormalObjectId`. Without any, the objects
/// outside a schema are only those it names (`named_outside`), and a read
/// need not plan the rest (`outside_named`).
const HAS_CALLEES: &str = "SELECT EXISTS (SELECT FROM pg_proc p WHERE p.oid >= 16384)
    OR EXISTS (SELECT FROM pg_collation co WHERE co.oid >= 16384)
    OR EXISTS (SELECT FROM pg_operator op WHERE op.oid >= 16384)
    OR EXISTS (SELECT FROM pg_opclass opc WHERE opc.oid >= 16384)";

/// Whether the database has a comment on any user relation (a table, a
/// view, a sequence, an index, or their columns), and on any user type:
/// a range of pg_description's index above `FirstNormalObjectId`, so a
/// read need not probe it once per relation, index and type when, as in
/// most fleets, there is none. Each is asked once per read (an uncorrelated
/// subquery of the relations query's `nsx`).
const HAS_RELATION_COMMENTS: &str = "SELECT EXISTS (SELECT FROM pg_description d
    WHERE d.classoid = 'pg_class'::regclass AND d.objoid >= 16384)";
const HAS_TYPE_COMMENTS: &str = "SELECT EXISTS (SELECT FROM pg_description d
    WHERE d.classoid = 'pg_type'::regclass AND d.objoid >= 16384)";

/// User triggers: not the internal ones that implement foreign keys.
const TRIGGER_FILTER: &str = "NOT tg.tgisinternal";

/// The catalog queries for one server version. Each introspection query
/// returns, beside what the snapshot needs, what the fingerprint item of
/// every catalog row it reads is computed from: the row's key (`k`, or the
/// relation's `oid`) and `xmin` (`x…` columns), hashed by [`item`]; or, for
/// the few view rules and enum labels, the item itself (`h…` columns).
/// `fingerprints` computes and sums the same items over the same rows on
/// the server.
struct Queries {
    relations: String,
    columns: String,
    defaults: String,
    constraints: String,
    indexes: Commented,
    types: Commented,
    triggers: String,
    policies: String,
    routines: String,
    composites: String,
    outside: String,
    outside_named: String,
    outside_now: String,
    fingerprints: String,
}

/// A query in two versions: one that reads the objects' comments, and one
/// for a database that has none (see [`HAS_RELATION_COMMENTS`]), which
/// does not look for them object by object.
struct Commented {
    with: String,
    without: String,
}

impl Commented {
    fn new(query: impl Fn(bool) -> String) -> Self {
        Self {
            with: query(true),
            without: query(false),
        }
    }

    fn get(&self, comments: bool) -> &str {
        if comments {
            &self.with
        } else {
            &self.without
        }
    }
}

impl Queries {
    fn new(version: i32) -> Self {
        let item = |catalog: Catalog, key: &str, alias: &str| -> String {
            format!(
                "hashint8extended(({key})::int8, ({}::int8 << 32) + {alias}.xmin::text::int8)",
                catalog as u8
            )
        };
        let class = |alias: &str| item(Catalog::Class, &format!("{alias}.oid"), alias);
        let rule = format!(
            "CASE WHEN c.relkind IN ('v','m') THEN
                 (SELECT {} FROM pg_rewrite w WHERE w.ev_class = c.oid AND w.rulename = '_RETURN')
             END",
            item(Catalog::Rewrite, "w.oid", "w")
        );
        let attribute = item(
            Catalog::Attribute,
            "(a.attrelid::int8 << 16) + a.attnum",
            "a",
        );
        let attrdef = item(Catalog::AttrDef, "d.oid", "d");
        let constraint = item(Catalog::Constraint, "con.oid", "con");
        let index = item(Catalog::Index, "ix.indexrelid", "ix");
        let typ = item(Catalog::Type, "t.oid", "t");
        let label = item(Catalog::Enum, "e.oid", "e");
        let sequence = item(Catalog::Sequence, "s.seqrelid", "s");
        let trigger = item(Catalog::Trigger, "tg.oid", "tg");
        let policy = item(Catalog::Policy, "p.oid", "p");
        let proc = item(Catalog::Proc, "p.oid", "p");
        let nulls_not_distinct = if version >= 150_000 {
            "ix.indnullsnotdistinct"
        } else {
            "false"
        };
        let class_c = class("c");
        let class_ic = class("ic");
        // Relations a schema's snapshot is built from: tables, partitioned
        // tables, views, materialized views and sequences that no extension
        // owns; and types (on `ty t`) that no extension owns.
        let relation_filter = format!(
            "c.relkind IN ('r','p','v','m','S') AND {}",
            not_in_extension("c.oid", "pg_class")
        );
        let type_filter = not_in_extension("t.oid", "pg_type");

        // A table's rewrite rules (other than a view's `_RETURN`, which is
        // its query), comments, and the schema's own row and privileges: a
        // database's `public` schema is made by initdb with USAGE (before
        // PostgreSQL 15, CREATE too) for PUBLIC, its default, where a schema
        // made by CREATE SCHEMA (a template's scratch) has none.
        let rewrite = item(Catalog::Rewrite, "w.oid", "w");
        let description = item(
            Catalog::Description,
            "(d.objoid::int8 << 16) + d.objsubid",
            "d",
        );
        let namespace = item(Catalog::Namespace, "ns.oid", "ns");
        let extension = item(Catalog::Extension, "e.oid", "e");
        let public_default = if version >= 150_000 {
            "USAGE"
        } else {
            "USAGE, CREATE"
        };
        let namespace_grants = acl_read(
            "ns.nspacl",
            &format!(
                "CASE WHEN ns.nspname = 'public'
                      THEN acldefault('n', ns.nspowner) || makeaclitem(0, ns.nspowner, '{public_default}', false)
                      ELSE acldefault('n', ns.nspowner) END"
            ),
            "ns.nspowner",
        );
        let relation_grants = acl_read(
            "c.relacl",
            "acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner)",
            "c.relowner",
        );
        // One row per relation of the schemas in `$1`, and one with a null
        // oid for a schema without any; a sequence's row carries its
        // pg_sequence row and the column that owns it (serial) or whose
        // identity it is.
        let relations = format!(
            "WITH {NAMESPACES_CTE},
             nsx AS MATERIALIZED (SELECT ns.oid, ns.nspname, ns.nspowner, {namespace_grants} AS grants,
                                         {namespace} AS h,
                                         ns.oid IN (SELECT p.pronamespace FROM pg_proc p
                                                     WHERE p.oid >= {FIRST_USER_OID}) AS has_routines,
                                         ARRAY(SELECT e.extname::text FROM pg_extension e
                                                WHERE e.extnamespace = ns.oid) AS extensions,
                                         ARRAY(SELECT {extension} FROM pg_extension e
                                                WHERE e.extnamespace = ns.oid) AS h_extensions,
                                         ({HAS_RELATION_COMMENTS}) AS relation_comments,
                                         ({HAS_TYPE_COMMENTS}) AS type_comments,
                                         EXISTS (SELECT FROM pg_policy) AS has_policies
                                    FROM ns)
             SELECT current_setting('search_path') AS search_path, current_database()::text AS database,
                    ns.grants AS ns_grants, ns.h AS h_ns, ns.has_routines,
                    ns.extensions, ns.h_extensions,
                    ({HAS_CALLEES}) AS has_callees,
                    ns.relation_comments, ns.type_comments, ns.has_policies,
                    CASE WHEN ns.relation_comments THEN
                         ARRAY(SELECT d.objsubid::text || ' ' || d.xmin::text || ' ' || d.description
                                 FROM pg_description d
                                WHERE d.objoid = c.oid AND d.classoid = 'pg_class'::regclass
                                  AND (d.objsubid = 0 OR c.relkind IN ('r','p','v','m')))
                    END AS comments,
                    CASE WHEN c.relhasrules AND c.relkind IN ('r','p') THEN
                         ARRAY(SELECT w.oid::text || ' ' || w.xmin::text || ' ' || char_length(w.rulename)
                                      || ' ' || w.rulename::text || ' ' || pg_get_ruledef(w.oid, true)
                                 FROM pg_rewrite w
                                WHERE w.ev_class = c.oid AND w.rulename <> '_RETURN' ORDER BY w.rulename)
                    END AS rules,
                    ns.nspname::text AS nspname, c.oid::int8 AS oid, c.relname::text AS relname,
                    c.relkind::text AS relkind, c.relpersistence::text AS persistence,
                    c.relowner::int8 AS owner_oid, ns.nspowner::int8 AS ns_owner,
                    c.reloptions::text[] AS reloptions,
                    c.relrowsecurity, c.relforcerowsecurity, c.relreplident::text AS replident,
                    c.relhastriggers,
                    {relation_grants} AS grants,
                    CASE WHEN c.relkind IN ('v','m') THEN pg_get_viewdef(c.oid, true) END AS viewdef,
                    CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key,
                    CASE WHEN c.relispartition THEN
                         (SELECT pc.relname::text FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
                           WHERE i.inhrelid = c.oid LIMIT 1) || ' ' || pg_get_expr(c.relpartbound, c.oid)
                    END AS partition_of,
                    c.xmin::text AS x, {rule} AS h_rule,
                    format_type(s.seqtypid, NULL) AS seq_type,
                    s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
                    dep.refobjid::int8 AS owner, dep.refobjsubid::int2 AS owner_column,
                    dep.deptype::text AS dependency,
                    s.xmin::text AS x_seq
               FROM nsx ns
               LEFT JOIN pg_class c ON c.relnamespace = ns.oid AND {relation_filter}
               LEFT JOIN pg_sequence s ON s.seqrelid = c.oid
               LEFT JOIN LATERAL (
                    SELECT d.refobjid, d.refobjsubid, d.deptype FROM pg_depend d
                     WHERE c.relkind = 'S' AND d.classid = 'pg_class'::regclass AND d.objid = c.oid
                       AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a','i')
                     ORDER BY d.deptype DESC LIMIT 1) dep ON true"
        );
        // Columns, defaults, constraints and indexes are looked up by the
        // tables' oids, through the catalogs' indexes: no second pass over
        // pg_class, which has no index on the namespace.
        // Types come back as (oid, typmod) and are named once per distinct
        // pair (`Names`): a thousand tenants' columns use a few dozen.
        let column_owner = "(SELECT o.relowner FROM pg_class o WHERE o.oid = a.attrelid)";
        let compression = if version >= 140_000 {
            "a.attcompression::text"
        } else {
            "''"
        };
        let columns = format!(
            "SELECT a.attrelid::int8 AS relid, a.attname::text AS attname, a.attnum AS attnum,
                    a.atttypid AS type_oid, a.atttypmod AS typmod, a.attnotnull,
                    a.attidentity::text AS attidentity, a.attgenerated::text AS attgenerated,
                    a.attcollation::int8 AS collation_oid, {} AS grants,
                    a.attstorage::text AS storage, {compression} AS compression,
                    (a.attrelid::int8 << 16) + a.attnum AS k, a.xmin::text AS x
               FROM pg_attribute a
              WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped",
            acl_read(
                "a.attacl",
                &format!("acldefault('c', {column_owner})"),
                column_owner
            )
        );
        // Defaults, checks and predicates are deparsed in the context of
        // `$2`, a table of the same name and columns as the one in `$1`
        // (see `deparse_contexts`).
        let defaults = "SELECT d.adrelid::int8 AS relid, d.adnum AS attnum,
                    pg_get_expr(d.adbin, m.ctx) AS expression,
                    d.oid::int8 AS k, d.xmin::text AS x
               FROM unnest($1::oid[], $2::oid[]) AS m(rel, ctx)
               JOIN pg_attrdef d ON d.adrelid = m.rel"
            .to_owned();
        // A plain CHECK is `CHECK (<expression>)`, as pg_get_constraintdef
        // prints it; NOT VALID, NO INHERIT (and, from PostgreSQL 18, NOT
        // ENFORCED) ones and exclusion constraints are left to it.
        let plain_check = if version >= 180_000 {
            "con.contype = 'c' AND con.convalidated AND NOT con.connoinherit AND con.conenforced"
        } else {
            "con.contype = 'c' AND con.convalidated AND NOT con.connoinherit"
        };
        // Key columns come back as attribute numbers; only CHECK and
        // EXCLUDE constraints are deparsed (the expensive part).
        let constraints = format!(
            "SELECT con.conrelid::int8 AS relid, con.conname::text AS conname, con.contype::text AS contype,
                    con.conkey AS conkey, con.confrelid::int8 AS confrelid, con.confkey AS confkey,
                    con.confupdtype::text AS confupdtype, con.confdeltype::text AS confdeltype,
                    con.confmatchtype::text AS confmatchtype, con.condeferrable, con.condeferred,
                    con.conindid::int8 AS conindid, con.convalidated,
                    CASE WHEN {plain_check} THEN 'CHECK (' || pg_get_expr(con.conbin, m.ctx, true) || ')'
                         WHEN con.contype IN ('c','x') THEN pg_get_constraintdef(con.oid, true)
                    END AS definition,
                    con.oid::int8 AS k, con.xmin::text AS x
               FROM unnest($1::oid[], $2::oid[]) AS m(rel, ctx)
               JOIN pg_constraint con ON con.conrelid = m.rel
              WHERE {CONSTRAINT_TYPES}"
        );
        // An object's comment (`comment`, and its fingerprint item
        // `h_comment`) for a query that reads comments, from the join it
        // returns; NULLs and no join for one that does not.
        let comment_of = |comments: bool, object: &str, class: &str| -> (String, String) {
            if comments {
                (
                    format!("d.description AS comment, {description} AS h_comment"),
                    format!(
                        "LEFT JOIN pg_description d ON d.objoid = {object}
                          AND d.classoid = '{class}'::regclass AND d.objsubid = 0"
                    ),
                )
            } else {
                (
                    "NULL::text AS comment, NULL::int8 AS h_comment".to_owned(),
                    String::new(),
                )
            }
        };
        // Every index of the tables, those behind constraints too (they
        // carry NULLS NOT DISTINCT, and are fingerprinted); keys as attribute
        // numbers, only expression keys deparsed. The int2vector/oidvector
        // columns cast to 0-based arrays; the `[:]` slice makes them
        // ordinary 1-based ones.
        let indexes = |comments: bool| {
            let (comment, comment_join) = comment_of(comments, "ix.indexrelid", "pg_class");
            format!(
                "SELECT ix.indrelid::int8 AS relid, ix.indexrelid::int8 AS indexrelid,
                    ic.relname::text AS index_name, ix.indisunique, am.amname::text AS amname,
                    ix.indnkeyatts::int4 AS nkey, (ix.indkey::int2[])[:] AS keys,
                    (ix.indoption::int2[])[:] AS options,
                    CASE WHEN ix.indexprs IS NOT NULL THEN
                         ARRAY(SELECT pg_get_indexdef(ix.indexrelid, k, true)
                                 FROM generate_series(1, ix.indnatts) k ORDER BY k)
                    END AS key_defs,
                    (ix.indclass::oid[])[:] AS opclasses,
                    (ix.indcollation::oid[])[:] AS collations,
                    pg_get_expr(ix.indpred, m.ctx, true) AS predicate,
                    {nulls_not_distinct} AS nulls_not_distinct,
                    ix.indisvalid, ix.indisreplident, ic.reloptions::text[] AS index_options,
                    ix.indexrelid::int8 AS k, ix.xmin::text AS x, ic.xmin::text AS x_class,
                    {comment}
               FROM unnest($1::oid[], $2::oid[]) AS m(rel, ctx)
               JOIN pg_index ix ON ix.indrelid = m.rel
               JOIN pg_class ic ON ic.oid = ix.indexrelid
               JOIN pg_am am ON am.oid = ic.relam
               {comment_join}"
            )
        };
        let type_grants = acl_read("t.typacl", "acldefault('T', t.typowner)", "t.typowner");
        // A range type's multirange type (PostgreSQL 14 on), named only
        // when it is not the default name (see `range_from_row`).
        let multirange = if version >= 140_000 {
            "CASE WHEN t.typtype = 'r' THEN
                  (SELECT m.typname::text FROM pg_range r JOIN pg_type m ON m.oid = r.rngmultitypid
                    WHERE r.rngtypid = t.oid)
             END"
        } else {
            "NULL::text"
        };
        // A domain's or a range's base type in another schema is looked up
        // per such type (the LIMIT keeps the planner from joining all of
        // pg_type, a pass over every tenant's row types, for the few).
        let types = |comments: bool| {
            let (comment, comment_join) = comment_of(comments, "t.oid", "pg_type");
            format!(
            "WITH {TYPES_CTE}
             SELECT t.nspname::text AS nspname, t.typname::text AS typname, t.typtype::text AS typtype,
                    CASE WHEN t.typtype = 'e' THEN
                         ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid
                                ORDER BY e.enumsortorder)
                    END AS labels,
                    {type_grants} AS grants,
                    t.oid::int8 AS k, t.xmin::text AS x, t.typowner::int8 AS owner_oid,
                    CASE WHEN t.typtype = 'e' THEN
                         ARRAY(SELECT {label} FROM pg_enum e WHERE e.enumtypid = t.oid)
                    END AS h_labels,
                    CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END AS domain_base,
                    t.typtype = 'd' AND t.typnotnull AS domain_not_null,
                    CASE WHEN t.typtype = 'd' THEN pg_get_expr(t.typdefaultbin, 0) END AS domain_default,
                    CASE WHEN t.typtype = 'd' AND t.typcollation <> 0 AND t.typcollation <>
                              (SELECT b.typcollation FROM pg_type b WHERE b.oid = t.typbasetype)
                         THEN (SELECT co.collname::text FROM pg_collation co WHERE co.oid = t.typcollation)
                    END AS domain_collation,
                    CASE WHEN t.typtype = 'd' THEN
                         ARRAY(SELECT con.conname::text || ' ' || pg_get_constraintdef(con.oid, true)
                                 FROM pg_constraint con WHERE con.contypid = t.oid ORDER BY con.conname)
                    END AS domain_checks,
                    CASE WHEN t.typtype = 'd' THEN
                         ARRAY(SELECT {constraint} FROM pg_constraint con WHERE con.contypid = t.oid)
                    END AS h_constraints,
                    CASE WHEN t.typtype = 'c' THEN t.typrelid::int8 END AS typrelid,
                    CASE WHEN t.typtype = 'r' THEN
                         (SELECT concat_ws(', ',
                                 'SUBTYPE = ' || format_type(r.rngsubtype, NULL),
                                 CASE WHEN NOT opc.opcdefault THEN 'SUBTYPE_OPCLASS = '
                                      || CASE WHEN opn.nspname = 'pg_catalog' THEN ''
                                              ELSE quote_ident(opn.nspname) || '.' END
                                      || quote_ident(opc.opcname) END,
                                 CASE WHEN r.rngcollation <> 0 AND r.rngcollation <>
                                           (SELECT b.typcollation FROM pg_type b WHERE b.oid = r.rngsubtype)
                                      THEN 'COLLATION = ' || (SELECT quote_ident(co.collname)
                                                                FROM pg_collation co WHERE co.oid = r.rngcollation) END,
                                 CASE WHEN r.rngcanonical <> 0 THEN 'CANONICAL = ' || r.rngcanonical::regproc::text END,
                                 CASE WHEN r.rngsubdiff <> 0 THEN 'SUBTYPE_DIFF = ' || r.rngsubdiff::regproc::text END)
                            FROM pg_range r JOIN pg_opclass opc ON opc.oid = r.rngsubopc
                            JOIN pg_namespace opn ON opn.oid = opc.opcnamespace
                           WHERE r.rngtypid = t.oid)
                    END AS range_def, {multirange} AS multirange,
                    {comment},
                    b.oid::int8 AS base_oid, b.xmin::text AS x_base,
                    b.ns::int8 AS base_ns, b.ns_xmin::text AS x_base_ns
               FROM ty t
               {comment_join}
               LEFT JOIN LATERAL (
                    SELECT b.oid, b.xmin, bn.oid AS ns, bn.xmin AS ns_xmin
                      FROM pg_type b JOIN pg_namespace bn ON bn.oid = b.typnamespace
                     WHERE t.typtype IN ('d','r')
                       AND b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.rngsubtype END
                       AND b.oid >= {FIRST_USER_OID} AND b.typnamespace <> t.typnamespace
                     LIMIT 1) b ON true
              WHERE {type_filter}"
            )
        };
        // Standalone composite types (`$1`: candidate row types' relations,
        // those of no relation read): their attributes.
        let composites = format!(
            "SELECT c.oid::int8 AS oid, {class_c} AS h_class,
                    ARRAY(SELECT quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod)
                            FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                             AND NOT a.attisdropped ORDER BY a.attnum) AS attributes,
                    ARRAY(SELECT {attribute} FROM pg_attribute a WHERE a.attrelid = c.oid
                             AND a.attnum > 0 AND NOT a.attisdropped) AS h_attributes,
                    ARRAY(SELECT DISTINCT t.oid::text || ' ' || t.xmin::text || ' '
                                          || n.oid::text || ' ' || n.xmin::text
                            FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                            JOIN pg_namespace n ON n.oid = t.typnamespace
                           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                             AND t.oid >= {FIRST_USER_OID} AND t.typnamespace <> c.relnamespace) AS named_types
               FROM pg_class c WHERE c.oid = ANY($1) AND c.relkind = 'c'"
        );
        // Triggers (not the internal ones behind foreign keys) and
        // row-level security policies, by the tables' oids.
        let triggers = format!(
            "SELECT tg.tgrelid::int8 AS relid, tg.tgname::text AS name,
                    pg_get_triggerdef(tg.oid, true) AS definition, tg.tgenabled::text AS enabled,
                    tg.oid::int8 AS k, tg.xmin::text AS x
               FROM unnest($1::oid[]) AS m(rel)
               JOIN pg_trigger tg ON tg.tgrelid = m.rel
              WHERE {TRIGGER_FILTER}"
        );
        let policies =
            "SELECT p.polrelid::int8 AS relid, p.polname::text AS name, p.polcmd::text AS cmd,
                    p.polpermissive AS permissive,
                    ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END
                            FROM unnest(p.polroles) r) AS roles,
                    pg_get_expr(p.polqual, p.polrelid, true) AS using_expr,
                    pg_get_expr(p.polwithcheck, p.polrelid, true) AS check_expr,
                    p.oid::int8 AS k, p.xmin::text AS x
               FROM unnest($1::oid[]) AS m(rel)
               JOIN pg_policy p ON p.polrelid = m.rel"
                .to_owned();
        // Routines of the schemas: each attribute that defines one, so the
        // canonical text is built here (see `routine_from_row`).
        let sql_body = if version >= 140_000 {
            "CASE WHEN p.prosqlbody IS NOT NULL THEN pg_get_function_sqlbody(p.oid) END"
        } else {
            "NULL::text"
        };
        // Routines of the schema: not an extension's members, nor what the
        // server made for a range type (its constructors and its
        // multirange's, in language `internal`, oid 12, and bound to the
        // type by an internal dependency).
        let proc_filter = format!(
            "{} AND CASE WHEN p.prolang <> 12 THEN true ELSE NOT EXISTS (
                 SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                    AND d.objsubid = 0 AND d.deptype = 'i') END",
            not_in_extension("p.oid", "pg_proc")
        );
        let routine_grants = acl_read("p.proacl", "acldefault('f', p.proowner)", "p.proowner");
        let routines = format!(
            "WITH {NAMESPACES_CTE}
             SELECT ns.nspname::text AS nspname, p.proname::text AS name, p.prokind::text AS kind,
                    pg_get_function_identity_arguments(p.oid) AS identity,
                    pg_get_function_arguments(p.oid) AS arguments,
                    CASE WHEN p.prokind <> 'p' THEN pg_get_function_result(p.oid) END AS result,
                    l.lanname::text AS language, p.provolatile::text AS volatility,
                    p.proisstrict AS strict, p.prosecdef AS security_definer,
                    p.proleakproof AS leakproof, p.proparallel::text AS parallel,
                    p.procost::float8 AS cost, p.prorows::float8 AS rows, p.proretset AS returns_set,
                    p.proconfig::text[] AS config, p.prosrc AS source, {sql_body} AS sql_body,
                    a.aggtransfn::regprocedure::text AS agg_transition,
                    format_type(a.aggtranstype, NULL) AS agg_state,
                    NULLIF(a.aggfinalfn, 0)::regprocedure::text AS agg_final, a.agginitval AS agg_init,
                    {routine_grants} AS grants,
                    d.description AS comment, {description} AS h_comment,
                    p.oid::int8 AS k, p.xmin::text AS x, p.proowner::int8 AS owner_oid
               FROM ns JOIN pg_proc p ON p.pronamespace = ns.oid
               JOIN pg_language l ON l.oid = p.prolang
               LEFT JOIN pg_aggregate a ON a.aggfnoid = p.oid
               LEFT JOIN pg_description d ON d.objoid = p.oid AND d.classoid = 'pg_proc'::regclass
                                         AND d.objsubid = 0
              WHERE p.oid >= {FIRST_USER_OID} AND {proc_filter}"
        );
        // The same items over the same rows as the queries above, summed
        // per schema on the server.
        let in_tables = "ANY((SELECT oids FROM tabs)::oid[])";
        // Objects outside the schema its objects depend on (user objects
        // only: built-ins, below FirstNormalObjectId, never change), each as
        // its kind's letter (`OutsideKind`), oid and `xmin`, and their
        // schemas; one text for both queries that read them.
        //
        // What a schema's relations (`rels`, with `ns` and `relkind`) name
        // in other schemas without going through a function: tables its
        // views read, tables its foreign keys reference, and user types
        // its tables' columns are of. Renaming any of them changes what
        // the schema's catalog text prints and writes none of its rows.
        let named_outside = format!(
            "SELECT DISTINCT r.ns AS ns, 'c' AS kind, c.oid::int8 AS oid, c.xmin::text AS x,
                    c.relnamespace AS other FROM pg_rewrite w
                 JOIN rels r ON r.oid = w.ev_class AND r.relkind IN ('v','m')
                 JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid
                                 AND d.refclassid = 'pg_class'::regclass
                 JOIN pg_class c ON c.oid = d.refobjid
                 WHERE c.relnamespace <> r.ns
             UNION ALL SELECT DISTINCT r.ns, 'c', c.oid::int8, c.xmin::text, c.relnamespace FROM pg_constraint con
                 JOIN rels r ON r.oid = con.conrelid AND r.relkind IN ('r','p')
                 JOIN pg_class c ON c.oid = con.confrelid
                 WHERE con.contype = 'f' AND c.relnamespace <> r.ns
             UNION ALL SELECT DISTINCT r.ns, 't', t.oid::int8, t.xmin::text, t.typnamespace FROM pg_attribute a
                 JOIN rels r ON r.oid = a.attrelid AND r.relkind IN ('r','p')
                 JOIN pg_type t ON t.oid = a.atttypid
                 WHERE a.attnum > 0 AND NOT a.attisdropped AND t.oid >= {FIRST_USER_OID}
                   AND t.typnamespace <> r.ns"
        );
        // The objects of `outside` (ns, kind, oid, x, other) in another
        // schema than theirs, and those schemas, once per schema.
        let outside_items = "outside_items AS (
                 SELECT o.ns, o.kind, o.oid, o.x FROM outside o WHERE o.other <> o.ns
                 UNION SELECT o.ns, 'n', n.oid::int8, n.xmin::text FROM outside o
                     JOIN pg_namespace n ON n.oid = o.other WHERE o.other <> o.ns)";
        // User functions, collations, operators and operator classes (few,
        // whatever the fleet's size) and what depends on them, found
        // through pg_depend's index on the referenced object.
        let views_filter = not_in_extension("c.oid", "pg_class");
        let outside = format!(
            "WITH {NAMESPACES_CTE},
             rels AS MATERIALIZED (
                 SELECT c.oid, c.relnamespace AS ns, c.relkind FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
                  WHERE c.relkind IN ('r','p','v','m') AND {views_filter}),
             callee AS MATERIALIZED (
                 SELECT 'pg_proc'::regclass AS cls, 'f' AS kind, p.oid, p.pronamespace AS nsp, p.xmin::text AS x
                   FROM pg_proc p WHERE p.oid >= {FIRST_USER_OID}
                 UNION ALL SELECT 'pg_collation'::regclass, 'l', co.oid, co.collnamespace, co.xmin::text
                   FROM pg_collation co WHERE co.oid >= {FIRST_USER_OID}
                 UNION ALL SELECT 'pg_operator'::regclass, 'o', op.oid, op.oprnamespace, op.xmin::text
                   FROM pg_operator op WHERE op.oid >= {FIRST_USER_OID}
                 UNION ALL SELECT 'pg_opclass'::regclass, 'k', opc.oid, opc.opcnamespace, opc.xmin::text
                   FROM pg_opclass opc WHERE opc.oid >= {FIRST_USER_OID}),
             callers AS MATERIALIZED (
                 SELECT DISTINCT f.kind, f.oid::int8 AS oid, f.x, f.nsp, d.classid, d.objid FROM callee f
                   JOIN pg_depend d ON d.refclassid = f.cls AND d.refobjid = f.oid
                  WHERE d.classid IN ('pg_attrdef'::regclass, 'pg_constraint'::regclass, 'pg_class'::regclass,
                                      'pg_rewrite'::regclass, 'pg_type'::regclass, 'pg_trigger'::regclass,
                                      'pg_policy'::regclass)),
             outside AS (
                 SELECT c.relnamespace AS ns, f.kind, f.oid, f.x, f.nsp AS other FROM callers f
                   JOIN pg_attrdef ad ON f.classid = 'pg_attrdef'::regclass AND ad.oid = f.objid
                   JOIN pg_class c ON c.oid = ad.adrelid
                 UNION ALL SELECT c.relnamespace, f.kind, f.oid, f.x, f.nsp FROM callers f
                   JOIN pg_constraint con ON f.classid = 'pg_constraint'::regclass AND con.oid = f.objid
                   JOIN pg_class c ON c.oid = con.conrelid
                 UNION ALL SELECT c.relnamespace, f.kind, f.oid, f.x, f.nsp FROM callers f
                   JOIN pg_class c ON f.classid = 'pg_class'::regclass AND c.oid = f.objid
                 UNION ALL SELECT c.relnamespace, f.kind, f.oid, f.x, f.nsp FROM callers f
                   JOIN pg_trigger tg ON f.classid = 'pg_trigger'::regclass AND tg.oid = f.objid
                   JOIN pg_class c ON c.oid = tg.tgrelid
                 UNION ALL SELECT c.relnamespace, f.kind, f.oid, f.x, f.nsp FROM callers f
                   JOIN pg_policy pol ON f.classid = 'pg_policy'::regclass AND pol.oid = f.objid
                   JOIN pg_class c ON c.oid = pol.polrelid
                 UNION ALL SELECT c.relnamespace, f.kind, f.oid, f.x, f.nsp FROM callers f
                   JOIN pg_rewrite w ON f.classid = 'pg_rewrite'::regclass AND w.oid = f.objid
                   JOIN pg_class c ON c.oid = w.ev_class
                 UNION ALL SELECT t.typnamespace, f.kind, f.oid, f.x, f.nsp FROM callers f
                   JOIN pg_type t ON f.classid = 'pg_type'::regclass AND t.oid = f.objid
                 UNION ALL {named_outside}),
             {outside_items}
             SELECT ns.nspname::text, i.kind, i.oid, i.x FROM ns JOIN outside_items i ON i.ns = ns.oid"
        );
        // The same objects when the database has no user function,
        // collation, operator or operator class (the `callee` rows above
        // are none): only what the relations in `$1` (oids: the chunk's
        // views and tables) name in other schemas, and those schemas.
        let outside_named = format!(
            "WITH rels AS MATERIALIZED (
                 SELECT c.oid, c.relnamespace AS ns, c.relkind FROM pg_class c WHERE c.oid = ANY($1)),
             outside AS ({named_outside}),
             {outside_items}
             SELECT ns.nspname::text, i.kind, i.oid, i.x FROM outside_items i
               JOIN pg_namespace ns ON ns.oid = i.ns"
        );
        // The rows of objects a stored fingerprint lists (`$1` their kinds'
        // letters, `$2` their oids), as they are now; one that no longer
        // exists is absent.
        let outside_now = "SELECT o.kind, o.oid, COALESCE(c.xmin, t.xmin, p.xmin, co.xmin, op.xmin, opc.xmin, n.xmin)::text
               FROM unnest($1::text[], $2::int8[]) AS o(kind, oid)
               LEFT JOIN pg_class c ON o.kind = 'c' AND c.oid = o.oid::oid
               LEFT JOIN pg_type t ON o.kind = 't' AND t.oid = o.oid::oid
               LEFT JOIN pg_proc p ON o.kind = 'f' AND p.oid = o.oid::oid
               LEFT JOIN pg_collation co ON o.kind = 'l' AND co.oid = o.oid::oid
               LEFT JOIN pg_operator op ON o.kind = 'o' AND op.oid = o.oid::oid
               LEFT JOIN pg_opclass opc ON o.kind = 'k' AND opc.oid = o.oid::oid
               LEFT JOIN pg_namespace n ON o.kind = 'n' AND n.oid = o.oid::oid"
            .to_owned();
        let rels_cte = format!(
            "rels AS MATERIALIZED (
                 SELECT c.oid, c.relnamespace AS ns, c.relkind, {class_c} AS h, {rule} AS h_rule
                   FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
                  WHERE {relation_filter})"
        );
        // Tables, and the relations whose columns are counted: tables and
        // views (renaming a view's column prints in its definition and
        // writes neither its pg_class nor its rule's row).
        let tabs_cte = "tabs AS MATERIALIZED (SELECT COALESCE(array_agg(oid), '{}') AS oids FROM rels WHERE relkind IN ('r','p')),
             cols AS MATERIALIZED (SELECT COALESCE(array_agg(oid), '{}') AS oids FROM rels WHERE relkind IN ('r','p','v','m')),
             indexed AS MATERIALIZED (SELECT COALESCE(array_agg(oid), '{}') AS oids FROM rels WHERE relkind IN ('r','p','m'))";
        let fingerprints = {
            format!(
            "WITH {NAMESPACES_CTE}, {rels_cte}, {TYPES_CTE}, {tabs_cte},
             seqs AS MATERIALIZED (SELECT COALESCE(array_agg(oid), '{{}}') AS oids FROM rels WHERE relkind = 'S'),
             composites AS MATERIALIZED (
                 SELECT t.typnamespace AS ns, c.oid, {class_c} AS h FROM ty t
                   JOIN pg_class c ON c.oid = t.typrelid AND c.relkind = 'c'
                   LEFT JOIN rels r ON r.oid = t.typrelid
                  WHERE t.typtype = 'c' AND r.oid IS NULL AND {type_filter}),
             items AS (
                 SELECT ns, h FROM rels
                 UNION ALL SELECT ns, h_rule FROM rels
                 UNION ALL SELECT r.ns, {attribute} FROM pg_attribute a JOIN rels r ON r.oid = a.attrelid
                            WHERE a.attrelid = ANY((SELECT oids FROM cols)::oid[])
                              AND a.attnum > 0 AND NOT a.attisdropped
                 UNION ALL SELECT r.ns, {attrdef} FROM pg_attrdef d JOIN rels r ON r.oid = d.adrelid
                            WHERE d.adrelid = {in_tables}
                 UNION ALL SELECT r.ns, {constraint} FROM pg_constraint con JOIN rels r ON r.oid = con.conrelid
                            WHERE con.conrelid = {in_tables} AND {CONSTRAINT_TYPES}
                 UNION ALL SELECT r.ns, {index} FROM pg_index ix JOIN rels r ON r.oid = ix.indrelid
                            WHERE ix.indrelid = ANY((SELECT oids FROM indexed)::oid[])
                 UNION ALL SELECT r.ns, {class_ic} FROM pg_index ix JOIN pg_class ic ON ic.oid = ix.indexrelid
                            JOIN rels r ON r.oid = ix.indrelid
                            WHERE ix.indrelid = ANY((SELECT oids FROM indexed)::oid[])
                 UNION ALL SELECT t.typnamespace, {typ} FROM ty t WHERE {type_filter}
                 UNION ALL SELECT t.typnamespace, {label} FROM ty t JOIN pg_enum e ON e.enumtypid = t.oid
                            WHERE t.typtype = 'e' AND {type_filter}
                 UNION ALL SELECT t.typnamespace, {constraint} FROM ty t
                            JOIN pg_constraint con ON con.contypid = t.oid
                            WHERE t.typtype = 'd' AND {type_filter}
                 UNION ALL SELECT ns, h FROM composites
                 UNION ALL SELECT c.ns, {attribute} FROM composites c
                            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                 UNION ALL SELECT r.ns, {sequence} FROM pg_sequence s JOIN rels r ON r.oid = s.seqrelid
                            WHERE s.seqrelid = ANY((SELECT oids FROM seqs)::oid[])
                 UNION ALL SELECT r.ns, {trigger} FROM pg_trigger tg JOIN rels r ON r.oid = tg.tgrelid
                            WHERE tg.tgrelid = {in_tables} AND {TRIGGER_FILTER}
                 UNION ALL SELECT r.ns, {rewrite} FROM pg_rewrite w JOIN rels r ON r.oid = w.ev_class
                            WHERE w.ev_class = {in_tables} AND w.rulename <> '_RETURN'
                 UNION ALL SELECT r.ns, {policy} FROM pg_policy p JOIN rels r ON r.oid = p.polrelid
                            WHERE p.polrelid = {in_tables}
                 UNION ALL SELECT p.pronamespace, {proc} FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
                            WHERE p.oid >= {FIRST_USER_OID} AND {proc_filter}
                 UNION ALL SELECT ns.oid, {namespace} FROM ns
                 UNION ALL SELECT e.extnamespace, {extension} FROM pg_extension e
                            JOIN ns ON ns.oid = e.extnamespace
                 UNION ALL SELECT r.ns, {description} FROM pg_description d JOIN rels r ON r.oid = d.objoid
                            WHERE d.classoid = 'pg_class'::regclass
                              AND (d.objsubid = 0 OR r.relkind IN ('r','p','v','m'))
                 UNION ALL SELECT r.ns, {description}
                            FROM (SELECT d.objoid, d.objsubid, d.xmin,
                                         (SELECT ix.indrelid FROM pg_index ix WHERE ix.indexrelid = d.objoid) AS indrelid
                                    FROM pg_description d
                                   WHERE d.classoid = 'pg_class'::regclass AND d.objsubid = 0) d
                            JOIN rels r ON r.oid = d.indrelid AND r.relkind IN ('r','p','m')
                 UNION ALL SELECT t.typnamespace, {description} FROM ty t
                            JOIN pg_description d ON d.objoid = t.oid
                             AND d.classoid = 'pg_type'::regclass AND d.objsubid = 0
                            WHERE {type_filter}
                 UNION ALL SELECT p.pronamespace, {description} FROM pg_description d
                            JOIN pg_proc p ON p.oid = d.objoid JOIN ns ON ns.oid = p.pronamespace
                            WHERE d.classoid = 'pg_proc'::regclass AND d.objsubid = 0
                              AND p.oid >= {FIRST_USER_OID} AND {proc_filter}
             )
             SELECT ns.nspname::text, count(i.h)::int8, COALESCE(sum(i.h), 0)::text
               FROM ns LEFT JOIN items i ON i.ns = ns.oid
              GROUP BY ns.nspname"
        )
        };
        Self {
            relations,
            columns,
            defaults,
            constraints,
            indexes: Commented::new(indexes),
            types: Commented::new(types),
            triggers,
            policies,
            routines,
            composites,
            outside,
            outside_named,
            outside_now,
            fingerprints,
        }
    }
}

/// Column names by (table oid, attribute number), of the tables read and
/// of those outside the chunk that they refer to; and, for the tables read,
/// where each column sits in its table and its collation.
#[derive(Default)]
struct Attributes {
    names: FxHashMap<(i64, i16), String>,
    read: FxHashMap<(i64, i16), ColumnAt>,
}

/// A column of a table read: its position in the table's columns, and its
/// collation's oid.
#[derive(Clone, Copy)]
struct ColumnAt {
    index: usize,
    collation: i64,
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

/// A column read, waiting for its type's name.
struct TypedColumn {
    relid: i64,
    at: ColumnAt,
    ty: Oid,
    typmod: i32,
    /// `attstorage`: compared with the type's default.
    storage: String,
}

/// `attcompression`'s code as `ALTER COLUMN … SET COMPRESSION` names it.
fn compression_name(code: &str) -> &str {
    match code {
        "p" => "pglz",
        "l" => "lz4",
        other => other,
    }
}

/// `attstorage`'s code as `ALTER COLUMN … SET STORAGE` names it.
fn storage_name(code: &str) -> &str {
    match code {
        "p" => "plain",
        "e" => "external",
        "m" => "main",
        "x" => "extended",
        other => other,
    }
}

/// A type as columns name it with a given modifier (`format_type`), the
/// type's own collation and its default storage.
struct TypeName {
    name: String,
    collation: i64,
    storage: String,
}

/// The names a chunk's columns and indexes refer to by oid: types (per
/// modifier), non-default operator classes and collations. Only those
/// used are looked up, in one query: a thousand tenants use a few dozen.
#[derive(Default)]
struct Names {
    types: FxHashMap<(u32, i32), TypeName>,
    opclasses: FxHashMap<i64, String>,
    collations: FxHashMap<i64, String>,
}

impl Names {
    async fn read(
        conn: &mut PgConnection,
        columns: &[TypedColumn],
        indexes: &[IndexRow],
    ) -> Result<Self, sqlx::Error> {
        let mut pairs: Vec<(u32, i32)> = columns.iter().map(|c| (c.ty.0, c.typmod)).collect();
        pairs.sort_unstable();
        pairs.dedup();
        let opclasses = distinct_oids(indexes.iter().flat_map(|i| i.opclasses.iter().copied()));
        let collations = distinct_oids(
            columns
                .iter()
                .map(|c| c.at.collation)
                .chain(indexes.iter().flat_map(|i| i.collations.iter().copied())),
        );
        if pairs.is_empty() && opclasses.is_empty() && collations.is_empty() {
            return Ok(Self::default());
        }
        let (types, typmods): (Vec<Oid>, Vec<i32>) =
            pairs.iter().map(|(t, m)| (Oid(*t), *m)).unzip();
        // (kind, oid, typmod, name, type's collation or operator class's
        // default flag)
        let rows: Vec<(String, i64, i32, String, i64, String)> = sqlx::query_as(
            "SELECT 't', m.ty::int8, m.typmod, format_type(m.ty, m.typmod),
                    COALESCE(t.typcollation, 0)::int8, COALESCE(t.typstorage::text, '')
               FROM unnest($1::oid[], $2::int4[]) AS m(ty, typmod)
               LEFT JOIN pg_type t ON t.oid = m.ty
             UNION ALL
             SELECT 'o', o.oid::int8, 0, o.opcname::text, o.opcdefault::int4::int8, ''
               FROM pg_opclass o WHERE o.oid = ANY($3)
             UNION ALL
             SELECT 'c', c.oid::int8, 0, c.collname::text, 0, ''
               FROM pg_collation c WHERE c.oid = ANY($4)",
        )
        .bind(&types)
        .bind(&typmods)
        .bind(&opclasses)
        .bind(&collations)
        .fetch_all(&mut *conn)
        .await?;
        let mut names = Self::default();
        for (kind, oid, typmod, name, extra, storage) in rows {
            match kind.as_str() {
                "t" => {
                    let ty = u32::try_from(oid).unwrap_or(0);
                    names.types.insert(
                        (ty, typmod),
                        TypeName {
                            name,
                            collation: extra,
                            storage,
                        },
                    );
                }
                "o" if extra == 0 => {
                    names.opclasses.insert(oid, name);
                }
                "c" => {
                    names.collations.insert(oid, name);
                }
                _ => {}
            }
        }
        Ok(names)
    }
}

/// The default collation's oid (`DEFAULT_COLLATION_OID`).
const DEFAULT_COLLATION: i64 = 100;

/// The schemas of one chunk while their snapshots are assembled. Schemas
/// are addressed by their position in `names`.
struct Chunk {
    names: Vec<String>,
    snaps: Vec<SchemaSnapshot>,
    digests: Vec<Digest>,
    /// Every relation read: its schema and name, by oid.
    relations: FxHashMap<i64, (usize, String)>,
    /// Tables by oid: their schema and position in that snapshot's tables.
    tables: FxHashMap<i64, (usize, usize)>,
    /// Views by oid: their schema and position in that snapshot's views.
    views: FxHashMap<i64, (usize, usize)>,
}

impl Chunk {
    /// A table read, by oid.
    fn read_table(&self, oid: Oid) -> Option<&Table> {
        let (schema, index) = self.tables.get(&i64::from(oid.0))?;
        self.snaps.get(*schema)?.tables.get(*index)
    }

    /// The table a catalog row belongs to, with its schema's name.
    fn table(&mut self, relid: i64) -> Option<(&mut Table, &str, &mut Digest)> {
        let (schema, index) = *self.tables.get(&relid)?;
        let table = self.snaps.get_mut(schema)?.tables.get_mut(index)?;
        Some((table, &self.names[schema], &mut self.digests[schema]))
    }

    /// The table a row of a per-table query (`relid`) belongs to, with its
    /// oid, its schema's name and that schema's digest, which has counted
    /// the row's fingerprint item (its key `k` and `xmin` `x` in
    /// `catalog`). Every such row goes through here, so none is left out
    /// of the fingerprint.
    fn row_table(
        &mut self,
        row: &PgRow,
        catalog: Catalog,
    ) -> Result<Option<RowTable<'_>>, sqlx::Error> {
        let relid: i64 = row.col("relid")?;
        let Some((table, schema, digest)) = self.table(relid) else {
            return Ok(None);
        };
        digest.add_row(catalog, row.col("k")?, row.col("x")?);
        Ok(Some((relid, table, schema, digest)))
    }
}

/// What an index row (a constraint's too) carries beside its keys, for
/// the table or materialized view it indexes: its own pg_class row,
/// counted in `digest`, and in that relation's `options` the replica
/// identity and the index's storage parameters. Returns the index's oid.
fn index_carries(
    row: &PgRow,
    options: &mut Vec<String>,
    digest: &mut Digest,
) -> Result<i64, sqlx::Error> {
    let indexrelid: i64 = row.col("indexrelid")?;
    digest.add_row(Catalog::Class, indexrelid, row.col("x_class")?);
    let name: &str = row.col("index_name")?;
    if row.col::<bool>("indisreplident")? {
        options.push(format!("replica_identity=index {name}"));
    }
    if let Some(storage) = row.col::<Option<Vec<String>>>("index_options")? {
        options.push(format!("index_options({name})={}", storage.join(",")));
    }
    // Its comment, an option as on MySQL (format v6).
    digest.add(row.col("h_comment")?);
    if let Some(comment) = row.col::<Option<&str>>("comment")? {
        let comment = tenantry_model::quote::postgres_literal(comment);
        options.push(format!("index_comment({name})={comment}"));
    }
    Ok(indexrelid)
}

/// A standalone composite type met in the types query, completed by the
/// composites query: its schema's position in the chunk, name, privileges,
/// owner's oid and comment.
struct CompositeRead {
    at: usize,
    name: String,
    grants: Vec<Grant>,
    owner: i64,
    comment: Option<String>,
}

/// A number the server wrote into a text column (see the relations
/// query's comments and rules); a malformed one fails the read.
fn number<T: FromStr>(part: Option<&str>, what: &str) -> Result<T, sqlx::Error> {
    part.and_then(|p| p.parse().ok())
        .ok_or_else(|| sqlx::Error::Decode(format!("{what}: not a number").into()))
}

/// A catalog oid read as `int8`, to bind back as `oid`.
fn oid_of(oid: i64) -> Option<Oid> {
    u32::try_from(oid).ok().map(Oid)
}

/// The distinct valid oids among `oids` (0 is none), sorted, to bind.
fn distinct_oids(oids: impl Iterator<Item = i64>) -> Vec<Oid> {
    let mut out: Vec<Oid> = oids.filter(|o| *o != 0).filter_map(oid_of).collect();
    out.sort_unstable_by_key(|o| o.0);
    out.dedup();
    out
}

/// For each table in `tables`, the table whose context its expressions are
/// deparsed in: the first one read with the same name and the same column
/// names at the same attribute numbers. An expression's text depends on its
/// context only through those names (a column reference prints the column's
/// name, a whole-row reference the table's), so the text is the same; but
/// PostgreSQL opens the context table to deparse, and building that table's
/// cache entry costs far more than the deparse. One shape's tables across a
/// thousand tenants share one context.
fn deparse_contexts(chunk: &Chunk, tables: &[Oid]) -> Vec<Oid> {
    /// A table's name and its columns' (attribute number, name).
    type Shape<'a> = (&'a str, Vec<(u32, &'a str)>);
    let mut first: HashMap<Shape, Oid> = HashMap::new();
    tables
        .iter()
        .map(|oid| {
            let Some(table) = chunk.read_table(*oid) else {
                return *oid;
            };
            let mut columns: Vec<(u32, &str)> = table
                .columns
                .iter()
                .map(|c| (c.ordinal, c.name.as_str()))
                .collect();
            columns.sort_unstable();
            *first.entry((table.name.as_str(), columns)).or_insert(*oid)
        })
        .collect()
}

/// What [`Chunk::row_table`] finds for a row.
type RowTable<'a> = (i64, &'a mut Table, &'a str, &'a mut Digest);

/// A constraint row, kept until every name it refers to is known.
struct ConstraintRow {
    relid: i64,
    name: String,
    contype: String,
    conindid: i64,
    conkey: Vec<i16>,
    confrelid: i64,
    confkey: Vec<i16>,
    on_update: String,
    on_delete: String,
    match_type: String,
    deferrable: bool,
    deferred: bool,
    /// False for a foreign key added `NOT VALID` and never validated.
    validated: bool,
    definition: Option<String>,
}

async fn read_chunk(
    conn: &mut PgConnection,
    schemas: &[String],
    queries: &Queries,
    out: &mut BTreeMap<String, SchemaRead>,
) -> Result<Read, sqlx::Error> {
    let mut chunk = Chunk {
        names: Vec::new(),
        snaps: Vec::new(),
        digests: Vec::new(),
        relations: FxHashMap::default(),
        tables: FxHashMap::default(),
        views: FxHashMap::default(),
    };
    let mut position: HashMap<String, usize> = HashMap::new();
    // Sequences with the column that owns them, when one does.
    let mut owned = Vec::new();

    // The database's name: the role rule's tenant name for `public`.
    let mut database = String::new();
    let mut column_comments: Vec<(i64, i16, String)> = Vec::new();
    // Whether each schema (by position) has routines of its own.
    let mut has_routines: Vec<bool> = Vec::new();
    // Whether the database has user functions, collations, operators or
    // operator classes (for the objects outside).
    let mut has_callees = false;
    // Whether the database has comments on user relations and types, and
    // any row-level security policy at all.
    let mut relation_comments = false;
    let mut type_comments = false;
    let mut has_policies = false;
    // The tables with triggers (`relhastriggers`: foreign keys' internal
    // ones count), the only ones whose triggers are asked for.
    let mut triggered: Vec<Oid> = Vec::new();
    // The tables whose foreign keys or columns name another schema's table
    // or type (or may: a superset is only slower).
    let mut names_outside: Vec<Oid> = Vec::new();
    // Each owned object's owner (by oid), and each schema's owner.
    let mut object_owners: Vec<(usize, Owned, i64)> = Vec::new();
    let mut schema_owners: Vec<i64> = Vec::new();
    let mut rows = sqlx::query(&queries.relations)
        .bind(schemas)
        .fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        if database.is_empty() {
            let search_path: String = row.col("search_path")?;
            if search_path != CATALOG_SEARCH_PATH {
                return Ok(Read::SearchPath(search_path));
            }
            database = row.col("database")?;
            has_callees = row.col("has_callees")?;
            relation_comments = row.col("relation_comments")?;
            type_comments = row.col("type_comments")?;
            has_policies = row.col("has_policies")?;
        }
        let nspname: &str = row.col("nspname")?;
        let s = match position.get(nspname) {
            Some(&s) => s,
            None => {
                // The schema's first row: its own privileges.
                let s = chunk.names.len();
                position.insert(nspname.to_owned(), s);
                chunk.names.push(nspname.to_owned());
                let mut snap = SchemaSnapshot::new(Engine::Postgres);
                snap.grants = grants_in(&row, "ns_grants", None, nspname, &database)?;
                snap.extensions = row
                    .col::<Vec<String>>("extensions")?
                    .into_iter()
                    .map(|name| Extension { name })
                    .collect();
                chunk.snaps.push(snap);
                let mut digest = Digest::default();
                digest.add(row.col("h_ns")?);
                for h in row.col::<Vec<Option<i64>>>("h_extensions")? {
                    digest.add(h);
                }
                chunk.digests.push(digest);
                has_routines.push(row.col::<bool>("has_routines")?);
                schema_owners.push(row.col("ns_owner")?);
                s
            }
        };
        // A schema without relations.
        let Some(oid) = row.col::<Option<i64>>("oid")? else {
            continue;
        };
        let schema = &chunk.names[s];
        let snap = &mut chunk.snaps[s];
        let digest = &mut chunk.digests[s];
        digest.add_row(Catalog::Class, oid, row.col("x")?);
        digest.add(row.col("h_rule")?);
        digest.add_row(Catalog::Sequence, oid, row.col("x_seq")?);
        // Comments on the relation (`objsubid` 0) and, on a table or a view, its
        // columns, `objsubid xmin text`: the columns' are named once the
        // columns are read.
        let mut comment = None;
        let mut comment_text = None;
        for c in row
            .col::<Option<Vec<String>>>("comments")?
            .unwrap_or_default()
        {
            let mut parts = c.splitn(3, ' ');
            let subid = number::<i16>(parts.next(), "a comment's column")?;
            let xmin = number::<u32>(parts.next(), "a comment's xmin")?;
            let text = parts.next().unwrap_or_default();
            let key = (oid << 16) + i64::from(subid);
            digest.add_row(Catalog::Description, key, Some(Xmin(xmin)));
            if subid == 0 {
                comment_text = Some(text.to_owned());
                let text = tenantry_model::quote::postgres_literal(text);
                comment = Some(format!("comment={text}"));
            } else {
                column_comments.push((oid, subid, text.to_owned()));
            }
        }
        let name: String = row.col("relname")?;
        let relkind: String = row.col("relkind")?;
        let reloptions: Option<Vec<String>> = row.col("reloptions")?;
        let mut options: Vec<String> = reloptions.unwrap_or_default();
        match relkind.as_str() {
            "r" | "p" => {
                let mut t = Table::new(name.clone());
                if relkind == "p" {
                    t.kind = TableKind::Partitioned;
                }
                if row.col::<&str>("persistence")? == "u" {
                    options.push("persistence=unlogged".into());
                }
                if row.col::<bool>("relrowsecurity")? {
                    options.push("row_security=enabled".into());
                }
                if row.col::<bool>("relforcerowsecurity")? {
                    options.push("row_security=forced".into());
                }
                // REPLICA IDENTITY USING INDEX is an option of that index.
                match row.col::<&str>("replident")? {
                    "f" => options.push("replica_identity=full".into()),
                    "n" => options.push("replica_identity=nothing".into()),
                    _ => {}
                }
                if let Some(key) = row.col::<Option<&str>>("partition_key")? {
                    options.push(format!("partition_by={}", strip(key, schema)));
                }
                if let Some(bound) = row.col::<Option<&str>>("partition_of")? {
                    options.push(format!("partition_of={}", strip(bound, schema)));
                }
                // Rewrite rules, `oid xmin length name definition`, the
                // name's length in characters (a name may hold spaces).
                for rule in row.col::<Option<Vec<String>>>("rules")?.unwrap_or_default() {
                    let mut parts = rule.splitn(4, ' ');
                    let key = number::<i64>(parts.next(), "a rule's oid")?;
                    let xmin = number::<u32>(parts.next(), "a rule's xmin")?;
                    let length = number::<usize>(parts.next(), "a rule's name")?;
                    let rest = parts.next().unwrap_or_default();
                    let end = rest
                        .char_indices()
                        .nth(length)
                        .map_or(rest.len(), |(at, _)| at);
                    let (name, definition) = rest.split_at(end);
                    let definition = definition.strip_prefix(' ').unwrap_or(definition);
                    digest.add_row(Catalog::Rewrite, key, Some(Xmin(xmin)));
                    options.push(format!("rule {name}={}", strip(definition, schema)));
                }
                options.extend(comment);
                t.options = options;
                t.grants = grants_of(&row, None, schema, &database)?;
                if row.col::<bool>("relhastriggers")? {
                    triggered.extend(oid_of(oid));
                }
                chunk.tables.insert(oid, (s, snap.tables.len()));
                object_owners.push((s, Owned::Table(snap.tables.len()), row.col("owner_oid")?));
                snap.tables.push(t);
            }
            "v" | "m" => {
                chunk.views.insert(oid, (s, snap.views.len()));
                object_owners.push((s, Owned::View(snap.views.len()), row.col("owner_oid")?));
                let def: Option<&str> = row.col("viewdef")?;
                options.extend(comment);
                snap.views.push(View {
                    owner: None,
                    name: name.clone(),
                    materialized: relkind == "m",
                    definition: strip(def.unwrap_or_default(), schema),
                    options,
                    grants: grants_of(&row, None, schema, &database)?,
                    indexes: Vec::new(),
                });
            }
            "S" => {
                if let Some(mut read) = sequence_from_row(&row, &name)? {
                    read.sequence.grants = grants_of(&row, None, schema, &database)?;
                    read.sequence.comment = comment_text;
                    owned.push((s, read));
                }
            }
            _ => {}
        }
        chunk.relations.insert(oid, (s, name));
    }
    drop(rows);
    if chunk.names.is_empty() {
        return Ok(Read::Done);
    }
    let database = database.as_str();
    let tables: Vec<Oid> = chunk.tables.keys().filter_map(|o| oid_of(*o)).collect();
    // The views read, and the materialized ones among them (whose indexes
    // are read).
    let views: Vec<Oid> = chunk.views.keys().filter_map(|o| oid_of(*o)).collect();
    let matviews: Vec<Oid> = chunk
        .views
        .iter()
        .filter(|(_, (s, v))| chunk.snaps[*s].views[*v].materialized)
        .filter_map(|(o, _)| oid_of(*o))
        .collect();

    // Column names by (table, attnum): constraints and indexes come back as
    // attribute numbers and are resolved here, which is far cheaper than
    // resolving them per row in the catalog query.
    let mut attrs = Attributes::default();
    let mut typed: Vec<TypedColumn> = Vec::new();
    // Views' columns too: their names print in the view's definition, and
    // renaming one writes only its pg_attribute row, which the fingerprint
    // must count.
    let with_views: Vec<Oid> = tables.iter().chain(&views).copied().collect();
    let mut rows = sqlx::query(&queries.columns)
        .bind(&with_views)
        .fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        let relid: i64 = row.col("relid")?;
        if let Some(&(s, v)) = chunk.views.get(&relid) {
            // A view's column: counted, named (a materialized view's
            // indexes refer to it), and its privileges the view's.
            let digest = &mut chunk.digests[s];
            digest.add_row(Catalog::Attribute, row.col("k")?, row.col("x")?);
            let name: String = row.col("attname")?;
            let grants = grants_of(&row, Some(&name), &chunk.names[s], database)?;
            chunk.snaps[s].views[v].grants.extend(grants);
            attrs.names.insert((relid, row.col("attnum")?), name);
            continue;
        }
        let Some((relid, table, schema, _)) = chunk.row_table(&row, Catalog::Attribute)? else {
            continue;
        };
        let attnum: i16 = row.col("attnum")?;
        let column = column_from_row(&row)?;
        let grants = grants_of(&row, Some(&column.name), schema, database)?;
        table.grants.extend(grants);

        let at = ColumnAt {
            index: table.columns.len(),
            collation: row.col("collation_oid")?,
        };
        // A column's compression (when not the server's default) is an
        // option of its table; its storage, when it differs from its
        // type's, once the type is known.
        let compression: &str = row.col("compression")?;
        if !compression.is_empty() {
            table.options.push(format!(
                "compression({})={}",
                column.name,
                compression_name(compression)
            ));
        }
        typed.push(TypedColumn {
            relid,
            at,
            ty: row.col("type_oid")?,
            typmod: row.col("typmod")?,
            storage: row.col::<String>("storage")?,
        });
        attrs.names.insert((relid, attnum), column.name.clone());
        attrs.read.insert((relid, attnum), at);
        table.columns.push(column);
    }
    drop(rows);
    // A column's comment is an option of its table or (format v6) view.
    for (relid, attnum, text) in column_comments {
        let Some(column) = attrs.names.get(&(relid, attnum)) else {
            continue;
        };
        let comment = tenantry_model::quote::postgres_literal(&text);
        let option = format!("comment({column})={comment}");
        if let Some(&(s, v)) = chunk.views.get(&relid) {
            chunk.snaps[s].views[v].options.push(option);
        } else if let Some((table, ..)) = chunk.table(relid) {
            table.options.push(option);
        }
    }
    let contexts = deparse_contexts(&chunk, &tables);
    // A default cannot refer to a column, so it is deparsed without a
    // context table; only generated columns' expressions need one.
    let default_contexts: Vec<Oid> = tables
        .iter()
        .zip(&contexts)
        .map(|(oid, ctx)| {
            let generated = chunk
                .read_table(*oid)
                .is_some_and(|t| t.columns.iter().any(|c| c.generated.is_some()));
            if generated {
                *ctx
            } else {
                Oid(0)
            }
        })
        .collect();
    let mut rows = sqlx::query(&queries.defaults)
        .bind(&tables)
        .bind(&default_contexts)
        .fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        let Some((relid, table, schema, _)) = chunk.row_table(&row, Catalog::AttrDef)? else {
            continue;
        };
        let attnum: i16 = row.col("attnum")?;
        let Some(column) = attrs
            .read
            .get(&(relid, attnum))
            .and_then(|c| table.columns.get_mut(c.index))
        else {
            continue;
        };
        let expression: Option<&str> = row.col("expression")?;
        let Some(expression) = expression.map(|e| strip(e, schema)) else {
            continue;
        };
        match column.generated.as_mut() {
            Some(generated) => generated.expression = expression,
            None => column.default = Some(expression),
        }
    }
    drop(rows);

    let mut constraints = Vec::new();
    let mut rows = sqlx::query(&queries.constraints)
        .bind(&tables)
        .bind(&contexts)
        .fetch(&mut *conn);
    // Indexes that implement a primary key, unique or exclusion constraint
    // are read as that constraint, not as an index.
    let mut constraint_indexes: FxHashMap<i64, bool> = FxHashMap::default();
    while let Some(row) = rows.try_next().await? {
        let Some((relid, ..)) = chunk.row_table(&row, Catalog::Constraint)? else {
            continue;
        };
        let contype: String = row.col("contype")?;
        if matches!(contype.as_str(), "p" | "u" | "x") {
            constraint_indexes.insert(row.col("conindid")?, false);
        }
        constraints.push(ConstraintRow {
            relid,
            name: row.col("conname")?,
            contype,
            conindid: row.col("conindid")?,
            conkey: row.col::<Option<Vec<i16>>>("conkey")?.unwrap_or_default(),
            confrelid: row.col::<Option<i64>>("confrelid")?.unwrap_or(0),
            confkey: row.col::<Option<Vec<i16>>>("confkey")?.unwrap_or_default(),
            on_update: row.col("confupdtype")?,
            on_delete: row.col("confdeltype")?,
            match_type: row.col("confmatchtype")?,
            deferrable: row.col("condeferrable")?,
            deferred: row.col("condeferred")?,
            validated: row.col("convalidated")?,
            definition: row.col("definition")?,
        });
    }
    drop(rows);

    let mut index_rows: Vec<IndexRow> = Vec::new();
    // Tables' indexes, and materialized views' (deparsed in their own
    // context).
    let indexed: Vec<Oid> = tables.iter().chain(&matviews).copied().collect();
    let index_contexts: Vec<Oid> = contexts.iter().chain(&matviews).copied().collect();
    let mut rows = sqlx::query(queries.indexes.get(relation_comments))
        .bind(&indexed)
        .bind(&index_contexts)
        .fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        let relid: i64 = row.col("relid")?;
        if let Some(&(s, v)) = chunk.views.get(&relid) {
            let digest = &mut chunk.digests[s];
            digest.add_row(Catalog::Index, row.col("k")?, row.col("x")?);
            index_carries(&row, &mut chunk.snaps[s].views[v].options, digest)?;
            index_rows.push(IndexRow::from_row(&row)?);
            continue;
        }
        let Some((_, table, _, digest)) = chunk.row_table(&row, Catalog::Index)? else {
            continue;
        };
        let indexrelid = index_carries(&row, &mut table.options, digest)?;
        if let Some(nulls_not_distinct) = constraint_indexes.get_mut(&indexrelid) {
            *nulls_not_distinct = row.col("nulls_not_distinct")?;
            continue;
        }
        index_rows.push(IndexRow::from_row(&row)?);
    }
    drop(rows);

    // Type, operator class and collation names, then the columns' types
    // and the indexes that need them.
    let names = Names::read(conn, &typed, &index_rows).await?;
    for c in typed {
        let Some((table, schema, _)) = chunk.table(c.relid) else {
            continue;
        };
        let (Some(column), Some(ty)) = (
            table.columns.get_mut(c.at.index),
            names.types.get(&(c.ty.0, c.typmod)),
        ) else {
            continue;
        };
        column.data_type = strip_names(&ty.name, schema);
        // Read under `search_path = pg_catalog`, a type of any other
        // schema prints qualified, and keeps its qualifier.
        if column.data_type.contains('.') {
            names_outside.extend(oid_of(c.relid));
        }
        if c.at.collation != ty.collation {
            column.collation = names.collations.get(&c.at.collation).cloned();
        }
        if c.storage != ty.storage {
            let option = format!("storage({})={}", column.name, storage_name(&c.storage));
            table.options.push(option);
        }
    }
    for row in index_rows {
        if let Some(&(s, v)) = chunk.views.get(&row.relid) {
            let view = &mut chunk.snaps[s].views[v];
            let index = index_from_row(&view.name, &chunk.names[s], row, &attrs, &names);
            view.indexes.push(index);
            continue;
        }
        let Some((table, schema, _)) = chunk.table(row.relid) else {
            continue;
        };
        let index = index_from_row(&table.name, schema, row, &attrs, &names);
        table.indexes.push(index);
    }

    // Triggers, of the tables that have any (a table's own or its
    // foreign keys' internal ones).
    if !triggered.is_empty() {
        let mut rows = sqlx::query(&queries.triggers)
            .bind(&triggered)
            .fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            let Some((_, table, schema, _)) = chunk.row_table(&row, Catalog::Trigger)? else {
                continue;
            };
            let definition: &str = row.col("definition")?;
            table.triggers.push(Trigger {
                name: row.col("name")?,
                definition: strip(definition, schema),
                state: match row.col::<&str>("enabled")? {
                    "D" => TriggerState::Disabled,
                    "R" => TriggerState::Replica,
                    "A" => TriggerState::Always,
                    _ => TriggerState::Enabled,
                },
            });
        }
    }

    // Row-level security policies, when the database has any.
    if has_policies {
        let mut rows = sqlx::query(&queries.policies)
            .bind(&tables)
            .fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            let Some((_, table, schema, _)) = chunk.row_table(&row, Catalog::Policy)? else {
                continue;
            };
            let mut roles: Vec<String> = row
                .col::<Vec<String>>("roles")?
                .iter()
                .map(|r| tenant_placeholder(r, schema, database))
                .collect();
            roles.sort();
            let expr = |column: &str| -> Result<Option<String>, sqlx::Error> {
                Ok(row.col::<Option<&str>>(column)?.map(|e| strip(e, schema)))
            };
            table.policies.push(Policy {
                name: row.col("name")?,
                command: match row.col::<&str>("cmd")? {
                    "r" => "select",
                    "a" => "insert",
                    "w" => "update",
                    "d" => "delete",
                    _ => "all",
                }
                .to_owned(),
                permissive: row.col("permissive")?,
                roles,
                using: expr("using_expr")?,
                with_check: expr("check_expr")?,
            });
        }
    }

    // Routines, only for the schemas that have any: most tenants have
    // none, and a database-per-tenant read would otherwise plan a query
    // over pg_proc, pg_language, pg_aggregate and pg_description on each
    // fresh backend for nothing.
    let with_routines: Vec<&str> = chunk
        .names
        .iter()
        .zip(&has_routines)
        .filter(|(_, has)| **has)
        .map(|(name, _)| name.as_str())
        .collect();
    if !with_routines.is_empty() {
        let mut rows = sqlx::query(&queries.routines)
            .bind(&with_routines)
            .fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            let Some(&s) = position.get(row.col::<&str>("nspname")?) else {
                continue;
            };
            let oid: i64 = row.col("k")?;
            chunk.digests[s].add_row(Catalog::Proc, oid, row.col("x")?);
            chunk.digests[s].add(row.col("h_comment")?);
            let mut routine = routine_from_row(&row, &chunk.names[s], database)?;
            if let Some(c) = row.col::<Option<&str>>("comment")? {
                let comment = tenantry_model::quote::postgres_literal(c);
                routine
                    .definition
                    .push_str(&format!("\nCOMMENT {comment};"));
            }
            let at = chunk.snaps[s].routines.len();
            object_owners.push((s, Owned::Routine(at), row.col("owner_oid")?));
            chunk.snaps[s].routines.push(routine);
        }
    }

    // Row types of no relation read: standalone composite types, or a
    // relation of an extension (told apart by the next query).
    let mut composites: FxHashMap<i64, CompositeRead> = FxHashMap::default();
    let mut rows = sqlx::query(queries.types.get(type_comments))
        .bind(schemas)
        .fetch(&mut *conn);
    while let Some(row) = rows.try_next().await? {
        let Some(&s) = position.get(row.col::<&str>("nspname")?) else {
            continue;
        };
        let digest = &mut chunk.digests[s];
        digest.add_row(Catalog::Type, row.col("k")?, row.col("x")?);
        let labels: Option<Vec<Option<i64>>> = row.col("h_labels")?;
        for h in labels.unwrap_or_default() {
            digest.add(h);
        }
        let constraints: Option<Vec<Option<i64>>> = row.col("h_constraints")?;
        for h in constraints.unwrap_or_default() {
            digest.add(h);
        }
        digest.add(row.col("h_comment")?);
        // A domain's base type in another schema prints qualified in its
        // definition: counted and listed like the other objects it names.
        if let Some(oid) = row.col::<Option<i64>>("base_oid")? {
            digest.add_outside_type(
                (oid, row.col("x_base")?),
                (row.col("base_ns")?, row.col("x_base_ns")?),
            );
        }
        let comment: Option<String> = row.col("comment")?;
        let typtype: &str = row.col("typtype")?;
        if typtype == "d" || typtype == "r" {
            let mut ty = if typtype == "d" {
                domain_from_row(&row, &chunk.names[s], database)?
            } else {
                range_from_row(&row, &chunk.names[s], database)?
            };
            ty.comment = comment;
            let at = chunk.snaps[s].types.len();
            object_owners.push((s, Owned::Type(at), row.col("owner_oid")?));
            chunk.snaps[s].types.push(ty);
            continue;
        }
        if let Some(relid) = row.col::<Option<i64>>("typrelid")? {
            if !chunk.relations.contains_key(&relid) {
                composites.insert(
                    relid,
                    CompositeRead {
                        at: s,
                        name: row.col("typname")?,
                        grants: grants_of(&row, None, &chunk.names[s], database)?,
                        owner: row.col("owner_oid")?,
                        comment: comment.clone(),
                    },
                );
            }
        }
        if typtype == "e" {
            let at = chunk.snaps[s].enums.len();
            object_owners.push((s, Owned::Enum(at), row.col("owner_oid")?));
            chunk.snaps[s].enums.push(EnumType {
                owner: None,
                name: row.col("typname")?,
                labels: row
                    .col::<Option<Vec<String>>>("labels")?
                    .unwrap_or_default(),
                grants: grants_of(&row, None, &chunk.names[s], database)?,
                comment,
            });
        }
    }
    drop(rows);

    if !composites.is_empty() {
        let relids: Vec<Oid> = composites.keys().filter_map(|o| oid_of(*o)).collect();
        let mut rows = sqlx::query(&queries.composites)
            .bind(&relids)
            .fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            let Some(CompositeRead {
                at: s,
                name,
                grants,
                owner,
                comment,
            }) = composites.remove(&row.col::<i64>("oid")?)
            else {
                continue;
            };
            let digest = &mut chunk.digests[s];
            digest.add(row.col("h_class")?);
            for h in row.col::<Vec<Option<i64>>>("h_attributes")? {
                digest.add(h);
            }
            // Its attributes' types in another schema, `oid xmin ns xmin`.
            for named in row.col::<Vec<String>>("named_types")? {
                let mut parts = named.split(' ');
                let oid = number::<i64>(parts.next(), "a type's oid")?;
                let xmin = number::<u32>(parts.next(), "a type's xmin")?;
                let ns = number::<i64>(parts.next(), "a schema's oid")?;
                let ns_xmin = number::<u32>(parts.next(), "a schema's xmin")?;
                digest.add_outside_type((oid, Some(Xmin(xmin))), (ns, Some(Xmin(ns_xmin))));
            }
            let attributes: Vec<String> = row.col("attributes")?;
            let schema = &chunk.names[s];
            object_owners.push((s, Owned::Type(chunk.snaps[s].types.len()), owner));
            chunk.snaps[s].types.push(UserType {
                owner: None,
                name,
                kind: "composite".into(),
                definition: strip_names(&attributes.join(", "), schema),
                grants,
                comment,
            });
        }
    }

    // Tables outside this chunk that foreign keys point to or that own a
    // sequence: their names and columns, in one lookup.
    let outside = outside_relations(
        conn,
        constraints
            .iter()
            .map(|c| c.confrelid)
            .chain(owned.iter().filter_map(|(_, r)| r.owner.map(|(t, _)| t))),
        &chunk.relations,
        &mut attrs,
    )
    .await?;
    // Schema and name of any relation, read or outside.
    let relation = |oid: i64| -> Option<(String, String)> {
        match chunk.relations.get(&oid) {
            Some((s, name)) => Some((chunk.names[*s].clone(), name.clone())),
            None => outside.get(&oid).cloned(),
        }
    };
    let targets: Vec<Option<(String, String)>> =
        constraints.iter().map(|c| relation(c.confrelid)).collect();
    let owners: Vec<Option<String>> = owned
        .iter()
        .map(|(_, r)| {
            let (table, column) = r.owner?;
            let (_, table_name) = relation(table)?;
            let column_name = attrs.names.get(&(table, column))?;
            Some(format!("{table_name}.{column_name}"))
        })
        .collect();
    for (c, target) in constraints.into_iter().zip(targets) {
        let Some((table, schema, _)) = chunk.table(c.relid) else {
            continue;
        };
        // A foreign key to another schema's table (or to one not found).
        if c.confrelid != 0 && target.as_ref().is_none_or(|(s, _)| s != schema) {
            names_outside.extend(oid_of(c.relid));
        }
        let nulls_not_distinct = constraint_indexes
            .get(&c.conindid)
            .copied()
            .unwrap_or(false);
        add_constraint(table, schema, c, target, nulls_not_distinct, &attrs);
    }
    // A serial column's sequence is owned by `table.column`; an identity
    // column's options are an option of its table.
    for ((s, read), owned_by) in owned.into_iter().zip(owners) {
        let SequenceRead {
            owner,
            identity,
            mut sequence,
        } = read;
        if identity {
            let column = owner.and_then(|key| attrs.names.get(&key));
            let table = owner.and_then(|(relid, _)| chunk.table(relid));
            if let (Some(column), Some((table, ..))) = (column, table) {
                table.options.push(format!(
                    "identity({column})=AS {} START {} INCREMENT {} MINVALUE {} MAXVALUE {} CACHE {}{}",
                    sequence.data_type,
                    sequence.start,
                    sequence.increment,
                    sequence.min_value,
                    sequence.max_value,
                    sequence.cache,
                    if sequence.cycle { " CYCLE" } else { "" }
                ));
            }
            continue;
        }
        sequence.owned_by = owned_by;
        chunk.snaps[s].sequences.push(sequence);
    }

    // Objects outside the schemas that theirs refer to, counted here and
    // listed in the fingerprint, where a re-check finds them. Without user
    // functions, collations, operators or operator classes only views,
    // foreign keys and column types can name another schema's objects, and
    // when none does nothing needs counting: most tenant databases skip
    // the planning of the full query, and most of the short one.
    let outside: Vec<(String, String, i64, Option<Xmin>)> = if has_callees {
        sqlx::query_as(&queries.outside)
            .bind(schemas)
            .fetch_all(&mut *conn)
            .await?
    } else if !views.is_empty() || !names_outside.is_empty() {
        // The views, and only the tables that name something outside:
        // the others add nothing, and a chunk has thousands.
        let mut named: Vec<Oid> = views.iter().chain(&names_outside).copied().collect();
        named.sort_unstable_by_key(|o| o.0);
        named.dedup();
        sqlx::query_as(&queries.outside_named)
            .bind(&named)
            .fetch_all(&mut *conn)
            .await?
    } else {
        Vec::new()
    };
    for (schema, kind, oid, xmin) in outside {
        let kind = kind.chars().next().and_then(OutsideKind::from_letter);
        if let (Some(&s), Some(kind)) = (position.get(&schema), kind) {
            chunk.digests[s].add_outside(OutsideRef { kind, oid }, xmin);
        }
    }

    let usual = mark_owners(conn, &mut chunk, &object_owners, &schema_owners, database).await?;

    let Chunk {
        names,
        snaps,
        digests,
        ..
    } = chunk;
    for (((name, mut snapshot), digest), usual_owner) in
        names.into_iter().zip(snaps).zip(digests).zip(usual)
    {
        snapshot.canonicalize();
        let fingerprint = digest.fingerprint();
        out.insert(
            name,
            SchemaRead {
                snapshot,
                fingerprint,
                usual_owner,
            },
        );
    }
    Ok(Read::Done)
}

/// An object of a chunk's snapshot that has an owner, by its position in
/// its schema's list (before `canonicalize` sorts them).
#[derive(Clone, Copy)]
enum Owned {
    Table(usize),
    View(usize),
    Routine(usize),
    Enum(usize),
    Type(usize),
}

/// Sets `owner` on each object owned by a role other than the one that
/// owns most of its schema's objects (on a tie, the schema's owner if it is
/// one of them, else the lowest oid): the template is measured on a scratch
/// server by whoever runs it and each tenant is owned by its own or the
/// fleet's role, so owners compare relative to their schema — a table
/// created by a superuser among a tenant's own is drift, a fleet owned
/// throughout by other roles than the scratch is not. Names of the few
/// roles that differ are looked up (`pg_roles`, readable by every user)
/// and read through the role rule.
async fn mark_owners(
    conn: &mut PgConnection,
    chunk: &mut Chunk,
    owners: &[(usize, Owned, i64)],
    schema_owners: &[i64],
    database: &str,
) -> Result<Vec<Option<i64>>, sqlx::Error> {
    let mut counts: Vec<FxHashMap<i64, usize>> = vec![FxHashMap::default(); chunk.names.len()];
    for (s, _, owner) in owners {
        *counts[*s].entry(*owner).or_default() += 1;
    }
    let usual: Vec<Option<i64>> = counts
        .iter()
        .zip(schema_owners)
        .map(|(count, schema_owner)| {
            let most = count.values().copied().max()?;
            let mut tied: Vec<i64> = count
                .iter()
                .filter(|(_, n)| **n == most)
                .map(|(o, _)| *o)
                .collect();
            tied.sort_unstable();
            Some(if tied.contains(schema_owner) {
                *schema_owner
            } else {
                tied[0]
            })
        })
        .collect();
    let odd: Vec<&(usize, Owned, i64)> = owners
        .iter()
        .filter(|(s, _, owner)| usual[*s] != Some(*owner))
        .collect();
    if odd.is_empty() {
        return Ok(usual);
    }
    let oids = distinct_oids(odd.iter().map(|(_, _, o)| *o));
    let roles: FxHashMap<i64, String> =
        sqlx::query_as("SELECT oid::int8, rolname::text FROM pg_roles WHERE oid = ANY($1)")
            .bind(&oids)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    for (s, object, owner) in odd {
        // A role dropped since cannot own anything; its oid stands in.
        let name = roles
            .get(owner)
            .cloned()
            .unwrap_or_else(|| owner.to_string());
        let name = Some(tenant_placeholder(&name, &chunk.names[*s], database));
        let snap = &mut chunk.snaps[*s];
        let slot = match *object {
            Owned::Table(i) => snap.tables.get_mut(i).map(|t| &mut t.owner),
            Owned::View(i) => snap.views.get_mut(i).map(|v| &mut v.owner),
            Owned::Routine(i) => snap.routines.get_mut(i).map(|r| &mut r.owner),
            Owned::Enum(i) => snap.enums.get_mut(i).map(|e| &mut e.owner),
            Owned::Type(i) => snap.types.get_mut(i).map(|t| &mut t.owner),
        };
        if let Some(slot) = slot {
            *slot = name;
        }
    }
    Ok(usual)
}

/// Schema and name, by oid, of the relations among `oids` that this chunk
/// did not read; their column names go into `attrs`.
async fn outside_relations(
    conn: &mut PgConnection,
    oids: impl Iterator<Item = i64>,
    read: &FxHashMap<i64, (usize, String)>,
    attrs: &mut Attributes,
) -> Result<FxHashMap<i64, (String, String)>, sqlx::Error> {
    let outside = distinct_oids(oids.filter(|t| !read.contains_key(t)));
    if outside.is_empty() {
        return Ok(FxHashMap::default());
    }
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
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT c.oid::int8, n.nspname::text, c.relname::text
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.oid = ANY($1)",
    )
    .bind(&outside)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(oid, s, t)| (oid, (s, t))).collect())
}

/// A sequence read: the (table oid, attribute number) of the column that
/// owns it, if one does, and whether it is that column's identity (its
/// options then belong to the column, its name to nobody).
struct SequenceRead {
    owner: Option<(i64, i16)>,
    identity: bool,
    sequence: Sequence,
}

/// A sequence from its relation's row.
fn sequence_from_row(row: &PgRow, name: &str) -> Result<Option<SequenceRead>, sqlx::Error> {
    let Some(data_type) = row.col::<Option<String>>("seq_type")? else {
        return Ok(None);
    };
    let dependency = row.col::<Option<&str>>("dependency")?;
    let owner = match dependency {
        Some(_) => row
            .col::<Option<i64>>("owner")?
            .zip(row.col::<Option<i16>>("owner_column")?),
        None => None,
    };
    Ok(Some(SequenceRead {
        owner,
        identity: dependency == Some("i"),
        sequence: Sequence {
            name: name.to_owned(),
            data_type,
            start: row.col("seqstart")?,
            increment: row.col("seqincrement")?,
            min_value: row.col("seqmin")?,
            max_value: row.col("seqmax")?,
            cache: row.col("seqcache")?,
            cycle: row.col("seqcycle")?,
            owned_by: None,
            grants: Vec::new(),
            comment: None,
        },
    }))
}

/// A routine's canonical text from its catalog attributes: the same
/// attributes `CREATE FUNCTION` would be given, each printed one way, so
/// the text changes exactly when one of them does. In `SET` values, a
/// list element naming the tenant's own schema reads `{tenant}`.
fn routine_from_row(row: &PgRow, schema: &str, database: &str) -> Result<Routine, sqlx::Error> {
    let name: String = row.col("name")?;
    let kind = match row.col::<&str>("kind")? {
        "p" => "procedure",
        "a" => "aggregate",
        "w" => "window",
        _ => "function",
    };
    let identity: &str = row.col("identity")?;
    let arguments: &str = row.col("arguments")?;
    let quoted = tenantry_model::quote::postgres(&name);
    let mut def = if kind == "aggregate" {
        let transition: Option<&str> = row.col("agg_transition")?;
        let state: Option<&str> = row.col("agg_state")?;
        let mut d = format!(
            "CREATE AGGREGATE {quoted}({}) (SFUNC = {}, STYPE = {}",
            strip_names(arguments, schema),
            strip_names(transition.unwrap_or_default(), schema),
            strip_names(state.unwrap_or_default(), schema)
        );
        if let Some(f) = row.col::<Option<&str>>("agg_final")? {
            d.push_str(&format!(", FINALFUNC = {}", strip_names(f, schema)));
        }
        if let Some(i) = row.col::<Option<&str>>("agg_init")? {
            d.push_str(&format!(
                ", INITCOND = {}",
                tenantry_model::quote::postgres_literal(i)
            ));
        }
        d.push(')');
        d
    } else {
        let mut d = format!(
            "CREATE {} {quoted}({})",
            if kind == "procedure" {
                "PROCEDURE"
            } else {
                "FUNCTION"
            },
            strip_names(arguments, schema)
        );
        if let Some(result) = row.col::<Option<&str>>("result")? {
            d.push_str(&format!(" RETURNS {}", strip_names(result, schema)));
        }
        let language: &str = row.col("language")?;
        d.push_str(&format!("\n    LANGUAGE {language}"));
        if kind != "procedure" {
            d.push_str(match row.col::<&str>("volatility")? {
                "i" => " IMMUTABLE",
                "s" => " STABLE",
                _ => " VOLATILE",
            });
            if row.col::<bool>("strict")? {
                d.push_str(" STRICT");
            }
            if row.col::<bool>("leakproof")? {
                d.push_str(" LEAKPROOF");
            }
            d.push_str(match row.col::<&str>("parallel")? {
                "s" => " PARALLEL SAFE",
                "r" => " PARALLEL RESTRICTED",
                _ => " PARALLEL UNSAFE",
            });
            d.push_str(&format!(" COST {}", row.col::<f64>("cost")?));
            if row.col::<bool>("returns_set")? {
                d.push_str(&format!(" ROWS {}", row.col::<f64>("rows")?));
            }
        }
        if row.col::<bool>("security_definer")? {
            d.push_str(" SECURITY DEFINER");
        }
        let mut config = row
            .col::<Option<Vec<String>>>("config")?
            .unwrap_or_default();
        config.sort();
        for setting in config {
            let (key, value) = setting.split_once('=').unwrap_or((&setting, ""));
            let value = if key == "search_path" {
                search_path_placeholder(value, schema)
            } else {
                value.to_owned()
            };
            d.push_str(&format!("\n    SET {key} = {value}"));
        }
        match row.col::<Option<&str>>("sql_body")? {
            Some(body) => d.push_str(&format!("\n{}", strip(body.trim(), schema))),
            None => {
                let source: &str = row.col("source")?;
                d.push_str(&format!(
                    "\nAS $body${}$body$",
                    strip(&normalise_body(source), schema)
                ));
            }
        }
        d
    };
    def.push(';');
    Ok(Routine {
        owner: None,
        name,
        kind: kind.to_owned(),
        arguments: strip_names(identity, schema),
        definition: def,
        grants: grants_of(row, None, schema, database)?,
    })
}

/// A domain from its type's row: base type, collation, default, NOT NULL
/// and its constraints by name, as `CREATE DOMAIN` would give them.
fn domain_from_row(row: &PgRow, schema: &str, database: &str) -> Result<UserType, sqlx::Error> {
    let mut d = strip_names(row.col::<&str>("domain_base")?, schema);
    if let Some(c) = row.col::<Option<&str>>("domain_collation")? {
        d.push_str(&format!(" COLLATE {}", tenantry_model::quote::postgres(c)));
    }
    if let Some(default) = row.col::<Option<&str>>("domain_default")? {
        d.push_str(&format!(" DEFAULT {}", strip(default, schema)));
    }
    if row.col::<bool>("domain_not_null")? {
        d.push_str(" NOT NULL");
    }
    for check in row
        .col::<Option<Vec<String>>>("domain_checks")?
        .unwrap_or_default()
    {
        d.push_str(&format!(" CONSTRAINT {}", strip(&check, schema)));
    }
    Ok(UserType {
        owner: None,
        name: row.col("typname")?,
        kind: "domain".into(),
        definition: d,
        grants: grants_of(row, None, schema, database)?,
        comment: None,
    })
}

/// A range type: its options as `CREATE TYPE … AS RANGE (…)` takes them,
/// those left to their default out, and the multirange type's name only
/// when it is not the one the server would choose (`floatrange` →
/// `floatmultirange`, `period` → `period_multirange`).
fn range_from_row(row: &PgRow, schema: &str, database: &str) -> Result<UserType, sqlx::Error> {
    let name: String = row.col("typname")?;
    let mut d = strip_names(
        row.col::<Option<&str>>("range_def")?.unwrap_or_default(),
        schema,
    );
    if let Some(multirange) = row.col::<Option<String>>("multirange")? {
        let default = match name.find("range") {
            Some(at) => format!("{}multirange{}", &name[..at], &name[at + 5..]),
            None => format!("{name}_multirange"),
        };
        if multirange != default {
            d.push_str(", MULTIRANGE_TYPE_NAME = ");
            d.push_str(&tenantry_model::quote::postgres(&multirange));
        }
    }
    Ok(UserType {
        owner: None,
        name,
        kind: "range".into(),
        definition: d,
        grants: grants_of(row, None, schema, database)?,
        comment: None,
    })
}

/// The `grants` column of a row ([`acl_read`]), with each role read through
/// the role rule ([`tenant_placeholder`]); `column` for a column's.
///
/// A privilege of the tenant's own role (`{tenant}_app`) is left out: a
/// template cannot name that role, so such privileges come from the fleet's
/// provisioning, never from the template, and would set every tenant apart
/// from it. PUBLIC, the owner, fixed roles and another tenant's role are
/// compared.
fn grants_of(
    row: &PgRow,
    column: Option<&str>,
    schema: &str,
    database: &str,
) -> Result<Vec<Grant>, sqlx::Error> {
    grants_in(row, "grants", column, schema, database)
}

/// [`grants_of`] from the row's column `from`.
fn grants_in(
    row: &PgRow,
    from: &str,
    column: Option<&str>,
    schema: &str,
    database: &str,
) -> Result<Vec<Grant>, sqlx::Error> {
    let Some(items) = row.col::<Option<Vec<String>>>(from)? else {
        return Ok(Vec::new());
    };
    let entries = crate::pg_acl::acl_changes(&items).ok_or_else(|| {
        sqlx::Error::Decode(format!("privileges read from `{from}` are not aclitems").into())
    })?;
    let mut grants: Vec<Grant> = entries
        .into_iter()
        .map(|(revoked, privilege, grantee, grantable)| Grant {
            revoked,
            privilege,
            column: column.map(str::to_owned),
            grantee: tenant_placeholder(&grantee, schema, database),
            grantable,
        })
        .filter(|g| !g.grantee.contains(TENANT))
        .collect();
    grants.sort();
    Ok(grants)
}

/// A routine's source with line endings and trailing blanks made uniform:
/// a body saved from Windows or re-indented at the end is the same body.
fn normalise_body(source: &str) -> String {
    source
        .replace("\r\n", "\n")
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned()
}

/// A `search_path` setting as PostgreSQL stores it (`a, "B", public`),
/// with the element that names the tenant's own schema read as
/// `{tenant}`: element by element, never by searching the text.
fn search_path_placeholder(value: &str, schema: &str) -> String {
    value
        .split(',')
        .map(|element| {
            let e = element.trim();
            let unquoted = e
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .map(|r| r.replace("\"\"", "\""))
                .unwrap_or_else(|| e.to_owned());
            if unquoted == schema {
                TENANT.to_owned()
            } else {
                e.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The placeholder the role rule and `SET search_path` put for the tenant.
const TENANT: &str = "{tenant}";

/// A role name with the tenant's name, where it stands as a whole part of
/// the name (`tenant_42_app`, `app-tenant_42`), read as `{tenant}`: the
/// rule that lets each tenant's own role compare alike. The tenant's name
/// is its schema's, or for a database-per-tenant tenant (schema `public`)
/// its database's.
fn tenant_placeholder(role: &str, schema: &str, database: &str) -> String {
    let schema = if schema == "public" { database } else { schema };
    if schema.is_empty() {
        return role.to_owned();
    }
    let part = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
    let mut out = String::with_capacity(role.len());
    let mut rest = role;
    while let Some(at) = rest.find(schema) {
        let before = if at > 0 {
            rest[..at].chars().next_back()
        } else {
            out.chars().next_back()
        };
        let after = rest[at + schema.len()..].chars().next();
        out.push_str(&rest[..at]);
        if part(before) && part(after) {
            out.push_str(TENANT);
        } else {
            out.push_str(schema);
        }
        rest = &rest[at + schema.len()..];
    }
    out.push_str(rest);
    out
}

/// An expression or statement without the tenant's own schema, in one
/// spelling ([`postgres_expression`]).
fn strip(sql: &str, schema: &str) -> String {
    collapse_whitespace(&postgres_expression(&strip_own_schema(
        sql,
        schema,
        TextKind::Sql,
    )))
}

/// A type name, signature or argument list without the tenant's own schema.
fn strip_names(sql: &str, schema: &str) -> String {
    collapse_whitespace(&strip_own_schema(sql, schema, TextKind::Names))
}

/// A column as pg_attribute describes it; its type is named from
/// [`Names`], its default or generation expression from pg_attrdef.
fn column_from_row(row: &PgRow) -> Result<Column, sqlx::Error> {
    let attnum: i16 = row.col("attnum")?;
    let mut c = Column::new(
        row.col::<String>("attname")?,
        u32::try_from(attnum).unwrap_or(0),
        String::new(),
    );
    c.nullable = !row.col::<bool>("attnotnull")?;
    if row.col::<&str>("attgenerated")? == "s" {
        c.generated = Some(GeneratedColumn {
            expression: String::new(),
            stored: true,
        });
    }
    c.identity = match row.col::<&str>("attidentity")? {
        "a" => Some(Identity::Always),
        "d" => Some(Identity::ByDefault),
        _ => None,
    };
    Ok(c)
}

fn action(code: &str) -> ReferentialAction {
    ReferentialAction::parse(code).unwrap_or(ReferentialAction::NoAction)
}

fn add_constraint(
    table: &mut Table,
    schema: &str,
    c: ConstraintRow,
    target: Option<(String, String)>,
    nulls_not_distinct: bool,
    attrs: &Attributes,
) {
    let columns = attrs.names_of(c.relid, &c.conkey);
    let addition = naming::column_addition(columns.iter().map(|c| Some(c.as_str())));
    match c.contype.as_str() {
        "p" => {
            let generated = naming::is_generated(&c.name, &table.name, None, "pkey");
            table.primary_key = Some(PrimaryKey {
                name: ObjectName::new(c.name, generated),
                columns,
            });
        }
        "u" => {
            let generated = naming::is_generated(&c.name, &table.name, Some(&addition), "key");
            table.uniques.push(UniqueConstraint {
                name: ObjectName::new(c.name, generated),
                columns,
                nulls_not_distinct,
            });
        }
        "f" => {
            let generated = naming::is_generated(&c.name, &table.name, Some(&addition), "fkey");
            let deferrable = match (c.deferrable, c.deferred) {
                (false, _) => Deferrable::NotDeferrable,
                (true, false) => Deferrable::InitiallyImmediate,
                (true, true) => Deferrable::InitiallyDeferred,
            };
            let (target_schema, target_table) = target.unzip();
            if !c.validated {
                // Existing rows were never checked against it.
                table
                    .options
                    .push(format!("not_valid=foreign key ({})", columns.join(", ")));
            }
            table.foreign_keys.push(ForeignKey {
                name: ObjectName::new(c.name, generated),
                columns,
                target_schema: target_schema.filter(|s| s != schema),
                target_table: target_table.unwrap_or_default(),
                target_columns: attrs.names_of(c.confrelid, &c.confkey),
                on_update: action(&c.on_update),
                on_delete: action(&c.on_delete),
                match_full: c.match_type == "f",
                deferrable,
            });
        }
        "c" | "x" => {
            let (name2, label) = if c.contype == "c" {
                // A CHECK over exactly one column is named after it.
                let single = (columns.len() == 1).then(|| columns[0].clone());
                (single, "check")
            } else {
                (Some(addition), "excl")
            };
            let generated = naming::is_generated(&c.name, &table.name, name2.as_deref(), label);
            table.checks.push(CheckConstraint {
                name: ObjectName::new(c.name, generated),
                expression: strip(c.definition.as_deref().unwrap_or_default(), schema),
            });
        }
        _ => {}
    }
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

/// An index row, kept until the names it refers to are known.
struct IndexRow {
    relid: i64,
    name: String,
    unique: bool,
    method: String,
    nkey: usize,
    attnums: Vec<i16>,
    options: Vec<i16>,
    defs: Option<Vec<String>>,
    opclasses: Vec<i64>,
    collations: Vec<i64>,
    predicate: Option<String>,
    invalid: bool,
}

impl IndexRow {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let oids = |column: &str| -> Result<Vec<i64>, sqlx::Error> {
            let oids: Vec<Oid> = row.col(column)?;
            Ok(oids.into_iter().map(|o| i64::from(o.0)).collect())
        };
        Ok(Self {
            relid: row.col("relid")?,
            name: row.col("index_name")?,
            unique: row.col("indisunique")?,
            method: row.col("amname")?,
            nkey: usize::try_from(row.col::<i32>("nkey")?).unwrap_or(0),
            attnums: row.col("keys")?,
            options: row.col("options")?,
            defs: row.col("key_defs")?,
            opclasses: oids("opclasses")?,
            collations: oids("collations")?,
            predicate: row.col("predicate")?,
            invalid: !row.col::<bool>("indisvalid")?,
        })
    }
}

fn index_from_row(
    table: &str,
    schema: &str,
    row: IndexRow,
    attrs: &Attributes,
    names: &Names,
) -> Index {
    let IndexRow {
        relid,
        name,
        unique,
        method,
        nkey,
        attnums,
        options,
        defs,
        opclasses,
        collations,
        predicate,
        invalid,
    } = row;

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
            n => attrs.read.get(&(relid, n)).map_or(0, |c| c.collation) == collation,
        };
        if collation != 0 && !inherited {
            if let Some(c) = names.collations.get(&collation) {
                opts.push(format!("collate {c}"));
            }
        }
        if let Some(o) = opclasses.get(i).and_then(|o| names.opclasses.get(o)) {
            opts.push(strip_names(o, schema));
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
    Index {
        name: ObjectName::new(name, generated),
        unique,
        method,
        keys,
        include,
        predicate: predicate.map(|p| strip(&p, schema)),
        invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::{search_path_placeholder, tenant_placeholder};

    #[test]
    fn a_role_or_search_path_naming_the_tenant_reads_as_a_placeholder() {
        assert_eq!(
            tenant_placeholder("tenant_42_app", "tenant_42", "db"),
            "{tenant}_app"
        );
        assert_eq!(
            tenant_placeholder("app-tenant_42", "tenant_42", "db"),
            "app-{tenant}"
        );
        assert_eq!(
            tenant_placeholder("tenant_420_app", "tenant_42", "db"),
            "tenant_420_app"
        );
        assert_eq!(
            tenant_placeholder("tenant_43_app", "tenant_42", "db"),
            "tenant_43_app"
        );
        assert_eq!(tenant_placeholder("public", "public", "db"), "public");
        assert_eq!(
            tenant_placeholder("acme_app", "public", "acme"),
            "{tenant}_app"
        );
        assert_eq!(tenant_placeholder("xt_app", "t", "db"), "xt_app");
        assert_eq!(
            search_path_placeholder("acme, public, \"Acme\"", "acme"),
            "{tenant}, public, \"Acme\""
        );
        assert_eq!(
            search_path_placeholder("\"Acme\", pg_temp", "Acme"),
            "{tenant}, pg_temp"
        );
    }
}
