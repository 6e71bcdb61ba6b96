-- Where a tenant's schema is, as one comparable key (engine, host, port,
-- database, schema; the file for SQLite), so that a second tenant on the
-- same schema is refused: two tenants on one schema would each see the
-- other's drift, and a reset of one would empty the other. Filled for
-- existing rows when the registry is opened (it is derived from the
-- redacted location, so no key is needed).
ALTER TABLE tenants ADD COLUMN place_key TEXT;
CREATE INDEX tenants_place_key ON tenants (place_key);
