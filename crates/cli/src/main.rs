//! `tenantry`: the headless command over the same engine as the console.
//!
//! Exit codes: 0 success; 1 the operation failed (unreachable server, bad
//! URL, missing schema, locked keyring…; one line on stderr); 2 bad usage;
//! 3 the command ran and found a problem (an unhealthy tenant, drift listed
//! in `scan --fail-on`, a guard that failed, lint findings).

mod drift;
mod inspect;
mod members;
mod tenants;

/// A fleet scan builds and drops millions of small strings and rows; the
/// system allocator spent a fifth of the scan's client time consolidating
/// free lists, jemalloc about a quarter less time overall (see the
/// scan_fleet benchmark). Not on MSVC, which jemalloc does not support.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tenantry_introspect::IntrospectError;
use tenantry_registry::RegistryError;

#[derive(Parser)]
#[command(
    name = "tenantry",
    version,
    about = "Schema drift tooling for multi-tenant database fleets"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the registry is and which keyring entry holds its key.
#[derive(clap::Args, Clone)]
pub struct RegistryArgs {
    /// The registry: a SQLite file (default: the console's, in the user data
    /// directory) or a team's PostgreSQL database, `postgres://…` (give its
    /// password by `TENANTRY_REGISTRY` or PGPASSWORD, not on the command line).
    #[arg(long, env = "TENANTRY_REGISTRY", global = true)]
    registry: Option<PathBuf>,
    /// The keyring service name the data key is stored under.
    #[arg(long, env = "TENANTRY_KEYRING_SERVICE", global = true, hide = true)]
    keyring_service: Option<String>,
    /// Which OS key store holds the data key: `secret-service` (the desktop
    /// keyring over D-Bus, the default on Linux) or `keyutils` (the Linux
    /// kernel keyring, for servers with no session bus; it forgets keys at
    /// reboot, see `key export`). Chosen when the registry's key is made and
    /// remembered by the registry; a different store is refused.
    #[arg(long, env = "TENANTRY_KEY_STORE", global = true, value_parser = parse_key_store)]
    key_store: Option<tenantry_vault::KeyStoreKind>,
    /// On a machine with no OS keyring (a Kubernetes CronJob, a container):
    /// this member's private key, in a file the platform's secret store
    /// mounts (mode 0400 or 0440; made by `tenantry member key --new-file`).
    /// The member opens the data key wrapped for them; nothing is written
    /// to the file.
    #[arg(
        long,
        env = "TENANTRY_MEMBER_KEY_FILE",
        global = true,
        conflicts_with = "key_store"
    )]
    member_key_file: Option<PathBuf>,
}

fn parse_key_store(name: &str) -> Result<tenantry_vault::KeyStoreKind, String> {
    let available = tenantry_vault::KeyStoreKind::available();
    tenantry_vault::KeyStoreKind::parse(name)
        .filter(|k| available.contains(k))
        .ok_or_else(|| {
            format!(
                "`{name}` is not a key store on this system; choose one of: {}",
                available
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
}

#[derive(Subcommand)]
enum Command {
    /// Print the root schema hash of one tenant on one line.
    Hash(inspect::Target),
    /// Print the canonical schema model with per-object hashes.
    Inspect {
        #[command(flatten)]
        target: inspect::Target,
        /// Print JSON instead of a readable summary.
        #[arg(long)]
        json: bool,
    },
    /// Manage the registry's tenants.
    Tenant {
        #[command(subcommand)]
        command: tenants::TenantCommand,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Manage the data key that encrypts connection strings.
    Key {
        #[command(subcommand)]
        command: tenants::KeyCommand,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// The members of a shared registry, each opening it with a key pair of
    /// their own (the data key wrapped for each member).
    Member {
        #[command(subcommand)]
        command: members::MemberCommand,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Manage templates: measured, versioned migrations.
    Template {
        #[command(subcommand)]
        command: drift::TemplateCommand,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Run the schema guard: create missing databases/schemas and apply the
    /// template where a schema is empty; with --all, also verify the setup.
    Guard {
        /// The tenant's slug.
        #[arg(conflicts_with = "all", required_unless_present = "all")]
        slug: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Measure every tenant (or some) and classify its drift; for nightly runs.
    /// Exits 3 when a tenant has a status listed in --fail-on.
    Scan {
        /// Only this tenant (repeatable).
        #[arg(long = "tenant")]
        tenants: Vec<String>,
        #[arg(long)]
        json: bool,
        /// Batches (databases or servers) read at once.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
        concurrency: u16,
        /// Statuses that make the run exit 3 (`never` to always exit 0).
        #[arg(
            long,
            value_enum,
            value_delimiter = ',',
            default_value = "customized,failed"
        )]
        fail_on: Vec<drift::FailOn>,
        /// Seconds to wait for each server to accept a connection.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        connect_timeout: u64,
        /// Read every schema, even those whose catalog is unchanged since the last check.
        #[arg(long)]
        full: bool,
        /// Scan only shard I of N (e.g. 2/4): the fleet is split by server,
        /// the same way on every machine, so N machines sharing one registry
        /// scan it in parallel, each server by one of them.
        #[arg(long, value_name = "I/N", env = "TENANTRY_SCAN_SHARD")]
        shard: Option<tenantry_fleet::scan::Shard>,
        /// POST an alert (Slack-compatible JSON) about tenants this scan
        /// finds newly customized or failed to this webhook, with retries.
        /// Prefer the environment variable: a URL on the command line is
        /// visible to other users of the machine.
        #[arg(
            long,
            value_name = "URL",
            env = "TENANTRY_ALERT_WEBHOOK",
            hide_env_values = true
        )]
        alert_webhook: Option<String>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Compare a tenant with its template version, table by table. Exits 3
    /// when they differ.
    Diff {
        /// The tenant's slug.
        slug: String,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: drift::DiffFormat,
        /// Shorthand for --format json.
        #[arg(long)]
        json: bool,
        /// Write the report to this file instead of standard output.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Reset a tenant to its template version: plan (what is dropped, with
    /// row counts), backup, typed confirmation, rebuild, verification.
    Reset {
        slug: String,
        /// The slug typed again; required when standard input is not a terminal.
        #[arg(long)]
        confirm: Option<String>,
        /// Show the plan and stop.
        #[arg(long)]
        plan: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Sync a customized PostgreSQL or SQLite tenant back to its template version
    /// without emptying it: plan (ordered steps classified safe, checked
    /// with the rows that would fail, destructive with the rows set aside,
    /// manual), typed confirmation, one transaction, verification.
    ///
    /// For the fleet: `--status customized --plan` plans every such tenant,
    /// grouped by identical plans; `--group <hash> --confirm <hash>` applies
    /// one group's plan to each of its tenants.
    Sync {
        #[arg(required_unless_present_any = ["status", "group"], conflicts_with_all = ["status", "group"])]
        slug: Option<String>,
        /// Plan every tenant with this recorded status, grouped.
        #[arg(long, value_enum, requires = "plan", conflicts_with = "group")]
        status: Option<drift::SyncStatus>,
        /// Apply to every tenant whose recorded hash is this one.
        #[arg(long)]
        group: Option<String>,
        /// The slug typed again; required when standard input is not a terminal.
        #[arg(long)]
        confirm: Option<String>,
        /// Show the plan and stop.
        #[arg(long)]
        plan: bool,
        /// Print the plan as one SQL script (for running by hand) and stop.
        #[arg(long, conflicts_with = "json")]
        sql: bool,
        /// Keep this difference (as the plan names it, `table custom_reports`,
        /// or one column, `column users.badge`; repeatable): it is not
        /// undone, and becomes the tenant's accepted customisation. Needs --note.
        #[arg(long, value_name = "OBJECT", requires = "note")]
        keep: Vec<String>,
        /// Why the kept differences stay (recorded with the acceptance).
        #[arg(long)]
        note: Option<String>,
        /// Finish a MySQL/MariaDB sync that stopped part-way: plan what is
        /// left from the tenant as it now is, keeping what it kept, into
        /// the same quarantine.
        #[arg(long, conflicts_with_all = ["keep", "note", "status", "group"])]
        resume: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Accept a tenant's current customisation as its baseline, with a note,
    /// so scans stop alerting on it while it stays unchanged.
    Accept {
        slug: String,
        /// Why the customisation is accepted.
        #[arg(long)]
        note: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Create the template objects a tenant is missing; customisations stay.
    Repair {
        slug: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Upgrade a tenant to a newer template version, after a drift check.
    Upgrade {
        slug: String,
        /// The template version to upgrade to.
        #[arg(long)]
        to: String,
        /// Upgrade even when the tenant is customized (its customisation stays).
        #[arg(long)]
        allow_customized: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// The backups taken before resets: list, restore, purge.
    Backup {
        #[command(subcommand)]
        command: drift::BackupCommand,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Destructive operations as the journal recorded them; those that never
    /// finished (killed, or the registry was lost mid-way) and their backups.
    Operations {
        #[command(subcommand)]
        command: Option<tenants::OperationsCommand>,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// The audit log: check its hash chain.
    Audit {
        #[command(subcommand)]
        command: tenants::AuditCommand,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Check a tenant: connection info, connect, query, server version, schema, cache.
    Health {
        /// The tenant's slug.
        slug: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

/// A failure, as the user sees it: `tenantry: error[code]: message`.
/// The first `n` of `items`, joined with commas, then ` and M more
/// {hint}` when there are more: a list that stays one readable line at a
/// thousand entries.
pub fn first_few<S: AsRef<str>>(items: &[S], n: usize, hint: &str) -> String {
    let mut text = items[..items.len().min(n)]
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > n {
        text.push_str(&format!(" and {} more {hint}", items.len() - n));
    }
    text
}

/// The code of a [`CliError`] for output whose reader has gone.
const CLOSED_PIPE: &str = "closed_pipe";

pub struct CliError {
    code: &'static str,
    message: String,
    exit: u8,
}

impl CliError {
    pub fn new(code: &'static str, message: String) -> Self {
        Self {
            code,
            message,
            exit: 1,
        }
    }

    /// The command ran and found a problem (exit 3).
    pub fn finding(code: &'static str, message: String) -> Self {
        Self {
            code,
            message,
            exit: 3,
        }
    }

    /// Output could not be written. A reader that stopped reading
    /// (`tenantry tenant list | head`) is no error: see [`main`].
    pub fn output(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return Self::new(CLOSED_PIPE, String::new());
        }
        Self::new("output", format!("cannot write output: {e}"))
    }
}

impl From<IntrospectError> for CliError {
    fn from(e: IntrospectError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

impl From<RegistryError> for CliError {
    fn from(e: RegistryError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

pub fn write_json(out: &mut impl Write, value: &impl serde::Serialize) -> Result<(), CliError> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(|e| match e.io_error_kind() {
        Some(kind) => CliError::output(std::io::Error::from(kind)),
        None => CliError::new("output", format!("cannot write JSON: {e}")),
    })?;
    writeln!(out).map_err(CliError::output)
}

fn main() -> ExitCode {
    // Before any key or connection string is in memory: no core dumps.
    tenantry_vault::harden_process();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tenantry_fleet::alert::SILENCED_LOG_TARGETS.iter().fold(
                tracing_subscriber::EnvFilter::try_from_env("TENANTRY_LOG")
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
                |filter, target| match format!("{target}=off").parse() {
                    Ok(off) => filter.add_directive(off),
                    Err(_) => filter,
                },
            ),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tenantry: error[runtime]: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`| head`): what it wanted
        // was written; stop quietly, as other command-line tools do.
        Err(e) if e.code == CLOSED_PIPE => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tenantry: error[{}]: {}", e.code, e.message);
            ExitCode::from(e.exit)
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Hash(target) => inspect::hash(&target, &mut out).await,
        Command::Inspect { target, json } => inspect::inspect(&target, json, &mut out).await,
        Command::Tenant { command, registry } => {
            tenants::tenant(command, &registry, &mut out).await
        }
        Command::Key { command, registry } => tenants::key(command, &registry, &mut out).await,
        Command::Member { command, registry } => {
            members::member(command, &registry, &mut out).await
        }
        Command::Audit { command, registry } => tenants::audit(command, &registry, &mut out).await,
        Command::Operations {
            command,
            json,
            registry,
        } => tenants::operations(command, json, &registry, &mut out).await,
        Command::Health {
            slug,
            json,
            registry,
        } => tenants::health(&slug, json, &registry, &mut out).await,
        Command::Diff {
            slug,
            format,
            json,
            output,
            registry,
        } => {
            let format = if json {
                drift::DiffFormat::Json
            } else {
                format
            };
            drift::diff(&slug, format, output.as_deref(), &registry, &mut out).await
        }
        Command::Reset {
            slug,
            confirm,
            plan,
            json,
            registry,
        } => drift::reset(&slug, confirm, plan, json, &registry, &mut out).await,
        Command::Sync {
            slug,
            status,
            group,
            confirm,
            plan,
            sql,
            keep,
            note,
            resume,
            json,
            registry,
        } => match (slug, status, group) {
            (Some(slug), _, _) => {
                let keep = tenantry_fleet::sync::KeepChoice {
                    objects: keep,
                    note: note.unwrap_or_default(),
                };
                let mode = drift::SyncMode {
                    plan_only: plan || sql,
                    sql,
                    json,
                    resume,
                };
                drift::sync(&slug, confirm, &keep, mode, &registry, &mut out).await
            }
            (None, Some(status), _) => {
                drift::sync_plan_fleet(status, json, &registry, &mut out).await
            }
            (None, None, Some(group)) => {
                drift::sync_group(&group, confirm, json, &registry, &mut out).await
            }
            (None, None, None) => Err(CliError::new(
                "usage",
                "name a tenant, or pass --status with --plan, or --group".to_owned(),
            )),
        },
        Command::Accept {
            slug,
            note,
            registry,
        } => drift::accept(&slug, &note, &registry, &mut out).await,
        Command::Upgrade {
            slug,
            to,
            allow_customized,
            json,
            registry,
        } => drift::upgrade(&slug, &to, allow_customized, json, &registry, &mut out).await,
        Command::Repair {
            slug,
            json,
            registry,
        } => drift::repair(&slug, json, &registry, &mut out).await,
        Command::Backup { command, registry } => drift::backup(command, &registry, &mut out).await,
        Command::Template { command, registry } => {
            drift::template(command, &registry, &mut out).await
        }
        Command::Guard {
            slug,
            all,
            json,
            registry,
        } => drift::guard(slug, all, json, &registry, &mut out).await,
        Command::Scan {
            tenants,
            json,
            concurrency,
            fail_on,
            connect_timeout,
            full,
            shard,
            alert_webhook,
            registry,
        } => {
            let a = drift::ScanArgs {
                tenants,
                json,
                concurrency: usize::from(concurrency),
                fail_on,
                connect_timeout,
                full,
                shard,
                alert_webhook: alert_webhook.map(secrecy::SecretString::from),
            };
            drift::scan(a, &registry, &mut out).await
        }
    }
}
