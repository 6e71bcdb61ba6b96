//! The `tenantry` binary as a user runs it: output shape, exit codes, and
//! errors that are clear, bounded in time and never echo a password.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tenantry_tests::{fixture, pg_server_url, sqlite_file, PgDatabase};

const CANARY: &str = "Canary-Pw-5e1f0c";

fn tenantry(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(args)
        .env_remove("TENANTRY_LOG")
        .output()
        .unwrap()
}

/// With every driver and engine log line on stderr, so a password that
/// leaked into tracing would be caught too.
fn tenantry_debug(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(args)
        .env("TENANTRY_LOG", "trace")
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn assert_no_canary(o: &Output) {
    let (out, err) = text(o);
    assert!(!out.contains(CANARY), "password on stdout: {out}");
    assert!(!err.contains(CANARY), "password on stderr: {err}");
}

async fn sqlite_tenant(dir: &std::path::Path) -> String {
    let path = dir.join("tenant.db");
    sqlite_file(&path, &fixture("sqlite", "template.sql")).await;
    format!("sqlite:{}", path.display())
}

#[tokio::test]
async fn hash_prints_one_line_and_inspect_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_tenant(dir.path()).await;
    let o = tenantry(&["hash", &url]);
    assert!(o.status.success(), "{:?}", text(&o));
    let (out, _) = text(&o);
    let line = out.strip_suffix('\n').unwrap();
    assert!(!line.contains('\n'));
    assert!(line.starts_with("v7:") && line.len() == 67, "{line}");

    let o = tenantry(&["inspect", &url, "--json"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["root_hash"], line);
    assert_eq!(json["engine"], "sqlite");
    assert_eq!(json["hash_format"], 7);
    let tables = json["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 7);
    assert!(tables
        .iter()
        .all(|t| t["hash"].as_str().unwrap().starts_with("v7:")));
    assert!(tables.iter().any(|t| t["name"] == "invoice_lines"
        && t["columns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "line_cents")));

    let o = tenantry(&["inspect", &url]);
    assert!(o.status.success());
    assert!(text(&o).0.contains("root hash  v7:"));
}

#[tokio::test]
async fn the_url_can_come_from_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_tenant(dir.path()).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenantry"))
        .args(["hash", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{url}").unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert_eq!(text(&o).0, text(&tenantry(&["hash", &url])).0);
}

#[tokio::test]
async fn postgres_schema_per_tenant_and_missing_schema() {
    let db = PgDatabase::create().await;
    db.apply("tenant_7", &fixture("postgres", "template.sql"))
        .await;
    let o = tenantry(&["hash", &db.url(), "--schema", "tenant_7"]);
    assert!(o.status.success(), "{:?}", text(&o));
    let o = tenantry(&["hash", &db.url(), "--schema", "tenant_8"]);
    assert_eq!(o.status.code(), Some(1));
    let (out, err) = text(&o);
    assert!(out.is_empty());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("schema `tenant_8` does not exist"), "{err}");
}

#[test]
fn an_unresponsive_server_times_out_quickly_without_echoing_the_password() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    for scheme in ["postgres", "mysql"] {
        let url = format!("{scheme}://app:{CANARY}@127.0.0.1:{port}/acme");
        let started = Instant::now();
        let o = tenantry_debug(&["hash", &url, "--connect-timeout", "1"]);
        let took = started.elapsed();
        assert_eq!(o.status.code(), Some(1), "{scheme}: {:?}", text(&o));
        assert!(took < Duration::from_secs(10), "{scheme}: took {took:?}");
        let (_, err) = text(&o);
        assert!(err.contains("timed out after 1s"), "{scheme}: {err}");
        assert_no_canary(&o);
    }
}

#[test]
fn refused_connections_bad_urls_and_bad_passwords_are_one_clear_line() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mysql_wrong_password = format!("mysql://root:{CANARY}@127.0.0.1:3306/mysql");
    let cases: Vec<(String, &str)> = vec![
        (
            format!("postgres://app:{CANARY}@127.0.0.1:{closed}/acme"),
            "connect_failed",
        ),
        (
            format!("postgres://app:{CANARY}@127.0.0.1:99999/acme"),
            "invalid_url",
        ),
        (format!("oracle://app:{CANARY}@db1/acme"), "invalid_url"),
        (format!("postgres://app:{CANARY}@/acme"), "invalid_url"),
        (
            format!(
                "{}/no_such_db_{}?password={CANARY}",
                pg_server_url(),
                std::process::id()
            ),
            "database_not_found",
        ),
        (mysql_wrong_password, "authentication_failed"),
        ("not a url".to_owned(), "invalid_url"),
        (
            "sqlite:/nonexistent/dir/tenant.db".to_owned(),
            "sqlite_file_not_found",
        ),
    ];
    for (url, code) in cases {
        let o = tenantry_debug(&["hash", &url, "--connect-timeout", "5"]);
        assert_eq!(o.status.code(), Some(1), "{url}: {:?}", text(&o));
        let (out, err) = text(&o);
        assert!(out.is_empty(), "{url}: {out}");
        let last = err.lines().last().unwrap_or("");
        assert!(
            last.starts_with(&format!("tenantry: error[{code}]: ")),
            "{url}: {err}"
        );
        assert_no_canary(&o);
    }
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(tenantry(&[]).status.code(), Some(2));
    assert_eq!(tenantry(&["hash"]).status.code(), Some(2));
    assert_eq!(
        tenantry(&["hash", "x", "--connect-timeout", "0"])
            .status
            .code(),
        Some(2)
    );
}

#[tokio::test]
async fn schema_is_refused_for_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_tenant(dir.path()).await;
    let o = tenantry(&["hash", &url, "--schema", "other"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("error[unsupported]"));
}

#[tokio::test]
async fn removing_a_tenant_needs_the_exact_slug_typed_again() {
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("registry.db");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tenantry"))
            .args(args)
            .env("TENANTRY_REGISTRY", &registry)
            .output()
            .unwrap()
    };
    // Only a first use makes a registry; reading one that is not there is an error.
    let o = run(&["tenant", "list"]);
    assert!(
        text(&o).1.contains("error[registry_missing]"),
        "{:?}",
        text(&o)
    );
    assert!(!registry.exists());
    tenantry_registry::Registry::create(&registry)
        .await
        .unwrap()
        .close()
        .await;
    for confirm in [None, Some("acme "), Some("аcme"), Some("ACME")] {
        let mut args = vec!["tenant", "remove", "acme"];
        if let Some(c) = confirm {
            args.extend(["--confirm", c]);
        }
        let o = run(&args);
        assert_eq!(o.status.code(), Some(1), "{confirm:?}");
        assert!(
            text(&o).1.contains("error[confirmation_required]"),
            "{:?}",
            text(&o)
        );
    }
    let o = run(&["tenant", "remove", "acme", "--confirm", "acme"]);
    assert!(
        text(&o).1.contains("error[tenant_not_found]"),
        "{:?}",
        text(&o)
    );
    let o = run(&["tenant", "show", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    let o = run(&["tenant", "list", "--json"]);
    assert_eq!(text(&o).0.trim(), "[]");
    let o = run(&["tenant", "show", "acme", "--json"]);
    assert!(text(&o).1.contains("tenant_not_found"));
}

/// `tenantry … | head`: a reader that stops reading is no error. The
/// command stops quietly with success, instead of `error[output]: …
/// Broken pipe` and exit 1.
#[tokio::test]
async fn a_closed_pipe_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_tenant(dir.path()).await;
    for args in [
        vec!["inspect", url.as_str()],
        vec!["inspect", url.as_str(), "--json"],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tenantry"))
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Nothing will ever read what it writes.
        drop(child.stdout.take());
        let o = child.wait_with_output().unwrap();
        let (_, err) = text(&o);
        assert!(o.status.success(), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

/// Issue 18: the systemd units in `deploy/systemd/` pass `systemd-analyze
/// verify` with not a single warning (it exits 0 on unknown keys, so any
/// output fails), pointed at this build of `tenantry`, and the command line
/// they run is one the CLI accepts.
#[test]
fn the_systemd_scan_units_verify_clean() {
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/systemd");
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_tenantry");
    let verify = |service: &str, timer: &str| -> Output {
        let s = dir.path().join("tenantry-scan.service");
        let t = dir.path().join("tenantry-scan.timer");
        std::fs::write(&s, service.replace("/usr/bin/tenantry", bin)).unwrap();
        std::fs::write(&t, timer).unwrap();
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(&s)
            .arg(&t)
            .env("SYSTEMD_LOG_COLOR", "0")
            .output()
            .expect("systemd-analyze (apt: systemd) is needed; scripts/test.sh installs it")
    };
    let service = std::fs::read_to_string(deploy.join("tenantry-scan.service")).unwrap();
    let timer = std::fs::read_to_string(deploy.join("tenantry-scan.timer")).unwrap();
    let o = verify(&service, &timer);
    let (out, err) = text(&o);
    assert!(
        o.status.success() && out.is_empty() && err.is_empty(),
        "{out}{err}"
    );
    // The check catches a mistake (else it proves nothing).
    let o = verify(
        &service.replace("Type=oneshot", "Type=oneshot\nKeyringMode=nonsense"),
        &timer,
    );
    assert!(!text(&o).1.is_empty(), "a bad key must be reported");

    // The unit's command line, as the unit gives it (environment included):
    // not a usage error (exit 2), but the clear "no registry" of a fresh
    // machine.
    let line = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart=/usr/bin/tenantry "))
        .unwrap();
    let shard = service
        .lines()
        .find_map(|l| l.strip_prefix("Environment=TENANTRY_SCAN_SHARD="))
        .unwrap();
    let o = Command::new(bin)
        .args(line.split_whitespace())
        .env("TENANTRY_REGISTRY", dir.path().join("none/registry.db"))
        .env("TENANTRY_SCAN_SHARD", shard)
        .output()
        .unwrap();
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("there is no registry"), "{err}");
}

/// Issue 18: the Kubernetes CronJob in `deploy/kubernetes/` is valid YAML
/// of the shape Kubernetes takes, holds together (one pod per shard, the
/// shard count in its command equal to its completions, no overlapping
/// nights), runs locked down (non-root, read-only root, no privilege, the
/// member key's Secret readable by the pod's group only), keeps its secrets
/// in Secrets, and names only environment variables the CLI reads. The
/// keyring test `a_kubernetes_cronjob_pod_scans_…` runs its pods.
#[test]
fn the_kubernetes_cronjob_holds_together() {
    use serde_norway::Value;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/kubernetes/tenantry-scan-cronjob.yaml");
    let cron: Value = serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(cron["apiVersion"], "batch/v1");
    assert_eq!(cron["kind"], "CronJob");
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    let schedule = cron["spec"]["schedule"].as_str().unwrap();
    assert_eq!(schedule.split_whitespace().count(), 5, "{schedule}");
    let job = &cron["spec"]["jobTemplate"]["spec"];
    assert_eq!(job["completionMode"], "Indexed");
    let shards = job["completions"].as_u64().unwrap();
    assert_eq!(job["parallelism"].as_u64(), Some(shards));
    let pod = &job["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["automountServiceAccountToken"], false);
    let security = &pod["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert!(security["runAsUser"].as_u64().unwrap() > 0);
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    let containers = pod["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    let script = c["args"][0].as_str().unwrap();
    assert!(
        script.contains(&format!(
            "--shard \"$((JOB_COMPLETION_INDEX + 1))/{shards}\""
        )),
        "{script}"
    );

    // Secrets come from Secrets; the member key file is a Secret volume
    // no other user may read, mounted read-only where the env points.
    let help = text(&tenantry(&["scan", "--help"])).0;
    let mut key_file = None;
    for e in c["env"].as_sequence().unwrap() {
        let name = e["name"].as_str().unwrap();
        if name == "HOME" {
            continue;
        }
        assert!(
            help.contains(&format!("env: {name}")),
            "{name} is not read by `tenantry scan`"
        );
        match name {
            "TENANTRY_REGISTRY" | "TENANTRY_ALERT_WEBHOOK" => {
                assert!(e["valueFrom"]["secretKeyRef"].is_mapping(), "{name}")
            }
            "TENANTRY_MEMBER_KEY_FILE" => key_file = e["value"].as_str(),
            _ => {}
        }
    }
    let key_file = std::path::Path::new(key_file.unwrap());
    let mount = c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| key_file.starts_with(m["mountPath"].as_str().unwrap()))
        .unwrap();
    assert_eq!(mount["readOnly"], true);
    let volume = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    let mode = volume["secret"]["defaultMode"].as_u64().unwrap();
    assert_eq!(mode, 0o400, "mode {mode:o}");
}
