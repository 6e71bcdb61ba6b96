//! Connection URLs as typed secrets, and what a URL points at.
//!
//! Architecture invariant: the text of a connection URL is only reachable
//! through [`ConnectionUrl::expose_secret`], which is `pub(crate)`; everything
//! that leaves this crate (errors, `Debug`, `Display`) carries the redacted
//! form, with the password replaced by `•••`.

use std::fmt;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use tenantry_model::Engine;

use crate::error::IntrospectError;

/// What stands where a password was.
pub const REDACTED: &str = "•••";

/// Query-string keys whose values are secrets.
const SECRET_PARAMS: [&str; 5] = ["password", "pass", "pwd", "sslpassword", "passfile"];

/// A database connection URL. Not `Serialize`, not `Clone`-into-a-string:
/// `Debug` and `Display` print the redacted form.
pub struct ConnectionUrl {
    secret: SecretString,
    redacted: String,
    engine: Engine,
}

impl ConnectionUrl {
    /// Parses a URL: `postgres://` / `postgresql://`, `mysql://` /
    /// `mariadb://`, `sqlite:PATH` / `sqlite://PATH`, or a path to an
    /// existing `.db`/`.sqlite`/`.sqlite3` file.
    pub fn parse(raw: &str) -> Result<Self, IntrospectError> {
        let redacted = redact(raw);
        let invalid = |reason: &str| IntrospectError::InvalidUrl {
            url: redacted.clone(),
            reason: reason.to_owned(),
        };
        if raw.is_empty() {
            return Err(invalid("the URL is empty"));
        }
        if raw.contains('\0') {
            return Err(invalid("the URL contains a NUL byte"));
        }
        let engine = match scheme_of(raw) {
            Some(s)
                if s.eq_ignore_ascii_case("postgres") || s.eq_ignore_ascii_case("postgresql") =>
            {
                Engine::Postgres
            }
            Some(s) if s.eq_ignore_ascii_case("mysql") || s.eq_ignore_ascii_case("mariadb") => {
                Engine::Mysql
            }
            Some(s) if s.eq_ignore_ascii_case("sqlite") => Engine::Sqlite,
            Some(other) => {
                return Err(invalid(&format!(
                    "unknown scheme `{other}`; use postgres://, mysql://, mariadb:// or sqlite:"
                )))
            }
            None if looks_like_sqlite_path(raw) => Engine::Sqlite,
            None => {
                return Err(invalid(
                    "no scheme; use postgres://, mysql://, mariadb:// or sqlite:PATH",
                ))
            }
        };
        if engine != Engine::Sqlite {
            let parsed = url::Url::parse(raw).map_err(|e| invalid(&e.to_string()))?;
            if parsed.host_str().is_none_or(str::is_empty) && !has_socket_param(&parsed) {
                return Err(invalid("the URL names no host"));
            }
        }
        Ok(Self {
            secret: SecretString::from(raw.to_owned()),
            redacted,
            engine,
        })
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The URL with its password replaced by `•••`.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// `host:port/database` (or the SQLite path): what error messages name.
    pub fn server_label(&self) -> String {
        match self.engine {
            Engine::Sqlite => self.sqlite_path().display().to_string(),
            _ => match url::Url::parse(self.expose_secret()) {
                Ok(u) => {
                    let host = u.host_str().unwrap_or("localhost");
                    let port =
                        u.port()
                            .map(|p| format!(":{p}"))
                            .unwrap_or_else(|| match self.engine {
                                Engine::Postgres => ":5432".into(),
                                _ => ":3306".into(),
                            });
                    format!("{host}{port}{}", u.path())
                }
                Err(_) => self.redacted.clone(),
            },
        }
    }

    /// The database named in the path, if any.
    pub fn database(&self) -> Option<String> {
        if self.engine == Engine::Sqlite {
            return None;
        }
        let u = url::Url::parse(self.expose_secret()).ok()?;
        let db = u.path().trim_start_matches('/');
        if db.is_empty() {
            None
        } else {
            Some(percent_decode(db))
        }
    }

    /// The same server and credentials with another database in the path
    /// (empty for none): the maintenance connection that creates a tenant
    /// database, or a MySQL server-level connection.
    pub fn with_database(&self, database: &str) -> Result<ConnectionUrl, IntrospectError> {
        let mut u =
            url::Url::parse(self.expose_secret()).map_err(|e| IntrospectError::InvalidUrl {
                url: self.redacted.clone(),
                reason: e.to_string(),
            })?;
        u.set_path(&format!(
            "/{}",
            database
                .replace('%', "%25")
                .replace('/', "%2F")
                .replace('?', "%3F")
                .replace('#', "%23")
        ));
        ConnectionUrl::parse(u.as_str())
    }

    /// For SQLite: the file path.
    pub fn sqlite_path(&self) -> PathBuf {
        let raw = self.expose_secret();
        let no_query = raw.split('?').next().unwrap_or(raw);
        let path = no_query
            .strip_prefix("sqlite://")
            .or_else(|| no_query.strip_prefix("sqlite:"))
            .unwrap_or(no_query);
        PathBuf::from(percent_decode(path))
    }

    /// The password, if any, in its raw and decoded forms: used only to scrub
    /// driver messages before they become errors.
    pub(crate) fn password_forms(&self) -> Vec<String> {
        let mut forms = Vec::new();
        if let Ok(u) = url::Url::parse(self.expose_secret()) {
            if let Some(p) = u.password() {
                forms.push(p.to_owned());
                forms.push(percent_decode(p));
            }
            for (k, v) in u.query_pairs() {
                if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) {
                    forms.push(v.into_owned());
                }
            }
        }
        forms.retain(|f| !f.is_empty());
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        forms.dedup();
        forms
    }

    /// Replaces any form of this URL's password in `text` with `•••`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(self.expose_secret(), &self.redacted);
        for p in self.password_forms() {
            out = out.replace(&p, REDACTED);
        }
        out
    }

    /// The whole URL as a typed secret, for the vault to encrypt.
    pub fn to_secret(&self) -> SecretString {
        SecretString::from(self.expose_secret().to_owned())
    }

    pub(crate) fn expose_secret(&self) -> &str {
        self.secret.expose_secret()
    }

    /// The URL text, with `mariadb://` spelled as the driver wants it.
    pub(crate) fn driver_url(&self) -> String {
        let raw = self.expose_secret();
        match raw.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("mariadb") => format!("mysql://{rest}"),
            _ => raw.to_owned(),
        }
    }
}

impl Clone for ConnectionUrl {
    fn clone(&self) -> Self {
        Self {
            secret: SecretString::from(self.expose_secret().to_owned()),
            redacted: self.redacted.clone(),
            engine: self.engine,
        }
    }
}

impl fmt::Debug for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnectionUrl({})", self.redacted)
    }
}

impl fmt::Display for ConnectionUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

fn scheme_of(raw: &str) -> Option<&str> {
    let (scheme, _) = raw.split_once(':')?;
    let valid = !scheme.is_empty()
        && scheme.len() > 1 // `C:\x.db` is a Windows path, not a scheme
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

fn looks_like_sqlite_path(raw: &str) -> bool {
    let lower = raw.to_ascii_lowercase();
    [".db", ".sqlite", ".sqlite3"]
        .iter()
        .any(|ext| lower.ends_with(ext))
}

fn has_socket_param(u: &url::Url) -> bool {
    u.query_pairs()
        .any(|(k, _)| k.eq_ignore_ascii_case("host") || k.eq_ignore_ascii_case("socket"))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(Ok(b)) = s.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Redacts the password of any URL-shaped text, parseable or not:
/// `postgres://app:s3cret@db1/acme` → `postgres://app:•••@db1/acme`, and
/// `?password=…` values likewise.
pub fn redact(raw: &str) -> String {
    let (head, query) = match raw.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (raw, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = match userinfo.split_once(':') {
                        Some((user, _)) => format!("{user}:{REDACTED}"),
                        None => userinfo.to_owned(),
                    };
                    format!("{scheme}://{user}@{host}{path}")
                }
                None => head.to_owned(),
            }
        }
        None => head.to_owned(),
    };
    if let Some(q) = query {
        out.push('?');
        let params: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) => {
                    format!("{k}={REDACTED}")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "Canary-pw-7f3a";

    #[test]
    fn redaction_hides_passwords_in_every_position() {
        assert_eq!(
            redact(&format!("postgres://app:{CANARY}@db1:5432/acme")),
            "postgres://app:•••@db1:5432/acme"
        );
        assert_eq!(
            redact(&format!("mysql://root@h/db?password={CANARY}&ssl=true")),
            "mysql://root@h/db?password=•••&ssl=true"
        );
        // Unparseable, with an `@` in the password.
        let r = redact(&format!("postgres://u:{CANARY}@x@[bad/db"));
        assert!(!r.contains(CANARY), "{r}");
        assert_eq!(redact("postgres://db1/acme"), "postgres://db1/acme");
    }

    #[test]
    fn debug_display_and_errors_never_show_the_password() {
        let url = ConnectionUrl::parse(&format!("postgres://app:{CANARY}@db1/acme")).unwrap();
        assert!(!format!("{url:?} {url}").contains(CANARY));
        assert_eq!(url.server_label(), "db1:5432/acme");
        assert_eq!(url.database().as_deref(), Some("acme"));
        let err = ConnectionUrl::parse(&format!("postgres://app:{CANARY}@:99999/x")).unwrap_err();
        assert!(!err.to_string().contains(CANARY), "{err}");
        let err = ConnectionUrl::parse(&format!("oracle://app:{CANARY}@h/x")).unwrap_err();
        assert!(!err.to_string().contains(CANARY), "{err}");
        assert!(err.to_string().contains("unknown scheme"), "{err}");
    }

    #[test]
    fn scrub_removes_encoded_and_decoded_passwords() {
        let url = ConnectionUrl::parse("postgres://app:p%40ss%2Fword@db1/acme").unwrap();
        let msg = url.scrub("auth failed for p@ss/word and p%40ss%2Fword");
        assert_eq!(msg, "auth failed for ••• and •••");
    }

    #[test]
    fn engines_and_sqlite_paths() {
        assert_eq!(
            ConnectionUrl::parse("mariadb://root@127.0.0.1/x")
                .unwrap()
                .engine(),
            Engine::Mysql
        );
        let u = ConnectionUrl::parse("sqlite:///tmp/a b.db").unwrap();
        assert_eq!(u.sqlite_path(), PathBuf::from("/tmp/a b.db"));
        let u = ConnectionUrl::parse("sqlite:rel/x.sqlite?mode=ro").unwrap();
        assert_eq!(u.sqlite_path(), PathBuf::from("rel/x.sqlite"));
        let u = ConnectionUrl::parse("/var/lib/t.db").unwrap();
        assert_eq!(u.engine(), Engine::Sqlite);
        assert!(ConnectionUrl::parse("").is_err());
        assert!(ConnectionUrl::parse("hello").is_err());
        assert!(ConnectionUrl::parse("postgres://").is_err());
        assert!(ConnectionUrl::parse("postgres://h/x\0y").is_err());
    }
}
