//! The fleet's status over time: one row per scan with the whole fleet's
//! status counts right after it, for the console's chart (the picture a lead
//! wants on Monday morning). The CLI's nightly scans write here too, so the
//! chart fills whether or not anyone opens the console.

use serde::Serialize;
use sqlx::Row;
use ts_rs::TS;

use crate::{current_actor, Registry, RegistryError};

/// How many scans are kept; older ones are dropped as new ones arrive (a
/// scan an hour for half a year).
pub const KEPT_SCANS: u32 = 5000;

/// One scan's summary: when, by whom, and its counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ScanSummary {
    /// When the scan finished (UTC, ISO 8601).
    pub at: String,
    pub actor: String,
    /// `I/N` when the scan read one shard of the fleet (`scan --shard`).
    pub shard: Option<String>,
    #[serde(flatten)]
    #[ts(flatten)]
    pub counts: ScanCounts,
}

/// The whole fleet's status counts right after a scan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ScanCounts {
    /// Tenants in the registry; `scanned` of them were read by this scan.
    pub tenants: u32,
    pub scanned: u32,
    pub synced: u32,
    pub outdated: u32,
    pub customized: u32,
    pub unknown: u32,
    pub failed: u32,
    #[ts(type = "number")]
    pub elapsed_ms: u64,
    pub cancelled: bool,
}

impl Registry {
    /// Records a finished scan, dropping the oldest beyond [`KEPT_SCANS`].
    pub async fn record_scan(
        &self,
        c: ScanCounts,
        shard: Option<&str>,
    ) -> Result<(), RegistryError> {
        self.authorize(crate::Action::Scan).await?;
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO scan_history (at, actor, tenants, scanned, synced, outdated, customized,
                                       unknown, failed, elapsed_ms, cancelled, shard)
             VALUES ({now}, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            now = self.backend.now()
        ))
        .bind(current_actor().account)
        .bind(i64::from(c.tenants))
        .bind(i64::from(c.scanned))
        .bind(i64::from(c.synced))
        .bind(i64::from(c.outdated))
        .bind(i64::from(c.customized))
        .bind(i64::from(c.unknown))
        .bind(i64::from(c.failed))
        .bind(i64::try_from(c.elapsed_ms).unwrap_or(i64::MAX))
        .bind(i64::from(c.cancelled))
        .bind(shard)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM scan_history WHERE id <= (SELECT max(id) FROM scan_history) - $1")
            .bind(i64::from(KEPT_SCANS))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The last `limit` scans, oldest first.
    pub async fn scan_history(&self, limit: u32) -> Result<Vec<ScanSummary>, RegistryError> {
        let rows = sqlx::query(
            "SELECT * FROM (SELECT id, at, actor, tenants, scanned, synced, outdated, customized,
                                   unknown, failed, elapsed_ms, cancelled, shard
                              FROM scan_history ORDER BY id DESC LIMIT $1) AS recent
              ORDER BY id",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let n = |c: &str| -> Result<u32, RegistryError> {
                    Ok(u32::try_from(r.try_get::<i64, _>(c)?).unwrap_or(0))
                };
                Ok(ScanSummary {
                    at: r.try_get("at")?,
                    actor: r.try_get("actor")?,
                    shard: r.try_get("shard")?,
                    counts: ScanCounts {
                        tenants: n("tenants")?,
                        scanned: n("scanned")?,
                        synced: n("synced")?,
                        outdated: n("outdated")?,
                        customized: n("customized")?,
                        unknown: n("unknown")?,
                        failed: n("failed")?,
                        elapsed_ms: u64::try_from(r.try_get::<i64, _>("elapsed_ms")?).unwrap_or(0),
                        cancelled: r.try_get::<i64, _>("cancelled")? != 0,
                    },
                })
            })
            .collect()
    }
}
