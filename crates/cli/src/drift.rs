//! `tenantry template …`, `tenantry guard` and `tenantry scan`: templates,
//! provisioning and the nightly drift run.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use tenantry_fleet::guard::{
    guard_tenant, measure, register_template_allowing, verify_setup, GuardReport,
};
use tenantry_fleet::scan::{scan as run_scan, CancelScan, ScanOptions, ScanReport};
use tenantry_fleet::template::{lint, Template};
use tenantry_introspect::{ConnectionUrl, Timeouts};
use tenantry_model::{Engine, SchemaStatus};

use crate::tenants::{open, open_vault, read_url};
use crate::{write_json, CliError, RegistryArgs};

#[derive(Clone, Copy, ValueEnum)]
pub enum EngineArg {
    Postgres,
    Mysql,
    Sqlite,
}

impl From<EngineArg> for Engine {
    fn from(e: EngineArg) -> Self {
        match e {
            EngineArg::Postgres => Engine::Postgres,
            EngineArg::Mysql => Engine::Mysql,
            EngineArg::Sqlite => Engine::Sqlite,
        }
    }
}

#[derive(Subcommand)]
pub enum TemplateCommand {
    /// Measure a template (a folder of version folders of .sql files) on a
    /// scratch database and store it, with each version's hash, in the registry.
    Add {
        dir: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        engine: EngineArg,
        /// Where to measure: a PostgreSQL database (a scratch schema is made
        /// and dropped in it), a MySQL server (a scratch database), or for
        /// SQLite nothing (a temporary file). `-` reads it from standard input.
        #[arg(long)]
        scratch: Option<String>,
        /// The scratch schema (PostgreSQL) or database (MySQL) to measure
        /// in, instead of a new one with a made-up name. It must be missing
        /// or empty, and is dropped afterwards. Rights needed: PostgreSQL,
        /// CREATE on the scratch database; MySQL, CREATE and DROP on that
        /// database only (`GRANT ALL ON `NAME`.* TO …`).
        #[arg(long, value_name = "NAME")]
        scratch_name: Option<String>,
        /// Apply versions whose SQL reaches outside the tenant's schema
        /// (other schemas, search_path or role changes, DROP SCHEMA, DO,
        /// TRUNCATE…): say why. Recorded with your OS account and audited;
        /// without it such a template is refused before anything runs.
        #[arg(long, value_name = "WHY")]
        allow_outside_tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Measure a stored template again from the migrations the registry
    /// holds, with this version's canonical format (after an upgrade that
    /// changed it: tenants read `unknown` until then, never `customized`).
    Remeasure {
        name: String,
        #[arg(long, value_enum)]
        engine: EngineArg,
        /// Where to measure, as for `template add`.
        #[arg(long)]
        scratch: Option<String>,
        /// The scratch schema or database, as for `template add`.
        #[arg(long, value_name = "NAME")]
        scratch_name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Record a template version from a live reference: a PostgreSQL
    /// database or schema (`pg_tpl`, a `tpl` schema, a staging database), a
    /// MySQL/MariaDB database or a SQLite file. Tenantry writes SQL that recreates it, applies that in a
    /// scratch schema exactly as it will apply it to tenants, and stores the
    /// version only when the result hashes as the reference does. A later
    /// capture of the same template stores the difference from its last
    /// version (additions and safe changes; anything that would move data is
    /// refused; on MySQL/MariaDB and SQLite a later version may only add).
    ///
    /// Rights needed: read on the reference's catalogs; PostgreSQL, CREATE on
    /// the scratch database (the reference's own by default, or --scratch);
    /// MySQL/MariaDB, CREATE and DROP on the scratch database.
    Capture {
        /// The reference database (`-` reads it from standard input).
        url: Option<String>,
        /// Read the reference URL from this environment variable.
        #[arg(long, value_name = "VAR", conflicts_with = "url")]
        url_env: Option<String>,
        /// PostgreSQL: the reference schema (default `public`).
        #[arg(long)]
        schema: Option<String>,
        #[arg(long)]
        name: String,
        #[arg(long)]
        version: String,
        /// Where to prove the captured SQL (default: the reference's own
        /// server and database; a scratch schema or database is made there
        /// and dropped afterwards).
        #[arg(long)]
        scratch: Option<String>,
        /// The scratch schema's name, as for `template add`.
        #[arg(long, value_name = "NAME")]
        scratch_name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List the registry's templates, versions and measured hashes.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Report what in a template will break tenants (measured when --scratch is given).
    Lint {
        dir: PathBuf,
        #[arg(long, value_enum)]
        engine: EngineArg,
        #[arg(long)]
        scratch: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn scratch_url(engine: Engine, scratch: Option<&str>) -> Result<ConnectionUrl, CliError> {
    match (engine, scratch) {
        (_, Some(s)) => read_url(Some(s), None),
        (Engine::Sqlite, None) => tenantry_fleet::guard::default_scratch(engine).map_err(fleet_err),
        (_, None) => Err(CliError::new(
            "usage",
            format!("measuring a {engine} template needs --scratch URL (a database Tenantry may create and drop scratch objects in)"),
        )),
    }
}

pub async fn template(
    cmd: TemplateCommand,
    args: &RegistryArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let timeouts = Timeouts::default();
    match cmd {
        TemplateCommand::Add {
            dir,
            name,
            engine,
            scratch,
            scratch_name,
            allow_outside_tenant,
            json,
        } => {
            let registry = crate::tenants::open_or_create(args).await?;
            let engine = Engine::from(engine);
            let template = Template::load_dir(&dir, &name, engine).map_err(fleet_err)?;
            let scratch = scratch_url(engine, scratch.as_deref())?;
            let findings = register_template_allowing(
                &registry,
                &template,
                &scratch,
                scratch_name.as_deref(),
                timeouts,
                allow_outside_tenant.as_deref(),
            )
            .await
            .map_err(fleet_err)?;
            let lineage = registry.lineage(&name, engine).await?;
            if json {
                return write_json(
                    out,
                    &serde_json::json!({ "name": name, "engine": engine, "versions": lineage, "lint": findings }),
                );
            }
            writeln!(out, "template {name} ({engine}) stored:").map_err(CliError::output)?;
            for v in &lineage {
                writeln!(out, "  {:<10} {}", v.version, v.hash).map_err(CliError::output)?;
            }
            print_findings(out, &findings)
        }
        TemplateCommand::Remeasure {
            name,
            engine,
            scratch,
            scratch_name,
            json,
        } => {
            let registry = open(args).await?;
            let engine = Engine::from(engine);
            let scratch = scratch_url(engine, scratch.as_deref())?;
            let lineage = tenantry_fleet::guard::remeasure_template(
                &registry,
                &name,
                engine,
                &scratch,
                scratch_name.as_deref(),
                timeouts,
            )
            .await
            .map_err(fleet_err)?;
            if json {
                return write_json(
                    out,
                    &serde_json::json!({ "name": name, "engine": engine, "versions": lineage }),
                );
            }
            writeln!(out, "template {name} ({engine}) re-measured:").map_err(CliError::output)?;
            for v in &lineage {
                writeln!(out, "  {:<10} {}", v.version, v.hash).map_err(CliError::output)?;
            }
            Ok(())
        }
        TemplateCommand::Capture {
            url,
            url_env,
            schema,
            name,
            version,
            scratch,
            scratch_name,
            json,
        } => {
            let registry = crate::tenants::open_or_create(args).await?;
            let source = read_url(url.as_deref(), url_env.as_deref())?;
            let scratch = scratch
                .as_deref()
                .map(|s| read_url(Some(s), None))
                .transpose()?;
            let report = tenantry_fleet::capture::capture_template(
                &registry,
                &tenantry_fleet::capture::CaptureRequest {
                    source: &source,
                    schema: schema.as_deref(),
                    name: &name,
                    version: &version,
                    scratch: scratch.as_ref(),
                    scratch_name: scratch_name.as_deref(),
                    timeouts,
                },
            )
            .await
            .map_err(fleet_err)?;
            if json {
                return write_json(out, &report);
            }
            writeln!(
                out,
                "captured {} ({}) version {} from {}: {} statements in {}, proven to hash as the reference ({})",
                report.name,
                report.engine,
                report.version,
                source.redacted(),
                report.statements,
                report.migration,
                report.hash
            )
            .map_err(CliError::output)?;
            for v in &report.lineage {
                writeln!(out, "  {:<10} {}", v.version, v.hash).map_err(CliError::output)?;
            }
            print_findings(out, &report.lint)
        }
        TemplateCommand::List { json } => {
            let registry = open(args).await?;
            let all = registry.list_templates().await?;
            if json {
                return write_json(out, &all);
            }
            if all.is_empty() {
                return writeln!(out, "no templates; add one with `tenantry template add`")
                    .map_err(CliError::output);
            }
            for t in all {
                writeln!(out, "{} ({})", t.name, t.engine).map_err(CliError::output)?;
                for v in t.versions {
                    writeln!(
                        out,
                        "  {:<10} {:>3} migrations  {}",
                        v.version,
                        v.migrations,
                        v.hash.as_deref().unwrap_or("not measured")
                    )
                    .map_err(CliError::output)?;
                }
            }
            Ok(())
        }
        TemplateCommand::Lint {
            dir,
            engine,
            scratch,
            json,
        } => {
            let engine = Engine::from(engine);
            let template = Template::load_dir(&dir, "lint", engine).map_err(fleet_err)?;
            let measured = match scratch {
                Some(s) => measure(&template, &scratch_url(engine, Some(&s))?, timeouts)
                    .await
                    .map_err(fleet_err)?,
                None if engine == Engine::Sqlite => {
                    measure(&template, &scratch_url(engine, None)?, timeouts)
                        .await
                        .map_err(fleet_err)?
                }
                None => Vec::new(),
            };
            let findings = lint(&template, &measured);
            if json {
                write_json(out, &findings)?;
            } else {
                print_findings(out, &findings)?;
            }
            if findings.is_empty() {
                Ok(())
            } else {
                Err(CliError::finding(
                    "lint",
                    format!("{} finding(s) in {}", findings.len(), dir.display()),
                ))
            }
        }
    }
}

fn print_findings(
    out: &mut impl Write,
    findings: &[tenantry_fleet::template::LintFinding],
) -> Result<(), CliError> {
    if findings.is_empty() {
        return writeln!(out, "lint: no findings").map_err(CliError::output);
    }
    writeln!(out, "lint: {} finding(s)", findings.len()).map_err(CliError::output)?;
    for f in findings {
        let mark = match f.kind {
            _ if f.reaches_outside => "blocking",
            tenantry_fleet::template::LintKind::ImplicitCommit => "info",
            _ => "warning",
        };
        writeln!(
            out,
            "  [{mark}: {:?}] {}: {}",
            f.kind, f.location, f.message
        )
        .map_err(CliError::output)?;
    }
    Ok(())
}

pub(crate) fn fleet_err(e: tenantry_fleet::FleetError) -> CliError {
    CliError::new(e.code(), e.to_string())
}

pub async fn guard(
    slug: Option<String>,
    all: bool,
    json: bool,
    args: &RegistryArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let registry = open(args).await?;
    let vault = open_vault(args, &registry).await?;
    let timeouts = Timeouts::default();
    let slugs: Vec<String> = match (slug, all) {
        (Some(s), false) => vec![s],
        (None, true) => registry
            .list_tenants()
            .await?
            .into_iter()
            .filter(|t| t.template.is_some())
            .map(|t| t.slug)
            .collect(),
        _ => return Err(CliError::new("usage", "give a tenant slug or --all".into())),
    };
    let mut reports: Vec<GuardReport> = Vec::new();
    for s in &slugs {
        reports.push(
            guard_tenant(&registry, &vault, s, timeouts)
                .await
                .map_err(fleet_err)?,
        );
    }
    let missing = if all {
        verify_setup(&registry, &vault, timeouts)
            .await
            .map_err(fleet_err)?
    } else {
        Vec::new()
    };
    if json {
        write_json(
            out,
            &serde_json::json!({ "tenants": reports, "missing_schemas": missing }),
        )?;
    } else {
        for r in &reports {
            let what = match (&r.action, &r.error) {
                (_, Some(e)) => format!("FAILED: {e}"),
                (Some(a), None) => a.as_str().to_owned(),
                (None, None) => "nothing done".into(),
            };
            writeln!(out, "{:<24} {:<11} {what}", r.slug, r.status.as_str())
                .map_err(CliError::output)?;
        }
        for m in &missing {
            writeln!(out, "MISSING {:<16} {}", m.slug, m.reason).map_err(CliError::output)?;
        }
    }
    let failed = reports.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 || !missing.is_empty() {
        return Err(CliError::finding(
            "guard_failed",
            format!(
                "{failed} tenant(s) failed to provision, {} schema(s) still missing",
                missing.len()
            ),
        ));
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Customized,
    Failed,
    Outdated,
    Unknown,
    Never,
}

pub struct ScanArgs {
    pub tenants: Vec<String>,
    pub json: bool,
    pub concurrency: usize,
    pub fail_on: Vec<FailOn>,
    pub connect_timeout: u64,
    pub full: bool,
    pub shard: Option<tenantry_fleet::scan::Shard>,
    /// Where to POST an alert about tenants newly customized or failed.
    pub alert_webhook: Option<secrecy::SecretString>,
}

/// How many slugs the one-line summary on stderr names.
const SHOWN_SLUGS: usize = 10;

/// The stderr summary of the tenants a scan flags: the count and the first
/// few slugs, so it stays one readable line at a thousand flagged tenants
/// (the full list is in the report and in `--json`).
fn attention(flagged: &[&str]) -> String {
    format!(
        "{} tenant(s) need attention: {}",
        flagged.len(),
        crate::first_few(
            flagged,
            SHOWN_SLUGS,
            "(every one is in the report above; `--json` for a machine-readable list)"
        )
    )
}

pub async fn scan(a: ScanArgs, args: &RegistryArgs, out: &mut impl Write) -> Result<(), CliError> {
    let registry = open(args).await?;
    let vault = open_vault(args, &registry).await?;
    let options = ScanOptions {
        concurrency: a.concurrency,
        full: a.full,
        tenants: (!a.tenants.is_empty()).then_some(a.tenants),
        shard: a.shard,
        timeouts: Timeouts {
            connect: Duration::from_secs(a.connect_timeout),
            ..Timeouts::default()
        },
    };
    let show_progress = std::io::stderr().is_terminal();
    let cancel = CancelScan::default();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.cancel();
        }
    });
    // A bad webhook URL is refused before the scan, not after an hour of it.
    let webhook = match a.alert_webhook {
        Some(url) => Some(
            tenantry_fleet::alert::Webhook::new(url)
                .map_err(|e| CliError::new(e.code(), e.to_string()))?,
        ),
        None => None,
    };
    let report = run_scan(
        &registry,
        &vault,
        &options,
        &|p| {
            if show_progress {
                eprint!("\rscanning {}/{} tenants", p.done, p.total);
            }
        },
        &cancel,
    )
    .await
    .map_err(fleet_err)?;
    if show_progress {
        eprintln!();
    }
    if a.json {
        write_json(out, &report)?;
    } else {
        print_report(out, &report).map_err(CliError::output)?;
    }
    if let Some(webhook) = &webhook {
        send_alert(&registry, webhook, &report, a.shard).await?;
    }
    let flagged: Vec<&str> = report
        .tenants
        .iter()
        .filter(|t| {
            a.fail_on.iter().any(|f| match f {
                FailOn::Customized => t.status == SchemaStatus::Customized && !t.accepted,
                FailOn::Failed => t.status == SchemaStatus::Failed,
                FailOn::Outdated => t.status == SchemaStatus::Outdated,
                FailOn::Unknown => t.status == SchemaStatus::Unknown,
                FailOn::Never => false,
            })
        })
        .map(|t| t.slug.as_str())
        .collect();
    if report.cancelled {
        return Err(CliError::new(
            "cancelled",
            format!("scan cancelled after {} tenants", report.tenants.len()),
        ));
    }
    if flagged.is_empty() {
        Ok(())
    } else {
        Err(CliError::finding("drift", attention(&flagged)))
    }
}

/// Alerts on tenants the scan found newly customized or failed, and
/// audits the delivery (never the URL beyond its host).
async fn send_alert(
    registry: &tenantry_registry::Registry,
    webhook: &tenantry_fleet::alert::Webhook,
    report: &ScanReport,
    shard: Option<tenantry_fleet::scan::Shard>,
) -> Result<(), CliError> {
    use tenantry_fleet::alert::{alert_for, deliver, RetryPolicy};
    use tenantry_registry::AuditResult;
    let Some(alert) = alert_for(report, shard) else {
        return Ok(());
    };
    let mut policy = RetryPolicy::default();
    // Tests shorten the waits between attempts.
    if let Some(ms) = std::env::var("TENANTRY_ALERT_FIRST_WAIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        policy.first_wait = Duration::from_millis(ms);
    }
    let result = deliver(webhook, &alert, policy).await;
    let (detail, outcome) = match &result {
        Ok(attempts) => (
            format!(
                "{} tenant(s) newly customized or failed, sent to {} ({attempts} attempt(s))",
                alert.total,
                webhook.shown()
            ),
            AuditResult::Ok,
        ),
        Err(e) => (e.to_string(), AuditResult::Failed),
    };
    registry
        .audit(None, "alert", &detail, outcome)
        .await
        .map_err(|e| CliError::new(e.code(), e.to_string()))?;
    result
        .map(|_| ())
        .map_err(|e| CliError::new(e.code(), e.to_string()))
}

fn print_report(out: &mut impl Write, r: &ScanReport) -> std::io::Result<()> {
    let c = r.counts;
    writeln!(
        out,
        "scanned {} tenants in {} ms ({} unchanged since the last check): {} synced, {} outdated, {} customized, {} unknown, {} failed",
        r.tenants.len(),
        r.elapsed_ms,
        r.reused,
        c.synced,
        c.outdated,
        c.customized,
        c.unknown,
        c.failed
    )?;
    for t in r
        .tenants
        .iter()
        .filter(|t| t.status != SchemaStatus::Synced)
    {
        writeln!(
            out,
            "  {:<11} {:<24} {:<28} {}",
            t.status.as_str(),
            t.slug,
            t.place,
            t.reason.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

#[derive(Clone, Copy, ValueEnum)]
pub enum DiffFormat {
    Text,
    Markdown,
    Html,
    Json,
}

pub async fn diff(
    slug: &str,
    format: DiffFormat,
    output: Option<&std::path::Path>,
    args: &RegistryArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    use tenantry_fleet::drift::{diff_tenant, to_html, to_markdown, to_text};
    let registry = open(args).await?;
    let vault = open_vault(args, &registry).await?;
    let d = diff_tenant(&registry, &vault, slug, Timeouts::default())
        .await
        .map_err(fleet_err)?;
    let text = match format {
        DiffFormat::Text => to_text(&d),
        DiffFormat::Markdown => to_markdown(&d),
        DiffFormat::Html => to_html(&d),
        DiffFormat::Json => serde_json::to_string_pretty(&d)
            .map(|j| j + "\n")
            .map_err(|e| CliError::new("output", format!("cannot write JSON: {e}")))?,
    };
    match output {
        Some(path) => std::fs::write(path, &text).map_err(|e| {
            CliError::new("output", format!("cannot write {}: {e}", path.display()))
        })?,
        None => out.write_all(text.as_bytes()).map_err(CliError::output)?,
    }
    if d.diff.is_identical() {
        Ok(())
    } else {
        Err(CliError::finding(
            "drift",
            format!(
                "tenant {slug} differs from {} {}",
                d.template, d.template_version
            ),
        ))
    }
}

pub async fn reset(
    slug: &str,
    confirm: Option<String>,
    plan_only: bool,
    json: bool,
    args: &RegistryArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    use tenantry_fleet::reset::{execute_reset, plan_reset};
    let registry = open(args).await?;
    let vault = open_vault(args, &registry).await?;
    let timeouts = Timeouts::default();
    let plan = plan_reset(&registry, &vault, slug, timeouts)
        .await
        .map_err(fleet_err)?;
    if json && plan_only {
        return write_json(out, &plan);
    }
    if !json {
        writeln!(
            out,
            "reset plan for {} ({} {} on {}, schema {})",
            plan.slug, plan.engine, plan.template_version, plan.server, plan.schema
        )
        .map_err(CliError::output)?;
        writeln!(
            out,
            "  current hash  {}\n  template hash {}\n  backup        {}",
            plan.drift_hash, plan.template_hash, plan.backup
        )
        .map_err(CliError::output)?;
        for o in plan.objects.iter().filter(|o| o.presence != "identical") {
            let rows = o.rows.map(|r| format!("{r} rows")).unwrap_or_default();
            writeln!(
                out,
                "  {:<10} {:<9} {:<32} {rows}",
                o.presence, o.kind, o.name
            )
            .map_err(CliError::output)?;
        }
        let same = plan
            .objects
            .iter()
            .filter(|o| o.presence == "identical")
            .count();
        writeln!(
            out,
            "  ({same} identical objects are dropped and recreated too)"
        )
        .map_err(CliError::output)?;
    }
    if plan_only {
        return Ok(());
    }
    let typed = confirmation(&registry, slug, "reset", confirm).await?;
    let outcome = execute_reset(&registry, &vault, &plan, &typed, timeouts)
        .await
        .map_err(fleet_err)?;
    if json {
        write_json(out, &outcome)?;
    } else {
        writeln!(
            out,
            "reset {}: status {}, backup {}",
            outcome.slug,
            outcome.status.as_str(),
            outcome.backup
        )
        .map_err(CliError::output)?;
    }
    if outcome.status == SchemaStatus::Synced {
        Ok(())
    } else {
        Err(CliError::finding(
            "verify_failed",
            format!(
                "tenant {slug} does not match its template after the reset; the backup is kept"
            ),
        ))
    }
}

/// The slug typed again: from `--confirm`, or asked for on a terminal. With
/// neither, the refusal is audited as `action`.
async fn confirmation(
    registry: &tenantry_registry::Registry,
    slug: &str,
    action: &str,
    confirm: Option<String>,
) -> Result<String, CliError> {
    use std::io::BufRead;
    match confirm {
        Some(c) => Ok(c),
        None if std::io::stdin().is_terminal() => {
            eprint!("Type the tenant slug `{slug}` to {action} it: ");
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map_err(|e| {
                CliError::new("stdin", format!("cannot read the confirmation: {e}"))
            })?;
            Ok(line
                .strip_suffix('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .unwrap_or(&line)
                .to_owned())
        }
        None => {
            registry
                .audit(
                    Some(slug),
                    action,
                    "refused: no --confirm and standard input is not a terminal",
                    tenantry_registry::AuditResult::Refused,
                )
                .await?;
            Err(CliError::new(
                "confirmation_required",
                format!("refusing to {action} {slug} without confirmation: pass --confirm {slug} (standard input is not a terminal)"),
            ))
        }
    }
}

/// What `tenantry sync <slug>` prints and whether it stops at the plan.
pub struct SyncMode {
    pub plan_only: bool,
    pub sql: bool,
    pub json: bool,
    /// Finish a MySQL/MariaDB sync that stopped part-way.
    pub resume: bool,
}

pub async fn sync(
    slug: &str,
    confirm: Option<String>,
    keep: &tenantry_fleet::sync::KeepChoice,
    mode: SyncMode,
    args: &RegistryArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    use tenantry_fleet::sync::{execute_sync, plan_resume, plan_sync};
    let SyncMode {
        plan_only,
        sql,
        json,
        resume,
    } = mode;
    let registry = open(args).await?;
    let vault = open_vault(args, &registry).await?;
    let timeouts = Timeouts::default();
    let plan = if resume {
        plan_resume(&registry, &vault, slug, timeouts).await
    } else {
        plan_sync(&registry, &vault, slug, keep, timeouts).await
    }
    .map_err(fleet_err)?;
    if sql {
        return write!(out, "{}", plan.script()).map_err(CliError::output);
    }
    if json && plan_only {
        return write_json(out, &plan);
    }
    if let (Some(stopped), false) = (&plan.resumes, json) {
        writeln!(
            out,
            "resuming the sync of {slug} that stopped part-way (operation {}); {} steps of it were done:",
            stopped.operation,
            stopped.done.len()
        )
        .map_err(CliError::output)?;
        for line in &stopped.done {
            writeln!(out, "    done: {line}").map_err(CliError::output)?;
        }
    }
    if !json {
        writeln!(
            out,
            "sync plan for {} ({} {} {} on {}, {} {})\n  current hash  {}\n  template hash {}",
            plan.slug,
            plan.engine,
            plan.template,
            plan.template_version,
            plan.server,
            if plan.engine == tenantry_model::Engine::Mysql {
                "database"
            } else {
                "schema"
            },
            plan.schema,
            plan.drift_hash,
            plan.template_hash
        )
        .map_err(CliError::output)?;
        if plan.steps.is_empty() && plan.resumes.is_some() {
            writeln!(out, "  no step is left: applying checks the schema against the template and closes the stopped sync")
                .map_err(CliError::output)?;
        } else if plan.steps.is_empty() {
            writeln!(out, "  nothing to do: the tenant matches its template")
                .map_err(CliError::output)?;
        }
        for (i, s) in plan.steps.iter().enumerate() {
            let count = s.counted().map(|c| format!(" [{c}]")).unwrap_or_default();
            writeln!(
                out,
                "  {:>3}. {:<11} {}: {}{count}",
                i + 1,
                s.class.as_str(),
                s.object,
                s.action
            )
            .map_err(CliError::output)?;
        }
        let blockers = plan.blockers();
        if !blockers.is_empty() {
            writeln!(out, "  cannot be applied as it is ({} blocking steps): reset the tenant, accept those differences, or fix the rows and plan again", blockers.len())
                .map_err(CliError::output)?;
        }
    }
    if plan_only || (plan.steps.is_empty() && plan.resumes.is_none()) {
        return Ok(());
    }
    let typed = confirmation(&registry, slug, "sync", confirm).await?;
    let outcome = execute_sync(&registry, &vault, &plan, &typed, timeouts)
        .await
        .map_err(fleet_err)?;
    if json {
        write_json(out, &outcome)
    } else {
        writeln!(
            out,
            "synced {}: status {}, {} steps, removed data kept in: {}",
            outcome.slug,
            outcome.status.as_str(),
            outcome.applied.len(),
            outcome.quarantine.as_deref().unwrap_or("nothing removed")
        )
        .map_err(CliError::output)
    }
}

/// The recorded statuses a fleet sync plan can select.
#[derive(Clone, Copy, ValueEnum)]
pub enum SyncStatus {
    Customized,
    Outdated,
    Failed,
}

pub async fn sync_plan_fleet(
    status: SyncStatus,
    json: bool,
    args: &RegistryArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let registry = open(args).await?;
    let vault = open_vault(args, &registry).await?;
    let status = match status {
        SyncStatus::Customized => SchemaStatus::Customized,
        SyncStatus::Outdated => SchemaStatus::Outdated,
        SyncStatus::Failed => SchemaStatus::Failed,
    };
    let plan = tenantry_fleet::sync::plan_fleet(&registry, &vault, status, Timeouts::default())
        .await
        .map_err(fleet_err)?;
    if json {
        return write_json(out, &plan);
    }
    let tenants: usize = plan.groups.iter().map(|g| g.tenants.len()).sum();
    writeln!(
        out,
        "{tenants} {status} PostgreSQL and SQLite tenants in {} groups with identical plans{}",
        plan.groups.len(),
        if plan.unplanned.is_empty() {
            String::new()
        } else {
            format!(", {} not planned", plan.unplanned.len())
        }
    )
    .map_err(CliError::output)?;
    for (i, g) in plan.groups.iter().enumerate() {
        writeln!(
            out,
            "\ngroup {}: {} tenants on {} {}, hash {}\n  tenants: {}",
            i + 1,
            g.tenants.len(),
            g.template,
            g.template_version,
            g.drift_hash,
            g.tenants.join(", ")
        )
        .map_err(CliError::output)?;
        for (n, s) in g.steps.iter().enumerate() {
            writeln!(
                out,
                "  {:>3}. {:<11} {}: {}",
                n + 1,
                s.class.as_str(),
                s.object,
                s.action
            )
            .map_err(CliError::output)?;
        }
        for b in &g.blocked {
            writeln!(out, "  blocked for {}: {}", b.slug, b.reasons.join("; "))
                .map_err(CliError::output)?;
        }
        writeln!(
            out,
            "  apply to the group: tenantry sync --group {} --confirm {}",
            g.drift_hash, g.drift_hash
        )
        .map_err(CliError::output)?;
    }
    for u in &plan.unplanned {
        writeln!(out, "\nnot planned: {}: {}", u.slug, u.error).map_err(CliError::output)?;
    }
    Ok(())
}

pub async fn sync_group(
    group: &str,
    confirm: Option<String>,
    json: bool,
    args: &RegistryArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let registry = open(args).await?;
    let vault = open_vault(args, &registry).await?;
    let Some(typed) = confirm else {
        return Err(CliError::new(
            "confirmation_required",
            format!("refusing to sync a group without confirmation: review `tenantry sync --status customized --plan`, then pass --confirm {group}"),
        ));
    };
    let members =
        tenantry_fleet::sync::sync_group(&registry, &vault, group, &typed, Timeouts::default())
            .await
            .map_err(fleet_err)?;
    if json {
        write_json(out, &members)?;
    } else {
        if members.is_empty() {
            writeln!(
                out,
                "no PostgreSQL or SQLite tenant has the recorded hash {group}; scan first"
            )
            .map_err(CliError::output)?;
        }
        for m in &members {
            match (&m.outcome, &m.error) {
                (Some(o), _) => writeln!(
                    out,
                    "{}: synced, removed data kept in: {}",
                    m.slug,
                    o.quarantine.as_deref().unwrap_or("nothing removed")
                ),
                (None, e) => writeln!(
                    out,
                    "{}: not synced: {}",
                    m.slug,
                    e.as_deref().unwrap_or("")
                ),
            }
            .map_err(CliError::output)?;
        }
    }
    let failed = members.iter().filter(|m| m.outcome.is_none()).count();
    if failed == 0 {
        Ok(())
    } else {
        Err(CliError::finding(
            "sync_incomplete",
            format!("{failed} of {} tenants of the group were not synced; each one's reason is listed above and in the audit log", members.len()),
        ))
    }
}

#[derive(Subcommand)]
pub enum BackupCommand {
    /// List backups (newest first).
    List {
        #[arg(long)]
        tenant: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Put a backup back in place; the tenant's current objects become a new backup.
    Restore {
        id: i64,
        /// The tenant's slug, typed exactly.
        #[arg(long)]
        confirm: String,
    },
    /// Find quarantines and `.bak` files named like a tenant's backups that
    /// the registry does not list (left by a run that died before recording
    /// them).
    Discover {
        #[arg(long)]
        json: bool,
    },
    /// Record an unrecorded backup that `backup discover` found, so that
    /// `backup list`, restore and purge see it.
    Adopt {
        slug: String,
        /// The location exactly as `backup discover` prints it.
        location: String,
    },
    /// Delete a backup for good.
    Purge {
        id: i64,
        /// The tenant's slug, typed exactly.
        #[arg(long)]
        confirm: String,
    },
}

pub async fn backup(
    cmd: BackupCommand,
    args: &RegistryArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let registry = open(args).await?;
    match cmd {
        BackupCommand::List { tenant, json } => {
            let all = registry.backups(tenant.as_deref()).await?;
            if json {
                return write_json(out, &all);
            }
            if all.is_empty() {
                return writeln!(out, "no backups").map_err(CliError::output);
            }
            for b in all {
                let state = if b.purged_at.is_some() {
                    " (gone: purged or restored)"
                } else {
                    ""
                };
                writeln!(
                    out,
                    "{:>4} {:<20} {} {}{state}",
                    b.id, b.tenant_slug, b.created_at, b.location
                )
                .map_err(CliError::output)?;
            }
            Ok(())
        }
        BackupCommand::Restore { id, confirm } => {
            let vault = open_vault(args, &registry).await?;
            let displaced = tenantry_fleet::backup::restore_backup(
                &registry,
                &vault,
                id,
                &confirm,
                Timeouts::default(),
            )
            .await
            .map_err(fleet_err)?;
            writeln!(
                out,
                "restored backup {id}; the objects it replaced are kept in {displaced}"
            )
            .map_err(CliError::output)
        }
        BackupCommand::Discover { json } => {
            let vault = open_vault(args, &registry).await?;
            let found =
                tenantry_fleet::backup::discover_orphans(&registry, &vault, Timeouts::default())
                    .await
                    .map_err(fleet_err)?;
            if json {
                return write_json(out, &found);
            }
            if found.is_empty() {
                return writeln!(out, "no unrecorded backups").map_err(CliError::output);
            }
            for o in &found {
                writeln!(
                    out,
                    "{:<20} {}",
                    o.tenant_slug,
                    tenantry_registry::escape_controls(&o.location)
                )
                .map_err(CliError::output)?;
            }
            writeln!(
                out,
                "record one with `tenantry backup adopt SLUG \"LOCATION\"`"
            )
            .map_err(CliError::output)
        }
        BackupCommand::Adopt { slug, location } => {
            let vault = open_vault(args, &registry).await?;
            tenantry_fleet::backup::adopt_orphan(
                &registry,
                &vault,
                &slug,
                &location,
                Timeouts::default(),
            )
            .await
            .map_err(fleet_err)?;
            writeln!(out, "recorded {location} as a backup of {slug}").map_err(CliError::output)
        }
        BackupCommand::Purge { id, confirm } => {
            let vault = open_vault(args, &registry).await?;
            tenantry_fleet::backup::purge_backup(
                &registry,
                &vault,
                id,
                &confirm,
                Timeouts::default(),
            )
            .await
            .map_err(fleet_err)?;
            writeln!(out, "purged backup {id}").map_err(CliError::output)
        }
    }
}

pub async fn accept(
    slug: &str,
    note: &str,
    args: &RegistryArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let registry = open(args).await?;
    let vault = open_vault(args, &registry).await?;
    let hash = tenantry_fleet::drift::accept_customisation(
        &registry,
        &vault,
        slug,
        note,
        Timeouts::default(),
    )
    .await
    .map_err(fleet_err)?;
    writeln!(
        out,
        "accepted {hash} as the baseline of {slug}; scans will not alert while it stays unchanged"
    )
    .map_err(CliError::output)
}

pub async fn upgrade(
    slug: &str,
    to: &str,
    allow_customized: bool,
    json: bool,
    args: &RegistryArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let registry = open(args).await?;
    let vault = open_vault(args, &registry).await?;
    let o = tenantry_fleet::upgrade::upgrade_tenant(
        &registry,
        &vault,
        slug,
        to,
        allow_customized,
        Timeouts::default(),
    )
    .await
    .map_err(fleet_err)?;
    if json {
        write_json(out, &o)?;
    } else {
        writeln!(
            out,
            "upgraded {slug} {} → {}: applied {}; status {}",
            o.from,
            o.to,
            o.applied.join(", "),
            o.status.as_str()
        )
        .map_err(CliError::output)?;
        if let Some(w) = &o.warning {
            writeln!(out, "warning: {w}").map_err(CliError::output)?;
        }
    }
    Ok(())
}

pub async fn repair(
    slug: &str,
    json: bool,
    args: &RegistryArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let registry = open(args).await?;
    let vault = open_vault(args, &registry).await?;
    let o = tenantry_fleet::repair::repair_tenant(&registry, &vault, slug, Timeouts::default())
        .await
        .map_err(fleet_err)?;
    if json {
        return write_json(out, &o);
    }
    writeln!(out, "repaired {slug}: status {}", o.status.as_str()).map_err(CliError::output)?;
    for c in &o.created {
        writeln!(out, "  created      {c}").map_err(CliError::output)?;
    }
    for n in &o.not_repaired {
        writeln!(out, "  left alone   {n}").map_err(CliError::output)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attention_line_names_the_first_slugs_and_counts_the_rest() {
        assert_eq!(attention(&["a", "b"]), "2 tenant(s) need attention: a, b");
        let many: Vec<String> = (0..1000).map(|i| format!("t{i:04}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let line = attention(&many);
        assert!(
            line.starts_with("1000 tenant(s) need attention: t0000, t0001,"),
            "{line}"
        );
        assert!(line.contains("t0009 and 990 more"), "{line}");
        assert!(!line.contains("t0010"), "{line}");
        assert!(line.len() < 300, "{line}");
    }
}
