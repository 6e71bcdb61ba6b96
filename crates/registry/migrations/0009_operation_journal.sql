-- The operation journal: a destructive operation's intent (tenant, kind,
-- where its backup goes) is written here before anything is changed, and
-- completed afterwards. A row without `finished_at` is an operation that
-- was killed or lost its registry mid-way: shown on the next open, with its
-- backup, until it is resolved (its backup adopted, or marked abandoned).
CREATE TABLE operations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   INTEGER NOT NULL,
    tenant_slug TEXT NOT NULL,
    engine      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    backup      TEXT,
    actor       TEXT NOT NULL,
    host        TEXT,
    started_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at TEXT,
    outcome     TEXT CHECK (outcome IN ('ok', 'refused', 'failed', 'adopted', 'abandoned')),
    detail      TEXT
);
CREATE INDEX operations_unfinished ON operations (id) WHERE finished_at IS NULL;
