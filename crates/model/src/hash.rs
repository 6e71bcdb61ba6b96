//! The versioned canonical encoding and the SHA-256 drift hash.
//!
//! Architecture invariant: the hash is computed over the explicit encoding in
//! this module, never over `Debug`, `Display` or JSON output. Any change to
//! what is encoded, or how, must bump [`CanonicalFormat`] so that a hash made
//! by an older canonicaliser is recognised as *another format*, not as drift.
//!
//! Encoding (formats v1 to v6): a byte stream of fields. A string is its UTF-8 length
//! as a big-endian `u32` followed by its bytes; a flag is one byte `0`/`1`;
//! an optional value is a flag followed by the value when present; a list is
//! its count as a `u32` followed by its items; a *set* (order-insensitive) is
//! encoded item by item into separate buffers that are sorted bytewise before
//! being written as a list of strings. Every record starts with a tag string
//! naming its type, so no two different structures share an encoding.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::schema::{
    CheckConstraint, Column, Deferrable, EnumType, Event, ForeignKey, Grant, Identity, Index,
    IndexKey, IndexKeyTarget, ObjectName, Policy, PrimaryKey, ReferentialAction, Routine,
    SchemaSnapshot, Sequence, Table, TableKind, Trigger, UniqueConstraint, UserType, View,
};

/// The version of the canonical encoding. Hashes of different formats are
/// never compared as drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CanonicalFormat {
    /// Tables, views, enums and sequences. Hashes of this format are still
    /// read (from registries written by older versions) so that they are
    /// recognised as another format; nothing computes them any more.
    V1,
    /// V1 plus triggers and row-level security policies (in their table's
    /// record), routines and events (records of their own). Row security
    /// enabled or forced is a table option.
    V2,
    /// V2 plus privileges (in their object's record; the schema's own in a
    /// `schema` record), and catalog text read with only `pg_catalog` on
    /// PostgreSQL's search path, so another schema's objects stay
    /// qualified (see [`crate::own_schema`]).
    V3,
    /// V3 plus a materialized view's indexes and a view's column
    /// privileges, in the view's record.
    V4,
    /// V4 plus ownership relative to the schema: a table, view, routine,
    /// enum or type owned by a role other than the one that owns most of
    /// its schema names that role.
    V5,
    /// V5 plus the comments on indexes (an option of their table or
    /// materialized view, as on MySQL), a view's columns, sequences, enums,
    /// domains and composite types.
    V6,
    /// V6 plus range types (a `type` record) and the extensions installed
    /// into the schema (`extension` records, by name); a procedure's record
    /// is named `procedure name(arguments)`, apart from a MySQL function of
    /// the same name.
    V7,
}

impl CanonicalFormat {
    pub const CURRENT: CanonicalFormat = CanonicalFormat::V7;

    pub fn number(self) -> u16 {
        match self {
            CanonicalFormat::V1 => 1,
            CanonicalFormat::V2 => 2,
            CanonicalFormat::V3 => 3,
            CanonicalFormat::V4 => 4,
            CanonicalFormat::V5 => 5,
            CanonicalFormat::V6 => 6,
            CanonicalFormat::V7 => 7,
        }
    }

    fn from_number(n: u16) -> Option<Self> {
        match n {
            1 => Some(CanonicalFormat::V1),
            2 => Some(CanonicalFormat::V2),
            3 => Some(CanonicalFormat::V3),
            4 => Some(CanonicalFormat::V4),
            5 => Some(CanonicalFormat::V5),
            6 => Some(CanonicalFormat::V6),
            7 => Some(CanonicalFormat::V7),
            _ => None,
        }
    }

    fn domain(self) -> &'static [u8] {
        match self {
            CanonicalFormat::V1 => b"tenantry.schema-hash.v1\0",
            CanonicalFormat::V2 => b"tenantry.schema-hash.v2\0",
            CanonicalFormat::V3 => b"tenantry.schema-hash.v3\0",
            CanonicalFormat::V4 => b"tenantry.schema-hash.v4\0",
            CanonicalFormat::V5 => b"tenantry.schema-hash.v5\0",
            CanonicalFormat::V6 => b"tenantry.schema-hash.v6\0",
            CanonicalFormat::V7 => b"tenantry.schema-hash.v7\0",
        }
    }
}

/// A SHA-256 digest stamped with the canonical format that produced it.
/// Displayed and parsed as `v7:<64 lowercase hex digits>`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DriftHash {
    format: CanonicalFormat,
    digest: [u8; 32],
}

impl DriftHash {
    pub fn format(&self) -> CanonicalFormat {
        self.format
    }

    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// Compares two hashes, telling a format change apart from drift.
    pub fn compare(&self, other: &DriftHash) -> HashComparison {
        if self.format != other.format {
            HashComparison::DifferentFormat
        } else if self.digest == other.digest {
            HashComparison::Equal
        } else {
            HashComparison::Different
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashComparison {
    Equal,
    Different,
    /// Made by different canonicaliser versions: re-measure, do not alert.
    DifferentFormat,
}

impl fmt::Display for DriftHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}:{}", self.format.number(), hex::encode(self.digest))
    }
}

impl fmt::Debug for DriftHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DriftHash({self})")
    }
}

impl Serialize for DriftHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseHashError {
    #[error("a schema hash looks like `v7:` followed by 64 hex digits")]
    Malformed,
    #[error("schema hash format v{0} is not known to this version of Tenantry")]
    UnknownFormat(u16),
}

impl FromStr for DriftHash {
    type Err = ParseHashError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (version, hex_digits) = s
            .strip_prefix('v')
            .and_then(|rest| rest.split_once(':'))
            .ok_or(ParseHashError::Malformed)?;
        let number: u16 = version.parse().map_err(|_| ParseHashError::Malformed)?;
        let format =
            CanonicalFormat::from_number(number).ok_or(ParseHashError::UnknownFormat(number))?;
        if hex_digits.len() != 64 || hex_digits.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ParseHashError::Malformed);
        }
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_digits, &mut digest).map_err(|_| ParseHashError::Malformed)?;
        Ok(DriftHash { format, digest })
    }
}

/// The kind of a top-level schema object that gets its own hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Table,
    View,
    Enum,
    Sequence,
    /// A function or procedure, named `name(arguments)`
    /// (`procedure name(arguments)` for a procedure).
    Routine,
    /// A scheduled event (MySQL/MariaDB).
    Event,
    /// The schema itself (its privileges), named `schema`; present only
    /// when it has something to compare.
    Schema,
    /// A domain, composite or range type (PostgreSQL).
    Type,
    /// An extension installed into the schema (PostgreSQL), by name.
    Extension,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Table => "table",
            ObjectKind::View => "view",
            ObjectKind::Enum => "enum",
            ObjectKind::Sequence => "sequence",
            ObjectKind::Routine => "routine",
            ObjectKind::Event => "event",
            ObjectKind::Schema => "schema",
            ObjectKind::Type => "type",
            ObjectKind::Extension => "extension",
        }
    }
}

/// The hash of one top-level object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectHash {
    pub kind: ObjectKind,
    pub name: String,
    pub hash: DriftHash,
}

/// The root hash of a schema and the hash of each of its objects, sorted by
/// (kind, name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaHash {
    pub root: DriftHash,
    pub objects: Vec<ObjectHash>,
}

impl SchemaHash {
    pub fn object(&self, kind: ObjectKind, name: &str) -> Option<&DriftHash> {
        self.objects
            .iter()
            .find(|o| o.kind == kind && o.name == name)
            .map(|o| &o.hash)
    }

    pub fn table(&self, name: &str) -> Option<&DriftHash> {
        self.object(ObjectKind::Table, name)
    }
}

/// The name of the [`ObjectKind::Schema`] object.
pub const SCHEMA_OBJECT: &str = "schema";

/// Hashes a snapshot with the current canonical format.
pub fn hash_schema(schema: &SchemaSnapshot) -> SchemaHash {
    let format = CanonicalFormat::CURRENT;
    let mut objects: Vec<ObjectHash> = Vec::new();
    let mut push = |kind: ObjectKind, name: &str, encode: &dyn Fn(&mut Encoder)| {
        let mut enc = Encoder::default();
        enc.str(kind.as_str());
        encode(&mut enc);
        objects.push(ObjectHash {
            kind,
            name: name.to_owned(),
            hash: digest(format, &enc.buf),
        });
    };
    for t in &schema.tables {
        push(ObjectKind::Table, &t.name, &|e| encode_table(e, t));
    }
    for v in &schema.views {
        push(ObjectKind::View, &v.name, &|e| encode_view(e, v));
    }
    for en in &schema.enums {
        push(ObjectKind::Enum, &en.name, &|e| encode_enum(e, en));
    }
    for s in &schema.sequences {
        push(ObjectKind::Sequence, &s.name, &|e| encode_sequence(e, s));
    }
    for r in &schema.routines {
        push(ObjectKind::Routine, &r.key(), &|e| encode_routine(e, r));
    }
    for ev in &schema.events {
        push(ObjectKind::Event, &ev.name, &|e| encode_event(e, ev));
    }
    for ty in &schema.types {
        push(ObjectKind::Type, &ty.name, &|e| encode_user_type(e, ty));
    }
    for x in &schema.extensions {
        push(ObjectKind::Extension, &x.name, &|e| e.str(&x.name));
    }
    if !schema.grants.is_empty() {
        push(ObjectKind::Schema, SCHEMA_OBJECT, &|e| {
            e.set(&schema.grants, encode_grant)
        });
    }
    objects.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));

    let mut root = Encoder::default();
    root.str("schema");
    root.str(schema.engine.as_str());
    root.u32(len_u32(objects.len()));
    for o in &objects {
        root.str(o.kind.as_str());
        root.str(&o.name);
        root.bytes(&o.hash.digest);
    }
    SchemaHash {
        root: digest(format, &root.buf),
        objects,
    }
}

fn digest(format: CanonicalFormat, payload: &[u8]) -> DriftHash {
    let mut h = Sha256::new();
    h.update(format.domain());
    h.update(payload);
    DriftHash {
        format,
        digest: h.finalize().into(),
    }
}

fn len_u32(n: usize) -> u32 {
    // A schema with more than 4 billion parts cannot be introspected anyway;
    // saturating keeps the encoder total rather than panicking.
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[derive(Default)]
struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    fn bytes(&mut self, b: &[u8]) {
        self.u32(len_u32(b.len()));
        self.buf.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn u32(&mut self, n: u32) {
        self.buf.extend_from_slice(&n.to_be_bytes());
    }
    fn i64(&mut self, n: i64) {
        self.buf.extend_from_slice(&n.to_be_bytes());
    }
    fn flag(&mut self, b: bool) {
        self.buf.push(u8::from(b));
    }
    fn opt_str(&mut self, s: Option<&str>) {
        self.flag(s.is_some());
        if let Some(s) = s {
            self.str(s);
        }
    }
    fn list_str(&mut self, items: &[String]) {
        self.u32(len_u32(items.len()));
        for i in items {
            self.str(i);
        }
    }
    /// An order-insensitive collection: each item encoded alone, then sorted.
    fn set<T>(&mut self, items: &[T], f: impl Fn(&mut Encoder, &T)) {
        let mut parts: Vec<Vec<u8>> = items
            .iter()
            .map(|i| {
                let mut e = Encoder::default();
                f(&mut e, i);
                e.buf
            })
            .collect();
        parts.sort();
        self.u32(len_u32(parts.len()));
        for p in &parts {
            self.bytes(p);
        }
    }
    fn name(&mut self, n: &ObjectName) {
        // A server-generated name is matched by structure: only the fact
        // that it was generated is encoded.
        if n.server_generated {
            self.flag(false);
        } else {
            self.flag(true);
            self.str(&n.name);
        }
    }
}

fn encode_table(e: &mut Encoder, t: &Table) {
    e.str(&t.name);
    e.str(match t.kind {
        TableKind::Ordinary => "ordinary",
        TableKind::Partitioned => "partitioned",
    });
    e.set(&t.options, |e, o| e.str(o));
    // Column order policy: columns are a set keyed by name (see ARCHITECTURE.md).
    e.set(&t.columns, encode_column);
    e.flag(t.primary_key.is_some());
    if let Some(pk) = &t.primary_key {
        encode_primary_key(e, pk);
    }
    e.set(&t.uniques, encode_unique);
    e.set(&t.foreign_keys, encode_foreign_key);
    e.set(&t.checks, encode_check);
    e.set(&t.indexes, encode_index);
    e.set(&t.triggers, encode_trigger);
    e.set(&t.policies, encode_policy);
    e.set(&t.grants, encode_grant);
    e.opt_str(t.owner.as_deref());
}

fn encode_user_type(e: &mut Encoder, t: &UserType) {
    e.str(&t.name);
    e.str(&t.kind);
    e.str(&t.definition);
    e.set(&t.grants, encode_grant);
    e.opt_str(t.owner.as_deref());
    e.opt_str(t.comment.as_deref());
}

fn encode_grant(e: &mut Encoder, g: &Grant) {
    e.str("grant");
    e.flag(g.revoked);
    e.str(&g.privilege);
    e.opt_str(g.column.as_deref());
    e.str(&g.grantee);
    e.flag(g.grantable);
}

fn encode_trigger(e: &mut Encoder, t: &Trigger) {
    e.str("trigger");
    e.str(&t.name);
    e.str(&t.definition);
    e.str(t.state.as_str());
}

fn encode_policy(e: &mut Encoder, p: &Policy) {
    e.str("policy");
    e.str(&p.name);
    e.str(&p.command);
    e.flag(p.permissive);
    e.set(&p.roles, |e, r| e.str(r));
    e.opt_str(p.using.as_deref());
    e.opt_str(p.with_check.as_deref());
}

fn encode_routine(e: &mut Encoder, r: &Routine) {
    e.str(&r.name);
    e.str(&r.kind);
    e.str(&r.arguments);
    e.str(&r.definition);
    e.set(&r.grants, encode_grant);
    e.opt_str(r.owner.as_deref());
}

fn encode_event(e: &mut Encoder, ev: &Event) {
    e.str(&ev.name);
    e.str(&ev.definition);
}

fn encode_column(e: &mut Encoder, c: &Column) {
    e.str("column");
    e.str(&c.name);
    e.str(&c.data_type);
    e.flag(c.nullable);
    e.opt_str(c.default.as_deref());
    e.opt_str(c.identity.map(|i| match i {
        Identity::Always => "always",
        Identity::ByDefault => "by_default",
        Identity::AutoIncrement => "auto_increment",
    }));
    e.flag(c.generated.is_some());
    if let Some(g) = &c.generated {
        e.str(&g.expression);
        e.flag(g.stored);
    }
    e.opt_str(c.collation.as_deref());
    e.opt_str(c.on_update.as_deref());
}

fn encode_primary_key(e: &mut Encoder, pk: &PrimaryKey) {
    e.str("primary_key");
    e.name(&pk.name);
    e.list_str(&pk.columns);
}

fn encode_unique(e: &mut Encoder, u: &UniqueConstraint) {
    e.str("unique");
    e.name(&u.name);
    e.list_str(&u.columns);
    e.flag(u.nulls_not_distinct);
}

fn action(a: ReferentialAction) -> &'static str {
    a.as_sql()
}

fn encode_foreign_key(e: &mut Encoder, fk: &ForeignKey) {
    e.str("foreign_key");
    e.name(&fk.name);
    e.list_str(&fk.columns);
    e.opt_str(fk.target_schema.as_deref());
    e.str(&fk.target_table);
    e.list_str(&fk.target_columns);
    e.str(action(fk.on_update));
    e.str(action(fk.on_delete));
    e.flag(fk.match_full);
    e.str(match fk.deferrable {
        Deferrable::NotDeferrable => "not_deferrable",
        Deferrable::InitiallyImmediate => "initially_immediate",
        Deferrable::InitiallyDeferred => "initially_deferred",
    });
}

fn encode_check(e: &mut Encoder, c: &CheckConstraint) {
    e.str("check");
    e.name(&c.name);
    e.str(&c.expression);
}

fn encode_index(e: &mut Encoder, i: &Index) {
    e.str("index");
    e.name(&i.name);
    e.flag(i.unique);
    e.str(&i.method);
    e.u32(len_u32(i.keys.len()));
    for k in &i.keys {
        encode_index_key(e, k);
    }
    e.set(&i.include, |e, c| e.str(c));
    e.opt_str(i.predicate.as_deref());
    e.flag(i.invalid);
}

fn encode_index_key(e: &mut Encoder, k: &IndexKey) {
    match &k.target {
        IndexKeyTarget::Column { name } => {
            e.str("col");
            e.str(name);
        }
        IndexKeyTarget::Expression { sql } => {
            e.str("expr");
            e.str(sql);
        }
    }
    e.flag(k.descending);
    e.str(&k.options);
}

fn encode_view(e: &mut Encoder, v: &View) {
    e.str(&v.name);
    e.flag(v.materialized);
    e.str(&v.definition);
    e.set(&v.options, |e, o| e.str(o));
    e.set(&v.grants, encode_grant);
    e.set(&v.indexes, encode_index);
    e.opt_str(v.owner.as_deref());
}

fn encode_enum(e: &mut Encoder, en: &EnumType) {
    e.str(&en.name);
    e.list_str(&en.labels);
    e.set(&en.grants, encode_grant);
    e.opt_str(en.owner.as_deref());
    e.opt_str(en.comment.as_deref());
}

fn encode_sequence(e: &mut Encoder, s: &Sequence) {
    e.str(&s.name);
    e.str(&s.data_type);
    e.i64(s.start);
    e.i64(s.increment);
    e.i64(s.min_value);
    e.i64(s.max_value);
    e.i64(s.cache);
    e.flag(s.cycle);
    e.opt_str(s.owned_by.as_deref());
    e.set(&s.grants, encode_grant);
    e.opt_str(s.comment.as_deref());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::*;

    fn sample() -> SchemaSnapshot {
        let mut s = SchemaSnapshot::new(Engine::Postgres);
        let mut t = Table::new("orders");
        t.columns.push(Column::new("id", 1, "bigint"));
        t.columns.push(Column::new("total", 2, "numeric(10,2)"));
        t.primary_key = Some(PrimaryKey {
            name: ObjectName::new("orders_pkey", true),
            columns: vec!["id".into()],
        });
        t.checks.push(CheckConstraint {
            name: ObjectName::new("orders_total_check", true),
            expression: "(total > 0)".into(),
        });
        t.checks.push(CheckConstraint {
            name: ObjectName::new("orders_id_check", true),
            expression: "(id > 0)".into(),
        });
        s.tables.push(t);
        s.tables.push(Table::new("customers"));
        s
    }

    #[test]
    fn hash_round_trips_through_its_text_form() {
        let h = hash_schema(&sample()).root;
        let text = h.to_string();
        assert!(text.starts_with("v7:"));
        assert_eq!(text.len(), 67);
        assert_eq!(text.parse::<DriftHash>().unwrap(), h);
    }

    #[test]
    fn malformed_and_future_hashes_are_typed_errors() {
        assert_eq!("".parse::<DriftHash>(), Err(ParseHashError::Malformed));
        assert_eq!("v1:zz".parse::<DriftHash>(), Err(ParseHashError::Malformed));
        let future = format!("v9:{}", "0".repeat(64));
        assert_eq!(
            future.parse::<DriftHash>(),
            Err(ParseHashError::UnknownFormat(9))
        );
        let upper = format!("v1:{}", "A".repeat(64));
        assert_eq!(upper.parse::<DriftHash>(), Err(ParseHashError::Malformed));
    }

    #[test]
    fn object_order_and_generated_names_do_not_change_the_hash() {
        let a = sample();
        let mut b = sample();
        b.tables.reverse();
        b.tables[1].checks.reverse();
        b.tables[1].columns.reverse();
        if let Some(pk) = &mut b.tables[1].primary_key {
            pk.name.name = "orders_pkey1".into();
        }
        assert_eq!(hash_schema(&a), {
            let mut h = hash_schema(&b);
            h.objects
                .sort_by(|x, y| (x.kind, &x.name).cmp(&(y.kind, &y.name)));
            h
        });
    }

    #[test]
    fn a_hand_chosen_name_is_part_of_the_hash() {
        let a = sample();
        let mut b = sample();
        b.tables[0].checks[0].name = ObjectName::new("positive_total", false);
        let (ha, hb) = (hash_schema(&a), hash_schema(&b));
        assert_ne!(ha.root, hb.root);
        assert_ne!(ha.table("orders"), hb.table("orders"));
        assert_eq!(ha.table("customers"), hb.table("customers"));
    }

    #[test]
    fn a_single_change_changes_only_that_tables_hash() {
        let a = sample();
        let mut b = sample();
        b.tables[0].columns[1].nullable = false;
        let (ha, hb) = (hash_schema(&a), hash_schema(&b));
        assert_ne!(ha.root, hb.root);
        assert_ne!(ha.table("orders"), hb.table("orders"));
        assert_eq!(ha.table("customers"), hb.table("customers"));
    }

    #[test]
    fn field_boundaries_are_unambiguous() {
        // "ab" + "c" must not encode like "a" + "bc".
        let mut a = SchemaSnapshot::new(Engine::Sqlite);
        let mut t = Table::new("t");
        t.options = vec!["ab".into(), "c".into()];
        a.tables.push(t);
        let mut b = SchemaSnapshot::new(Engine::Sqlite);
        let mut t = Table::new("t");
        t.options = vec!["a".into(), "bc".into()];
        b.tables.push(t);
        assert_ne!(hash_schema(&a).root, hash_schema(&b).root);
    }

    #[test]
    fn the_engine_is_part_of_the_root_hash() {
        let a = sample();
        let mut b = sample();
        b.engine = Engine::Mysql;
        assert_ne!(hash_schema(&a).root, hash_schema(&b).root);
    }

    #[test]
    fn different_formats_compare_as_format_change_not_drift() {
        let h = hash_schema(&sample()).root;
        assert_eq!(h.compare(&h), HashComparison::Equal);
        let other = hash_schema(&SchemaSnapshot::new(Engine::Postgres)).root;
        assert_eq!(h.compare(&other), HashComparison::Different);
        // A hash stored by a format v1 canonicaliser still parses, and is
        // another format, never drift, even with the very same digest.
        let v1: DriftHash = format!("v1:{}", hex::encode(h.digest())).parse().unwrap();
        assert_eq!(v1.format(), CanonicalFormat::V1);
        assert_eq!(h.compare(&v1), HashComparison::DifferentFormat);
    }

    #[test]
    fn triggers_policies_routines_and_events_move_only_their_objects_hash() {
        let base = {
            let mut s = sample();
            s.routines.push(Routine {
                owner: None,
                name: "touch".into(),
                kind: "function".into(),
                arguments: String::new(),
                definition: "CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$".into(),
                grants: Vec::new(),
            });
            s
        };
        let h = hash_schema(&base);
        let mut with_trigger = base.clone();
        with_trigger.tables[0].triggers.push(Trigger {
            name: "orders_touch".into(),
            definition: "CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch()".into(),
            state: TriggerState::Enabled,
        });
        let ht = hash_schema(&with_trigger);
        assert_ne!(h.table("orders"), ht.table("orders"));
        assert_eq!(h.table("customers"), ht.table("customers"));
        assert_eq!(
            h.object(ObjectKind::Routine, "touch()"),
            ht.object(ObjectKind::Routine, "touch()")
        );
        let mut disabled = with_trigger.clone();
        disabled.tables[0].triggers[0].state = TriggerState::Disabled;
        assert_ne!(ht.table("orders"), hash_schema(&disabled).table("orders"));
        let mut policy = base.clone();
        policy.tables[0].policies.push(Policy {
            name: "own".into(),
            command: "select".into(),
            permissive: true,
            roles: vec!["public".into()],
            using: Some("(id > 0)".into()),
            with_check: None,
        });
        let hp = hash_schema(&policy);
        assert_ne!(h.table("orders"), hp.table("orders"));
        let mut restrictive = policy.clone();
        restrictive.tables[0].policies[0].permissive = false;
        assert_ne!(
            hp.table("orders"),
            hash_schema(&restrictive).table("orders")
        );
        let mut body = base.clone();
        body.routines[0].definition.push_str(" SECURITY DEFINER");
        let hb = hash_schema(&body);
        assert_ne!(
            h.object(ObjectKind::Routine, "touch()"),
            hb.object(ObjectKind::Routine, "touch()")
        );
        assert_eq!(h.table("orders"), hb.table("orders"));
        let mut event = base.clone();
        event.events.push(Event {
            name: "purge".into(),
            definition: "CREATE EVENT purge ON SCHEDULE EVERY 1 DAY DO DELETE FROM orders".into(),
        });
        let he = hash_schema(&event);
        assert_ne!(h.root, he.root);
        assert!(he.object(ObjectKind::Event, "purge").is_some());
    }

    #[test]
    fn known_vector_is_stable() {
        // Pins format v7: if this changes, the canonical encoding changed and
        // CanonicalFormat must be bumped.
        let empty = hash_schema(&SchemaSnapshot::new(Engine::Postgres)).root;
        let sample = hash_schema(&sample()).root;
        assert_eq!(
            (empty.to_string(), sample.to_string()),
            (
                "v7:e6786e44b89c08eb5b9a0dea5dab39779e49a168dcb7b2fa1a82e28c257c9a06".to_owned(),
                "v7:ca69c0659000e556a82caa7461c780fcf3366956f146eaaec33d426e1dc7e25d".to_owned()
            ),
            "format v7 encoding changed; bump CanonicalFormat"
        );
    }
}
