// The Tenantry console (screens; main.ts starts it): fleet, tenant, drift, reset, templates and settings
// screens over the engine's commands. Every value shown comes from IPC;
// connection strings arrive redacted (the engine never sends them otherwise).
import { Channel, invoke } from "@tauri-apps/api/core";
import type { AuditResult } from "./bindings/AuditResult";
import type { IpcError } from "./bindings/IpcError";
import type { KeyStatus } from "./bindings/KeyStatus";
import type { Operation } from "./bindings/Operation";
import type { ObjectDiff } from "./bindings/ObjectDiff";
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
import type { HealthReport } from "./bindings/HealthReport";
import type { ResetOutcome } from "./bindings/ResetOutcome";
import type { SyncPlan } from "./bindings/SyncPlan";
import type { SyncOutcome } from "./bindings/SyncOutcome";
import type { TenantForm } from "./bindings/TenantForm";
import type { CaptureForm } from "./bindings/CaptureForm";
import type { CaptureReport } from "./bindings/CaptureReport";
import type { Workspace } from "./bindings/Workspace";
import { ddlMerge, type Dialect } from "./ddl-merge";

type Status = TenantRecord["status"];
const STATUS_ORDER: Status[] = ["failed", "customized", "outdated", "unknown", "synced"];
const ROW_HEIGHT = 48;

// -------------------------------------------------------------- workspace

/**
 * Which registry the current screen is about: the user's own (`#/…`) or the
 * built-in demo fleet, which has a registry of its own (`#/demo/…`). Every
 * command names it, so nothing hides in session state.
 */
let ws: Workspace = "own";

/** Invokes an engine command on the current workspace. */
function call<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
  return invoke<T>(cmd, { workspace: ws, ...args });
}

/** A link to a screen of the current workspace. */
function link(...path: string[]): string {
  return `#/${ws === "demo" ? "demo/" : ""}${path.map(encodeURIComponent).join("/")}`;
}

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

function isIpcError(e: unknown): e is IpcError {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

function errorText(e: unknown): string {
  return isIpcError(e) ? `${e.message} (${e.code})` : String(e);
}

/** A tenant's status (synced, customized, outdated, unknown, failed). */
function badge(status: string): HTMLElement {
  return el("span", { class: `badge status-${status}` }, status);
}

/** An object's place in a diff: badges of their own, never a tenant status. */
function presenceBadge(presence: ObjectDiff["presence"]): HTMLElement {
  return el("span", { class: `badge presence-${presence}` }, presence);
}

/** An audit row's result (ok, refused, failed), outlined so it never reads as a status. */
function resultBadge(result: AuditResult): HTMLElement {
  return el("span", { class: `badge result result-${result}` }, result);
}

function shortHash(hash: string | null): string {
  if (!hash) return "—";
  const [format, hex] = hash.split(":");
  return `${format}:${(hex ?? "").slice(0, 12)}…`;
}

/**
 * One timestamp format everywhere: local time with its zone,
 * `2026-12-05 21:49:48 CET`. The engine stores UTC (ISO 8601).
 */
export function when(iso: string | null | undefined, never = "never"): string {
  if (!iso) return never;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const two = (n: number): string => String(n).padStart(2, "0");
  const zone = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(d).find((p) => p.type === "timeZoneName")?.value ?? "";
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${zone}`.trim();
}

/** Keeps both ends of a long value (`sqlite:/home/…/tenants/acme.db`); the full value goes in a tooltip. */
export function middle(text: string, max = 48): string {
  if (text.length <= max) return text;
  const tail = Math.ceil((max - 1) * 0.6);
  return `${text.slice(0, max - 1 - tail)}…${text.slice(text.length - tail)}`;
}

const main = (): HTMLElement => document.getElementById("view")!;

function show(...nodes: Node[]): void {
  const marked =
    ws === "demo"
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
}

function banner(kind: "error" | "info", text: string): HTMLElement {
  return el("div", { class: kind === "error" ? "error" : "info", role: kind === "error" ? "alert" : "status" }, text);
}

/**
 * An action that needs the tenant slug typed exactly: the button stays
 * disabled until the text matches byte for byte.
 */
export function confirmBySlug(slug: string, label: string, run: () => Promise<string>): HTMLElement {
  const input = el("input", { type: "text", autocomplete: "off", spellcheck: "false", "aria-label": `Type ${slug} to ${label.toLowerCase()}`, placeholder: `type ${slug}` });
  const button = el("button", { type: "button", disabled: "" }, label);
  const out = el("span", { class: "muted", "aria-live": "polite" });
  input.addEventListener("input", () => button.toggleAttribute("disabled", input.value !== slug));
  button.addEventListener("click", async () => {
    button.setAttribute("disabled", "");
    out.textContent = "Working…";
    try {
      out.textContent = await run();
    } catch (e) {
      out.textContent = errorText(e);
    }
  });
  return el("span", { class: "confirm" }, input, button, out);
}

/**
 * A wizard's last step: the slug typed exactly enables the button; the
 * outcome (or the error, with the input open again) lands in a result box
 * that is scrolled into view and focused.
 */
function wizardConfirmation(
  slug: string,
  o: { id: string; label: string; kind: "primary" | "danger"; blocked: boolean; busy: string; run: (typed: string) => Promise<Node>; onError?: (e: unknown) => Node | null },
): { typed: HTMLInputElement; go: HTMLButtonElement; result: HTMLElement } {
  const typed = el("input", { type: "text", id: "confirm-slug", autocomplete: "off", spellcheck: "false", "aria-label": "Type the tenant slug to confirm" });
  const go = el("button", { type: "button", class: o.kind, id: `do-${o.id}`, disabled: "" }, o.label);
  typed.addEventListener("input", () => go.toggleAttribute("disabled", typed.value !== slug || o.blocked));
  const result = el("div", { id: `${o.id}-result`, "aria-live": "polite", tabindex: "-1" });
  const keepInView = (): void => {
    result.scrollIntoView?.({ block: "nearest" });
    result.focus({ preventScroll: true });
  };
  go.addEventListener("click", async () => {
    go.setAttribute("disabled", "");
    typed.setAttribute("disabled", "");
    result.replaceChildren(el("p", {}, o.busy));
    keepInView();
    try {
      result.replaceChildren(await o.run(typed.value), el("p", {}, el("a", { href: link("tenant", slug) }, "Back to the tenant")));
    } catch (e) {
      result.replaceChildren(banner("error", errorText(e)), ...[o.onError?.(e)].filter((n): n is Node => !!n));
      typed.removeAttribute("disabled");
    }
    keepInView();
  });
  return { typed, go, result };
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
export function tenantList(f: FleetState, mine: Workspace = ws): HTMLElement {
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
  if (ws === mine && location.hash.replace(/^#\/?(demo\/?)?/, "") === "") renderFleet();
}

async function scanFleet(): Promise<void> {
  // The scan belongs to the workspace it started in, even if the user
  // switches away while it runs.
  const mine = ws;
  const fleet = fleets[mine];
  const here = (): boolean => ws === mine && location.hash.replace(/^#\/?(demo\/?)?/, "") === "";
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
  const mine = ws;
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
          if (ws !== mine || f.query !== search.value) return;
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
  const toolbar = el("div", { class: "toolbar" }, search, status, server, template, scan, cancel, progress, count, matching);
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
    await reloadFleet(ws);
  } catch (e) {
    fleet.total = 0;
    if (ws === "demo") throw e;
  }
  const empty = fleet.total === 0 && STATUS_ORDER.every((s) => fleet.counts[s] === 0);
  if (!empty || ws === "demo") {
    renderFleet();
    return;
  }
  await firstRun();
}

/** The user's registry is empty: what Tenantry is for and where to start. */
async function firstRun(): Promise<void> {
  const key = await call<KeyStatus>("key_status").catch((e: unknown) => ({ error_message: errorText(e) }) as Partial<KeyStatus>);
  const card = (title: string, text: string, action: HTMLElement): HTMLElement => el("section", { class: "card" }, el("h3", {}, title), el("p", {}, text), action);
  show(
    el("h2", {}, "Welcome to Tenantry"),
    el("p", { class: "lead" }, "Tenantry keeps a registry of your tenants' databases, checks each one against the template it was provisioned from, shows the drift table by table, and brings a tenant back with a backup first. Your registry is empty; start here."),
    key.error_message
      ? banner("error", `Your registry keeps connection strings encrypted under a key in the OS keyring, which is not available: ${key.error_message}. The demo works without it.`)
      : el("span"),
    el(
      "div",
      { class: "cards" },
      card("Explore the demo", "Seven sample tenants — synced, customized, outdated and never initialised — in a registry of their own. Nothing you do there touches yours.", el("a", { class: "button primary", href: "#/demo", id: "open-demo" }, "Open the demo fleet")),
      card("Add a tenant", "Give a connection URL and, in a masked field, its password; test the connection before anything is saved.", el("a", { class: "button", href: "#/add", id: "add-tenant" }, "Add a tenant…")),
      card("Import a fleet", "Many tenants at once from CSV, JSON or a query on your central database, with a dry run first:", el("pre", { class: "cmd" }, "tenantry tenant import tenants.csv --dry-run")),
      card("Add a template", "A folder of versioned migrations, measured in a scratch database and linted:", el("pre", { class: "cmd" }, "tenantry template add ./template --name saas \\\n  --engine postgres --scratch <url>")),
    ),
  );
}

// ---------------------------------------------------------------- add tenant

/** The *Add tenant* form: URL, masked password, test, then save. */
async function addTenantScreen(): Promise<void> {
  if (ws === "demo") {
    show(banner("info", "The demo registry holds only the built-in tenants. "), el("p", {}, el("a", { href: "#/add" }, "Add a tenant to your registry")));
    return;
  }
  const templates = (await call<TemplateView[] | null>("list_templates").catch(() => null)) ?? [];
  const field = (label: string, input: HTMLElement, hint = ""): HTMLElement =>
    el("label", { class: "field" }, el("span", {}, label), input, hint ? el("small", { class: "muted" }, hint) : "");
  const slug = el("input", { type: "text", id: "f-slug", required: "", autocomplete: "off", spellcheck: "false", placeholder: "acme" });
  const name = el("input", { type: "text", id: "f-name", placeholder: "Acme Corp (defaults to the slug)" });
  const url = el("input", { type: "text", id: "f-url", required: "", autocomplete: "off", spellcheck: "false", placeholder: "postgres://app@db1:5432/fleet" });
  const password = el("input", { type: "password", id: "f-password", autocomplete: "new-password", placeholder: "leave empty if the URL needs none" });
  const schema = el("input", { type: "text", id: "f-schema", autocomplete: "off", spellcheck: "false", placeholder: "tenant_acme" });
  const template = el("select", { id: "f-template" });
  template.append(el("option", { value: "" }, "No template"));
  for (const t of templates) template.append(el("option", { value: t.summary.name }, `${t.summary.name} (${t.summary.engine})`));
  const version = el("select", { id: "f-version" });
  const fillVersions = (): void => {
    const t = templates.find((x) => x.summary.name === template.value);
    version.replaceChildren(...(t ? t.summary.versions.map((v) => el("option", { value: v.version }, v.version)).reverse() : [el("option", { value: "" }, "—")]));
    version.toggleAttribute("disabled", !t);
  };
  template.addEventListener("change", fillVersions);
  fillVersions();
  const form = (): TenantForm => ({
    slug: slug.value.trim(),
    display_name: name.value.trim() || slug.value.trim(),
    url: url.value.trim(),
    password: password.value === "" ? null : password.value,
    schema: schema.value.trim() || null,
    template: template.value || null,
    template_version: template.value ? version.value : null,
    domains: [],
    notes: "",
  });
  const out = el("div", { id: "add-result", "aria-live": "polite" });
  const test = el("button", { type: "button", id: "test-connection" }, "Test connection");
  const save = el("button", { type: "submit", class: "primary", id: "save-tenant" }, "Add tenant");
  test.addEventListener("click", async () => {
    out.replaceChildren(el("p", { class: "muted" }, "Connecting…"));
    try {
      const h = await invoke<HealthReport>("test_connection", { form: form() });
      const failed = h.checks.filter((c) => !c.ok);
      // A schema-per-tenant schema that does not exist yet is what a new
      // tenant looks like: the guard creates it. Anything else is a failure.
      const onlySchema = failed.length === 1 && failed[0].name === "schema";
      const verdict = h.healthy
        ? banner("info", `Connected to ${h.location}: ${h.server_version ?? ""}`)
        : onlySchema
          ? banner("info", `Connected to ${h.location}. ${failed[0].detail}.`)
          : banner("error", `Could not use ${h.location}: ${failed[0]?.name ?? "check"} failed — ${failed[0]?.detail ?? "no detail"}.`);
      out.replaceChildren(verdict, checksTable(h));
    } catch (e) {
      out.replaceChildren(banner("error", errorText(e)));
    }
    out.scrollIntoView?.({ block: "nearest" });
  });
  const body = el(
    "form",
    { class: "form", "aria-label": "Add a tenant" },
    field("Slug", slug, "lower case, digits, - and _; how the CLI names the tenant"),
    field("Display name", name),
    field("Connection URL", url, "postgres://, mysql://, mariadb:// or sqlite:PATH — without the password"),
    field("Password", password, "kept only encrypted in your registry, never shown again"),
    field("Schema", schema, "PostgreSQL schema-per-tenant only; empty for the database's own"),
    field("Template", template),
    field("Version", version, "the template version the tenant was provisioned with"),
    el("div", { class: "toolbar" }, test, save),
  );
  body.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    save.setAttribute("disabled", "");
    try {
      const t = await call<TenantRecord>("add_tenant", { form: form() });
      password.value = "";
      location.hash = link("tenant", t.slug);
    } catch (e) {
      out.replaceChildren(banner("error", errorText(e)));
      out.scrollIntoView?.({ block: "nearest" });
    } finally {
      save.removeAttribute("disabled");
    }
  });
  show(el("p", {}, el("a", { href: "#/", class: "back" }, "← Fleet")), el("h2", {}, "Add a tenant"), body, out);
  slug.focus();
}

/** A health report's checks, one row each. */
function checksTable(h: HealthReport): HTMLElement {
  const table = el("table", { class: "tenants", "aria-label": "Checks" });
  for (const c of h.checks) table.append(el("tr", {}, el("td", {}, c.ok ? "✔" : "✘"), el("td", {}, c.name), el("td", {}, c.detail), el("td", { class: "num" }, c.millis === null ? "" : `${c.millis} ms`)));
  return table;
}

// ----------------------------------------------------------------- tenant

/** Template versions after `current`, in the template's order. */
function newerVersions(templates: TemplateView[], t: TenantRecord): string[] {
  const tpl = templates.find((x) => x.summary.name === t.template && x.summary.engine === t.engine);
  if (!tpl) return [];
  const all = tpl.summary.versions.map((v) => v.version);
  const at = all.indexOf(t.template_version ?? "");
  return at < 0 ? [] : all.slice(at + 1);
}

async function tenantScreen(slug: string): Promise<void> {
  const [d, listed] = await Promise.all([call<TenantDetail>("tenant_detail", { slug }), call<TemplateView[] | null>("list_templates").catch(() => null)]);
  const templates = listed ?? [];
  const t = d.tenant;
  const facts = el(
    "dl",
    { class: "facts" },
    el("dt", {}, "Status"), el("dd", {}, badge(t.status), t.status_reason ? ` ${t.status_reason}` : ""),
    el("dt", {}, "Location"), el("dd", { class: "mono" }, t.location),
    el("dt", {}, "Engine"), el("dd", {}, `${t.engine}, ${t.isolation} per tenant${t.schema_name ? ` (schema ${t.schema_name})` : ""}`),
    el("dt", {}, "Template"), el("dd", {}, `${t.template ?? "—"} ${t.template_version ?? ""}`),
    el("dt", {}, "Initial hash"), el("dd", { class: "mono" }, t.initial_hash ?? "—"),
    el("dt", {}, "Current hash"), el("dd", { class: "mono" }, t.current_hash ?? "—"),
    el("dt", {}, "Last sync"), el("dd", {}, when(t.last_sync_at)),
    el("dt", {}, "Domains"), el("dd", {}, t.domains.join(", ") || "—"),
  );
  const healthBox = el("div", { id: "health" });
  const healthBtn = el("button", { type: "button", id: "run-health" }, "Run health check");
  healthBtn.addEventListener("click", async () => {
    healthBox.replaceChildren(el("p", { class: "muted" }, "Checking…"));
    try {
      const h = await call<HealthReport>("tenant_health", { slug });
      healthBox.replaceChildren(banner(h.healthy ? "info" : "error", h.healthy ? "Healthy" : "Unhealthy"), checksTable(h));
    } catch (e) {
      healthBox.replaceChildren(banner("error", errorText(e)));
    }
  });
  // Only what makes sense for the status: a synced tenant has nothing to
  // repair, accept or reset; a failed one must be reachable first.
  const drifted = t.status === "customized" || t.status === "outdated";
  const canReset = drifted || t.status === "unknown";
  const newer = newerVersions(templates, t);
  const top: HTMLElement[] = [healthBtn];
  if (t.status !== "failed" && t.template) top.push(el("a", { class: "button", href: link("drift", slug) }, "Drift"));
  if (d.stopped_sync) top.push(el("a", { class: "button primary", href: link("sync", slug), id: "sync-link" }, "Finish the stopped sync…"));
  else if (drifted) top.push(el("a", { class: "button", href: link("sync", slug), id: "sync-link" }, "Sync, keeping data…"));
  if (canReset) top.push(el("a", { class: "button danger", href: link("reset", slug) }, "Reset…"));
  const sections: Node[] = [];
  if (drifted) {
    const repair = confirmBySlug(slug, "Repair", async () => {
      const o = await call<{ created: string[]; not_repaired: string[] }>("repair_tenant", { slug });
      return `Created: ${o.created.join(", ") || "nothing"}. Left alone: ${o.not_repaired.join("; ") || "nothing"}.`;
    });
    sections.push(el("div", { class: "toolbar" }, el("strong", {}, "Repair"), el("span", { class: "muted" }, "create only the missing template objects"), repair));
  }
  if (t.status === "customized") {
    const note = el("input", { type: "text", placeholder: "Why this customisation is accepted", "aria-label": "Acceptance note" });
    const accept = confirmBySlug(slug, "Accept as baseline", async () => {
      const hash = await call<string>("accept_customisation", { slug, note: note.value });
      return `Accepted ${shortHash(hash)}.`;
    });
    sections.push(el("div", { class: "toolbar" }, el("strong", {}, "Accept"), note, accept));
  }
  if (newer.length > 0 && t.status !== "failed") {
    const version = el("select", { "aria-label": "Target template version", id: "upgrade-to" });
    for (const v of [...newer].reverse()) version.append(el("option", { value: v }, v));
    const allow = el("input", { type: "checkbox", id: "allow-customized" });
    const upgrade = confirmBySlug(slug, "Upgrade", async () => {
      const o = await call<{ from: string; to: string; status: string; warning: string | null }>("upgrade_tenant", { slug, to: version.value, allowCustomized: allow.checked });
      return `Upgraded ${o.from} → ${o.to}: ${o.status}.${o.warning ? ` ${o.warning}` : ""}`;
    });
    const parts: (Node | string)[] = [el("strong", {}, "Upgrade"), `from ${t.template_version} to`, version];
    if (t.status === "customized") parts.push(el("label", { for: "allow-customized" }, allow, " even if customized"));
    sections.push(el("div", { class: "toolbar" }, ...parts, upgrade));
  }
  // The drift timeline: every status or hash change, newest first.
  const timeline = d.timeline.length
    ? el(
        "ol",
        { class: "timeline", "aria-label": "Drift timeline" },
        ...d.timeline.map((c) =>
          el(
            "li",
            {},
            el("span", { class: "mono when" }, when(c.at)),
            " ",
            badge(c.from),
            " → ",
            badge(c.to),
            c.hash ? el("span", { class: "mono muted" }, ` ${shortHash(c.hash)}`) : "",
            c.reason ? el("span", { class: "muted" }, ` — ${c.reason}`) : "",
            el("span", { class: "muted" }, ` (${c.actor})`),
          ),
        ),
      )
    : el("p", { class: "muted", id: "no-timeline" }, "No change recorded yet: a scan, guard, sync or reset records one whenever this tenant's status or schema hash changes.");
  const audit = el("table", { class: "tenants", "aria-label": "History" });
  for (const a of d.audit) audit.append(el("tr", {}, el("td", { class: "mono" }, when(a.at)), el("td", {}, a.actor), el("td", {}, a.action), el("td", {}, resultBadge(a.result)), el("td", {}, a.detail)));
  const backups = el("ul");
  for (const b of d.backups) backups.append(el("li", {}, `${b.id}: ${b.location} (${when(b.created_at)})${b.purged_at ? " — gone" : ""}`));
  show(
    el("p", {}, el("a", { href: link(), class: "back" }, "← Fleet")),
    el("h2", {}, t.display_name, " ", el("small", { class: "muted" }, t.slug)),
    facts,
    el("div", { class: "toolbar", id: "tenant-actions" }, ...top),
    healthBox,
    el("h3", {}, "Actions"),
    ...(sections.length ? sections : [el("p", { class: "muted", id: "no-actions" }, t.status === "synced" ? "Synced with its template: nothing to repair, accept or reset." : t.status === "failed" ? "The tenant could not be read; run the health check to see why." : "No action applies to this tenant.")]),
    el("h3", {}, "Drift timeline"),
    timeline,
    el("h3", {}, "History"),
    audit,
    el("h3", {}, "Backups"),
    d.backups.length ? backups : el("p", { class: "muted" }, "No backups."),
  );
}

// ------------------------------------------------------------------ drift

/** The engine of a redacted location, for SQL highlighting. */
function dialectOf(location: string): Dialect {
  return /^postgres/i.test(location) ? "postgres" : /^(mysql|mariadb)/i.test(location) ? "mysql" : "sqlite";
}

/** A change's value, cut to one readable line (the full text in the DDL below). */
function brief(text: string | null): string {
  if (text === null) return "∅";
  const one = text.replace(/\s+/g, " ").trim();
  return one.length > 100 ? `${one.slice(0, 99)}…` : one;
}

const PRESENCES: ObjectDiff["presence"][] = ["added", "missing", "changed", "identical"];

async function driftScreen(slug: string): Promise<void> {
  const d = await call<TenantDiff>("tenant_diff", { slug });
  const dialect = dialectOf(d.location);
  const objects = d.diff.objects;
  const count = (p: ObjectDiff["presence"]): number => objects.filter((o) => o.presence === p).length;
  const differing = objects.length - count("identical");
  const detail = el("div", { class: "detail", id: "drift-detail" });
  const list = el("ul", { class: "objects", role: "listbox", "aria-label": "Objects", tabindex: "0" });
  let free: () => void = () => {};
  let selected: ObjectDiff | null = null;
  const select = (o: ObjectDiff): void => {
    selected = o;
    free();
    free = () => {};
    for (const item of list.querySelectorAll<HTMLElement>("li")) {
      const on = item.dataset.key === `${o.kind} ${o.name}`;
      item.setAttribute("aria-selected", String(on));
      if (on) {
        list.setAttribute("aria-activedescendant", item.id);
        item.scrollIntoView?.({ block: "nearest" });
      }
    }
    const changes = el("ul", { class: "changes", "aria-label": "Changes" });
    for (const c of o.changes) {
      // An item named by its own text (an index, a check) is said once; a
      // column or constraint shows its definition, or both sides if changed.
      const self = c.item === c.template || c.item === c.tenant;
      const value = self ? "" : c.presence === "changed" ? ` ${brief(c.template)} → ${brief(c.tenant)}` : ` ${brief(c.tenant ?? c.template)}`;
      changes.append(el("li", { title: `${c.area} ${c.item}: ${c.template ?? "∅"} → ${c.tenant ?? "∅"}` }, presenceBadge(c.presence), " ", el("strong", {}, `${c.area} ${brief(c.item)}`), el("span", { class: "muted" }, value)));
    }
    const merge = el("div", { class: "merge", id: "ddl-merge" });
    detail.replaceChildren(
      el("h3", {}, `${o.kind} ${o.name} `, presenceBadge(o.presence)),
      o.changes.length ? changes : el("span"),
      el("div", { class: "merge-heads" }, el("span", {}, `Template ${d.template} ${d.template_version}`), el("span", {}, `Tenant ${d.slug}`)),
      merge,
    );
    free = ddlMerge(merge, o.template_ddl ?? "", o.tenant_ddl ?? "", `${o.kind} ${o.name}`, dialect);
  };
  const hide = el("input", { type: "checkbox", id: "hide-identical" });
  hide.checked = differing > 0;
  const fill = (): void => {
    const shown = objects.filter((o) => !hide.checked || o.presence !== "identical");
    list.replaceChildren(
      ...shown.map((o, i) => {
        const item = el("li", { role: "option", id: `object-${i}`, "data-presence": o.presence, "data-key": `${o.kind} ${o.name}`, "aria-selected": "false" }, presenceBadge(o.presence), ` ${o.kind} ${o.name}`);
        item.addEventListener("click", () => select(o));
        return item;
      }),
    );
    const keep = selected && shown.includes(selected) ? selected : shown[0];
    if (keep) select(keep);
    else detail.replaceChildren(el("p", { class: "muted" }, "Nothing to show."));
  };
  hide.addEventListener("change", fill);
  // The list is one tab stop; arrows, Home and End move the selection.
  list.addEventListener("keydown", (ev) => {
    const shown = objects.filter((o) => !hide.checked || o.presence !== "identical");
    const at = selected ? shown.indexOf(selected) : -1;
    const to = ev.key === "ArrowDown" ? at + 1 : ev.key === "ArrowUp" ? at - 1 : ev.key === "Home" ? 0 : ev.key === "End" ? shown.length - 1 : null;
    if (to === null) return;
    ev.preventDefault();
    const next = shown[Math.max(0, Math.min(shown.length - 1, to))];
    if (next) select(next);
  });
  const saved = el("span", { class: "muted", "aria-live": "polite" });
  const exportAs = (format: "markdown" | "html"): HTMLElement => {
    const b = el("button", { type: "button" }, format === "html" ? "Export HTML" : "Export Markdown");
    b.addEventListener("click", async () => {
      try {
        saved.textContent = `Saved to ${await call<string>("export_diff_report", { slug, format })}`;
      } catch (e) {
        saved.textContent = errorText(e);
      }
    });
    return b;
  };
  const counts = el("p", { class: "drift-counts", id: "drift-counts" });
  counts.append(...PRESENCES.flatMap((p, i) => [i ? " · " : "", el("span", { class: `count presence-text-${p}` }, el("strong", {}, String(count(p))), ` ${p}`)]));
  show(
    el("p", {}, el("a", { href: link("tenant", slug), class: "back" }, `← ${slug}`)),
    el("h2", {}, `Drift of ${slug} against ${d.template} ${d.template_version}`),
    counts,
    el("div", { class: "toolbar" }, el("label", { for: "hide-identical" }, hide, " Hide identical objects"), exportAs("markdown"), exportAs("html"), saved),
    el("div", { class: "split" }, list, detail),
  );
  fill();
}

// ------------------------------------------------------------------ reset

async function resetScreen(slug: string): Promise<void> {
  const plan = await call<ResetPlan>("reset_plan", { slug });
  const back = el("p", {}, el("a", { href: link("tenant", slug), class: "back" }, `← ${slug}`));
  const title = el("h2", {}, `Reset ${slug} to ${plan.template} ${plan.template_version}`);
  if (plan.drift_hash === plan.template_hash) {
    show(back, title, banner("info", `${slug} already matches ${plan.template} ${plan.template_version} (hash ${shortHash(plan.template_hash)}): there is nothing to reset.`));
    return;
  }
  const moving = plan.objects.filter((o) => o.presence !== "identical");
  const identical = plan.objects.length - moving.length;
  const rows = plan.objects.reduce((n, o) => n + (o.rows ?? 0), 0);
  const table = el("table", { class: "tenants", "aria-label": "Reset plan" });
  table.append(el("tr", {}, ...["Object", "What happens", "Rows moving to the backup"].map((h) => el("th", {}, h))));
  const what: Record<string, string> = { added: "not in the template: moved to the backup, not recreated", changed: "differs: moved to the backup, recreated from the template", missing: "recreated from the template" };
  for (const o of moving) table.append(el("tr", {}, el("td", {}, `${o.kind} ${o.name}`), el("td", {}, what[o.presence] ?? o.presence), el("td", { class: "num" }, o.rows === null ? "" : o.rows.toLocaleString())));
  const { typed, go, result } = wizardConfirmation(slug, {
    id: "reset",
    label: "Reset",
    kind: "danger",
    blocked: false,
    busy: "Backing up and rebuilding…",
    run: async (confirmation) => {
      const o = await call<ResetOutcome>("reset_tenant", { slug, plannedHash: plan.drift_hash, confirmation });
      return banner(o.status === "synced" ? "info" : "error", `Reset finished: ${o.status}. Backup: ${o.backup}.`);
    },
  });
  show(
    back,
    title,
    el(
      "div",
      { class: "warning", role: "note", id: "reset-afterwards" },
      el("strong", {}, "Afterwards "),
      `${slug} contains exactly the template's objects, and they are empty. `,
      rows > 0 ? `Every row now in its tables (${rows.toLocaleString()} in all) stays in the backup, not in the rebuilt tables. ` : "",
      "Only missing objects? Repair, on the tenant's screen, creates them and leaves every row where it is. Rows to keep? Sync, there too, brings the schema back and keeps them.",
    ),
    el("ol", { class: "steps" },
      el("li", {}, el("strong", {}, "Plan. "), `Server ${plan.server}, ${plan.engine === "mysql" ? "database" : "schema"} ${plan.schema}. Current hash ${shortHash(plan.drift_hash)}, template ${shortHash(plan.template_hash)}.`),
      el("li", {}, el("strong", {}, "Backup first. "), plan.backup),
      ...((plan.changes ?? []).length ? [el("li", {}, el("strong", {}, "Also. "), el("ul", { "aria-label": "Other changes" }, ...plan.changes.map((c) => el("li", {}, c))))] : []),
      el("li", {}, el("strong", {}, "Confirm. "), `Type ${slug} exactly:`, " ", typed, " ", go),
    ),
    result,
    el("h3", {}, `What changes (${moving.length})`),
    moving.length ? table : el("p", { class: "muted" }, "No object differs; the objects are rebuilt empty."),
    identical > 0 ? el("p", { class: "muted", id: "identical-note" }, `${identical} identical object${identical === 1 ? "" : "s"} ${identical === 1 ? "is" : "are"} rebuilt too, empty; ${identical === 1 ? "its rows go" : "their rows go"} to the backup with the rest.`) : el("span"),
  );
}

// ------------------------------------------------------------------- sync

const stepMeaning: Record<string, string> = {
  safe: "touches no data",
  checked: "could fail on the data: its rows are counted first",
  destructive: "removes data: it goes to the quarantine first",
  manual: "not done by the sync: reset, or accept it",
};

async function syncScreen(slug: string, keep: string[] = [], note = ""): Promise<void> {
  const plan = await call<SyncPlan>("sync_plan", { slug, keep: { objects: keep, note } });
  const back = el("p", {}, el("a", { href: link("tenant", slug), class: "back" }, `← ${slug}`));
  const title = el("h2", {}, `Sync ${slug} to ${plan.template} ${plan.template_version}, keeping its data`);
  if (plan.steps.length === 0 && keep.length === 0) {
    show(back, title, banner("info", `${slug} already matches ${plan.template} ${plan.template_version} (hash ${shortHash(plan.template_hash)}): there is nothing to sync.`));
    return;
  }
  // Differences the user may keep: every object a step is about (the
  // quarantine is the sync's own), plus those already kept.
  const mysql = plan.engine === "mysql";
  const place = mysql ? "database" : "schema";
  const keepable = [...new Set([...keep, ...plan.steps.filter((s) => s.object !== `${place} ${plan.quarantine}`).map((s) => s.object)])];
  const keepNote = el("input", { type: "text", id: "keep-note", value: note, placeholder: "Why these differences stay", "aria-label": "Why the kept differences stay" });
  const keepBoxes = keepable.map((o, i) => {
    const box = el("input", { type: "checkbox", id: `keep-${i}`, value: o });
    if (keep.includes(o)) box.setAttribute("checked", "");
    return el("label", { for: `keep-${i}`, class: "keep" }, box, ` ${o}`);
  });
  const replan = el("button", { type: "button", id: "replan" }, "Plan again");
  replan.addEventListener("click", () => {
    const chosen = keepBoxes.map((l) => l.querySelector("input") as HTMLInputElement).filter((b) => b.checked).map((b) => b.value);
    syncScreen(slug, chosen, keepNote.value).catch((e) => show(back, title, banner("error", errorText(e))));
  });
  const blockers = plan.steps.filter((s) => s.class === "manual" || (s.class === "checked" && (s.count ?? 0) > 0));
  const table = el("table", { class: "tenants", "aria-label": "Sync plan" });
  table.append(el("tr", {}, ...["#", "Kind", "Object", "What it does", "Rows"].map((h) => el("th", {}, h))));
  plan.steps.forEach((s, i) => {
    const rows = s.count === null ? "" : `${s.count.toLocaleString()} ${s.probe_meaning ?? ""}`;
    const blocking = blockers.includes(s);
    table.append(
      el(
        "tr",
        blocking ? { class: "blocking" } : {},
        el("td", { class: "num" }, String(i + 1)),
        el("td", {}, el("span", { class: `badge step step-${s.class}`, title: stepMeaning[s.class] ?? "" }, s.class)),
        el("td", {}, s.object),
        el("td", {}, s.action),
        el("td", {}, rows),
      ),
    );
  });
  const count = (c: string): number => plan.steps.filter((s) => s.class === c).length;
  const moved = plan.steps.filter((s) => s.class === "destructive").reduce((n, s) => n + (s.count ?? 0), 0);
  const script = el("pre", { class: "cmd", id: "sync-sql" }, plan.steps.flatMap((s) => s.sql.map((q) => `${q};`)).join("\n"));
  const { typed, go, result } = wizardConfirmation(slug, {
    id: "sync",
    label: "Sync",
    kind: "primary",
    blocked: blockers.length > 0,
    busy: mysql ? "Syncing step by step…" : "Syncing in one transaction…",
    run: async (confirmation) => {
      const o = await call<SyncOutcome>("sync_tenant", { request: { slug, planned_hash: plan.drift_hash, planned_quarantine: plan.quarantine, keep: plan.kept, note: plan.keep_note ?? "", confirmation } });
      return banner("info", `${slug} is ${o.status}: it now matches ${plan.template} ${plan.template_version}${plan.kept.length ? ` with ${plan.kept.join(", ")} kept and accepted` : ""}, after ${o.applied.length} steps. ${o.quarantine ? `What was removed is kept in ${o.quarantine} (listed under Backups).` : "Nothing was removed."}`);
    },
    // MySQL/MariaDB: the steps that ran stay done; the rest is planned
    // again from the tenant as it is.
    onError: (e) => {
      if (!isIpcError(e) || (e.code !== "sync_interrupted" && e.code !== "sync_incomplete")) return null;
      const again = el("button", { type: "button", class: "primary", id: "sync-finish" }, "Plan what is left");
      again.addEventListener("click", () => {
        syncScreen(slug).catch((err) => show(back, title, banner("error", errorText(err))));
      });
      return el("p", {}, "Once the cause is fixed: ", again);
    },
  });
  show(
    back,
    title,
    el(
      "div",
      { class: "warning calm", role: "note", id: "sync-afterwards" },
      el("strong", {}, "Afterwards "),
      `${slug} matches the template and keeps the rows of every table the template has. `,
      moved > 0 ? `${moved.toLocaleString()} ${moved === 1 ? "row or value in a custom table or column moves" : "rows or values in custom tables and columns move"} to a quarantine ${place} first (listed under Backups, purge it when no longer needed). ` : "",
      plan.engine === "sqlite" ? "The whole file is backed up first (listed under Backups). " : "",
      mysql
        ? "MySQL/MariaDB commit every statement on its own: the steps run one by one, each recorded in the journal; if one fails, the sync stops there, says which steps ran, and this screen finishes it later."
        : "It runs as one transaction: if any step fails, nothing changes.",
    ),
    plan.resumes
      ? el(
          "div",
          { class: "warning", role: "note", id: "sync-resumes" },
          el("strong", {}, "Finishing a stopped sync. "),
          `The sync of ${slug} (operation ${plan.resumes.operation}) stopped after ${plan.resumes.done.length} step${plan.resumes.done.length === 1 ? "" : "s"}; these are done and are not repeated. The steps below are what is left, planned from the tenant as it is now, with the same kept differences and quarantine.`,
          el("details", {}, el("summary", {}, "Steps already done"), el("ol", {}, ...plan.resumes.done.map((line) => el("li", {}, line)))),
        )
      : el("span"),
    blockers.length
      ? banner("error", `${blockers.length} step${blockers.length === 1 ? "" : "s"} stop${blockers.length === 1 ? "s" : ""} the sync (highlighted below). Fix the rows it counts and plan again, accept the difference as a customisation, or reset the tenant.`)
      : el("span"),
    el("ol", { class: "steps" },
      el("li", {}, el("strong", {}, "Plan. "), `Server ${plan.server}, ${place} ${plan.schema}. Current hash ${shortHash(plan.drift_hash)}, template ${shortHash(plan.template_hash)}. ${count("safe")} safe, ${count("checked")} checked, ${count("destructive")} destructive, ${count("manual")} manual steps.`),
      el("li", {}, el("strong", {}, "Confirm. "), `Type ${slug} exactly:`, " ", typed, " ", go),
    ),
    result,
    el("h3", {}, `Steps (${plan.steps.length})`),
    table,
    el("details", { id: "keep", ...(keep.length ? { open: "" } : {}) },
      el("summary", {}, keep.length ? `Keeping ${keep.length} difference${keep.length === 1 ? "" : "s"}` : "Keep some differences instead"),
      el("p", { class: "muted" }, "A kept difference is not undone; after the sync it is recorded as this tenant's accepted customisation, with your note."),
      el("div", { class: "keep-list" }, ...keepBoxes),
      el("div", { class: "toolbar" }, keepNote, replan),
    ),
    el("details", {}, el("summary", {}, "The SQL it runs"), script),
  );
}

// ------------------------------------------------------- templates, settings

async function templatesScreen(notice?: HTMLElement): Promise<void> {
  const all = await call<TemplateView[]>("list_templates");
  const nodes: Node[] = [el("h2", {}, "Templates")];
  if (notice) nodes.push(notice);
  if (all.length === 0) nodes.push(el("p", { class: "muted" }, ws === "demo" ? "No templates." : "No templates yet: use an existing database as the template (below), or add a folder of migrations with `tenantry template add`."));
  for (const { summary: t, lint } of all) {
    const table = el("table", { class: "tenants", "aria-label": `Versions of ${t.name}` });
    table.append(el("tr", {}, ...["Version", "Migrations", "Measured hash", "Measured at"].map((h) => el("th", {}, h))));
    for (const v of t.versions) table.append(el("tr", {}, el("td", {}, v.version), el("td", { class: "num" }, String(v.migrations)), el("td", { class: "mono" }, v.hash ?? "not measured"), el("td", {}, when(v.measured_at, ""))));
    const findings = el("ul", { class: "lint", "aria-label": `Lint findings of ${t.name}` });
    for (const f of lint) findings.append(el("li", {}, el("strong", {}, f.kind.replace(/_/g, " ")), ` ${f.location}: ${f.message}`));
    nodes.push(el("h3", {}, `${t.name} (${t.engine})`), table, lint.length ? findings : el("p", { class: "muted" }, "Lint: no findings."));
  }
  if (ws !== "demo") nodes.push(captureForm(all));
  show(...nodes);
}

/** "Use an existing database as the template": a reference database or
 * schema becomes a template version, proven by measuring what Tenantry
 * wrote for it; a later capture of the same template is the next version. */
function captureForm(all: TemplateView[]): HTMLElement {
  const field = (label: string, input: HTMLElement, hint = ""): HTMLElement =>
    el("label", { class: "field" }, el("span", {}, label), input, hint ? el("small", { class: "muted" }, hint) : "");
  const url = el("input", { type: "text", id: "c-url", required: "", autocomplete: "off", spellcheck: "false", placeholder: "postgres://admin@db1:5432/app" });
  const password = el("input", { type: "password", id: "c-password", autocomplete: "new-password", placeholder: "leave empty if the URL needs none" });
  const schema = el("input", { type: "text", id: "c-schema", autocomplete: "off", spellcheck: "false", placeholder: "tpl (PostgreSQL; empty: public)" });
  const name = el("input", { type: "text", id: "c-name", required: "", autocomplete: "off", spellcheck: "false", placeholder: all[0]?.summary.name ?? "saas", list: "c-names" });
  const names = el("datalist", { id: "c-names" }, ...all.map((t) => el("option", { value: t.summary.name })));
  const version = el("input", { type: "text", id: "c-version", required: "", autocomplete: "off", spellcheck: "false", placeholder: "1.0.0" });
  const scratchName = el("input", { type: "text", id: "c-scratch-name", autocomplete: "off", spellcheck: "false", placeholder: "tenantry_scratch_… (a fresh name)" });
  const out = el("div", { id: "capture-result", "aria-live": "polite" });
  const go = el("button", { type: "submit", class: "primary", id: "capture" }, "Capture");
  const form = el(
    "form",
    { class: "form", "aria-label": "Use an existing database as the template" },
    field("Reference database URL", url, "PostgreSQL, MySQL/MariaDB or sqlite:/path/to/file.db; needs read access to the catalogs, and CREATE on that database for a scratch schema"),
    field("Password", password),
    field("Reference schema", schema),
    field("Template name", name, "an existing name adds the next version (only the difference is written)"),
    names,
    field("Version", version),
    el(
      "details",
      { class: "advanced" },
      el("summary", {}, "Where it is proven"),
      field("Scratch schema or database", scratchName, "for an account that may create only this name: the capture builds it there, measures it, and drops it"),
    ),
    el("div", { class: "toolbar" }, go),
    out,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const request: CaptureForm = {
      url: url.value.trim(),
      password: password.value === "" ? null : password.value,
      schema: schema.value.trim() || null,
      name: name.value.trim(),
      version: version.value.trim(),
      scratch_name: scratchName.value.trim() || null,
    };
    go.setAttribute("disabled", "");
    out.replaceChildren(el("p", { class: "muted" }, "Reading the reference, writing its SQL and proving it in a scratch schema…"));
    try {
      const r = await call<CaptureReport>("capture_template", { form: request });
      password.value = "";
      await templatesScreen(banner("info", `Captured ${r.name} version ${r.version}: ${r.statements} statements, proven to hash as the reference (${shortHash(r.hash)}).`));
    } catch (e) {
      out.replaceChildren(banner("error", errorText(e)));
      go.removeAttribute("disabled");
    }
  });
  return el("section", { "aria-label": "Use an existing database as the template" },
    el("h3", {}, "Use an existing database as the template"),
    el("p", { class: "muted" }, "Tenantry writes SQL that recreates the reference, applies it in a scratch schema exactly as it will apply it to tenants, and stores the version only when the result matches the reference; otherwise nothing is stored and the objects that differ are named."),
    form,
  );
}

async function settingsScreen(): Promise<void> {
  const k = await call<KeyStatus>("key_status");
  show(
    el("h2", {}, "Settings"),
    el("dl", { class: "facts" },
      el("dt", {}, "Key store"), el("dd", {}, k.store),
      el("dt", {}, "Data key"), el("dd", { class: "mono" }, k.key_id ?? "not available"),
      el("dt", {}, "Keyring entry"), el("dd", { class: "mono" }, k.entry ?? "not available"),
      el("dt", {}, "Registry"), el("dd", { class: "mono" }, k.registry),
    ),
    k.retention ? banner("info", `Key store: ${k.retention}.`) : el("span"),
    k.error_message ? banner("error", k.error_message) : el("p", {}, "Rotating re-encrypts every connection string under a new key. Type ", el("code", {}, "rotate"), " to confirm: ", confirmBySlug("rotate", "Rotate key", async () => `New data key ${await call<string>("rotate_key")}.`)),
  );
}

// ----------------------------------------------------------------- router

export async function route(): Promise<void> {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter((p) => p !== "");
  ws = parts[0] === "demo" ? "demo" : "own";
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
