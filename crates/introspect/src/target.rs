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

/// Query-string keys whose values are known to be harmless (options, paths,
/// names). Every other parameter's value is treated as a secret: redacted
/// wherever the URL is shown or stored, scrubbed from driver messages.
/// Keys are compared percent-decoded and lower-cased, as the drivers read them.
const HARMLESS_PARAMS: [&str; 28] = [
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "application_name",
    "connect_timeout",
    "target_session_attrs",
    "charset",
    "collation",
    "socket",
    "timezone",
    "time-zone",
    "mode",
    "cache",
    "immutable",
    "vfs",
];

/// The parameters each driver reads (sqlx 0.8's option parsers). Any other
/// parameter is dropped before the driver sees the URL: sqlx logs an unknown
/// PostgreSQL parameter *with its value* (`?sslpassword=…`), and ignores it.
const POSTGRES_PARAMS: [&str; 16] = [
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
];
const POSTGRES_MORE_PARAMS: [&str; 2] = ["application_name", "options"];
const MYSQL_PARAMS: [&str; 13] = [
    "sslmode",
    "ssl-mode",
    "sslca",
    "ssl-ca",
    "charset",
    "collation",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "socket",
    "timezone",
];

/// A query key as the drivers read it: percent-decoded, `+` as space (they
/// compare it case-sensitively).
fn decoded_key(raw: &str) -> String {
    percent_decode(&raw.replace('+', " "))
}

/// A query key for the harmless-list check: decoded and lower-cased, so no
/// spelling of a secret key passes as harmless.
fn param_key(raw: &str) -> String {
    decoded_key(raw).to_ascii_lowercase()
}

fn is_harmless(raw_key: &str) -> bool {
    HARMLESS_PARAMS.contains(&param_key(raw_key).as_str())
}

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
                    // A path with an `@` holds the tail of a password that
                    // broke the URL's structure.
                    let path = if u.path().contains('@') {
                        "/•••"
                    } else {
                        u.path()
                    };
                    format!("{host}{port}{path}")
                }
                Err(_) => self.redacted.clone(),
            },
        }
    }

    /// One comparable key for where a tenant's schema is: engine, host, port,
    /// database and the schema (`public` on PostgreSQL and the database on
    /// MySQL when none is given); for SQLite the file, resolved as far as it
    /// exists. Two tenants with the same key share one schema. Holds no
    /// credentials.
    pub fn place_key(&self, schema: Option<&str>) -> String {
        if self.engine == Engine::Sqlite {
            return format!("sqlite:{}", self.sqlite_resolved().display());
        }
        let (host, port) = self.host_port();
        let named = self.database().unwrap_or_default();
        // On MySQL/MariaDB the schema is a database: the one in the path
        // matters only when no schema is given.
        let (database, schema) = match (self.engine, schema.filter(|s| !s.is_empty())) {
            (Engine::Postgres, Some(s)) => (named, s.to_owned()),
            (Engine::Postgres, None) => (named, "public".to_owned()),
            (_, Some(s)) => (String::new(), s.to_owned()),
            (_, None) => (String::new(), named),
        };
        // Lengths first, so no name can make two places read alike.
        format!(
            "{}://{host}:{port}/{}:{database}/{}:{schema}",
            self.engine.as_str(),
            database.len(),
            schema.len()
        )
    }

    /// The server a tenant lives on, as one comparable key with no
    /// credentials and no database: `postgres://host:port`,
    /// `mysql://host:port`, or `sqlite:` and the directory of the file
    /// (resolved as [`ConnectionUrl::place_key`] resolves it). What the
    /// fleet screen filters by and `scan --shard` splits the fleet by.
    pub fn server_key(&self) -> String {
        if self.engine == Engine::Sqlite {
            let file = self.sqlite_resolved();
            let dir = file.parent().unwrap_or(std::path::Path::new(""));
            return format!("sqlite:{}", dir.display());
        }
        let (host, port) = self.host_port();
        format!("{}://{host}:{port}", self.engine.as_str())
    }

    /// The SQLite file, resolved as far as it exists.
    fn sqlite_resolved(&self) -> PathBuf {
        let path = self.sqlite_path();
        std::fs::canonicalize(&path)
            .ok()
            .or_else(|| {
                let parent = path.parent().filter(|p| !p.as_os_str().is_empty())?;
                Some(std::fs::canonicalize(parent).ok()?.join(path.file_name()?))
            })
            .unwrap_or(path)
    }

    /// The host (lower case) and port, with the engine's default port.
    fn host_port(&self) -> (String, u16) {
        let (host, port) = match url::Url::parse(self.expose_secret()) {
            Ok(u) => (
                u.host_str().unwrap_or("localhost").to_ascii_lowercase(),
                u.port(),
            ),
            Err(_) => (String::new(), None),
        };
        let port = port.unwrap_or(match self.engine {
            Engine::Postgres => 5432,
            _ => 3306,
        });
        (host, port)
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

    /// The same URL with `password` set as its password (percent-encoded as
    /// the URL needs): how the console combines a URL typed without its
    /// password and a masked password field. A URL that already has a
    /// password, or has no user name, is refused rather than guessed at.
    pub fn with_password(&self, password: &SecretString) -> Result<ConnectionUrl, IntrospectError> {
        let invalid = |reason: &str| IntrospectError::InvalidUrl {
            url: self.redacted.clone(),
            reason: reason.to_owned(),
        };
        if self.engine == Engine::Sqlite {
            return Err(invalid(
                "a SQLite file has no password; leave the password empty",
            ));
        }
        let mut u = url::Url::parse(self.expose_secret()).map_err(|e| invalid(&e.to_string()))?;
        if u.password().is_some() {
            return Err(invalid(
                "the URL already has a password; give it either in the URL or in the password field, not both",
            ));
        }
        if u.username().is_empty() {
            return Err(invalid(
                "a password needs a user name in the URL (scheme://USER@host/database)",
            ));
        }
        u.set_password(Some(password.expose_secret()))
            .map_err(|()| invalid("this URL cannot carry a password"))?;
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
        }
        if let Some((_, query)) = self.expose_secret().split_once('?') {
            for pair in query.split('&') {
                let (k, v) = pair.split_once('=').unwrap_or(("", pair));
                if !is_harmless(k) {
                    forms.push(v.to_owned());
                    forms.push(percent_decode(&v.replace('+', " ")));
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

    /// [`ConnectionUrl::driver_url`] as a typed secret, for a connection
    /// made outside this crate (the registry's own PostgreSQL database).
    pub fn driver_secret(&self) -> SecretString {
        SecretString::from(self.driver_url())
    }

    /// The URL text as the driver is given it: `mariadb://` spelled as the
    /// driver wants it, and only the query parameters the driver reads (an
    /// unknown one is dropped with a warning that names its key, never its
    /// value; the driver would have ignored it, after logging the value).
    pub(crate) fn driver_url(&self) -> String {
        let raw = self.expose_secret();
        let raw = match raw.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("mariadb") => format!("mysql://{rest}"),
            _ => raw.to_owned(),
        };
        let Some((head, query)) = raw.split_once('?') else {
            return raw;
        };
        let known = |k: &str| match self.engine {
            Engine::Postgres => {
                POSTGRES_PARAMS.contains(&k)
                    || POSTGRES_MORE_PARAMS.contains(&k)
                    || k.starts_with("options[")
            }
            Engine::Mysql => MYSQL_PARAMS.contains(&k),
            Engine::Sqlite => true,
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let key = decoded_key(pair.split_once('=').map_or(*pair, |(k, _)| k));
                let keep = pair.is_empty() || known(&key);
                if !keep {
                    let shown: String = key
                        .chars()
                        .filter(|c| !c.is_control())
                        .take(40)
                        .collect();
                    tracing::warn!(
                        parameter = %shown,
                        server = %self.server_label(),
                        "ignoring a connection parameter the driver does not read (its value is not shown)"
                    );
                }
                keep && !pair.is_empty()
            })
            .collect();
        if kept.is_empty() {
            head.to_owned()
        } else {
            format!("{head}?{}", kept.join("&"))
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

/// Redacts the secrets of any URL-shaped text, parseable or not:
/// `postgres://app:s3cret@db1/acme` → `postgres://app:•••@db1/acme`, and the
/// value of every query parameter not known to be harmless
/// (`?sslpassword=…`, `?pass%77ord=…`) likewise. A password holding a raw
/// `/`, `?` or `@` that breaks the URL's structure is still hidden: the
/// user information then ends at the last `@`.
pub fn redact(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        // `sqlite:path?…` and bare paths: only a query can hold secrets.
        return match raw.split_once('?') {
            Some((head, query)) => format!("{head}?{}", redact_query(query)),
            None => raw.to_owned(),
        };
    };
    // Where the user information ends: the URL's own `@` when it parses
    // with a plain path, else the last `@` anywhere.
    let parsed_ok = url::Url::parse(raw)
        .ok()
        .filter(|u| !u.path().contains('@'));
    let at = match &parsed_ok {
        Some(_) => rest
            .find(['/', '?', '#'])
            .map_or(rest, |end| &rest[..end])
            .rfind('@'),
        None => rest.rfind('@'),
    };
    let (userinfo, after) = match at {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    let mut out = format!("{scheme}://");
    if let Some(userinfo) = userinfo {
        match userinfo.split_once(':') {
            Some((user, _)) => out.push_str(&format!("{user}:{REDACTED}@")),
            None if userinfo.contains(['/', '?']) => out.push_str(&format!("{REDACTED}@")),
            None => out.push_str(&format!("{userinfo}@")),
        }
    }
    match after.split_once('?') {
        Some((host_path, query)) => {
            out.push_str(host_path);
            out.push('?');
            out.push_str(&redact_query(query));
        }
        None => out.push_str(after),
    }
    out
}

/// `k=v&…` with every value not known harmless replaced by `•••` (a bare
/// key without `=` is shown as `•••`: it may be a secret itself).
fn redact_query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if is_harmless(k) => format!("{k}={v}"),
            Some((k, _)) => format!("{k}={REDACTED}"),
            None if pair.is_empty() => String::new(),
            None => REDACTED.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANARY: &str = "Canary-pw-7f3a";

    #[test]
    fn a_password_field_joins_the_url_encoded_and_never_shows() {
        let odd = format!("{CANARY} @:/?#%&=é");
        let url = ConnectionUrl::parse("postgres://app@db1:5432/acme")
            .unwrap()
            .with_password(&SecretString::from(odd.clone()))
            .unwrap();
        let parsed = url::Url::parse(url.expose_secret()).unwrap();
        assert_eq!(percent_decode(parsed.password().unwrap()), odd);
        assert_eq!(parsed.username(), "app");
        assert_eq!(url.redacted(), "postgres://app:•••@db1:5432/acme");
        assert!(!format!("{url:?} {url}").contains(CANARY));

        let refused = |raw: &str| {
            let e = ConnectionUrl::parse(raw)
                .unwrap()
                .with_password(&SecretString::from(CANARY.to_owned()))
                .unwrap_err()
                .to_string();
            assert!(!e.contains(CANARY), "{e}");
            e
        };
        assert!(refused("postgres://app:other@db1/acme").contains("already has a password"));
        assert!(refused("mysql://db1/acme").contains("user name"));
        assert!(refused("sqlite:/tmp/x.db").contains("no password"));
    }

    #[test]
    fn redaction_hides_passwords_in_every_position() {
        assert_eq!(
            redact(&format!("postgres://app:{CANARY}@db1:5432/acme")),
            "postgres://app:•••@db1:5432/acme"
        );
        assert_eq!(
            redact(&format!(
                "mysql://root@h/db?password={CANARY}&sslmode=required"
            )),
            "mysql://root@h/db?password=•••&sslmode=required"
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

    /// Issue 13, item 8: every place a password can hide.
    #[test]
    fn redaction_hides_secrets_in_every_parameter_and_odd_character() {
        let cases = [
            format!("postgres://app@h/db?sslpassword={CANARY}"),
            format!("postgres://app@h/db?Password={CANARY}"),
            format!("postgres://app@h/db?pwd={CANARY}&sslmode=require"),
            format!("postgres://app@h/db?pass%77ord={CANARY}"),
            format!("postgres://app@h/db?options=-c%20x%3D{CANARY}"),
            format!("postgres://app@h/db?{CANARY}"),
            format!("postgres://app:{CANARY}/x@h/db"),
            format!("postgres://app:{CANARY}?x@h/db"),
            format!("postgres://app:12/{CANARY}@h/db"),
            format!("postgres://app:{CANARY}@x@h/db"),
            format!("mysql://root:{CANARY}#frag@h/db"),
            format!("sqlite:/tmp/x.db?key={CANARY}"),
        ];
        for raw in &cases {
            let r = redact(raw);
            assert!(!r.contains(CANARY) && !r.contains("Canary"), "{raw} → {r}");
            if let Ok(url) = ConnectionUrl::parse(raw) {
                let shown = format!("{url} {url:?} {}", url.server_label());
                assert!(!shown.contains(CANARY), "{raw} → {shown}");
                let scrubbed = url.scrub(&format!("driver said {raw}"));
                assert!(!scrubbed.contains(CANARY), "{raw} → {scrubbed}");
            } else if let Err(e) = ConnectionUrl::parse(raw) {
                assert!(!e.to_string().contains(CANARY), "{raw} → {e}");
            }
        }
        // A driver message quoting a parameter's value alone.
        let url =
            ConnectionUrl::parse(&format!("postgres://app@h/db?sslpassword={CANARY}")).unwrap();
        assert_eq!(url.scrub(&format!("bad key {CANARY}")), "bad key •••");
        // Harmless parameters stay readable.
        assert_eq!(
            redact("postgres://app:x@h/db?sslmode=require&application_name=tenantry"),
            "postgres://app:•••@h/db?sslmode=require&application_name=tenantry"
        );
        assert_eq!(
            redact("postgres://db1:5432/acme?application_name=a@b"),
            "postgres://db1:5432/acme?application_name=a@b"
        );
    }

    #[test]
    fn the_driver_is_given_only_the_parameters_it_reads() {
        let url = ConnectionUrl::parse(&format!(
            "postgres://app@h/db?sslpassword={CANARY}&sslmode=disable&Password={CANARY}&pass%77ord=pw"
        ))
        .unwrap();
        assert_eq!(
            url.driver_url(),
            "postgres://app@h/db?sslmode=disable&pass%77ord=pw"
        );
        let url =
            ConnectionUrl::parse(&format!("mariadb://root@h/db?pwd={CANARY}&charset=utf8mb4"))
                .unwrap();
        assert_eq!(url.driver_url(), "mysql://root@h/db?charset=utf8mb4");
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

    #[test]
    fn server_keys_name_the_server_only() {
        let key = |u: &str| ConnectionUrl::parse(u).unwrap().server_key();
        let canary = "pw-CANARY-7";
        for (url, want) in [
            (
                format!("postgres://app:{canary}@DB1.example:6432/fleet?sslmode=require"),
                "postgres://db1.example:6432",
            ),
            (
                format!("postgres://app:{canary}@db1.example/other"),
                "postgres://db1.example:5432",
            ),
            (
                format!("mariadb://root:{canary}@db2/t1"),
                "mysql://db2:3306",
            ),
            (
                format!("mysql://root@db2:3307/t1?password={canary}"),
                "mysql://db2:3307",
            ),
        ] {
            let got = key(&url);
            assert_eq!(got, want);
            assert!(!got.contains(canary));
        }
        assert_eq!(
            key("sqlite:///nonexistent-dir/t.db"),
            "sqlite:/nonexistent-dir"
        );
        let dir = tempfile::tempdir().unwrap();
        let resolved = std::fs::canonicalize(dir.path()).unwrap();
        let url = format!("sqlite://{}/./t.db", dir.path().display());
        assert_eq!(key(&url), format!("sqlite:{}", resolved.display()));
    }
}
