//! A tenant's health check: connection info present and decryptable, can
//! connect (latency), can query, server version, schema present, cache
//! working. Each step says what it found; a failed step stops the ones that
//! depend on it, and the report says so.

use std::time::Instant;

use serde::Serialize;
use tenantry_introspect::ConnectionUrl;
use tenantry_model::Engine;
use tenantry_vault::Vault;
use ts_rs::TS;

use crate::pools::{PoolSettings, PoolStats, TenantPool, TenantPools};
use crate::{Registry, RegistryError};

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct HealthCheck {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    #[ts(type = "number | null")]
    pub millis: Option<u64>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct HealthReport {
    pub slug: String,
    pub location: String,
    pub healthy: bool,
    pub server_version: Option<String>,
    pub checks: Vec<HealthCheck>,
    pub cache: PoolStats,
}

fn check(name: &str, ok: bool, detail: impl Into<String>, started: Option<Instant>) -> HealthCheck {
    HealthCheck {
        name: name.to_owned(),
        ok,
        detail: detail.into(),
        millis: started.map(|s| u64::try_from(s.elapsed().as_millis()).unwrap_or(u64::MAX)),
    }
}

/// Runs the health check of one tenant. `vault` is the opened vault, or
/// the reason it could not be opened (a locked keyring is a finding, not a
/// crash). Errors only for an unknown tenant or a broken registry.
pub async fn check_tenant(
    registry: &Registry,
    vault: Result<&Vault, &RegistryError>,
    pools: &TenantPools,
    slug: &str,
) -> Result<HealthReport, RegistryError> {
    let record = registry.tenant(slug).await?;
    let mut report = HealthReport {
        slug: record.slug.clone(),
        location: record.location.clone(),
        healthy: false,
        server_version: None,
        checks: Vec::new(),
        cache: pools.stats().await,
    };
    let url = match vault {
        Err(e) => {
            report
                .checks
                .push(check("connection info", false, e.to_string(), None));
            return Ok(report);
        }
        Ok(vault) => match registry.connection(vault, slug).await {
            Ok(url) => {
                report.checks.push(check(
                    "connection info",
                    true,
                    format!("present and decryptable with key {}", vault.key_id()),
                    None,
                ));
                url
            }
            Err(e) => {
                report
                    .checks
                    .push(check("connection info", false, e.to_string(), None));
                return Ok(report);
            }
        },
    };
    let target = Target {
        id: record.id,
        engine: record.engine,
        schema_name: record.schema_name.clone(),
    };
    report.healthy = match probe(&target, &url, pools, &mut report).await {
        // It never connected: the cache has nothing to show.
        None => false,
        Some(ok) => cache_works(&target, &url, pools, &mut report).await && ok,
    };
    report.cache = pools.stats().await;
    Ok(report)
}

/// Checks a connection that is not registered yet (the console's *Test
/// connection*): connect, query, server version and, for schema-per-tenant,
/// the schema. It uses a pool of its own, closed before it returns, so
/// nothing of the URL stays behind; a SQLite file that does not exist is
/// reported, never created.
pub async fn check_connection(
    url: &ConnectionUrl,
    schema: Option<&str>,
    settings: PoolSettings,
) -> HealthReport {
    let pools = TenantPools::new(settings);
    let mut report = HealthReport {
        slug: String::new(),
        location: url.redacted().to_owned(),
        healthy: false,
        server_version: None,
        checks: Vec::new(),
        cache: pools.stats().await,
    };
    let target = Target {
        id: 0,
        engine: url.engine(),
        schema_name: schema.map(str::to_owned),
    };
    report.healthy = probe(&target, url, &pools, &mut report)
        .await
        .unwrap_or(false);
    if let Ok(pool) = pools.get(target.id, url).await {
        pool.close().await;
    }
    report
}

/// What a probe needs to know of the tenant it checks.
struct Target {
    /// The pool cache's key.
    id: i64,
    engine: Engine,
    schema_name: Option<String>,
}

/// Connect, query, server version, schema: `None` when it stopped before
/// the server answered a query, otherwise whether every step passed.
async fn probe(
    record: &Target,
    url: &ConnectionUrl,
    pools: &TenantPools,
    report: &mut HealthReport,
) -> Option<bool> {
    let timeouts = pools.settings().timeouts;
    let pool = match pools.get(record.id, url).await {
        Ok(p) => p,
        Err(e) => {
            report
                .checks
                .push(check("connect", false, e.to_string(), None));
            return None;
        }
    };
    let started = Instant::now();
    match tokio::time::timeout(timeouts.connect, pool.acquire_and_release()).await {
        Ok(Ok(())) => report
            .checks
            .push(check("connect", true, "connected", Some(started))),
        Ok(Err(e)) => {
            report.checks.push(check(
                "connect",
                false,
                url.scrub(&e.to_string()),
                Some(started),
            ));
            return None;
        }
        Err(_) => {
            report.checks.push(check(
                "connect",
                false,
                format!("timed out after {}s", timeouts.connect.as_secs()),
                Some(started),
            ));
            return None;
        }
    }
    let started = Instant::now();
    match tokio::time::timeout(timeouts.query, pool.ping()).await {
        Ok(Ok(())) => report
            .checks
            .push(check("query", true, "SELECT 1 answered", Some(started))),
        Ok(Err(e)) => {
            report.checks.push(check(
                "query",
                false,
                url.scrub(&e.to_string()),
                Some(started),
            ));
            return None;
        }
        Err(_) => {
            report
                .checks
                .push(check("query", false, "timed out", Some(started)));
            return None;
        }
    }
    let started = Instant::now();
    match pool.server_version().await {
        Ok(v) => {
            report
                .checks
                .push(check("server version", true, v.clone(), Some(started)));
            report.server_version = Some(v);
        }
        Err(e) => report.checks.push(check(
            "server version",
            false,
            url.scrub(&e.to_string()),
            Some(started),
        )),
    }
    let schema_ok = schema_present(record, url, &pool, report).await;
    Some(report.checks.iter().all(|c| c.ok) && schema_ok)
}

/// A second use of the tenant's pool is served from the cache.
async fn cache_works(
    record: &Target,
    url: &ConnectionUrl,
    pools: &TenantPools,
    report: &mut HealthReport,
) -> bool {
    let before = pools.stats().await;
    match pools.get(record.id, url).await {
        Ok(_) => {
            let after = pools.stats().await;
            let hit = after.hits > before.hits;
            report.checks.push(check(
                "connection cache",
                hit,
                format!(
                    "{} (hits {}, misses {}, open pools {})",
                    if hit {
                        "second use served from the cache"
                    } else {
                        "second use missed the cache"
                    },
                    after.hits,
                    after.misses,
                    after.open_pools
                ),
                None,
            ));
            hit
        }
        Err(e) => {
            report
                .checks
                .push(check("connection cache", false, e.to_string(), None));
            false
        }
    }
}

/// For schema-per-tenant PostgreSQL and MySQL tenants: the schema/database exists.
async fn schema_present(
    record: &Target,
    url: &ConnectionUrl,
    pool: &TenantPool,
    report: &mut HealthReport,
) -> bool {
    let started = Instant::now();
    let (name, found) = match (pool, record.engine) {
        (TenantPool::Postgres(p), Engine::Postgres) => {
            let schema = record
                .schema_name
                .clone()
                .unwrap_or_else(|| "public".into());
            let found = sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            )
            .bind(&schema)
            .fetch_one(p)
            .await;
            (schema, found)
        }
        (TenantPool::Mysql(p), Engine::Mysql) => {
            let db = record
                .schema_name
                .clone()
                .or_else(|| url.database())
                .unwrap_or_default();
            let found = sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
            )
            .bind(&db)
            .fetch_one(p)
            .await
            .map(|n| n > 0);
            (db, found)
        }
        _ => return true,
    };
    match found {
        Ok(true) => {
            report.checks.push(check(
                "schema",
                true,
                format!("`{name}` exists"),
                Some(started),
            ));
            true
        }
        Ok(false) => {
            report.checks.push(check(
                "schema",
                false,
                format!(
                    "`{name}` does not exist yet; the schema guard creates it (`tenantry guard`)"
                ),
                Some(started),
            ));
            false
        }
        Err(e) => {
            report.checks.push(check(
                "schema",
                false,
                url.scrub(&e.to_string()),
                Some(started),
            ));
            false
        }
    }
}
