//! `tenantry`: the headless command over the same engine as the console.
//!
//! Exit codes: 0 success; 1 the operation failed (unreachable server, bad
//! URL, missing schema, locked keyring…; one line on stderr); 2 bad usage;
//! 3 the command ran and found a problem (an unhealthy tenant).

mod inspect;
mod tenants;

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
    /// The registry database (default: the console's, in the user data directory).
    #[arg(long, env = "TENANTRY_REGISTRY", global = true)]
    registry: Option<PathBuf>,
    /// The keyring service name the data key is stored under.
    #[arg(long, env = "TENANTRY_KEYRING_SERVICE", global = true, hide = true)]
    keyring_service: Option<String>,
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

    pub fn output(e: std::io::Error) -> Self {
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
    serde_json::to_writer_pretty(&mut *out, value)
        .map_err(|e| CliError::new("output", format!("cannot write JSON: {e}")))?;
    writeln!(out).map_err(CliError::output)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TENANTRY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
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
        Command::Health {
            slug,
            json,
            registry,
        } => tenants::health(&slug, json, &registry, &mut out).await,
    }
}
