//! The built-in demo fleet: a versioned SQLite template and a handful of
//! tenants generated on first run in the app's data directory, some synced,
//! some drifted, one on an older version and one never initialised.
//!
//! Generation never overwrites: an existing tenant file is left as it is, so
//! changes a user makes to the demo survive restarts.
//!
//! The demo has a registry of its own (`demo-fleet/registry.db`), never the
//! user's: it works the same with or without an OS keyring, and a user's
//! registry never fills with tenants they did not add. Its tenants are SQLite
//! files under the demo folder, so their "connection strings" hold no
//! secret; the demo registry's data key is kept in a file beside it
//! ([`DemoKeyFile`]), which only this module can open.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use tenantry_introspect::ConnectionUrl;
use tenantry_model::{Engine, SchemaStatus};
use tenantry_registry::{NewTenant, Registry, RegistryError};
use tenantry_vault::{KeyEntry, KeyStore, KeyStoreError, Vault};

use crate::{
    apply_sqlite_migrations, assess, measure_sqlite_template, FleetError, Isolation, Migration,
    Template, TemplateVersion, TenantOverview,
};

const INIT: Migration = Migration::fixed(
    "1.0.0/0001_init.sql",
    include_str!("../templates/saas/sqlite/0001_init.sql"),
);
const BILLING: Migration = Migration::fixed(
    "1.1.0/0002_billing.sql",
    include_str!("../templates/saas/sqlite/0002_billing.sql"),
);

/// The demo's template, `saas`, in two versions.
pub fn template() -> Template {
    Template {
        name: "saas".into(),
        engine: Engine::Sqlite,
        versions: vec![
            TemplateVersion {
                version: "1.0.0".into(),
                migrations: vec![INIT],
            },
            TemplateVersion {
                version: "1.1.0".into(),
                migrations: vec![BILLING],
            },
        ],
    }
}

/// Rows for a few tables; fits every version (it touches no billing table).
const SAMPLE_DATA: Migration = Migration::fixed(
    "sample data",
    "INSERT INTO accounts (name, plan) VALUES ('Main', 'pro');
          INSERT INTO users (account_id, email, full_name, is_admin)
               VALUES (1, 'ada@example.com', 'Ada Lovelace', 1),
                      (1, 'alan@example.com', 'Alan Turing', 0);
          INSERT INTO projects (account_id, name) VALUES (1, 'Launch'), (1, 'Support');
          INSERT INTO tasks (project_id, assignee_id, title, state)
               VALUES (1, 1, 'Write the announcement', 'doing'),
                      (1, 2, 'Load test', 'todo'),
                      (2, 2, 'Triage inbox', 'done');",
);

/// One demo tenant: how its file is built and what the registry says of it.
struct DemoTenant {
    slug: &'static str,
    display_name: &'static str,
    /// The template version the tenant is recorded on.
    version: &'static str,
    /// Migrations that build its file; empty for an uninitialised tenant.
    build: Vec<Migration>,
}

fn tenants() -> Vec<DemoTenant> {
    let v110 = || vec![INIT, BILLING, SAMPLE_DATA];
    let with = |extra: Migration| vec![INIT, BILLING, SAMPLE_DATA, extra];
    vec![
        DemoTenant {
            slug: "acme",
            display_name: "Acme Corp",
            version: "1.1.0",
            build: v110(),
        },
        DemoTenant {
            slug: "globex",
            display_name: "Globex",
            version: "1.1.0",
            build: v110(),
        },
        DemoTenant {
            slug: "initech",
            display_name: "Initech",
            version: "1.1.0",
            build: with(Migration::fixed(
                "hand-made table",
                "CREATE TABLE tps_reports (id INTEGER PRIMARY KEY, cover_sheet TEXT NOT NULL);",
            )),
        },
        DemoTenant {
            slug: "umbrella",
            display_name: "Umbrella Health",
            version: "1.1.0",
            build: with(Migration::fixed(
                "hotfix by hand",
                "DROP INDEX idx_tasks_project_state; ALTER TABLE users ADD COLUMN badge_no TEXT;",
            )),
        },
        DemoTenant {
            slug: "hooli",
            display_name: "Hooli",
            version: "1.1.0",
            build: vec![INIT, SAMPLE_DATA],
        },
        DemoTenant {
            slug: "stark",
            display_name: "Stark Industries",
            version: "1.1.0",
            build: Vec::new(),
        },
        DemoTenant {
            slug: "wayne",
            display_name: "Wayne Enterprises",
            version: "1.1.0",
            build: v110(),
        },
    ]
}

/// What the demo puts in every tenant's notes; with the domain and the
/// file's folder it recognises demo tenants an older version registered in
/// the user's own registry.
const DEMO_NOTE: &str = "built-in demo tenant";

fn demo_domain(slug: &str) -> String {
    format!("{slug}.demo.tenantry.dev")
}

/// The demo registry's key store: one file beside the demo registry, one
/// line per entry, written whole and renamed into place, readable by the
/// user only. It exists because the demo's tenants are files with no secret
/// and the demo must work without a keyring; it is private to this module,
/// so no other registry can be opened with it.
pub(crate) struct DemoKeyFile {
    path: PathBuf,
}

impl DemoKeyFile {
    fn entries(&self) -> Result<Vec<(String, SecretString)>, KeyStoreError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => SecretString::from(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(KeyStoreError::Unavailable {
                    reason: format!("cannot read the demo key file {}: {e}", self.path.display()),
                })
            }
        };
        use secrecy::ExposeSecret;
        Ok(text
            .expose_secret()
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_owned(), SecretString::from(v.to_owned())))
            .collect())
    }

    fn write(&self, entries: &[(String, SecretString)]) -> Result<(), KeyStoreError> {
        use secrecy::ExposeSecret;
        use std::io::Write;
        let failed = |e: std::io::Error| KeyStoreError::Other {
            reason: format!(
                "cannot write the demo key file {}: {e}",
                self.path.display()
            ),
        };
        let tmp = self.path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp).map_err(failed)?;
        for (k, v) in entries {
            writeln!(file, "{k}\t{}", v.expose_secret()).map_err(failed)?;
        }
        file.sync_all().map_err(failed)?;
        std::fs::rename(&tmp, &self.path).map_err(failed)
    }
}

impl KeyStore for DemoKeyFile {
    fn load_text(&self, entry: &KeyEntry) -> Result<Option<SecretString>, KeyStoreError> {
        Ok(self
            .entries()?
            .into_iter()
            .find(|(k, _)| k == entry.as_str())
            .map(|(_, v)| v))
    }

    fn save_text(&self, entry: &KeyEntry, text: &SecretString) -> Result<(), KeyStoreError> {
        use secrecy::ExposeSecret;
        let mut all = self.entries()?;
        all.retain(|(k, _)| k != entry.as_str());
        all.push((
            entry.as_str().to_owned(),
            SecretString::from(text.expose_secret().to_owned()),
        ));
        self.write(&all)
    }

    fn delete(&self, entry: &KeyEntry) -> Result<(), KeyStoreError> {
        let mut all = self.entries()?;
        all.retain(|(k, _)| k != entry.as_str());
        self.write(&all)
    }

    fn describe(&self) -> String {
        format!(
            "demo key file {} (the demo's tenants are local files with no secret)",
            self.path.display()
        )
    }
}

/// The demo registry, opened: its tenants registered and measured.
pub(crate) struct DemoRegistry {
    pub registry: Registry,
    pub vault: Vault,
    pub keys: DemoKeyFile,
}

/// Where the demo fleet lives under a data directory.
pub struct DemoFleet {
    root: PathBuf,
}

impl DemoFleet {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.join("demo-fleet"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The demo's own registry file (never the user's).
    pub fn registry_path(&self) -> PathBuf {
        self.root.join("registry.db")
    }

    /// Generates what is missing and opens the demo registry, registering
    /// and scanning the demo tenants it does not hold yet. A demo registry
    /// whose key is lost or damaged is set aside (renamed, never deleted)
    /// and built again: it holds nothing that cannot be rebuilt, and the
    /// tenants' files, with any change the user made, are kept.
    pub(crate) async fn open_registry(&self) -> Result<DemoRegistry, FleetError> {
        self.ensure().await?;
        let keys = DemoKeyFile {
            path: self.root.join("demo-key"),
        };
        let path = self.registry_path();
        let registry = Registry::create(&path).await?;
        let (registry, vault) = match registry.open_vault(&keys).await {
            Ok(vault) => (registry, vault),
            Err(e) => {
                tracing::warn!(
                    code = e.code(),
                    "demo registry unreadable, rebuilding it: {e}"
                );
                registry.close().await;
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let aside = self.root.join(format!("registry-unreadable-{stamp}.db"));
                std::fs::rename(&path, &aside).map_err(|source| FleetError::Io {
                    action: "set aside",
                    path: path.clone(),
                    source,
                })?;
                let registry = Registry::create(&path).await?;
                let vault = registry.open_vault(&keys).await?;
                (registry, vault)
            }
        };
        let added = self.register(&registry, &vault).await?;
        if !added.is_empty() {
            // A first status now, so the demo does not open on a list of
            // `unknown`s.
            let only = crate::scan::ScanOptions {
                tenants: Some(added),
                ..crate::scan::ScanOptions::default()
            };
            if let Err(e) = crate::scan::scan(
                &registry,
                &vault,
                &only,
                &|_| {},
                &crate::scan::CancelScan::default(),
            )
            .await
            {
                tracing::warn!(
                    code = e.code(),
                    "first scan of the demo tenants failed: {e}"
                );
            }
        }
        Ok(DemoRegistry {
            registry,
            vault,
            keys,
        })
    }

    /// Removes from a user's registry the demo tenants an earlier version
    /// registered there (recognised by the demo's note, domain, engine and
    /// a location inside this demo folder; anything else is left alone),
    /// each removal audited. Their files stay: the demo registry has them.
    pub async fn retire_from(&self, registry: &Registry) -> Result<Vec<String>, FleetError> {
        let folder = self.root.join("tenants");
        let mut retired = Vec::new();
        // Only the demo's own slugs can be demo tenants: seven lookups, not
        // a read of a fleet that may hold 100,000 (this runs at every start).
        for demo in tenants() {
            let t = match registry.tenant(demo.slug).await {
                Ok(t) => t,
                Err(tenantry_registry::RegistryError::TenantNotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            let ours = t.notes == DEMO_NOTE
                && t.engine == Engine::Sqlite
                && t.domains == [demo_domain(&t.slug)]
                && tenants().iter().any(|d| d.slug == t.slug)
                && Path::new(t.location.trim_start_matches("sqlite:")) == self.tenant_path(&t.slug)
                && self.tenant_path(&t.slug).starts_with(&folder);
            if !ours {
                continue;
            }
            // Removed and audited in one transaction.
            registry
                .remove_tenant_as(
                    &t.slug,
                    "demo.retire",
                    "built-in demo tenant moved out of this registry into the demo's own; its file was not touched",
                )
                .await?;
            retired.push(t.slug);
        }
        Ok(retired)
    }

    fn tenant_path(&self, slug: &str) -> PathBuf {
        self.root.join("tenants").join(format!("{slug}.db"))
    }

    /// Creates whatever part of the demo fleet is missing. Existing files are
    /// never touched.
    pub async fn ensure(&self) -> Result<(), FleetError> {
        for dir in [self.root.join("tenants"), self.root.join("templates")] {
            std::fs::create_dir_all(&dir).map_err(|source| FleetError::Io {
                action: "create directory",
                path: dir.clone(),
                source,
            })?;
        }
        for t in tenants() {
            let path = self.tenant_path(t.slug);
            if !path.exists() {
                let build: Vec<&Migration> = t.build.iter().collect();
                apply_sqlite_migrations(&path, &build).await?;
            }
        }
        Ok(())
    }

    /// Adds the demo tenants that are missing from `registry`, with their
    /// files' URLs encrypted like any other tenant's; returns their slugs.
    pub async fn register(
        &self,
        registry: &Registry,
        vault: &Vault,
    ) -> Result<Vec<String>, FleetError> {
        // The template first, measured like any other, so scans, diffs and
        // resets of the demo tenants work from the registry.
        let template = template();
        if registry
            .lineage(&template.name, template.engine)
            .await?
            .len()
            < template.versions.len()
        {
            let scratch = ConnectionUrl::parse(&format!(
                "sqlite:{}",
                self.root
                    .join("templates")
                    .join("registry-scratch.db")
                    .display()
            ))?;
            crate::guard::register_template(
                registry,
                &template,
                &scratch,
                tenantry_introspect::Timeouts::default(),
            )
            .await?;
        }
        let mut added = Vec::new();
        for t in tenants() {
            match registry.tenant(t.slug).await {
                Ok(_) => continue,
                Err(RegistryError::TenantNotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            let url = format!("sqlite:{}", self.tenant_path(t.slug).display());
            registry
                .add_tenant(
                    vault,
                    NewTenant {
                        slug: t.slug.to_owned(),
                        display_name: t.display_name.to_owned(),
                        url: ConnectionUrl::parse(&url)?,
                        schema: None,
                        template: Some(template.name.clone()),
                        template_version: Some(t.version.to_owned()),
                        domains: vec![demo_domain(t.slug)],
                        notes: DEMO_NOTE.to_owned(),
                    },
                )
                .await?;
            added.push(t.slug.to_owned());
        }
        Ok(added)
    }

    /// Every demo tenant with its measured status. A tenant that cannot be
    /// read is reported as `failed` with the reason; the others still are.
    pub async fn overview(&self) -> Result<Vec<TenantOverview>, FleetError> {
        let template = template();
        let lineage = measure_sqlite_template(&template, &self.root.join("templates")).await?;
        let mut out = Vec::new();
        for t in tenants() {
            let path = self.tenant_path(t.slug);
            let mut row = TenantOverview {
                slug: t.slug.to_owned(),
                display_name: t.display_name.to_owned(),
                engine: Engine::Sqlite,
                isolation: Isolation::Database,
                location: path.display().to_string(),
                template: template.name.to_owned(),
                template_version: t.version.to_owned(),
                status: SchemaStatus::Failed,
                current_hash: None,
                table_count: 0,
                note: None,
            };
            match crate::introspect_sqlite(&path).await {
                Ok(snap) => {
                    let (status, hash, note) = assess(&snap, t.version, &lineage);
                    row.status = status;
                    row.current_hash = Some(hash);
                    row.table_count = u32::try_from(snap.tables.len()).unwrap_or(u32::MAX);
                    row.note = note;
                }
                Err(e) => row.note = Some(e.to_string()),
            }
            out.push(row);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_demo_fleet_has_every_status_and_survives_a_second_run() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = DemoFleet::new(dir.path());
        fleet.ensure().await.unwrap();
        let rows = fleet.overview().await.unwrap();
        let status = |slug: &str| rows.iter().find(|r| r.slug == slug).unwrap().status;
        assert_eq!(status("acme"), SchemaStatus::Synced);
        assert_eq!(status("globex"), SchemaStatus::Synced);
        assert_eq!(status("wayne"), SchemaStatus::Synced);
        assert_eq!(status("initech"), SchemaStatus::Customized);
        assert_eq!(status("umbrella"), SchemaStatus::Customized);
        assert_eq!(status("hooli"), SchemaStatus::Outdated);
        assert_eq!(status("stark"), SchemaStatus::Unknown);

        // A user's change to a tenant survives the next start.
        let initech = fleet.tenant_path("initech");
        let before = std::fs::read(&initech).unwrap();
        fleet.ensure().await.unwrap();
        assert_eq!(std::fs::read(&initech).unwrap(), before);
    }

    #[tokio::test]
    async fn an_unreadable_tenant_is_failed_and_the_rest_still_report() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = DemoFleet::new(dir.path());
        fleet.ensure().await.unwrap();
        std::fs::write(
            fleet.tenant_path("globex"),
            b"garbage, not a database at all......",
        )
        .unwrap();
        let rows = fleet.overview().await.unwrap();
        let globex = rows.iter().find(|r| r.slug == "globex").unwrap();
        assert_eq!(globex.status, SchemaStatus::Failed);
        assert!(globex
            .note
            .as_deref()
            .unwrap_or("")
            .contains("not a database"));
        assert_eq!(
            rows.iter()
                .filter(|r| r.status == SchemaStatus::Synced)
                .count(),
            2
        );
    }
}
