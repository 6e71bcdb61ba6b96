//! No decrypted connection string crosses into the webview: a tenant whose
//! URL carries a canary password is registered, then every command's IPC
//! payload is checked for it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{Manager, WebviewWindowBuilder};
use tenantry_app::AppState;
use tenantry_introspect::ConnectionUrl;
use tenantry_registry::NewTenant;
use tenantry_vault::MemoryKeyStore;

const CANARY: &str = "Canary-Ipc-0c61";

fn request(cmd: &str, body: serde_json::Value) -> InvokeRequest {
    InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().unwrap(),
        body: InvokeBody::Json(body),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    }
}

#[test]
fn no_command_payload_carries_a_password() {
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var("TENANTRY_DATA_DIR", dir.path());
    let app = tenantry_app::app(mock_builder())
        .build(tauri::generate_context!("tauri.conf.json", test = true))
        .unwrap();
    tenantry_app::open_fleet_with(&app, Box::<MemoryKeyStore>::default()).unwrap();

    let state = app.state::<AppState>();
    tauri::async_runtime::block_on(async {
        let vault = state.fleet.vault().await.unwrap();
        let db = dir.path().join("canary.db");
        std::fs::write(&db, b"").unwrap();
        state
            .fleet
            .registry()
            .add_tenant(
                &vault,
                NewTenant {
                    slug: "canary".into(),
                    display_name: "Canary".into(),
                    url: ConnectionUrl::parse(&format!(
                        "sqlite:{}?password={CANARY}",
                        db.display()
                    ))
                    .unwrap(),
                    schema: None,
                    template: None,
                    template_version: None,
                    domains: vec![],
                    notes: String::new(),
                },
            )
            .await
            .unwrap();
    });

    let main = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    let mut payloads = Vec::new();
    for (cmd, body) in [
        ("list_tenants", serde_json::json!({})),
        ("key_status", serde_json::json!({})),
        ("tenant_health", serde_json::json!({ "slug": "canary" })),
        ("tenant_health", serde_json::json!({ "slug": "acme" })),
        ("registry_tenants", serde_json::json!({})),
        ("tenant_detail", serde_json::json!({ "slug": "canary" })),
        ("tenant_diff", serde_json::json!({ "slug": "canary" })),
        ("reset_plan", serde_json::json!({ "slug": "canary" })),
        ("tenant_diff", serde_json::json!({ "slug": "initech" })),
        ("reset_plan", serde_json::json!({ "slug": "initech" })),
        ("list_templates", serde_json::json!({})),
    ] {
        let value: serde_json::Value = match get_ipc_response(&main, request(cmd, body)) {
            Ok(b) => b.deserialize().unwrap(),
            Err(e) => e,
        };
        payloads.push((cmd, value.to_string()));
    }
    let health = &payloads[2].1;
    assert!(health.contains("\"healthy\":true"), "{health}");
    assert!(
        health.contains("password=•••"),
        "the location is shown redacted: {health}"
    );
    for (cmd, p) in &payloads {
        assert!(!p.contains(CANARY), "{cmd} leaked the password: {p}");
    }
    // The demo tenants are registered and their drift and reset plans work.
    assert!(
        payloads[4].1.contains("\"slug\":\"initech\""),
        "{}",
        payloads[4].1
    );
    assert!(payloads[8].1.contains("tps_reports"), "{}", payloads[8].1);
    assert!(
        payloads[9].1.contains("\"presence\":\"added\""),
        "{}",
        payloads[9].1
    );
}
