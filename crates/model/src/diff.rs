//! Table-by-table drift of a tenant against its template: which objects are
//! added (custom), missing, changed or identical; for a changed table, the
//! column, constraint, foreign-key, index and option changes; and the
//! canonical DDL of both sides with a line diff (unified and side by side).
//!
//! Per-object hashes decide identity, so only objects whose hashes differ
//! are compared in depth.

use std::collections::BTreeMap;

use serde::Serialize;
use similar::{ChangeTag, TextDiff};
use ts_rs::TS;

use crate::ddl;
use crate::hash::{hash_schema, ObjectKind, SchemaHash};
use crate::schema::{SchemaSnapshot, Table};

/// Where an object stands in the tenant compared with the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Presence {
    /// In the tenant only: a customisation.
    Added,
    /// In the template only.
    Missing,
    /// In both, different.
    Changed,
    /// In both, the same.
    Identical,
}

/// What part of a table a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Area {
    Column,
    PrimaryKey,
    Unique,
    ForeignKey,
    Check,
    Index,
    Option,
    Trigger,
    Policy,
    Grant,
    Definition,
}

/// One structured change inside a changed object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ItemChange {
    pub area: Area,
    /// The column or constraint name, or the item's canonical text.
    pub item: String,
    /// `added` (tenant only), `missing` (template only) or `changed`.
    pub presence: Presence,
    pub template: Option<String>,
    pub tenant: Option<String>,
}

/// One line of a side-by-side diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct SideBySideLine {
    /// `equal`, `delete` (template only) or `insert` (tenant only).
    #[ts(type = "\"equal\" | \"delete\" | \"insert\"")]
    pub tag: &'static str,
    pub template: Option<String>,
    pub tenant: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ObjectDiff {
    #[ts(
        type = "\"table\" | \"view\" | \"enum\" | \"sequence\" | \"routine\" | \"event\" | \"schema\" | \"type\" | \"extension\""
    )]
    pub kind: ObjectKind,
    pub name: String,
    pub presence: Presence,
    pub changes: Vec<ItemChange>,
    pub template_ddl: Option<String>,
    pub tenant_ddl: Option<String>,
    /// Unified diff of the canonical DDL (empty when identical).
    pub unified: String,
    pub side_by_side: Vec<SideBySideLine>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SchemaDiff {
    pub template_hash: String,
    pub tenant_hash: String,
    /// Every object of either side, differing ones first.
    pub objects: Vec<ObjectDiff>,
}

impl SchemaDiff {
    pub fn is_identical(&self) -> bool {
        self.objects
            .iter()
            .all(|o| o.presence == Presence::Identical)
    }

    pub fn count(&self, p: Presence) -> usize {
        self.objects.iter().filter(|o| o.presence == p).count()
    }
}

fn ddl_of(snap: &SchemaSnapshot, kind: ObjectKind, name: &str) -> Option<String> {
    match kind {
        ObjectKind::Table => snap
            .tables
            .iter()
            .find(|t| t.name == name)
            .map(ddl::render_table),
        ObjectKind::View => snap
            .views
            .iter()
            .find(|v| v.name == name)
            .map(ddl::render_view),
        ObjectKind::Enum => snap
            .enums
            .iter()
            .find(|e| e.name == name)
            .map(ddl::render_enum),
        ObjectKind::Sequence => snap
            .sequences
            .iter()
            .find(|s| s.name == name)
            .map(ddl::render_sequence),
        ObjectKind::Routine => snap
            .routines
            .iter()
            .find(|r| r.key() == name)
            .map(ddl::render_routine),
        ObjectKind::Event => snap
            .events
            .iter()
            .find(|e| e.name == name)
            .map(ddl::render_event),
        ObjectKind::Schema => (!snap.grants.is_empty()).then(|| ddl::render_schema(snap)),
        ObjectKind::Type => snap
            .types
            .iter()
            .find(|t| t.name == name)
            .map(ddl::render_type),
        ObjectKind::Extension => snap
            .extensions
            .iter()
            .find(|x| x.name == name)
            .map(ddl::render_extension),
    }
}

/// Compares a tenant's schema with its template's.
pub fn diff_schemas(template: &SchemaSnapshot, tenant: &SchemaSnapshot) -> SchemaDiff {
    let (th, nh): (SchemaHash, SchemaHash) = (hash_schema(template), hash_schema(tenant));
    let mut keys: BTreeMap<(ObjectKind, String), (Option<String>, Option<String>)> =
        BTreeMap::new();
    for o in &th.objects {
        keys.entry((o.kind, o.name.clone())).or_default().0 = Some(o.hash.to_string());
    }
    for o in &nh.objects {
        keys.entry((o.kind, o.name.clone())).or_default().1 = Some(o.hash.to_string());
    }
    let mut objects: Vec<ObjectDiff> = keys
        .into_iter()
        .map(|((kind, name), (a, b))| {
            let presence = match (&a, &b) {
                (Some(_), None) => Presence::Missing,
                (None, Some(_)) => Presence::Added,
                (Some(x), Some(y)) if x == y => Presence::Identical,
                _ => Presence::Changed,
            };
            let template_ddl = ddl_of(template, kind, &name);
            let tenant_ddl = ddl_of(tenant, kind, &name);
            let changes = match (presence, kind) {
                (Presence::Changed, ObjectKind::Table) => {
                    match (template.table(&name), tenant.table(&name)) {
                        (Some(a), Some(b)) => table_changes(a, b),
                        _ => Vec::new(),
                    }
                }
                (Presence::Changed, _) => vec![ItemChange {
                    area: Area::Definition,
                    item: name.clone(),
                    presence: Presence::Changed,
                    template: template_ddl.clone(),
                    tenant: tenant_ddl.clone(),
                }],
                _ => Vec::new(),
            };
            let (unified, side_by_side) = if presence == Presence::Identical {
                (String::new(), Vec::new())
            } else {
                text_diff(
                    template_ddl.as_deref().unwrap_or(""),
                    tenant_ddl.as_deref().unwrap_or(""),
                    &name,
                )
            };
            ObjectDiff {
                kind,
                name,
                presence,
                changes,
                template_ddl,
                tenant_ddl,
                unified,
                side_by_side,
            }
        })
        .collect();
    objects.sort_by(|a, b| (a.presence, a.kind, &a.name).cmp(&(b.presence, b.kind, &b.name)));
    SchemaDiff {
        template_hash: th.root.to_string(),
        tenant_hash: nh.root.to_string(),
        objects,
    }
}

fn text_diff(a: &str, b: &str, name: &str) -> (String, Vec<SideBySideLine>) {
    let d = TextDiff::from_lines(a, b);
    let unified = d
        .unified_diff()
        .context_radius(3)
        .header(&format!("template/{name}"), &format!("tenant/{name}"))
        .to_string();
    let rows = d
        .iter_all_changes()
        .map(|c| {
            let line = c.value().trim_end_matches('\n').to_owned();
            match c.tag() {
                ChangeTag::Equal => SideBySideLine {
                    tag: "equal",
                    template: Some(line.clone()),
                    tenant: Some(line),
                },
                ChangeTag::Delete => SideBySideLine {
                    tag: "delete",
                    template: Some(line),
                    tenant: None,
                },
                ChangeTag::Insert => SideBySideLine {
                    tag: "insert",
                    template: None,
                    tenant: Some(line),
                },
            }
        })
        .collect();
    (unified, rows)
}

/// Compares two keyed sets of rendered items.
fn keyed(
    area: Area,
    a: BTreeMap<String, String>,
    b: BTreeMap<String, String>,
    out: &mut Vec<ItemChange>,
) {
    for (k, va) in &a {
        match b.get(k) {
            None => out.push(ItemChange {
                area,
                item: k.clone(),
                presence: Presence::Missing,
                template: Some(va.clone()),
                tenant: None,
            }),
            Some(vb) if vb != va => out.push(ItemChange {
                area,
                item: k.clone(),
                presence: Presence::Changed,
                template: Some(va.clone()),
                tenant: Some(vb.clone()),
            }),
            Some(_) => {}
        }
    }
    for (k, vb) in b {
        if !a.contains_key(&k) {
            out.push(ItemChange {
                area,
                item: k,
                presence: Presence::Added,
                template: None,
                tenant: Some(vb),
            });
        }
    }
}

/// Items without a stable name are keyed by their canonical text.
fn by_text(items: impl Iterator<Item = String>) -> BTreeMap<String, String> {
    items.map(|t| (t.clone(), t)).collect()
}

fn table_changes(a: &Table, b: &Table) -> Vec<ItemChange> {
    let mut out = Vec::new();
    keyed(
        Area::Column,
        a.columns
            .iter()
            .map(|c| (c.name.clone(), ddl::column_line(c)))
            .collect(),
        b.columns
            .iter()
            .map(|c| (c.name.clone(), ddl::column_line(c)))
            .collect(),
        &mut out,
    );
    let pk = |t: &Table| {
        t.primary_key
            .iter()
            .map(|p| {
                (
                    "primary key".to_owned(),
                    format!("PRIMARY KEY ({})", p.columns.join(", ")),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    keyed(Area::PrimaryKey, pk(a), pk(b), &mut out);
    let lines = |t: &Table, prefix: &str| {
        by_text(
            ddl::table_body_lines(t)
                .into_iter()
                .filter(|l| l.contains(prefix)),
        )
    };
    keyed(
        Area::Unique,
        lines(a, "UNIQUE"),
        lines(b, "UNIQUE"),
        &mut out,
    );
    keyed(
        Area::ForeignKey,
        lines(a, "FOREIGN KEY"),
        lines(b, "FOREIGN KEY"),
        &mut out,
    );
    let checks = |t: &Table| by_text(t.checks.iter().map(|c| c.expression.clone()));
    keyed(Area::Check, checks(a), checks(b), &mut out);
    let indexes = |t: &Table| by_text(t.indexes.iter().map(|i| ddl::index_line(&t.name, i)));
    keyed(Area::Index, indexes(a), indexes(b), &mut out);
    keyed(
        Area::Option,
        by_text(a.options.iter().cloned()),
        by_text(b.options.iter().cloned()),
        &mut out,
    );
    let triggers = |t: &Table| {
        t.triggers
            .iter()
            .map(|tr| (tr.name.clone(), ddl::trigger_line(&t.name, tr)))
            .collect()
    };
    keyed(Area::Trigger, triggers(a), triggers(b), &mut out);
    let policies = |t: &Table| {
        t.policies
            .iter()
            .map(|p| (p.name.clone(), ddl::policy_line(&t.name, p)))
            .collect()
    };
    keyed(Area::Policy, policies(a), policies(b), &mut out);
    let object = format!("TABLE {}", a.name);
    keyed(
        Area::Grant,
        by_text(a.grants.iter().map(|g| g.sql(&object))),
        by_text(b.grants.iter().map(|g| g.sql(&object))),
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::*;

    fn snap() -> SchemaSnapshot {
        let mut s = SchemaSnapshot::new(Engine::Postgres);
        let mut t = Table::new("users");
        t.columns.push(Column::new("id", 1, "bigint"));
        t.columns.push(Column::new("email", 2, "text"));
        t.primary_key = Some(PrimaryKey {
            name: ObjectName::new("users_pkey", true),
            columns: vec!["id".into()],
        });
        t.indexes.push(Index {
            name: ObjectName::new("users_email_idx", false),
            unique: true,
            method: "btree".into(),
            keys: vec![IndexKey::column("email")],
            include: vec![],
            predicate: None,
            invalid: false,
        });
        s.tables.push(t);
        s.tables.push(Table::new("accounts"));
        s
    }

    #[test]
    fn the_ddl_lists_columns_in_table_order() {
        let mut s = snap();
        s.tables[0].columns.push(Column::new("badge_no", 3, "text"));
        let ddl = ddl_of(&s, ObjectKind::Table, "users").unwrap();
        let at = |c: &str| ddl.find(&format!("    {c} ")).unwrap();
        assert!(
            at("id") < at("email") && at("email") < at("badge_no"),
            "{ddl}"
        );
    }

    #[test]
    fn identical_schemas_have_no_changes() {
        let d = diff_schemas(&snap(), &snap());
        assert!(d.is_identical());
        assert!(d.objects.iter().all(|o| o.unified.is_empty()));
    }

    #[test]
    fn added_missing_and_changed_tables_with_their_items() {
        let template = snap();
        let mut tenant = snap();
        tenant.tables.retain(|t| t.name != "accounts");
        tenant.tables.push(Table::new("custom_reports"));
        let users = tenant
            .tables
            .iter_mut()
            .find(|t| t.name == "users")
            .unwrap();
        users.columns[1].nullable = false;
        users.columns.push(Column::new("nickname", 3, "text"));
        users.indexes.clear();

        let d = diff_schemas(&template, &tenant);
        let by = |n: &str| d.objects.iter().find(|o| o.name == n).unwrap();
        assert_eq!(by("custom_reports").presence, Presence::Added);
        assert_eq!(by("accounts").presence, Presence::Missing);
        let users = by("users");
        assert_eq!(users.presence, Presence::Changed);
        let items: Vec<_> = users
            .changes
            .iter()
            .map(|c| (c.area, c.item.as_str(), c.presence))
            .collect();
        assert!(
            items.contains(&(Area::Column, "email", Presence::Changed)),
            "{items:?}"
        );
        assert!(
            items.contains(&(Area::Column, "nickname", Presence::Added)),
            "{items:?}"
        );
        assert!(
            items
                .iter()
                .any(|(a, _, p)| *a == Area::Index && *p == Presence::Missing),
            "{items:?}"
        );
        assert!(
            users.unified.contains("-    email text,"),
            "{}",
            users.unified
        );
        assert!(
            users.unified.contains("+    email text NOT NULL,"),
            "{}",
            users.unified
        );
        assert!(users.side_by_side.iter().any(|l| l.tag == "insert"));
        // Differing objects come first.
        assert_ne!(d.objects[0].presence, Presence::Identical);
    }
}
