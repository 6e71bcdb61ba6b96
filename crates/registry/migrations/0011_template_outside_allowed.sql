-- A template version whose SQL reaches outside the tenant's schema (names
-- another schema, changes the search path or role, drops schemas, DO
-- blocks, TRUNCATE, …) is refused by the guard, reset, repair and upgrade
-- unless this holds why it was allowed, by whom and when: written only by
-- `template add --allow-outside-tenant WHY`, and audited.
ALTER TABLE template_versions ADD COLUMN outside_allowed TEXT;
