-- The server a tenant lives on (`postgres://host:port`, `mysql://host:port`,
-- `sqlite:<directory>`), derived from the redacted location like place_key:
-- what the console's fleet screen filters by in the registry rather than in
-- the webview, and what `scan --shard` splits the fleet by. Filled for
-- existing rows when the registry is opened.
ALTER TABLE tenants ADD COLUMN server TEXT;
CREATE INDEX tenants_server ON tenants (server);
