//! Fixtures for the benchmarks: a 40-table template per engine.

/// Tables in the benchmark template.
pub const TEMPLATE_TABLES: usize = 40;

/// A 40-table PostgreSQL template with the usual mix: serial keys, FKs to a
/// root table and to the previous table, checks, defaults, unique and partial
/// indexes, an enum and a view.
pub fn pg_template() -> String {
    let mut sql = String::from("CREATE TYPE state AS ENUM ('new', 'active', 'closed');\n");
    for i in 0..TEMPLATE_TABLES {
        let fk = if i == 0 {
            String::new()
        } else {
            format!(
                ",\n  root_id bigint NOT NULL REFERENCES t00 (id) ON DELETE CASCADE,\n  \
                 prev_id bigint REFERENCES t{:02} (id) ON DELETE SET NULL",
                i - 1
            )
        };
        sql.push_str(&format!(
            "CREATE TABLE t{i:02} (\n  id bigserial PRIMARY KEY,\n  name varchar(200) NOT NULL,\n  \
             state state NOT NULL DEFAULT 'new',\n  amount numeric(12,2) CHECK (amount >= 0),\n  \
             created_at timestamptz NOT NULL DEFAULT now(),\n  data jsonb NOT NULL DEFAULT '{{}}',\n  \
             flag boolean NOT NULL DEFAULT false{fk},\n  UNIQUE (name)\n);\n\
             CREATE INDEX t{i:02}_recent ON t{i:02} (created_at DESC) WHERE state <> 'closed';\n"
        ));
    }
    sql.push_str("CREATE VIEW active_t01 AS SELECT id, name FROM t01 WHERE state = 'active';\n");
    sql
}

/// The same shape for MySQL/MariaDB.
pub fn mysql_template() -> String {
    let mut sql = String::new();
    for i in 0..TEMPLATE_TABLES {
        let fk = if i == 0 {
            String::new()
        } else {
            format!(
                ",\n  root_id BIGINT UNSIGNED NOT NULL,\n  prev_id BIGINT UNSIGNED NULL,\n  \
                 FOREIGN KEY (root_id) REFERENCES t00 (id) ON DELETE CASCADE,\n  \
                 FOREIGN KEY (prev_id) REFERENCES t{:02} (id) ON DELETE SET NULL",
                i - 1
            )
        };
        sql.push_str(&format!(
            "CREATE TABLE t{i:02} (\n  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,\n  \
             name VARCHAR(200) NOT NULL,\n  state ENUM('new','active','closed') NOT NULL DEFAULT 'new',\n  \
             amount DECIMAL(12,2) CHECK (amount >= 0),\n  created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,\n  \
             flag TINYINT(1) NOT NULL DEFAULT 0,\n  UNIQUE KEY (name),\n  KEY t{i:02}_recent (created_at){fk}\n) ENGINE=InnoDB;\n"
        ));
    }
    sql.push_str("CREATE VIEW active_t01 AS SELECT id, name FROM t01 WHERE state = 'active';\n");
    sql
}
