// Component tests of the console screens with the IPC mocked: no Rust, no
// window. The real window is covered by tests/e2e.
import { describe, expect, it } from "vitest";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { tick } from "svelte";
import { historyChart, middle, route, when } from "../src/app";
import { calls, channelOf, freshPage, settle } from "./harness";
import type { TenantRecord } from "../src/bindings/TenantRecord";
import { fleetPage, tenant } from "./fixtures";
import type { TenantQuery } from "../src/bindings/TenantQuery";

freshPage();

describe("fleet", () => {
  it("renders 10,000 tenants through a virtualised list", async () => {
    const rows = Array.from({ length: 10_000 }, (_, i) => tenant(i, i % 10 === 0 ? "customized" : "synced"));
    mockIPC((cmd, args) => (cmd === "registry_tenant_page" ? fleetPage(rows, args) : null));
    await route();
    await settle();
    const chips = document.querySelector(".summary")!.textContent!;
    expect(chips).toContain("1,000 customized");
    expect(chips).toContain("9,000 synced");
    const list = document.querySelector(".list")!;
    expect(list.getAttribute("aria-rowcount")).toBe("10000");
    const rendered = document.querySelectorAll(".row").length;
    expect(rendered).toBeGreaterThan(0);
    expect(rendered).toBeLessThan(100);
  });

  it("asks the registry for the pages in view only, and for a search once typing pauses", async () => {
    const rows = Array.from({ length: 100_000 }, (_, i) => tenant(i, "synced"));
    const asked: TenantQuery[] = [];
    mockIPC((cmd, args) => {
      if (cmd !== "registry_tenant_page") return null;
      asked.push((args as { query: TenantQuery }).query);
      // Answered a little later, as over real IPC: the list must wait
      // without spinning (a loop of redraws would starve this timer).
      return new Promise((resolve) => setTimeout(() => resolve(fleetPage(rows, args)), 15));
    });
    await route();
    await settle();
    expect(asked.map((q) => [q.offset, q.limit])).toEqual([[0, 200]]);
    expect(document.getElementById("match-count")!.textContent).toBe("100,000 tenants");
    const list = document.querySelector<HTMLElement>(".list")!;
    list.scrollTop = 50_000 * 48;
    list.dispatchEvent(new Event("scroll"));
    await tick();
    expect(document.querySelector(".row.placeholder")).not.toBeNull();
    await settle();
    expect(asked.map((q) => q.offset)).toEqual([0, 49_800, 50_000]);
    expect(document.querySelector(".row.placeholder")).toBeNull();
    expect(document.querySelector(".row[data-slug]")!.getAttribute("data-slug")).toBe("t49995");
    const search = document.getElementById("search") as HTMLInputElement;
    search.focus();
    for (const text of ["0", "04", "0420"]) {
      search.value = text;
      search.dispatchEvent(new Event("input", { bubbles: true }));
    }
    await settle();
    expect(asked.slice(3).map((q) => q.search)).toEqual(["0420"]);
    expect(document.getElementById("match-count")!.textContent).toBe("20 of 100,000 tenants");
    // Another query starts at its top.
    expect(document.querySelector<HTMLElement>(".list")!.scrollTop).toBe(0);
    expect(document.activeElement).toBe(search);
    search.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown", bubbles: true }));
    expect((document.activeElement as HTMLElement).closest(".row")!.getAttribute("data-slug")).toBe("t00420");
  });

  it("warns about an operation that never finished, with its backup", async () => {
    mockIPC((cmd, args) => {
      if (cmd === "registry_tenant_page") return fleetPage([tenant(1, "synced")], args);
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
    mockIPC((cmd, args) => (cmd === "registry_tenant_page" ? fleetPage([tenant(1, "synced"), tenant(2, "failed")], args) : null));
    await route();
    const search = document.getElementById("search") as HTMLInputElement;
    search.value = "t00002";
    search.dispatchEvent(new Event("input", { bubbles: true }));
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
      if (cmd === "reset_tenant") {
        // The engine's journal entries arrive on the channel while it runs.
        const send = channelOf(args, "onStep");
        for (const step of ["reset started; backup: schema tenantry_q_acme_1 in fleet", "in one transaction: the tables move to the backup", "finished: ok; status synced"]) {
          send({ operation: 4, tenant_slug: "acme", step });
        }
        return { slug: "acme", backup: "schema tenantry_q_acme_1", hash_after: "v1:" + "b".repeat(64), status: "synced", applied: [] };
      }
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
      await tick();
      expect(button.disabled).toBe(true);
    }
    input.value = "acme";
    input.dispatchEvent(new Event("input"));
    await tick();
    expect(button.disabled).toBe(false);
    button.click();
    await settle();
    const sent = calls.find((c) => c.cmd === "reset_tenant")!.args as Record<string, string>;
    expect(sent.plannedHash).toBe("v1:" + "c".repeat(64));
    expect(sent.confirmation).toBe("acme");
    expect(document.getElementById("reset-result")!.textContent).toContain("Reset finished: synced");
    const live = [...document.querySelectorAll('#reset-result [aria-label="Progress"] li')].map((li) => li.textContent);
    expect(live).toEqual(["reset started; backup: schema tenantry_q_acme_1 in fleet", "in one transaction: the tables move to the backup", "finished: ok; status synced"]);
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

describe("capture a template", () => {
  const CANARY = "Canary-Capture-7d2e";
  it("sends the reference with the masked password, shows the proof, and says why a refusal stored nothing", async () => {
    let captured = 0;
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === "list_templates")
        return captured ? [{ summary: { name: "saas", engine: "postgres", versions: [{ version: "1.0.0", migrations: 1, hash: "v7:" + "a".repeat(64), measured_at: "2026-12-06" }] }, lint: [] }] : [];
      if (cmd === "capture_template") {
        captured += 1;
        if (captured === 2) throw { code: "capture_refused", message: "the reference was not captured: trigger orders.touch: removed" };
        return { name: "saas", engine: "postgres", version: "1.0.0", hash: "v7:" + "a".repeat(64), migration: "1.0.0/0001_captured.sql", statements: 20, lineage: [], lint: [] };
      }
      return null;
    });
    location.hash = "#/templates";
    await route();
    await settle();
    expect(document.body.textContent).toContain("Use an existing database as the template");
    const set = (id: string, v: string): void => {
      const input = document.getElementById(id) as HTMLInputElement;
      input.value = v;
      input.dispatchEvent(new Event("input", { bubbles: true }));
    };
    set("c-url", "postgres://admin@db1/app");
    set("c-password", CANARY);
    set("c-schema", "tpl");
    set("c-name", "saas");
    set("c-version", "1.0.0");
    set("c-scratch-name", "dba_scratch");
    (document.getElementById("capture") as HTMLButtonElement).click();
    await settle();
    const sent = calls.find((c) => c.cmd === "capture_template")!.args as { workspace: string; form: Record<string, unknown> };
    expect(sent).toMatchObject({ workspace: "own", form: { url: "postgres://admin@db1/app", password: CANARY, schema: "tpl", name: "saas", version: "1.0.0", scratch_name: "dba_scratch" } });
    expect(document.body.textContent).toContain("Captured saas version 1.0.0: 20 statements");
    expect(document.body.textContent).toContain("v7:" + "a".repeat(64));
    expect(document.documentElement.outerHTML).not.toContain(CANARY);
    set("c-url", "postgres://admin@db1/app");
    set("c-name", "saas");
    set("c-version", "1.1.0");
    (document.getElementById("capture") as HTMLButtonElement).click();
    await settle();
    expect(document.getElementById("capture-result")!.textContent).toContain("trigger orders.touch: removed");
  });

  it("is not offered in the demo", async () => {
    mockIPC((cmd) => (cmd === "list_templates" ? [] : null));
    location.hash = "#/demo/templates";
    await route();
    await settle();
    expect(document.body.textContent).not.toContain("Use an existing database");
  });
});

describe("fleet filters", () => {
  it("filter by server and template", async () => {
    const a = tenant(1, "synced");
    const b = { ...tenant(2, "synced"), location: "postgres://app:•••@db2:5432/fleet", template_version: "1.0.0" };
    mockIPC((cmd, args) => (cmd === "registry_tenant_page" ? fleetPage([a, b], args) : null));
    await route();
    const server = document.querySelector("select[aria-label=Server]") as HTMLSelectElement;
    expect([...server.options].map((o) => o.value)).toEqual(["all", "db1:5432", "db2:5432"]);
    server.value = "db2:5432";
    server.dispatchEvent(new Event("change", { bubbles: true }));
    await settle();
    expect([...document.querySelectorAll(".row")].map((r) => r.getAttribute("data-slug"))).toEqual(["t00002"]);
  });
});

describe("drift timeline", () => {
  it("lists status and hash changes newest first, with their badges, hash and reason", async () => {
    const timeline = [
      { at: "2026-12-02T08:00:00Z", actor: "dba", from: "customized", to: "synced", hash: "v7:" + "b".repeat(64), reason: null },
      { at: "2026-12-01T08:00:00Z", actor: "nightly", from: "synced", to: "customized", hash: "v7:" + "c".repeat(64), reason: "1 added: table partner_feed" },
    ];
    mockIPC((cmd) => (cmd === "tenant_detail" ? { tenant: tenant(1, "synced"), audit: [], backups: [], stopped_sync: false, timeline } : null));
    location.hash = "#/tenant/t00001";
    await route();
    const items = [...document.querySelectorAll('[aria-label="Drift timeline"] li')];
    expect(items).toHaveLength(2);
    expect([...items[1].querySelectorAll(".badge")].map((b) => b.className)).toEqual(["badge status-synced", "badge status-customized"]);
    expect(items[1].textContent).toContain("table partner_feed");
    expect(items[1].textContent).toContain("(nightly)");
    expect(document.getElementById("no-timeline")).toBeNull();
  });

  it("says how a timeline starts when there is none", async () => {
    mockIPC((cmd) => (cmd === "tenant_detail" ? { tenant: tenant(1, "unknown"), audit: [], backups: [], stopped_sync: false, timeline: [] } : null));
    location.hash = "#/tenant/t00001";
    await route();
    expect(document.getElementById("no-timeline")!.textContent).toContain("records one whenever");
  });
});

describe("badges keep their meaning", () => {
  it("audit results are outlined results, not tenant statuses", async () => {
    const audit = (id: number, result: "ok" | "refused" | "failed") => ({
      id, at: "2026-11-23T10:00:00Z", actor: "dba", host: "desk", tenant_slug: "t00001", action: "scan", detail: "", result,
    });
    mockIPC((cmd) => {
      if (cmd === "tenant_detail") return { tenant: tenant(1, "synced"), audit: [audit(1, "ok"), audit(2, "refused"), audit(3, "failed")], backups: [], stopped_sync: false, timeline: [] };
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
    expect(document.getElementById("drift-counts")!.textContent).toBe("1 added · 1 missing · 1 changed · 1 identical");
    // Identical objects are hidden until asked for.
    expect(document.querySelectorAll('[role="option"]').length).toBe(3);
    const hide = document.getElementById("hide-identical") as HTMLInputElement;
    hide.checked = false;
    hide.dispatchEvent(new Event("change"));
    await tick();
    const shown: string[] = [];
    for (const item of document.querySelectorAll<HTMLElement>('[role="option"]')) {
      item.click();
      await tick();
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

describe("first run and the demo", () => {
  it("an empty registry opens on the welcome screen, which says why the keyring matters", async () => {
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === "registry_tenant_page") return fleetPage([], args);
      if (cmd === "key_status") return { store: "Secret Service", key_id: null, entry: null, error_code: "keyring_unavailable", error_message: "the OS keyring is not available", registry: "/data/registry.db" };
      return null;
    });
    await route();
    await settle();
    expect(document.querySelector("h2")!.textContent).toBe("Welcome to Tenantry");
    expect(document.getElementById("open-demo")!.getAttribute("href")).toBe("#/demo");
    expect(document.getElementById("add-tenant")!.getAttribute("href")).toBe("#/add");
    expect(document.getElementById("import-tenants")!.getAttribute("href")).toBe("#/import");
    expect(document.getElementById("add-template")!.getAttribute("href")).toBe("#/templates");
    expect(document.getElementById("try-guard")!.getAttribute("href")).toBe("#/demo");
    expect(document.querySelector("[role=alert]")!.textContent).toContain("The demo works without it");
    expect(calls.every((c) => (c.args as { workspace?: string }).workspace === "own")).toBe(true);
  });

  it("the demo lists its own registry, marked on the screen, with links that stay in the demo", async () => {
    document.body.innerHTML = '<nav><a data-screen="" href="#/">Fleet</a><a data-screen="templates" href="#/templates">Templates</a></nav><nav><a data-workspace="own" href="#/">Yours</a><a data-workspace="demo" href="#/demo">Demo</a></nav><main id="view"></main>';
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      return cmd === "registry_tenant_page" ? fleetPage([tenant(1, "customized")], args) : null;
    });
    location.hash = "#/demo";
    await route();
    await settle();
    expect(calls.find((c) => c.cmd === "registry_tenant_page")!.args).toMatchObject({ workspace: "demo" });
    expect(document.querySelector(".demo-banner")!.textContent).toContain("nothing here touches your registry");
    expect(document.querySelector(".row a")!.getAttribute("href")).toBe("#/demo/tenant/t00001");
    expect(document.querySelector('nav a[data-screen="templates"]')!.getAttribute("href")).toBe("#/demo/templates");
    expect(document.querySelector('nav a[data-workspace="demo"]')!.getAttribute("aria-current")).toBe("page");
    expect(document.body.dataset.workspace).toBe("demo");
  });
});

describe("add a tenant", () => {
  const CANARY = "Canary-Ui-4b1f";
  it("tests the connection and saves with the password from the masked field, never showing it", async () => {
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === "list_templates")
        return [{ summary: { name: "saas", engine: "postgres", versions: [{ version: "1.0.0", migrations: 1, hash: null, measured_at: null }, { version: "1.1.0", migrations: 1, hash: null, measured_at: null }] }, lint: [] }];
      if (cmd === "test_connection")
        return { slug: "", location: "postgres://app:•••@db1:5432/fleet", healthy: true, server_version: "PostgreSQL 15", checks: [{ name: "connect", ok: true, detail: "connected", millis: 3 }], cache: { hits: 0, misses: 1, evictions: 0, open_pools: 1 } };
      if (cmd === "add_tenant") return tenant(9, "unknown");
      return null;
    });
    location.hash = "#/add";
    await route();
    await settle();
    // As a user types: text fields fire input, selects change (Svelte's
    // bindings listen to those).
    const set = (id: string, v: string): void => {
      const i = document.getElementById(id) as HTMLInputElement | HTMLSelectElement;
      i.value = v;
      i.dispatchEvent(new Event(i instanceof HTMLSelectElement ? "change" : "input", { bubbles: true }));
    };
    set("f-slug", "acme");
    set("f-url", "postgres://app@db1:5432/fleet");
    set("f-password", CANARY);
    set("f-schema", "tenant_acme");
    set("f-template", "saas");
    await settle();
    expect([...(document.getElementById("f-version") as HTMLSelectElement).options].map((o) => o.value)).toEqual(["1.1.0", "1.0.0"]);
    (document.getElementById("test-connection") as HTMLButtonElement).click();
    await settle();
    expect(document.getElementById("add-result")!.textContent).toContain("Connected to postgres://app:•••@db1:5432/fleet");
    const tested = calls.find((c) => c.cmd === "test_connection")!.args as { form: Record<string, unknown> };
    expect(tested.form).toMatchObject({ slug: "acme", display_name: "acme", url: "postgres://app@db1:5432/fleet", password: CANARY, schema: "tenant_acme", template: "saas", template_version: "1.1.0" });
    (document.getElementById("save-tenant") as HTMLButtonElement).click();
    await settle();
    const added = calls.find((c) => c.cmd === "add_tenant")!.args as { workspace: string; form: { password: string } };
    expect(added.workspace).toBe("own");
    expect(added.form.password).toBe(CANARY);
    expect(location.hash).toBe("#/tenant/t00009");
    expect((document.getElementById("f-password") as HTMLInputElement | null)?.value ?? "").toBe("");
    expect(document.documentElement.outerHTML).not.toContain(CANARY);
  });

  it("shows the engine's refusal and keeps the form", async () => {
    mockIPC((cmd) => {
      if (cmd === "add_tenant") throw { code: "slug_taken", message: "tenant acme already exists" };
      return null;
    });
    location.hash = "#/add";
    await route();
    for (const [id, v] of [["f-slug", "acme"], ["f-url", "sqlite:/tmp/acme.db"]]) {
      const input = document.getElementById(id) as HTMLInputElement;
      input.value = v;
      input.dispatchEvent(new Event("input", { bubbles: true }));
    }
    (document.getElementById("save-tenant") as HTMLButtonElement).click();
    await settle();
    expect(document.querySelector("[role=alert]")!.textContent).toContain("slug_taken");
    expect((document.getElementById("f-slug") as HTMLInputElement).value).toBe("acme");
  });
});

describe("tenant actions follow the status", () => {
  const templates = [{ summary: { name: "saas", engine: "postgres", versions: ["1.0.0", "1.1.0", "1.2.0"].map((version) => ({ version, migrations: 1, hash: null, measured_at: null })) }, lint: [] }];
  const open = async (t: TenantRecord): Promise<string> => {
    mockIPC((cmd) => (cmd === "tenant_detail" ? { tenant: t, audit: [], backups: [], stopped_sync: false, timeline: [] } : cmd === "list_templates" ? templates : null));
    location.hash = `#/tenant/${t.slug}`;
    await route();
    return document.getElementById("view")!.textContent!;
  };

  it("a synced tenant offers no repair, accept or reset; an upgrade only to newer versions", async () => {
    const text = await open({ ...tenant(1, "synced"), template_version: "1.1.0" });
    expect(text).not.toContain("Repair");
    expect(text).not.toContain("Accept");
    expect(document.querySelector('a[href$="/reset/t00001"]')).toBeNull();
    const to = document.getElementById("upgrade-to") as HTMLSelectElement;
    expect([...to.options].map((o) => o.value)).toEqual(["1.2.0"]);
    expect(document.getElementById("allow-customized")).toBeNull();
  });

  it("a customized tenant offers repair, accept, reset and a guarded upgrade", async () => {
    const text = await open({ ...tenant(1, "customized"), template_version: "1.2.0" });
    expect(text).toContain("Repair");
    expect(text).toContain("Accept");
    expect(document.querySelector('a[href="#/reset/t00001"]')).not.toBeNull();
    expect(document.getElementById("upgrade-to")).toBeNull();
  });

  it("has the back link that Escape and Alt+Left follow (start() wires the keys)", async () => {
    await open(tenant(1, "synced"));
    expect(document.querySelector("#view a.back")!.getAttribute("href")).toBe("#/");
  });
});

describe("reset plan", () => {
  const plan = (over: Record<string, unknown>) => ({
    slug: "acme", engine: "sqlite", server: "/d/acme.db", schema: "main", template: "saas", template_version: "1.1.0",
    template_hash: "v1:" + "b".repeat(64), drift_hash: "v1:" + "c".repeat(64),
    objects: [
      { kind: "table", name: "tps_reports", presence: "added", rows: 4 },
      { kind: "table", name: "users", presence: "identical", rows: 1200 },
      { kind: "table", name: "tasks", presence: "identical", rows: 30 },
    ],
    changes: [], backup: "a copy of the file", ...over,
  });

  it("lists only what changes and says the tables will be empty", async () => {
    mockIPC((cmd) => (cmd === "reset_plan" ? plan({}) : null));
    location.hash = "#/reset/acme";
    await route();
    const rows = [...document.querySelectorAll('[aria-label="Reset plan"] tr')].slice(1).map((r) => r.firstChild!.textContent);
    expect(rows).toEqual(["table tps_reports"]);
    expect(document.getElementById("reset-afterwards")!.textContent).toContain("they are empty");
    expect(document.getElementById("reset-afterwards")!.textContent).toContain("1,234 in all");
    expect(document.getElementById("identical-note")!.textContent).toContain("2 identical objects are rebuilt too");
  });

  it("is not offered when the tenant already matches its template", async () => {
    mockIPC((cmd) => (cmd === "reset_plan" ? plan({ drift_hash: "v1:" + "b".repeat(64) }) : null));
    location.hash = "#/reset/acme";
    await route();
    expect(document.getElementById("do-reset")).toBeNull();
    expect(document.body.textContent).toContain("nothing to reset");
  });
});

describe("fleet list details", () => {
  it("sorts from the column headers and says how", async () => {
    const a = { ...tenant(1, "synced"), slug: "zeta", last_sync_at: "2026-11-01T10:00:00Z" };
    const b = { ...tenant(2, "failed"), slug: "alpha", last_sync_at: "2026-12-01T10:00:00Z", status_reason: "cannot connect: connection refused" };
    mockIPC((cmd, args) => (cmd === "registry_tenant_page" ? fleetPage([a, b], args) : null));
    await route();
    await settle();
    const order = (): (string | null)[] => [...document.querySelectorAll(".row")].map((r) => r.getAttribute("data-slug"));
    expect(order()).toEqual(["alpha", "zeta"]); // failed first
    expect(document.querySelector('[data-slug="alpha"] .reason')!.textContent).toBe("cannot connect: connection refused");
    (document.querySelector('button[data-sort="last_sync"]') as HTMLButtonElement).click();
    await settle();
    expect(order()).toEqual(["alpha", "zeta"]);
    expect(document.querySelector('button[data-sort="last_sync"]')!.parentElement!.getAttribute("aria-sort")).toBe("descending");
    (document.querySelector('button[data-sort="slug"]') as HTMLButtonElement).click();
    await settle();
    expect(order()).toEqual(["alpha", "zeta"]);
    expect(document.querySelectorAll('[role="columnheader"]').length).toBe(6);
  });

  it("formats every timestamp one way, in local time with its zone, and keeps both ends of long locations", () => {
    expect(when("2026-12-05T21:49:48.123Z")).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \S+$/);
    expect(when(null)).toBe("never");
    const long = "sqlite:/home/dba/.local/share/dev.tenantry.console/demo-fleet/tenants/umbrella.db";
    const cut = middle(long);
    expect(cut.length).toBe(48);
    expect(cut.startsWith("sqlite:/home/")).toBe(true);
    expect(cut.endsWith("tenants/umbrella.db")).toBe(true);
    expect(middle("short")).toBe("short");
  });
});

describe("scan", () => {
  it("counts progress in numbers, keeps the scroll position while results stream, and folds big groups", async () => {
    const rows = Array.from({ length: 2000 }, (_, i) => tenant(i, "synced"));
    let send: ((m: unknown) => void) | null = null;
    let finish: (v: unknown) => void = () => {};
    mockIPC((cmd, args) => {
      if (cmd === "registry_tenant_page") return fleetPage(rows.map((r) => ({ ...r })), args);
      if (cmd === "scan_fleet") {
        send = channelOf(args, "onProgress");
        return new Promise((resolve) => (finish = resolve));
      }
      return null;
    });
    await route();
    await settle();
    (document.getElementById("scan") as HTMLButtonElement).click();
    await settle();
    const list = document.querySelector<HTMLElement>(".list")!;
    list.scrollTop = 4800;
    send!({ done: 500, total: 2000, fleet: { synced: 1999, outdated: 0, customized: 1, unknown: 0, failed: 0 }, finished: [{ slug: "t00003", place: "schema t3", status: "customized", hash: "v1:" + "e".repeat(64), reason: "matches no version", template: "saas", template_version: "1.1.0", reused: false, accepted: false }] });
    await settle();
    expect(document.getElementById("scan-count")!.textContent).toBe("500 / 2,000 tenants");
    expect(document.querySelector<HTMLElement>(".list")!.scrollTop).toBe(4800);
    expect(document.querySelector(".summary")!.textContent).toContain("1 customized");
    const group = Array.from({ length: 766 }, (_, i) => `t${String(i).padStart(5, "0")}`);
    finish({ tenants: [], elapsed_ms: 900, cancelled: false, reused: 0, groups: [{ hash: "v1:" + "f".repeat(64), tenants: group }], counts: null });
    await settle();
    const details = document.querySelector("details.group")!;
    expect(details.hasAttribute("open")).toBe(false);
    expect(details.querySelector("summary")!.textContent).toBe(`766 tenants share customisation v1:ffffffffffff…`);
    expect(details.querySelectorAll("a").length).toBe(200);
    expect(details.textContent).toContain("and 566 more");
  });
});

describe("drift view", () => {
  it("pairs the DDL in a merge view and moves through the objects with the keyboard", async () => {
    const object = (name: string, presence: "added" | "changed" | "identical", a: string | null, b: string | null) => ({
      kind: "table", name, presence, template_ddl: a, tenant_ddl: b, unified: "", side_by_side: [],
      changes: presence === "changed" ? [{ area: "column", item: "badge_no", presence: "added", template: null, tenant: "badge_no TEXT " + "x".repeat(200) }] : [],
    });
    mockIPC((cmd) =>
      cmd === "tenant_diff"
        ? {
            slug: "umbrella", location: "sqlite:/d/umbrella.db", template: "saas", template_version: "1.1.0",
            diff: {
              template_hash: "v1:" + "b".repeat(64), tenant_hash: "v1:" + "c".repeat(64),
              objects: [
                object("users", "changed", "CREATE TABLE users (\n    id INTEGER,\n    email TEXT\n);", "CREATE TABLE users (\n    id INTEGER,\n    email TEXT,\n    badge_no TEXT\n);"),
                object("extra", "added", null, "CREATE TABLE extra (id INTEGER);"),
                object("plans", "identical", "CREATE TABLE plans (id INTEGER);", "CREATE TABLE plans (id INTEGER);"),
              ],
            },
          }
        : null,
    );
    location.hash = "#/drift/umbrella";
    await route();
    const merge = document.getElementById("ddl-merge")!.shadowRoot!;
    expect(merge.querySelector(".cm-mergeView")).not.toBeNull();
    expect(merge.querySelector('[aria-label="Template DDL of table users"]')!.textContent).toContain("email TEXT");
    expect(merge.querySelector('[aria-label="Tenant DDL of table users"]')!.textContent).toContain("badge_no TEXT");
    const change = document.querySelector('[aria-label="Changes"] li')!;
    expect(change.textContent!.length).toBeLessThan(160);
    expect(change.getAttribute("title")).toContain("x".repeat(200));
    const list = document.querySelector<HTMLElement>('[role="listbox"]')!;
    list.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown", bubbles: true }));
    await tick();
    expect(document.querySelector(".detail h3")!.textContent).toContain("table extra");
    expect(list.querySelector('[aria-selected="true"]')!.getAttribute("data-key")).toBe("table extra");
    list.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowDown", bubbles: true }));
    await tick();
    expect(document.querySelector(".detail h3")!.textContent).toContain("table extra"); // identical is hidden: the end
    list.dispatchEvent(new KeyboardEvent("keydown", { key: "Home", bubbles: true }));
    await tick();
    expect(document.querySelector(".detail h3")!.textContent).toContain("table users");
  });

  it("exports the report where the save dialog says, and writes nothing when it is cancelled", async () => {
    let chosen: string | null = null;
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === "plugin:dialog|save") return chosen;
      if (cmd === "export_diff_report") return (args as { path: string }).path;
      if (cmd === "tenant_diff")
        return { slug: "umbrella", location: "sqlite:/d/umbrella.db", template: "saas", template_version: "1.1.0", diff: { template_hash: "v1:" + "b".repeat(64), tenant_hash: "v1:" + "c".repeat(64), objects: [] } };
      return null;
    });
    location.hash = "#/drift/umbrella";
    await route();
    (document.getElementById("export-html") as HTMLButtonElement).click();
    await settle();
    const asked = calls.find((c) => c.cmd === "plugin:dialog|save")!.args as { options: { defaultPath: string } };
    expect(asked.options.defaultPath).toBe("umbrella-drift.html");
    expect(calls.some((c) => c.cmd === "export_diff_report")).toBe(false);
    chosen = "/home/dba/reports/umbrella.html";
    (document.getElementById("export-html") as HTMLButtonElement).click();
    await settle();
    expect(calls.find((c) => c.cmd === "export_diff_report")!.args).toMatchObject({ slug: "umbrella", format: "html", path: "/home/dba/reports/umbrella.html" });
    expect(document.getElementById("view")!.textContent).toContain("Saved to /home/dba/reports/umbrella.html");
  });
});

describe("fleet over time", () => {
  const scan = (at: string, synced: number, customized: number, failed: number, shard: string | null = null) => ({
    at, actor: "dba", shard, tenants: synced + customized + failed, scanned: synced + customized + failed, synced, outdated: 0, customized, unknown: 0, failed, elapsed_ms: 900, cancelled: false,
  });
  it("draws one stacked bar per scan, each status its share, with the counts on hover", () => {
    const chart = historyChart([scan("2026-12-01T08:00:00Z", 5, 2, 0), scan("2026-12-02T08:00:00Z", 6, 0, 1, "2/3")]);
    const bars = chart.querySelectorAll("svg > g");
    expect(bars.length).toBe(2);
    expect([...bars[0].querySelectorAll("rect")].map((r) => r.getAttribute("class"))).toEqual(["fill-synced", "fill-customized"]);
    const heights = [...bars[1].querySelectorAll("rect")].map((r) => Number(r.getAttribute("height")));
    expect(heights[0] + heights[1]).toBeCloseTo(56, 0);
    expect(bars[1].querySelector("title")!.textContent).toContain("by dba (shard 2/3): 6 synced, 0 outdated, 0 customized, 0 unknown, 1 failed");
    expect(bars[0].querySelector("title")!.textContent).not.toContain("shard");
    expect(chart.querySelector("svg")!.getAttribute("aria-label")).toContain("synced went from 5 of 7 to 6 of 7");
  });

  it("says how the chart starts when there is no scan yet, and the fleet screen asks for it", async () => {
    expect(historyChart([]).textContent).toContain("starts with the first scan");
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === "registry_tenant_page") return fleetPage([tenant(1, "synced")], args);
      if (cmd === "scan_history") return [scan("2026-12-01T08:00:00Z", 1, 0, 0)];
      return null;
    });
    await route();
    await settle();
    expect(calls.find((c) => c.cmd === "scan_history")!.args).toMatchObject({ workspace: "own", limit: 60 });
    expect(document.querySelectorAll("#fleet-history svg > g").length).toBe(1);
  });
});

describe("sync wizard", () => {
  const step = (over: Record<string, unknown>) => ({
    class: "safe", object: "table invoices", action: "column total_cents: revert the default",
    sql: ["ALTER TABLE `acme`.`invoices` MODIFY COLUMN `total_cents` bigint NOT NULL DEFAULT 0"],
    probe: null, probe_meaning: null, count: null, ...over,
  });
  const plan = (over: Record<string, unknown>) => ({
    slug: "acme", engine: "mysql", server: "db1:3306/acme", schema: "acme", template: "saas", template_version: "1.0.0",
    template_hash: "v7:" + "b".repeat(64), drift_hash: "v7:" + "c".repeat(64), quarantine: "tenantry_q_acme_1",
    kept: [], keep_note: null, keepable_columns: ["column invoices.memo"], target_hash: "v7:" + "b".repeat(64), steps: [step({})], resumes: null, ...over,
  });
  const open = async (p: ReturnType<typeof plan>, apply: () => unknown): Promise<string> => {
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === "sync_plan") return p;
      if (cmd === "sync_tenant") return apply();
      return null;
    });
    location.hash = "#/sync/acme";
    await route();
    await settle();
    return document.getElementById("view")!.textContent!;
  };

  it("a MySQL plan says its steps commit one by one, and names the database", async () => {
    const text = await open(plan({}), () => null);
    // One column may be kept on its own, besides the objects the steps are about.
    expect([...document.querySelectorAll("#keep label.keep")].map((l) => l.textContent!.trim())).toEqual(["table invoices", "column invoices.memo"]);
    expect(text).toContain("database acme");
    expect(text).toContain("the steps run one by one");
    expect(text).not.toContain("one transaction");
    expect(document.getElementById("sync-resumes")).toBeNull();
  });

  it("finishing a stopped sync lists what is done, and an interruption offers to plan what is left", async () => {
    const done = ["[safe] database tenantry_q_acme_1: create the quarantine database", "[destructive] table users: copy the whole table to the quarantine, then drop the custom column badge"];
    const text = await open(plan({ resumes: { operation: 7, done } }), () => {
      throw { code: "sync_interrupted", message: "the sync of acme stopped at step 1/1: lock wait" };
    });
    expect(text).toContain("stopped after 2 steps");
    expect([...document.querySelectorAll("#sync-resumes li")].map((li) => li.textContent)).toEqual(done);
    const typed = document.getElementById("confirm-slug") as HTMLInputElement;
    typed.value = "acme";
    typed.dispatchEvent(new Event("input"));
    await tick();
    (document.getElementById("do-sync") as HTMLButtonElement).click();
    await settle();
    const request = calls.find((c) => c.cmd === "sync_tenant")!.args as { request: { planned_quarantine: string; planned_hash: string } };
    expect(request.request.planned_quarantine).toBe("tenantry_q_acme_1");
    expect(document.getElementById("sync-result")!.textContent).toContain("stopped at step 1/1");
    expect(document.getElementById("sync-finish")).not.toBeNull();
  });

  it("a MySQL tenant is offered the sync; one whose sync stopped is offered to finish it", async () => {
    const mysql = { ...tenant(1, "customized"), engine: "mysql" as const, location: "mysql://app:•••@db1:3306/t1" };
    mockIPC((cmd) => (cmd === "tenant_detail" ? { tenant: mysql, audit: [], backups: [], stopped_sync: false, timeline: [] } : null));
    location.hash = "#/tenant/t00001";
    await route();
    expect(document.getElementById("sync-link")!.textContent).toBe("Sync, keeping data…");
    clearMocks();
    mockIPC((cmd) => (cmd === "tenant_detail" ? { tenant: { ...mysql, status: "failed" }, audit: [], backups: [], stopped_sync: true, timeline: [] } : null));
    await route();
    expect(document.getElementById("sync-link")!.textContent).toBe("Finish the stopped sync…");
  });
});
