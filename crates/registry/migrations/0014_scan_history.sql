-- One row per scan: the whole fleet's status counts right after it (tenants
-- the scan did not read keep their stored status), for the console's chart
-- of the fleet over time. The CLI's nightly scans write here too.
CREATE TABLE scan_history (
    id          INTEGER PRIMARY KEY,
    at          TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    tenants     INTEGER NOT NULL,
    scanned     INTEGER NOT NULL,
    synced      INTEGER NOT NULL,
    outdated    INTEGER NOT NULL,
    customized  INTEGER NOT NULL,
    unknown     INTEGER NOT NULL,
    failed      INTEGER NOT NULL,
    elapsed_ms  INTEGER NOT NULL,
    cancelled   INTEGER NOT NULL
);
