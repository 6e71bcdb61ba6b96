//! No decrypted connection string crosses into the webview: a tenant whose
//! URL carries a canary password is registered, then every command's IPC
//! payload is checked for it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{Manager, WebviewWindowBuilder};
use tenantry_app::AppState;
use tenantry_fleet::Workspace;
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
        let vault = state.fleet.vault(Workspace::Own).await.unwrap();
        let db = dir.path().join("canary.db");
        std::fs::write(&db, b"").unwrap();
        state
            .fleet
            .registry(Workspace::Own)
            .unwrap()
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
    let pg_form = serde_json::json!({
        "slug": "pg", "display_name": "PG", "url": "postgres://postgres@127.0.0.1:5432/postgres",
        "password": format!("{CANARY} @:/?#%&"), "schema": null, "template": null, "template_version": null,
    });
    let sqlite_form = serde_json::json!({
        "slug": "typed", "display_name": "Typed",
        "url": format!("sqlite:{}", dir.path().join("canary.db").display()),
        "password": CANARY, "schema": null, "template": null, "template_version": null,
    });
    let bad_url = serde_json::json!({
        "slug": "bad", "display_name": "Bad", "url": format!("postgres://app:{CANARY}@/nohost"),
        "password": null, "schema": null, "template": null, "template_version": null,
    });
    for (cmd, body) in [
        ("key_status", serde_json::json!({ "workspace": "own" })),
        (
            "tenant_health",
            serde_json::json!({ "workspace": "own", "slug": "canary" }),
        ),
        (
            "tenant_health",
            serde_json::json!({ "workspace": "demo", "slug": "acme" }),
        ),
        (
            "registry_tenant_page",
            serde_json::json!({ "workspace": "demo", "query": {} }),
        ),
        (
            "registry_tenant_page",
            serde_json::json!({ "workspace": "own", "query": {} }),
        ),
        (
            "tenant_detail",
            serde_json::json!({ "workspace": "own", "slug": "canary" }),
        ),
        (
            "tenant_diff",
            serde_json::json!({ "workspace": "own", "slug": "canary" }),
        ),
        (
            "reset_plan",
            serde_json::json!({ "workspace": "own", "slug": "canary" }),
        ),
        (
            "tenant_diff",
            serde_json::json!({ "workspace": "demo", "slug": "initech" }),
        ),
        (
            "reset_plan",
            serde_json::json!({ "workspace": "demo", "slug": "initech" }),
        ),
        ("list_templates", serde_json::json!({ "workspace": "demo" })),
        ("test_connection", serde_json::json!({ "form": pg_form })),
        (
            "test_connection",
            serde_json::json!({ "form": sqlite_form }),
        ),
        (
            "add_tenant",
            serde_json::json!({ "workspace": "own", "form": sqlite_form }),
        ),
        ("test_connection", serde_json::json!({ "form": bad_url })),
        (
            "add_tenant",
            serde_json::json!({ "workspace": "demo", "form": pg_form }),
        ),
        (
            "add_tenant",
            serde_json::json!({ "workspace": "own", "form": pg_form }),
        ),
        (
            "tenant_detail",
            serde_json::json!({ "workspace": "own", "slug": "pg" }),
        ),
        (
            "tenant_health",
            serde_json::json!({ "workspace": "own", "slug": "pg" }),
        ),
        (
            "capture_template",
            serde_json::json!({ "workspace": "own", "form": {
                "url": "postgres://postgres@127.0.0.1:5432/postgres", "password": format!("{CANARY} @:/?#%&"),
                "schema": "no_such_schema_canary_test", "name": "captured", "version": "1" } }),
        ),
        (
            "capture_template",
            serde_json::json!({ "workspace": "own", "form": {
                "url": format!("postgres://app:{CANARY}@/nohost"), "password": null,
                "schema": null, "name": "captured", "version": "1" } }),
        ),
        (
            "capture_template",
            serde_json::json!({ "workspace": "demo", "form": {
                "url": format!("sqlite:{}", dir.path().join("canary.db").display()), "password": CANARY,
                "schema": null, "name": "captured", "version": "1" } }),
        ),
    ] {
        let value: serde_json::Value = match get_ipc_response(&main, request(cmd, body)) {
            Ok(b) => b.deserialize().unwrap(),
            Err(e) => e,
        };
        payloads.push((cmd, value.to_string()));
    }
    let health = &payloads[1].1;
    assert!(health.contains("\"healthy\":true"), "{health}");
    assert!(
        health.contains("password=•••"),
        "the location is shown redacted: {health}"
    );
    for (cmd, p) in &payloads {
        assert!(!p.contains(CANARY), "{cmd} leaked the password: {p}");
    }
    // Captures: a missing reference schema, a URL with no host, the demo:
    // each a typed refusal without the password.
    let n = payloads.len();
    assert!(
        payloads[n - 3].1.contains("schema_not_found"),
        "{}",
        payloads[n - 3].1
    );
    assert!(
        payloads[n - 2].1.contains("invalid_url"),
        "{}",
        payloads[n - 2].1
    );
    assert!(
        payloads[n - 1].1.contains("demo_read_only"),
        "{}",
        payloads[n - 1].1
    );
    // The demo tenants are in the demo registry and their drift and reset
    // plans work.
    assert!(
        payloads[3].1.contains("\"slug\":\"initech\""),
        "{}",
        payloads[3].1
    );
    assert!(payloads[8].1.contains("tps_reports"), "{}", payloads[8].1);
    assert!(
        payloads[9].1.contains("\"presence\":\"added\""),
        "{}",
        payloads[9].1
    );
    // The form's password reached the server (trust auth accepts any) and
    // came back redacted; a password for a SQLite file, a URL with no host
    // and an addition to the demo are refused without echoing it.
    assert!(
        payloads[11].1.contains("\"healthy\":true"),
        "{}",
        payloads[11].1
    );
    assert!(
        payloads[11].1.contains("postgres:•••@"),
        "{}",
        payloads[11].1
    );
    assert!(payloads[12].1.contains("no password"), "{}", payloads[12].1);
    assert!(payloads[13].1.contains("\"code\""), "{}", payloads[13].1);
    assert!(payloads[14].1.contains("invalid_url"), "{}", payloads[14].1);
    assert!(
        payloads[15].1.contains("demo_read_only"),
        "{}",
        payloads[15].1
    );
    assert!(
        payloads[16].1.contains("\"slug\":\"pg\""),
        "{}",
        payloads[16].1
    );
    assert!(
        payloads[18].1.contains("\"healthy\":true"),
        "{}",
        payloads[18].1
    );
}
