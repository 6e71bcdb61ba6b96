// The Tenantry console (screens; main.ts starts it): fleet, tenant, drift, reset, templates and settings
// screens over the engine's commands. Every value shown comes from IPC;
// connection strings arrive redacted (the engine never sends them otherwise).
import { Channel, invoke } from "@tauri-apps/api/core";
import type { KeyStatus } from "./bindings/KeyStatus";
import type { Operation } from "./bindings/Operation";
import type { ResetPlan } from "./bindings/ResetPlan";
import type { ScanProgressEvent } from "./bindings/ScanProgressEvent";
import type { ScanReport } from "./bindings/ScanReport";
import type { ScanSummary } from "./bindings/ScanSummary";
import type { TemplateView } from "./bindings/TemplateView";
import type { TenantDetail } from "./bindings/TenantDetail";
import type { TenantDiff } from "./bindings/TenantDiff";
import type { TenantPage } from "./bindings/TenantPage";
import type { TenantQuery } from "./bindings/TenantQuery";
import type { TenantRecord } from "./bindings/TenantRecord";
import type { TenantSort } from "./bindings/TenantSort";
import type { StatusCounts } from "./bindings/StatusCounts";
import type { SyncPlan } from "./bindings/SyncPlan";
import type { Workspace } from "./bindings/Workspace";
import { call, errorText, link, setWorkspace, workspace } from "./ipc";
import { middle, shortHash, when } from "./format";
import { mount, unmount, type Component } from "svelte";
import ImportTenants from "./screens/ImportTenants.svelte";
import Templates from "./screens/Templates.svelte";
import Tenant from "./screens/Tenant.svelte";
import Reset from "./screens/Reset.svelte";
import Sync from "./screens/Sync.svelte";
import Drift from "./screens/Drift.svelte";

export { middle, when };
import AddTenant from "./screens/AddTenant.svelte";
import FirstRun from "./screens/FirstRun.svelte";
import Settings from "./screens/Settings.svelte";

type Status = TenantRecord["status"];
const STATUS_ORDER: Status[] = ["failed", "customized", "outdated", "unknown", "synced"];
const ROW_HEIGHT = 48;

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

/** A tenant's status (synced, customized, outdated, unknown, failed). */
function badge(status: string): HTMLElement {
  return el("span", { class: `badge status-${status}` }, status);
}

const main = (): HTMLElement => document.getElementById("view")!;

// Svelte screens and parts (the console moves to Svelte a screen at a
// time) are mounted into a host element; once show() has replaced the
// screen, every one whose host left the page is unmounted.
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

/** Rows per page fetched over IPC; the list asks for the pages in view. */
const PAGE = 200;

interface FleetState {
  query: string;
  status: Status | "all";
  server: string;
  template: string;
  sort: TenantSort;
  /** Loaded pages of the current query, by page number. */
  pages: Map<number, TenantRecord[]>;
  /** Pages asked for and not yet answered, with the answer to wait on. */
  loading: Map<number, Promise<void>>;
  /** Bumped when the query changes: answers to an older query are dropped. */
  generation: number;
  /** Tenants matching the query. */
  total: number;
  /** The whole fleet's statuses. */
  counts: StatusCounts;
  servers: string[];
  templates: string[];
  scanning: boolean;
  /** Tenants scanned so far, while a scan runs. */
  progress: { done: number; total: number } | null;
  /** The last scans' whole-fleet counts, oldest first. */
  history: ScanSummary[];
  report: ScanReport | null;
}

/** `3,500 / 10,007 tenants` beside the bar. */
function showProgress(f: FleetState): void {
  const bar = document.getElementById("scan-progress") as HTMLProgressElement | null;
  const text = document.getElementById("scan-count");
  if (!f.progress) return;
  if (bar) {
    bar.max = Math.max(1, f.progress.total);
    bar.value = f.progress.done;
  }
  if (text) text.textContent = `${f.progress.done.toLocaleString("en")} / ${f.progress.total.toLocaleString("en")} tenants`;
}

const noCounts = (): StatusCounts => ({ synced: 0, outdated: 0, customized: 0, unknown: 0, failed: 0 });
const newFleet = (): FleetState => ({
  query: "",
  status: "all",
  server: "all",
  template: "all",
  sort: "status",
  pages: new Map(),
  loading: new Map(),
  generation: 0,
  total: 0,
  counts: noCounts(),
  servers: [],
  templates: [],
  scanning: false,
  progress: null,
  history: [],
  report: null,
});
/** Each workspace keeps its own list, filters and last scan. */
const fleets: Record<Workspace, FleetState> = { own: newFleet(), demo: newFleet() };
let fleet = fleets.own;

/** Forgets both lists and their filters (the component tests start each case clean). */
export function forgetFleets(): void {
  fleets.own = newFleet();
  fleets.demo = newFleet();
  fleet = fleets.own;
}

/** The registry's query for the fleet's current filters. */
function queryOf(f: FleetState, page: number): TenantQuery {
  return {
    search: f.query.trim(),
    status: f.status === "all" ? null : f.status,
    server: f.server === "all" ? null : f.server,
    template: f.template === "all" ? null : f.template,
    sort: f.sort,
    offset: page * PAGE,
    limit: PAGE,
  };
}

/**
 * Loads one page of the fleet's current query from the registry (which
 * filters, counts and sorts; the console never holds the whole fleet).
 * Resolves when the page is in (or was already). A page already on its way
 * is waited for, never asked again, and never resolves at once: a list
 * redrawing when its page arrives must not redraw in a loop while it is on
 * its way. An answer to a query the user has since changed is dropped.
 */
function loadPage(mine: Workspace, page: number): Promise<void> {
  const f = fleets[mine];
  if (f.pages.has(page)) return Promise.resolve();
  const pending = f.loading.get(page);
  if (pending) return pending;
  const generation = f.generation;
  const load = (async () => {
    try {
      const p = await invoke<TenantPage>("registry_tenant_page", { workspace: mine, query: queryOf(f, page) });
      if (f.generation !== generation) return;
      f.pages.set(page, p.rows);
      f.total = p.total;
      f.counts = p.counts;
      f.servers = p.servers;
      f.templates = p.templates;
    } finally {
      if (f.generation === generation) f.loading.delete(page);
    }
  })();
  f.loading.set(page, load);
  return load;
}

/** Starts the current query over: drops the loaded pages and loads the first. */
async function reloadFleet(mine: Workspace): Promise<void> {
  const f = fleets[mine];
  f.generation += 1;
  f.pages.clear();
  f.loading.clear();
  await loadPage(mine, 0);
}

/** Row `i` of the query, if its page is loaded. */
function rowAt(f: FleetState, i: number): TenantRecord | undefined {
  return f.pages.get(Math.floor(i / PAGE))?.[i % PAGE];
}

function summary(counts: StatusCounts): HTMLElement {
  const box = el("section", { class: "summary", "aria-live": "polite" });
  for (const s of STATUS_ORDER) box.append(el("span", { class: `chip status-${s}` }, el("strong", {}, counts[s].toLocaleString("en")), ` ${s}`));
  return box;
}

/** Redraws the rows in view of the list on screen (after a page or scan batch arrives). */
let redrawList: () => void = () => {};

/**
 * A virtualised list over the registry's pages: only the rows in view are
 * in the DOM, and only their pages are fetched; a row whose page is on its
 * way shows as a placeholder.
 */
export function tenantList(f: FleetState, mine: Workspace = workspace()): HTMLElement {
  const viewport = el("div", { class: "list", role: "grid", "aria-label": "Tenants", "aria-rowcount": String(f.total) });
  const spacer = el("div", { class: "spacer", role: "rowgroup" });
  spacer.style.height = `${f.total * ROW_HEIGHT}px`;
  // Column headers; the sortable ones sort on click (and say how they sort).
  const head = el("div", { class: "head", role: "row" });
  const columns: [string, TenantSort | null][] = [["Tenant", "slug"], ["Status", "status"], ["Template", null], ["Hash", null], ["Last sync", "last_sync"], ["Location", null]];
  for (const [label, key] of columns) {
    if (!key) {
      head.append(el("span", { class: "cell", role: "columnheader" }, label));
      continue;
    }
    const on = f.sort === key;
    const button = el("button", { type: "button", class: "sort", "data-sort": key }, label, on ? " ▾" : "");
    button.addEventListener("click", () => {
      f.sort = key;
      void refilter(mine);
    });
    head.append(el("span", { class: "cell", role: "columnheader", "aria-sort": on ? (key === "last_sync" ? "descending" : "ascending") : "none" }, button));
  }
  viewport.append(head, spacer);
  const cell = (attrs: Record<string, string>, ...children: (Node | string)[]): HTMLElement =>
    el("span", { role: "gridcell", ...attrs, class: `cell ${attrs.class ?? ""}`.trim() }, ...children);
  const render = (): void => {
    const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_HEIGHT) - 5);
    const count = Math.min(f.total - first, Math.ceil(Math.max(viewport.clientHeight, 800) / ROW_HEIGHT) + 10);
    const focused = (document.activeElement as HTMLElement | null)?.closest?.(".row")?.getAttribute("data-slug");
    const rows: HTMLElement[] = [];
    const missing = new Set<number>();
    for (let i = first; i < first + count; i++) {
      const r = rowAt(f, i);
      let row: HTMLElement;
      if (!r) {
        // A loaded page short of this row (the fleet shrank since) is not
        // asked again: the next reload answers it.
        if (!f.pages.has(Math.floor(i / PAGE))) missing.add(Math.floor(i / PAGE));
        row = el("div", { class: "row placeholder", role: "row", "aria-busy": "true" }, cell({ class: "name muted" }, "Loading…"));
      } else {
        // A row of grid cells; the tenant's link stretches over the whole
        // row (CSS), so a click anywhere opens it and the keys move
        // between the links.
        row = el(
          "div",
          { class: "row", role: "row", "data-slug": r.slug, "data-status": r.status },
          cell({ class: "name" }, el("a", { class: "row-link", href: link("tenant", r.slug) }, el("strong", {}, r.display_name), el("small", {}, r.slug))),
          cell({ class: "status", title: r.status_reason ?? r.status }, badge(r.status), r.status_reason ? el("small", { class: "reason" }, r.status_reason) : ""),
          cell({}, `${r.template ?? "—"} ${r.template_version ?? ""}`),
          cell({ class: "mono" }, shortHash(r.current_hash)),
          cell({}, when(r.last_sync_at)),
          cell({ class: "mono muted", title: r.location }, middle(r.location)),
        );
      }
      row.setAttribute("aria-rowindex", String(i + 2));
      row.style.top = `${i * ROW_HEIGHT}px`;
      rows.push(row);
    }
    spacer.replaceChildren(...rows);
    // Keep the keyboard where it was when rows are redrawn under it.
    if (focused) spacer.querySelector<HTMLAnchorElement>(`.row[data-slug="${CSS.escape(focused)}"] a.row-link`)?.focus({ preventScroll: true });
    for (const page of missing) {
      void loadPage(mine, page)
        .then(() => {
          if (viewport.isConnected) render();
        })
        .catch((e: unknown) => {
          lastError = `Could not load the tenants: ${errorText(e)}`;
        });
    }
  };
  viewport.addEventListener("scroll", render);
  viewport.addEventListener("keydown", (ev) => {
    const rowsInView = [...viewport.querySelectorAll<HTMLAnchorElement>("a.row-link")];
    const at = rowsInView.indexOf(document.activeElement as HTMLAnchorElement);
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      const next = rowsInView[Math.min(rowsInView.length - 1, Math.max(0, at + (ev.key === "ArrowDown" ? 1 : -1)))];
      next?.focus();
      next?.scrollIntoView({ block: "nearest" });
    }
  });
  redrawList = render;
  render();
  return viewport;
}

/** After a filter, search or sort change: load the first page, then redraw the list. */
async function refilter(mine: Workspace): Promise<void> {
  try {
    await reloadFleet(mine);
  } catch (e) {
    alertError("Could not load the tenants", e);
  }
  if (workspace() === mine && location.hash.replace(/^#\/?(demo\/?)?/, "") === "") renderFleet();
}

async function scanFleet(): Promise<void> {
  // The scan belongs to the workspace it started in, even if the user
  // switches away while it runs.
  const mine = workspace();
  const fleet = fleets[mine];
  const here = (): boolean => workspace() === mine && location.hash.replace(/^#\/?(demo\/?)?/, "") === "";
  if (fleet.scanning) return;
  fleet.scanning = true;
  renderFleet();
  const channel = new Channel<ScanProgressEvent>();
  channel.onmessage = (p) => {
    fleet.progress = { done: p.done, total: p.total };
    fleet.counts = p.fleet;
    showProgress(fleet);
    if (p.finished.length === 0) return;
    // Results stream in: update the loaded rows and the counts in place,
    // keeping the user's place (and focus) in the list.
    const bySlug = new Map(p.finished.map((r) => [r.slug, r]));
    for (const rows of fleet.pages.values()) {
      for (const row of rows) {
        const r = bySlug.get(row.slug);
        if (!r) continue;
        row.status = r.status;
        row.status_reason = r.reason;
        row.current_hash = r.hash ?? row.current_hash;
      }
    }
    if (here()) {
      redrawList();
      document.querySelector(".summary")?.replaceWith(summary(fleet.counts));
    }
  };
  try {
    fleet.report = await invoke<ScanReport>("scan_fleet", { workspace: mine, onProgress: channel });
  } catch (e) {
    fleet.report = null;
    alertError("The scan failed", e);
  }
  try {
    fleet.history = (await invoke<ScanSummary[] | null>("scan_history", { workspace: mine, limit: 60 }).catch(() => null)) ?? fleet.history;
    await reloadFleet(mine);
  } catch (e) {
    alertError("Could not reload the tenants", e);
  } finally {
    fleet.scanning = false;
    fleet.progress = null;
    if (here()) renderFleet();
  }
}

let lastError: string | null = null;
function alertError(what: string, e: unknown): void {
  lastError = `${what}: ${errorText(e)}`;
}

const SVG = "http://www.w3.org/2000/svg";
/** Bottom to top: the healthy share at the base. */
const CHART_ORDER: Status[] = ["synced", "outdated", "customized", "unknown", "failed"];

/**
 * The fleet's status over its last scans: one stacked bar per scan, each
 * status's share of the fleet, with the counts in each bar's tooltip.
 */
export function historyChart(history: ScanSummary[]): HTMLElement {
  const box = el("figure", { class: "history", id: "fleet-history" });
  if (history.length === 0) {
    box.append(el("figcaption", { class: "muted" }, "No scan yet: the chart of the fleet over time starts with the first scan (the CLI's nightly scans count too)."));
    return box;
  }
  const width = 360;
  const height = 56;
  const slot = width / Math.max(history.length, 12);
  const bar = Math.max(2, slot - 2);
  const first = history[0];
  const last = history[history.length - 1];
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `Fleet status over the last ${history.length} scan${history.length === 1 ? "" : "s"}: synced went from ${first.synced} of ${first.tenants} to ${last.synced} of ${last.tenants}; ${last.customized} customized, ${last.outdated} outdated, ${last.failed} failed now.`);
  history.forEach((h, i) => {
    const g = document.createElementNS(SVG, "g");
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${when(h.at)} by ${h.actor}${h.shard ? ` (shard ${h.shard})` : ""}: ${CHART_ORDER.map((s) => `${h[s]} ${s}`).join(", ")} (${h.scanned} of ${h.tenants} read${h.cancelled ? ", cancelled" : ""})`;
    g.append(title);
    let y = height;
    for (const s of CHART_ORDER) {
      const part = h.tenants ? (h[s] / h.tenants) * height : 0;
      if (part <= 0) continue;
      const rect = document.createElementNS(SVG, "rect");
      rect.setAttribute("x", (i * slot).toFixed(1));
      rect.setAttribute("width", bar.toFixed(1));
      rect.setAttribute("y", (y - part).toFixed(1));
      rect.setAttribute("height", part.toFixed(1));
      rect.setAttribute("class", `fill-${s}`);
      g.append(rect);
      y -= part;
    }
    svg.append(g);
  });
  box.append(svg, el("figcaption", { class: "muted" }, `Last ${history.length} scan${history.length === 1 ? "" : "s"} · last ${when(last.at)} by ${last.actor}`));
  return box;
}

/** How many tenants the list holds, and of how many when filtered. */
function matchText(f: FleetState): string {
  const all = STATUS_ORDER.reduce((n, s) => n + f.counts[s], 0);
  return f.total === all ? `${all.toLocaleString("en")} tenants` : `${f.total.toLocaleString("en")} of ${all.toLocaleString("en")} tenants`;
}

function renderFleet(): void {
  const mine = workspace();
  const search = el("input", { type: "search", placeholder: "Search tenants (/)", "aria-label": "Search tenants", id: "search" });
  search.value = fleet.query;
  // The registry searches; ask once typing pauses, then swap the list only
  // (the box keeps its focus and caret).
  let typing: ReturnType<typeof setTimeout> | undefined;
  search.addEventListener("input", () => {
    fleet.query = search.value;
    clearTimeout(typing);
    typing = setTimeout(() => {
      const f = fleets[mine];
      void reloadFleet(mine)
        .catch((e: unknown) => alertError("Could not search the tenants", e))
        .then(() => {
          if (workspace() !== mine || f.query !== search.value) return;
          document.querySelector(".list")?.replaceWith(tenantList(f, mine));
          const n = document.getElementById("match-count");
          if (n) n.textContent = matchText(f);
        });
    }, 120);
  });
  // Down (or Enter) from the search box goes into the list.
  search.addEventListener("keydown", (ev) => {
    if (ev.key !== "ArrowDown" && ev.key !== "Enter") return;
    const first = document.querySelector<HTMLAnchorElement>(".list a.row-link");
    if (!first) return;
    ev.preventDefault();
    if (ev.key === "Enter") location.hash = first.getAttribute("href") ?? "#/";
    else first.focus();
  });
  const status = el("select", { "aria-label": "Filter by status" });
  for (const s of ["all", ...STATUS_ORDER]) status.append(el("option", { value: s }, s === "all" ? "All statuses" : s));
  status.value = fleet.status;
  status.addEventListener("change", () => {
    fleet.status = status.value as FleetState["status"];
    void refilter(mine);
  });
  const choice = (label: string, values: string[], current: string, set: (v: string) => void): HTMLSelectElement => {
    const select = el("select", { "aria-label": label });
    select.append(el("option", { value: "all" }, `All ${label.toLowerCase()}s`));
    for (const v of values) select.append(el("option", { value: v }, v));
    select.value = current;
    select.addEventListener("change", () => {
      set(select.value);
      void refilter(mine);
    });
    return select;
  };
  const server = choice("Server", fleet.servers, fleet.server, (v) => (fleet.server = v));
  const template = choice("Template", fleet.templates, fleet.template, (v) => (fleet.template = v));
  const scan = el("button", { type: "button", id: "scan", class: "primary" }, fleet.scanning ? "Scanning…" : "Scan fleet");
  scan.toggleAttribute("disabled", fleet.scanning);
  scan.addEventListener("click", () => void scanFleet());
  const cancel = el("button", { type: "button", id: "cancel-scan" }, "Cancel");
  cancel.hidden = !fleet.scanning;
  cancel.addEventListener("click", () => void call("cancel_scan"));
  const progress = el("progress", { id: "scan-progress", "aria-label": "Scan progress" });
  progress.hidden = !fleet.scanning;
  const count = el("span", { id: "scan-count", class: "muted num", "aria-live": "polite" });
  count.hidden = !fleet.scanning;
  const matching = el("span", { id: "match-count", class: "muted num" }, matchText(fleet));
  const adding =
    mine === "own"
      ? [el("a", { class: "button", href: "#/add", id: "fleet-add" }, "Add tenant…"), el("a", { class: "button", href: "#/import", id: "fleet-import" }, "Import…")]
      : [];
  const toolbar = el("div", { class: "toolbar" }, search, status, server, template, scan, cancel, progress, count, matching, ...adding);
  const nodes: Node[] = [el("div", { class: "overview" }, summary(fleet.counts), historyChart(fleet.history)), toolbar];
  for (const o of unfinished) {
    nodes.push(
      banner(
        "error",
        `Operation ${o.id} (${o.kind} of ${o.tenant_slug}, started ${when(o.started_at)} by ${o.actor}@${o.host ?? "?"}) never finished` +
          (o.last_step ? ` (last step: ${o.last_step}). ` : ". ") +
          `Its backup: ${o.backup ?? "none"}. Check the tenant, then run \`tenantry operations resolve ${o.id} --adopt\` to record the backup, or --abandon.`,
      ),
    );
  }
  if (lastError) nodes.push(banner("error", lastError));
  if (fleet.report) {
    const r = fleet.report;
    nodes.push(banner("info", `Scanned ${r.tenants.length} tenants in ${r.elapsed_ms} ms${r.cancelled ? " (cancelled)" : ""}; ${r.reused} unchanged since the last check.`));
    // Tenants sharing one customisation: one line each, opened on demand
    // (a group can hold hundreds of slugs).
    for (const g of r.groups.filter((g) => g.tenants.length > 1)) {
      const names = el("p", { class: "group-tenants" });
      const shown = g.tenants.slice(0, 200);
      names.append(...shown.flatMap((slug, i) => [i ? ", " : "", el("a", { href: link("tenant", slug) }, slug)]));
      if (g.tenants.length > shown.length) names.append(` and ${(g.tenants.length - shown.length).toLocaleString("en")} more`);
      const only = el("button", { type: "button", class: "link" }, "Show only these in the list");
      only.addEventListener("click", () => {
        fleet.query = g.hash;
        void refilter(mine);
      });
      nodes.push(el("details", { class: "group" }, el("summary", {}, `${g.tenants.length.toLocaleString("en")} tenants share customisation ${shortHash(g.hash)}`), names, only));
    }
  }
  nodes.push(tenantList(fleet, mine));
  show(...nodes);
  showProgress(fleet);
}

/** Operations the journal shows as never finished (empty when it cannot be read). */
let unfinished: Operation[] = [];

async function fleetScreen(): Promise<void> {
  unfinished = (await call<Operation[] | null>("unfinished_operations").catch(() => null)) ?? [];
  fleet.history = (await call<ScanSummary[] | null>("scan_history", { limit: 60 }).catch(() => null)) ?? [];
  try {
    // Whatever was loaded may be stale (a tenant screen may have changed
    // one): the first page again, with the user's filters kept.
    await reloadFleet(workspace());
  } catch (e) {
    fleet.total = 0;
    if (workspace() === "demo") throw e;
  }
  const empty = fleet.total === 0 && STATUS_ORDER.every((s) => fleet.counts[s] === 0);
  if (!empty || workspace() === "demo") {
    renderFleet();
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
  const templates = (await call<TemplateView[] | null>("list_templates").catch(() => null)) ?? [];
  show(component(AddTenant, { templates }));
}

/** *Import tenants* (a Svelte screen): file or central query, preview first. */
function importScreen(): void {
  if (workspace() === "demo") {
    show(banner("info", "The demo registry holds only the built-in tenants. "), el("p", {}, el("a", { href: "#/import" }, "Import tenants into your registry")));
    return;
  }
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

async function resetScreen(slug: string): Promise<void> {
  show(component(Reset, { plan: await call<ResetPlan>("reset_plan", { slug }) }));
}

// ------------------------------------------------------------------- sync

async function syncScreen(slug: string): Promise<void> {
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
  fleet = fleets[ws];
  const [screen, slug] = parts;
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
