//! The Tenantry desktop console. The engine lives in `crates/`; this crate
//! wires it to a window.

pub mod commands;
pub mod ipc;

use std::path::PathBuf;

use tauri::{Manager, Runtime};
use tenantry_fleet::Fleet;
use tenantry_vault::{KeyStore, KeyStoreKind, OsKeyring, DEFAULT_SERVICE};

/// State shared by the commands.
pub struct AppState {
    pub fleet: Fleet,
}

/// The data directory: `TENANTRY_DATA_DIR` when set (tests, portable use),
/// otherwise the platform's app data directory.
fn data_dir<R: Runtime>(app: &tauri::App<R>) -> Result<PathBuf, Box<dyn std::error::Error>> {
    if let Some(dir) = std::env::var_os("TENANTRY_DATA_DIR") {
        return Ok(PathBuf::from(dir));
    }
    Ok(app.path().app_data_dir()?)
}

/// Registers the commands on a builder and opens the fleet at start-up;
/// shared by `run` and the tests, which use Tauri's mock runtime.
pub fn app<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder
        .plugin(tauri_plugin_dialog::init())
        .invoke_handler(tauri::generate_handler![
            commands::tenant_health,
            commands::key_status,
            commands::choose_registry,
            commands::restart_console,
            commands::access,
            commands::unfinished_operations,
            commands::registry_tenant_page,
            commands::tenant_detail,
            commands::scan_fleet,
            commands::cancel_scan,
            commands::tenant_diff,
            commands::reset_plan,
            commands::reset_tenant,
            commands::sync_plan,
            commands::sync_tenant,
            commands::repair_tenant,
            commands::accept_customisation,
            commands::upgrade_tenant,
            commands::list_templates,
            commands::export_diff_report,
            commands::rotate_key,
            commands::test_connection,
            commands::add_tenant,
            commands::capture_template,
            commands::import_tenants,
            commands::add_template,
            commands::guard_tenant,
            commands::guard_fleet,
            commands::scan_history
        ])
        .setup(|app| open_fleet(app))
}

/// Opens the fleet (the user's registry, and the demo fleet in its own)
/// and puts the state the commands need under management. Tauri runs it as
/// the setup hook (when the event loop starts); the mock-runtime tests call
/// it directly. The data key lives in the OS key store the registry records
/// (the platform's default for a new one), under `TENANTRY_KEYRING_SERVICE`
/// when set (tests) or Tenantry's own service.
pub fn open_fleet<R: Runtime>(app: &tauri::App<R>) -> Result<(), Box<dyn std::error::Error>> {
    let service =
        std::env::var("TENANTRY_KEYRING_SERVICE").unwrap_or_else(|_| DEFAULT_SERVICE.to_owned());
    let dir = data_dir(app)?;
    // Settings' registry choice lives in the platform's default store
    // whichever registry (and key store) it chooses.
    let settings: Box<dyn KeyStore> = Box::new(OsKeyring::new(service.clone()));
    let fleet = tauri::async_runtime::block_on(Fleet::open_at(&dir, Some(settings), |recorded| {
        os_keys(service, recorded)
    }))?;
    manage(app, &dir, fleet);
    Ok(())
}

/// The OS store the registry records; one this system lacks is reported
/// when the vault opens (the default store is asked, and refuses the key).
fn os_keys(service: String, recorded: Option<KeyStoreKind>) -> Box<dyn KeyStore> {
    let kind = recorded.unwrap_or_else(KeyStoreKind::platform_default);
    match OsKeyring::with_kind(service.clone(), kind) {
        Ok(k) => Box::new(k),
        Err(e) => {
            tracing::warn!(code = e.code(), "{e}");
            Box::new(OsKeyring::new(service))
        }
    }
}

/// [`open_fleet`] with a given key store (the tests pass an in-memory one).
pub fn open_fleet_with<R: Runtime>(
    app: &tauri::App<R>,
    keys: Box<dyn KeyStore>,
) -> Result<(), Box<dyn std::error::Error>> {
    let dir = data_dir(app)?;
    let fleet = tauri::async_runtime::block_on(Fleet::open(&dir, keys))?;
    manage(app, &dir, fleet);
    Ok(())
}

fn manage<R: Runtime>(app: &tauri::App<R>, dir: &std::path::Path, fleet: Fleet) {
    tracing::info!(dir = %dir.display(), "fleet ready");
    app.manage(AppState { fleet });
}

pub fn run() {
    // Before any key or connection string is in memory: no core dumps.
    tenantry_vault::harden_process();
    tracing_subscriber::fmt()
        .with_env_filter(
            tenantry_fleet::alert::SILENCED_LOG_TARGETS.iter().fold(
                tracing_subscriber::EnvFilter::try_from_env("TENANTRY_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                |filter, target| match format!("{target}=off").parse() {
                    Ok(off) => filter.add_directive(off),
                    Err(_) => filter,
                },
            ),
        )
        .init();
    let result = app(tauri::Builder::default()).run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("tenantry: the console could not start: {e}");
        std::process::exit(1);
    }
}
