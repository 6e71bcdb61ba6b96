fn main() {
    tauri_build::try_build(tauri_build::Attributes::new().app_manifest(
        tauri_build::AppManifest::new().commands(&["list_tenants", "tenant_health", "key_status"]),
    ))
    .expect("tauri build step failed (is ui/dist built? run `npm --prefix ui run build`)");
}
