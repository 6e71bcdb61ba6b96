-- A member's own login to a registry in PostgreSQL, which is given exactly
-- the database privileges of the member's role (`tenantry member db-user`).
-- Unused on a SQLite registry; kept so both backends share every version.
ALTER TABLE members ADD COLUMN db_user TEXT;
