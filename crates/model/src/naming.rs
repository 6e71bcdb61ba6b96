//! The names each engine generates for unnamed constraints and indexes, so
//! that introspection can tell a server-generated name (matched by structure,
//! left out of the hash) from a name chosen by hand (hashed).

/// PostgreSQL's rules (`makeObjectName` / `ChooseRelationName` in
/// `src/backend/commands/indexcmds.c`).
pub mod postgres {
    /// `NAMEDATALEN - 1`: the longest identifier PostgreSQL keeps.
    const MAX_IDENT: usize = 63;

    /// `makeObjectName(name1, name2, label)`: `name1_name2_label`, with the
    /// longer of name1/name2 shortened until the whole fits in 63 bytes.
    pub fn make_object_name(name1: &str, name2: Option<&str>, label: &str) -> String {
        let mut overhead = 0;
        if !label.is_empty() {
            overhead += label.len() + 1;
        }
        if name2.is_some() {
            overhead += 1;
        }
        let avail = MAX_IDENT.saturating_sub(overhead);
        let mut n1 = name1.len();
        let mut n2 = name2.map_or(0, str::len);
        while n1 + n2 > avail {
            if n1 > n2 {
                n1 -= 1;
            } else {
                n2 -= 1;
            }
        }
        let mut out = clip(name1, n1).to_owned();
        if let Some(name2) = name2 {
            out.push('_');
            out.push_str(clip(name2, n2));
        }
        if !label.is_empty() {
            out.push('_');
            out.push_str(label);
        }
        out
    }

    /// Clips to at most `max` bytes on a character boundary, as
    /// `pg_mbcliplen` does.
    fn clip(s: &str, max: usize) -> &str {
        let mut end = max.min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        &s[..end]
    }

    /// True when `actual` is what `ChooseRelationName(name1, name2, label)`
    /// yields on any of its first passes (`label`, `label1`, `label2`, …).
    pub fn is_generated(actual: &str, name1: &str, name2: Option<&str>, label: &str) -> bool {
        if make_object_name(name1, name2, label) == actual {
            return true;
        }
        // A later pass ends in `label<pass>`: read the pass off the name and
        // build that one candidate, rather than all hundred.
        let digits = actual.len() - actual.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let counter = &actual[actual.len() - digits..];
        let numbered = (1..=2).contains(&digits) && !counter.starts_with('0');
        numbered
            && actual[..actual.len() - digits].ends_with(label)
            && make_object_name(name1, name2, &format!("{label}{counter}")) == actual
    }

    /// The `name2` part PostgreSQL uses for an index or FK over `columns`:
    /// the names joined with `_`, expressions counted as `expr`.
    pub fn column_addition<'a>(columns: impl IntoIterator<Item = Option<&'a str>>) -> String {
        let mut out = String::new();
        for c in columns {
            if !out.is_empty() {
                out.push('_');
            }
            out.push_str(c.unwrap_or("expr"));
            if out.len() >= MAX_IDENT {
                break;
            }
        }
        out
    }
}

/// MySQL / MariaDB rules.
pub mod mysql {
    fn is_name_with_counter(actual: &str, prefix: &str) -> bool {
        actual
            .strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    }

    /// An unnamed foreign key is `<table>_ibfk_<n>`.
    pub fn is_generated_foreign_key(actual: &str, table: &str) -> bool {
        is_name_with_counter(actual, &format!("{table}_ibfk_"))
    }

    /// An unnamed index or unique key takes its first column's name, then
    /// `<column>_2`, `<column>_3`, … on collision. An index InnoDB creates
    /// to back a foreign key takes that key's name.
    pub fn is_generated_index(actual: &str, first_column: Option<&str>, fk_names: &[&str]) -> bool {
        if fk_names.contains(&actual) {
            return true;
        }
        match first_column {
            Some(c) => actual == c || is_name_with_counter(actual, &format!("{c}_")),
            None => false,
        }
    }

    /// An unnamed CHECK is `CONSTRAINT_<n>` (MariaDB, table level), the
    /// column's name (MariaDB, column level) or `<table>_chk_<n>` (MySQL).
    pub fn is_generated_check(actual: &str, table: &str, columns: &[&str]) -> bool {
        is_name_with_counter(actual, "CONSTRAINT_")
            || is_name_with_counter(actual, &format!("{table}_chk_"))
            || columns.contains(&actual)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_generated_names() {
        assert_eq!(
            postgres::make_object_name("orders", None, "pkey"),
            "orders_pkey"
        );
        assert_eq!(
            postgres::make_object_name("orders", Some("customer_id"), "fkey"),
            "orders_customer_id_fkey"
        );
        assert!(postgres::is_generated(
            "orders_email_key1",
            "orders",
            Some("email"),
            "key"
        ));
        assert!(!postgres::is_generated(
            "orders_email_uq",
            "orders",
            Some("email"),
            "key"
        ));
        let long_table = "a".repeat(40);
        let long_col = "b".repeat(40);
        let name = postgres::make_object_name(&long_table, Some(&long_col), "key");
        assert_eq!(name.len(), 63);
        assert!(name.ends_with("_key"));
        assert_eq!(
            postgres::column_addition([Some("a"), None, Some("b")]),
            "a_expr_b"
        );
    }

    /// `is_generated` reads the pass off the name; it must agree with
    /// trying every pass, as `ChooseRelationName` does.
    #[test]
    fn postgres_generated_names_match_every_pass() {
        let every_pass = |actual: &str, name1: &str, name2: Option<&str>, label: &str| {
            (0..100).any(|pass| {
                let label = if pass == 0 {
                    label.to_owned()
                } else {
                    format!("{label}{pass}")
                };
                postgres::make_object_name(name1, name2, &label) == actual
            })
        };
        let long = "é".repeat(40);
        let tables = ["t", "orders", "t1", long.as_str()];
        let seconds = [None, Some("email"), Some("a_b_2"), Some(long.as_str())];
        for name1 in tables {
            for name2 in seconds {
                for label in ["key", "pkey", "idx", "check"] {
                    let mut names: Vec<String> = [0, 1, 9, 10, 42, 99, 100, 101]
                        .iter()
                        .map(|p| {
                            let l = if *p == 0 {
                                label.to_owned()
                            } else {
                                format!("{label}{p}")
                            };
                            postgres::make_object_name(name1, name2, &l)
                        })
                        .collect();
                    names.extend(
                        [
                            "orders_email_key01",
                            "orders_email_key0",
                            "t_pkey_1",
                            "x",
                            "",
                        ]
                        .map(str::to_owned),
                    );
                    for actual in &names {
                        assert_eq!(
                            postgres::is_generated(actual, name1, name2, label),
                            every_pass(actual, name1, name2, label),
                            "{actual} / {name1} / {name2:?} / {label}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn mysql_generated_names() {
        assert!(mysql::is_generated_foreign_key("orders_ibfk_1", "orders"));
        assert!(!mysql::is_generated_foreign_key(
            "fk_orders_customer",
            "orders"
        ));
        assert!(mysql::is_generated_index("email", Some("email"), &[]));
        assert!(mysql::is_generated_index("email_2", Some("email"), &[]));
        assert!(mysql::is_generated_index(
            "orders_ibfk_1",
            Some("customer_id"),
            &["orders_ibfk_1"]
        ));
        assert!(!mysql::is_generated_index("idx_email", Some("email"), &[]));
        assert!(mysql::is_generated_check("CONSTRAINT_1", "t", &[]));
        assert!(mysql::is_generated_check("price", "t", &["price"]));
        assert!(!mysql::is_generated_check(
            "positive_price",
            "t",
            &["price"]
        ));
    }
}
