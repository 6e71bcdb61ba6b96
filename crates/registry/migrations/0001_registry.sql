-- The console's registry: templates, tenants, their domains, the vault's key
-- check, and an append-only audit log. Connection strings are stored only as
-- vault ciphertexts (AES-256-GCM, tenant id as associated data).

CREATE TABLE templates (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    engine      TEXT NOT NULL CHECK (engine IN ('postgres', 'mysql', 'sqlite')),
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (name, engine)
);

CREATE TABLE template_versions (
    template_id INTEGER NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    version     TEXT NOT NULL,
    schema_hash TEXT,
    measured_at TEXT,
    PRIMARY KEY (template_id, version)
);

CREATE TABLE tenants (
    id               INTEGER PRIMARY KEY,
    slug             TEXT NOT NULL UNIQUE,
    display_name     TEXT NOT NULL,
    engine           TEXT NOT NULL CHECK (engine IN ('postgres', 'mysql', 'sqlite')),
    isolation        TEXT NOT NULL CHECK (isolation IN ('database', 'schema')),
    schema_name      TEXT,
    location         TEXT NOT NULL,
    connection_ct    BLOB NOT NULL,
    template         TEXT,
    template_version TEXT,
    status           TEXT NOT NULL DEFAULT 'unknown'
                     CHECK (status IN ('unknown', 'synced', 'customized', 'outdated', 'failed')),
    status_reason    TEXT,
    initial_hash     TEXT,
    current_hash     TEXT,
    last_sync_at     TEXT,
    notes            TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE tenant_domains (
    domain    TEXT PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE
);
CREATE INDEX tenant_domains_tenant ON tenant_domains (tenant_id);

CREATE TABLE vault_meta (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    key_id     TEXT NOT NULL,
    key_check  BLOB NOT NULL,
    rotated_at TEXT
);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    actor       TEXT NOT NULL,
    tenant_slug TEXT,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    result      TEXT NOT NULL CHECK (result IN ('ok', 'refused', 'failed'))
);
CREATE INDEX audit_log_tenant ON audit_log (tenant_slug, id);

CREATE TRIGGER audit_log_append_only_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_append_only_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
