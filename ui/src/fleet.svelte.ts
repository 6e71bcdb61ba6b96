// The fleet screen's state, one per workspace, kept while the user visits
// other screens: the filters, the loaded pages of the registry's answer
// (the console never holds the whole fleet), the whole fleet's counts, and
// a scan that keeps running when the user looks elsewhere.
import { Channel, invoke } from "@tauri-apps/api/core";
import type { GuardReport } from "./bindings/GuardReport";
import type { ScanProgressEvent } from "./bindings/ScanProgressEvent";
import type { ScanReport } from "./bindings/ScanReport";
import type { ScanSummary } from "./bindings/ScanSummary";
import type { StatusCounts } from "./bindings/StatusCounts";
import type { TenantPage } from "./bindings/TenantPage";
import type { TenantQuery } from "./bindings/TenantQuery";
import type { TenantRecord } from "./bindings/TenantRecord";
import type { TenantSort } from "./bindings/TenantSort";
import type { Workspace } from "./bindings/Workspace";
import { errorText } from "./ipc";

export type Status = TenantRecord["status"];
export const STATUS_ORDER: Status[] = ["failed", "customized", "outdated", "unknown", "synced"];

/** Rows per page fetched over IPC; the list asks for the pages in view. */
export const PAGE = 200;

const noCounts = (): StatusCounts => ({ synced: 0, outdated: 0, customized: 0, unknown: 0, failed: 0 });

export class FleetState {
  readonly workspace: Workspace;
  query = $state("");
  status: Status | "all" = $state("all");
  server = $state("all");
  template = $state("all");
  sort: TenantSort = $state("status");
  /** Tenants matching the query. */
  total = $state(0);
  /** The whole fleet's statuses. */
  counts: StatusCounts = $state.raw(noCounts());
  servers: string[] = $state.raw([]);
  templates: string[] = $state.raw([]);
  scanning = $state(false);
  /** Tenants scanned so far, while a scan runs. */
  progress: { done: number; total: number } | null = $state.raw(null);
  /** The last scans' whole-fleet counts, oldest first. */
  history: ScanSummary[] = $state.raw([]);
  report: ScanReport | null = $state.raw(null);
  /** The guard's run over the fleet: how far it is, and what it did. */
  guarding: { done: number; total: number } | null = $state.raw(null);
  guarded: GuardReport[] | null = $state.raw(null);
  /** The last failure to load or scan, said on the screen. */
  error: string | null = $state(null);
  /** Bumped whenever a page arrives or loaded rows change in place. */
  revision = $state(0);
  /** Bumped when the user changes the query: the list goes back to its top. */
  queries = $state(0);
  /** Loaded pages of the current query, by page number (`revision` says when they change). */
  readonly pages = new Map<number, TenantRecord[]>();
  /** Pages asked for and not yet answered, with the answer to wait on. */
  readonly loading = new Map<number, Promise<void>>();
  /** Bumped when the query changes: answers to an older query are dropped. */
  generation = 0;

  constructor(workspace: Workspace) {
    this.workspace = workspace;
  }

  /** The registry's query for the current filters. */
  queryFor(page: number): TenantQuery {
    return {
      search: this.query.trim(),
      status: this.status === "all" ? null : this.status,
      server: this.server === "all" ? null : this.server,
      template: this.template === "all" ? null : this.template,
      sort: this.sort,
      offset: page * PAGE,
      limit: PAGE,
    };
  }

  /** Row `i` of the query, if its page is loaded. */
  rowAt(i: number): TenantRecord | undefined {
    return this.pages.get(Math.floor(i / PAGE))?.[i % PAGE];
  }

  /**
   * Loads one page of the current query from the registry (which filters,
   * counts and sorts). Resolves when the page is in (or was already). A
   * page already on its way is waited for, never asked again, and never
   * resolves at once: a list redrawing when its page arrives must not
   * redraw in a loop while it is on its way. An answer to a query the user
   * has since changed is dropped.
   */
  loadPage(page: number): Promise<void> {
    if (this.pages.has(page)) return Promise.resolve();
    const pending = this.loading.get(page);
    if (pending) return pending;
    const generation = this.generation;
    const load = (async () => {
      try {
        const p = await invoke<TenantPage>("registry_tenant_page", { workspace: this.workspace, query: this.queryFor(page) });
        if (this.generation !== generation) return;
        this.pages.set(page, p.rows);
        this.total = p.total;
        this.counts = p.counts;
        this.servers = p.servers;
        this.templates = p.templates;
        this.revision += 1;
      } finally {
        if (this.generation === generation) this.loading.delete(page);
      }
    })();
    this.loading.set(page, load);
    return load;
  }

  /** Starts the current query over: drops the loaded pages and loads the first. */
  async reload(): Promise<void> {
    this.generation += 1;
    this.pages.clear();
    this.loading.clear();
    await this.loadPage(0);
  }

  /** After a filter, search or sort change: the first page again; a failure is said on the screen. */
  async refilter(): Promise<void> {
    this.queries += 1;
    try {
      await this.reload();
      this.error = null;
    } catch (e) {
      this.error = `Could not load the tenants: ${errorText(e)}`;
    }
  }

  /** How many tenants the list holds, and of how many when filtered. */
  get matchText(): string {
    const all = STATUS_ORDER.reduce((n, s) => n + this.counts[s], 0);
    return this.total === all ? `${all.toLocaleString("en")} tenants` : `${this.total.toLocaleString("en")} of ${all.toLocaleString("en")} tenants`;
  }

  /**
   * Scans the fleet. Results stream in: the loaded rows and the counts are
   * updated in place, so the list keeps the user's place and focus. The
   * scan belongs to its workspace even if the user switches away.
   */
  async scan(): Promise<void> {
    if (this.scanning) return;
    this.scanning = true;
    const channel = new Channel<ScanProgressEvent>();
    channel.onmessage = (p) => {
      this.progress = { done: p.done, total: p.total };
      this.counts = p.fleet;
      if (p.finished.length === 0) return;
      const bySlug = new Map(p.finished.map((r) => [r.slug, r]));
      for (const rows of this.pages.values()) {
        for (const row of rows) {
          const r = bySlug.get(row.slug);
          if (!r) continue;
          row.status = r.status;
          row.status_reason = r.reason;
          row.current_hash = r.hash ?? row.current_hash;
        }
      }
      this.revision += 1;
    };
    try {
      this.report = await invoke<ScanReport>("scan_fleet", { workspace: this.workspace, onProgress: channel });
      this.error = null;
    } catch (e) {
      this.report = null;
      this.error = `The scan failed: ${errorText(e)}`;
    }
    try {
      this.history = (await invoke<ScanSummary[] | null>("scan_history", { workspace: this.workspace, limit: 60 }).catch(() => null)) ?? this.history;
      await this.reload();
    } catch (e) {
      this.error = `Could not reload the tenants: ${errorText(e)}`;
    } finally {
      this.scanning = false;
      this.progress = null;
    }
  }
}

/**
 * Runs the schema guard on every tenant with a template (create /
 * initialise / skip, then measure), counting as each finishes, then shows
 * the list again.
 */
export async function guardFleet(f: FleetState): Promise<void> {
  if (f.guarding || f.scanning) return;
  const total = STATUS_ORDER.reduce((n, s) => n + f.counts[s], 0);
  f.guarding = { done: 0, total };
  f.guarded = null;
  const channel = new Channel<GuardReport>();
  let done = 0;
  channel.onmessage = () => {
    done += 1;
    f.guarding = { done, total };
  };
  try {
    f.guarded = await invoke<GuardReport[]>("guard_fleet", { workspace: f.workspace, onReport: channel });
    f.error = null;
  } catch (e) {
    f.error = `The guard failed: ${errorText(e)}`;
  } finally {
    f.guarding = null;
    await f.refilter();
  }
}

/** Each workspace keeps its own list, filters and last scan. */
export const fleets: Record<Workspace, FleetState> = { own: new FleetState("own"), demo: new FleetState("demo") };

/** Forgets both lists and their filters (the component tests start each case clean). */
export function forgetFleets(): void {
  fleets.own = new FleetState("own");
  fleets.demo = new FleetState("demo");
}
