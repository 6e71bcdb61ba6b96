//! The data-preserving sync plan: the ordered statements that take a
//! tenant's schema back to its template while keeping its rows, each step
//! classified by what it risks.
//!
//! Pure: the plan is computed from two snapshots; the statements it holds
//! are run (and its probes counted) by the fleet crate. Every name goes
//! through [`crate::quote`]; expressions (defaults, checks, predicates,
//! view queries) are the catalog's own text as introspection normalised
//! it, which runs unchanged with the tenant's schema first on the
//! `search_path` (set transaction-locally by the caller).
//!
//! PostgreSQL here; MySQL/MariaDB in [`crate::sync_mysql`]. What the
//! planner cannot do safely is a
//! [`StepClass::Manual`] step: the plan shows it, and applying refuses
//! while one is left.

use serde::Serialize;
use ts_rs::TS;

use crate::ddl;
use crate::diff::{diff_schemas, Presence};
use crate::hash::ObjectKind;
use crate::quote::{postgres as q, postgres_literal};
use crate::schema::{
    CheckConstraint, Column, Deferrable, EnumType, ForeignKey, Identity, Index, IndexKeyTarget,
    SchemaSnapshot, Sequence, Table, TableKind, UniqueConstraint, View,
};

/// What a step risks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum StepClass {
    /// No data touched: add a nullable column, create an index, revert a
    /// default, drop an index or a trigger.
    Safe,
    /// Could fail on the data present; its probe counts the rows that
    /// would make it fail (applying refuses while that count is not 0).
    Checked,
    /// Removes data from the tenant: what it removes is put into the
    /// quarantine schema first, and its probe counts it.
    Destructive,
    /// A difference the planner does not bring back by itself (reset, or
    /// accept it as a customisation).
    Manual,
}

impl StepClass {
    pub fn as_str(self) -> &'static str {
        match self {
            StepClass::Safe => "safe",
            StepClass::Checked => "checked",
            StepClass::Destructive => "destructive",
            StepClass::Manual => "manual",
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct SyncStep {
    pub class: StepClass,
    /// `table orders`, `view totals`, …
    pub object: String,
    /// What it does, in words.
    pub action: String,
    /// The statements, in order (empty for a manual step).
    pub sql: Vec<String>,
    /// A query returning one number: for a checked step the rows that
    /// would make it fail, for a destructive one the rows or values it
    /// moves to the quarantine.
    pub probe: Option<String>,
    /// What the probe's number counts (`rows where note IS NULL`).
    pub probe_meaning: Option<String>,
    /// The probe's result, filled in by whoever ran it.
    #[ts(type = "number | null")]
    pub count: Option<i64>,
    /// Order of execution (lower first); steps of one phase keep the
    /// plan's order.
    #[serde(skip)]
    #[ts(skip)]
    pub(crate) phase: u8,
}

impl SyncStep {
    pub(crate) fn new(
        phase: u8,
        class: StepClass,
        object: String,
        action: String,
        sql: Vec<String>,
    ) -> Self {
        Self {
            class,
            object,
            action,
            sql,
            probe: None,
            probe_meaning: None,
            count: None,
            phase,
        }
    }

    /// A step for a plan whose caller orders the steps itself (SQLite's
    /// table rebuilds).
    pub fn ordered(class: StepClass, object: String, action: String, sql: Vec<String>) -> Self {
        Self::new(0, class, object, action, sql)
    }

    /// Adds the query that counts what the step risks, and what it counts.
    pub fn probe(mut self, sql: String, meaning: String) -> Self {
        self.probe = Some(sql);
        self.probe_meaning = Some(meaning);
        self
    }

    /// What the probe counted, as a sentence: "4 rows where …", "1 row
    /// where …" (the meanings name their plural noun first).
    pub fn counted(&self) -> Option<String> {
        let (n, meaning) = (self.count?, self.probe_meaning.as_deref()?);
        Some(counted(n, meaning))
    }

    pub fn manual(object: String, action: String) -> Self {
        Self::new(0, StepClass::Manual, object, action, Vec::new())
    }

    /// True when this step stops an apply: a manual step, or a checked
    /// step whose probe found rows.
    pub fn blocks(&self) -> bool {
        match self.class {
            StepClass::Manual => true,
            StepClass::Checked => self.count.is_some_and(|n| n > 0),
            _ => false,
        }
    }
}

/// Who the role rule's placeholders stand for in one PostgreSQL tenant.
///
/// Snapshots name roles relative to their tenant (ARCHITECTURE.md, the
/// role rule): `{owner}` for an object's owner, `{tenant}_app` for a role
/// named after the tenant, and an owner only where it is not the role that
/// owns most of the schema's objects. A plan writes real names, so the
/// fleet reads these from the tenant's catalog before planning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRoles {
    /// The tenant's schema (`GRANT … ON SCHEMA …`).
    pub schema: String,
    /// What `{tenant}` stands for inside a role's name: the schema's name,
    /// or the database's for a database-per-tenant tenant (schema
    /// `public`), as the rule reads them.
    pub tenant: String,
    /// The schema's owner: the `{owner}` of the schema's own privileges.
    pub schema_owner: String,
    /// The role that owns most of the schema's objects: the owner of every
    /// object whose snapshot names none.
    pub usual_owner: String,
    /// The role the sync runs as, which owns what it creates until the
    /// plan gives it to its owner.
    pub current_user: String,
}

impl TenantRoles {
    /// Every role the same one: a schema whose objects, schema and session
    /// all belong to `role` (a scratch database, a test).
    pub fn uniform(schema: &str, role: &str) -> Self {
        Self {
            schema: schema.to_owned(),
            tenant: schema.to_owned(),
            schema_owner: role.to_owned(),
            usual_owner: role.to_owned(),
            current_user: role.to_owned(),
        }
    }

    /// A role of the rule by its real name: `{tenant}_app` is this
    /// tenant's `acme_app`. The placeholder is the rule's own token,
    /// written where the introspection found the tenant's name as a whole
    /// part of a role's name; this is its inverse, on a role name, never
    /// on SQL text.
    pub fn role(&self, rule: &str) -> String {
        rule.replace("{tenant}", &self.tenant)
    }

    /// The owner an object has when its snapshot says `owner`.
    pub fn owner(&self, owner: Option<&str>) -> String {
        owner
            .map(|o| self.role(o))
            .unwrap_or_else(|| self.usual_owner.clone())
    }

    /// A grantee as SQL: `PUBLIC`, the object's `owner` for `{owner}`, or
    /// the role by its real name, quoted.
    fn grantee(&self, grantee: &str, owner: &str) -> String {
        match grantee {
            "public" => "PUBLIC".into(),
            "{owner}" => q(owner),
            role => q(&self.role(role)),
        }
    }
}

/// Whether a foreign key of the schema references `table`: its primary key
/// is then not swapped in place (dropping it would fail).
pub(crate) fn referenced_by_foreign_keys(tenant: &SchemaSnapshot, table: &str) -> bool {
    tenant.tables.iter().any(|t| {
        t.foreign_keys
            .iter()
            .any(|fk| fk.target_table == table && fk.target_schema.is_none())
    })
}

/// The probe of a primary key about to be added: rows with no value in one
/// of its columns, plus rows sharing one (`duplicates`), quoted by `quote`.
pub(crate) fn primary_key_probe(
    table: &str,
    columns: &[String],
    quote: fn(&str) -> String,
    duplicates: &str,
) -> (String, String) {
    let no_value = columns
        .iter()
        .map(|c| format!("{} IS NULL", quote(c)))
        .collect::<Vec<_>>()
        .join(" OR ");
    (
        format!("SELECT (SELECT count(*) FROM {table} WHERE {no_value}) + ({duplicates})"),
        "rows with no value or a repeated value in the primary key".into(),
    )
}

// Phases, in execution order.
pub(crate) const DROP_LINKS: u8 = 1; // custom foreign keys, views, triggers, policies
pub(crate) const DROP_RULES: u8 = 2; // custom checks, uniques, indexes
pub(crate) const MOVE_TABLES: u8 = 3; // custom tables into the quarantine
pub(crate) const DROP_COLUMNS: u8 = 4; // custom columns (their table copied first)
pub(crate) const CREATE_TYPES: u8 = 5; // missing enums and sequences
pub(crate) const ALTER_COLUMNS: u8 = 6; // add missing columns, revert changed ones
pub(crate) const CREATE_TABLES: u8 = 7;
pub(crate) const ADD_RULES: u8 = 8; // uniques, checks, indexes
pub(crate) const ADD_LINKS: u8 = 9; // foreign keys, views
pub(crate) const DROP_TYPES: u8 = 10; // custom enums and sequences, last

/// Plans the sync of `tenant` to `template` (both PostgreSQL snapshots of
/// one schema). `quarantine` is the schema that receives what destructive
/// steps remove; the plan creates it first when a step needs it.
pub fn plan_postgres(
    template: &SchemaSnapshot,
    tenant: &SchemaSnapshot,
    quarantine: &str,
    roles: &TenantRoles,
) -> Vec<SyncStep> {
    let mut steps = Vec::new();
    let mut rebuilt_enum = false;
    let mut swapped: Vec<String> = Vec::new();
    let diff = diff_schemas(template, tenant);
    for o in diff
        .objects
        .iter()
        .filter(|o| o.presence != Presence::Identical)
    {
        let object = format!("{} {}", o.kind.as_str(), o.name);
        match o.kind {
            ObjectKind::Table => match o.presence {
                Presence::Added => {
                    let t = tenant.table(&o.name).expect("diff names a tenant table");
                    steps.push(move_table(t, quarantine, object));
                }
                Presence::Missing => {
                    let t = template.table(&o.name).expect("diff names a template table");
                    create_table(t, roles, &mut steps, object);
                }
                _ => {
                    let (a, b) = (
                        template.table(&o.name).expect("template table"),
                        tenant.table(&o.name).expect("tenant table"),
                    );
                    // A referenced key is swapped with the foreign keys that
                    // name it dropped first and added again after.
                    if key_swapped(a, b) && referenced_by_foreign_keys(tenant, &o.name) {
                        swapped.push(o.name.clone());
                    }
                    table_changes(a, b, quarantine, roles, &mut steps, &object);
                }
            },
            ObjectKind::View => {
                let a = template.views.iter().find(|v| v.name == o.name);
                let b = tenant.views.iter().find(|v| v.name == o.name);
                if let Some(b) = b {
                    steps.push(SyncStep::new(
                        DROP_LINKS,
                        StepClass::Safe,
                        object.clone(),
                        if a.is_some() { "drop the changed view (it is recreated below)" } else { "drop the custom view (a view holds no rows)" }.into(),
                        vec![format!(
                            "DROP {}VIEW {}",
                            if b.materialized { "MATERIALIZED " } else { "" },
                            q(&b.name)
                        )],
                    ));
                }
                if let Some(a) = a {
                    steps.extend(create_view(a, roles, object));
                }
            }
            ObjectKind::Enum => {
                let a = template.enums.iter().find(|e| e.name == o.name);
                let b = tenant.enums.iter().find(|e| e.name == o.name);
                match (a, b) {
                    (Some(a), None) => steps.extend(create_enum(a, roles, object)),
                    (None, Some(b)) => steps.push(SyncStep::new(
                        DROP_TYPES,
                        StepClass::Safe,
                        object,
                        "drop the custom enum (after what used it)".into(),
                        vec![format!("DROP TYPE {}", q(&b.name))],
                    )),
                    (Some(a), Some(b)) if a.labels != b.labels && !only_missing_labels(a, b) => {
                        steps.extend(rebuild_enum(a, b, template, tenant, roles, &object));
                        rebuilt_enum = true;
                    }
                    (Some(a), Some(b)) => {
                        if a.labels != b.labels {
                            steps.push(add_enum_labels(a, b, object.clone()));
                        }
                        steps.extend(owned_extras(
                            &Named::same(format!("TYPE {}", q(&a.name))),
                            Extras::of(a.owner.as_deref(), &a.grants, a.comment.as_deref()),
                            Some(Extras::of(b.owner.as_deref(), &b.grants, b.comment.as_deref())),
                            roles,
                            &object,
                        ));
                    }
                    (None, None) => {}
                }
            }
            ObjectKind::Sequence => {
                let a = template.sequences.iter().find(|s| s.name == o.name);
                let b = tenant.sequences.iter().find(|s| s.name == o.name);
                match (a, b) {
                    (Some(a), None) => steps.extend(create_sequence(a, template, roles, object)),
                    (None, Some(b)) => steps.push(SyncStep::new(
                        DROP_TYPES,
                        StepClass::Destructive,
                        object,
                        "move the custom sequence (and its current value) to the quarantine, unless it already moved with its table".into(),
                        vec![format!("ALTER SEQUENCE IF EXISTS {} SET SCHEMA {}", q(&b.name), q(quarantine))],
                    )),
                    (Some(a), Some(b)) => {
                        if sequence_settings(a) != sequence_settings(b) {
                            steps.push(alter_sequence(a, object.clone()));
                        }
                        if a.owned_by != b.owned_by {
                            steps.push(match owning_column(a, template) {
                                Some(owner) => SyncStep::new(
                                    ADD_LINKS,
                                    StepClass::Safe,
                                    object.clone(),
                                    match &owner {
                                        Some((t, c)) => format!("tie the sequence to {t}.{c}, which owns it in the template"),
                                        None => "untie the sequence from the column the tenant gave it".into(),
                                    },
                                    vec![format!(
                                        "ALTER SEQUENCE {} OWNED BY {}",
                                        q(&a.name),
                                        owner.map(|(t, c)| format!("{}.{}", q(&t), q(&c))).unwrap_or_else(|| "NONE".into())
                                    )],
                                ),
                                None => SyncStep::manual(object.clone(), "the sequence belongs to a column the template does not have".into()),
                            });
                        }
                        let follows = Some(sequence_owner(a, template, roles));
                        steps.extend(owned_extras(
                            &Named::same(format!("SEQUENCE {}", q(&a.name))),
                            Extras { follows: follows.clone(), ..Extras::of(None, &a.grants, a.comment.as_deref()) },
                            Some(Extras { follows, ..Extras::of(None, &b.grants, b.comment.as_deref()) }),
                            roles,
                            &object,
                        ));
                    }
                    (None, None) => {}
                }
            }
            ObjectKind::Routine if o.presence == Presence::Added => {
                let r = tenant.routines.iter().find(|r| r.key() == o.name).expect("diff names a tenant routine");
                let what = match r.kind.as_str() {
                    "procedure" => "PROCEDURE",
                    "aggregate" => "AGGREGATE",
                    _ => "FUNCTION",
                };
                steps.push(SyncStep::new(
                    DROP_TYPES,
                    StepClass::Safe,
                    object,
                    format!("drop the custom {} (after the triggers that used it)", r.kind),
                    vec![format!("DROP {what} {}({})", q(&r.name), r.arguments)],
                ));
            }
            ObjectKind::Routine => {
                let r = template
                    .routines
                    .iter()
                    .find(|r| r.key() == o.name)
                    .expect("diff names a template routine");
                let b = tenant.routines.iter().find(|x| x.key() == o.name);
                steps.extend(create_routine(r, b, roles, object));
            }
            ObjectKind::Type => {
                let a = template.types.iter().find(|t| t.name == o.name);
                let b = tenant.types.iter().find(|t| t.name == o.name);
                steps.extend(user_type_steps(a, b, tenant, roles, object));
            }
            ObjectKind::Extension => match o.presence {
                Presence::Missing => steps.push(create_extension(&o.name, roles, object)),
                _ => steps.push(SyncStep::new(
                    DROP_TYPES,
                    StepClass::Safe,
                    object,
                    "drop the custom extension (the server refuses, and nothing changes, while anything still uses it)".into(),
                    vec![format!("DROP EXTENSION {}", q(&o.name))],
                )),
            },
            ObjectKind::Schema => {
                let on = format!("SCHEMA {}", q(&roles.schema));
                steps.extend(grant_steps(
                    &on,
                    &template.grants,
                    &tenant.grants,
                    (&roles.schema_owner, &roles.schema_owner),
                    roles,
                    &object,
                ));
            }
            _ => steps.push(SyncStep::manual(
                object,
                format!(
                    "{} {}: not brought back by sync yet; reset the tenant or accept it as a customisation",
                    o.kind.as_str(),
                    match o.presence {
                        Presence::Added => "added in the tenant",
                        Presence::Missing => "missing from the tenant",
                        _ => "changed",
                    }
                ),
            )),
        }
    }
    if rebuilt_enum {
        steps.extend(recreate_views(template, tenant, roles));
    }
    steps.extend(refer_again(template, tenant, &swapped));
    if steps.iter().any(|s| s.class == StepClass::Destructive) {
        steps.push(SyncStep::new(
            0,
            StepClass::Safe,
            format!("schema {quarantine}"),
            "create the quarantine schema that receives what the destructive steps remove".into(),
            vec![format!("CREATE SCHEMA {}", q(quarantine))],
        ));
    }
    steps.sort_by_key(|s| s.phase);
    steps
}

fn move_table(t: &Table, quarantine: &str, object: String) -> SyncStep {
    SyncStep::new(
        MOVE_TABLES,
        StepClass::Destructive,
        object,
        "move the custom table, with its rows, indexes and owned sequences, to the quarantine"
            .into(),
        vec![format!(
            "ALTER TABLE {} SET SCHEMA {}",
            q(&t.name),
            q(quarantine)
        )],
    )
    .probe(
        format!("SELECT count(*) FROM {}", q(&t.name)),
        "rows moved to the quarantine".into(),
    )
}

fn column_sql(c: &Column) -> Option<String> {
    column_sql_with(c, None)
}

/// A column's definition; `identity` holds an identity column's sequence
/// options (`(START WITH …)`), written right after its identity clause.
fn column_sql_with(c: &Column, identity: Option<&str>) -> Option<String> {
    if c.on_update.is_some() {
        return None;
    }
    let mut s = format!("{} {}", q(&c.name), c.data_type);
    if let Some(col) = &c.collation {
        s.push_str(&format!(" COLLATE {}", q(col)));
    }
    if let Some(g) = &c.generated {
        if !g.stored {
            return None;
        }
        s.push_str(&format!(" GENERATED ALWAYS AS ({}) STORED", g.expression));
    }
    if let Some(d) = &c.default {
        s.push_str(&format!(" DEFAULT {d}"));
    }
    match c.identity {
        Some(Identity::Always) => {
            s.push_str(" GENERATED ALWAYS AS IDENTITY");
            s.push_str(identity.unwrap_or_default());
        }
        Some(Identity::ByDefault) => {
            s.push_str(" GENERATED BY DEFAULT AS IDENTITY");
            s.push_str(identity.unwrap_or_default());
        }
        Some(Identity::AutoIncrement) => return None,
        None => {}
    }
    if !c.nullable {
        s.push_str(" NOT NULL");
    }
    Some(s)
}

fn names(cols: &[String]) -> String {
    cols.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ")
}

/// A check's expression without the `CHECK (…)` that introspection wraps
/// it in; `None` for an exclusion constraint.
pub(crate) fn check_body(c: &CheckConstraint) -> Option<&str> {
    let e = c.expression.trim();
    let upper = e.to_ascii_uppercase();
    if upper.starts_with("EXCLUDE") {
        return None;
    }
    let e = if upper.starts_with("CHECK") {
        e[5..].trim_start()
    } else {
        e
    };
    Some(e.strip_suffix(" NOT VALID").unwrap_or(e))
}

fn constraint_name(name: &crate::ObjectName) -> String {
    if name.server_generated || name.name.is_empty() {
        String::new()
    } else {
        format!("CONSTRAINT {} ", q(&name.name))
    }
}

fn unique_sql(u: &UniqueConstraint) -> String {
    format!(
        "{}UNIQUE{} ({})",
        constraint_name(&u.name),
        if u.nulls_not_distinct {
            " NULLS NOT DISTINCT"
        } else {
            ""
        },
        names(&u.columns)
    )
}

fn foreign_key_sql(fk: &ForeignKey) -> String {
    let target = match &fk.target_schema {
        Some(s) => format!("{}.{}", q(s), q(&fk.target_table)),
        None => q(&fk.target_table),
    };
    let mut s = format!(
        "{}FOREIGN KEY ({}) REFERENCES {target} ({}) ON UPDATE {} ON DELETE {}",
        constraint_name(&fk.name),
        names(&fk.columns),
        names(&fk.target_columns),
        fk.on_update.as_sql(),
        fk.on_delete.as_sql()
    );
    if fk.match_full {
        s.push_str(" MATCH FULL");
    }
    match fk.deferrable {
        Deferrable::NotDeferrable => {}
        Deferrable::InitiallyImmediate => s.push_str(" DEFERRABLE INITIALLY IMMEDIATE"),
        Deferrable::InitiallyDeferred => s.push_str(" DEFERRABLE INITIALLY DEFERRED"),
    }
    s
}

fn index_sql(table: &str, i: &Index) -> String {
    let keys: Vec<String> = i
        .keys
        .iter()
        .map(|k| {
            let mut s = match &k.target {
                IndexKeyTarget::Column { name } => q(name),
                IndexKeyTarget::Expression { sql } => format!("({sql})"),
            };
            if !k.options.is_empty() {
                s.push(' ');
                s.push_str(&k.options);
            }
            if k.descending {
                s.push_str(" DESC");
            }
            s
        })
        .collect();
    let mut s = format!(
        "CREATE {}INDEX {}ON {} USING {} ({})",
        if i.unique { "UNIQUE " } else { "" },
        if i.name.server_generated {
            String::new()
        } else {
            format!("{} ", q(&i.name.name))
        },
        q(table),
        i.method,
        keys.join(", ")
    );
    if !i.include.is_empty() {
        s.push_str(&format!(" INCLUDE ({})", names(&i.include)));
    }
    if let Some(p) = &i.predicate {
        s.push_str(&format!(" WHERE {p}"));
    }
    s
}

/// Rows that share a value of `cols` (all non-null): what makes a
/// unique constraint or index fail.
fn duplicates_probe(table: &str, cols: &[String]) -> String {
    let not_null = cols
        .iter()
        .map(|c| format!("{} IS NOT NULL", q(c)))
        .collect::<Vec<_>>()
        .join(" AND ");
    format!(
        "SELECT coalesce(sum(n), 0)::bigint FROM (SELECT count(*) AS n FROM {} WHERE {not_null} GROUP BY {} HAVING count(*) > 1) d",
        q(table),
        names(cols)
    )
}

fn orphans_probe(table: &str, fk: &ForeignKey) -> String {
    let target = match &fk.target_schema {
        Some(s) => format!("{}.{}", q(s), q(&fk.target_table)),
        None => q(&fk.target_table),
    };
    let present = fk
        .columns
        .iter()
        .map(|c| format!("c.{} IS NOT NULL", q(c)))
        .collect::<Vec<_>>()
        .join(" AND ");
    let join = fk
        .columns
        .iter()
        .zip(&fk.target_columns)
        .map(|(c, t)| format!("p.{} = c.{}", q(t), q(c)))
        .collect::<Vec<_>>()
        .join(" AND ");
    format!(
        "SELECT count(*) FROM {} c WHERE {present} AND NOT EXISTS (SELECT 1 FROM {target} p WHERE {join})",
        q(table)
    )
}

/// The sequence options of an identity column, from the table's
/// `identity(<column>)=AS <type> START … CACHE … [CYCLE]` option (the
/// column found by name, never by parsing the key): `(START WITH … )`.
fn identity_options(t: &Table, column: &str) -> Option<String> {
    let key = format!("identity({column})=AS ");
    let rest = t
        .options
        .iter()
        .find_map(|o| o.strip_prefix(key.as_str()))?;
    let words: Vec<&str> = rest.split(' ').collect();
    // The type (possibly several words) comes first; each setting is a
    // keyword and a number after it.
    let value = |name: &str| {
        words
            .iter()
            .position(|w| *w == name)
            .and_then(|i| words.get(i + 1))
            .filter(|v| v.parse::<i64>().is_ok())
            .copied()
    };
    Some(format!(
        " (START WITH {} INCREMENT BY {} MINVALUE {} MAXVALUE {} CACHE {}{})",
        value("START")?,
        value("INCREMENT")?,
        value("MINVALUE")?,
        value("MAXVALUE")?,
        value("CACHE")?,
        if words.last() == Some(&"CYCLE") {
            " CYCLE"
        } else {
            ""
        }
    ))
}

fn create_table(t: &Table, roles: &TenantRoles, steps: &mut Vec<SyncStep>, object: String) {
    let identities: Vec<(&str, String)> = t
        .columns
        .iter()
        .filter(|c| c.identity.is_some())
        .filter_map(|c| identity_options(t, &c.name).map(|o| (c.name.as_str(), o)))
        .collect();
    let unsupported = t.kind == TableKind::Partitioned;
    let mut lines = Vec::new();
    for c in &t.columns {
        let identity = identities
            .iter()
            .find(|(name, _)| *name == c.name)
            .map(|(_, o)| o.as_str());
        let line = column_sql_with(c, identity);
        match line {
            Some(l) if !unsupported => lines.push(l),
            _ => {
                steps.push(SyncStep::manual(object, "the missing table is partitioned or has a column kind the planner does not create; reset the tenant, or `tenantry repair` creates it from the template".into()));
                return;
            }
        }
    }
    if let Some(pk) = &t.primary_key {
        lines.push(format!(
            "{}PRIMARY KEY ({})",
            constraint_name(&pk.name),
            names(&pk.columns)
        ));
    }
    lines.extend(t.uniques.iter().map(unique_sql));
    let mut exclusions = Vec::new();
    for c in &t.checks {
        match check_body(c) {
            Some(body) => lines.push(format!("{}CHECK {body}", constraint_name(&c.name))),
            // An exclusion constraint's index is built in its own step.
            None => exclusions.push(c),
        }
    }
    steps.push(SyncStep::new(
        CREATE_TABLES,
        StepClass::Safe,
        object.clone(),
        "create the missing table (empty)".into(),
        vec![format!(
            "CREATE {}TABLE {} (\n    {}\n)",
            if t.options.iter().any(|o| o == "persistence=unlogged") {
                "UNLOGGED "
            } else {
                ""
            },
            q(&t.name),
            lines.join(",\n    ")
        )],
    ));
    for i in &t.indexes {
        steps.push(SyncStep::new(
            ADD_RULES,
            StepClass::Safe,
            object.clone(),
            format!("create index {}", i.name.name),
            vec![index_sql(&t.name, i)],
        ));
    }
    steps.extend(
        exclusions
            .into_iter()
            .map(|c| exclusion_step(&q(&t.name), c, &object)),
    );
    for fk in &t.foreign_keys {
        steps.push(SyncStep::new(
            ADD_LINKS,
            StepClass::Safe,
            object.clone(),
            format!("add foreign key to {}", fk.target_table),
            vec![format!(
                "ALTER TABLE {} ADD {}",
                q(&t.name),
                foreign_key_sql(fk)
            )],
        ));
    }
    let table = q(&t.name);
    steps.extend(owned_extras(
        &Named::same(format!("TABLE {table}")),
        Extras::of(t.owner.as_deref(), &t.grants, None),
        None,
        roles,
        &object,
    ));
    steps.extend(
        t.triggers
            .iter()
            .map(|tr| create_trigger(&table, tr, &object)),
    );
    steps.extend(
        t.policies
            .iter()
            .map(|p| create_policy(&table, p, roles, &object)),
    );
    steps.extend(row_security_steps(&table, t, None, &object));
    steps.extend(table_option_steps(t, None, &object));
}

fn table_changes(
    a: &Table,
    b: &Table,
    quarantine: &str,
    roles: &TenantRoles,
    steps: &mut Vec<SyncStep>,
    object: &str,
) {
    let t = q(&b.name);
    let obj = || object.to_owned();
    // Columns.
    let custom: Vec<&Column> = b
        .columns
        .iter()
        .filter(|c| a.column(&c.name).is_none())
        .collect();
    if !custom.is_empty() {
        let copy = format!("{}.{}", q(quarantine), t);
        steps.push(
            SyncStep::new(
                DROP_COLUMNS,
                StepClass::Destructive,
                obj(),
                format!(
                    "copy the whole table to the quarantine, then drop the custom column{} {}",
                    if custom.len() == 1 { "" } else { "s" },
                    custom
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                std::iter::once(format!("CREATE TABLE {copy} AS TABLE {t}"))
                    .chain(
                        custom
                            .iter()
                            .map(|c| format!("ALTER TABLE {t} DROP COLUMN {}", q(&c.name))),
                    )
                    .collect(),
            )
            .probe(
                format!(
                    "SELECT count(*) FROM {t} WHERE {}",
                    custom
                        .iter()
                        .map(|c| format!("{} IS NOT NULL", q(&c.name)))
                        .collect::<Vec<_>>()
                        .join(" OR ")
                ),
                "rows with a value in a custom column (the whole table is copied first)".into(),
            ),
        );
    }
    for ca in &a.columns {
        let Some(cb) = b.column(&ca.name) else {
            match column_sql(ca) {
                Some(def) => {
                    let needs_rows_empty = !ca.nullable
                        && ca.default.is_none()
                        && ca.identity.is_none()
                        && ca.generated.is_none();
                    let step = SyncStep::new(
                        ALTER_COLUMNS,
                        if needs_rows_empty {
                            StepClass::Checked
                        } else {
                            StepClass::Safe
                        },
                        obj(),
                        format!("add the missing column {}", ca.name),
                        vec![format!("ALTER TABLE {t} ADD COLUMN {def}")],
                    );
                    steps.push(if needs_rows_empty {
                        step.probe(format!("SELECT count(*) FROM {t}"), format!("rows that would get no value for NOT NULL column {} (it has no default)", ca.name))
                    } else {
                        step
                    });
                }
                None => steps.push(SyncStep::manual(
                    obj(),
                    format!(
                        "missing column {}: a kind the planner does not create",
                        ca.name
                    ),
                )),
            }
            continue;
        };
        column_change(
            &b.name,
            ca,
            cb,
            identity_options(a, &ca.name),
            steps,
            object,
        );
    }
    // Primary key.
    let pk_line = |x: &Table| {
        x.primary_key.as_ref().map(|p| {
            (
                p.name
                    .server_generated
                    .then(String::new)
                    .unwrap_or_else(|| p.name.name.clone()),
                p.columns.clone(),
            )
        })
    };
    if pk_line(a) != pk_line(b) {
        // Foreign keys that reference the table are dropped and added again
        // around the swap ([`refer_again`]).
        {
            // The tenant's key goes first (with the rules), the template's
            // comes back after the columns are, checked for rows it refuses.
            if let Some(pk) = &b.primary_key {
                steps.push(SyncStep::new(
                    DROP_RULES,
                    StepClass::Safe,
                    obj(),
                    format!(
                        "drop the {} primary key ({})",
                        if a.primary_key.is_some() {
                            "changed"
                        } else {
                            "custom"
                        },
                        pk.columns.join(", ")
                    ),
                    vec![format!(
                        "ALTER TABLE {t} DROP CONSTRAINT {}",
                        q(&pk.name.name)
                    )],
                ));
            }
            if let Some(pk) = &a.primary_key {
                let (probe, meaning) =
                    primary_key_probe(&t, &pk.columns, q, &duplicates_probe(&b.name, &pk.columns));
                steps.push(
                    SyncStep::new(
                        ADD_RULES,
                        StepClass::Checked,
                        obj(),
                        format!("add the primary key ({})", pk.columns.join(", ")),
                        vec![format!(
                            "ALTER TABLE {t} ADD {}PRIMARY KEY ({})",
                            constraint_name(&pk.name),
                            names(&pk.columns)
                        )],
                    )
                    .probe(probe, meaning),
                );
            }
        }
    }
    // Uniques, checks, foreign keys and indexes, matched by their canonical
    // line (which leaves server-generated names out).
    let (custom_uniques, missing_uniques) = unmatched(&a.uniques, &b.uniques, |u| {
        ddl::table_body_lines(&only_unique(u)).join("")
    });
    for u in custom_uniques {
        steps.push(SyncStep::new(
            DROP_RULES,
            StepClass::Safe,
            obj(),
            format!("drop the custom unique constraint {}", u.name.name),
            vec![format!(
                "ALTER TABLE {t} DROP CONSTRAINT {}",
                q(&u.name.name)
            )],
        ));
    }
    for u in missing_uniques {
        steps.push(
            SyncStep::new(
                ADD_RULES,
                StepClass::Checked,
                obj(),
                format!("add the unique constraint on ({})", u.columns.join(", ")),
                vec![format!("ALTER TABLE {t} ADD {}", unique_sql(u))],
            )
            .probe(
                duplicates_probe(&b.name, &u.columns),
                "rows sharing a value that must be unique".into(),
            ),
        );
    }
    let (custom_checks, missing_checks) = unmatched(&a.checks, &b.checks, check_line);
    for c in custom_checks {
        steps.push(SyncStep::new(
            DROP_RULES,
            StepClass::Safe,
            obj(),
            format!("drop the custom check {}", c.name.name),
            vec![format!(
                "ALTER TABLE {t} DROP CONSTRAINT {}",
                q(&c.name.name)
            )],
        ));
    }
    for c in missing_checks {
        match check_body(c) {
            Some(body) => steps.push(
                SyncStep::new(
                    ADD_RULES,
                    StepClass::Checked,
                    obj(),
                    format!("add the check {body}"),
                    vec![format!(
                        "ALTER TABLE {t} ADD {}CHECK {body}",
                        constraint_name(&c.name)
                    )],
                )
                .probe(
                    format!("SELECT count(*) FROM {t} WHERE NOT {body}"),
                    "rows that violate the check".into(),
                ),
            ),
            None => steps.push(exclusion_step(&t, c, object)),
        }
    }
    let (custom_foreign_keys, missing_foreign_keys) =
        unmatched(&a.foreign_keys, &b.foreign_keys, ddl::foreign_key_line);
    for fk in custom_foreign_keys {
        steps.push(SyncStep::new(
            DROP_LINKS,
            StepClass::Safe,
            obj(),
            format!("drop the custom or changed foreign key {}", fk.name.name),
            vec![format!(
                "ALTER TABLE {t} DROP CONSTRAINT {}",
                q(&fk.name.name)
            )],
        ));
    }
    for fk in missing_foreign_keys {
        steps.push(
            SyncStep::new(
                ADD_LINKS,
                StepClass::Checked,
                obj(),
                format!(
                    "add the foreign key ({}) to {}",
                    fk.columns.join(", "),
                    fk.target_table
                ),
                vec![format!("ALTER TABLE {t} ADD {}", foreign_key_sql(fk))],
            )
            .probe(
                orphans_probe(&b.name, fk),
                "rows whose reference has no target".into(),
            ),
        );
    }
    let (custom_indexes, missing_indexes) =
        unmatched(&a.indexes, &b.indexes, |i| ddl::index_line(&a.name, i));
    for i in custom_indexes {
        steps.push(SyncStep::new(
            DROP_RULES,
            StepClass::Safe,
            obj(),
            format!("drop the custom or changed index {}", i.name.name),
            vec![format!("DROP INDEX {}", q(&i.name.name))],
        ));
    }
    for i in missing_indexes {
        let plain_columns: Option<Vec<String>> = i
            .keys
            .iter()
            .map(|k| match &k.target {
                IndexKeyTarget::Column { name } => Some(name.clone()),
                IndexKeyTarget::Expression { .. } => None,
            })
            .collect();
        let step = SyncStep::new(
            ADD_RULES,
            if i.unique {
                StepClass::Checked
            } else {
                StepClass::Safe
            },
            obj(),
            format!("create the index {}", i.name.name),
            vec![index_sql(&a.name, i)],
        );
        steps.push(match (i.unique, plain_columns, &i.predicate) {
            (true, Some(cols), None) => step.probe(
                duplicates_probe(&b.name, &cols),
                "rows sharing a value that must be unique".into(),
            ),
            _ => step,
        });
    }
    // Triggers: custom ones are dropped; missing or changed ones are
    // created from the template's definition (the catalog's own text, run
    // with the tenant's schema first on the search path), after the
    // functions they call are there.
    for tr in &b.triggers {
        match a.triggers.iter().find(|x| x.name == tr.name) {
            Some(x) if x == tr => {}
            Some(x) if x.definition == tr.definition => steps.push(SyncStep::new(
                ADD_LINKS,
                StepClass::Safe,
                obj(),
                format!("trigger {}: {} again", x.name, x.state.as_str()),
                vec![trigger_state_sql(&t, x)],
            )),
            Some(x) => {
                steps.push(SyncStep::new(
                    DROP_LINKS,
                    StepClass::Safe,
                    obj(),
                    format!(
                        "drop the changed trigger {} (it is created again below)",
                        tr.name
                    ),
                    vec![format!("DROP TRIGGER {} ON {t}", q(&tr.name))],
                ));
                steps.push(create_trigger(&t, x, object));
            }
            None => steps.push(SyncStep::new(
                DROP_LINKS,
                StepClass::Safe,
                obj(),
                format!("drop the custom trigger {}", tr.name),
                vec![format!("DROP TRIGGER {} ON {t}", q(&tr.name))],
            )),
        }
    }
    for tr in a
        .triggers
        .iter()
        .filter(|x| !b.triggers.iter().any(|y| y.name == x.name))
    {
        steps.push(create_trigger(&t, tr, object));
    }
    // Policies: dropped, or created from their parts.
    for p in &b.policies {
        match a.policies.iter().find(|x| x.name == p.name) {
            Some(x) if x == p => {}
            Some(x) => {
                steps.push(SyncStep::new(
                    DROP_LINKS,
                    StepClass::Safe,
                    obj(),
                    format!(
                        "drop the changed policy {} (it is created again below)",
                        p.name
                    ),
                    vec![format!("DROP POLICY {} ON {t}", q(&p.name))],
                ));
                steps.push(create_policy(&t, x, roles, object));
            }
            None => steps.push(SyncStep::new(
                DROP_LINKS,
                StepClass::Safe,
                obj(),
                format!("drop the custom policy {}", p.name),
                vec![format!("DROP POLICY {} ON {t}", q(&p.name))],
            )),
        }
    }
    for p in a
        .policies
        .iter()
        .filter(|x| !b.policies.iter().any(|y| y.name == x.name))
    {
        steps.push(create_policy(&t, p, roles, object));
    }
    // Row-level security switched as the template has it.
    steps.extend(row_security_steps(&t, a, Some(b), object));
    steps.extend(table_option_steps(a, Some(b), object));
    steps.extend(owned_extras(
        &Named::same(format!("TABLE {t}")),
        Extras::of(a.owner.as_deref(), &a.grants, None),
        Some(Extras::of(b.owner.as_deref(), &b.grants, None)),
        roles,
        object,
    ));
    if a.kind != b.kind {
        steps.push(SyncStep::manual(
            obj(),
            "the table is partitioned on one side only".into(),
        ));
    }
}

/// One of a PostgreSQL table's options (`Table::options`), told apart by
/// the names of the table's own columns and indexes, never by parsing a
/// name out of the option.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TableOption<'a> {
    /// A storage parameter, `fillfactor=70`.
    Storage {
        key: &'a str,
        value: &'a str,
    },
    Unlogged,
    /// `full`, `nothing`, or `index <name>`.
    ReplicaIdentity(&'a str),
    /// The table's comment, as a literal.
    Comment(&'a str),
    ColumnComment {
        column: &'a str,
        literal: &'a str,
    },
    IndexComment {
        index: &'a str,
        literal: &'a str,
    },
    /// An index's storage parameters, `fillfactor=70,deduplicate_items=off`.
    IndexStorage {
        index: &'a str,
        list: &'a str,
    },
    Compression {
        column: &'a str,
        method: &'a str,
    },
    ColumnStorage {
        column: &'a str,
        kind: &'a str,
    },
    /// An identity column's sequence options, `AS bigint START 1 …`.
    Identity {
        column: &'a str,
        settings: &'a str,
    },
    RowSecurity,
    /// Partitioning, rules, or an option of no known shape.
    Other(&'a str),
}

impl<'a> TableOption<'a> {
    /// What pairs the template's option with the tenant's.
    fn key(&self) -> String {
        match self {
            TableOption::Storage { key, .. } => format!("storage {key}"),
            TableOption::Unlogged => "unlogged".into(),
            TableOption::ReplicaIdentity(_) => "replica identity".into(),
            TableOption::Comment(_) => "comment".into(),
            TableOption::ColumnComment { column, .. } => format!("comment on column {column}"),
            TableOption::IndexComment { index, .. } => format!("comment on index {index}"),
            TableOption::IndexStorage { index, .. } => format!("storage of index {index}"),
            TableOption::Compression { column, .. } => format!("compression of {column}"),
            TableOption::ColumnStorage { column, .. } => format!("storage of {column}"),
            TableOption::Identity { column, .. } => format!("identity of {column}"),
            TableOption::RowSecurity => "row security".into(),
            TableOption::Other(o) => format!("option {o}"),
        }
    }
}

fn table_option<'a>(o: &'a str, columns: &[&str], indexes: &[&str]) -> TableOption<'a> {
    let named = |kind: &str, names: &[&str]| {
        names.iter().find_map(|n| {
            o.strip_prefix(kind)
                .and_then(|r| r.strip_prefix('('))
                .and_then(|r| r.strip_prefix(*n))
                .and_then(|r| r.strip_prefix(")="))
                .map(|rest| (&o[kind.len() + 1..kind.len() + 1 + n.len()], rest))
        })
    };
    if o.starts_with("row_security=") {
        return TableOption::RowSecurity;
    }
    if o == "persistence=unlogged" {
        return TableOption::Unlogged;
    }
    if o.starts_with("partition_by=") || o.starts_with("partition_of=") {
        return TableOption::Other(o);
    }
    if let Some(v) = o.strip_prefix("replica_identity=") {
        return TableOption::ReplicaIdentity(v);
    }
    if let Some(v) = o.strip_prefix("comment=") {
        return TableOption::Comment(v);
    }
    if let Some((column, literal)) = named("comment", columns) {
        return TableOption::ColumnComment { column, literal };
    }
    if let Some((index, literal)) = named("index_comment", indexes) {
        return TableOption::IndexComment { index, literal };
    }
    if let Some((index, list)) = named("index_options", indexes) {
        return TableOption::IndexStorage { index, list };
    }
    if let Some((column, method)) = named("compression", columns) {
        return TableOption::Compression { column, method };
    }
    if let Some((column, kind)) = named("storage", columns) {
        return TableOption::ColumnStorage { column, kind };
    }
    if let Some((column, settings)) = named("identity", columns) {
        return TableOption::Identity { column, settings };
    }
    match o.split_once('=') {
        Some((key, value))
            if !key.is_empty()
                && key.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.'
                }) =>
        {
            TableOption::Storage { key, value }
        }
        _ => TableOption::Other(o),
    }
}

/// A storage parameter's value as a literal (`'70'`): the server parses
/// it for the parameter's type.
fn parameter_value(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The statements that give the table the template's options (`a`) where
/// the tenant's (`b`; `None` for a table this plan creates, whose
/// identities are in its columns) differ: storage parameters, UNLOGGED,
/// replica identity, comments, index storage, compression and storage of
/// columns, an identity's sequence options (checked). Partitioning, rules,
/// and a column's storage the template leaves at its type's default stay
/// manual. Row security has steps of its own.
fn table_option_steps(a: &Table, b: Option<&Table>, object: &str) -> Vec<SyncStep> {
    let t = q(&a.name);
    let mut columns: Vec<&str> = a.columns.iter().map(|c| c.name.as_str()).collect();
    let mut indexes: Vec<&str> = a.indexes.iter().map(|i| i.name.name.as_str()).collect();
    if let Some(b) = b {
        columns.extend(b.columns.iter().map(|c| c.name.as_str()));
        indexes.extend(b.indexes.iter().map(|i| i.name.name.as_str()));
        indexes.extend(b.uniques.iter().map(|u| u.name.name.as_str()));
        indexes.extend(b.primary_key.iter().map(|p| p.name.name.as_str()));
    }
    indexes.extend(a.uniques.iter().map(|u| u.name.name.as_str()));
    indexes.extend(a.primary_key.iter().map(|p| p.name.name.as_str()));
    // Longest first: `a_b` is not taken for `a`.
    columns.sort_by_key(|n| std::cmp::Reverse(n.len()));
    indexes.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let read = |x: &'_ Table| -> Vec<(String, String)> {
        x.options
            .iter()
            .map(|o| {
                let opt = table_option(o, &columns, &indexes);
                (opt.key(), o.clone())
            })
            .collect()
    };
    let want = read(a);
    let have = b.map(read).unwrap_or_default();
    let mut keys: Vec<&String> = want.iter().chain(&have).map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    let mut steps = Vec::new();
    let step = |phase: u8, action: String, sql: Vec<String>| {
        SyncStep::new(phase, StepClass::Safe, object.to_owned(), action, sql)
    };
    let manual = |why: String| SyncStep::manual(object.to_owned(), why);
    let in_template_column = |c: &str| a.column(c).is_some();
    let in_template_index = |i: &str| {
        a.indexes.iter().any(|x| x.name.name == i)
            || a.uniques.iter().any(|x| x.name.name == i)
            || a.primary_key.as_ref().is_some_and(|p| p.name.name == i)
    };
    for key in keys {
        let w = want.iter().find(|(k, _)| k == key).map(|(_, o)| o.as_str());
        let h = have.iter().find(|(k, _)| k == key).map(|(_, o)| o.as_str());
        if w == h {
            continue;
        }
        let (w, h) = (
            w.map(|o| table_option(o, &columns, &indexes)),
            h.map(|o| table_option(o, &columns, &indexes)),
        );
        match (w.as_ref().or(h.as_ref()).expect("a key of either side"), &w) {
            (TableOption::RowSecurity, _) => {}
            // Created with the table's columns, or added/dropped with one.
            (TableOption::Identity { .. }, _) if b.is_none() => {}
            (TableOption::Identity { column, .. }, _)
                if !(a.column(column).is_some_and(|c| c.identity.is_some())
                    && b.and_then(|b| b.column(column)).is_some_and(|c| c.identity.is_some())) => {}
            (TableOption::Storage { key: k, .. }, Some(TableOption::Storage { value, .. })) => steps.push(step(
                ADD_LINKS,
                format!("storage parameter {k} as the template has it"),
                vec![format!("ALTER TABLE {t} SET ({k} = {})", parameter_value(value))],
            )),
            (TableOption::Storage { key: k, .. }, None) => steps.push(step(
                ADD_LINKS,
                format!("reset the custom storage parameter {k}"),
                vec![format!("ALTER TABLE {t} RESET ({k})")],
            )),
            // A table this plan creates is created UNLOGGED.
            (TableOption::Unlogged, _) if b.is_none() => {}
            (TableOption::Unlogged, w) => steps.push(step(
                ALTER_COLUMNS,
                format!("{} again (the table is rewritten, its rows kept)", if w.is_some() { "unlogged" } else { "logged" }),
                vec![format!("ALTER TABLE {t} SET {}", if w.is_some() { "UNLOGGED" } else { "LOGGED" })],
            )),
            (TableOption::ReplicaIdentity(_), w) => {
                let how = match w {
                    Some(TableOption::ReplicaIdentity("full")) => "FULL".to_owned(),
                    Some(TableOption::ReplicaIdentity("nothing")) => "NOTHING".to_owned(),
                    Some(TableOption::ReplicaIdentity(v)) => match v.strip_prefix("index ") {
                        Some(index) => format!("USING INDEX {}", q(index)),
                        None => {
                            steps.push(manual(format!("replica identity {v}")));
                            continue;
                        }
                    },
                    _ => "DEFAULT".to_owned(),
                };
                steps.push(step(
                    ADD_LINKS,
                    "replica identity as the template has it".into(),
                    vec![format!("ALTER TABLE {t} REPLICA IDENTITY {how}")],
                ));
            }
            (TableOption::Comment(_), w) => steps.push(step(
                ADD_LINKS,
                if w.is_some() {
                    "the table's comment as the template has it".into()
                } else {
                    "remove the table's custom comment".into()
                },
                vec![format!(
                    "COMMENT ON TABLE {t} IS {}",
                    match w {
                        Some(TableOption::Comment(l)) => *l,
                        _ => "NULL",
                    }
                )],
            )),
            (TableOption::ColumnComment { column, .. }, w) if in_template_column(column) => steps.push(step(
                ADD_LINKS,
                format!("the comment of column {column} as the template has it"),
                vec![format!(
                    "COMMENT ON COLUMN {t}.{} IS {}",
                    q(column),
                    match w {
                        Some(TableOption::ColumnComment { literal, .. }) => *literal,
                        _ => "NULL",
                    }
                )],
            )),
            (TableOption::IndexComment { index, .. }, w) if in_template_index(index) => steps.push(step(
                ADD_LINKS,
                format!("the comment of index {index} as the template has it"),
                vec![format!(
                    "COMMENT ON INDEX {} IS {}",
                    q(index),
                    match w {
                        Some(TableOption::IndexComment { literal, .. }) => *literal,
                        _ => "NULL",
                    }
                )],
            )),
            (TableOption::IndexStorage { index, .. }, w) if in_template_index(index) => {
                let pairs = |x: &Option<TableOption>| -> Vec<(String, String)> {
                    match x {
                        Some(TableOption::IndexStorage { list, .. }) => list
                            .split(',')
                            .filter_map(|p| p.split_once('='))
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .collect(),
                        _ => Vec::new(),
                    }
                };
                let (set, had) = (pairs(w), pairs(&h));
                let valid = |k: &str| k.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !set.iter().chain(&had).all(|(k, _)| valid(k)) {
                    steps.push(manual(format!("index {index}: storage parameters the planner cannot write")));
                    continue;
                }
                let mut sql = Vec::new();
                let reset: Vec<&str> = had
                    .iter()
                    .filter(|(k, _)| !set.iter().any(|(x, _)| x == k))
                    .map(|(k, _)| k.as_str())
                    .collect();
                if !reset.is_empty() {
                    sql.push(format!("ALTER INDEX {} RESET ({})", q(index), reset.join(", ")));
                }
                if !set.is_empty() {
                    sql.push(format!(
                        "ALTER INDEX {} SET ({})",
                        q(index),
                        set.iter()
                            .map(|(k, v)| format!("{k} = {}", parameter_value(v)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                steps.push(step(ADD_LINKS, format!("index {index}: storage parameters as the template has them"), sql));
            }
            (TableOption::Compression { column, .. }, w) if in_template_column(column) => {
                let method = match w {
                    Some(TableOption::Compression { method, .. }) if method.bytes().all(|b| b.is_ascii_alphanumeric()) => method.to_string(),
                    Some(_) => {
                        steps.push(manual(format!("column {column}: a compression the planner cannot write")));
                        continue;
                    }
                    None => "DEFAULT".into(),
                };
                steps.push(step(
                    ADD_LINKS,
                    format!("column {column}: compression as the template has it (for values written from now on)"),
                    vec![format!("ALTER TABLE {t} ALTER COLUMN {} SET COMPRESSION {method}", q(column))],
                ));
            }
            (TableOption::ColumnStorage { column, .. }, Some(TableOption::ColumnStorage { kind, .. }))
                if in_template_column(column) && matches!(*kind, "plain" | "external" | "extended" | "main") =>
            {
                steps.push(step(
                    ADD_LINKS,
                    format!("column {column}: storage {kind} as the template has it"),
                    vec![format!("ALTER TABLE {t} ALTER COLUMN {} SET STORAGE {}", q(column), kind.to_ascii_uppercase())],
                ));
            }
            (TableOption::Identity { column, .. }, Some(TableOption::Identity { settings, .. })) => {
                match identity_settings_step(&t, column, settings, h.as_ref(), object) {
                    Some(s) => steps.push(s),
                    None => steps.push(manual(format!("column {column}: its identity's type differs"))),
                }
            }
            // Options of a custom column or index go with it.
            (TableOption::ColumnComment { .. } | TableOption::Compression { .. } | TableOption::ColumnStorage { .. }, _)
                if w.is_none() && h.as_ref().is_some_and(|h| match h {
                    TableOption::ColumnComment { column, .. } | TableOption::Compression { column, .. } | TableOption::ColumnStorage { column, .. } => !in_template_column(column),
                    _ => false,
                }) => {}
            (TableOption::IndexComment { .. } | TableOption::IndexStorage { .. }, _)
                if w.is_none() && h.as_ref().is_some_and(|h| match h {
                    TableOption::IndexComment { index, .. } | TableOption::IndexStorage { index, .. } => !in_template_index(index),
                    _ => false,
                }) => {}
            (TableOption::ColumnStorage { column, .. }, _) => steps.push(manual(format!(
                "column {column}: its storage differs and goes back to its type's default, which the planner does not know"
            ))),
            (opt, _) => steps.push(manual(format!(
                "the table's {} differs (partitioning, a rule or an option the planner does not write)",
                opt.key()
            ))),
        }
    }
    steps
}

/// A missing exclusion constraint (`EXCLUDE USING gist (…)` as the catalog
/// prints it), added with the index it builds. Rows that conflict make the
/// server refuse it, and the sync then changes nothing: there is no probe
/// that counts them short of the operator's own comparison.
fn exclusion_step(t: &str, c: &CheckConstraint, object: &str) -> SyncStep {
    let definition = c.expression.trim();
    SyncStep::new(
        ADD_RULES,
        StepClass::Safe,
        object.to_owned(),
        format!(
            "add the exclusion constraint {} (rows that conflict stop the sync, which then changes nothing)",
            c.name.name
        ),
        vec![format!("ALTER TABLE {t} ADD {}{definition}", constraint_name(&c.name))],
    )
}

/// `ALTER COLUMN … SET INCREMENT BY … SET MINVALUE …`: an identity's
/// sequence options as the template has them (`settings`, `AS bigint START
/// 1 INCREMENT 1 …`), its current value kept, checked first to lie inside
/// the template's range. `None` when the identity's type differs.
fn identity_settings_step(
    t: &str,
    column: &str,
    settings: &str,
    have: Option<&TableOption>,
    object: &str,
) -> Option<SyncStep> {
    let type_of = |s: &str| s.split(" START ").next().map(str::to_owned);
    if let Some(TableOption::Identity { settings: had, .. }) = have {
        if type_of(had) != type_of(settings) {
            return None;
        }
    }
    let words: Vec<&str> = settings.split(' ').collect();
    let value = |name: &str| {
        words
            .iter()
            .position(|w| *w == name)
            .and_then(|i| words.get(i + 1))
            .and_then(|v| v.parse::<i64>().ok())
    };
    let (start, increment, min, max, cache) = (
        value("START")?,
        value("INCREMENT")?,
        value("MINVALUE")?,
        value("MAXVALUE")?,
        value("CACHE")?,
    );
    let cycle = words.last() == Some(&"CYCLE");
    let c = q(column);
    let sequence = format!(
        "pg_catalog.pg_get_serial_sequence({}, {})",
        postgres_literal(t),
        postgres_literal(column)
    );
    Some(
        SyncStep::new(
            ALTER_COLUMNS,
            StepClass::Checked,
            object.to_owned(),
            format!("column {column}: the identity's increment, range, start, cache and cycle as the template has them; the current value stays"),
            vec![format!(
                "ALTER TABLE {t} ALTER COLUMN {c} SET INCREMENT BY {increment} SET MINVALUE {min} SET MAXVALUE {max} SET START WITH {start} SET CACHE {cache} SET {}",
                if cycle { "CYCLE" } else { "NO CYCLE" }
            )],
        )
        .probe(
            format!(
                "SELECT count(*) FROM (SELECT pg_catalog.pg_sequence_last_value({sequence}::regclass) AS v) s WHERE v > {max} OR v < {min}"
            ),
            "identity sequences whose current value is outside the template's range".into(),
        ),
    )
}

/// `GRANT`/`REVOKE` statements that give `on` (`TABLE "t"`) the template's
/// privileges `a` where the tenant has `b`: what the tenant has beyond the
/// template is undone first, then what it lacks is given. `owners`: who
/// the object's `{owner}` is before the sync and after it.
fn grant_steps(
    on: &str,
    a: &[crate::schema::Grant],
    b: &[crate::schema::Grant],
    owners: (&str, &str),
    roles: &TenantRoles,
    object: &str,
) -> Vec<SyncStep> {
    let statement = |g: &crate::schema::Grant, give: bool, owner: &str| -> String {
        let who = roles.grantee(&g.grantee, owner);
        let column = g
            .column
            .as_ref()
            .map(|c| format!(" ({})", q(c)))
            .unwrap_or_default();
        // `give`: reach the state `g` describes; otherwise undo it.
        if g.revoked != give {
            format!(
                "GRANT {}{column} ON {on} TO {who}{}",
                g.privilege,
                if give && g.grantable {
                    " WITH GRANT OPTION"
                } else {
                    ""
                }
            )
        } else {
            format!("REVOKE {}{column} ON {on} FROM {who} CASCADE", g.privilege)
        }
    };
    let describe = |g: &crate::schema::Grant| {
        format!(
            "{}{} {} {}",
            g.privilege,
            g.column
                .as_ref()
                .map(|c| format!(" ({c})"))
                .unwrap_or_default(),
            if g.revoked { "from" } else { "to" },
            g.grantee
        )
    };
    let mut out = Vec::new();
    for g in b.iter().filter(|g| !a.contains(g)) {
        out.push(SyncStep::new(
            DROP_LINKS,
            StepClass::Safe,
            object.to_owned(),
            format!(
                "undo the custom {} of {}",
                if g.revoked { "revocation" } else { "grant" },
                describe(g)
            ),
            vec![statement(g, false, owners.0)],
        ));
    }
    for g in a.iter().filter(|g| !b.contains(g)) {
        out.push(SyncStep::new(
            ADD_LINKS,
            StepClass::Safe,
            object.to_owned(),
            format!(
                "{} {} as the template does",
                if g.revoked { "revoke" } else { "grant" },
                describe(g)
            ),
            vec![statement(g, true, owners.1)],
        ));
    }
    out
}

/// What an object carries besides its definition: its owner through the
/// role rule (`None`: the schema's usual owner), its privileges and its
/// comment.
#[derive(Clone)]
struct Extras<'a> {
    owner: Option<&'a str>,
    /// The owner's real name when the object follows another's ownership
    /// (a sequence its table's): its owner is then not changed here.
    follows: Option<String>,
    grants: &'a [crate::schema::Grant],
    comment: Option<&'a str>,
}

impl<'a> Extras<'a> {
    fn of(
        owner: Option<&'a str>,
        grants: &'a [crate::schema::Grant],
        comment: Option<&'a str>,
    ) -> Self {
        Self {
            owner,
            follows: None,
            grants,
            comment,
        }
    }

    fn owner_role(&self, roles: &TenantRoles) -> String {
        self.follows
            .clone()
            .unwrap_or_else(|| roles.owner(self.owner))
    }
}

/// Statements naming an object: how `ALTER … OWNER TO`, `GRANT … ON` and
/// `COMMENT ON` each spell it (`TABLE "v"` grants on a view, `FUNCTION`
/// on an aggregate).
struct Named {
    alter: String,
    grant: String,
}

impl Named {
    fn same(on: String) -> Self {
        Self {
            alter: on.clone(),
            grant: on,
        }
    }
}

/// The owner, privileges and comment of the template's object (`want`)
/// on the tenant's (`have`; `None` for one this plan creates, owned by the
/// role the sync runs as until it is given to its owner). Owners change
/// with the columns, before the privileges that name them are given.
fn owned_extras(
    on: &Named,
    want: Extras,
    have: Option<Extras>,
    roles: &TenantRoles,
    object: &str,
) -> Vec<SyncStep> {
    let mut steps = Vec::new();
    let target = want.owner_role(roles);
    let current = match &have {
        Some(h) => h.owner_role(roles),
        None => roles.current_user.clone(),
    };
    let owner_differs = match &have {
        Some(h) => want.follows.is_none() && h.owner != want.owner,
        None => want.follows.is_none() && target != current,
    };
    if owner_differs {
        steps.push(SyncStep::new(
            if have.is_some() {
                ALTER_COLUMNS
            } else {
                ADD_LINKS
            },
            StepClass::Safe,
            object.to_owned(),
            format!(
                "give it to {} as the template does (its privileges go with it)",
                want.owner.unwrap_or("the schema's usual owner")
            ),
            vec![format!("ALTER {} OWNER TO {}", on.alter, q(&target))],
        ));
    }
    let had: &[crate::schema::Grant] = have.as_ref().map(|h| h.grants).unwrap_or_default();
    if want.grants != had {
        steps.extend(grant_steps(
            &on.grant,
            want.grants,
            had,
            (&current, &target),
            roles,
            object,
        ));
    }
    let had_comment = have.as_ref().and_then(|h| h.comment);
    if want.comment != had_comment {
        steps.push(SyncStep::new(
            ADD_LINKS,
            StepClass::Safe,
            object.to_owned(),
            match want.comment {
                Some(_) => "set the template's comment".to_owned(),
                None => "remove the custom comment".to_owned(),
            },
            vec![format!(
                "COMMENT ON {} IS {}",
                on.alter,
                want.comment
                    .map(postgres_literal)
                    .unwrap_or_else(|| "NULL".into())
            )],
        ));
    }
    steps
}

/// A missing function or procedure created, or a changed one replaced,
/// from the template's definition: canonical DDL that PostgreSQL runs as
/// it is, with the tenant's schema first on the search path. Its body is
/// not checked at creation (`check_function_bodies` off for the step, as
/// `pg_dump` does), so it may name tables created in a later phase. A
/// definition that does not run or does not hash as the template's rolls
/// the whole sync back.
fn create_routine(
    r: &crate::schema::Routine,
    tenant: Option<&crate::schema::Routine>,
    roles: &TenantRoles,
    object: String,
) -> Vec<SyncStep> {
    let kind = match r.kind.as_str() {
        "procedure" => "PROCEDURE",
        "aggregate" => "AGGREGATE",
        _ => "FUNCTION",
    };
    let definition = r.definition.trim();
    let prefix = format!("CREATE {kind} ");
    let manual = |why: &str| {
        vec![SyncStep::manual(
            object.clone(),
            format!(
                "{} {}: {why}; reset the tenant or accept it as a customisation",
                r.kind, r.name
            ),
        )]
    };
    // Owner and privileges: a replaced routine keeps its own (CREATE OR
    // REPLACE leaves them), a created one starts as the sync's role's with
    // the defaults; either way the differences from the template's are
    // given, granted or revoked.
    let signature = format!("{}({})", q(&r.name), r.arguments);
    let on = Named {
        alter: format!(
            "{} {signature}",
            if kind == "AGGREGATE" {
                "AGGREGATE"
            } else {
                "ROUTINE"
            }
        ),
        grant: format!(
            "{} {signature}",
            if kind == "AGGREGATE" {
                "FUNCTION"
            } else {
                "ROUTINE"
            }
        ),
    };
    // A replaced aggregate is a new one: the session's, with the defaults.
    let replaced_aggregate = tenant.is_some() && kind == "AGGREGATE";
    let grants = owned_extras(
        &on,
        Extras::of(r.owner.as_deref(), &r.grants, None),
        tenant
            .filter(|_| !replaced_aggregate)
            .map(|b| Extras::of(b.owner.as_deref(), &b.grants, None)),
        roles,
        &object,
    );
    // `{tenant}` stands for the tenant's schema in a `SET search_path`.
    let Some(definition) = tenant_search_path(definition, &roles.schema) else {
        return manual(
            "its definition names the tenant's own schema outside its search_path setting",
        );
    };
    let Some(rest) = definition.strip_prefix(prefix.as_str()) else {
        return manual("its definition is not a CREATE statement of its kind");
    };
    let (create, action) = match (tenant, kind) {
        (None, _) => (prefix, format!("create the missing {}", r.kind)),
        (Some(_), "AGGREGATE") => (
            prefix,
            "drop the changed aggregate and create the template's (a view that uses it stops the sync and changes nothing)".to_owned(),
        ),
        (Some(_), _) => (
            format!("CREATE OR REPLACE {kind} "),
            format!("replace the changed {} with the template's (a changed result type stops the sync and changes nothing)", r.kind),
        ),
    };
    let mut steps = vec![SyncStep::new(
        CREATE_TYPES,
        StepClass::Safe,
        object,
        action,
        [
            vec!["SET LOCAL check_function_bodies = off".to_owned()],
            // An aggregate cannot be replaced in place: dropped first.
            if replaced_aggregate {
                vec![format!("DROP AGGREGATE {signature}")]
            } else {
                Vec::new()
            },
            vec![
                format!("{create}{}", rest.trim_end_matches(';')),
                "SET LOCAL check_function_bodies = DEFAULT".into(),
            ],
        ]
        .concat(),
    )];
    steps.extend(grants);
    steps
}

/// A routine's canonical definition with the `{tenant}` element of its
/// `SET search_path = …` lines written as the tenant's schema, quoted.
/// The canonical encoding puts each setting on a line of its own
/// (`    SET key = value`) between the signature and the body; only those
/// lines are read, element by element. `None` when `{tenant}` appears
/// anywhere else (a body that spells it is left alone, and to a person).
fn tenant_search_path(definition: &str, schema: &str) -> Option<String> {
    if !definition.contains("{tenant}") {
        return Some(definition.to_owned());
    }
    let lines: Vec<&str> = definition.split('\n').collect();
    let first = lines.iter().position(|l| l.starts_with("    SET "))?;
    let mut out: Vec<String> = lines[..first].iter().map(|l| (*l).to_owned()).collect();
    let mut at = first;
    while let Some(line) = lines.get(at).filter(|l| l.starts_with("    SET ")) {
        out.push(match line.strip_prefix("    SET search_path = ") {
            Some(value) => format!(
                "    SET search_path = {}",
                value
                    .split(", ")
                    .map(|e| if e == "{tenant}" {
                        q(schema)
                    } else {
                        e.to_owned()
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => (*line).to_owned(),
        });
        at += 1;
    }
    out.extend(lines[at..].iter().map(|l| (*l).to_owned()));
    let written = out.join("\n");
    (!written.contains("{tenant}")).then_some(written)
}

/// `ALTER TABLE … ENABLE|DISABLE [REPLICA|ALWAYS] TRIGGER`, as `tr` is.
fn trigger_state_sql(table: &str, tr: &crate::schema::Trigger) -> String {
    use crate::schema::TriggerState;
    let how = match tr.state {
        TriggerState::Enabled => "ENABLE",
        TriggerState::Disabled => "DISABLE",
        TriggerState::Replica => "ENABLE REPLICA",
        TriggerState::Always => "ENABLE ALWAYS",
    };
    format!("ALTER TABLE {table} {how} TRIGGER {}", q(&tr.name))
}

/// The trigger from its definition (`CREATE [CONSTRAINT] TRIGGER …` as the
/// catalog printed it, the tenant's own schema left out), in the state the
/// template has it.
fn create_trigger(table: &str, tr: &crate::schema::Trigger, object: &str) -> SyncStep {
    let definition = tr.definition.trim().trim_end_matches(';');
    if !definition.starts_with("CREATE TRIGGER ")
        && !definition.starts_with("CREATE CONSTRAINT TRIGGER ")
    {
        return SyncStep::manual(
            object.to_owned(),
            format!(
                "trigger {}: its definition is not a CREATE TRIGGER statement",
                tr.name
            ),
        );
    }
    let mut sql = vec![definition.to_owned()];
    if tr.state != crate::schema::TriggerState::Enabled {
        sql.push(trigger_state_sql(table, tr));
    }
    SyncStep::new(
        ADD_LINKS,
        StepClass::Safe,
        object.to_owned(),
        format!("create the trigger {}", tr.name),
        sql,
    )
}

fn create_policy(
    table: &str,
    p: &crate::schema::Policy,
    tenant: &TenantRoles,
    object: &str,
) -> SyncStep {
    // A policy's roles go through the role rule like a grantee's
    // (`{tenant}_app`); `{owner}` never stands in one.
    let roles = if p.roles.is_empty() {
        "PUBLIC".to_owned()
    } else {
        p.roles
            .iter()
            .map(|r| tenant.grantee(r, &tenant.usual_owner))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut sql = format!(
        "CREATE POLICY {} ON {table} AS {} FOR {} TO {roles}",
        q(&p.name),
        if p.permissive {
            "PERMISSIVE"
        } else {
            "RESTRICTIVE"
        },
        p.command.to_ascii_uppercase()
    );
    if let Some(u) = &p.using {
        sql.push_str(&format!(" USING ({u})"));
    }
    if let Some(c) = &p.with_check {
        sql.push_str(&format!(" WITH CHECK ({c})"));
    }
    SyncStep::new(
        ADD_LINKS,
        StepClass::Safe,
        object.to_owned(),
        format!("create the policy {}", p.name),
        vec![sql],
    )
}

/// Row-level security enabled and forced as the template's table `a` has
/// it (`b`: the tenant's, `None` for a table created empty).
fn row_security_steps(table: &str, a: &Table, b: Option<&Table>, object: &str) -> Vec<SyncStep> {
    let has = |t: &Table, o: &str| t.options.iter().any(|x| x == o);
    let mut out = Vec::new();
    for (option, on, off) in [
        ("row_security=enabled", "ENABLE", "DISABLE"),
        ("row_security=forced", "FORCE", "NO FORCE"),
    ] {
        let want = has(a, option);
        if Some(want) == b.map(|b| has(b, option)) || (b.is_none() && !want) {
            continue;
        }
        out.push(SyncStep::new(
            ADD_LINKS,
            StepClass::Safe,
            object.to_owned(),
            format!(
                "{} row-level security{}",
                if want {
                    on.to_ascii_lowercase()
                } else {
                    off.to_ascii_lowercase()
                },
                " as the template has it"
            ),
            vec![format!(
                "ALTER TABLE {table} {} ROW LEVEL SECURITY",
                if want { on } else { off }
            )],
        ));
    }
    out
}

fn only_unique(u: &UniqueConstraint) -> Table {
    let mut t = Table::new("");
    t.uniques.push(u.clone());
    t
}

/// The items of the template's `a` and the tenant's `b` that the other
/// lacks, matched by their canonical `line` (which leaves server-generated
/// names out): the tenant's custom or changed ones, then the template's
/// missing or changed ones.
pub(crate) fn unmatched<'x, T>(
    a: &'x [T],
    b: &'x [T],
    line: impl Fn(&T) -> String,
) -> (Vec<&'x T>, Vec<&'x T>) {
    let la: Vec<String> = a.iter().map(&line).collect();
    let lb: Vec<String> = b.iter().map(&line).collect();
    let only = |xs: &'x [T], mine: &[String], theirs: &[String]| -> Vec<&'x T> {
        xs.iter()
            .zip(mine)
            .filter(|(_, l)| !theirs.contains(l))
            .map(|(x, _)| x)
            .collect()
    };
    (only(b, &lb, &la), only(a, &la, &lb))
}

/// A check's canonical line, for matching.
pub(crate) fn check_line(c: &CheckConstraint) -> String {
    ddl::table_body_lines(&only_check(c)).join("")
}

fn only_check(c: &CheckConstraint) -> Table {
    let mut t = Table::new("");
    t.checks.push(c.clone());
    t
}

/// The type's maximum length when it is `character varying(n)` or
/// `character(n)`.
fn max_length(data_type: &str) -> Option<u32> {
    let rest = data_type
        .strip_prefix("character varying(")
        .or_else(|| data_type.strip_prefix("character("))?;
    rest.strip_suffix(')')?.parse().ok()
}

/// `identity`: the sequence options of the template's identity column
/// (`(START WITH …)`), for one the tenant's lacks.
fn column_change(
    table: &str,
    a: &Column,
    b: &Column,
    identity: Option<String>,
    steps: &mut Vec<SyncStep>,
    object: &str,
) {
    let t = q(table);
    let mut add_identity = None;
    let c = q(&a.name);
    let obj = || object.to_owned();
    if a.on_update != b.on_update {
        steps.push(SyncStep::manual(
            obj(),
            format!("column {}: ON UPDATE differs", a.name),
        ));
        return;
    }
    if a.generated != b.generated {
        generation_change(&t, a, b, steps, object);
        return;
    }
    if a.identity != b.identity {
        match (a.identity, b.identity) {
            // Values stay; only who may write them changes.
            (
                Some(mode @ (Identity::Always | Identity::ByDefault)),
                Some(Identity::Always | Identity::ByDefault),
            ) => {
                steps.push(SyncStep::new(
                    ALTER_COLUMNS,
                    StepClass::Safe,
                    obj(),
                    format!(
                        "column {}: identity generated {} again",
                        a.name,
                        if mode == Identity::Always {
                            "always"
                        } else {
                            "by default"
                        }
                    ),
                    vec![format!(
                        "ALTER TABLE {t} ALTER COLUMN {c} SET GENERATED {}",
                        if mode == Identity::Always {
                            "ALWAYS"
                        } else {
                            "BY DEFAULT"
                        }
                    )],
                ));
            }
            (None, Some(Identity::Always | Identity::ByDefault)) => steps.push(SyncStep::new(
                ALTER_COLUMNS,
                StepClass::Safe,
                obj(),
                format!(
                    "column {}: drop the custom identity (its values stay)",
                    a.name
                ),
                vec![format!("ALTER TABLE {t} ALTER COLUMN {c} DROP IDENTITY")],
            )),
            (Some(mode @ (Identity::Always | Identity::ByDefault)), None) if identity.is_some() => {
                // Added after the default and NULLs are gone (below).
                add_identity = Some(mode);
            }
            _ => {
                steps.push(SyncStep::manual(
                    obj(),
                    format!(
                        "column {}: its identity differs in a way the planner does not bring back",
                        a.name
                    ),
                ));
                return;
            }
        }
    }
    if a.data_type != b.data_type || a.collation != b.collation {
        let mut sql = format!("ALTER TABLE {t} ALTER COLUMN {c} TYPE {}", a.data_type);
        if let Some(col) = &a.collation {
            sql.push_str(&format!(" COLLATE {}", q(col)));
        }
        sql.push_str(&format!(" USING {c}::{}", a.data_type));
        let step = SyncStep::new(
            ALTER_COLUMNS,
            StepClass::Checked,
            obj(),
            format!(
                "change column {} back from {} to {}",
                a.name, b.data_type, a.data_type
            ),
            vec![sql],
        );
        steps.push(match max_length(&a.data_type) {
            Some(n) => step.probe(
                format!("SELECT count(*) FROM {t} WHERE length({c}::text) > {n}"),
                format!("values longer than {n} characters"),
            ),
            None => SyncStep {
                action: format!(
                    "{}; a value that does not convert stops the sync and changes nothing",
                    step.action
                ),
                ..step
            },
        });
    }
    if a.default != b.default {
        steps.push(SyncStep::new(
            ALTER_COLUMNS,
            StepClass::Safe,
            obj(),
            format!("revert the default of {}", a.name),
            vec![match &a.default {
                Some(d) => format!("ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {d}"),
                None => format!("ALTER TABLE {t} ALTER COLUMN {c} DROP DEFAULT"),
            }],
        ));
    }
    if a.nullable != b.nullable {
        if a.nullable {
            steps.push(SyncStep::new(
                ALTER_COLUMNS,
                StepClass::Safe,
                obj(),
                format!("allow NULL in {} again", a.name),
                vec![format!("ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL")],
            ));
        } else {
            steps.push(
                SyncStep::new(
                    ALTER_COLUMNS,
                    StepClass::Checked,
                    obj(),
                    format!("make {} NOT NULL again", a.name),
                    vec![format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL")],
                )
                .probe(
                    format!("SELECT count(*) FROM {t} WHERE {c} IS NULL"),
                    format!("rows where {} is NULL", a.name),
                ),
            );
        }
    }
    if let (Some(mode), Some(options)) = (add_identity, identity) {
        steps.push(add_identity_step(table, a, mode, &options, object));
    }
}

/// The template's identity on a column the tenant fills itself: added
/// with the template's sequence options (after its default is dropped and
/// NOT NULL is set), then its sequence moved past the values already
/// there, so the next row does not collide with one of them. Checked
/// first for values the identity's range cannot hold.
fn add_identity_step(
    table: &str,
    a: &Column,
    mode: Identity,
    options: &str,
    object: &str,
) -> SyncStep {
    let (t, c) = (q(table), q(&a.name));
    // `(START WITH 1 INCREMENT BY 1 MINVALUE 1 MAXVALUE … CACHE 1)`.
    let words: Vec<&str> = options
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split_whitespace()
        .collect();
    let setting = |name: &str| {
        let at = words.iter().position(|w| *w == name)? + 1;
        let at = if matches!(words.get(at), Some(&"BY" | &"WITH")) {
            at + 1
        } else {
            at
        };
        words.get(at)?.parse::<i64>().ok()
    };
    let (min, max, increment) = (
        setting("MINVALUE").unwrap_or(i64::MIN),
        setting("MAXVALUE").unwrap_or(i64::MAX),
        setting("INCREMENT").unwrap_or(1),
    );
    let sequence = format!(
        "pg_catalog.pg_get_serial_sequence({}, {})",
        postgres_literal(&t),
        postgres_literal(&a.name)
    );
    // Past the highest value for an ascending sequence, the lowest for a
    // descending one; nothing to move when the table is empty.
    let edge = if increment < 0 { "min" } else { "max" };
    SyncStep::new(
        ALTER_COLUMNS,
        StepClass::Checked,
        object.to_owned(),
        format!(
            "column {}: identity generated {} again, its sequence continuing after the values already there",
            a.name,
            if mode == Identity::Always { "always" } else { "by default" }
        ),
        vec![
            format!(
                "ALTER TABLE {t} ALTER COLUMN {c} ADD GENERATED {} AS IDENTITY{options}",
                if mode == Identity::Always { "ALWAYS" } else { "BY DEFAULT" }
            ),
            format!(
                "SELECT pg_catalog.setval({sequence}, v) FROM (SELECT {edge}({c}) AS v FROM {t}) e WHERE v IS NOT NULL"
            ),
        ],
    )
    .probe(
        format!("SELECT count(*) FROM {t} WHERE {c} > {max} OR {c} < {min}"),
        format!("values of {} outside the identity's range", a.name),
    )
}

/// A generated column that differs. Dropping the generation keeps the
/// values; a column the template computes (and the tenant does not, or
/// differently) is dropped and added again, computed by the template's
/// expression — checked first for rows whose value that would change.
fn generation_change(t: &str, a: &Column, b: &Column, steps: &mut Vec<SyncStep>, object: &str) {
    let c = q(&a.name);
    match (&a.generated, &b.generated) {
        (None, Some(_)) if a.data_type == b.data_type => steps.push(SyncStep::new(
            ALTER_COLUMNS,
            StepClass::Safe,
            object.to_owned(),
            format!("column {}: no longer generated (its values stay)", a.name),
            vec![format!("ALTER TABLE {t} ALTER COLUMN {c} DROP EXPRESSION")],
        )),
        (Some(g), _) if g.stored => match column_sql(a) {
            Some(def) => {
                // Computed differently, the values are derived: nothing of
                // the tenant's own is lost.
                let mut step = SyncStep::new(
                    ALTER_COLUMNS,
                    if b.generated.is_some() {
                        StepClass::Safe
                    } else {
                        StepClass::Checked
                    },
                    object.to_owned(),
                    format!(
                        "column {}: computed again by the template's expression ({})",
                        a.name, g.expression
                    ),
                    vec![
                        format!("ALTER TABLE {t} DROP COLUMN {c}"),
                        format!("ALTER TABLE {t} ADD COLUMN {def}"),
                    ],
                );
                if b.generated.is_none() {
                    // Values the tenant wrote itself are replaced: counted.
                    step = step.probe(
                        format!(
                            "SELECT count(*) FROM {t} WHERE {c} IS DISTINCT FROM ({})",
                            g.expression
                        ),
                        format!(
                            "rows whose {} differs from what the template computes",
                            a.name
                        ),
                    );
                }
                steps.push(step);
            }
            None => steps.push(SyncStep::manual(
                object.to_owned(),
                format!("column {}: a generation the planner does not write", a.name),
            )),
        },
        _ => steps.push(SyncStep::manual(
            object.to_owned(),
            format!(
                "column {}: its generation differs in a way the planner does not bring back",
                a.name
            ),
        )),
    }
}

/// A view from the template's query, with its options (`WITH (…)`) and
/// comment, then given its owner and privileges (a view's are granted `ON
/// TABLE`). A materialized view is filled as it is created (its rows are
/// the query's, nothing of the tenant's own) and gets its indexes. Column
/// comments and index options of a view are left to a reset.
fn create_view(v: &View, roles: &TenantRoles, object: String) -> Vec<SyncStep> {
    let name = q(&v.name);
    let kind = if v.materialized {
        "MATERIALIZED VIEW"
    } else {
        "VIEW"
    };
    let mut with = Vec::new();
    let mut comment = None;
    for o in &v.options {
        if let Some(literal) = o.strip_prefix("comment=") {
            comment = Some(literal);
            continue;
        }
        match table_option(o, &[], &[]) {
            TableOption::Storage { key, value } => {
                with.push(format!("{key} = {}", parameter_value(value)))
            }
            _ => {
                return vec![SyncStep::manual(
                    object,
                    format!(
                        "a view with a column comment or an index option ({o}): reset the tenant"
                    ),
                )]
            }
        }
    }
    let with = if with.is_empty() {
        String::new()
    } else {
        format!(" WITH ({})", with.join(", "))
    };
    let mut sql = vec![format!(
        "CREATE {kind} {name}{with} AS {}{}",
        v.definition.trim_end_matches(';'),
        if v.materialized { " WITH DATA" } else { "" }
    )];
    sql.extend(v.indexes.iter().map(|i| index_sql(&v.name, i)));
    if let Some(c) = comment {
        sql.push(format!("COMMENT ON {kind} {name} IS {c}"));
    }
    let mut steps = vec![SyncStep::new(
        ADD_LINKS,
        StepClass::Safe,
        object.clone(),
        if v.materialized {
            "create the materialized view, filled by its query".into()
        } else {
            "create the view".into()
        },
        sql,
    )];
    steps.extend(owned_extras(
        &Named {
            alter: format!("{kind} {name}"),
            grant: format!("TABLE {name}"),
        },
        Extras::of(v.owner.as_deref(), &v.grants, None),
        None,
        roles,
        &object,
    ));
    steps
}

/// The tenant's enum labels are the template's with some missing, the
/// rest in the template's order.
fn only_missing_labels(a: &EnumType, b: &EnumType) -> bool {
    let mut template = a.labels.iter();
    b.labels.iter().all(|l| template.any(|t| t == l))
}

/// Adds the template's labels the tenant's enum lacks, each in its place
/// (`ADD VALUE … BEFORE/AFTER`), in the template's order. No data changes.
fn add_enum_labels(a: &EnumType, b: &EnumType, object: String) -> SyncStep {
    let e = q(&a.name);
    let mut sql = Vec::new();
    let mut missing = Vec::new();
    for (i, label) in a.labels.iter().enumerate() {
        if b.labels.contains(label) {
            continue;
        }
        let place = match (i, b.labels.first()) {
            (0, Some(first)) => format!(" BEFORE {}", postgres_literal(first)),
            (0, None) => String::new(),
            _ => format!(" AFTER {}", postgres_literal(&a.labels[i - 1])),
        };
        sql.push(format!(
            "ALTER TYPE {e} ADD VALUE {}{place}",
            postgres_literal(label)
        ));
        missing.push(label.as_str());
    }
    SyncStep::new(
        CREATE_TYPES,
        StepClass::Safe,
        object,
        format!(
            "add the missing label{} {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        ),
        sql,
    )
}

/// An enum whose labels the tenant added to or reordered, rebuilt: the
/// tenant's is renamed aside, the template's created, each column that
/// used it converted through its text (its default taken off and put back
/// around the conversion), and the old type dropped. Checked first for
/// values that are not among the template's labels. A column of a custom
/// table or a custom column that uses it, or an array of it, is left to a
/// DBA.
fn rebuild_enum(
    a: &EnumType,
    b: &EnumType,
    template: &SchemaSnapshot,
    tenant: &SchemaSnapshot,
    roles: &TenantRoles,
    object: &str,
) -> Vec<SyncStep> {
    let name = q(&a.name);
    let is_it = |data_type: &str| data_type == a.name || data_type == name;
    let mut columns: Vec<(&Table, &Column)> = Vec::new();
    for t in &tenant.tables {
        for c in &t.columns {
            let array = c.data_type.strip_suffix("[]").is_some_and(is_it);
            let kept = template
                .table(&t.name)
                .is_some_and(|x| x.column(&c.name).is_some());
            if array || (is_it(&c.data_type) && !kept) {
                return vec![SyncStep::manual(
                    object.to_owned(),
                    format!(
                        "the enum has labels the template has not, or in another order, and {}.{} uses it as {}; rebuild it by hand",
                        t.name,
                        c.name,
                        if array { "an array" } else { "a custom column" }
                    ),
                )];
            }
            if is_it(&c.data_type) {
                columns.push((t, c));
            }
        }
    }
    let old = q(&format!("{}_tenantry_old", a.name));
    let labels = a
        .labels
        .iter()
        .map(|l| postgres_literal(l))
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = vec![
        format!("ALTER TYPE {name} RENAME TO {old}"),
        format!("CREATE TYPE {name} AS ENUM ({labels})"),
    ];
    for (t, c) in &columns {
        let (tq, cq) = (q(&t.name), q(&c.name));
        if c.default.is_some() {
            sql.push(format!("ALTER TABLE {tq} ALTER COLUMN {cq} DROP DEFAULT"));
        }
        sql.push(format!(
            "ALTER TABLE {tq} ALTER COLUMN {cq} TYPE {name} USING {cq}::text::{name}"
        ));
        if let Some(d) = &c.default {
            sql.push(format!(
                "ALTER TABLE {tq} ALTER COLUMN {cq} SET DEFAULT {d}"
            ));
        }
    }
    sql.push(format!("DROP TYPE {old}"));
    let probe = if columns.is_empty() {
        "SELECT 0".to_owned()
    } else {
        format!(
            "SELECT {}",
            columns
                .iter()
                .map(|(t, c)| format!(
                    "(SELECT count(*) FROM {} WHERE {}::text NOT IN ({labels}))",
                    q(&t.name),
                    q(&c.name)
                ))
                .collect::<Vec<_>>()
                .join(" + ")
        )
    };
    let mut steps = vec![SyncStep::new(
        CREATE_TYPES,
        StepClass::Checked,
        object.to_owned(),
        format!(
            "rebuild the enum with the template's labels ({}; the tenant has {}) and convert {} column{} that use it",
            a.labels.join(", "),
            b.labels.join(", "),
            columns.len(),
            if columns.len() == 1 { "" } else { "s" }
        ),
        sql,
    )
    .probe(
        probe,
        "values that are not among the template's labels".into(),
    )];
    steps.extend(owned_extras(
        &Named::same(format!("TYPE {name}")),
        Extras::of(a.owner.as_deref(), &a.grants, a.comment.as_deref()),
        None,
        roles,
        object,
    ));
    steps
}

/// Whether the table's primary key differs from the template's (its name,
/// when not the server's, or its columns) and the tenant has one.
fn key_swapped(a: &Table, b: &Table) -> bool {
    let line = |x: &Table| {
        x.primary_key.as_ref().map(|p| {
            (
                (!p.name.server_generated).then(|| p.name.name.clone()),
                p.columns.clone(),
            )
        })
    };
    b.primary_key.is_some() && line(a) != line(b)
}

/// The foreign keys that reference a table whose primary key is swapped:
/// dropped before the key goes (the server refuses to drop a key they
/// need) and, where the template has them alike, added again after the
/// template's key is back — the rows did not change, so none is orphaned.
/// A custom table's goes for good (the table moves to the quarantine
/// without it); a custom or changed one has steps of its own already.
fn refer_again(
    template: &SchemaSnapshot,
    tenant: &SchemaSnapshot,
    swapped: &[String],
) -> Vec<SyncStep> {
    refer_again_with(
        template,
        tenant,
        swapped,
        |table, fk| {
            format!(
                "ALTER TABLE {} DROP CONSTRAINT {}",
                q(table),
                q(&fk.name.name)
            )
        },
        |table, fk| format!("ALTER TABLE {} ADD {}", q(table), foreign_key_sql(fk)),
    )
}

/// [`refer_again`] in an engine's own statements: `drop` and `add` write
/// the statement for a table's foreign key.
pub(crate) fn refer_again_with(
    template: &SchemaSnapshot,
    tenant: &SchemaSnapshot,
    swapped: &[String],
    drop: impl Fn(&str, &ForeignKey) -> String,
    add: impl Fn(&str, &ForeignKey) -> String,
) -> Vec<SyncStep> {
    let mut steps = Vec::new();
    for tb in &tenant.tables {
        let ta = template.table(&tb.name);
        for fk in tb
            .foreign_keys
            .iter()
            .filter(|fk| fk.target_schema.is_none() && swapped.contains(&fk.target_table))
        {
            let line = ddl::foreign_key_line(fk);
            let alike = ta.is_some_and(|ta| {
                ta.foreign_keys
                    .iter()
                    .any(|x| ddl::foreign_key_line(x) == line)
            });
            if ta.is_some() && !alike {
                continue;
            }
            let object = format!("table {}", tb.name);
            steps.push(SyncStep::new(
                DROP_LINKS,
                StepClass::Safe,
                object.clone(),
                format!(
                    "drop the foreign key to {} while its primary key is swapped{}",
                    fk.target_table,
                    if alike {
                        " (it is added again below)"
                    } else {
                        " (a custom table's, which moves to the quarantine without it)"
                    }
                ),
                vec![drop(&tb.name, fk)],
            ));
            if alike {
                steps.push(SyncStep::new(
                    ADD_LINKS,
                    StepClass::Safe,
                    object,
                    format!("add the foreign key to {} again", fk.target_table),
                    vec![add(&tb.name, fk)],
                ));
            }
        }
    }
    steps
}

/// The views both sides have alike, dropped before an enum is rebuilt (a
/// view holds no rows, and one that reads a converted column would stop
/// the conversion) and created again after, with their owner and
/// privileges. A materialized view is left alone (it holds rows): one
/// that reads a converted column stops the sync, which then changes
/// nothing.
fn recreate_views(
    template: &SchemaSnapshot,
    tenant: &SchemaSnapshot,
    roles: &TenantRoles,
) -> Vec<SyncStep> {
    let alike: Vec<&View> = template
        .views
        .iter()
        .filter(|v| !v.materialized && tenant.views.iter().any(|w| w == *v))
        .collect();
    let mut steps = Vec::new();
    if !alike.is_empty() {
        steps.push(SyncStep::new(
            DROP_LINKS,
            StepClass::Safe,
            "views".to_owned(),
            "drop the views while the enum is rebuilt (they are created again below)".into(),
            vec![format!(
                "DROP VIEW {}",
                alike
                    .iter()
                    .map(|v| q(&v.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
        ));
    }
    for v in alike {
        steps.extend(create_view(v, roles, format!("view {}", v.name)));
    }
    steps
}

fn create_enum(e: &EnumType, roles: &TenantRoles, object: String) -> Vec<SyncStep> {
    let name = q(&e.name);
    let mut steps = vec![SyncStep::new(
        CREATE_TYPES,
        StepClass::Safe,
        object.clone(),
        "create the missing enum".into(),
        vec![format!(
            "CREATE TYPE {name} AS ENUM ({})",
            e.labels
                .iter()
                .map(|l| postgres_literal(l))
                .collect::<Vec<_>>()
                .join(", ")
        )],
    )];
    steps.extend(owned_extras(
        &Named::same(format!("TYPE {name}")),
        Extras::of(e.owner.as_deref(), &e.grants, e.comment.as_deref()),
        None,
        roles,
        &object,
    ));
    steps
}

/// How `CREATE`, `DROP`, `ALTER … OWNER` and `GRANT` name a domain,
/// composite or range type.
fn user_type_named(t: &crate::schema::UserType) -> (Named, String) {
    let name = q(&t.name);
    let on = if t.kind == "domain" {
        format!("DOMAIN {name}")
    } else {
        format!("TYPE {name}")
    };
    let create = match t.kind.as_str() {
        "domain" => format!("CREATE DOMAIN {name} AS {}", t.definition),
        "range" => format!("CREATE TYPE {name} AS RANGE ({})", t.definition),
        _ => format!("CREATE TYPE {name} AS ({})", t.definition),
    };
    (Named::same(on), create)
}

/// Whether a column of the tenant's tables is of type `name` (or an
/// array of it).
fn type_in_use(tenant: &SchemaSnapshot, name: &str) -> bool {
    let quoted = q(name);
    tenant.tables.iter().any(|t| {
        t.columns.iter().any(|c| {
            let base = c.data_type.trim_end_matches("[]");
            base == name || base == quoted
        })
    })
}

/// A domain, composite or range type: created from the template's
/// definition, dropped when only the tenant has it (after the columns that
/// used it changed), or replaced when no column uses it. One that columns
/// use is changed by hand: its values would have to be converted.
fn user_type_steps(
    a: Option<&crate::schema::UserType>,
    b: Option<&crate::schema::UserType>,
    tenant: &SchemaSnapshot,
    roles: &TenantRoles,
    object: String,
) -> Vec<SyncStep> {
    fn extras(t: &crate::schema::UserType) -> Extras<'_> {
        Extras::of(t.owner.as_deref(), &t.grants, t.comment.as_deref())
    }
    match (a, b) {
        (None, Some(b)) => {
            let (on, _) = user_type_named(b);
            vec![SyncStep::new(
                DROP_TYPES,
                StepClass::Safe,
                object,
                format!("drop the custom {} (after what used it)", b.kind),
                vec![format!("DROP {}", on.alter)],
            )]
        }
        (Some(a), b) => {
            let (on, create) = user_type_named(a);
            let same = b.is_some_and(|b| b.kind == a.kind && b.definition == a.definition);
            if same {
                return owned_extras(&on, extras(a), b.map(extras), roles, &object);
            }
            let mut sql = Vec::new();
            if let Some(b) = b {
                if type_in_use(tenant, &b.name) {
                    return vec![SyncStep::manual(
                        object,
                        format!(
                            "the {} differs from the template's and columns use it: their values would have to be converted; reset the tenant or accept it as a customisation",
                            b.kind
                        ),
                    )];
                }
                sql.push(format!("DROP {}", user_type_named(b).0.alter));
            }
            sql.push(create);
            let mut steps = vec![SyncStep::new(
                CREATE_TYPES,
                StepClass::Safe,
                object.clone(),
                if b.is_some() {
                    format!("replace the changed {} (no column uses it)", a.kind)
                } else {
                    format!("create the missing {}", a.kind)
                },
                sql,
            )];
            steps.extend(owned_extras(&on, extras(a), None, roles, &object));
            steps
        }
        (None, None) => Vec::new(),
    }
}

/// A missing extension, installed into the tenant's schema. Checked first:
/// an extension lives in one schema per database, and the server must
/// offer it.
fn create_extension(name: &str, roles: &TenantRoles, object: String) -> SyncStep {
    let literal = postgres_literal(name);
    SyncStep::new(
        CREATE_TYPES,
        StepClass::Checked,
        object,
        "install the missing extension into the tenant's schema".into(),
        vec![format!(
            "CREATE EXTENSION {} SCHEMA {}",
            q(name),
            q(&roles.schema)
        )],
    )
    .probe(
        format!(
            "SELECT (SELECT count(*) FROM pg_catalog.pg_extension WHERE extname = {literal})
                  + (SELECT count(*) FROM (SELECT 1) one WHERE NOT EXISTS
                       (SELECT 1 FROM pg_catalog.pg_available_extensions WHERE name = {literal}))"
        ),
        "the extension installed in another schema of the database, or not offered by the server"
            .into(),
    )
}

/// A missing sequence; one a `serial` column owns is created before its
/// table and tied to the column after it (the owning column is found among
/// the template's tables, never by splitting the name at a dot).
/// `AS bigint INCREMENT BY 1 MINVALUE 1 … NO CYCLE`: a sequence's settings
/// as `CREATE SEQUENCE` and `ALTER SEQUENCE` take them.
fn sequence_settings(s: &Sequence) -> String {
    format!(
        "AS {} INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} CACHE {}{}",
        s.data_type,
        s.increment,
        s.min_value,
        s.max_value,
        s.start,
        s.cache,
        if s.cycle { " CYCLE" } else { " NO CYCLE" }
    )
}

/// The template's settings on the tenant's sequence, its current value
/// kept: checked first that the value is inside the template's range.
fn alter_sequence(s: &Sequence, object: String) -> SyncStep {
    let name = q(&s.name);
    SyncStep::new(
        CREATE_TYPES,
        StepClass::Checked,
        object,
        "the template's type, increment, range, start, cache and cycle; the current value stays"
            .into(),
        vec![format!("ALTER SEQUENCE {name} {}", sequence_settings(s))],
    )
    .probe(
        format!(
            "SELECT count(*) FROM {name} WHERE last_value > {} OR last_value < {}",
            s.max_value, s.min_value
        ),
        "sequences whose current value is outside the template's range".into(),
    )
}

/// The real owner of the template's sequence `s`: its table's (a sequence
/// follows the table that owns it), else the schema's usual owner.
fn sequence_owner(s: &Sequence, template: &SchemaSnapshot, roles: &TenantRoles) -> String {
    let table = owning_column(s, template)
        .flatten()
        .and_then(|(t, _)| template.table(&t));
    roles.owner(table.and_then(|t| t.owner.as_deref()))
}

/// The template's column that owns sequence `s` (`OWNED BY`), found among
/// the template's tables, never by splitting the name at a dot: `Some(None)`
/// for a sequence no column owns, `None` when no such column exists.
fn owning_column(s: &Sequence, template: &SchemaSnapshot) -> Option<Option<(String, String)>> {
    let Some(owned_by) = &s.owned_by else {
        return Some(None);
    };
    template
        .tables
        .iter()
        .find_map(|t| {
            owned_by
                .strip_prefix(t.name.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|c| t.columns.iter().find(|col| col.name == c))
                .map(|col| (t.name.clone(), col.name.clone()))
        })
        .map(Some)
}

fn create_sequence(
    s: &Sequence,
    template: &SchemaSnapshot,
    roles: &TenantRoles,
    object: String,
) -> Vec<SyncStep> {
    let Some(owner) = owning_column(s, template) else {
        return vec![SyncStep::manual(
            object,
            "a missing sequence owned by a column the template does not have".into(),
        )];
    };
    let mut steps = vec![SyncStep::new(
        CREATE_TYPES,
        StepClass::Safe,
        object.clone(),
        "create the missing sequence".into(),
        vec![format!(
            "CREATE SEQUENCE {} {}",
            q(&s.name),
            sequence_settings(s)
        )],
    )];
    let tied = owner.is_some();
    if let Some((table, column)) = owner {
        // A sequence and the table that owns it have one owner: the
        // table's (given to it earlier in this phase when it is new).
        let role = sequence_owner(s, template, roles);
        let mut sql = Vec::new();
        if role != roles.current_user {
            sql.push(format!(
                "ALTER SEQUENCE {} OWNER TO {}",
                q(&s.name),
                q(&role)
            ));
        }
        sql.push(format!(
            "ALTER SEQUENCE {} OWNED BY {}.{}",
            q(&s.name),
            q(&table),
            q(&column)
        ));
        steps.push(SyncStep::new(
            ADD_LINKS,
            StepClass::Safe,
            object.clone(),
            format!("tie the sequence to {table}.{column}, which owns it"),
            sql,
        ));
    }
    // A sequence is owned as its table is: one that no table owns is
    // given to the schema's usual owner, like any other object.
    let extras = Extras::of(None, &s.grants, s.comment.as_deref());
    steps.extend(owned_extras(
        &Named::same(format!("SEQUENCE {}", q(&s.name))),
        if tied {
            Extras {
                follows: Some(sequence_owner(s, template, roles)),
                ..extras
            }
        } else {
            extras
        },
        None,
        roles,
        &object,
    ));
    steps
}

/// The schema a sync aims at when the user keeps some differences: the
/// template, with each kept object (`table custom_reports`, `view totals`,
/// as the diff names them) taken as the tenant has it — added, replaced,
/// or left out when the tenant lacks it. Every name must be a difference;
/// the error says which is not.
pub fn target_keeping(
    template: &SchemaSnapshot,
    tenant: &SchemaSnapshot,
    keep: &[String],
) -> Result<SchemaSnapshot, String> {
    let mut target = template.clone();
    if keep.is_empty() {
        return Ok(target);
    }
    let diff = diff_schemas(template, tenant);
    for k in keep {
        if let Some(column) = k.strip_prefix("column ") {
            keep_column(&mut target, template, tenant, column)?;
            continue;
        }
        let Some(o) = diff.objects.iter().find(|o| {
            o.presence != Presence::Identical && format!("{} {}", o.kind.as_str(), o.name) == *k
        }) else {
            return Err(format!(
                "`{k}` is not one of the differences (name them as the plan does, `table custom_reports`)"
            ));
        };
        fn take<T: Clone>(into: &mut Vec<T>, from: &[T], same: impl Fn(&T) -> bool) {
            into.retain(|x| !same(x));
            into.extend(from.iter().filter(|x| same(x)).cloned());
        }
        let name = o.name.as_str();
        match o.kind {
            ObjectKind::Table => take(&mut target.tables, &tenant.tables, |t| t.name == name),
            ObjectKind::View => take(&mut target.views, &tenant.views, |v| v.name == name),
            ObjectKind::Enum => take(&mut target.enums, &tenant.enums, |e| e.name == name),
            ObjectKind::Sequence => {
                take(&mut target.sequences, &tenant.sequences, |q| q.name == name)
            }
            ObjectKind::Routine => {
                take(&mut target.routines, &tenant.routines, |r| r.key() == name)
            }
            ObjectKind::Event => take(&mut target.events, &tenant.events, |e| e.name == name),
            ObjectKind::Type => take(&mut target.types, &tenant.types, |t| t.name == name),
            ObjectKind::Extension => take(&mut target.extensions, &tenant.extensions, |x| {
                x.name == name
            }),
            ObjectKind::Schema => target.grants.clone_from(&tenant.grants),
        }
    }
    target.canonicalize();
    Ok(target)
}

/// The columns of tables both sides have that differ from the template's
/// (custom or changed), as `--keep` names them: `column users.badge`.
pub fn keepable_columns(template: &SchemaSnapshot, tenant: &SchemaSnapshot) -> Vec<String> {
    tenant
        .tables
        .iter()
        .filter_map(|b| template.table(&b.name).map(|a| (a, b)))
        .flat_map(|(a, b)| {
            b.columns
                .iter()
                .filter(move |c| a.column(&c.name) != Some(*c))
                .map(move |c| format!("column {}.{}", b.name, c.name))
        })
        .collect()
}

/// Keeps one column as the tenant has it (`column users.badge`): a custom
/// column stays, a changed one keeps the tenant's definition; the rest of
/// its table is still brought back to the template.
fn keep_column(
    target: &mut SchemaSnapshot,
    template: &SchemaSnapshot,
    tenant: &SchemaSnapshot,
    wanted: &str,
) -> Result<(), String> {
    let not_one = || {
        format!("`column {wanted}` is not a column that differs from the template (name it as `column TABLE.COLUMN`)")
    };
    // Table names may hold dots: the table is the one whose name and a dot
    // start `wanted` and whose rest names one of its columns.
    let (table, column) = tenant
        .tables
        .iter()
        .find_map(|t| {
            let rest = wanted.strip_prefix(t.name.as_str())?.strip_prefix('.')?;
            t.column(rest).map(|c| (t, c))
        })
        .ok_or_else(not_one)?;
    let in_template = template.table(&table.name).ok_or_else(|| {
        format!(
            "`column {wanted}`: the whole table is custom; keep `table {}` instead",
            table.name
        )
    })?;
    if in_template.column(&column.name) == Some(column) {
        return Err(not_one());
    }
    let into = target
        .tables
        .iter_mut()
        .find(|t| t.name == table.name)
        .ok_or_else(not_one)?;
    into.columns.retain(|c| c.name != column.name);
    into.columns.push(column.clone());
    Ok(())
}

/// The whole plan as one script, for a DBA who runs it by hand.
pub fn script(engine: crate::Engine, steps: &[SyncStep], schema: &str) -> String {
    let sqlite = engine == crate::Engine::Sqlite;
    let mysql = engine == crate::Engine::Mysql;
    let mut s = if mysql {
        // DDL commits statement by statement: no transaction to wrap.
        format!(
            "-- tenantry sync plan for database {}\n-- MySQL/MariaDB commit each statement on its own: run them in order, and stop at the first error\nUSE {};\n",
            crate::quote::mysql(schema),
            crate::quote::mysql(schema)
        )
    } else if sqlite {
        // SQLite's table-rebuild procedure: foreign keys off outside the
        // transaction, renames that leave other tables' references alone.
        "-- tenantry sync plan (SQLite)\nPRAGMA foreign_keys = OFF;\nPRAGMA legacy_alter_table = ON;\nBEGIN IMMEDIATE;\n".to_owned()
    } else {
        format!(
            "-- tenantry sync plan for schema {schema}\nBEGIN;\nSELECT set_config('search_path', {}, true);\n",
            postgres_literal(&q(schema))
        )
    };
    for step in steps {
        s.push_str(&format!(
            "\n-- [{}] {}: {}\n",
            step.class.as_str(),
            step.object,
            step.action
        ));
        if let (Some(p), Some(m)) = (&step.probe, &step.probe_meaning) {
            s.push_str(&format!("-- check first ({m}): {p};\n"));
        }
        if step.class == StepClass::Manual {
            s.push_str("-- (not generated: do it by hand or reset)\n");
        }
        for statement in &step.sql {
            s.push_str(statement);
            s.push_str(";\n");
        }
    }
    if mysql {
        s.push_str("\n-- end of plan\n");
    } else if sqlite {
        s.push_str("\n-- must return no row before the commit\nPRAGMA foreign_key_check;\nCOMMIT;\nPRAGMA foreign_keys = ON;\n");
    } else {
        s.push_str("\nCOMMIT;\n");
    }
    s
}

/// `n` and a probe's meaning ("rows where …", "values longer than …"),
/// with the meaning's first word singular when `n` is 1.
pub fn counted(n: i64, meaning: &str) -> String {
    let singular = match meaning.split_once(' ') {
        Some((noun @ ("rows" | "values"), rest)) if n == 1 => {
            format!("{} {rest}", &noun[..noun.len() - 1])
        }
        _ => meaning.to_owned(),
    };
    format!("{n} {singular}")
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_count_of_one_names_one_row() {
        assert_eq!(
            super::counted(1, "rows where a is NULL"),
            "1 row where a is NULL"
        );
        assert_eq!(
            super::counted(2, "rows where a is NULL"),
            "2 rows where a is NULL"
        );
        assert_eq!(
            super::counted(1, "values longer than 3 characters"),
            "1 value longer than 3 characters"
        );
        assert_eq!(
            super::counted(0, "rows kept only in the backup"),
            "0 rows kept only in the backup"
        );
    }
    /// A tenant `acme` whose objects, schema and session are `postgres`'s.
    fn roles() -> TenantRoles {
        TenantRoles::uniform("acme", "postgres")
    }
    use super::*;
    use crate::schema::{
        Column, Deferrable, Engine, EnumType, GeneratedColumn, Identity, ObjectName, PrimaryKey,
        ReferentialAction,
    };

    fn snap(tables: Vec<Table>) -> SchemaSnapshot {
        let mut s = SchemaSnapshot::new(Engine::Postgres);
        s.tables = tables;
        s.canonicalize();
        s
    }

    fn table(name: &str, cols: &[(&str, &str, bool)]) -> Table {
        let mut t = Table::new(name);
        for (i, (c, ty, nullable)) in cols.iter().enumerate() {
            let mut col = Column::new(*c, i as u32 + 1, *ty);
            col.nullable = *nullable;
            t.columns.push(col);
        }
        t
    }

    #[test]
    fn identical_schemas_need_no_step() {
        let a = snap(vec![table("orders", &[("id", "integer", false)])]);
        assert!(plan_postgres(&a, &a.clone(), "q", &roles()).is_empty());
    }

    #[test]
    fn steps_are_classified_and_ordered_and_names_stay_quoted() {
        let template = snap(vec![table(
            "orders",
            &[
                ("id", "integer", false),
                ("note", "character varying(20)", false),
            ],
        )]);
        let tenant = snap(vec![
            table(
                "orders",
                &[
                    ("id", "integer", false),
                    ("note", "text", true),
                    ("x\"; DROP TABLE orders; --", "text", true),
                ],
            ),
            table("extra", &[("id", "integer", true)]),
        ]);
        let steps = plan_postgres(&template, &tenant, "tenantry_q_t", &roles());
        let classes: Vec<(StepClass, &str)> =
            steps.iter().map(|s| (s.class, s.action.as_str())).collect();
        assert_eq!(
            steps[0].sql,
            vec!["CREATE SCHEMA \"tenantry_q_t\"".to_owned()]
        );
        assert!(classes
            .iter()
            .any(|(c, a)| *c == StepClass::Destructive && a.contains("move the custom table")));
        assert!(classes
            .iter()
            .any(|(c, a)| *c == StepClass::Checked && a.contains("NOT NULL")));
        let ty = steps
            .iter()
            .find(|s| s.action.contains("back from text"))
            .unwrap();
        assert!(ty.probe.as_deref().unwrap().contains("> 20"));
        let drop = steps
            .iter()
            .find(|s| s.action.contains("custom column"))
            .unwrap();
        assert_eq!(
            drop.sql[0],
            "CREATE TABLE \"tenantry_q_t\".\"orders\" AS TABLE \"orders\""
        );
        assert_eq!(
            drop.sql[1],
            "ALTER TABLE \"orders\" DROP COLUMN \"x\"\"; DROP TABLE orders; --\""
        );
        // The quarantine exists before anything moves into it, and the
        // copy is taken before the column goes.
        let pos = |needle: &str| {
            steps
                .iter()
                .position(|s| s.action.contains(needle))
                .unwrap()
        };
        assert!(pos("quarantine schema") < pos("move the custom table"));
        assert!(pos("move the custom table") < pos("custom column"));
        assert!(pos("custom column") < pos("back from text"));
        assert!(!steps.iter().any(|s| s.blocks()));
    }

    #[test]
    fn kept_differences_leave_the_plan_and_join_the_target() {
        let template = snap(vec![table("orders", &[("id", "integer", false)])]);
        let tenant = snap(vec![
            table("orders", &[("id", "integer", false)]),
            table("extra", &[("id", "integer", true)]),
        ]);
        let target = target_keeping(&template, &tenant, &["table extra".to_owned()]).unwrap();
        assert_eq!(
            crate::hash_schema(&target).root,
            crate::hash_schema(&tenant).root
        );
        assert!(plan_postgres(&target, &tenant, "q", &roles()).is_empty());
        let err = target_keeping(&template, &tenant, &["table orders".to_owned()]).unwrap_err();
        assert!(err.contains("not one of the differences"), "{err}");
    }

    #[test]
    fn missing_serial_and_identity_tables_are_created_with_their_sequences() {
        let mut t = table("o.rders", &[("i)d", "bigint", false), ("n", "text", true)]);
        t.columns[0].identity = Some(Identity::ByDefault);
        t.options.push(
            "identity(i)d)=AS bigint START 5 INCREMENT 2 MINVALUE 1 MAXVALUE 99 CACHE 1 CYCLE"
                .into(),
        );
        let mut seq = Sequence {
            name: "o.rders_n_seq".into(),
            data_type: "integer".into(),
            start: 1,
            increment: 1,
            min_value: 1,
            max_value: 2147483647,
            cache: 1,
            cycle: false,
            owned_by: Some("o.rders.n".into()),
            grants: vec![],
            comment: None,
        };
        let mut template = snap(vec![t]);
        template.sequences.push(seq.clone());
        let steps = plan_postgres(&template, &snap(vec![]), "q", &roles());
        assert!(
            steps.iter().all(|s| s.class == StepClass::Safe),
            "{steps:#?}"
        );
        let sql: Vec<&str> = steps
            .iter()
            .flat_map(|s| s.sql.iter().map(String::as_str))
            .collect();
        assert!(sql.iter().any(|s| s.contains(
            "\"i)d\" bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 5 INCREMENT BY 2 MINVALUE 1 MAXVALUE 99 CACHE 1 CYCLE) NOT NULL"
        )), "{sql:#?}");
        assert_eq!(
            sql.last(),
            Some(&"ALTER SEQUENCE \"o.rders_n_seq\" OWNED BY \"o.rders\".\"n\"")
        );
        // An owner the template does not have is left to a person.
        seq.owned_by = Some("o.rders.missing".into());
        template.sequences = vec![seq];
        let steps = plan_postgres(&template, &snap(vec![]), "q", &roles());
        assert!(steps.iter().any(|s| s.class == StepClass::Manual));
    }

    #[test]
    fn a_changed_or_missing_primary_key_is_swapped_around_the_foreign_keys_that_lean_on_it() {
        let pk = |name: &str, cols: &[&str]| PrimaryKey {
            name: ObjectName::new(name, name.ends_with("_pkey")),
            columns: cols.iter().map(|c| (*c).to_owned()).collect(),
        };
        let cols = &[("id", "integer", false), ("co de", "text", false)];
        let mut template = snap(vec![table("orders", cols)]);
        template.tables[0].primary_key = Some(pk("orders_pkey", &["id"]));
        let mut tenant = snap(vec![table("orders", cols)]);
        tenant.tables[0].primary_key = Some(pk("by code", &["id", "co de"]));
        let steps = plan_postgres(&template, &tenant, "q", &roles());
        let sql: Vec<&str> = steps
            .iter()
            .flat_map(|s| s.sql.iter().map(String::as_str))
            .collect();
        assert_eq!(
            sql,
            [
                "ALTER TABLE \"orders\" DROP CONSTRAINT \"by code\"",
                "ALTER TABLE \"orders\" ADD PRIMARY KEY (\"id\")"
            ],
            "{steps:#?}"
        );
        assert_eq!(steps[1].class, StepClass::Checked);
        assert!(
            steps[1]
                .probe
                .as_deref()
                .unwrap()
                .contains("\"id\" IS NULL"),
            "{steps:#?}"
        );
        // A tenant that lost its key gets it back; one with a key the
        // template has not, loses it.
        tenant.tables[0].primary_key = None;
        let steps = plan_postgres(&template, &tenant, "q", &roles());
        assert_eq!(steps.len(), 1, "{steps:#?}");
        assert!(
            steps[0].action.starts_with("add the primary key"),
            "{steps:#?}"
        );
        let steps = plan_postgres(&tenant, &template, "q", &roles());
        assert_eq!(steps.len(), 1, "{steps:#?}");
        assert_eq!(steps[0].class, StepClass::Safe);
        // Referenced by another table: left to a person.
        let mut lines = table("lines", &[("order_id", "integer", false)]);
        lines.foreign_keys.push(ForeignKey {
            name: ObjectName::new("lines_order_id_fkey", true),
            columns: vec!["order_id".into()],
            target_schema: None,
            target_table: "orders".into(),
            target_columns: vec!["id".into()],
            on_update: ReferentialAction::NoAction,
            on_delete: ReferentialAction::NoAction,
            match_full: false,
            deferrable: Deferrable::NotDeferrable,
        });
        tenant.tables[0].primary_key = Some(pk("by code", &["id", "co de"]));
        tenant.tables.push(lines.clone());
        template.tables.push(lines);
        // Referenced by another table: its foreign key is dropped around
        // the swap and added again.
        let steps = plan_postgres(&template, &tenant, "q", &roles());
        let sql: Vec<&str> = steps
            .iter()
            .flat_map(|s| s.sql.iter().map(String::as_str))
            .collect();
        assert_eq!(
            sql,
            [
                "ALTER TABLE \"lines\" DROP CONSTRAINT \"lines_order_id_fkey\"",
                "ALTER TABLE \"orders\" DROP CONSTRAINT \"by code\"",
                "ALTER TABLE \"orders\" ADD PRIMARY KEY (\"id\")",
                "ALTER TABLE \"lines\" ADD FOREIGN KEY (\"order_id\") REFERENCES \"orders\" (\"id\") ON UPDATE NO ACTION ON DELETE NO ACTION"
            ],
            "{steps:#?}"
        );
    }

    #[test]
    fn an_enum_missing_labels_gets_them_in_place_and_one_with_extra_labels_is_rebuilt() {
        let e = |labels: &[&str]| EnumType {
            name: "st'ate".into(),
            labels: labels.iter().map(|l| (*l).to_owned()).collect(),
            grants: vec![],
            owner: None,
            comment: None,
        };
        let mut template = snap(vec![]);
        template
            .enums
            .push(e(&["new", "todo", "doing", "done", "gone"]));
        let mut tenant = snap(vec![]);
        tenant.enums.push(e(&["todo", "done"]));
        let steps = plan_postgres(&template, &tenant, "q", &roles());
        assert_eq!(steps.len(), 1, "{steps:#?}");
        assert_eq!(
            steps[0].sql,
            [
                "ALTER TYPE \"st'ate\" ADD VALUE E'new' BEFORE E'todo'",
                "ALTER TYPE \"st'ate\" ADD VALUE E'doing' AFTER E'todo'",
                "ALTER TYPE \"st'ate\" ADD VALUE E'gone' AFTER E'done'"
            ]
        );
        // Reordered or with a label of its own: rebuilt, checked first
        // (no column uses it here, so nothing is converted).
        tenant.enums[0] = e(&["done", "todo"]);
        let steps = plan_postgres(&template, &tenant, "q", &roles());
        assert_eq!(steps[0].class, StepClass::Checked, "{steps:#?}");
        assert_eq!(
            steps[0].sql,
            [
                "ALTER TYPE \"st'ate\" RENAME TO \"st'ate_tenantry_old\"",
                "CREATE TYPE \"st'ate\" AS ENUM (E'new', E'todo', E'doing', E'done', E'gone')",
                "DROP TYPE \"st'ate_tenantry_old\""
            ]
        );
        // An array column of it is left to a DBA.
        tenant.enums[0] = e(&["todo", "custom"]);
        tenant
            .tables
            .push(table("t", &[("s", "\"st'ate\"[]", true)]));
        template.tables = tenant.tables.clone();
        let steps = plan_postgres(&template, &tenant, "q", &roles());
        assert!(
            steps[0].blocks() && steps[0].action.contains("as an array"),
            "{steps:#?}"
        );
    }

    #[test]
    fn identities_and_generations_are_brought_back_where_the_values_allow() {
        let plan = |a: Column, b: Column| {
            let mut template = snap(vec![table("t", &[])]);
            template.tables[0].columns.push(a);
            let mut tenant = snap(vec![table("t", &[])]);
            tenant.tables[0].columns.push(b);
            plan_postgres(&template, &tenant, "q", &roles())
        };
        let plain = Column::new("n", 1, "bigint");
        let mut identity = plain.clone();
        identity.identity = Some(Identity::ByDefault);
        let steps = plan(plain.clone(), identity.clone());
        assert_eq!(
            steps[0].sql,
            ["ALTER TABLE \"t\" ALTER COLUMN \"n\" DROP IDENTITY"]
        );
        assert_eq!(steps[0].class, StepClass::Safe);
        // The template's identity on a plain column: its sequence would
        // start under the existing values; left to a person.
        assert!(plan(identity, plain.clone())[0].blocks());
        let generated = |e: &str| {
            let mut c = plain.clone();
            c.generated = Some(GeneratedColumn {
                expression: e.into(),
                stored: true,
            });
            c
        };
        let steps = plan(generated("a * 2"), generated("a * 3"));
        assert_eq!(steps[0].class, StepClass::Safe);
        assert_eq!(steps[0].sql.len(), 2, "{steps:#?}");
        let steps = plan(plain.clone(), generated("a * 3"));
        assert_eq!(
            steps[0].sql,
            ["ALTER TABLE \"t\" ALTER COLUMN \"n\" DROP EXPRESSION"]
        );
    }

    #[test]
    fn one_column_is_kept_while_the_rest_of_its_table_comes_back() {
        let template = snap(vec![table(
            "us.ers",
            &[("id", "integer", false), ("email", "text", true)],
        )]);
        let mut tenant = snap(vec![table(
            "us.ers",
            &[
                ("id", "integer", false),
                ("email", "text", false),
                ("badge", "text", true),
            ],
        )]);
        tenant.tables[0].columns[2].ordinal = 3;
        let target =
            target_keeping(&template, &tenant, &["column us.ers.badge".to_owned()]).unwrap();
        let steps = plan_postgres(&target, &tenant, "q", &roles());
        // The custom column stays; email still becomes nullable again.
        assert_eq!(steps.len(), 1, "{steps:#?}");
        assert!(
            steps[0].action.contains("allow NULL in email"),
            "{steps:#?}"
        );
        let err = target_keeping(&template, &tenant, &["column us.ers.id".to_owned()]).unwrap_err();
        assert!(err.contains("not a column that differs"), "{err}");
        let err = target_keeping(&template, &tenant, &["column nope.x".to_owned()]).unwrap_err();
        assert!(err.contains("not a column that differs"), "{err}");
    }

    #[test]
    fn role_rule_placeholders_are_written_as_the_tenants_real_roles() {
        use crate::schema::{Grant, Policy};
        let roles = TenantRoles {
            schema: "acme".into(),
            tenant: "acme".into(),
            schema_owner: "fleet".into(),
            usual_owner: "acme_owner".into(),
            current_user: "tenantry".into(),
        };
        let mut orders = table("orders", &[("id", "integer", false)]);
        orders.owner = Some("{tenant}_admin".into());
        let tenant = snap(vec![orders.clone()]);
        orders.grants.push(Grant {
            revoked: true,
            privilege: "DELETE".into(),
            column: None,
            grantee: "{owner}".into(),
            grantable: false,
        });
        orders.policies.push(Policy {
            name: "mine".into(),
            command: "all".into(),
            permissive: true,
            roles: vec!["public".into(), "{tenant}_app".into()],
            using: Some("true".into()),
            with_check: None,
        });
        let mut template = snap(vec![orders, table("audit", &[("id", "integer", false)])]);
        template.grants.push(Grant {
            revoked: false,
            privilege: "USAGE".into(),
            column: None,
            grantee: "{tenant}_ro".into(),
            grantable: false,
        });
        let steps = plan_postgres(&template, &tenant, "q", &roles);
        let sql: Vec<String> = steps.iter().flat_map(|s| s.sql.clone()).collect();
        // The table the sync creates is the session's until it is given
        // to the schema's usual owner; the existing one's owner, `{owner}`,
        // is its `acme_admin`.
        assert!(
            sql.contains(&"ALTER TABLE \"audit\" OWNER TO \"acme_owner\"".to_owned()),
            "{sql:#?}"
        );
        assert!(
            sql.contains(
                &"REVOKE DELETE ON TABLE \"orders\" FROM \"acme_admin\" CASCADE".to_owned()
            ),
            "{sql:#?}"
        );
        assert!(sql.iter().any(|s| s.starts_with("CREATE POLICY \"mine\" ON \"orders\" AS PERMISSIVE FOR ALL TO PUBLIC, \"acme_app\"")), "{sql:#?}");
        assert!(
            sql.contains(&"GRANT USAGE ON SCHEMA \"acme\" TO \"acme_ro\"".to_owned()),
            "{sql:#?}"
        );
        assert!(steps.iter().all(|s| !s.blocks()), "{steps:#?}");
        // An owner given away in the tenant comes back; the usual owner
        // is named for an object the template leaves to it.
        let mut given = tenant.clone();
        given.tables[0].owner = None;
        let steps = plan_postgres(&tenant, &given, "q", &roles);
        assert_eq!(steps.len(), 1, "{steps:#?}");
        assert_eq!(
            steps[0].sql,
            ["ALTER TABLE \"orders\" OWNER TO \"acme_admin\""]
        );
        let steps = plan_postgres(&given, &tenant, "q", &roles);
        assert_eq!(
            steps[0].sql,
            ["ALTER TABLE \"orders\" OWNER TO \"acme_owner\""]
        );
    }

    #[test]
    fn a_changed_type_that_columns_use_is_manual_and_an_unused_one_is_replaced() {
        use crate::schema::UserType;
        let domain = |definition: &str| UserType {
            name: "positive".into(),
            kind: "domain".into(),
            definition: definition.into(),
            grants: vec![],
            owner: None,
            comment: None,
        };
        let mut template = snap(vec![]);
        template.types.push(domain("integer CHECK (VALUE > 0)"));
        let mut tenant = snap(vec![table("items", &[("qty", "positive", true)])]);
        template.tables = tenant.tables.clone();
        tenant.types.push(domain("integer CHECK (VALUE >= 0)"));
        let steps = plan_postgres(&template, &tenant, "q", &roles());
        assert_eq!(steps.len(), 1, "{steps:#?}");
        assert!(steps[0].blocks() && steps[0].action.contains("columns use it"));
        tenant.tables[0].columns[0].data_type = "integer".into();
        template.tables = tenant.tables.clone();
        let steps = plan_postgres(&template, &tenant, "q", &roles());
        assert_eq!(
            steps[0].sql,
            [
                "DROP DOMAIN \"positive\"",
                "CREATE DOMAIN \"positive\" AS integer CHECK (VALUE > 0)"
            ]
        );
    }

    #[test]
    fn only_a_search_path_setting_has_its_tenant_placeholder_written() {
        let pinned = "CREATE FUNCTION f() RETURNS integer LANGUAGE sql\n    SET search_path = {tenant}, pg_temp\n    SET work_mem = 64MB\nAS $body$SELECT 1$body$";
        assert_eq!(
            tenant_search_path(pinned, "Acme \"Co\"").unwrap(),
            "CREATE FUNCTION f() RETURNS integer LANGUAGE sql\n    SET search_path = \"Acme \"\"Co\"\"\", pg_temp\n    SET work_mem = 64MB\nAS $body$SELECT 1$body$"
        );
        // In the body it is the body's own text: left to a person.
        let body = "CREATE FUNCTION f() RETURNS text LANGUAGE sql\n    SET search_path = {tenant}\nAS $body$SELECT '{tenant}'$body$";
        assert_eq!(tenant_search_path(body, "acme"), None);
        let plain = "CREATE FUNCTION f() RETURNS integer LANGUAGE sql\nAS $body$SELECT 1$body$";
        assert_eq!(tenant_search_path(plain, "acme").unwrap(), plain);
    }

    #[test]
    fn what_the_planner_cannot_do_is_manual_and_blocks() {
        let mut template = snap(vec![table("orders", &[("id", "integer", false)])]);
        let tenant = snap(vec![table("orders", &[("id", "integer", false)])]);
        template.tables[0]
            .options
            .push("rule r_log=CREATE RULE r_log AS ON DELETE TO orders DO NOTHING".into());
        let steps = plan_postgres(&template, &tenant, "q", &roles());
        assert_eq!(steps.len(), 1);
        assert!(steps[0].blocks());
        // UNLOGGED, storage parameters and comments are written.
        template.tables[0].options = vec![
            "persistence=unlogged".into(),
            "fillfactor=70".into(),
            "comment(id)=E'the key'".into(),
        ];
        let steps = plan_postgres(&template, &tenant, "q", &roles());
        let sql: Vec<&str> = steps
            .iter()
            .flat_map(|s| &s.sql)
            .map(String::as_str)
            .collect();
        assert_eq!(
            sql,
            [
                "ALTER TABLE \"orders\" SET UNLOGGED",
                "COMMENT ON COLUMN \"orders\".\"id\" IS E'the key'",
                "ALTER TABLE \"orders\" SET (fillfactor = '70')"
            ]
        );
        let mut checked = SyncStep::new(1, StepClass::Checked, "t".into(), "a".into(), vec![]);
        assert!(!checked.blocks());
        checked.count = Some(3);
        assert!(checked.blocks());
    }
}
