//! The registry with an in-memory key store and real SQLite/PostgreSQL
//! tenants: add, list, remove, domains, audit, encryption at rest, key
//! rotation, imports, pools and health checks.
//!
//! The whole suite runs on a SQLite registry, and again on a PostgreSQL
//! registry (a scratch database per test) with
//! `TENANTRY_TEST_REGISTRY=postgres`; `scripts/test.sh` runs both. The
//! few tests about the registry's file itself run on SQLite only.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::time::Duration;

use tenantry_introspect::{ConnectionUrl, Timeouts};
use tenantry_registry::health::check_tenant;
use tenantry_registry::import::{parse_csv, rows_from_query};
use tenantry_registry::pools::{PoolSettings, TenantPools};
use tenantry_registry::{AuditResult, Backend, NewTenant, Registry, RegistryPlace, Role};
use tenantry_tests::PgDatabase;
use tenantry_vault::{KeyStoreError, MemoryKeyStore};

const CANARY: &str = "Canary-Reg-91d2";

/// Whether this run's registries are PostgreSQL databases.
fn on_postgres() -> bool {
    std::env::var("TENANTRY_TEST_REGISTRY").is_ok_and(|v| v == "postgres")
}

struct Fixture {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    registry: Registry,
    keys: MemoryKeyStore,
    /// Where the registry is: its file, or its scratch database's URL.
    place: String,
    /// Declared last: dropped (and the database with it) after the
    /// registry's pool.
    _database: Option<PgDatabase>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let (place, database) = if on_postgres() {
        let db = PgDatabase::create().await;
        (db.url(), Some(db))
    } else {
        (path.join("registry.db").display().to_string(), None)
    };
    let registry = Registry::create_at(RegistryPlace::parse(&place).unwrap())
        .await
        .unwrap();
    Fixture {
        _dir: dir,
        dir: path,
        registry,
        keys: MemoryKeyStore::default(),
        place,
        _database: database,
    }
}

impl Fixture {
    /// The registry opened again, as another process would.
    async fn reopen(&self) -> Registry {
        Registry::open_at(RegistryPlace::parse(&self.place).unwrap())
            .await
            .unwrap()
    }

    /// A connection straight to the registry's database, behind
    /// Tenantry's back.
    async fn raw(&self) -> sqlx::AnyConnection {
        raw_connection(&self.place).await
    }
}

/// See [`Fixture::raw`].
async fn raw_connection(place: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    let url = if on_postgres() {
        place.to_owned()
    } else {
        format!("sqlite://{place}")
    };
    <sqlx::AnyConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap()
}

fn sqlite_tenant_file(dir: &Path, name: &str) -> String {
    let path = dir.join(format!("{name}.db"));
    std::fs::write(&path, b"").unwrap();
    format!("sqlite:{}", path.display())
}

fn new_tenant(slug: &str, url: &str) -> NewTenant {
    NewTenant {
        slug: slug.into(),
        display_name: format!("Tenant {slug}"),
        url: ConnectionUrl::parse(url).unwrap(),
        schema: None,
        template: Some("saas".into()),
        template_version: Some("1.1.0".into()),
        domains: vec![format!("{slug}.example.com")],
        notes: String::new(),
    }
}

fn pg_url_with_canary(slug: &str) -> String {
    format!("postgres://app:{CANARY}@db1.internal:5432/{slug}")
}

#[tokio::test]
async fn tenants_are_added_listed_and_removed_with_an_audit_trail() {
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    let acme = f
        .registry
        .add_tenant(&vault, new_tenant("acme", &pg_url_with_canary("acme")))
        .await
        .unwrap();
    assert_eq!(acme.location, "postgres://app:•••@db1.internal:5432/acme");
    assert_eq!(acme.domains, ["acme.example.com"]);
    f.registry
        .add_tenant(&vault, new_tenant("globex", &pg_url_with_canary("globex")))
        .await
        .unwrap();
    let all = f.registry.list_tenants().await.unwrap();
    assert_eq!(
        all.iter().map(|t| t.slug.as_str()).collect::<Vec<_>>(),
        ["acme", "globex"]
    );
    assert!(!serde_json::to_string(&all).unwrap().contains(CANARY));
    // Where each lives, beside its slug.
    assert_eq!(all[0].place(), "database acme");
    let mut t42 = new_tenant("t42", &pg_url_with_canary("fleet"));
    t42.schema = Some("tenant_42".into());
    t42.domains.clear();
    let t42 = f.registry.add_tenant(&vault, t42).await.unwrap();
    assert_eq!(t42.place(), "schema tenant_42");
    f.registry.remove_tenant("t42").await.unwrap();
    let file = sqlite_tenant_file(&f.dir, "x");
    let mut lite = new_tenant("lite", &file);
    lite.domains.clear();
    let lite = f.registry.add_tenant(&vault, lite).await.unwrap();
    assert_eq!(lite.place(), "file x.db");
    f.registry.remove_tenant("lite").await.unwrap();

    let url = f.registry.connection(&vault, "acme").await.unwrap();
    assert_eq!(url.redacted(), "postgres://app:•••@db1.internal:5432/acme");

    f.registry.remove_tenant("globex").await.unwrap();
    assert_eq!(
        f.registry.remove_tenant("globex").await.unwrap_err().code(),
        "tenant_not_found"
    );
    let log = f.registry.audit_log(None, 50).await.unwrap();
    let actions: Vec<_> = log.iter().map(|e| (e.action.as_str(), e.result)).collect();
    assert!(actions.contains(&("tenant.add", AuditResult::Ok)));
    assert!(actions.contains(&("tenant.remove", AuditResult::Ok)));
    assert!(actions.contains(&("tenant.remove", AuditResult::Refused)));
    assert!(log.iter().all(|e| !e.detail.contains(CANARY)));
    // Each removal wrote exactly one row, in the removal's own
    // transaction, and the refused one removed nothing and wrote only its
    // refusal.
    let removals: Vec<_> = log
        .iter()
        .filter(|e| e.action == "tenant.remove")
        .map(|e| (e.tenant_slug.as_deref(), e.result))
        .collect();
    assert_eq!(
        removals,
        [
            (Some("globex"), AuditResult::Refused),
            (Some("globex"), AuditResult::Ok),
            (Some("lite"), AuditResult::Ok),
            (Some("t42"), AuditResult::Ok),
        ]
    );
    assert!(f.registry.verify_audit().await.unwrap().broken.is_none());
}

#[tokio::test]
async fn duplicates_taken_domains_and_hostile_input_are_refused_and_nothing_is_lost() {
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    f.registry
        .add_tenant(&vault, new_tenant("acme", &pg_url_with_canary("acme")))
        .await
        .unwrap();

    let dup = f
        .registry
        .add_tenant(&vault, new_tenant("acme", &pg_url_with_canary("x")))
        .await
        .unwrap_err();
    assert_eq!(dup.code(), "duplicate_slug");

    let mut taken = new_tenant("other", &pg_url_with_canary("other"));
    taken.domains = vec!["ACME.example.com.".into()];
    let err = f.registry.add_tenant(&vault, taken).await.unwrap_err();
    assert_eq!(err.code(), "domain_taken");
    assert!(
        err.to_string().contains("belongs to tenant `acme`"),
        "{err}"
    );
    let err = f.registry.add_domain("acme", "acme.example.com").await;
    assert!(err.is_ok(), "re-adding one's own domain is a no-op");

    for slug in [
        "Acme",
        "ac'me",
        "acme;--",
        "ac\0me",
        "аcme",
        &"a".repeat(64),
    ] {
        let err = f
            .registry
            .add_tenant(&vault, new_tenant(slug, &pg_url_with_canary("y")))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_slug", "{slug:?}: {err}");
    }
    let mut bad_domain = new_tenant("fine", &pg_url_with_canary("fine"));
    bad_domain.domains = vec!["аcme.example.com".into()];
    assert_eq!(
        f.registry
            .add_tenant(&vault, bad_domain)
            .await
            .unwrap_err()
            .code(),
        "invalid_domain"
    );

    let all = f.registry.list_tenants().await.unwrap();
    assert_eq!(all.len(), 1, "refused input must not add anything");
    assert_eq!(all[0].domains, ["acme.example.com"]);
    let refused = f.registry.audit_log(None, 100).await.unwrap();
    assert!(
        refused
            .iter()
            .filter(|e| e.result == AuditResult::Refused)
            .count()
            >= 8
    );
}

#[tokio::test]
async fn connection_strings_are_encrypted_at_rest_and_bound_to_their_tenant() {
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    f.registry
        .add_tenant(&vault, new_tenant("acme", &pg_url_with_canary("acme")))
        .await
        .unwrap();
    f.registry
        .add_tenant(&vault, new_tenant("globex", &pg_url_with_canary("globex")))
        .await
        .unwrap();
    f.registry.close().await;
    for entry in std::fs::read_dir(&f.dir).unwrap() {
        // SQLite may still be removing its -wal/-shm files as the pool
        // closes: a file gone before it is read holds nothing on disk.
        let bytes = match std::fs::read(entry.unwrap().path()) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("reading the registry directory: {e}"),
        };
        assert!(
            !String::from_utf8_lossy(&bytes).contains(CANARY),
            "plaintext password on disk"
        );
    }
    let mut conn = raw_connection(&f.place).await;
    if on_postgres() {
        // Every row of every table, as PostgreSQL prints it.
        for table in ["tenants", "audit_log", "vault_meta", "registry_identity"] {
            let text: Option<String> = sqlx::query_scalar(&format!(
                "SELECT CAST(string_agg(CAST(x AS text), ' ') AS text) FROM {table} x"
            ))
            .fetch_one(&mut conn)
            .await
            .unwrap();
            assert!(!text.unwrap_or_default().contains(CANARY), "{table}");
        }
    }

    // Copy acme's ciphertext onto globex: it must not decrypt there.
    sqlx::query("UPDATE tenants SET connection_ct = (SELECT connection_ct FROM tenants WHERE slug = 'acme') WHERE slug = 'globex'")
        .execute(&mut conn)
        .await
        .unwrap();
    let registry = Registry::open_at(RegistryPlace::parse(&f.place).unwrap())
        .await
        .unwrap();
    let vault = registry.open_vault(&f.keys).await.unwrap();
    let err = registry.connection(&vault, "globex").await.unwrap_err();
    assert_eq!(err.code(), "ciphertext_not_authentic", "{err}");
    assert!(registry.connection(&vault, "acme").await.is_ok());
}

#[tokio::test]
async fn key_rotation_re_encrypts_every_tenant() {
    let f = fixture().await;
    let old = f.registry.open_vault(&f.keys).await.unwrap();
    for slug in ["a1", "b2", "c3"] {
        f.registry
            .add_tenant(&old, new_tenant(slug, &pg_url_with_canary(slug)))
            .await
            .unwrap();
    }
    let (new, n) = f.registry.rotate_key(&f.keys, &old).await.unwrap();
    assert_eq!(n, 3);
    assert_ne!(new.key_id(), old.key_id());
    for slug in ["a1", "b2", "c3"] {
        assert!(f.registry.connection(&new, slug).await.is_ok());
        assert_eq!(
            f.registry.connection(&old, slug).await.unwrap_err().code(),
            "key_mismatch"
        );
    }
    // A fresh open finds the rotated key in the store.
    let reopened = f.registry.open_vault(&f.keys).await.unwrap();
    assert_eq!(reopened.key_id(), new.key_id());
}

#[tokio::test]
async fn keyring_failures_are_typed_and_change_nothing() {
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    f.registry
        .add_tenant(&vault, new_tenant("acme", &pg_url_with_canary("acme")))
        .await
        .unwrap();
    f.keys.fail_with(Some(KeyStoreError::AccessDenied {
        reason: "collection is locked".into(),
    }));
    let err = f.registry.open_vault(&f.keys).await.unwrap_err();
    assert_eq!(err.code(), "keyring_access_denied");
    f.keys.fail_with(None);
    assert_eq!(
        f.registry.open_vault(&f.keys).await.unwrap().key_id(),
        vault.key_id()
    );

    // An empty keyring beside existing ciphertexts: refused, no new key.
    let empty = MemoryKeyStore::default();
    let err = f.registry.open_vault(&empty).await.unwrap_err();
    assert_eq!(err.code(), "key_missing");
    assert!(f.registry.connection(&vault, "acme").await.is_ok());
}

#[tokio::test]
async fn imports_are_all_or_nothing_and_say_which_row_failed() {
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    let a = sqlite_tenant_file(&f.dir, "a");
    let b = sqlite_tenant_file(&f.dir, "b");
    let bad = format!("slug,name,url,domains\nt-a,A,{a},a.example.com\nt b,B,{b},b.example.com\n");
    let err = f
        .registry
        .import(&vault, parse_csv(&bad).unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("row 3"), "{err}");
    assert!(
        f.registry.list_tenants().await.unwrap().is_empty(),
        "nothing may be half-imported"
    );

    let good = format!("slug,name,url,domains\nt-a,A,{a},a.example.com\nt-b,B,{b},b.example.com\n");
    let report = f
        .registry
        .import(&vault, parse_csv(&good).unwrap())
        .await
        .unwrap();
    assert_eq!(report.added, ["t-a", "t-b"]);
}

/// The tenant list refreshed from a source that changed between two runs:
/// `add` refuses existing slugs, `skip-existing` leaves them, `upsert`
/// updates only what differs, a dry run writes nothing, and a tenant the
/// source dropped is reported, never removed.
#[tokio::test]
async fn import_modes_refresh_the_tenant_list_from_a_changing_source() {
    use tenantry_registry::import::ImportMode;
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    let first = format!(
        "slug,name,url,domains\npgt_0001,One,{},one.example.com\npgt_0002,Two,{},\npgt_0003,Three,{},\n",
        pg_url_with_canary("pgt_0001"),
        pg_url_with_canary("pgt_0002"),
        pg_url_with_canary("pgt_0003")
    );
    let report = f
        .registry
        .import(&vault, parse_csv(&first).unwrap())
        .await
        .unwrap();
    assert_eq!(report.added, ["pgt_0001", "pgt_0002", "pgt_0003"]);
    // The same source again, as `add`: refused whole.
    let err = f
        .registry
        .import(&vault, parse_csv(&first).unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("pgt_0001"), "{err}");

    // The source changed: 0001 renamed, 0002 moved to another database
    // (its password too), 0003 gone, 0004 new.
    let moved = "postgres://app:New-Pw-77@db2/pgt_0002";
    let second = format!(
        "slug,name,url,domains\npgt_0001,One Ltd,{},one.example.com\npgt_0002,,{moved},\npgt_0004,Four,{},\n",
        pg_url_with_canary("pgt_0001"),
        pg_url_with_canary("pgt_0004")
    );
    let before = f.registry.list_tenants().await.unwrap();
    let audit_before = f.registry.audit_log(None, 1000).await.unwrap().len();
    let dry = f
        .registry
        .import_as(
            &vault,
            parse_csv(&second).unwrap(),
            ImportMode::Upsert,
            true,
        )
        .await
        .unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.added, ["pgt_0004"]);
    assert_eq!(
        dry.changed
            .iter()
            .map(|c| (c.slug.as_str(), c.fields.join(",")))
            .collect::<Vec<_>>(),
        [
            ("pgt_0001", "display_name".to_owned()),
            ("pgt_0002", "url".to_owned())
        ]
    );
    assert_eq!(dry.missing_from_source, ["pgt_0003"]);
    assert_eq!(
        format!("{:?}", f.registry.list_tenants().await.unwrap()),
        format!("{before:?}"),
        "a dry run writes nothing"
    );
    assert_eq!(
        f.registry.audit_log(None, 1000).await.unwrap().len(),
        audit_before
    );

    let skip = f
        .registry
        .import_as(
            &vault,
            parse_csv(&second).unwrap(),
            ImportMode::SkipExisting,
            false,
        )
        .await
        .unwrap();
    assert_eq!(skip.added, ["pgt_0004"]);
    assert_eq!(skip.skipped, ["pgt_0001", "pgt_0002"]);
    assert_eq!(
        f.registry.tenant("pgt_0001").await.unwrap().display_name,
        "One"
    );

    let up = f
        .registry
        .import_as(
            &vault,
            parse_csv(&second).unwrap(),
            ImportMode::Upsert,
            false,
        )
        .await
        .unwrap();
    assert!(up.added.is_empty());
    assert_eq!(up.unchanged, ["pgt_0004"]);
    assert_eq!(up.changed.len(), 2);
    assert_eq!(up.missing_from_source, ["pgt_0003"]);
    let one = f.registry.tenant("pgt_0001").await.unwrap();
    assert_eq!(one.display_name, "One Ltd");
    assert_eq!(
        one.domains,
        ["one.example.com"],
        "an empty field keeps its value"
    );
    let two = f.registry.tenant("pgt_0002").await.unwrap();
    assert_eq!(two.display_name, "Two", "an empty name keeps the old one");
    assert_eq!(two.location, "postgres://app:•••@db2/pgt_0002");
    assert_eq!(two.place(), "database pgt_0002");
    assert_eq!(two.status.as_str(), "unknown");
    let url = f.registry.connection(&vault, "pgt_0002").await.unwrap();
    assert_eq!(url.redacted(), "postgres://app:•••@db2/pgt_0002");
    assert!(f.registry.tenant("pgt_0003").await.is_ok(), "never removed");
    // Nothing secret in the audit log: neither the old password nor the new.
    let audit = f.registry.audit_log(None, 1000).await.unwrap();
    let text = format!("{audit:?}");
    assert!(
        !text.contains(CANARY) && !text.contains("New-Pw-77"),
        "{text}"
    );
    assert!(text.contains("pgt_0002 (url)"), "{text}");

    // A slug listed twice is refused, naming both rows.
    let twice = format!(
        "slug,url\npgt_0005,{}\npgt_0005,{}\n",
        pg_url_with_canary("a"),
        pg_url_with_canary("b")
    );
    let err = f
        .registry
        .import_as(
            &vault,
            parse_csv(&twice).unwrap(),
            ImportMode::Upsert,
            false,
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("row 3") && err.to_string().contains("row 2"),
        "{err}"
    );
    // Another engine under an existing slug is refused.
    let engine = format!("slug,url\npgt_0001,{}\n", sqlite_tenant_file(&f.dir, "x"));
    let err = f
        .registry
        .import_as(
            &vault,
            parse_csv(&engine).unwrap(),
            ImportMode::Upsert,
            false,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("engine does not change"), "{err}");
}

/// Issue 18: two people edit the same tenant of a shared registry. Each
/// import row names the revision it was made from; the second to arrive is
/// refused (whole, nothing written) instead of silently undoing the first,
/// and applies once made on top of the new revision. Two such imports at
/// the same moment, from two handles: exactly one applies. A scan is not
/// an edit; an upgrade of the template version is.
#[tokio::test]
async fn a_stale_edit_of_a_tenant_is_refused_not_lost() {
    use tenantry_model::SchemaStatus;
    use tenantry_registry::import::ImportMode;
    use tenantry_registry::templates::TenantCheck;
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    let url = pg_url_with_canary("pgt_0001");
    f.registry
        .import(
            &vault,
            parse_csv(&format!("slug,name,url\npgt_0001,One,{url}\n")).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(f.registry.tenant("pgt_0001").await.unwrap().revision, 1);
    let upsert = |csv: String| {
        let registry = &f.registry;
        let vault = &vault;
        async move {
            registry
                .import_as(vault, parse_csv(&csv).unwrap(), ImportMode::Upsert, false)
                .await
        }
    };

    // Alice renames it, from revision 1.
    upsert(format!(
        "slug,name,url,revision\npgt_0001,One Ltd,{url},1\n"
    ))
    .await
    .unwrap();
    assert_eq!(f.registry.tenant("pgt_0001").await.unwrap().revision, 2);
    // Bob's note, also made from revision 1, would put the old name back
    // with his row: refused, naming both revisions, and nothing written.
    let audit_before = f.registry.audit_log(None, 1000).await.unwrap().len();
    let err = upsert(format!(
        "slug,name,url,notes,revision\npgt_0001,One,{url},VIP,1\n"
    ))
    .await
    .unwrap_err();
    assert_eq!(err.code(), "tenant_changed", "{err}");
    let shown = err.to_string();
    assert!(
        shown.contains("row 2") && shown.contains("revision 1") && shown.contains("revision 2"),
        "{shown}"
    );
    assert!(!shown.contains(CANARY), "{shown}");
    let now = f.registry.tenant("pgt_0001").await.unwrap();
    assert_eq!(
        (now.display_name.as_str(), now.notes.as_str(), now.revision),
        ("One Ltd", "", 2)
    );
    // The refusal is audited; nothing else was.
    let audit = f.registry.audit_log(None, 1000).await.unwrap();
    assert_eq!(audit.len(), audit_before + 1);
    assert_eq!(audit[0].result, AuditResult::Refused, "{:?}", audit[0]);
    // Made again on top of revision 2, it applies and keeps Alice's name.
    upsert(format!("slug,url,notes,revision\npgt_0001,{url},VIP,2\n"))
        .await
        .unwrap();
    let now = f.registry.tenant("pgt_0001").await.unwrap();
    assert_eq!(
        (now.display_name.as_str(), now.notes.as_str(), now.revision),
        ("One Ltd", "VIP", 3)
    );
    // A row that changes nothing makes no revision; neither does a scan.
    let same = upsert(format!("slug,url,revision\npgt_0001,{url},3\n"))
        .await
        .unwrap();
    assert_eq!(same.unchanged, ["pgt_0001"]);
    f.registry
        .record_checks(&[TenantCheck {
            slug: "pgt_0001".into(),
            status: SchemaStatus::Failed,
            reason: Some("connection refused".into()),
            hash: None,
            provisioned: false,
            fingerprint: None,
        }])
        .await
        .unwrap();
    assert_eq!(f.registry.tenant("pgt_0001").await.unwrap().revision, 3);
    // An upgrade moves the template version: a new revision, so an edit
    // made before cannot put the old version back.
    f.registry
        .set_template_version("pgt_0001", "2.0.0")
        .await
        .unwrap();
    assert_eq!(f.registry.tenant("pgt_0001").await.unwrap().revision, 4);
    let err = upsert(format!(
        "slug,url,template_version,revision\npgt_0001,{url},1.0.0,3\n"
    ))
    .await
    .unwrap_err();
    assert_eq!(err.code(), "tenant_changed", "{err}");

    // Two consoles at the same moment, both from revision 4: one applies,
    // the other is refused.
    let other = f.reopen().await;
    let other_vault = other.open_vault(&f.keys).await.unwrap();
    let a = format!("slug,url,notes,revision\npgt_0001,{url},from A,4\n");
    let b = format!("slug,url,notes,revision\npgt_0001,{url},from B,4\n");
    let (ra, rb) = tokio::join!(
        f.registry
            .import_as(&vault, parse_csv(&a).unwrap(), ImportMode::Upsert, false),
        other.import_as(
            &other_vault,
            parse_csv(&b).unwrap(),
            ImportMode::Upsert,
            false
        ),
    );
    assert_eq!(
        [ra.is_ok(), rb.is_ok()].iter().filter(|ok| **ok).count(),
        1,
        "{ra:?} {rb:?}"
    );
    let now = f.registry.tenant("pgt_0001").await.unwrap();
    assert_eq!(now.revision, 5);
    assert_eq!(now.notes, if ra.is_ok() { "from A" } else { "from B" });
    other.close().await;

    // A revision of a tenant no longer registered, or not a revision.
    let err = upsert(format!(
        "slug,url,revision\npgt_0009,{},2\n",
        pg_url_with_canary("pgt_0009")
    ))
    .await
    .unwrap_err();
    assert_eq!(err.code(), "tenant_gone", "{err}");
    for bad in ["0", "x", "-1", "1.5"] {
        let Err(err) = parse_csv(&format!("slug,url,revision\npgt_0001,{url},{bad}\n")) else {
            panic!("{bad} was taken for a revision");
        };
        assert!(err.to_string().contains("`revision`"), "{bad}: {err}");
    }
    assert!(f.registry.tenant("pgt_0009").await.is_err());
}

#[tokio::test]
async fn import_from_the_central_tenants_table_with_a_pattern() {
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    let central = f.dir.join("central.db");
    tenantry_tests::sqlite_file(
        &central,
        "CREATE TABLE tenants (id INTEGER PRIMARY KEY, slug TEXT, name TEXT, db_name TEXT, active INT);
         INSERT INTO tenants (slug, name, db_name, active) VALUES
           ('north', 'North Ltd', 'north db', 1), ('south', 'South plc', 'south', 1), ('gone', 'Gone', 'gone', 0);",
    )
    .await;
    let source = ConnectionUrl::parse(&format!("sqlite:{}", central.display())).unwrap();
    let pattern = format!("postgres://app:{CANARY}@db1/{{db_name}}");
    let rows = rows_from_query(
        &source,
        "SELECT slug, name, db_name FROM tenants WHERE active = 1",
        &pattern,
        Timeouts::default(),
    )
    .await
    .unwrap();
    f.registry.import(&vault, rows).await.unwrap();
    let north = f.registry.tenant("north").await.unwrap();
    assert_eq!(north.display_name, "North Ltd");
    assert_eq!(north.location, "postgres://app:•••@db1/north%20db");
    assert!(f.registry.tenant("gone").await.is_err());
}

#[tokio::test]
async fn the_pool_cache_is_bounded_counts_hits_and_expires_idle_pools() {
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<ConnectionUrl> = (0..3)
        .map(|i| ConnectionUrl::parse(&sqlite_tenant_file(dir.path(), &format!("p{i}"))).unwrap())
        .collect();
    let pools = TenantPools::new(PoolSettings {
        max_pools: 2,
        idle_expiry: Duration::from_millis(300),
        ..Default::default()
    });
    pools.get(1, &urls[0]).await.unwrap();
    pools.get(1, &urls[0]).await.unwrap();
    pools.get(2, &urls[1]).await.unwrap();
    pools.get(3, &urls[2]).await.unwrap();
    let s = pools.stats().await;
    assert_eq!((s.hits, s.misses, s.evictions, s.open_pools), (1, 3, 1, 2));
    tokio::time::sleep(Duration::from_millis(400)).await;
    pools.get(3, &urls[2]).await.unwrap();
    let s = pools.stats().await;
    assert_eq!(s.open_pools, 1, "idle pools expire: {s:?}");
}

#[tokio::test]
async fn health_of_a_sqlite_tenant_and_of_a_broken_one() {
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    let url = sqlite_tenant_file(&f.dir, "healthy");
    f.registry
        .add_tenant(&vault, new_tenant("healthy", &url))
        .await
        .unwrap();
    let gone = sqlite_tenant_file(&f.dir, "gone");
    f.registry
        .add_tenant(&vault, new_tenant("gone", &gone))
        .await
        .unwrap();
    std::fs::remove_file(f.dir.join("gone.db")).unwrap();

    let pools = TenantPools::new(PoolSettings::default());
    let report = check_tenant(&f.registry, Ok(&vault), &pools, "healthy")
        .await
        .unwrap();
    assert!(report.healthy, "{report:#?}");
    let names: Vec<_> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "connection info",
            "connect",
            "query",
            "server version",
            "connection cache"
        ]
    );
    assert!(report.server_version.unwrap().starts_with("SQLite 3."));

    let report = check_tenant(&f.registry, Ok(&vault), &pools, "gone")
        .await
        .unwrap();
    assert!(!report.healthy);
    assert!(
        report
            .checks
            .iter()
            .any(|c| !c.ok && c.detail.contains("does not exist")),
        "{report:#?}"
    );

    let locked = tenantry_registry::RegistryError::KeyStore(KeyStoreError::AccessDenied {
        reason: "locked".into(),
    });
    let report = check_tenant(&f.registry, Err(&locked), &pools, "healthy")
        .await
        .unwrap();
    assert!(!report.healthy);
    assert!(report.checks[0].detail.contains("unlock the keyring"));
}

/// Issue 13, item 1: every registry has its own keyring entry, so rotating
/// one registry (or a copy of its file) never takes another's key.
#[tokio::test]
async fn rotating_one_registry_or_a_copy_leaves_every_other_registry_openable() {
    if on_postgres() {
        return; // about the registry's file: SQLite only
    }
    let keys = MemoryKeyStore::default();
    let dir = tempfile::tempdir().unwrap();
    let mut registries = Vec::new();
    for name in ["a", "b"] {
        let r = Registry::create(&dir.path().join(format!("{name}.db")))
            .await
            .unwrap();
        let v = r.open_vault(&keys).await.unwrap();
        r.add_tenant(&v, new_tenant(name, &pg_url_with_canary(name)))
            .await
            .unwrap();
        registries.push(r);
    }
    assert_ne!(
        registries[0].registry_id().await.unwrap(),
        registries[1].registry_id().await.unwrap()
    );
    // A byte copy of registry a, as an operator's backup would be.
    sqlx::query(&format!(
        "VACUUM INTO '{}'",
        dir.path().join("a-copy.db").display()
    ))
    .execute(&mut sqlx_conn(&dir.path().join("a.db")).await)
    .await
    .unwrap();
    let copy = Registry::open(&dir.path().join("a-copy.db")).await.unwrap();
    let old = copy.open_vault(&keys).await.unwrap();
    copy.rotate_key(&keys, &old).await.unwrap();
    let old_b = registries[1].open_vault(&keys).await.unwrap();
    registries[1].rotate_key(&keys, &old_b).await.unwrap();
    // Both originals still open and decrypt; the copy too, under its new key.
    for (r, slug) in registries.iter().zip(["a", "b"]) {
        let v = r.open_vault(&keys).await.unwrap();
        assert!(r.connection(&v, slug).await.is_ok(), "{slug}");
    }
    let v = copy.open_vault(&keys).await.unwrap();
    assert!(copy.connection(&v, "a").await.is_ok());
    assert!(keys
        .entries()
        .iter()
        .all(|e| e.starts_with("registry-") && e.contains("/key-")));
}

async fn sqlx_conn(path: &Path) -> sqlx::SqliteConnection {
    <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap()
}

/// Issue 13, item 1: a registry whose key is in the shared entry of older
/// versions gets it copied into its own entry, recorded in the audit log.
#[tokio::test]
async fn a_key_in_the_shared_legacy_entry_is_migrated_to_the_registry_entry() {
    use tenantry_vault::{KeyEntry, KeyStore};
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    f.registry
        .add_tenant(&vault, new_tenant("acme", &pg_url_with_canary("acme")))
        .await
        .unwrap();
    let own = f.registry.key_entry(vault.key_id()).await.unwrap();
    let key = f.keys.load(&own).unwrap().unwrap();
    f.keys.delete(&own).unwrap();
    f.keys
        .save(&KeyEntry::legacy(KeyEntry::LEGACY_CURRENT), &key)
        .unwrap();
    let reopened = f.registry.open_vault(&f.keys).await.unwrap();
    assert_eq!(reopened.key_id(), vault.key_id());
    assert!(f.keys.load(&own).unwrap().is_some());
    assert!(f.registry.connection(&reopened, "acme").await.is_ok());
    let log = f.registry.audit_log(None, 5).await.unwrap();
    assert!(log.iter().any(|e| e.action == "key.migrate"), "{log:?}");
}

/// Issue 13, item 15: a missing or truncated registry is an error, never a
/// new empty registry; one removed while open refuses further writes.
#[tokio::test]
async fn a_missing_truncated_or_removed_registry_is_an_error_not_a_new_one() {
    if on_postgres() {
        return; // about the registry's file: SQLite only
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let err = Registry::open(&path).await.err().unwrap();
    assert_eq!(err.code(), "registry_missing", "{err}");
    assert!(!path.exists(), "open must not create a registry");

    let r = Registry::create(&path).await.unwrap();
    let keys = MemoryKeyStore::default();
    let v = r.open_vault(&keys).await.unwrap();
    r.add_tenant(&v, new_tenant("acme", &pg_url_with_canary("acme")))
        .await
        .unwrap();
    r.close().await;
    // Let the closed pool's last checkpoint reach the file first: the last
    // connection to close folds the WAL in and removes it (a loaded
    // machine can take longer than a fixed pause; a WAL left beside the
    // garbage below would still hold the registry's pages).
    let wal = format!("{}-wal", path.display());
    for _ in 0..100 {
        if !std::path::Path::new(&wal).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !std::path::Path::new(&wal).exists(),
        "the closed registry's WAL must be folded in and removed"
    );

    std::fs::write(&path, b"").unwrap();
    for attempt in [Registry::open(&path).await, Registry::create(&path).await] {
        let err = attempt.err().unwrap();
        assert_eq!(err.code(), "registry_damaged", "{err}");
    }
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    // Garbage in place of a registry is damaged too, and left as it is.
    std::fs::write(&path, b"not a registry at all, just some bytes").unwrap();
    let err = Registry::open(&path).await.err().unwrap();
    assert_eq!(err.code(), "registry_damaged", "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"not a registry at all, just some bytes"
    );

    std::fs::remove_file(&path).unwrap();
    let r = Registry::create(&path).await.unwrap();
    let v = r.open_vault(&keys).await.unwrap();
    std::fs::remove_file(&path).unwrap();
    for side in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{side}", path.display()));
    }
    let err = r
        .add_tenant(&v, new_tenant("globex", &pg_url_with_canary("globex")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "registry_vanished", "{err}");
    assert!(!path.exists(), "nothing may recreate the removed registry");
}

/// A PostgreSQL database is a registry only once it is made one: opening
/// a database without the registry's tables is `registry_missing` (and
/// makes nothing), creating makes it, and a second creation opens it. The
/// URL's password is in no error, and not in the registry's own rows.
#[tokio::test]
async fn a_postgres_database_is_a_registry_only_once_made_one() {
    let db = PgDatabase::create().await;
    let canary = "Canary-RegUrl-7c1e";
    sqlx::raw_sql(&format!(
        "CREATE ROLE {role} LOGIN PASSWORD '{canary}'; GRANT ALL ON DATABASE {name} TO {role};
         ALTER DATABASE {name} OWNER TO {role}",
        role = tenantry_tests::pg_quote(&format!("{}_owner", db.name)),
        name = tenantry_tests::pg_quote(&db.name),
    ))
    .execute(&mut db.connect().await)
    .await
    .unwrap();
    let server = tenantry_tests::pg_server_url();
    let authority = server.trim_start_matches("postgres://");
    let host = authority.rsplit('@').next().unwrap();
    let url = format!("postgres://{}_owner:{canary}@{host}/{}", db.name, db.name);

    let err = Registry::open_at(RegistryPlace::parse(&url).unwrap())
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), "registry_missing", "{err}");
    assert!(!err.to_string().contains(canary), "{err}");
    assert!(!format!("{err:?}").contains(canary));

    let made = Registry::create_at(RegistryPlace::parse(&url).unwrap())
        .await
        .unwrap();
    assert_eq!(made.backend(), Backend::Postgres);
    assert!(!made.shown().contains(canary), "{}", made.shown());
    assert!(!format!("{:?}", made.place()).contains(canary));
    let keys = MemoryKeyStore::default();
    let vault = made.open_vault(&keys).await.unwrap();
    made.add_tenant(&vault, new_tenant("acme", &pg_url_with_canary("acme")))
        .await
        .unwrap();
    let again = Registry::create_at(RegistryPlace::parse(&url).unwrap())
        .await
        .unwrap();
    assert_eq!(again.list_tenants().await.unwrap().len(), 1);
    assert_eq!(
        again.registry_id().await.unwrap(),
        made.registry_id().await.unwrap()
    );
    let log = again.audit_log(None, 50).await.unwrap();
    assert_eq!(
        log.iter().filter(|e| e.action == "registry.create").count(),
        1,
        "{log:?}"
    );
    assert!(log.iter().all(|e| !e.detail.contains(canary)), "{log:?}");

    // A server that is not there is an open failure that names no
    // password (this server trusts local connections, so a wrong password
    // would open).
    let wrong = format!(
        "postgres://nobody:Canary-Wrong-55ab@127.0.0.1:1/{}",
        db.name
    );
    let err = Registry::open_at(RegistryPlace::parse(&wrong).unwrap())
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), "registry_open_failed", "{err}");
    assert!(!err.to_string().contains("Canary-Wrong-55ab"), "{err}");
    made.close().await;
    again.close().await;
    let mut admin =
        <sqlx::PgConnection as sqlx::Connection>::connect(&format!("{server}/postgres"))
            .await
            .unwrap();
    for statement in [
        format!(
            "DROP DATABASE {} WITH (FORCE)",
            tenantry_tests::pg_quote(&db.name)
        ),
        format!(
            "DROP ROLE {}",
            tenantry_tests::pg_quote(&format!("{}_owner", db.name))
        ),
    ] {
        sqlx::raw_sql(&statement).execute(&mut admin).await.unwrap();
    }
}

/// Issue 13, item 16: writers in separate connections (as two CLI processes
/// are) wait for each other and all succeed, even when one holds the write
/// lock for seconds.
#[tokio::test]
async fn concurrent_writers_wait_for_each_other_and_all_succeed() {
    let f = fixture().await;
    let first = &f.registry;
    let vault = first.open_vault(&f.keys).await.unwrap();
    let second = f.reopen().await;

    // Another process holds the write lock for two seconds.
    let mut holder = f.raw().await;
    match first.backend() {
        Backend::Sqlite => {
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut holder)
                .await
                .unwrap();
        }
        Backend::Postgres => {
            sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
            let _: i32 = sqlx::query_scalar("SELECT 1 FROM (SELECT pg_advisory_xact_lock($1)) l")
                .bind(tenantry_registry::REGISTRY_WRITE_LOCK)
                .fetch_one(&mut holder)
                .await
                .unwrap();
        }
    }
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    });
    let writes = (0..20).map(|i| {
        let (r, v) = if i % 2 == 0 {
            (first, &vault)
        } else {
            (&second, &vault)
        };
        let slug = format!("t{i}");
        async move {
            r.add_tenant(v, new_tenant(&slug, &pg_url_with_canary(&slug)))
                .await
        }
    });
    let results = futures_util::future::join_all(writes).await;
    release.await.unwrap();
    for r in &results {
        assert!(r.is_ok(), "{:?}", r.as_ref().err().map(ToString::to_string));
    }
    assert_eq!(second.list_tenants().await.unwrap().len(), 20);
}

/// Issue 13, item 17: every row is chained to the one before; an edit or a
/// deletion made behind Tenantry's back, straight in the SQLite file, is
/// found by `verify_audit`, at the row where it happened.
#[tokio::test]
async fn the_audit_chain_detects_edits_and_deletions_in_the_file() {
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    for slug in ["a1", "b2", "c3"] {
        f.registry
            .add_tenant(&vault, new_tenant(slug, &pg_url_with_canary(slug)))
            .await
            .unwrap();
    }
    let ok = f.registry.verify_audit().await.unwrap();
    assert!(ok.broken.is_none(), "{ok:?}");
    assert!(ok.chained >= 4, "{ok:?}");
    let log = f.registry.audit_log(None, 50).await.unwrap();
    assert!(log.iter().all(|e| e.host.is_some()));
    let target = log
        .iter()
        .find(|e| e.tenant_slug.as_deref() == Some("b2"))
        .unwrap()
        .id;

    let mut raw = f.raw().await;
    sqlx::query(drop_trigger(&f, "audit_log_append_only_update"))
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::query("UPDATE audit_log SET detail = 'nothing happened' WHERE id = $1")
        .bind(target)
        .execute(&mut raw)
        .await
        .unwrap();
    let edited = f.registry.verify_audit().await.unwrap();
    assert_eq!(
        edited.broken.as_ref().map(|b| b.id),
        Some(target),
        "{edited:?}"
    );

    let fresh = fixture().await;
    let v = fresh.registry.open_vault(&fresh.keys).await.unwrap();
    for slug in ["a1", "b2", "c3"] {
        fresh
            .registry
            .add_tenant(&v, new_tenant(slug, &pg_url_with_canary(slug)))
            .await
            .unwrap();
    }
    let mut raw = fresh.raw().await;
    sqlx::query(drop_trigger(&fresh, "audit_log_append_only_delete"))
        .execute(&mut raw)
        .await
        .unwrap();
    sqlx::query("DELETE FROM audit_log WHERE id = 2")
        .execute(&mut raw)
        .await
        .unwrap();
    let cut = fresh.registry.verify_audit().await.unwrap();
    assert_eq!(cut.broken.as_ref().map(|b| b.id), Some(3), "{cut:?}");
}

/// The statement that drops an audit log trigger.
fn drop_trigger(f: &Fixture, name: &str) -> &'static str {
    match (f.registry.backend(), name) {
        (Backend::Sqlite, "audit_log_append_only_update") => {
            "DROP TRIGGER audit_log_append_only_update"
        }
        (Backend::Sqlite, _) => "DROP TRIGGER audit_log_append_only_delete",
        (Backend::Postgres, "audit_log_append_only_update") => {
            "DROP TRIGGER audit_log_append_only_update ON audit_log"
        }
        (Backend::Postgres, _) => "DROP TRIGGER audit_log_append_only_delete ON audit_log",
    }
}

/// Issue 13, items 12 and 17: the actor is the OS account (not `$USER`),
/// and no text can forge an audit line: control characters are escaped.
#[tokio::test]
async fn audit_rows_name_the_os_account_and_hold_no_control_characters() {
    let f = fixture().await;
    std::env::set_var("USER", "mallory");
    f.registry
        .audit(
            Some("acme"),
            "note",
            "ok\n2026-01-01T00:00:00Z root reset Ok: forged\u{1b}[2K",
            AuditResult::Ok,
        )
        .await
        .unwrap();
    let e = &f.registry.audit_log(None, 1).await.unwrap()[0];
    assert_ne!(e.actor, "mallory");
    assert!(
        !e.detail.contains('\n') && !e.detail.contains('\u{1b}'),
        "{:?}",
        e.detail
    );
    assert!(e.detail.contains("\\u{a}"), "{:?}", e.detail);
}

/// Issue 13, item 17: a keyring refusal is audited, once per run of the
/// same failure (the console asks on every screen).
#[tokio::test]
async fn keyring_refusals_are_audited_once_per_run() {
    let f = fixture().await;
    f.keys.fail_with(Some(KeyStoreError::Unavailable {
        reason: "no D-Bus".into(),
    }));
    for _ in 0..3 {
        assert!(f.registry.open_vault(&f.keys).await.is_err());
    }
    let log = f.registry.audit_log(None, 10).await.unwrap();
    let refusals: Vec<_> = log.iter().filter(|e| e.action == "key.open").collect();
    assert_eq!(refusals.len(), 1, "{log:?}");
    assert_eq!(refusals[0].result, AuditResult::Failed);
}

#[tokio::test]
async fn a_second_tenant_on_the_same_schema_is_refused_whatever_the_url_spelling() {
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    let with_schema = |slug: &str, url: &str, schema: Option<&str>| {
        let mut t = new_tenant(slug, url);
        t.schema = schema.map(str::to_owned);
        t.domains = vec![];
        t
    };
    let add = |t: NewTenant| f.registry.add_tenant(&vault, t);
    add(with_schema(
        "pg-a",
        &format!("postgres://app:{CANARY}@DB1.internal/fleet"),
        Some("t_a"),
    ))
    .await
    .unwrap();
    add(with_schema("my-a", "mysql://root@db2:3306/shop_a", None))
        .await
        .unwrap();
    let lite = sqlite_tenant_file(&f.dir, "lite");
    add(with_schema("lite-a", &lite, None)).await.unwrap();

    // Another user, the default port spelled out, the host's case: the same place.
    let same = [
        (
            "pg-b",
            "postgres://admin:Sekr1t-x@db1.internal:5432/fleet".to_owned(),
            Some("t_a"),
        ),
        (
            "my-b",
            "mysql://app:pw@db2/mysql".to_owned(),
            Some("shop_a"),
        ),
        (
            "my-c",
            "mysql://app@db2:3306/shop_a?ssl-mode=disabled".to_owned(),
            None,
        ),
        (
            "lite-b",
            format!("sqlite:{}", f.dir.join(".").join("lite.db").display()),
            None,
        ),
    ];
    for (slug, url, schema) in &same {
        let err = add(with_schema(slug, url, *schema)).await.unwrap_err();
        assert_eq!(err.code(), "place_taken", "{slug}: {err}");
        let text = err.to_string();
        assert!(!text.contains(CANARY) && !text.contains("Sekr1t"), "{text}");
    }
    // Elsewhere: another schema, database, port or file is fine.
    for (slug, url, schema) in [
        (
            "pg-c",
            "postgres://app@db1.internal/fleet".to_owned(),
            Some("t_b"),
        ),
        (
            "pg-d",
            "postgres://app@db1.internal/fleet2".to_owned(),
            Some("t_a"),
        ),
        (
            "pg-e",
            "postgres://app@db1.internal:5433/fleet".to_owned(),
            Some("t_a"),
        ),
        ("lite-c", sqlite_tenant_file(&f.dir, "lite2"), None),
    ] {
        add(with_schema(slug, &url, schema)).await.unwrap();
    }
    // An import that would share a schema fails whole, naming the row.
    let csv = format!(
        "slug,name,url\nnew-1,N,{}\nnew-2,N,{lite}\n",
        sqlite_tenant_file(&f.dir, "new1")
    );
    let err = f
        .registry
        .import(&vault, parse_csv(&csv).unwrap())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("row 3") && err.to_string().contains("lite-a"),
        "{err}"
    );
    assert!(f.registry.tenant("new-1").await.is_err());
    assert!(f.registry.shared_places().await.unwrap().is_empty());

    // A registry from before place keys, with two tenants on one schema:
    // the keys are filled on open and the pair is reported.
    let mut c = f.raw().await;
    sqlx::query("UPDATE tenants SET place_key = NULL")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("UPDATE tenants SET schema_name = 't_a' WHERE slug = 'pg-c'")
        .execute(&mut c)
        .await
        .unwrap();
    drop(c);
    let reopened = f.reopen().await;
    assert_eq!(
        reopened.shared_places().await.unwrap(),
        [vec!["pg-a".to_owned(), "pg-c".to_owned()]]
    );
}

/// Issue 13, items 2 and 17: an unfinished operation whose process is alive
/// is in progress, not reported; once its process is gone it is reported
/// and written to the audit log exactly once.
#[tokio::test]
async fn a_killed_operation_is_told_from_a_running_one_and_audited_once() {
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    let file = sqlite_tenant_file(&f.dir, "op");
    f.registry
        .add_tenant(&vault, new_tenant("op", &file))
        .await
        .unwrap();
    let id = f
        .registry
        .begin_operation("op", "reset", Some("file x.bak"))
        .await
        .unwrap();
    let all = f.registry.unfinished_operations().await.unwrap();
    assert!(all[0].running, "this process runs it");
    assert!(f.registry.killed_operations().await.unwrap().is_empty());

    // Its process dies: a pid no process has.
    let mut c = f.raw().await;
    sqlx::query("UPDATE operations SET pid = 2147483646 WHERE id = $1")
        .bind(id)
        .execute(&mut c)
        .await
        .unwrap();
    drop(c);
    for _ in 0..3 {
        let killed = f.registry.killed_operations().await.unwrap();
        assert_eq!(killed.len(), 1);
        assert!(!killed[0].running);
    }
    let log = f.registry.audit_log(Some("op"), 50).await.unwrap();
    let reported: Vec<_> = log
        .iter()
        .filter(|a| a.action == "operation.unfinished")
        .collect();
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert_eq!(reported[0].result, AuditResult::Failed);
    assert!(reported[0].detail.contains("file x.bak"));
    assert!(f.registry.verify_audit().await.unwrap().broken.is_none());
}

/// Issue 18: the journal is every run's tenant lock. While an operation on
/// a tenant may be running — in this process, or on another machine
/// sharing the registry, where it cannot be checked — no other run starts
/// one there; one whose process died here does not hold the tenant.
#[tokio::test]
async fn an_unfinished_operation_keeps_its_tenant_busy_for_every_run() {
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    for slug in ["busy", "free"] {
        let file = sqlite_tenant_file(&f.dir, slug);
        f.registry
            .add_tenant(&vault, new_tenant(slug, &file))
            .await
            .unwrap();
    }
    let first = f
        .registry
        .begin_operation("busy", "sync", Some("file x.bak"))
        .await
        .unwrap();
    // Another console on the same registry.
    let other = f.reopen().await;
    let err = other
        .begin_operation("busy", "reset", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "tenant_busy", "{err}");
    assert!(
        err.to_string()
            .contains(&format!("operation {first} (sync")),
        "{err}"
    );
    // Other tenants are not held.
    let free = other.begin_operation("free", "reset", None).await.unwrap();
    other
        .finish_operation(free, tenantry_registry::journal::OperationEnd::Ok, "done")
        .await
        .unwrap();

    // Started on another machine: alive or not, it cannot be told from
    // here, so it holds the tenant and is never reported as killed.
    let mut c = f.raw().await;
    sqlx::query("UPDATE operations SET host = 'elsewhere', pid = 2147483646 WHERE id = $1")
        .bind(first)
        .execute(&mut c)
        .await
        .unwrap();
    let err = other
        .begin_operation("busy", "reset", None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "tenant_busy", "{err}");
    assert!(err.to_string().contains("another machine"), "{err}");
    assert!(other.killed_operations().await.unwrap().is_empty());
    assert!(other.unfinished_operations().await.unwrap()[0].running);

    // Started here by a process that died: the tenant is free again.
    let here = tenantry_registry::current_actor().host;
    sqlx::query("UPDATE operations SET host = $1 WHERE id = $2")
        .bind(&here)
        .bind(first)
        .execute(&mut c)
        .await
        .unwrap();
    assert_eq!(other.killed_operations().await.unwrap().len(), 1);
    let next = other.begin_operation("busy", "reset", None).await.unwrap();
    assert!(next > first);
    let log = other.audit_log(Some("busy"), 50).await.unwrap();
    assert!(
        log.iter().any(|e| e.action == "operation.unfinished"),
        "{log:?}"
    );
}

#[tokio::test]
async fn the_scan_history_keeps_the_newest_scans_oldest_first() {
    use tenantry_registry::history::{ScanCounts, KEPT_SCANS};
    let f = fixture().await;
    assert!(f.registry.scan_history(10).await.unwrap().is_empty());
    // A registry that has seen KEPT_SCANS scans already.
    {
        let mut conn = f.raw().await;
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
             INSERT INTO scan_history (at, actor, tenants, scanned, synced, outdated, customized,
                                       unknown, failed, elapsed_ms, cancelled)
             SELECT '2026-01-01T00:00:00Z', 'old', 1, 1, 1, 0, 0, 0, 0, 5, 0 FROM n",
        )
        .bind(i64::from(KEPT_SCANS))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    for (synced, shard) in [(7, None), (8, Some("2/3"))] {
        f.registry
            .record_scan(
                ScanCounts {
                    tenants: 9,
                    scanned: 9,
                    synced,
                    failed: 9 - synced,
                    elapsed_ms: 42,
                    ..ScanCounts::default()
                },
                shard,
            )
            .await
            .unwrap();
    }
    let all = f.registry.scan_history(KEPT_SCANS + 10).await.unwrap();
    assert_eq!(all.len(), KEPT_SCANS as usize, "older scans are dropped");
    let last_two = f.registry.scan_history(2).await.unwrap();
    assert_eq!(
        last_two.iter().map(|s| s.counts.synced).collect::<Vec<_>>(),
        [7, 8],
        "oldest first"
    );
    assert_eq!(last_two[1].counts.failed, 1);
    assert!(!last_two[1].actor.is_empty());
    assert_eq!(
        (last_two[0].shard.as_deref(), last_two[1].shard.as_deref()),
        (None, Some("2/3"))
    );
}

/// Issue 18: a scan that moves many statuses appends their audit rows in
/// batches (more than one statement's worth here), in the scan's order,
/// each naming its tenant (and its id, so a tenant's log finds them), and
/// the chain verifies across the batches and the rows after.
#[tokio::test]
async fn a_scan_moving_many_statuses_chains_its_audit_rows_in_order() {
    use tenantry_registry::templates::TenantCheck;
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    let n = 2100;
    let csv = std::iter::once("slug,url".to_owned())
        .chain((0..n).map(|i| format!("t{i:04},{}", pg_url_with_canary(&format!("t{i:04}")))))
        .collect::<Vec<_>>()
        .join("\n");
    f.registry
        .import(&vault, parse_csv(&csv).unwrap())
        .await
        .unwrap();
    let before = f.registry.verify_audit().await.unwrap().chained;
    // In reverse slug order, as a scan's results may come.
    let checks: Vec<TenantCheck> = (0..n)
        .rev()
        .map(|i| TenantCheck::failed(&format!("t{i:04}"), format!("refused {i}")))
        .collect();
    f.registry.record_checks(&checks).await.unwrap();
    f.registry
        .audit(Some("t0007"), "note", "after the scan", AuditResult::Ok)
        .await
        .unwrap();
    let verified = f.registry.verify_audit().await.unwrap();
    assert!(verified.broken.is_none(), "{verified:?}");
    assert_eq!(verified.chained, before + n as u64 + 1);
    let log = f.registry.audit_log(None, n + 1).await.unwrap();
    assert_eq!(log[0].action, "note");
    let moved: Vec<&str> = log[1..]
        .iter()
        .rev()
        .map(|e| e.tenant_slug.as_deref().unwrap())
        .collect();
    let expected: Vec<String> = (0..n).rev().map(|i| format!("t{i:04}")).collect();
    assert_eq!(moved, expected);
    assert!(log[1..].iter().all(|e| e.action == "tenant.status"));
    let one = f.registry.audit_log(Some("t0007"), 10).await.unwrap();
    assert_eq!(
        (one[0].action.as_str(), one[1].action.as_str()),
        ("note", "tenant.status")
    );
    assert!(one[1].detail.contains("refused 7"), "{one:?}");
}

/// Issue 15: a tenant's drift timeline. A check that changes its status or
/// hash leaves one `tenant.status` row in the audit log (the chain stays
/// valid); a check that changes nothing leaves none.
#[tokio::test]
async fn status_and_hash_changes_make_the_drift_timeline() {
    use tenantry_model::{DriftHash, SchemaStatus};
    use tenantry_registry::templates::TenantCheck;
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    f.registry
        .add_tenant(
            &vault,
            new_tenant("acme", &sqlite_tenant_file(&f.dir, "acme")),
        )
        .await
        .unwrap();
    let hash =
        |c: char| -> DriftHash { format!("v7:{}", c.to_string().repeat(64)).parse().unwrap() };
    let check = |status, h: Option<DriftHash>, reason: Option<&str>| TenantCheck {
        slug: "acme".into(),
        status,
        reason: reason.map(str::to_owned),
        hash: h,
        provisioned: false,
        fingerprint: None,
    };
    f.registry
        .record_checks(&[check(SchemaStatus::Synced, Some(hash('a')), None)])
        .await
        .unwrap();
    // Unchanged: nothing new.
    f.registry
        .record_checks(&[check(SchemaStatus::Synced, Some(hash('a')), None)])
        .await
        .unwrap();
    f.registry
        .record_checks(&[check(
            SchemaStatus::Customized,
            Some(hash('b')),
            Some("1 added: table partner_feed"),
        )])
        .await
        .unwrap();
    // A failed read keeps the hash: the status alone changes.
    f.registry
        .record_checks(&[check(
            SchemaStatus::Failed,
            None,
            Some("connection refused"),
        )])
        .await
        .unwrap();
    let timeline = f.registry.status_changes("acme", 10).await.unwrap();
    let seen: Vec<(&str, &str, Option<&str>, Option<&str>)> = timeline
        .iter()
        .map(|c| {
            (
                c.from.as_str(),
                c.to.as_str(),
                c.hash.as_deref(),
                c.reason.as_deref(),
            )
        })
        .collect();
    let (a, b) = (hash('a').to_string(), hash('b').to_string());
    assert_eq!(
        seen,
        vec![
            ("customized", "failed", None, Some("connection refused")),
            (
                "synced",
                "customized",
                Some(b.as_str()),
                Some("1 added: table partner_feed")
            ),
            ("unknown", "synced", Some(a.as_str()), None),
        ]
    );
    assert!(f.registry.verify_audit().await.unwrap().broken.is_none());
}

/// Issue 18 (scale): the fleet screen's page is filtered, searched, counted
/// and sorted by the registry, so only a page crosses IPC; hostile search
/// text is a plain substring; a registry from before the server column gets
/// it filled on open.
#[tokio::test]
async fn the_fleet_page_is_filtered_counted_and_sorted_by_the_registry() {
    use tenantry_model::{DriftHash, SchemaStatus};
    use tenantry_registry::templates::TenantCheck;
    use tenantry_registry::{TenantQuery, TenantSort};
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    for slug in ["acme", "globex", "initech"] {
        f.registry
            .add_tenant(&vault, new_tenant(slug, &pg_url_with_canary(slug)))
            .await
            .unwrap();
    }
    let mut umbrella = new_tenant(
        "umbrella",
        &format!("postgres://app:{CANARY}@DB2.internal:6432/fleet"),
    );
    umbrella.schema = Some("t_umbrella".into());
    umbrella.display_name = "Umbrella Corporation".into();
    f.registry.add_tenant(&vault, umbrella).await.unwrap();
    let mut lite = new_tenant("lite", &sqlite_tenant_file(&f.dir, "lite"));
    lite.template = None;
    lite.template_version = None;
    f.registry.add_tenant(&vault, lite).await.unwrap();

    let hash =
        |c: char| -> DriftHash { format!("v7:{}", c.to_string().repeat(64)).parse().unwrap() };
    let check = |slug: &str, status, h: Option<DriftHash>| TenantCheck {
        slug: slug.into(),
        status,
        reason: None,
        hash: h,
        provisioned: false,
        fingerprint: None,
    };
    f.registry
        .record_checks(&[
            check("acme", SchemaStatus::Synced, Some(hash('a'))),
            check("globex", SchemaStatus::Customized, Some(hash('b'))),
            check("initech", SchemaStatus::Failed, None),
            check("umbrella", SchemaStatus::Synced, Some(hash('a'))),
        ])
        .await
        .unwrap();

    let page = |q: TenantQuery| {
        let r = &f.registry;
        async move { r.tenant_page(&q).await.unwrap() }
    };
    let slugs = |p: &tenantry_registry::TenantPage| {
        p.rows.iter().map(|r| r.slug.clone()).collect::<Vec<_>>()
    };

    // Worst first, then by slug; the counts are the whole fleet's.
    let all = page(TenantQuery::default()).await;
    assert_eq!(
        slugs(&all),
        ["initech", "globex", "lite", "acme", "umbrella"]
    );
    assert_eq!(all.total, 5);
    assert_eq!(
        (
            all.counts.synced,
            all.counts.customized,
            all.counts.failed,
            all.counts.unknown
        ),
        (2, 1, 1, 1)
    );
    let lite_dir = std::fs::canonicalize(&f.dir).unwrap();
    assert_eq!(
        all.servers,
        [
            "postgres://db1.internal:5432".to_owned(),
            "postgres://db2.internal:6432".to_owned(),
            format!("sqlite:{}", lite_dir.display()),
        ]
    );
    assert_eq!(all.templates, ["none", "saas 1.1.0"]);
    assert!(
        !format!("{all:?}").contains(CANARY),
        "a page carries no password"
    );

    // Each filter, and all of them together.
    let customized = page(TenantQuery {
        status: Some(SchemaStatus::Customized),
        ..Default::default()
    })
    .await;
    assert_eq!(
        (slugs(&customized), customized.total),
        (vec!["globex".to_owned()], 1)
    );
    assert_eq!(customized.counts, all.counts);
    let on_db1 = page(TenantQuery {
        server: Some("postgres://db1.internal:5432".into()),
        sort: TenantSort::Slug,
        ..Default::default()
    })
    .await;
    assert_eq!(slugs(&on_db1), ["acme", "globex", "initech"]);
    let untemplated = page(TenantQuery {
        template: Some("none".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(slugs(&untemplated), ["lite"]);
    let synced_on_db1 = page(TenantQuery {
        status: Some(SchemaStatus::Synced),
        server: Some("postgres://db1.internal:5432".into()),
        template: Some("saas 1.1.0".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(slugs(&synced_on_db1), ["acme"]);

    // Search: slug, display name in any ASCII case, location, exact hash.
    for (text, want) in [
        ("UMBRELLA CORP", vec!["umbrella"]),
        ("glob", vec!["globex"]),
        ("db2.internal", vec!["umbrella"]),
        (&*hash('a').to_string(), vec!["acme", "umbrella"]),
    ] {
        let p = page(TenantQuery {
            search: text.into(),
            ..Default::default()
        })
        .await;
        assert_eq!(slugs(&p), want, "search {text:?}");
    }
    // Hostile text is a substring like any other: no wildcard, no SQL.
    for text in [
        "%",
        "_",
        "' OR 1=1 --",
        "\"; DROP TABLE tenants; --",
        "\0",
        CANARY,
    ] {
        let p = page(TenantQuery {
            search: text.into(),
            ..Default::default()
        })
        .await;
        assert_eq!(p.total, 0, "search {text:?}");
    }
    assert_eq!(f.registry.list_tenants().await.unwrap().len(), 5);

    // Paging: offset and limit, in a stable order; the limit is capped.
    let second = page(TenantQuery {
        sort: TenantSort::Slug,
        offset: 2,
        limit: 2,
        ..Default::default()
    })
    .await;
    assert_eq!(
        (slugs(&second), second.offset, second.total),
        (vec!["initech".to_owned(), "lite".to_owned()], 2, 5)
    );
    let past = page(TenantQuery {
        offset: 10,
        ..Default::default()
    })
    .await;
    assert!(past.rows.is_empty());
    assert_eq!(past.total, 5);
    // Most recently checked first, never checked last.
    let recent = page(TenantQuery {
        sort: TenantSort::LastSync,
        ..Default::default()
    })
    .await;
    assert_eq!(&slugs(&recent)[3..], ["initech", "lite"]);

    // A registry from before the server column: filled on open.
    let mut c = f.raw().await;
    sqlx::query("UPDATE tenants SET server = NULL")
        .execute(&mut c)
        .await
        .unwrap();
    drop(c);
    let reopened = f.reopen().await;
    let again = reopened.tenant_page(&TenantQuery::default()).await.unwrap();
    assert_eq!(again.servers, all.servers);
}

/// The whole fleet is read in chunks (one JSON value per chunk, built by
/// SQLite): across chunk boundaries nothing is lost, repeated or reordered,
/// and every field, however odd its text, reads as a single tenant does.
#[tokio::test]
async fn the_fleet_is_listed_in_chunks_exactly_as_tenants_read_one_by_one() {
    use futures_util::TryStreamExt;
    use tenantry_registry::import::{Fields, ImportRow};
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    let rows: Vec<ImportRow> = (0..4100)
        .map(|i| ImportRow {
            location: format!("row {i}"),
            fields: Fields {
                slug: format!("t{:05}", (i * 7919) % 4100),
                schema: Some(format!("s{i}")),
                ..Default::default()
            },
            url: pg_url_with_canary(&format!("db{i}")).into(),
        })
        .collect();
    f.registry.import(&vault, rows).await.unwrap();
    let mut odd = new_tenant("t02000-odd", &pg_url_with_canary("odd"));
    odd.display_name = "Ødd \"quoted\" \\ tenant ✓".into();
    odd.notes = "line one\nline two\t\u{1b}[31m and a \"quote\"".into();
    odd.domains = vec!["b.example.com".into(), "a.example.com".into()];
    f.registry.add_tenant(&vault, odd).await.unwrap();

    let all: Vec<_> = f.registry.tenants_by_slug().try_collect().await.unwrap();
    assert_eq!(all.len(), 4101);
    assert!(
        all.windows(2).all(|w| w[0].slug < w[1].slug),
        "sorted, no repeats"
    );
    assert_eq!(f.registry.list_tenants().await.unwrap().len(), 4101);
    for slug in [
        "t00000",
        "t01999",
        "t02000",
        "t02000-odd",
        "t02001",
        "t04099",
    ] {
        let one = f.registry.tenant(slug).await.unwrap();
        let listed = all.iter().find(|t| t.slug == slug).unwrap();
        assert_eq!(
            serde_json::to_value(listed).unwrap(),
            serde_json::to_value(&one).unwrap(),
            "{slug}"
        );
        assert_eq!(listed.catalog_fingerprint, one.catalog_fingerprint);
    }
    let odd = all.iter().find(|t| t.slug == "t02000-odd").unwrap();
    assert_eq!(odd.domains, ["a.example.com", "b.example.com"]);
    assert!(odd.notes.contains('\u{1b}'));
}

/// The key `keys` opens the registry with; then the fixture acts for its
/// own keyring's member again (a process acts for the last one identified).
async fn opened_by(f: &Fixture, keys: &MemoryKeyStore) -> tenantry_vault::KeyId {
    let id = f.registry.open_vault(keys).await.unwrap().key_id();
    f.registry.identify(&f.keys).await.unwrap();
    id
}

/// Issue 18: on a PostgreSQL registry the database itself refuses what a
/// member's role may not do. Each member's own login gets exactly their
/// role's privileges: a viewer's login reads and cannot write, even
/// straight in SQL; an operator's records checks but cannot remove tenants
/// or touch the members; a role change and a removal follow, in the same
/// transaction as the registry's own change.
#[tokio::test]
async fn a_members_database_login_has_exactly_the_privileges_of_their_role() {
    if !on_postgres() {
        return; // about the registry's database: PostgreSQL only
    }
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    f.registry
        .add_tenant(&vault, new_tenant("acme", &pg_url_with_canary("acme")))
        .await
        .unwrap();
    let (bob, carol) = (MemoryKeyStore::default(), MemoryKeyStore::default());
    for (name, keys, role) in [
        ("bob", &bob, Role::Viewer),
        ("carol", &carol, Role::Operator),
    ] {
        let (key, _) = f.registry.member_key(keys).await.unwrap();
        f.registry
            .add_member(&f.keys, &vault, name, &key.to_string(), role, "alice")
            .await
            .unwrap();
    }
    f.registry.identify(&f.keys).await.unwrap();

    let db = f._database.as_ref().unwrap().name.clone();
    let server = tenantry_tests::pg_server_url();
    let host = server.rsplit('@').next().unwrap().to_owned();
    let login = |who: &str| format!("{db}_{who}");
    let mut admin =
        <sqlx::PgConnection as sqlx::Connection>::connect(&format!("{server}/postgres"))
            .await
            .unwrap();
    for who in ["bob", "carol"] {
        sqlx::raw_sql(&format!(
            "CREATE ROLE {} LOGIN",
            tenantry_tests::pg_quote(&login(who))
        ))
        .execute(&mut admin)
        .await
        .unwrap();
    }
    let err = f
        .registry
        .set_member_db_user("bob", "no_such_login_here")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_input", "{err}");
    f.registry
        .set_member_db_user("bob", &login("bob"))
        .await
        .unwrap();
    f.registry
        .set_member_db_user("carol", &login("carol"))
        .await
        .unwrap();
    let err = f
        .registry
        .set_member_db_user("carol", &login("bob"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "member_taken", "{err}");

    let as_login = |who: &str| {
        let url = format!("postgres://{}@{host}/{db}", login(who));
        async move {
            <sqlx::PgConnection as sqlx::Connection>::connect(&url)
                .await
                .unwrap()
        }
    };
    let denied = |r: Result<sqlx::postgres::PgQueryResult, sqlx::Error>| match r {
        Err(sqlx::Error::Database(e)) => e.code().as_deref() == Some("42501"),
        _ => false,
    };
    let write = "UPDATE tenants SET status = 'synced' WHERE slug = 'acme'";

    // Bob, a viewer: reads, and opens the registry; writes nothing.
    let mut b = as_login("bob").await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tenants")
        .fetch_one(&mut b)
        .await
        .unwrap();
    assert_eq!(n, 1);
    for statement in [
        write,
        "DELETE FROM tenants",
        "UPDATE members SET role = 'admin'",
        "UPDATE vault_meta SET rotated_at = 'x'",
    ] {
        assert!(
            denied(sqlx::query(statement).execute(&mut b).await),
            "{statement}"
        );
    }
    let opened = Registry::open_at(
        RegistryPlace::parse(&format!("postgres://{}@{host}/{db}", login("bob"))).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(opened.list_tenants().await.unwrap().len(), 1);
    opened.close().await;

    // Carol, an operator: records a check; removes no tenant, no member.
    let mut c = as_login("carol").await;
    sqlx::query(write).execute(&mut c).await.unwrap();
    for statement in ["DELETE FROM tenants", "UPDATE members SET role = 'admin'"] {
        assert!(
            denied(sqlx::query(statement).execute(&mut c).await),
            "{statement}"
        );
    }

    // Bob becomes an operator: his login follows.
    f.registry
        .set_member_role("bob", Role::Operator)
        .await
        .unwrap();
    sqlx::query(write).execute(&mut b).await.unwrap();
    // Carol is removed: her login reads nothing any more.
    let _ = f
        .registry
        .remove_member(&f.keys, &vault, "carol")
        .await
        .unwrap();
    drop(c);
    let mut c = as_login("carol").await;
    assert!(denied(
        sqlx::query("SELECT 1 FROM tenants").execute(&mut c).await
    ));
    let log = f.registry.audit_log(None, 50).await.unwrap();
    assert_eq!(
        log.iter()
            .filter(|e| e.action == "member.db_user" && e.result == AuditResult::Ok)
            .count(),
        2,
        "{log:?}"
    );
    drop((b, c));

    // The logins and the registry's groups go with the scratch database.
    let id = f.registry.registry_id().await.unwrap();
    f.registry.close().await;
    sqlx::raw_sql(&format!(
        "DROP DATABASE {} WITH (FORCE)",
        tenantry_tests::pg_quote(&db)
    ))
    .execute(&mut admin)
    .await
    .unwrap();
    let short: String = id.chars().take(16).collect();
    for role in [
        login("bob"),
        login("carol"),
        format!("tenantry_{short}_admin"),
        format!("tenantry_{short}_operator"),
        format!("tenantry_{short}_viewer"),
    ] {
        sqlx::raw_sql(&format!("DROP ROLE {}", tenantry_tests::pg_quote(&role)))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}

/// Issue 18: the member keys' failure paths, each of which must change
/// nothing: a vault opened before a rotation, a tampered wrap, a removal
/// whose re-encryption fails part way, and a keyring that refuses.
#[tokio::test]
async fn member_changes_that_fail_change_nothing() {
    let f = fixture().await;
    let vault = f.registry.open_vault(&f.keys).await.unwrap();
    for slug in ["acme", "globex"] {
        f.registry
            .add_tenant(&vault, new_tenant(slug, &pg_url_with_canary(slug)))
            .await
            .unwrap();
    }
    let (bob, carol) = (MemoryKeyStore::default(), MemoryKeyStore::default());
    let (bob_key, made) = f.registry.member_key(&bob).await.unwrap();
    assert!(made);
    let carol_key = f.registry.member_key(&carol).await.unwrap().0;
    f.registry
        .add_member(
            &f.keys,
            &vault,
            "bob",
            &bob_key.to_string(),
            Role::Operator,
            "alice",
        )
        .await
        .unwrap();
    assert_eq!(opened_by(&f, &bob).await, vault.key_id());

    // A vault opened before a rotation cannot wrap for a new member.
    let (rotated, _) = f.registry.rotate_key(&f.keys, &vault).await.unwrap();
    let err = f
        .registry
        .add_member(
            &f.keys,
            &vault,
            "carol",
            &carol_key.to_string(),
            Role::Operator,
            "alice",
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "member_refused", "{err}");
    assert_eq!(f.registry.members().await.unwrap().len(), 2);
    // The rotation re-wrapped for Bob.
    assert_eq!(opened_by(&f, &bob).await, rotated.key_id());
    f.registry
        .add_member(
            &f.keys,
            &rotated,
            "carol",
            &carol_key.to_string(),
            Role::Operator,
            "alice",
        )
        .await
        .unwrap();

    let mut conn = f.raw().await;
    // A tampered wrap opens nothing, with a typed error.
    let good: Vec<u8> = sqlx::query_scalar("SELECT wrapped_key FROM members WHERE name = 'bob'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let mut bad = good.clone();
    bad[50] ^= 0x40;
    sqlx::query("UPDATE members SET wrapped_key = $1 WHERE name = 'bob'")
        .bind(&bad)
        .execute(&mut conn)
        .await
        .unwrap();
    let err = f.registry.open_vault(&bob).await.unwrap_err();
    assert_eq!(err.code(), "member_wrap_damaged", "{err}");
    sqlx::query("UPDATE members SET wrapped_key = $1 WHERE name = 'bob'")
        .bind(&good)
        .execute(&mut conn)
        .await
        .unwrap();

    // A removal whose re-encryption fails on the second tenant: the
    // rotation's transaction is rolled back, Bob is still a member on the
    // old key, and the new key's keyring entry is removed again.
    let entries_before = f.keys.entries();
    sqlx::query("UPDATE tenants SET connection_ct = $1 WHERE slug = 'globex'")
        .bind(vec![0_u8])
        .execute(&mut conn)
        .await
        .unwrap();
    let good_ct: Vec<u8> = {
        let acme: Vec<u8> =
            sqlx::query_scalar("SELECT connection_ct FROM tenants WHERE slug = 'acme'")
                .fetch_one(&mut conn)
                .await
                .unwrap();
        acme
    };
    let err = f
        .registry
        .remove_member(&f.keys, &rotated, "bob")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ciphertext_format_unknown", "{err}");
    let names: Vec<String> = f
        .registry
        .members()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"]);
    assert_eq!(opened_by(&f, &bob).await, rotated.key_id());
    assert_eq!(f.keys.entries(), entries_before);
    let acme_after: Vec<u8> =
        sqlx::query_scalar("SELECT connection_ct FROM tenants WHERE slug = 'acme'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        acme_after, good_ct,
        "acme was re-encrypted only inside the rolled-back transaction"
    );
    f.registry.remove_tenant("globex").await.unwrap();

    // A keyring that refuses the new key: nothing changes either.
    f.keys.fail_with(Some(KeyStoreError::AccessDenied {
        reason: "collection is locked".into(),
    }));
    let err = f
        .registry
        .remove_member(&f.keys, &rotated, "bob")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "keyring_access_denied", "{err}");
    f.keys.fail_with(None);
    assert_eq!(f.registry.members().await.unwrap().len(), 3);

    // Removed: Bob's member key opens nothing; Carol opens the new key.
    let (after, removed) = f
        .registry
        .remove_member(&f.keys, &rotated, "bob")
        .await
        .unwrap();
    assert_eq!((removed.reencrypted, removed.rewrapped), (1, 2));
    assert_eq!(
        f.registry.open_vault(&bob).await.unwrap_err().code(),
        "not_a_member"
    );
    assert_eq!(opened_by(&f, &carol).await, after.key_id());
    assert!(f.registry.connection(&after, "acme").await.is_ok());

    // A viewer reads, and every write a role gates is refused, audited.
    let vic = MemoryKeyStore::default();
    let vic_key = f.registry.member_key(&vic).await.unwrap().0;
    f.registry
        .add_member(
            &f.keys,
            &after,
            "vic",
            &vic_key.to_string(),
            Role::Viewer,
            "alice",
        )
        .await
        .unwrap();
    f.registry.identify(&vic).await.unwrap();
    assert!(f.registry.allowed_actions().await.unwrap().is_empty());
    assert_eq!(f.registry.list_tenants().await.unwrap().len(), 1);
    for err in [
        f.registry
            .resolve_operation(1, None, "x")
            .await
            .unwrap_err(),
        f.registry.remove_tenant("acme").await.unwrap_err(),
        f.registry.record_checks(&[]).await.unwrap_err(),
        f.registry.rotate_key(&vic, &after).await.unwrap_err(),
    ] {
        assert_eq!(err.code(), "role_refused", "{err}");
    }
    let refusals = f
        .registry
        .audit_log(None, 20)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.result == AuditResult::Refused && a.actor.starts_with("vic ("))
        .count();
    assert_eq!(refusals, 4);
    assert!(f.registry.verify_audit().await.unwrap().broken.is_none());
}
