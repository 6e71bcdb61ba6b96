//! Removing the tenant's own schema from catalog text, by tokens.
//!
//! Introspection deparses with only `pg_catalog` on the search path, so
//! the server qualifies every user object it prints (`t42.tasks`,
//! `public.plan_type`, `nextval('t42.users_id_seq'::regclass)`). A
//! reference to the tenant's own schema must read the same in every
//! tenant, so its qualifier goes; every other schema's stays, and so does
//! anything that only looks like one:
//!
//! - string literals are never touched, except the name inside a
//!   `'…'::regclass`-style literal, which *is* a qualified name;
//! - a `t.x` is a qualifier only where the grammar puts a qualified name —
//!   after `::` (a type), before `(` (a function), where a relation is
//!   named (`FROM`, `JOIN`, a comma of a `FROM` list, `ON` of a trigger or
//!   an index, `INTO`, `UPDATE`, `REFERENCES`, `ONLY`, `TABLE`) or inside
//!   `OPERATOR(…)` — so a table alias named like the schema (`t`, `p`) is
//!   kept: column references are always `alias.column`, never qualified.
//!
//! The lexer knows the two dialects' quoting: `'…'` with `''` (and `E'…'`
//! with backslashes), `$tag$…$tag$`, `"…"` with `""` and `` `…` `` with
//! ``` `` ```, and both comment styles. Nothing is re-printed: the result is
//! the input with byte ranges cut out.

/// Where a text comes from, which decides what a `schema.` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// A type name, a signature or an argument list (`format_type`,
    /// `pg_get_function_arguments`): every `schema.name` is a qualified
    /// name, since no column or alias can appear.
    Names,
    /// An expression or a statement: a view's query, a default, a CHECK,
    /// a policy, a trigger or a routine body.
    Sql,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A bare word (keyword or identifier).
    Word,
    /// A quoted identifier.
    Quoted,
    /// A string literal; `escape` for `E'…'` (backslash escapes).
    Str { escape: bool },
    /// Anything else: numbers, operators, punctuation, dollar-quoted bodies.
    Other,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Tok {
    pub(crate) kind: Kind,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

fn is_word_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Splits `sql` into tokens (white space and comments dropped), as byte
/// ranges of the input. Never fails: an unterminated quote runs to the end.
pub(crate) fn lex(sql: &str) -> Vec<Tok> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let next_char = |i: usize| sql[i..].chars().next();
    while i < b.len() {
        let c = next_char(i).unwrap_or(' ');
        let start = i;
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        if b[i] == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            i += 2;
            while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                i += 1;
            }
            i = (i + 2).min(b.len());
            continue;
        }
        // E'…' (and e'…'): backslash escapes inside.
        if (b[i] == b'E' || b[i] == b'e') && b.get(i + 1) == Some(&b'\'') {
            i = quoted_end(b, i + 1, b'\'', true);
            out.push(Tok {
                kind: Kind::Str { escape: true },
                start,
                end: i,
            });
            continue;
        }
        match b[i] {
            b'\'' => {
                i = quoted_end(b, i, b'\'', false);
                out.push(Tok {
                    kind: Kind::Str { escape: false },
                    start,
                    end: i,
                });
            }
            b'"' | b'`' => {
                i = quoted_end(b, i, b[i], false);
                out.push(Tok {
                    kind: Kind::Quoted,
                    start,
                    end: i,
                });
            }
            b'$' => {
                // $tag$…$tag$ or $$…$$; a lone `$1` parameter is Other.
                let tag_end = sql[i + 1..]
                    .find(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                    .map(|n| i + 1 + n);
                match tag_end {
                    Some(t)
                        if b[t] == b'$'
                            && !sql[i + 1..t].starts_with(|ch: char| ch.is_ascii_digit()) =>
                    {
                        let tag = &sql[i..=t];
                        i = sql[t + 1..]
                            .find(tag)
                            .map(|n| t + 1 + n + tag.len())
                            .unwrap_or(b.len());
                    }
                    _ => {
                        i += 1;
                        while i < b.len() && b[i].is_ascii_digit() {
                            i += 1;
                        }
                    }
                }
                out.push(Tok {
                    kind: Kind::Other,
                    start,
                    end: i,
                });
            }
            b':' if b.get(i + 1) == Some(&b':') => {
                i += 2;
                out.push(Tok {
                    kind: Kind::Other,
                    start,
                    end: i,
                });
            }
            _ if is_word_start(c) => {
                while let Some(ch) = next_char(i).filter(|ch| is_word_char(*ch)) {
                    i += ch.len_utf8();
                }
                out.push(Tok {
                    kind: Kind::Word,
                    start,
                    end: i,
                });
            }
            _ if c.is_ascii_digit() => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    i += 1;
                }
                out.push(Tok {
                    kind: Kind::Other,
                    start,
                    end: i,
                });
            }
            _ => {
                i += c.len_utf8();
                out.push(Tok {
                    kind: Kind::Other,
                    start,
                    end: i,
                });
            }
        }
    }
    out
}

/// The end (exclusive) of a quoted token opened by `q` at `i`; a doubled
/// quote is part of it, and with `backslash` so is `\` and what follows.
fn quoted_end(b: &[u8], mut i: usize, q: u8, backslash: bool) -> usize {
    i += 1;
    while i < b.len() {
        if backslash && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == q {
            if b.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// The identifier a word or quoted token names.
fn ident(sql: &str, t: &Tok) -> Option<String> {
    let text = &sql[t.start..t.end];
    match t.kind {
        Kind::Word => Some(text.to_owned()),
        Kind::Quoted => {
            let q = &text[..1];
            let inner = text.strip_prefix(q)?.strip_suffix(q)?;
            Some(inner.replace(&format!("{q}{q}"), q))
        }
        _ => None,
    }
}

/// Keywords after which a qualified name names a relation.
const RELATION_WORDS: &[&str] = &[
    "from",
    "join",
    "only",
    "into",
    "update",
    "references",
    "table",
    "lateral",
];

/// Functions whose parentheses hold a `FROM` that names no relation.
const FROM_FUNCTIONS: &[&str] = &["extract", "substring", "trim", "overlay", "position"];

/// Clauses that end a `FROM` list.
const CLAUSE_WORDS: &[&str] = &[
    "select",
    "where",
    "group",
    "having",
    "window",
    "order",
    "limit",
    "offset",
    "fetch",
    "union",
    "intersect",
    "except",
    "returning",
    "set",
    "values",
    "do",
    "for",
    "execute",
    "when",
];

/// The `reg*` types whose literals hold a qualified name.
const REG_TYPES: &[&str] = &[
    "regclass",
    "regproc",
    "regprocedure",
    "regtype",
    "regoper",
    "regoperator",
    "regconfig",
    "regdictionary",
    "regcollation",
];

struct Frame {
    /// Inside a `FROM` list (a `,` introduces another relation).
    from_list: bool,
    /// The parentheses of `extract(… FROM …)` and the like.
    from_function: bool,
    /// A `FROM` or `JOIN` was seen in this frame (an `ON` is a join's).
    joined: bool,
}

/// Removes the qualifier of every reference to `schema` in `sql`, as the
/// module documentation describes. Text that never mentions the schema
/// comes back as it is.
pub fn strip_own_schema(sql: &str, schema: &str, kind: TextKind) -> String {
    if schema.is_empty() || !mentions(sql, schema) {
        return sql.to_owned();
    }
    let toks = lex(sql);
    let word = |t: &Tok| -> Option<String> {
        (t.kind == Kind::Word).then(|| sql[t.start..t.end].to_ascii_lowercase())
    };
    let is = |t: Option<&Tok>, p: &str| t.is_some_and(|t| &sql[t.start..t.end] == p);
    let is_word = |t: Option<&Tok>, list: &[&str]| {
        t.and_then(word).is_some_and(|w| list.contains(&w.as_str()))
    };
    // Byte ranges to cut, and literals to rewrite.
    let mut cuts: Vec<(usize, usize, String)> = Vec::new();
    let mut frames = vec![Frame {
        from_list: false,
        from_function: false,
        joined: false,
    }];
    for (i, t) in toks.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| &toks[p]);
        let frame = frames.last_mut().expect("one frame at least");
        // Context: FROM lists and parentheses.
        if let Some(w) = word(t) {
            match w.as_str() {
                "from" if frame.from_function || is_word(prev, &["distinct"]) => {}
                "from" | "join" => {
                    frame.from_list = true;
                    frame.joined = true;
                }
                w if CLAUSE_WORDS.contains(&w) => frame.from_list = false,
                _ => {}
            }
        }
        if is(Some(t), "(") {
            let from_item = frame.from_list
                && (is_word(prev, &["from", "join", "lateral"]) || is(prev, ",") || is(prev, "("));
            frames.push(Frame {
                from_list: from_item,
                from_function: is_word(prev, FROM_FUNCTIONS),
                joined: false,
            });
            continue;
        }
        if is(Some(t), ")") {
            if frames.len() > 1 {
                frames.pop();
            }
            continue;
        }
        // A `'schema.name'::regclass` literal.
        if let Kind::Str { escape: false } = t.kind {
            if is(toks.get(i + 1), "::") && is_word(toks.get(i + 2), REG_TYPES) {
                let literal = &sql[t.start + 1..t.end - 1];
                if let Some(rest) = strip_literal_name(&literal.replace("''", "'"), schema) {
                    cuts.push((t.start, t.end, format!("'{}'", rest.replace('\'', "''"))));
                }
            }
            continue;
        }
        // A `schema . name` not itself after a `.` (an operator's name is
        // no identifier).
        let operator = is(prev, "(") && i >= 2 && is_word(toks.get(i - 2), &["operator"]);
        if !matches!(t.kind, Kind::Word | Kind::Quoted)
            || ident(sql, t).as_deref() != Some(schema)
            || !is(toks.get(i + 1), ".")
            || !(operator
                || toks
                    .get(i + 2)
                    .is_some_and(|n| matches!(n.kind, Kind::Word | Kind::Quoted)))
            || is(prev, ".")
        {
            continue;
        }
        let frame = frames.last().expect("one frame at least");
        // `schema.table.column`: the first of three parts is a schema
        // (MySQL prints every column of a view so).
        let three_parts = is(toks.get(i + 3), ".")
            && toks
                .get(i + 4)
                .is_some_and(|n| matches!(n.kind, Kind::Word | Kind::Quoted));
        let qualifier = kind == TextKind::Names
            || three_parts
            || is(prev, "::")
            || is(toks.get(i + 3), "(")
            || is_word(prev, RELATION_WORDS)
                && !(is_word(prev, &["from"])
                    && (frame.from_function || i >= 2 && is_word(toks.get(i - 2), &["distinct"])))
            || (is(prev, ",") || is(prev, "(")) && frame.from_list
            || is_word(prev, &["on"]) && !frame.joined
            || is_word(prev, &["to"])
                && i >= 2
                && is_word(toks.get(i - 2), &["insert", "update", "delete", "select"])
            || operator;
        if qualifier {
            cuts.push((t.start, toks[i + 1].end, String::new()));
        }
    }
    if cuts.is_empty() {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for (start, end, with) in cuts {
        out.push_str(&sql[at..start]);
        out.push_str(&with);
        at = end;
    }
    out.push_str(&sql[at..]);
    out
}

/// Whether `sql` could name `schema` at all: verbatim, or (a name with a
/// quote in it, doubled in the quoted forms) anywhere; such names take the
/// token path every time.
fn mentions(sql: &str, schema: &str) -> bool {
    sql.contains(schema) || schema.contains(['"', '`', '\''])
}

/// `schema.rest` (the schema bare or double-quoted) → `rest`.
fn strip_literal_name(name: &str, schema: &str) -> Option<String> {
    let rest = if let Some(quoted) = name.strip_prefix('"') {
        let mut ident = String::new();
        let mut chars = quoted.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if chars.peek().map(|(_, n)| *n) == Some('"') {
                    ident.push('"');
                    chars.next();
                    continue;
                }
                end = Some(i + 1);
                break;
            }
            ident.push(c);
        }
        let end = end?;
        (ident == schema).then(|| &quoted[end..])?
    } else {
        name.strip_prefix(schema)?
    };
    rest.strip_prefix('.').map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(s: &str, schema: &str) -> String {
        strip_own_schema(s, schema, TextKind::Sql)
    }

    #[test]
    fn own_schema_goes_and_every_other_stays() {
        assert_eq!(
            sql("SELECT tasks.id FROM t42.tasks", "t42"),
            "SELECT tasks.id FROM tasks"
        );
        assert_eq!(
            sql("SELECT tasks.id FROM public.tasks", "t42"),
            "SELECT tasks.id FROM public.tasks"
        );
        assert_eq!(
            sql("nextval('t42.orders_id_seq'::regclass)", "t42"),
            "nextval('orders_id_seq'::regclass)"
        );
        assert_eq!(
            sql("nextval('public.orders_id_seq'::regclass)", "t42"),
            "nextval('public.orders_id_seq'::regclass)"
        );
        assert_eq!(sql("'a'::t42.status", "t42"), "'a'::status");
        assert_eq!(sql("t42.f(x) + other.g(y)", "t42"), "f(x) + other.g(y)");
        assert_eq!(
            strip_own_schema("t42.status[]", "t42", TextKind::Names),
            "status[]"
        );
        assert_eq!(
            strip_own_schema(
                "a t42.status, b integer DEFAULT t42.f()",
                "t42",
                TextKind::Names
            ),
            "a status, b integer DEFAULT f()"
        );
        assert_eq!(sql("x OPERATOR(t42.===) y", "t42"), "x OPERATOR(===) y");
    }

    #[test]
    fn string_literals_are_never_touched() {
        assert_eq!(sql("'public.read'::text", "public"), "'public.read'::text");
        assert_eq!(sql("'t42.x'", "t42"), "'t42.x'");
        assert_eq!(sql("E't42.\\'x'", "t42"), "E't42.\\'x'");
        assert_eq!(
            sql("$$ SELECT * FROM t42.x $$", "t42"),
            "$$ SELECT * FROM t42.x $$"
        );
    }

    #[test]
    fn an_alias_named_like_the_schema_is_kept() {
        assert_eq!(
            sql("SELECT t.id, t.name FROM t.tasks t WHERE t.id > 0", "t"),
            "SELECT t.id, t.name FROM tasks t WHERE t.id > 0"
        );
        assert_eq!(
            sql("SELECT t.id, t.name FROM p.tasks t WHERE t.id > 0", "p"),
            "SELECT t.id, t.name FROM tasks t WHERE t.id > 0"
        );
        assert_eq!(
            sql(
                "SELECT p.a FROM t.x p JOIN t.y t ON t.id = p.id, t.z WHERE EXTRACT(epoch FROM t.at) > 0 AND p.a IS DISTINCT FROM t.b",
                "t"
            ),
            "SELECT p.a FROM x p JOIN y t ON t.id = p.id, z WHERE EXTRACT(epoch FROM t.at) > 0 AND p.a IS DISTINCT FROM t.b"
        );
        assert_eq!(
            sql(
                "SELECT s.a FROM (t.x s JOIN (SELECT t.id FROM t.y t) u ON s.a = u.id)",
                "t"
            ),
            "SELECT s.a FROM (x s JOIN (SELECT t.id FROM y t) u ON s.a = u.id)"
        );
    }

    #[test]
    fn triggers_rules_and_mysql_views_read_alike() {
        assert_eq!(
            sql(
                "CREATE TRIGGER a BEFORE UPDATE OF x ON t42.tasks FOR EACH ROW WHEN (new.x > 0) EXECUTE FUNCTION t42.touch()",
                "t42"
            ),
            "CREATE TRIGGER a BEFORE UPDATE OF x ON tasks FOR EACH ROW WHEN (new.x > 0) EXECUTE FUNCTION touch()"
        );
        assert_eq!(
            sql(
                "select `t`.`id` AS `id` from (`acme`.`tasks` `t` join `acme`.`users` `u` on(`t`.`uid` = `u`.`id`))",
                "acme"
            ),
            "select `t`.`id` AS `id` from (`tasks` `t` join `users` `u` on(`t`.`uid` = `u`.`id`))"
        );
        assert_eq!(
            sql(
                "select `acme`.`t01`.`id` AS `id` from `acme`.`t01` where `acme`.`t01`.`state` = 'active'",
                "acme"
            ),
            "select `t01`.`id` AS `id` from `t01` where `t01`.`state` = 'active'"
        );
        // A column of a table aliased like the schema keeps its alias.
        assert_eq!(
            sql("select `acme`.`id` from `acme`.`t01` `acme`", "acme"),
            "select `acme`.`id` from `t01` `acme`"
        );
        assert_eq!(
            sql(
                "CREATE RULE r AS ON INSERT TO t42.a DO INSTEAD INSERT INTO t42.b VALUES (new.x)",
                "t42"
            ),
            "CREATE RULE r AS ON INSERT TO a DO INSTEAD INSERT INTO b VALUES (new.x)"
        );
    }

    #[test]
    fn names_with_quotes_are_found_in_every_form() {
        assert_eq!(
            sql("SELECT 1 FROM \"Tenant 7\".a", "Tenant 7"),
            "SELECT 1 FROM a"
        );
        assert_eq!(sql("'x'::\"we\"\"ird\".t", "we\"ird"), "'x'::t");
        assert_eq!(
            sql(
                r#"nextval('"o''brien ""co"".".t_id_seq'::regclass)"#,
                r#"o'brien "co"."#
            ),
            "nextval('t_id_seq'::regclass)"
        );
        assert_eq!(sql(r#"'a'::"o'brien".e"#, "o'brien"), "'a'::e");
        assert_eq!(
            sql(
                r#"SELECT t.id FROM "o'brien ""co"".".tasks t WHERE t.state <> 'done'::"o'brien ""co"".".task_state"#,
                r#"o'brien "co"."#
            ),
            "SELECT t.id FROM tasks t WHERE t.state <> 'done'::task_state"
        );
        assert_eq!(sql("xt42.f(1) + t42x.g(2)", "t42"), "xt42.f(1) + t42x.g(2)");
    }
}
