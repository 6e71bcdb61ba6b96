//! The operation journal: what a destructive operation is about to do is
//! recorded before it does anything, and completed when it ends. If the
//! intent cannot be written (the registry is locked, read-only, gone),
//! nothing starts. A journal row that never finished belongs to an operation
//! that was killed, or lost its registry, mid-way: it is shown on the next
//! open with its backup, and resolved by adopting that backup or marking the
//! operation abandoned.

use serde::Serialize;
use sqlx::Row;
use ts_rs::TS;

use crate::{current_actor, escape_controls, AuditResult, Registry, RegistryError};

/// One journaled operation.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct Operation {
    #[ts(type = "number")]
    pub id: i64,
    pub tenant_slug: String,
    #[ts(type = "number")]
    pub tenant_id: i64,
    pub kind: String,
    /// Where the operation's backup is (or was going to be).
    pub backup: Option<String>,
    pub actor: String,
    pub host: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub outcome: Option<String>,
    pub detail: Option<String>,
    /// The last step recorded, for operations that record steps
    /// (`migration started: …`, `migration done: …`, `tables moved`).
    pub last_step: Option<String>,
    /// Unfinished and possibly in progress: its process is alive on this
    /// host, or it runs on another machine (where it cannot be checked).
    /// Not running: killed, or lost its registry.
    pub running: bool,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationEnd {
    Ok,
    Refused,
    Failed,
}

/// A journal entry as this process writes it: an operation begun, a step
/// recorded, or the operation's end. Sent to [`Registry::journal_events`]
/// subscribers after it is stored (never before: what is shown is what the
/// journal holds).
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct JournalEvent {
    pub operation: i64,
    pub tenant_slug: String,
    pub step: String,
}

impl Registry {
    /// Subscribes to the journal entries this process writes from now on
    /// (a subscriber that falls behind by more than 256 loses the oldest).
    pub fn journal_events(&self) -> tokio::sync::broadcast::Receiver<JournalEvent> {
        self.journal_events.subscribe()
    }

    /// Tells subscribers, if any, of a stored journal entry.
    async fn announce(&self, operation: i64, step: String) {
        if self.journal_events.receiver_count() == 0 {
            return;
        }
        let slug: Option<String> =
            sqlx::query_scalar("SELECT tenant_slug FROM operations WHERE id = $1")
                .bind(operation)
                .fetch_optional(&self.pool)
                .await
                .ok()
                .flatten();
        if let Some(tenant_slug) = slug {
            // No subscriber left is not an error.
            drop(self.journal_events.send(JournalEvent {
                operation,
                tenant_slug,
                step,
            }));
        }
    }

    /// Records that `kind` is about to run on tenant `slug`, with its backup
    /// going to `backup`. Call it before anything is changed; if it fails,
    /// change nothing.
    pub async fn begin_operation(
        &self,
        slug: &str,
        kind: &str,
        backup: Option<&str>,
    ) -> Result<i64, RegistryError> {
        self.authorize(match kind {
            "sync" => crate::Action::Sync,
            "provision" => crate::Action::Guard,
            "backup.restore" => crate::Action::BackupRestore,
            "backup.purge" => crate::Action::BackupPurge,
            // A reset, and any kind not named here: the most guarded.
            _ => crate::Action::Reset,
        })
        .await?;
        let tenant = self.tenant(slug).await?;
        let actor = current_actor();
        let mut tx = self.write_tx().await?;
        // The tenant's lock, which every console and CLI run sharing the
        // registry sees: an unfinished operation that may still be running
        // (here, or on another machine, where it cannot be checked) makes
        // the tenant busy. Checked under the registry's write lock, so two
        // runs cannot both pass it.
        let here = escape_controls(&actor.host);
        let unfinished: Vec<UnfinishedRow> = sqlx::query_as(
            "SELECT id, kind, started_at, actor, host, pid FROM operations
                  WHERE tenant_id = $1 AND finished_at IS NULL ORDER BY id",
        )
        .bind(tenant.id)
        .fetch_all(&mut *tx)
        .await?;
        for (operation, kind, started_at, by, host, pid) in unfinished {
            if may_be_running(host.as_deref(), pid, &here) {
                let host = host.unwrap_or_else(|| "an unknown host".into());
                let elsewhere = if host == here {
                    ""
                } else {
                    "; it runs on another machine, so whether it is alive cannot be told from here"
                };
                return Err(RegistryError::TenantBusy {
                    slug: slug.to_owned(),
                    operation,
                    what: format!("{kind}, started {started_at} by {by} on {host}{elsewhere}"),
                });
            }
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO operations (tenant_id, tenant_slug, engine, kind, backup, actor, host, pid)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(tenant.id)
        .bind(slug)
        .bind(tenant.engine.as_str())
        .bind(kind)
        .bind(backup)
        .bind(escape_controls(&actor.account))
        .bind(escape_controls(&actor.host))
        .bind(i64::from(std::process::id()))
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.audit(
            Some(slug),
            &format!("{kind}.start"),
            &format!(
                "operation {id} started; backup: {}",
                backup.unwrap_or("none")
            ),
            AuditResult::Ok,
        )
        .await?;
        self.announce(
            id,
            format!("{kind} started; backup: {}", backup.unwrap_or("none")),
        )
        .await;
        Ok(id)
    }

    /// Completes a journaled operation.
    pub async fn finish_operation(
        &self,
        id: i64,
        end: OperationEnd,
        detail: &str,
    ) -> Result<(), RegistryError> {
        let outcome = match end {
            OperationEnd::Ok => "ok",
            OperationEnd::Refused => "refused",
            OperationEnd::Failed => "failed",
        };
        self.close_operation(id, outcome, detail).await?;
        self.announce(id, format!("finished: {outcome}; {detail}"))
            .await;
        Ok(())
    }

    async fn close_operation(
        &self,
        id: i64,
        outcome: &str,
        detail: &str,
    ) -> Result<(), RegistryError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(&format!(
            "UPDATE operations SET finished_at = {now},
                    outcome = $2, detail = $3
              WHERE id = $1 AND finished_at IS NULL",
            now = self.backend.now()
        ))
        .bind(id)
        .bind(outcome)
        .bind(escape_controls(detail))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records the next step of operation `id`. Call it before a step that
    /// cannot be undone starts (and again when it is done); if it fails,
    /// do not start the step.
    pub async fn record_step(&self, id: i64, step: &str) -> Result<(), RegistryError> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO operation_steps (operation_id, seq, step)
             VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM operation_steps WHERE operation_id = $1), $2)",
        )
        .bind(id)
        .bind(escape_controls(step))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.announce(id, escape_controls(step)).await;
        Ok(())
    }

    /// The steps of operation `id`, in order.
    pub async fn operation_steps(&self, id: i64) -> Result<Vec<String>, RegistryError> {
        Ok(sqlx::query_scalar(
            "SELECT step FROM operation_steps WHERE operation_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?)
    }

    /// The newest operation of one of `kinds` on tenant `slug` (its id, not
    /// merely its slug), finished or not.
    pub async fn last_operation_of(
        &self,
        slug: &str,
        kinds: &[&str],
    ) -> Result<Option<Operation>, RegistryError> {
        let tenant = self.tenant(slug).await?;
        let id: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM operations WHERE tenant_id = $1 AND kind IN ({})
              ORDER BY id DESC LIMIT 1",
            self.backend.json_strings("$2")
        ))
        .bind(tenant.id)
        .bind(serde_json::to_string(kinds).unwrap_or_default())
        .fetch_optional(self.pool())
        .await?;
        let Some(id) = id else {
            return Ok(None);
        };
        Ok(self
            .select_operations(&format!("WHERE id = {id}"))
            .await?
            .pop())
    }

    /// The unfinished operations whose process is gone (killed, or lost
    /// its registry), oldest first. Each is written to the audit log the
    /// first time it is found. Operations still running elsewhere on this
    /// host are left out.
    pub async fn killed_operations(&self) -> Result<Vec<Operation>, RegistryError> {
        let killed: Vec<Operation> = self
            .unfinished_operations()
            .await?
            .into_iter()
            .filter(|o| !o.running)
            .collect();
        for o in &killed {
            // Best effort: a registry that cannot be written now still
            // shows them, and the next writable open records them.
            if let Err(e) = self.record_killed(o).await {
                tracing::warn!(
                    code = e.code(),
                    operation = o.id,
                    "unfinished operation not audited yet"
                );
            }
        }
        Ok(killed)
    }

    async fn record_killed(&self, o: &Operation) -> Result<(), RegistryError> {
        let mut tx = self.write_tx().await?;
        let first = sqlx::query(&format!(
            "UPDATE operations SET reported_at = {now}
              WHERE id = $1 AND reported_at IS NULL",
            now = self.backend.now()
        ))
        .bind(o.id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        if first {
            self.audit(
                Some(&o.tenant_slug),
                "operation.unfinished",
                &format!(
                    "operation {} ({} started {} by {}) never finished: its process died or lost the registry{}; backup: {}",
                    o.id,
                    o.kind,
                    o.started_at,
                    o.actor,
                    o.last_step.as_deref().map(|s| format!(" (last step: {s})")).unwrap_or_default(),
                    o.backup.as_deref().unwrap_or("none")
                ),
                AuditResult::Failed,
            )
            .await?;
        }
        Ok(())
    }

    /// Operations that started and never finished, oldest first.
    pub async fn unfinished_operations(&self) -> Result<Vec<Operation>, RegistryError> {
        self.select_operations("WHERE finished_at IS NULL ORDER BY id")
            .await
    }

    /// The unfinished operation `id`, or a typed error saying how to list them.
    pub async fn unfinished_operation(&self, id: i64) -> Result<Operation, RegistryError> {
        self.unfinished_operations()
            .await?
            .into_iter()
            .find(|o| o.id == id)
            .ok_or_else(|| RegistryError::InvalidInput {
                field: "operation",
                reason: format!("no unfinished operation {id}; `tenantry operations` lists them"),
            })
    }

    /// Every journaled operation, newest first (at most `limit`).
    pub async fn operations(&self, limit: u32) -> Result<Vec<Operation>, RegistryError> {
        self.select_operations(&format!("ORDER BY id DESC LIMIT {limit}"))
            .await
    }

    /// `tail`: a filter, order and limit made of literals, never of input.
    async fn select_operations(&self, tail: &str) -> Result<Vec<Operation>, RegistryError> {
        let rows = sqlx::query(&format!(
            "SELECT id, tenant_slug, tenant_id, kind, backup, actor, host, started_at, finished_at, outcome, detail,
                    (SELECT step FROM operation_steps s WHERE s.operation_id = operations.id
                      ORDER BY seq DESC LIMIT 1) AS last_step, pid
               FROM operations {tail}"
        ))
        .fetch_all(self.pool())
        .await?;
        let here = escape_controls(&current_actor().host);
        rows.iter()
            .map(|r| {
                let mut o = Operation {
                    id: r.try_get("id")?,
                    tenant_slug: r.try_get("tenant_slug")?,
                    tenant_id: r.try_get("tenant_id")?,
                    kind: r.try_get("kind")?,
                    backup: r.try_get("backup")?,
                    actor: r.try_get("actor")?,
                    host: r.try_get("host")?,
                    started_at: r.try_get("started_at")?,
                    finished_at: r.try_get("finished_at")?,
                    outcome: r.try_get("outcome")?,
                    detail: r.try_get("detail")?,
                    last_step: r.try_get("last_step")?,
                    running: false,
                };
                o.running = o.finished_at.is_none()
                    && may_be_running(o.host.as_deref(), r.try_get("pid")?, &here);
                Ok(o)
            })
            .collect()
    }

    /// Resolves an unfinished operation. With `adopt`, its backup — which
    /// the caller has checked exists — is recorded for the tenant it was
    /// taken from (`backup list` shows it; restore and purge work on it);
    /// without, the operation is marked abandoned. Audited either way.
    pub async fn resolve_operation(
        &self,
        id: i64,
        adopt_backup: Option<&str>,
        note: &str,
    ) -> Result<Operation, RegistryError> {
        // Adopting or abandoning what a stopped reset, restore or purge
        // left is an admin's call.
        self.authorize(crate::Action::BackupRestore).await?;
        let op = self.unfinished_operation(id).await?;
        let tenant = self.tenant(&op.tenant_slug).await?;
        if tenant.id != op.tenant_id {
            return Err(RegistryError::InvalidInput {
                field: "operation",
                reason: format!(
                    "operation {id} was on another tenant than the one now registered as `{}`",
                    op.tenant_slug
                ),
            });
        }
        let (outcome, detail) = match adopt_backup {
            Some(location) => {
                let already = self
                    .backups(Some(&op.tenant_slug))
                    .await?
                    .iter()
                    .any(|b| b.location == location);
                if !already {
                    self.record_backup(&op.tenant_slug, tenant.engine, location, None)
                        .await?;
                }
                ("adopted", format!("backup {location} adopted; {note}"))
            }
            None => ("abandoned", format!("marked abandoned; {note}")),
        };
        self.close_operation(id, outcome, &detail).await?;
        self.audit(
            Some(&op.tenant_slug),
            "operation.resolve",
            &format!(
                "operation {id} ({} started {}): {detail}",
                op.kind, op.started_at
            ),
            AuditResult::Ok,
        )
        .await?;
        Ok(op)
    }
}

/// An unfinished operation as the tenant lock reads it: id, kind, started
/// at, actor, host, pid.
type UnfinishedRow = (i64, String, String, String, Option<String>, Option<i64>);

/// Whether an unfinished operation started on `host` by process `pid` may
/// still be running, seen from host `here`: on this host, whether its
/// process is alive; on another machine (a shared registry), it cannot be
/// told, so it is never taken for dead. Rows from before hosts were
/// recorded are not running.
fn may_be_running(host: Option<&str>, pid: Option<i64>, here: &str) -> bool {
    match host {
        Some(h) if h == here => pid.is_some_and(process_alive),
        Some(_) => true,
        None => false,
    }
}

/// Whether process `pid` exists on this host (signal 0: no signal sent).
fn process_alive(pid: i64) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = i32::try_from(pid) else {
            return false;
        };
        // EPERM: it exists, owned by someone else.
        matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Ok(()) | Err(nix::errno::Errno::EPERM)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        false
    }
}
