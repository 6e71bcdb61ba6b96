//! A tenant's drift against its template version, and the report to share
//! (text, Markdown, HTML, JSON).

use std::fmt::Write;

use serde::Serialize;
use tenantry_introspect::Timeouts;
use tenantry_model::diff::{diff_schemas, Presence, SchemaDiff};
use tenantry_registry::Registry;
use tenantry_vault::Vault;
use ts_rs::TS;

use crate::guard::read_tenant;
use crate::FleetError;

#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct TenantDiff {
    pub slug: String,
    pub location: String,
    pub template: String,
    pub template_version: String,
    pub diff: SchemaDiff,
}

/// Reads the tenant and compares it with the measured model of its
/// template version.
pub async fn diff_tenant(
    registry: &Registry,
    vault: &Vault,
    slug: &str,
    timeouts: Timeouts,
) -> Result<TenantDiff, FleetError> {
    let record = registry.tenant(slug).await?;
    let (Some(name), Some(version)) = (&record.template, &record.template_version) else {
        return Err(FleetError::InvalidTemplate {
            reason: format!("tenant {slug} has no template version to compare with"),
        });
    };
    let template = registry
        .template_snapshot(name, record.engine, version)
        .await?;
    let url = registry.connection(vault, slug).await?;
    let tenant = read_tenant(&record, &url, timeouts).await?;
    Ok(TenantDiff {
        slug: record.slug.clone(),
        location: record.location.clone(),
        template: name.clone(),
        template_version: version.clone(),
        diff: diff_schemas(&template, &tenant),
    })
}

fn presence_word(p: Presence) -> &'static str {
    match p {
        Presence::Added => "added (custom)",
        Presence::Missing => "missing",
        Presence::Changed => "changed",
        Presence::Identical => "identical",
    }
}

fn summary(d: &TenantDiff) -> String {
    format!(
        "{} against {} {}: {} added, {} missing, {} changed, {} identical",
        d.slug,
        d.template,
        d.template_version,
        d.diff.count(Presence::Added),
        d.diff.count(Presence::Missing),
        d.diff.count(Presence::Changed),
        d.diff.count(Presence::Identical)
    )
}

/// Plain text for a terminal: the summary, then each differing object with
/// its structured changes and unified DDL diff.
pub fn to_text(d: &TenantDiff) -> String {
    let mut s = summary(d);
    s.push('\n');
    for o in d
        .diff
        .objects
        .iter()
        .filter(|o| o.presence != Presence::Identical)
    {
        let _ = writeln!(
            s,
            "\n{} {} — {}",
            o.kind.as_str(),
            line(&o.name),
            presence_word(o.presence)
        );
        for c in &o.changes {
            let _ = writeln!(
                s,
                "  {:?} {} {}: {} → {}",
                c.area,
                line(&c.item),
                presence_word(c.presence),
                line(c.template.as_deref().unwrap_or("—")),
                line(c.tenant.as_deref().unwrap_or("—"))
            );
        }
        s.push_str(&lines(&o.unified));
    }
    s
}

/// One line of text from a tenant's catalog (a name, a default, a
/// definition) made inert for a terminal or a report: every control
/// character, newlines included, is written out as `\u{..}`.
fn line(s: &str) -> String {
    tenantry_registry::escape_controls(s)
}

/// Several lines (a DDL diff): the line breaks stay, every other control
/// character is written out.
fn lines(s: &str) -> String {
    s.split('\n').map(line).collect::<Vec<_>>().join("\n")
}

/// A Markdown code span that shows `s` literally, whatever it holds: a
/// fence longer than any run of backticks inside, pipes escaped for tables.
fn md_code(s: &str) -> String {
    let s = line(s).replace('|', "\\|");
    let fence = "`".repeat(longest_backtick_run(&s) + 1);
    format!("{fence} {s} {fence}")
}

fn longest_backtick_run(s: &str) -> usize {
    s.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

pub fn to_markdown(d: &TenantDiff) -> String {
    let mut s = format!(
        "# Schema drift: {}\n\n{}\n\n- tenant: {}\n- template hash: {}\n- tenant hash: {}\n\n| object | status |\n|---|---|\n",
        md_code(&d.slug),
        line(&summary(d)).replace(['<', '>', '#', '*', '_', '[', ']'], " "),
        md_code(&d.location),
        md_code(&d.diff.template_hash),
        md_code(&d.diff.tenant_hash)
    );
    for o in &d.diff.objects {
        let _ = writeln!(
            s,
            "| {} {} | {} |",
            o.kind.as_str(),
            md_code(&o.name),
            presence_word(o.presence)
        );
    }
    for o in d
        .diff
        .objects
        .iter()
        .filter(|o| o.presence != Presence::Identical)
    {
        let _ = writeln!(
            s,
            "\n## {} {} — {}\n",
            o.kind.as_str(),
            md_code(&o.name),
            presence_word(o.presence)
        );
        for c in &o.changes {
            let _ = writeln!(
                s,
                "- {:?} {} {}: {} → {}",
                c.area,
                md_code(&c.item),
                presence_word(c.presence),
                md_code(c.template.as_deref().unwrap_or("—")),
                md_code(c.tenant.as_deref().unwrap_or("—"))
            );
        }
        let body = lines(&o.unified);
        let fence = "`".repeat(longest_backtick_run(&body).max(2) + 1);
        let _ = writeln!(s, "\n{fence}diff\n{body}{fence}");
    }
    s
}

fn esc(s: &str) -> String {
    lines(s)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A self-contained HTML page (no scripts, no remote resources) with a
/// side-by-side DDL diff per differing object.
pub fn to_html(d: &TenantDiff) -> String {
    let mut s = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Schema drift</title><style>\
         body{font:14px system-ui,sans-serif;margin:24px;color:#1d2330}table{border-collapse:collapse;width:100%}\
         td,th{border:1px solid #dde1e8;padding:4px 8px;text-align:left;vertical-align:top}\
         pre{margin:0;font:12px ui-monospace,monospace;white-space:pre-wrap}\
         .delete{background:#fde8e8}.insert{background:#e6f6ea}.added{color:#b35c00}.missing{color:#c22f2f}.changed{color:#7a55c7}\
         </style></head><body>",
    );
    let _ = write!(
        s,
        "<h1>Schema drift: {}</h1><p>{}</p><p>tenant <code>{}</code><br>template hash <code>{}</code><br>tenant hash <code>{}</code></p>",
        esc(&d.slug),
        esc(&summary(d)),
        esc(&d.location),
        esc(&d.diff.template_hash),
        esc(&d.diff.tenant_hash)
    );
    for o in d
        .diff
        .objects
        .iter()
        .filter(|o| o.presence != Presence::Identical)
    {
        let class = match o.presence {
            Presence::Added => "added",
            Presence::Missing => "missing",
            _ => "changed",
        };
        let _ = write!(
            s,
            "<h2>{} <code>{}</code> — <span class=\"{class}\">{}</span></h2><table><tr><th>template</th><th>tenant</th></tr>",
            esc(o.kind.as_str()),
            esc(&o.name),
            presence_word(o.presence)
        );
        for l in &o.side_by_side {
            let _ = write!(
                s,
                "<tr class=\"{}\"><td><pre>{}</pre></td><td><pre>{}</pre></td></tr>",
                l.tag,
                esc(l.template.as_deref().unwrap_or("")),
                esc(l.tenant.as_deref().unwrap_or(""))
            );
        }
        s.push_str("</table>");
    }
    s.push_str("</body></html>\n");
    s
}

/// Measures the tenant now and records that hash as its accepted
/// customisation, with `note`. Returns the accepted hash.
pub async fn accept_customisation(
    registry: &Registry,
    vault: &Vault,
    slug: &str,
    note: &str,
    timeouts: Timeouts,
) -> Result<String, FleetError> {
    let measured = async {
        let record = registry.tenant(slug).await?;
        let url = registry.connection(vault, slug).await?;
        let snap = read_tenant(&record, &url, timeouts).await?;
        Ok::<_, FleetError>(tenantry_model::hash_schema(&snap).root.to_string())
    }
    .await;
    let hash = match measured {
        Ok(hash) => hash,
        Err(e) => {
            // A failed accept is recorded like every failure; recording the
            // baseline audits itself.
            registry
                .audit(
                    Some(slug),
                    "baseline.accept",
                    &format!("not accepted: {e}"),
                    if e.is_refusal() {
                        tenantry_registry::AuditResult::Refused
                    } else {
                        tenantry_registry::AuditResult::Failed
                    },
                )
                .await?;
            return Err(e);
        }
    };
    registry.accept_baseline(slug, &hash, note).await?;
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13, item 12: a hostile table name cannot break out of its code
    /// span, start a heading or table row, or inject HTML or escapes.
    #[test]
    fn hostile_names_stay_inert_in_text_and_markdown() {
        let name = "x`\n# Forged heading\n<script>alert(1)</script> | \u{1b}[31m``";
        let code = md_code(name);
        assert!(!code.contains('\n') && !code.contains('\u{1b}'), "{code}");
        let fence_len = longest_backtick_run(name) + 1;
        assert!(code.starts_with(&"`".repeat(fence_len)), "{code}");
        assert!(code.contains("\\|"), "{code}");
        assert_eq!(line("a\nb"), "a\\u{a}b");
        assert_eq!(lines("a\n\u{1b}b"), "a\n\\u{1b}b");
        assert!(!esc("<b>\u{1b}").contains('<'));
    }
}
