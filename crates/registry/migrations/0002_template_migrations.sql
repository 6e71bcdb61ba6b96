-- Templates keep their migrations in the registry, so the schema guard and
-- the scan work from what was measured, not from files that may have moved.
CREATE TABLE template_migrations (
    template_id INTEGER NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    version     TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    name        TEXT NOT NULL,
    sql         TEXT NOT NULL,
    PRIMARY KEY (template_id, version, seq)
);

-- The position of each version in its template's lineage (oldest first).
ALTER TABLE template_versions ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
