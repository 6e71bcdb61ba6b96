//! A registry shared by a team: its members, each with a key pair of their
//! own, and the data key wrapped once per member (see
//! [`tenantry_vault::member`]).
//!
//! A registry with no members opens as before, with the data key in the OS
//! keyring of whoever made it. Once it has members, a person whose keyring
//! holds no entry for the current data key opens it with their member key:
//! the row with their public key holds the data key wrapped for them.
//! Removing a member rotates the data key and wraps the new one for the
//! others only, in one transaction, so the removed member's copy (their
//! wrap, an escrow file they exported, the key in their keyring) opens
//! nothing written after it.

use serde::Serialize;
use sqlx::AnyConnection;
use tenantry_vault::{
    member, save_verified_text, DataKey, KeyEntry, KeyId, KeyStore, MemberPublicKey, MemberSecret,
    Vault,
};
use ts_rs::TS;

use crate::{audit_in, Action, AuditResult, Registry, RegistryError, Role};

/// One member of the registry, as `tenantry member list` shows it.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct MemberRecord {
    pub name: String,
    /// The member's public key, as `tenantry member key` printed it.
    pub public_key: String,
    /// Its first 8 bytes of SHA-256, to compare by eye.
    pub fingerprint: String,
    pub role: Role,
    /// The data key their wrap holds (the registry's current key).
    pub key_id: String,
    pub added_at: String,
    pub added_by: String,
    /// Whether this is the member whose key is in this machine's keyring.
    pub you: bool,
}

/// What `member add` did.
#[derive(Debug, Clone, Serialize)]
pub struct MemberAdded {
    pub member: MemberRecord,
    /// The caller, enrolled first because the registry had no members yet.
    pub enrolled: Option<MemberRecord>,
}

/// What `member remove` did.
#[derive(Debug, Clone, Serialize)]
pub struct MemberRemoved {
    pub name: String,
    /// The data key before and after the rotation.
    pub old_key_id: String,
    pub new_key_id: String,
    /// Connection strings re-encrypted under the new key.
    pub reencrypted: usize,
    /// Members the new key was wrapped for.
    pub rewrapped: usize,
}

/// A member's name: 1 to 64 letters, digits and `. _ @ + -` (an OS account,
/// an e-mail address or a machine's name), starting with a letter or digit.
pub fn member_name(input: &str) -> Result<String, RegistryError> {
    let bad = |reason: &str| RegistryError::InvalidInput {
        field: "member name",
        reason: format!("`{}` {reason}", crate::escape_controls(input)),
    };
    if input.is_empty() || input.chars().count() > 64 {
        return Err(bad("must be 1 to 64 characters long"));
    }
    if !input
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
    {
        return Err(bad("must start with a letter or digit"));
    }
    if !input
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._@+-".contains(c))
    {
        return Err(bad("may hold only letters, digits and . _ @ + -"));
    }
    Ok(input.to_owned())
}

type MemberRow = (String, String, String, String, String, String);

fn record(row: MemberRow, me: Option<&str>) -> MemberRecord {
    let (name, public_key, key_id, added_at, added_by, role) = row;
    MemberRecord {
        fingerprint: MemberPublicKey::parse(&public_key)
            .map(|k| k.fingerprint())
            .unwrap_or_default(),
        // The table's CHECK allows only the three names.
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        you: me == Some(name.as_str()),
        name,
        public_key,
        key_id,
        added_at,
        added_by,
    }
}

const MEMBER_COLUMNS: &str =
    "SELECT name, public_key, key_id, added_at, added_by, role FROM members";

/// Wraps the key of `vault` for every member and stores the wraps (inside
/// the transaction that switches the registry to that key).
pub(crate) async fn rewrap_all(
    tx: &mut AnyConnection,
    registry_id: &str,
    vault: &Vault,
) -> Result<usize, RegistryError> {
    let members: Vec<(i64, String)> = sqlx::query_as("SELECT id, public_key FROM members")
        .fetch_all(&mut *tx)
        .await?;
    for (id, public_key) in &members {
        let wrapped = vault.wrap_for(registry_id, &MemberPublicKey::parse(public_key)?)?;
        sqlx::query("UPDATE members SET key_id = $1, wrapped_key = $2 WHERE id = $3")
            .bind(vault.key_id().to_string())
            .bind(wrapped)
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(members.len())
}

/// Removes the member `name` inside the rotation's transaction; on a
/// PostgreSQL registry their database login loses the registry's groups in
/// that same transaction.
pub(crate) async fn delete_member(tx: &mut AnyConnection, name: &str) -> Result<(), RegistryError> {
    if crate::Backend::of(tx) == crate::Backend::Postgres {
        if let Some(login) = crate::grants::db_user_of(&mut *tx, name).await? {
            let registry_id: String =
                sqlx::query_scalar("SELECT registry_id FROM registry_identity WHERE id = 1")
                    .fetch_one(&mut *tx)
                    .await?;
            crate::grants::regrant(&mut *tx, &registry_id, &login, None).await?;
        }
    }
    let done = sqlx::query("DELETE FROM members WHERE name = $1")
        .bind(name)
        .execute(&mut *tx)
        .await?;
    if done.rows_affected() == 0 {
        return Err(RegistryError::MemberNotFound {
            name: crate::escape_controls(name),
        });
    }
    Ok(())
}

impl Registry {
    /// How many members the registry has (0: a one-person registry).
    pub async fn member_count(&self) -> Result<i64, RegistryError> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM members")
            .fetch_one(self.pool())
            .await?)
    }

    /// This person's member key for this registry, made in `keys` (and read
    /// back) when there is none yet; `true` when it was made now.
    pub async fn member_key(
        &self,
        keys: &dyn KeyStore,
    ) -> Result<(MemberPublicKey, bool), RegistryError> {
        let entry = KeyEntry::member(&self.registry_id().await?);
        let (public, made) = own_or_new_public(keys, &entry)?;
        if !made {
            return Ok((public, false));
        }
        self.audit(
            None,
            "member.key",
            &format!(
                "member key {} made in {} (entry {entry})",
                public.fingerprint(),
                keys.describe()
            ),
            AuditResult::Ok,
        )
        .await?;
        Ok((public, true))
    }

    /// The members, by name; `you` marks the member this process acts for
    /// (see [`Registry::identify`]).
    pub async fn members(&self) -> Result<Vec<MemberRecord>, RegistryError> {
        let me = self.caller().map(|c| c.name);
        let rows: Vec<MemberRow> = sqlx::query_as(&format!("{MEMBER_COLUMNS} ORDER BY name"))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.into_iter().map(|r| record(r, me.as_deref())).collect())
    }

    /// Wraps the data key for a new member. On a registry with no members
    /// yet, the caller is enrolled first, as `me` (their member key made if
    /// missing); otherwise the caller must be a member. Audited either way.
    pub async fn add_member(
        &self,
        keys: &dyn KeyStore,
        vault: &Vault,
        name: &str,
        public_key: &str,
        role: Role,
        me: &str,
    ) -> Result<MemberAdded, RegistryError> {
        self.authorize(Action::Members).await?;
        let result = self
            .add_member_inner(keys, vault, name, public_key, role, me)
            .await;
        let result = self.audited(None, "member.add", result).await?;
        Ok(result)
    }

    async fn add_member_inner(
        &self,
        keys: &dyn KeyStore,
        vault: &Vault,
        name: &str,
        public_key: &str,
        role: Role,
        me: &str,
    ) -> Result<MemberAdded, RegistryError> {
        let name = member_name(name)?;
        let public = MemberPublicKey::parse(public_key)?;
        let registry_id = self.registry_id().await?;
        let entry = KeyEntry::member(&registry_id);
        let mut tx = self.write_tx().await?;
        current_key(&mut tx, vault.key_id()).await?;
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM members")
            .fetch_one(&mut *tx)
            .await?;
        let mut enrolled = None;
        let caller = if count == 0 {
            let me = member_name(me)?;
            let (mine, _) = own_or_new_public(keys, &entry)?;
            if me == name || mine == public {
                return Err(RegistryError::MemberRefused {
                    reason: format!(
                        "`{name}` would be enrolled twice: the first `member add` enrols you (as `{me}`, with this machine's member key) and adds one other member; add yourself with --as NAME and the other member with their own key"
                    ),
                });
            }
            insert(&mut tx, &registry_id, vault, &me, &mine, Role::Admin, &me).await?;
            enrolled = Some(me.clone());
            me
        } else {
            caller_name(&mut tx, keys, &entry, "add members").await?
        };
        insert(&mut tx, &registry_id, vault, &name, &public, role, &caller).await?;
        audit_in(
            &mut tx,
            &self.actor_name(),
            None,
            "member.add",
            &format!(
                "{}member `{name}` added as {role} by `{caller}` (key {}); the data key {} is wrapped for them",
                enrolled
                    .as_ref()
                    .map(|m| format!("`{m}` enrolled as the registry's first member; "))
                    .unwrap_or_default(),
                public.fingerprint(),
                vault.key_id()
            ),
            AuditResult::Ok,
        )
        .await?;
        tx.commit().await?;
        if let Some(me) = &enrolled {
            // The first add makes the caller a member: act for them now.
            self.set_caller(Some(crate::Caller {
                name: me.clone(),
                role: Role::Admin,
            }));
        }
        let all = self.members().await?;
        let find = |n: &str| all.iter().find(|m| m.name == n).cloned();
        Ok(MemberAdded {
            member: find(&name).ok_or(RegistryError::MemberNotFound { name: name.clone() })?,
            enrolled: enrolled.as_deref().and_then(find),
        })
    }

    /// Gives a member another role. The registry always keeps an admin.
    pub async fn set_member_role(&self, name: &str, role: Role) -> Result<(), RegistryError> {
        self.authorize(Action::Members).await?;
        let result = self.set_member_role_inner(name, role).await;
        self.audited(None, "member.role", result).await
    }

    async fn set_member_role_inner(&self, name: &str, role: Role) -> Result<(), RegistryError> {
        let registry_id = self.registry_id().await?;
        let mut tx = self.write_tx().await?;
        target_exists(&mut tx, name).await?;
        let other_admins: i64 =
            sqlx::query_scalar("SELECT count(*) FROM members WHERE role = 'admin' AND name <> $1")
                .bind(name)
                .fetch_one(&mut *tx)
                .await?;
        if role != Role::Admin && other_admins == 0 {
            return Err(RegistryError::MemberRefused {
                reason: format!(
                    "`{name}` is the registry's only admin; make another member admin first"
                ),
            });
        }
        sqlx::query("UPDATE members SET role = $1 WHERE name = $2")
            .bind(role.as_str())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        // Their database login follows, in the same transaction.
        if self.backend == crate::Backend::Postgres {
            if let Some(login) = crate::grants::db_user_of(&mut tx, name).await? {
                crate::grants::regrant(&mut tx, &registry_id, &login, Some(role)).await?;
            }
        }
        audit_in(
            &mut tx,
            &self.actor_name(),
            None,
            "member.role",
            &format!("member `{name}` is now {role}"),
            AuditResult::Ok,
        )
        .await?;
        tx.commit().await?;
        if self.caller().is_some_and(|c| c.name == name) {
            self.set_caller(Some(crate::Caller {
                name: name.to_owned(),
                role,
            }));
        }
        Ok(())
    }

    /// Removes a member: the data key is rotated (every connection string
    /// re-encrypted) and the new key wrapped for the other members only, in
    /// one transaction. The caller must be another member. Audited either way.
    pub async fn remove_member(
        &self,
        keys: &dyn KeyStore,
        vault: &Vault,
        name: &str,
    ) -> Result<(Vault, MemberRemoved), RegistryError> {
        self.authorize(Action::Members).await?;
        let result = self.remove_member_inner(keys, vault, name).await;
        let (new, removed) = self.audited(None, "member.remove", result).await?;
        self.audit(
            None,
            "member.remove",
            &format!(
                "member `{}` removed; the data key was rotated from {} to {} ({} connection strings re-encrypted) and wrapped for the {} other members",
                removed.name, removed.old_key_id, removed.new_key_id, removed.reencrypted, removed.rewrapped
            ),
            AuditResult::Ok,
        )
        .await?;
        Ok((new, removed))
    }

    async fn remove_member_inner(
        &self,
        keys: &dyn KeyStore,
        vault: &Vault,
        name: &str,
    ) -> Result<(Vault, MemberRemoved), RegistryError> {
        let registry_id = self.registry_id().await?;
        let entry = KeyEntry::member(&registry_id);
        {
            // Checked before anything is made; checked again by the rotation
            // inside its own transaction.
            let mut conn = self.pool().acquire().await?;
            let caller = caller_name(&mut conn, keys, &entry, "remove members").await?;
            target_exists(&mut conn, name).await?;
            if caller == name {
                return Err(RegistryError::MemberRefused {
                    reason: format!(
                        "you cannot remove yourself (`{name}`): the rotation would leave the new key in your keyring; ask another member to remove you"
                    ),
                });
            }
        }
        let (new, reencrypted, rewrapped) = self.rotate_key_inner(keys, vault, Some(name)).await?;
        let removed = MemberRemoved {
            name: name.to_owned(),
            old_key_id: vault.key_id().to_string(),
            new_key_id: new.key_id().to_string(),
            reencrypted,
            rewrapped,
        };
        Ok((new, removed))
    }

    /// Opens the data key `key_id` through this person's member key.
    pub(crate) async fn open_as_member(
        &self,
        keys: &dyn KeyStore,
        registry_id: &str,
        key_id: KeyId,
        members: i64,
    ) -> Result<DataKey, RegistryError> {
        let entry = KeyEntry::member(registry_id);
        let Some(secret) = own_secret(keys, &entry)? else {
            return Err(RegistryError::NotAMember {
                members,
                detail: format!(
                    "{} holds no member key for it (entry {entry})",
                    keys.describe()
                ),
            });
        };
        let public = secret.public();
        let row: Option<(String, Vec<u8>)> =
            sqlx::query_as("SELECT key_id, wrapped_key FROM members WHERE public_key = $1")
                .bind(public.to_string())
                .fetch_optional(self.pool())
                .await?;
        let Some((wrapped_for, wrapped)) = row else {
            return Err(RegistryError::NotAMember {
                members,
                detail: format!(
                    "this machine's member key {} is not one of theirs (it was removed, or not added yet)",
                    public.fingerprint()
                ),
            });
        };
        if wrapped_for != key_id.to_string() {
            return Err(RegistryError::MemberRefused {
                reason: format!(
                    "your member row holds data key {wrapped_for}, and the registry is on key {key_id}; ask another member to remove and add you again"
                ),
            });
        }
        Ok(member::unwrap(&secret, registry_id, key_id, &wrapped)?)
    }
}

/// This person's member key, if `keys` holds one.
fn own_secret(
    keys: &dyn KeyStore,
    entry: &KeyEntry,
) -> Result<Option<MemberSecret>, RegistryError> {
    Ok(keys
        .load_text(entry)?
        .map(|t| MemberSecret::from_stored(&t))
        .transpose()?)
}

/// The public half of this person's member key, made in `keys` (and read
/// back) when there is none yet; `true` when it was made now.
fn own_or_new_public(
    keys: &dyn KeyStore,
    entry: &KeyEntry,
) -> Result<(MemberPublicKey, bool), RegistryError> {
    if let Some(secret) = own_secret(keys, entry)? {
        return Ok((secret.public(), false));
    }
    let secret = MemberSecret::generate();
    save_verified_text(keys, entry, &secret.to_stored())?;
    Ok((secret.public(), true))
}

/// The name of the member whose key is in `keys`, or a refusal naming what
/// they tried to do.
async fn caller_name(
    conn: &mut AnyConnection,
    keys: &dyn KeyStore,
    entry: &KeyEntry,
    doing: &str,
) -> Result<String, RegistryError> {
    let members: i64 = sqlx::query_scalar("SELECT count(*) FROM members")
        .fetch_one(&mut *conn)
        .await?;
    let mine = own_secret(keys, entry)?.map(|s| s.public());
    let name: Option<String> = match &mine {
        Some(public) => {
            sqlx::query_scalar("SELECT name FROM members WHERE public_key = $1")
                .bind(public.to_string())
                .fetch_optional(&mut *conn)
                .await?
        }
        None => None,
    };
    name.ok_or_else(|| RegistryError::NotAMember {
        members,
        detail: format!(
            "only a member can {doing}, and this machine's keyring holds no member key of theirs"
        ),
    })
}

async fn target_exists(conn: &mut AnyConnection, name: &str) -> Result<(), RegistryError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT id FROM members WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
    found
        .map(|_| ())
        .ok_or_else(|| RegistryError::MemberNotFound {
            name: crate::escape_controls(name),
        })
}

/// Refuses a vault whose key is no longer the registry's (rotated since it
/// was opened): a wrap of it would open nothing.
pub(crate) async fn current_key(conn: &mut AnyConnection, key: KeyId) -> Result<(), RegistryError> {
    let current: Option<String> = sqlx::query_scalar("SELECT key_id FROM vault_meta WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await?;
    match current {
        Some(k) if k == key.to_string() => Ok(()),
        Some(k) => Err(RegistryError::MemberRefused {
            reason: format!(
                "the registry's data key was rotated to {k} meanwhile; run the command again"
            ),
        }),
        None => Err(RegistryError::MemberRefused {
            reason: "this registry has no data key yet; add a tenant first".into(),
        }),
    }
}

async fn insert(
    tx: &mut AnyConnection,
    registry_id: &str,
    vault: &Vault,
    name: &str,
    public: &MemberPublicKey,
    role: Role,
    added_by: &str,
) -> Result<(), RegistryError> {
    let taken: Option<String> =
        sqlx::query_scalar("SELECT name FROM members WHERE name = $1 OR public_key = $2")
            .bind(name)
            .bind(public.to_string())
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(other) = taken {
        return Err(RegistryError::MemberTaken {
            what: if other == name {
                format!("`{name}`")
            } else {
                format!("the key {} (as `{other}`)", public.fingerprint())
            },
        });
    }
    let wrapped = vault.wrap_for(registry_id, public)?;
    sqlx::query(
        "INSERT INTO members (name, public_key, key_id, wrapped_key, role, added_by) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(name)
    .bind(public.to_string())
    .bind(vault.key_id().to_string())
    .bind(wrapped)
    .bind(role.as_str())
    .bind(added_by)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
