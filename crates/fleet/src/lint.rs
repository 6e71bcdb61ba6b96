//! Reading a template's SQL as tokens, for the lint: which statements reach
//! outside the tenant's own schema, and which cannot run in a transaction.
//!
//! The SQL is tokenized by sqlparser (quotes, `$$` bodies, comments and
//! backticks are its job), never scanned by hand. A template is applied
//! with the tenant's schema as its only search path, so anything that
//! names another schema, changes the session's schema or role, or acts on
//! schemas, databases, roles or data as a whole reaches outside the tenant.
//! Function, procedure and `DO` bodies are read with the same rules.
//!
//! Architecture invariant: this is a lint over tokens, not a parser; it is
//! written to flag too much rather than too little, and a template whose
//! findings are intended is added with an explicit, audited allowance.

use sqlparser::dialect::{Dialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::tokenizer::{Token, Tokenizer, Word};
use tenantry_model::Engine;

/// One statement of a migration, as tokens without white space or comments.
pub(crate) struct Statement {
    pub tokens: Vec<Token>,
}

impl Statement {
    /// The statement's first words, for messages: `DROP SCHEMA public …`.
    pub fn head(&self) -> String {
        let words: Vec<String> = self.tokens.iter().take(4).map(|t| t.to_string()).collect();
        let mut head = words.join(" ");
        if self.tokens.len() > 4 {
            head.push_str(" …");
        }
        crate::template::one_line(&head)
    }

    /// The upper-case keywords at the start (unquoted words only).
    pub fn starts_with(&self, words: &[&str]) -> bool {
        starts_with(&self.tokens, 0, words)
    }
}

fn dialect(engine: Engine) -> Box<dyn Dialect> {
    match engine {
        Engine::Postgres => Box::new(PostgreSqlDialect {}),
        Engine::Mysql => Box::new(MySqlDialect {}),
        Engine::Sqlite => Box::new(SQLiteDialect {}),
    }
}

/// Splits `sql` into statements at `;` tokens.
pub(crate) fn statements(engine: Engine, sql: &str) -> Result<Vec<Statement>, String> {
    let dialect = dialect(engine);
    let tokens = Tokenizer::new(dialect.as_ref(), sql)
        .tokenize()
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut current = Vec::new();
    for t in tokens {
        match t {
            Token::Whitespace(_) | Token::EOF => {}
            Token::SemiColon => {
                if !current.is_empty() {
                    out.push(Statement {
                        tokens: std::mem::take(&mut current),
                    });
                }
            }
            other => current.push(other),
        }
    }
    if !current.is_empty() {
        out.push(Statement { tokens: current });
    }
    Ok(out)
}

fn keyword(t: &Token) -> Option<String> {
    match t {
        Token::Word(Word {
            value,
            quote_style: None,
            ..
        }) => Some(value.to_ascii_uppercase()),
        _ => None,
    }
}

fn is_kw(t: Option<&Token>, k: &str) -> bool {
    t.and_then(keyword).is_some_and(|w| w == k)
}

fn starts_with(tokens: &[Token], at: usize, words: &[&str]) -> bool {
    words
        .iter()
        .enumerate()
        .all(|(i, w)| is_kw(tokens.get(at + i), w))
}

/// Statements (at their start) that act beyond the tenant's schema, and why.
const OUTSIDE_STATEMENTS: &[(&[&str], &str)] = &[
    (&["DROP", "SCHEMA"], "drops a schema"),
    (&["DROP", "DATABASE"], "drops a database"),
    (&["DROP", "OWNED"], "drops everything a role owns, in every schema"),
    (&["DROP", "ROLE"], "drops a role"),
    (&["DROP", "USER"], "drops a role"),
    (&["DROP", "EXTENSION"], "drops an extension for the whole database"),
    (&["CREATE", "SCHEMA"], "creates a schema"),
    (&["CREATE", "DATABASE"], "creates a database"),
    (&["CREATE", "ROLE"], "creates a role"),
    (&["CREATE", "USER"], "creates a role"),
    (&["ALTER", "SCHEMA"], "alters a schema"),
    (&["ALTER", "DATABASE"], "alters a database"),
    (&["ALTER", "ROLE"], "alters a role"),
    (&["ALTER", "USER"], "alters a role"),
    (&["ALTER", "SYSTEM"], "changes the server's configuration"),
    (&["ALTER", "DEFAULT", "PRIVILEGES"], "changes privileges of objects created later, anywhere"),
    (&["REASSIGN", "OWNED"], "reassigns objects in every schema"),
    (&["DO"], "runs a code block that cannot be checked"),
    (&["TRUNCATE"], "removes rows (with CASCADE, from tables of other schemas too); a template creates objects, it does not empty tables"),
    (&["SET", "SEARCH_PATH"], "changes the schema later statements act on"),
    (&["SET", "LOCAL", "SEARCH_PATH"], "changes the schema later statements act on"),
    (&["SET", "SESSION", "SEARCH_PATH"], "changes the schema later statements act on"),
    (&["SET", "SCHEMA"], "changes the schema later statements act on"),
    (&["SET", "ROLE"], "changes the role later statements run as"),
    (&["SET", "LOCAL", "ROLE"], "changes the role later statements run as"),
    (&["SET", "SESSION", "ROLE"], "changes the role later statements run as"),
    (&["SET", "SESSION", "AUTHORIZATION"], "changes the role later statements run as"),
    (&["RESET", "ROLE"], "changes the role later statements run as"),
    (&["RESET", "SEARCH_PATH"], "changes the schema later statements act on"),
    (&["RESET", "SESSION", "AUTHORIZATION"], "changes the role later statements run as"),
    (&["RESET", "ALL"], "changes the schema and role later statements use"),
    (&["USE"], "switches to another database"),
    (&["ATTACH"], "attaches another database file"),
    (&["DETACH"], "detaches a database file"),
    (&["COPY"], "reads or writes files or programs on the server"),
    (&["LOAD"], "loads a server library"),
];

/// `set_config('…', …)` settings that change the schema or the role.
const OUTSIDE_SETTINGS: &[&str] = &["search_path", "role", "session_authorization"];

/// Schemas a template may name: the system catalogs (read-only for it),
/// and for SQLite the tenant's own file.
fn harmless_schema(engine: Engine, name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    match engine {
        Engine::Postgres => matches!(n.as_str(), "pg_catalog" | "information_schema"),
        Engine::Mysql => n == "information_schema",
        Engine::Sqlite => matches!(n.as_str(), "main" | "temp"),
    }
}

/// Keywords after which a name is an object's name.
const NAME_POSITIONS: &[&str] = &[
    "TABLE",
    "VIEW",
    "INDEX",
    "SEQUENCE",
    "TYPE",
    "DOMAIN",
    "FUNCTION",
    "PROCEDURE",
    "TRIGGER",
    "REFERENCES",
    "FROM",
    "JOIN",
    "INTO",
    "UPDATE",
    "EXISTS",
    "ONLY",
    "LIKE",
    "OF",
    "ON",
    "EXECUTE",
    "CALL",
    "INHERITS",
];

/// Functions whose argument list uses FROM for something else than a table.
const FROM_IN_ARGUMENTS: &[&str] = &["EXTRACT", "SUBSTRING", "TRIM", "OVERLAY", "POSITION"];

/// Why a statement reaches outside the tenant (empty when it does not).
pub(crate) fn reaches_outside(engine: Engine, st: &Statement) -> Vec<String> {
    let mut why = Vec::new();
    scan_tokens(engine, &st.tokens, &mut why, 0);
    why.sort();
    why.dedup();
    why
}

fn scan_tokens(engine: Engine, tokens: &[Token], why: &mut Vec<String>, depth: u8) {
    // Statement starts: the first token, and the words after which a
    // statement of a body begins (PL/pgSQL, MySQL routines and triggers).
    let starts = std::iter::once(0).chain(
        tokens
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                keyword(t).is_some_and(|k| {
                    matches!(k.as_str(), "BEGIN" | "THEN" | "ELSE" | "LOOP" | "ROW")
                })
            })
            .map(|(i, _)| i + 1),
    );
    for at in starts {
        for (words, reason) in OUTSIDE_STATEMENTS {
            if starts_with(tokens, at, words) {
                why.push(format!("{} {reason}", words.join(" ")));
            }
        }
        if (starts_with(tokens, at, &["DROP"]) || starts_with(tokens, at, &["TRUNCATE"]))
            && tokens[at..].iter().any(|t| is_kw(Some(t), "CASCADE"))
        {
            why.push(
                "CASCADE drops or empties whatever depends on it, in other schemas too".into(),
            );
        }
    }
    let mut saw_join = false;
    // The word before each open parenthesis, innermost last.
    let mut calls: Vec<Option<String>> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        match t {
            Token::LParen => calls.push(i.checked_sub(1).and_then(|p| keyword(&tokens[p]))),
            Token::RParen => {
                calls.pop();
            }
            Token::DollarQuotedString(body) if depth < 2 => {
                if let Ok(inner) = statements(engine, &body.value) {
                    let mut inside = Vec::new();
                    for st in inner {
                        scan_tokens(engine, &st.tokens, &mut inside, depth + 1);
                    }
                    why.extend(
                        inside
                            .into_iter()
                            .map(|w| format!("{w} (in a function or DO body)")),
                    );
                }
            }
            Token::Word(w)
                if w.value.eq_ignore_ascii_case("set_config") && w.quote_style.is_none() =>
            {
                if let (Some(Token::LParen), Some(Token::SingleQuotedString(name))) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                {
                    if OUTSIDE_SETTINGS.contains(&name.to_ascii_lowercase().as_str()) {
                        why.push(format!(
                            "set_config('{name}') changes the schema or role later statements use"
                        ));
                    }
                }
            }
            _ => {}
        }
        if is_kw(Some(t), "JOIN") {
            saw_join = true;
        }
        if i > 0 && starts_with(tokens, i, &["SET", "SCHEMA"]) {
            why.push("SET SCHEMA moves an object to another schema".into());
        }
        // A qualified name: word . word
        let (Some(Token::Word(schema)), Some(Token::Period), Some(Token::Word(_))) =
            (tokens.get(i), tokens.get(i + 1), tokens.get(i + 2))
        else {
            continue;
        };
        if harmless_schema(engine, &schema.value) {
            continue;
        }
        let before = i.checked_sub(1).map(|p| &tokens[p]);
        let in_name_position = before.and_then(keyword).is_some_and(|k| {
            NAME_POSITIONS.contains(&k.as_str())
                // `JOIN t a ON a.id = …`: after a join, ON starts a condition.
                && !(k == "ON" && saw_join)
                // `extract(epoch FROM t.at)`, `a IS DISTINCT FROM b.c`.
                && !(k == "FROM"
                    && (calls.last().and_then(|c| c.as_deref()).is_some_and(|c| FROM_IN_ARGUMENTS.contains(&c))
                        || is_kw(i.checked_sub(2).map(|p| &tokens[p]), "DISTINCT")))
        });
        // `other.f(…)`: a call into another schema, wherever it is.
        let is_call = matches!(tokens.get(i + 3), Some(Token::LParen))
            && !before.is_some_and(|b| matches!(b, Token::Period));
        // The second part of `a.b.c` was already judged with the first.
        let continues = before.is_some_and(|b| matches!(b, Token::Period));
        if (in_name_position || is_call) && !continues {
            let shown = format!(
                "{}.{}",
                tokens[i],
                tokens
                    .get(i + 2)
                    .map(ToString::to_string)
                    .unwrap_or_default()
            );
            why.push(format!(
                "`{}` names another schema; leave names unqualified so they resolve in the tenant's own",
                crate::template::one_line(&shown)
            ));
        }
    }
}

/// Follows the extensions PostgreSQL migrations install into the schema
/// they run in: `out` (the extensions earlier migrations left installed)
/// gains those `sql` creates (`CREATE EXTENSION [IF NOT EXISTS] name`,
/// without a `SCHEMA` clause) and loses those it drops. An unquoted name
/// folds to lower case, as the server folds it.
pub(crate) fn track_extensions(sql: &str, out: &mut Vec<String>) -> Result<(), String> {
    for st in statements(Engine::Postgres, sql)? {
        let (create, at) = if st.starts_with(&["CREATE", "EXTENSION"]) {
            (true, 2)
        } else if st.starts_with(&["DROP", "EXTENSION"]) {
            (false, 2)
        } else {
            continue;
        };
        let mut at = at;
        if starts_with(&st.tokens, at, &["IF", "NOT", "EXISTS"]) {
            at += 3;
        } else if starts_with(&st.tokens, at, &["IF", "EXISTS"]) {
            at += 2;
        }
        // DROP EXTENSION takes a list of names.
        let mut names = Vec::new();
        while let Some(Token::Word(w)) = st.tokens.get(at) {
            names.push(match w.quote_style {
                None => w.value.to_ascii_lowercase(),
                Some(_) => w.value.clone(),
            });
            if create || !matches!(st.tokens.get(at + 1), Some(Token::Comma)) {
                break;
            }
            at += 2;
        }
        if create {
            let elsewhere = st.tokens[at..].iter().any(|t| is_kw(Some(t), "SCHEMA"));
            for name in names {
                if !elsewhere && !out.contains(&name) {
                    out.push(name);
                }
            }
        } else {
            out.retain(|n| !names.contains(n));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_extensions_a_migration_installs_in_its_schema_are_read_from_its_tokens() {
        let sql = "CREATE EXTENSION IF NOT EXISTS citext;
            create extension \"uuid-ossp\" WITH VERSION '1.1';
            CREATE EXTENSION pg_trgm SCHEMA shared;
            CREATE EXTENSION hstore; DROP EXTENSION IF EXISTS hstore, other;
            -- CREATE EXTENSION commented_out;
            CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 'CREATE EXTENSION inside' $$;
            CREATE EXTENSION \"Odd\"";
        let mut created = vec!["earlier".to_owned(), "other".to_owned()];
        track_extensions(sql, &mut created).unwrap();
        assert_eq!(created, ["earlier", "citext", "uuid-ossp", "Odd"]);
    }

    fn outside(engine: Engine, sql: &str) -> Vec<String> {
        statements(engine, sql)
            .unwrap()
            .iter()
            .flat_map(|s| reaches_outside(engine, s))
            .collect()
    }

    #[test]
    fn hostile_statements_are_flagged() {
        for sql in [
            "DROP SCHEMA public CASCADE",
            "do $$ begin execute 'drop table x'; end $$",
            "TRUNCATE accounts",
            "SET search_path = public",
            "set local search_path to other",
            "SET ROLE postgres",
            "SELECT set_config('search_path', 'public', true)",
            "INSERT INTO public.audit VALUES (1)",
            "DELETE FROM other.accounts",
            "UPDATE other.accounts SET x = 1",
            "CREATE TABLE a (id int REFERENCES shared.accounts (id))",
            "CREATE TABLE \"public\".b (id int)",
            "CREATE VIEW v AS SELECT other.f(1)",
            "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM public.t; RETURN NULL; END $$",
            "CREATE FUNCTION g() RETURNS void LANGUAGE plpgsql AS $body$ BEGIN IF true THEN DROP SCHEMA x CASCADE; END IF; END $body$",
            "CREATE TRIGGER t AFTER INSERT ON a FOR EACH ROW EXECUTE FUNCTION audit.log()",
            "ALTER TABLE a SET SCHEMA public",
        ] {
            assert!(!outside(Engine::Postgres, sql).is_empty(), "{sql}");
        }
        for sql in [
            "USE other",
            "DROP DATABASE shop",
            "INSERT INTO other_db.t VALUES (1)",
            "CREATE PROCEDURE p() BEGIN DROP DATABASE x; END",
        ] {
            assert!(!outside(Engine::Mysql, sql).is_empty(), "{sql}");
        }
        assert!(!outside(Engine::Sqlite, "ATTACH DATABASE 'x.db' AS x").is_empty());
    }

    #[test]
    fn aliases_expressions_and_the_catalogs_are_not_other_schemas() {
        for sql in [
            "CREATE VIEW open_tasks AS SELECT t.id, p.name FROM tasks t JOIN projects p ON p.id = t.project_id WHERE t.state <> 'done'",
            "CREATE VIEW v AS SELECT extract(epoch FROM t.created_at) FROM tasks t",
            "CREATE VIEW w AS SELECT 1 FROM a WHERE a.x IS DISTINCT FROM a.y",
            "CREATE INDEX i ON tasks (project_id)",
            "CREATE TABLE a (id int REFERENCES b (id) ON DELETE CASCADE ON UPDATE CASCADE)",
            "CREATE POLICY p ON a USING (EXISTS (SELECT 1 FROM b JOIN c ON c.id = b.id WHERE b.a = a.id))",
            "SELECT pg_catalog.now()",
            "CREATE TABLE x (v text DEFAULT 'other.t(1)')",
            "-- DROP SCHEMA public CASCADE\nCREATE TABLE y (id int)",
            "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at = now(); RETURN NEW; END $$",
            "CREATE TRIGGER t BEFORE UPDATE ON a FOR EACH ROW EXECUTE FUNCTION f()",
        ] {
            assert_eq!(outside(Engine::Postgres, sql), Vec::<String>::new(), "{sql}");
        }
        assert!(outside(Engine::Sqlite, "CREATE TABLE main.t (id int)").is_empty());
        assert!(outside(Engine::Mysql, "SELECT * FROM information_schema.TABLES").is_empty());
    }
}
