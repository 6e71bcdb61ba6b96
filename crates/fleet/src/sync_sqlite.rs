//! The data-preserving sync on SQLite, which cannot `ALTER` most of what
//! drifts: SQLite's documented table rebuild, inside one transaction.
//!
//! Every table that differs from the target is renamed aside (with
//! `legacy_alter_table`, so no other table's foreign keys follow it),
//! created again from the template's own stored `CREATE TABLE`, filled
//! with the columns both sides have, and the old one dropped; its indexes
//! and triggers come from the template too. Custom tables are dropped,
//! missing ones created, differing views dropped and created again.
//! Foreign keys are off for the rebuild (as the procedure requires) and
//! `PRAGMA foreign_key_check` must find nothing before the commit. The
//! whole file is backed up first under the write lock, so every row that
//! a step removes is in that backup (a full, restorable one).

use std::collections::BTreeMap;

use sqlx::{Connection, Executor, SqliteConnection};
use tenantry_introspect::{sqlite, ConnectionUrl, Timeouts};
use tenantry_model::diff::{diff_schemas, Presence};
use tenantry_model::quote::sqlite as q;
use tenantry_model::sync::{StepClass, SyncStep};
use tenantry_model::{hash_schema, DriftHash, ObjectKind, SchemaSnapshot};

use crate::guard::scratch_name;
use crate::provision::{provision, Place};
use crate::reset::{stale, Context};
use crate::sync::{count_probes, target_for, Planned};
use crate::{catalog, FleetError};

/// The name a rebuilt table has while its rows are copied.
const OLD: &str = "tenantry_sync_old";

/// The template's stored SQL, from a scratch file built from its
/// migrations: tables and views by name, indexes and triggers by table.
#[derive(Default)]
pub(crate) struct TemplateSql {
    tables: BTreeMap<String, String>,
    views: BTreeMap<String, String>,
    /// (table, statement) for indexes and triggers, in creation order.
    attached: Vec<(String, String)>,
}

impl TemplateSql {
    pub(crate) async fn read(ctx: &Context, timeouts: Timeouts) -> Result<Self, FleetError> {
        let migrations = ctx.template.migrations_through(&ctx.version)?;
        let dir = std::env::temp_dir().join(scratch_name("tenantry_sync", 0));
        std::fs::create_dir_all(&dir).map_err(|source| FleetError::Io {
            action: "create scratch directory",
            path: dir.clone(),
            source,
        })?;
        let result = async {
            let scratch = ConnectionUrl::parse(&format!("sqlite:{}", dir.join("t.db").display()))?;
            provision(
                &Place {
                    url: &scratch,
                    schema: "main",
                },
                &migrations,
                timeouts,
                None,
            )
            .await?;
            let mut c = sqlite::open_read_only(&scratch.sqlite_path()).await?;
            let rows: Result<Vec<(String, String, String, String)>, _> = sqlx::query_as(
                "SELECT type, name, tbl_name, sql FROM sqlite_master
                  WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid",
            )
            .fetch_all(&mut c)
            .await;
            let _ = c.close().await;
            let mut out = Self::default();
            for (kind, name, table, sql) in rows.map_err(|e| catalog(&scratch, &e))? {
                match kind.as_str() {
                    "table" => {
                        out.tables.insert(name, sql);
                    }
                    "view" => {
                        out.views.insert(name, sql);
                    }
                    _ => out.attached.push((table, sql)),
                }
            }
            Ok(out)
        }
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    fn table_with_attached(&self, name: &str) -> Option<Vec<String>> {
        let create = self.tables.get(name)?.clone();
        Some(
            std::iter::once(create)
                .chain(
                    self.attached
                        .iter()
                        .filter(|(t, _)| t == name)
                        .map(|(_, s)| s.clone()),
                )
                .collect(),
        )
    }
}

/// The ordered steps from `tenant` to `target` (the template, or the
/// template with kept differences).
pub(crate) fn plan(
    target: &SchemaSnapshot,
    tenant: &SchemaSnapshot,
    sql: &TemplateSql,
) -> Vec<SyncStep> {
    let mut drop_views = Vec::new();
    let mut drops = Vec::new();
    let mut rebuilds = Vec::new();
    let mut creates = Vec::new();
    let mut views = Vec::new();
    for o in diff_schemas(target, tenant)
        .objects
        .iter()
        .filter(|o| o.presence != Presence::Identical)
    {
        let object = format!("{} {}", o.kind.as_str(), o.name);
        match (o.kind, o.presence) {
            (ObjectKind::Table, Presence::Added) => drops.push(
                SyncStep::ordered(
                    StepClass::Destructive,
                    object,
                    "drop the custom table (its rows stay in the file backup)".into(),
                    vec![format!("DROP TABLE {}", q(&o.name))],
                )
                .probe(
                    format!("SELECT count(*) FROM {}", q(&o.name)),
                    "rows kept only in the backup".into(),
                ),
            ),
            (ObjectKind::Table, Presence::Missing) => match sql.table_with_attached(&o.name) {
                Some(statements) => creates.push(SyncStep::ordered(
                    StepClass::Safe,
                    object,
                    "create the missing table (empty) with its indexes and triggers".into(),
                    statements,
                )),
                None => creates.push(SyncStep::manual(
                    object,
                    "the template's statement for it was not found".into(),
                )),
            },
            (ObjectKind::Table, _) => {
                let (Some(want), Some(have), Some(statements)) = (
                    target.table(&o.name),
                    tenant.table(&o.name),
                    sql.table_with_attached(&o.name),
                ) else {
                    rebuilds.push(SyncStep::manual(object, "a kept or unknown table".into()));
                    continue;
                };
                rebuilds.extend(rebuild(&o.name, want, have, statements, object));
            }
            (ObjectKind::View, _) => {
                if tenant.views.iter().any(|v| v.name == o.name) {
                    drop_views.push(SyncStep::ordered(
                        StepClass::Safe,
                        object.clone(),
                        "drop the custom or changed view (a view holds no rows)".into(),
                        vec![format!("DROP VIEW {}", q(&o.name))],
                    ));
                }
                if let Some(create) = sql.views.get(&o.name) {
                    views.push(SyncStep::ordered(
                        StepClass::Safe,
                        object,
                        "create the view".into(),
                        vec![create.clone()],
                    ));
                }
            }
            _ => drops.push(SyncStep::manual(
                object,
                "not brought back by sync yet; reset the tenant or accept it".into(),
            )),
        }
    }
    drop_views
        .into_iter()
        .chain(drops)
        .chain(rebuilds)
        .chain(creates)
        .chain(views)
        .collect()
}

fn rebuild(
    name: &str,
    want: &tenantry_model::Table,
    have: &tenantry_model::Table,
    statements: Vec<String>,
    object: String,
) -> Vec<SyncStep> {
    let t = q(name);
    let copied: Vec<&str> = want
        .columns
        .iter()
        .filter(|c| {
            c.generated.is_none() && have.column(&c.name).is_some_and(|h| h.generated.is_none())
        })
        .map(|c| c.name.as_str())
        .collect();
    let cols = copied.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
    let custom: Vec<&str> = have
        .columns
        .iter()
        .filter(|c| want.column(&c.name).is_none())
        .map(|c| c.name.as_str())
        .collect();
    let mut sql = vec![format!("ALTER TABLE {t} RENAME TO {}", q(OLD))];
    sql.push(statements[0].clone());
    if !copied.is_empty() {
        sql.push(format!(
            "INSERT INTO {t} ({cols}) SELECT {cols} FROM {}",
            q(OLD)
        ));
    }
    sql.push(format!("DROP TABLE {}", q(OLD)));
    sql.extend(statements[1..].iter().cloned());
    let mut steps = Vec::new();
    let action = format!(
        "rebuild from the template, copying {}{}",
        if copied.is_empty() {
            "no column".to_owned()
        } else {
            copied.join(", ")
        },
        if custom.is_empty() {
            String::new()
        } else {
            format!(
                "; the custom column{} {} stay only in the backup",
                if custom.len() == 1 { "" } else { "s" },
                custom.join(", ")
            )
        }
    );
    let step = if custom.is_empty() {
        SyncStep::ordered(StepClass::Safe, object.clone(), action, sql)
    } else {
        SyncStep::ordered(StepClass::Destructive, object.clone(), action, sql).probe(
            format!(
                "SELECT count(*) FROM {t} WHERE {}",
                custom
                    .iter()
                    .map(|c| format!("{} IS NOT NULL", q(c)))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            ),
            "rows with a value in a custom column".into(),
        )
    };
    steps.push(step);
    // NOT NULL columns of the template with no default: rows the copy
    // would leave without a value.
    for c in want
        .columns
        .iter()
        .filter(|c| !c.nullable && c.default.is_none() && c.generated.is_none())
    {
        let (probe, meaning) = match have.column(&c.name) {
            Some(h) if h.nullable => (
                format!("SELECT count(*) FROM {t} WHERE {} IS NULL", q(&c.name)),
                format!("rows where {} is NULL", c.name),
            ),
            Some(_) => continue,
            None => (
                format!("SELECT count(*) FROM {t}"),
                format!(
                    "rows that would get no value for NOT NULL column {}",
                    c.name
                ),
            ),
        };
        steps.push(
            SyncStep::ordered(
                StepClass::Checked,
                object.clone(),
                format!("column {} must have a value in every row", c.name),
                Vec::new(),
            )
            .probe(probe, meaning),
        );
    }
    steps
}

/// Reads the tenant on `conn`, plans towards the template with `kept`
/// differences, counts the probes.
pub(crate) async fn plan_on(
    conn: &mut SqliteConnection,
    ctx: &Context,
    sql: &TemplateSql,
    kept: &[String],
) -> Result<Planned, FleetError> {
    let tenant = sqlite::introspect(&mut *conn)
        .await
        .map_err(|e| catalog(&ctx.url, &e))?;
    let target = target_for(ctx, &tenant, kept)?;
    let mut steps = plan(&target, &tenant, sql);
    count_probes(conn, ctx, &mut steps).await?;
    Ok(Planned {
        now: hash_schema(&tenant).root,
        steps,
        target,
        tenant,
    })
}

/// The sync of a SQLite file: backup, steps, foreign-key check and
/// verification in one transaction under the write lock. Returns what ran
/// and the hash after.
pub(crate) async fn apply(
    ctx: &Context,
    expected: DriftHash,
    kept: &[String],
    backup: &std::path::Path,
    timeouts: Timeouts,
) -> Result<(Vec<String>, DriftHash), FleetError> {
    let url = &ctx.url;
    let slug = &ctx.record.slug;
    let sql = TemplateSql::read(ctx, timeouts).await?;
    let mut conn = crate::open_sqlite_writer(url, false).await?;
    // Set once this run has written the backup: only then is it this run's
    // to remove when the sync rolls back (never an older file of that name).
    let mut made_backup = false;
    let result = async {
        // The rebuild procedure: foreign keys off (outside the transaction,
        // where the pragma takes effect) and checked before the commit;
        // renames leave other tables' references alone.
        conn.execute("PRAGMA foreign_keys = OFF; PRAGMA legacy_alter_table = ON")
            .await
            .map_err(|e| catalog(url, &e))?;
        conn.execute("BEGIN IMMEDIATE")
            .await
            .map_err(|e| catalog(url, &e))?;
        let Planned {
            now, steps, target, ..
        } = plan_on(&mut conn, ctx, &sql, kept).await?;
        if now != expected {
            return Err(stale(slug, now));
        }
        crate::sync::refuse_if_blocked(slug, &steps)?;
        // Under the write lock: every committed row, the -wal's too.
        crate::sqlite_backup::back_up(&url.sqlite_path(), backup).await?;
        made_backup = true;
        let applied = crate::sync::run_steps(&mut conn, slug, url, &steps).await?;
        let broken: Vec<(String,)> =
            sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check")
                .fetch_all(&mut conn)
                .await
                .map_err(|e| catalog(url, &e))?;
        if !broken.is_empty() {
            return Err(FleetError::SyncStepFailed {
                slug: slug.clone(),
                step: "the foreign-key check".into(),
                reason: format!(
                    "{} rows would reference rows that are not there (first in table {})",
                    broken.len(),
                    broken[0].0
                ),
            });
        }
        let after = sqlite::introspect(&mut conn)
            .await
            .map_err(|e| catalog(url, &e))?;
        let found = crate::sync::verify_target(slug, &target, &after)?;
        conn.execute("COMMIT").await.map_err(|e| catalog(url, &e))?;
        Ok((applied, found))
    }
    .await;
    if result.is_err() {
        let _ = conn.execute("ROLLBACK").await;
        if made_backup {
            // The tenant is as it was: this run's copy of it is not needed.
            crate::sqlite_backup::remove_with_sides(backup);
        }
    }
    let _ = conn.close().await;
    result
}
