-- saas template, version 1.1.0: invoices and task priorities.
ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5);

CREATE TABLE invoices (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts (id),
    number      TEXT NOT NULL,
    total_cents INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT invoices_total_positive CHECK (total_cents >= 0),
    UNIQUE (account_id, number)
);

CREATE TABLE invoice_lines (
    invoice_id  INTEGER NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
    line_no     INTEGER NOT NULL,
    description TEXT NOT NULL,
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    unit_cents  INTEGER NOT NULL,
    PRIMARY KEY (invoice_id, line_no)
) WITHOUT ROWID;
