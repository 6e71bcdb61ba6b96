// Component tests of the Svelte screens (import tenants, add a template from
// a folder) with the IPC mocked, through the console's own router.
import { describe, expect, it } from "vitest";
import { mockIPC } from "@tauri-apps/api/mocks";
import { route } from "../src/app";
import { calls, channelOf, freshPage, settle } from "./harness";
import type { ImportReport } from "../src/bindings/ImportReport";
import type { TenantRecord } from "../src/bindings/TenantRecord";
import { fleetPage, tenant } from "./fixtures";

freshPage();

/** Types into a field as a user would (Svelte's bindings listen for input). */
function type(id: string, value: string): void {
  const input = document.getElementById(id) as HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement;
  input.value = value;
  input.dispatchEvent(new Event(input instanceof HTMLSelectElement ? "change" : "input", { bubbles: true }));
}

function click(id: string): void {
  (document.getElementById(id) as HTMLElement).click();
}

const button = (id: string): HTMLButtonElement => document.getElementById(id) as HTMLButtonElement;
const text = (): string => document.getElementById("view")!.textContent ?? "";

const report = (over: Partial<ImportReport>): ImportReport => ({
  mode: "add",
  dry_run: true,
  added: [],
  changed: [],
  unchanged: [],
  skipped: [],
  missing_from_source: [],
  ...over,
});

describe("import tenants", () => {
  it("previews first, imports only what was previewed, and says what happened", async () => {
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd !== "import_tenants") return null;
      const form = (args as { form: { dry_run: boolean; mode: string } }).form;
      return report({
        mode: form.mode as ImportReport["mode"],
        dry_run: form.dry_run,
        added: Array.from({ length: 30 }, (_, i) => `new${i}`),
        changed: [{ slug: "acme", fields: ["display_name", "connection"] }],
        missing_from_source: ["old-one"],
      });
    });
    location.hash = "#/import";
    await route();
    await settle();
    expect(text()).toContain("Import tenants");
    expect(button("i-import").disabled).toBe(true);
    type("i-path", " /srv/fleet/tenants.csv ");
    type("i-mode", "upsert");
    click("i-preview");
    await settle();
    expect(calls.at(-1)!.args).toMatchObject({ workspace: "own", form: { source: { kind: "file", path: "/srv/fleet/tenants.csv" }, mode: "upsert", dry_run: true } });
    const table = document.querySelector("table[aria-label='Import preview']")!.textContent!;
    expect(table).toContain("New30");
    expect(table).toContain("new0, new1");
    expect(table).toContain("and 18 more");
    expect(table).toContain("acme (display_name, connection)");
    expect(table).toContain("old-one");
    expect(text()).toContain("never removed");
    expect(button("i-import").textContent!.trim()).toBe("Import 31 tenants");
    expect(button("i-import").disabled).toBe(false);

    // A changed form is previewed again before anything is written.
    type("i-path", "/srv/fleet/other.csv");
    await settle();
    expect(button("i-import").disabled).toBe(true);
    expect(text()).toContain("preview again");
    type("i-path", "/srv/fleet/tenants.csv");
    await settle();
    click("i-import");
    await settle();
    expect(calls.filter((c) => c.cmd === "import_tenants").map((c) => (c.args as { form: { dry_run: boolean } }).form.dry_run)).toEqual([true, false]);
    expect(document.getElementById("import-result")!.textContent).toContain("Imported: 30 new, 1 changed");
  });

  it("reads a central query with a masked password and pattern that never reach the page", async () => {
    const CANARY = "Canary-Import-5f1c";
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      return cmd === "import_tenants" ? report({ added: ["acme"] }) : null;
    });
    location.hash = "#/import";
    await route();
    await settle();
    click("i-kind-query");
    await settle();
    expect((document.getElementById("i-password") as HTMLInputElement).type).toBe("password");
    expect((document.getElementById("i-pattern") as HTMLInputElement).type).toBe("password");
    type("i-url", "postgres://reader@central/billing");
    type("i-password", CANARY);
    type("i-sql", "SELECT slug, host FROM customers");
    type("i-pattern", `postgres://app:${CANARY}@{host}/app`);
    click("i-preview");
    await settle();
    expect(calls.at(-1)!.args).toMatchObject({
      form: { source: { kind: "query", url: "postgres://reader@central/billing", password: CANARY, sql: "SELECT slug, host FROM customers", pattern: `postgres://app:${CANARY}@{host}/app` }, mode: "add", dry_run: true },
    });
    click("i-import");
    await settle();
    expect(text()).toContain("Imported: 1 new");
    expect(document.documentElement.outerHTML).not.toContain(CANARY);
    expect((document.getElementById("i-password") as HTMLInputElement).value).toBe("");
  });

  it("shows the engine's refusal and writes nothing", async () => {
    mockIPC((cmd) => {
      if (cmd === "import_tenants") throw { code: "import", message: "row 3 (slug \"acme\"): the source lists it twice (row 1 too)" };
      return null;
    });
    location.hash = "#/import";
    await route();
    await settle();
    type("i-path", "/tmp/t.csv");
    click("i-preview");
    await settle();
    expect(document.querySelector("#import-result [role=alert]")!.textContent).toContain("the source lists it twice");
    expect(button("i-import").disabled).toBe(true);
  });

  it("is not offered in the demo, and the fleet links to it", async () => {
    mockIPC(() => null);
    location.hash = "#/demo/import";
    await route();
    await settle();
    expect(document.getElementById("i-path")).toBeNull();
    expect(text()).toContain("Import tenants into your registry");
  });
});

describe("add a template from a folder", () => {
  const CANARY = "Canary-Scratch-91ab";
  const view = {
    summary: { name: "billing", engine: "postgres", versions: [{ version: "1.0.0", migrations: 2, hash: `v7:${"c".repeat(64)}`, measured_at: "2026-12-06T10:00:00Z" }, { version: "1.1.0", migrations: 1, hash: `v7:${"d".repeat(64)}`, measured_at: "2026-12-06T10:00:00Z" }] },
    lint: [{ kind: "not_transactional", location: "1.1.0/0001.sql", message: "drops a column", reaches_outside: false }],
  };

  it("picks the folder with the dialog, measures it, and shows it with its lint findings", async () => {
    let added = false;
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === "plugin:dialog|open") return "/srv/templates/billing";
      if (cmd === "list_templates") return added ? [view] : [];
      if (cmd === "add_template") {
        added = true;
        return view;
      }
      return null;
    });
    location.hash = "#/templates";
    await route();
    await settle();
    expect(text()).toContain("No templates yet");
    click("t-choose");
    await settle();
    expect((document.getElementById("t-dir") as HTMLInputElement).value).toBe("/srv/templates/billing");
    expect((document.getElementById("t-name") as HTMLInputElement).value).toBe("billing");
    type("t-scratch", "postgres://admin@db1/scratch");
    type("t-password", CANARY);
    click("t-add");
    await settle();
    expect(calls.find((c) => c.cmd === "add_template")!.args).toMatchObject({
      workspace: "own",
      form: { dir: "/srv/templates/billing", name: "billing", engine: "postgres", scratch: "postgres://admin@db1/scratch", password: CANARY, scratch_name: null, allow_outside: null },
    });
    expect(text()).toContain("Added billing (postgres): 2 versions measured; 1 lint finding, listed below.");
    expect(text()).toContain("drops a column");
    expect(document.documentElement.outerHTML).not.toContain(CANARY);
  });

  it("measures SQLite in a scratch file, and shows a refusal with nothing stored", async () => {
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === "list_templates") return [];
      if (cmd === "add_template") throw { code: "outside_tenant", message: "template billing 1.0.0 reaches outside the tenant: CREATE EXTENSION" };
      return null;
    });
    location.hash = "#/templates";
    await route();
    await settle();
    type("t-engine", "sqlite");
    await settle();
    expect(document.getElementById("t-scratch")).toBeNull();
    type("t-dir", "/srv/templates/billing");
    type("t-name", "billing");
    click("t-add");
    await settle();
    expect(calls.find((c) => c.cmd === "add_template")!.args).toMatchObject({ form: { engine: "sqlite", scratch: null, password: null } });
    expect(document.querySelector("#template-result [role=alert]")!.textContent).toContain("reaches outside the tenant");
  });
});

describe("the guard from the console", () => {
  const report = (slug: string, action: string | null, error: string | null = null) => ({ slug, action, applied: action === "initialised" ? ["1.0.0/0001.sql"] : [], status: error ? "failed" : "synced", hash: null, error_code: error ? "connect" : null, error });

  it("runs over the fleet, counting as each tenant finishes, then says what it did and reloads the list", async () => {
    let rows: TenantRecord[] = [tenant(1, "unknown"), tenant(2, "synced"), tenant(3, "failed")];
    let send: (m: unknown) => void = () => {};
    let finish: (v: unknown) => void = () => {};
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === "registry_tenant_page") return fleetPage(rows, args);
      if (cmd === "guard_fleet") {
        send = channelOf(args, "onReport");
        return new Promise((resolve) => (finish = resolve));
      }
      return null;
    });
    await route();
    await settle();
    click("guard-fleet");
    await settle();
    expect(button("guard-fleet").disabled).toBe(true);
    expect(button("scan").disabled).toBe(true);
    send(report("t00001", "initialised"));
    await settle();
    expect(button("guard-fleet").textContent).toBe("Guarding 1 / 3…");
    rows = [tenant(1, "synced"), tenant(2, "synced"), tenant(3, "failed")];
    finish([report("t00001", "initialised"), report("t00002", "already_provisioned"), report("t00003", null, "cannot connect: connection refused")]);
    await settle();
    expect(text()).toContain("Guard: 0 created, 1 initialised, 1 already provisioned, 1 failed. t00003: cannot connect: connection refused");
    expect(button("guard-fleet").disabled).toBe(false);
    expect(document.querySelector('.row[data-slug="t00001"]')!.getAttribute("data-status")).toBe("synced");
  });

  it("is offered on a tenant never initialised, and shows the tenant as the guard left it", async () => {
    let status: TenantRecord["status"] = "unknown";
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === "tenant_detail") return { tenant: tenant(1, status), audit: [], backups: [], stopped_sync: false, timeline: [] };
      if (cmd === "guard_tenant") {
        status = "synced";
        return report("t00001", "initialised");
      }
      return null;
    });
    location.hash = "#/tenant/t00001";
    await route();
    await settle();
    click("run-guard");
    await settle();
    expect(calls.find((c) => c.cmd === "guard_tenant")!.args).toMatchObject({ workspace: "own", slug: "t00001" });
    expect(document.getElementById("guard-result")!.textContent).toContain("Initialised (1.0.0/0001.sql); status synced.");
    expect(document.querySelector(".facts .badge")!.className).toBe("badge status-synced");
    expect(document.getElementById("run-guard")).toBeNull();
  });
});

describe("roles on a shared registry", () => {
  const members = [
    { name: "alice", public_key: "tenantry-member-v1:aa", fingerprint: "aa11", role: "admin", key_id: "k1", added_at: "2026-12-07T02:00:00Z", added_by: "alice", you: false },
    { name: "carol", public_key: "tenantry-member-v1:cc", fingerprint: "cc33", role: "viewer", key_id: "k1", added_at: "2026-12-07T02:05:00Z", added_by: "alice", you: true },
  ];
  const viewer = { caller: { name: "carol", role: "viewer" }, members, allowed: [] };
  const operator = { caller: { name: "carol", role: "operator" }, members, allowed: ["guard", "scan", "repair", "accept", "sync", "upgrade"] };

  function mockAs(access: unknown, status: TenantRecord["status"]): void {
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === "access") return access;
      if (cmd === "registry_tenant_page") return fleetPage([tenant(1, status)], args);
      if (cmd === "tenant_detail") return { tenant: tenant(1, status), audit: [], backups: [], stopped_sync: false, timeline: [] };
      if (cmd === "key_status") return { store: "Secret Service", retention: null, key_id: "k1", entry: null, error_code: null, error_message: null, registry: "/r.db", registry_backend: "sqlite", registry_source: "default", registry_problem: null };
      return null;
    });
  }

  it("offers a viewer only what they may do, and says why the rest is not there", async () => {
    mockAs(viewer, "customized");
    location.hash = "#/";
    await route();
    await settle();
    for (const id of ["scan", "guard-fleet", "fleet-add", "fleet-import"]) expect(document.getElementById(id), id).toBeNull();
    location.hash = "#/tenant/t00001";
    await route();
    await settle();
    expect(document.getElementById("sync-link")).toBeNull();
    expect(text()).not.toContain("Reset…");
    expect(text()).not.toContain("Accept as baseline");
    expect(document.getElementById("run-health")).not.toBeNull();
    expect(document.getElementById("no-actions")!.textContent).toContain("As a viewer of this shared registry");
    location.hash = "#/reset/t00001";
    await route();
    await settle();
    expect(text()).toContain("You are carol, a viewer of this shared registry: resetting a tenant is for admins");
    expect(calls.some((c) => c.cmd === "reset_plan")).toBe(false);
    location.hash = "#/settings";
    await route();
    await settle();
    expect(document.getElementById("you")!.textContent).toContain("You are carol, a viewer");
    expect(document.querySelector("table[aria-label='Members']")!.textContent).toContain("carol (you)");
    expect(document.getElementById("no-rotate")).not.toBeNull();
  });

  it("offers an operator scan, guard and sync but not reset or the tenant list", async () => {
    mockAs(operator, "customized");
    location.hash = "#/";
    await route();
    await settle();
    expect(document.getElementById("scan")).not.toBeNull();
    expect(document.getElementById("guard-fleet")).not.toBeNull();
    expect(document.getElementById("fleet-add")).toBeNull();
    location.hash = "#/tenant/t00001";
    await route();
    await settle();
    expect(document.getElementById("sync-link")).not.toBeNull();
    expect(text()).toContain("Accept as baseline");
    expect(text()).not.toContain("Reset…");
  });
});

describe("choosing the registry", () => {
  const key = (over: Record<string, unknown>): Record<string, unknown> => ({
    store: "Secret Service", retention: null, key_id: "k1", entry: null, error_code: null, error_message: null,
    registry: "/r.db", registry_backend: "sqlite", registry_source: "default", registry_problem: null, ...over,
  });

  it("sends the URL and the password apart, clears the password, and offers a restart", async () => {
    mockIPC((cmd, args) => {
      calls.push({ cmd, args });
      if (cmd === "key_status") return key({});
      if (cmd === "access") return { caller: null, members: [], allowed: [] };
      if (cmd === "choose_registry") return "postgres://alice:•••@db1:5432/tenantry";
      return null;
    });
    location.hash = "#/settings";
    await route();
    await settle();
    expect(document.getElementById("registry-kind")!.textContent).toContain("This computer's own registry");
    expect(document.getElementById("use-own-registry")).toBeNull();
    type("registry-url", " postgres://alice@db1:5432/tenantry ");
    type("registry-password", "Canary-Ui-3f1");
    (document.querySelector("form[aria-label='Use a team registry']") as HTMLFormElement).requestSubmit();
    await settle();
    const sent = calls.find((c) => c.cmd === "choose_registry")!;
    expect(sent.args).toMatchObject({ form: { url: "postgres://alice@db1:5432/tenantry", password: "Canary-Ui-3f1" } });
    expect((document.getElementById("registry-password") as HTMLInputElement).value).toBe("");
    expect(text()).toContain("From its next start the console opens postgres://alice:•••@db1:5432/tenantry.");
    expect(text()).not.toContain("Canary-Ui-3f1");
    click("restart-console");
    await settle();
    expect(calls.some((c) => c.cmd === "restart_console")).toBe(true);
  });

  it("says why a chosen registry is not the one open, and defers to TENANTRY_REGISTRY", async () => {
    mockIPC((cmd) => {
      if (cmd === "key_status") return key({ registry_problem: "The registry chosen in Settings (postgres://db1/tenantry) could not be opened: refused." });
      if (cmd === "access") return { caller: null, members: [], allowed: [] };
      return null;
    });
    location.hash = "#/settings";
    await route();
    await settle();
    expect(text()).toContain("could not be opened: refused.");
    mockIPC((cmd) => {
      if (cmd === "key_status") return key({ registry: "postgres://db1/tenantry", registry_backend: "postgres", registry_source: "environment" });
      if (cmd === "access") return { caller: null, members: [], allowed: [] };
      return null;
    });
    location.hash = "#/";
    await route();
    location.hash = "#/settings";
    await route();
    await settle();
    expect(document.getElementById("registry-kind")!.textContent).toContain("team registry");
    expect(document.getElementById("registry-kind")!.textContent).toContain("TENANTRY_REGISTRY");
    expect(document.getElementById("registry-url")).toBeNull();
  });
});
