//! [`Fleet`]: what the desktop console holds open — the demo fleet, the
//! registry, the data key (opened lazily, so a locked keyring is a finding
//! the user can fix and retry, not a start-up crash) and the pool cache.

use std::path::Path;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tenantry_introspect::ConnectionUrl;
use tenantry_registry::health::{check_connection, check_tenant, HealthReport};
use tenantry_registry::import::{ImportMode, ImportReport, ImportRow};
use tenantry_registry::journal::JournalEvent;
use tenantry_registry::pools::{PoolSettings, TenantPools};
use tenantry_registry::{NewTenant, Registry, RegistryError, RegistryPlace};
use tenantry_vault::{KeyEntry, KeyStore, KeyStoreKind, Vault};
use tokio::sync::Mutex;
use ts_rs::TS;

use tenantry_introspect::Timeouts;
use tenantry_registry::templates::{Backup, TemplateSummary};
use tenantry_registry::{AuditEntry, TenantPage, TenantQuery, TenantRecord};

use crate::demo::DemoFleet;
use crate::drift::{accept_customisation, diff_tenant, TenantDiff};
use crate::guard::{guard_tenant, GuardReport};
use crate::repair::{repair_tenant, RepairOutcome};
use crate::reset::{execute_reset, plan_reset, ResetOutcome, ResetPlan};
use crate::scan::{scan, CancelScan, ScanOptions, ScanProgress, ScanReport};
use crate::sync::{execute_sync, plan_sync, KeepChoice, SyncOutcome, SyncPlan};
use crate::upgrade::{upgrade_tenant, UpgradeOutcome};
use crate::FleetError;

/// Which of the console's two registries a command is about. The demo
/// fleet has a registry of its own, so a user's registry holds only the
/// tenants they added, and the demo works without a keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Workspace {
    /// The built-in demo fleet (local SQLite files, no secrets).
    Demo,
    /// The user's registry, its key in the OS keyring.
    Own,
}

/// One registry with what the commands need beside it. Pools are per
/// registry: they are keyed by tenant id, which both registries number
/// from 1.
struct Side {
    registry: Registry,
    keys: Box<dyn KeyStore>,
    vault: Mutex<Option<Arc<Vault>>>,
    pools: TenantPools,
    /// The running scan's cancel switch, if a scan is running.
    scanning: std::sync::Mutex<Option<CancelScan>>,
}

impl Side {
    fn new(registry: Registry, keys: Box<dyn KeyStore>, vault: Option<Vault>) -> Self {
        Self {
            registry,
            keys,
            vault: Mutex::new(vault.map(Arc::new)),
            pools: TenantPools::new(PoolSettings::default()),
            scanning: std::sync::Mutex::new(None),
        }
    }
}

pub struct Fleet {
    demo_files: DemoFleet,
    /// The demo registry, or why it could not be opened (the console still
    /// opens on the user's registry).
    demo: Result<Side, String>,
    own: Side,
    /// What chose the user's registry.
    source: RegistrySource,
    /// Why the chosen registry is not the one open (the console then opens
    /// the file in its data directory rather than not at all).
    registry_problem: Option<String>,
    /// Where Settings keeps the registry choice: one store whichever
    /// registry is open (each registry records its own key store, and the
    /// choice must be found before any registry is). `None` when opened
    /// without one (tests): choosing is then refused.
    settings: Option<Box<dyn KeyStore>>,
}

/// What chose the console's registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum RegistrySource {
    /// The file in the console's data directory.
    Default,
    /// The registry chosen in Settings (kept in the OS keyring).
    Settings,
    /// `TENANTRY_REGISTRY`, which overrides Settings.
    Environment,
}

/// A tenant as the console's *Add tenant* form gives it: the URL without
/// its password, and the password apart (typed in a masked field).
#[derive(Deserialize, TS)]
#[ts(export)]
pub struct TenantForm {
    pub slug: String,
    pub display_name: String,
    /// The connection URL; the password may be left out of it and given in
    /// `password` instead.
    #[ts(type = "string")]
    pub url: Sensitive,
    #[ts(type = "string | null")]
    pub password: Option<Sensitive>,
    /// PostgreSQL schema for schema-per-tenant (empty: the database's own).
    pub schema: Option<String>,
    pub template: Option<String>,
    pub template_version: Option<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub notes: String,
}

/// A secret the console sends in (a URL or a password): it can be read
/// from IPC, never written back, and its `Debug` shows nothing.
pub struct Sensitive(SecretString);

impl<'de> Deserialize<'de> for Sensitive {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| Sensitive(SecretString::from(s)))
    }
}

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sensitive(•••)")
    }
}

/// The URL a form's URL and masked password fields describe: the URL,
/// with the password set as its password when one was typed.
fn form_url(url: &Sensitive, password: &Option<Sensitive>) -> Result<ConnectionUrl, FleetError> {
    let parsed = ConnectionUrl::parse(url.0.expose_secret().trim())?;
    Ok(match password {
        Some(p) if !p.0.expose_secret().is_empty() => parsed.with_password(&p.0)?,
        _ => parsed,
    })
}

/// The console's *Use an existing database as the template* form.
#[derive(Deserialize, TS)]
#[ts(export)]
pub struct CaptureForm {
    /// The reference database's URL; the password may be given apart.
    #[ts(type = "string")]
    pub url: Sensitive,
    #[ts(type = "string | null")]
    pub password: Option<Sensitive>,
    /// PostgreSQL: the reference schema (empty: `public`).
    pub schema: Option<String>,
    pub name: String,
    pub version: String,
    /// The scratch schema (PostgreSQL) or database (MySQL/MariaDB) the
    /// capture is proven in, for an account that may create only that
    /// name; empty: a fresh `tenantry_scratch_…`.
    pub scratch_name: Option<String>,
}

impl TenantForm {
    /// The URL the form describes: the URL field, with the password field
    /// set as its password when one was typed.
    pub fn connection_url(&self) -> Result<ConnectionUrl, FleetError> {
        form_url(&self.url, &self.password)
    }

    fn schema(&self) -> Option<String> {
        non_empty(&self.schema)
    }
}

/// An optional form field, trimmed; `None` when left empty.
fn non_empty(field: &Option<String>) -> Option<String> {
    field
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The console's *Import tenants* form: where the tenants come from, what
/// to do with slugs the registry already has, and whether to only preview.
#[derive(Deserialize, TS)]
#[ts(export)]
pub struct ImportForm {
    pub source: ImportSource,
    pub mode: ImportMode,
    /// Report what the import would do and write nothing.
    pub dry_run: bool,
}

/// Where an import's tenants come from. (No pasted text: a pasted list
/// would put its connection strings on the screen.)
#[derive(Deserialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[ts(export)]
pub enum ImportSource {
    /// A `.csv` or `.json` file on this machine.
    File { path: String },
    /// A read-only query on a central database; `pattern` makes each row's
    /// connection URL from its columns (`postgres://app:{password}@{host}/…`).
    Query {
        #[ts(type = "string")]
        url: Sensitive,
        #[ts(type = "string | null")]
        password: Option<Sensitive>,
        sql: String,
        #[ts(type = "string")]
        pattern: Sensitive,
    },
}

/// The console's *Add a template from a folder* form: the folder of
/// versioned migrations, and where to measure them.
#[derive(Deserialize, TS)]
#[ts(export)]
pub struct TemplateFolderForm {
    pub dir: String,
    pub name: String,
    #[ts(type = "\"postgres\" | \"mysql\" | \"sqlite\"")]
    pub engine: tenantry_model::Engine,
    /// A database Tenantry may create and drop scratch objects in; empty
    /// for SQLite (a scratch file).
    #[ts(type = "string | null")]
    pub scratch: Option<Sensitive>,
    #[ts(type = "string | null")]
    pub password: Option<Sensitive>,
    /// The scratch schema or database to measure in (empty: a fresh one).
    pub scratch_name: Option<String>,
    /// Why SQL that reaches outside the tenant is intended (empty: such a
    /// template is refused).
    pub allow_outside: Option<String>,
}

/// Runs `work` (a reset or sync of `slug`), telling `on_step` of each
/// journal entry written for that tenant meanwhile: the wizard's live
/// progress, in the order the journal holds it.
async fn with_steps<T>(
    registry: &Registry,
    slug: &str,
    work: impl std::future::Future<Output = Result<T, FleetError>>,
    on_step: &(dyn Fn(&JournalEvent) + Sync),
) -> Result<T, FleetError> {
    let mut events = registry.journal_events();
    let tell = |events: &mut tokio::sync::broadcast::Receiver<JournalEvent>| {
        while let Ok(e) = events.try_recv() {
            if e.tenant_slug == slug {
                on_step(&e);
            }
        }
    };
    tokio::pin!(work);
    loop {
        tokio::select! {
            done = &mut work => {
                tell(&mut events);
                return done;
            }
            got = events.recv() => match got {
                Ok(e) if e.tenant_slug == slug => on_step(&e),
                // Another tenant's entry, or entries lost by a slow reader:
                // the journal itself keeps them all.
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    let done = work.await;
                    tell(&mut events);
                    return done;
                }
            },
        }
    }
}

/// A template as the console shows it: versions and lint findings.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct TemplateView {
    pub summary: TemplateSummary,
    pub lint: Vec<crate::template::LintFinding>,
}

/// One tenant's page: its record, recent operations and backups.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct TenantDetail {
    pub tenant: TenantRecord,
    pub audit: Vec<AuditEntry>,
    pub backups: Vec<Backup>,
    /// Its last sync (MySQL/MariaDB) stopped part-way: the sync screen
    /// plans the rest.
    pub stopped_sync: bool,
    /// Its status and hash changes, newest first: the drift timeline.
    pub timeline: Vec<tenantry_registry::templates::StatusChange>,
}

/// Where the data key is kept and whether it could be opened.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct KeyStatus {
    pub store: String,
    /// How long the store keeps the key, when not for good (the kernel
    /// keyring: until reboot), with what to do about it.
    pub retention: Option<String>,
    pub key_id: Option<String>,
    /// The keyring entry the key is in (each registry has its own).
    pub entry: Option<String>,
    /// `{code, message}` when the key could not be opened.
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub registry: String,
    /// `sqlite` (one person's file) or `postgres` (a team's database).
    pub registry_backend: String,
    pub registry_source: RegistrySource,
    /// Why the registry chosen is not the one open, and what to do.
    pub registry_problem: Option<String>,
}

/// Who the console acts for and what they may do: every action on a
/// registry without members; on a shared one, the member's role's.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct Access {
    pub caller: Option<tenantry_registry::Caller>,
    pub members: Vec<tenantry_registry::MemberRecord>,
    pub allowed: Vec<tenantry_registry::Action>,
}

/// A sync the user confirmed in the console: the plan they saw (its hash
/// and quarantine), what they keep and why, and the slug they typed.
#[derive(Debug, Clone, Deserialize, TS)]
#[ts(export)]
pub struct SyncRequest {
    pub slug: String,
    pub planned_hash: String,
    pub planned_quarantine: String,
    pub keep: Vec<String>,
    pub note: String,
    pub confirmation: String,
}

impl Fleet {
    /// Opens the user's registry under `data_dir` and the demo fleet in its
    /// own registry beside it. A keyring that cannot be opened is logged and
    /// reported later; a demo that cannot be opened is reported on the demo's
    /// screens. Neither stops the console.
    pub async fn open(data_dir: &Path, keys: Box<dyn KeyStore>) -> Result<Self, FleetError> {
        Self::open_with(data_dir, |_| keys).await
    }

    /// [`Fleet::open`] with the key store chosen from the one the user's
    /// registry records (`None` for a registry with no key yet).
    pub async fn open_with(
        data_dir: &Path,
        keys: impl FnOnce(Option<KeyStoreKind>) -> Box<dyn KeyStore>,
    ) -> Result<Self, FleetError> {
        Self::open_at(data_dir, None, keys).await
    }

    /// [`Fleet::open_with`] on the registry chosen (a team's, from
    /// `TENANTRY_REGISTRY` or from Settings, whose choice is kept in
    /// `settings`) instead of the file in `data_dir`. A chosen registry
    /// that cannot be opened does not stop the console: it opens the file,
    /// and Settings says why and what to do.
    pub async fn open_at(
        data_dir: &Path,
        settings: Option<Box<dyn KeyStore>>,
        keys: impl FnOnce(Option<KeyStoreKind>) -> Box<dyn KeyStore>,
    ) -> Result<Self, FleetError> {
        let chosen = Self::chosen_registry(settings.as_deref());
        let demo_files = DemoFleet::new(data_dir);
        let own_path = data_dir.join("registry.db");
        let own_file = || Registry::create(&own_path);
        let (registry, source, registry_problem) = match chosen {
            None => (own_file().await?, RegistrySource::Default, None),
            Some((place, source)) => {
                let shown = place.shown();
                match Registry::open_at(place).await {
                    Ok(r) => (r, source, None),
                    Err(e) => {
                        tracing::warn!(
                            code = e.code(),
                            "the chosen registry could not be opened: {e}"
                        );
                        let problem = format!(
                            "The registry chosen {} ({shown}) could not be opened: {e}. This is your own registry on this computer until it can; {}",
                            match source {
                                RegistrySource::Environment => "by TENANTRY_REGISTRY",
                                _ => "in Settings",
                            },
                            match source {
                                RegistrySource::Environment => "fix or unset TENANTRY_REGISTRY and restart the console.",
                                _ => "restart the console to try again, or choose another registry below.",
                            }
                        );
                        (own_file().await?, RegistrySource::Default, Some(problem))
                    }
                }
            }
        };
        let keys = keys(registry.key_store().await?);
        // On a shared registry, act for the member whose key this is.
        if let Err(e) = registry.identify(keys.as_ref()).await {
            tracing::warn!(code = e.code(), "could not tell which member this is: {e}");
        }
        match demo_files.retire_from(&registry).await {
            Ok(retired) if !retired.is_empty() => tracing::info!(
                tenants = retired.len(),
                "demo tenants moved out of the user's registry into the demo's own"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(code = e.code(), "could not retire old demo tenants: {e}"),
        }
        let demo = match demo_files.open_registry().await {
            Ok(d) => Ok(Side::new(d.registry, Box::new(d.keys), Some(d.vault))),
            Err(e) => {
                tracing::warn!(code = e.code(), "demo fleet unavailable: {e}");
                Err(e.to_string())
            }
        };
        let fleet = Self {
            demo_files,
            demo,
            own: Side::new(registry, keys, None),
            source,
            registry_problem,
            settings,
        };
        if let Err(e) = fleet.vault(Workspace::Own).await {
            tracing::warn!(code = e.code(), "data key not available: {e}");
        }
        Ok(fleet)
    }

    fn side(&self, w: Workspace) -> Result<&Side, FleetError> {
        match w {
            Workspace::Own => Ok(&self.own),
            Workspace::Demo => self
                .demo
                .as_ref()
                .map_err(|reason| FleetError::DemoUnavailable {
                    reason: reason.clone(),
                    folder: self.demo_files.root().display().to_string(),
                }),
        }
    }

    /// The registry of a workspace.
    pub fn registry(&self, w: Workspace) -> Result<&Registry, FleetError> {
        Ok(&self.side(w)?.registry)
    }

    /// The workspace's vault, opened on first use and kept once it opens.
    pub async fn vault(&self, w: Workspace) -> Result<Arc<Vault>, FleetError> {
        Ok(side_vault(self.side(w)?).await?)
    }

    /// A registered tenant's health check. When the tenant is unknown and
    /// the data key cannot be opened, the key is the reason, so that is the
    /// error.
    pub async fn health(&self, w: Workspace, slug: &str) -> Result<HealthReport, FleetError> {
        let side = self.side(w)?;
        let vault = side_vault(side).await;
        let report = check_tenant(
            &side.registry,
            vault.as_ref().map(|v| v.as_ref()),
            &side.pools,
            slug,
        )
        .await;
        match (report, vault) {
            (Err(RegistryError::TenantNotFound { .. }), Err(key_error)) => Err(key_error.into()),
            (report, _) => Ok(report?),
        }
    }

    /// Checks a connection before it is registered: the *Test connection*
    /// of the console's *Add tenant* form. Nothing is stored.
    pub async fn test_connection(&self, form: &TenantForm) -> Result<HealthReport, FleetError> {
        let url = form.connection_url()?;
        Ok(check_connection(&url, form.schema().as_deref(), PoolSettings::default()).await)
    }

    /// Captures a reference database as a template version of the user's
    /// own registry (never the demo's); see [`crate::capture`].
    pub async fn capture_template(
        &self,
        w: Workspace,
        form: &CaptureForm,
    ) -> Result<crate::capture::CaptureReport, FleetError> {
        if w == Workspace::Demo {
            return Err(FleetError::DemoReadOnly {
                what: "capturing a template",
            });
        }
        let url = form_url(&form.url, &form.password)?;
        let schema = non_empty(&form.schema);
        let scratch_name = non_empty(&form.scratch_name);
        crate::capture::capture_template(
            &self.own.registry,
            &crate::capture::CaptureRequest {
                source: &url,
                schema: schema.as_deref(),
                name: form.name.trim(),
                version: form.version.trim(),
                scratch: None,
                scratch_name: scratch_name.as_deref(),
                timeouts: Timeouts::default(),
            },
        )
        .await
    }

    /// Registers a tenant in the user's own registry (never the demo's):
    /// its URL encrypted under the data key, the addition audited.
    pub async fn add_tenant(
        &self,
        w: Workspace,
        form: &TenantForm,
    ) -> Result<TenantRecord, FleetError> {
        if w == Workspace::Demo {
            return Err(FleetError::DemoReadOnly {
                what: "adding a tenant",
            });
        }
        let url = form.connection_url()?;
        let vault = self.vault(w).await?;
        let record = self
            .own
            .registry
            .add_tenant(
                &vault,
                NewTenant {
                    slug: form.slug.trim().to_owned(),
                    display_name: form.display_name.trim().to_owned(),
                    url,
                    schema: form.schema(),
                    template: non_empty(&form.template),
                    template_version: non_empty(&form.template_version),
                    domains: form.domains.clone(),
                    notes: form.notes.clone(),
                },
            )
            .await?;
        Ok(record)
    }

    /// Imports tenants into the user's own registry (never the demo's), all
    /// or nothing, or with `dry_run` only says what it would do; see
    /// [`Registry::import_as`] (audited, never removes a tenant).
    pub async fn import_tenants(
        &self,
        w: Workspace,
        form: &ImportForm,
    ) -> Result<ImportReport, FleetError> {
        if w == Workspace::Demo {
            return Err(FleetError::DemoReadOnly {
                what: "importing tenants",
            });
        }
        let rows: Vec<ImportRow> = match &form.source {
            ImportSource::File { path } => {
                tenantry_registry::import::read_file(Path::new(path.trim()))?
            }
            ImportSource::Query {
                url,
                password,
                sql,
                pattern,
            } => {
                tenantry_registry::import::rows_from_query(
                    &form_url(url, password)?,
                    sql,
                    pattern.0.expose_secret(),
                    Timeouts::default(),
                )
                .await?
            }
        };
        let vault = self.vault(w).await?;
        Ok(self
            .own
            .registry
            .import_as(&vault, rows, form.mode, form.dry_run)
            .await?)
    }

    /// Measures a folder of versioned migrations in a scratch target, lints
    /// it and stores it as a template of the user's own registry (never the
    /// demo's), as `tenantry template add` does; returns it as the
    /// Templates screen shows it.
    pub async fn add_template(
        &self,
        w: Workspace,
        form: &TemplateFolderForm,
    ) -> Result<TemplateView, FleetError> {
        if w == Workspace::Demo {
            return Err(FleetError::DemoReadOnly {
                what: "adding a template",
            });
        }
        let name = form.name.trim();
        let template = crate::Template::load_dir(Path::new(form.dir.trim()), name, form.engine)?;
        let scratch = match &form.scratch {
            Some(url) if !url.0.expose_secret().trim().is_empty() => form_url(url, &form.password)?,
            _ => crate::guard::default_scratch(form.engine)?,
        };
        let scratch_name = non_empty(&form.scratch_name);
        let allow_outside = non_empty(&form.allow_outside);
        crate::guard::register_template_allowing(
            &self.own.registry,
            &template,
            &scratch,
            scratch_name.as_deref(),
            Timeouts::default(),
            allow_outside.as_deref(),
        )
        .await?;
        self.templates(w)
            .await?
            .into_iter()
            .find(|t| t.summary.name == name && t.summary.engine == form.engine)
            .ok_or_else(|| FleetError::InvalidTemplate {
                reason: format!("template {name} was stored but cannot be read back"),
            })
    }

    /// Runs the schema guard on one tenant (create / initialise / skip,
    /// then measure), as `tenantry guard SLUG` does; audited.
    pub async fn guard(&self, w: Workspace, slug: &str) -> Result<GuardReport, FleetError> {
        let side = self.side(w)?;
        let vault = self.vault(w).await?;
        guard_tenant(&side.registry, &vault, slug, Timeouts::default()).await
    }

    /// Runs the guard on every tenant that has a template, one after the
    /// other, telling `on_report` as each finishes (as `tenantry guard
    /// --all`). A tenant that fails is reported and the others still run.
    pub async fn guard_fleet(
        &self,
        w: Workspace,
        on_report: &(dyn Fn(&GuardReport) + Sync),
    ) -> Result<Vec<GuardReport>, FleetError> {
        let side = self.side(w)?;
        let vault = self.vault(w).await?;
        let slugs: Vec<String> = side
            .registry
            .list_tenants()
            .await?
            .into_iter()
            .filter(|t| t.template.is_some())
            .map(|t| t.slug)
            .collect();
        let mut reports = Vec::with_capacity(slugs.len());
        for slug in &slugs {
            let report = guard_tenant(&side.registry, &vault, slug, Timeouts::default()).await?;
            on_report(&report);
            reports.push(report);
        }
        Ok(reports)
    }

    /// Every registered tenant.
    pub async fn tenants(&self, w: Workspace) -> Result<Vec<TenantRecord>, FleetError> {
        Ok(self.side(w)?.registry.list_tenants().await?)
    }

    /// One page of the fleet screen: the tenants `q` matches, with the
    /// fleet's counts and the filters' choices.
    pub async fn tenant_page(
        &self,
        w: Workspace,
        q: &TenantQuery,
    ) -> Result<TenantPage, FleetError> {
        Ok(self.side(w)?.registry.tenant_page(q).await?)
    }

    pub async fn tenant_detail(
        &self,
        w: Workspace,
        slug: &str,
    ) -> Result<TenantDetail, FleetError> {
        let registry = &self.side(w)?.registry;
        Ok(TenantDetail {
            tenant: registry.tenant(slug).await?,
            audit: registry.audit_log(Some(slug), 50).await?,
            backups: registry.backups(Some(slug)).await?,
            stopped_sync: crate::sync::can_resume(registry, slug).await?,
            timeline: registry.status_changes(slug, 100).await?,
        })
    }

    /// Scans a workspace's fleet; `progress` sees results as they stream
    /// in. One scan at a time per workspace; [`Fleet::cancel_scan`] stops it.
    pub async fn scan(
        &self,
        w: Workspace,
        progress: &(dyn Fn(&ScanProgress<'_>) + Send + Sync),
    ) -> Result<ScanReport, FleetError> {
        let side = self.side(w)?;
        let cancel = CancelScan::default();
        {
            let mut running = side.scanning.lock().map_err(|_| FleetError::Raced)?;
            if running.is_some() {
                return Err(FleetError::Locked {
                    tenant: "the fleet (a scan is already running)".into(),
                    seconds: 0,
                });
            }
            *running = Some(cancel.clone());
        }
        let result = match self.vault(w).await {
            Ok(v) => {
                scan(
                    &side.registry,
                    &v,
                    &ScanOptions::default(),
                    progress,
                    &cancel,
                )
                .await
            }
            Err(e) => Err(e),
        };
        if let Ok(mut running) = side.scanning.lock() {
            *running = None;
        }
        result
    }

    /// The last `limit` scans' whole-fleet counts, oldest first.
    pub async fn scan_history(
        &self,
        w: Workspace,
        limit: u32,
    ) -> Result<Vec<tenantry_registry::history::ScanSummary>, FleetError> {
        Ok(self.side(w)?.registry.scan_history(limit).await?)
    }

    /// Cancels the workspace's running scan, if any; true when one was running.
    pub fn cancel_scan(&self, w: Workspace) -> bool {
        self.side(w)
            .ok()
            .and_then(|side| side.scanning.lock().ok())
            .and_then(|r| r.as_ref().map(CancelScan::cancel))
            .is_some()
    }

    pub async fn diff(&self, w: Workspace, slug: &str) -> Result<TenantDiff, FleetError> {
        diff_tenant(
            &self.side(w)?.registry,
            &*self.vault(w).await?,
            slug,
            Timeouts::default(),
        )
        .await
    }

    pub async fn reset_plan(&self, w: Workspace, slug: &str) -> Result<ResetPlan, FleetError> {
        plan_reset(
            &self.side(w)?.registry,
            &*self.vault(w).await?,
            slug,
            Timeouts::default(),
        )
        .await
    }

    /// Re-plans and executes the reset the user confirmed, refusing when the
    /// tenant's hash is no longer the one the user saw in the plan.
    pub async fn reset(
        &self,
        w: Workspace,
        slug: &str,
        planned_hash: &str,
        typed: &str,
        on_step: &(dyn Fn(&JournalEvent) + Sync),
    ) -> Result<ResetOutcome, FleetError> {
        let registry = &self.side(w)?.registry;
        let vault = self.vault(w).await?;
        let mut plan = plan_reset(registry, &vault, slug, Timeouts::default()).await?;
        if plan.drift_hash != planned_hash {
            // Executing the fresh plan with the old hash makes the engine
            // refuse (and audit the refusal) as a stale plan.
            plan.drift_hash = planned_hash.to_owned();
        }
        let run = execute_reset(registry, &vault, &plan, typed, Timeouts::default());
        with_steps(registry, slug, run, on_step).await
    }

    pub async fn sync_plan(
        &self,
        w: Workspace,
        slug: &str,
        keep: &KeepChoice,
    ) -> Result<SyncPlan, FleetError> {
        let registry = &self.side(w)?.registry;
        let vault = self.vault(w).await?;
        // A sync that stopped part-way is finished as it was begun: its
        // kept differences, its quarantine.
        if keep.objects.is_empty() && crate::sync::can_resume(registry, slug).await? {
            return crate::sync::plan_resume(registry, &vault, slug, Timeouts::default()).await;
        }
        plan_sync(registry, &vault, slug, keep, Timeouts::default()).await
    }

    /// Re-plans and applies the sync the user confirmed, refusing (in the
    /// engine, audited) when the tenant's hash is no longer the one the
    /// user saw in the plan.
    pub async fn sync(
        &self,
        w: Workspace,
        r: &SyncRequest,
        on_step: &(dyn Fn(&JournalEvent) + Sync),
    ) -> Result<SyncOutcome, FleetError> {
        let registry = &self.side(w)?.registry;
        let vault = self.vault(w).await?;
        let keep = KeepChoice {
            objects: r.keep.clone(),
            note: r.note.clone(),
        };
        let mut plan = plan_sync(registry, &vault, &r.slug, &keep, Timeouts::default()).await?;
        r.planned_hash.clone_into(&mut plan.drift_hash);
        // Checked by the engine: used only if it is this tenant's kind of name.
        r.planned_quarantine.clone_into(&mut plan.quarantine);
        let run = execute_sync(
            registry,
            &vault,
            &plan,
            &r.confirmation,
            Timeouts::default(),
        );
        with_steps(registry, &r.slug, run, on_step).await
    }

    pub async fn repair(&self, w: Workspace, slug: &str) -> Result<RepairOutcome, FleetError> {
        repair_tenant(
            &self.side(w)?.registry,
            &*self.vault(w).await?,
            slug,
            Timeouts::default(),
        )
        .await
    }

    pub async fn accept(&self, w: Workspace, slug: &str, note: &str) -> Result<String, FleetError> {
        accept_customisation(
            &self.side(w)?.registry,
            &*self.vault(w).await?,
            slug,
            note,
            Timeouts::default(),
        )
        .await
    }

    pub async fn upgrade(
        &self,
        w: Workspace,
        slug: &str,
        to: &str,
        allow_customized: bool,
    ) -> Result<UpgradeOutcome, FleetError> {
        upgrade_tenant(
            &self.side(w)?.registry,
            &*self.vault(w).await?,
            slug,
            to,
            allow_customized,
            Timeouts::default(),
        )
        .await
    }

    /// Writes the tenant's drift report (`markdown` or `html`) to `path`
    /// (the console's save dialog), or under `<data dir>/reports/` when it
    /// names none, and returns where it went.
    pub async fn export_diff(
        &self,
        w: Workspace,
        slug: &str,
        format: &str,
        path: Option<&str>,
    ) -> Result<String, FleetError> {
        let d = self.diff(w, slug).await?;
        let (text, ext) = match format {
            "html" => (crate::drift::to_html(&d), "html"),
            "markdown" => (crate::drift::to_markdown(&d), "md"),
            other => {
                return Err(FleetError::ReportRefused {
                    reason: format!("unknown report format {other:?}; use markdown or html"),
                })
            }
        };
        if let Some(chosen) = path.map(str::trim).filter(|p| !p.is_empty()) {
            let path = std::path::PathBuf::from(chosen);
            // A report is written only as a report: the path the save
            // dialog gave, with the format's own extension.
            let allowed: &[&str] = if ext == "html" {
                &["html", "htm"]
            } else {
                &["md", "markdown"]
            };
            let fits = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| allowed.iter().any(|a| e.eq_ignore_ascii_case(a)));
            if !fits {
                return Err(FleetError::ReportRefused {
                    reason: format!(
                        "a {format} report is saved as .{}; choose a file name that ends so",
                        allowed.join(" or .")
                    ),
                });
            }
            std::fs::write(&path, text).map_err(|source| FleetError::Io {
                action: "write",
                path: path.clone(),
                source,
            })?;
            return Ok(path.display().to_string());
        }
        let root = self.demo_files.root();
        let dir = root.parent().unwrap_or(root).join("reports");
        std::fs::create_dir_all(&dir).map_err(|source| FleetError::Io {
            action: "create",
            path: dir.clone(),
            source,
        })?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let path = dir.join(format!("{slug}-drift-{stamp}.{ext}"));
        std::fs::write(&path, text).map_err(|source| FleetError::Io {
            action: "write",
            path: path.clone(),
            source,
        })?;
        Ok(path.display().to_string())
    }

    /// Re-encrypts every connection string under a new data key; returns
    /// the new key's id and how many were re-encrypted.
    pub async fn rotate_key(&self, w: Workspace) -> Result<(String, usize), FleetError> {
        let side = self.side(w)?;
        let old = self.vault(w).await?;
        let (new, n) = side.registry.rotate_key(side.keys.as_ref(), &old).await?;
        let id = new.key_id().to_string();
        *side.vault.lock().await = Some(Arc::new(new));
        Ok((id, n))
    }

    /// Templates with their versions, measured hashes and lint findings.
    pub async fn templates(&self, w: Workspace) -> Result<Vec<TemplateView>, FleetError> {
        let registry = &self.side(w)?.registry;
        let mut out = Vec::new();
        for summary in registry.list_templates().await? {
            let template: crate::Template = registry
                .template(&summary.name, summary.engine)
                .await?
                .into();
            let mut measured = Vec::new();
            for v in &summary.versions {
                if let Ok(snap) = registry
                    .template_snapshot(&summary.name, summary.engine, &v.version)
                    .await
                {
                    measured.push((v.version.clone(), snap));
                }
            }
            out.push(TemplateView {
                lint: crate::template::lint(&template, &measured),
                summary,
            });
        }
        Ok(out)
    }

    /// Destructive operations the journal shows as started and never
    /// finished (killed, or the registry was lost mid-way), with their backups.
    pub async fn unfinished_operations(
        &self,
        w: Workspace,
    ) -> Result<Vec<tenantry_registry::journal::Operation>, FleetError> {
        Ok(self.side(w)?.registry.killed_operations().await?)
    }

    pub async fn access(&self, w: Workspace) -> Result<Access, FleetError> {
        let side = self.side(w)?;
        // Asked again on every screen: members and roles change while the
        // console runs (the engine's checks use what this finds).
        side.registry.identify(side.keys.as_ref()).await?;
        Ok(Access {
            caller: side.registry.caller(),
            members: side.registry.members().await?,
            allowed: side.registry.allowed_actions().await?,
        })
    }

    pub async fn key_status(&self, w: Workspace) -> Result<KeyStatus, FleetError> {
        let side = self.side(w)?;
        let opened = self.vault(w).await;
        let entry = match &opened {
            Ok(v) => side.registry.key_entry(v.key_id()).await.ok(),
            Err(_) => None,
        };
        Ok(KeyStatus {
            store: side.keys.describe(),
            retention: side
                .keys
                .kind()
                .and_then(KeyStoreKind::retention)
                .map(str::to_owned),
            key_id: opened.as_ref().ok().map(|v| v.key_id().to_string()),
            entry: entry.map(|e| e.to_string()),
            error_code: opened.as_ref().err().map(|e| e.code().to_owned()),
            error_message: opened.as_ref().err().map(ToString::to_string),
            registry: side.registry.shown(),
            registry_backend: side.registry.backend().as_str().to_owned(),
            registry_source: match w {
                Workspace::Own => self.source,
                Workspace::Demo => RegistrySource::Default,
            },
            registry_problem: match w {
                Workspace::Own => self.registry_problem.clone(),
                Workspace::Demo => None,
            },
        })
    }
}

/// Settings' *Team registry* form: a PostgreSQL URL without its password,
/// and the password apart (typed in a masked field).
#[derive(Deserialize, TS)]
#[ts(export)]
pub struct RegistryForm {
    #[ts(type = "string")]
    pub url: Sensitive,
    #[ts(type = "string | null")]
    pub password: Option<Sensitive>,
}

impl Fleet {
    /// The registry the console opens: `TENANTRY_REGISTRY` when set, else
    /// the team registry chosen in Settings (its URL, which may hold a
    /// password, is kept in the OS keyring), else `None`: the file in the
    /// data directory.
    fn chosen_registry(settings: Option<&dyn KeyStore>) -> Option<(RegistryPlace, RegistrySource)> {
        if let Some(text) = std::env::var_os("TENANTRY_REGISTRY") {
            let place = match text.to_str() {
                Some(t) => RegistryPlace::parse(t),
                None => Ok(RegistryPlace::File(text.into())),
            };
            return match place {
                Ok(p) => Some((p, RegistrySource::Environment)),
                Err(e) => {
                    tracing::warn!(code = e.code(), "TENANTRY_REGISTRY: {e}");
                    None
                }
            };
        }
        match settings?.load_text(&KeyEntry::console_registry()) {
            Ok(Some(url)) => match RegistryPlace::parse(url.expose_secret()) {
                Ok(p) => Some((p, RegistrySource::Settings)),
                Err(e) => {
                    tracing::warn!(code = e.code(), "the registry chosen in Settings: {e}");
                    None
                }
            },
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(
                    code = e.code(),
                    "the registry chosen in Settings cannot be read: {e}"
                );
                None
            }
        }
    }

    /// Chooses the console's registry from the next start: a team's
    /// PostgreSQL registry (checked first: it opens, or is made in an
    /// empty database), or with `None` the console's own file again. The
    /// URL goes to the OS keyring, never to a file. Audited in the registry
    /// open now. Returns the registry as shown.
    pub async fn choose_registry(&self, form: Option<RegistryForm>) -> Result<String, FleetError> {
        if std::env::var_os("TENANTRY_REGISTRY").is_some() {
            return Err(FleetError::Registry(RegistryError::InvalidInput {
                field: "registry",
                reason: "TENANTRY_REGISTRY is set in the console's environment and decides the registry; unset it to choose in Settings".into(),
            }));
        }
        let settings = self.settings.as_deref().ok_or_else(|| {
            FleetError::Registry(RegistryError::InvalidInput {
                field: "registry",
                reason: "this console was opened without a place for its settings; choose the registry with TENANTRY_REGISTRY".into(),
            })
        })?;
        let entry = KeyEntry::console_registry();
        let (shown, detail) = match form {
            Some(f) => {
                let url = form_url(&f.url, &f.password)?;
                if url.engine() != tenantry_model::Engine::Postgres {
                    return Err(FleetError::Registry(RegistryError::InvalidInput {
                        field: "registry",
                        reason: "a team registry is a PostgreSQL database: give a postgres:// URL"
                            .into(),
                    }));
                }
                let secret = url.to_secret();
                let shown = try_team_registry(url).await?;
                settings
                    .save_text(&entry, &secret)
                    .map_err(RegistryError::from)?;
                (
                    shown.clone(),
                    format!("the console opens the team registry {shown} from its next start"),
                )
            }
            None => {
                settings.delete(&entry).map_err(RegistryError::from)?;
                let shown = "this computer's own registry".to_owned();
                (
                    shown,
                    "the console opens this computer's own registry from its next start".to_owned(),
                )
            }
        };
        self.own
            .registry
            .audit(
                None,
                "console.registry",
                &detail,
                tenantry_registry::AuditResult::Ok,
            )
            .await?;
        Ok(shown)
    }
}

/// Checks a team registry chosen in Settings before it is saved: a
/// `postgres://` URL whose database is a registry or becomes one (its
/// tables made, as any first use makes them). Returns the URL as shown.
async fn try_team_registry(url: ConnectionUrl) -> Result<String, FleetError> {
    let registry = Registry::create_at(RegistryPlace::Postgres(url)).await?;
    let shown = registry.shown();
    registry.close().await;
    Ok(shown)
}

/// A side's vault, opened on first use and kept once it opens.
async fn side_vault(side: &Side) -> Result<Arc<Vault>, RegistryError> {
    let mut slot = side.vault.lock().await;
    if let Some(v) = slot.as_ref() {
        return Ok(Arc::clone(v));
    }
    let vault = Arc::new(side.registry.open_vault(side.keys.as_ref()).await?);
    *slot = Some(Arc::clone(&vault));
    Ok(vault)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry_vault::{KeyStoreError, MemoryKeyStore};

    const CANARY: &str = "Canary-pw-7f3a";

    /// One in-memory keyring shared by several opens (a restart).
    #[derive(Clone, Default)]
    struct SharedKeys(Arc<MemoryKeyStore>);

    impl KeyStore for SharedKeys {
        fn load_text(
            &self,
            e: &tenantry_vault::KeyEntry,
        ) -> Result<Option<SecretString>, KeyStoreError> {
            self.0.load_text(e)
        }
        fn save_text(
            &self,
            e: &tenantry_vault::KeyEntry,
            t: &SecretString,
        ) -> Result<(), KeyStoreError> {
            self.0.save_text(e, t)
        }
        fn delete(&self, e: &tenantry_vault::KeyEntry) -> Result<(), KeyStoreError> {
            self.0.delete(e)
        }
        fn describe(&self) -> String {
            self.0.describe()
        }
    }

    fn form(slug: &str, url: &str, password: Option<&str>) -> TenantForm {
        TenantForm {
            slug: slug.into(),
            display_name: format!("{slug} Ltd"),
            url: Sensitive(SecretString::from(url.to_owned())),
            password: password.map(|p| Sensitive(SecretString::from(p.to_owned()))),
            schema: None,
            template: None,
            template_version: None,
            domains: Vec::new(),
            notes: String::new(),
        }
    }

    #[tokio::test]
    async fn the_demo_has_its_own_registry_and_the_users_stays_empty() {
        let dir = tempfile::tempdir().unwrap();
        let keys = SharedKeys::default();
        let fleet = Fleet::open(dir.path(), Box::new(keys.clone()))
            .await
            .unwrap();
        assert_eq!(fleet.tenants(Workspace::Demo).await.unwrap().len(), 7);
        assert!(fleet.tenants(Workspace::Own).await.unwrap().is_empty());
        // The keyring holds the user's registry's key only.
        assert_eq!(keys.0.entries().len(), 1, "{:?}", keys.0.entries());
        let acme = fleet
            .tenant_detail(Workspace::Demo, "acme")
            .await
            .unwrap()
            .tenant;
        assert_eq!(acme.status, tenantry_model::SchemaStatus::Synced);
        let report = fleet.health(Workspace::Demo, "acme").await.unwrap();
        assert!(report.healthy, "{report:#?}");
        assert!(fleet.health(Workspace::Own, "acme").await.is_err());
        let own = fleet.key_status(Workspace::Own).await.unwrap();
        assert!(own.key_id.is_some() && own.error_code.is_none());
        let demo = fleet.key_status(Workspace::Demo).await.unwrap();
        assert!(demo.store.starts_with("demo key file"), "{}", demo.store);
        assert_ne!(demo.registry, own.registry);

        // Opening again registers nothing twice, in either registry.
        drop(fleet);
        let again = Fleet::open(dir.path(), Box::new(keys)).await.unwrap();
        assert_eq!(again.tenants(Workspace::Demo).await.unwrap().len(), 7);
        assert!(again.tenants(Workspace::Own).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn without_a_keyring_the_demo_still_works_fully() {
        let dir = tempfile::tempdir().unwrap();
        let keys = MemoryKeyStore::default();
        keys.fail_with(Some(KeyStoreError::AccessDenied {
            reason: "locked".into(),
        }));
        let fleet = Fleet::open(dir.path(), Box::new(keys)).await.unwrap();
        assert_eq!(
            fleet
                .key_status(Workspace::Own)
                .await
                .unwrap()
                .error_code
                .as_deref(),
            Some("keyring_access_denied")
        );
        assert!(fleet.health(Workspace::Demo, "acme").await.unwrap().healthy);
        let diff = fleet.diff(Workspace::Demo, "initech").await.unwrap();
        assert!(!diff.diff.objects.is_empty());
        // The progress carries the whole fleet's counts as results stream in
        // (the console's summary while its list shows one page).
        let seen = std::sync::Mutex::new(Vec::new());
        let report = fleet
            .scan(Workspace::Demo, &|p| {
                seen.lock().unwrap().push((p.done, p.fleet));
            })
            .await
            .unwrap();
        assert_eq!(report.tenants.len(), 7);
        let seen = seen.into_inner().unwrap();
        let (done, counts) = *seen.last().unwrap();
        assert_eq!(done, 7);
        assert_eq!(
            (
                counts.synced,
                counts.customized,
                counts.outdated,
                counts.unknown,
                counts.failed
            ),
            (3, 2, 1, 1, 0)
        );
        assert!(seen
            .iter()
            .all(|(_, c)| { c.synced + c.customized + c.outdated + c.unknown + c.failed == 7 }));
        // The fleet screen's page, answered by the demo's registry.
        let page = fleet
            .tenant_page(
                Workspace::Demo,
                &TenantQuery {
                    limit: 5,
                    ..TenantQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!((page.rows.len(), page.total, page.counts), (5, 7, counts));
        // The first scan at open and this one, each with the whole fleet.
        let history = fleet.scan_history(Workspace::Demo, 10).await.unwrap();
        assert_eq!(history.len(), 2, "{history:#?}");
        let last = history.last().unwrap();
        assert_eq!((last.counts.tenants, last.counts.scanned), (7, 7));
        assert_eq!(
            (
                last.counts.synced,
                last.counts.customized,
                last.counts.outdated,
                last.counts.unknown
            ),
            (3, 2, 1, 1)
        );
        assert!(fleet
            .scan_history(Workspace::Own, 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(
            DemoFleet::new(dir.path()).overview().await.unwrap().len(),
            7
        );
    }

    #[tokio::test]
    async fn demo_tenants_an_older_version_registered_leave_the_users_registry() {
        let dir = tempfile::tempdir().unwrap();
        let keys = SharedKeys::default();
        {
            // What earlier versions did: the demo registered in the user's
            // registry, beside a real tenant.
            let registry = Registry::create(&dir.path().join("registry.db"))
                .await
                .unwrap();
            let vault = registry.open_vault(&keys).await.unwrap();
            let demo = DemoFleet::new(dir.path());
            demo.ensure().await.unwrap();
            demo.register(&registry, &vault).await.unwrap();
            registry.remove_tenant("wayne").await.unwrap();
            // A user's own tenant that merely shares a demo slug and note.
            let own_file = dir.path().join("wayne.db");
            crate::apply_sqlite_migrations(&own_file, &[])
                .await
                .unwrap();
            registry
                .add_tenant(
                    &vault,
                    NewTenant {
                        slug: "wayne".into(),
                        display_name: "Wayne (ours)".into(),
                        url: ConnectionUrl::parse(&format!("sqlite:{}", own_file.display()))
                            .unwrap(),
                        schema: None,
                        template: None,
                        template_version: None,
                        domains: vec!["wayne.demo.tenantry.dev".into()],
                        notes: "built-in demo tenant".into(),
                    },
                )
                .await
                .unwrap();
            registry.close().await;
        }
        let fleet = Fleet::open(dir.path(), Box::new(keys)).await.unwrap();
        let own = fleet.tenants(Workspace::Own).await.unwrap();
        assert_eq!(
            own.iter().map(|t| t.slug.as_str()).collect::<Vec<_>>(),
            ["wayne"],
            "only the user's own tenant stays"
        );
        assert_eq!(fleet.tenants(Workspace::Demo).await.unwrap().len(), 7);
        let audit = fleet
            .registry(Workspace::Own)
            .unwrap()
            .audit_log(Some("acme"), 10)
            .await
            .unwrap();
        assert!(
            audit.iter().any(|a| a.action == "demo.retire"),
            "{audit:#?}"
        );
        // The demo files were not touched.
        assert!(fleet.health(Workspace::Demo, "acme").await.unwrap().healthy);
    }

    #[tokio::test]
    async fn a_lost_demo_key_rebuilds_the_demo_registry_and_keeps_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let keys = SharedKeys::default();
        let fleet = Fleet::open(dir.path(), Box::new(keys.clone()))
            .await
            .unwrap();
        drop(fleet);
        std::fs::remove_file(dir.path().join("demo-fleet").join("demo-key")).unwrap();
        let fleet = Fleet::open(dir.path(), Box::new(keys)).await.unwrap();
        assert_eq!(fleet.tenants(Workspace::Demo).await.unwrap().len(), 7);
        assert!(fleet.health(Workspace::Demo, "acme").await.unwrap().healthy);
        let aside = std::fs::read_dir(dir.path().join("demo-fleet"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("registry-unreadable-")
            })
            .count();
        assert_eq!(
            aside, 1,
            "the unreadable registry is set aside, not deleted"
        );
    }

    #[tokio::test]
    async fn the_add_tenant_form_registers_in_the_users_registry_only() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(dir.path(), Box::<MemoryKeyStore>::default())
            .await
            .unwrap();
        let file = dir.path().join("mine.db");
        crate::apply_sqlite_migrations(&file, &[]).await.unwrap();
        let url = format!("sqlite:{}", file.display());

        let f = form("mine", &url, None);
        let e = fleet.add_tenant(Workspace::Demo, &f).await.unwrap_err();
        assert_eq!(e.code(), "demo_read_only");

        let checked = fleet.test_connection(&f).await.unwrap();
        assert!(checked.healthy, "{checked:#?}");
        let gone = form(
            "gone",
            &format!("sqlite:{}", dir.path().join("no.db").display()),
            None,
        );
        let checked = fleet.test_connection(&gone).await.unwrap();
        assert!(!checked.healthy);
        assert!(
            !dir.path().join("no.db").exists(),
            "a test never creates a file"
        );

        let e = fleet
            .add_tenant(Workspace::Own, &form("mine", &url, Some(CANARY)))
            .await
            .unwrap_err();
        assert!(!e.to_string().contains(CANARY), "{e}");
        let added = fleet.add_tenant(Workspace::Own, &f).await.unwrap();
        assert_eq!(added.slug, "mine");
        assert_eq!(fleet.tenants(Workspace::Own).await.unwrap().len(), 1);
        assert_eq!(fleet.tenants(Workspace::Demo).await.unwrap().len(), 7);

        let with_pw = form("pg", "postgres://app@db1/acme", Some(CANARY));
        assert!(!format!("{:?}", with_pw.password).contains(CANARY));
        let url = with_pw.connection_url().unwrap();
        assert_eq!(url.redacted(), "postgres://app:•••@db1/acme");
    }

    #[tokio::test]
    async fn the_import_form_previews_then_imports_into_the_users_registry_only() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(dir.path(), Box::<MemoryKeyStore>::default())
            .await
            .unwrap();
        let csv = dir.path().join("tenants.csv");
        std::fs::write(
            &csv,
            format!(
                "slug,url,display_name\nacme,postgres://app:{CANARY}@db1/acme,Acme\nglobex,postgres://app:{CANARY}@db1/globex,\n"
            ),
        )
        .unwrap();
        let import = |dry_run, mode| ImportForm {
            source: ImportSource::File {
                path: format!(" {} ", csv.display()),
            },
            mode,
            dry_run,
        };
        let e = fleet
            .import_tenants(Workspace::Demo, &import(false, ImportMode::Add))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "demo_read_only");

        let preview = fleet
            .import_tenants(Workspace::Own, &import(true, ImportMode::Add))
            .await
            .unwrap();
        assert_eq!(preview.added, ["acme", "globex"]);
        assert!(preview.dry_run);
        assert!(fleet.tenants(Workspace::Own).await.unwrap().is_empty());

        let done = fleet
            .import_tenants(Workspace::Own, &import(false, ImportMode::Add))
            .await
            .unwrap();
        assert_eq!(done.added, ["acme", "globex"]);
        assert_eq!(fleet.tenants(Workspace::Own).await.unwrap().len(), 2);
        assert_eq!(fleet.tenants(Workspace::Demo).await.unwrap().len(), 7);
        // Again: every slug exists, so "add" refuses the whole import and
        // "skip-existing" writes nothing.
        let e = fleet
            .import_tenants(Workspace::Own, &import(false, ImportMode::Add))
            .await
            .unwrap_err();
        assert!(!e.to_string().contains(CANARY), "{e}");
        let skipped = fleet
            .import_tenants(Workspace::Own, &import(false, ImportMode::SkipExisting))
            .await
            .unwrap();
        assert_eq!(skipped.skipped, ["acme", "globex"]);

        let registry = fleet.registry(Workspace::Own).unwrap();
        let log = registry.audit_log(None, 50).await.unwrap();
        assert!(log.iter().any(|a| a.action == "tenant.import"));
        assert!(!format!("{log:?}").contains(CANARY));
        assert!(!serde_json::to_string(&done).unwrap().contains(CANARY));

        let missing = ImportForm {
            source: ImportSource::File {
                path: dir.path().join("nope.csv").display().to_string(),
            },
            mode: ImportMode::Add,
            dry_run: true,
        };
        let e = fleet
            .import_tenants(Workspace::Own, &missing)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("nope.csv"), "{e}");
    }

    #[tokio::test]
    async fn a_template_folder_is_measured_and_stored_from_the_console() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(dir.path(), Box::<MemoryKeyStore>::default())
            .await
            .unwrap();
        let folder = dir.path().join("billing");
        for (version, sql) in [
            (
                "1.0.0",
                "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER NOT NULL);",
            ),
            ("1.1.0", "ALTER TABLE invoices ADD COLUMN note TEXT;"),
        ] {
            std::fs::create_dir_all(folder.join(version)).unwrap();
            std::fs::write(folder.join(version).join("0001.sql"), sql).unwrap();
        }
        let form = |dir: &Path| TemplateFolderForm {
            dir: dir.display().to_string(),
            name: " billing ".into(),
            engine: tenantry_model::Engine::Sqlite,
            scratch: None,
            password: None,
            scratch_name: None,
            allow_outside: None,
        };
        let e = fleet
            .add_template(Workspace::Demo, &form(&folder))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "demo_read_only");
        let e = fleet
            .add_template(Workspace::Own, &form(&dir.path().join("absent")))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("absent"), "{e}");

        let view = fleet
            .add_template(Workspace::Own, &form(&folder))
            .await
            .unwrap();
        assert_eq!(view.summary.name, "billing");
        let versions: Vec<_> = view
            .summary
            .versions
            .iter()
            .map(|v| (v.version.as_str(), v.hash.is_some()))
            .collect();
        assert_eq!(versions, [("1.0.0", true), ("1.1.0", true)]);
        assert!(fleet
            .templates(Workspace::Demo)
            .await
            .unwrap()
            .iter()
            .all(|t| t.summary.name != "billing"));

        // PostgreSQL needs a scratch target: a clear refusal, nothing stored.
        let e = fleet
            .add_template(
                Workspace::Own,
                &TemplateFolderForm {
                    name: "pg".into(),
                    engine: tenantry_model::Engine::Postgres,
                    ..form(&folder)
                },
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("scratch URL"), "{e}");
        assert_eq!(fleet.templates(Workspace::Own).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_drift_report_goes_where_the_save_dialog_says_or_to_the_reports_folder() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(dir.path(), Box::<MemoryKeyStore>::default())
            .await
            .unwrap();
        let chosen = dir.path().join("chosen report.html");
        let wrote = fleet
            .export_diff(
                Workspace::Demo,
                "initech",
                "html",
                Some(&chosen.display().to_string()),
            )
            .await
            .unwrap();
        assert_eq!(wrote, chosen.display().to_string());
        assert!(std::fs::read_to_string(&chosen)
            .unwrap()
            .contains("initech"));
        let default = fleet
            .export_diff(Workspace::Demo, "initech", "markdown", Some("  "))
            .await
            .unwrap();
        assert!(
            default.ends_with(".md") && default.contains("reports"),
            "{default}"
        );
        let e = fleet
            .export_diff(Workspace::Demo, "initech", "pdf", None)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("markdown or html"), "{e}");
        let e = fleet
            .export_diff(
                Workspace::Demo,
                "initech",
                "html",
                Some(&dir.path().join("no/such/dir/r.html").display().to_string()),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), "io");
        // Only as a report: never over a file of another kind.
        let bashrc = dir.path().join(".bashrc");
        std::fs::write(&bashrc, "keep me").unwrap();
        let e = fleet
            .export_diff(
                Workspace::Demo,
                "initech",
                "markdown",
                Some(&bashrc.display().to_string()),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains(".md or .markdown"), "{e}");
        assert_eq!(std::fs::read_to_string(&bashrc).unwrap(), "keep me");
    }

    #[tokio::test]
    async fn the_console_guard_initialises_what_is_empty_and_skips_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(dir.path(), Box::<MemoryKeyStore>::default())
            .await
            .unwrap();
        let seen = std::sync::Mutex::new(Vec::new());
        let reports = fleet
            .guard_fleet(Workspace::Demo, &|r| {
                seen.lock().unwrap().push(r.slug.clone())
            })
            .await
            .unwrap();
        assert_eq!(reports.len(), 7);
        assert_eq!(
            *seen.lock().unwrap(),
            reports.iter().map(|r| r.slug.clone()).collect::<Vec<_>>()
        );
        let stark = reports.iter().find(|r| r.slug == "stark").unwrap();
        assert_eq!(
            (stark.action, stark.status),
            (
                Some(crate::provision::GuardAction::Initialised),
                tenantry_model::SchemaStatus::Synced
            ),
            "{stark:?}"
        );
        let acme = fleet.guard(Workspace::Demo, "acme").await.unwrap();
        assert_eq!(
            acme.action,
            Some(crate::provision::GuardAction::AlreadyProvisioned)
        );
        let e = fleet.guard(Workspace::Demo, "nobody").await.unwrap_err();
        assert_eq!(e.code(), "tenant_not_found", "{e}");
    }

    #[tokio::test]
    async fn a_reset_and_a_sync_tell_their_journal_steps_as_they_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(dir.path(), Box::<MemoryKeyStore>::default())
            .await
            .unwrap();
        let steps = std::sync::Mutex::new(Vec::<String>::new());
        let plan = fleet.reset_plan(Workspace::Demo, "initech").await.unwrap();
        let out = fleet
            .reset(
                Workspace::Demo,
                "initech",
                &plan.drift_hash,
                "initech",
                &|e| {
                    assert_eq!(e.tenant_slug, "initech");
                    steps.lock().unwrap().push(e.step.clone());
                },
            )
            .await
            .unwrap();
        assert_eq!(out.status, tenantry_model::SchemaStatus::Synced);
        let seen = std::mem::take(&mut *steps.lock().unwrap());
        assert_eq!(seen.len(), 3, "{seen:#?}");
        assert!(
            seen[0].starts_with("reset started; backup: file "),
            "{seen:#?}"
        );
        assert!(
            seen[1].starts_with("in one transaction: the tables move to the backup"),
            "{seen:#?}"
        );
        assert!(
            seen[2].starts_with("finished: ok; status synced"),
            "{seen:#?}"
        );
        // What was told is what the journal holds.
        let registry = fleet.registry(Workspace::Demo).unwrap();
        let op = registry.operations(1).await.unwrap().remove(0);
        assert_eq!(
            registry.operation_steps(op.id).await.unwrap(),
            [seen[1].clone()]
        );

        let plan = fleet
            .sync_plan(Workspace::Demo, "umbrella", &KeepChoice::default())
            .await
            .unwrap();
        let request = SyncRequest {
            slug: "umbrella".into(),
            planned_hash: plan.drift_hash.clone(),
            planned_quarantine: plan.quarantine.clone(),
            keep: Vec::new(),
            note: String::new(),
            confirmation: "umbrella".into(),
        };
        fleet
            .sync(Workspace::Demo, &request, &|e| {
                steps.lock().unwrap().push(e.step.clone())
            })
            .await
            .unwrap();
        let seen = steps.lock().unwrap().clone();
        assert!(seen[0].starts_with("sync started"), "{seen:#?}");
        assert!(seen[1].contains("run in one transaction"), "{seen:#?}");
        assert!(
            seen.last().unwrap().starts_with("finished: ok"),
            "{seen:#?}"
        );
    }
}
