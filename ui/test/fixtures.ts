// Test data shared by the component tests.
import type { StatusCounts } from "../src/bindings/StatusCounts";
import type { TenantPage } from "../src/bindings/TenantPage";
import type { TenantQuery } from "../src/bindings/TenantQuery";
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

const ORDER = ["failed", "customized", "outdated", "unknown", "synced"];

/**
 * The registry's `registry_tenant_page` answer over `rows`, as the engine
 * gives it (filter, whole-fleet counts, sort, page): the fleet screen's
 * mocked IPC.
 */
export function fleetPage(rows: TenantRecord[], args: unknown): TenantPage {
  const q = (args as { query: TenantQuery }).query;
  const server = (r: TenantRecord): string => /^[a-z]+:\/\/(?:[^@/]*@)?([^/?]+)/.exec(r.location)?.[1] ?? r.location;
  const template = (r: TenantRecord): string => (r.template ? `${r.template} ${r.template_version ?? ""}`.trim() : "none");
  const s = q.search.trim().toLowerCase();
  const matching = rows.filter(
    (r) =>
      (s === "" || r.slug.includes(s) || r.display_name.toLowerCase().includes(s) || r.location.toLowerCase().includes(s) || r.current_hash === s) &&
      (q.status === null || r.status === q.status) &&
      (q.server === null || server(r) === q.server) &&
      (q.template === null || template(r) === q.template),
  );
  matching.sort((a, b) =>
    q.sort === "slug"
      ? a.slug.localeCompare(b.slug)
      : q.sort === "last_sync"
        ? (b.last_sync_at ?? "").localeCompare(a.last_sync_at ?? "") || a.slug.localeCompare(b.slug)
        : ORDER.indexOf(a.status) - ORDER.indexOf(b.status) || a.slug.localeCompare(b.slug),
  );
  const counts: StatusCounts = { synced: 0, outdated: 0, customized: 0, unknown: 0, failed: 0 };
  for (const r of rows) counts[r.status] += 1;
  return {
    rows: matching.slice(q.offset, q.offset + (q.limit || 200)).map((r) => ({ ...r })),
    offset: q.offset,
    total: matching.length,
    counts,
    servers: [...new Set(rows.map(server))].sort(),
    templates: [...new Set(rows.map(template))].sort(),
  };
}
