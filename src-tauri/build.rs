fn main() {
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(
        tauri_build::AppManifest::new().commands(&[
            "tenant_health",
            "key_status",
            "unfinished_operations",
            "registry_tenants",
            "tenant_detail",
            "scan_fleet",
            "cancel_scan",
            "tenant_diff",
            "reset_plan",
            "reset_tenant",
            "sync_plan",
            "sync_tenant",
            "repair_tenant",
            "accept_customisation",
            "upgrade_tenant",
            "list_templates",
            "export_diff_report",
            "rotate_key",
            "test_connection",
            "add_tenant",
            "scan_history",
        ]),
    ))
    .expect("tauri build step failed (is ui/dist built? run `npm --prefix ui run build`)");
}
