//! The console's commands through Tauri's real IPC path, on the mock
//! runtime (no display needed), with the app's real config and capabilities.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::WebviewWindowBuilder;

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
fn the_main_window_lists_the_demo_fleet_and_other_windows_may_not() {
    let dir = tempfile::tempdir().unwrap();
    // Only this test in this binary touches the environment. No D-Bus
    // session: the test must never reach a developer's real keyring, and the
    // console must work (and say why) without one.
    std::env::set_var("TENANTRY_DATA_DIR", dir.path());
    std::env::set_var("TENANTRY_KEYRING_SERVICE", "dev.tenantry.test.ipc");
    std::env::set_var(
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/tenantry-test-bus",
    );
    std::env::remove_var("DISPLAY");
    let app = tenantry_app::app(mock_builder())
        .build(tauri::generate_context!("tauri.conf.json", test = true))
        .unwrap();
    tenantry_app::open_fleet(&app).unwrap();

    let main = WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    // The demo has its own registry and works without a keyring.
    let demo = serde_json::json!({ "workspace": "demo" });
    let own = serde_json::json!({ "workspace": "own" });
    let body = get_ipc_response(&main, request("registry_tenants", demo.clone())).unwrap();
    let rows: serde_json::Value = body.deserialize().unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 7);
    let status_of = |slug: &str| {
        rows.iter()
            .find(|r| r["slug"] == slug)
            .map(|r| r["status"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(status_of("acme"), "synced");
    assert_eq!(status_of("initech"), "customized");
    assert_eq!(status_of("hooli"), "outdated");
    assert_eq!(status_of("stark"), "unknown");
    assert!(dir.path().join("demo-fleet/tenants/acme.db").is_file());
    let health: serde_json::Value = get_ipc_response(
        &main,
        request(
            "tenant_health",
            serde_json::json!({ "workspace": "demo", "slug": "acme" }),
        ),
    )
    .unwrap()
    .deserialize()
    .unwrap();
    assert_eq!(health["healthy"], true, "{health}");

    let status: serde_json::Value = get_ipc_response(&main, request("key_status", own.clone()))
        .unwrap()
        .deserialize()
        .unwrap();
    assert_eq!(status["error_code"], "keyring_unavailable", "{status}");
    assert!(status["store"]
        .as_str()
        .unwrap()
        .starts_with("Secret Service"));

    // The user's registry is empty (the demo never goes into it), and
    // without a key a health check there says the keyring is the reason,
    // as a {code, message} error.
    let body = get_ipc_response(&main, request("registry_tenants", own)).unwrap();
    let rows: serde_json::Value = body.deserialize().unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 0, "{rows}");
    let err = get_ipc_response(
        &main,
        request(
            "tenant_health",
            serde_json::json!({ "workspace": "own", "slug": "acme" }),
        ),
    )
    .unwrap_err();
    assert_eq!(err["code"], "keyring_unavailable", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("Secret Service"),
        "{err}"
    );

    // Capabilities grant the console's commands to the main window only.
    let other = WebviewWindowBuilder::new(&app, "other", Default::default())
        .build()
        .unwrap();
    let denied = get_ipc_response(
        &other,
        request(
            "registry_tenants",
            serde_json::json!({ "workspace": "demo" }),
        ),
    );
    assert!(
        denied.is_err(),
        "a window other than main must not list tenants"
    );
}
