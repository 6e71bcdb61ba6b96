//! On a PostgreSQL registry, the database refuses what a member's role may
//! not do, beside the engine's [`Registry::authorize`]: each role is a
//! `NOLOGIN` group role of the registry's database with the table
//! privileges that role needs, and a member's own database login is given
//! exactly their role's group (`tenantry member db-user`). A viewer's login
//! then cannot change the registry, even with `psql`.
//!
//! The groups are named after the registry (`tenantry_<id>_viewer`, …),
//! since roles are shared by every database of a PostgreSQL server. Every
//! name in these statements goes through [`tenantry_model::quote::postgres`].

use sqlx::AnyConnection;
use tenantry_model::quote;

use crate::{audit_in, Action, AuditResult, Backend, Registry, RegistryError, Role};

const ROLES: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

/// The group role of `role` in the registry `registry_id`.
fn group(registry_id: &str, role: Role) -> String {
    let short: String = registry_id.chars().take(16).collect();
    format!("tenantry_{short}_{}", role.as_str())
}

/// Makes the registry's three groups if they are missing and gives each its
/// privileges (again: a table added by a later migration is covered).
async fn ensure_groups(tx: &mut AnyConnection, registry_id: &str) -> Result<(), RegistryError> {
    let schema: String = sqlx::query_scalar("SELECT CAST(current_schema() AS text)")
        .fetch_one(&mut *tx)
        .await?;
    let schema = quote::postgres(&schema);
    let [viewer, operator, admin] = ROLES.map(|r| quote::postgres(&group(registry_id, r)));
    for role in ROLES {
        let name = group(registry_id, role);
        let exists: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_roles WHERE rolname = $1")
            .bind(&name)
            .fetch_one(&mut *tx)
            .await?;
        if exists == 0 {
            sqlx::query(&format!("CREATE ROLE {} NOLOGIN", quote::postgres(&name)))
                .execute(&mut *tx)
                .await?;
        }
    }
    let statements = [
        // Viewers read everything; they append to the audit log only (a
        // refusal of theirs is audited too).
        format!("GRANT USAGE ON SCHEMA {schema} TO {viewer}"),
        format!("GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {viewer}"),
        format!("GRANT INSERT ON audit_log TO {viewer}"),
        // Operators also record checks, scans and the operations they run
        // (guard, repair, accept, sync, upgrade) and their backups.
        format!("GRANT {viewer} TO {operator}"),
        format!(
            "GRANT INSERT, UPDATE ON tenants, operations, operation_steps, backups, scan_history TO {operator}"
        ),
        format!("GRANT DELETE ON scan_history TO {operator}"),
        format!("GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {operator}"),
        // Admins change everything: tenants, templates, keys, members.
        format!("GRANT {operator} TO {admin}"),
        format!("GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO {admin}"),
        format!("GRANT ALL ON ALL SEQUENCES IN SCHEMA {schema} TO {admin}"),
    ];
    for s in statements {
        sqlx::query(&s).execute(&mut *tx).await?;
    }
    Ok(())
}

/// Gives login `db_user` the group of `role` and no other of the
/// registry's groups (`None`: none at all).
pub(crate) async fn regrant(
    tx: &mut AnyConnection,
    registry_id: &str,
    db_user: &str,
    role: Option<Role>,
) -> Result<(), RegistryError> {
    let login = quote::postgres(db_user);
    for r in ROLES {
        let g = quote::postgres(&group(registry_id, r));
        let statement = if Some(r) == role {
            format!("GRANT {g} TO {login}")
        } else {
            format!("REVOKE {g} FROM {login}")
        };
        sqlx::query(&statement).execute(&mut *tx).await?;
    }
    Ok(())
}

/// The database login recorded for member `name`, if any.
pub(crate) async fn db_user_of(
    tx: &mut AnyConnection,
    name: &str,
) -> Result<Option<String>, RegistryError> {
    Ok(
        sqlx::query_scalar::<_, Option<String>>("SELECT db_user FROM members WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?
            .flatten(),
    )
}

impl Registry {
    /// Records `db_user` as member `name`'s own login to this PostgreSQL
    /// registry and gives it exactly the privileges of the member's role;
    /// later role changes and the member's removal follow. Admins only.
    pub async fn set_member_db_user(&self, name: &str, db_user: &str) -> Result<(), RegistryError> {
        self.authorize(Action::Members).await?;
        let result = self.set_member_db_user_inner(name, db_user).await;
        self.audited(None, "member.db_user", result).await
    }

    async fn set_member_db_user_inner(
        &self,
        name: &str,
        db_user: &str,
    ) -> Result<(), RegistryError> {
        if self.backend != Backend::Postgres {
            return Err(RegistryError::InvalidInput {
                field: "db_user",
                reason: "database logins are for a registry in PostgreSQL; a SQLite registry is a file, protected by its file permissions".into(),
            });
        }
        if db_user.is_empty() || db_user.len() > 63 || db_user.chars().any(char::is_control) {
            return Err(RegistryError::InvalidInput {
                field: "db_user",
                reason: "a PostgreSQL login name is 1 to 63 bytes, without control characters"
                    .into(),
            });
        }
        let registry_id = self.registry_id().await?;
        let mut tx = self.write_tx().await?;
        let role: Option<String> = sqlx::query_scalar("SELECT role FROM members WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        let role = Role::parse(&role.ok_or_else(|| RegistryError::MemberNotFound {
            name: crate::escape_controls(name),
        })?)?;
        let login: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_roles WHERE rolname = $1")
            .bind(db_user)
            .fetch_one(&mut *tx)
            .await?;
        if login == 0 {
            return Err(RegistryError::InvalidInput {
                field: "db_user",
                reason: format!(
                    "the server has no login `{}`; create it first (CREATE ROLE … LOGIN)",
                    crate::escape_controls(db_user)
                ),
            });
        }
        let taken: Option<String> =
            sqlx::query_scalar("SELECT name FROM members WHERE db_user = $1 AND name <> $2")
                .bind(db_user)
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(other) = taken {
            return Err(RegistryError::MemberTaken {
                what: format!(
                    "the login `{}` (member `{other}`'s)",
                    crate::escape_controls(db_user)
                ),
            });
        }
        if let Some(previous) = db_user_of(&mut tx, name).await? {
            if previous != db_user {
                regrant(&mut tx, &registry_id, &previous, None).await?;
            }
        }
        ensure_groups(&mut tx, &registry_id).await?;
        regrant(&mut tx, &registry_id, db_user, Some(role)).await?;
        sqlx::query("UPDATE members SET db_user = $1 WHERE name = $2")
            .bind(db_user)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        audit_in(
            &mut tx,
            &self.actor_name(),
            None,
            "member.db_user",
            &format!(
                "member `{name}` logs in to the registry's database as `{}`, with the privileges of {} {role}",
                crate::escape_controls(db_user),
                if role == Role::Viewer { "a" } else { "an" }
            ),
            AuditResult::Ok,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
