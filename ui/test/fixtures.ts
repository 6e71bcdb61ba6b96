// Test data shared by the component tests.
import type { TenantRecord } from "../src/bindings/TenantRecord";

/** Tenant `t0000<i>` on PostgreSQL, with `over` on top. */
export function tenant(i: number, status: TenantRecord["status"], over: Partial<TenantRecord> = {}): TenantRecord {
  return {
    id: i,
    slug: `t${String(i).padStart(5, "0")}`,
    display_name: `Tenant ${i}`,
    engine: "postgres",
    isolation: "schema",
    schema_name: `t${i}`,
    location: "postgres://app:•••@db1:5432/fleet",
    template: "saas",
    template_version: "1.1.0",
    status,
    status_reason: null,
    initial_hash: null,
    current_hash: `v1:${"a".repeat(64)}`,
    last_sync_at: null,
    notes: "",
    domains: [],
    created_at: "2026-11-23T00:00:00Z",
    updated_at: "2026-11-23T00:00:00Z",
    accepted_hash: null,
    accepted_note: null,
    ...over,
  };
}
