-- Which part of the fleet a scan read when the fleet is split across
-- machines (`tenantry scan --shard I/N`): `I/N`, or NULL for the whole fleet.
ALTER TABLE scan_history ADD COLUMN shard TEXT;
