//! Text normalisation shared by the engine introspectors: whitespace, schema
//! qualification and type aliases. Pure functions, no I/O.

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

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Removes qualification by `schema` from an expression or view definition:
/// `"t42".x`, `t42.x`, `` `t42`.x `` and `'t42.x_id_seq'::regclass` all lose
/// their `t42.` prefix. Only whole identifiers are matched (`xt42.` is kept).
///
/// The schema name is the tenant's own: a reference to it is a reference to
/// "this schema", which must read the same in every tenant.
pub fn strip_schema_qualifier(sql: &str, schema: &str) -> String {
    // Every form holds the schema name verbatim unless the name has a
    // quote in it (doubled in the quoted forms, and `'` doubled again where
    // the qualified name sits inside a string literal, as in
    // `nextval('"o''brien".t_id_seq'::regclass)`).
    if schema.is_empty() || (!schema.contains(['"', '`', '\'']) && !sql.contains(schema)) {
        return sql.to_owned();
    }
    let doubled_dq = schema.replace('"', "\"\"");
    let doubled_bt = schema.replace('`', "``");
    let mut forms = vec![
        format!("\"{doubled_dq}\"."),
        format!("`{doubled_bt}`."),
        format!("{schema}."),
    ];
    if schema.contains('\'') {
        forms.push(format!("\"{}\".", doubled_dq.replace('\'', "''")));
        forms.push(format!("`{}`.", doubled_bt.replace('\'', "''")));
    }
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    'outer: while !rest.is_empty() {
        let prev = out.chars().next_back();
        for (i, form) in forms.iter().enumerate() {
            // The bare form only counts at an identifier boundary.
            let boundary_ok = i != 2 || !prev.is_some_and(is_ident_char);
            if boundary_ok && rest.starts_with(form.as_str()) {
                rest = &rest[form.len()..];
                continue 'outer;
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out
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
    fn own_schema_qualification_is_removed_at_identifier_boundaries() {
        assert_eq!(
            strip_schema_qualifier("nextval('t42.orders_id_seq'::regclass)", "t42"),
            "nextval('orders_id_seq'::regclass)"
        );
        assert_eq!(
            strip_schema_qualifier("SELECT \"Tenant 7\".a.x FROM \"Tenant 7\".a", "Tenant 7"),
            "SELECT a.x FROM a"
        );
        assert_eq!(
            strip_schema_qualifier("select `acme`.`t`.`id` from `acme`.`t`", "acme"),
            "select `t`.`id` from `t`"
        );
        assert_eq!(
            strip_schema_qualifier("xt42.a + t42.b", "t42"),
            "xt42.a + b"
        );
        assert_eq!(strip_schema_qualifier("a.b", ""), "a.b");
        // A name with a quote in it is doubled in the quoted form, so it is
        // not found verbatim: the slow path still strips it.
        assert_eq!(strip_schema_qualifier("\"we\"\"ird\".t", "we\"ird"), "t");
        assert_eq!(strip_schema_qualifier("other.t", "t42"), "other.t");
        // Inside a string literal PostgreSQL doubles the name's `'`.
        assert_eq!(
            strip_schema_qualifier(
                r#"nextval('"o''brien ""co"".".t_id_seq'::regclass)"#,
                r#"o'brien "co"."#
            ),
            "nextval('t_id_seq'::regclass)"
        );
        assert_eq!(
            strip_schema_qualifier(r#"'a'::"o'brien".e"#, "o'brien"),
            "'a'::e"
        );
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
