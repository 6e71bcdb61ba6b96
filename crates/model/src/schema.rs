//! The canonical schema model: what a tenant's schema *is*, independent of the
//! engine catalog it was read from and of the order its objects were created in.
//!
//! Introspection fills these types; [`SchemaSnapshot::canonicalize`] puts every
//! set into its canonical order; [`crate::hash`] encodes and hashes them.

use serde::{Deserialize, Serialize};

/// The database engine family a snapshot was taken from. MariaDB and MySQL
/// share one family: their catalogs and DDL are the same for our purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    Postgres,
    Mysql,
    Sqlite,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
            Engine::Sqlite => "sqlite",
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of a constraint or index.
///
/// `server_generated` is true when the name is exactly the one the engine would
/// have chosen for this structure had the DDL not named it (`orders_pkey`,
/// `orders_customer_id_fkey`, `orders_ibfk_1`, `sqlite_autoindex_orders_1`).
/// Such names are matched by structure: they are left out of the hash, so two
/// tenants whose servers picked different generated names hash the same. A
/// name chosen by hand is part of the hash, so renaming it by hand is drift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectName {
    pub name: String,
    pub server_generated: bool,
}

impl ObjectName {
    pub fn new(name: impl Into<String>, server_generated: bool) -> Self {
        Self {
            name: name.into(),
            server_generated,
        }
    }
}

/// One schema (a PostgreSQL schema, a MySQL/MariaDB database, a SQLite file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaSnapshot {
    pub engine: Engine,
    pub tables: Vec<Table>,
    pub views: Vec<View>,
    pub enums: Vec<EnumType>,
    pub sequences: Vec<Sequence>,
    /// Functions and procedures (PostgreSQL, MySQL/MariaDB), format v2.
    #[serde(default)]
    pub routines: Vec<Routine>,
    /// Scheduled events (MySQL/MariaDB), format v2.
    #[serde(default)]
    pub events: Vec<Event>,
    /// Privileges on the schema itself (PostgreSQL), format v3.
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// Domains and composite types (PostgreSQL), format v3; range types,
    /// format v7.
    #[serde(default)]
    pub types: Vec<UserType>,
    /// Extensions installed into the schema (PostgreSQL), format v7: by
    /// name; their member objects are the extension's and stay out.
    #[serde(default)]
    pub extensions: Vec<Extension>,
}

impl SchemaSnapshot {
    pub fn new(engine: Engine) -> Self {
        Self {
            engine,
            tables: Vec::new(),
            views: Vec::new(),
            enums: Vec::new(),
            sequences: Vec::new(),
            routines: Vec::new(),
            events: Vec::new(),
            grants: Vec::new(),
            types: Vec::new(),
            extensions: Vec::new(),
        }
    }

    /// True when the schema holds no tables, views, types, sequences,
    /// routines or events. Extensions do not count: a database's `public`
    /// holding only an extension its owner installed is still empty for
    /// the guard, which provisions it.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
            && self.views.is_empty()
            && self.enums.is_empty()
            && self.sequences.is_empty()
            && self.routines.is_empty()
            && self.events.is_empty()
            && self.grants.is_empty()
            && self.types.is_empty()
    }

    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// Puts every collection into its canonical order. Introspection calls
    /// this once; the hash relies on it only for presentation, since the
    /// encoder sorts sets itself.
    pub fn canonicalize(&mut self) {
        self.tables.sort_by(|a, b| a.name.cmp(&b.name));
        for t in &mut self.tables {
            t.canonicalize();
        }
        self.views.sort_by(|a, b| a.name.cmp(&b.name));
        self.enums.sort_by(|a, b| a.name.cmp(&b.name));
        self.sequences.sort_by(|a, b| a.name.cmp(&b.name));
        self.routines.sort_by_key(Routine::key);
        self.events.sort_by(|a, b| a.name.cmp(&b.name));
        self.grants.sort();
        for v in &mut self.views {
            v.grants.sort();
            v.indexes.sort_by(|a, b| a.name.name.cmp(&b.name.name));
        }
        for e in &mut self.enums {
            e.grants.sort();
        }
        for q in &mut self.sequences {
            q.grants.sort();
        }
        for r in &mut self.routines {
            r.grants.sort();
        }
        self.types.sort_by(|a, b| a.name.cmp(&b.name));
        self.extensions.sort();
        for t in &mut self.types {
            t.grants.sort();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    Ordinary,
    Partitioned,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub kind: TableKind,
    /// Engine-specific table options that change behaviour, as `key=value`
    /// pairs: `engine=InnoDB`, `persistence=unlogged`, `without_rowid`,
    /// `strict`, `collation=…` when it differs from the schema default.
    pub options: Vec<String>,
    /// Columns in physical (ordinal) order. The hash ignores this order; see
    /// ARCHITECTURE.md, "Column order policy".
    pub columns: Vec<Column>,
    pub primary_key: Option<PrimaryKey>,
    pub uniques: Vec<UniqueConstraint>,
    pub foreign_keys: Vec<ForeignKey>,
    pub checks: Vec<CheckConstraint>,
    /// Indexes that do not merely back a primary key or unique constraint.
    pub indexes: Vec<Index>,
    /// Triggers on the table (format v2).
    #[serde(default)]
    pub triggers: Vec<Trigger>,
    /// Row-level security policies (PostgreSQL, format v2). Whether row
    /// security is enabled or forced is a table option.
    #[serde(default)]
    pub policies: Vec<Policy>,
    /// Privileges on the table and its columns that differ from the
    /// engine's default (PostgreSQL, format v3).
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// The role that owns it, through the role rule, when it is not the
    /// role that owns most of the schema's objects (format v5); `None`
    /// where the engine has no owners.
    #[serde(default)]
    pub owner: Option<String>,
}

impl Table {
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind: TableKind::Ordinary,
            options: Vec::new(),
            columns: Vec::new(),
            primary_key: None,
            uniques: Vec::new(),
            foreign_keys: Vec::new(),
            checks: Vec::new(),
            indexes: Vec::new(),
            triggers: Vec::new(),
            policies: Vec::new(),
            grants: Vec::new(),
            owner: None,
        }
    }

    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    fn canonicalize(&mut self) {
        self.columns.sort_by_key(|c| c.ordinal);
        self.options.sort();
        self.uniques.sort_by(|a, b| a.columns.cmp(&b.columns));
        self.foreign_keys
            .sort_by(|a, b| (&a.columns, &a.target_table).cmp(&(&b.columns, &b.target_table)));
        self.checks.sort_by(|a, b| a.expression.cmp(&b.expression));
        self.indexes.sort_by(|a, b| a.name.name.cmp(&b.name.name));
        self.triggers.sort_by(|a, b| a.name.cmp(&b.name));
        self.policies.sort_by(|a, b| a.name.cmp(&b.name));
        self.grants.sort();
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    /// 1-based physical position; informational only (not hashed).
    pub ordinal: u32,
    /// Normalised type: `integer`, `character varying(255)`, `bigint unsigned`.
    pub data_type: String,
    pub nullable: bool,
    /// Normalised default expression, without schema qualification.
    pub default: Option<String>,
    pub identity: Option<Identity>,
    pub generated: Option<GeneratedColumn>,
    /// Collation, only when it differs from the one the column inherits.
    pub collation: Option<String>,
    /// MySQL `ON UPDATE` clause (`current_timestamp()`).
    pub on_update: Option<String>,
}

impl Column {
    pub fn new(name: impl Into<String>, ordinal: u32, data_type: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ordinal,
            data_type: data_type.into(),
            nullable: true,
            default: None,
            identity: None,
            generated: None,
            collation: None,
            on_update: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Identity {
    /// PostgreSQL `GENERATED ALWAYS AS IDENTITY`.
    Always,
    /// PostgreSQL `GENERATED BY DEFAULT AS IDENTITY`.
    ByDefault,
    /// MySQL `AUTO_INCREMENT`, SQLite `AUTOINCREMENT`. The counter's current
    /// value is never part of the model.
    AutoIncrement,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedColumn {
    pub expression: String,
    pub stored: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimaryKey {
    pub name: ObjectName,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UniqueConstraint {
    pub name: ObjectName,
    pub columns: Vec<String>,
    pub nulls_not_distinct: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferentialAction {
    NoAction,
    Restrict,
    Cascade,
    SetNull,
    SetDefault,
}

impl ReferentialAction {
    pub fn as_sql(self) -> &'static str {
        match self {
            ReferentialAction::NoAction => "NO ACTION",
            ReferentialAction::Restrict => "RESTRICT",
            ReferentialAction::Cascade => "CASCADE",
            ReferentialAction::SetNull => "SET NULL",
            ReferentialAction::SetDefault => "SET DEFAULT",
        }
    }

    /// Parses the spellings the three engines' catalogs use.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().replace('_', " ").as_str() {
            "NO ACTION" | "A" => Some(ReferentialAction::NoAction),
            "RESTRICT" | "R" => Some(ReferentialAction::Restrict),
            "CASCADE" | "C" => Some(ReferentialAction::Cascade),
            "SET NULL" | "N" => Some(ReferentialAction::SetNull),
            "SET DEFAULT" | "D" => Some(ReferentialAction::SetDefault),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKey {
    pub name: ObjectName,
    pub columns: Vec<String>,
    /// `None` when the target lives in the same schema as the tenant (the
    /// usual case, and the one that must hash alike across tenants).
    pub target_schema: Option<String>,
    pub target_table: String,
    pub target_columns: Vec<String>,
    pub on_update: ReferentialAction,
    pub on_delete: ReferentialAction,
    /// `MATCH FULL` (PostgreSQL); `false` is the default `MATCH SIMPLE`.
    pub match_full: bool,
    pub deferrable: Deferrable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deferrable {
    NotDeferrable,
    InitiallyImmediate,
    InitiallyDeferred,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckConstraint {
    pub name: ObjectName,
    pub expression: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub name: ObjectName,
    pub unique: bool,
    /// Access method, lower case: `btree`, `hash`, `gin`, `fulltext`, `spatial`.
    pub method: String,
    pub keys: Vec<IndexKey>,
    /// Non-key `INCLUDE` columns (PostgreSQL).
    pub include: Vec<String>,
    /// Partial index predicate, normalised.
    pub predicate: Option<String>,
    /// Left invalid by a `CREATE INDEX CONCURRENTLY` that failed part-way
    /// (PostgreSQL, format v3): it is maintained but never used.
    #[serde(default)]
    pub invalid: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IndexKeyTarget {
    Column { name: String },
    Expression { sql: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexKey {
    pub target: IndexKeyTarget,
    pub descending: bool,
    /// Anything else that qualifies the key and differs from the default:
    /// operator class, collation, `NULLS FIRST` on an ascending key, MySQL
    /// prefix length. Normalised text, empty when default.
    pub options: String,
}

impl IndexKey {
    pub fn column(name: impl Into<String>) -> Self {
        Self {
            target: IndexKeyTarget::Column { name: name.into() },
            descending: false,
            options: String::new(),
        }
    }

    pub fn expression(sql: impl Into<String>) -> Self {
        Self {
            target: IndexKeyTarget::Expression { sql: sql.into() },
            descending: false,
            options: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct View {
    pub name: String,
    pub materialized: bool,
    /// Normalised definition (the query), without own-schema qualification.
    pub definition: String,
    /// `check_option=cascaded`, `security=invoker`, …
    pub options: Vec<String>,
    /// Privileges that differ from the engine's default (format v3); its
    /// columns' too (format v4).
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// A materialized view's indexes (format v4).
    #[serde(default)]
    pub indexes: Vec<Index>,
    /// The role that owns it, through the role rule, when it is not the
    /// role that owns most of the schema's objects (format v5); `None`
    /// where the engine has no owners.
    #[serde(default)]
    pub owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnumType {
    pub name: String,
    /// Labels in sort order; order is significant.
    pub labels: Vec<String>,
    /// Privileges that differ from the engine's default (format v3).
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// The role that owns it, through the role rule, when it is not the
    /// role that owns most of the schema's objects (format v5); `None`
    /// where the engine has no owners.
    #[serde(default)]
    pub owner: Option<String>,
    /// Its comment (`COMMENT ON …`), the text itself (PostgreSQL, format
    /// v6).
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sequence {
    pub name: String,
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min_value: i64,
    pub max_value: i64,
    pub cache: i64,
    pub cycle: bool,
    /// `table.column` of a `serial` column that owns it.
    pub owned_by: Option<String>,
    /// Privileges that differ from the engine's default (format v3).
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// Its comment (`COMMENT ON …`), the text itself (PostgreSQL, format
    /// v6).
    #[serde(default)]
    pub comment: Option<String>,
}

/// Whether a trigger fires (PostgreSQL's `tgenabled`; the other engines'
/// triggers are always [`TriggerState::Enabled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerState {
    /// Fires in the `origin` and `local` replication roles (the default).
    Enabled,
    Disabled,
    /// `ENABLE REPLICA`: fires only when the session replication role is `replica`.
    Replica,
    /// `ENABLE ALWAYS`: fires whatever the session replication role.
    Always,
}

impl TriggerState {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerState::Enabled => "enabled",
            TriggerState::Disabled => "disabled",
            TriggerState::Replica => "replica",
            TriggerState::Always => "always",
        }
    }
}

/// A trigger on a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    pub name: String,
    /// The trigger's definition as the engine prints it (timing, events,
    /// `UPDATE OF` columns, `FOR EACH`, `WHEN`, the function or body
    /// called), normalised, without the tenant's own schema. MySQL's
    /// `DEFINER` is left out (see ARCHITECTURE.md, "Definers").
    pub definition: String,
    pub state: TriggerState,
}

/// A row-level security policy (PostgreSQL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    /// `all`, `select`, `insert`, `update` or `delete`.
    pub command: String,
    /// `false`: `AS RESTRICTIVE`.
    pub permissive: bool,
    /// Role names, sorted; `public` for PUBLIC.
    pub roles: Vec<String>,
    /// `USING` expression, normalised.
    pub using: Option<String>,
    /// `WITH CHECK` expression, normalised.
    pub with_check: Option<String>,
}

/// A function or procedure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routine {
    pub name: String,
    /// `function`, `procedure`, `aggregate` or `window`.
    pub kind: String,
    /// The argument types that identify it among routines of the same
    /// name (PostgreSQL's identity arguments; empty on MySQL, where a name
    /// is unique among functions and among procedures).
    pub arguments: String,
    /// Everything else that defines it, as canonical DDL: the full
    /// signature with argument names and defaults, the result, language,
    /// volatility, strictness, security, parallel safety, configuration
    /// (`SET search_path …`) and the normalised body. MySQL's `DEFINER`
    /// is left out.
    pub definition: String,
    /// Privileges that differ from the engine's default (format v3).
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// The role that owns it, through the role rule, when it is not the
    /// role that owns most of the schema's objects (format v5); `None`
    /// where the engine has no owners.
    #[serde(default)]
    pub owner: Option<String>,
}

impl Routine {
    /// `name(arguments)`, and `procedure name(arguments)` for a procedure
    /// (format v7): unique within a schema. MySQL keeps functions and
    /// procedures apart, so a function and a procedure may share a name
    /// (and, there, an empty argument list).
    pub fn key(&self) -> String {
        let kind = if self.kind == "procedure" {
            "procedure "
        } else {
            ""
        };
        format!("{kind}{}({})", self.name, self.arguments)
    }
}

/// A scheduled event (MySQL/MariaDB).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub name: String,
    /// Schedule, status, completion and body as canonical DDL, without
    /// `DEFINER`.
    pub definition: String,
}

/// A privilege that differs from what the engine gives by default: one
/// granted beyond the default (`GRANT SELECT (password_hash) … TO public`)
/// or a default one taken away (`REVOKE EXECUTE … FROM public`).
///
/// Roles are compared through the role rule of ARCHITECTURE.md: `public`
/// is PUBLIC, `{owner}` the object's owner whoever it is, and the tenant's
/// schema name inside a role's name reads `{tenant}` (`{tenant}_app`).
/// Who granted it is left out.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Grant {
    /// `true`: a default privilege taken away.
    pub revoked: bool,
    /// `SELECT`, `EXECUTE`, `USAGE`, … as the engine names it.
    pub privilege: String,
    /// The column, for a column privilege.
    pub column: Option<String>,
    pub grantee: String,
    /// `WITH GRANT OPTION`.
    pub grantable: bool,
}

impl Grant {
    /// The statement that gives this state, on `object` (`TABLE tasks`,
    /// `SCHEMA {tenant}`, `FUNCTION f(integer)`).
    pub fn sql(&self, object: &str) -> String {
        let column = self
            .column
            .as_ref()
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        if self.revoked {
            format!(
                "REVOKE {}{column} ON {object} FROM {};",
                self.privilege, self.grantee
            )
        } else {
            format!(
                "GRANT {}{column} ON {object} TO {}{};",
                self.privilege,
                self.grantee,
                if self.grantable {
                    " WITH GRANT OPTION"
                } else {
                    ""
                }
            )
        }
    }
}

/// An extension installed into the schema (PostgreSQL): compared by name
/// only. Its version is left out (the scratch server that measures a
/// template and the fleet's servers ship different ones), and so are its
/// member objects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Extension {
    pub name: String,
}

/// A domain, a composite type or a range type (PostgreSQL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserType {
    pub name: String,
    /// `domain`, `composite` or `range`.
    pub kind: String,
    /// As canonical DDL: a domain's base type, collation, default, NOT
    /// NULL and CHECK constraints; a composite type's attributes in order;
    /// a range type's options (`SUBTYPE = …, …`).
    pub definition: String,
    /// Privileges that differ from the engine's default.
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// The role that owns it, through the role rule, when it is not the
    /// role that owns most of the schema's objects (format v5); `None`
    /// where the engine has no owners.
    #[serde(default)]
    pub owner: Option<String>,
    /// Its comment (`COMMENT ON …`), the text itself (PostgreSQL, format
    /// v6).
    #[serde(default)]
    pub comment: Option<String>,
}
