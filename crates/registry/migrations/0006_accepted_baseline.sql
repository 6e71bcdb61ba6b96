-- A customisation accepted as this tenant's baseline (with a note): while
-- the tenant's hash stays equal to it, the scan does not alert on it.
ALTER TABLE tenants ADD COLUMN accepted_hash TEXT;
ALTER TABLE tenants ADD COLUMN accepted_note TEXT;
ALTER TABLE tenants ADD COLUMN accepted_at TEXT;
