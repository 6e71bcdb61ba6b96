//! The fleet drift scan: every tenant (or a filter) measured and classified,
//! with bounded concurrency, per-server batching, progress, cancellation,
//! and per-tenant errors that never stop the rest.
//!
//! Batching: tenants that share a PostgreSQL database (schema-per-tenant)
//! are read with one connection and a few catalog round trips per 500
//! schemas; MySQL/MariaDB tenants on one server likewise (one connection,
//! `TABLE_SCHEMA IN (…)`). A large batch is split into equal tasks
//! (`schemas_per_task`); at most `concurrency` tasks run at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use secrecy::ExposeSecret;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tenantry_introspect::{mysql, postgres, ConnectionUrl, IntrospectError, Timeouts};
use tenantry_model::{
    classify, hash_schema, DriftHash, Engine, SchemaSnapshot, SchemaStatus, TemplateVersionHash,
};
use tenantry_registry::history::ScanCounts;
use tenantry_registry::templates::TenantCheck;
use tenantry_registry::{AuditResult, Registry, TenantRecord};
use tenantry_vault::Vault;
use tokio::sync::Semaphore;
use ts_rs::TS;

use crate::guard::{read_tenant, tenant_schema};
use crate::FleetError;

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ScanResult {
    pub slug: String,
    /// Where its schema lives (`schema tenant_42`, `database pgt_0001`),
    /// shown beside the slug.
    pub place: String,
    #[ts(type = "\"unknown\" | \"synced\" | \"customized\" | \"outdated\" | \"failed\"")]
    pub status: SchemaStatus,
    pub hash: Option<String>,
    /// Why, when the status needs explaining (or the error, when `failed`).
    pub reason: Option<String>,
    pub template: Option<String>,
    pub template_version: Option<String>,
    /// The catalog had not changed since the last check: the stored hash was
    /// reused instead of reading the schema again.
    pub reused: bool,
    /// Customized, but equal to the customisation accepted as this tenant's
    /// baseline: not alerted on.
    pub accepted: bool,
    #[serde(skip)]
    #[ts(skip)]
    fingerprint: Option<String>,
}

pub use tenantry_registry::page::StatusCounts;

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ScanReport {
    pub counts: StatusCounts,
    pub tenants: Vec<ScanResult>,
    #[ts(type = "number")]
    pub elapsed_ms: u64,
    /// The scan was cancelled; `tenants` holds those finished before.
    pub cancelled: bool,
    /// Tenants whose catalog had not changed, so their stored hash was reused.
    pub reused: u32,
    /// Customized tenants grouped by shared customisation (same hash),
    /// largest group first.
    pub groups: Vec<CustomisationGroup>,
    /// Tenants this scan found in another status than the one stored
    /// before it, by slug: what the alerts are about.
    pub moved: Vec<StatusMove>,
}

/// A tenant whose status this scan changed.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct StatusMove {
    pub slug: String,
    #[ts(type = "\"unknown\" | \"synced\" | \"customized\" | \"outdated\" | \"failed\"")]
    pub from: SchemaStatus,
    #[ts(type = "\"unknown\" | \"synced\" | \"customized\" | \"outdated\" | \"failed\"")]
    pub to: SchemaStatus,
    pub reason: Option<String>,
    pub hash: Option<String>,
    /// Customized, but as accepted for this tenant: not alerted on.
    pub accepted: bool,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct CustomisationGroup {
    pub hash: String,
    pub tenants: Vec<String>,
}

fn group_customisations(results: &[ScanResult]) -> Vec<CustomisationGroup> {
    let mut by_hash: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for r in results
        .iter()
        .filter(|r| r.status == SchemaStatus::Customized)
    {
        if let Some(h) = &r.hash {
            by_hash.entry(h).or_default().push(r.slug.clone());
        }
    }
    let mut groups: Vec<CustomisationGroup> = by_hash
        .into_iter()
        .map(|(hash, tenants)| CustomisationGroup {
            hash: hash.to_owned(),
            tenants,
        })
        .collect();
    groups.sort_by(|a, b| {
        b.tenants
            .len()
            .cmp(&a.tenants.len())
            .then(a.hash.cmp(&b.hash))
    });
    groups
}

pub struct ScanOptions {
    pub concurrency: usize,
    /// Read every schema even where the catalog fingerprint (PostgreSQL, MariaDB)
    /// says nothing changed since the last check.
    pub full: bool,
    /// Only these slugs (all tenants when `None`).
    pub tenants: Option<Vec<String>>,
    /// Only the tenants on this shard's servers (all when `None`).
    pub shard: Option<Shard>,
    pub timeouts: Timeouts,
}

/// One of `count` parts of the fleet, split by server, so several machines
/// can scan one shared registry in parallel (`tenantry scan --shard I/N`).
///
/// A server's shard is a pure function of its name (`postgres://host:port`
/// as the registry stores it) and `count`: every machine computes the same
/// split without talking to the others, and a server stays in its shard
/// as tenants and servers come and go. Whole servers go together, so two
/// machines never open connections to one server at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based, as written.
    index: u32,
    count: u32,
}

impl Shard {
    pub fn new(index: u32, count: u32) -> Result<Self, String> {
        if count == 0 || count > 1024 {
            return Err(format!(
                "a fleet is split into 1 to 1024 shards, not {count}"
            ));
        }
        if index == 0 || index > count {
            return Err(format!(
                "shard {index} of {count}: the first is 1, the last {count}"
            ));
        }
        Ok(Self { index, count })
    }

    /// Whether the tenants on `server` belong to this shard.
    pub fn holds(&self, server: &str) -> bool {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(server.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        u64::from_be_bytes(first) % u64::from(self.count) == u64::from(self.index - 1)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a shard: write I/N, e.g. 2/4 for the second of four");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        Self::new(
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        )
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            concurrency: 8,
            full: false,
            tenants: None,
            shard: None,
            timeouts: Timeouts::default(),
        }
    }
}

/// Progress after each finished batch: results stream in.
pub struct ScanProgress<'a> {
    pub done: usize,
    pub total: usize,
    pub finished: &'a [ScanResult],
    /// The whole fleet's statuses so far: what this scan has read, and the
    /// stored status of every tenant it has not (yet).
    pub fleet: StatusCounts,
}

/// What the console's progress bar receives after each batch.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ScanProgressEvent {
    pub done: u32,
    pub total: u32,
    pub finished: Vec<ScanResult>,
    /// The whole fleet's statuses so far (the console's summary while the
    /// list shows only a page).
    pub fleet: StatusCounts,
}

impl From<&ScanProgress<'_>> for ScanProgressEvent {
    fn from(p: &ScanProgress<'_>) -> Self {
        Self {
            done: u32::try_from(p.done).unwrap_or(u32::MAX),
            total: u32::try_from(p.total).unwrap_or(u32::MAX),
            finished: p.finished.to_vec(),
            fleet: p.fleet,
        }
    }
}

/// Cancels a running scan from another task or thread.
#[derive(Clone, Default)]
pub struct CancelScan(Arc<AtomicBool>);

impl CancelScan {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The fewest tenants of one database or server worth a task of their own.
const MIN_SCHEMAS_PER_TASK: usize = 50;

/// How many of a batch's `n` tenants one task reads: at most what one
/// round trip of catalog queries covers (each task scans pg_class once), but
/// a large batch goes to at least two tasks, so a server process and the
/// client both have work on a two-core machine; the tasks get equal shares.
fn schemas_per_task(n: usize) -> usize {
    let most = n
        .div_ceil(2)
        .clamp(MIN_SCHEMAS_PER_TASK, postgres::SCHEMAS_PER_ROUND_TRIP);
    equal_shares(n, most)
}

/// The size of the fewest equal shares of `n` that hold at most `most` each.
fn equal_shares(n: usize, most: usize) -> usize {
    n.div_ceil(n.div_ceil(most).max(1)).max(1)
}

/// How many MySQL/MariaDB databases one task reads, and how many tasks read
/// one server at once. information_schema opens every table it reports on
/// (CREATE_OPTIONS, foreign keys, index types, checks: a full open, through
/// the server's table cache, `table_open_cache` 2000 by default); tasks of
/// 50 databases of the 40-table bench template, several at once, kept
/// ~4,000 tables in flight and re-opened them for every statement. Two
/// tasks of 25 at a time per server measured 1,030 -> 700 ms of server CPU
/// and 615 -> 440 ms wall per 100 databases; eight at once gave nothing.
const MYSQL_SCHEMAS_PER_TASK: usize = 25;
const MYSQL_TASKS_PER_SERVER: usize = 2;

/// How many of a MySQL server's `n` databases one task reads: equal shares
/// of at most [`MYSQL_SCHEMAS_PER_TASK`].
fn mysql_schemas_per_task(n: usize) -> usize {
    equal_shares(n, MYSQL_SCHEMAS_PER_TASK)
}

/// A task's share of one batch, with its server's own limit (MySQL).
type Piece = (Engine, Vec<Job>, Option<Arc<Semaphore>>);

/// The batches' pieces, one from each batch in turn.
fn interleave<T>(batches: Vec<Vec<T>>) -> Vec<T> {
    let mut iters: Vec<_> = batches.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::new();
    loop {
        let before = out.len();
        for it in &mut iters {
            out.extend(it.next());
        }
        if out.len() == before {
            return out;
        }
    }
}

/// One tenant to measure, with what classifying it needs.
struct Job {
    record: TenantRecord,
    url: ConnectionUrl,
    schema: String,
    lineage: Arc<Vec<TemplateVersionHash>>,
}

impl Job {
    /// The stored hash, when the catalog fingerprint says it still holds
    /// and it was made with the current canonical format (an older one is
    /// measured again, never carried over).
    fn reusable(&self, fingerprint: Option<&String>) -> Option<DriftHash> {
        if fingerprint? != recheckable(&self.record)? {
            return None;
        }
        let stored: DriftHash = self.record.current_hash.as_deref()?.parse().ok()?;
        (stored.format() == tenantry_model::CanonicalFormat::CURRENT).then_some(stored)
    }
}

/// The catalog fingerprint a re-check compares with, when the tenant has
/// one worth asking the server about: stored by a successful check that
/// also stored a hash. A tenant without one is read in full whatever the
/// server says, so its fingerprint is not asked for.
fn recheckable(record: &TenantRecord) -> Option<&String> {
    if record.status == SchemaStatus::Failed || record.current_hash.is_none() {
        return None;
    }
    record.catalog_fingerprint.as_ref()
}

/// The hash of a schema with no objects, for reused results.
fn empty_hash(engine: Engine) -> DriftHash {
    hash_schema(&SchemaSnapshot::new(engine)).root
}

fn fingerprint(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Which batch a tenant belongs to. The key is a digest of the connection
/// target, so no connection string is kept as a map key.
fn batch_key(engine: Engine, url: &ConnectionUrl) -> [u8; 32] {
    match engine {
        Engine::Postgres => fingerprint(url.to_secret().expose_secret()),
        Engine::Mysql => url
            .with_database("")
            .map(|u| fingerprint(u.to_secret().expose_secret()))
            .unwrap_or_else(|_| fingerprint(url.to_secret().expose_secret())),
        Engine::Sqlite => fingerprint(&url.sqlite_path().display().to_string()),
    }
}

/// What was measured for a tenant: its hash and whether the schema is
/// empty, from a fresh read or reused from the last check.
struct Measured {
    hash: DriftHash,
    empty: bool,
}

impl Measured {
    fn of(snap: &SchemaSnapshot) -> Self {
        Self {
            hash: hash_schema(snap).root,
            empty: snap.is_empty(),
        }
    }
}

fn result_for(job: &Job, measured: Result<Measured, String>) -> ScanResult {
    let mut r = ScanResult {
        slug: job.record.slug.clone(),
        place: job.record.place(),
        status: SchemaStatus::Failed,
        hash: None,
        reason: None,
        template: job.record.template.clone(),
        template_version: job.record.template_version.clone(),
        reused: false,
        accepted: false,
        fingerprint: None,
    };
    let Measured { hash, empty } = match measured {
        Ok(m) => m,
        Err(reason) => {
            r.reason = Some(reason);
            return r;
        }
    };
    r.hash = Some(hash.to_string());
    match (&job.record.template_version, job.lineage.is_empty(), empty) {
        (_, _, true) => {
            r.status = SchemaStatus::Unknown;
            r.reason = Some(
                "the schema holds no objects: the template has not been applied (run the guard)"
                    .into(),
            );
        }
        (None, _, _) | (_, true, _) => {
            r.status = SchemaStatus::Unknown;
            r.reason = Some("no measured template version to compare with".into());
        }
        (Some(version), false, false) => {
            r.status = classify(&hash, version, &job.lineage);
            r.reason = match (&job.record.accepted_hash, &job.record.accepted_note) {
                (Some(a), note)
                    if r.status == SchemaStatus::Customized && *a == hash.to_string() =>
                {
                    r.accepted = true;
                    Some(format!(
                        "accepted customisation: {}",
                        note.as_deref().unwrap_or("")
                    ))
                }
                // Accepted under an older canonical format: that is not
                // drift, but neither can it be matched any more.
                (Some(a), _)
                    if r.status == SchemaStatus::Customized
                        && a.parse::<tenantry_model::DriftHash>()
                            .is_ok_and(|a| a.format() != hash.format()) =>
                {
                    r.status = SchemaStatus::Unknown;
                    Some(format!(
                        "its customisation was accepted under canonical format {}: review the diff and accept it again (`tenantry accept`)",
                        a.split(':').next().unwrap_or_default()
                    ))
                }
                _ => crate::explain(r.status, &hash, version, &job.lineage),
            };
        }
    }
    r
}

/// Measures a batch of tenants that share one connection target.
async fn run_batch(
    engine: Engine,
    jobs: Vec<Job>,
    timeouts: Timeouts,
    full: bool,
) -> Vec<ScanResult> {
    let Some(first) = jobs.first() else {
        return Vec::new();
    };
    let timed_out = || IntrospectError::QueryTimeout {
        server: first.url.server_label(),
        seconds: timeouts.query.as_secs(),
    };
    match engine {
        Engine::Postgres => {
            let read = async {
                let mut conn = postgres::connect_for_catalog(&first.url, timeouts).await?;
                let work = async {
                    // A full scan reads everything, and each read brings
                    // its own fingerprint: no separate fingerprint pass.
                    // Nor is there one for tenants that have no fingerprint
                    // to compare with (a fleet's first scan).
                    let known: HashMap<String, String> = jobs
                        .iter()
                        .filter(|_| !full)
                        .filter_map(|j| Some((j.schema.clone(), recheckable(&j.record)?.clone())))
                        .collect();
                    let fingerprints = if known.is_empty() {
                        HashMap::new()
                    } else {
                        postgres::catalog_fingerprints(&mut conn, &known).await?
                    };
                    let stale: Vec<String> = jobs
                        .iter()
                        .filter(|j| full || j.reusable(fingerprints.get(&j.schema)).is_none())
                        .map(|j| j.schema.clone())
                        .collect();
                    let read = postgres::read_schemas(&mut conn, &stale).await?;
                    Ok::<_, sqlx::Error>((fingerprints, read))
                };
                let out = tokio::time::timeout(timeouts.query, work).await;
                postgres::close(conn).await;
                match out {
                    Ok(r) => r.map_err(|e| postgres::catalog_error(&first.url, &e)),
                    Err(_) => Err(timed_out()),
                }
            }
            .await;
            match read {
                Ok((fingerprints, found)) => {
                    batch_results(&jobs, &fingerprints, full, Engine::Postgres, |schema| {
                        found
                            .get(schema)
                            .map(|r| (&r.snapshot, Some(r.fingerprint.clone())))
                    })
                }
                Err(e) => jobs
                    .iter()
                    .map(|job| result_for(job, Err(e.to_string())))
                    .collect(),
            }
        }
        Engine::Mysql => {
            let read = async {
                let server = first.url.with_database("")?;
                let mut conn = mysql::connect(&server, timeouts).await?;
                let work = async {
                    // As for PostgreSQL: fingerprints only for tenants that
                    // have one stored, and never on a full scan; a full
                    // read brings its own.
                    let known: Vec<String> = jobs
                        .iter()
                        .filter(|_| !full)
                        .filter(|j| recheckable(&j.record).is_some())
                        .map(|j| j.schema.clone())
                        .collect();
                    let fingerprints = if known.is_empty() {
                        HashMap::new()
                    } else {
                        mysql::catalog_fingerprints(&mut conn, &known).await?
                    };
                    let stale: Vec<String> = jobs
                        .iter()
                        .filter(|j| full || j.reusable(fingerprints.get(&j.schema)).is_none())
                        .map(|j| j.schema.clone())
                        .collect();
                    let read = if stale.is_empty() {
                        Default::default()
                    } else {
                        mysql::read_schemas(&mut conn, &stale).await?
                    };
                    Ok::<_, sqlx::Error>((fingerprints, read))
                };
                let out = tokio::time::timeout(timeouts.query, work).await;
                mysql::close(conn).await;
                match out {
                    Ok(r) => r.map_err(|e| mysql::catalog_error(&first.url, &e)),
                    Err(_) => Err(timed_out()),
                }
            }
            .await;
            match read {
                Ok((fingerprints, found)) => {
                    batch_results(&jobs, &fingerprints, full, Engine::Mysql, |schema| {
                        found
                            .get(schema)
                            .map(|r| (&r.snapshot, r.fingerprint.clone()))
                    })
                }
                Err(e) => jobs
                    .iter()
                    .map(|job| result_for(job, Err(e.to_string())))
                    .collect(),
            }
        }
        Engine::Sqlite => {
            let mut out = Vec::new();
            for job in &jobs {
                let snap = read_tenant(&job.record, &job.url, timeouts).await;
                out.push(result_for(
                    job,
                    snap.as_ref().map(Measured::of).map_err(ToString::to_string),
                ));
            }
            out
        }
    }
}

/// The results of one batch: each schema read in full (with the
/// fingerprint its read stored), reused from the last check when the
/// queried fingerprint says it still holds, or missing.
fn batch_results<'a>(
    jobs: &[Job],
    fingerprints: &HashMap<String, String>,
    full: bool,
    engine: Engine,
    read: impl Fn(&str) -> Option<(&'a SchemaSnapshot, Option<String>)>,
) -> Vec<ScanResult> {
    jobs.iter()
        .map(|job| {
            let queried = fingerprints.get(&job.schema);
            match (read(&job.schema), job.reusable(queried)) {
                (Some((snapshot, fingerprint)), _) => {
                    let mut r = result_for(job, Ok(Measured::of(snapshot)));
                    r.fingerprint = fingerprint;
                    r
                }
                (None, Some(hash)) if !full => {
                    let mut r = result_for(
                        job,
                        Ok(Measured {
                            hash,
                            empty: hash == empty_hash(engine),
                        }),
                    );
                    r.reused = true;
                    r.fingerprint = queried.cloned();
                    r
                }
                _ => result_for(job, Err(missing_schema(job))),
            }
        })
        .collect()
}

fn missing_schema(job: &Job) -> String {
    format!(
        "schema `{}` does not exist on {}; run the guard to create it",
        job.schema,
        job.url.server_label()
    )
}

/// Scans the fleet, records every tenant's status, hash and check time, and
/// appends a summary to the audit log.
pub async fn scan(
    registry: &Registry,
    vault: &Vault,
    options: &ScanOptions,
    progress: &(dyn Fn(&ScanProgress<'_>) + Send + Sync),
    cancel: &CancelScan,
) -> Result<ScanReport, FleetError> {
    registry.authorize(tenantry_registry::Action::Scan).await?;
    let started = Instant::now();
    let mut records = registry.list_tenants().await?;
    // Every tenant's stored status, for the history's whole-fleet counts.
    let all_records: Vec<(String, SchemaStatus)> =
        records.iter().map(|r| (r.slug.clone(), r.status)).collect();
    let stored: HashMap<&str, SchemaStatus> = all_records
        .iter()
        .map(|(slug, status)| (slug.as_str(), *status))
        .collect();
    let mut live = StatusCounts::default();
    for (_, status) in &all_records {
        live.add(*status);
    }
    // Moves each newly read tenant from its stored status to the one read.
    let mut count_read = |done: &[ScanResult]| {
        for r in done {
            if let Some(before) = stored.get(r.slug.as_str()) {
                live.remove(*before);
            }
            live.add(r.status);
        }
        live
    };
    if let Some(only) = &options.tenants {
        for slug in only {
            if !records.iter().any(|r| &r.slug == slug) {
                return Err(tenantry_registry::RegistryError::TenantNotFound {
                    slug: slug.clone(),
                }
                .into());
            }
        }
        records.retain(|r| only.contains(&r.slug));
    }
    if let Some(shard) = options.shard {
        let servers = registry.servers_by_slug().await?;
        records.retain(|r| servers.get(&r.slug).is_some_and(|s| shard.holds(s)));
    }
    let total = records.len();
    let mut results: Vec<ScanResult> = Vec::with_capacity(total);
    let mut lineages: HashMap<(String, Engine), Arc<Vec<TemplateVersionHash>>> = HashMap::new();
    let mut batches: BTreeMap<(Engine, [u8; 32]), Vec<Job>> = BTreeMap::new();
    for record in records {
        let url = match registry.connection(vault, &record.slug).await {
            Ok(u) => u,
            Err(e) => {
                results.push(ScanResult {
                    slug: record.slug.clone(),
                    place: record.place(),
                    status: SchemaStatus::Failed,
                    hash: None,
                    reason: Some(e.to_string()),
                    template: record.template.clone(),
                    template_version: record.template_version.clone(),
                    reused: false,
                    accepted: false,
                    fingerprint: None,
                });
                continue;
            }
        };
        let lineage = match &record.template {
            Some(name) => match lineages.get(&(name.clone(), record.engine)) {
                Some(l) => Arc::clone(l),
                None => {
                    let l = Arc::new(
                        crate::guard::current_lineage(
                            registry,
                            name,
                            record.engine,
                            options.timeouts,
                        )
                        .await?,
                    );
                    lineages.insert((name.clone(), record.engine), Arc::clone(&l));
                    l
                }
            },
            None => Arc::new(Vec::new()),
        };
        let schema = tenant_schema(&record, &url);
        let key = (record.engine, batch_key(record.engine, &url));
        batches.entry(key).or_default().push(Job {
            record,
            url,
            schema,
            lineage,
        });
    }
    progress(&ScanProgress {
        done: results.len(),
        total,
        finished: &results,
        fleet: count_read(&results),
    });

    let semaphore = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut cancelled = false;
    // A large batch is split so its catalog reads use several server
    // backends (and cores) at once; each piece is still one connection and
    // a few round trips.
    // A MySQL server's pieces also share a limit of their own
    // ([`MYSQL_TASKS_PER_SERVER`]), and pieces are taken from each batch in
    // turn, so a task waiting for its server leaves room for others.
    let per_batch: Vec<Vec<Piece>> = batches
        .into_iter()
        .map(|((engine, _), mut jobs)| {
            let (per_task, server) = match engine {
                Engine::Mysql => (
                    mysql_schemas_per_task(jobs.len()),
                    Some(Arc::new(Semaphore::new(MYSQL_TASKS_PER_SERVER))),
                ),
                _ => (schemas_per_task(jobs.len()), None),
            };
            let mut out = Vec::new();
            while jobs.len() > per_task {
                let rest = jobs.split_off(per_task);
                out.push((engine, jobs, server.clone()));
                jobs = rest;
            }
            out.push((engine, jobs, server));
            out
        })
        .collect();
    for (engine, jobs, server) in interleave(per_batch) {
        let permit = tokio::select! {
            p = Arc::clone(&semaphore).acquire_owned() => p,
            _ = wait_cancel(cancel) => { cancelled = true; break; }
        };
        let Ok(permit) = permit else { break };
        let timeouts = options.timeouts;
        let full = options.full;
        tasks.spawn(async move {
            let server_permit = match server {
                Some(s) => s.acquire_owned().await.ok(),
                None => None,
            };
            let out = run_batch(engine, jobs, timeouts, full).await;
            drop(server_permit);
            drop(permit);
            out
        });
        // Report what has finished so far without waiting.
        while let Some(Ok(done)) = tasks.try_join_next() {
            let from = results.len();
            results.extend(done);
            progress(&ScanProgress {
                done: results.len(),
                total,
                finished: &results[from..],
                fleet: count_read(&results[from..]),
            });
        }
    }
    while let Some(joined) = tasks.join_next().await {
        if let Ok(done) = joined {
            let from = results.len();
            results.extend(done);
            progress(&ScanProgress {
                done: results.len(),
                total,
                finished: &results[from..],
                fleet: count_read(&results[from..]),
            });
        }
    }
    cancelled |= cancel.is_cancelled() && results.len() < total;

    let checks: Vec<TenantCheck> = results
        .iter()
        .map(|r| TenantCheck {
            slug: r.slug.clone(),
            status: r.status,
            reason: r.reason.clone(),
            hash: r.hash.as_deref().and_then(|h| h.parse().ok()),
            provisioned: false,
            fingerprint: r.fingerprint.clone(),
        })
        .collect();
    registry.record_checks(&checks).await?;
    let mut counts = StatusCounts::default();
    for r in &results {
        counts.add(r.status);
    }
    // The whole fleet after this scan, for the history: what it read, and
    // the stored status of every tenant it did not — the counts the
    // progress kept as results came in (each result was counted once).
    let fleet = live;
    results.sort_by(|a, b| a.slug.cmp(&b.slug));
    let moved: Vec<StatusMove> = results
        .iter()
        .filter_map(|r| {
            let from = *stored.get(r.slug.as_str())?;
            (from != r.status).then(|| StatusMove {
                slug: r.slug.clone(),
                from,
                to: r.status,
                reason: r.reason.clone(),
                hash: r.hash.clone(),
                accepted: r.accepted,
            })
        })
        .collect();
    let reused = u32::try_from(results.iter().filter(|r| r.reused).count()).unwrap_or(u32::MAX);
    let report = ScanReport {
        counts,
        reused,
        groups: group_customisations(&results),
        moved,
        tenants: results,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        cancelled,
    };
    registry
        .record_scan(
            ScanCounts {
                tenants: u32::try_from(all_records.len()).unwrap_or(u32::MAX),
                scanned: u32::try_from(report.tenants.len()).unwrap_or(u32::MAX),
                synced: fleet.synced,
                outdated: fleet.outdated,
                customized: fleet.customized,
                unknown: fleet.unknown,
                failed: fleet.failed,
                elapsed_ms: report.elapsed_ms,
                cancelled,
            },
            options.shard.map(|s| s.to_string()).as_deref(),
        )
        .await?;
    registry
        .audit(
            None,
            "scan",
            &format!(
                "{} tenants{}{}: {} synced, {} outdated, {} customized, {} unknown, {} failed",
                report.tenants.len(),
                match options.shard {
                    Some(s) => format!(" (shard {s})"),
                    None => String::new(),
                },
                if cancelled { " (cancelled)" } else { "" },
                counts.synced,
                counts.outdated,
                counts.customized,
                counts.unknown,
                counts.failed
            ),
            AuditResult::Ok,
        )
        .await?;
    Ok(report)
}

async fn wait_cancel(cancel: &CancelScan) {
    while !cancel.is_cancelled() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::{interleave, mysql_schemas_per_task, recheckable, schemas_per_task};
    use tenantry_model::{Engine, SchemaStatus};
    use tenantry_registry::{Isolation, TenantRecord};

    fn record(status: SchemaStatus, hash: Option<&str>, fingerprint: Option<&str>) -> TenantRecord {
        TenantRecord {
            id: 1,
            slug: "acme".into(),
            display_name: "Acme".into(),
            engine: Engine::Postgres,
            isolation: Isolation::Schema,
            schema_name: Some("tenant_acme".into()),
            location: "db1/fleet".into(),
            template: Some("saas".into()),
            template_version: Some("1.0.0".into()),
            status,
            status_reason: None,
            initial_hash: hash.map(str::to_owned),
            current_hash: hash.map(str::to_owned),
            last_sync_at: None,
            notes: String::new(),
            domains: Vec::new(),
            created_at: String::new(),
            updated_at: String::new(),
            accepted_hash: None,
            accepted_note: None,
            revision: 1,
            catalog_fingerprint: fingerprint.map(str::to_owned),
        }
    }

    /// Only a tenant whose last check stored both a hash and a fingerprint
    /// is worth a fingerprint query; a fleet's first scan asks for none.
    #[test]
    fn only_tenants_checked_before_have_their_fingerprint_asked_for() {
        let hash = Some("0123");
        let fp = Some("pgx3:1.2");
        for (status, hash, fp, asked) in [
            (SchemaStatus::Synced, hash, fp, true),
            (SchemaStatus::Customized, hash, fp, true),
            (SchemaStatus::Unknown, None, None, false),
            (SchemaStatus::Synced, hash, None, false),
            (SchemaStatus::Synced, None, fp, false),
            (SchemaStatus::Failed, hash, fp, false),
        ] {
            let r = record(status, hash, fp);
            assert_eq!(
                recheckable(&r).is_some(),
                asked,
                "{status:?}, hash {hash:?}, fingerprint {fp:?}"
            );
        }
    }

    #[test]
    fn mysql_servers_are_read_in_small_equal_tasks() {
        for (n, per_task) in [
            (0, 1),
            (1, 1),
            (25, 25),
            (26, 13),
            (100, 25),
            (101, 21),
            (1000, 25),
        ] {
            assert_eq!(mysql_schemas_per_task(n), per_task, "{n} databases");
        }
    }

    #[test]
    fn pieces_are_taken_from_each_batch_in_turn() {
        let order = interleave(vec![vec![1, 2, 3], vec![], vec![10], vec![20, 21]]);
        assert_eq!(order, vec![1, 10, 20, 2, 21, 3]);
    }

    #[test]
    fn batches_split_into_equal_tasks_of_at_most_one_round_trip() {
        for (n, per_task) in [
            (0, 1),
            (1, 1),
            (50, 50),
            (60, 30),
            (100, 50),
            (150, 75),
            (400, 200),
            (1000, 500),
            (1001, 334),
            (5000, 500),
        ] {
            assert_eq!(schemas_per_task(n), per_task, "{n} tenants");
        }
    }

    #[test]
    fn shards_cover_every_server_once_and_never_move() {
        use super::Shard;
        let servers: Vec<String> = (0..200)
            .map(|i| format!("postgres://db{i:03}.example.internal:5432"))
            .collect();
        for n in 1..=8 {
            let shards: Vec<Shard> = (1..=n).map(|i| Shard::new(i, n).unwrap()).collect();
            let mut sizes = vec![0usize; n as usize];
            for s in &servers {
                let holders: Vec<usize> =
                    (0..shards.len()).filter(|&k| shards[k].holds(s)).collect();
                assert_eq!(holders.len(), 1, "{s} in {n} shards");
                sizes[holders[0]] += 1;
            }
            // Spread, not piled up: every shard has a fair part of 200 servers.
            assert!(
                sizes.iter().all(|&k| k * 2 >= 200 / n as usize),
                "{n}: {sizes:?}"
            );
        }
        // The split is part of the contract between machines (and versions)
        // sharing a registry: it must not change.
        let pinned: Vec<u32> = (0..8)
            .map(|i| {
                let s = &servers[i];
                (1..=4)
                    .find(|&k| Shard::new(k, 4).unwrap().holds(s))
                    .unwrap()
            })
            .collect();
        assert_eq!(pinned, [4, 3, 3, 1, 4, 4, 3, 2]);
        assert_eq!("2/4".parse::<Shard>().unwrap().to_string(), "2/4");
        assert_eq!(" 3 / 7 ".parse::<Shard>().unwrap().to_string(), "3/7");
        for bad in ["0/4", "5/4", "1/0", "x/4", "4", "", "1/2000"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
