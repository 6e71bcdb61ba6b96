-- The registry's members: people (or machines) who open a shared registry
-- with a key pair of their own. Each row holds the registry's current data
-- key wrapped for the member's X25519 public key (tenantry_vault::member);
-- the private key stays in the member's own OS keyring. A key rotation
-- re-wraps the new key for every member in the transaction that switches
-- the registry to it; removing a member rotates the key without them.
-- Each member has a role (tenantry_registry::Role): viewer, operator or
-- admin; the engine asks for it before every command a role gates.
CREATE TABLE members (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    public_key  TEXT NOT NULL UNIQUE,
    key_id      TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    added_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    added_by    TEXT NOT NULL
);
