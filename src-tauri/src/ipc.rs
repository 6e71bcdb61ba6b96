//! What crosses into the webview when a command fails: a stable code the UI
//! branches on, and a message for people. Never a connection string.

use serde::Serialize;
use tenantry_fleet::FleetError;
use ts_rs::TS;

#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct IpcError {
    pub code: String,
    pub message: String,
}

impl From<tenantry_registry::RegistryError> for IpcError {
    fn from(e: tenantry_registry::RegistryError) -> Self {
        Self {
            code: e.code().to_owned(),
            message: e.to_string(),
        }
    }
}

impl From<FleetError> for IpcError {
    fn from(e: FleetError) -> Self {
        Self {
            code: e.code().to_owned(),
            message: e.to_string(),
        }
    }
}
