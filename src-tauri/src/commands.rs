//! Tauri commands: one-line adapters over the engine crates.
//! Architecture invariant: no logic here beyond calling the engine and
//! mapping its error to [`IpcError`].

use tauri::State;
use tenantry_fleet::{KeyStatus, TenantOverview};
use tenantry_registry::health::HealthReport;

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

/// Where the data key is kept, its id, or why it cannot be opened.
#[tauri::command]
pub async fn key_status(state: State<'_, AppState>) -> Result<KeyStatus, IpcError> {
    Ok(state.fleet.key_status().await)
}
