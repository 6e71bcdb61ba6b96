//! Benchmark: introspect + hash a schema-per-tenant PostgreSQL fleet.
//!
//! Builds fleets of N tenant schemas from a 40-table template (N = 10, 100,
//! 1000 by default; `TENANTRY_BENCH_SIZES=10,100` to choose) in scratch
//! databases on the test server, then prints tenants/second for
//!   - batched: `postgres::introspect_schemas` over the whole fleet
//!     (a few catalog round trips per 500 schemas), and
//!   - one-by-one: one `introspect_schemas` call per tenant, as a naive
//!     scanner would do (measured on up to 100 tenants).
//!
//! Run: `cargo bench -p tenantry-tests --bench introspect_fleet`

#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::Instant;

use tenantry_introspect::postgres;
use tenantry_model::hash_schema;
use tenantry_tests::{pg_quote, PgDatabase};

use tenantry_tests::bench::{pg_template as template, TEMPLATE_TABLES};

async fn build_fleet(db: &PgDatabase, n: usize) -> Vec<String> {
    let template = template();
    let schemas: Vec<String> = (0..n).map(|i| format!("tenant_{i:05}")).collect();
    let mut conn = db.connect().await;
    for chunk in schemas.chunks(25) {
        let mut script = String::from("BEGIN;\n");
        for s in chunk {
            script.push_str(&format!(
                "CREATE SCHEMA {q};\nSET LOCAL search_path = {q};\n{template}",
                q = pg_quote(s)
            ));
        }
        script.push_str("COMMIT;\n");
        sqlx::raw_sql(&script).execute(&mut conn).await.unwrap();
    }
    schemas
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<usize> = std::env::var("TENANTRY_BENCH_SIZES")
        .unwrap_or_else(|_| "10,100,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    println!("introspect + hash, PostgreSQL schema-per-tenant, {TEMPLATE_TABLES}-table template");
    println!(
        "{:>7} {:>10} {:>14} {:>16} {:>14}",
        "tenants", "build s", "batched s", "batched t/s", "one-by-one t/s"
    );
    for n in sizes {
        let db = PgDatabase::create().await;
        let t = Instant::now();
        let schemas = build_fleet(&db, n).await;
        let build = t.elapsed().as_secs_f64();
        let mut conn = db.connect().await;
        sqlx::raw_sql("ANALYZE").execute(&mut conn).await.unwrap();

        let t = Instant::now();
        let snaps = postgres::introspect_schemas(&mut conn, &schemas)
            .await
            .unwrap();
        let roots: Vec<_> = snaps.values().map(|s| hash_schema(s).root).collect();
        let batched = t.elapsed().as_secs_f64();
        assert_eq!(roots.len(), n);
        assert!(
            roots.windows(2).all(|w| w[0] == w[1]),
            "fleet must hash alike"
        );
        assert_eq!(snaps.values().next().unwrap().tables.len(), TEMPLATE_TABLES);

        let sample = &schemas[..n.min(100)];
        let t = Instant::now();
        for s in sample {
            let one = postgres::introspect_schemas(&mut conn, std::slice::from_ref(s))
                .await
                .unwrap();
            let _ = hash_schema(&one[s]);
        }
        let single = t.elapsed().as_secs_f64();
        println!(
            "{n:>7} {build:>10.1} {batched:>14.3} {:>16.0} {:>14.0}",
            n as f64 / batched,
            sample.len() as f64 / single
        );
    }
}
