//! The data-preserving sync: brings a tenant's schema back to its template
//! version with the smallest set of `ALTER`s, keeping its rows.
//!
//! Plan ([`plan_sync`]): the tenant is read, the model plans the steps
//! ([`tenantry_model::sync`]) and every probe is counted, all in one
//! read-only transaction. Changes nothing and records nothing.
//!
//! Apply ([`execute_sync`]): the typed slug, then the intent journaled
//! with the quarantine's name, then one PostgreSQL transaction under the
//! tenant's advisory lock: the hash is checked against the plan's, the
//! probes are counted again (a checked step with rows refuses), what the
//! destructive steps remove goes into the quarantine schema first, the
//! steps run, and the schema is measured again; only a schema that hashes
//! as the template's commits. A failure, a killed connection or a
//! mismatch rolls everything back. Every attempt is audited.
//!
//! MySQL/MariaDB commit DDL statement by statement, so there the steps run
//! one by one under the tenant's `GET_LOCK`, each journaled when it starts
//! and when it is done, the quarantine database recorded as a backup
//! before the first step that moves data into it. A step that fails stops
//! the sync ([`FleetError::SyncInterrupted`] names it and the steps that
//! ran) and marks the tenant `failed`; [`resume_sync`] plans again from
//! what the tenant then is — exactly the steps left — with the same kept
//! differences and quarantine, and finishes.

use serde::Serialize;
use sqlx::{Connection, Executor, PgConnection};
use tenantry_introspect::{mysql, postgres, sqlite, Timeouts};
use tenantry_model::diff::{diff_schemas, Presence};
use tenantry_model::quote::postgres as quote_pg;
use tenantry_model::sync::{keepable_columns, plan_postgres, target_keeping, StepClass, SyncStep};
use tenantry_model::sync_mysql::plan_mysql;
use tenantry_model::{hash_schema, DriftHash, Engine, SchemaStatus};
use tenantry_registry::journal::OperationEnd;
use tenantry_registry::templates::TenantCheck;
use tenantry_registry::{AuditResult, Registry};
use tenantry_vault::Vault;
use ts_rs::TS;

use crate::backup::SYNC_QUARANTINE;
use crate::reset::{
    check_confirmation, context, quarantine_name, quarantine_stem, stale, unix_secs, Context,
};
use crate::{catalog, plural, FleetError};

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SyncPlan {
    pub slug: String,
    #[ts(type = "\"postgres\" | \"mysql\" | \"sqlite\"")]
    pub engine: Engine,
    pub server: String,
    pub schema: String,
    pub template: String,
    pub template_version: String,
    pub template_hash: String,
    /// The tenant's hash when planned; applying refuses if it changed.
    pub drift_hash: String,
    /// The quarantine schema that receives what destructive steps remove.
    pub quarantine: String,
    /// Differences the user keeps (`table custom_reports`): not undone,
    /// and accepted as the tenant's customisation once the sync is done.
    pub kept: Vec<String>,
    /// Why they are kept (the accepted customisation's note).
    pub keep_note: Option<String>,
    /// What the schema hashes after the sync: the template's, or the
    /// template's with the kept differences.
    pub target_hash: String,
    pub steps: Vec<SyncStep>,
    /// Set when this plan finishes a MySQL/MariaDB sync that stopped
    /// part-way ([`plan_resume`]).
    pub resumes: Option<ResumedSync>,
    /// The columns that differ from the template's (`column users.badge`),
    /// each of which may be kept on its own.
    pub keepable_columns: Vec<String>,
}

/// The MySQL/MariaDB sync a plan finishes: its journal's operation and the
/// steps it completed.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ResumedSync {
    #[ts(type = "number")]
    pub operation: i64,
    pub done: Vec<String>,
}

/// Differences to keep, and why.
#[derive(Debug, Clone, Default, serde::Deserialize, TS)]
#[ts(export)]
pub struct KeepChoice {
    pub objects: Vec<String>,
    pub note: String,
}

impl SyncPlan {
    /// Why the plan cannot be applied as it is, one line per blocking
    /// step; empty when it can.
    pub fn blockers(&self) -> Vec<String> {
        blockers(&self.steps)
    }

    pub fn script(&self) -> String {
        tenantry_model::sync::script(self.engine, &self.steps, &self.schema)
    }
}

/// The hash of `after` if it is the target's; otherwise the refusal that
/// rolls the sync back, naming what still differs.
pub(crate) fn verify_target(
    slug: &str,
    target: &tenantry_model::SchemaSnapshot,
    after: &tenantry_model::SchemaSnapshot,
) -> Result<DriftHash, FleetError> {
    let found = hash_schema(after).root;
    let want = hash_schema(target).root;
    if found == want {
        return Ok(found);
    }
    let remaining = diff_schemas(target, after)
        .objects
        .iter()
        .filter(|o| o.presence != Presence::Identical)
        .map(|o| format!("{} {}", o.kind.as_str(), o.name))
        .collect::<Vec<_>>()
        .join(", ");
    Err(FleetError::SyncVerifyFailed {
        slug: slug.to_owned(),
        found: found.to_string(),
        expected: want.to_string(),
        remaining,
    })
}

/// Refuses, inside the sync's transaction, a plan whose counts now block.
pub(crate) fn refuse_if_blocked(slug: &str, steps: &[SyncStep]) -> Result<(), FleetError> {
    let blocking = blockers(steps);
    if blocking.is_empty() {
        return Ok(());
    }
    Err(FleetError::SyncRefused {
        slug: slug.to_owned(),
        reason: format!("the data changed since the plan: {}", blocking.join("; ")),
    })
}

/// Runs every step's statements on `conn`, in order; a failure names the
/// step. Returns one line per step.
pub(crate) async fn run_steps<C>(
    conn: &mut C,
    slug: &str,
    url: &tenantry_introspect::ConnectionUrl,
    steps: &[SyncStep],
) -> Result<Vec<String>, FleetError>
where
    C: Connection,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
{
    let mut applied = Vec::new();
    for step in steps {
        for statement in &step.sql {
            (&mut *conn)
                .execute(statement.as_str())
                .await
                .map_err(|e| FleetError::SyncStepFailed {
                    slug: slug.to_owned(),
                    step: format!("`{}` on {}", step.action, step.object),
                    reason: url.scrub(&e.to_string()),
                })?;
        }
        applied.push(format!(
            "[{}] {}: {}",
            step.class.as_str(),
            step.object,
            step.action
        ));
    }
    Ok(applied)
}

fn blockers(steps: &[SyncStep]) -> Vec<String> {
    steps
        .iter()
        .filter(|s| s.blocks())
        .map(|s| match s.class {
            StepClass::Manual => format!("{}: {}", s.object, s.action),
            _ => format!(
                "{}: {}: {}",
                s.object,
                s.action,
                tenantry_model::sync::counted(
                    s.count.unwrap_or(0),
                    s.probe_meaning.as_deref().unwrap_or("rows")
                )
            ),
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SyncOutcome {
    pub slug: String,
    /// Where what the destructive steps removed now is (`schema Q in DB`),
    /// if anything was removed; `backup list` shows it too.
    pub quarantine: Option<String>,
    pub hash_after: String,
    #[ts(type = "\"unknown\" | \"synced\" | \"customized\" | \"outdated\" | \"failed\"")]
    pub status: SchemaStatus,
    /// What ran, one line per step.
    pub applied: Vec<String>,
}

/// `<file>.<seconds>.bak`, or `<file>.<seconds>-<n>.bak` when a backup of
/// that second is already there (the backup itself never overwrites).
fn free_backup_path(file: &std::path::Path) -> std::path::PathBuf {
    let stamp = unix_secs();
    (1..)
        .map(|n| match n {
            1 => file.with_extension(format!("{stamp}.bak")),
            n => file.with_extension(format!("{stamp}-{n}.bak")),
        })
        .find(|p| !p.exists())
        .unwrap_or_else(|| file.with_extension(format!("{stamp}.bak")))
}

/// Whether `name` is `tenantry_q_<stem of schema>_<seconds>`.
fn is_quarantine_of(schema: &str, name: &str) -> bool {
    crate::backup::quarantine_stamp(name, &quarantine_stem(schema))
        .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
}

/// Reads the tenant's schema with `conn`, plans, and counts every probe,
/// with the tenant's schema alone on the transaction's search path.
async fn plan_in(
    conn: &mut PgConnection,
    ctx: &Context,
    kept: &[String],
    quarantine: &str,
) -> Result<Planned, FleetError> {
    let url = &ctx.url;
    let schemas = [ctx.schema.clone()];
    let mut reads = postgres::read_schemas(&mut *conn, &schemas)
        .await
        .map_err(|e| catalog(url, &e))?;
    let read = reads.remove(&ctx.schema);
    // The roles the plan writes (`{owner}`, `{tenant}_app`, owners) by
    // their names in this tenant, read in the plan's transaction.
    let roles = postgres::tenant_roles(&mut *conn, &ctx.schema, read.as_ref())
        .await
        .map_err(|e| catalog(url, &e))?;
    let tenant = read
        .map(|r| r.snapshot)
        .unwrap_or_else(|| tenantry_model::SchemaSnapshot::new(Engine::Postgres));
    let target = target_for(ctx, &tenant, kept)?;
    let mut steps = plan_postgres(&target, &tenant, quarantine, &roles);
    sqlx::query("SELECT set_config('search_path', $1, true)")
        .bind(quote_pg(&ctx.schema))
        .execute(&mut *conn)
        .await
        .map_err(|e| catalog(url, &e))?;
    count_probes(conn, ctx, &mut steps).await?;
    Ok(Planned {
        now: hash_schema(&tenant).root,
        steps,
        target,
        tenant,
    })
}

/// A plan made inside a transaction.
pub(crate) struct Planned {
    /// The tenant as read.
    pub(crate) tenant: tenantry_model::SchemaSnapshot,
    /// The tenant's hash.
    pub(crate) now: DriftHash,
    pub(crate) steps: Vec<SyncStep>,
    /// The schema the steps lead to.
    pub(crate) target: tenantry_model::SchemaSnapshot,
}

/// What the sync of `tenant` aims at: the template, with the `kept`
/// differences as the tenant has them; refused when one is not a
/// difference.
pub(crate) fn target_for(
    ctx: &Context,
    tenant: &tenantry_model::SchemaSnapshot,
    kept: &[String],
) -> Result<tenantry_model::SchemaSnapshot, FleetError> {
    let refuse = |reason: String| FleetError::SyncRefused {
        slug: ctx.record.slug.clone(),
        reason,
    };
    if ctx.record.engine == Engine::Sqlite {
        if let Some(k) = kept.iter().find(|k| k.starts_with("column ")) {
            // SQLite's changed tables are rebuilt from the template's own
            // statements: one column of one cannot stay as the tenant has it.
            return Err(refuse(format!(
                "`{k}`: on SQLite a changed table is rebuilt from the template's statement, so one column cannot be kept; keep the whole table instead"
            )));
        }
    }
    target_keeping(&ctx.template_snapshot, tenant, kept).map_err(refuse)
}

/// Runs every step's probe on `conn` and stores its count in the step.
pub(crate) async fn count_probes<C>(
    conn: &mut C,
    ctx: &Context,
    steps: &mut [SyncStep],
) -> Result<(), FleetError>
where
    C: Connection,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
    i64: for<'r> sqlx::Decode<'r, C::Database> + sqlx::Type<C::Database>,
    usize: sqlx::ColumnIndex<<C::Database as sqlx::Database>::Row>,
{
    use sqlx::Row;
    for step in steps {
        if let Some(probe) = &step.probe {
            let n: i64 = (&mut *conn)
                .fetch_one(probe.as_str())
                .await
                .and_then(|row| row.try_get(0))
                .map_err(|e| FleetError::SyncStepFailed {
                    slug: ctx.record.slug.clone(),
                    step: format!("`{}` (its check)", step.action),
                    reason: ctx.url.scrub(&e.to_string()),
                })?;
            step.count = Some(n);
        }
    }
    Ok(())
}

/// Plans a sync: changes nothing.
pub async fn plan_sync(
    registry: &Registry,
    vault: &Vault,
    slug: &str,
    keep: &KeepChoice,
    timeouts: Timeouts,
) -> Result<SyncPlan, FleetError> {
    let ctx = context(registry, vault, slug).await?;
    if !keep.objects.is_empty() && keep.note.trim().is_empty() {
        return Err(FleetError::SyncRefused {
            slug: slug.to_owned(),
            reason: "kept differences become the tenant's accepted customisation: say why (a note)"
                .into(),
        });
    }
    let (
        quarantine,
        Planned {
            now,
            steps,
            target,
            tenant,
        },
    ) = if ctx.record.engine == Engine::Sqlite {
        let sql = crate::sync_sqlite::TemplateSql::read(&ctx, timeouts).await?;
        let mut conn = sqlite::open_read_only(&ctx.url.sqlite_path()).await?;
        let planned = crate::sync_sqlite::plan_on(&mut conn, &ctx, &sql, &keep.objects).await;
        let _ = conn.close().await;
        (String::new(), planned?)
    } else if ctx.record.engine == Engine::Mysql {
        let quarantine = quarantine_name(&ctx.schema);
        let mut conn = mysql::connect(&ctx.url.with_database(&ctx.schema)?, timeouts).await?;
        let planned = plan_mysql_on(&mut conn, &ctx, &keep.objects, &quarantine).await;
        mysql::close(conn).await;
        (quarantine, planned?)
    } else {
        let quarantine = quarantine_name(&ctx.schema);
        let mut conn = postgres::connect(&ctx.url, timeouts).await?;
        let planned = async {
            let mut tx = conn.begin().await.map_err(|e| catalog(&ctx.url, &e))?;
            tx.execute("SET TRANSACTION READ ONLY")
                .await
                .map_err(|e| catalog(&ctx.url, &e))?;
            let planned = plan_in(&mut tx, &ctx, &keep.objects, &quarantine).await;
            let _ = tx.rollback().await;
            planned
        }
        .await;
        postgres::close(conn).await;
        (quarantine, planned?)
    };
    Ok(SyncPlan {
        slug: slug.to_owned(),
        engine: ctx.record.engine,
        server: ctx.url.server_label(),
        schema: ctx.schema.clone(),
        template: ctx.record.template.clone().unwrap_or_default(),
        template_version: ctx.version.clone(),
        template_hash: hash_schema(&ctx.template_snapshot).root.to_string(),
        drift_hash: now.to_string(),
        quarantine,
        kept: keep.objects.clone(),
        keep_note: (!keep.objects.is_empty()).then(|| keep.note.trim().to_owned()),
        target_hash: hash_schema(&target).root.to_string(),
        steps,
        resumes: None,
        // SQLite rebuilds a changed table whole: no column is kept alone.
        keepable_columns: if ctx.record.engine == Engine::Sqlite {
            Vec::new()
        } else {
            keepable_columns(&ctx.template_snapshot, &tenant)
        },
    })
}

/// Applies a plan after checking the typed confirmation. Every attempt,
/// refused ones included, is audited.
pub async fn execute_sync(
    registry: &Registry,
    vault: &Vault,
    plan: &SyncPlan,
    typed_confirmation: &str,
    timeouts: Timeouts,
) -> Result<SyncOutcome, FleetError> {
    registry.authorize(tenantry_registry::Action::Sync).await?;
    let result = async {
        check_confirmation(&plan.slug, typed_confirmation)?;
        let ctx = context(registry, vault, &plan.slug).await?;
            let refuse = |reason: String| FleetError::SyncRefused { slug: plan.slug.clone(), reason };
        let blocking = plan.blockers();
        if !blocking.is_empty() {
            return Err(refuse(format!(
                "the plan has steps it cannot take: {}; reset the tenant, accept those differences, or fix the rows and plan again",
                blocking.join("; ")
            )));
        }
        let expected: DriftHash = plan.drift_hash.parse().map_err(|_| FleetError::PlanStale {
            slug: plan.slug.clone(),
            reason: "the plan's hash is not a schema hash".into(),
        })?;
        if ctx.record.engine == Engine::Sqlite {
            // The whole file is the backup: decided and journaled first.
            let backup = free_backup_path(&ctx.url.sqlite_path());
            let location = format!("file {}", backup.display());
            let op = registry.begin_operation(&plan.slug, "sync", Some(&location)).await?;
            let applied = async {
                registry
                    .record_step(op, &format!("the file is backed up, then {} run in one transaction", plural(plan.steps.len(), "step", "steps")))
                    .await?;
                crate::sync_sqlite::apply(&ctx, expected, &plan.kept, &backup, timeouts).await
            };
            let (applied, after) = match applied.await {
                Ok(done) => done,
                Err(e) => {
                    crate::end_operation_with(registry, op, &e).await;
                    return Err(e);
                }
            };
            registry.record_backup(&plan.slug, Engine::Sqlite, &location, Some(&plan.drift_hash)).await?;
            return finish(registry, plan, op, applied, Some(location), after).await;
        }
        if ctx.record.engine == Engine::Mysql {
            return execute_mysql(registry, &ctx, plan, expected, timeouts).await;
        }
        // The quarantine is named and journaled before anything is touched:
        // the plan's name, so the user finds what they reviewed, when it is
        // one of this tenant's quarantine names (a schema of that name
        // already there makes the transaction fail and change nothing).
        let quarantine = if is_quarantine_of(&ctx.schema, &plan.quarantine) {
            plan.quarantine.clone()
        } else {
            quarantine_name(&ctx.schema)
        };
        let database = ctx.url.database().unwrap_or_else(|| "postgres".into());
        let place = format!("schema {quarantine} in {database}");
        let location = format!("{SYNC_QUARANTINE}{place}");
        let moves_data = plan.steps.iter().any(|s| s.class == StepClass::Destructive);
        let op = registry
            .begin_operation(&plan.slug, "sync", moves_data.then_some(location.as_str()))
            .await?;
        let run = async {
            registry
                .record_step(op, &format!("{} run in one transaction{}", plural(plan.steps.len(), "step", "steps"), if moves_data { format!("; removed data goes to {place} first") } else { String::new() }))
                .await?;
            apply_postgres(&ctx, expected, &plan.kept, &quarantine, timeouts).await
        }
        .await;
        let (applied, moved, after) = match run {
            Ok(done) => done,
            Err(e) => {
                crate::end_operation_with(registry, op, &e).await;
                return Err(e);
            }
        };
        if moved {
            registry
                .record_backup(&plan.slug, Engine::Postgres, &location, Some(&plan.drift_hash))
                .await?;
        }
        finish(registry, plan, op, applied, moved.then_some(place), after).await
    }
    .await;
    crate::audit_outcome(
        registry,
        &plan.slug,
        "sync",
        &result,
        |o| {
            (
                format!(
                    "synced to {} {} in {} steps{}; removed data: {}",
                    plan.template,
                    plan.template_version,
                    o.applied.len(),
                    if plan.kept.is_empty() {
                        String::new()
                    } else {
                        format!(", keeping {}", plan.kept.join(", "))
                    },
                    o.quarantine.as_deref().unwrap_or("none")
                ),
                AuditResult::Ok,
            )
        },
        false,
    )
    .await?;
    result
}

/// After a committed sync: the accepted customisation for kept
/// differences, the tenant's new status, the journal's end.
async fn finish(
    registry: &Registry,
    plan: &SyncPlan,
    op: i64,
    applied: Vec<String>,
    quarantine: Option<String>,
    after: DriftHash,
) -> Result<SyncOutcome, FleetError> {
    // Kept differences become the accepted customisation: the tenant
    // is then customized, accepted, never silently so.
    let status = match &plan.keep_note {
        Some(note) if !plan.kept.is_empty() => {
            registry
                .accept_baseline(&plan.slug, &after.to_string(), note)
                .await?;
            SchemaStatus::Customized
        }
        _ => SchemaStatus::Synced,
    };
    registry
        .record_check(&TenantCheck {
            slug: plan.slug.clone(),
            status,
            reason: (status == SchemaStatus::Customized).then(|| {
                format!(
                    "accepted customisation: {} (kept by the sync: {})",
                    plan.keep_note.as_deref().unwrap_or(""),
                    plan.kept.join(", ")
                )
            }),
            hash: Some(after),
            provisioned: false,
            fingerprint: None,
        })
        .await?;
    registry
        .finish_operation(
            op,
            OperationEnd::Ok,
            &format!(
                "synced in {} steps; removed data: {}",
                applied.len(),
                quarantine.as_deref().unwrap_or("none")
            ),
        )
        .await?;
    Ok(SyncOutcome {
        slug: plan.slug.clone(),
        quarantine,
        hash_after: after.to_string(),
        status,
        applied,
    })
}

/// The sync transaction. Returns what ran and whether a quarantine was
/// filled.
async fn apply_postgres(
    ctx: &Context,
    expected: DriftHash,
    kept: &[String],
    quarantine: &str,
    timeouts: Timeouts,
) -> Result<(Vec<String>, bool, DriftHash), FleetError> {
    let url = &ctx.url;
    let slug = &ctx.record.slug;
    let mut conn = postgres::connect(url, timeouts).await?;
    let result = async {
        let mut tx = crate::provision::locked_tx(&mut conn, url, &ctx.schema).await?;
        // Planned again on what is there now, with this run's quarantine:
        // the same schema gives the same steps.
        let Planned {
            now, steps, target, ..
        } = plan_in(&mut tx, ctx, kept, quarantine).await?;
        if now != expected {
            return Err(stale(slug, now));
        }
        refuse_if_blocked(slug, &steps)?;
        let applied = run_steps(&mut *tx, slug, url, &steps).await?;
        // Measured as a scan measures it: with the session's search path.
        tx.execute("SET LOCAL search_path TO DEFAULT")
            .await
            .map_err(|e| catalog(url, &e))?;
        let schemas = [ctx.schema.clone()];
        let after = postgres::introspect_schemas(&mut tx, &schemas)
            .await
            .map_err(|e| catalog(url, &e))?;
        let after = after
            .get(&ctx.schema)
            .cloned()
            .unwrap_or_else(|| tenantry_model::SchemaSnapshot::new(Engine::Postgres));
        let found = verify_target(slug, &target, &after)?;
        tx.commit().await.map_err(|e| catalog(url, &e))?;
        let moved = steps.iter().any(|s| s.class == StepClass::Destructive);
        Ok((applied, moved, found))
    }
    .await;
    postgres::close(conn).await;
    result
}

/// Reads the MySQL/MariaDB tenant's database with `conn` (whose default
/// database it is), plans, and counts every probe.
async fn plan_mysql_on(
    conn: &mut sqlx::MySqlConnection,
    ctx: &Context,
    kept: &[String],
    quarantine: &str,
) -> Result<Planned, FleetError> {
    let schemas = [ctx.schema.clone()];
    let snaps = mysql::introspect_schemas(&mut *conn, &schemas)
        .await
        .map_err(|e| catalog(&ctx.url, &e))?;
    let tenant = snaps
        .get(&ctx.schema)
        .cloned()
        .unwrap_or_else(|| tenantry_model::SchemaSnapshot::new(Engine::Mysql));
    let target = target_for(ctx, &tenant, kept)?;
    let mut steps = plan_mysql(&target, &tenant, &ctx.schema, quarantine);
    count_probes(conn, ctx, &mut steps).await?;
    Ok(Planned {
        now: hash_schema(&tenant).root,
        steps,
        target,
        tenant,
    })
}

/// How a MySQL/MariaDB sync records what it keeps, as the first step of its
/// journal: a resume reads it back.
const KEEPS: &str = "sync keeps: ";

#[derive(serde::Serialize, serde::Deserialize)]
struct KeptRecord {
    objects: Vec<String>,
    note: Option<String>,
}

/// Applies a MySQL/MariaDB plan, journaled step by step.
async fn execute_mysql(
    registry: &Registry,
    ctx: &Context,
    plan: &SyncPlan,
    expected: DriftHash,
    timeouts: Timeouts,
) -> Result<SyncOutcome, FleetError> {
    let quarantine = if is_quarantine_of(&ctx.schema, &plan.quarantine) {
        plan.quarantine.clone()
    } else {
        quarantine_name(&ctx.schema)
    };
    let place = format!("database {quarantine}");
    let location = format!("{SYNC_QUARANTINE}{place}");
    let moves_data = plan.steps.iter().any(|s| s.class == StepClass::Destructive);
    // A sync killed part-way before this one is closed once this one ends
    // the job.
    let stopped = interrupted_sync(registry, &plan.slug)
        .await?
        .filter(|s| s.unfinished);
    let op = registry
        .begin_operation(&plan.slug, "sync", moves_data.then_some(location.as_str()))
        .await?;
    let kept = KeptRecord {
        objects: plan.kept.clone(),
        note: plan.keep_note.clone(),
    };
    let run = async {
        registry
            .record_step(
                op,
                &format!(
                    "{KEEPS}{}",
                    serde_json::to_string(&kept).unwrap_or_default()
                ),
            )
            .await?;
        apply_mysql(
            registry,
            op,
            ctx,
            expected,
            &plan.kept,
            &quarantine,
            &location,
            timeouts,
        )
        .await
    }
    .await;
    match run {
        Ok((applied, moved, after)) => {
            let outcome =
                finish(registry, plan, op, applied, moved.then_some(place), after).await?;
            if let Some(stopped) = stopped {
                registry
                    .resolve_operation(
                        stopped.operation,
                        None,
                        &format!("its sync was finished by operation {op}"),
                    )
                    .await?;
            }
            Ok(outcome)
        }
        Err(e) => {
            crate::end_operation_with(registry, op, &e).await;
            if matches!(
                e,
                FleetError::SyncInterrupted { .. } | FleetError::SyncIncomplete { .. }
            ) {
                // The tenant changed part-way: its recorded hash no longer
                // says what it is.
                let _ = registry
                    .record_check(&TenantCheck {
                        slug: plan.slug.clone(),
                        status: SchemaStatus::Failed,
                        reason: Some(e.to_string()),
                        hash: None,
                        provisioned: false,
                        fingerprint: None,
                    })
                    .await;
            }
            Err(e)
        }
    }
}

/// The steps, one statement at a time on one dedicated connection under
/// the tenant's lock, each journaled before and after. Returns what ran,
/// whether data moved to the quarantine, and the hash after.
#[allow(clippy::too_many_arguments)]
async fn apply_mysql(
    registry: &Registry,
    op: i64,
    ctx: &Context,
    expected: DriftHash,
    kept: &[String],
    quarantine: &str,
    location: &str,
    timeouts: Timeouts,
) -> Result<(Vec<String>, bool, DriftHash), FleetError> {
    let url = &ctx.url;
    let slug = &ctx.record.slug;
    let mut conn = mysql::connect(&url.with_database(&ctx.schema)?, timeouts).await?;
    let result = async {
        crate::provision::mysql_lock(&mut conn, url, &ctx.schema).await?;
        let Planned {
            now, steps, target, ..
        } = plan_mysql_on(&mut conn, ctx, kept, quarantine).await?;
        if now != expected {
            return Err(stale(slug, now));
        }
        refuse_if_blocked(slug, &steps)?;
        let total = steps.len();
        let mut applied: Vec<String> = Vec::new();
        let mut moved = false;
        for (i, step) in steps.iter().enumerate() {
            let line = format!("[{}] {}: {}", step.class.as_str(), step.object, step.action);
            if step.class == StepClass::Destructive && !moved {
                // The quarantine is about to receive data: it is a backup
                // from here on (recorded once, a resume reuses it).
                let known = registry
                    .backups(Some(slug))
                    .await?
                    .iter()
                    .any(|b| b.location == location);
                if !known {
                    registry
                        .record_backup(slug, Engine::Mysql, location, Some(&expected.to_string()))
                        .await?;
                }
                moved = true;
            }
            registry
                .record_step(op, &format!("step {}/{total} started: {line}", i + 1))
                .await?;
            for statement in &step.sql {
                if let Err(e) = conn.execute(statement.as_str()).await {
                    return Err(FleetError::SyncInterrupted {
                        slug: slug.clone(),
                        step: format!("{}/{total} ({line})", i + 1),
                        reason: url.scrub(&e.to_string()),
                        ran: applied.len(),
                        done: if applied.is_empty() {
                            "none".into()
                        } else {
                            applied.join("; ")
                        },
                    });
                }
            }
            registry
                .record_step(op, &format!("step {}/{total} done: {line}", i + 1))
                .await?;
            applied.push(line);
        }
        let schemas = [ctx.schema.clone()];
        let after = mysql::introspect_schemas(&mut conn, &schemas)
            .await
            .map_err(|e| catalog(url, &e))?;
        let after = after
            .get(&ctx.schema)
            .cloned()
            .unwrap_or_else(|| tenantry_model::SchemaSnapshot::new(Engine::Mysql));
        match verify_target(slug, &target, &after) {
            Ok(found) => Ok((applied, moved, found)),
            Err(FleetError::SyncVerifyFailed {
                slug,
                found,
                expected,
                remaining,
            }) => Err(FleetError::SyncIncomplete {
                slug,
                found,
                expected,
                remaining,
            }),
            Err(e) => Err(e),
        }
    }
    .await;
    crate::provision::mysql_unlock(&mut conn, &ctx.schema).await;
    mysql::close(conn).await;
    result
}

/// The MySQL/MariaDB sync of `slug` that stopped part-way, if its last
/// sync, reset or restore is one: what it kept, and its quarantine.
struct InterruptedSync {
    operation: i64,
    keep: KeepChoice,
    quarantine: Option<String>,
    /// The steps it completed, as journaled.
    done: Vec<String>,
    /// Unfinished (its process was killed) rather than failed.
    unfinished: bool,
}

async fn interrupted_sync(
    registry: &Registry,
    slug: &str,
) -> Result<Option<InterruptedSync>, FleetError> {
    let Some(last) = registry
        .last_operation_of(slug, &["sync", "reset", "backup.restore"])
        .await?
    else {
        return Ok(None);
    };
    let record = registry.tenant(slug).await?;
    let stopped = match last.outcome.as_deref() {
        None => !last.running,
        Some(outcome) => outcome == "failed",
    };
    if last.kind != "sync" || record.engine != Engine::Mysql || !stopped {
        return Ok(None);
    }
    let steps = registry.operation_steps(last.id).await?;
    let kept: Option<KeptRecord> = steps
        .iter()
        .find_map(|s| s.strip_prefix(KEEPS))
        .and_then(|json| serde_json::from_str(json).ok());
    let keep = kept
        .map(|k| KeepChoice {
            objects: k.objects,
            note: k.note.unwrap_or_default(),
        })
        .unwrap_or_default();
    let quarantine = last
        .backup
        .as_deref()
        .and_then(|b| b.strip_prefix(SYNC_QUARANTINE))
        .and_then(|b| b.strip_prefix("database "))
        .map(str::to_owned);
    let done = steps
        .iter()
        .filter_map(|s| s.split_once(" done: ").map(|(_, line)| line.to_owned()))
        .collect();
    Ok(Some(InterruptedSync {
        operation: last.id,
        keep,
        quarantine,
        done,
        unfinished: last.finished_at.is_none(),
    }))
}

/// Plans the rest of a MySQL/MariaDB sync that stopped part-way: from the
/// tenant as it now is (exactly the steps left), keeping what it kept,
/// into the same quarantine. Changes nothing; [`execute_sync`] applies it
/// and then closes the stopped operation if its process was killed.
pub async fn plan_resume(
    registry: &Registry,
    vault: &Vault,
    slug: &str,
    timeouts: Timeouts,
) -> Result<SyncPlan, FleetError> {
    let Some(stopped) = interrupted_sync(registry, slug).await? else {
        return Err(FleetError::SyncRefused {
            slug: slug.to_owned(),
            reason: "its last sync did not stop part-way (only a MySQL/MariaDB sync can: elsewhere a failed sync changed nothing); plan a sync instead".into(),
        });
    };
    let mut plan = plan_sync(registry, vault, slug, &stopped.keep, timeouts).await?;
    if let Some(q) = stopped
        .quarantine
        .as_ref()
        .filter(|q| is_quarantine_of(&plan.schema, q))
    {
        plan.quarantine.clone_from(q);
    }
    plan.resumes = Some(ResumedSync {
        operation: stopped.operation,
        done: stopped.done,
    });
    Ok(plan)
}

/// Whether `slug`'s last sync stopped part-way and can be resumed.
pub async fn can_resume(registry: &Registry, slug: &str) -> Result<bool, FleetError> {
    Ok(interrupted_sync(registry, slug).await?.is_some())
}

/// Tenants whose schemas hash alike (the same customisation of the same
/// template version) get the same plan: one group, reviewed once.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct SyncGroup {
    pub template: String,
    pub template_version: String,
    /// The hash every tenant of the group has; `--group` takes it.
    pub drift_hash: String,
    pub tenants: Vec<String>,
    /// The group's steps (their counts are each tenant's own: see
    /// `blocked`).
    pub steps: Vec<SyncStep>,
    /// Tenants of the group whose plan cannot be applied, and why.
    pub blocked: Vec<BlockedTenant>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct BlockedTenant {
    pub slug: String,
    pub reasons: Vec<String>,
}

/// A tenant that could not be planned, and why.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct UnplannedTenant {
    pub slug: String,
    pub code: String,
    pub error: String,
}

#[derive(Debug, Clone, Default, Serialize, TS)]
#[ts(export)]
pub struct FleetSyncPlan {
    /// Biggest group first.
    pub groups: Vec<SyncGroup>,
    pub unplanned: Vec<UnplannedTenant>,
}

/// Plans a sync for every tenant whose recorded status is
/// `status`, grouped by identical plans. Changes nothing.
pub async fn plan_fleet(
    registry: &Registry,
    vault: &Vault,
    status: SchemaStatus,
    timeouts: Timeouts,
) -> Result<FleetSyncPlan, FleetError> {
    let mut out = FleetSyncPlan::default();
    let tenants = registry.list_tenants().await?;
    for t in tenants.iter().filter(|t| t.status == status) {
        match plan_sync(registry, vault, &t.slug, &KeepChoice::default(), timeouts).await {
            Ok(plan) => {
                let blocked = plan.blockers();
                let group = match out.groups.iter_mut().find(|g| {
                    g.drift_hash == plan.drift_hash
                        && g.template == plan.template
                        && g.template_version == plan.template_version
                }) {
                    Some(g) => g,
                    None => {
                        out.groups.push(SyncGroup {
                            template: plan.template.clone(),
                            template_version: plan.template_version.clone(),
                            drift_hash: plan.drift_hash.clone(),
                            tenants: Vec::new(),
                            steps: plan.steps.clone(),
                            blocked: Vec::new(),
                        });
                        out.groups.last_mut().expect("just pushed")
                    }
                };
                group.tenants.push(plan.slug.clone());
                if !blocked.is_empty() {
                    group.blocked.push(BlockedTenant {
                        slug: plan.slug,
                        reasons: blocked,
                    });
                }
            }
            Err(e) => out.unplanned.push(UnplannedTenant {
                slug: t.slug.clone(),
                code: e.code().to_owned(),
                error: e.to_string(),
            }),
        }
    }
    out.groups
        .sort_by_key(|g| std::cmp::Reverse(g.tenants.len()));
    Ok(out)
}

/// What happened to one tenant of a group sync.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct GroupMember {
    pub slug: String,
    pub outcome: Option<SyncOutcome>,
    pub code: Option<String>,
    pub error: Option<String>,
}

/// Syncs every tenant whose recorded hash is `drift_hash`, after
/// the group's hash is typed back exactly: each tenant is planned afresh
/// and applied only if it still has that hash and nothing blocks (each
/// attempt journaled and audited on its own, like a single sync).
pub async fn sync_group(
    registry: &Registry,
    vault: &Vault,
    drift_hash: &str,
    typed_confirmation: &str,
    timeouts: Timeouts,
) -> Result<Vec<GroupMember>, FleetError> {
    registry.authorize(tenantry_registry::Action::Sync).await?;
    if typed_confirmation != drift_hash {
        return Err(FleetError::ConfirmationMismatch {
            slug: drift_hash.to_owned(),
            why: "a group is confirmed by typing its hash exactly".into(),
        });
    }
    let mut out = Vec::new();
    for t in registry.list_tenants().await? {
        if t.current_hash.as_deref() != Some(drift_hash) {
            continue;
        }
        let result = async {
            let plan = plan_sync(registry, vault, &t.slug, &KeepChoice::default(), timeouts).await?;
            if plan.drift_hash != drift_hash {
                return Err(FleetError::PlanStale {
                    slug: t.slug.clone(),
                    reason: format!(
                        "its schema hashes {} now, not the group's {drift_hash}: scan again and review its own plan",
                        plan.drift_hash
                    ),
                });
            }
            execute_sync(registry, vault, &plan, &t.slug, timeouts).await
        }
        .await;
        out.push(match result {
            Ok(o) => GroupMember {
                slug: t.slug.clone(),
                outcome: Some(o),
                code: None,
                error: None,
            },
            Err(e) => GroupMember {
                slug: t.slug.clone(),
                outcome: None,
                code: Some(e.code().to_owned()),
                error: Some(e.to_string()),
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::is_quarantine_of;

    #[test]
    fn only_this_tenants_quarantine_names_are_taken_from_a_plan() {
        assert!(is_quarantine_of("acme", "tenantry_q_acme_1796520812"));
        for other in [
            "tenantry_q_acme_",
            "tenantry_q_acme_12x",
            "tenantry_q_globex_1",
            "public",
            "tenantry_q_acme_1\"; DROP SCHEMA acme; --",
        ] {
            assert!(!is_quarantine_of("acme", other), "{other}");
        }
    }
}
