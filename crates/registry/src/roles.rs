//! Roles on a shared registry: what each member may do.
//!
//! A registry without members is one person's: whoever holds its key may do
//! everything, as before. Once it has members, every command a role gates
//! asks [`Registry::authorize`] first; the caller is the member whose key is
//! in this machine's keyring ([`Registry::identify`]), and the audit log
//! names them.

use serde::Serialize;
use tenantry_vault::{KeyEntry, KeyStore, MemberSecret};
use ts_rs::TS;

use crate::{AuditResult, Registry, RegistryError};

/// What a member may do. Each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Role {
    /// Support staff: the fleet, a tenant, health, drift and reports.
    Viewer,
    /// Also the guard, scans, repair, accepting a baseline, sync and upgrades.
    Operator,
    /// Also reset, restoring and purging backups, keys, members, templates
    /// and the tenant list.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Self, RegistryError> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(RegistryError::InvalidInput {
                field: "role",
                reason: format!(
                    "`{}` is not a role; choose viewer, operator or admin",
                    crate::escape_controls(other)
                ),
            }),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every command a role gates. Reading (the fleet, a tenant, health,
/// drift, reports, the audit log) is open to every member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Action {
    Guard,
    Scan,
    Repair,
    Accept,
    Sync,
    Upgrade,
    Reset,
    BackupRestore,
    BackupPurge,
    Keys,
    Members,
    Templates,
    Tenants,
}

impl Action {
    pub const ALL: [Action; 13] = [
        Action::Guard,
        Action::Scan,
        Action::Repair,
        Action::Accept,
        Action::Sync,
        Action::Upgrade,
        Action::Reset,
        Action::BackupRestore,
        Action::BackupPurge,
        Action::Keys,
        Action::Members,
        Action::Templates,
        Action::Tenants,
    ];

    /// The least role that may take this action.
    pub fn role(self) -> Role {
        match self {
            Action::Guard
            | Action::Scan
            | Action::Repair
            | Action::Accept
            | Action::Sync
            | Action::Upgrade => Role::Operator,
            Action::Reset
            | Action::BackupRestore
            | Action::BackupPurge
            | Action::Keys
            | Action::Members
            | Action::Templates
            | Action::Tenants => Role::Admin,
        }
    }

    /// For messages: "… may not {doing}".
    pub fn doing(self) -> &'static str {
        match self {
            Action::Guard => "run the schema guard",
            Action::Scan => "scan tenants",
            Action::Repair => "repair a tenant",
            Action::Accept => "accept a tenant's baseline",
            Action::Sync => "sync a tenant",
            Action::Upgrade => "upgrade a tenant",
            Action::Reset => "reset a tenant",
            Action::BackupRestore => "restore a backup",
            Action::BackupPurge => "purge a backup",
            Action::Keys => "manage the data key",
            Action::Members => "manage members",
            Action::Templates => "manage templates",
            Action::Tenants => "add, import or remove tenants",
        }
    }

    /// The audit action a refusal is recorded under.
    fn audit_action(self) -> &'static str {
        match self {
            Action::Guard => "guard",
            Action::Scan => "scan",
            Action::Repair => "repair",
            Action::Accept => "tenant.accept",
            Action::Sync => "sync",
            Action::Upgrade => "upgrade",
            Action::Reset => "reset",
            Action::BackupRestore => "backup.restore",
            Action::BackupPurge => "backup.purge",
            Action::Keys => "key",
            Action::Members => "member",
            Action::Templates => "template",
            Action::Tenants => "tenant",
        }
    }
}

/// The member a process acts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Registry {
    /// Finds the member whose key is in `keys` and acts for them from now
    /// on (their role gates commands, their name is in the audit log).
    /// A registry without members asks no keyring and has no caller.
    pub async fn identify(&self, keys: &dyn KeyStore) -> Result<Option<Caller>, RegistryError> {
        if self.member_count().await? == 0 {
            self.set_caller(None);
            return Ok(None);
        }
        let entry = KeyEntry::member(&self.registry_id().await?);
        let public = match keys.load_text(&entry)? {
            Some(text) => Some(MemberSecret::from_stored(&text)?.public()),
            None => None,
        };
        let caller = match public {
            Some(public) => {
                let row: Option<(String, String)> =
                    sqlx::query_as("SELECT name, role FROM members WHERE public_key = $1")
                        .bind(public.to_string())
                        .fetch_optional(self.pool())
                        .await?;
                row.map(|(name, role)| {
                    Ok::<_, RegistryError>(Caller {
                        name,
                        role: Role::parse(&role)?,
                    })
                })
                .transpose()?
            }
            None => None,
        };
        self.set_caller(caller.clone());
        Ok(caller)
    }

    /// The member this process acts for, once [`Self::identify`] found one.
    pub fn caller(&self) -> Option<Caller> {
        self.caller.lock().ok().and_then(|c| c.clone())
    }

    pub(crate) fn set_caller(&self, caller: Option<Caller>) {
        if let Ok(mut slot) = self.caller.lock() {
            *slot = caller;
        }
    }

    /// The actions this process may take: all of them on a registry
    /// without members, the caller's role's on a shared one, none for a
    /// caller who is not a member. For the console, which offers only these.
    pub async fn allowed_actions(&self) -> Result<Vec<Action>, RegistryError> {
        if self.member_count().await? == 0 {
            return Ok(Action::ALL.to_vec());
        }
        Ok(match self.caller() {
            Some(c) => Action::ALL
                .into_iter()
                .filter(|a| c.role >= a.role())
                .collect(),
            None => Vec::new(),
        })
    }

    /// Refuses `action` unless the caller's role allows it (always allowed
    /// on a registry without members). A refusal is audited.
    pub async fn authorize(&self, action: Action) -> Result<(), RegistryError> {
        let members = self.member_count().await?;
        if members == 0 {
            return Ok(());
        }
        let refusal = match self.caller() {
            Some(c) if c.role >= action.role() => return Ok(()),
            Some(c) => RegistryError::RoleRefused {
                name: c.name,
                role: c.role,
                needed: action.role(),
                doing: action.doing(),
            },
            None => RegistryError::NotAMember {
                members,
                detail: format!(
                    "only a member may {}, and this machine's keyring holds no member key of theirs",
                    action.doing()
                ),
            },
        };
        let _ = self
            .audit(
                None,
                action.audit_action(),
                &refusal.to_string(),
                AuditResult::Refused,
            )
            .await;
        Err(refusal)
    }

    /// Who an audit row names: the member and the OS account, or the OS
    /// account alone on a registry without members.
    pub(crate) fn actor_name(&self) -> String {
        let account = crate::current_actor().account;
        match self.caller() {
            Some(c) => format!("{} ({account})", c.name),
            None => account,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_may_do_what_the_ones_before_it_may() {
        for action in Action::ALL {
            let allowed: Vec<Role> = [Role::Viewer, Role::Operator, Role::Admin]
                .into_iter()
                .filter(|r| *r >= action.role())
                .collect();
            assert!(allowed.contains(&Role::Admin), "{action:?}");
            assert!(
                !allowed.contains(&Role::Viewer),
                "{action:?}: viewers only read"
            );
        }
        assert_eq!(Action::Reset.role(), Role::Admin);
        assert_eq!(Action::Sync.role(), Role::Operator);
        for r in ["viewer", "operator", "admin"] {
            assert_eq!(Role::parse(r).unwrap().as_str(), r);
        }
        assert_eq!(Role::parse("root").unwrap_err().code(), "invalid_input");
    }
}
