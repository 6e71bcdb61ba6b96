//! The data-preserving sync plan on MySQL/MariaDB.
//!
//! Same phases and classes as the PostgreSQL plan ([`crate::sync`]), in
//! MySQL's own statements: `ALTER TABLE … MODIFY COLUMN` with the
//! template's whole column definition, `RENAME TABLE` into the quarantine
//! database for a custom table, a copy of the whole table into the
//! quarantine before custom columns are dropped.
//!
//! Every table is named with its database (`` `db`.`t` ``), so the script
//! runs from any connection; expressions (defaults, checks, generated
//! columns, view queries) are the catalog's text with the tenant's
//! database stripped, which the caller runs with the tenant's database as
//! the connection's default.
//!
//! DDL commits statement by statement here, so there is no transaction to
//! roll back: the caller journals every step, and each step can be taken
//! again after an interruption (the quarantine is created `IF NOT EXISTS`,
//! a copy made `IF NOT EXISTS` keeps the first, complete one; an `ALTER`
//! is atomic). Planning again from what the tenant then is gives exactly
//! the steps that are left.

use crate::ddl;
use crate::diff::{diff_schemas, Presence};
use crate::hash::ObjectKind;
use crate::quote::mysql as q;
use crate::schema::{
    Column, ForeignKey, Index, IndexKeyTarget, SchemaSnapshot, Sequence, Table, View,
};
use crate::sync::{
    check_body, check_line, primary_key_probe, refer_again_with, referenced_by_foreign_keys,
    unmatched, StepClass, SyncStep, ADD_LINKS, ADD_RULES, ALTER_COLUMNS, CREATE_TABLES,
    CREATE_TYPES, DROP_COLUMNS, DROP_LINKS, DROP_RULES, DROP_TYPES, MOVE_TABLES,
};

/// Plans the sync of the MySQL/MariaDB database `database` (`tenant`) to
/// `template`. `quarantine` is the database that receives what the
/// destructive steps remove; the plan creates it first when a step needs it.
pub fn plan_mysql(
    template: &SchemaSnapshot,
    tenant: &SchemaSnapshot,
    database: &str,
    quarantine: &str,
) -> Vec<SyncStep> {
    let p = Planner {
        db: database,
        quarantine,
    };
    let mut steps = Vec::new();
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
                    steps.push(p.move_table(t, object));
                }
                Presence::Missing => {
                    let t = template.table(&o.name).expect("diff names a template table");
                    p.create_table(t, &mut steps, object);
                }
                _ => {
                    let (a, b) = (
                        template.table(&o.name).expect("template table"),
                        tenant.table(&o.name).expect("tenant table"),
                    );
                    // A referenced key is swapped with the foreign keys that
                    // name it dropped first and added again after.
                    let columns = |x: &Table| x.primary_key.as_ref().map(|k| k.columns.clone());
                    if b.primary_key.is_some()
                        && columns(a) != columns(b)
                        && referenced_by_foreign_keys(tenant, &o.name)
                    {
                        swapped.push(o.name.clone());
                    }
                    p.table_changes(a, b, &mut steps, &object);
                }
            },
            ObjectKind::View => {
                let a = template.views.iter().find(|v| v.name == o.name);
                let b = tenant.views.iter().find(|v| v.name == o.name);
                if b.is_some() {
                    steps.push(SyncStep::new(
                        DROP_LINKS,
                        StepClass::Safe,
                        object.clone(),
                        if a.is_some() {
                            "drop the changed view (it is created again below)"
                        } else {
                            "drop the custom view (a view holds no rows)"
                        }
                        .into(),
                        vec![format!("DROP VIEW IF EXISTS {}", p.table(&o.name))],
                    ));
                }
                if let Some(a) = a {
                    steps.push(p.create_view(a, object));
                }
            }
            ObjectKind::Routine if o.presence == Presence::Added => {
                let r = tenant
                    .routines
                    .iter()
                    .find(|r| r.key() == o.name)
                    .expect("diff names a tenant routine");
                let what = if r.kind == "procedure" {
                    "PROCEDURE"
                } else {
                    "FUNCTION"
                };
                steps.push(SyncStep::new(
                    DROP_TYPES,
                    StepClass::Safe,
                    object,
                    format!("drop the custom {} (its text is in the plan's diff)", r.kind),
                    vec![format!("DROP {what} IF EXISTS {}", p.table(&r.name))],
                ));
            }
            ObjectKind::Routine => {
                let r = template
                    .routines
                    .iter()
                    .find(|r| r.key() == o.name)
                    .expect("diff names a template routine");
                let what = if r.kind == "procedure" {
                    "PROCEDURE"
                } else {
                    "FUNCTION"
                };
                let mut sql = Vec::new();
                if o.presence == Presence::Changed {
                    sql.push(format!("DROP {what} IF EXISTS {}", p.table(&r.name)));
                }
                sql.push(r.definition.trim().trim_end_matches(';').to_owned());
                steps.push(SyncStep::new(
                    CREATE_TYPES,
                    StepClass::Safe,
                    object,
                    format!(
                        "{} the {} from the template's definition",
                        if o.presence == Presence::Changed {
                            "drop the changed one and create"
                        } else {
                            "create"
                        },
                        r.kind
                    ),
                    sql,
                ));
            }
            ObjectKind::Event if o.presence == Presence::Added => steps.push(SyncStep::new(
                DROP_TYPES,
                StepClass::Safe,
                object,
                "drop the custom event".into(),
                vec![format!("DROP EVENT IF EXISTS {}", p.table(&o.name))],
            )),
            ObjectKind::Event => {
                let e = template
                    .events
                    .iter()
                    .find(|e| e.name == o.name)
                    .expect("diff names a template event");
                let mut sql = Vec::new();
                if o.presence == Presence::Changed {
                    sql.push(format!("DROP EVENT IF EXISTS {}", p.table(&e.name)));
                }
                sql.push(e.definition.trim().trim_end_matches(';').to_owned());
                steps.push(SyncStep::new(
                    DROP_TYPES,
                    StepClass::Safe,
                    object,
                    "create the event from the template's definition (a recurring one starts now)".into(),
                    sql,
                ));
            }
            ObjectKind::Sequence => {
                let a = template.sequences.iter().find(|x| x.name == o.name);
                let b = tenant.sequences.iter().find(|x| x.name == o.name);
                steps.extend(p.sequence_steps(a, b, object));
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
    steps.extend(p.refer_again(template, tenant, &swapped));
    if steps.iter().any(|s| s.class == StepClass::Destructive) {
        steps.push(SyncStep::new(
            0,
            StepClass::Safe,
            format!("database {quarantine}"),
            "create the quarantine database that receives what the destructive steps remove".into(),
            vec![format!("CREATE DATABASE IF NOT EXISTS {}", q(quarantine))],
        ));
    }
    steps.sort_by_key(|s| s.phase);
    steps
}

/// A MariaDB sequence's settings as `CREATE SEQUENCE` and `ALTER SEQUENCE`
/// take them.
fn sequence_settings(s: &Sequence) -> String {
    format!(
        "INCREMENT BY {} MINVALUE {} MAXVALUE {} START WITH {} {} {}",
        s.increment,
        s.min_value,
        s.max_value,
        s.start,
        if s.cache > 0 {
            format!("CACHE {}", s.cache)
        } else {
            "NOCACHE".to_owned()
        },
        if s.cycle { "CYCLE" } else { "NOCYCLE" }
    )
}

struct Planner<'a> {
    db: &'a str,
    quarantine: &'a str,
}

/// A column's comment, which MySQL keeps as part of its definition (and
/// introspection as the table option `comment(<column>)=<literal>`).
fn column_comment<'t>(t: &'t Table, column: &str) -> Option<&'t str> {
    let key = format!("comment({column})=");
    t.options.iter().find_map(|o| o.strip_prefix(key.as_str()))
}

/// A default as MariaDB spells it: a literal, `NULL` or
/// `current_timestamp(…)` as is, any other expression in parentheses.
fn default_sql(d: &str) -> String {
    let literal = d.starts_with('\'')
        || d.eq_ignore_ascii_case("null")
        || d.parse::<f64>().is_ok()
        || d.to_ascii_lowercase().starts_with("current_timestamp")
        || ((d.starts_with("b'") || d.starts_with("x'") || d.starts_with("X'"))
            && d.ends_with('\''));
    if literal {
        d.to_owned()
    } else {
        format!("({d})")
    }
}

/// A MariaDB column-level check of `t` (named as its column, and part of
/// the column's definition: `MODIFY COLUMN` without it drops it).
fn column_check<'t>(t: &'t Table, column: &str) -> Option<&'t crate::schema::CheckConstraint> {
    t.checks.iter().find(|c| c.name.name == column)
}

/// The whole definition of column `c` of table `t`, as `MODIFY COLUMN`
/// and `ADD COLUMN` take it, with its column-level check.
fn column_sql(t: &Table, c: &Column) -> String {
    let mut s = column_sql_without_check(t, c);
    if let Some(body) = column_check(t, &c.name).and_then(check_body) {
        s.push_str(&format!(" CHECK ({body})"));
    }
    s
}

fn column_sql_without_check(t: &Table, c: &Column) -> String {
    let mut s = format!("{} {}", q(&c.name), c.data_type);
    if let Some(col) = &c.collation {
        s.push_str(&format!(" COLLATE {}", crate::quote::mysql_literal(col)));
    }
    if let Some(g) = &c.generated {
        s.push_str(&format!(
            " GENERATED ALWAYS AS ({}) {}",
            g.expression,
            if g.stored { "STORED" } else { "VIRTUAL" }
        ));
    } else {
        s.push_str(if c.nullable { " NULL" } else { " NOT NULL" });
        if let Some(d) = &c.default {
            s.push_str(&format!(" DEFAULT {}", default_sql(d)));
        }
        if c.identity.is_some() {
            s.push_str(" AUTO_INCREMENT");
        }
        if let Some(u) = &c.on_update {
            s.push_str(&format!(" ON UPDATE {u}"));
        }
    }
    if let Some(comment) = column_comment(t, &c.name) {
        s.push_str(&format!(" COMMENT {comment}"));
    }
    s
}

/// A generated column that differs, on MySQL/MariaDB. Computed by
/// another expression of the same kind: `MODIFY` with the template's (its
/// values are derived). Stored where the template's is virtual or the
/// other way round: dropped and added again in its place in one statement
/// (refused by hand when an index holds it). A plain column the template
/// computes: `MODIFY`, checked first for rows whose value would change. A
/// stored generated column the template keeps plain: `MODIFY`, its values
/// stay; a virtual one has no values to keep and is left to a DBA.
fn generation_step(
    a: &Table,
    b: &Table,
    ca: &Column,
    cb: &Column,
    t: &str,
    def: &str,
    object: &str,
) -> SyncStep {
    let c = q(&ca.name);
    let modify = vec![format!("ALTER TABLE {t} MODIFY COLUMN {def}")];
    match (&ca.generated, &cb.generated) {
        (Some(g), Some(h)) if g.stored == h.stored => SyncStep::new(
            ALTER_COLUMNS,
            StepClass::Safe,
            object.to_owned(),
            format!(
                "column {}: computed again by the template's expression ({})",
                ca.name, g.expression
            ),
            modify,
        ),
        (Some(g), h) => {
            // A plain column made stored is a MODIFY; otherwise the server
            // cannot switch the kind in place (error 1907).
            let sql = if h.is_none() && g.stored {
                modify
            } else {
                match replace_in_place(a, b, ca, t, def) {
                    Some(sql) => vec![sql],
                    None => {
                        return SyncStep::manual(
                            object.to_owned(),
                            format!(
                                "column {}: its generation differs in kind, and an index holds it",
                                ca.name
                            ),
                        )
                    }
                }
            };
            let step = SyncStep::new(
                ALTER_COLUMNS,
                if h.is_some() {
                    StepClass::Safe
                } else {
                    StepClass::Checked
                },
                object.to_owned(),
                format!(
                    "column {}: {} again, computed by the template's expression ({})",
                    ca.name,
                    if g.stored { "stored" } else { "virtual" },
                    g.expression
                ),
                sql,
            );
            if h.is_some() {
                step
            } else {
                // Values the tenant wrote itself would be replaced: counted.
                step.probe(
                    format!(
                        "SELECT COUNT(*) FROM {t} WHERE NOT ({c} <=> ({}))",
                        g.expression
                    ),
                    format!(
                        "rows whose {} differs from what the template computes",
                        ca.name
                    ),
                )
            }
        }
        (None, Some(h)) if h.stored => SyncStep::new(
            ALTER_COLUMNS,
            StepClass::Safe,
            object.to_owned(),
            format!("column {}: no longer generated (its values stay)", ca.name),
            modify,
        ),
        _ => SyncStep::manual(
            object.to_owned(),
            format!(
                "column {}: virtual in the tenant, a plain column in the template (a virtual column has no values to keep)",
                ca.name
            ),
        ),
    }
}

/// `DROP COLUMN c, ADD COLUMN <def> AFTER <previous>` in one statement:
/// the column again in its place. `None` when an index of the tenant's
/// table holds it (dropping the column would change the index).
fn replace_in_place(a: &Table, b: &Table, ca: &Column, t: &str, def: &str) -> Option<String> {
    let indexed = b.indexes.iter().any(|i| {
        i.keys
            .iter()
            .any(|k| matches!(&k.target, IndexKeyTarget::Column { name } if *name == ca.name))
    }) || b.uniques.iter().any(|u| u.columns.contains(&ca.name))
        || b.primary_key
            .as_ref()
            .is_some_and(|p| p.columns.contains(&ca.name));
    if indexed {
        return None;
    }
    let place = a
        .columns
        .iter()
        .filter(|x| x.ordinal < ca.ordinal)
        .max_by_key(|x| x.ordinal)
        .map(|p| format!("AFTER {}", q(&p.name)))
        .unwrap_or_else(|| "FIRST".into());
    Some(format!(
        "ALTER TABLE {t} DROP COLUMN {}, ADD COLUMN {def} {place}",
        q(&ca.name)
    ))
}

fn names(cols: &[String]) -> String {
    cols.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ")
}

/// The table options `CREATE TABLE` writes after its body; `None` when one
/// is beyond what the planner creates (partitioning, system versioning,
/// an ignored index).
fn table_options(t: &Table) -> Option<String> {
    let mut out = Vec::new();
    for o in &t.options {
        if let Some(sql) = option_sql(o)? {
            out.push(sql);
        }
    }
    Some(out.join(" "))
}

/// One table option as SQL (`ENGINE=InnoDB`); `Some(None)` for a comment
/// kept elsewhere (a column's, an index's), `None` for one the planner
/// does not write.
fn option_sql(o: &str) -> Option<Option<String>> {
    if o.starts_with("comment(") || o.starts_with("index_comment(") {
        return Some(None);
    }
    let (key, value) = o.split_once('=')?;
    Some(Some(match key {
        "engine" => format!("ENGINE={value}"),
        "collation" => format!("COLLATE={value}"),
        "comment" => format!("COMMENT={value}"),
        "row_format"
        | "key_block_size"
        | "checksum"
        | "pack_keys"
        | "delay_key_write"
        | "stats_persistent"
        | "stats_auto_recalc"
        | "stats_sample_pages"
        | "page_compressed"
        | "page_compression_level"
        | "avg_row_length"
        | "max_rows"
        | "min_rows"
            if value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            format!("{}={value}", key.to_ascii_uppercase())
        }
        _ => return None,
    }))
}

/// The table options that take the tenant's table `b` back to the
/// template's `a`: the template's own (as `CREATE TABLE` writes them), and
/// the server's default for a comment or row format only the tenant set.
/// `None` for an option the planner does not write or cannot undo.
fn options_back(a: &Table, b: &Table) -> Option<String> {
    let key = |o: &str| o.split_once('=').map(|(k, _)| k.to_owned());
    let mut clause = Vec::new();
    // The template's options the tenant does not have as they are.
    for o in a.options.iter().filter(|o| !b.options.contains(o)) {
        clause.extend(option_sql(o)?);
    }
    // Options only the tenant set go back to the server's default.
    for o in &b.options {
        if option_sql(o)?.is_none() {
            continue;
        }
        let k = key(o)?;
        if a.options
            .iter()
            .any(|x| key(x).as_deref() == Some(k.as_str()))
        {
            continue;
        }
        clause.push(
            match k.as_str() {
                "comment" => "COMMENT=''",
                "row_format" => "ROW_FORMAT=DEFAULT",
                _ => return None,
            }
            .to_owned(),
        );
    }
    (!clause.is_empty()).then(|| clause.join(" "))
}

/// An index's clause in `CREATE TABLE` (`UNIQUE KEY `n` (`a`, `b`(10)))`;
/// `None` for a kind the planner does not create.
fn index_clause(t: &Table, i: &Index) -> Option<String> {
    let keys = i
        .keys
        .iter()
        .map(|k| {
            let mut s = match &k.target {
                IndexKeyTarget::Column { name } => q(name),
                IndexKeyTarget::Expression { sql } if sql != "?" => format!("({sql})"),
                IndexKeyTarget::Expression { .. } => return None,
            };
            if let Some(prefix) = k.options.strip_prefix("prefix ") {
                prefix.parse::<u32>().ok()?;
                s.push_str(&format!("({prefix})"));
            } else if !k.options.is_empty() {
                return None;
            }
            if k.descending {
                s.push_str(" DESC");
            }
            Some(s)
        })
        .collect::<Option<Vec<_>>>()?;
    let kind = match (i.method.as_str(), i.unique) {
        ("fulltext", _) => "FULLTEXT KEY",
        ("spatial", _) => "SPATIAL KEY",
        ("btree" | "hash", true) => "UNIQUE KEY",
        ("btree" | "hash", false) => "KEY",
        _ => return None,
    };
    let name = if i.name.server_generated {
        String::new()
    } else {
        format!("{} ", q(&i.name.name))
    };
    let using = if i.method == "hash" {
        " USING HASH"
    } else {
        ""
    };
    let comment = t
        .options
        .iter()
        .find_map(|o| o.strip_prefix(format!("index_comment({})=", i.name.name).as_str()))
        .map(|c| format!(" COMMENT {c}"))
        .unwrap_or_default();
    if t.options
        .iter()
        .any(|o| o == &format!("ignored_index={}", i.name.name))
    {
        return None;
    }
    Some(format!(
        "{kind} {name}({}){using}{comment}",
        keys.join(", ")
    ))
}

fn check_clause(c: &crate::schema::CheckConstraint) -> Option<String> {
    let body = check_body(c)?;
    let name = if c.name.server_generated || c.name.name.is_empty() {
        String::new()
    } else {
        format!("CONSTRAINT {} ", q(&c.name.name))
    };
    Some(format!("{name}CHECK ({body})"))
}

/// The type's maximum length when it is `varchar(n)` or `char(n)`.
fn max_length(data_type: &str) -> Option<u32> {
    let t = data_type.to_ascii_lowercase();
    let rest = t
        .strip_prefix("varchar(")
        .or_else(|| t.strip_prefix("char("))?;
    rest.split(')').next()?.parse().ok()
}

impl Planner<'_> {
    /// `` `db`.`name` ``.
    fn table(&self, name: &str) -> String {
        format!("{}.{}", q(self.db), q(name))
    }

    /// A MariaDB sequence: created with the template's settings, moved to
    /// the quarantine database with its current value when only the tenant
    /// has it (a sequence is a one-row table there), or given the
    /// template's settings with its current value kept — checked first that
    /// the value lies inside the template's range.
    fn sequence_steps(
        &self,
        a: Option<&Sequence>,
        b: Option<&Sequence>,
        object: String,
    ) -> Vec<SyncStep> {
        match (a, b) {
            (Some(a), None) => vec![SyncStep::new(
                CREATE_TYPES,
                StepClass::Safe,
                object,
                "create the missing sequence".into(),
                vec![format!(
                    "CREATE SEQUENCE IF NOT EXISTS {} {}",
                    self.table(&a.name),
                    sequence_settings(a)
                )],
            )],
            (None, Some(b)) => vec![SyncStep::new(
                MOVE_TABLES,
                StepClass::Destructive,
                object,
                "move the custom sequence, with its current value, to the quarantine database"
                    .into(),
                vec![format!(
                    "RENAME TABLE {} TO {}.{}",
                    self.table(&b.name),
                    q(self.quarantine),
                    q(&b.name)
                )],
            )],
            (Some(a), Some(_)) => {
                let name = self.table(&a.name);
                vec![SyncStep::new(
                    CREATE_TYPES,
                    StepClass::Checked,
                    object,
                    "the template's increment, range, start, cache and cycle; the current value stays"
                        .into(),
                    vec![format!("ALTER SEQUENCE {name} {}", sequence_settings(a))],
                )
                .probe(
                    format!(
                        "SELECT count(*) FROM {name} WHERE next_not_cached_value > {} OR next_not_cached_value < {}",
                        a.max_value, a.min_value
                    ),
                    "sequences whose current value is outside the template's range".into(),
                )]
            }
            (None, None) => Vec::new(),
        }
    }

    /// The foreign keys that reference a table whose primary key is
    /// swapped: dropped before the swap (InnoDB needs an index for each)
    /// and, where the template has them alike, added again after it. A
    /// custom table's goes for good (the table moves to the quarantine
    /// without it). Interrupted in between, planning again finds them
    /// missing and adds them like any missing foreign key.
    fn refer_again(
        &self,
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
                    "ALTER TABLE {} DROP FOREIGN KEY {}",
                    self.table(table),
                    q(&fk.name.name)
                )
            },
            |table, fk| {
                format!(
                    "ALTER TABLE {} ADD {}",
                    self.table(table),
                    self.foreign_key_sql(fk)
                )
            },
        )
    }

    fn move_table(&self, t: &Table, object: String) -> SyncStep {
        // A table with a trigger cannot move to another database (error
        // 1435): its (custom) triggers are dropped first.
        let mut sql: Vec<String> = t
            .triggers
            .iter()
            .map(|tr| format!("DROP TRIGGER IF EXISTS {}", self.table(&tr.name)))
            .collect();
        sql.push(format!(
            "RENAME TABLE {} TO {}.{}",
            self.table(&t.name),
            q(self.quarantine),
            q(&t.name)
        ));
        SyncStep::new(
            MOVE_TABLES,
            StepClass::Destructive,
            object,
            if t.triggers.is_empty() {
                "move the custom table, with its rows and indexes, to the quarantine database".into()
            } else {
                format!(
                    "drop its custom trigger{} {} and move the custom table, with its rows and indexes, to the quarantine database",
                    if t.triggers.len() == 1 { "" } else { "s" },
                    t.triggers.iter().map(|x| x.name.as_str()).collect::<Vec<_>>().join(", ")
                )
            },
            sql,
        )
        .probe(
            format!("SELECT COUNT(*) FROM {}", self.table(&t.name)),
            "rows moved to the quarantine".into(),
        )
    }

    fn create_table(&self, t: &Table, steps: &mut Vec<SyncStep>, object: String) {
        let refuse = |steps: &mut Vec<SyncStep>| {
            steps.push(SyncStep::manual(
                object.clone(),
                "the missing table has options, grants or an index kind the planner does not create; `tenantry repair` creates it from the template, or reset the tenant".into(),
            ))
        };
        let Some(options) = table_options(t) else {
            return refuse(steps);
        };
        if !t.grants.is_empty() {
            return refuse(steps);
        }
        let mut lines: Vec<String> = t.columns.iter().map(|c| column_sql(t, c)).collect();
        if let Some(pk) = &t.primary_key {
            lines.push(format!("PRIMARY KEY ({})", names(&pk.columns)));
        }
        for i in &t.indexes {
            match index_clause(t, i) {
                Some(l) => lines.push(l),
                None => return refuse(steps),
            }
        }
        for c in t.checks.iter().filter(|c| t.column(&c.name.name).is_none()) {
            match check_clause(c) {
                Some(l) => lines.push(l),
                None => return refuse(steps),
            }
        }
        steps.push(SyncStep::new(
            CREATE_TABLES,
            StepClass::Safe,
            object.clone(),
            "create the missing table (empty)".into(),
            vec![format!(
                "CREATE TABLE IF NOT EXISTS {} (\n    {}\n){}{options}",
                self.table(&t.name),
                lines.join(",\n    "),
                if options.is_empty() { "" } else { " " }
            )],
        ));
        for tr in &t.triggers {
            steps.push(SyncStep::new(
                ADD_LINKS,
                StepClass::Safe,
                object.clone(),
                format!("create the trigger {}", tr.name),
                vec![tr.definition.trim().trim_end_matches(';').to_owned()],
            ));
        }
        for fk in &t.foreign_keys {
            steps.push(SyncStep::new(
                ADD_LINKS,
                StepClass::Safe,
                object.clone(),
                format!(
                    "add the foreign key ({}) to {}",
                    fk.columns.join(", "),
                    fk.target_table
                ),
                vec![format!(
                    "ALTER TABLE {} ADD {}",
                    self.table(&t.name),
                    self.foreign_key_sql(fk)
                )],
            ));
        }
    }

    fn foreign_key_sql(&self, fk: &ForeignKey) -> String {
        let target = format!(
            "{}.{}",
            q(fk.target_schema.as_deref().unwrap_or(self.db)),
            q(&fk.target_table)
        );
        let name = if fk.name.server_generated {
            String::new()
        } else {
            format!("CONSTRAINT {} ", q(&fk.name.name))
        };
        format!(
            "{name}FOREIGN KEY ({}) REFERENCES {target} ({}) ON DELETE {} ON UPDATE {}",
            names(&fk.columns),
            names(&fk.target_columns),
            fk.on_delete.as_sql(),
            fk.on_update.as_sql()
        )
    }

    fn orphans_probe(&self, table: &str, fk: &ForeignKey) -> String {
        let target = format!(
            "{}.{}",
            q(fk.target_schema.as_deref().unwrap_or(self.db)),
            q(&fk.target_table)
        );
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
            "SELECT COUNT(*) FROM {} c WHERE {present} AND NOT EXISTS (SELECT 1 FROM {target} p WHERE {join})",
            self.table(table)
        )
    }

    fn duplicates_probe(&self, table: &str, cols: &[String]) -> String {
        let not_null = cols
            .iter()
            .map(|c| format!("{} IS NOT NULL", q(c)))
            .collect::<Vec<_>>()
            .join(" AND ");
        format!(
            "SELECT CAST(COALESCE(SUM(n), 0) AS SIGNED) FROM (SELECT COUNT(*) AS n FROM {} WHERE {not_null} GROUP BY {} HAVING COUNT(*) > 1) d",
            self.table(table),
            names(cols)
        )
    }

    fn create_view(&self, v: &View, object: String) -> SyncStep {
        let mut security = "DEFINER";
        let mut check = "";
        for o in &v.options {
            match o.as_str() {
                "security=definer" => security = "DEFINER",
                "security=invoker" => security = "INVOKER",
                "check_option=cascaded" => check = " WITH CASCADED CHECK OPTION",
                "check_option=local" => check = " WITH LOCAL CHECK OPTION",
                _ => {
                    return SyncStep::manual(
                        object,
                        format!("a view with option {o}: reset the tenant"),
                    )
                }
            }
        }
        if v.materialized || !v.grants.is_empty() {
            return SyncStep::manual(object, "a view with grants: reset the tenant".into());
        }
        SyncStep::new(
            ADD_LINKS,
            StepClass::Safe,
            object,
            "create the view".into(),
            vec![format!(
                "CREATE SQL SECURITY {security} VIEW {} AS {}{check}",
                self.table(&v.name),
                v.definition.trim_end_matches(';')
            )],
        )
    }

    fn table_changes(&self, a: &Table, b: &Table, steps: &mut Vec<SyncStep>, object: &str) {
        let t = self.table(&b.name);
        let obj = || object.to_owned();
        // Custom columns: the whole table is copied to the quarantine
        // first (kept if an interrupted sync already made it), then the
        // columns go in one ALTER.
        let custom: Vec<&Column> = b
            .columns
            .iter()
            .filter(|c| a.column(&c.name).is_none())
            .collect();
        if !custom.is_empty() {
            let copy = format!("{}.{}", q(self.quarantine), q(&b.name));
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
                    vec![
                        format!("CREATE TABLE IF NOT EXISTS {copy} AS SELECT * FROM {t}"),
                        format!(
                            "ALTER TABLE {t} {}",
                            custom
                                .iter()
                                .map(|c| format!("DROP COLUMN {}", q(&c.name)))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ],
                )
                .probe(
                    format!(
                        "SELECT COUNT(*) FROM {t} WHERE {}",
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
            let def = column_sql(a, ca);
            let Some(cb) = b.column(&ca.name) else {
                if ca.identity.is_some() {
                    steps.push(SyncStep::manual(
                        obj(),
                        format!("missing AUTO_INCREMENT column {}", ca.name),
                    ));
                    continue;
                }
                let needs_rows_empty =
                    !ca.nullable && ca.default.is_none() && ca.generated.is_none();
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
                    step.probe(
                        format!("SELECT COUNT(*) FROM {t}"),
                        format!("rows that would get no value for NOT NULL column {} (it has no default)", ca.name),
                    )
                } else {
                    step
                });
                continue;
            };
            let same_comment = column_comment(a, &ca.name) == column_comment(b, &ca.name);
            let unchanged = Column {
                ordinal: ca.ordinal,
                ..cb.clone()
            };
            if *ca == unchanged && same_comment {
                continue;
            }
            if ca.generated != cb.generated {
                steps.push(generation_step(a, b, ca, cb, &t, &def, object));
                continue;
            }
            let retype = ca.data_type != cb.data_type || ca.collation != cb.collation;
            let not_null = !ca.nullable && cb.nullable;
            let mut what = Vec::new();
            if retype {
                what.push(format!("back from {} to {}", cb.data_type, ca.data_type));
            }
            if not_null {
                what.push("NOT NULL again".to_owned());
            } else if ca.nullable && !cb.nullable {
                what.push("NULL allowed again".to_owned());
            }
            if ca.default != cb.default {
                what.push("revert the default".to_owned());
            }
            if ca.identity != cb.identity || ca.on_update != cb.on_update {
                what.push("AUTO_INCREMENT and ON UPDATE as the template has them".to_owned());
            }
            if !same_comment {
                what.push("revert the comment".to_owned());
            }
            let length = retype.then(|| max_length(&ca.data_type)).flatten();
            let mut risks = Vec::new();
            if not_null {
                risks.push(format!("{} IS NULL", q(&ca.name)));
            }
            if let Some(n) = length {
                risks.push(format!("CHAR_LENGTH({}) > {n}", q(&ca.name)));
            }
            let checked = retype || not_null || ca.identity != cb.identity;
            let mut action = format!("column {}: {}", ca.name, what.join(", "));
            if retype && length.is_none() {
                action.push_str("; a value that does not convert stops the sync at this step (the table stays as it was)");
            }
            let step = SyncStep::new(
                ALTER_COLUMNS,
                if checked {
                    StepClass::Checked
                } else {
                    StepClass::Safe
                },
                obj(),
                action,
                vec![format!("ALTER TABLE {t} MODIFY COLUMN {def}")],
            );
            steps.push(if risks.is_empty() {
                step
            } else {
                let meaning = match (not_null, length) {
                    (true, Some(n)) => format!(
                        "rows where {} is NULL or longer than {n} characters",
                        ca.name
                    ),
                    (true, None) => format!("rows where {} is NULL", ca.name),
                    (false, Some(n)) => format!("values longer than {n} characters"),
                    (false, None) => String::new(),
                };
                step.probe(
                    format!("SELECT COUNT(*) FROM {t} WHERE {}", risks.join(" OR ")),
                    meaning,
                )
            });
        }
        // Primary key: swapped in one statement (MySQL/MariaDB commit each
        // statement; one ALTER drops and adds together, or neither), after
        // the columns, checked for rows the new key refuses.
        if a.primary_key.as_ref().map(|p| &p.columns) != b.primary_key.as_ref().map(|p| &p.columns)
        {
            match (&a.primary_key, &b.primary_key) {
                (Some(pk), had) => {
                    let (probe, meaning) = primary_key_probe(
                        &t,
                        &pk.columns,
                        q,
                        &self.duplicates_probe(&b.name, &pk.columns),
                    );
                    steps.push(
                        SyncStep::new(
                            ADD_RULES,
                            StepClass::Checked,
                            obj(),
                            format!(
                                "{}the primary key ({})",
                                if had.is_some() { "swap back " } else { "add " },
                                pk.columns.join(", ")
                            ),
                            vec![format!(
                                "ALTER TABLE {t} {}ADD PRIMARY KEY ({})",
                                if had.is_some() {
                                    "DROP PRIMARY KEY, "
                                } else {
                                    ""
                                },
                                names(&pk.columns)
                            )],
                        )
                        .probe(probe, meaning),
                    );
                }
                (None, Some(pk)) => steps.push(SyncStep::new(
                    ADD_RULES,
                    StepClass::Safe,
                    obj(),
                    format!("drop the custom primary key ({})", pk.columns.join(", ")),
                    vec![format!("ALTER TABLE {t} DROP PRIMARY KEY")],
                )),
                (None, None) => {}
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
                    "ALTER TABLE {t} DROP FOREIGN KEY {}",
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
                    vec![format!("ALTER TABLE {t} ADD {}", self.foreign_key_sql(fk))],
                )
                .probe(
                    self.orphans_probe(&b.name, fk),
                    "rows whose reference has no target".into(),
                ),
            );
        }
        // Checks.
        let (custom_checks, missing_checks) = unmatched(&a.checks, &b.checks, check_line);
        for c in custom_checks {
            if let Some(col) = b.column(&c.name.name) {
                // Column-level: it goes with a definition of the column
                // without it.
                steps.push(SyncStep::new(
                    DROP_RULES,
                    StepClass::Safe,
                    obj(),
                    format!(
                        "drop the custom or changed check on column {} (the column is redefined as it is, without it)",
                        col.name
                    ),
                    vec![format!(
                        "ALTER TABLE {t} MODIFY COLUMN {}",
                        column_sql_without_check(b, col)
                    )],
                ));
            } else {
                steps.push(SyncStep::new(
                    DROP_RULES,
                    StepClass::Safe,
                    obj(),
                    format!("drop the custom or changed check {}", c.name.name),
                    vec![format!(
                        "ALTER TABLE {t} DROP CONSTRAINT {}",
                        q(&c.name.name)
                    )],
                ));
            }
        }
        for c in missing_checks {
            match (check_clause(c), check_body(c)) {
                (Some(clause), Some(body)) => steps.push(
                    SyncStep::new(
                        ADD_RULES,
                        StepClass::Checked,
                        obj(),
                        format!("add the check {body}"),
                        vec![format!("ALTER TABLE {t} ADD {clause}")],
                    )
                    .probe(
                        format!("SELECT COUNT(*) FROM {t} WHERE NOT ({body})"),
                        "rows that violate the check".into(),
                    ),
                ),
                _ => steps.push(SyncStep::manual(
                    obj(),
                    "a missing check the planner cannot write".into(),
                )),
            }
        }
        // Indexes (unique ones included), matched by their canonical line.
        let (custom_indexes, missing_indexes) =
            unmatched(&a.indexes, &b.indexes, |i| ddl::index_line(&a.name, i));
        for i in custom_indexes {
            steps.push(SyncStep::new(
                DROP_RULES,
                StepClass::Safe,
                obj(),
                format!("drop the custom or changed index {}", i.name.name),
                vec![format!("DROP INDEX {} ON {t}", q(&i.name.name))],
            ));
        }
        for i in missing_indexes {
            let Some(clause) = index_clause(a, i) else {
                steps.push(SyncStep::manual(
                    obj(),
                    format!(
                        "missing index {}: a kind the planner does not create",
                        i.name.name
                    ),
                ));
                continue;
            };
            let plain: Option<Vec<String>> = i
                .keys
                .iter()
                .map(|k| match &k.target {
                    IndexKeyTarget::Column { name } if k.options.is_empty() => Some(name.clone()),
                    _ => None,
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
                vec![format!("ALTER TABLE {t} ADD {clause}")],
            );
            steps.push(match (i.unique, plain) {
                (true, Some(cols)) => step.probe(
                    self.duplicates_probe(&b.name, &cols),
                    "rows sharing a value that must be unique".into(),
                ),
                _ => step,
            });
        }
        // Triggers: custom ones are dropped; missing or changed ones are
        // created from the template's definition (the catalog's text, run
        // with the tenant's database as the default).
        for tr in &b.triggers {
            match a.triggers.iter().find(|x| x.name == tr.name) {
                Some(x) if x == tr => {}
                Some(x) => steps.push(SyncStep::new(
                    ADD_LINKS,
                    StepClass::Safe,
                    obj(),
                    format!(
                        "drop the changed trigger {} and create the template's",
                        tr.name
                    ),
                    vec![
                        format!("DROP TRIGGER IF EXISTS {}", self.table(&tr.name)),
                        x.definition.trim().trim_end_matches(';').to_owned(),
                    ],
                )),
                None => steps.push(SyncStep::new(
                    DROP_LINKS,
                    StepClass::Safe,
                    obj(),
                    format!(
                        "drop the custom trigger {} (its text is in the plan's diff)",
                        tr.name
                    ),
                    vec![format!("DROP TRIGGER IF EXISTS {}", self.table(&tr.name))],
                )),
            }
        }
        for tr in a
            .triggers
            .iter()
            .filter(|x| !b.triggers.iter().any(|y| y.name == x.name))
        {
            steps.push(SyncStep::new(
                ADD_LINKS,
                StepClass::Safe,
                obj(),
                format!("create the trigger {}", tr.name),
                vec![tr.definition.trim().trim_end_matches(';').to_owned()],
            ));
        }
        let table_level = |x: &Table| -> Vec<String> {
            x.options
                .iter()
                .filter(|o| !o.starts_with("comment("))
                .cloned()
                .collect()
        };
        if a.grants != b.grants || a.kind != b.kind {
            steps.push(SyncStep::manual(
                obj(),
                "the table's grants or kind (partitioning) differ".into(),
            ));
        } else if table_level(a) != table_level(b) {
            match options_back(a, b) {
                Some(clause) => steps.push(SyncStep::new(
                    ALTER_COLUMNS,
                    StepClass::Safe,
                    obj(),
                    format!("the template's table options again ({clause}); an ENGINE change rebuilds the table with its rows"),
                    vec![format!("ALTER TABLE {t} {clause}")],
                )),
                None => steps.push(SyncStep::manual(
                    obj(),
                    "the table's options differ in a way the planner does not bring back (partitioning, or an option without a default to return to)".into(),
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Engine, Identity, IndexKey, ObjectName, PrimaryKey};

    fn accounts() -> Table {
        let mut t = Table::new("accounts");
        let mut id = Column::new("id", 1, "int unsigned");
        id.nullable = false;
        id.identity = Some(Identity::AutoIncrement);
        let mut name = Column::new("name", 2, "varchar(200)");
        name.nullable = false;
        let mut plan = Column::new("plan", 3, "enum('free','pro')");
        plan.nullable = false;
        plan.default = Some("'free'".into());
        t.columns = vec![id, name, plan];
        t.primary_key = Some(PrimaryKey {
            name: ObjectName::new("PRIMARY", true),
            columns: vec!["id".into()],
        });
        t.options = vec![
            "engine=InnoDB".into(),
            "comment(name)='who ''we'' bill'".into(),
        ];
        t.indexes.push(Index {
            name: ObjectName::new("idx_name", false),
            unique: false,
            method: "btree".into(),
            keys: vec![IndexKey::column("name")],
            include: Vec::new(),
            predicate: None,
            invalid: false,
        });
        t
    }

    fn snap(tables: Vec<Table>) -> SchemaSnapshot {
        let mut s = SchemaSnapshot::new(Engine::Mysql);
        s.tables = tables;
        s.canonicalize();
        s
    }

    #[test]
    fn a_missing_table_is_created_whole_with_its_comments_and_options() {
        let steps = plan_mysql(&snap(vec![accounts()]), &snap(vec![]), "t`1", "q");
        assert_eq!(steps.len(), 1, "{steps:#?}");
        let sql = &steps[0].sql[0];
        assert!(
            sql.starts_with("CREATE TABLE IF NOT EXISTS `t``1`.`accounts` ("),
            "{sql}"
        );
        assert!(
            sql.contains("`id` int unsigned NOT NULL AUTO_INCREMENT"),
            "{sql}"
        );
        assert!(
            sql.contains("`name` varchar(200) NOT NULL COMMENT 'who ''we'' bill'"),
            "{sql}"
        );
        assert!(
            sql.contains("`plan` enum('free','pro') NOT NULL DEFAULT 'free'"),
            "{sql}"
        );
        assert!(sql.contains("PRIMARY KEY (`id`)"), "{sql}");
        assert!(sql.contains("KEY `idx_name` (`name`)"), "{sql}");
        assert!(sql.ends_with(") ENGINE=InnoDB"), "{sql}");
    }

    #[test]
    fn custom_columns_are_copied_before_they_are_dropped_and_changed_ones_modified_whole() {
        let a = accounts();
        let mut b = accounts();
        b.columns.push(Column::new("badge", 4, "text"));
        b.columns[1].data_type = "text".into();
        b.columns[1].nullable = true;
        let steps = plan_mysql(&snap(vec![a]), &snap(vec![b]), "acme", "tenantry_q_acme_1");
        let drop = steps
            .iter()
            .find(|s| s.class == StepClass::Destructive)
            .unwrap();
        assert_eq!(
            drop.sql,
            vec![
                "CREATE TABLE IF NOT EXISTS `tenantry_q_acme_1`.`accounts` AS SELECT * FROM `acme`.`accounts`".to_owned(),
                "ALTER TABLE `acme`.`accounts` DROP COLUMN `badge`".to_owned(),
            ]
        );
        let modify = steps
            .iter()
            .find(|s| s.action.starts_with("column name"))
            .unwrap();
        assert_eq!(modify.class, StepClass::Checked);
        assert_eq!(
            modify.sql,
            vec!["ALTER TABLE `acme`.`accounts` MODIFY COLUMN `name` varchar(200) NOT NULL COMMENT 'who ''we'' bill'".to_owned()]
        );
        assert_eq!(
            modify.probe.as_deref(),
            Some("SELECT COUNT(*) FROM `acme`.`accounts` WHERE `name` IS NULL OR CHAR_LENGTH(`name`) > 200")
        );
        // The quarantine database comes first.
        assert_eq!(
            steps[0].sql,
            vec!["CREATE DATABASE IF NOT EXISTS `tenantry_q_acme_1`".to_owned()]
        );
    }

    #[test]
    fn expression_defaults_are_parenthesised_and_literals_are_not() {
        assert_eq!(default_sql("'a'"), "'a'");
        assert_eq!(default_sql("0"), "0");
        assert_eq!(default_sql("-1.5"), "-1.5");
        assert_eq!(default_sql("current_timestamp()"), "current_timestamp()");
        assert_eq!(default_sql("uuid()"), "(uuid())");
    }

    #[test]
    fn changed_table_options_go_back_to_the_templates_and_only_those() {
        let mut template = accounts();
        template.options = vec![
            "engine=InnoDB".into(),
            "collation=utf8mb4_general_ci".into(),
            "comment='Customer accounts'".into(),
        ];
        let mut tenant = template.clone();
        tenant.options = vec![
            "engine=MyISAM".into(),
            "collation=utf8mb4_general_ci".into(),
            "row_format=COMPRESSED".into(),
        ];
        let steps = plan_mysql(
            &snap(vec![template.clone()]),
            &snap(vec![tenant.clone()]),
            "acme",
            "q",
        );
        assert_eq!(steps.len(), 1, "{steps:#?}");
        assert_eq!(steps[0].class, StepClass::Safe);
        assert_eq!(
            steps[0].sql,
            ["ALTER TABLE `acme`.`accounts` COMMENT='Customer accounts' ENGINE=InnoDB ROW_FORMAT=DEFAULT"]
        );
        // An option with no default to go back to stays with a person.
        tenant.options = vec!["engine=InnoDB".into(), "max_rows=100".into()];
        template.options = vec!["engine=InnoDB".into()];
        let steps = plan_mysql(&snap(vec![template]), &snap(vec![tenant]), "acme", "q");
        assert!(steps[0].blocks(), "{steps:#?}");
    }

    #[test]
    fn unknown_table_options_make_a_missing_table_manual() {
        let mut t = accounts();
        t.options.push("partitioned".into());
        let steps = plan_mysql(&snap(vec![t]), &snap(vec![]), "acme", "q");
        assert_eq!(steps[0].class, StepClass::Manual);
    }
}
