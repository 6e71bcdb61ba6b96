//! Alerts after a scan: tenants newly `customized` or `failed` are POSTed
//! as JSON to a webhook (Slack-compatible: the message is in `text`; the
//! tenants, structured, beside it), with retries.
//!
//! The webhook's URL is a secret (Slack's carry a token in their path): it
//! is held as a [`Webhook`], whose Debug and every error show only its
//! scheme and host.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tenantry_model::SchemaStatus;

use crate::scan::{ScanReport, Shard, StatusMove};

/// Log targets that must never be on, whatever `TENANTRY_LOG` asks: the
/// HTTP client logs the whole request line, the webhook's token with it.
/// Every binary's log filter turns them off.
pub const SILENCED_LOG_TARGETS: &[&str] = &["ureq", "ureq_proto"];

/// Where alerts go.
pub struct Webhook {
    url: SecretString,
    /// `https://hooks.example.com/…`: what messages show.
    shown: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Webhook({})", self.shown)
    }
}

/// An alert that could not be delivered, or a webhook URL that is not one.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("the alert webhook is not an http(s) URL with a host (it is not shown: it may hold a token); set TENANTRY_ALERT_WEBHOOK to the URL your chat or incident tool gave you")]
    BadUrl,
    #[error("the alert to {webhook} was not delivered after {attempts} attempt(s): {reason}; the scan itself was recorded")]
    NotDelivered {
        webhook: String,
        attempts: u32,
        reason: String,
    },
}

impl AlertError {
    pub fn code(&self) -> &'static str {
        match self {
            AlertError::BadUrl => "alert_webhook_invalid",
            AlertError::NotDelivered { .. } => "alert_not_delivered",
        }
    }
}

impl Webhook {
    pub fn new(url: SecretString) -> Result<Self, AlertError> {
        let text = url.expose_secret().trim();
        let (scheme, rest) = text.split_once("://").ok_or(AlertError::BadUrl)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return Err(AlertError::BadUrl);
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        // userinfo is never shown either
        let host = authority.rsplit('@').next().unwrap_or("");
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AlertError::BadUrl);
        }
        Ok(Self {
            shown: format!("{scheme}://{host}/…"),
            url: SecretString::from(text.to_owned()),
        })
    }

    /// `scheme://host/…`, never the path or query.
    pub fn shown(&self) -> &str {
        &self.shown
    }
}

/// How hard delivery tries: `attempts` in all, waiting `first_wait`, then
/// twice as long each time (or what a 429's `Retry-After` asks, up to a
/// minute); each attempt may take `timeout`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_wait: Duration,
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_wait: Duration::from_secs(2),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The JSON an alert POSTs.
#[derive(Debug, Serialize)]
pub struct Alert {
    /// One message for a chat tool (Slack, Mattermost, Teams' Slack-compatible
    /// hooks): what happened, the first tenants and how to look.
    pub text: String,
    /// `I/N` when the scan read one shard.
    pub shard: Option<String>,
    /// How many tenants are newly customized or failed.
    pub total: usize,
    /// The first [`LISTED`] of them.
    pub tenants: Vec<StatusMove>,
}

/// Tenants an alert carries at most (the count says how many there are).
pub const LISTED: usize = 500;
/// Tenants its text names.
const NAMED: usize = 20;

/// The alert a scan calls for: tenants that moved into `customized` (not
/// as accepted) or `failed`. None when there are none.
pub fn alert_for(report: &ScanReport, shard: Option<Shard>) -> Option<Alert> {
    let news: Vec<&StatusMove> = report
        .moved
        .iter()
        .filter(|m| match m.to {
            SchemaStatus::Customized => !m.accepted,
            SchemaStatus::Failed => true,
            _ => false,
        })
        .collect();
    if news.is_empty() {
        return None;
    }
    let count = |s| news.iter().filter(|m| m.to == s).count();
    let (customized, failed) = (count(SchemaStatus::Customized), count(SchemaStatus::Failed));
    let mut text = format!(
        "Tenantry scan{}: {} newly customized, {} newly failed",
        shard.map(|s| format!(" (shard {s})")).unwrap_or_default(),
        customized,
        failed
    );
    for m in news.iter().take(NAMED) {
        let why = m
            .reason
            .as_deref()
            .map(|r| format!(" — {}", one_line(r, 160)))
            .unwrap_or_default();
        text.push_str(&format!("\n• {}: {} → {}{why}", m.slug, m.from, m.to));
    }
    if news.len() > NAMED {
        text.push_str(&format!("\n… and {} more", news.len() - NAMED));
    }
    text.push_str("\n`tenantry diff <slug>` shows what changed.");
    Some(Alert {
        text,
        shard: shard.map(|s| s.to_string()),
        total: news.len(),
        tenants: news.into_iter().take(LISTED).cloned().collect(),
    })
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match flat.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// POSTs `alert` to `webhook`, retrying connection failures, timeouts,
/// 5xx and 429; another 4xx is final (the hook is misconfigured). Returns
/// the attempts it took.
pub async fn deliver(
    webhook: &Webhook,
    alert: &Alert,
    policy: RetryPolicy,
) -> Result<u32, AlertError> {
    let body = serde_json::to_vec(alert).map_err(|e| AlertError::NotDelivered {
        webhook: webhook.shown.clone(),
        attempts: 0,
        reason: format!("the alert could not be encoded: {e}"),
    })?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(policy.timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("tenantry/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut wait = policy.first_wait;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (agent2, url, body2) = (
            agent.clone(),
            webhook.url.expose_secret().to_owned(),
            body.clone(),
        );
        let outcome = tokio::task::spawn_blocking(move || {
            agent2
                .post(&url)
                .header("content-type", "application/json")
                .send(&body2[..])
                .map(|r| {
                    let retry_after = r
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    (r.status().as_u16(), retry_after)
                })
                .map_err(|e| scrub(&e))
        })
        .await
        .unwrap_or_else(|e| Err(format!("the sending task failed: {e}")));
        let (retry, reason) = match outcome {
            Ok((status, _)) if (200..300).contains(&status) => return Ok(attempt),
            Ok((429, after)) => {
                if let Some(secs) = after {
                    wait = Duration::from_secs(secs.min(60));
                }
                (true, "HTTP 429 (too many requests)".to_owned())
            }
            Ok((status, _)) if status >= 500 => (true, format!("HTTP {status}")),
            Ok((status, _)) => (
                false,
                format!("HTTP {status}: the webhook refused the alert; check its URL"),
            ),
            Err(reason) => (true, reason),
        };
        if !retry || attempt >= policy.attempts.max(1) {
            return Err(AlertError::NotDelivered {
                webhook: webhook.shown.clone(),
                attempts: attempt,
                reason,
            });
        }
        tracing::warn!(attempt, webhook = %webhook.shown, %reason, "alert not delivered; retrying");
        tokio::time::sleep(wait).await;
        wait = wait.saturating_mul(2);
    }
}

/// A transport error's kind, never its text (which can quote the URL).
fn scrub(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "timed out".into(),
        ureq::Error::Io(io) => format!("cannot connect ({})", io.kind()),
        ureq::Error::HostNotFound => "the host was not found".into(),
        ureq::Error::ConnectionFailed => "cannot connect".into(),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => "TLS failed".into(),
        _ => "the request failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_shows_only_its_scheme_and_host() {
        let token = "T000/B000/Canary-Hook-Token";
        let w = Webhook::new(SecretString::from(format!(
            "https://user:pw@hooks.example.com/services/{token}?x=1"
        )))
        .unwrap();
        assert_eq!(w.shown(), "https://hooks.example.com/…");
        assert!(!format!("{w:?}").contains("Canary"));
        for bad in [
            "",
            "hooks.example.com/x",
            "ftp://h/x",
            "https:///x",
            "https://a b/x",
        ] {
            let e = Webhook::new(SecretString::from(bad.to_owned())).unwrap_err();
            assert_eq!(e.code(), "alert_webhook_invalid");
        }
    }

    /// A server answering every request with `status`; counts the whole
    /// alert POSTs it read. It reads each request to its end before it
    /// answers (closing on an unread body would reset the connection), and a
    /// stray connection to its port (another test's probe of a port it
    /// thought closed) is not counted as a delivery.
    fn server(status: u16) -> (String, std::sync::Arc<std::sync::atomic::AtomicU32>) {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/hook/Canary-Secret",
            listener.local_addr().unwrap()
        );
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let seen = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(&stream);
                let mut request_line = String::new();
                let _ = reader.read_line(&mut request_line);
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(n) if n > 0 && line != "\r\n" => {
                            if let Some((name, value)) = line.split_once(':') {
                                if name.eq_ignore_ascii_case("content-length") {
                                    length = value.trim().parse().unwrap_or(0);
                                }
                            }
                        }
                        _ => break,
                    }
                }
                let mut body = vec![0u8; length];
                let whole = reader.read_exact(&mut body).is_ok();
                if request_line.starts_with("POST /hook/Canary-Secret ") && whole && length > 0 {
                    seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                let _ = write!(
                    &stream,
                    "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        (url, hits)
    }

    #[tokio::test]
    async fn delivery_retries_what_may_pass_and_stops_at_a_refusal() {
        let alert = Alert {
            text: "t".into(),
            shard: None,
            total: 0,
            tenants: vec![],
        };
        let policy = RetryPolicy {
            attempts: 3,
            first_wait: Duration::from_millis(10),
            timeout: Duration::from_secs(5),
        };
        let hook = |url: &str| Webhook::new(SecretString::from(url.to_owned())).unwrap();
        let (url, hits) = server(204);
        assert_eq!(deliver(&hook(&url), &alert, policy).await.unwrap(), 1);
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);

        let (url, hits) = server(500);
        let e = deliver(&hook(&url), &alert, policy).await.unwrap_err();
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 3);
        assert_eq!(e.code(), "alert_not_delivered");
        assert!(
            e.to_string().contains("after 3 attempt(s): HTTP 500"),
            "{e}"
        );
        assert!(!e.to_string().contains("Canary"), "{e}");

        let (url, hits) = server(404);
        let e = deliver(&hook(&url), &alert, policy).await.unwrap_err();
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "a 404 is final"
        );
        assert!(e.to_string().contains("HTTP 404"), "{e}");

        // Nobody listening: retried, and the message names no path.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook/Canary-Secret", closed.local_addr().unwrap());
        drop(closed);
        let e = deliver(&hook(&url), &alert, policy).await.unwrap_err();
        assert!(
            e.to_string().contains("after 3 attempt(s): cannot connect"),
            "{e}"
        );
        assert!(!e.to_string().contains("Canary"), "{e}");
    }
}
