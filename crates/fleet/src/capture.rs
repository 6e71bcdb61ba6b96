//! Templates captured from a live reference: a reference database or
//! schema (`pg_tpl`, a `tpl` schema, a staging database, a reference
//! SQLite file) becomes a template version, so teams without a folder of
//! migrations can use guard, reset and sync.
//!
//! Capture writes SQL that recreates the reference and **proves** it: the
//! version's migrations are applied in a scratch schema or file exactly as
//! they will be applied to tenants, measured with the same code as tenants,
//! and stored only when that hash equals the reference's. Otherwise nothing
//! is stored and the objects that came out differently are named.
//!
//! - PostgreSQL: tables, columns, keys, checks, indexes, foreign keys,
//!   views, enums and sequences come from the sync planner (the plan from
//!   the previous version, or from nothing); functions, procedures,
//!   triggers, row-level security and policies, comments and grants are
//!   read from the catalogs with the reference schema as the only search
//!   path, so what the server prints names the reference's own objects
//!   unqualified. A later version is the difference from the previous one;
//!   a step that would move or drop data, or that the planner leaves to a
//!   person, is refused.
//! - SQLite: the statements SQLite itself keeps (`sqlite_master`), in
//!   creation order; a later version adds the new objects and refuses a
//!   changed or removed one (SQLite cannot alter most things in place).
//! - MySQL/MariaDB: the server's own `SHOW CREATE` statements (tables in
//!   foreign-key order, then routines, views and triggers), each without
//!   its `DEFINER` clause (cut only where it is exactly the prefix the
//!   server prints for the definer `information_schema` names); a later
//!   version adds new objects and refuses a changed or removed one.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sqlx::{Connection, Row};
use tenantry_introspect::{introspect, ConnectionUrl, Timeouts};
use tenantry_model::diff::{diff_schemas, Presence};
use tenantry_model::quote::{postgres as q, postgres_literal};
use tenantry_model::sync::{plan_postgres, StepClass, TenantRoles};
use tenantry_model::{hash_schema, Engine, SchemaSnapshot, TemplateVersionHash};
use tenantry_registry::{AuditResult, Registry};

use crate::guard::register_template_checked;
use crate::template::{LintFinding, Migration, Template, TemplateVersion};
use crate::FleetError;

/// Where the reference is and what to call the version.
pub struct CaptureRequest<'a> {
    /// The reference database (PostgreSQL, SQLite).
    pub source: &'a ConnectionUrl,
    /// PostgreSQL: the reference schema (default `public`).
    pub schema: Option<&'a str>,
    pub name: &'a str,
    pub version: &'a str,
    /// Where the captured SQL is proven (PostgreSQL: a database Tenantry
    /// may make a scratch schema in; default the reference's own database).
    pub scratch: Option<&'a ConnectionUrl>,
    pub scratch_name: Option<&'a str>,
    pub timeouts: Timeouts,
}

/// What a capture stored.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct CaptureReport {
    pub name: String,
    #[ts(type = "\"postgres\" | \"mysql\" | \"sqlite\"")]
    pub engine: Engine,
    pub version: String,
    /// The reference's hash, which the captured version reproduces.
    pub hash: String,
    /// The migration written for this version, and its statement count.
    pub migration: String,
    pub statements: usize,
    /// Every version of the template afterwards.
    #[ts(type = "Array<{ version: string, hash: string }>")]
    pub lineage: Vec<TemplateVersionHash>,
    pub lint: Vec<LintFinding>,
}

fn refused(reason: impl Into<String>) -> FleetError {
    FleetError::CaptureRefused {
        reason: reason.into(),
    }
}

/// Captures `req.source` as version `req.version` of template `req.name`,
/// proven against a measurement, stored, and audited (`template.capture`).
pub async fn capture_template(
    registry: &Registry,
    req: &CaptureRequest<'_>,
) -> Result<CaptureReport, FleetError> {
    registry
        .authorize(tenantry_registry::Action::Templates)
        .await?;
    let result = capture_inner(registry, req).await;
    let engine = req.source.engine();
    let (detail, outcome) = match &result {
        Ok(r) => (
            format!(
                "{} ({engine}) version {} captured from {} ({} statements), hash {}",
                r.name,
                r.version,
                req.source.redacted(),
                r.statements,
                r.hash
            ),
            AuditResult::Ok,
        ),
        Err(e) => (
            format!(
                "{} ({engine}) version {} from {}: {e}",
                req.name,
                req.version,
                req.source.redacted()
            ),
            match e {
                FleetError::CaptureRefused { .. } => AuditResult::Refused,
                _ => AuditResult::Failed,
            },
        ),
    };
    registry
        .audit(None, "template.capture", &detail, outcome)
        .await?;
    result
}

async fn capture_inner(
    registry: &Registry,
    req: &CaptureRequest<'_>,
) -> Result<CaptureReport, FleetError> {
    let engine = req.source.engine();
    if req.version.trim().is_empty() || req.version.contains(['/', '\\']) {
        return Err(refused(format!(
            "`{}` is not a usable version name (not empty, no slashes)",
            tenantry_registry::escape_controls(req.version)
        )));
    }
    let schema = match engine {
        Engine::Postgres => req.schema.unwrap_or("public").to_owned(),
        Engine::Mysql => req.source.database().filter(|d| !d.is_empty()).ok_or_else(|| {
            refused("the MySQL/MariaDB reference URL names no database: add it (`mysql://user@host/reference_db`)")
        })?,
        Engine::Sqlite => "main".to_owned(),
    };
    let schema_arg = (engine != Engine::Sqlite).then_some(schema.as_str());
    let reference = introspect(req.source, schema_arg, req.timeouts).await?;
    let reference_hash = hash_schema(&reference).root;

    // The template so far, if there is one: the new version follows its last.
    let exists = registry
        .list_templates()
        .await?
        .iter()
        .any(|t| t.name == req.name && t.engine == engine);
    let (mut template, previous) = if exists {
        let stored = registry.template(req.name, engine).await?;
        if let Some(v) = stored.versions.iter().find(|v| v.version == req.version) {
            return Err(refused(format!(
                "{} already has a version {}{}; capture the reference as a new version",
                req.name,
                req.version,
                if v.hash == Some(reference_hash) {
                    " with this very schema"
                } else {
                    ""
                }
            )));
        }
        let Some(last) = stored.versions.last().map(|v| v.version.clone()) else {
            return Err(refused(format!("{} has no version to follow", req.name)));
        };
        let previous = (
            last.clone(),
            registry.template_snapshot(req.name, engine, &last).await?,
        );
        (Template::from(stored), Some(previous))
    } else {
        (
            Template {
                name: req.name.to_owned(),
                engine,
                versions: Vec::new(),
            },
            None,
        )
    };
    if let Some((v, snap)) = &previous {
        if hash_schema(snap).root == reference_hash {
            return Err(refused(format!(
                "the reference has the same schema as version {v}; nothing to capture"
            )));
        }
    }

    let statements = match engine {
        Engine::Postgres => {
            postgres_statements(
                req,
                &schema,
                &reference,
                previous.as_ref().map(|p| &p.1),
                &template,
            )
            .await?
        }
        Engine::Mysql => {
            mysql_statements(req, &schema, &reference, previous.as_ref().map(|p| &p.1)).await?
        }
        Engine::Sqlite => sqlite_statements(req, &template, previous.is_some()).await?,
    };
    if statements.is_empty() {
        return Err(refused("the reference has no objects to capture"));
    }
    // Objects written; the transaction-local setting is not one.
    let count = statements
        .iter()
        .filter(|s| !s.starts_with("SET LOCAL "))
        .count();
    let mut sql = format!(
        "-- captured by tenantry from {} ({}{}), version {}\n",
        req.source.redacted(),
        engine,
        match engine {
            Engine::Postgres => format!(", schema {schema}"),
            Engine::Mysql => format!(", database {schema}"),
            Engine::Sqlite => String::new(),
        },
        req.version
    );
    for s in &statements {
        sql.push_str(s.trim_end().trim_end_matches(';'));
        sql.push_str(";\n");
    }
    let migration = format!("{}/0001_captured.sql", req.version);
    template.versions.push(TemplateVersion {
        version: req.version.to_owned(),
        migrations: vec![Migration {
            name: Cow::Owned(migration.clone()),
            sql: Cow::Owned(sql),
        }],
    });

    // The proof: the versions applied in a scratch place, measured as
    // tenants are (once: what is stored is what was proven); the new one
    // must hash as the reference does.
    let scratch = match engine {
        // SQLite measures in a temporary file; the URL only names the engine.
        Engine::Sqlite => req.source,
        _ => req.scratch.unwrap_or(req.source),
    };
    let proven = |measured: &[(String, SchemaSnapshot)]| {
        let (_, built) = measured
            .last()
            .ok_or_else(|| refused("the captured template measured no version"))?;
        if hash_schema(built).root == reference_hash {
            return Ok(());
        }
        let diff = diff_schemas(&reference, built);
        let differing: Vec<String> = diff
            .objects
            .iter()
            .filter(|o| o.presence != Presence::Identical)
            .map(|o| format!("{} {}", o.kind.as_str(), o.name))
            .collect();
        let shown = differing.iter().take(8).cloned().collect::<Vec<_>>();
        Err(refused(format!(
            "the SQL written for the reference does not reproduce it: {}{}; nothing was stored — add these objects by hand as a migration folder (`tenantry template add`)",
            shown.join(", "),
            if differing.len() > shown.len() {
                format!(" and {} more", differing.len() - shown.len())
            } else {
                String::new()
            }
        )))
    };
    let lint = register_template_checked(
        registry,
        &template,
        scratch,
        req.scratch_name,
        req.timeouts,
        None,
        &proven,
    )
    .await?;
    Ok(CaptureReport {
        name: req.name.to_owned(),
        engine,
        version: req.version.to_owned(),
        hash: reference_hash.to_string(),
        migration,
        statements: count,
        lineage: registry.lineage(req.name, engine).await?,
        lint,
    })
}

/// The reference without what the planner does not write (and capture
/// reads from the catalogs instead): functions, triggers, policies, row
/// security, comments and grants.
fn structural(snapshot: &SchemaSnapshot) -> SchemaSnapshot {
    let mut s = snapshot.clone();
    s.routines.clear();
    for t in &mut s.tables {
        t.triggers.clear();
        t.policies.clear();
        t.grants.clear();
        t.options.retain(|o| !captured_option(o));
    }
    for v in &mut s.views {
        v.grants.clear();
        v.options.retain(|o| !captured_option(o));
    }
    for q in &mut s.sequences {
        q.grants.clear();
        q.comment = None;
    }
    s
}

/// The reference's objects owned by a role other than its schema's usual
/// owner, as the plan names them.
fn owned_objects(s: &SchemaSnapshot) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(
        s.tables
            .iter()
            .filter(|t| t.owner.is_some())
            .map(|t| format!("table {}", t.name)),
    );
    out.extend(
        s.views
            .iter()
            .filter(|v| v.owner.is_some())
            .map(|v| format!("view {}", v.name)),
    );
    out.extend(
        s.enums
            .iter()
            .filter(|e| e.owner.is_some())
            .map(|e| format!("enum {}", e.name)),
    );
    out.extend(
        s.types
            .iter()
            .filter(|t| t.owner.is_some())
            .map(|t| format!("type {}", t.name)),
    );
    out
}

fn captured_option(o: &str) -> bool {
    o.starts_with("row_security=")
        || o.starts_with("comment=")
        || o.starts_with("comment(")
        || o.starts_with("index_comment(")
}

/// The statements that take `previous` (or nothing) to the reference.
async fn postgres_statements(
    req: &CaptureRequest<'_>,
    schema: &str,
    reference: &SchemaSnapshot,
    previous: Option<&SchemaSnapshot>,
    template: &Template,
) -> Result<Vec<String>, FleetError> {
    let empty = SchemaSnapshot::new(Engine::Postgres);
    let from = previous.map(structural).unwrap_or(empty);
    // Every role the session's: a captured migration names no owner
    // (an owned object is listed below as one it cannot write).
    let roles = TenantRoles::uniform(schema, "");
    let steps = plan_postgres(
        &structural(reference),
        &from,
        "tenantry_capture_unused",
        &roles,
    );
    let mut blocked: Vec<String> = steps
        .iter()
        .filter(|s| matches!(s.class, StepClass::Manual | StepClass::Destructive))
        .map(|s| format!("{}: {}", s.object, s.action))
        .collect();
    blocked.extend(owned_objects(reference).into_iter().map(|o| {
        format!("{o}: owned by a role other than the schema's usual owner; capture does not write owners")
    }));
    let catalog = read_catalog(req.source, schema, req.timeouts).await?;
    let before = match previous {
        Some(_) => Some(previous_catalog(req, template).await?),
        None => None,
    };
    // Function bodies are checked when they run, not when they are
    // created: a function may name a table made after it.
    let mut out = vec!["SET LOCAL check_function_bodies = off".to_owned()];
    // Routines first (defaults, checks and views may call them); a changed
    // one is replaced in place.
    let old_routines: BTreeMap<&str, &str> = before
        .as_ref()
        .map(|b| {
            b.routines
                .iter()
                .map(|r| (r.key.as_str(), r.sql.as_str()))
                .collect()
        })
        .unwrap_or_default();
    for r in &catalog.routines {
        if old_routines.get(r.key.as_str()) != Some(&r.sql.as_str()) {
            out.push(r.sql.clone());
        }
    }
    for key in old_routines.keys() {
        if !catalog.routines.iter().any(|r| r.key == *key) {
            blocked.push(format!("function {key}: removed"));
        }
    }
    out.extend(steps.iter().flat_map(|s| s.sql.iter().cloned()));
    // Triggers, row security, policies, comments and grants: a later
    // version may add them; a changed or removed one is left to a person.
    let old_after: BTreeMap<&str, &str> = before
        .as_ref()
        .map(|b| {
            b.after
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect()
        })
        .unwrap_or_default();
    for (key, sql) in &catalog.after {
        match old_after.get(key.as_str()) {
            None => out.push(sql.clone()),
            Some(old) if old == sql => {}
            Some(_) => blocked.push(format!("{key}: changed")),
        }
    }
    for key in old_after.keys() {
        if !catalog.after.iter().any(|(k, _)| k == key) {
            blocked.push(format!("{key}: removed"));
        }
    }
    if !blocked.is_empty() {
        return Err(refused(format!(
            "{}{}; capture writes what the planner writes safely and adds triggers, policies, comments and grants; write this version's migration by hand and add it with `tenantry template add`",
            blocked
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
            if blocked.len() > 5 {
                format!("; and {} more", blocked.len() - 5)
            } else {
                String::new()
            }
        )));
    }
    Ok(out)
}

/// The catalog statements of the template's last version, read from it
/// built in a scratch schema (then dropped).
async fn previous_catalog(
    req: &CaptureRequest<'_>,
    template: &Template,
) -> Result<Catalog, FleetError> {
    let last = template
        .latest()
        .map(|v| v.version.clone())
        .ok_or_else(|| refused("the template has no version"))?;
    let scratch = req.scratch.unwrap_or(req.source);
    let name = crate::guard::scratch_name("tenantry_capture", 0);
    let migrations = template.migrations_through(&last)?;
    let built = async {
        crate::provision::provision(
            &crate::provision::Place {
                url: scratch,
                schema: &name,
            },
            &migrations,
            req.timeouts,
            None,
        )
        .await?;
        read_catalog(scratch, &name, req.timeouts).await
    }
    .await;
    crate::guard::drop_scratch(scratch, &name, req.timeouts).await;
    built
}

/// Routines and the objects after the tables, written from the catalogs.
struct Catalog {
    routines: Vec<RoutineSql>,
    /// (identity, statement): triggers, row security, policies, comments, grants.
    after: Vec<(String, String)>,
}

struct RoutineSql {
    key: String,
    sql: String,
}

fn dollar_quote(body: &str) -> String {
    let mut tag = "$tenantry$".to_owned();
    let mut n = 0;
    while body.contains(&tag) {
        n += 1;
        tag = format!("$tenantry{n}$");
    }
    format!("{tag}{body}{tag}")
}

async fn read_catalog(
    source: &ConnectionUrl,
    schema: &str,
    timeouts: Timeouts,
) -> Result<Catalog, FleetError> {
    let mut conn = tenantry_introspect::postgres::connect(source, timeouts).await?;
    let result = read_catalog_on(&mut conn, source, schema).await;
    tenantry_introspect::postgres::close(conn).await;
    result
}

async fn read_catalog_on(
    conn: &mut sqlx::PgConnection,
    source: &ConnectionUrl,
    schema: &str,
) -> Result<Catalog, FleetError> {
    let (catalog, refusals) = catalog_rows(conn, schema)
        .await
        .map_err(|e| FleetError::from(tenantry_introspect::postgres::catalog_error(source, &e)))?;
    if !refusals.is_empty() {
        return Err(refused(refusals.join("; ")));
    }
    Ok(catalog)
}

/// The rows of one catalog query about the schema (`$1`).
async fn schema_rows(
    tx: &mut sqlx::PgConnection,
    sql: &str,
    schema: &str,
) -> Result<Vec<sqlx::postgres::PgRow>, sqlx::Error> {
    sqlx::query(sql).bind(schema).fetch_all(tx).await
}

/// The catalog statements, and what capture refuses to write.
async fn catalog_rows(
    conn: &mut sqlx::PgConnection,
    schema: &str,
) -> Result<(Catalog, Vec<String>), sqlx::Error> {
    let mut tx = conn.begin().await?;
    // Only the reference schema on the path (and pg_catalog, implicitly):
    // the server prints the reference's own objects unqualified and
    // everything else qualified.
    sqlx::query("SELECT set_config('search_path', $1, true)")
        .bind(q(schema))
        .execute(&mut *tx)
        .await?;
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(&mut *tx)
        .await?;
    let sql_body = if version >= 140000 {
        "pg_get_function_sqlbody(p.oid)"
    } else {
        "NULL::text"
    };
    let ns = "(SELECT oid FROM pg_namespace WHERE nspname = $1)";
    let not_extension = |class: &str, id: &str| {
        format!("NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{class}'::regclass AND d.objid = {id} AND d.deptype = 'e')")
    };
    let mut refusals: Vec<String> = Vec::new();

    let mut routines = Vec::new();
    let rows = schema_rows(
        &mut tx,
        &format!(
            "SELECT p.proname::text AS name, p.prokind::text AS kind,
                pg_get_function_arguments(p.oid) AS arguments,
                pg_get_function_identity_arguments(p.oid) AS identity,
                pg_get_function_result(p.oid) AS result,
                l.lanname::text AS language, p.provolatile::text AS volatility,
                p.proisstrict AS strict, p.prosecdef AS security_definer,
                p.proleakproof AS leakproof, p.proparallel::text AS parallel,
                p.procost::float8 AS cost, p.prorows::float8 AS rows, p.proretset AS returns_set,
                p.proconfig AS config, p.prosrc AS source, {sql_body} AS sql_body
           FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
          WHERE p.pronamespace = {ns} AND {}
          ORDER BY p.oid",
            not_extension("pg_proc", "p.oid")
        ),
        schema,
    )
    .await?;
    for row in rows {
        let name: String = row.try_get("name")?;
        let kind: String = row.try_get("kind")?;
        let language: String = row.try_get("language")?;
        let identity: String = row.try_get("identity")?;
        if kind == "a" || kind == "w" {
            refusals.push(format!("aggregate {name}({identity})"));
            continue;
        }
        if language == "c" || language == "internal" {
            refusals.push(format!(
                "function {name}({identity}) in language {language} (it belongs in an extension)"
            ));
            continue;
        }
        let arguments: String = row.try_get("arguments")?;
        let procedure = kind == "p";
        let mut d = format!(
            "CREATE OR REPLACE {} {}({arguments})",
            if procedure { "PROCEDURE" } else { "FUNCTION" },
            q(&name)
        );
        if let Some(result) = row.try_get::<Option<String>, _>("result")? {
            if !procedure {
                d.push_str(&format!(" RETURNS {result}"));
            }
        }
        d.push_str(&format!("\n    LANGUAGE {}", q(&language)));
        if !procedure {
            let volatility: String = row.try_get("volatility")?;
            d.push_str(match volatility.as_str() {
                "i" => " IMMUTABLE",
                "s" => " STABLE",
                _ => " VOLATILE",
            });
            if row.try_get::<bool, _>("strict")? {
                d.push_str(" STRICT");
            }
            if row.try_get::<bool, _>("leakproof")? {
                d.push_str(" LEAKPROOF");
            }
            let parallel: String = row.try_get("parallel")?;
            d.push_str(match parallel.as_str() {
                "s" => " PARALLEL SAFE",
                "r" => " PARALLEL RESTRICTED",
                _ => " PARALLEL UNSAFE",
            });
            d.push_str(&format!(" COST {}", row.try_get::<f64, _>("cost")?));
            if row.try_get::<bool, _>("returns_set")? {
                d.push_str(&format!(" ROWS {}", row.try_get::<f64, _>("rows")?));
            }
        }
        if row.try_get::<bool, _>("security_definer")? {
            d.push_str(" SECURITY DEFINER");
        }
        let config: Option<Vec<String>> = row.try_get("config")?;
        let mut pinned = false;
        for setting in config.unwrap_or_default() {
            let (key, value) = setting.split_once('=').unwrap_or((&setting, ""));
            if key == "search_path" {
                // A path naming the reference schema would pin every
                // tenant's function to the reference: refused.
                let names_reference = value.split(',').any(|e| {
                    let e = e.trim();
                    e == schema || e == q(schema)
                });
                if names_reference {
                    pinned = true;
                    break;
                }
                d.push_str(&format!("\n    SET search_path = {value}"));
            } else if key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            {
                d.push_str(&format!("\n    SET {key} TO {}", postgres_literal(value)));
            } else {
                pinned = true;
                break;
            }
        }
        if pinned {
            refusals.push(format!(
                "function {name}({identity}) sets search_path to the reference schema itself (write `SET search_path FROM CURRENT` in a migration instead)"
            ));
            continue;
        }
        match row.try_get::<Option<String>, _>("sql_body")? {
            Some(body) => d.push_str(&format!("\n{body}")),
            None => {
                let source: String = row.try_get("source")?;
                d.push_str(&format!("\nAS {}", dollar_quote(&source)));
            }
        }
        routines.push(RoutineSql {
            key: format!("{name}({identity})"),
            sql: d,
        });
    }

    let mut after = Vec::new();
    // Triggers: the server's own definition, relative to the path.
    let rows = schema_rows(
        &mut tx,
        &format!(
            "SELECT t.tgname::text AS name, c.relname::text AS table_name,
                pg_get_triggerdef(t.oid, true) AS definition, t.tgenabled::text AS enabled
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          WHERE c.relnamespace = {ns} AND NOT t.tgisinternal
          ORDER BY c.relname, t.tgname"
        ),
        schema,
    )
    .await?;
    for row in rows {
        let name: String = row.try_get("name")?;
        let table: String = row.try_get("table_name")?;
        let definition: String = row.try_get("definition")?;
        let key = format!("trigger {table}.{name}");
        after.push((key.clone(), definition));
        let enabled: String = row.try_get("enabled")?;
        let state = match enabled.as_str() {
            "D" => Some("DISABLE TRIGGER"),
            "R" => Some("ENABLE REPLICA TRIGGER"),
            "A" => Some("ENABLE ALWAYS TRIGGER"),
            _ => None,
        };
        if let Some(state) = state {
            after.push((
                format!("{key} state"),
                format!("ALTER TABLE {} {state} {}", q(&table), q(&name)),
            ));
        }
    }

    // Row security and policies.
    let rows = schema_rows(
        &mut tx,
        &format!(
        "SELECT c.relname::text AS table_name, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced
           FROM pg_class c WHERE c.relnamespace = {ns} AND c.relkind IN ('r', 'p')
            AND (c.relrowsecurity OR c.relforcerowsecurity)
          ORDER BY c.relname"
    ),
        schema,
    )
    .await
    ?;
    for row in rows {
        let table: String = row.try_get("table_name")?;
        if row.try_get::<bool, _>("enabled")? {
            after.push((
                format!("row security {table}"),
                format!("ALTER TABLE {} ENABLE ROW LEVEL SECURITY", q(&table)),
            ));
        }
        if row.try_get::<bool, _>("forced")? {
            after.push((
                format!("forced row security {table}"),
                format!("ALTER TABLE {} FORCE ROW LEVEL SECURITY", q(&table)),
            ));
        }
    }
    let rows = schema_rows(
        &mut tx,
        &format!(
        "SELECT p.polname::text AS name, c.relname::text AS table_name, p.polpermissive AS permissive,
                p.polcmd::text AS command,
                ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END
                        FROM unnest(p.polroles) AS r ORDER BY 1) AS roles,
                pg_get_expr(p.polqual, p.polrelid, true) AS using_expr,
                pg_get_expr(p.polwithcheck, p.polrelid, true) AS check_expr
           FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
          WHERE c.relnamespace = {ns}
          ORDER BY c.relname, p.polname"
    ),
        schema,
    )
    .await
    ?;
    for row in rows {
        let name: String = row.try_get("name")?;
        let table: String = row.try_get("table_name")?;
        let command: String = row.try_get("command")?;
        let roles: Vec<String> = row.try_get("roles")?;
        let mut d = format!(
            "CREATE POLICY {} ON {} AS {} FOR {} TO {}",
            q(&name),
            q(&table),
            if row.try_get::<bool, _>("permissive")? {
                "PERMISSIVE"
            } else {
                "RESTRICTIVE"
            },
            match command.as_str() {
                "r" => "SELECT",
                "a" => "INSERT",
                "w" => "UPDATE",
                "d" => "DELETE",
                _ => "ALL",
            },
            roles.join(", ")
        );
        if let Some(u) = row.try_get::<Option<String>, _>("using_expr")? {
            d.push_str(&format!(" USING ({u})"));
        }
        if let Some(c) = row.try_get::<Option<String>, _>("check_expr")? {
            d.push_str(&format!(" WITH CHECK ({c})"));
        }
        after.push((format!("policy {table}.{name}"), d));
    }

    // Comments on relations and their columns.
    let rows = schema_rows(
        &mut tx,
        &format!(
        "SELECT c.relname::text AS rel, c.relkind::text AS kind, a.attname::text AS col, d.description
           FROM pg_description d
           JOIN pg_class c ON d.classoid = 'pg_class'::regclass AND d.objoid = c.oid
           LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
          WHERE c.relnamespace = {ns} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'i', 'f')
          ORDER BY c.relname, d.objsubid"
    ),
        schema,
    )
    .await
    ?;
    for row in rows {
        let rel: String = row.try_get("rel")?;
        let kind: String = row.try_get("kind")?;
        let col: Option<String> = row.try_get("col")?;
        let text: String = row.try_get("description")?;
        let object = match (&col, kind.as_str()) {
            (Some(c), _) => format!("COLUMN {}.{}", q(&rel), q(c)),
            (None, "v") => format!("VIEW {}", q(&rel)),
            (None, "m") => format!("MATERIALIZED VIEW {}", q(&rel)),
            (None, "S") => format!("SEQUENCE {}", q(&rel)),
            (None, "i") => format!("INDEX {}", q(&rel)),
            (None, "f") => format!("FOREIGN TABLE {}", q(&rel)),
            (None, _) => format!("TABLE {}", q(&rel)),
        };
        after.push((
            format!("comment {object}"),
            format!("COMMENT ON {object} IS {}", postgres_literal(&text)),
        ));
    }

    // Grants on relations, their columns and routines, as the server lists
    // them (aclexplode); the owner's own privileges are implied.
    let rows = schema_rows(
        &mut tx,
        &format!(
        "SELECT kind, object, col, privilege, grantee, grantable FROM (
             SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind,
                    c.relname::text AS object, NULL::text AS col,
                    a.privilege_type AS privilege, a.grantee, a.is_grantable AS grantable, c.relowner AS owner
               FROM pg_class c, aclexplode(c.relacl) a
              WHERE c.relnamespace = {ns} AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
             UNION ALL
             SELECT 'TABLE', c.relname::text, att.attname::text,
                    a.privilege_type, a.grantee, a.is_grantable, c.relowner
               FROM pg_class c JOIN pg_attribute att ON att.attrelid = c.oid AND att.attnum > 0,
                    aclexplode(att.attacl) a
              WHERE c.relnamespace = {ns} AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
             UNION ALL
             SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                    quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')',
                    NULL, a.privilege_type, a.grantee, a.is_grantable, p.proowner
               FROM pg_proc p, aclexplode(p.proacl) a
              WHERE p.pronamespace = {ns}
         ) g
         WHERE grantee <> owner
         ORDER BY 1, 2, 3 NULLS FIRST, 4, 5"
    ),
        schema,
    )
    .await
    ?;
    let mut grants: BTreeMap<(String, String, Option<String>, String, String), bool> =
        BTreeMap::new();
    let role_names: BTreeMap<u32, String> =
        sqlx::query_as::<_, (sqlx::postgres::types::Oid, String)>(
            "SELECT oid, rolname::text FROM pg_roles",
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(oid, name)| (oid.0, name))
        .collect();
    for row in rows {
        let kind: String = row.try_get("kind")?;
        let object: String = row.try_get("object")?;
        let col: Option<String> = row.try_get("col")?;
        let privilege: String = row.try_get("privilege")?;
        let grantee: sqlx::postgres::types::Oid = row.try_get("grantee")?;
        let grantable: bool = row.try_get("grantable")?;
        let grantee = if grantee.0 == 0 {
            "PUBLIC".to_owned()
        } else {
            match role_names.get(&grantee.0) {
                Some(n) => q(n),
                None => continue,
            }
        };
        grants.insert((kind, object, col, grantee, privilege), grantable);
    }
    // One statement per privilege (grouping would only shorten the text).
    for ((kind, object, col, grantee, privilege), grantable) in grants {
        let target = if kind == "FUNCTION" || kind == "PROCEDURE" {
            // Already quoted with its identity arguments.
            object.clone()
        } else {
            q(&object)
        };
        let column = col
            .as_ref()
            .map(|c| format!(" ({})", q(c)))
            .unwrap_or_default();
        after.push((
            format!("grant {kind} {object} {col:?} {grantee} {privilege}"),
            format!(
                "GRANT {privilege}{column} ON {kind} {target} TO {grantee}{}",
                if grantable { " WITH GRANT OPTION" } else { "" }
            ),
        ));
    }
    // Privileges taken away from the default (EXECUTE from PUBLIC on a
    // function): the default is PUBLIC's, so its absence is a REVOKE.
    let rows = schema_rows(
        &mut tx,
        &format!(
        "SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END AS kind,
                quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS object
           FROM pg_proc p
          WHERE p.pronamespace = {ns} AND p.proacl IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
          ORDER BY 2"
    ),
        schema,
    )
    .await
    ?;
    for row in rows {
        let kind: String = row.try_get("kind")?;
        let object: String = row.try_get("object")?;
        after.push((
            format!("revoke {kind} {object}"),
            format!("REVOKE EXECUTE ON {kind} {object} FROM PUBLIC"),
        ));
    }
    tx.rollback().await?;
    Ok((Catalog { routines, after }, refusals))
}

/// SQLite: the statements SQLite keeps for the reference, in creation
/// order; for a later version, those of objects the previous version lacks.
async fn sqlite_statements(
    req: &CaptureRequest<'_>,
    template: &Template,
    later: bool,
) -> Result<Vec<String>, FleetError> {
    let reference = sqlite_master(&req.source.sqlite_path()).await?;
    if !later {
        return Ok(reference.into_iter().map(|(_, _, sql)| sql).collect());
    }
    // The previous version as SQLite stores it: built from its migrations
    // in a scratch file.
    let last = template
        .latest()
        .map(|v| v.version.clone())
        .ok_or_else(|| refused("the template has no version"))?;
    let dir = std::env::temp_dir().join(crate::guard::scratch_name("tenantry_capture", 0));
    std::fs::create_dir_all(&dir).map_err(|source| FleetError::Io {
        action: "create scratch directory",
        path: dir.clone(),
        source,
    })?;
    let file = dir.join("previous.db");
    let url = ConnectionUrl::parse(&format!("sqlite:{}", file.display()))?;
    let built = async {
        let migrations = template.migrations_through(&last)?;
        crate::provision::provision(
            &crate::provision::Place {
                url: &url,
                schema: "main",
            },
            &migrations,
            req.timeouts,
            None,
        )
        .await?;
        sqlite_master(&file).await
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    let previous: BTreeMap<(String, String), String> = built?
        .into_iter()
        .map(|(kind, name, sql)| ((kind, name), sql))
        .collect();
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut changed = Vec::new();
    for (kind, name, sql) in reference {
        let key = (kind.clone(), name.clone());
        match previous.get(&key) {
            None => out.push(sql),
            Some(old) if *old == sql => {}
            Some(_) => changed.push(format!("{kind} {name} changed")),
        }
        seen.insert(key);
    }
    for (kind, name) in previous.keys() {
        if !seen.contains(&(kind.clone(), name.clone())) {
            changed.push(format!("{kind} {name} removed"));
        }
    }
    if !changed.is_empty() {
        return Err(refused(format!(
            "{}: SQLite cannot change these in place, so a captured version may only add objects; write this version's migration by hand (the table rebuild) and add it with `tenantry template add`",
            changed.join(", ")
        )));
    }
    Ok(out)
}

/// `(type, name, sql)` of every object SQLite keeps a statement for, in
/// creation order (its own `sqlite_` objects left out).
async fn sqlite_master(
    path: &std::path::Path,
) -> Result<Vec<(String, String, String)>, FleetError> {
    let mut c = tenantry_introspect::sqlite::open_read_only(path).await?;
    let rows: Result<Vec<(String, String, String)>, sqlx::Error> = sqlx::query_as(
        "SELECT type, name, sql FROM sqlite_master
          WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
    )
    .fetch_all(&mut c)
    .await;
    let _ = c.close().await;
    rows.map_err(|e| {
        refused(format!(
            "cannot read the reference file's schema: {}",
            tenantry_registry::escape_controls(&e.to_string())
        ))
    })
}

/// MySQL/MariaDB: `SHOW CREATE` of every object of the reference database
/// (or, for a later version, of the objects the previous version lacks).
async fn mysql_statements(
    req: &CaptureRequest<'_>,
    database: &str,
    reference: &SchemaSnapshot,
    previous: Option<&SchemaSnapshot>,
) -> Result<Vec<String>, FleetError> {
    // What is new: by the same diff as tenants get. A changed or removed
    // object needs an ALTER that capture does not write for MySQL.
    let new: Option<BTreeSet<(String, String)>> = match previous {
        None => None,
        Some(p) => {
            let diff = diff_schemas(p, reference);
            let mut blocked = Vec::new();
            let mut added = BTreeSet::new();
            for o in diff
                .objects
                .iter()
                .filter(|o| o.presence != Presence::Identical)
            {
                match o.presence {
                    Presence::Added => {
                        added.insert((o.kind.as_str().to_owned(), o.name.clone()));
                    }
                    Presence::Missing => {
                        blocked.push(format!("{} {} removed", o.kind.as_str(), o.name))
                    }
                    _ => blocked.push(format!("{} {} changed", o.kind.as_str(), o.name)),
                }
            }
            if !blocked.is_empty() {
                return Err(refused(format!(
                    "{}: a captured MySQL/MariaDB version may only add objects; write this version's migration (the ALTER statements) by hand and add it with `tenantry template add`",
                    blocked.join(", ")
                )));
            }
            Some(added)
        }
    };
    let wanted = |kind: &str, name: &str| {
        new.as_ref()
            .is_none_or(|n| n.contains(&(kind.to_owned(), name.to_owned())))
    };
    let mut conn = tenantry_introspect::mysql::connect(req.source, req.timeouts).await?;
    let result = mysql_show_create(&mut conn, req.source, database, &wanted).await;
    tenantry_introspect::mysql::close(conn).await;
    result
}

/// `user@host` as the server prints it in `SHOW CREATE`: `` `user`@`host` ``.
fn mysql_definer(definer: &str) -> String {
    match definer.rsplit_once('@') {
        Some((user, host)) => format!(
            "{}@{}",
            tenantry_model::quote::mysql(user),
            tenantry_model::quote::mysql(host)
        ),
        None => tenantry_model::quote::mysql(definer),
    }
}

async fn mysql_show_create(
    conn: &mut sqlx::MySqlConnection,
    source: &ConnectionUrl,
    database: &str,
    wanted: &(dyn Fn(&str, &str) -> bool + Sync),
) -> Result<Vec<String>, FleetError> {
    use sqlx::Executor;
    let qm = tenantry_model::quote::mysql;
    let failed =
        |e: sqlx::Error| FleetError::from(tenantry_introspect::mysql::catalog_error(source, &e));
    // SHOW CREATE prints the reference's own tables unqualified.
    conn.execute(format!("USE {}", qm(database)).as_str())
        .await
        .map_err(failed)?;
    let text = |row: &sqlx::mysql::MySqlRow, i: usize| -> Result<String, FleetError> {
        match row.try_get::<String, _>(i) {
            Ok(t) => Ok(t),
            Err(_) => row
                .try_get::<Vec<u8>, _>(i)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(failed),
        }
    };
    let list =
        |sql: &'static str| sqlx::query_as::<_, (String, String)>(sql).bind(database.to_owned());
    let mut out = Vec::new();

    let events: Vec<(String, String)> = list(
        "SELECT CAST(EVENT_NAME AS CHAR), CAST(DEFINER AS CHAR) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(failed)?;
    if let Some((name, _)) = events.iter().find(|(n, _)| wanted("event", n)) {
        return Err(refused(format!(
            "event {name}: capture does not write scheduled events yet; add it in a migration by hand"
        )));
    }

    // Tables, each after the tables its foreign keys name.
    let tables: Vec<(String, String)> = list(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(TABLE_TYPE AS CHAR) FROM information_schema.TABLES
          WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(failed)?;
    let links: Vec<(String, String)> = list(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(REFERENCED_TABLE_NAME AS CHAR)
           FROM information_schema.REFERENTIAL_CONSTRAINTS
          WHERE CONSTRAINT_SCHEMA = ? AND UNIQUE_CONSTRAINT_SCHEMA = CONSTRAINT_SCHEMA",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(failed)?;
    let mut pending: Vec<String> = tables
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| wanted("table", n))
        .collect();
    let mut made: BTreeSet<String> = BTreeSet::new();
    while !pending.is_empty() {
        let ready: Vec<String> = pending
            .iter()
            .filter(|t| {
                links
                    .iter()
                    .filter(|(from, to)| from == *t && to != *t)
                    .all(|(_, to)| made.contains(to) || !pending.contains(to))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(refused(format!(
                "the foreign keys of {} form a cycle; capture creates tables one after another, so write this template's migration by hand",
                pending.join(", ")
            )));
        }
        for t in ready {
            let row = sqlx::query(&format!("SHOW CREATE TABLE {}", qm(&t)))
                .fetch_one(&mut *conn)
                .await
                .map_err(failed)?;
            out.push(text(&row, 1)?);
            pending.retain(|p| *p != t);
            made.insert(t);
        }
    }

    // Routines, then views (by name; a view over a view comes after it),
    // then triggers: each without its DEFINER.
    let routines: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT CAST(ROUTINE_NAME AS CHAR), CAST(ROUTINE_TYPE AS CHAR), CAST(DEFINER AS CHAR)
           FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? ORDER BY ROUTINE_NAME",
    )
    .bind(database)
    .fetch_all(&mut *conn)
    .await
    .map_err(failed)?;
    for (name, kind, definer) in routines {
        if !wanted("routine", &name) && !wanted("routine", &format!("{name}()")) {
            continue;
        }
        let what = if kind == "PROCEDURE" {
            "PROCEDURE"
        } else {
            "FUNCTION"
        };
        let row = sqlx::query(&format!("SHOW CREATE {what} {}", qm(&name)))
            .fetch_one(&mut *conn)
            .await
            .map_err(failed)?;
        let created = text(&row, 2)?;
        let prefix = format!("CREATE DEFINER={} ", mysql_definer(&definer));
        let rest = created.strip_prefix(&prefix).ok_or_else(|| {
            refused(format!(
                "{} {name}: the server's definition does not start as expected; add it in a migration by hand",
                what.to_lowercase()
            ))
        })?;
        out.push(format!("CREATE {rest}"));
    }

    let views: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT CAST(TABLE_NAME AS CHAR), CAST(DEFINER AS CHAR), CAST(SECURITY_TYPE AS CHAR), CAST(ALGORITHM AS CHAR)
           FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
    )
    .bind(database)
    .fetch_all(&mut *conn)
    .await
    .map_err(failed)?;
    // (name, body, statement)
    let mut view_sql: Vec<(String, String, String)> = Vec::new();
    for (name, definer, security, algorithm) in &views {
        if !wanted("view", name) {
            continue;
        }
        let row = sqlx::query(&format!("SHOW CREATE VIEW {}", qm(name)))
            .fetch_one(&mut *conn)
            .await
            .map_err(failed)?;
        let created = text(&row, 1)?;
        let prefix = format!(
            "CREATE ALGORITHM={algorithm} DEFINER={} SQL SECURITY {security} VIEW {} AS ",
            mysql_definer(definer),
            qm(name)
        );
        let body = created.strip_prefix(&prefix).ok_or_else(|| {
            refused(format!(
                "view {name}: the server's definition does not start as expected; add it in a migration by hand"
            ))
        })?;
        let statement = format!(
            "CREATE ALGORITHM={algorithm} SQL SECURITY {security} VIEW {} AS {body}",
            qm(name)
        );
        view_sql.push((name.clone(), body.to_owned(), statement));
    }
    // A view whose body names another still to be made comes after it
    // (this look at the text decides only the order; the measurement
    // proves the result).
    while !view_sql.is_empty() {
        let at = view_sql
            .iter()
            .position(|(name, body, _)| {
                !view_sql
                    .iter()
                    .any(|(other, _, _)| other != name && body.contains(&qm(other)))
            })
            .unwrap_or(0);
        out.push(view_sql.remove(at).2);
    }

    let triggers: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT CAST(TRIGGER_NAME AS CHAR), CAST(EVENT_OBJECT_TABLE AS CHAR), CAST(DEFINER AS CHAR)
           FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
          ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER",
    )
    .bind(database)
    .fetch_all(&mut *conn)
    .await
    .map_err(failed)?;
    for (name, table, definer) in triggers {
        if !wanted("table", &table) {
            continue;
        }
        let row = sqlx::query(&format!("SHOW CREATE TRIGGER {}", qm(&name)))
            .fetch_one(&mut *conn)
            .await
            .map_err(failed)?;
        let created = text(&row, 2)?;
        let prefix = format!("CREATE DEFINER={} TRIGGER ", mysql_definer(&definer));
        let rest = created.strip_prefix(&prefix).ok_or_else(|| {
            refused(format!(
                "trigger {name}: the server's definition does not start as expected; add it in a migration by hand"
            ))
        })?;
        out.push(format!("CREATE TRIGGER {rest}"));
    }
    Ok(out)
}
