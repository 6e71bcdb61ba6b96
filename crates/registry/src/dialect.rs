//! The two databases a registry lives in, and the few places their SQL
//! differs. Every statement is written once, with `$N` parameters (which
//! SQLite reads as well as PostgreSQL); a statement that needs one of the
//! expressions below takes it from the registry's [`Backend`], never by
//! rewriting its text.

use sqlx::AnyConnection;

/// The database a registry lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One person's registry: a SQLite file on their machine.
    Sqlite,
    /// A team's registry: a PostgreSQL database that many consoles and CLI
    /// runs share.
    Postgres,
}

impl Backend {
    /// The backend of an open registry connection.
    pub(crate) fn of(conn: &AnyConnection) -> Self {
        if conn.backend_name().eq_ignore_ascii_case("sqlite") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// The current time as every registry timestamp is written: ISO 8601
    /// in UTC with milliseconds (`2026-12-07T05:40:12.345Z`), so that text
    /// order is time order on both backends.
    pub(crate) fn now(self) -> &'static str {
        match self {
            Backend::Sqlite => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            // Defined by the PostgreSQL registry's first migration.
            Backend::Postgres => "tenantry_now()",
        }
    }

    /// The values of a JSON array of strings bound as parameter `param`,
    /// as a one-column (`value`) table.
    pub(crate) fn json_strings(self, param: &str) -> String {
        match self {
            Backend::Sqlite => format!("SELECT value FROM json_each({param})"),
            Backend::Postgres => {
                format!("SELECT value FROM json_array_elements_text(CAST({param} AS json))")
            }
        }
    }

    /// The elements of a JSON array bound as parameter `param`, as a table
    /// whose column `value` is each element as JSON (read with `->>`).
    pub(crate) fn json_elements(self, param: &str) -> String {
        match self {
            Backend::Sqlite => format!("json_each({param})"),
            Backend::Postgres => format!("json_array_elements(CAST({param} AS json))"),
        }
    }

    /// Whether text `needle` occurs in text `haystack`.
    pub(crate) fn contains(self, haystack: &str, needle: &str) -> String {
        match self {
            Backend::Sqlite => format!("instr({haystack}, {needle}) > 0"),
            Backend::Postgres => format!("strpos({haystack}, {needle}) > 0"),
        }
    }

    /// The domains of tenant `t`, sorted and joined by spaces ('' for none).
    pub(crate) fn tenant_domains(self) -> &'static str {
        match self {
            Backend::Sqlite => {
                "COALESCE((SELECT group_concat(domain, ' ') FROM
                    (SELECT domain FROM tenant_domains d WHERE d.tenant_id = t.id ORDER BY domain)), '')"
            }
            Backend::Postgres => {
                "COALESCE((SELECT string_agg(domain, ' ' ORDER BY domain) FROM tenant_domains d
                             WHERE d.tenant_id = t.id), '')"
            }
        }
    }

    /// Slugs of a group, joined by spaces in slug order.
    pub(crate) fn joined_slugs(self) -> &'static str {
        match self {
            Backend::Sqlite => "group_concat(slug, ' ')",
            Backend::Postgres => "string_agg(slug, ' ' ORDER BY slug)",
        }
    }
}
