//! One page of the fleet, filtered, searched and sorted by the registry.
//!
//! The console's fleet screen shows a window of a fleet that can hold
//! 100,000 tenants: it asks for the rows it can show, and the registry does
//! the filtering, counting and sorting in SQL, so what crosses IPC is a page,
//! never the whole fleet.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use tenantry_model::SchemaStatus;
use ts_rs::TS;

use crate::{
    parse_status, record_from_row, tenant_select, Backend, Registry, RegistryError, TenantRecord,
};

/// How many rows a page holds when the query does not say, and at most.
pub const DEFAULT_PAGE: u32 = 200;
pub const MAX_PAGE: u32 = 1000;

/// How many tenants have each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct StatusCounts {
    pub synced: u32,
    pub outdated: u32,
    pub customized: u32,
    pub unknown: u32,
    pub failed: u32,
}

impl StatusCounts {
    pub fn add(&mut self, s: SchemaStatus) {
        *self.slot(s) += 1;
    }

    /// Takes one away (a tenant leaving status `s`); never below zero.
    pub fn remove(&mut self, s: SchemaStatus) {
        let n = self.slot(s);
        *n = n.saturating_sub(1);
    }

    /// Every tenant, whatever its status.
    pub fn total(&self) -> u32 {
        [
            self.synced,
            self.outdated,
            self.customized,
            self.unknown,
            self.failed,
        ]
        .iter()
        .fold(0u32, |a, n| a.saturating_add(*n))
    }

    fn slot(&mut self, s: SchemaStatus) -> &mut u32 {
        match s {
            SchemaStatus::Synced => &mut self.synced,
            SchemaStatus::Outdated => &mut self.outdated,
            SchemaStatus::Customized => &mut self.customized,
            SchemaStatus::Unknown => &mut self.unknown,
            SchemaStatus::Failed => &mut self.failed,
        }
    }
}

/// The order of a page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum TenantSort {
    /// Worst first (failed, customized, outdated, unknown, synced), then by
    /// slug: what needs attention on top.
    #[default]
    Status,
    Slug,
    /// Most recently checked first; never checked last.
    LastSync,
}

/// Which tenants a page shows. Every filter left empty matches all.
#[derive(Debug, Clone, Default, Serialize, Deserialize, TS)]
#[serde(default)]
#[ts(export)]
pub struct TenantQuery {
    /// Matches a slug, display name or location containing it (ignoring
    /// ASCII case), or a tenant whose current hash is exactly it.
    pub search: String,
    #[ts(type = "\"unknown\" | \"synced\" | \"customized\" | \"outdated\" | \"failed\" | null")]
    pub status: Option<SchemaStatus>,
    /// A server as [`TenantPage::servers`] lists it.
    pub server: Option<String>,
    /// A template as [`TenantPage::templates`] lists it: `name version`, or
    /// `none` for tenants without one.
    pub template: Option<String>,
    pub sort: TenantSort,
    pub offset: u32,
    /// Rows wanted: 0 means [`DEFAULT_PAGE`]; at most [`MAX_PAGE`].
    pub limit: u32,
}

/// One page of the fleet, with what the fleet screen shows around it.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct TenantPage {
    /// Tenants `offset ..` of those matching, in the query's order.
    pub rows: Vec<TenantRecord>,
    pub offset: u32,
    /// How many tenants match the query.
    pub total: u32,
    /// The whole fleet's statuses (not only the matching tenants').
    pub counts: StatusCounts,
    /// Every server and template in the fleet, sorted: the filters' choices.
    pub servers: Vec<String>,
    pub templates: Vec<String>,
}

/// A tenant's template as the filter names it.
const TEMPLATE_LABEL: &str = "CASE WHEN t.template IS NULL THEN 'none'
      ELSE rtrim(t.template || ' ' || COALESCE(t.template_version, '')) END";

/// The filter, as a WHERE clause over `tenants t` with its parameters
/// $1 search (lower case), $2 status, $3 server, $4 template.
fn filter(backend: Backend) -> String {
    let has = |column: &str| backend.contains(column, "$1");
    format!(
        "WHERE ($1 = '' OR {} OR {}
                OR {} OR t.current_hash = $1)
           AND ($2 IS NULL OR t.status = $2)
           AND ($3 IS NULL OR t.server = $3)
           AND ($4 IS NULL OR ({TEMPLATE_LABEL}) = $4)",
        has("t.slug"),
        has("lower(t.display_name)"),
        has("lower(t.location)")
    )
}

/// Worst first: the expression of the `tenants_attention` index (migration
/// 0018), which SQLite walks in order instead of sorting the fleet.
const ATTENTION_ORDER: &str = "ORDER BY CASE t.status WHEN 'failed' THEN 0 WHEN 'customized' THEN 1
                       WHEN 'outdated' THEN 2 WHEN 'unknown' THEN 3 ELSE 4 END, t.slug";

fn order(sort: TenantSort) -> &'static str {
    match sort {
        TenantSort::Status => ATTENTION_ORDER,
        TenantSort::Slug => "ORDER BY t.slug",
        TenantSort::LastSync => "ORDER BY t.last_sync_at IS NULL, t.last_sync_at DESC, t.slug",
    }
}

impl Registry {
    /// One page of the tenants `q` matches, with the fleet's counts and
    /// the filters' choices; read in one snapshot of the registry.
    pub async fn tenant_page(&self, q: &TenantQuery) -> Result<TenantPage, RegistryError> {
        let search = q.search.trim().to_lowercase();
        let status = q.status.map(|s| s.as_str());
        let limit = match q.limit {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        // No registry text holds a NUL (names are checked on the way in,
        // and PostgreSQL text cannot hold one), so a search for one matches
        // nothing; PostgreSQL would refuse it as a parameter.
        let impossible = search.contains('\0');
        let mut tx = self.read_tx().await?;
        let where_ = filter(self.backend);
        let rows = if impossible {
            Vec::new()
        } else {
            sqlx::query(&format!(
                "{} {where_} {} LIMIT $5 OFFSET $6",
                tenant_select(self.backend),
                order(q.sort)
            ))
            .bind(&search)
            .bind(status)
            .bind(&q.server)
            .bind(&q.template)
            .bind(i64::from(limit))
            .bind(i64::from(q.offset))
            .fetch_all(&mut *tx)
            .await?
        };
        let rows = rows
            .iter()
            .map(record_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let mut counts = StatusCounts::default();
        for r in sqlx::query("SELECT status, count(*) AS n FROM tenants GROUP BY status")
            .fetch_all(&mut *tx)
            .await?
        {
            let n: i64 = r.try_get("n")?;
            *counts.slot(parse_status(&r.try_get::<String, _>("status")?)) +=
                u32::try_from(n).unwrap_or(u32::MAX);
        }
        // Unfiltered, or by status alone, the counts already say how many
        // match (read in the same snapshot); otherwise they are counted.
        let total = match (search.is_empty(), &q.server, &q.template, q.status) {
            _ if impossible => 0,
            (true, None, None, None) => counts.total(),
            (true, None, None, Some(s)) => *counts.slot(s),
            _ => {
                let n: i64 =
                    sqlx::query_scalar(&format!("SELECT count(*) FROM tenants t {where_}"))
                        .bind(&search)
                        .bind(status)
                        .bind(&q.server)
                        .bind(&q.template)
                        .fetch_one(&mut *tx)
                        .await?;
                u32::try_from(n).unwrap_or(u32::MAX)
            }
        };
        let servers: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT server FROM tenants WHERE server IS NOT NULL ORDER BY server",
        )
        .fetch_all(&mut *tx)
        .await?;
        // Read from the `tenants_template` index, labelled as the filter
        // names them ([`TEMPLATE_LABEL`]).
        let pairs: Vec<(Option<String>, Option<String>)> =
            sqlx::query_as("SELECT DISTINCT template, template_version FROM tenants")
                .fetch_all(&mut *tx)
                .await?;
        let mut templates: Vec<String> = pairs
            .into_iter()
            .map(|(template, version)| match template {
                None => "none".to_owned(),
                Some(t) => format!("{t} {}", version.unwrap_or_default())
                    .trim_end_matches(' ')
                    .to_owned(),
            })
            .collect();
        templates.sort();
        templates.dedup();
        tx.commit().await?;
        Ok(TenantPage {
            rows,
            offset: q.offset,
            total,
            counts,
            servers,
            templates,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default order is the `tenants_attention` index's expression: a
    /// deep page walks the index instead of sorting the fleet. Written in
    /// two places (the migration and [`ATTENTION_ORDER`]), so the plan is
    /// checked, and so are the status counts' and the template choices'.
    #[tokio::test]
    async fn the_fleet_page_reads_its_indexes_not_the_whole_table() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::create(&dir.path().join("r.db")).await.unwrap();
        let plan = |sql: String| {
            let pool = registry.pool().clone();
            async move {
                let rows: Vec<(i64, i64, i64, String)> =
                    sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                        .bind("")
                        .bind(None::<String>)
                        .bind(None::<String>)
                        .bind(None::<String>)
                        .bind(200)
                        .bind(5000)
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("; ")
            }
        };
        let page = plan(format!(
            "{} {} {ATTENTION_ORDER} LIMIT $5 OFFSET $6",
            tenant_select(Backend::Sqlite),
            filter(Backend::Sqlite)
        ))
        .await;
        // (A temporary b-tree further on orders one tenant's domains.)
        assert!(
            page.starts_with("SCAN t USING INDEX tenants_attention;"),
            "{page}"
        );
        let counts = plan("SELECT status, count(*) FROM tenants GROUP BY status".into()).await;
        assert!(counts.contains("COVERING INDEX tenants_status"), "{counts}");
        let templates =
            plan("SELECT DISTINCT template, template_version FROM tenants".into()).await;
        assert!(
            templates.contains("COVERING INDEX tenants_template"),
            "{templates}"
        );
    }
}
