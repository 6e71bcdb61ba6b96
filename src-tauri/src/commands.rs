//! Tauri commands: one-line adapters over the engine crates.
//! Architecture invariant: no logic here beyond calling the engine and
//! mapping its error to [`IpcError`].

use tauri::ipc::Channel;
use tauri::State;
use tenantry_fleet::drift::TenantDiff;
use tenantry_fleet::repair::RepairOutcome;
use tenantry_fleet::reset::{ResetOutcome, ResetPlan};
use tenantry_fleet::scan::{ScanProgressEvent, ScanReport};
use tenantry_fleet::upgrade::UpgradeOutcome;
use tenantry_fleet::{KeyStatus, TemplateView, TenantDetail, TenantOverview};
use tenantry_registry::health::HealthReport;
use tenantry_registry::journal::Operation;
use tenantry_registry::TenantRecord;

use crate::ipc::IpcError;
use crate::AppState;

/// Every tenant of the fleet with its measured schema status.
#[tauri::command]
pub async fn list_tenants(state: State<'_, AppState>) -> Result<Vec<TenantOverview>, IpcError> {
    Ok(state.fleet.overview().await?)
}

/// A registered tenant's health check (connection info, connect, query,
/// server version, schema, cache).
#[tauri::command]
pub async fn tenant_health(
    state: State<'_, AppState>,
    slug: String,
) -> Result<HealthReport, IpcError> {
    Ok(state.fleet.health(&slug).await?)
}

/// Operations that started and never finished, with their backups.
#[tauri::command]
pub async fn unfinished_operations(state: State<'_, AppState>) -> Result<Vec<Operation>, IpcError> {
    Ok(state.fleet.unfinished_operations().await?)
}

/// Where the data key is kept, its id, or why it cannot be opened.
#[tauri::command]
pub async fn key_status(state: State<'_, AppState>) -> Result<KeyStatus, IpcError> {
    Ok(state.fleet.key_status().await)
}

/// Every registered tenant.
#[tauri::command]
pub async fn registry_tenants(state: State<'_, AppState>) -> Result<Vec<TenantRecord>, IpcError> {
    Ok(state.fleet.tenants().await?)
}

/// One tenant's record, recent operations and backups.
#[tauri::command]
pub async fn tenant_detail(
    state: State<'_, AppState>,
    slug: String,
) -> Result<TenantDetail, IpcError> {
    Ok(state.fleet.tenant_detail(&slug).await?)
}

/// Scans the fleet, streaming results to `on_progress` as batches finish.
#[tauri::command]
pub async fn scan_fleet(
    state: State<'_, AppState>,
    on_progress: Channel<ScanProgressEvent>,
) -> Result<ScanReport, IpcError> {
    Ok(state
        .fleet
        .scan(&|p| drop(on_progress.send(ScanProgressEvent::from(p))))
        .await?)
}

/// Cancels the running scan; false when none was running.
#[tauri::command]
pub fn cancel_scan(state: State<'_, AppState>) -> bool {
    state.fleet.cancel_scan()
}

/// A tenant's drift against its template, table by table.
#[tauri::command]
pub async fn tenant_diff(state: State<'_, AppState>, slug: String) -> Result<TenantDiff, IpcError> {
    Ok(state.fleet.diff(&slug).await?)
}

/// What a reset would drop (with row counts) and where the backup goes.
#[tauri::command]
pub async fn reset_plan(state: State<'_, AppState>, slug: String) -> Result<ResetPlan, IpcError> {
    Ok(state.fleet.reset_plan(&slug).await?)
}

/// Executes a confirmed reset; refused when the tenant changed since the plan.
#[tauri::command]
pub async fn reset_tenant(
    state: State<'_, AppState>,
    slug: String,
    planned_hash: String,
    confirmation: String,
) -> Result<ResetOutcome, IpcError> {
    Ok(state
        .fleet
        .reset(&slug, &planned_hash, &confirmation)
        .await?)
}

/// Creates the template objects the tenant is missing.
#[tauri::command]
pub async fn repair_tenant(
    state: State<'_, AppState>,
    slug: String,
) -> Result<RepairOutcome, IpcError> {
    Ok(state.fleet.repair(&slug).await?)
}

/// Accepts the tenant's current customisation as its baseline.
#[tauri::command]
pub async fn accept_customisation(
    state: State<'_, AppState>,
    slug: String,
    note: String,
) -> Result<String, IpcError> {
    Ok(state.fleet.accept(&slug, &note).await?)
}

/// Upgrades a tenant to a newer template version after a drift check.
#[tauri::command]
pub async fn upgrade_tenant(
    state: State<'_, AppState>,
    slug: String,
    to: String,
    allow_customized: bool,
) -> Result<UpgradeOutcome, IpcError> {
    Ok(state.fleet.upgrade(&slug, &to, allow_customized).await?)
}

/// Templates with their versions and measured hashes.
#[tauri::command]
pub async fn list_templates(state: State<'_, AppState>) -> Result<Vec<TemplateView>, IpcError> {
    Ok(state.fleet.templates().await?)
}

/// Writes the tenant's drift report (`markdown` or `html`) and returns its path.
#[tauri::command]
pub async fn export_diff_report(
    state: State<'_, AppState>,
    slug: String,
    format: String,
) -> Result<String, IpcError> {
    Ok(state.fleet.export_diff(&slug, &format).await?)
}

/// Re-encrypts every connection string under a new data key; returns the new key id.
#[tauri::command]
pub async fn rotate_key(state: State<'_, AppState>) -> Result<String, IpcError> {
    Ok(state.fleet.rotate_key().await?.0)
}
