//! Tauri commands: one-line adapters over the engine crates.
//! Architecture invariant: no logic here beyond calling the engine and
//! mapping its error to [`IpcError`].

use tauri::State;
use tenantry_fleet::TenantOverview;

use crate::ipc::IpcError;
use crate::AppState;

/// Every tenant of the fleet with its measured schema status.
#[tauri::command]
pub async fn list_tenants(state: State<'_, AppState>) -> Result<Vec<TenantOverview>, IpcError> {
    Ok(state.fleet.overview().await?)
}
