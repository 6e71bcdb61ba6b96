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
    let own = serde_json::json!({ "workspace": "own" });
    // The fleet screen's page: an empty query is the whole fleet, worst first.
    let page = |workspace: &str, query: serde_json::Value| -> serde_json::Value {
        get_ipc_response(
            &main,
            request(
                "registry_tenant_page",
                serde_json::json!({ "workspace": workspace, "query": query }),
            ),
        )
        .unwrap()
        .deserialize()
        .unwrap()
    };
    let first = page("demo", serde_json::json!({}));
    assert_eq!(first["total"], 7, "{first}");
    assert_eq!(first["counts"]["customized"], 2, "{first}");
    let rows = first["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 7);
    let customized = page(
        "demo",
        serde_json::json!({ "status": "customized", "sort": "slug", "limit": 1 }),
    );
    assert_eq!(
        (
            customized["total"].as_u64(),
            customized["rows"][0]["slug"].as_str()
        ),
        (Some(2), Some("initech")),
        "{customized}"
    );
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

    let status: serde_json::Value = get_ipc_response(&main, request("key_status", own))
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
    let mine = page("own", serde_json::json!({}));
    assert_eq!(mine["total"], 0, "{mine}");
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
            "registry_tenant_page",
            serde_json::json!({ "workspace": "demo", "query": {} }),
        ),
    );
    assert!(
        denied.is_err(),
        "a window other than main must not list tenants"
    );
}

/// Every command is registered three times (the handler, the build
/// script's app manifest and the main window's capability); a command
/// missing from one is refused at run time, so the lists must agree.
#[test]
fn every_command_is_registered_allowed_and_granted() {
    let read = |p: &str| {
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap()
    };
    let between = |text: &str, from: &str, to: &str| -> String {
        let start = text.find(from).unwrap() + from.len();
        text[start..][..text[start..].find(to).unwrap()].to_owned()
    };
    let mut handler: Vec<String> = between(&read("src/lib.rs"), "generate_handler![", "]")
        .split(',')
        .map(|c| c.trim().trim_start_matches("commands::").to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    let mut manifest: Vec<String> = between(&read("build.rs"), "commands(&[", "]")
        .split(',')
        .map(|c| c.trim().trim_matches('"').to_owned())
        .filter(|c| !c.is_empty())
        .collect();
    let capability: serde_json::Value =
        serde_json::from_str(&read("capabilities/main.json")).unwrap();
    let mut granted: Vec<String> = capability["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str()?.strip_prefix("allow-"))
        .map(|p| p.replace('-', "_"))
        .collect();
    handler.sort();
    manifest.sort();
    granted.sort();
    assert_eq!(handler, manifest, "src/lib.rs against build.rs");
    assert_eq!(
        handler, granted,
        "src/lib.rs against capabilities/main.json"
    );
}
