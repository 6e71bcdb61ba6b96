//! A team's registry from the console: chosen in Settings (its URL kept in
//! the OS keyring, here an in-memory one), opened at the next start, and a
//! chosen registry that cannot be opened never keeps the console from
//! starting.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use secrecy::SecretString;
use tenantry_fleet::{Fleet, RegistryForm, RegistrySource, Workspace};
use tenantry_tests::PgDatabase;
use tenantry_vault::{KeyEntry, KeyStore, KeyStoreError, MemoryKeyStore};

const CANARY: &str = "Canary-Team-5d0c";

/// One in-memory keyring shared by several starts of the console.
#[derive(Clone, Default)]
struct Keys(Arc<MemoryKeyStore>);

impl KeyStore for Keys {
    fn load_text(&self, entry: &KeyEntry) -> Result<Option<SecretString>, KeyStoreError> {
        self.0.load_text(entry)
    }
    fn save_text(&self, entry: &KeyEntry, text: &SecretString) -> Result<(), KeyStoreError> {
        self.0.save_text(entry, text)
    }
    fn delete(&self, entry: &KeyEntry) -> Result<(), KeyStoreError> {
        self.0.delete(entry)
    }
    fn describe(&self) -> String {
        "memory".into()
    }
}

fn form(url: &str, password: Option<&str>) -> RegistryForm {
    serde_json::from_value(serde_json::json!({ "url": url, "password": password })).unwrap()
}

#[tokio::test]
async fn the_console_switches_to_a_team_registry_and_back() {
    let dir = tempfile::tempdir().unwrap();
    // Settings keeps its choice in one store; each registry's data key is
    // in the store that registry records (here another one), so the
    // choice is found before any registry is open and wherever it points.
    let keys = Keys::default();
    let registry_keys = Keys::default();
    let db = PgDatabase::create().await;
    let start = |keys: Keys| {
        let dir = dir.path().to_owned();
        let registry_keys = registry_keys.clone();
        async move {
            Fleet::open_at(&dir, Some(Box::new(keys)), |_| Box::new(registry_keys))
                .await
                .unwrap()
        }
    };

    let fleet = start(keys.clone()).await;
    let own = fleet.key_status(Workspace::Own).await.unwrap();
    assert_eq!(own.registry_backend, "sqlite");
    assert_eq!(own.registry_source, RegistrySource::Default);

    // Not a PostgreSQL URL, or a server that is not there: refused, and
    // nothing is saved.
    for (url, password, code) in [
        ("sqlite:/tmp/x.db", None, "invalid_input"),
        (
            "postgres://nobody@127.0.0.1:1/tenantry",
            Some(CANARY),
            "registry_open_failed",
        ),
    ] {
        let err = fleet
            .choose_registry(Some(form(url, password)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert!(!err.to_string().contains(CANARY), "{err}");
    }
    assert!(keys
        .load_text(&KeyEntry::console_registry())
        .unwrap()
        .is_none());

    // The team's (empty) database: made a registry, chosen, audited here.
    // The trusting test server ignores the password; it still travels
    // apart from the URL and is shown nowhere.
    let url = db.url();
    let shown = fleet
        .choose_registry(Some(form(&url, Some(CANARY))))
        .await
        .unwrap();
    assert!(
        shown.starts_with("postgres://") && !shown.contains(CANARY),
        "{shown}"
    );
    let saved = keys
        .load_text(&KeyEntry::console_registry())
        .unwrap()
        .unwrap();
    assert!(secrecy::ExposeSecret::expose_secret(&saved).contains(CANARY));
    assert!(registry_keys
        .load_text(&KeyEntry::console_registry())
        .unwrap()
        .is_none());
    let log = fleet
        .registry(Workspace::Own)
        .unwrap()
        .audit_log(None, 10)
        .await
        .unwrap();
    assert!(log
        .iter()
        .any(|e| e.action == "console.registry" && !e.detail.contains(CANARY)));
    drop(fleet);

    // The next start opens the team registry.
    let fleet = start(keys.clone()).await;
    let team = fleet.key_status(Workspace::Own).await.unwrap();
    assert_eq!(team.registry_backend, "postgres");
    assert_eq!(team.registry_source, RegistrySource::Settings);
    assert!(team.registry_problem.is_none());
    assert!(!team.registry.contains(CANARY), "{}", team.registry);
    assert!(team.key_id.is_some(), "{team:?}");
    assert_eq!(fleet.tenants(Workspace::Demo).await.unwrap().len(), 7);

    // The team's server is gone: the console still starts, on its own
    // registry, and says why.
    drop(fleet);
    keys.save_text(
        &KeyEntry::console_registry(),
        &SecretString::from(format!("postgres://nobody:{CANARY}@127.0.0.1:1/tenantry")),
    )
    .unwrap();
    let fleet = start(keys.clone()).await;
    let fallback = fleet.key_status(Workspace::Own).await.unwrap();
    assert_eq!(fallback.registry_backend, "sqlite");
    let problem = fallback.registry_problem.unwrap();
    assert!(problem.contains("could not be opened"), "{problem}");
    assert!(!problem.contains(CANARY), "{problem}");

    // And back to this computer's own registry.
    fleet.choose_registry(None).await.unwrap();
    assert!(keys
        .load_text(&KeyEntry::console_registry())
        .unwrap()
        .is_none());
    drop(fleet);
    let fleet = start(keys).await;
    let back = fleet.key_status(Workspace::Own).await.unwrap();
    assert_eq!(back.registry_source, RegistrySource::Default);
    assert!(back.registry_problem.is_none());
}
