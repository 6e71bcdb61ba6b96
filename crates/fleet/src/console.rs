//! [`Fleet`]: what the desktop console holds open — the demo fleet, the
//! registry, the data key (opened lazily, so a locked keyring is a finding
//! the user can fix and retry, not a start-up crash) and the pool cache.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use tenantry_registry::health::{check_tenant, HealthReport};
use tenantry_registry::pools::{PoolSettings, TenantPools};
use tenantry_registry::{Registry, RegistryError};
use tenantry_vault::{KeyStore, Vault};
use tokio::sync::Mutex;
use ts_rs::TS;

use tenantry_introspect::Timeouts;
use tenantry_registry::templates::{Backup, TemplateSummary};
use tenantry_registry::{AuditEntry, TenantRecord};

use crate::demo::DemoFleet;
use crate::drift::{accept_customisation, diff_tenant, TenantDiff};
use crate::repair::{repair_tenant, RepairOutcome};
use crate::reset::{execute_reset, plan_reset, ResetOutcome, ResetPlan};
use crate::scan::{scan, CancelScan, ScanOptions, ScanProgress, ScanReport};
use crate::upgrade::{upgrade_tenant, UpgradeOutcome};
use crate::{FleetError, TenantOverview};

pub struct Fleet {
    demo: DemoFleet,
    registry: Registry,
    keys: Box<dyn KeyStore>,
    vault: Mutex<Option<Arc<Vault>>>,
    pools: TenantPools,
    /// The running scan's cancel switch, if a scan is running.
    scanning: std::sync::Mutex<Option<CancelScan>>,
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
}

/// Where the data key is kept and whether it could be opened.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct KeyStatus {
    pub store: String,
    pub key_id: Option<String>,
    /// The keyring entry the key is in (each registry has its own).
    pub entry: Option<String>,
    /// `{code, message}` when the key could not be opened.
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub registry: String,
}

impl Fleet {
    /// Opens everything under `data_dir`, generating the demo fleet and
    /// registering its tenants where missing. A keyring that cannot be
    /// opened is logged and reported later; it does not stop the console.
    pub async fn open(data_dir: &Path, keys: Box<dyn KeyStore>) -> Result<Self, FleetError> {
        let demo = DemoFleet::new(data_dir);
        demo.ensure().await?;
        let registry = Registry::create(&data_dir.join("registry.db")).await?;
        let fleet = Self {
            demo,
            registry,
            keys,
            vault: Mutex::new(None),
            pools: TenantPools::new(PoolSettings::default()),
            scanning: std::sync::Mutex::new(None),
        };
        match fleet.vault().await {
            Ok(vault) => {
                // Newly registered demo tenants get a first status now, so
                // the console does not open on a list of `unknown`s. Only
                // them: a real fleet is scanned when the user asks, never
                // as part of start-up.
                let added = fleet.demo.register(&fleet.registry, &vault).await?;
                if !added.is_empty() {
                    let only = ScanOptions {
                        tenants: Some(added),
                        ..ScanOptions::default()
                    };
                    if let Err(e) = scan(
                        &fleet.registry,
                        &vault,
                        &only,
                        &|_| {},
                        &CancelScan::default(),
                    )
                    .await
                    {
                        tracing::warn!(
                            code = e.code(),
                            "first scan of the demo tenants failed: {e}"
                        );
                    }
                }
            }
            Err(e) => tracing::warn!(code = e.code(), "data key not available: {e}"),
        }
        Ok(fleet)
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The vault, opened on first use and kept once it opens.
    pub async fn vault(&self) -> Result<Arc<Vault>, RegistryError> {
        let mut slot = self.vault.lock().await;
        if let Some(v) = slot.as_ref() {
            return Ok(Arc::clone(v));
        }
        let vault = Arc::new(self.registry.open_vault(self.keys.as_ref()).await?);
        *slot = Some(Arc::clone(&vault));
        Ok(vault)
    }

    /// Every demo tenant with its measured status.
    pub async fn overview(&self) -> Result<Vec<TenantOverview>, FleetError> {
        self.demo.overview().await
    }

    /// A registered tenant's health check. When the tenant is unknown and
    /// the data key cannot be opened, the key is the reason (the demo fleet
    /// is registered only once a key exists), so that is the error.
    pub async fn health(&self, slug: &str) -> Result<HealthReport, FleetError> {
        let vault = self.vault().await;
        let report = check_tenant(
            &self.registry,
            vault.as_ref().map(|v| v.as_ref()),
            &self.pools,
            slug,
        )
        .await;
        match (report, vault) {
            (Err(RegistryError::TenantNotFound { .. }), Err(key_error)) => Err(key_error.into()),
            (report, _) => Ok(report?),
        }
    }

    /// Every registered tenant.
    pub async fn tenants(&self) -> Result<Vec<TenantRecord>, FleetError> {
        Ok(self.registry.list_tenants().await?)
    }

    pub async fn tenant_detail(&self, slug: &str) -> Result<TenantDetail, FleetError> {
        Ok(TenantDetail {
            tenant: self.registry.tenant(slug).await?,
            audit: self.registry.audit_log(Some(slug), 50).await?,
            backups: self.registry.backups(Some(slug)).await?,
        })
    }

    /// Scans the whole fleet; `progress` sees results as they stream in.
    /// Only one scan runs at a time; [`Fleet::cancel_scan`] stops it.
    pub async fn scan(
        &self,
        progress: &(dyn Fn(&ScanProgress<'_>) + Send + Sync),
    ) -> Result<ScanReport, FleetError> {
        let cancel = CancelScan::default();
        {
            let mut running = self.scanning.lock().map_err(|_| FleetError::Raced)?;
            if running.is_some() {
                return Err(FleetError::Locked {
                    tenant: "the fleet (a scan is already running)".into(),
                    seconds: 0,
                });
            }
            *running = Some(cancel.clone());
        }
        let vault = self.vault().await;
        let result = match vault {
            Ok(v) => {
                scan(
                    &self.registry,
                    &v,
                    &ScanOptions::default(),
                    progress,
                    &cancel,
                )
                .await
            }
            Err(e) => Err(e.into()),
        };
        if let Ok(mut running) = self.scanning.lock() {
            *running = None;
        }
        result
    }

    /// Cancels the running scan, if any; true when one was running.
    pub fn cancel_scan(&self) -> bool {
        self.scanning
            .lock()
            .ok()
            .and_then(|r| r.as_ref().map(CancelScan::cancel))
            .is_some()
    }

    pub async fn diff(&self, slug: &str) -> Result<TenantDiff, FleetError> {
        diff_tenant(
            &self.registry,
            &*self.vault().await?,
            slug,
            Timeouts::default(),
        )
        .await
    }

    pub async fn reset_plan(&self, slug: &str) -> Result<ResetPlan, FleetError> {
        plan_reset(
            &self.registry,
            &*self.vault().await?,
            slug,
            Timeouts::default(),
        )
        .await
    }

    /// Re-plans and executes the reset the user confirmed, refusing when the
    /// tenant's hash is no longer the one the user saw in the plan.
    pub async fn reset(
        &self,
        slug: &str,
        planned_hash: &str,
        typed: &str,
    ) -> Result<ResetOutcome, FleetError> {
        let vault = self.vault().await?;
        let mut plan = plan_reset(&self.registry, &vault, slug, Timeouts::default()).await?;
        if plan.drift_hash != planned_hash {
            // Executing the fresh plan with the old hash makes the engine
            // refuse (and audit the refusal) as a stale plan.
            plan.drift_hash = planned_hash.to_owned();
        }
        execute_reset(&self.registry, &vault, &plan, typed, Timeouts::default()).await
    }

    pub async fn repair(&self, slug: &str) -> Result<RepairOutcome, FleetError> {
        repair_tenant(
            &self.registry,
            &*self.vault().await?,
            slug,
            Timeouts::default(),
        )
        .await
    }

    pub async fn accept(&self, slug: &str, note: &str) -> Result<String, FleetError> {
        accept_customisation(
            &self.registry,
            &*self.vault().await?,
            slug,
            note,
            Timeouts::default(),
        )
        .await
    }

    pub async fn upgrade(
        &self,
        slug: &str,
        to: &str,
        allow_customized: bool,
    ) -> Result<UpgradeOutcome, FleetError> {
        upgrade_tenant(
            &self.registry,
            &*self.vault().await?,
            slug,
            to,
            allow_customized,
            Timeouts::default(),
        )
        .await
    }

    /// Writes the tenant's drift report (`markdown` or `html`) under
    /// `<data dir>/reports/` and returns its path.
    pub async fn export_diff(&self, slug: &str, format: &str) -> Result<String, FleetError> {
        let d = self.diff(slug).await?;
        let (text, ext) = match format {
            "html" => (crate::drift::to_html(&d), "html"),
            "markdown" => (crate::drift::to_markdown(&d), "md"),
            other => {
                return Err(FleetError::InvalidTemplate {
                    reason: format!("unknown report format {other:?}; use markdown or html"),
                })
            }
        };
        let dir = self
            .demo
            .root()
            .parent()
            .unwrap_or(self.demo.root())
            .join("reports");
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
    pub async fn rotate_key(&self) -> Result<(String, usize), FleetError> {
        let old = self.vault().await?;
        let (new, n) = self.registry.rotate_key(self.keys.as_ref(), &old).await?;
        let id = new.key_id().to_string();
        *self.vault.lock().await = Some(Arc::new(new));
        Ok((id, n))
    }

    /// Templates with their versions, measured hashes and lint findings.
    pub async fn templates(&self) -> Result<Vec<TemplateView>, FleetError> {
        let mut out = Vec::new();
        for summary in self.registry.list_templates().await? {
            let template: crate::Template = self
                .registry
                .template(&summary.name, summary.engine)
                .await?
                .into();
            let mut measured = Vec::new();
            for v in &summary.versions {
                if let Ok(snap) = self
                    .registry
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
    ) -> Result<Vec<tenantry_registry::journal::Operation>, FleetError> {
        Ok(self.registry.killed_operations().await?)
    }

    pub async fn key_status(&self) -> KeyStatus {
        let opened = self.vault().await;
        let entry = match &opened {
            Ok(v) => self.registry.key_entry(v.key_id()).await.ok(),
            Err(_) => None,
        };
        KeyStatus {
            store: self.keys.describe(),
            key_id: opened.as_ref().ok().map(|v| v.key_id().to_string()),
            entry: entry.map(|e| e.to_string()),
            error_code: opened.as_ref().err().map(|e| e.code().to_owned()),
            error_message: opened.as_ref().err().map(ToString::to_string),
            registry: self.registry.path().display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantry_vault::{KeyStoreError, MemoryKeyStore};

    #[tokio::test]
    async fn the_console_registers_the_demo_fleet_and_checks_its_health() {
        let dir = tempfile::tempdir().unwrap();
        let fleet = Fleet::open(dir.path(), Box::<MemoryKeyStore>::default())
            .await
            .unwrap();
        assert_eq!(fleet.registry().list_tenants().await.unwrap().len(), 7);
        let report = fleet.health("acme").await.unwrap();
        assert!(report.healthy, "{report:#?}");
        let status = fleet.key_status().await;
        assert!(status.key_id.is_some() && status.error_code.is_none());
        // Opening again registers nothing twice.
        drop(fleet);
        let again = Fleet::open(dir.path(), Box::<MemoryKeyStore>::default()).await;
        // A new (empty) key store beside existing ciphertexts: the console
        // still opens, and says why the key is missing.
        let again = again.unwrap();
        assert_eq!(
            again.key_status().await.error_code.as_deref(),
            Some("key_missing")
        );
        let report = again.health("acme").await.unwrap();
        assert!(!report.healthy);
        assert_eq!(again.registry().list_tenants().await.unwrap().len(), 7);
    }

    #[tokio::test]
    async fn a_locked_keyring_does_not_stop_the_console() {
        let dir = tempfile::tempdir().unwrap();
        let keys = MemoryKeyStore::default();
        keys.fail_with(Some(KeyStoreError::AccessDenied {
            reason: "locked".into(),
        }));
        let fleet = Fleet::open(dir.path(), Box::new(keys)).await.unwrap();
        assert_eq!(fleet.overview().await.unwrap().len(), 7);
        assert_eq!(
            fleet.key_status().await.error_code.as_deref(),
            Some("keyring_access_denied")
        );
    }
}
