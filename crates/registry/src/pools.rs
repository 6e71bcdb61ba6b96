//! A bounded cache of connection pools, one per tenant.
//!
//! Architecture invariant: no session state leaks from one use of a pooled
//! connection to the next. Tenantry never sets session state on a pooled
//! connection (queries qualify their identifiers), and PostgreSQL pools run
//! `RESET ALL` when a connection is returned, so even a stray `SET
//! search_path` cannot send the next query into another tenant's schema.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{ConnectOptions, Executor};
use tenantry_introspect::{mysql, postgres, ConnectionUrl, IntrospectError, Timeouts};
use tenantry_model::Engine;
use tokio::sync::Mutex;
use ts_rs::TS;

/// A pool for one tenant's database.
#[derive(Clone)]
pub enum TenantPool {
    Postgres(PgPool),
    Mysql(MySqlPool),
    Sqlite(SqlitePool),
}

impl TenantPool {
    pub fn engine(&self) -> Engine {
        match self {
            TenantPool::Postgres(_) => Engine::Postgres,
            TenantPool::Mysql(_) => Engine::Mysql,
            TenantPool::Sqlite(_) => Engine::Sqlite,
        }
    }

    /// Opens a connection (or takes an idle one) and gives it back.
    pub async fn acquire_and_release(&self) -> Result<(), sqlx::Error> {
        match self {
            TenantPool::Postgres(p) => p.acquire().await.map(drop),
            TenantPool::Mysql(p) => p.acquire().await.map(drop),
            TenantPool::Sqlite(p) => p.acquire().await.map(drop),
        }
    }

    /// `SELECT 1`.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            TenantPool::Postgres(p) => p.execute("SELECT 1").await.map(drop),
            TenantPool::Mysql(p) => p.execute("SELECT 1").await.map(drop),
            TenantPool::Sqlite(p) => p.execute("SELECT 1").await.map(drop),
        }
    }

    pub async fn server_version(&self) -> Result<String, sqlx::Error> {
        match self {
            TenantPool::Postgres(p) => sqlx::query_scalar("SELECT version()").fetch_one(p).await,
            TenantPool::Mysql(p) => {
                sqlx::query_scalar("SELECT CAST(CONCAT(VERSION(), ' ', @@version_comment) AS CHAR)")
                    .fetch_one(p)
                    .await
            }
            TenantPool::Sqlite(p) => {
                sqlx::query_scalar("SELECT 'SQLite ' || sqlite_version()")
                    .fetch_one(p)
                    .await
            }
        }
    }

    pub async fn close(&self) {
        match self {
            TenantPool::Postgres(p) => p.close().await,
            TenantPool::Mysql(p) => p.close().await,
            TenantPool::Sqlite(p) => p.close().await,
        }
    }
}

/// Bounds of the cache.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Pools kept at most; the least recently used is closed beyond this.
    pub max_pools: usize,
    pub connections_per_pool: u32,
    /// A pool unused this long is closed.
    pub idle_expiry: Duration,
    pub timeouts: Timeouts,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_pools: 64,
            connections_per_pool: 4,
            idle_expiry: Duration::from_secs(300),
            timeouts: Timeouts::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, TS)]
#[ts(export)]
pub struct PoolStats {
    #[ts(type = "number")]
    pub hits: u64,
    #[ts(type = "number")]
    pub misses: u64,
    #[ts(type = "number")]
    pub evictions: u64,
    pub open_pools: u32,
}

struct Slot {
    pool: TenantPool,
    last_used: Instant,
}

#[derive(Default)]
struct Inner {
    slots: HashMap<i64, Slot>,
    stats: PoolStats,
}

/// The per-tenant pool cache, keyed by tenant id.
pub struct TenantPools {
    settings: PoolSettings,
    inner: Mutex<Inner>,
}

impl TenantPools {
    pub fn new(settings: PoolSettings) -> Self {
        Self {
            settings,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn settings(&self) -> PoolSettings {
        self.settings
    }

    /// The tenant's pool, from the cache or newly made (connections are
    /// opened lazily, when first used).
    pub async fn get(
        &self,
        tenant_id: i64,
        url: &ConnectionUrl,
    ) -> Result<TenantPool, IntrospectError> {
        let mut inner = self.inner.lock().await;
        let now = Instant::now();
        let expired: Vec<i64> = inner
            .slots
            .iter()
            .filter(|(_, s)| now.duration_since(s.last_used) >= self.settings.idle_expiry)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            evict(&mut inner, id);
        }
        if let Some(slot) = inner.slots.get_mut(&tenant_id) {
            slot.last_used = now;
            let pool = slot.pool.clone();
            inner.stats.hits += 1;
            return Ok(pool);
        }
        inner.stats.misses += 1;
        while inner.slots.len() >= self.settings.max_pools.max(1) {
            let oldest = inner
                .slots
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| *id);
            match oldest {
                Some(id) => evict(&mut inner, id),
                None => break,
            }
        }
        let pool = self.make_pool(url)?;
        inner.slots.insert(
            tenant_id,
            Slot {
                pool: pool.clone(),
                last_used: now,
            },
        );
        inner.stats.open_pools = u32::try_from(inner.slots.len()).unwrap_or(u32::MAX);
        Ok(pool)
    }

    /// Drops the tenant's pool (after its connection string changed).
    pub async fn invalidate(&self, tenant_id: i64) {
        let mut inner = self.inner.lock().await;
        evict(&mut inner, tenant_id);
    }

    pub async fn stats(&self) -> PoolStats {
        let inner = self.inner.lock().await;
        let mut s = inner.stats;
        s.open_pools = u32::try_from(inner.slots.len()).unwrap_or(u32::MAX);
        s
    }

    fn make_pool(&self, url: &ConnectionUrl) -> Result<TenantPool, IntrospectError> {
        let s = self.settings;
        Ok(match url.engine() {
            Engine::Postgres => TenantPool::Postgres(
                PgPoolOptions::new()
                    .max_connections(s.connections_per_pool)
                    .acquire_timeout(s.timeouts.connect)
                    .idle_timeout(s.idle_expiry)
                    .after_release(|conn, _| {
                        Box::pin(async move {
                            conn.execute("RESET ALL").await?;
                            Ok(true)
                        })
                    })
                    .connect_lazy_with(postgres::connect_options(url, s.timeouts)?),
            ),
            Engine::Mysql => TenantPool::Mysql(
                MySqlPoolOptions::new()
                    .max_connections(s.connections_per_pool)
                    .acquire_timeout(s.timeouts.connect)
                    .idle_timeout(s.idle_expiry)
                    .connect_lazy_with(mysql::connect_options(url)?),
            ),
            Engine::Sqlite => {
                let path = url.sqlite_path();
                if !path.is_file() {
                    return Err(IntrospectError::SqliteFileNotFound {
                        path: path.display().to_string(),
                    });
                }
                TenantPool::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(s.connections_per_pool)
                        .acquire_timeout(s.timeouts.connect)
                        .idle_timeout(s.idle_expiry)
                        .connect_lazy_with(
                            SqliteConnectOptions::new()
                                .filename(path)
                                .create_if_missing(false)
                                .foreign_keys(true)
                                .busy_timeout(s.timeouts.connect)
                                .disable_statement_logging(),
                        ),
                )
            }
        })
    }
}

fn evict(inner: &mut Inner, tenant_id: i64) {
    if let Some(slot) = inner.slots.remove(&tenant_id) {
        inner.stats.evictions += 1;
        // Closing waits for checked-out connections; never block the cache on it.
        tokio::spawn(async move { slot.pool.close().await });
    }
    inner.stats.open_pools = u32::try_from(inner.slots.len()).unwrap_or(u32::MAX);
}
