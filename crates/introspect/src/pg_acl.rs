//! PostgreSQL privileges, from the text of `aclitem`s.
//!
//! A read asks the server for an object's ACL and, beside it, the ACL the
//! object has by default (`acldefault`), both as `aclitem` text, and tells
//! them apart here: the set difference the server would compute with
//! `aclexplode` and `EXCEPT` costs every fresh backend of a
//! database-per-tenant scan the planning of four set operations per kind
//! of object, for a handful of objects whose privileges were ever changed.
//!
//! `aclitem` text is `grantee=privileges/grantor` (PostgreSQL's
//! `aclitemout`): the grantee is empty for PUBLIC, a role's name, in double
//! quotes (a quote doubled) unless it is only ASCII letters, digits and
//! `_`, or the role's oid when the role is gone; each privilege is a
//! letter, followed by `*` when it may be granted on.

use std::collections::BTreeSet;

/// One privilege a role holds: (grantee, privilege, grantable). The
/// grantee is `public`, `{owner}` for the object's owner, or the role's
/// name; who granted it is left out.
pub(crate) type Privilege = (String, &'static str, bool);

/// The privileges an object's ACL grants beyond its default (`revoked`
/// false) and those of the default it lacks (`revoked` true), as
/// `(revoked, privilege, grantee, grantable)`, in a stable order.
///
/// `items` is what the read query returns for the object (see
/// `postgres::acl_read`): the owner's name, the ACL's items, an empty
/// string, the default ACL's items. `None` when an item cannot be read.
pub(crate) fn acl_changes(items: &[String]) -> Option<Vec<(bool, String, String, bool)>> {
    let (owner, rest) = items.split_first()?;
    let split = rest.iter().position(String::is_empty)?;
    let (acl, baseline) = (&rest[..split], &rest[split + 1..]);
    let acl = privileges(acl, owner)?;
    let baseline = privileges(baseline, owner)?;
    let granted = acl.difference(&baseline).map(|p| (false, p));
    let revoked = baseline.difference(&acl).map(|p| (true, p));
    Some(
        granted
            .chain(revoked)
            .map(|(revoked, (grantee, privilege, grantable))| {
                (
                    revoked,
                    (*privilege).to_owned(),
                    grantee.clone(),
                    *grantable,
                )
            })
            .collect(),
    )
}

/// Every privilege the items grant, the owner's as `{owner}`.
fn privileges(items: &[String], owner: &str) -> Option<BTreeSet<Privilege>> {
    let mut out = BTreeSet::new();
    for item in items {
        let AclItem {
            grantee,
            privileges,
        } = parse_item(item)?;
        let grantee = match grantee {
            None => "public".to_owned(),
            Some(name) if name == owner => "{owner}".to_owned(),
            Some(name) => name,
        };
        for (privilege, grantable) in privileges {
            out.insert((grantee.clone(), privilege, grantable));
        }
    }
    Some(out)
}

/// One `aclitem`: who it grants to and what.
#[derive(Debug, PartialEq)]
struct AclItem {
    /// `None` for PUBLIC.
    grantee: Option<String>,
    /// Each privilege with whether it may be granted on.
    privileges: Vec<(&'static str, bool)>,
}

/// An item's grantee and privileges; `None` when the text is not an
/// aclitem's.
fn parse_item(item: &str) -> Option<AclItem> {
    let (grantee, rest) = parse_role(item)?;
    let rest = rest.strip_prefix('=')?;
    let mut privileges = Vec::new();
    let mut chars = rest.char_indices().peekable();
    let mut end = None;
    while let Some((at, letter)) = chars.next() {
        if letter == '/' {
            end = Some(at);
            break;
        }
        let grantable = chars.next_if(|(_, c)| *c == '*').is_some();
        privileges.push((privilege_name(letter)?, grantable));
    }
    // The grantor, after the `/`, must read as a role too.
    let grantor = &rest[end? + 1..];
    let (_, tail) = parse_role(grantor)?;
    if !tail.is_empty() {
        return None;
    }
    let grantee = if grantee.is_empty() {
        None
    } else {
        Some(grantee)
    };
    Some(AclItem {
        grantee,
        privileges,
    })
}

/// A role's name at the start of `text`, unquoted, and what follows it.
fn parse_role(text: &str) -> Option<(String, &str)> {
    let Some(quoted) = text.strip_prefix('"') else {
        let end = text.find(['=', '/']).unwrap_or(text.len());
        return Some((text[..end].to_owned(), &text[end..]));
    };
    let mut name = String::new();
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        if c != '"' {
            name.push(c);
            continue;
        }
        // `""` is one quote; a single one closes the name.
        if quoted[at + 1..].starts_with('"') {
            name.push('"');
            chars.next();
        } else {
            return Some((name, &quoted[at + 1..]));
        }
    }
    None
}

/// The name `aclexplode` gives a privilege's letter (PostgreSQL's
/// `ACL_ALL_RIGHTS_STR`, `convert_aclright_to_string`).
fn privilege_name(letter: char) -> Option<&'static str> {
    Some(match letter {
        'a' => "INSERT",
        'r' => "SELECT",
        'w' => "UPDATE",
        'd' => "DELETE",
        'D' => "TRUNCATE",
        'x' => "REFERENCES",
        't' => "TRIGGER",
        'X' => "EXECUTE",
        'U' => "USAGE",
        'C' => "CREATE",
        'T' => "TEMPORARY",
        'c' => "CONNECT",
        's' => "SET",
        'A' => "ALTER SYSTEM",
        'm' => "MAINTAIN",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn grants_beyond_the_default_and_revocations_of_it_are_told_apart() {
        let read = items(&[
            "alice",
            "alice=arwdDxt/alice",
            "=r/alice",
            "bob=r*w/alice",
            "",
            "alice=arwdDxt/alice",
            "bob=r/alice",
        ]);
        let mut changes = acl_changes(&read).unwrap();
        changes.sort();
        assert_eq!(
            changes,
            vec![
                (false, "SELECT".into(), "bob".into(), true),
                (false, "SELECT".into(), "public".into(), false),
                (false, "UPDATE".into(), "bob".into(), false),
                (true, "SELECT".into(), "bob".into(), false),
            ]
        );
    }

    #[test]
    fn the_owner_reads_as_a_placeholder_and_a_revoked_owner_right_shows() {
        let read = items(&["o", "o=r/o", "", "o=arwdDxt/o"]);
        let changes = acl_changes(&read).unwrap();
        let revoked: Vec<&str> = changes
            .iter()
            .filter(|c| c.0 && c.2 == "{owner}")
            .map(|c| c.1.as_str())
            .collect();
        assert_eq!(
            revoked,
            [
                "DELETE",
                "INSERT",
                "REFERENCES",
                "TRIGGER",
                "TRUNCATE",
                "UPDATE"
            ]
        );
        assert!(changes.iter().all(|c| c.0));
    }

    #[test]
    fn quoted_role_names_are_unquoted_and_the_grantor_is_left_out() {
        let item = parse_item(r#""we""ird=role"=U*C/"x/y""#).unwrap();
        assert_eq!(item.grantee.as_deref(), Some(r#"we"ird=role"#));
        assert_eq!(item.privileges, vec![("USAGE", true), ("CREATE", false)]);
        assert_eq!(parse_item("=X/postgres").unwrap().grantee, None);
        // A role dropped since prints as its oid.
        let item = parse_item("16390=r/16391").unwrap();
        assert_eq!(item.grantee.as_deref(), Some("16390"));
        // The same privilege from two grantors is one privilege.
        let read = items(&["o", "a=r/o", "a=r/b", "", "o=arwdDxt/o"]);
        let granted = acl_changes(&read).unwrap().into_iter().filter(|c| !c.0);
        assert_eq!(granted.count(), 1);
    }

    #[test]
    fn text_that_is_not_an_aclitem_is_refused_not_guessed() {
        for bad in ["alice", "alice=q/o", r#""open=r/o"#, "a=r/o/extra", "a=r"] {
            assert_eq!(parse_item(bad), None, "{bad}");
        }
        assert_eq!(acl_changes(&items(&["o", "o=r/o"])), None);
        assert_eq!(acl_changes(&[]), None);
    }
}
