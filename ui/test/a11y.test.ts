// Automated accessibility checks (axe-core) of every console screen, with
// the IPC mocked. jsdom has no layout, so axe's colour
// contrast rule cannot run here: contrast is measured from the stylesheet's
// own colours in contrast.test.ts, and on the real window by the e2e
// screenshots. Everything else axe knows — names, labels, roles, ARIA
// attributes and their values, list and table structure, duplicate ids —
// is checked on every screen.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import axe from "axe-core";
import { forgetFleets, route } from "../src/app";
import type { TenantRecord } from "../src/bindings/TenantRecord";
import { fleetPage, tenant as base } from "./fixtures";

const tenant = (i: number, status: TenantRecord["status"]): TenantRecord =>
  base(i, status, {
    template_version: "1.0.0",
    status_reason: status === "customized" ? "1 added: table partner_feed" : null,
    initial_hash: `v7:${"a".repeat(64)}`,
    current_hash: `v7:${"b".repeat(64)}`,
    last_sync_at: "2026-12-01T08:00:00Z",
  });

const hash = (c: string): string => `v7:${c.repeat(64)}`;
const object = (name: string, presence: "added" | "missing" | "changed" | "identical") => ({
  kind: "table",
  name,
  presence,
  changes: presence === "changed" ? [{ path: "column name", template: "varchar(200)", tenant: "text" }] : [],
  template_ddl: presence === "added" ? null : `CREATE TABLE ${name} (id int);`,
  tenant_ddl: presence === "missing" ? null : `CREATE TABLE ${name} (id int, note text);`,
  unified: "",
  side_by_side: [],
});
const templates = [
  {
    summary: { name: "saas", engine: "postgres", versions: ["1.0.0", "1.1.0"].map((version) => ({ version, migrations: 1, hash: hash("c"), measured_at: "2026-12-01" })) },
    lint: [{ kind: "not_transactional", location: "1.1.0/0002.sql", message: "drops a column", reaches_outside: false }],
  },
];

function answer(cmd: string, args: unknown): unknown {
  switch (cmd) {
    case "registry_tenant_page":
      return fleetPage([tenant(1, "synced"), tenant(2, "customized"), tenant(3, "failed"), tenant(4, "outdated")], args);
    case "scan_history":
      return [];
    case "unfinished_operations":
      return [];
    case "list_templates":
      return templates;
    case "tenant_detail":
      return {
        tenant: tenant(2, "customized"),
        audit: [{ id: 1, at: "2026-12-01T08:00:00Z", actor: "dba", host: "desk", tenant_slug: "t00002", action: "scan", detail: "customized", result: "ok" }],
        backups: [],
        stopped_sync: false,
        timeline: [{ at: "2026-12-01T08:00:00Z", actor: "nightly", from: "synced", to: "customized", hash: hash("b"), reason: "1 added: table partner_feed" }],
      };
    case "tenant_diff":
      return {
        slug: "t00002",
        location: "postgres://app:•••@db1:5432/fleet",
        template: "saas",
        template_version: "1.0.0",
        diff: { template_hash: hash("a"), tenant_hash: hash("b"), objects: [object("partner_feed", "added"), object("orders", "missing"), object("users", "changed"), object("plans", "identical")] },
      };
    case "reset_plan":
      return {
        slug: "t00002", engine: "postgres", server: "db1:5432/fleet", schema: "t2", template: "saas", template_version: "1.0.0",
        template_hash: hash("a"), drift_hash: hash("b"),
        objects: [{ kind: "table", name: "partner_feed", presence: "added", rows: 4 }],
        changes: [], backup: "schema tenantry_q_t2_1 in fleet",
      };
    case "sync_plan":
      return {
        slug: "t00002", engine: "postgres", server: "db1:5432/fleet", schema: "t2", template: "saas", template_version: "1.0.0",
        template_hash: hash("a"), drift_hash: hash("b"), quarantine: "tenantry_q_t2_1", kept: [], keep_note: null, keepable_columns: ["column users.badge"], target_hash: hash("a"),
        steps: [
          { class: "destructive", object: "table partner_feed", action: "move the custom table to the quarantine", sql: ["ALTER TABLE partner_feed SET SCHEMA tenantry_q_t2_1"], probe: "SELECT 1", probe_meaning: "rows moved to the quarantine", count: 4 },
          { class: "checked", object: "table users", action: "make name NOT NULL again", sql: ["ALTER TABLE users ALTER COLUMN name SET NOT NULL"], probe: "SELECT 0", probe_meaning: "rows where name is NULL", count: 0 },
        ],
        resumes: null,
      };
    case "key_status":
      return { store: "Secret Service", retention: null, key_id: "k1", entry: "dev.tenantry", error_code: null, error_message: null, registry: "/data/registry.db" };
    default:
      return null;
  }
}

/** Runs axe on the whole document; returns its violations, readable. */
async function violations(): Promise<string[]> {
  const result = await axe.run(document, {
    rules: {
      // Needs layout (jsdom has none): measured in contrast.test.ts.
      "color-contrast": { enabled: false },
      // A screen rendered on its own has no <title> in jsdom's document
      // (the real index.html has one).
      "document-title": { enabled: false },
    },
  });
  return result.violations.map((v) => `${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}

const shell = `<header class="bar"><h1>Tenantry</h1>
  <nav aria-label="Screens"><a href="#/" data-screen="">Fleet</a><a href="#/templates" data-screen="templates">Templates</a><a href="#/settings" data-screen="settings">Settings</a></nav>
  <nav class="switch" aria-label="Registry"><a href="#/" data-workspace="own">Your fleet</a><a href="#/demo" data-workspace="demo">Demo</a></nav>
</header><main id="view"></main>`;

beforeEach(() => {
  document.documentElement.lang = "en";
  document.body.innerHTML = shell;
  forgetFleets();
  mockIPC((cmd, args) => answer(cmd, args));
});

afterEach(() => {
  clearMocks();
  location.hash = "";
});

const screens: [string, string][] = [
  ["fleet", "#/"],
  ["tenant", "#/tenant/t00002"],
  ["drift", "#/drift/t00002"],
  ["reset", "#/reset/t00002"],
  ["sync", "#/sync/t00002"],
  ["add a tenant", "#/add"],
  ["import tenants", "#/import"],
  ["templates", "#/templates"],
  ["settings", "#/settings"],
];

// The two themes differ only in colours (the same markup, the stylesheet's
// `prefers-color-scheme` variables), and their contrast is measured in
// contrast.test.ts for both: the markup is checked once.
describe("accessibility", () => {
  for (const [name, hash] of screens) {
    it(`the ${name} screen has no axe violations`, async () => {
      location.hash = hash;
      await route();
      for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 20));
      expect(document.getElementById("view")!.textContent).not.toContain("Could not load this screen");
      expect(await violations()).toEqual([]);
    });
  }
});
