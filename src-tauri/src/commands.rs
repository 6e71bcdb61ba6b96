//! Tauri commands: one-line adapters over the engine crates.
//! Architecture invariant: no logic here beyond calling the engine and
//! mapping its error to [`IpcError`].

use tauri::ipc::Channel;
use tauri::State;
use tenantry_fleet::capture::CaptureReport;
use tenantry_fleet::drift::TenantDiff;
use tenantry_fleet::guard::GuardReport;
use tenantry_fleet::repair::RepairOutcome;
use tenantry_fleet::reset::{ResetOutcome, ResetPlan};
use tenantry_fleet::scan::{ScanProgressEvent, ScanReport};
use tenantry_fleet::sync::{KeepChoice, SyncOutcome, SyncPlan};
use tenantry_fleet::upgrade::UpgradeOutcome;
use tenantry_fleet::{
    Access, CaptureForm, ImportForm, KeyStatus, RegistryForm, SyncRequest, TemplateFolderForm,
    TemplateView, TenantDetail, TenantForm, Workspace,
};
use tenantry_registry::health::HealthReport;
use tenantry_registry::history::ScanSummary;
use tenantry_registry::import::ImportReport;
use tenantry_registry::journal::{JournalEvent, Operation};
use tenantry_registry::{TenantPage, TenantQuery, TenantRecord};

use crate::ipc::IpcError;
use crate::AppState;

/// A registered tenant's health check (connection info, connect, query,
/// server version, schema, cache).
#[tauri::command]
pub async fn tenant_health(
    state: State<'_, AppState>,
    workspace: Workspace,
    slug: String,
) -> Result<HealthReport, IpcError> {
    Ok(state.fleet.health(workspace, &slug).await?)
}

/// Operations that started and never finished, with their backups.
#[tauri::command]
pub async fn unfinished_operations(
    state: State<'_, AppState>,
    workspace: Workspace,
) -> Result<Vec<Operation>, IpcError> {
    Ok(state.fleet.unfinished_operations(workspace).await?)
}

/// Where the data key is kept, its id, or why it cannot be opened.
#[tauri::command]
pub async fn key_status(
    state: State<'_, AppState>,
    workspace: Workspace,
) -> Result<KeyStatus, IpcError> {
    Ok(state.fleet.key_status(workspace).await?)
}

/// Chooses the registry the console opens from its next start: a team's
/// PostgreSQL registry, or (`None`) this computer's own file.
#[tauri::command]
pub async fn choose_registry(
    state: State<'_, AppState>,
    form: Option<RegistryForm>,
) -> Result<String, IpcError> {
    Ok(state.fleet.choose_registry(form).await?)
}

/// Restarts the console (to open the registry just chosen).
#[tauri::command]
pub fn restart_console<R: tauri::Runtime>(app: tauri::AppHandle<R>) {
    app.restart();
}

/// Who the console acts for on a shared registry and what they may do.
#[tauri::command]
pub async fn access(state: State<'_, AppState>, workspace: Workspace) -> Result<Access, IpcError> {
    Ok(state.fleet.access(workspace).await?)
}

/// One page of the fleet screen (the registry filters, counts and sorts).
#[tauri::command]
pub async fn registry_tenant_page(
    state: State<'_, AppState>,
    workspace: Workspace,
    query: TenantQuery,
) -> Result<TenantPage, IpcError> {
    Ok(state.fleet.tenant_page(workspace, &query).await?)
}

/// One tenant's record, recent operations and backups.
#[tauri::command]
pub async fn tenant_detail(
    state: State<'_, AppState>,
    workspace: Workspace,
    slug: String,
) -> Result<TenantDetail, IpcError> {
    Ok(state.fleet.tenant_detail(workspace, &slug).await?)
}

/// Scans the fleet, streaming results to `on_progress` as batches finish.
#[tauri::command]
pub async fn scan_fleet(
    state: State<'_, AppState>,
    workspace: Workspace,
    on_progress: Channel<ScanProgressEvent>,
) -> Result<ScanReport, IpcError> {
    Ok(state
        .fleet
        .scan(workspace, &|p| {
            drop(on_progress.send(ScanProgressEvent::from(p)))
        })
        .await?)
}

/// Cancels the running scan; false when none was running.
#[tauri::command]
pub fn cancel_scan(state: State<'_, AppState>, workspace: Workspace) -> bool {
    state.fleet.cancel_scan(workspace)
}

/// A tenant's drift against its template, table by table.
#[tauri::command]
pub async fn tenant_diff(
    state: State<'_, AppState>,
    workspace: Workspace,
    slug: String,
) -> Result<TenantDiff, IpcError> {
    Ok(state.fleet.diff(workspace, &slug).await?)
}

/// What a reset would drop (with row counts) and where the backup goes.
#[tauri::command]
pub async fn reset_plan(
    state: State<'_, AppState>,
    workspace: Workspace,
    slug: String,
) -> Result<ResetPlan, IpcError> {
    Ok(state.fleet.reset_plan(workspace, &slug).await?)
}

/// Executes a confirmed reset; refused when the tenant changed since the plan.
#[tauri::command]
pub async fn reset_tenant(
    state: State<'_, AppState>,
    workspace: Workspace,
    slug: String,
    planned_hash: String,
    confirmation: String,
    on_step: Channel<JournalEvent>,
) -> Result<ResetOutcome, IpcError> {
    Ok(state
        .fleet
        .reset(workspace, &slug, &planned_hash, &confirmation, &|e| {
            drop(on_step.send(e.clone()))
        })
        .await?)
}

/// The data-preserving sync's steps, each classified, with its counts.
#[tauri::command]
pub async fn sync_plan(
    state: State<'_, AppState>,
    workspace: Workspace,
    slug: String,
    keep: KeepChoice,
) -> Result<SyncPlan, IpcError> {
    Ok(state.fleet.sync_plan(workspace, &slug, &keep).await?)
}

/// Applies a confirmed sync; refused when the tenant changed since the plan.
#[tauri::command]
pub async fn sync_tenant(
    state: State<'_, AppState>,
    workspace: Workspace,
    request: SyncRequest,
    on_step: Channel<JournalEvent>,
) -> Result<SyncOutcome, IpcError> {
    Ok(state
        .fleet
        .sync(workspace, &request, &|e| drop(on_step.send(e.clone())))
        .await?)
}

/// Creates the template objects the tenant is missing.
#[tauri::command]
pub async fn repair_tenant(
    state: State<'_, AppState>,
    workspace: Workspace,
    slug: String,
) -> Result<RepairOutcome, IpcError> {
    Ok(state.fleet.repair(workspace, &slug).await?)
}

/// Accepts the tenant's current customisation as its baseline.
#[tauri::command]
pub async fn accept_customisation(
    state: State<'_, AppState>,
    workspace: Workspace,
    slug: String,
    note: String,
) -> Result<String, IpcError> {
    Ok(state.fleet.accept(workspace, &slug, &note).await?)
}

/// Upgrades a tenant to a newer template version after a drift check.
#[tauri::command]
pub async fn upgrade_tenant(
    state: State<'_, AppState>,
    workspace: Workspace,
    slug: String,
    to: String,
    allow_customized: bool,
) -> Result<UpgradeOutcome, IpcError> {
    Ok(state
        .fleet
        .upgrade(workspace, &slug, &to, allow_customized)
        .await?)
}

/// Templates with their versions and measured hashes.
#[tauri::command]
pub async fn list_templates(
    state: State<'_, AppState>,
    workspace: Workspace,
) -> Result<Vec<TemplateView>, IpcError> {
    Ok(state.fleet.templates(workspace).await?)
}

/// Writes the tenant's drift report (`markdown` or `html`) and returns its path.
#[tauri::command]
pub async fn export_diff_report(
    state: State<'_, AppState>,
    workspace: Workspace,
    slug: String,
    format: String,
    path: Option<String>,
) -> Result<String, IpcError> {
    Ok(state
        .fleet
        .export_diff(workspace, &slug, &format, path.as_deref())
        .await?)
}

/// Re-encrypts every connection string under a new data key; returns the new key id.
#[tauri::command]
pub async fn rotate_key(
    state: State<'_, AppState>,
    workspace: Workspace,
) -> Result<String, IpcError> {
    Ok(state.fleet.rotate_key(workspace).await?.0)
}

/// Checks a connection typed in the *Add tenant* form; nothing is stored.
#[tauri::command]
pub async fn test_connection(
    state: State<'_, AppState>,
    form: TenantForm,
) -> Result<HealthReport, IpcError> {
    Ok(state.fleet.test_connection(&form).await?)
}

/// Captures a reference database as a template version (the user's
/// registry only).
#[tauri::command]
pub async fn capture_template(
    state: State<'_, AppState>,
    workspace: Workspace,
    form: CaptureForm,
) -> Result<CaptureReport, IpcError> {
    Ok(state.fleet.capture_template(workspace, &form).await?)
}

/// Registers a tenant from the *Add tenant* form (the user's registry only).
#[tauri::command]
pub async fn add_tenant(
    state: State<'_, AppState>,
    workspace: Workspace,
    form: TenantForm,
) -> Result<TenantRecord, IpcError> {
    Ok(state.fleet.add_tenant(workspace, &form).await?)
}

/// The last scans' whole-fleet status counts, oldest first (the fleet chart).
#[tauri::command]
pub async fn scan_history(
    state: State<'_, AppState>,
    workspace: Workspace,
    limit: u32,
) -> Result<Vec<ScanSummary>, IpcError> {
    Ok(state.fleet.scan_history(workspace, limit).await?)
}

/// Imports tenants (file, pasted text or a central query), or previews it.
#[tauri::command]
pub async fn import_tenants(
    state: State<'_, AppState>,
    workspace: Workspace,
    form: ImportForm,
) -> Result<ImportReport, IpcError> {
    Ok(state.fleet.import_tenants(workspace, &form).await?)
}

/// Measures, lints and stores a folder of migrations as a template.
#[tauri::command]
pub async fn add_template(
    state: State<'_, AppState>,
    workspace: Workspace,
    form: TemplateFolderForm,
) -> Result<TemplateView, IpcError> {
    Ok(state.fleet.add_template(workspace, &form).await?)
}

/// Runs the schema guard on one tenant.
#[tauri::command]
pub async fn guard_tenant(
    state: State<'_, AppState>,
    workspace: Workspace,
    slug: String,
) -> Result<GuardReport, IpcError> {
    Ok(state.fleet.guard(workspace, &slug).await?)
}

/// Runs the guard on every tenant with a template, streaming each report.
#[tauri::command]
pub async fn guard_fleet(
    state: State<'_, AppState>,
    workspace: Workspace,
    on_report: Channel<GuardReport>,
) -> Result<Vec<GuardReport>, IpcError> {
    Ok(state
        .fleet
        .guard_fleet(workspace, &|r| drop(on_report.send(r.clone())))
        .await?)
}
