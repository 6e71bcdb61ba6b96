//! The one identifier-quoting function per engine. Every identifier that
//! Tenantry puts into a generated statement goes through one of these;
//! values go in as bound parameters, never as text — except where the
//! statement takes no parameter (PostgreSQL's `COMMENT ON`), through
//! [`postgres_literal`].
//!
//! - PostgreSQL and SQLite: `"name"`, with `"` doubled.
//! - MySQL/MariaDB: `` `name` ``, with `` ` `` doubled. A backslash has no
//!   meaning inside backticks, whatever the `sql_mode`.

use crate::Engine;

pub fn postgres(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A PostgreSQL string literal for text (a comment): an `E'…'` literal with
/// `\` and `'` doubled, which reads the same whatever
/// `standard_conforming_strings` is.
pub fn postgres_literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

pub fn mysql(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// A MySQL/MariaDB string literal (a comment): `\` and `'` doubled, which
/// reads the same whatever `NO_BACKSLASH_ESCAPES` says.
pub fn mysql_literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

pub fn sqlite(name: &str) -> String {
    postgres(name)
}

/// The engine's quoting function.
pub fn ident(engine: Engine, name: &str) -> String {
    match engine {
        Engine::Postgres => postgres(name),
        Engine::Mysql => mysql(name),
        Engine::Sqlite => sqlite(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_stay_one_identifier() {
        assert_eq!(postgres(r#"a"b"#), r#""a""b""#);
        assert_eq!(mysql("a`b\\'c"), "`a``b\\'c`");
        assert_eq!(
            sqlite("x\"; DROP TABLE t; --"),
            "\"x\"\"; DROP TABLE t; --\""
        );
        assert_eq!(ident(Engine::Mysql, "t"), "`t`");
    }
}
