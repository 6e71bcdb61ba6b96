-- Which OS key store holds the registry's data key (`secret-service`,
-- `keyutils`, `keychain`, `credential-manager`), recorded when the key is
-- made or imported, so every later run looks in the same place. NULL on
-- registries from before the choice existed: their key is in the
-- platform's default store.
ALTER TABLE registry_identity ADD COLUMN key_store TEXT;
