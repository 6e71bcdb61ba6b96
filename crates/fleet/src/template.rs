//! Templates: a named, versioned, ordered set of SQL migrations for one
//! engine, and the lint that says what in them will break tenants.
//!
//! On disk a template is a directory with one folder per version (`1.0.0`,
//! `1.1.0`, …), each holding the `.sql` migrations that take the previous
//! version to this one, applied in file-name order.

use std::borrow::Cow;
use std::path::Path;

use serde::Serialize;
use tenantry_model::{Engine, SchemaSnapshot};
use ts_rs::TS;

use crate::FleetError;

/// One migration: a file name and its SQL.
#[derive(Debug, Clone)]
pub struct Migration {
    pub name: Cow<'static, str>,
    pub sql: Cow<'static, str>,
}

impl Migration {
    pub const fn fixed(name: &'static str, sql: &'static str) -> Self {
        Self {
            name: Cow::Borrowed(name),
            sql: Cow::Borrowed(sql),
        }
    }
}

/// One version: the migrations that take the previous version to it.
#[derive(Debug, Clone)]
pub struct TemplateVersion {
    pub version: String,
    pub migrations: Vec<Migration>,
}

/// A template for one engine; versions oldest first.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    pub engine: Engine,
    pub versions: Vec<TemplateVersion>,
}

/// Orders versions numerically (`1.10.0` after `1.9.0`), text as a tie-break.
fn version_key(v: &str) -> (Vec<u64>, String) {
    let numbers = v
        .split(['.', '-', '+'])
        .map_while(|p| p.parse::<u64>().ok())
        .collect();
    (numbers, v.to_owned())
}

impl Template {
    pub fn latest(&self) -> Option<&TemplateVersion> {
        self.versions.last()
    }

    pub fn has_version(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v.version == version)
    }

    /// Every migration from the first version through `version`, in order.
    pub fn migrations_through(&self, version: &str) -> Result<Vec<&Migration>, FleetError> {
        let end = self
            .versions
            .iter()
            .position(|v| v.version == version)
            .ok_or_else(|| FleetError::UnknownVersion {
                template: self.name.clone(),
                version: version.to_owned(),
                known: self
                    .versions
                    .iter()
                    .map(|v| v.version.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
        Ok(self.versions[..=end]
            .iter()
            .flat_map(|v| &v.migrations)
            .collect())
    }

    /// Loads `dir/<version>/*.sql`.
    pub fn load_dir(dir: &Path, name: &str, engine: Engine) -> Result<Self, FleetError> {
        let io = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| FleetError::Io {
                action,
                path,
                source,
            }
        };
        let mut versions = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io("read template directory", dir))? {
            let entry = entry.map_err(io("read template directory", dir))?;
            if !entry.path().is_dir() {
                continue;
            }
            let version = entry.file_name().to_string_lossy().into_owned();
            let mut files: Vec<_> = std::fs::read_dir(entry.path())
                .map_err(io("read version directory", &entry.path()))?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("sql")))
                .collect();
            files.sort();
            let mut migrations = Vec::new();
            for f in files {
                let sql = std::fs::read_to_string(&f).map_err(io("read migration", &f))?;
                migrations.push(Migration {
                    name: Cow::Owned(format!(
                        "{version}/{}",
                        f.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default()
                    )),
                    sql: Cow::Owned(sql),
                });
            }
            versions.push(TemplateVersion {
                version,
                migrations,
            });
        }
        if versions.is_empty() {
            return Err(FleetError::InvalidTemplate {
                reason: format!(
                    "{} has no version folders (1.0.0/, 1.1.0/, … holding .sql files)",
                    dir.display()
                ),
            });
        }
        versions.sort_by_key(|v| version_key(&v.version));
        Ok(Self {
            name: name.to_owned(),
            engine,
            versions,
        })
    }
}

/// What a lint finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum LintKind {
    /// A statement that reaches outside the tenant's schema: it names
    /// another schema, changes the session's schema or role, or acts on
    /// schemas, databases, roles or data as a whole.
    OutsideTenant,
    /// A measured foreign key to a table outside the template.
    OutsideReference,
    /// A statement that cannot run inside a transaction.
    NotTransactional,
    /// MySQL/MariaDB: DDL commits implicitly, so a migration that fails
    /// part-way leaves its earlier statements applied. Informational,
    /// said once per template: every MySQL template has it.
    ImplicitCommit,
}

impl LintKind {
    /// Findings that block first, then warnings, then information.
    fn rank(self) -> u8 {
        match self {
            LintKind::OutsideTenant | LintKind::OutsideReference => 0,
            LintKind::NotTransactional => 1,
            LintKind::ImplicitCommit => 2,
        }
    }
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct LintFinding {
    pub kind: LintKind,
    /// `1.1.0/0002_billing.sql`, or the table for model findings.
    pub location: String,
    pub message: String,
    /// The guard, reset, repair and upgrade refuse a template version with
    /// such a finding unless it was allowed when the template was added.
    pub reaches_outside: bool,
}

impl LintFinding {
    fn new(kind: LintKind, location: String, message: String) -> Self {
        Self {
            kind,
            location,
            message,
            reaches_outside: kind.rank() == 0,
        }
    }
}

/// Catalog or SQL text on one line, control characters escaped.
pub(crate) fn one_line(s: &str) -> String {
    tenantry_registry::escape_controls(&tenantry_model::normalize::collapse_whitespace(s))
}

/// Statement starts that cannot run inside a transaction block.
fn non_transactional(engine: Engine, st: &crate::lint::Statement) -> Option<&'static str> {
    let pg: [(&[&str], &str); 6] = [
        (
            &["CREATE", "INDEX", "CONCURRENTLY"],
            "CREATE INDEX CONCURRENTLY cannot run inside a transaction",
        ),
        (
            &["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY"],
            "CREATE INDEX CONCURRENTLY cannot run inside a transaction",
        ),
        (
            &["DROP", "INDEX", "CONCURRENTLY"],
            "DROP INDEX CONCURRENTLY cannot run inside a transaction",
        ),
        (&["VACUUM"], "VACUUM cannot run inside a transaction"),
        (
            &["CREATE", "DATABASE"],
            "CREATE DATABASE cannot run inside a transaction",
        ),
        (
            &["ALTER", "SYSTEM"],
            "ALTER SYSTEM cannot run inside a transaction",
        ),
    ];
    match engine {
        Engine::Postgres => {
            if st.starts_with(&["REINDEX"]) {
                let concurrently = st
                    .tokens
                    .iter()
                    .any(|t| t.to_string().eq_ignore_ascii_case("CONCURRENTLY"));
                return concurrently
                    .then_some("REINDEX … CONCURRENTLY cannot run inside a transaction");
            }
            pg.iter().find(|(p, _)| st.starts_with(p)).map(|(_, m)| *m)
        }
        // Implicit commits are counted by `lint_version`, not listed.
        Engine::Mysql => None,
        Engine::Sqlite => st
            .starts_with(&["VACUUM"])
            .then_some("VACUUM cannot run inside a transaction"),
    }
}

/// A location for each migration of `version`, as findings name it.
fn migration_location(version: &TemplateVersion, name: &str) -> String {
    if name.contains('/') {
        name.to_owned()
    } else {
        format!("{}/{name}", version.version)
    }
}

/// MySQL/MariaDB: one finding for the whole template, counting the DDL
/// statements (which commit implicitly) and naming the first.
fn implicit_commits(template: &Template) -> Option<LintFinding> {
    if template.engine != Engine::Mysql {
        return None;
    }
    let mut count = 0;
    let mut first = None;
    for v in &template.versions {
        for m in &v.migrations {
            let Ok(statements) = crate::lint::statements(template.engine, &m.sql) else {
                continue;
            };
            for st in statements {
                if ["CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE"]
                    .iter()
                    .any(|p| st.starts_with(&[p]))
                {
                    count += 1;
                    first.get_or_insert_with(|| (migration_location(v, &m.name), st.head()));
                }
            }
        }
    }
    let (location, head) = first?;
    Some(LintFinding::new(
        LintKind::ImplicitCommit,
        location,
        format!(
            "{count} DDL statement(s) in the template, from `{head}`: MySQL/MariaDB commit DDL implicitly, so a migration that fails part-way leaves its earlier statements applied (said once for the whole template)"
        ),
    ))
}

/// The findings of one version's SQL text: statements that reach outside
/// the tenant, and statements that cannot run in a transaction.
pub fn lint_version(engine: Engine, version: &TemplateVersion) -> Vec<LintFinding> {
    let mut findings = Vec::new();
    for m in &version.migrations {
        let location = migration_location(version, &m.name);
        let statements = match crate::lint::statements(engine, &m.sql) {
            Ok(s) => s,
            Err(e) => {
                findings.push(LintFinding::new(
                    LintKind::OutsideTenant,
                    location,
                    format!(
                        "the SQL cannot be read ({}), so it cannot be checked",
                        one_line(&e)
                    ),
                ));
                continue;
            }
        };
        for st in statements {
            if let Some(why) = non_transactional(engine, &st) {
                findings.push(LintFinding::new(
                    LintKind::NotTransactional,
                    location.clone(),
                    format!("`{}`: {why}", st.head()),
                ));
            }
            for why in crate::lint::reaches_outside(engine, &st) {
                findings.push(LintFinding::new(
                    LintKind::OutsideTenant,
                    location.clone(),
                    format!("`{}`: {why}", st.head()),
                ));
            }
        }
    }
    findings
}

/// The refusal of a template version whose SQL reaches outside the tenant.
pub(crate) fn outside_refusal(
    template: &str,
    version: &str,
    found: &[LintFinding],
    what_to_do: &str,
) -> FleetError {
    let shown: Vec<String> = found
        .iter()
        .take(3)
        .map(|f| format!("{}: {}", f.location, f.message))
        .collect();
    let more = found.len().saturating_sub(3);
    FleetError::TemplateReachesOutside {
        template: template.to_owned(),
        version: version.to_owned(),
        findings: format!(
            "{}{}",
            shown.join("; "),
            if more > 0 {
                format!("; and {more} more")
            } else {
                String::new()
            }
        ),
        what_to_do: what_to_do.to_owned(),
    }
}

/// Loads template `name` to apply it through `through`. Refused when a
/// version up to `through` holds SQL that reaches outside the tenant's
/// schema and was not allowed when the template was added (templates added
/// before the lint knew such statements are checked here too).
pub async fn applicable_template(
    registry: &tenantry_registry::Registry,
    name: &str,
    engine: Engine,
    through: &str,
) -> Result<Template, FleetError> {
    let stored = registry.template(name, engine).await?;
    let allowed: Vec<bool> = stored
        .versions
        .iter()
        .map(|v| v.outside_allowed.is_some())
        .collect();
    let template: Template = stored.into();
    let Some(last) = template.versions.iter().position(|v| v.version == through) else {
        return Ok(template);
    };
    for (v, allowed) in template.versions[..=last].iter().zip(allowed) {
        if allowed {
            continue;
        }
        let found: Vec<LintFinding> = lint_version(engine, v)
            .into_iter()
            .filter(|f| f.reaches_outside)
            .collect();
        if !found.is_empty() {
            return Err(outside_refusal(
                name,
                &v.version,
                &found,
                "nothing was run; fix the template and add it again, or add it again with --allow-outside-tenant \"WHY\" if this is intended",
            ));
        }
    }
    Ok(template)
}

/// Lints a template: its SQL text, and the schemas measured for its versions
/// (foreign keys that leave the tenant's schema).
pub fn lint(template: &Template, measured: &[(String, SchemaSnapshot)]) -> Vec<LintFinding> {
    let mut findings: Vec<LintFinding> = template
        .versions
        .iter()
        .flat_map(|v| lint_version(template.engine, v))
        .collect();
    for (version, snap) in measured {
        for t in &snap.tables {
            for fk in &t.foreign_keys {
                if let Some(schema) = &fk.target_schema {
                    findings.push(LintFinding::new(
                        LintKind::OutsideReference,
                        format!("{version}: table {}", t.name),
                        format!(
                            "foreign key ({}) references {schema}.{}, which lives outside the tenant's schema and may not exist for every tenant",
                            fk.columns.join(", "),
                            fk.target_table
                        ),
                    ));
                }
            }
        }
    }
    // The same problem repeats in later measured versions; say it once.
    findings.dedup_by(|a, b| a.kind == b.kind && a.message == b.message);
    findings.extend(implicit_commits(template));
    // What blocks first, then warnings, then information.
    findings.sort_by_key(|f| f.kind.rank());
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lint_finds_non_transactional_statements_and_qualified_names() {
        let t = Template {
            name: "t".into(),
            engine: Engine::Postgres,
            versions: vec![TemplateVersion {
                version: "1.0.0".into(),
                migrations: vec![Migration::fixed(
                    "0001.sql",
                    "CREATE TABLE a (id int); -- CREATE INDEX CONCURRENTLY in a comment\n\
                     CREATE INDEX CONCURRENTLY a_id ON a (id);\n\
                     CREATE TABLE public.b (a_id int REFERENCES shared.accounts (id));\n\
                     INSERT INTO a VALUES (1); SELECT 'x.y; z';",
                )],
            }],
        };
        let f = lint(&t, &[]);
        let kinds: Vec<_> = f.iter().map(|x| x.kind).collect();
        assert_eq!(
            kinds,
            [
                LintKind::OutsideTenant,
                LintKind::OutsideTenant,
                LintKind::NotTransactional
            ],
            "what blocks first: {f:#?}"
        );
        assert!(f[0].reaches_outside && !f[2].reaches_outside);
        assert!(f[0].message.contains("public.b"));
        assert!(f[1].message.contains("shared.accounts"));
    }

    #[test]
    fn a_mysql_template_says_implicit_commits_once_after_what_blocks() {
        let version = |v: &str, sql: &'static str| TemplateVersion {
            version: v.into(),
            migrations: vec![Migration::fixed("0001.sql", sql)],
        };
        let t = Template {
            name: "t".into(),
            engine: Engine::Mysql,
            versions: vec![
                version(
                    "1.0.0",
                    "CREATE TABLE a (id int); CREATE TABLE b (id int); CREATE INDEX b_id ON b (id);",
                ),
                version(
                    "1.1.0",
                    "ALTER TABLE a ADD COLUMN n int; INSERT INTO other.x VALUES (1);",
                ),
            ],
        };
        let f = lint(&t, &[]);
        let kinds: Vec<_> = f.iter().map(|x| x.kind).collect();
        assert_eq!(
            kinds,
            [LintKind::OutsideTenant, LintKind::ImplicitCommit],
            "{f:#?}"
        );
        assert!(
            f[1].message.starts_with("4 DDL statement(s)"),
            "{}",
            f[1].message
        );
        assert_eq!(f[1].location, "1.0.0/0001.sql");
        assert!(!f[1].reaches_outside);
    }

    #[test]
    fn the_shipped_and_test_templates_stay_inside_the_tenant() {
        for (engine, sql) in [
            (
                Engine::Postgres,
                include_str!("../../../tests/fixtures/postgres/template.sql"),
            ),
            (
                Engine::Postgres,
                include_str!("../../../tests/fixtures/postgres/template_reordered.sql"),
            ),
            (
                Engine::Mysql,
                include_str!("../../../tests/fixtures/mysql/template.sql"),
            ),
            (
                Engine::Mysql,
                include_str!("../../../tests/fixtures/mysql/template_reordered.sql"),
            ),
            (
                Engine::Sqlite,
                include_str!("../../../tests/fixtures/sqlite/template.sql"),
            ),
            (
                Engine::Sqlite,
                include_str!("../templates/saas/sqlite/0001_init.sql"),
            ),
            (
                Engine::Sqlite,
                include_str!("../templates/saas/sqlite/0002_billing.sql"),
            ),
        ] {
            let v = TemplateVersion {
                version: "1.0.0".into(),
                migrations: vec![Migration::fixed("m.sql", sql)],
            };
            let outside: Vec<_> = lint_version(engine, &v)
                .into_iter()
                .filter(|f| f.reaches_outside)
                .collect();
            assert!(outside.is_empty(), "{engine}: {outside:#?}");
        }
    }

    #[test]
    fn versions_sort_numerically_and_chain() {
        assert!(version_key("1.10.0") > version_key("1.9.0"));
        let t = Template {
            name: "t".into(),
            engine: Engine::Sqlite,
            versions: vec![
                TemplateVersion {
                    version: "1.0.0".into(),
                    migrations: vec![Migration::fixed("a", "")],
                },
                TemplateVersion {
                    version: "1.1.0".into(),
                    migrations: vec![Migration::fixed("b", "")],
                },
            ],
        };
        let names: Vec<_> = t
            .migrations_through("1.1.0")
            .unwrap()
            .iter()
            .map(|m| m.name.to_string())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            t.migrations_through("2.0.0").unwrap_err().code(),
            "unknown_template_version"
        );
    }
}
