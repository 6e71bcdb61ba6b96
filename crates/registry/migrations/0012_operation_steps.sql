-- The steps of a journaled operation that cannot run in one transaction
-- (MySQL/MariaDB commit every DDL statement): each migration is recorded
-- as started before it runs and as done after, so an operation killed
-- part-way says exactly where it stopped, and the guard can resume it.
CREATE TABLE operation_steps (
    operation_id INTEGER NOT NULL REFERENCES operations (id),
    seq          INTEGER NOT NULL,
    step         TEXT NOT NULL,
    at           TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (operation_id, seq)
);
