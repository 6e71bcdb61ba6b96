//! The guarded reset-and-reapply: plan (what will be dropped, with row
//! counts), backup first, exact confirmation, execution under the tenant
//! lock with a re-check of the plan's hash, verification, audit.
//!
//! Backups: PostgreSQL renames the tenant's schema to a quarantine schema
//! and builds a fresh one, all in the reset transaction (a failure or a
//! killed connection leaves the tenant exactly as it was); MySQL/MariaDB
//! move every table into a quarantine database with one `RENAME TABLE`
//! before anything is dropped (DDL commits implicitly there, so a failure
//! after the move is reported as a partial state with the backup named);
//! SQLite copies the file under the write lock, then rebuilds in one
//! transaction.

use serde::Serialize;
use sqlx::{Connection, Executor};
use tenantry_introspect::{mysql, postgres, sqlite, ConnectionUrl, IntrospectError, Timeouts};
use tenantry_model::diff::{diff_schemas, Presence};
use tenantry_model::quote::{mysql as quote_my, postgres as quote_pg, sqlite as quote_lite};
use tenantry_model::{
    hash_schema, DriftHash, Engine, Extension, ObjectKind, SchemaSnapshot, SchemaStatus,
};
use tenantry_registry::journal::OperationEnd;
use tenantry_registry::templates::TenantCheck;
use tenantry_registry::{AuditResult, Registry, TenantRecord};
use tenantry_vault::Vault;
use ts_rs::TS;

use crate::guard::{read_tenant, tenant_schema};
use crate::provision::{mysql_lock, mysql_unlock};
use crate::template::{Migration, Template};
use crate::{catalog, plural, FleetError};

/// One object the reset will drop (and, if the template has it, recreate).
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct PlannedObject {
    pub kind: String,
    pub name: String,
    /// `added` (custom: dropped, not recreated), `changed`, `identical`, or
    /// `missing` (only recreated).
    pub presence: String,
    /// Rows that will move to the backup (tables only).
    #[ts(type = "number | null")]
    pub rows: Option<i64>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ResetPlan {
    pub slug: String,
    #[ts(type = "\"postgres\" | \"mysql\" | \"sqlite\"")]
    pub engine: Engine,
    pub server: String,
    pub schema: String,
    pub template: String,
    pub template_version: String,
    pub template_hash: String,
    /// The tenant's hash when planned; execution refuses if it changed.
    pub drift_hash: String,
    pub objects: Vec<PlannedObject>,
    /// Everything else the reset moves, keeps or changes beyond the
    /// objects above: functions moving to the backup, extensions moved back
    /// into the rebuilt schema, the schema's owner and grants kept.
    pub changes: Vec<String>,
    /// Where the backup will be made.
    pub backup: String,
}

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct ResetOutcome {
    pub slug: String,
    pub backup: String,
    pub hash_after: Option<String>,
    #[ts(type = "\"unknown\" | \"synced\" | \"customized\" | \"outdated\" | \"failed\"")]
    pub status: SchemaStatus,
    pub applied: Vec<String>,
}

/// Seconds since the Unix epoch, for backup names.
pub(crate) fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The part of a quarantine's name that names its tenant's schema.
pub(crate) fn quarantine_stem(schema: &str) -> String {
    schema
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(36)
        .collect()
}

/// `tenantry_q_<schema stem>_<utc timestamp>`, at most 63 bytes.
pub(crate) fn quarantine_name(schema: &str) -> String {
    format!("tenantry_q_{}_{}", quarantine_stem(schema), unix_secs())
}

/// Checks the typed confirmation: the slug exactly, byte for byte.
pub fn check_confirmation(slug: &str, typed: &str) -> Result<(), FleetError> {
    if typed == slug {
        return Ok(());
    }
    let why = if typed.trim() == slug {
        "it has extra spaces".to_owned()
    } else if typed.eq_ignore_ascii_case(slug) {
        "the letter case differs".to_owned()
    } else if !typed.is_ascii() {
        "it contains non-ASCII characters (a look-alike of the slug is not the slug)".to_owned()
    } else {
        "it is not the slug".to_owned()
    };
    Err(FleetError::ConfirmationMismatch {
        slug: slug.to_owned(),
        why,
    })
}

pub(crate) struct Context {
    pub(crate) record: TenantRecord,
    pub(crate) url: ConnectionUrl,
    pub(crate) schema: String,
    pub(crate) template: Template,
    pub(crate) version: String,
    pub(crate) template_snapshot: SchemaSnapshot,
}

pub(crate) async fn context(
    registry: &Registry,
    vault: &Vault,
    slug: &str,
) -> Result<Context, FleetError> {
    let record = registry.tenant(slug).await?;
    let (Some(name), Some(version)) = (record.template.clone(), record.template_version.clone())
    else {
        return Err(FleetError::InvalidTemplate {
            reason: format!("tenant {slug} has no template version to reset to"),
        });
    };
    let url = registry.connection(vault, slug).await?;
    let schema = tenant_schema(&record, &url);
    let template =
        crate::template::applicable_template(registry, &name, record.engine, &version).await?;
    let template_snapshot = registry
        .template_snapshot(&name, record.engine, &version)
        .await?;
    Ok(Context {
        record,
        url,
        schema,
        template,
        version,
        template_snapshot,
    })
}

/// Row counts of the tenant's tables, in one query. Each count is labelled
/// by the table's position in the snapshot, never by its name: names reach
/// the statement only as quoted identifiers.
async fn row_counts(
    ctx: &Context,
    snap: &SchemaSnapshot,
    timeouts: Timeouts,
) -> Result<Vec<(String, i64)>, FleetError> {
    if snap.tables.is_empty() {
        return Ok(Vec::new());
    }
    let err = |e: sqlx::Error| {
        FleetError::Introspect(IntrospectError::Catalog {
            server: ctx.url.server_label(),
            reason: ctx.url.scrub(&e.to_string()),
        })
    };
    let sql = |q: &dyn Fn(&str) -> String| -> String {
        snap.tables
            .iter()
            .enumerate()
            .map(|(i, t)| format!("SELECT {i} AS t, COUNT(*) AS n FROM {}", q(&t.name)))
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    };
    let rows: Vec<(i64, i64)> = match ctx.record.engine {
        Engine::Postgres => {
            let sql = sql(&|t| format!("{}.{}", quote_pg(&ctx.schema), quote_pg(t)));
            let mut c = postgres::connect(&ctx.url, timeouts).await?;
            let rows = sqlx::query_as(&sql).fetch_all(&mut c).await.map_err(err);
            postgres::close(c).await;
            // `{i}` is an integer literal: PostgreSQL types it int4.
            rows?
                .into_iter()
                .map(|(i, n): (i32, i64)| (i64::from(i), n))
                .collect()
        }
        Engine::Mysql => {
            let sql = sql(&|t| format!("{}.{}", quote_my(&ctx.schema), quote_my(t)));
            let mut c = mysql::connect(&ctx.url.with_database("")?, timeouts).await?;
            let rows = sqlx::query_as(&sql).fetch_all(&mut c).await.map_err(err);
            mysql::close(c).await;
            rows?
        }
        Engine::Sqlite => {
            let sql = sql(&|t| quote_lite(t));
            let mut c = sqlite::open_read_only(&ctx.url.sqlite_path()).await?;
            let rows = sqlx::query_as(&sql).fetch_all(&mut c).await.map_err(err);
            let _ = c.close().await;
            rows?
        }
    };
    Ok(rows
        .into_iter()
        .filter_map(|(i, n)| {
            let t = snap.tables.get(usize::try_from(i).ok()?)?;
            Some((t.name.clone(), n))
        })
        .collect())
}

/// Plans a reset: reads the tenant, compares it with its template version,
/// counts the rows that will move to the backup. Changes nothing.
pub async fn plan_reset(
    registry: &Registry,
    vault: &Vault,
    slug: &str,
    timeouts: Timeouts,
) -> Result<ResetPlan, FleetError> {
    let result = plan_reset_inner(registry, vault, slug, timeouts).await;
    if result.is_err() {
        // A plan that could not be made is recorded like any failure; a
        // successful plan changes nothing and is not.
        crate::audit_outcome(
            registry,
            slug,
            "reset.plan",
            &result,
            |_| (String::new(), AuditResult::Ok),
            false,
        )
        .await?;
    }
    result
}

async fn plan_reset_inner(
    registry: &Registry,
    vault: &Vault,
    slug: &str,
    timeouts: Timeouts,
) -> Result<ResetPlan, FleetError> {
    let ctx = context(registry, vault, slug).await?;
    let tenant = read_tenant(&ctx.record, &ctx.url, timeouts).await?;
    let counts = row_counts(&ctx, &tenant, timeouts).await?;
    let diff = diff_schemas(&ctx.template_snapshot, &tenant);
    let objects = diff
        .objects
        .iter()
        .map(|o| PlannedObject {
            kind: o.kind.as_str().to_owned(),
            name: o.name.clone(),
            presence: match o.presence {
                Presence::Added => "added",
                Presence::Missing => "missing",
                Presence::Changed => "changed",
                Presence::Identical => "identical",
            }
            .to_owned(),
            rows: (o.kind == ObjectKind::Table)
                .then(|| counts.iter().find(|(t, _)| *t == o.name).map(|(_, n)| *n))
                .flatten(),
        })
        .collect();
    let backup = match ctx.record.engine {
        Engine::Postgres => format!("schema `{}` is renamed to a quarantine schema `tenantry_q_…` in the reset transaction", ctx.schema),
        Engine::Mysql => format!("every table of `{}` moves to a quarantine database `tenantry_q_…` with one RENAME TABLE; the definitions of its views and triggers are saved there (a restore recreates them)", ctx.schema),
        Engine::Sqlite => format!("{} is copied to a .bak file beside it under the write lock", ctx.url.sqlite_path().display()),
    };
    let changes = match ctx.record.engine {
        Engine::Postgres => {
            let mut conn = postgres::connect(&ctx.url, timeouts).await?;
            let inventory = PgSchemaInventory::read(&mut conn, &ctx.url, &ctx.schema).await;
            postgres::close(conn).await;
            let inventory = inventory?;
            inventory.refusal(&ctx.record.slug, &ctx.template_snapshot.extensions)?;
            inventory.changes(&ctx.schema)
        }
        _ => Vec::new(),
    };
    Ok(ResetPlan {
        slug: slug.to_owned(),
        engine: ctx.record.engine,
        changes,
        server: ctx.url.server_label(),
        schema: ctx.schema.clone(),
        template: ctx.template.name.clone(),
        template_version: ctx.version.clone(),
        template_hash: hash_schema(&ctx.template_snapshot).root.to_string(),
        drift_hash: hash_schema(&tenant).root.to_string(),
        objects,
        backup,
    })
}

/// Executes a plan after checking the typed confirmation. Every attempt,
/// refused ones included, is audited.
pub async fn execute_reset(
    registry: &Registry,
    vault: &Vault,
    plan: &ResetPlan,
    typed_confirmation: &str,
    timeouts: Timeouts,
) -> Result<ResetOutcome, FleetError> {
    registry.authorize(tenantry_registry::Action::Reset).await?;
    let result = async {
        check_confirmation(&plan.slug, typed_confirmation)?;
        let ctx = context(registry, vault, &plan.slug).await?;
        let migrations = ctx.template.migrations_through(&ctx.version)?;
        let expected: DriftHash = plan.drift_hash.parse().map_err(|_| FleetError::PlanStale {
            slug: plan.slug.clone(),
            reason: "the plan's hash is not a schema hash".into(),
        })?;
        let template_hash = hash_schema(&ctx.template_snapshot).root;
        // Where the backup will be, decided before anything is touched and
        // journaled with the intent: if the intent cannot be written,
        // nothing starts; if the process dies after this, the next open
        // shows the unfinished reset and where its backup is.
        let quarantine = quarantine_name(&ctx.schema);
        let backup_file = ctx.url.sqlite_path().with_extension(format!("{}.bak", unix_secs()));
        let planned = match ctx.record.engine {
            Engine::Postgres => format!(
                "schema {quarantine} in {}",
                ctx.url.database().unwrap_or_else(|| "postgres".into())
            ),
            Engine::Mysql => format!("database {quarantine}"),
            Engine::Sqlite => format!("file {}", backup_file.display()),
        };
        let op = registry.begin_operation(&plan.slug, "reset", Some(&planned)).await?;
        let run = async {
            if ctx.record.engine != Engine::Mysql {
                // One transaction: its progress is this step and the end
                // (MySQL/MariaDB journal each migration as they run).
                registry
                    .record_step(op, &format!("in one transaction: the tables move to the backup ({planned}) and the template's {} applied", plural(migrations.len(), "migration is", "migrations are")))
                    .await?;
            }
            let (applied, after) = match ctx.record.engine {
                Engine::Postgres => reset_postgres(&ctx, &migrations, expected, template_hash, &quarantine, timeouts).await?,
                Engine::Mysql => reset_mysql(registry, op, &ctx, &migrations, expected, &quarantine, &planned, timeouts).await?,
                Engine::Sqlite => reset_sqlite(&ctx, &migrations, expected, template_hash, &backup_file).await?,
            };
            Ok::<_, FleetError>((planned.clone(), applied, after))
        }
        .await;
        let (backup, applied, after) = match run {
            Ok(done) => done,
            Err(e) => {
                crate::end_operation_with(registry, op, &e).await;
                return Err(e);
            }
        };
        if ctx.record.engine != Engine::Mysql {
            // PostgreSQL and SQLite backups exist only once the reset committed.
            registry.record_backup(&plan.slug, plan.engine, &backup, Some(&plan.drift_hash)).await?;
        }
        let status = if after == template_hash { SchemaStatus::Synced } else { SchemaStatus::Failed };
        registry
            .record_check(&TenantCheck {
                slug: plan.slug.clone(),
                status,
                reason: (status == SchemaStatus::Failed).then(|| {
                    format!("after the reset the schema hash {after} is not the template's {template_hash}; the backup {backup} is kept")
                }),
                hash: Some(after),
                provisioned: false,
                fingerprint: None,
            })
            .await?;
        let end = if status == SchemaStatus::Synced { OperationEnd::Ok } else { OperationEnd::Failed };
        registry.finish_operation(op, end, &format!("status {status}, backup {backup}")).await?;
        Ok(ResetOutcome { slug: plan.slug.clone(), backup, hash_after: Some(after.to_string()), status, applied })
    }
    .await;
    crate::audit_outcome(
        registry,
        &plan.slug,
        "reset",
        &result,
        |o| {
            let detail = format!(
                "reset to {} {}: status {}, backup {}",
                plan.template, plan.template_version, o.status, o.backup
            );
            let outcome = if o.status == SchemaStatus::Synced {
                AuditResult::Ok
            } else {
                AuditResult::Failed
            };
            (detail, outcome)
        },
        true,
    )
    .await?;
    result
}

/// What a PostgreSQL reset must keep or say beyond the measured objects:
/// the schema's owner, grants and comment (a new schema would get the
/// resetting role as owner and no grants: the application would lose its
/// access), the extensions installed in it (the database's, not the
/// tenant's: moved back into the rebuilt schema), and the functions that
/// move to the backup with it.
struct PgSchemaInventory {
    owner: String,
    /// (grantee, `None` for PUBLIC; privilege; grantable)
    grants: Option<Vec<(Option<String>, String, bool)>>,
    comment: Option<String>,
    /// (name, relocatable)
    extensions: Vec<(String, bool)>,
    /// Extensions of the database installed in another schema: (name,
    /// schema).
    elsewhere: Vec<(String, String)>,
    functions: Vec<String>,
}

impl PgSchemaInventory {
    async fn read(
        conn: &mut sqlx::PgConnection,
        url: &ConnectionUrl,
        schema: &str,
    ) -> Result<Self, FleetError> {
        let row: (String, bool, Option<String>) = sqlx::query_as(
            "SELECT pg_get_userbyid(n.nspowner)::text, n.nspacl IS NULL, obj_description(n.oid, 'pg_namespace')
               FROM pg_namespace n WHERE n.nspname = $1",
        )
        .bind(schema)
        .fetch_optional(&mut *conn)
        .await
        .map_err(|e| catalog(url, &e))?
        .unwrap_or_default();
        let (owner, default_acl, comment) = row;
        let grants = if default_acl {
            None
        } else {
            let rows: Vec<(Option<String>, String, bool)> = sqlx::query_as(
                "SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee)::text END,
                        a.privilege_type, a.is_grantable
                   FROM pg_namespace n, aclexplode(n.nspacl) a
                  WHERE n.nspname = $1 ORDER BY 1 NULLS FIRST, 2",
            )
            .bind(schema)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| catalog(url, &e))?;
            Some(rows)
        };
        let extensions: Vec<(String, bool)> = sqlx::query_as(
            "SELECT e.extname::text, e.extrelocatable FROM pg_extension e
               JOIN pg_namespace n ON n.oid = e.extnamespace WHERE n.nspname = $1 ORDER BY 1",
        )
        .bind(schema)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| catalog(url, &e))?;
        let elsewhere: Vec<(String, String)> = sqlx::query_as(
            "SELECT e.extname::text, n.nspname::text FROM pg_extension e
               JOIN pg_namespace n ON n.oid = e.extnamespace WHERE n.nspname <> $1 ORDER BY 1",
        )
        .bind(schema)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| catalog(url, &e))?;
        let functions: Vec<String> = sqlx::query_scalar(
            "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = $1
                AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                                   AND d.objid = p.oid AND d.deptype = 'e')
              ORDER BY 1",
        )
        .bind(schema)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| catalog(url, &e))?;
        Ok(Self {
            owner,
            grants,
            comment,
            extensions,
            elsewhere,
            functions,
        })
    }

    /// Extensions that make the reset impossible, or unable to end
    /// `synced`, refused before anything changes:
    /// - one that cannot move: its objects would leave with the backup and
    ///   the database would lose it;
    /// - one installed in the schema that the template does not install:
    ///   it is moved back (it is the database's), so the rebuilt schema
    ///   would still differ from the template;
    /// - one the template installs that the database has in another
    ///   schema: `CREATE EXTENSION IF NOT EXISTS` would leave it there.
    fn refusal(&self, slug: &str, template: &[Extension]) -> Result<(), FleetError> {
        let refused = |reason: String| FleetError::ResetRefused {
            slug: slug.to_owned(),
            reason,
        };
        let shown = |names: Vec<&str>| {
            names
                .into_iter()
                .map(tenantry_registry::escape_controls)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let fixed: Vec<&str> = self
            .extensions
            .iter()
            .filter(|(_, relocatable)| !relocatable)
            .map(|(n, _)| n.as_str())
            .collect();
        if !fixed.is_empty() {
            return Err(refused(format!(
                "the extension(s) {} live in the tenant's schema and cannot be moved out of it (not relocatable), so the schema cannot be set aside; nothing was changed",
                shown(fixed)
            )));
        }
        let extra: Vec<&str> = self
            .extensions
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !template.iter().any(|x| x.name == *n))
            .collect();
        if !extra.is_empty() {
            return Err(refused(format!(
                "the extension(s) {} are installed in the tenant's schema but the template does not install them; a reset keeps a database's extensions, so the tenant would still differ from its template. Move them to another schema (ALTER EXTENSION … SET SCHEMA …) or drop them if nothing uses them, then reset; nothing was changed",
                shown(extra)
            )));
        }
        let misplaced: Vec<String> = template
            .iter()
            .filter_map(|x| {
                self.elsewhere
                    .iter()
                    .find(|(n, _)| *n == x.name)
                    .map(|(n, schema)| {
                        let escape = tenantry_registry::escape_controls;
                        format!("{} (in `{}`)", escape(n), escape(schema))
                    })
            })
            .collect();
        if !misplaced.is_empty() {
            return Err(refused(format!(
                "the template installs the extension(s) {} into the tenant's schema, but the database has them in another schema, so the template's CREATE EXTENSION would leave them there and the tenant would still differ; move them into the tenant's schema (ALTER EXTENSION … SET SCHEMA …) if nothing else uses them there, then reset; nothing was changed",
                misplaced.join(", ")
            )));
        }
        Ok(())
    }

    fn grantee(g: &Option<String>) -> String {
        g.as_deref().map_or_else(|| "PUBLIC".to_owned(), quote_pg)
    }

    fn shown(g: &Option<String>) -> String {
        g.as_deref()
            .map_or_else(|| "PUBLIC".to_owned(), tenantry_registry::escape_controls)
    }

    /// What the plan says about them.
    fn changes(&self, schema: &str) -> Vec<String> {
        let mut out = Vec::new();
        if !self.functions.is_empty() {
            out.push(format!(
                "{} function(s) move to the backup with the schema: {}",
                self.functions.len(),
                self.functions.join(", ")
            ));
        }
        for (name, _) in &self.extensions {
            out.push(format!(
                "extension {name} (installed in `{schema}`) is moved back into the rebuilt schema: it belongs to the database, not to the tenant"
            ));
        }
        let grants = match &self.grants {
            None => "the default privileges".to_owned(),
            Some(g) if g.is_empty() => "no grants".to_owned(),
            Some(g) => g
                .iter()
                .map(|(who, privilege, grantable)| {
                    format!(
                        "{privilege} to {}{}",
                        Self::shown(who),
                        if *grantable { " with grant option" } else { "" }
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
        };
        out.push(format!(
            "the rebuilt schema `{schema}` keeps its owner {} and its grants ({grants}){}",
            tenantry_registry::escape_controls(&self.owner),
            if self.comment.is_some() {
                " and comment"
            } else {
                ""
            }
        ));
        out
    }

    /// Statements that give the rebuilt schema what the old one had.
    fn restore_statements(&self, schema: &str) -> Vec<String> {
        let s = quote_pg(schema);
        let mut out = vec![format!(
            "ALTER SCHEMA {s} OWNER TO {}",
            quote_pg(&self.owner)
        )];
        if let Some(grants) = &self.grants {
            // The new schema's default is the owner's full access: make it
            // exactly the old list.
            out.push(format!(
                "REVOKE ALL ON SCHEMA {s} FROM {}",
                quote_pg(&self.owner)
            ));
            for (who, privilege, grantable) in grants {
                let privilege = if privilege == "CREATE" {
                    "CREATE"
                } else {
                    "USAGE"
                };
                out.push(format!(
                    "GRANT {privilege} ON SCHEMA {s} TO {}{}",
                    Self::grantee(who),
                    if *grantable { " WITH GRANT OPTION" } else { "" }
                ));
            }
        }
        if let Some(c) = &self.comment {
            out.push(format!(
                "COMMENT ON SCHEMA {s} IS {}",
                tenantry_model::quote::postgres_literal(c)
            ));
        }
        for (name, _) in &self.extensions {
            out.push(format!("ALTER EXTENSION {} SET SCHEMA {s}", quote_pg(name)));
        }
        out
    }
}

pub(crate) fn stale(slug: &str, now: DriftHash) -> FleetError {
    FleetError::PlanStale {
        slug: slug.to_owned(),
        reason: format!("the schema changed since the plan (its hash is now {now}); plan again"),
    }
}

async fn reset_postgres(
    ctx: &Context,
    migrations: &[&Migration],
    expected: DriftHash,
    template_hash: DriftHash,
    quarantine: &str,
    timeouts: Timeouts,
) -> Result<(Vec<String>, DriftHash), FleetError> {
    let url = &ctx.url;
    let mut conn = postgres::connect(url, timeouts).await?;
    let result = async {
        let mut tx = crate::provision::locked_tx(&mut conn, url, &ctx.schema).await?;
        let schemas = [ctx.schema.clone()];
        let now = postgres::introspect_schemas(&mut tx, &schemas)
            .await
            .map_err(|e| catalog(url, &e))?;
        let now = now
            .get(&ctx.schema)
            .map(|s| hash_schema(s).root)
            .unwrap_or(expected);
        if now != expected {
            return Err(stale(&ctx.record.slug, now));
        }
        let inventory = PgSchemaInventory::read(&mut tx, url, &ctx.schema).await?;
        inventory.refusal(&ctx.record.slug, &ctx.template_snapshot.extensions)?;
        tx.execute(
            format!(
                "ALTER SCHEMA {} RENAME TO {}",
                quote_pg(&ctx.schema),
                quote_pg(quarantine)
            )
            .as_str(),
        )
        .await
        .map_err(|e| catalog(url, &e))?;
        tx.execute(format!("CREATE SCHEMA {}", quote_pg(&ctx.schema)).as_str())
            .await
            .map_err(|e| catalog(url, &e))?;
        // The rebuilt schema keeps its owner, grants and comment, and the
        // database's extensions come back into it (in the same transaction).
        for statement in inventory.restore_statements(&ctx.schema) {
            tx.execute(statement.as_str())
                .await
                .map_err(|e| catalog(url, &e))?;
        }
        sqlx::query("SELECT set_config('search_path', $1, true)")
            .bind(quote_pg(&ctx.schema))
            .execute(&mut *tx)
            .await
            .map_err(|e| catalog(url, &e))?;
        let mut applied = Vec::new();
        for m in migrations {
            tx.execute(m.sql.as_ref())
                .await
                .map_err(|e| FleetError::Migration {
                    migration: m.name.to_string(),
                    path: url.server_label().into(),
                    reason: format!(
                        "{}; the reset was rolled back and the tenant is unchanged",
                        url.scrub(&e.to_string())
                    ),
                })?;
            applied.push(m.name.to_string());
        }
        let after = postgres::introspect_schemas(&mut tx, &schemas)
            .await
            .map_err(|e| catalog(url, &e))?;
        let after = after
            .get(&ctx.schema)
            .map(|s| hash_schema(s).root)
            .unwrap_or(expected);
        if after != template_hash {
            // Verification failed: roll back, so nothing is lost.
            return Err(FleetError::VerifyFailed {
                slug: ctx.record.slug.clone(),
                found: after.to_string(),
                expected: template_hash.to_string(),
            });
        }
        tx.commit().await.map_err(|e| catalog(url, &e))?;
        Ok((applied, after))
    }
    .await;
    postgres::close(conn).await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn reset_mysql(
    registry: &Registry,
    op: i64,
    ctx: &Context,
    migrations: &[&Migration],
    expected: DriftHash,
    quarantine: &str,
    backup: &str,
    timeouts: Timeouts,
) -> Result<(Vec<String>, DriftHash), FleetError> {
    let url = &ctx.url;
    let mut conn = mysql::connect(&url.with_database("")?, timeouts).await?;
    let result = async {
        mysql_lock(&mut conn, url, &ctx.schema).await?;
        let schemas = [ctx.schema.clone()];
        let now = mysql::introspect_schemas(&mut conn, &schemas)
            .await
            .map_err(|e| catalog(url, &e))?;
        let now_snap = now
            .get(&ctx.schema)
            .cloned()
            .unwrap_or_else(|| SchemaSnapshot::new(Engine::Mysql));
        let now = hash_schema(&now_snap).root;
        if now != expected {
            return Err(stale(&ctx.record.slug, now));
        }
        let db = quote_my(&ctx.schema);
        // Views and triggers are saved in the quarantine (triggers dropped:
        // a table with one cannot move); a failed move puts them back and
        // leaves no quarantine behind.
        // Each step is journaled before it starts: DDL commits one
        // statement at a time, so a reset killed part-way says where.
        registry
            .record_step(
                op,
                &format!("saving view and trigger definitions in {quarantine}"),
            )
            .await?;
        let prepared = crate::mysql_aside::prepare(&mut conn, url, &ctx.schema, quarantine).await?;
        if let Err(e) = registry
            .record_step(op, &format!("moving the tables to {quarantine}"))
            .await
        {
            crate::mysql_aside::undo(&mut conn, url, &ctx.schema, quarantine, prepared).await;
            return Err(e.into());
        }
        if !now_snap.tables.is_empty() {
            let moves: Vec<String> = now_snap
                .tables
                .iter()
                .map(|t| {
                    format!(
                        "{db}.{} TO {}.{}",
                        quote_my(&t.name),
                        quote_my(quarantine),
                        quote_my(&t.name)
                    )
                })
                .collect();
            // One statement: all tables move, or none do.
            if let Err(e) = conn
                .execute(format!("RENAME TABLE {}", moves.join(", ")).as_str())
                .await
            {
                crate::mysql_aside::undo(&mut conn, url, &ctx.schema, quarantine, prepared).await;
                return Err(catalog(url, &e));
            }
        }
        // The backup exists from here on: record it before anything is dropped.
        let backup = backup.to_owned();
        registry
            .record_backup(
                &ctx.record.slug,
                Engine::Mysql,
                &backup,
                Some(&expected.to_string()),
            )
            .await?;
        for v in &now_snap.views {
            conn.execute(format!("DROP VIEW {db}.{}", quote_my(&v.name)).as_str())
                .await
                .map_err(|e| catalog(url, &e))?;
        }
        conn.execute(format!("USE {db}").as_str())
            .await
            .map_err(|e| catalog(url, &e))?;
        registry
            .record_step(op, "tables moved; applying the template")
            .await?;
        let mut applied = Vec::new();
        for m in migrations {
            registry
                .record_step(op, &format!("migration started: {}", m.name))
                .await?;
            conn.execute(m.sql.as_ref())
                .await
                .map_err(|e| FleetError::PartialReset {
                    slug: ctx.record.slug.clone(),
                    backup: backup.clone(),
                    applied: if applied.is_empty() {
                        "none".into()
                    } else {
                        applied.join(", ")
                    },
                    reason: format!("{} failed: {}", m.name, url.scrub(&e.to_string())),
                })?;
            registry
                .record_step(op, &format!("migration done: {}", m.name))
                .await?;
            applied.push(m.name.to_string());
        }
        let after = mysql::introspect_schemas(&mut conn, &schemas)
            .await
            .map_err(|e| catalog(url, &e))?;
        let after = after
            .get(&ctx.schema)
            .map(|s| hash_schema(s).root)
            .unwrap_or(expected);
        Ok((applied, after))
    }
    .await;
    mysql_unlock(&mut conn, &ctx.schema).await;
    mysql::close(conn).await;
    result
}

async fn reset_sqlite(
    ctx: &Context,
    migrations: &[&Migration],
    expected: DriftHash,
    template_hash: DriftHash,
    backup_path: &std::path::Path,
) -> Result<(Vec<String>, DriftHash), FleetError> {
    let url = &ctx.url;
    let path = url.sqlite_path();
    let attempt_started = std::time::SystemTime::now();
    let mut conn = crate::open_sqlite_writer(url, false).await?;
    let result = async {
        conn.execute("BEGIN IMMEDIATE")
            .await
            .map_err(|e| catalog(url, &e))?;
        let now = sqlite::introspect(&mut conn)
            .await
            .map_err(|e| catalog(url, &e))?;
        let now_hash = hash_schema(&now).root;
        if now_hash != expected {
            return Err(stale(&ctx.record.slug, now_hash));
        }
        // Nobody else can write while we hold the lock: the file is consistent.
        // Through SQLite's backup API, from a second connection that only
        // reads: every committed row, the `-wal`'s included, whatever the
        // file is called. Then checked: the copy must read as what we saw.
        crate::sqlite_backup::back_up(&path, backup_path).await?;
        let mut copy = sqlite::open_read_only(backup_path).await?;
        let copied = sqlite::introspect(&mut copy).await;
        let _ = copy.close().await;
        let copied = copied.map_err(|e| catalog(url, &e))?;
        if hash_schema(&copied).root != now_hash {
            return Err(FleetError::VerifyFailed {
                slug: ctx.record.slug.clone(),
                found: format!(
                    "backup {} reads as {}",
                    backup_path.display(),
                    hash_schema(&copied).root
                ),
                expected: now_hash.to_string(),
            });
        }
        conn.execute("PRAGMA defer_foreign_keys = ON")
            .await
            .map_err(|e| catalog(url, &e))?;
        for v in &now.views {
            conn.execute(format!("DROP VIEW {}", quote_lite(&v.name)).as_str())
                .await
                .map_err(|e| catalog(url, &e))?;
        }
        for t in &now.tables {
            conn.execute(format!("DROP TABLE {}", quote_lite(&t.name)).as_str())
                .await
                .map_err(|e| catalog(url, &e))?;
        }
        let mut applied = Vec::new();
        for m in migrations {
            conn.execute(m.sql.as_ref())
                .await
                .map_err(|e| FleetError::Migration {
                    migration: m.name.to_string(),
                    path: path.clone(),
                    reason: format!("{e}; the reset was rolled back and the tenant is unchanged"),
                })?;
            applied.push(m.name.to_string());
        }
        let after = hash_schema(
            &sqlite::introspect(&mut conn)
                .await
                .map_err(|e| catalog(url, &e))?,
        )
        .root;
        if after != template_hash {
            return Err(FleetError::VerifyFailed {
                slug: ctx.record.slug.clone(),
                found: after.to_string(),
                expected: template_hash.to_string(),
            });
        }
        conn.execute("COMMIT").await.map_err(|e| catalog(url, &e))?;
        Ok((applied, after))
    }
    .await;
    if result.is_err() {
        let _ = conn.execute("ROLLBACK").await;
        // The tenant is unchanged: a copy taken for this attempt is not a backup.
        if let Some(dir) = path.parent() {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with(&format!("{stem}."))
                        && (name.ends_with(".bak")
                            || name.ends_with(".bak-wal")
                            || name.ends_with(".bak-shm"))
                        && attempt_started
                            <= e.metadata()
                                .and_then(|m| m.modified())
                                .unwrap_or(std::time::UNIX_EPOCH)
                    {
                        let _ = std::fs::remove_file(e.path());
                    }
                }
            }
        }
    }
    let _ = conn.close().await;
    result
}
