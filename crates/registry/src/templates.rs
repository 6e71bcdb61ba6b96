//! Templates in the registry: their versions in order, each version's
//! migrations, and the schema hash measured for each version.

use serde::Serialize;
use sqlx::Row;
use tenantry_model::{DriftHash, Engine, SchemaSnapshot, SchemaStatus, TemplateVersionHash};
use ts_rs::TS;

use crate::{AuditResult, Registry, RegistryError};

/// A template version as stored: its migrations (name, SQL) in order.
pub struct StoredVersion {
    pub version: String,
    pub migrations: Vec<(String, String)>,
    pub hash: Option<DriftHash>,
    /// The measured canonical model, for diffs.
    pub snapshot: Option<SchemaSnapshot>,
    /// Why this version may reach outside the tenant's schema, who allowed
    /// it and when; `None`: not allowed.
    pub outside_allowed: Option<String>,
}

/// A template as the registry holds it.
pub struct StoredTemplate {
    pub name: String,
    pub engine: Engine,
    pub versions: Vec<StoredVersion>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct TemplateSummary {
    pub name: String,
    #[ts(type = "\"postgres\" | \"mysql\" | \"sqlite\"")]
    pub engine: Engine,
    pub versions: Vec<TemplateVersionSummary>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct TemplateVersionSummary {
    pub version: String,
    pub migrations: u32,
    pub hash: Option<String>,
    pub measured_at: Option<String>,
}

impl Registry {
    /// Stores (or replaces) a template with its measured version hashes.
    /// Replacing a version whose hash changed is refused: tenants were
    /// classified against it; publish a new version instead.
    pub async fn save_template(&self, t: &StoredTemplate) -> Result<(), RegistryError> {
        self.authorize(crate::Action::Templates).await?;
        let result = self.save_template_inner(t).await;
        let label = format!("{} ({})", t.name, t.engine);
        self.audited(None, "template.save", result).await?;
        let versions: Vec<&str> = t.versions.iter().map(|v| v.version.as_str()).collect();
        self.audit(
            None,
            "template.save",
            &format!("{label}: versions {}", versions.join(", ")),
            AuditResult::Ok,
        )
        .await
    }

    async fn save_template_inner(&self, t: &StoredTemplate) -> Result<(), RegistryError> {
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO templates (name, engine) VALUES ($1, $2) ON CONFLICT (name, engine) DO NOTHING")
            .bind(&t.name)
            .bind(t.engine.as_str())
            .execute(&mut *tx)
            .await?;
        let id: i64 =
            sqlx::query_scalar("SELECT id FROM templates WHERE name = $1 AND engine = $2")
                .bind(&t.name)
                .bind(t.engine.as_str())
                .fetch_one(&mut *tx)
                .await?;
        for (position, v) in t.versions.iter().enumerate() {
            let existing: Option<Option<String>> = sqlx::query_scalar(
                "SELECT schema_hash FROM template_versions WHERE template_id = $1 AND version = $2",
            )
            .bind(id)
            .bind(&v.version)
            .fetch_optional(&mut *tx)
            .await?;
            let new_hash = v.hash.map(|h| h.to_string());
            if let Some(Some(old)) = &existing {
                // A hash of an older canonical format is replaced by its
                // re-measure; a changed schema under the same format is not.
                let remeasured = match (old.parse::<DriftHash>(), v.hash) {
                    (Ok(old), Some(new)) => old.format() != new.format(),
                    (Err(_), Some(_)) => true,
                    _ => false,
                };
                if !remeasured && new_hash.as_deref().is_some_and(|n| n != old) {
                    return Err(RegistryError::InvalidInput {
                        field: "template",
                        reason: format!(
                            "version {} of {} already exists with another schema ({old}); publish the change as a new version",
                            v.version, t.name
                        ),
                    });
                }
            }
            let json = match &v.snapshot {
                Some(snap) => {
                    Some(
                        serde_json::to_string(snap).map_err(|e| RegistryError::Database {
                            reason: format!("cannot encode the measured schema: {e}"),
                        })?,
                    )
                }
                None => None,
            };
            sqlx::query(
                &format!("INSERT INTO template_versions (template_id, version, schema_hash, measured_at, position, schema_json, outside_allowed)
                 VALUES ($1, $2, $3, CASE WHEN $3 IS NULL THEN NULL ELSE {now} END, $4, $5, $6)
                 ON CONFLICT (template_id, version) DO UPDATE SET
                     schema_hash = COALESCE(excluded.schema_hash, template_versions.schema_hash),
                     measured_at = COALESCE(excluded.measured_at, template_versions.measured_at),
                     schema_json = COALESCE(excluded.schema_json, template_versions.schema_json),
                     position = excluded.position,
                     outside_allowed = excluded.outside_allowed", now = self.backend.now()),
            )
            .bind(id)
            .bind(&v.version)
            .bind(&new_hash)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(json)
            .bind(v.outside_allowed.as_deref().map(crate::escape_controls))
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM template_migrations WHERE template_id = $1 AND version = $2")
                .bind(id)
                .bind(&v.version)
                .execute(&mut *tx)
                .await?;
            for (seq, (name, sql)) in v.migrations.iter().enumerate() {
                sqlx::query(
                    "INSERT INTO template_migrations (template_id, version, seq, name, sql) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(id)
                .bind(&v.version)
                .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                .bind(name)
                .bind(sql)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Loads a template with its migrations and hashes.
    pub async fn template(
        &self,
        name: &str,
        engine: Engine,
    ) -> Result<StoredTemplate, RegistryError> {
        let id: i64 =
            sqlx::query_scalar("SELECT id FROM templates WHERE name = $1 AND engine = $2")
                .bind(name)
                .bind(engine.as_str())
                .fetch_optional(self.pool())
                .await?
                .ok_or_else(|| RegistryError::InvalidInput {
                    field: "template",
                    reason: format!(
                        "no {engine} template named {name:?}; add it with `tenantry template add`"
                    ),
                })?;
        let versions = sqlx::query(
            "SELECT version, schema_hash, outside_allowed FROM template_versions WHERE template_id = $1 ORDER BY position, version",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::new();
        for v in versions {
            let version: String = v.try_get("version")?;
            let hash: Option<String> = v.try_get("schema_hash")?;
            let outside_allowed: Option<String> = v.try_get("outside_allowed")?;
            let migrations: Vec<(String, String)> = sqlx::query_as(
                "SELECT name, sql FROM template_migrations WHERE template_id = $1 AND version = $2 ORDER BY seq",
            )
            .bind(id)
            .bind(&version)
            .fetch_all(self.pool())
            .await?;
            out.push(StoredVersion {
                version,
                migrations,
                hash: hash.and_then(|h| h.parse().ok()),
                snapshot: None,
                outside_allowed,
            });
        }
        Ok(StoredTemplate {
            name: name.to_owned(),
            engine,
            versions: out,
        })
    }

    /// The measured canonical model of one template version.
    pub async fn template_snapshot(
        &self,
        name: &str,
        engine: Engine,
        version: &str,
    ) -> Result<SchemaSnapshot, RegistryError> {
        let json: Option<Option<String>> = sqlx::query_scalar(
            "SELECT v.schema_json FROM template_versions v JOIN templates t ON t.id = v.template_id
              WHERE t.name = $1 AND t.engine = $2 AND v.version = $3",
        )
        .bind(name)
        .bind(engine.as_str())
        .bind(version)
        .fetch_optional(self.pool())
        .await?;
        let missing = || {
            RegistryError::InvalidInput {
            field: "template",
            reason: format!(
                "{name} {version} ({engine}) has no measured schema; run `tenantry template add` again to measure it"
            ),
        }
        };
        let json = json.flatten().ok_or_else(missing)?;
        serde_json::from_str(&json).map_err(|e| RegistryError::Database {
            reason: format!("the stored schema of {name} {version} cannot be read: {e}"),
        })
    }

    /// The measured hashes of a template's versions, oldest first.
    pub async fn lineage(
        &self,
        name: &str,
        engine: Engine,
    ) -> Result<Vec<TemplateVersionHash>, RegistryError> {
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT v.version, v.schema_hash FROM template_versions v JOIN templates t ON t.id = v.template_id
              WHERE t.name = $1 AND t.engine = $2 ORDER BY v.position, v.version",
        )
        .bind(name)
        .bind(engine.as_str())
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(version, hash)| {
                Some(TemplateVersionHash {
                    version,
                    hash: hash?.parse().ok()?,
                })
            })
            .collect())
    }

    pub async fn list_templates(&self) -> Result<Vec<TemplateSummary>, RegistryError> {
        let rows = sqlx::query(
            "SELECT t.name, t.engine, v.version, v.schema_hash, v.measured_at,
                    (SELECT count(*) FROM template_migrations m WHERE m.template_id = t.id AND m.version = v.version) AS migrations
               FROM templates t LEFT JOIN template_versions v ON v.template_id = t.id
              ORDER BY t.name, t.engine, v.position, v.version",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out: Vec<TemplateSummary> = Vec::new();
        for r in rows {
            let name: String = r.try_get("name")?;
            let engine = crate::parse_engine(&r.try_get::<String, _>("engine")?);
            if out
                .last()
                .is_none_or(|t| t.name != name || t.engine != engine)
            {
                out.push(TemplateSummary {
                    name: name.clone(),
                    engine,
                    versions: Vec::new(),
                });
            }
            if let (Some(t), Some(version)) =
                (out.last_mut(), r.try_get::<Option<String>, _>("version")?)
            {
                t.versions.push(TemplateVersionSummary {
                    version,
                    migrations: u32::try_from(r.try_get::<i64, _>("migrations")?).unwrap_or(0),
                    hash: r.try_get("schema_hash")?,
                    measured_at: r.try_get("measured_at")?,
                });
            }
        }
        Ok(out)
    }

    /// Records the outcome of checking one tenant.
    pub async fn record_check(&self, check: &TenantCheck) -> Result<(), RegistryError> {
        self.record_checks(std::slice::from_ref(check)).await
    }

    /// Records many check outcomes in one transaction (a fleet scan). A
    /// tenant whose status or hash changes gets a `tenant.status` row in
    /// the audit log (`customized → synced; hash v7:… → v7:…`): its drift
    /// timeline. Unchanged tenants cost one batched read, no write.
    pub async fn record_checks(&self, checks: &[TenantCheck]) -> Result<(), RegistryError> {
        self.authorize(crate::Action::Scan).await?;
        let actor = self.actor_name();
        let mut tx = self.write_tx().await?;
        let slugs: Vec<&str> = checks.iter().map(|c| c.slug.as_str()).collect();
        let before: std::collections::HashMap<String, (String, Option<String>)> =
            sqlx::query_as::<_, (String, String, Option<String>)>(&format!(
                "SELECT slug, status, current_hash FROM tenants WHERE slug IN ({})",
                self.backend.json_strings("$1")
            ))
            .bind(serde_json::to_string(&slugs).unwrap_or_default())
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(slug, status, hash)| (slug, (status, hash)))
            .collect();
        // Each status or hash that moves is one audit row, all appended at
        // once.
        let mut changes: Vec<(&str, String)> = Vec::new();
        for c in checks {
            if let Some((status, hash)) = before.get(&c.slug) {
                let new_hash = c.hash.map(|h| h.to_string());
                let hash_changed = new_hash.is_some() && new_hash != *hash;
                if status != c.status.as_str() || hash_changed {
                    let mut detail = format!("{status} → {}", c.status.as_str());
                    if hash_changed {
                        detail.push_str(&format!(
                            "; hash {} → {}",
                            hash.as_deref().unwrap_or("none"),
                            new_hash.as_deref().unwrap_or("none")
                        ));
                    }
                    if let Some(reason) = &c.reason {
                        detail.push_str(&format!("; why: {reason}"));
                    }
                    changes.push((&c.slug, detail));
                }
            }
        }
        let notes: Vec<crate::AuditNote> = changes
            .iter()
            .map(|(slug, detail)| crate::AuditNote {
                tenant: Some(slug),
                action: STATUS_CHANGE,
                detail,
                result: crate::AuditResult::Ok,
            })
            .collect();
        crate::audit_many_in(&mut tx, &actor, &notes).await?;
        // One statement for the whole scan: at 100,000 tenants a statement
        // per tenant made the registry, not the servers, the cost of a
        // re-check.
        let rows: Vec<serde_json::Value> = checks
            .iter()
            .map(|c| {
                serde_json::json!([
                    c.slug,
                    c.status.as_str(),
                    c.reason,
                    c.hash.map(|h| h.to_string()),
                    // Text, which both backends' `->>` read alike.
                    if c.provisioned { "1" } else { "0" },
                    c.fingerprint,
                ])
            })
            .collect();
        let rows = serde_json::to_string(&rows).map_err(|e| RegistryError::Database {
            reason: format!("cannot encode the checks: {e}"),
        })?;
        sqlx::query(&format!(
            "WITH c AS (SELECT value ->> 0 AS slug, value ->> 1 AS status, value ->> 2 AS reason,
                               value ->> 3 AS hash, value ->> 4 AS provisioned,
                               value ->> 5 AS fingerprint
                          FROM {elements})
             UPDATE tenants SET status = c.status, status_reason = c.reason,
                    current_hash = COALESCE(c.hash, current_hash),
                    initial_hash = CASE WHEN c.provisioned = '1' THEN COALESCE(initial_hash, c.hash)
                                        ELSE initial_hash END,
                    last_sync_at = CASE WHEN c.hash IS NULL THEN last_sync_at
                                        ELSE {now} END,
                    catalog_fingerprint = c.fingerprint,
                    updated_at = {now}
               FROM c WHERE tenants.slug = c.slug",
            now = self.backend.now(),
            elements = self.backend.json_elements("$1")
        ))
        .bind(rows)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The audit action of a tenant's status or hash change.
pub const STATUS_CHANGE: &str = "tenant.status";

impl TenantCheck {
    /// A check that failed for `reason` (the hash is left as it was).
    pub fn failed(slug: &str, reason: String) -> Self {
        Self {
            slug: slug.to_owned(),
            status: SchemaStatus::Failed,
            reason: Some(reason),
            hash: None,
            provisioned: false,
            fingerprint: None,
        }
    }
}

/// The outcome of checking one tenant, to record.
#[derive(Debug, Clone)]
pub struct TenantCheck {
    pub slug: String,
    pub status: SchemaStatus,
    pub reason: Option<String>,
    /// The measured hash; `None` when the schema could not be read.
    pub hash: Option<DriftHash>,
    /// The template was just applied: the hash becomes the initial hash.
    pub provisioned: bool,
    /// The catalog fingerprint seen with this hash (PostgreSQL), if any.
    pub fingerprint: Option<String>,
}

/// A backup taken before a reset.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct Backup {
    #[ts(type = "number")]
    pub id: i64,
    pub tenant_slug: String,
    #[ts(type = "\"postgres\" | \"mysql\" | \"sqlite\"")]
    pub engine: Engine,
    /// The quarantine schema or database, or the backup file's path.
    pub location: String,
    pub drift_hash: Option<String>,
    pub created_at: String,
    pub purged_at: Option<String>,
    /// The id of the tenant the backup was taken from (a slug can be removed
    /// and reused; an id never is). `None`: taken before ids were recorded,
    /// under a slug that has since been given to another tenant.
    #[ts(type = "number | null")]
    pub tenant_id: Option<i64>,
    /// Where that tenant lived (its redacted location and schema).
    pub tenant_place: Option<String>,
}

impl Backup {
    /// Whether `tenant` is the tenant this backup was taken from: the same
    /// id, at the same place. A restore or purge anywhere else is refused.
    pub fn belongs_to(&self, tenant: &crate::TenantRecord) -> bool {
        self.tenant_id == Some(tenant.id) && self.tenant_place.as_deref() == Some(&place_of(tenant))
    }
}

/// A tenant's place as backups record it.
pub(crate) fn place_of(t: &crate::TenantRecord) -> String {
    format!("{} {}", t.location, t.schema_name.as_deref().unwrap_or(""))
}

impl Registry {
    pub async fn record_backup(
        &self,
        slug: &str,
        engine: Engine,
        location: &str,
        drift_hash: Option<&str>,
    ) -> Result<i64, RegistryError> {
        let tenant = self.tenant(slug).await?;
        Ok(sqlx::query_scalar(
            "INSERT INTO backups (tenant_slug, engine, location, drift_hash, tenant_id, tenant_place)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(slug)
        .bind(engine.as_str())
        .bind(location)
        .bind(drift_hash)
        .bind(tenant.id)
        .bind(place_of(&tenant))
        .fetch_one(self.pool())
        .await?)
    }

    pub async fn backups(&self, slug: Option<&str>) -> Result<Vec<Backup>, RegistryError> {
        let rows = sqlx::query(
            "SELECT id, tenant_slug, engine, location, drift_hash, created_at, purged_at, tenant_id, tenant_place
               FROM backups
              WHERE $1 IS NULL OR tenant_id = (SELECT id FROM tenants WHERE slug = $1)
              ORDER BY id DESC",
        )
        .bind(slug)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Backup {
                    id: r.try_get("id")?,
                    tenant_slug: r.try_get("tenant_slug")?,
                    engine: crate::parse_engine(&r.try_get::<String, _>("engine")?),
                    location: r.try_get("location")?,
                    drift_hash: r.try_get("drift_hash")?,
                    created_at: r.try_get("created_at")?,
                    purged_at: r.try_get("purged_at")?,
                    tenant_id: r.try_get("tenant_id")?,
                    tenant_place: r.try_get("tenant_place")?,
                })
            })
            .collect()
    }

    pub async fn mark_backup_purged(&self, id: i64) -> Result<(), RegistryError> {
        sqlx::query(&format!(
            "UPDATE backups SET purged_at = {now} WHERE id = $1",
            now = self.backend.now()
        ))
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

/// One change of a tenant's status or hash, as a scan, guard, sync, reset
/// or upgrade recorded it in the audit log: the tenant's drift timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct StatusChange {
    pub at: String,
    pub actor: String,
    #[ts(type = "\"unknown\" | \"synced\" | \"customized\" | \"outdated\" | \"failed\"")]
    pub from: String,
    #[ts(type = "\"unknown\" | \"synced\" | \"customized\" | \"outdated\" | \"failed\"")]
    pub to: String,
    /// The new hash, when it changed.
    pub hash: Option<String>,
    pub reason: Option<String>,
}

impl StatusChange {
    /// Reads a `tenant.status` row's detail back
    /// (`from → to[; hash a → b][; why: reason]`), as
    /// [`Registry::record_checks`] writes it.
    fn parse(at: String, actor: String, detail: &str) -> Option<Self> {
        let (head, reason) = match detail.split_once("; why: ") {
            Some((head, reason)) => (head, Some(reason.to_owned())),
            None => (detail, None),
        };
        let (statuses, hash) = match head.split_once("; hash ") {
            Some((statuses, hashes)) => (
                statuses,
                hashes.split_once(" → ").map(|(_, new)| new.to_owned()),
            ),
            None => (head, None),
        };
        let (from, to) = statuses.split_once(" → ")?;
        Some(Self {
            at,
            actor,
            from: from.to_owned(),
            to: to.to_owned(),
            hash,
            reason,
        })
    }
}

impl Registry {
    /// The tenant's status and hash changes, newest first.
    pub async fn status_changes(
        &self,
        slug: &str,
        limit: u32,
    ) -> Result<Vec<StatusChange>, RegistryError> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT at, actor, detail FROM audit_log
              WHERE tenant_id = (SELECT id FROM tenants WHERE slug = $1) AND action = $2
              ORDER BY id DESC LIMIT $3",
        )
        .bind(slug)
        .bind(STATUS_CHANGE)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(at, actor, detail)| StatusChange::parse(at, actor, &detail))
            .collect())
    }
}

#[cfg(test)]
mod status_change_tests {
    use super::StatusChange;

    #[test]
    fn a_status_change_is_read_back_as_written() {
        let c = StatusChange::parse(
            "t".into(),
            "ann".into(),
            "synced → customized; hash v7:a → v7:b; why: accepted; with a semicolon",
        )
        .unwrap();
        assert_eq!(
            (
                c.from.as_str(),
                c.to.as_str(),
                c.hash.as_deref(),
                c.reason.as_deref()
            ),
            (
                "synced",
                "customized",
                Some("v7:b"),
                Some("accepted; with a semicolon")
            )
        );
        let c = StatusChange::parse(
            "t".into(),
            "ann".into(),
            "customized → failed; why: hash mismatch",
        )
        .unwrap();
        assert_eq!((c.hash, c.reason.as_deref()), (None, Some("hash mismatch")));
    }
}
