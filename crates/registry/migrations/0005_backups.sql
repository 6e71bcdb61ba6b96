-- Backups taken before a reset: where the tenant's previous objects went
-- (a quarantine schema or database, or a copied SQLite file).
CREATE TABLE backups (
    id          INTEGER PRIMARY KEY,
    tenant_slug TEXT NOT NULL,
    engine      TEXT NOT NULL,
    location    TEXT NOT NULL,
    drift_hash  TEXT,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    purged_at   TEXT
);
CREATE INDEX backups_tenant ON backups (tenant_slug, id);
