-- The registry's own id: its data key lives in the keyring entry
-- `registry-<id>/key-<key id>`, so registries never share a key entry.
-- Made once, at random, when this migration runs (a copied registry file
-- keeps its id, and its key entries stay untouched by the original's
-- rotations because every rotation writes a new entry).
CREATE TABLE registry_identity (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    registry_id TEXT NOT NULL CHECK (length(registry_id) = 32)
);
INSERT INTO registry_identity (id, registry_id) VALUES (1, lower(hex(randomblob(16))));
