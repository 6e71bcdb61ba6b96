-- The audit log names the host and the tenant's immutable id beside its
-- slug, and every row carries the SHA-256 of the row before it (prev_hash)
-- and of itself (row_hash): an edit, insertion or deletion in the middle of
-- the log breaks the chain (`tenantry audit verify`). Rows written before
-- this migration have no hashes; the chain starts after them.
ALTER TABLE audit_log ADD COLUMN host TEXT;
ALTER TABLE audit_log ADD COLUMN tenant_id INTEGER;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN row_hash TEXT;
-- Old rows keep tenant_id NULL: whose they were cannot be told for a reused
-- slug (and the append-only trigger forbids updating them anyway).
CREATE INDEX audit_log_tenant_id ON audit_log (tenant_id, id);

-- A backup belongs to the tenant it was taken from (its id, and where it
-- lived then), not to a slug that may be removed and reused. Old backups are
-- attributed only where the tenant registered under the slug is older than
-- the backup; the others stay unattributed and cannot be restored blindly.
ALTER TABLE backups ADD COLUMN tenant_id INTEGER;
ALTER TABLE backups ADD COLUMN tenant_place TEXT;
UPDATE backups SET
    tenant_id = (SELECT t.id FROM tenants t
                  WHERE t.slug = backups.tenant_slug AND t.created_at <= backups.created_at),
    tenant_place = (SELECT t.location || ' ' || COALESCE(t.schema_name, '') FROM tenants t
                     WHERE t.slug = backups.tenant_slug AND t.created_at <= backups.created_at);

-- Tenant ids are never reused (SQLite would hand the highest id out again
-- after its row was deleted): a removed tenant's id stays taken here, and
-- new tenants get an id above every id ever used.
CREATE TABLE tenant_ids_used (id INTEGER PRIMARY KEY);
INSERT INTO tenant_ids_used (id) SELECT MAX(id) FROM tenants WHERE id IS NOT NULL;
INSERT OR IGNORE INTO tenant_ids_used (id) SELECT MAX(tenant_id) FROM backups WHERE tenant_id IS NOT NULL;
CREATE TRIGGER tenants_ids_never_reused AFTER DELETE ON tenants
BEGIN
    INSERT OR IGNORE INTO tenant_ids_used (id) VALUES (old.id);
END;
