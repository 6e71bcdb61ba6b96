//! `tenantry tenant …`, `tenantry key …` and `tenantry health`: the registry
//! from the command line. Connection strings are accepted from standard input
//! or an environment variable so they stay out of shell history and `ps`, and
//! are only ever shown redacted.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use tenantry_introspect::{ConnectionUrl, Timeouts};
use tenantry_registry::health::check_tenant;
use tenantry_registry::import::{read_file, rows_from_query, ImportMode, ImportReport};
use tenantry_registry::pools::{PoolSettings, TenantPools};
use tenantry_registry::RegistryError;
use tenantry_registry::{
    default_registry_path, AuditEntry, NewTenant, Registry, RegistryPlace, TenantRecord,
};
use tenantry_vault::{KeyStore, KeyStoreKind, MemberKeyFile, OsKeyring, Vault, DEFAULT_SERVICE};

use crate::{write_json, CliError, RegistryArgs};

#[derive(Subcommand)]
pub enum TenantCommand {
    /// Register a tenant; its connection string is stored encrypted.
    Add {
        /// Unique slug: a-z, 0-9, '-' and '_' (a database or schema name such as pgt_0001 works).
        slug: String,
        /// Connection URL, or `-` to read it from standard input.
        #[arg(long, conflicts_with = "url_env", required_unless_present = "url_env")]
        url: Option<String>,
        /// Name of an environment variable holding the connection URL.
        #[arg(long)]
        url_env: Option<String>,
        /// Display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
        /// PostgreSQL schema for a schema-per-tenant tenant (or the MySQL database).
        #[arg(long)]
        schema: Option<String>,
        #[arg(long)]
        template: Option<String>,
        #[arg(long)]
        template_version: Option<String>,
        /// A domain the tenant answers on (repeatable).
        #[arg(long = "domain")]
        domains: Vec<String>,
        #[arg(long, default_value = "")]
        notes: String,
        #[arg(long)]
        json: bool,
    },
    /// List registered tenants.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one tenant and its recent audit entries.
    Show {
        slug: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a tenant from the registry (its database is not touched).
    Remove {
        slug: String,
        /// The slug again, typed exactly, to confirm.
        #[arg(long)]
        confirm: Option<String>,
    },
    /// Import tenants from a CSV/JSON file or from a query on the central database.
    ///
    /// Columns (CSV header, JSON keys, or the query's result columns), by
    /// name, in any order:
    ///   slug              required; a-z, 0-9, '-' and '_' (pgt_0001 works)
    ///   url               required in a file (also `connection_url`); from a
    ///                     query, the --pattern fills it from the row's columns
    ///   display_name      or `name`
    ///   schema            the PostgreSQL schema of a schema-per-tenant tenant
    ///   template          the template it was provisioned from
    ///   template_version  or `version`
    ///   domains           or `domain`: separated by commas or spaces (in JSON
    ///                     also an array)
    ///   notes
    ///   revision          the tenant's revision the row was made from
    ///                     (`tenant show --json`): if someone changed the
    ///                     tenant since, the import is refused
    /// Nothing is written unless every row is valid; the connection strings
    /// are stored encrypted and never printed.
    #[command(verbatim_doc_comment)]
    Import {
        /// A .csv or .json file.
        #[arg(conflicts_with = "from_query", required_unless_present = "from_query")]
        file: Option<PathBuf>,
        /// A SELECT returning at least `slug` plus the pattern's columns.
        #[arg(long, requires = "source")]
        from_query: Option<String>,
        /// The central database's URL (or `-` for standard input).
        #[arg(long)]
        source: Option<String>,
        /// The tenants' URL pattern, e.g. `postgres://app@db1/{db_name}`, or
        /// `-` to read it from standard input (after the source, if that is
        /// `-` too). A pattern with a password belongs in stdin or
        /// --pattern-env: a command line is visible to every user in `ps`.
        #[arg(long, conflicts_with = "pattern_env")]
        pattern: Option<String>,
        /// Name of an environment variable holding the URL pattern.
        #[arg(long)]
        pattern_env: Option<String>,
        /// What a slug the registry already has means: `add` refuses the
        /// import, `skip-existing` leaves that tenant alone, `upsert`
        /// updates it where the source differs (an empty field keeps its
        /// value). Tenants the source does not list are reported, never
        /// removed.
        #[arg(long, value_enum, default_value = "add")]
        mode: ModeArg,
        /// Report what the import would do (n new, n changed, n unchanged,
        /// n missing from the source) and write nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
}

/// `tenant import --mode`.
#[derive(Clone, Copy, ValueEnum)]
pub enum ModeArg {
    Add,
    SkipExisting,
    Upsert,
}

impl From<ModeArg> for ImportMode {
    fn from(m: ModeArg) -> Self {
        match m {
            ModeArg::Add => ImportMode::Add,
            ModeArg::SkipExisting => ImportMode::SkipExisting,
            ModeArg::Upsert => ImportMode::Upsert,
        }
    }
}

/// How many slugs a line of the import's summary names.
const LISTED: usize = 20;

fn listed(slugs: &[String]) -> String {
    crate::first_few(slugs, LISTED, "(see --json)")
}

fn print_import(out: &mut impl Write, r: &ImportReport) -> std::io::Result<()> {
    let verb = if r.dry_run {
        "would import"
    } else {
        "imported"
    };
    writeln!(out, "{verb} (mode {}): {}", r.mode.as_str(), r.summary())?;
    if !r.added.is_empty() {
        writeln!(out, "  new:       {}", listed(&r.added))?;
    }
    if !r.changed.is_empty() {
        let changed: Vec<String> = r
            .changed
            .iter()
            .map(|c| format!("{} ({})", c.slug, c.fields.join(", ")))
            .collect();
        writeln!(out, "  changed:   {}", listed(&changed))?;
    }
    if !r.skipped.is_empty() {
        writeln!(out, "  skipped:   {}", listed(&r.skipped))?;
    }
    if !r.missing_from_source.is_empty() {
        writeln!(
            out,
            "  missing from the source (kept; remove one with `tenantry tenant remove SLUG`): {}",
            listed(&r.missing_from_source)
        )?;
    }
    if r.dry_run {
        writeln!(out, "nothing was written (dry run)")?;
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Re-encrypt every connection string under a new data key.
    Rotate {
        #[arg(long)]
        json: bool,
    },
    /// Show where the data key is kept and its id.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Write the data key, sealed under a passphrase (Argon2id and
    /// AES-256-GCM), to an escrow file: the way back when the keyring loses
    /// it (the kernel keyring at every reboot, a desktop keyring with its
    /// profile). Keep the file and the passphrase apart. Export again after
    /// each `key rotate`.
    ///
    /// The passphrase is asked twice on the terminal, or read as one line of
    /// standard input with --passphrase-stdin; at least 12 characters.
    Export {
        /// The escrow file to write; an existing file is never overwritten.
        #[arg(long)]
        to: PathBuf,
        /// Read the passphrase from a line of standard input.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Load the data key from an escrow file into the key store (`--key-store`,
    /// else the registry's): after a reboot emptied the kernel keyring, on a
    /// new machine, or to move the key to another store. The key must be
    /// this registry's current key; the store becomes the registry's.
    Import {
        /// The escrow file `key export` wrote.
        #[arg(long)]
        from: PathBuf,
        /// Read the passphrase from a line of standard input.
        #[arg(long)]
        passphrase_stdin: bool,
    },
}

/// The escrow passphrase: one line of standard input, or asked on the
/// terminal without echo (twice when `confirm`, for a new file).
fn read_passphrase(stdin: bool, confirm: bool) -> Result<secrecy::SecretString, CliError> {
    use secrecy::ExposeSecret;
    use std::io::IsTerminal;
    if stdin {
        return read_secret(Some("-"), None, &PASSPHRASE_INPUT);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::new(
            "usage",
            "standard input is not a terminal: give the passphrase on standard input with --passphrase-stdin".into(),
        ));
    }
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map(secrecy::SecretString::from)
            .map_err(|e| CliError::new("stdin", format!("cannot read the passphrase: {e}")))
    };
    let first = ask("escrow passphrase: ")?;
    if confirm {
        let again = ask("the same passphrase again: ")?;
        if again.expose_secret() != first.expose_secret() {
            return Err(CliError::new(
                "passphrase_mismatch",
                "the two passphrases differ; nothing was written".into(),
            ));
        }
    }
    Ok(first)
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's hash chain: every row must match its hash and
    /// follow the row before it. Exits 3 when the chain is broken.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Print the newest audit rows: who did what, when, with what result.
    Log {
        /// Only this tenant's rows.
        #[arg(long)]
        tenant: Option<String>,
        /// How many rows, newest first.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

pub async fn audit(
    cmd: AuditCommand,
    args: &RegistryArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let registry = open(args).await?;
    let json = match cmd {
        AuditCommand::Verify { json } => json,
        AuditCommand::Log {
            tenant,
            limit,
            json,
        } => {
            let rows = registry.audit_log(tenant.as_deref(), limit).await?;
            if json {
                return write_json(out, &rows);
            }
            for r in &rows {
                writeln!(
                    out,
                    "{}  {:<7} {:<18} {:<14} {}{}  {}",
                    r.at,
                    r.result.as_str(),
                    r.action,
                    r.tenant_slug.as_deref().unwrap_or("-"),
                    r.actor,
                    r.host
                        .as_deref()
                        .map(|h| format!("@{h}"))
                        .unwrap_or_default(),
                    tenantry_registry::escape_controls(&r.detail)
                )
                .map_err(CliError::output)?;
            }
            return Ok(());
        }
    };
    let report = registry.verify_audit().await?;
    if json {
        write_json(out, &report)?;
    } else {
        writeln!(
            out,
            "audit log of {}: {} rows chained and intact{}{}",
            registry.shown(),
            report.chained,
            if report.unchained > 0 {
                format!(", {} older rows from before the chain", report.unchained)
            } else {
                String::new()
            },
            report
                .head
                .as_deref()
                .map(|h| format!(
                    "\nhead {h} (note it down: a log cut short after it would end elsewhere)"
                ))
                .unwrap_or_default()
        )
        .map_err(CliError::output)?;
    }
    match report.broken {
        None => Ok(()),
        Some(b) => Err(CliError::finding(
            "audit_chain_broken",
            format!(
                "the audit log's chain breaks at row {}: {}; rows before it are intact",
                b.id,
                tenantry_registry::escape_controls(&b.why)
            ),
        )),
    }
}

/// Where the registry lives: `--registry` / `TENANTRY_REGISTRY` (a file,
/// or a team's `postgres://` URL), else the console's file.
fn registry_place(args: &RegistryArgs) -> Result<RegistryPlace, CliError> {
    match &args.registry {
        Some(given) => match given.to_str() {
            Some(text) => Ok(RegistryPlace::parse(text)?),
            None => Ok(RegistryPlace::File(PathBuf::from(given))),
        },
        None => default_registry_path()
            .map(RegistryPlace::File)
            .ok_or_else(|| {
                CliError::new(
                    "registry_path",
                    "cannot tell where the registry lives (no HOME or data directory); pass --registry PATH or a postgres:// URL".into(),
                )
            }),
    }
}

/// The OS key store holding the registry's data key: `--key-store` if
/// given (a registry that records another store refuses it when the vault
/// opens), else the store the registry records, else the platform default.
pub(crate) async fn keys(
    args: &RegistryArgs,
    registry: &Registry,
) -> Result<Box<dyn KeyStore>, RegistryError> {
    if let Some(path) = &args.member_key_file {
        return Ok(Box::new(MemberKeyFile::new(path)));
    }
    let kind = match args.key_store {
        Some(kind) => kind,
        None => registry
            .key_store()
            .await?
            .unwrap_or_else(KeyStoreKind::platform_default),
    };
    Ok(Box::new(OsKeyring::with_kind(service(args), kind)?))
}

fn service(args: &RegistryArgs) -> String {
    args.keyring_service
        .clone()
        .unwrap_or_else(|| DEFAULT_SERVICE.to_owned())
}

/// Opens the registry's vault with its data key (see [`keys`]).
pub(crate) async fn open_vault(
    args: &RegistryArgs,
    registry: &Registry,
) -> Result<Vault, CliError> {
    Ok(registry
        .open_vault(keys(args, registry).await?.as_ref())
        .await?)
}

/// Opens the existing registry; a missing or empty one is an error. Any
/// operation the journal shows as unfinished is reported on stderr.
pub(crate) async fn open(args: &RegistryArgs) -> Result<Registry, CliError> {
    let registry = Registry::open_at(registry_place(args)?).await?;
    // On a shared registry, act for the member whose key is in this
    // keyring (no keyring is asked on a registry without members). If the
    // keyring cannot say, the process acts for nobody: every command a role
    // gates is then refused, with the reason.
    let shared = registry.member_count().await.unwrap_or(0) > 0;
    let identified = match keys(args, &registry).await {
        Ok(keys) => registry.identify(keys.as_ref()).await.map(|_| ()),
        Err(e) => Err(e),
    };
    if let (true, Err(e)) = (shared, identified) {
        eprintln!(
            "tenantry: warning[{}]: cannot tell which member of this shared registry you are: {e}",
            e.code()
        );
    }
    report_unfinished(&registry).await;
    report_shared_places(&registry).await;
    Ok(registry)
}

/// Tenants registered on one shared schema before that was refused.
async fn report_shared_places(registry: &Registry) {
    let Ok(groups) = registry.shared_places().await else {
        return;
    };
    for slugs in groups {
        eprintln!(
            "tenantry: warning[shared_place]: tenants {} point at one and the same schema: each sees the other's changes and a reset of one empties the other; remove all but one (`tenantry tenant remove SLUG`) and add the others with their own schema",
            slugs.join(", ")
        );
    }
}

async fn report_unfinished(registry: &Registry) {
    let Ok(ops) = registry.killed_operations().await else {
        return;
    };
    for o in ops {
        eprintln!(
            "tenantry: warning[operation_unfinished]: operation {} ({} of {}, started {} by {}) never finished{}; its backup: {}. `tenantry operations resolve {} --adopt` records the backup, --abandon closes it",
            o.id,
            o.kind,
            o.tenant_slug,
            o.started_at,
            o.actor,
            o.last_step.as_deref().map(|s| format!(" (last step: {s})")).unwrap_or_default(),
            o.backup.as_deref().map(tenantry_registry::escape_controls).unwrap_or_else(|| "none".into()),
            o.id
        );
    }
}

#[derive(Subcommand)]
pub enum OperationsCommand {
    /// Resolve an unfinished operation: adopt its backup (when it exists on
    /// the tenant's server) so `backup list`, restore and purge see it, or
    /// mark it abandoned.
    Resolve {
        id: i64,
        #[arg(long, conflicts_with = "abandon", required_unless_present = "abandon")]
        adopt: bool,
        #[arg(long)]
        abandon: bool,
        /// Why, for the audit log.
        #[arg(long, default_value = "")]
        note: String,
    },
}

pub async fn operations(
    cmd: Option<OperationsCommand>,
    json: bool,
    args: &RegistryArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let registry = Registry::open_at(registry_place(args)?).await?;
    match cmd {
        None => {
            let unfinished = registry.unfinished_operations().await?;
            let recent = registry.operations(50).await?;
            if json {
                return write_json(
                    out,
                    &serde_json::json!({ "unfinished": unfinished, "recent": recent }),
                );
            }
            if unfinished.is_empty() {
                writeln!(out, "no unfinished operations").map_err(CliError::output)?;
            }
            for o in &unfinished {
                let state = if o.running { "RUNNING" } else { "UNFINISHED" };
                writeln!(
                    out,
                    "{state} {:>4} {} {} started {} by {}@{}; backup: {}; last step: {}",
                    o.id,
                    o.kind,
                    o.tenant_slug,
                    o.started_at,
                    o.actor,
                    o.host.as_deref().unwrap_or("?"),
                    o.backup.as_deref().unwrap_or("none"),
                    o.last_step.as_deref().unwrap_or("none recorded")
                )
                .map_err(CliError::output)?;
            }
            for o in recent.iter().filter(|o| o.finished_at.is_some()) {
                writeln!(
                    out,
                    "{:>4} {} {} {} → {} ({})",
                    o.id,
                    o.kind,
                    o.tenant_slug,
                    o.started_at,
                    o.outcome.as_deref().unwrap_or("?"),
                    tenantry_registry::escape_controls(o.detail.as_deref().unwrap_or(""))
                )
                .map_err(CliError::output)?;
            }
            Ok(())
        }
        Some(OperationsCommand::Resolve {
            id,
            adopt,
            abandon: _,
            note,
        }) => {
            let op = registry.unfinished_operation(id).await?;
            // A MySQL/MariaDB reset or restore killed before its tables
            // moved leaves triggers dropped and their definitions in the
            // quarantine: put them back first, whatever is chosen.
            let mut put_back = None;
            if let Some(location) = &op.backup {
                let vault = open_vault(args, &registry).await?;
                put_back = tenantry_fleet::backup::put_back_interrupted(
                    &registry,
                    &vault,
                    &op.tenant_slug,
                    location,
                    Timeouts::default(),
                )
                .await
                .map_err(crate::drift::fleet_err)?;
            }
            let note = match &put_back {
                Some(done) => format!("{note}; {done}"),
                None => note,
            };
            let adopt_location = if adopt {
                let location = op.backup.clone().ok_or_else(|| {
                    CliError::new(
                        "no_backup",
                        format!("operation {id} has no backup to adopt; use --abandon"),
                    )
                })?;
                let vault = open_vault(args, &registry).await?;
                let exists = tenantry_fleet::backup::backup_exists(
                    &registry,
                    &vault,
                    &op.tenant_slug,
                    &location,
                    Timeouts::default(),
                )
                .await
                .map_err(crate::drift::fleet_err)?;
                if !exists {
                    let done = put_back.map(|d| format!(" ({d})")).unwrap_or_default();
                    return Err(CliError::new(
                        "backup_missing",
                        format!("{location} holds no backup: the operation stopped before moving anything, so the tenant keeps its objects{done}; use --abandon"),
                    ));
                }
                Some(location)
            } else {
                None
            };
            let op = registry
                .resolve_operation(id, adopt_location.as_deref(), &note)
                .await?;
            writeln!(
                out,
                "operation {id} ({} of {}) resolved: {}",
                op.kind,
                op.tenant_slug,
                adopt_location
                    .map(|l| format!("backup {l} adopted"))
                    .unwrap_or_else(|| "abandoned".into())
            )
            .map_err(CliError::output)
        }
    }
}

/// For the commands that are a registry's first use (adding tenants or a
/// template): opens it, making it when there is no file yet.
pub(crate) async fn open_or_create(args: &RegistryArgs) -> Result<Registry, CliError> {
    Ok(Registry::create_at(registry_place(args)?).await?)
}

/// Which secret input is read, for its messages.
struct SecretInput {
    what: &'static str,
    env_code: &'static str,
    usage: &'static str,
}

const URL_INPUT: SecretInput = SecretInput {
    what: "URL",
    env_code: "url_env",
    usage: "give --url or --url-env",
};

const PASSPHRASE_INPUT: SecretInput = SecretInput {
    what: "passphrase",
    env_code: "passphrase_env",
    usage: "give the passphrase on standard input",
};

const PATTERN_INPUT: SecretInput = SecretInput {
    what: "URL pattern",
    env_code: "pattern_env",
    usage: "--from-query needs --pattern (or --pattern - for standard input, or --pattern-env VAR)",
};

/// Reads a secret given as `-` (a line of standard input), from an
/// environment variable, or as is: so it can stay out of shell history and
/// `ps`.
fn read_secret(
    value: Option<&str>,
    env: Option<&str>,
    input: &SecretInput,
) -> Result<secrecy::SecretString, CliError> {
    if let Some(var) = env {
        return std::env::var(var)
            .map(secrecy::SecretString::from)
            .map_err(|_| {
                CliError::new(
                    input.env_code,
                    format!("environment variable {var} is not set (or not UTF-8)"),
                )
            });
    }
    match value {
        Some("-") => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).map_err(|e| {
                CliError::new(
                    "stdin",
                    format!("cannot read the {} from standard input: {e}", input.what),
                )
            })?;
            Ok(secrecy::SecretString::from(
                line.trim_end_matches(['\r', '\n']).to_owned(),
            ))
        }
        Some(v) => Ok(secrecy::SecretString::from(v.to_owned())),
        None => Err(CliError::new("usage", input.usage.into())),
    }
}

/// Reads a URL given as `-` (stdin), from an environment variable, or as is.
pub(crate) fn read_url(value: Option<&str>, env: Option<&str>) -> Result<ConnectionUrl, CliError> {
    let text = read_secret(value, env, &URL_INPUT)?;
    Ok(ConnectionUrl::parse(secrecy::ExposeSecret::expose_secret(
        &text,
    ))?)
}

pub async fn tenant(
    cmd: TenantCommand,
    args: &RegistryArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let registry = match cmd {
        TenantCommand::Add { .. } | TenantCommand::Import { .. } => open_or_create(args).await?,
        _ => open(args).await?,
    };
    match cmd {
        TenantCommand::Add {
            slug,
            url,
            url_env,
            name,
            schema,
            template,
            template_version,
            domains,
            notes,
            json,
        } => {
            let url = read_url(url.as_deref(), url_env.as_deref())?;
            let vault = open_vault(args, &registry).await?;
            let record = registry
                .add_tenant(
                    &vault,
                    NewTenant {
                        display_name: name.unwrap_or_else(|| slug.clone()),
                        slug,
                        url,
                        schema,
                        template,
                        template_version,
                        domains,
                        notes,
                    },
                )
                .await?;
            if json {
                write_json(out, &record)
            } else {
                writeln!(
                    out,
                    "added tenant {} ({}, {})",
                    record.slug, record.engine, record.location
                )
                .map_err(CliError::output)
            }
        }
        TenantCommand::List { json } => {
            // Streamed from the registry to a buffered output: a fleet of
            // 100,000 is never held in memory, nor written a line per call.
            let mut out = std::io::BufWriter::new(out);
            let rows = registry.tenants_by_slug();
            if json {
                write_json_stream(&mut out, rows).await?;
            } else {
                print_list(&mut out, rows).await?;
            }
            out.flush().map_err(CliError::output)
        }
        TenantCommand::Show { slug, json } => {
            let record = registry.tenant(&slug).await?;
            let audit = registry.audit_log(Some(&slug), 10).await?;
            if json {
                #[derive(Serialize)]
                struct Shown<'a> {
                    tenant: &'a TenantRecord,
                    audit: &'a [AuditEntry],
                }
                return write_json(
                    out,
                    &Shown {
                        tenant: &record,
                        audit: &audit,
                    },
                );
            }
            print_show(out, &record, &audit).map_err(CliError::output)
        }
        TenantCommand::Remove { slug, confirm } => {
            if confirm.as_deref() != Some(slug.as_str()) {
                let why = match confirm {
                    None => "pass --confirm with the slug typed again".to_owned(),
                    Some(c) => format!("--confirm {c:?} does not match the slug {slug:?} exactly"),
                };
                registry
                    .audit(
                        Some(&slug),
                        "tenant.remove",
                        &why,
                        tenantry_registry::AuditResult::Refused,
                    )
                    .await?;
                return Err(CliError::new(
                    "confirmation_required",
                    format!("not removed: {why}"),
                ));
            }
            registry.remove_tenant(&slug).await?;
            writeln!(
                out,
                "removed tenant {slug} from the registry (its database was not touched)"
            )
            .map_err(CliError::output)
        }
        TenantCommand::Import {
            file,
            from_query,
            source,
            pattern,
            pattern_env,
            mode,
            dry_run,
            json,
        } => {
            let rows = match (file, from_query) {
                (Some(path), _) => read_file(&path)?,
                (None, Some(sql)) => {
                    let source = read_url(source.as_deref(), None)?;
                    let pattern =
                        read_secret(pattern.as_deref(), pattern_env.as_deref(), &PATTERN_INPUT)?;
                    rows_from_query(
                        &source,
                        &sql,
                        secrecy::ExposeSecret::expose_secret(&pattern),
                        Timeouts::default(),
                    )
                    .await?
                }
                (None, None) => {
                    return Err(CliError::new("usage", "give a FILE or --from-query".into()))
                }
            };
            let vault = open_vault(args, &registry).await?;
            let report = registry
                .import_as(&vault, rows, mode.into(), dry_run)
                .await?;
            if json {
                write_json(out, &report)
            } else {
                print_import(out, &report).map_err(CliError::output)
            }
        }
    }
}

pub async fn key(
    cmd: KeyCommand,
    args: &RegistryArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let registry = open(args).await?;
    match cmd {
        KeyCommand::Rotate { json } => {
            let keys = keys(args, &registry).await?;
            let old = registry.open_vault(keys.as_ref()).await?;
            let (new, n) = registry.rotate_key(keys.as_ref(), &old).await?;
            if json {
                write_json(
                    out,
                    &serde_json::json!({ "old_key_id": old.key_id().to_string(), "new_key_id": new.key_id().to_string(), "re_encrypted": n }),
                )
            } else {
                writeln!(
                    out,
                    "rotated the data key {} → {}; {n} connection strings re-encrypted",
                    old.key_id(),
                    new.key_id()
                )
                .map_err(CliError::output)?;
                if keys.kind().and_then(KeyStoreKind::retention).is_some() {
                    writeln!(out, "export the new key now: `tenantry key export --to FILE` (an escrow file of the old key no longer opens this registry)").map_err(CliError::output)?;
                }
                Ok(())
            }
        }
        KeyCommand::Status { json } => {
            let keys = keys(args, &registry).await?;
            let vault = registry.open_vault(keys.as_ref()).await?;
            let store = keys.describe();
            // `None`: a member key file (`--member-key-file`), no OS store.
            let kind = keys.kind();
            let entry = registry.key_entry(vault.key_id()).await?;
            let registry_id = registry.registry_id().await?;
            let members = registry.members().await?;
            let you = members.iter().find(|m| m.you).map(|m| m.name.clone());
            let in_keyring = matches!(keys.load(&entry), Ok(Some(_)));
            if json {
                write_json(
                    out,
                    &serde_json::json!({
                        "store": store,
                        "key_store": kind.map_or("member-key-file", KeyStoreKind::as_str),
                        "retention": kind.and_then(KeyStoreKind::retention),
                        "entry": entry.as_str(),
                        "in_keyring": in_keyring,
                        "key_id": vault.key_id().to_string(),
                        "registry": registry.shown(),
                        "registry_id": registry_id,
                        "members": members.len(),
                        "member": you,
                    }),
                )
            } else {
                let source = if in_keyring {
                    format!("in {store}, entry {entry}")
                } else {
                    format!("wrapped for your member key (in {store})")
                };
                writeln!(
                    out,
                    "data key {} {source}\nregistry {} (id {registry_id})",
                    vault.key_id(),
                    registry.shown()
                )
                .map_err(CliError::output)?;
                if !members.is_empty() {
                    writeln!(
                        out,
                        "shared with {} members{}",
                        members.len(),
                        you.map(|n| format!(" (you are `{n}`)")).unwrap_or_default()
                    )
                    .map_err(CliError::output)?;
                }
                if let Some(note) = kind.and_then(KeyStoreKind::retention) {
                    writeln!(out, "note: {note}").map_err(CliError::output)?;
                }
                Ok(())
            }
        }
        KeyCommand::Export {
            to,
            passphrase_stdin,
        } => {
            let vault = open_vault(args, &registry).await?;
            if to.exists() {
                return Err(CliError::new(
                    "file_exists",
                    format!(
                        "{} already exists; an escrow file is never overwritten: choose a new name",
                        to.display()
                    ),
                ));
            }
            let passphrase = read_passphrase(passphrase_stdin, true)?;
            let text = registry.export_key(&vault, &passphrase).await?;
            write_private_new(&to, &text, "escrow_write_failed")?;
            writeln!(
                out,
                "data key {} sealed into {} (readable by you only); keep the file and its passphrase apart — either alone opens nothing",
                vault.key_id(),
                to.display()
            )
            .map_err(CliError::output)
        }
        KeyCommand::Import {
            from,
            passphrase_stdin,
        } => {
            let text = std::fs::read_to_string(&from).map_err(|e| {
                CliError::new(
                    "escrow_unreadable",
                    format!("cannot read {}: {e}", from.display()),
                )
            })?;
            // Import chooses the store (--key-store, else the recorded
            // one): it is how a key moves between them, so no mismatch is
            // checked here; `import_key` records the store it wrote.
            let keys = keys(args, &registry).await?;
            let passphrase = read_passphrase(passphrase_stdin, false)?;
            let vault = registry
                .import_key(keys.as_ref(), &text, &passphrase)
                .await?;
            writeln!(
                out,
                "data key {} loaded into {}; the registry now uses that store",
                vault.key_id(),
                keys.describe()
            )
            .map_err(CliError::output)
        }
    }
}

/// Writes a new file readable by its owner only; never replaces one.
/// `code` names the failure (what the file is).
pub(crate) fn write_private_new(
    path: &std::path::Path,
    text: &str,
    code: &'static str,
) -> Result<(), CliError> {
    let failed =
        |e: std::io::Error| CliError::new(code, format!("cannot write {}: {e}", path.display()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)
}

pub async fn health(
    slug: &str,
    json: bool,
    args: &RegistryArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let registry = open(args).await?;
    let vault = match keys(args, &registry).await {
        Ok(k) => registry.open_vault(k.as_ref()).await,
        Err(e) => Err(e),
    };
    let pools = TenantPools::new(PoolSettings::default());
    let report = check_tenant(&registry, vault.as_ref(), &pools, slug).await?;
    if json {
        write_json(out, &report)?;
    } else {
        writeln!(out, "{} ({})", report.slug, report.location).map_err(CliError::output)?;
        for c in &report.checks {
            let ms = c.millis.map(|m| format!(" [{m} ms]")).unwrap_or_default();
            writeln!(
                out,
                "  {} {:<17} {}{ms}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            )
            .map_err(CliError::output)?;
        }
    }
    if report.healthy {
        Ok(())
    } else {
        let failed: Vec<&str> = report
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| c.name.as_str())
            .collect();
        Err(CliError::finding(
            "unhealthy",
            format!("tenant {slug} is unhealthy: {} failed", failed.join(", ")),
        ))
    }
}

async fn print_list(
    out: &mut impl Write,
    rows: impl futures_util::Stream<Item = Result<TenantRecord, RegistryError>>,
) -> Result<(), CliError> {
    use futures_util::StreamExt;
    let mut rows = std::pin::pin!(rows);
    let mut any = false;
    while let Some(t) = rows.next().await {
        let t = t?;
        if !any {
            any = true;
            writeln!(
                out,
                "{:<20} {:<28} {:<10} {:<9} {:<11} {:<16} LOCATION",
                "SLUG", "PLACE", "ENGINE", "ISOLATION", "STATUS", "TEMPLATE"
            )
            .map_err(CliError::output)?;
        }
        let template = match (&t.template, &t.template_version) {
            (Some(n), Some(v)) => format!("{n} {v}"),
            (Some(n), None) => n.clone(),
            _ => "—".into(),
        };
        writeln!(
            out,
            "{:<20} {:<28} {:<10} {:<9} {:<11} {:<16} {}",
            t.slug,
            t.place(),
            t.engine.as_str(),
            t.isolation.as_str(),
            t.status.as_str(),
            template,
            t.location
        )
        .map_err(CliError::output)?;
    }
    if !any {
        writeln!(
            out,
            "no tenants registered; add one with `tenantry tenant add`"
        )
        .map_err(CliError::output)?;
    }
    Ok(())
}

/// A JSON array written element by element as `rows` yields them: the same
/// text as [`write_json`] of the whole list.
async fn write_json_stream<T: Serialize>(
    out: &mut impl Write,
    rows: impl futures_util::Stream<Item = Result<T, RegistryError>>,
) -> Result<(), CliError> {
    use futures_util::StreamExt;
    use serde::ser::{SerializeSeq, Serializer as _};
    let json_error = |e: serde_json::Error| match e.io_error_kind() {
        Some(kind) => CliError::output(std::io::Error::from(kind)),
        None => CliError::new("output", format!("cannot write JSON: {e}")),
    };
    let mut rows = std::pin::pin!(rows);
    let mut ser = serde_json::Serializer::pretty(&mut *out);
    let mut seq = ser.serialize_seq(None).map_err(json_error)?;
    while let Some(row) = rows.next().await {
        seq.serialize_element(&row?).map_err(json_error)?;
    }
    seq.end().map_err(json_error)?;
    writeln!(out).map_err(CliError::output)
}

fn print_show(out: &mut impl Write, t: &TenantRecord, audit: &[AuditEntry]) -> std::io::Result<()> {
    // Every text a user or a tenant's catalog supplied is printed inert:
    // no newline or escape sequence can forge a line of this output.
    let e = tenantry_registry::escape_controls;
    writeln!(out, "{} — {}", t.slug, e(&t.display_name))?;
    writeln!(
        out,
        "  engine      {} ({} per tenant)",
        t.engine,
        t.isolation.as_str()
    )?;
    writeln!(out, "  location    {}", e(&t.location))?;
    if let Some(s) = &t.schema_name {
        writeln!(out, "  schema      {}", e(s))?;
    }
    writeln!(
        out,
        "  template    {} {}",
        e(t.template.as_deref().unwrap_or("—")),
        e(t.template_version.as_deref().unwrap_or(""))
    )?;
    writeln!(
        out,
        "  status      {}{}",
        t.status,
        t.status_reason
            .as_deref()
            .map(|r| format!(" ({})", e(r)))
            .unwrap_or_default()
    )?;
    writeln!(
        out,
        "  hashes      initial {} / current {}",
        t.initial_hash.as_deref().unwrap_or("—"),
        t.current_hash.as_deref().unwrap_or("—")
    )?;
    writeln!(
        out,
        "  last sync   {}",
        t.last_sync_at.as_deref().unwrap_or("never")
    )?;
    writeln!(
        out,
        "  domains     {}",
        if t.domains.is_empty() {
            "—".into()
        } else {
            t.domains.join(", ")
        }
    )?;
    if !t.notes.is_empty() {
        writeln!(out, "  notes       {}", e(&t.notes))?;
    }
    writeln!(
        out,
        "  revision    {} (updated {}; an import row with `revision` applies only to this one)",
        t.revision,
        e(&t.updated_at)
    )?;
    writeln!(out, "  recent operations:")?;
    for a in audit {
        writeln!(
            out,
            "    {} {}@{} {} {:?}: {}",
            a.at,
            e(&a.actor),
            e(a.host.as_deref().unwrap_or("?")),
            e(&a.action),
            a.result,
            e(&a.detail)
        )?;
    }
    Ok(())
}
