//! Validated registry inputs: tenant slugs, domains and display names.
//! Rejections say what is wrong and what is allowed; the offending input is
//! shown escaped (control characters visible) and cut to a readable length.

use std::fmt;

use crate::error::RegistryError;

/// Shows user input safely inside an error message.
pub(crate) fn shown(input: &str) -> String {
    let escaped: String = input.escape_debug().collect();
    if escaped.chars().count() > 60 {
        let cut: String = escaped.chars().take(60).collect();
        format!("\"{cut}…\"")
    } else {
        format!("\"{escaped}\"")
    }
}

/// A control character or a bidirectional override/mark: invisible, and
/// able to make text read as something it is not.
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

/// Text with every control character (newlines, escape sequences, bidi
/// overrides) written out as `\u{..}`, so it prints as one inert line in a
/// terminal, a log or a report.
pub fn escape_controls(input: &str) -> String {
    if !input.chars().any(invisible) {
        return input.to_owned();
    }
    input
        .chars()
        .map(|c| {
            if invisible(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A tenant's slug: 1–63 characters of `a-z`, `0-9`, `-` and `_`, starting
/// and ending with a letter or digit, so a database or schema name
/// (`pgt_0001`) can be its tenant's slug. ASCII only, so look-alike
/// characters cannot make two slugs that read the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug(String);

impl Slug {
    pub fn parse(input: &str) -> Result<Self, RegistryError> {
        let invalid = |reason: &str| RegistryError::InvalidSlug {
            given: shown(input),
            reason: reason.to_owned(),
        };
        if input.is_empty() {
            return Err(invalid("it is empty"));
        }
        if input.len() > 63 {
            return Err(invalid("it is longer than 63 characters"));
        }
        if let Some(c) = input
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
        {
            let what = if c.is_ascii_uppercase() {
                "upper-case letters are not allowed (use lower case)".to_owned()
            } else if !c.is_ascii() {
                format!(
                    "{} is not an ASCII letter, digit, '-' or '_'",
                    c.escape_unicode()
                )
            } else {
                format!("{} is not allowed", shown(&c.to_string()))
            };
            return Err(invalid(&format!("{what}; use a-z, 0-9, '-' and '_'")));
        }
        let edge = |c: char| c == '-' || c == '_';
        if input.starts_with(edge) || input.ends_with(edge) {
            return Err(invalid("it may not start or end with '-' or '_'"));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A domain a tenant answers on, stored lower case without a trailing dot.
/// Internationalised names are accepted in their ASCII (`xn--`) form only,
/// so a Cyrillic `а` can never pass for a Latin `a`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    pub fn parse(input: &str) -> Result<Self, RegistryError> {
        let invalid = |reason: &str| RegistryError::InvalidDomain {
            given: shown(input),
            reason: reason.to_owned(),
        };
        let d = input
            .strip_suffix('.')
            .unwrap_or(input)
            .to_ascii_lowercase();
        if d.is_empty() {
            return Err(invalid("it is empty"));
        }
        if !d.is_ascii() {
            return Err(invalid(
                "it has non-ASCII characters; enter an internationalised domain in its xn-- (punycode) form",
            ));
        }
        if d.len() > 253 {
            return Err(invalid("it is longer than 253 characters"));
        }
        if !d.contains('.') {
            return Err(invalid("it needs at least two labels (example.com)"));
        }
        for label in d.split('.') {
            if label.is_empty() {
                return Err(invalid("it has an empty label (two dots in a row)"));
            }
            if label.len() > 63 {
                return Err(invalid("a label is longer than 63 characters"));
            }
            if let Some(c) = label
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
            {
                return Err(invalid(&format!(
                    "{} is not allowed; use letters, digits, '-' and '.'",
                    shown(&c.to_string())
                )));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(invalid("a label may not start or end with '-'"));
            }
        }
        Ok(Self(d))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A tenant's display name: 1–200 characters, any script, no control or
/// bidirectional-override characters (which could disguise the name).
pub fn display_name(input: &str) -> Result<String, RegistryError> {
    let invalid = |reason: &str| RegistryError::InvalidDisplayName {
        given: shown(input),
        reason: reason.to_owned(),
    };
    let t = input.trim();
    if t.is_empty() {
        return Err(invalid("it is empty"));
    }
    if t.chars().count() > 200 {
        return Err(invalid("it is longer than 200 characters"));
    }
    if let Some(c) = t.chars().find(|c| invisible(*c)) {
        return Err(invalid(&format!(
            "it contains the invisible character {}",
            c.escape_unicode()
        )));
    }
    Ok(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_slugs_pass() {
        for s in ["acme", "acme-eu-2", "0day", "a", "pgt_0001", "acme_eu-2"] {
            assert_eq!(Slug::parse(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn hostile_slugs_are_rejected_with_reasons() {
        let cases = [
            ("", "empty"),
            ("Acme", "upper-case"),
            ("acme'; DROP TABLE tenants; --", "not allowed"),
            ("ac\"me", "not allowed"),
            ("acme;", "not allowed"),
            ("ac\0me", "not allowed"),
            ("аcme", "not an ASCII"), // Cyrillic а
            ("acme\u{200b}", "not an ASCII"),
            ("-acme", "start or end"),
            ("acme-", "start or end"),
            ("_acme", "start or end"),
            ("acme_", "start or end"),
            ("ac me", "not allowed"),
        ];
        for (input, why) in cases {
            let err = Slug::parse(input).unwrap_err().to_string();
            assert!(err.contains(why), "{input:?}: {err}");
            assert!(!err.contains('\0'), "NUL must be shown escaped: {err:?}");
        }
        let long = "a".repeat(64);
        assert!(Slug::parse(&long)
            .unwrap_err()
            .to_string()
            .contains("longer than 63"));
        let huge = "x".repeat(10_000);
        assert!(Slug::parse(&huge).unwrap_err().to_string().len() < 300);
    }

    #[test]
    fn domains_are_normalised_and_checked() {
        assert_eq!(
            Domain::parse("Acme.Example.COM.").unwrap().as_str(),
            "acme.example.com"
        );
        assert_eq!(
            Domain::parse("xn--80ak6aa92e.com").unwrap().as_str(),
            "xn--80ak6aa92e.com"
        );
        let cases = [
            ("", "empty"),
            ("аcme.com", "xn--"),
            ("localhost", "two labels"),
            ("a..com", "empty label"),
            ("acme.com;", "not allowed"),
            ("ac'me.com", "not allowed"),
            ("-acme.com", "start or end"),
            ("ac\0me.com", "not allowed"),
        ];
        for (input, why) in cases {
            let err = Domain::parse(input).unwrap_err().to_string();
            assert!(err.contains(why), "{input:?}: {err}");
        }
        let long = format!("{}.com", "a".repeat(64));
        assert!(Domain::parse(&long).unwrap_err().to_string().contains("63"));
    }

    #[test]
    fn display_names_allow_any_script_but_no_invisible_tricks() {
        assert_eq!(
            display_name("  Müller & Søn GmbH ").unwrap(),
            "Müller & Søn GmbH"
        );
        assert_eq!(display_name("株式会社").unwrap(), "株式会社");
        assert!(display_name("").is_err());
        assert!(display_name("Acme\u{202E}moc").is_err());
        assert!(display_name("Ac\0me").is_err());
        assert!(display_name(&"x".repeat(201)).is_err());
    }
}
