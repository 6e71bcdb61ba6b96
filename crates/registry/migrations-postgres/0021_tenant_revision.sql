-- Optimistic concurrency for tenant edits: each change to a tenant's
-- registered details (name, connection, schema, template, domains, notes)
-- makes a new revision; an import row that names the revision it was made
-- from is refused when the tenant has changed since. Scans do not count:
-- a status is measured, not edited.
ALTER TABLE tenants ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
