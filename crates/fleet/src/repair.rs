//! Non-destructive repair: create the template objects a tenant is missing
//! (tables, indexes, views, types), leave every customisation in place.
//!
//! The template is applied to a scratch schema/database/file and the missing
//! objects are taken from there: PostgreSQL moves missing types and tables
//! into the tenant schema (`ALTER … SET SCHEMA`, inside one transaction,
//! re-pointing their foreign keys at the tenant's tables) and recreates
//! missing indexes and views from the server's own definitions; MySQL/MariaDB
//! and SQLite replay the server's stored `CREATE` statements. What cannot
//! be created without touching existing data (a missing column or
//! constraint on an existing table) is reported, not attempted.

use serde::Serialize;
use sqlx::{Connection, Executor, Row};
use tenantry_introspect::{mysql, postgres, sqlite, ConnectionUrl, Timeouts};
use tenantry_model::diff::{diff_schemas, Area, Presence, SchemaDiff};
use tenantry_model::{hash_schema, Engine, ObjectKind, SchemaStatus};
use tenantry_registry::templates::TenantCheck;
use tenantry_registry::{AuditResult, Registry};
use tenantry_vault::Vault;
use ts_rs::TS;

use crate::guard::{read_tenant, scratch_name, tenant_schema};
use crate::provision::{provision, Place};
use crate::template::Migration;
use crate::{catalog, FleetError};

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct RepairOutcome {
    pub slug: String,
    /// What was created, as `kind name`.
    pub created: Vec<String>,
    /// What is missing but was left alone, and why.
    pub not_repaired: Vec<String>,
    #[ts(type = "\"unknown\" | \"synced\" | \"customized\" | \"outdated\" | \"failed\"")]
    pub status: SchemaStatus,
    pub hash: String,
}

/// The repairable work a diff implies.
struct Work {
    tables: Vec<String>,
    views: Vec<String>,
    enums: Vec<String>,
    sequences: Vec<String>,
    /// (table, index name) for missing indexes of existing tables.
    indexes: Vec<(String, String)>,
    not_repaired: Vec<String>,
}

fn work(diff: &SchemaDiff) -> Work {
    let mut w = Work {
        tables: vec![],
        views: vec![],
        enums: vec![],
        sequences: vec![],
        indexes: vec![],
        not_repaired: vec![],
    };
    for o in &diff.objects {
        match (o.presence, o.kind) {
            (Presence::Missing, ObjectKind::Table) => w.tables.push(o.name.clone()),
            (Presence::Missing, ObjectKind::View) => w.views.push(o.name.clone()),
            (Presence::Missing, ObjectKind::Enum) => w.enums.push(o.name.clone()),
            (Presence::Missing, ObjectKind::Sequence) => w.sequences.push(o.name.clone()),
            (Presence::Changed, ObjectKind::Table) => {
                for c in o.changes.iter().filter(|c| c.presence == Presence::Missing) {
                    if c.area == Area::Index {
                        let name = c
                            .item
                            .split_whitespace()
                            .skip_while(|t| *t != "INDEX")
                            .nth(1)
                            .unwrap_or("")
                            .to_owned();
                        if name.is_empty() || name == "<generated>" {
                            w.not_repaired
                                .push(format!("index {} on {} (server-named)", c.item, o.name));
                        } else {
                            w.indexes.push((o.name.clone(), name));
                        }
                    } else {
                        w.not_repaired.push(format!(
                            "{:?} {} of table {}: would change an existing table; reset the tenant or add it by hand",
                            c.area, c.item, o.name
                        ));
                    }
                }
            }
            (Presence::Changed, kind) => w.not_repaired.push(format!(
                "{} {} differs from the template; repair only creates what is missing",
                kind.as_str(),
                o.name
            )),
            _ => {}
        }
    }
    w
}

/// Repairs `slug`: creates its missing template objects.
pub async fn repair_tenant(
    registry: &Registry,
    vault: &Vault,
    slug: &str,
    timeouts: Timeouts,
) -> Result<RepairOutcome, FleetError> {
    registry
        .authorize(tenantry_registry::Action::Repair)
        .await?;
    let result = async {
        let record = registry.tenant(slug).await?;
        let (Some(name), Some(version)) =
            (record.template.clone(), record.template_version.clone())
        else {
            return Err(FleetError::InvalidTemplate {
                reason: format!("tenant {slug} has no template version to repair from"),
            });
        };
        let template =
            crate::template::applicable_template(registry, &name, record.engine, &version).await?;
        let migrations = template.migrations_through(&version)?;
        let reference = registry
            .template_snapshot(&name, record.engine, &version)
            .await?;
        let url = registry.connection(vault, slug).await?;
        let schema = tenant_schema(&record, &url);
        let before = read_tenant(&record, &url, timeouts).await?;
        let mut w = work(&diff_schemas(&reference, &before));
        if record.engine == Engine::Mysql {
            // MySQL keeps no standalone index DDL to replay.
            for (table, index) in w.indexes.drain(..) {
                w.not_repaired.push(format!(
                    "index {index} on {table}: add it by hand or reset the tenant"
                ));
            }
        }
        let created = match record.engine {
            Engine::Postgres => repair_postgres(&url, &schema, &migrations, &w, timeouts).await?,
            Engine::Mysql => repair_mysql(&url, &schema, &migrations, &w, timeouts).await?,
            Engine::Sqlite => repair_sqlite(&url, &migrations, &w, timeouts).await?,
        };
        let after = read_tenant(&record, &url, timeouts).await?;
        let hash = hash_schema(&after).root;
        let lineage =
            crate::guard::current_lineage(registry, &name, record.engine, timeouts).await?;
        let status = tenantry_model::classify(&hash, &version, &lineage);
        registry
            .record_check(&TenantCheck {
                slug: slug.to_owned(),
                status,
                reason: None,
                hash: Some(hash),
                provisioned: false,
                fingerprint: None,
            })
            .await?;
        Ok(RepairOutcome {
            slug: slug.to_owned(),
            created,
            not_repaired: w.not_repaired,
            status,
            hash: hash.to_string(),
        })
    }
    .await;
    crate::audit_outcome(
        registry,
        slug,
        "repair",
        &result,
        |o| {
            (
                format!(
                    "created {}; left alone {}",
                    list(&o.created),
                    list(&o.not_repaired)
                ),
                AuditResult::Ok,
            )
        },
        false,
    )
    .await?;
    result
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(", ")
    }
}

use tenantry_model::quote::postgres as qp;

async fn repair_postgres(
    url: &ConnectionUrl,
    schema: &str,
    migrations: &[&Migration],
    w: &Work,
    timeouts: Timeouts,
) -> Result<Vec<String>, FleetError> {
    let mut conn = postgres::connect(url, timeouts).await?;
    let result = async {
        let mut tx = crate::provision::locked_tx(&mut conn, url, schema).await?;
        let tmp = scratch_name("tenantry_repair", 0);
        tx.execute(format!("CREATE SCHEMA {}", qp(&tmp)).as_str()).await.map_err(|e| catalog(url, &e))?;
        sqlx::query("SELECT set_config('search_path', $1, true)").bind(qp(&tmp)).execute(&mut *tx).await.map_err(|e| catalog(url, &e))?;
        for m in migrations {
            tx.execute(m.sql.as_ref()).await.map_err(|e| catalog(url, &e))?;
        }
        // Definitions read while the scratch schema is first in the path
        // come back unqualified, ready to run in the tenant's schema.
        let mut views = Vec::new();
        for v in &w.views {
            let def: String = sqlx::query_scalar("SELECT pg_get_viewdef(format('%I.%I', $1::text, $2::text)::regclass, true)")
                .bind(&tmp).bind(v).fetch_one(&mut *tx).await.map_err(|e| catalog(url, &e))?;
            views.push((v.clone(), def));
        }
        let mut indexes = Vec::new();
        for (table, index) in &w.indexes {
            let def: String = sqlx::query_scalar("SELECT pg_get_indexdef(format('%I.%I', $1::text, $2::text)::regclass)")
                .bind(&tmp).bind(index).fetch_one(&mut *tx).await.map_err(|e| catalog(url, &e))?;
            indexes.push((table.clone(), index.clone(), def));
        }
        let mut created = Vec::new();
        for e in &w.enums {
            tx.execute(format!("ALTER TYPE {}.{} SET SCHEMA {}", qp(&tmp), qp(e), qp(schema)).as_str()).await.map_err(|e| catalog(url, &e))?;
            created.push(format!("enum {e}"));
        }
        for t in &w.tables {
            tx.execute(format!("ALTER TABLE {}.{} SET SCHEMA {}", qp(&tmp), qp(t), qp(schema)).as_str()).await.map_err(|e| catalog(url, &e))?;
            created.push(format!("table {t}"));
        }
        // Sequences owned by a moved table moved with it; the rest move now.
        for s in &w.sequences {
            let still_there: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2)",
            )
            .bind(&tmp)
            .bind(s)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| catalog(url, &e))?;
            if still_there {
                tx.execute(format!("ALTER SEQUENCE {}.{} SET SCHEMA {}", qp(&tmp), qp(s), qp(schema)).as_str()).await.map_err(|e| catalog(url, &e))?;
            }
            created.push(format!("sequence {s}"));
        }
        // Foreign keys of moved tables that still point into the scratch schema.
        let fks = sqlx::query(
            "SELECT c.relname::text AS tbl, con.conname::text AS name, pg_get_constraintdef(con.oid) AS def
               FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_class t ON t.oid = con.confrelid JOIN pg_namespace tn ON tn.oid = t.relnamespace
              WHERE con.contype = 'f' AND n.nspname = $1 AND tn.nspname = $2",
        )
        .bind(schema).bind(&tmp).fetch_all(&mut *tx).await.map_err(|e| catalog(url, &e))?;
        sqlx::query("SELECT set_config('search_path', $1, true)").bind(qp(schema)).execute(&mut *tx).await.map_err(|e| catalog(url, &e))?;
        for fk in fks {
            let (tbl, name, def): (String, String, String) = (fk.try_get("tbl").map_err(|e| catalog(url, &e))?, fk.try_get("name").map_err(|e| catalog(url, &e))?, fk.try_get("def").map_err(|e| catalog(url, &e))?);
            let def = def.replace(&format!("{}.", qp(&tmp)), "").replace(&format!("{tmp}."), "");
            tx.execute(format!("ALTER TABLE {t} DROP CONSTRAINT {n}, ADD CONSTRAINT {n} {def}", t = qp(&tbl), n = qp(&name)).as_str())
                .await
                .map_err(|e| catalog(url, &e))?;
        }
        for (table, index, def) in indexes {
            let def = def.replace(&format!(" ON {}.", qp(&tmp)), " ON ").replace(&format!(" ON {tmp}."), " ON ");
            tx.execute(def.as_str()).await.map_err(|e| catalog(url, &e))?;
            created.push(format!("index {index} on {table}"));
        }
        for (v, def) in views {
            tx.execute(format!("CREATE VIEW {} AS {def}", qp(&v)).as_str()).await.map_err(|e| catalog(url, &e))?;
            created.push(format!("view {v}"));
        }
        tx.execute(format!("DROP SCHEMA {} CASCADE", qp(&tmp)).as_str()).await.map_err(|e| catalog(url, &e))?;
        tx.commit().await.map_err(|e| catalog(url, &e))?;
        Ok(created)
    }
    .await;
    postgres::close(conn).await;
    result
}

async fn repair_mysql(
    url: &ConnectionUrl,
    schema: &str,
    migrations: &[&Migration],
    w: &Work,
    timeouts: Timeouts,
) -> Result<Vec<String>, FleetError> {
    let tmp = scratch_name("tenantry_repair", 0);
    provision(&Place { url, schema: &tmp }, migrations, timeouts, None).await?;
    let mut conn = mysql::connect(&url.with_database("")?, timeouts).await?;
    let m = tenantry_model::quote::mysql;
    let result = async {
        let mut created = Vec::new();
        conn.execute(format!("USE {}", m(schema)).as_str()).await.map_err(|e| catalog(url, &e))?;
        conn.execute("SET FOREIGN_KEY_CHECKS = 0").await.map_err(|e| catalog(url, &e))?;
        for t in &w.tables {
            let row = sqlx::query(&format!("SHOW CREATE TABLE {}.{}", m(&tmp), m(t))).fetch_one(&mut conn).await.map_err(|e| catalog(url, &e))?;
            let ddl: String = row.try_get::<String, _>(1).map_err(|e| catalog(url, &e))?;
            conn.execute(ddl.as_str()).await.map_err(|e| catalog(url, &e))?;
            created.push(format!("table {t}"));
        }
        conn.execute("SET FOREIGN_KEY_CHECKS = 1").await.map_err(|e| catalog(url, &e))?;
        for v in &w.views {
            let def: String = sqlx::query_scalar("SELECT CAST(VIEW_DEFINITION AS CHAR) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?")
                .bind(&tmp).bind(v).fetch_one(&mut conn).await.map_err(|e| catalog(url, &e))?;
            let def = def.replace(&format!("{}.", m(&tmp)), "");
            conn.execute(format!("CREATE VIEW {} AS {def}", m(v)).as_str()).await.map_err(|e| catalog(url, &e))?;
            created.push(format!("view {v}"));
        }
        Ok(created)
    }
    .await;
    let _ = conn
        .execute(format!("DROP DATABASE IF EXISTS {}", m(&tmp)).as_str())
        .await;
    mysql::close(conn).await;
    result
}

async fn repair_sqlite(
    url: &ConnectionUrl,
    migrations: &[&Migration],
    w: &Work,
    timeouts: Timeouts,
) -> Result<Vec<String>, FleetError> {
    let dir = std::env::temp_dir().join(scratch_name("tenantry_repair", 0));
    std::fs::create_dir_all(&dir).map_err(|source| FleetError::Io {
        action: "create scratch directory",
        path: dir.clone(),
        source,
    })?;
    let scratch = ConnectionUrl::parse(&format!("sqlite:{}", dir.join("t.db").display()))?;
    let result = async {
        provision(&Place { url: &scratch, schema: "main" }, migrations, timeouts, None).await?;
        let mut reference = sqlite::open_read_only(&scratch.sqlite_path()).await?;
        let sql_of = |kind: &'static str, name: String| {
            sqlx::query_scalar::<_, String>("SELECT sql FROM sqlite_master WHERE type = ?1 AND name = ?2").bind(kind).bind(name)
        };
        let mut statements = Vec::new();
        for t in &w.tables {
            statements.push((format!("table {t}"), sql_of("table", t.clone()).fetch_one(&mut reference).await.map_err(|e| catalog(url, &e))?));
            let idx: Vec<String> = sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL")
                .bind(t).fetch_all(&mut reference).await.map_err(|e| catalog(url, &e))?;
            statements.extend(idx.into_iter().map(|s| (format!("index on {t}"), s)));
        }
        for (table, index) in &w.indexes {
            statements.push((format!("index {index} on {table}"), sql_of("index", index.clone()).fetch_one(&mut reference).await.map_err(|e| catalog(url, &e))?));
        }
        for v in &w.views {
            statements.push((format!("view {v}"), sql_of("view", v.clone()).fetch_one(&mut reference).await.map_err(|e| catalog(url, &e))?));
        }
        let _ = reference.close().await;
        let mut conn = crate::open_sqlite_writer(url, false).await?;
        let mut tx = conn.begin().await.map_err(|e| catalog(url, &e))?;
        let mut created = Vec::new();
        for (what, sql) in statements {
            tx.execute(sql.as_str()).await.map_err(|e| catalog(url, &e))?;
            created.push(what);
        }
        tx.commit().await.map_err(|e| catalog(url, &e))?;
        let _ = conn.close().await;
        Ok(created)
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}
