// The Tenantry console's shell (main.ts starts it): the hash router that
// mounts each screen (Svelte components under screens/) on the workspace the
// address names, and the keyboard shortcuts. Every value shown comes from
// IPC; connection strings arrive redacted (the engine never sends them).
import { flushSync, mount, unmount, type Component } from "svelte";
import type { KeyStatus } from "./bindings/KeyStatus";
import type { Operation } from "./bindings/Operation";
import type { ResetPlan } from "./bindings/ResetPlan";
import type { ScanSummary } from "./bindings/ScanSummary";
import type { SyncPlan } from "./bindings/SyncPlan";
import type { TemplateView } from "./bindings/TemplateView";
import type { TenantDetail } from "./bindings/TenantDetail";
import type { TenantDiff } from "./bindings/TenantDiff";
import HistoryChart from "./components/HistoryChart.svelte";
import { fleets, forgetFleets, STATUS_ORDER } from "./fleet.svelte";
import { middle, when } from "./format";
import type { Action } from "./bindings/Action";
import { access, may, refreshAccess } from "./access.svelte";
import { call, errorText, link, setWorkspace, workspace } from "./ipc";
import AddTenant from "./screens/AddTenant.svelte";
import Drift from "./screens/Drift.svelte";
import FirstRun from "./screens/FirstRun.svelte";
import Fleet from "./screens/Fleet.svelte";
import ImportTenants from "./screens/ImportTenants.svelte";
import Reset from "./screens/Reset.svelte";
import Settings from "./screens/Settings.svelte";
import Sync from "./screens/Sync.svelte";
import Templates from "./screens/Templates.svelte";
import Tenant from "./screens/Tenant.svelte";

export { forgetFleets, middle, when };

// ---------------------------------------------------------------- helpers

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  node.append(...children);
  return node;
}

const main = (): HTMLElement => document.getElementById("view")!;

// Each screen is a Svelte component mounted into a host element; once
// show() has replaced the screen, every one whose host left the page is
// unmounted.
type Mounted = ReturnType<typeof mount>;
let mounted: { host: HTMLElement; instance: Mounted }[] = [];

function component<P extends Record<string, unknown>>(c: Component<P>, props: P): HTMLElement {
  const host = el("div", { class: "component" });
  mounted.push({ host, instance: mount(c, { target: host, props }) });
  return host;
}

function show(...nodes: Node[]): void {
  const marked =
    workspace() === "demo"
      ? [
          el(
            "div",
            { class: "demo-banner", role: "note" },
            el("strong", {}, "Demo fleet. "),
            "Seven sample SQLite tenants in a registry of their own: explore, scan, diff, sync and reset freely; nothing here touches your registry. ",
            el("a", { href: "#/" }, "Go to your fleet"),
          ),
        ]
      : [];
  main().replaceChildren(...marked, ...nodes);
  for (const m of mounted) if (!m.host.isConnected) void unmount(m.instance);
  mounted = mounted.filter((m) => m.host.isConnected);
}

function banner(kind: "error" | "info", text: string): HTMLElement {
  return el("div", { class: kind === "error" ? "error" : "info", role: kind === "error" ? "alert" : "status" }, text);
}

// ------------------------------------------------------------------ fleet

/**
 * The fleet's status over its last scans, as a detached element (the
 * component tests draw it on its own).
 */
export function historyChart(history: ScanSummary[]): HTMLElement {
  const host = component(HistoryChart, { history });
  flushSync();
  return host;
}

async function fleetScreen(): Promise<void> {
  const f = fleets[workspace()];
  const unfinished = (await call<Operation[] | null>("unfinished_operations").catch(() => null)) ?? [];
  f.history = (await call<ScanSummary[] | null>("scan_history", { limit: 60 }).catch(() => null)) ?? [];
  try {
    // Whatever was loaded may be stale (a tenant screen may have changed
    // one): the first page again, with the user's filters kept.
    await f.reload();
  } catch (e) {
    f.total = 0;
    if (workspace() === "demo") throw e;
  }
  const empty = f.total === 0 && STATUS_ORDER.every((s) => f.counts[s] === 0);
  if (!empty || workspace() === "demo") {
    show(component(Fleet, { f, unfinished }));
    return;
  }
  await firstRun();
}

/** The user's registry is empty: what Tenantry is for and where to start. */
async function firstRun(): Promise<void> {
  const key = await call<KeyStatus>("key_status").catch((e: unknown) => ({ error_message: errorText(e) }) as Partial<KeyStatus>);
  show(component(FirstRun, { keyError: key.error_message ?? null }));
}

// ---------------------------------------------------------------- add tenant

/** The *Add tenant* form (a Svelte screen): URL, masked password, test, then save. */
async function addTenantScreen(): Promise<void> {
  if (workspace() === "demo") {
    show(banner("info", "The demo registry holds only the built-in tenants. "), el("p", {}, el("a", { href: "#/add" }, "Add a tenant to your registry")));
    return;
  }
  if (refused("tenants", "adding tenants")) return;
  const templates = (await call<TemplateView[] | null>("list_templates").catch(() => null)) ?? [];
  show(component(AddTenant, { templates }));
}

/** *Import tenants* (a Svelte screen): file or central query, preview first. */
function importScreen(): void {
  if (workspace() === "demo") {
    show(banner("info", "The demo registry holds only the built-in tenants. "), el("p", {}, el("a", { href: "#/import" }, "Import tenants into your registry")));
    return;
  }
  if (refused("tenants", "importing tenants")) return;
  show(component(ImportTenants, {}));
  document.getElementById("i-path")?.focus();
}

async function tenantScreen(slug: string): Promise<void> {
  const [detail, listed] = await Promise.all([call<TenantDetail>("tenant_detail", { slug }), call<TemplateView[] | null>("list_templates").catch(() => null)]);
  show(component(Tenant, { detail, templates: listed ?? [] }));
}

// ------------------------------------------------------------------ drift

async function driftScreen(slug: string): Promise<void> {
  show(component(Drift, { diff: await call<TenantDiff>("tenant_diff", { slug }) }));
}

// ------------------------------------------------------------------ reset

/**
 * On a shared registry, a screen whose action the member's role does not
 * allow says so instead of loading (the engine would refuse it anyway).
 */
function refused(action: Action, doing: string): boolean {
  if (may(action)) return false;
  const who = access.now.caller;
  show(
    banner(
      "info",
      who
        ? `You are ${who.name}, a ${who.role} of this shared registry: ${doing} is for ${action === "sync" ? "operators and admins" : "admins"}. Ask an admin for another role (tenantry member role ${who.name} …).`
        : `This registry is shared by its members, and this machine's keyring holds no member key of theirs: ${doing} is for members. Run \`tenantry member key\` and ask an admin to add you.`,
    ),
  );
  return true;
}

async function resetScreen(slug: string): Promise<void> {
  if (refused("reset", "resetting a tenant")) return;
  show(component(Reset, { plan: await call<ResetPlan>("reset_plan", { slug }) }));
}

// ------------------------------------------------------------------- sync

async function syncScreen(slug: string): Promise<void> {
  if (refused("sync", "syncing a tenant")) return;
  show(component(Sync, { plan: await call<SyncPlan>("sync_plan", { slug, keep: { objects: [], note: "" } }) }));
}

// ------------------------------------------------------- templates, settings

async function templatesScreen(): Promise<void> {
  show(component(Templates, { templates: await call<TemplateView[]>("list_templates"), demo: workspace() === "demo" }));
}

async function settingsScreen(): Promise<void> {
  show(component(Settings, { key: await call<KeyStatus>("key_status") }));
}

// ----------------------------------------------------------------- router

export async function route(): Promise<void> {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter((p) => p !== "");
  setWorkspace(parts[0] === "demo" ? "demo" : "own");
  const ws = workspace();
  if (ws === "demo") parts.shift();
  const [screen, slug] = parts;
  await refreshAccess();
  document.body.dataset.workspace = ws;
  // The screen links follow the workspace; the switch marks which one is open.
  document.querySelectorAll<HTMLAnchorElement>("nav a[data-screen]").forEach((a) => {
    const target = a.dataset.screen ?? "";
    a.setAttribute("href", target ? link(target) : link());
    a.classList.toggle("active", target === (screen ?? ""));
  });
  document.querySelectorAll<HTMLAnchorElement>("nav a[data-workspace]").forEach((a) => {
    const on = a.dataset.workspace === ws;
    a.classList.toggle("active", on);
    if (on) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  });
  try {
    const name = slug === undefined ? "" : decodeURIComponent(slug);
    if (screen === "tenant" && slug) await tenantScreen(name);
    else if (screen === "drift" && slug) await driftScreen(name);
    else if (screen === "reset" && slug) await resetScreen(name);
    else if (screen === "sync" && slug) await syncScreen(name);
    else if (screen === "add") await addTenantScreen();
    else if (screen === "import") importScreen();
    else if (screen === "templates") await templatesScreen();
    else if (screen === "settings") await settingsScreen();
    else await fleetScreen();
  } catch (e) {
    show(banner("error", `Could not load this screen: ${errorText(e)}`));
  }
}

/** Wires the router and keyboard shortcuts; main.ts calls it on load. */
export function start(): void {
  window.addEventListener("hashchange", () => void route());
  document.addEventListener("keydown", (ev) => {
    const typing = ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement || ev.target instanceof HTMLTextAreaElement;
    if (ev.key === "/" && !typing) {
      ev.preventDefault();
      document.getElementById("search")?.focus();
    } else if ((ev.key === "Escape" && !typing) || (ev.key === "ArrowLeft" && ev.altKey)) {
      // Back up one level: the screen's own "←" link.
      const back = document.querySelector<HTMLAnchorElement>("#view a.back");
      if (back) {
        ev.preventDefault();
        location.hash = back.getAttribute("href") ?? "#/";
      }
    }
  });
  void route();
}
