-- A digest of the catalog rows behind a tenant's schema (PostgreSQL: the
-- xmin of every pg_class/pg_attribute/pg_constraint/... row in it). When it
-- has not changed since the last check, the scan reuses the stored hash.
ALTER TABLE tenants ADD COLUMN catalog_fingerprint TEXT;
