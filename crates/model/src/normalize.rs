//! Text normalisation shared by the engine introspectors: whitespace and
//! type aliases (the tenant's own schema: [`crate::own_schema`]). Pure functions, no I/O.

use crate::own_schema::{lex, Kind, Tok};

/// Collapses runs of white space outside string literals and quoted
/// identifiers into one space, and trims the ends.
pub fn collapse_whitespace(sql: &str) -> String {
    // Most catalog text is already collapsed: single spaces, no ends.
    let collapsed = !sql.starts_with(' ')
        && !sql.ends_with(' ')
        && !sql.contains("  ")
        && !sql.chars().any(|c| c.is_whitespace() && c != ' ');
    if collapsed {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut pending_space = false;
    for ch in sql.chars() {
        if let Some(q) = quote {
            out.push(ch);
            if ch == q {
                quote = None;
            }
            continue;
        }
        if ch.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        if matches!(ch, '\'' | '"' | '`') {
            quote = Some(ch);
        }
        out.push(ch);
    }
    out
}

/// Spellings PostgreSQL's catalog keeps apart that mean the same:
///
/// - `now()` is `CURRENT_TIMESTAMP` (the server prints each as written);
/// - a cast of an `ARRAY[…]` constructor is the array of the cast
///   elements. A `col IN (…)` CHECK on a `varchar` column prints as
///   `ANY ((ARRAY['a'::character varying])::text[])` (pretty:
///   `ANY (ARRAY['a'::character varying]::text[])`); after a `pg_dump`
///   and restore the server has pushed the cast into the elements and
///   prints `ANY (ARRAY[('a'::character varying)::text])` (pretty:
///   `ARRAY['a'::character varying::text]`). Both read as the latter.
///
/// Works on tokens: string literals and quoted names are never touched.
pub fn postgres_expression(sql: &str) -> String {
    if !sql.contains("now()") && !sql.contains("ARRAY[") {
        return sql.to_owned();
    }
    let toks = lex(sql);
    let text = |i: usize| toks.get(i).map(|t| &sql[t.start..t.end]);
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        if t.kind == Kind::Word
            && text(i) == Some("now")
            && text(i + 1) == Some("(")
            && text(i + 2) == Some(")")
            && (i == 0 || text(i - 1) != Some("."))
        {
            out.push_str(&sql[at..t.start]);
            out.push_str("CURRENT_TIMESTAMP");
            at = toks[i + 2].end;
            i += 3;
            continue;
        }
        if t.kind == Kind::Word && text(i) == Some("ARRAY") && text(i + 1) == Some("[") {
            if let Some((from, rewritten, next)) = push_array_cast(sql, &toks, i) {
                if from >= at {
                    out.push_str(&sql[at..from]);
                    out.push_str(&rewritten);
                    at = toks[next - 1].end;
                    i = next;
                    continue;
                }
            }
        }
        i += 1;
    }
    out.push_str(&sql[at..]);
    out
}

/// An `ARRAY[e1, e2]` at token `array` cast to `T[]`, as `(ARRAY[…])::T[]`
/// or (pretty) `ARRAY[…]::T[]`: the byte where it starts, the array of
/// cast elements that replaces it, and the index of the token after it.
/// `None` for anything else, and in the pretty form unless every element
/// is a plain operand (a literal, a name, a parenthesised group, with
/// casts), where appending `::T` cannot change what it binds to.
fn push_array_cast(sql: &str, toks: &[Tok], array: usize) -> Option<(usize, String, usize)> {
    let text = |i: usize| toks.get(i).map(|t| &sql[t.start..t.end]);
    let mut depth = 0usize;
    let mut elements: Vec<(usize, usize)> = Vec::new();
    let mut plain = true;
    let mut start = toks.get(array + 2)?.start;
    let mut i = array + 2;
    let close = loop {
        let t = toks.get(i)?;
        match text(i)? {
            "(" | "[" => depth += 1,
            ")" | "]" if depth > 0 => depth -= 1,
            "]" => {
                elements.push((start, t.start));
                break i;
            }
            "," if depth == 0 => {
                elements.push((start, t.start));
                start = toks.get(i + 1)?.start;
            }
            "::" | "." => {}
            _ if depth == 0
                && t.kind == Kind::Other
                && !sql[t.start..t.end].starts_with(|c: char| c.is_ascii_digit()) =>
            {
                plain = false;
            }
            _ => {}
        }
        i += 1;
    };
    let parenthesised = array > 0 && text(array - 1) == Some("(") && text(close + 1) == Some(")");
    let cast = if parenthesised { close + 2 } else { close + 1 };
    if text(cast) != Some("::") || !(parenthesised || plain) {
        return None;
    }
    // The type: words (and quoted names) up to `[` `]`.
    let mut j = cast + 1;
    while toks
        .get(j)
        .is_some_and(|t| matches!(t.kind, Kind::Word | Kind::Quoted))
        || text(j) == Some(".")
    {
        j += 1;
    }
    if j == cast + 1 || text(j) != Some("[") || text(j + 1) != Some("]") {
        return None;
    }
    let element_type = &sql[toks[cast + 1].start..toks[j - 1].end];
    let elements: Vec<String> = elements
        .iter()
        .map(|(a, b)| {
            let e = sql[*a..*b].trim();
            if parenthesised {
                format!("({e})::{element_type}")
            } else {
                format!("{e}::{element_type}")
            }
        })
        .collect();
    let from = if parenthesised {
        toks[array - 1].start
    } else {
        toks[array].start
    };
    Some((from, format!("ARRAY[{}]", elements.join(", ")), j + 2))
}

/// Removes MySQL integer display widths: `int(11)` → `int`,
/// `bigint(20) unsigned` → `bigint unsigned`. Other types are kept.
pub fn mysql_strip_int_display_width(column_type: &str) -> String {
    let lower = column_type.trim().to_ascii_lowercase();
    for base in [
        "tinyint",
        "smallint",
        "mediumint",
        "bigint",
        "int",
        "integer",
    ] {
        if let Some(rest) = lower.strip_prefix(base) {
            if let Some(after_paren) = rest.strip_prefix('(') {
                if let Some(close) = after_paren.find(')') {
                    if after_paren[..close].bytes().all(|b| b.is_ascii_digit()) {
                        let tail = after_paren[close + 1..].trim();
                        let base = if base == "integer" { "int" } else { base };
                        return if tail.is_empty() {
                            base.to_owned()
                        } else {
                            format!("{base} {tail}")
                        };
                    }
                }
            }
            if rest.is_empty() || rest.starts_with(' ') {
                let base = if base == "integer" { "int" } else { base };
                return format!("{base}{rest}");
            }
        }
    }
    lower
}

/// Normalises a MySQL/MariaDB default or `ON UPDATE` expression:
/// `CURRENT_TIMESTAMP`, `current_timestamp()` and `now()` read alike, and
/// `CURRENT_TIMESTAMP(3)` keeps its precision.
pub fn mysql_normalize_expression(expr: &str) -> String {
    let t = collapse_whitespace(expr);
    let lower = t.to_ascii_lowercase();
    for alias in ["current_timestamp", "now", "localtimestamp", "localtime"] {
        if lower == alias || lower == format!("{alias}()") {
            return "current_timestamp()".to_owned();
        }
        if let Some(rest) = lower.strip_prefix(alias) {
            if rest.starts_with('(') && rest.ends_with(')') {
                return format!("current_timestamp{rest}");
            }
        }
    }
    t
}

/// Normalises a SQLite declared type: upper case, single spaces, no spaces
/// inside the parentheses. Aliases are *not* merged: in SQLite `INTEGER
/// PRIMARY KEY` and `INT PRIMARY KEY` behave differently.
pub fn sqlite_normalize_type(declared: &str) -> String {
    let t = collapse_whitespace(declared).to_ascii_uppercase();
    t.replace(" (", "(")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(", ", ",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_is_collapsed_outside_literals() {
        assert_eq!(
            collapse_whitespace("  a   >\n\t 'x  y'  AND \"q  r\" "),
            "a > 'x  y' AND \"q  r\""
        );
        // Already collapsed text comes back as it is; any other white space
        // still takes the slow path.
        assert_eq!(collapse_whitespace("a > 'x' AND b"), "a > 'x' AND b");
        assert_eq!(collapse_whitespace("a\tb"), "a b");
        assert_eq!(collapse_whitespace("a "), "a");
        assert_eq!(collapse_whitespace(" a"), "a");
        assert_eq!(collapse_whitespace("a\u{a0}b"), "a b");
    }

    #[test]
    fn postgres_spellings_of_the_same_expression_agree() {
        assert_eq!(postgres_expression("now()"), "CURRENT_TIMESTAMP");
        assert_eq!(
            postgres_expression("(now() - '1 day'::interval)"),
            "(CURRENT_TIMESTAMP - '1 day'::interval)"
        );
        assert_eq!(postgres_expression("'now()'::text"), "'now()'::text");
        assert_eq!(postgres_expression("x.now()"), "x.now()");
        // What the server prints before and after a dump and restore.
        let before =
            "((s)::text = ANY ((ARRAY['a'::character varying, 'b,c'::character varying])::text[]))";
        let after = "((s)::text = ANY (ARRAY[('a'::character varying)::text, ('b,c'::character varying)::text]))";
        assert_eq!(postgres_expression(before), after);
        assert_eq!(postgres_expression(after), after);
        // The same, pretty-printed.
        let before =
            "s::text = ANY (ARRAY['a'::character varying, 'b'::character varying]::text[])";
        let after =
            "s::text = ANY (ARRAY['a'::character varying::text, 'b'::character varying::text])";
        assert_eq!(postgres_expression(before), after);
        assert_eq!(postgres_expression(after), after);
        assert_eq!(
            postgres_expression("(ARRAY[f(1, 2), 3])::\"my type\"[]"),
            "ARRAY[(f(1, 2))::\"my type\", (3)::\"my type\"]"
        );
        // An element that is not a plain operand is left as it is.
        assert_eq!(
            postgres_expression("ARRAY[a + 1, 2]::text[]"),
            "ARRAY[a + 1, 2]::text[]"
        );
        assert_eq!(postgres_expression("(ARRAY[1, 2])[1]"), "(ARRAY[1, 2])[1]");
    }

    #[test]
    fn mysql_display_widths_are_dropped() {
        assert_eq!(mysql_strip_int_display_width("int(11)"), "int");
        assert_eq!(
            mysql_strip_int_display_width("bigint(20) unsigned"),
            "bigint unsigned"
        );
        assert_eq!(
            mysql_strip_int_display_width("INT UNSIGNED"),
            "int unsigned"
        );
        assert_eq!(mysql_strip_int_display_width("tinyint(1)"), "tinyint");
        assert_eq!(
            mysql_strip_int_display_width("varchar(255)"),
            "varchar(255)"
        );
        assert_eq!(mysql_strip_int_display_width("interval"), "interval");
        assert_eq!(
            mysql_strip_int_display_width("decimal(10,2)"),
            "decimal(10,2)"
        );
    }

    #[test]
    fn mysql_timestamp_spellings_agree() {
        for s in ["CURRENT_TIMESTAMP", "current_timestamp()", "now()"] {
            assert_eq!(mysql_normalize_expression(s), "current_timestamp()");
        }
        assert_eq!(
            mysql_normalize_expression("CURRENT_TIMESTAMP(3)"),
            "current_timestamp(3)"
        );
        assert_eq!(mysql_normalize_expression("'abc'"), "'abc'");
    }

    #[test]
    fn sqlite_types_are_spelled_one_way() {
        assert_eq!(sqlite_normalize_type("varchar ( 20 )"), "VARCHAR(20)");
        assert_eq!(sqlite_normalize_type("decimal(10, 2)"), "DECIMAL(10,2)");
        assert_eq!(sqlite_normalize_type("int"), "INT");
    }
}
