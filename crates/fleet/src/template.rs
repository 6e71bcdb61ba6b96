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
    /// A foreign key or reference to an object outside the template.
    OutsideReference,
    /// An object created or referenced with a hard-coded schema name.
    HardCodedSchema,
    /// A statement that cannot run inside a transaction.
    NotTransactional,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct LintFinding {
    pub kind: LintKind,
    /// `1.1.0/0002_billing.sql`, or the table for model findings.
    pub location: String,
    pub message: String,
}

/// Statement starts that cannot run inside a transaction block.
fn non_transactional(engine: Engine, statement: &str) -> Option<&'static str> {
    let s = statement.to_ascii_uppercase();
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let pg: [(&str, &str); 6] = [
        (
            "CREATE INDEX CONCURRENTLY",
            "CREATE INDEX CONCURRENTLY cannot run inside a transaction",
        ),
        (
            "CREATE UNIQUE INDEX CONCURRENTLY",
            "CREATE INDEX CONCURRENTLY cannot run inside a transaction",
        ),
        (
            "DROP INDEX CONCURRENTLY",
            "DROP INDEX CONCURRENTLY cannot run inside a transaction",
        ),
        (
            "REINDEX",
            "REINDEX … CONCURRENTLY cannot run inside a transaction",
        ),
        ("VACUUM", "VACUUM cannot run inside a transaction"),
        (
            "CREATE DATABASE",
            "CREATE DATABASE cannot run inside a transaction",
        ),
    ];
    match engine {
        Engine::Postgres => {
            if s.starts_with("REINDEX") && !s.contains("CONCURRENTLY") {
                return None;
            }
            pg.iter().find(|(p, _)| s.starts_with(p)).map(|(_, m)| *m)
        }
        Engine::Mysql => {
            let ddl = ["CREATE ", "ALTER ", "DROP ", "RENAME ", "TRUNCATE "];
            ddl.iter()
                .any(|p| s.starts_with(p))
                .then_some("MySQL/MariaDB commit DDL implicitly: a failure part-way leaves the earlier statements applied")
        }
        Engine::Sqlite => s
            .starts_with("VACUUM")
            .then_some("VACUUM cannot run inside a transaction"),
    }
}

/// Splits SQL into statements at semicolons outside quotes and comments
/// (good enough for lint; the server parses for real).
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '-' && chars.peek() == Some(&'-') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
                cur.push('\n');
            }
            None if matches!(c, '\'' | '"' | '`') => {
                quote = Some(c);
                cur.push(c);
            }
            None if c == ';' => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_owned());
                }
                cur.clear();
            }
            None => cur.push(c),
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out
}

/// Finds `schema.object` qualifications in DDL positions (after CREATE …,
/// ALTER TABLE, REFERENCES, ON, FROM, JOIN, INTO).
fn hard_coded_schemas(statement: &str) -> Vec<String> {
    let words: Vec<&str> = statement.split_whitespace().collect();
    let anchors = [
        "TABLE",
        "VIEW",
        "INDEX",
        "SEQUENCE",
        "TYPE",
        "REFERENCES",
        "ON",
        "FROM",
        "JOIN",
        "INTO",
        "EXISTS",
    ];
    let mut found = Vec::new();
    for pair in words.windows(2) {
        if !anchors.iter().any(|a| pair[0].eq_ignore_ascii_case(a)) {
            continue;
        }
        let target = pair[1].trim_end_matches(['(', ',']);
        let unquoted: String = target.chars().filter(|c| !matches!(c, '"' | '`')).collect();
        if let Some((schema, object)) = unquoted.split_once('.') {
            let ident =
                |s: &str| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_');
            if ident(schema) && ident(object.split('(').next().unwrap_or("")) {
                found.push(target.to_owned());
            }
        }
    }
    found
}

/// Lints a template: its SQL text, and the schemas measured for its versions
/// (foreign keys that leave the tenant's schema).
pub fn lint(template: &Template, measured: &[(String, SchemaSnapshot)]) -> Vec<LintFinding> {
    let mut findings = Vec::new();
    for version in &template.versions {
        for m in &version.migrations {
            let location = if m.name.contains('/') {
                m.name.to_string()
            } else {
                format!("{}/{}", version.version, m.name)
            };
            for st in statements(&m.sql) {
                if let Some(why) = non_transactional(template.engine, &st) {
                    let first: String = st.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
                    findings.push(LintFinding {
                        kind: LintKind::NotTransactional,
                        location: location.clone(),
                        message: format!("`{first} …`: {why}"),
                    });
                }
                for q in hard_coded_schemas(&st) {
                    findings.push(LintFinding {
                        kind: LintKind::HardCodedSchema,
                        location: location.clone(),
                        message: format!(
                            "`{q}` names a schema: in a schema-per-tenant fleet every tenant would use that one schema; leave names unqualified"
                        ),
                    });
                }
            }
        }
    }
    for (version, snap) in measured {
        for t in &snap.tables {
            for fk in &t.foreign_keys {
                if let Some(schema) = &fk.target_schema {
                    findings.push(LintFinding {
                        kind: LintKind::OutsideReference,
                        location: format!("{version}: table {}", t.name),
                        message: format!(
                            "foreign key ({}) references {schema}.{}, which lives outside the tenant's schema and may not exist for every tenant",
                            fk.columns.join(", "),
                            fk.target_table
                        ),
                    });
                }
            }
        }
    }
    // The same problem repeats in later measured versions; say it once.
    findings.dedup_by(|a, b| a.kind == b.kind && a.message == b.message);
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
                LintKind::NotTransactional,
                LintKind::HardCodedSchema,
                LintKind::HardCodedSchema
            ],
            "{f:#?}"
        );
        assert!(f[1].message.contains("public.b"));
        assert!(f[2].message.contains("shared.accounts"));
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
