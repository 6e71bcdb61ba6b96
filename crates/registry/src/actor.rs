//! Who performs an operation, for the audit log: the OS account the
//! process runs as, asked of the OS (not `$USER`, which anyone can set),
//! and the host name.

/// The account and host an audit row is recorded for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub account: String,
    pub host: String,
}

/// The process's effective OS account and the host it runs on, asked of
/// the OS once per process (every audit row needs them).
pub fn current_actor() -> Actor {
    static ACTOR: std::sync::OnceLock<Actor> = std::sync::OnceLock::new();
    ACTOR
        .get_or_init(|| Actor {
            account: account(),
            host: host(),
        })
        .clone()
}

#[cfg(unix)]
fn account() -> String {
    let uid = nix::unistd::geteuid();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => user.name,
        _ => format!("uid {uid}"),
    }
}

#[cfg(unix)]
fn host() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown host".to_owned())
}

// Windows: the logon session's names (set by the OS at logon).
#[cfg(not(unix))]
fn account() -> String {
    std::env::var("USERNAME").unwrap_or_else(|_| "unknown".to_owned())
}

#[cfg(not(unix))]
fn host() -> String {
    std::env::var("COMPUTERNAME").unwrap_or_else(|_| "unknown host".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(unix)]
    fn the_account_comes_from_the_os_not_the_environment() {
        let real = current_actor();
        std::env::set_var("USER", "mallory");
        std::env::set_var("LOGNAME", "mallory");
        let again = current_actor();
        assert_eq!(real, again);
        assert_ne!(again.account, "mallory");
        assert!(!again.host.is_empty());
    }
}
