//! `tenantry member`: a registry shared by a team, its data key wrapped
//! once per member under each member's own key pair.

use std::io::Write;

use clap::Subcommand;
use secrecy::ExposeSecret;
use tenantry_registry::{current_actor, MemberRecord, Role};
use tenantry_vault::MemberSecret;

use crate::tenants::{keys, open, write_private_new};
use crate::{write_json, CliError, RegistryArgs};

#[derive(Subcommand)]
pub enum MemberCommand {
    /// Print this machine's member key for the registry, made in the OS
    /// keyring if there is none yet. Give the line it prints to a member,
    /// who adds you with `tenantry member add`. The private half never
    /// leaves the keyring.
    Key {
        /// Instead: make a new member key in this file (written 0600, never
        /// over an existing file) for a machine with no OS keyring, whose
        /// platform mounts it from its secret store (a Kubernetes Secret);
        /// it then runs with `--member-key-file`. Put it in the secret store
        /// at once and delete this copy.
        #[arg(long, value_name = "FILE")]
        new_file: Option<std::path::PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Wrap the registry's data key for a new member. On a registry with
    /// no members yet, you are enrolled first (as --as NAME, by default your
    /// OS account), with this machine's member key.
    Add {
        /// The member's name: letters, digits and . _ @ + - (up to 64).
        name: String,
        /// The line `tenantry member key` printed on the member's machine.
        #[arg(long)]
        public_key: String,
        /// What they may do: viewer (the fleet, health, drift, reports),
        /// operator (also guard, scan, repair, accept, sync, upgrade) or admin
        /// (also reset, backups, keys, members, templates, the tenant list).
        #[arg(long, value_enum, default_value_t = RoleArg::Viewer)]
        role: RoleArg,
        /// Your own member name, when you are enrolled as the first member
        /// (as admin).
        #[arg(long = "as")]
        me: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove a member: the data key is rotated, every connection string
    /// re-encrypted, and the new key wrapped for the other members only, in
    /// one transaction; the removed member's copy opens nothing written
    /// after. You cannot remove yourself.
    Remove {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Give a member another role (the registry always keeps an admin).
    Role {
        name: String,
        #[arg(value_enum)]
        role: RoleArg,
    },
    /// On a registry in PostgreSQL: the member's own login to its database,
    /// which gets exactly the privileges of their role (a viewer's login
    /// cannot change the registry, even with psql); role changes and the
    /// member's removal follow. Needs a login allowed to create roles.
    DbUser {
        name: String,
        /// The PostgreSQL login (CREATE ROLE … LOGIN first).
        login: String,
    },
    /// List the members, marking you.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    Viewer,
    Operator,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Operator => Role::Operator,
            RoleArg::Admin => Role::Admin,
        }
    }
}

/// `tenantry member key --new-file FILE`.
fn new_key_file(path: &std::path::Path, json: bool, out: &mut impl Write) -> Result<(), CliError> {
    let secret = MemberSecret::generate();
    let public = secret.public();
    write_private_new(
        path,
        &format!("{}\n", secret.to_stored().expose_secret()),
        "member_key_file_write_failed",
    )?;
    if json {
        return write_json(
            out,
            &serde_json::json!({
                "public_key": public.to_string(),
                "fingerprint": public.fingerprint(),
                "file": path.display().to_string(),
            }),
        );
    }
    writeln!(
        out,
        "{public}\n\nMade the member key {} in {} (mode 0600; its private half is only there).\nPut it in the machine's secret store now and delete this copy, e.g.\n  kubectl create secret generic tenantry-member --from-file=member.key={}\n  shred -u {}\nAn admin adds the member with\n  tenantry member add NAME --public-key <the line above> --role operator\nand the machine runs with --member-key-file (TENANTRY_MEMBER_KEY_FILE) naming the mounted file.",
        public.fingerprint(),
        path.display(),
        path.display(),
        path.display(),
    )
    .map_err(CliError::output)
}

fn line(m: &MemberRecord) -> String {
    format!(
        "{}{}\t{}\tkey {}\tadded {} by {}",
        m.name,
        if m.you { " (you)" } else { "" },
        m.role,
        m.fingerprint,
        m.added_at,
        m.added_by
    )
}

pub async fn member(
    cmd: MemberCommand,
    args: &RegistryArgs,
    out: &mut impl Write,
) -> Result<(), CliError> {
    // A key for a keyring-less machine is made before any registry or
    // keyring is asked: it belongs to no registry until a member adds it.
    if let MemberCommand::Key {
        new_file: Some(path),
        json,
    } = &cmd
    {
        return new_key_file(path, *json, out);
    }
    let registry = open(args).await?;
    let keys = keys(args, &registry).await?;
    match cmd {
        MemberCommand::Key { json, .. } => {
            let (public, created) = registry.member_key(keys.as_ref()).await?;
            if json {
                return write_json(
                    out,
                    &serde_json::json!({
                        "public_key": public.to_string(),
                        "fingerprint": public.fingerprint(),
                        "created": created,
                        "registry": registry.shown(),
                    }),
                );
            }
            writeln!(
                out,
                "{public}\n\n{} member key {} for the registry {} (private half in {}).\nGive the line above to a member of the registry; they add you with\n  tenantry member add NAME --public-key <that line>",
                if created { "Made the" } else { "This machine's" },
                public.fingerprint(),
                registry.shown(),
                keys.describe()
            )
            .map_err(CliError::output)
        }
        MemberCommand::Add {
            name,
            public_key,
            role,
            me,
            json,
        } => {
            let vault = registry.open_vault(keys.as_ref()).await?;
            let me = me.unwrap_or_else(|| current_actor().account);
            let added = registry
                .add_member(keys.as_ref(), &vault, &name, &public_key, role.into(), &me)
                .await?;
            if json {
                return write_json(out, &added);
            }
            if let Some(first) = &added.enrolled {
                writeln!(
                    out,
                    "enrolled you as the registry's first member: {}",
                    line(first)
                )
                .map_err(CliError::output)?;
            }
            writeln!(
                out,
                "added {}\nthe data key {} is wrapped for them; they can now open the registry from their own keyring",
                line(&added.member),
                vault.key_id()
            )
            .map_err(CliError::output)
        }
        MemberCommand::Remove { name, json } => {
            let vault = registry.open_vault(keys.as_ref()).await?;
            let (_, removed) = registry.remove_member(keys.as_ref(), &vault, &name).await?;
            if json {
                return write_json(out, &removed);
            }
            writeln!(
                out,
                "removed `{}`; the data key was rotated {} → {} ({} connection strings re-encrypted) and wrapped for the {} other members",
                removed.name, removed.old_key_id, removed.new_key_id, removed.reencrypted, removed.rewrapped
            )
            .map_err(CliError::output)?;
            writeln!(out, "export the new key if you keep escrow files: `tenantry key export --to FILE` (an escrow file of the old key no longer opens this registry)")
                .map_err(CliError::output)
        }
        MemberCommand::Role { name, role } => {
            let role = Role::from(role);
            registry.set_member_role(&name, role).await?;
            writeln!(out, "`{name}` is now {role}").map_err(CliError::output)
        }
        MemberCommand::DbUser { name, login } => {
            registry.set_member_db_user(&name, &login).await?;
            writeln!(
                out,
                "`{name}` logs in to the registry's database as `{}`, with the privileges of their role",
                tenantry_registry::escape_controls(&login)
            )
            .map_err(CliError::output)
        }
        MemberCommand::List { json } => {
            let members = registry.members().await?;
            if json {
                return write_json(out, &members);
            }
            if members.is_empty() {
                return writeln!(out, "no members: the data key is in the keyring of whoever made the registry; `tenantry member add NAME --public-key KEY` shares it").map_err(CliError::output);
            }
            for m in &members {
                writeln!(out, "{}", line(m)).map_err(CliError::output)?;
            }
            Ok(())
        }
    }
}
