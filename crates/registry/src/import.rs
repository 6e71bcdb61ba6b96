//! Bulk import of tenants: from a CSV or JSON file, or from a query against
//! the application's central database (the `tenants` table most SaaS apps
//! have) with a connection-string pattern such as
//! `postgres://app@db1/{db_name}`.
//!
//! An import is all or nothing: every row is validated and inserted in one
//! transaction, and the first bad row is reported by its position, with
//! nothing imported.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sqlx::{Column, Connection, Row};
use tenantry_introspect::{mysql, postgres, sqlite, ConnectionUrl, Timeouts};
use tenantry_model::Engine;
use tenantry_vault::Vault;
use ts_rs::TS;

use crate::{insert_tenant, AuditResult, NewTenant, Registry, RegistryError};

/// One tenant to import, before validation. The URL is already a secret.
pub struct ImportRow {
    /// Where the row came from: `row 3`, `item 2`.
    pub location: String,
    pub fields: Fields,
    pub url: SecretString,
}

#[derive(Default)]
pub struct Fields {
    pub slug: String,
    pub display_name: Option<String>,
    pub schema: Option<String>,
    pub template: Option<String>,
    pub template_version: Option<String>,
    pub domains: Vec<String>,
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ImportReport {
    pub imported: Vec<String>,
}

fn import_err(location: &str, reason: impl Into<String>) -> RegistryError {
    RegistryError::Import {
        location: location.to_owned(),
        reason: reason.into(),
    }
}

fn split_domains(s: &str) -> Vec<String> {
    s.split([' ', ',', ';'])
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect()
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Reads a `.csv` or `.json` file. CSV needs a header row with `slug` and
/// `url`, and may have `display_name` (or `name`), `schema`, `template`,
/// `template_version` (or `version`), `domains` (separated by spaces, commas
/// or semicolons) and `notes`. JSON is an array of objects with those keys;
/// `domains` may be an array.
pub fn read_file(path: &Path) -> Result<Vec<ImportRow>, RegistryError> {
    let where_ = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| import_err(&where_, format!("cannot read the file: {e}")))?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        || text.trim_start().starts_with('[');
    let rows = if is_json {
        parse_json(&text)
    } else {
        parse_csv(&text)
    };
    rows.map_err(|e| match e {
        RegistryError::Import { location, reason } => {
            import_err(&format!("{where_}, {location}"), reason)
        }
        other => other,
    })
}

pub fn parse_csv(text: &str) -> Result<Vec<ImportRow>, RegistryError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| import_err("header row", e.to_string()))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
    let slug_col =
        col(&["slug"]).ok_or_else(|| import_err("header row", "a `slug` column is required"))?;
    let url_col = col(&["url", "connection_url"])
        .ok_or_else(|| import_err("header row", "a `url` column is required"))?;
    let (name_col, schema_col, template_col, version_col, domains_col, notes_col) = (
        col(&["display_name", "name"]),
        col(&["schema"]),
        col(&["template"]),
        col(&["template_version", "version"]),
        col(&["domains", "domain"]),
        col(&["notes"]),
    );
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        // Row 1 is the header.
        let location = format!("row {}", i + 2);
        let record = record.map_err(|e| import_err(&location, e.to_string()))?;
        let get = |c: Option<usize>| c.and_then(|c| record.get(c));
        out.push(ImportRow {
            fields: Fields {
                slug: get(Some(slug_col)).unwrap_or_default().to_owned(),
                display_name: non_empty(get(name_col)),
                schema: non_empty(get(schema_col)),
                template: non_empty(get(template_col)),
                template_version: non_empty(get(version_col)),
                domains: get(domains_col).map(split_domains).unwrap_or_default(),
                notes: non_empty(get(notes_col)),
            },
            url: SecretString::from(get(Some(url_col)).unwrap_or_default().to_owned()),
            location,
        });
    }
    Ok(out)
}

pub fn parse_json(text: &str) -> Result<Vec<ImportRow>, RegistryError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| import_err(&format!("line {}", e.line()), e.to_string()))?;
    let items = value
        .as_array()
        .ok_or_else(|| import_err("top level", "expected an array of tenant objects"))?;
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let location = format!("item {}", i + 1);
        let obj = item
            .as_object()
            .ok_or_else(|| import_err(&location, "expected an object"))?;
        let text_of = |keys: &[&str]| -> Result<Option<String>, RegistryError> {
            for k in keys {
                match obj.get(*k) {
                    None | Some(serde_json::Value::Null) => {}
                    Some(serde_json::Value::String(s)) => return Ok(non_empty(Some(s))),
                    Some(other) if other.is_number() => return Ok(Some(other.to_string())),
                    Some(_) => {
                        return Err(import_err(&location, format!("`{k}` must be a string")))
                    }
                }
            }
            Ok(None)
        };
        let domains = match obj.get("domains") {
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .map(|d| {
                    d.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| import_err(&location, "`domains` must hold strings"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => text_of(&["domains", "domain"])?
                .map(|d| split_domains(&d))
                .unwrap_or_default(),
        };
        out.push(ImportRow {
            fields: Fields {
                slug: text_of(&["slug"])?.unwrap_or_default(),
                display_name: text_of(&["display_name", "name"])?,
                schema: text_of(&["schema"])?,
                template: text_of(&["template"])?,
                template_version: text_of(&["template_version", "version"])?,
                domains,
                notes: text_of(&["notes"])?,
            },
            url: SecretString::from(text_of(&["url", "connection_url"])?.unwrap_or_default()),
            location,
        });
    }
    Ok(out)
}

/// Percent-encodes a value for use inside a URL (everything but RFC 3986
/// unreserved characters).
fn encode_component(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Fills `{column}` placeholders of `pattern` from one result row.
fn fill_pattern(
    pattern: &str,
    values: &[(String, String)],
    location: &str,
) -> Result<SecretString, RegistryError> {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| import_err("pattern", "a `{` has no matching `}`"))?;
        let name = &rest[open + 1..open + close];
        let value = values
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .ok_or_else(|| {
                import_err(
                    location,
                    format!("the query returned no column `{name}` for the pattern"),
                )
            })?;
        out.push_str(&encode_component(value));
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Ok(SecretString::from(out))
}

/// Runs `sql` (read-only) against the central database at `source` and
/// turns each row into a tenant: column `slug` is required; `display_name`
/// (or `name`), `schema`, `template`, `template_version`, `domains` and
/// `notes` are used when present; `pattern` is filled from the row's
/// columns to make the tenant's connection URL.
pub async fn rows_from_query(
    source: &ConnectionUrl,
    sql: &str,
    pattern: &str,
    timeouts: Timeouts,
) -> Result<Vec<ImportRow>, RegistryError> {
    let table = fetch_text_rows(source, sql, timeouts).await?;
    let mut out = Vec::new();
    for (i, values) in table.into_iter().enumerate() {
        let location = format!("query row {}", i + 1);
        let get = |names: &[&str]| {
            values
                .iter()
                .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
                .and_then(|(_, v)| non_empty(Some(v)))
        };
        let slug = get(&["slug"])
            .ok_or_else(|| import_err(&location, "the query must return a `slug` column"))?;
        out.push(ImportRow {
            url: fill_pattern(pattern, &values, &location)?,
            fields: Fields {
                slug,
                display_name: get(&["display_name", "name"]),
                schema: get(&["schema"]),
                template: get(&["template"]),
                template_version: get(&["template_version", "version"]),
                domains: get(&["domains", "domain"])
                    .map(|d| split_domains(&d))
                    .unwrap_or_default(),
                notes: get(&["notes"]),
            },
            location,
        });
    }
    Ok(out)
}

type TextRows = Vec<Vec<(String, String)>>;

fn cell_text<R: Row>(row: &R, i: usize) -> String
where
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    if let Ok(Some(s)) = row.try_get::<Option<String>, _>(i) {
        return s;
    }
    if let Ok(Some(n)) = row.try_get::<Option<i64>, _>(i) {
        return n.to_string();
    }
    String::new()
}

fn to_text<R: Row>(rows: &[R]) -> TextRows
where
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    rows.iter()
        .map(|r| {
            r.columns()
                .iter()
                .enumerate()
                .map(|(i, c)| (c.name().to_owned(), cell_text(r, i)))
                .collect()
        })
        .collect()
}

async fn fetch_text_rows(
    source: &ConnectionUrl,
    sql: &str,
    timeouts: Timeouts,
) -> Result<TextRows, RegistryError> {
    let fail = |e: sqlx::Error| import_err("central database query", source.scrub(&e.to_string()));
    let work = async {
        match source.engine() {
            Engine::Postgres => {
                let mut conn = postgres::connect(source, timeouts).await?;
                let mut tx = conn.begin().await.map_err(fail)?;
                sqlx::query("SET TRANSACTION READ ONLY")
                    .execute(&mut *tx)
                    .await
                    .map_err(fail)?;
                let rows = sqlx::query(sql).fetch_all(&mut *tx).await.map_err(fail)?;
                Ok(to_text(&rows))
            }
            Engine::Mysql => {
                let mut conn = mysql::connect(source, timeouts).await?;
                sqlx::query("SET TRANSACTION READ ONLY")
                    .execute(&mut conn)
                    .await
                    .map_err(fail)?;
                let mut tx = conn.begin().await.map_err(fail)?;
                let rows = sqlx::query(sql).fetch_all(&mut *tx).await.map_err(fail)?;
                Ok(to_text(&rows))
            }
            Engine::Sqlite => {
                let mut conn = sqlite::open_read_only(&source.sqlite_path()).await?;
                let rows = sqlx::query(sql).fetch_all(&mut conn).await.map_err(fail)?;
                Ok(to_text(&rows))
            }
        }
    };
    match tokio::time::timeout(timeouts.query, work).await {
        Ok(r) => r,
        Err(_) => Err(import_err(
            "central database query",
            format!("timed out after {}s", timeouts.query.as_secs()),
        )),
    }
}

impl Registry {
    /// Imports `rows`, all or nothing.
    pub async fn import(
        &self,
        vault: &Vault,
        rows: Vec<ImportRow>,
    ) -> Result<ImportReport, RegistryError> {
        let count = rows.len();
        let result = self.import_inner(vault, rows).await;
        let report = self.audited(None, "tenant.import", result).await?;
        self.audit(
            None,
            "tenant.import",
            &format!(
                "{} of {count} tenants imported: {}",
                report.imported.len(),
                report.imported.join(", ")
            ),
            AuditResult::Ok,
        )
        .await?;
        Ok(report)
    }

    async fn import_inner(
        &self,
        vault: &Vault,
        rows: Vec<ImportRow>,
    ) -> Result<ImportReport, RegistryError> {
        let mut tx = self.write_tx().await?;
        let mut imported = Vec::new();
        for row in rows {
            let located = |e: RegistryError| {
                import_err(
                    &format!("{} (slug {:?})", row.location, row.fields.slug),
                    e.to_string(),
                )
            };
            let url =
                ConnectionUrl::parse(row.url.expose_secret()).map_err(|e| located(e.into()))?;
            let new = NewTenant {
                display_name: row
                    .fields
                    .display_name
                    .clone()
                    .unwrap_or_else(|| row.fields.slug.clone()),
                slug: row.fields.slug.clone(),
                url,
                schema: row.fields.schema.clone(),
                template: row.fields.template.clone(),
                template_version: row.fields.template_version.clone(),
                domains: row.fields.domains.clone(),
                notes: row.fields.notes.clone().unwrap_or_default(),
            };
            let slug = insert_tenant(&mut tx, vault, new).await.map_err(located)?;
            imported.push(slug.to_string());
        }
        tx.commit().await?;
        Ok(ImportReport { imported })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_fill_and_encode_values() {
        let values = vec![("db_name".to_owned(), "acme eu/1".to_owned())];
        let url = fill_pattern("postgres://app@db1/{db_name}", &values, "r").unwrap();
        assert_eq!(url.expose_secret(), "postgres://app@db1/acme%20eu%2F1");
        assert!(fill_pattern("postgres://x/{nope}", &values, "r").is_err());
        assert!(fill_pattern("postgres://x/{db_name", &values, "r").is_err());
    }

    #[test]
    fn csv_and_json_rows() {
        let csv = "slug,name,url,domains\nacme,Acme,sqlite:/tmp/a.db,acme.example.com; www.acme.example.com\n";
        let rows = parse_csv(csv).unwrap();
        assert_eq!(rows[0].fields.slug, "acme");
        assert_eq!(
            rows[0].fields.domains,
            ["acme.example.com", "www.acme.example.com"]
        );
        assert_eq!(rows[0].location, "row 2");
        let json = r#"[{"slug": "b", "url": "sqlite:/tmp/b.db", "domains": ["b.example.com"], "version": "1.0.0"}]"#;
        let rows = parse_json(json).unwrap();
        assert_eq!(rows[0].fields.template_version.as_deref(), Some("1.0.0"));
        assert!(parse_csv("name,url\nx,y\n").is_err());
        assert!(parse_json("{}").is_err());
        assert!(parse_json("[1]").is_err());
    }
}
