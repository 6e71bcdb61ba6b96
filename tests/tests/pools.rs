//! Per-tenant pools against the real servers: no session state survives a
//! connection's return to the pool, and health checks see real servers.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use sqlx::Executor;
use tenantry_introspect::ConnectionUrl;
use tenantry_registry::health::check_tenant;
use tenantry_registry::pools::{PoolSettings, TenantPool, TenantPools};
use tenantry_registry::{NewTenant, Registry};
use tenantry_tests::{MysqlDatabase, PgDatabase};
use tenantry_vault::MemoryKeyStore;

#[tokio::test]
async fn a_search_path_set_on_a_pooled_connection_does_not_reach_the_next_user() {
    let db = PgDatabase::create().await;
    db.apply("tenant_a", "CREATE TABLE t (x int);").await;
    let pools = TenantPools::new(PoolSettings {
        connections_per_pool: 1,
        ..Default::default()
    });
    let url = ConnectionUrl::parse(&db.url()).unwrap();
    let TenantPool::Postgres(pool) = pools.get(1, &url).await.unwrap() else {
        panic!("postgres pool")
    };
    {
        let mut conn = pool.acquire().await.unwrap();
        conn.execute("SET search_path = tenant_a").await.unwrap();
        conn.execute("SET statement_timeout = '1s'").await.unwrap();
    }
    // The pool has one connection: the next acquire gets the same one back.
    let mut conn = pool.acquire().await.unwrap();
    let path: String = sqlx::query_scalar("SHOW search_path")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(path, "\"$user\", public");
    let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(
        timeout, "1min",
        "the startup value (the query timeout) is restored, not the SET one"
    );
}

#[tokio::test]
async fn health_checks_real_servers_and_reports_a_missing_schema() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::create(&dir.path().join("registry.db"))
        .await
        .unwrap();
    let keys = MemoryKeyStore::default();
    let vault = registry.open_vault(&keys).await.unwrap();
    let pg = PgDatabase::create().await;
    pg.apply("present", "CREATE TABLE t (x int);").await;
    let my = MysqlDatabase::create().await;
    let add = |slug: &str, url: String, schema: Option<&str>| NewTenant {
        slug: slug.into(),
        display_name: slug.into(),
        url: ConnectionUrl::parse(&url).unwrap(),
        schema: schema.map(str::to_owned),
        template: None,
        template_version: None,
        domains: vec![],
        notes: String::new(),
    };
    registry
        .add_tenant(&vault, add("pg-present", pg.url(), Some("present")))
        .await
        .unwrap();
    registry
        .add_tenant(&vault, add("pg-missing", pg.url(), Some("not_yet")))
        .await
        .unwrap();
    registry
        .add_tenant(&vault, add("maria", my.url(), None))
        .await
        .unwrap();
    let pools = TenantPools::new(PoolSettings::default());

    let ok = check_tenant(&registry, Ok(&vault), &pools, "pg-present")
        .await
        .unwrap();
    assert!(ok.healthy, "{ok:#?}");
    assert!(ok
        .server_version
        .as_deref()
        .unwrap()
        .starts_with("PostgreSQL"));
    let maria = check_tenant(&registry, Ok(&vault), &pools, "maria")
        .await
        .unwrap();
    assert!(maria.healthy, "{maria:#?}");
    assert!(maria.server_version.as_deref().unwrap().contains("MariaDB"));
    let missing = check_tenant(&registry, Ok(&vault), &pools, "pg-missing")
        .await
        .unwrap();
    assert!(!missing.healthy);
    let schema = missing.checks.iter().find(|c| c.name == "schema").unwrap();
    assert!(
        !schema.ok && schema.detail.contains("does not exist"),
        "{schema:?}"
    );
}

/// The console's *Test connection* against the real servers: a typed
/// password joins the URL, a wrong one is reported without being echoed,
/// and a missing schema or database is named.
#[tokio::test]
async fn a_connection_is_tested_before_it_is_registered() {
    use secrecy::SecretString;
    use tenantry_registry::health::check_connection;
    const CANARY: &str = "Canary-Test-9d2e @:/?#%&=";

    let pg = PgDatabase::create().await;
    pg.apply("tenant_a", "CREATE TABLE t (x int);").await;
    let url = ConnectionUrl::parse(&pg.url()).unwrap();
    let ok = check_connection(&url, Some("tenant_a"), PoolSettings::default()).await;
    assert!(ok.healthy, "{ok:#?}");
    assert!(ok.server_version.unwrap().starts_with("PostgreSQL"));
    let missing = check_connection(&url, Some("tenant_b"), PoolSettings::default()).await;
    assert!(!missing.healthy);
    assert!(
        missing
            .checks
            .iter()
            .any(|c| !c.ok && c.detail.contains("`tenant_b` does not exist")),
        "{missing:#?}"
    );

    let my = MysqlDatabase::create().await;
    // root has an empty password here, so any password is a wrong one.
    let wrong = ConnectionUrl::parse(&my.url())
        .unwrap()
        .with_password(&SecretString::from(CANARY.to_owned()))
        .unwrap();
    let denied = check_connection(&wrong, None, PoolSettings::default()).await;
    assert!(!denied.healthy);
    let shown = format!("{denied:?}");
    assert!(!shown.contains("Canary-Test"), "{shown}");
    assert!(
        denied.checks.iter().any(|c| c.name == "connect" && !c.ok),
        "{denied:#?}"
    );
    let url = ConnectionUrl::parse(&my.url()).unwrap();
    let ok = check_connection(&url, None, PoolSettings::default()).await;
    assert!(ok.healthy, "{ok:#?}");
}
