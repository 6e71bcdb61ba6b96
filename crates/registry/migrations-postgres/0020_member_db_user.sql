-- A member's own login to the registry's database, which is given exactly
-- the privileges of the member's role (`tenantry member db-user`; the
-- groups are made then). Each login is one member's.
ALTER TABLE members ADD COLUMN db_user TEXT UNIQUE;
