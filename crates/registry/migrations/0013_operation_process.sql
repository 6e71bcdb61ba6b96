-- Which process runs a journaled operation (with `host`), so an unfinished
-- one can be told apart: still running in a live process on this host, or
-- killed. A killed one is written to the audit log once, when first found.
ALTER TABLE operations ADD COLUMN pid INTEGER;
ALTER TABLE operations ADD COLUMN reported_at TEXT;
