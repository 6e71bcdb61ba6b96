//! Upgrading a tenant to a newer template version: a drift check first
//! (refused when customized unless explicitly allowed), then the migrations
//! after the tenant's actual version, under the tenant lock, in one
//! transaction where the engine allows, verified against the target
//! version's measured hash.

use serde::Serialize;
use sqlx::{Connection, Executor};
use tenantry_introspect::{mysql, postgres, sqlite, ConnectionUrl, IntrospectError, Timeouts};
use tenantry_model::{classify, hash_schema, DriftHash, Engine, SchemaStatus};
use tenantry_registry::templates::TenantCheck;
use tenantry_registry::{AuditResult, Registry};
use tenantry_vault::Vault;
use ts_rs::TS;

use crate::guard::{read_tenant, tenant_schema};
use crate::provision::{mysql_lock, mysql_unlock};
use crate::template::Migration;
use crate::{catalog, FleetError};

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct UpgradeOutcome {
    pub slug: String,
    pub from: String,
    pub to: String,
    pub applied: Vec<String>,
    #[ts(type = "\"unknown\" | \"synced\" | \"customized\" | \"outdated\" | \"failed\"")]
    pub status: SchemaStatus,
    pub hash: String,
    /// Set when the tenant was customized and the upgrade was allowed anyway.
    pub warning: Option<String>,
}

fn migration_failed(url: &ConnectionUrl, m: &Migration, e: &sqlx::Error, note: &str) -> FleetError {
    FleetError::Migration {
        migration: m.name.to_string(),
        path: url.server_label().into(),
        reason: format!("{}{note}", url.scrub(&e.to_string())),
    }
}

/// Upgrades `slug` to template version `target`.
pub async fn upgrade_tenant(
    registry: &Registry,
    vault: &Vault,
    slug: &str,
    target: &str,
    allow_customized: bool,
    timeouts: Timeouts,
) -> Result<UpgradeOutcome, FleetError> {
    registry
        .authorize(tenantry_registry::Action::Upgrade)
        .await?;
    let result = upgrade_inner(registry, vault, slug, target, allow_customized, timeouts).await;
    crate::audit_outcome(
        registry,
        slug,
        "upgrade",
        &result,
        |o| {
            let detail = format!(
                "{} → {}: applied {}; status {}",
                o.from,
                o.to,
                o.applied.join(", "),
                o.status
            );
            let outcome = if o.status == SchemaStatus::Failed {
                AuditResult::Failed
            } else {
                AuditResult::Ok
            };
            (detail, outcome)
        },
        true,
    )
    .await?;
    result
}

async fn upgrade_inner(
    registry: &Registry,
    vault: &Vault,
    slug: &str,
    target: &str,
    allow_customized: bool,
    timeouts: Timeouts,
) -> Result<UpgradeOutcome, FleetError> {
    let record = registry.tenant(slug).await?;
    let (Some(name), Some(recorded)) = (record.template.clone(), record.template_version.clone())
    else {
        return Err(FleetError::InvalidTemplate {
            reason: format!("tenant {slug} has no template version to upgrade from"),
        });
    };
    let template =
        crate::template::applicable_template(registry, &name, record.engine, target).await?;
    let lineage = crate::guard::current_lineage(registry, &name, record.engine, timeouts).await?;
    let position = |v: &str| template.versions.iter().position(|x| x.version == v);
    let target_pos = position(target).ok_or_else(|| FleetError::UnknownVersion {
        template: name.clone(),
        version: target.to_owned(),
        known: template
            .versions
            .iter()
            .map(|v| v.version.clone())
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    let target_hash = lineage
        .iter()
        .find(|v| v.version == target)
        .map(|v| v.hash)
        .ok_or_else(|| FleetError::InvalidTemplate {
            reason: format!("version {target} of {name} was never measured"),
        })?;
    let url = registry.connection(vault, slug).await?;
    let now = hash_schema(&read_tenant(&record, &url, timeouts).await?).root;

    // Where the tenant actually is: its recorded version, or the older
    // version its hash matches.
    let (from, warning) = match classify(&now, &recorded, &lineage) {
        SchemaStatus::Synced => (recorded.clone(), None),
        SchemaStatus::Outdated => {
            let actual = lineage.iter().find(|v| v.hash == now).map(|v| v.version.clone()).unwrap_or(recorded.clone());
            (actual, None)
        }
        status if allow_customized => (
            recorded.clone(),
            Some(format!("the tenant was {status} before the upgrade; its customisation stays and the result will not match {target} exactly")),
        ),
        status => {
            return Err(FleetError::UpgradeRefused {
                slug: slug.to_owned(),
                reason: format!("its schema is {status} (hash {now}); look at `tenantry diff {slug}`, reset it, or allow the upgrade of a customized tenant explicitly"),
            })
        }
    };
    let from_pos = position(&from).unwrap_or(0);
    if target_pos <= from_pos {
        return Err(FleetError::UpgradeRefused {
            slug: slug.to_owned(),
            reason: format!("it is already on {from}; {target} is not newer"),
        });
    }
    let migrations: Vec<&Migration> = template.versions[from_pos + 1..=target_pos]
        .iter()
        .flat_map(|v| &v.migrations)
        .collect();
    let schema = tenant_schema(&record, &url);
    let verify = warning.is_none().then_some(target_hash);
    let (applied, after) = match record.engine {
        Engine::Postgres => {
            upgrade_postgres(&url, &schema, now, &migrations, verify, timeouts).await?
        }
        Engine::Mysql => upgrade_mysql(&url, &schema, &migrations, timeouts).await?,
        Engine::Sqlite => upgrade_sqlite(&url, now, &migrations, verify).await?,
    };
    registry.set_template_version(slug, target).await?;
    let status = classify(&after, target, &lineage);
    registry
        .record_check(&TenantCheck {
            slug: slug.to_owned(),
            status,
            reason: warning.clone(),
            hash: Some(after),
            provisioned: false,
            fingerprint: None,
        })
        .await?;
    Ok(UpgradeOutcome {
        slug: slug.to_owned(),
        from,
        to: target.to_owned(),
        applied,
        status,
        hash: after.to_string(),
        warning,
    })
}

async fn upgrade_postgres(
    url: &ConnectionUrl,
    schema: &str,
    expected_now: DriftHash,
    migrations: &[&Migration],
    verify: Option<DriftHash>,
    timeouts: Timeouts,
) -> Result<(Vec<String>, DriftHash), FleetError> {
    let mut conn = postgres::connect(url, timeouts).await?;
    let result = async {
        let mut tx = crate::provision::locked_tx(&mut conn, url, schema).await?;
        let schemas = [schema.to_owned()];
        let hash_now = |found: &std::collections::BTreeMap<
            String,
            tenantry_model::SchemaSnapshot,
        >| found.get(schema).map(|s| hash_schema(s).root);
        let before = postgres::introspect_schemas(&mut tx, &schemas)
            .await
            .map_err(|e| catalog(url, &e))?;
        if hash_now(&before) != Some(expected_now) {
            return Err(FleetError::PlanStale {
                slug: schema.to_owned(),
                reason: "the schema changed during the upgrade's drift check; run it again".into(),
            });
        }
        sqlx::query("SELECT set_config('search_path', $1, true)")
            .bind(tenantry_model::quote::postgres(schema))
            .execute(&mut *tx)
            .await
            .map_err(|e| catalog(url, &e))?;
        let mut applied = Vec::new();
        for m in migrations {
            tx.execute(m.sql.as_ref())
                .await
                .map_err(|e| migration_failed(url, m, &e, "; the upgrade was rolled back"))?;
            applied.push(m.name.to_string());
        }
        let after = postgres::introspect_schemas(&mut tx, &schemas)
            .await
            .map_err(|e| catalog(url, &e))?;
        let after = hash_now(&after).unwrap_or(expected_now);
        if let Some(v) = verify {
            if after != v {
                return Err(FleetError::VerifyFailed {
                    slug: schema.to_owned(),
                    found: after.to_string(),
                    expected: v.to_string(),
                });
            }
        }
        tx.commit().await.map_err(|e| catalog(url, &e))?;
        Ok((applied, after))
    }
    .await;
    postgres::close(conn).await;
    result
}

async fn upgrade_mysql(
    url: &ConnectionUrl,
    schema: &str,
    migrations: &[&Migration],
    timeouts: Timeouts,
) -> Result<(Vec<String>, DriftHash), FleetError> {
    let mut conn = mysql::connect(&url.with_database("")?, timeouts).await?;
    let result = async {
        mysql_lock(&mut conn, url, schema).await?;
        conn.execute(format!("USE {}", tenantry_model::quote::mysql(schema)).as_str())
            .await
            .map_err(|e| catalog(url, &e))?;
        let mut applied = Vec::new();
        for m in migrations {
            conn.execute(m.sql.as_ref()).await.map_err(|e| {
                migration_failed(
                    url,
                    m,
                    &e,
                    &format!(
                        "; MySQL/MariaDB commit DDL implicitly: applied before the failure: {}",
                        if applied.is_empty() {
                            "none".into()
                        } else {
                            applied.join(", ")
                        }
                    ),
                )
            })?;
            applied.push(m.name.to_string());
        }
        let found = mysql::introspect_schemas(&mut conn, &[schema.to_owned()])
            .await
            .map_err(|e| catalog(url, &e))?;
        let after = found
            .get(schema)
            .map(|s| hash_schema(s).root)
            .ok_or_else(|| {
                FleetError::Introspect(IntrospectError::SchemaNotFound {
                    server: url.server_label(),
                    schema: schema.to_owned(),
                })
            })?;
        Ok((applied, after))
    }
    .await;
    mysql_unlock(&mut conn, schema).await;
    mysql::close(conn).await;
    result
}

async fn upgrade_sqlite(
    url: &ConnectionUrl,
    expected_now: DriftHash,
    migrations: &[&Migration],
    verify: Option<DriftHash>,
) -> Result<(Vec<String>, DriftHash), FleetError> {
    let mut conn = crate::open_sqlite_writer(url, false).await?;
    let result = async {
        conn.execute("BEGIN IMMEDIATE")
            .await
            .map_err(|e| catalog(url, &e))?;
        let before = hash_schema(
            &sqlite::introspect(&mut conn)
                .await
                .map_err(|e| catalog(url, &e))?,
        )
        .root;
        if before != expected_now {
            return Err(FleetError::PlanStale {
                slug: url.redacted().to_owned(),
                reason: "the schema changed during the upgrade's drift check; run it again".into(),
            });
        }
        let mut applied = Vec::new();
        for m in migrations {
            conn.execute(m.sql.as_ref())
                .await
                .map_err(|e| migration_failed(url, m, &e, "; the upgrade was rolled back"))?;
            applied.push(m.name.to_string());
        }
        let after = hash_schema(
            &sqlite::introspect(&mut conn)
                .await
                .map_err(|e| catalog(url, &e))?,
        )
        .root;
        if let Some(v) = verify {
            if after != v {
                return Err(FleetError::VerifyFailed {
                    slug: url.redacted().to_owned(),
                    found: after.to_string(),
                    expected: v.to_string(),
                });
            }
        }
        conn.execute("COMMIT").await.map_err(|e| catalog(url, &e))?;
        Ok((applied, after))
    }
    .await;
    if result.is_err() {
        let _ = conn.execute("ROLLBACK").await;
    }
    let _ = conn.close().await;
    result
}
