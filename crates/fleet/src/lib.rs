//! Fleet-level operations over the engine: templates and their measured
//! hashes, tenants and their status, and the built-in demo fleet.
//!
//! Architecture invariant: no tauri here. The desktop app and the CLI both
//! call this crate; what they show is what it returns.

pub mod alert;
pub mod backup;
pub mod capture;
mod console;
pub mod demo;
pub mod drift;
pub mod guard;
mod lint;
mod mysql_aside;
pub mod provision;
pub mod repair;
pub mod reset;
pub mod scan;
mod sqlite_apply;
mod sqlite_backup;
pub mod sync;
mod sync_sqlite;
pub mod template;
pub mod upgrade;

use std::path::{Path, PathBuf};

use serde::Serialize;
use tenantry_introspect::{introspect, ConnectionUrl, IntrospectError, Timeouts};
use tenantry_model::{
    classify, hash_schema, Engine, SchemaSnapshot, SchemaStatus, TemplateVersionHash,
};
use ts_rs::TS;

pub use console::{
    Access, CaptureForm, Fleet, ImportForm, ImportSource, KeyStatus, RegistryForm, RegistrySource,
    Sensitive, SyncRequest, TemplateFolderForm, TemplateView, TenantDetail, TenantForm, Workspace,
};
pub use sqlite_apply::apply_sqlite_migrations;
pub use template::{Migration, Template, TemplateVersion};
pub use tenantry_registry::Isolation;

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("applying migration {migration} to {path} failed: {reason}")]
    Migration {
        migration: String,
        path: PathBuf,
        reason: String,
    },
    #[error("template {template} has no version {version} (known: {known})")]
    UnknownVersion {
        template: String,
        version: String,
        known: String,
    },
    #[error("invalid template: {reason}")]
    InvalidTemplate { reason: String },
    #[error("the reference was not captured: {reason}")]
    CaptureRefused { reason: String },
    #[error("the report was not written: {reason}")]
    ReportRefused { reason: String },
    #[error("the scratch {what} `{name}` already holds objects; a template is measured only in an empty or missing one, which Tenantry drops afterwards: choose another --scratch-name, or empty it")]
    ScratchNotEmpty { what: &'static str, name: String },
    #[error("another process created the same database or schema at the same moment; run the guard again")]
    Raced,
    #[error(
        "another guard has held the lock of {tenant} for {seconds}s; try again when it finishes"
    )]
    Locked { tenant: String, seconds: u64 },
    #[error("not confirmed: type the tenant slug `{slug}` exactly ({why}); nothing was changed")]
    ConfirmationMismatch { slug: String, why: String },
    #[error("upgrade of {slug} refused: {reason}")]
    UpgradeRefused { slug: String, reason: String },
    #[error("the reset of {slug} was refused: {reason}")]
    ResetRefused { slug: String, reason: String },
    #[error("the reset plan for {slug} is out of date: {reason}")]
    PlanStale { slug: String, reason: String },
    #[error("the rebuilt schema of {slug} hashes {found}, not the template's {expected}; the reset was rolled back and nothing was changed")]
    VerifyFailed {
        slug: String,
        found: String,
        expected: String,
    },
    #[error("the reset of {slug} stopped part-way: {reason}. Its previous tables are safe in {backup}; migrations applied before the failure: {applied}. Fix the cause and reset again, or restore the backup")]
    PartialReset {
        slug: String,
        backup: String,
        applied: String,
        reason: String,
    },
    #[error("the sync of {slug} was refused: {reason}; nothing was changed")]
    SyncRefused { slug: String, reason: String },
    #[error("step {step} of the sync of {slug} failed: {reason}; the sync was rolled back and nothing was changed")]
    SyncStepFailed {
        slug: String,
        step: String,
        reason: String,
    },
    #[error("after the sync's steps the schema of {slug} would hash {found}, not the {expected} it aims at (the template's, with any kept differences; still different: {remaining}); the sync was rolled back and nothing was changed: reset the tenant, or report the plan")]
    SyncVerifyFailed {
        slug: String,
        found: String,
        expected: String,
        remaining: String,
    },
    #[error("the sync of {slug} stopped at step {step}: {reason}. MySQL/MariaDB commit every statement, so the {ran} steps before it stay done ({done}) and what they removed is in the quarantine; fix the cause, then `tenantry sync {slug} --resume --confirm {slug}` plans what is left from the tenant as it now is and finishes it (or restore from `tenantry backup list`)")]
    SyncInterrupted {
        slug: String,
        step: String,
        reason: String,
        ran: usize,
        done: String,
    },
    #[error("every step of the sync of {slug} ran, yet its schema hashes {found}, not the {expected} it aims at (still different: {remaining}); MySQL/MariaDB commit every statement, so the steps stay done and what they removed is in the quarantine: `tenantry sync {slug} --plan` shows what is left, or reset the tenant")]
    SyncIncomplete {
        slug: String,
        found: String,
        expected: String,
        remaining: String,
    },
    #[error("backup {backup} was not used: {reason}; nothing was changed")]
    BackupRefused { backup: String, reason: String },
    #[error("backup {backup} was not purged: objects outside it depend on it ({dependents}); drop or change those first, or keep the backup — nothing was dropped")]
    PurgeRefused { backup: String, dependents: String },
    #[error("template {template} {version} reaches outside the tenant's schema ({findings}); {what_to_do}")]
    TemplateReachesOutside {
        template: String,
        version: String,
        findings: String,
        what_to_do: String,
    },
    #[error("an earlier guard of {schema} stopped {stopped} (operation {operation}): MySQL/MariaDB keep every statement that ran, so the schema is partly built and cannot simply be completed; rebuild it from the template with `tenantry reset` (its tables are set aside first), or restore a backup")]
    ProvisionIncomplete {
        schema: String,
        operation: i64,
        stopped: String,
    },
    #[error("the demo fleet could not be opened ({reason}); your own registry is not affected. Close Tenantry and delete {folder} to rebuild the demo")]
    DemoUnavailable { reason: String, folder: String },
    #[error("the demo registry holds only the built-in demo tenants, so {what} is not possible there; switch to your own registry")]
    DemoReadOnly { what: &'static str },
    #[error(transparent)]
    Introspect(#[from] IntrospectError),
    #[error(transparent)]
    Registry(#[from] tenantry_registry::RegistryError),
}

impl FleetError {
    /// A stable machine-readable code for IPC and JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            FleetError::Io { .. } => "io",
            FleetError::Migration { .. } => "migration_failed",
            FleetError::UnknownVersion { .. } => "unknown_template_version",
            FleetError::InvalidTemplate { .. } => "invalid_template",
            FleetError::CaptureRefused { .. } => "capture_refused",
            FleetError::ReportRefused { .. } => "report_refused",
            FleetError::ScratchNotEmpty { .. } => "scratch_not_empty",
            FleetError::Raced => "raced",
            FleetError::Locked { .. } => "locked",
            FleetError::ConfirmationMismatch { .. } => "confirmation_mismatch",
            FleetError::PlanStale { .. } => "plan_stale",
            FleetError::ResetRefused { .. } => "reset_refused",
            FleetError::ProvisionIncomplete { .. } => "provision_incomplete",
            FleetError::TemplateReachesOutside { .. } => "template_reaches_outside",
            FleetError::UpgradeRefused { .. } => "upgrade_refused",
            FleetError::VerifyFailed { .. } => "verify_failed",
            FleetError::PartialReset { .. } => "partial_reset",
            FleetError::PurgeRefused { .. } => "purge_refused",
            FleetError::BackupRefused { .. } => "backup_refused",
            FleetError::SyncRefused { .. } => "sync_refused",
            FleetError::SyncStepFailed { .. } => "sync_step_failed",
            FleetError::SyncVerifyFailed { .. } => "sync_verify_failed",
            FleetError::SyncInterrupted { .. } => "sync_interrupted",
            FleetError::SyncIncomplete { .. } => "sync_incomplete",
            FleetError::DemoUnavailable { .. } => "demo_unavailable",
            FleetError::DemoReadOnly { .. } => "demo_read_only",
            FleetError::Introspect(e) => e.code(),
            FleetError::Registry(e) => e.code(),
        }
    }
}

/// A catalog or DDL statement failed on `url`'s server (message scrubbed).
pub(crate) fn catalog(url: &ConnectionUrl, e: &sqlx::Error) -> FleetError {
    FleetError::Introspect(IntrospectError::Catalog {
        server: url.server_label(),
        reason: url.scrub(&e.to_string()),
    })
}

/// Opens a SQLite tenant for writing: waits up to a minute for another
/// writer's lock, never creates the file unless `create`.
pub(crate) async fn open_sqlite_writer(
    url: &ConnectionUrl,
    create: bool,
) -> Result<sqlx::SqliteConnection, FleetError> {
    use sqlx::ConnectOptions;
    sqlx::sqlite::SqliteConnectOptions::new()
        .filename(url.sqlite_path())
        .create_if_missing(create)
        .foreign_keys(true)
        .busy_timeout(std::time::Duration::from_secs(60))
        .disable_statement_logging()
        .connect()
        .await
        .map_err(|e| catalog(url, &e))
}

impl FleetError {
    /// Whether the error is a refusal (the user or a guard rail said no)
    /// rather than a failure.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            FleetError::ConfirmationMismatch { .. }
                | FleetError::PlanStale { .. }
                | FleetError::ResetRefused { .. }
                | FleetError::UpgradeRefused { .. }
                | FleetError::UnknownVersion { .. }
                | FleetError::PurgeRefused { .. }
                | FleetError::BackupRefused { .. }
                | FleetError::SyncRefused { .. }
                | FleetError::TemplateReachesOutside { .. }
                | FleetError::Registry(
                    tenantry_registry::RegistryError::RoleRefused { .. }
                        | tenantry_registry::RegistryError::NotAMember { .. }
                        | tenantry_registry::RegistryError::TenantBusy { .. }
                )
        )
    }
}

/// Completes journaled operation `op` that stopped with `e` (refused or
/// failed). If even that write fails, the operation stays unfinished in the
/// journal and the next open reports it: the right outcome for an operation
/// whose end could not be recorded.
pub(crate) async fn end_operation_with(
    registry: &tenantry_registry::Registry,
    op: i64,
    e: &FleetError,
) {
    use tenantry_registry::journal::OperationEnd;
    let end = if e.is_refusal() {
        OperationEnd::Refused
    } else {
        OperationEnd::Failed
    };
    let _ = registry.finish_operation(op, end, &e.to_string()).await;
}

/// Appends an operation's outcome to the audit log: `ok` describes a
/// success; a refusal is audited as refused; a failure as failed, and the
/// tenant's status becomes `failed` with the reason when `mark_failed`.
pub(crate) async fn audit_outcome<T>(
    registry: &tenantry_registry::Registry,
    slug: &str,
    action: &str,
    result: &Result<T, FleetError>,
    ok: impl FnOnce(&T) -> (String, tenantry_registry::AuditResult),
    mark_failed: bool,
) -> Result<(), FleetError> {
    use tenantry_registry::AuditResult;
    match result {
        Ok(value) => {
            let (detail, outcome) = ok(value);
            registry.audit(Some(slug), action, &detail, outcome).await?;
        }
        Err(e) if e.is_refusal() => {
            registry
                .audit(Some(slug), action, &e.to_string(), AuditResult::Refused)
                .await?;
        }
        Err(e) => {
            registry
                .audit(Some(slug), action, &e.to_string(), AuditResult::Failed)
                .await?;
            if mark_failed {
                registry
                    .record_check(&tenantry_registry::templates::TenantCheck::failed(
                        slug,
                        e.to_string(),
                    ))
                    .await?;
            }
        }
    }
    Ok(())
}

/// What the console shows for one tenant in the fleet list.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct TenantOverview {
    pub slug: String,
    pub display_name: String,
    #[ts(type = "\"postgres\" | \"mysql\" | \"sqlite\"")]
    pub engine: Engine,
    pub isolation: Isolation,
    /// Where the tenant lives, redacted (`postgres://app:•••@db1/acme`, a file path).
    pub location: String,
    pub template: String,
    pub template_version: String,
    #[ts(type = "\"unknown\" | \"synced\" | \"customized\" | \"outdated\" | \"failed\"")]
    pub status: SchemaStatus,
    /// `v1:<hex>`; absent when the schema could not be read.
    pub current_hash: Option<String>,
    pub table_count: u32,
    /// Why the status is what it is, in a sentence, when that needs saying.
    pub note: Option<String>,
}

/// Measures each version of a template by applying it to a scratch SQLite
/// file under `scratch_dir` and introspecting it with the engine code: the
/// reference hash is measured, never parsed from SQL.
pub async fn measure_sqlite_template(
    template: &Template,
    scratch_dir: &Path,
) -> Result<Vec<TemplateVersionHash>, FleetError> {
    let mut lineage = Vec::new();
    for version in &template.versions {
        let path = scratch_dir.join(format!("{}-{}.db", template.name, version.version));
        if !path.exists() {
            let migrations = template.migrations_through(&version.version)?;
            apply_sqlite_migrations(&path, &migrations).await?;
        }
        let snap = introspect_sqlite(&path).await?;
        lineage.push(TemplateVersionHash {
            version: version.version.to_owned(),
            hash: hash_schema(&snap).root,
        });
    }
    Ok(lineage)
}

async fn introspect_sqlite(path: &Path) -> Result<SchemaSnapshot, FleetError> {
    let url = ConnectionUrl::parse(&format!("sqlite:{}", path.display()))?;
    Ok(introspect(&url, None, Timeouts::default()).await?)
}

/// The status of a tenant whose schema was read as `snapshot`.
pub fn assess(
    snapshot: &SchemaSnapshot,
    tenant_version: &str,
    lineage: &[TemplateVersionHash],
) -> (SchemaStatus, String, Option<String>) {
    let hash = hash_schema(snapshot).root;
    if snapshot.is_empty() {
        return (
            SchemaStatus::Unknown,
            hash.to_string(),
            Some("schema is empty: the template has not been applied yet".into()),
        );
    }
    let status = classify(&hash, tenant_version, lineage);
    (
        status,
        hash.to_string(),
        explain(status, &hash, tenant_version, lineage),
    )
}

/// Why a classified hash has its status, in a sentence, when that needs saying.
pub(crate) fn explain(
    status: SchemaStatus,
    hash: &tenantry_model::DriftHash,
    tenant_version: &str,
    lineage: &[TemplateVersionHash],
) -> Option<String> {
    match status {
        SchemaStatus::Outdated => lineage.iter().find(|v| v.hash == *hash).map(|v| {
            format!(
                "matches template version {}, expected {tenant_version}",
                v.version
            )
        }),
        SchemaStatus::Customized => Some(format!(
            "matches no version of the template (expected {tenant_version})"
        )),
        SchemaStatus::Unknown => Some(
            match lineage
                .iter()
                .find(|v| v.version == tenant_version)
                .filter(|v| v.hash.format() != hash.format())
            {
                Some(v) => format!(
                    "template version {tenant_version} was measured with canonical format v{} and this hash is v{}: re-measure the template (`tenantry template remeasure`)",
                    v.hash.format().number(),
                    hash.format().number()
                ),
                None => format!("template version {tenant_version} is not known"),
            },
        ),
        SchemaStatus::Synced | SchemaStatus::Failed => None,
    }
}

/// `1 step`, `3 steps`: a count with its noun.
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod send_tests {
    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn fleet_futures_are_send() {
        let dir = std::path::Path::new("/nonexistent");
        let fleet = crate::demo::DemoFleet::new(dir);
        assert_send(&crate::apply_sqlite_migrations(dir, &[]));
        assert_send(&crate::measure_sqlite_template(
            &crate::demo::template(),
            dir,
        ));
        assert_send(&fleet.ensure());
        assert_send(&fleet.overview());
    }
}
