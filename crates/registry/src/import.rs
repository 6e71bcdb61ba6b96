//! Bulk import of tenants: from a CSV or JSON file, or from a query against
//! the application's central database (the `tenants` table most SaaS apps
//! have) with a connection-string pattern such as
//! `postgres://app@db1/{db_name}`.
//!
//! An import is all or nothing: every row is validated and written in one
//! transaction, and the first bad row is reported by its position, with
//! nothing imported. Its [`ImportMode`] says what a slug the registry
//! already has means, so the tenant list can be refreshed from the central
//! database every night; a dry run reports what an import would do and
//! writes nothing. Tenants the source no longer lists are reported, never
//! removed.

use std::collections::HashMap;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
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
    /// The tenant's revision the row was made from (column `revision`):
    /// the row is refused if the tenant has changed since. Without it, the
    /// row applies to whatever the tenant is now.
    pub revision: Option<i64>,
}

/// What an import does with a row whose slug the registry already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
#[ts(export)]
pub enum ImportMode {
    /// Every row must be new: an existing slug refuses the whole import.
    #[default]
    Add,
    /// A row whose slug exists is left out; the tenant stays as it is.
    SkipExisting,
    /// A row whose slug exists updates the tenant where it differs. A field
    /// the row leaves empty keeps its value: an import never clears one.
    Upsert,
}

impl ImportMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportMode::Add => "add",
            ImportMode::SkipExisting => "skip-existing",
            ImportMode::Upsert => "upsert",
        }
    }
}

/// A tenant an upsert changed, with the fields that changed (names only:
/// never the connection string).
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ChangedTenant {
    pub slug: String,
    pub fields: Vec<String>,
}

/// What an import did, or (dry run) would do.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ImportReport {
    pub mode: ImportMode,
    /// Nothing was written.
    pub dry_run: bool,
    pub added: Vec<String>,
    pub changed: Vec<ChangedTenant>,
    /// Listed by the source and the same in the registry (upsert).
    pub unchanged: Vec<String>,
    /// Listed by the source, already in the registry, left alone
    /// (skip-existing).
    pub skipped: Vec<String>,
    /// In the registry but not in the source: reported, never removed.
    pub missing_from_source: Vec<String>,
}

impl ImportReport {
    /// `3 new, 1 changed, 996 unchanged, 0 skipped, 2 missing from the source`
    pub fn summary(&self) -> String {
        format!(
            "{} new, {} changed, {} unchanged, {} skipped, {} missing from the source",
            self.added.len(),
            self.changed.len(),
            self.unchanged.len(),
            self.skipped.len(),
            self.missing_from_source.len()
        )
    }
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

/// A row's `revision`: a whole number from 1.
fn revision(text: Option<String>, location: &str) -> Result<Option<i64>, RegistryError> {
    text.map(|t| {
        t.parse::<i64>().ok().filter(|r| *r >= 1).ok_or_else(|| {
            import_err(
                location,
                format!("`revision` must be a whole number from 1 (the tenant's, as `tenantry tenant show --json` gives it), not {t:?}"),
            )
        })
    })
    .transpose()
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
    let revision_col = col(&["revision"]);
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
                revision: revision(non_empty(get(revision_col)), &location)?,
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
                revision: revision(text_of(&["revision"])?, &location)?,
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
                revision: revision(get(&["revision"]), &location)?,
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
    /// Imports `rows`, all or nothing, as new tenants ([`ImportMode::Add`]).
    pub async fn import(
        &self,
        vault: &Vault,
        rows: Vec<ImportRow>,
    ) -> Result<ImportReport, RegistryError> {
        self.import_as(vault, rows, ImportMode::Add, false).await
    }

    /// Imports `rows`, all or nothing, treating slugs the registry already
    /// has as `mode` says; with `dry_run`, reports what it would do and
    /// writes nothing (not even to the audit log, since nothing changed).
    pub async fn import_as(
        &self,
        vault: &Vault,
        rows: Vec<ImportRow>,
        mode: ImportMode,
        dry_run: bool,
    ) -> Result<ImportReport, RegistryError> {
        self.authorize(crate::Action::Tenants).await?;
        let count = rows.len();
        let result = self.import_inner(vault, rows, mode, dry_run).await;
        if dry_run {
            return result;
        }
        let report = self.audited(None, "tenant.import", result).await?;
        let changed: Vec<String> = report
            .changed
            .iter()
            .map(|c| format!("{} ({})", c.slug, c.fields.join(", ")))
            .collect();
        self.audit(
            None,
            "tenant.import",
            &format!(
                "{count} rows, mode {}: {}; added: {}; changed: {}; missing from the source: {}",
                mode.as_str(),
                report.summary(),
                report.added.join(", "),
                changed.join(", "),
                report.missing_from_source.join(", ")
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
        mode: ImportMode,
        dry_run: bool,
    ) -> Result<ImportReport, RegistryError> {
        let mut tx = self.write_tx().await?;
        let mut report = ImportReport {
            mode,
            dry_run,
            added: Vec::new(),
            changed: Vec::new(),
            unchanged: Vec::new(),
            skipped: Vec::new(),
            missing_from_source: Vec::new(),
        };
        let mut seen: HashMap<String, String> = HashMap::new();
        for row in rows {
            let located = |e: RegistryError| {
                import_err(
                    &format!("{} (slug {:?})", row.location, row.fields.slug),
                    e.to_string(),
                )
            };
            if let Some(first) = seen.insert(row.fields.slug.clone(), row.location.clone()) {
                return Err(located(RegistryError::InvalidInput {
                    field: "slug",
                    reason: format!("the source lists it twice ({first} too)"),
                }));
            }
            let url =
                ConnectionUrl::parse(row.url.expose_secret()).map_err(|e| located(e.into()))?;
            let existing: Option<(i64, Vec<u8>)> =
                sqlx::query_as("SELECT id, connection_ct FROM tenants WHERE slug = $1")
                    .bind(&row.fields.slug)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let (None, Some(expected)) = (&existing, row.fields.revision) {
                return Err(RegistryError::TenantGone {
                    location: row.location.clone(),
                    slug: row.fields.slug.clone(),
                    expected,
                });
            }
            match (existing, mode) {
                (None, _) | (Some(_), ImportMode::Add) => {
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
                    report.added.push(slug.to_string());
                }
                (Some(_), ImportMode::SkipExisting) => report.skipped.push(row.fields.slug.clone()),
                (Some((id, ct)), ImportMode::Upsert) => {
                    let fields = update_tenant(&mut tx, vault, id, &ct, &row, url)
                        .await
                        .map_err(|e| match e {
                            RegistryError::TenantChanged { .. } => e,
                            other => located(other),
                        })?;
                    if fields.is_empty() {
                        report.unchanged.push(row.fields.slug.clone());
                    } else {
                        report.changed.push(ChangedTenant {
                            slug: row.fields.slug.clone(),
                            fields,
                        });
                    }
                }
            }
        }
        let all: Vec<String> = sqlx::query_scalar("SELECT slug FROM tenants ORDER BY slug")
            .fetch_all(&mut *tx)
            .await?;
        report.missing_from_source = all.into_iter().filter(|s| !seen.contains_key(s)).collect();
        if dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
        Ok(report)
    }
}

/// Updates tenant `id` (connection ciphertext `ct`) from an import row,
/// where the row differs; returns the names of the fields that changed.
/// A field the row leaves empty keeps its value. A new connection or
/// schema is another place: the tenant reads `unknown` until the next
/// scan, and it is refused while an operation on the tenant is unfinished.
async fn update_tenant(
    tx: &mut sqlx::AnyConnection,
    vault: &Vault,
    id: i64,
    ct: &[u8],
    import: &ImportRow,
    url: ConnectionUrl,
) -> Result<Vec<String>, RegistryError> {
    let row = &import.fields;
    type Stored = (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        String,
        i64,
        String,
    );
    let (name, schema, template, version, notes, engine, revision, updated_at): Stored =
        sqlx::query_as(
            "SELECT display_name, schema_name, template, template_version, notes, engine,
                    revision, updated_at
               FROM tenants WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    // Read under the registry's write lock: nothing changes it before this
    // transaction commits.
    if let Some(expected) = row.revision.filter(|r| *r != revision) {
        return Err(RegistryError::TenantChanged {
            location: import.location.clone(),
            slug: row.slug.clone(),
            expected,
            current: revision,
            updated_at,
        });
    }
    let domains: Vec<String> = sqlx::query_scalar(
        "SELECT domain FROM tenant_domains WHERE tenant_id = $1 ORDER BY domain",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let slug = row.slug.clone();
    let stored_url = crate::decrypt_connection(vault, id, ct, &slug)?;
    let new = NewTenant {
        slug: slug.clone(),
        display_name: row.display_name.clone().unwrap_or_else(|| name.clone()),
        url,
        schema: row.schema.clone().or_else(|| schema.clone()),
        template: row.template.clone().or_else(|| template.clone()),
        template_version: row.template_version.clone().or_else(|| version.clone()),
        domains: if row.domains.is_empty() {
            domains.clone()
        } else {
            row.domains.clone()
        },
        notes: row.notes.clone().unwrap_or_else(|| notes.clone()),
    };
    let checked = crate::check_tenant(&new)?;
    if crate::engine_str(checked.engine) != engine {
        return Err(RegistryError::InvalidInput {
            field: "url",
            reason: format!(
                "the tenant is a {engine} tenant and the source gives a {} URL; a tenant's engine does not change: remove it and add it again if it really moved",
                checked.engine
            ),
        });
    }
    let mut new_domains: Vec<String> = checked.domains.iter().map(|d| d.to_string()).collect();
    new_domains.sort();
    new_domains.dedup();
    let moved_url = new.url.to_secret().expose_secret() != stored_url.expose_secret();
    let mut fields = Vec::new();
    for (field, changed) in [
        ("url", moved_url),
        ("display_name", checked.name != name),
        ("schema", checked.schema != schema),
        ("template", new.template != template),
        ("template_version", new.template_version != version),
        ("domains", new_domains != domains),
        ("notes", new.notes != notes),
    ] {
        if changed {
            fields.push(field.to_owned());
        }
    }
    if fields.is_empty() {
        return Ok(fields);
    }
    let moved = moved_url || checked.schema != schema;
    if moved {
        let running: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, kind FROM operations WHERE tenant_id = $1 AND finished_at IS NULL LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((op, kind)) = running {
            return Err(RegistryError::InvalidInput {
                field: "url",
                reason: format!(
                    "its {kind} (operation {op}) is unfinished; resolve it (`tenantry operations`) before the tenant's connection changes"
                ),
            });
        }
    }
    crate::check_conflicts(&mut *tx, &checked, &new.url, Some(id)).await?;
    sqlx::query(&format!(
        "UPDATE tenants SET display_name = $1, isolation = $2, schema_name = $3,
                location = $4, template = $5, template_version = $6, notes = $7, place_key = $8,
                server = $9, updated_at = {now}, revision = revision + 1
          WHERE id = $10",
        now = crate::Backend::of(tx).now()
    ))
    .bind(&checked.name)
    .bind(checked.isolation.as_str())
    .bind(&checked.schema)
    .bind(new.url.redacted())
    .bind(&new.template)
    .bind(&new.template_version)
    .bind(&new.notes)
    .bind(&checked.place)
    .bind(&checked.server)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    if moved_url {
        let ct = vault.encrypt(id, &new.url.to_secret())?;
        sqlx::query("UPDATE tenants SET connection_ct = $1 WHERE id = $2")
            .bind(ct)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    if moved {
        // What the last check measured was another place's.
        sqlx::query(
            "UPDATE tenants SET status = 'unknown', catalog_fingerprint = NULL,
                    status_reason = 'its connection was changed by an import: scan it again'
              WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?;
    }
    if new_domains != domains {
        sqlx::query("DELETE FROM tenant_domains WHERE tenant_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        crate::insert_domains(&mut *tx, id, new_domains.iter().map(String::as_str)).await?;
    }
    Ok(fields)
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
