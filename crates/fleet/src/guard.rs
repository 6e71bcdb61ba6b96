//! The schema guard (run when a tenant is opened, or by `tenantry guard`)
//! and template measurement.

use std::borrow::Cow;

use serde::Serialize;
use tenantry_introspect::{introspect, ConnectionUrl, IntrospectError, Timeouts};
use tenantry_model::{
    classify, hash_schema, Engine, SchemaSnapshot, SchemaStatus, TemplateVersionHash,
};
use tenantry_registry::templates::{StoredTemplate, StoredVersion, TenantCheck};
use tenantry_registry::{AuditResult, Registry, TenantRecord};
use tenantry_vault::Vault;
use ts_rs::TS;

use crate::provision::{provision, GuardAction, Place};
use crate::template::{lint, LintFinding, Migration, Template, TemplateVersion};
use crate::FleetError;

/// What the guard did for one tenant.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct GuardReport {
    pub slug: String,
    pub action: Option<GuardAction>,
    pub applied: Vec<String>,
    #[ts(type = "\"unknown\" | \"synced\" | \"customized\" | \"outdated\" | \"failed\"")]
    pub status: SchemaStatus,
    pub hash: Option<String>,
    pub error_code: Option<String>,
    pub error: Option<String>,
}

impl From<StoredTemplate> for Template {
    fn from(t: StoredTemplate) -> Self {
        Template {
            name: t.name,
            engine: t.engine,
            versions: t
                .versions
                .into_iter()
                .map(|v| TemplateVersion {
                    version: v.version,
                    migrations: v
                        .migrations
                        .into_iter()
                        .map(|(name, sql)| Migration {
                            name: Cow::Owned(name),
                            sql: Cow::Owned(sql),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// The schema a tenant lives in: its own schema (schema-per-tenant), the
/// database's `public` (PostgreSQL database-per-tenant), its database (MySQL).
pub fn tenant_schema(record: &TenantRecord, url: &ConnectionUrl) -> String {
    match (record.engine, &record.schema_name) {
        (_, Some(s)) => s.clone(),
        (Engine::Mysql, None) => url.database().unwrap_or_default(),
        (Engine::Postgres, None) => "public".to_owned(),
        (Engine::Sqlite, None) => "main".to_owned(),
    }
}

/// Reads one tenant's schema.
pub async fn read_tenant(
    record: &TenantRecord,
    url: &ConnectionUrl,
    timeouts: Timeouts,
) -> Result<SchemaSnapshot, IntrospectError> {
    let schema = tenant_schema(record, url);
    let schema = (record.engine != Engine::Sqlite).then_some(schema.as_str());
    introspect(url, schema, timeouts).await
}

/// Runs the guard for one tenant: creates its database/schema if missing,
/// applies its template version if the schema is empty, does nothing if it
/// is provisioned; then measures it and records hash and status.
pub async fn guard_tenant(
    registry: &Registry,
    vault: &Vault,
    slug: &str,
    timeouts: Timeouts,
) -> Result<GuardReport, FleetError> {
    registry.authorize(tenantry_registry::Action::Guard).await?;
    let record = registry.tenant(slug).await?;
    let outcome = guard_inner(registry, vault, &record, timeouts).await;
    let mut report = GuardReport {
        slug: slug.to_owned(),
        action: None,
        applied: Vec::new(),
        status: SchemaStatus::Failed,
        hash: None,
        error_code: None,
        error: None,
    };
    match outcome {
        Ok((action, applied, status, hash)) => {
            let detail = match action {
                GuardAction::AlreadyProvisioned => {
                    "already provisioned; nothing applied".to_owned()
                }
                GuardAction::Created => format!("created and applied {}", applied.join(", ")),
                GuardAction::Initialised => format!("initialised: applied {}", applied.join(", ")),
            };
            registry
                .audit(
                    Some(slug),
                    "guard",
                    &format!("{detail}; status {status}"),
                    AuditResult::Ok,
                )
                .await?;
            report.action = Some(action);
            report.applied = applied;
            report.status = status;
            report.hash = hash;
        }
        Err(e) => {
            registry
                .record_check(&TenantCheck::failed(slug, e.to_string()))
                .await?;
            registry
                .audit(Some(slug), "guard", &e.to_string(), AuditResult::Failed)
                .await?;
            report.error_code = Some(e.code().to_owned());
            report.error = Some(e.to_string());
        }
    }
    Ok(report)
}

async fn guard_inner(
    registry: &Registry,
    vault: &Vault,
    record: &TenantRecord,
    timeouts: Timeouts,
) -> Result<(GuardAction, Vec<String>, SchemaStatus, Option<String>), FleetError> {
    let (Some(name), Some(version)) = (&record.template, &record.template_version) else {
        return Err(FleetError::InvalidTemplate {
            reason: format!(
                "tenant {} has no template and version to provision from",
                record.slug
            ),
        });
    };
    let url = registry.connection(vault, &record.slug).await?;
    let template =
        crate::template::applicable_template(registry, name, record.engine, version).await?;
    let migrations = template.migrations_through(version)?;
    let schema = tenant_schema(record, &url);
    // MySQL/MariaDB commit each DDL statement: the guard journals each
    // migration, so one killed or failing part-way is known to the next.
    let ledger = (record.engine == Engine::Mysql)
        .then(|| crate::provision::Ledger::new(registry, &record.slug));
    let done = provision(
        &Place {
            url: &url,
            schema: &schema,
        },
        &migrations,
        timeouts,
        ledger.as_ref(),
    )
    .await;
    let op = ledger.as_ref().and_then(|l| l.operation());
    let done = match (done, op) {
        (Ok(done), Some(op)) => {
            registry
                .finish_operation(
                    op,
                    tenantry_registry::journal::OperationEnd::Ok,
                    &format!("applied {}", done.applied.join(", ")),
                )
                .await?;
            done
        }
        (Ok(done), None) => done,
        (Err(e), op) => {
            if let (Some(op), false) = (op, matches!(e, FleetError::ProvisionIncomplete { .. })) {
                crate::end_operation_with(registry, op, &e).await;
            }
            return Err(e);
        }
    };
    let snap = read_tenant(record, &url, timeouts).await?;
    let hash = hash_schema(&snap).root;
    let lineage = current_lineage(registry, name, record.engine, timeouts).await?;
    let status = if lineage.is_empty() {
        SchemaStatus::Unknown
    } else {
        classify(&hash, version, &lineage)
    };
    registry
        .record_check(&TenantCheck {
            slug: record.slug.clone(),
            status,
            reason: None,
            hash: Some(hash),
            provisioned: done.action != GuardAction::AlreadyProvisioned,
            fingerprint: None,
        })
        .await?;
    Ok((done.action, done.applied, status, Some(hash.to_string())))
}

/// A tenant whose schema is still missing after `guard --all`.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct MissingSchema {
    pub slug: String,
    pub reason: String,
}

/// Setup verification: which tenants' schemas are still missing.
pub async fn verify_setup(
    registry: &Registry,
    vault: &Vault,
    timeouts: Timeouts,
) -> Result<Vec<MissingSchema>, FleetError> {
    let mut missing = Vec::new();
    for record in registry.list_tenants().await? {
        let reason = match registry.connection(vault, &record.slug).await {
            Err(e) => Some(e.to_string()),
            Ok(url) => match read_tenant(&record, &url, timeouts).await {
                Ok(snap) if snap.is_empty() => {
                    Some("the schema exists but holds no objects".to_owned())
                }
                Ok(_) => None,
                Err(e) => Some(e.to_string()),
            },
        };
        if let Some(reason) = reason {
            missing.push(MissingSchema {
                slug: record.slug,
                reason,
            });
        }
    }
    Ok(missing)
}

/// A name for a throwaway scratch schema/database: `<prefix>_<pid>_<nanos>_<i>`.
pub(crate) fn scratch_name(prefix: &str, i: usize) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{}_{nanos:x}_{i}", std::process::id())
}

/// Measures every version of `template` by applying it to a scratch
/// schema (PostgreSQL), database (MySQL) or file (SQLite) reached through
/// `scratch`, introspecting it with the engine code, and dropping it.
pub async fn measure(
    template: &Template,
    scratch: &ConnectionUrl,
    timeouts: Timeouts,
) -> Result<Vec<(String, SchemaSnapshot)>, FleetError> {
    measure_in(template, scratch, None, timeouts).await
}

/// [`measure`], in the scratch schema (PostgreSQL) or database (MySQL)
/// `name` when one is given, instead of a new one with a made-up name: so
/// a MySQL account needs rights on that one database only (`GRANT ALL ON
/// \`name\`.* TO …` lets it create and drop it). It must be missing or
/// empty (refused otherwise, before anything runs); each version is
/// measured in it in turn, and it is dropped after each.
pub async fn measure_in(
    template: &Template,
    scratch: &ConnectionUrl,
    name: Option<&str>,
    timeouts: Timeouts,
) -> Result<Vec<(String, SchemaSnapshot)>, FleetError> {
    let chosen = match (name, template.engine) {
        (None, _) | (Some(_), Engine::Sqlite) => None,
        (Some(n), _) => {
            if n.is_empty() || n.len() > 63 || n.chars().any(char::is_control) {
                return Err(FleetError::InvalidTemplate {
                    reason: format!(
                        "--scratch-name {} is not a usable name (1–63 bytes, no control characters)",
                        tenantry_registry::escape_controls(n)
                    ),
                });
            }
            Some(n.to_owned())
        }
    };
    if scratch.engine() != template.engine {
        return Err(FleetError::InvalidTemplate {
            reason: format!(
                "the scratch URL is {} but the template is for {}",
                scratch.engine(),
                template.engine
            ),
        });
    }
    let tmp = tempfile_dir()?;
    let mut out = Vec::new();
    for (i, v) in template.versions.iter().enumerate() {
        let migrations = template.migrations_through(&v.version)?;
        let name = chosen
            .clone()
            .unwrap_or_else(|| scratch_name("tenantry_scratch", i));
        if chosen.is_some() {
            refuse_occupied_scratch(template.engine, scratch, &name, timeouts).await?;
        }
        let (url, schema) = match template.engine {
            Engine::Sqlite => (
                ConnectionUrl::parse(&format!(
                    "sqlite:{}",
                    tmp.join(format!("{name}.db")).display()
                ))?,
                "main".to_owned(),
            ),
            _ => (scratch.clone(), name.clone()),
        };
        let measured = async {
            provision(
                &Place {
                    url: &url,
                    schema: &schema,
                },
                &migrations,
                timeouts,
                None,
            )
            .await?;
            let schema_arg = (template.engine != Engine::Sqlite).then_some(schema.as_str());
            let mut snap = introspect(&url, schema_arg, timeouts).await?;
            if template.engine == Engine::Postgres {
                expect_created_extensions(&mut snap, &migrations)?;
            }
            Ok::<_, FleetError>(snap)
        }
        .await;
        drop_scratch(&url, &schema, timeouts).await;
        out.push((v.version.clone(), measured?));
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(out)
}

/// A chosen scratch schema or database that already holds objects is
/// never used (measuring would read them) nor dropped (they are someone's).
async fn refuse_occupied_scratch(
    engine: Engine,
    scratch: &ConnectionUrl,
    name: &str,
    timeouts: Timeouts,
) -> Result<(), FleetError> {
    let occupied = |what: &'static str| FleetError::ScratchNotEmpty {
        what,
        name: name.to_owned(),
    };
    if engine == Engine::Postgres {
        // Every object of a schema depends on it in pg_depend, whether or
        // not the model reads its kind (a collation, an operator, a text
        // search configuration): DROP SCHEMA … CASCADE would take them.
        // A missing schema has none.
        let mut conn = tenantry_introspect::postgres::connect(scratch, timeouts).await?;
        let held: Result<bool, sqlx::Error> = sqlx::query_scalar(
            "SELECT EXISTS (SELECT FROM pg_depend d JOIN pg_namespace n ON n.oid = d.refobjid
                             WHERE d.refclassid = 'pg_namespace'::regclass AND n.nspname = $1)",
        )
        .bind(name)
        .fetch_one(&mut conn)
        .await;
        tenantry_introspect::postgres::close(conn).await;
        let held = held.map_err(|e| {
            FleetError::from(tenantry_introspect::postgres::catalog_error(scratch, &e))
        })?;
        return if held {
            Err(occupied("schema"))
        } else {
            Ok(())
        };
    }
    // A MySQL database holds only kinds the model reads.
    match introspect(scratch, Some(name), timeouts).await {
        Ok(snap) if snap.is_empty() => Ok(()),
        Ok(_) => Err(occupied("database")),
        Err(IntrospectError::SchemaNotFound { .. } | IntrospectError::DatabaseNotFound { .. }) => {
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Puts into a template's snapshot the extensions its SQL installs into
/// the tenant's schema. The scratch schema it is measured in shares a
/// database with others: where that database already has the extension,
/// `CREATE EXTENSION IF NOT EXISTS` does nothing and the scratch schema
/// would lack it, while a tenant database provisioned from the template
/// has it in its own schema. What the template says, not what the scratch
/// database happened to hold, is the template.
fn expect_created_extensions(
    snap: &mut SchemaSnapshot,
    migrations: &[&Migration],
) -> Result<(), FleetError> {
    let mut created: Vec<String> = Vec::new();
    for m in migrations {
        crate::lint::track_extensions(&m.sql, &mut created).map_err(|reason| {
            FleetError::InvalidTemplate {
                reason: format!("{} cannot be read as SQL: {reason}", m.name),
            }
        })?;
    }
    for name in created {
        if !snap.extensions.iter().any(|x| x.name == name) {
            snap.extensions.push(tenantry_model::Extension { name });
        }
    }
    snap.extensions.sort();
    Ok(())
}

fn tempfile_dir() -> Result<std::path::PathBuf, FleetError> {
    let dir = std::env::temp_dir().join(scratch_name("tenantry_scratch", 0));
    std::fs::create_dir_all(&dir).map_err(|source| FleetError::Io {
        action: "create scratch directory",
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

pub(crate) async fn drop_scratch(url: &ConnectionUrl, schema: &str, timeouts: Timeouts) {
    use sqlx::Executor;
    match url.engine() {
        Engine::Postgres => {
            if let Ok(mut c) = tenantry_introspect::postgres::connect(url, timeouts).await {
                let _ = c
                    .execute(
                        format!(
                            "DROP SCHEMA IF EXISTS {} CASCADE",
                            tenantry_model::quote::postgres(schema)
                        )
                        .as_str(),
                    )
                    .await;
                tenantry_introspect::postgres::close(c).await;
            }
        }
        Engine::Mysql => {
            if let Ok(server) = url.with_database("") {
                if let Ok(mut c) = tenantry_introspect::mysql::connect(&server, timeouts).await {
                    let _ = c
                        .execute(
                            format!(
                                "DROP DATABASE IF EXISTS {}",
                                tenantry_model::quote::mysql(schema)
                            )
                            .as_str(),
                        )
                        .await;
                    tenantry_introspect::mysql::close(c).await;
                }
            }
        }
        Engine::Sqlite => {
            let _ = std::fs::remove_file(url.sqlite_path());
        }
    }
}

/// Where a template is measured when the user names no scratch target:
/// SQLite measures in a scratch file; PostgreSQL and MySQL/MariaDB need a
/// database Tenantry may create and drop scratch objects in.
pub fn default_scratch(engine: Engine) -> Result<ConnectionUrl, FleetError> {
    match engine {
        Engine::Sqlite => Ok(ConnectionUrl::parse(&format!(
            "sqlite:{}",
            std::env::temp_dir().join("tenantry-scratch.db").display()
        ))?),
        _ => Err(FleetError::InvalidTemplate {
            reason: format!("measuring a {engine} template needs a scratch URL (a database Tenantry may create and drop scratch objects in)"),
        }),
    }
}

/// Measures a template, lints it, and stores it with its version hashes in
/// the registry. Returns the lint findings. A template whose SQL reaches
/// outside the tenant's schema is refused before anything runs.
pub async fn register_template(
    registry: &Registry,
    template: &Template,
    scratch: &ConnectionUrl,
    timeouts: Timeouts,
) -> Result<Vec<LintFinding>, FleetError> {
    register_template_allowing(registry, template, scratch, None, timeouts, None).await
}

/// [`register_template`], with `allow_outside` saying why the versions
/// whose SQL reaches outside the tenant are intended: they are stored with
/// that reason and who gave it (audited), and the guard, reset, repair and
/// upgrade then apply them. Without it such a template is refused before
/// it is even measured (measuring runs its SQL on the scratch target).
/// `scratch_name` chooses the scratch schema or database ([`measure_in`]).
pub async fn register_template_allowing(
    registry: &Registry,
    template: &Template,
    scratch: &ConnectionUrl,
    scratch_name: Option<&str>,
    timeouts: Timeouts,
    allow_outside: Option<&str>,
) -> Result<Vec<LintFinding>, FleetError> {
    register_template_checked(
        registry,
        template,
        scratch,
        scratch_name,
        timeouts,
        allow_outside,
        &|_| Ok(()),
    )
    .await
}

/// A check of the measured versions (name, model) before they are stored.
pub(crate) type MeasuredCheck<'a> =
    dyn Fn(&[(String, SchemaSnapshot)]) -> Result<(), FleetError> + Sync + 'a;

/// [`register_template_allowing`], storing the versions only when `check`
/// accepts what was measured (capture: the last one hashes as its
/// reference); its refusal is returned as it is (the caller audits it).
pub(crate) async fn register_template_checked(
    registry: &Registry,
    template: &Template,
    scratch: &ConnectionUrl,
    scratch_name: Option<&str>,
    timeouts: Timeouts,
    allow_outside: Option<&str>,
    check: &MeasuredCheck<'_>,
) -> Result<Vec<LintFinding>, FleetError> {
    let outside: Vec<(String, Vec<LintFinding>)> = template
        .versions
        .iter()
        .map(|v| {
            let found: Vec<LintFinding> = crate::template::lint_version(template.engine, v)
                .into_iter()
                .filter(|f| f.reaches_outside)
                .collect();
            (v.version.clone(), found)
        })
        .filter(|(_, f)| !f.is_empty())
        .collect();
    let allowed = match (outside.first(), allow_outside.map(str::trim)) {
        (None, _) => None,
        (Some(_), Some(why)) if !why.is_empty() => {
            let actor = tenantry_registry::current_actor();
            Some(format!(
                "{why} (allowed by {}@{})",
                actor.account, actor.host
            ))
        }
        (Some((version, found)), _) => {
            let e = crate::template::outside_refusal(
                &template.name,
                version,
                found,
                "add it again with --allow-outside-tenant \"WHY\" if this is intended",
            );
            registry
                .audit(
                    None,
                    "template.save",
                    &format!("{} ({}): {e}", template.name, template.engine),
                    AuditResult::Refused,
                )
                .await?;
            return Err(e);
        }
    };
    let measured = match measure_in(template, scratch, scratch_name, timeouts).await {
        Ok(m) => m,
        Err(e) => {
            // A template that cannot be measured is not stored; say so in
            // the audit log too.
            registry
                .audit(
                    None,
                    "template.save",
                    &format!("{} ({}): not measured: {e}", template.name, template.engine),
                    AuditResult::Failed,
                )
                .await?;
            return Err(e);
        }
    };
    check(&measured)?;
    let findings = lint(template, &measured);
    let stored = StoredTemplate {
        name: template.name.clone(),
        engine: template.engine,
        versions: template
            .versions
            .iter()
            .zip(&measured)
            .map(|(v, (_, snap))| StoredVersion {
                version: v.version.clone(),
                migrations: v
                    .migrations
                    .iter()
                    .map(|m| (m.name.to_string(), m.sql.to_string()))
                    .collect(),
                hash: Some(hash_schema(snap).root),
                snapshot: Some(snap.clone()),
                outside_allowed: outside
                    .iter()
                    .any(|(o, _)| *o == v.version)
                    .then(|| allowed.clone())
                    .flatten(),
            })
            .collect(),
    };
    registry.save_template(&stored).await?;
    if let Some(why) = &allowed {
        let versions: Vec<&str> = outside.iter().map(|(v, _)| v.as_str()).collect();
        registry
            .audit(
                None,
                "template.allow_outside",
                &format!(
                    "{} ({}) versions {} may reach outside the tenant's schema: {why}",
                    template.name,
                    template.engine,
                    versions.join(", ")
                ),
                AuditResult::Ok,
            )
            .await?;
    }
    Ok(findings)
}

/// True when a template's stored hashes were not all measured with the
/// current canonical format: it must be re-measured before tenants are
/// compared with it (they would differ by format, never by drift).
pub fn lineage_is_stale(lineage: &[TemplateVersionHash]) -> bool {
    lineage
        .iter()
        .any(|v| v.hash.format() != tenantry_model::CanonicalFormat::CURRENT)
}

/// Measures a stored template again, from the migrations the registry
/// holds, with the current canonicaliser, and stores the new hashes and
/// models (audited as `template.remeasure`). Reached through `scratch`
/// as when it was added; what a version was allowed to reach outside
/// the tenant's schema is kept.
pub async fn remeasure_template(
    registry: &Registry,
    name: &str,
    engine: Engine,
    scratch: &ConnectionUrl,
    scratch_name: Option<&str>,
    timeouts: Timeouts,
) -> Result<Vec<TemplateVersionHash>, FleetError> {
    let stored = registry.template(name, engine).await?;
    let before: Vec<String> = stored
        .versions
        .iter()
        .map(|v| v.hash.map(|h| h.to_string()).unwrap_or_default())
        .collect();
    let allowed: Vec<Option<String>> = stored
        .versions
        .iter()
        .map(|v| v.outside_allowed.clone())
        .collect();
    let template = Template::from(stored);
    let measured = match measure_in(&template, scratch, scratch_name, timeouts).await {
        Ok(m) => m,
        Err(e) => {
            registry
                .audit(
                    None,
                    "template.remeasure",
                    &format!("{name} ({engine}): not measured: {e}"),
                    AuditResult::Failed,
                )
                .await?;
            return Err(e);
        }
    };
    let stored = StoredTemplate {
        name: template.name.clone(),
        engine,
        versions: template
            .versions
            .iter()
            .zip(measured)
            .zip(allowed)
            .map(|((v, (_, snap)), outside_allowed)| StoredVersion {
                version: v.version.clone(),
                migrations: v
                    .migrations
                    .iter()
                    .map(|m| (m.name.to_string(), m.sql.to_string()))
                    .collect(),
                hash: Some(hash_schema(&snap).root),
                snapshot: Some(snap),
                outside_allowed,
            })
            .collect(),
    };
    registry.save_template(&stored).await?;
    let changes: Vec<String> = stored
        .versions
        .iter()
        .zip(&before)
        .map(|(v, old)| {
            format!(
                "{} {} -> {}",
                v.version,
                if old.is_empty() { "unmeasured" } else { old },
                v.hash.map(|h| h.to_string()).unwrap_or_default()
            )
        })
        .collect();
    registry
        .audit(
            None,
            "template.remeasure",
            &format!("{name} ({engine}): {}", changes.join("; ")),
            AuditResult::Ok,
        )
        .await?;
    Ok(registry.lineage(name, engine).await?)
}

/// A template's lineage to compare tenants with. A SQLite template whose
/// hashes are of an older canonical format is re-measured on the spot (it
/// needs nothing but a scratch file); a PostgreSQL or MySQL one needs a
/// scratch server (`tenantry template remeasure NAME --scratch URL`), and
/// until then its tenants are `unknown` with that said, never `customized`.
pub async fn current_lineage(
    registry: &Registry,
    name: &str,
    engine: Engine,
    timeouts: Timeouts,
) -> Result<Vec<TemplateVersionHash>, FleetError> {
    let lineage = registry.lineage(name, engine).await?;
    if engine != Engine::Sqlite || !lineage_is_stale(&lineage) {
        return Ok(lineage);
    }
    let scratch = ConnectionUrl::parse(&format!(
        "sqlite:{}",
        std::env::temp_dir().join("tenantry-scratch.db").display()
    ))?;
    // A failed re-measure is audited; the tenants then read `unknown`, with
    // the re-measure to run named in their reason.
    Ok(
        remeasure_template(registry, name, engine, &scratch, None, timeouts)
            .await
            .unwrap_or(lineage),
    )
}
