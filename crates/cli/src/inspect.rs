//! `tenantry hash` and `tenantry inspect`: one tenant's schema, read from a URL.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use tenantry_introspect::{introspect, ConnectionUrl, Timeouts};
use tenantry_model::{hash_schema, ObjectKind, SchemaHash, SchemaSnapshot};

use crate::CliError;

#[derive(Args)]
pub struct Target {
    /// Connection URL: postgres://…, mysql://…, mariadb://…, sqlite:PATH, or
    /// `-` to read it from standard input (keeps the password out of `ps`).
    url: String,
    /// PostgreSQL schema (schema-per-tenant; default `public`), or the
    /// MySQL/MariaDB database when the URL names none.
    #[arg(long)]
    schema: Option<String>,
    /// Seconds to wait for the server to accept a connection.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    connect_timeout: u64,
    /// Seconds the catalog queries may take.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    query_timeout: u64,
}

impl Target {
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(self.connect_timeout),
            query: Duration::from_secs(self.query_timeout),
        }
    }

    fn url(&self) -> Result<ConnectionUrl, CliError> {
        crate::tenants::read_url(Some(&self.url), None)
    }

    pub async fn snapshot(&self) -> Result<SchemaSnapshot, CliError> {
        let url = self.url()?;
        Ok(introspect(&url, self.schema.as_deref(), self.timeouts()).await?)
    }
}

pub async fn hash(target: &Target, out: &mut impl Write) -> Result<(), CliError> {
    let snap = target.snapshot().await?;
    writeln!(out, "{}", hash_schema(&snap).root).map_err(CliError::output)
}

pub async fn inspect(target: &Target, json: bool, out: &mut impl Write) -> Result<(), CliError> {
    let snap = target.snapshot().await?;
    let hash = hash_schema(&snap);
    if json {
        crate::write_json(out, &InspectReport::new(&snap, &hash))
    } else {
        print_summary(out, &snap, &hash).map_err(CliError::output)
    }
}

/// `inspect --json`: the canonical model, each object with its hash.
#[derive(Serialize)]
struct InspectReport<'a> {
    hash_format: u16,
    engine: tenantry_model::Engine,
    root_hash: String,
    tables: Vec<WithHash<'a, tenantry_model::Table>>,
    views: Vec<WithHash<'a, tenantry_model::View>>,
    enums: Vec<WithHash<'a, tenantry_model::EnumType>>,
    sequences: Vec<WithHash<'a, tenantry_model::Sequence>>,
    routines: Vec<WithHash<'a, tenantry_model::Routine>>,
    events: Vec<WithHash<'a, tenantry_model::Event>>,
    types: Vec<WithHash<'a, tenantry_model::UserType>>,
    extensions: Vec<WithHash<'a, tenantry_model::Extension>>,
    /// The schema's own privileges that differ from the default (its
    /// `schema` object's hash is in the summary's object list).
    schema_grants: &'a [tenantry_model::Grant],
}

#[derive(Serialize)]
struct WithHash<'a, T> {
    hash: String,
    #[serde(flatten)]
    object: &'a T,
}

impl<'a> InspectReport<'a> {
    fn new(snap: &'a SchemaSnapshot, hash: &SchemaHash) -> Self {
        // Each object of a kind with its hash, looked up by its key.
        fn of<'a, T>(
            hash: &SchemaHash,
            kind: ObjectKind,
            items: &'a [T],
            key: impl Fn(&T) -> String,
        ) -> Vec<WithHash<'a, T>> {
            items
                .iter()
                .map(|object| WithHash {
                    hash: hash
                        .object(kind, &key(object))
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    object,
                })
                .collect()
        }
        Self {
            hash_format: hash.root.format().number(),
            engine: snap.engine,
            root_hash: hash.root.to_string(),
            tables: of(hash, ObjectKind::Table, &snap.tables, |t| t.name.clone()),
            views: of(hash, ObjectKind::View, &snap.views, |v| v.name.clone()),
            enums: of(hash, ObjectKind::Enum, &snap.enums, |e| e.name.clone()),
            sequences: of(hash, ObjectKind::Sequence, &snap.sequences, |s| {
                s.name.clone()
            }),
            routines: of(hash, ObjectKind::Routine, &snap.routines, |r| r.key()),
            events: of(hash, ObjectKind::Event, &snap.events, |e| e.name.clone()),
            types: of(hash, ObjectKind::Type, &snap.types, |t| t.name.clone()),
            extensions: of(hash, ObjectKind::Extension, &snap.extensions, |x| {
                x.name.clone()
            }),
            schema_grants: &snap.grants,
        }
    }
}

fn print_summary(
    out: &mut impl Write,
    snap: &SchemaSnapshot,
    hash: &SchemaHash,
) -> std::io::Result<()> {
    writeln!(out, "engine     {}", snap.engine)?;
    writeln!(out, "root hash  {}", hash.root)?;
    writeln!(
        out,
        "objects    {} tables ({} triggers, {} policies), {} views, {} enums, {} domains, composite and range types, {} sequences, {} routines, {} events, {} extensions",
        snap.tables.len(),
        snap.tables.iter().map(|t| t.triggers.len()).sum::<usize>(),
        snap.tables.iter().map(|t| t.policies.len()).sum::<usize>(),
        snap.views.len(),
        snap.enums.len(),
        snap.types.len(),
        snap.sequences.len(),
        snap.routines.len(),
        snap.events.len(),
        snap.extensions.len()
    )?;
    for o in &hash.objects {
        writeln!(out, "{:<9} {:<40} {}", o.kind.as_str(), o.name, o.hash)?;
    }
    Ok(())
}
