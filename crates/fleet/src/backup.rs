//! Backups taken before resets: purge (drop the quarantine schema/database
//! or delete the file) and restore (swap the backup back in, keeping the
//! current objects as a new backup). Both need the tenant slug typed again.

use sqlx::{Connection, Executor};
use tenantry_introspect::{mysql, postgres, Timeouts};
use tenantry_model::quote;
use tenantry_registry::journal::OperationEnd;
use tenantry_registry::templates::Backup;
use tenantry_registry::{AuditResult, Registry, TenantRecord};
use tenantry_vault::Vault;

use crate::guard::tenant_schema;
use crate::reset::{check_confirmation, quarantine_name, unix_secs};
use crate::{catalog, FleetError};

/// Where a backup's objects are, parsed from its recorded location.
enum Place {
    PgSchema(String),
    MyDatabase(String),
    File(std::path::PathBuf),
}

/// How a sync's quarantine is recorded: `removed by sync: schema Q in DB`.
/// It holds only what the sync removed, so it can be purged but is not a
/// whole schema to swap back.
pub const SYNC_QUARANTINE: &str = "removed by sync: ";

fn place(b: &Backup) -> Result<Place, FleetError> {
    let bad = || FleetError::InvalidTemplate {
        reason: format!(
            "backup {} has an unreadable location {:?}",
            b.id, b.location
        ),
    };
    let location = b
        .location
        .strip_prefix(SYNC_QUARANTINE)
        .unwrap_or(&b.location);
    if let Some(rest) = location.strip_prefix("schema ") {
        return Ok(Place::PgSchema(
            rest.split(" in ").next().ok_or_else(bad)?.to_owned(),
        ));
    }
    if let Some(db) = location.strip_prefix("database ") {
        return Ok(Place::MyDatabase(db.to_owned()));
    }
    if let Some(f) = location.strip_prefix("file ") {
        return Ok(Place::File(f.into()));
    }
    Err(bad())
}

/// The tenant registered under the backup's slug, if it is the tenant the
/// backup was taken from (same id, same place); a refusal otherwise.
async fn owner(registry: &Registry, b: &Backup) -> Result<TenantRecord, FleetError> {
    let refuse = |reason: String| FleetError::BackupRefused {
        backup: format!("{} ({})", b.id, b.location),
        reason,
    };
    let record = match registry.tenant(&b.tenant_slug).await {
        Ok(r) => r,
        Err(tenantry_registry::RegistryError::TenantNotFound { .. }) => {
            return Err(refuse(format!(
                "the tenant it was taken from ({}) is no longer registered",
                b.tenant_slug
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if !b.belongs_to(&record) {
        return Err(refuse(format!(
            "it was taken from another tenant than the one now registered as `{}` (was {}, now {} at {}); a slug that was removed and reused does not inherit backups",
            b.tenant_slug,
            b.tenant_place.as_deref().unwrap_or("an unrecorded place"),
            record.id,
            record.location
        )));
    }
    Ok(record)
}

async fn find(registry: &Registry, id: i64) -> Result<Backup, FleetError> {
    registry
        .backups(None)
        .await?
        .into_iter()
        .find(|b| b.id == id && b.purged_at.is_none())
        .ok_or_else(|| FleetError::InvalidTemplate {
            reason: format!("no backup {id} (or it was purged); `tenantry backups` lists them"),
        })
}

/// Objects outside schema `$1` that depend on an object inside it (a view,
/// a foreign key, a column of one of its types, a default using one of its
/// sequences, a function…), each named by `pg_describe_object`. An object's
/// schema is that of the relation it belongs to for rules, triggers,
/// defaults and policies, which have no schema of their own.
const PG_OUTSIDE_DEPENDENTS: &str = "
WITH q AS (SELECT oid FROM pg_namespace WHERE nspname = $1),
inside AS (
    SELECT d.classid, d.objid FROM pg_depend d, q
     WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = q.oid
)
SELECT DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid)
  FROM pg_depend d
  JOIN inside i ON d.refclassid = i.classid AND d.refobjid = i.objid
 CROSS JOIN q
 WHERE d.deptype IN ('n', 'a')
   AND COALESCE(
         CASE d.classid
           WHEN 'pg_class'::regclass THEN (SELECT relnamespace FROM pg_class WHERE oid = d.objid)
           WHEN 'pg_type'::regclass THEN (SELECT typnamespace FROM pg_type WHERE oid = d.objid)
           WHEN 'pg_proc'::regclass THEN (SELECT pronamespace FROM pg_proc WHERE oid = d.objid)
           WHEN 'pg_constraint'::regclass THEN (SELECT connamespace FROM pg_constraint WHERE oid = d.objid)
           WHEN 'pg_rewrite'::regclass THEN (SELECT c.relnamespace FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class WHERE r.oid = d.objid)
           WHEN 'pg_trigger'::regclass THEN (SELECT c.relnamespace FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE t.oid = d.objid)
           WHEN 'pg_attrdef'::regclass THEN (SELECT c.relnamespace FROM pg_attrdef a JOIN pg_class c ON c.oid = a.adrelid WHERE a.oid = d.objid)
           WHEN 'pg_policy'::regclass THEN (SELECT c.relnamespace FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid WHERE p.oid = d.objid)
         END, 0) <> q.oid
 ORDER BY 1";

/// Foreign keys from other databases into database `?`, and views or
/// routines elsewhere that name it (MySQL keeps their text fully qualified).
const MY_OUTSIDE_DEPENDENTS: &str = "
SELECT CAST(CONCAT('foreign key ', CONSTRAINT_NAME, ' on ', CONSTRAINT_SCHEMA, '.', TABLE_NAME) AS CHAR)
  FROM information_schema.REFERENTIAL_CONSTRAINTS
 WHERE UNIQUE_CONSTRAINT_SCHEMA = ? AND CONSTRAINT_SCHEMA <> UNIQUE_CONSTRAINT_SCHEMA
UNION ALL
SELECT CAST(CONCAT('view ', TABLE_SCHEMA, '.', TABLE_NAME) AS CHAR)
  FROM information_schema.VIEWS
 WHERE TABLE_SCHEMA <> ? AND LOCATE(CONCAT('`', REPLACE(?, '`', '``'), '`.'), VIEW_DEFINITION) > 0";

/// A purge refusal naming what outside `backup` depends on it, if anything does.
fn refuse_dependents(backup: &str, dependents: &[String]) -> Result<(), FleetError> {
    if dependents.is_empty() {
        return Ok(());
    }
    Err(FleetError::PurgeRefused {
        backup: backup.to_owned(),
        dependents: dependents.join("; "),
    })
}

/// Whether the backup at `location` (as a reset or the journal records it)
/// exists on the tenant's server: an unfinished operation's backup is
/// adopted only when it does.
pub async fn backup_exists(
    registry: &Registry,
    vault: &Vault,
    slug: &str,
    location: &str,
    timeouts: Timeouts,
) -> Result<bool, FleetError> {
    let probe = Backup {
        id: 0,
        tenant_slug: slug.to_owned(),
        engine: registry.tenant(slug).await?.engine,
        location: location.to_owned(),
        drift_hash: None,
        created_at: String::new(),
        purged_at: None,
        tenant_id: None,
        tenant_place: None,
    };
    let url = registry.connection(vault, slug).await?;
    Ok(match place(&probe)? {
        Place::PgSchema(q) => {
            let mut c = postgres::connect(&url, timeouts).await?;
            let n: Result<i64, _> =
                sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname = $1")
                    .bind(&q)
                    .fetch_one(&mut c)
                    .await;
            postgres::close(c).await;
            n.map_err(|e| catalog(&url, &e))? > 0
        }
        Place::MyDatabase(q) => {
            // A quarantine holding only saved definitions is not a backup:
            // the reset stopped before any table moved.
            let mut c = mysql::connect(&url.with_database("")?, timeouts).await?;
            let tables = crate::mysql_aside::tables_in(&mut c, &url, &q).await;
            mysql::close(c).await;
            !tables?.is_empty()
        }
        Place::File(f) => f.is_file(),
    })
}

/// After a MySQL/MariaDB reset or restore that stopped before any table
/// moved: the triggers it had dropped (their definitions saved in the
/// quarantine) are recreated where missing, and the quarantine, holding
/// nothing else, is dropped. Returns what was done; nothing for other
/// engines or when `location` holds tables (a real backup).
pub async fn put_back_interrupted(
    registry: &Registry,
    vault: &Vault,
    slug: &str,
    location: &str,
    timeouts: Timeouts,
) -> Result<Option<String>, FleetError> {
    registry
        .authorize(tenantry_registry::Action::BackupRestore)
        .await?;
    let Some(q) = location.strip_prefix("database ") else {
        return Ok(None);
    };
    let record = registry.tenant(slug).await?;
    if record.engine != tenantry_model::Engine::Mysql {
        return Ok(None);
    }
    let url = registry.connection(vault, slug).await?;
    let schema = tenant_schema(&record, &url);
    let mut conn = mysql::connect(&url.with_database("")?, timeouts).await?;
    let r = async {
        crate::provision::mysql_lock(&mut conn, &url, &schema).await?;
        let present: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?",
        )
        .bind(q)
        .fetch_one(&mut conn)
        .await
        .map_err(|e| catalog(&url, &e))?;
        if present == 0
            || !crate::mysql_aside::tables_in(&mut conn, &url, q)
                .await?
                .is_empty()
        {
            return Ok(None);
        }
        let n = crate::mysql_aside::put_back_triggers(&mut conn, &url, q, &schema).await?;
        crate::mysql_aside::drop_empty_quarantine(&mut conn, q).await;
        Ok(Some(format!(
            "{n} trigger(s) it had dropped recreated in {schema}; the empty {q} dropped"
        )))
    }
    .await;
    crate::provision::mysql_unlock(&mut conn, &schema).await;
    mysql::close(conn).await;
    r
}

/// Deletes a backup for good. Nothing outside the backup is ever dropped:
/// objects elsewhere that depend on it make the purge a refusal that
/// lists them.
pub async fn purge_backup(
    registry: &Registry,
    vault: &Vault,
    id: i64,
    typed: &str,
    timeouts: Timeouts,
) -> Result<(), FleetError> {
    registry
        .authorize(tenantry_registry::Action::BackupPurge)
        .await?;
    let b = find(registry, id).await?;
    let result = async {
        check_confirmation(&b.tenant_slug, typed)?;
        owner(registry, &b).await?;
        let url = registry.connection(vault, &b.tenant_slug).await?;
        let op = registry
            .begin_operation(&b.tenant_slug, "backup.purge", Some(&b.location))
            .await?;
        let dropped = async {
            match place(&b)? {
                Place::PgSchema(q) => {
                    let mut c = postgres::connect(&url, timeouts).await?;
                    let r = async {
                        let mut tx = c.begin().await.map_err(|e| catalog(&url, &e))?;
                        // Every object outside the quarantine that depends on an
                        // object inside it: CASCADE would drop (or break) it.
                        let dependents: Vec<String> = sqlx::query_scalar(PG_OUTSIDE_DEPENDENTS)
                            .bind(&q)
                            .fetch_all(&mut *tx)
                            .await
                            .map_err(|e| catalog(&url, &e))?;
                        refuse_dependents(&format!("schema {q}"), &dependents)?;
                        // CASCADE now reaches only the quarantine's own objects.
                        tx.execute(format!("DROP SCHEMA {} CASCADE", quote::postgres(&q)).as_str())
                            .await
                            .map_err(|e| catalog(&url, &e))?;
                        tx.commit().await.map_err(|e| catalog(&url, &e))
                    }
                    .await;
                    postgres::close(c).await;
                    r?;
                }
                Place::MyDatabase(q) => {
                    let mut c = mysql::connect(&url.with_database("")?, timeouts).await?;
                    let r = async {
                        let dependents: Vec<String> = sqlx::query_scalar(MY_OUTSIDE_DEPENDENTS)
                            .bind(&q)
                            .bind(&q)
                            .bind(&q)
                            .fetch_all(&mut c)
                            .await
                            .map_err(|e| catalog(&url, &e))?;
                        refuse_dependents(&format!("database {q}"), &dependents)?;
                        c.execute(format!("DROP DATABASE {}", quote::mysql(&q)).as_str())
                            .await
                            .map_err(|e| catalog(&url, &e))
                    }
                    .await;
                    mysql::close(c).await;
                    r?;
                }
                Place::File(f) => {
                    std::fs::remove_file(&f).map_err(|source| FleetError::Io {
                        action: "delete backup",
                        path: f.clone(),
                        source,
                    })?;
                    crate::sqlite_backup::remove_with_sides(&f);
                }
            }
            Ok::<_, FleetError>(())
        }
        .await;
        if let Err(e) = dropped {
            crate::end_operation_with(registry, op, &e).await;
            return Err(e);
        }
        registry.mark_backup_purged(id).await?;
        registry
            .finish_operation(op, OperationEnd::Ok, &format!("purged backup {id}"))
            .await?;
        Ok(())
    }
    .await;
    let location = b.location.clone();
    crate::audit_outcome(
        registry,
        &b.tenant_slug,
        "backup.purge",
        &result,
        |()| (format!("purged backup {id}: {location}"), AuditResult::Ok),
        false,
    )
    .await?;
    result
}

/// Puts a backup back in place of the tenant's current objects; the
/// current objects become a new backup, so nothing is lost either way.
pub async fn restore_backup(
    registry: &Registry,
    vault: &Vault,
    id: i64,
    typed: &str,
    timeouts: Timeouts,
) -> Result<String, FleetError> {
    registry
        .authorize(tenantry_registry::Action::BackupRestore)
        .await?;
    let b = find(registry, id).await?;
    let result = async {
        check_confirmation(&b.tenant_slug, typed)?;
        if b.location.starts_with(SYNC_QUARANTINE) {
            return Err(FleetError::BackupRefused {
                backup: format!("{} ({})", b.id, b.location),
                reason: "it holds only the tables and table copies a sync removed, not a whole schema to swap back; copy what you need from it by hand (its tables keep their names)".into(),
            });
        }
        let record = owner(registry, &b).await?;
        let url = registry.connection(vault, &b.tenant_slug).await?;
        let schema = tenant_schema(&record, &url);
        let stamp = unix_secs();
        // Where the replaced objects go, decided and journaled before
        // anything is touched.
        let aside_name = format!("{}r", quarantine_name(&schema));
        let aside_file = url.sqlite_path().with_extension(format!("{stamp}r.bak"));
        let planned = match place(&b)? {
            Place::PgSchema(_) => format!("schema {aside_name} in {}", url.database().unwrap_or_else(|| "postgres".into())),
            Place::MyDatabase(_) => format!("database {aside_name}"),
            Place::File(_) => format!("file {}", aside_file.display()),
        };
        let op = registry.begin_operation(&b.tenant_slug, "backup.restore", Some(&planned)).await?;
        let swap = async { match place(&b)? {
            Place::PgSchema(q) => {
                let mut conn = postgres::connect(&url, timeouts).await?;
                let r = async {
                    let mut tx = crate::provision::locked_tx(&mut conn, &url, &schema).await?;
                    let aside = aside_name.clone();
                    let quote = quote::postgres;
                    tx.execute(format!("ALTER SCHEMA {} RENAME TO {}", quote(&schema), quote(&aside)).as_str()).await.map_err(|e| catalog(&url, &e))?;
                    tx.execute(format!("ALTER SCHEMA {} RENAME TO {}", quote(&q), quote(&schema)).as_str()).await.map_err(|e| catalog(&url, &e))?;
                    tx.commit().await.map_err(|e| catalog(&url, &e))?;
                    Ok::<_, FleetError>(())
                }
                .await;
                postgres::close(conn).await;
                r?
            }
            Place::MyDatabase(q) => {
                let mut conn = mysql::connect(&url.with_database("")?, timeouts).await?;
                let r = async {
                    // The tenant's lock, as the guard and the reset take it.
                    crate::provision::mysql_lock(&mut conn, &url, &schema).await?;
                    // Check first, change nothing: a backup whose database
                    // is gone would otherwise empty the tenant.
                    let present: Option<String> = sqlx::query_scalar("SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?")
                        .bind(&q).fetch_optional(&mut conn).await.map_err(|e| catalog(&url, &e))?;
                    if present.is_none() {
                        return Err(FleetError::BackupRefused { backup: format!("{id} (database {q})"), reason: format!("its database {q} no longer exists on {}", url.server_label()) });
                    }
                    let aside = aside_name.clone();
                    let current = crate::mysql_aside::tables_in(&mut conn, &url, &schema).await?;
                    let saved = crate::mysql_aside::tables_in(&mut conn, &url, &q).await?;
                    let m = quote::mysql;
                    // The current views and triggers are saved aside (the
                    // triggers dropped, so their tables can move); the
                    // backup's are recreated from its bookkeeping.
                    let prepared = crate::mysql_aside::prepare(&mut conn, &url, &schema, &aside).await?;
                    let mut moves: Vec<String> = current.iter().map(|t| format!("{}.{} TO {}.{}", m(&schema), m(t), m(&aside), m(t))).collect();
                    moves.extend(saved.iter().map(|t| format!("{}.{} TO {}.{}", m(&q), m(t), m(&schema), m(t))));
                    if !moves.is_empty() {
                        if let Err(e) = conn.execute(format!("RENAME TABLE {}", moves.join(", ")).as_str()).await {
                            crate::mysql_aside::undo(&mut conn, &url, &schema, &aside, prepared).await;
                            return Err(catalog(&url, &e));
                        }
                    }
                    let views: Vec<String> = sqlx::query_scalar("SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ?")
                        .bind(&schema)
                        .fetch_all(&mut conn)
                        .await
                        .map_err(|e| catalog(&url, &e))?;
                    for v in views {
                        conn.execute(format!("DROP VIEW {}.{}", m(&schema), m(&v)).as_str()).await.map_err(|e| catalog(&url, &e))?;
                    }
                    crate::mysql_aside::recreate_saved(&mut conn, &url, &q, &schema).await?;
                    // Its tables are back: what is left is bookkeeping.
                    crate::mysql_aside::drop_empty_quarantine(&mut conn, &q).await;
                    Ok::<_, FleetError>(())
                }
                .await;
                crate::provision::mysql_unlock(&mut conn, &schema).await;
                mysql::close(conn).await;
                r?
            }
            Place::File(f) => {
                if !f.is_file() {
                    return Err(FleetError::Io { action: "find the backup", path: f.clone(), source: std::io::Error::from(std::io::ErrorKind::NotFound) });
                }
                let path = url.sqlite_path();
                let aside = aside_file.clone();
                // Both through SQLite's backup API: the current content (with
                // its `-wal`) is set aside whole, and the restore is written
                // through the tenant's own journal, so no leftover `-wal`
                // can undo it.
                crate::sqlite_backup::back_up(&path, &aside).await?;
                crate::sqlite_backup::restore(&f, &path).await?;
            }
        } Ok::<_, FleetError>(()) }.await;
        if let Err(e) = swap {
            crate::end_operation_with(registry, op, &e).await;
            return Err(e);
        }
        let displaced = planned;
        registry.record_backup(&b.tenant_slug, record.engine, &displaced, record.current_hash.as_deref()).await?;
        // The restored backup's objects are live again: it leaves the list.
        registry.mark_backup_purged(id).await?;
        registry.finish_operation(op, OperationEnd::Ok, &format!("restored backup {id}; replaced objects in {displaced}")).await?;
        Ok(displaced)
    }
    .await;
    let location = b.location.clone();
    crate::audit_outcome(
        registry,
        &b.tenant_slug,
        "backup.restore",
        &result,
        |d| {
            (
                format!("restored backup {id} ({location}); the replaced objects are in {d}"),
                AuditResult::Ok,
            )
        },
        false,
    )
    .await?;
    result
}

/// A quarantine schema or database, or a `.bak` file, that has the name a
/// reset or restore of this tenant gives its backups but that the registry
/// does not list: made by a run that died before it could record it (or
/// before journals existed).
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
#[ts(export)]
pub struct OrphanBackup {
    pub tenant_slug: String,
    /// As `backup list` shows locations: `schema … in …`, `database …`,
    /// `file …`.
    pub location: String,
}

/// Whether `name` is `tenantry_q_<stem>_<seconds>` (a reset's quarantine)
/// or the same with `r` (a restore's), for a tenant whose quarantine stem
/// is `stem`.
fn is_quarantine_of(name: &str, stem: &str) -> bool {
    quarantine_stamp(name, stem).is_some_and(is_backup_stamp)
}

/// The stamp of `tenantry_q_<stem>_<stamp>`, when `name` is a quarantine
/// of the schema whose stem is `stem`.
pub(crate) fn quarantine_stamp<'a>(name: &'a str, stem: &str) -> Option<&'a str> {
    name.strip_prefix("tenantry_q_")
        .and_then(|rest| rest.strip_prefix(stem))
        .and_then(|rest| rest.strip_prefix('_'))
}

/// The stamp a reset or sync (`<seconds>`), a restore (`<seconds>r`) or a
/// SQLite backup made in the same second as another (`<seconds>-<n>`, n ≥ 2)
/// puts in its backup's name.
fn is_backup_stamp(stamp: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match stamp.split_once('-') {
        Some((secs, n)) => digits(secs) && digits(n) && n.parse::<u64>().is_ok_and(|n| n >= 2),
        None => digits(stamp.strip_suffix('r').unwrap_or(stamp)),
    }
}

/// Finds every tenant's unrecorded backups on its server or beside its file.
/// Tenants that cannot be reached are skipped (the scan reports them).
pub async fn discover_orphans(
    registry: &Registry,
    vault: &Vault,
    timeouts: Timeouts,
) -> Result<Vec<OrphanBackup>, FleetError> {
    let known: std::collections::HashSet<String> = registry
        .backups(None)
        .await?
        .into_iter()
        .map(|b| b.location)
        .collect();
    let mut found = Vec::new();
    for record in registry.list_tenants().await? {
        let Ok(url) = registry.connection(vault, &record.slug).await else {
            continue;
        };
        let schema = tenant_schema(&record, &url);
        let stem = crate::reset::quarantine_stem(&schema);
        let locations: Vec<String> = match record.engine {
            tenantry_model::Engine::Postgres => {
                let Ok(mut c) = postgres::connect(&url, timeouts).await else {
                    continue;
                };
                let names: Result<Vec<(String, String)>, _> = sqlx::query_as(
                    "SELECT nspname::text, current_database()::text FROM pg_namespace WHERE nspname LIKE 'tenantry\\_q\\_%'",
                )
                .fetch_all(&mut c)
                .await;
                postgres::close(c).await;
                names
                    .map_err(|e| catalog(&url, &e))?
                    .into_iter()
                    .filter(|(n, _)| is_quarantine_of(n, &stem))
                    .map(|(n, db)| format!("schema {n} in {db}"))
                    .collect()
            }
            tenantry_model::Engine::Mysql => {
                let Ok(mut c) = mysql::connect(&url.with_database("")?, timeouts).await else {
                    continue;
                };
                let names: Result<Vec<String>, _> = sqlx::query_scalar(
                    "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'tenantry\\_q\\_%'",
                )
                .fetch_all(&mut c)
                .await;
                let mut out = Vec::new();
                for n in names.map_err(|e| catalog(&url, &e))? {
                    // Only a quarantine that holds tables is a backup.
                    if is_quarantine_of(&n, &stem)
                        && !crate::mysql_aside::tables_in(&mut c, &url, &n)
                            .await?
                            .is_empty()
                    {
                        out.push(format!("database {n}"));
                    }
                }
                mysql::close(c).await;
                out
            }
            tenantry_model::Engine::Sqlite => {
                let path = url.sqlite_path();
                let (Some(dir), Some(file_stem)) = (
                    path.parent().map(|d| {
                        if d.as_os_str().is_empty() {
                            std::path::Path::new(".")
                        } else {
                            d
                        }
                    }),
                    path.file_stem().and_then(|s| s.to_str()),
                ) else {
                    continue;
                };
                let Ok(entries) = std::fs::read_dir(dir) else {
                    continue;
                };
                let mut out: Vec<String> = entries
                    .filter_map(Result::ok)
                    .filter(|e| {
                        e.file_name().to_str().is_some_and(|n| {
                            n.strip_prefix(file_stem)
                                .and_then(|r| r.strip_prefix('.'))
                                .and_then(|r| r.strip_suffix(".bak"))
                                .is_some_and(is_backup_stamp)
                        })
                    })
                    .map(|e| format!("file {}", dir.join(e.file_name()).display()))
                    .collect();
                out.sort();
                out
            }
        };
        found.extend(
            locations
                .into_iter()
                .filter(|l| !known.contains(l))
                .map(|location| OrphanBackup {
                    tenant_slug: record.slug.clone(),
                    location,
                }),
        );
    }
    Ok(found)
}

/// Records an orphan backup found by [`discover_orphans`] for its tenant, so
/// `backup list`, restore and purge see it. Anything that is not such an
/// orphan of that tenant is refused. Audited.
pub async fn adopt_orphan(
    registry: &Registry,
    vault: &Vault,
    slug: &str,
    location: &str,
    timeouts: Timeouts,
) -> Result<(), FleetError> {
    registry
        .authorize(tenantry_registry::Action::BackupRestore)
        .await?;
    let result = async {
        let orphans = discover_orphans(registry, vault, timeouts).await?;
        if !orphans.iter().any(|o| o.tenant_slug == slug && o.location == location) {
            return Err(FleetError::BackupRefused {
                backup: tenantry_registry::escape_controls(location),
                reason: format!("it is not an unrecorded backup of {slug}; `tenantry backup discover` lists those"),
            });
        }
        let engine = registry.tenant(slug).await?.engine;
        registry.record_backup(slug, engine, location, None).await?;
        Ok(())
    }
    .await;
    crate::audit_outcome(
        registry,
        slug,
        "backup.adopt",
        &result,
        |_| {
            (
                format!("adopted the unrecorded backup {location}"),
                AuditResult::Ok,
            )
        },
        false,
    )
    .await?;
    result
}

#[cfg(test)]
mod tests {
    use super::{is_backup_stamp, is_quarantine_of};

    #[test]
    fn backup_stamps_of_resets_restores_and_same_second_sqlite_backups() {
        for ok in ["1796520812", "1796520812r", "1796520812-2", "1796520812-13"] {
            assert!(is_backup_stamp(ok), "{ok}");
        }
        for bad in [
            "",
            "r",
            "-2",
            "1796520812-",
            "1796520812-1",
            "1796520812-0",
            "17965x",
            "1796520812-2r",
            "1796520812-a",
        ] {
            assert!(!is_backup_stamp(bad), "{bad}");
        }
        assert!(is_quarantine_of("tenantry_q_acme_1796520812", "acme"));
        assert!(!is_quarantine_of("tenantry_q_acmex_1796520812", "acme"));
    }
}
