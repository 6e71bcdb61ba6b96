//! A small tokenizer for the parts of SQLite's stored `CREATE` statements that
//! no pragma exposes: CHECK constraints, generated-column expressions, column
//! collations, `AUTOINCREMENT`, table options, and index expressions and
//! predicates. It never executes anything and never fails: unknown text is
//! carried through as tokens.

use tenantry_model::Deferrable;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A bare word: keyword or unquoted identifier.
    Word(String),
    /// A quoted identifier ("x", `x`, [x]), unquoted.
    Quoted(String),
    /// Anything else: string literal, number, operator, punctuation.
    Other(String),
}

impl Tok {
    pub(crate) fn is_kw(&self, kw: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }
    pub(crate) fn is_punct(&self, p: &str) -> bool {
        matches!(self, Tok::Other(o) if o == p)
    }
    /// The identifier this token names, if it is one.
    pub(crate) fn ident(&self) -> Option<&str> {
        match self {
            Tok::Word(w) | Tok::Quoted(w) => Some(w),
            Tok::Other(_) => None,
        }
    }
    /// The token as normalised SQL text: bare words lower case (SQLite's
    /// keywords, function names and bare identifiers are case-insensitive),
    /// quoted identifiers re-quoted with `"`.
    fn sql(&self) -> String {
        match self {
            Tok::Word(w) => w.to_lowercase(),
            Tok::Other(w) => w.clone(),
            Tok::Quoted(q) => format!("\"{}\"", q.replace('"', "\"\"")),
        }
    }
}

pub(crate) fn tokenize(sql: &str) -> Vec<Tok> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if matches!(c, '"' | '`' | '[' | '\'') {
            let close = if c == '[' { ']' } else { c };
            let mut text = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == close {
                    if close != ']' && chars.get(i + 1) == Some(&close) {
                        text.push(close);
                        i += 2;
                        continue;
                    }
                    break;
                }
                text.push(chars[i]);
                i += 1;
            }
            i += 1;
            if c == '\'' {
                out.push(Tok::Other(format!("'{}'", text.replace('\'', "''"))));
            } else {
                out.push(Tok::Quoted(text));
            }
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            if word.chars().next().is_some_and(|f| f.is_ascii_digit()) {
                // Numbers, including a decimal part.
                let mut num = word;
                if chars.get(i) == Some(&'.') {
                    num.push('.');
                    i += 1;
                    while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                        num.push(chars[i]);
                        i += 1;
                    }
                }
                out.push(Tok::Other(num));
            } else {
                out.push(Tok::Word(word));
            }
        } else {
            let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
            if ["<=", ">=", "<>", "!=", "==", "||", "<<", ">>"].contains(&two.as_str()) {
                out.push(Tok::Other(two));
                i += 2;
            } else {
                out.push(Tok::Other(c.to_string()));
                i += 1;
            }
        }
    }
    out
}

/// Renders tokens back to normalised SQL: single spaces between words, none
/// inside parentheses or before commas, bare words in lower case.
pub(crate) fn render(toks: &[Tok]) -> String {
    let mut out = String::new();
    for (i, t) in toks.iter().enumerate() {
        let s = t.sql();
        let prev = if i > 0 { toks.get(i - 1) } else { None };
        let no_space_before = t.is_punct(")") || t.is_punct(",") || t.is_punct(".");
        let no_space_after_prev = prev.is_some_and(|p| p.is_punct("(") || p.is_punct("."));
        let call =
            t.is_punct("(") && prev.is_some_and(|p| matches!(p, Tok::Word(_) | Tok::Quoted(_)));
        if !out.is_empty() && !no_space_before && !no_space_after_prev && !call {
            out.push(' ');
        }
        out.push_str(&s);
    }
    out
}

/// The index of the `)` matching the `(` at `open`.
pub(crate) fn matching_paren(toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// Splits `toks` at top-level commas.
pub(crate) fn split_top_level(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        if t.is_punct("(") {
            depth += 1;
        } else if t.is_punct(")") {
            depth = depth.saturating_sub(1);
        } else if t.is_punct(",") && depth == 0 {
            parts.push(&toks[start..i]);
            start = i + 1;
        }
    }
    if start < toks.len() {
        parts.push(&toks[start..]);
    }
    parts
}

/// A parsed `CREATE TABLE`.
#[derive(Debug, Default)]
pub(crate) struct TableSql {
    /// Column definitions: (column name, the tokens after the name).
    pub columns: Vec<(String, Vec<Tok>)>,
    /// Table-level constraints.
    pub constraints: Vec<Vec<Tok>>,
    /// Options after the closing parenthesis (`WITHOUT ROWID`, `STRICT`), lower case.
    pub options: Vec<String>,
    /// `CREATE VIRTUAL TABLE … USING module(…)`, rendered.
    pub virtual_module: Option<String>,
}

const CONSTRAINT_START: [&str; 5] = ["CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"];

pub(crate) fn parse_create_table(sql: &str) -> TableSql {
    let toks = tokenize(sql);
    let mut out = TableSql::default();
    if toks.iter().take(4).any(|t| t.is_kw("VIRTUAL")) {
        if let Some(pos) = toks.iter().position(|t| t.is_kw("USING")) {
            out.virtual_module = Some(render(&toks[pos + 1..]));
        }
        return out;
    }
    let Some(open) = toks.iter().position(|t| t.is_punct("(")) else {
        return out;
    };
    let close = matching_paren(&toks, open).unwrap_or(toks.len());
    for part in split_top_level(&toks[open + 1..close.min(toks.len())]) {
        let Some(first) = part.first() else { continue };
        if CONSTRAINT_START.iter().any(|k| first.is_kw(k)) {
            out.constraints.push(part.to_vec());
        } else if let Some(name) = first.ident() {
            out.columns.push((name.to_owned(), part[1..].to_vec()));
        }
    }
    if close < toks.len() {
        for opt in split_top_level(&toks[close + 1..]) {
            let text = render(opt).to_ascii_lowercase();
            if !text.is_empty() {
                out.options.push(text);
            }
        }
    }
    out
}

/// Each foreign key the statement declares, by its local columns, with
/// its deferrability (which no pragma reports): a column's `REFERENCES` or
/// a table's `FOREIGN KEY (…) REFERENCES`.
pub(crate) fn foreign_key_deferrability(table: &TableSql) -> Vec<(Vec<String>, Deferrable)> {
    let mut out = Vec::new();
    for (name, def) in &table.columns {
        if let Some(at) = def.iter().position(|t| t.is_kw("REFERENCES")) {
            out.push((vec![name.clone()], deferrability(&def[at..])));
        }
    }
    for part in &table.constraints {
        let Some(key) = part.iter().position(|t| t.is_kw("KEY")) else {
            continue;
        };
        if !part.iter().any(|t| t.is_kw("FOREIGN"))
            || !part.get(key + 1).is_some_and(|t| t.is_punct("("))
        {
            continue;
        }
        let Some(close) = matching_paren(part, key + 1) else {
            continue;
        };
        let columns = part[key + 2..close]
            .iter()
            .filter_map(|t| t.ident().map(str::to_owned))
            .collect();
        out.push((columns, deferrability(&part[close..])));
    }
    out
}

/// `DEFERRABLE [INITIALLY DEFERRED | INITIALLY IMMEDIATE]` or `NOT
/// DEFERRABLE …` in a foreign-key clause.
fn deferrability(clause: &[Tok]) -> Deferrable {
    let Some(at) = clause.iter().position(|t| t.is_kw("DEFERRABLE")) else {
        return Deferrable::NotDeferrable;
    };
    if at > 0 && clause[at - 1].is_kw("NOT") {
        return Deferrable::NotDeferrable;
    }
    let deferred = clause[at..]
        .windows(2)
        .any(|w| w[0].is_kw("INITIALLY") && w[1].is_kw("DEFERRED"));
    if deferred {
        Deferrable::InitiallyDeferred
    } else {
        Deferrable::InitiallyImmediate
    }
}

/// `[CONSTRAINT name] CHECK (expr)` occurrences in a definition: (name, expr).
pub(crate) fn checks_in(def: &[Tok]) -> Vec<(Option<String>, String)> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < def.len() {
        if def[i].is_kw("CHECK") && def.get(i + 1).is_some_and(|t| t.is_punct("(")) {
            let close = matching_paren(def, i + 1).unwrap_or(def.len());
            let name = if i >= 2 && def[i - 2].is_kw("CONSTRAINT") {
                def[i - 1].ident().map(str::to_owned)
            } else {
                None
            };
            found.push((name, render(def.get(i + 2..close).unwrap_or(&[]))));
            i = close + 1;
        } else {
            i += 1;
        }
    }
    found
}

/// `GENERATED ALWAYS AS (expr) [STORED|VIRTUAL]` or `AS (expr)` in a column definition.
pub(crate) fn generated_in(def: &[Tok]) -> Option<(String, bool)> {
    let pos = def
        .iter()
        .enumerate()
        .position(|(i, t)| t.is_kw("AS") && def.get(i + 1).is_some_and(|n| n.is_punct("(")))?;
    let close = matching_paren(def, pos + 1)?;
    let stored = def.get(close + 1).is_some_and(|t| t.is_kw("STORED"));
    Some((render(&def[pos + 2..close]), stored))
}

/// The collation named by `COLLATE x` in a column definition.
pub(crate) fn collation_in(def: &[Tok]) -> Option<String> {
    let pos = def.iter().position(|t| t.is_kw("COLLATE"))?;
    def.get(pos + 1)?.ident().map(str::to_ascii_uppercase)
}

pub(crate) fn has_keyword(def: &[Tok], kw: &str) -> bool {
    def.iter().any(|t| t.is_kw(kw))
}

/// A parsed `CREATE INDEX`: the key list and the `WHERE` predicate.
pub(crate) struct IndexSql {
    pub keys: Vec<Vec<Tok>>,
    pub predicate: Option<String>,
}

pub(crate) fn parse_create_index(sql: &str) -> Option<IndexSql> {
    let toks = tokenize(sql);
    let on = toks.iter().position(|t| t.is_kw("ON"))?;
    let open = on + toks[on..].iter().position(|t| t.is_punct("("))?;
    let close = matching_paren(&toks, open)?;
    let keys = split_top_level(&toks[open + 1..close])
        .into_iter()
        .map(<[Tok]>::to_vec)
        .collect();
    let predicate = toks[close + 1..]
        .iter()
        .position(|t| t.is_kw("WHERE"))
        .map(|w| render(&toks[close + 2 + w..]));
    Some(IndexSql { keys, predicate })
}

/// The query of a `CREATE VIEW name [(cols)] AS query`.
pub(crate) fn view_query(sql: &str) -> String {
    let toks = tokenize(sql);
    match toks.iter().position(|t| t.is_kw("AS")) {
        Some(pos) => render(&toks[pos + 1..]),
        None => render(&toks),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_keys_are_deferrable_as_declared() {
        let t = parse_create_table(
            "CREATE TABLE c (a INT REFERENCES p DEFERRABLE INITIALLY DEFERRED, b INT REFERENCES p, \
             x INT, y INT, FOREIGN KEY (x, y) REFERENCES q (i, j) DEFERRABLE, \
             z INT REFERENCES p NOT DEFERRABLE INITIALLY DEFERRED)",
        );
        let found = foreign_key_deferrability(&t);
        assert_eq!(
            found,
            vec![
                (vec!["a".to_owned()], Deferrable::InitiallyDeferred),
                (vec!["b".to_owned()], Deferrable::NotDeferrable),
                (vec!["z".to_owned()], Deferrable::NotDeferrable),
                (
                    vec!["x".to_owned(), "y".to_owned()],
                    Deferrable::InitiallyImmediate
                ),
            ]
        );
    }

    #[test]
    fn create_table_parts_are_found() {
        let t = parse_create_table(
            "CREATE TABLE \"order items\" (\n  id INTEGER PRIMARY KEY AUTOINCREMENT,\n  \
             qty  INT NOT NULL CHECK(qty>0),\n  name TEXT COLLATE nocase,\n  \
             total AS (qty * 2) STORED, -- comment, with comma\n  \
             CONSTRAINT positive CHECK (qty < 1000), UNIQUE(name)\n) WITHOUT ROWID, STRICT",
        );
        let names: Vec<_> = t.columns.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(names, ["id", "qty", "name", "total"]);
        assert!(has_keyword(&t.columns[0].1, "AUTOINCREMENT"));
        assert_eq!(
            checks_in(&t.columns[1].1),
            vec![(None, "qty > 0".to_owned())]
        );
        assert_eq!(collation_in(&t.columns[2].1).as_deref(), Some("NOCASE"));
        assert_eq!(
            generated_in(&t.columns[3].1),
            Some(("qty * 2".to_owned(), true))
        );
        assert_eq!(
            checks_in(&t.constraints[0]),
            vec![(Some("positive".to_owned()), "qty < 1000".to_owned())]
        );
        assert_eq!(t.options, ["without rowid", "strict"]);
    }

    #[test]
    fn whitespace_and_comments_do_not_matter() {
        let a = parse_create_table("CREATE TABLE t (a INT CHECK (a >   0 AND lower(b)='x'))");
        let b = parse_create_table("CREATE TABLE t(a INT CHECK(a>0 AND lower( b ) = 'x' /* c */))");
        assert_eq!(checks_in(&a.columns[0].1), checks_in(&b.columns[0].1));
    }

    #[test]
    fn index_keys_and_predicates() {
        let i = parse_create_index(
            "CREATE INDEX ix ON t (lower(email), created_at DESC) WHERE deleted_at IS NULL",
        )
        .unwrap();
        assert_eq!(render(&i.keys[0]), "lower(email)");
        assert_eq!(i.predicate.as_deref(), Some("deleted_at is null"));
    }

    #[test]
    fn hostile_text_never_panics() {
        for s in [
            "",
            "(",
            ")",
            "CREATE TABLE",
            "CREATE TABLE t (",
            "'unterminated",
            "[x",
            "/*",
            "CREATE TABLE t (a CHECK (",
            "CREATE TABLE t (a AS (",
            "CREATE INDEX i ON t (",
        ] {
            let _ = parse_create_table(s);
            let _ = parse_create_index(s);
            let _ = view_query(s);
        }
    }
}
