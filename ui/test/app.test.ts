// Component tests of the console screens with the IPC mocked: no Rust, no
// window. The real window is covered by tests/e2e.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { route } from "../src/app";
import type { TenantRecord } from "../src/bindings/TenantRecord";

function tenant(i: number, status: TenantRecord["status"]): TenantRecord {
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
  };
}

const calls: { cmd: string; args: unknown }[] = [];

beforeEach(() => {
  document.body.innerHTML = '<nav><a href="#/">Fleet</a></nav><main id="view"></main>';
  calls.length = 0;
});

afterEach(() => {
  clearMocks();
  location.hash = "";
});

/** Lets pending IPC promises and the list's animation frame run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 20));
}

describe("fleet", () => {
  it("renders 10,000 tenants through a virtualised list", async () => {
    const rows = Array.from({ length: 10_000 }, (_, i) => tenant(i, i % 10 === 0 ? "customized" : "synced"));
    mockIPC((cmd) => (cmd === "registry_tenants" ? rows : null));
    await route();
    await settle();
    const chips = document.querySelector(".summary")!.textContent!;
    expect(chips).toContain("1000 customized");
    expect(chips).toContain("9000 synced");
    const list = document.querySelector(".list")!;
    expect(list.getAttribute("aria-rowcount")).toBe("10000");
    const rendered = document.querySelectorAll(".row").length;
    expect(rendered).toBeGreaterThan(0);
    expect(rendered).toBeLessThan(100);
  });

  it("warns about an operation that never finished, with its backup", async () => {
    mockIPC((cmd) => {
      if (cmd === "registry_tenants") return [tenant(1, "synced")];
      if (cmd === "unfinished_operations")
        return [{ id: 7, tenant_slug: "t00001", tenant_id: 1, kind: "reset", backup: "schema tenantry_q_t1_1 in fleet", actor: "ops", host: "desk", started_at: "2026-11-30T10:00:00Z", finished_at: null, outcome: null, detail: null, last_step: "migration started: 1.0.0/0002.sql", running: false }];
      return null;
    });
    await route();
    await settle();
    const alert = [...document.querySelectorAll("[role=alert]")].map((n) => n.textContent).join(" ");
    expect(alert).toContain("Operation 7 (reset of t00001");
    expect(alert).toContain("schema tenantry_q_t1_1 in fleet");
    expect(alert).toContain("tenantry operations resolve 7 --adopt");
    expect(alert).toContain("last step: migration started: 1.0.0/0002.sql");
  });

  it("filters by search text", async () => {
    mockIPC((cmd) => (cmd === "registry_tenants" ? [tenant(1, "synced"), tenant(2, "failed")] : null));
    await route();
    const search = document.getElementById("search") as HTMLInputElement;
    search.value = "t00002";
    search.dispatchEvent(new Event("input"));
    await settle();
    const slugs = [...document.querySelectorAll(".row")].map((r) => r.getAttribute("data-slug"));
    expect(slugs).toEqual(["t00002"]);
  });

  it("shows the engine's {code, message} when a screen cannot load", async () => {
    mockIPC(() => {
      throw { code: "keyring_unavailable", message: "the OS keyring is not available" };
    });
    location.hash = "#/settings";
    await route();
    expect(document.querySelector("[role=alert]")!.textContent).toContain("keyring_unavailable");
  });
});

describe("reset wizard", () => {
  it("enables the reset only for the exact slug and sends the planned hash", async () => {
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === "reset_plan") {
        return {
          slug: "acme", engine: "postgres", server: "db1:5432/fleet", schema: "acme", template: "saas",
          template_version: "1.1.0", template_hash: "v1:" + "b".repeat(64), drift_hash: "v1:" + "c".repeat(64),
          objects: [{ kind: "table", name: "custom_reports", presence: "added", rows: 250 }],
          changes: ["extension pgcrypto (installed in `public`) is moved back into the rebuilt schema"],
          backup: "schema `acme` is renamed to a quarantine schema",
        };
      }
      if (cmd === "reset_tenant") return { slug: "acme", backup: "schema tenantry_q_acme_1", hash_after: "v1:" + "b".repeat(64), status: "synced", applied: [] };
      return null;
    });
    location.hash = "#/reset/acme";
    await route();
    expect(document.body.textContent).toContain("250");
    expect(document.querySelector('[aria-label="Other changes"]')?.textContent).toContain("extension pgcrypto");
    const input = document.getElementById("confirm-slug") as HTMLInputElement;
    const button = document.getElementById("do-reset") as HTMLButtonElement;
    for (const nearMiss of ["acme ", "ACME", "аcme", "acm"]) {
      input.value = nearMiss;
      input.dispatchEvent(new Event("input"));
      expect(button.disabled).toBe(true);
    }
    input.value = "acme";
    input.dispatchEvent(new Event("input"));
    expect(button.disabled).toBe(false);
    button.click();
    await settle();
    const sent = calls.find((c) => c.cmd === "reset_tenant")!.args as Record<string, string>;
    expect(sent.plannedHash).toBe("v1:" + "c".repeat(64));
    expect(sent.confirmation).toBe("acme");
    expect(document.getElementById("reset-result")!.textContent).toContain("Reset finished: synced");
  });
});

describe("templates", () => {
  it("lists versions with their hashes and the lint findings", async () => {
    mockIPC((cmd) =>
      cmd === "list_templates"
        ? [
            {
              summary: { name: "saas", engine: "postgres", versions: [{ version: "1.0.0", migrations: 1, hash: "v1:" + "d".repeat(64), measured_at: "2026-11-23" }] },
              lint: [{ kind: "not_transactional", location: "1.0.0/0001.sql", message: "`CREATE INDEX CONCURRENTLY …`: cannot run inside a transaction" }],
            },
          ]
        : null,
    );
    location.hash = "#/templates";
    await route();
    expect(document.body.textContent).toContain("v1:" + "d".repeat(64));
    expect(document.querySelector("ul.lint")!.textContent).toContain("not transactional 1.0.0/0001.sql");
  });
});

describe("fleet filters", () => {
  it("filter by server and template", async () => {
    const a = tenant(1, "synced");
    const b = { ...tenant(2, "synced"), location: "postgres://app:•••@db2:5432/fleet", template_version: "1.0.0" };
    mockIPC((cmd) => (cmd === "registry_tenants" ? [a, b] : null));
    await route();
    const server = document.querySelector("select[aria-label=Server]") as HTMLSelectElement;
    expect([...server.options].map((o) => o.value)).toEqual(["all", "db1:5432", "db2:5432"]);
    server.value = "db2:5432";
    server.dispatchEvent(new Event("change"));
    await settle();
    expect([...document.querySelectorAll(".row")].map((r) => r.getAttribute("data-slug"))).toEqual(["t00002"]);
  });
});

describe("badges keep their meaning", () => {
  it("audit results are outlined results, not tenant statuses", async () => {
    const audit = (id: number, result: "ok" | "refused" | "failed") => ({
      id, at: "2026-11-23T10:00:00Z", actor: "dba", host: "desk", tenant_slug: "t00001", action: "scan", detail: "", result,
    });
    mockIPC((cmd) => {
      if (cmd === "tenant_detail") return { tenant: tenant(1, "synced"), audit: [audit(1, "ok"), audit(2, "refused"), audit(3, "failed")], backups: [] };
      return null;
    });
    location.hash = "#/tenant/t00001";
    await route();
    const history = document.querySelector('[aria-label="History"]')!;
    const results = [...history.querySelectorAll(".badge")];
    expect(results.map((b) => b.textContent)).toEqual(["ok", "refused", "failed"]);
    expect(results.map((b) => b.className)).toEqual(["badge result result-ok", "badge result result-refused", "badge result result-failed"]);
    expect(history.querySelector('[class*="status-"]')).toBeNull();
    expect(document.querySelector(".facts .badge")!.className).toBe("badge status-synced");
  });

  it("a diff's objects are added / missing / changed / identical, never a status", async () => {
    const object = (name: string, presence: "added" | "missing" | "changed" | "identical") => ({
      kind: "table", name, presence, changes: [], template_ddl: null, tenant_ddl: null, unified: "", side_by_side: [],
    });
    mockIPC((cmd) => {
      if (cmd === "tenant_diff") {
        return {
          slug: "t00001", location: "postgres://app:•••@db1:5432/fleet", template: "saas", template_version: "1.1.0",
          diff: { template_hash: "v1:" + "b".repeat(64), tenant_hash: "v1:" + "c".repeat(64), objects: [object("extra", "added"), object("orders", "missing"), object("users", "changed"), object("plans", "identical")] },
        };
      }
      return null;
    });
    location.hash = "#/drift/t00001";
    await route();
    const shown: string[] = [];
    for (const item of document.querySelectorAll<HTMLElement>('[role="option"]')) {
      item.click();
      const b = document.querySelector(".detail h3 .badge")!;
      shown.push(`${b.textContent}:${b.className}`);
    }
    expect(shown).toEqual([
      "added:badge presence-added",
      "missing:badge presence-missing",
      "changed:badge presence-changed",
      "identical:badge presence-identical",
    ]);
  });
});
