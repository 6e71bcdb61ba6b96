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
import type { TemplateView } from "./bindings/TemplateView";
import type { TenantDetail } from "./bindings/TenantDetail";
import type { TenantDiff } from "./bindings/TenantDiff";
import type { TenantOverview } from "./bindings/TenantOverview";
import type { TenantRecord } from "./bindings/TenantRecord";
import type { HealthReport } from "./bindings/HealthReport";
import type { ResetOutcome } from "./bindings/ResetOutcome";

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

const main = (): HTMLElement => document.getElementById("view")!;

function show(...nodes: Node[]): void {
  main().replaceChildren(...nodes);
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

// ------------------------------------------------------------------ fleet

interface FleetState {
  rows: TenantRecord[];
  query: string;
  status: Status | "all";
  server: string;
  template: string;
  sort: "status" | "slug" | "last_sync";
  scanning: boolean;
  report: ScanReport | null;
}

const fleet: FleetState = { rows: [], query: "", status: "all", server: "all", template: "all", sort: "status", scanning: false, report: null };

/** `host:port` of a redacted location, or the file's folder for SQLite. */
function serverOf(r: TenantRecord): string {
  const m = /^[a-z]+:\/\/(?:[^@/]*@)?([^/?]+)/.exec(r.location);
  return m ? m[1] : r.location.replace(/^sqlite:/, "").replace(/[^/]*$/, "");
}

function templateOf(r: TenantRecord): string {
  return r.template ? `${r.template} ${r.template_version ?? ""}`.trim() : "none";
}

function visibleRows(): TenantRecord[] {
  const q = fleet.query.trim().toLowerCase();
  const rows = fleet.rows.filter(
    (r) =>
      (fleet.status === "all" || r.status === fleet.status) &&
      (fleet.server === "all" || serverOf(r) === fleet.server) &&
      (fleet.template === "all" || templateOf(r) === fleet.template) &&
      (q === "" || r.slug.includes(q) || r.display_name.toLowerCase().includes(q) || r.location.toLowerCase().includes(q)),
  );
  const by = fleet.sort;
  return rows.sort((a, b) =>
    by === "slug"
      ? a.slug.localeCompare(b.slug)
      : by === "last_sync"
        ? (b.last_sync_at ?? "").localeCompare(a.last_sync_at ?? "")
        : STATUS_ORDER.indexOf(a.status) - STATUS_ORDER.indexOf(b.status) || a.slug.localeCompare(b.slug),
  );
}

function summary(rows: { status: Status }[]): HTMLElement {
  const box = el("section", { class: "summary", "aria-live": "polite" });
  for (const s of STATUS_ORDER) {
    const n = rows.filter((r) => r.status === s).length;
    box.append(el("span", { class: `chip status-${s}` }, el("strong", {}, String(n)), ` ${s}`));
  }
  return box;
}

/** A virtualised list: only the rows in view are in the DOM. */
export function tenantList(rows: TenantRecord[]): HTMLElement {
  const viewport = el("div", { class: "list", role: "grid", "aria-label": "Tenants", "aria-rowcount": String(rows.length) });
  const spacer = el("div", { class: "spacer" });
  spacer.style.height = `${rows.length * ROW_HEIGHT}px`;
  viewport.append(spacer);
  const render = (): void => {
    const first = Math.max(0, Math.floor(viewport.scrollTop / ROW_HEIGHT) - 5);
    const count = Math.ceil(viewport.clientHeight / ROW_HEIGHT) + 10;
    const slice = rows.slice(first, first + count);
    spacer.replaceChildren(
      ...slice.map((r, i) => {
        const row = el(
          "a",
          { class: "row", href: `#/tenant/${r.slug}`, role: "row", "data-slug": r.slug, "data-status": r.status },
          el("span", { class: "cell name" }, el("strong", {}, r.display_name), el("small", {}, r.slug)),
          el("span", { class: "cell" }, badge(r.status)),
          el("span", { class: "cell" }, `${r.template ?? "—"} ${r.template_version ?? ""}`),
          el("span", { class: "cell mono" }, shortHash(r.current_hash)),
          el("span", { class: "cell" }, r.last_sync_at ? r.last_sync_at.replace("T", " ").slice(0, 19) : "never"),
          el("span", { class: "cell mono muted ellipsis", title: r.location }, r.location),
        );
        row.style.top = `${(first + i) * ROW_HEIGHT}px`;
        return row;
      }),
    );
  };
  viewport.addEventListener("scroll", render);
  viewport.addEventListener("keydown", (ev) => {
    const rowsInView = [...viewport.querySelectorAll<HTMLAnchorElement>("a.row")];
    const at = rowsInView.indexOf(document.activeElement as HTMLAnchorElement);
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      const next = rowsInView[Math.min(rowsInView.length - 1, Math.max(0, at + (ev.key === "ArrowDown" ? 1 : -1)))];
      next?.focus();
      next?.scrollIntoView({ block: "nearest" });
    }
  });
  requestAnimationFrame(render);
  return viewport;
}

async function scanFleet(): Promise<void> {
  if (fleet.scanning) return;
  fleet.scanning = true;
  renderFleet();
  const channel = new Channel<ScanProgressEvent>();
  channel.onmessage = (p) => {
    const bar = document.getElementById("scan-progress") as HTMLProgressElement | null;
    if (bar) {
      bar.max = Math.max(1, p.total);
      bar.value = p.done;
    }
    for (const r of p.finished) {
      const row = fleet.rows.find((x) => x.slug === r.slug);
      if (row) {
        row.status = r.status;
        row.current_hash = r.hash ?? row.current_hash;
      }
    }
    // Results stream in: redraw the list and the counts as batches finish.
    if (p.finished.length > 0) {
      document.querySelector(".list")?.replaceWith(tenantList(visibleRows()));
      document.querySelector(".summary")?.replaceWith(summary(fleet.rows));
    }
  };
  try {
    fleet.report = await invoke<ScanReport>("scan_fleet", { onProgress: channel });
    fleet.rows = await invoke<TenantRecord[]>("registry_tenants");
  } catch (e) {
    fleet.report = null;
    alertError("The scan failed", e);
  } finally {
    fleet.scanning = false;
    renderFleet();
  }
}

let lastError: string | null = null;
function alertError(what: string, e: unknown): void {
  lastError = `${what}: ${errorText(e)}`;
}

function renderFleet(): void {
  const rows = visibleRows();
  const search = el("input", { type: "search", placeholder: "Search tenants (/)", "aria-label": "Search tenants", id: "search" });
  search.value = fleet.query;
  search.addEventListener("input", () => {
    fleet.query = search.value;
    const list = document.querySelector(".list");
    list?.replaceWith(tenantList(visibleRows()));
  });
  const status = el("select", { "aria-label": "Filter by status" });
  for (const s of ["all", ...STATUS_ORDER]) status.append(el("option", { value: s }, s === "all" ? "All statuses" : s));
  status.value = fleet.status;
  status.addEventListener("change", () => {
    fleet.status = status.value as FleetState["status"];
    renderFleet();
  });
  const choice = (label: string, values: string[], current: string, set: (v: string) => void): HTMLSelectElement => {
    const select = el("select", { "aria-label": label });
    select.append(el("option", { value: "all" }, `All ${label.toLowerCase()}s`));
    for (const v of [...new Set(values)].sort()) select.append(el("option", { value: v }, v));
    select.value = current;
    select.addEventListener("change", () => {
      set(select.value);
      renderFleet();
    });
    return select;
  };
  const server = choice("Server", fleet.rows.map(serverOf), fleet.server, (v) => (fleet.server = v));
  const template = choice("Template", fleet.rows.map(templateOf), fleet.template, (v) => (fleet.template = v));
  const sort = el("select", { "aria-label": "Sort" });
  for (const [v, t] of [["status", "Sort: status"], ["slug", "Sort: slug"], ["last_sync", "Sort: last sync"]]) sort.append(el("option", { value: v }, t));
  sort.value = fleet.sort;
  sort.addEventListener("change", () => {
    fleet.sort = sort.value as FleetState["sort"];
    renderFleet();
  });
  const scan = el("button", { type: "button", id: "scan", class: "primary" }, fleet.scanning ? "Scanning…" : "Scan fleet");
  scan.toggleAttribute("disabled", fleet.scanning);
  scan.addEventListener("click", () => void scanFleet());
  const cancel = el("button", { type: "button", id: "cancel-scan" }, "Cancel");
  cancel.hidden = !fleet.scanning;
  cancel.addEventListener("click", () => void invoke("cancel_scan"));
  const progress = el("progress", { id: "scan-progress", "aria-label": "Scan progress" });
  progress.hidden = !fleet.scanning;
  const toolbar = el("div", { class: "toolbar" }, search, status, server, template, sort, scan, cancel, progress);
  const nodes: Node[] = [summary(fleet.rows), toolbar];
  for (const o of unfinished) {
    nodes.push(
      banner(
        "error",
        `Operation ${o.id} (${o.kind} of ${o.tenant_slug}, started ${o.started_at} by ${o.actor}@${o.host ?? "?"}) never finished` +
          (o.last_step ? ` (last step: ${o.last_step}). ` : ". ") +
          `Its backup: ${o.backup ?? "none"}. Check the tenant, then run \`tenantry operations resolve ${o.id} --adopt\` to record the backup, or --abandon.`,
      ),
    );
  }
  if (lastError) nodes.push(banner("error", lastError));
  if (fleet.report) {
    const r = fleet.report;
    nodes.push(banner("info", `Scanned ${r.tenants.length} tenants in ${r.elapsed_ms} ms${r.cancelled ? " (cancelled)" : ""}; ${r.reused} unchanged since the last check.`));
    for (const g of r.groups.filter((g) => g.tenants.length > 1)) {
      nodes.push(el("p", { class: "muted" }, `Same customisation (${shortHash(g.hash)}): ${g.tenants.join(", ")}`));
    }
  }
  nodes.push(tenantList(rows));
  show(...nodes);
}

/** Operations the journal shows as never finished (empty when it cannot be read). */
let unfinished: Operation[] = [];

async function fleetScreen(): Promise<void> {
  unfinished = (await invoke<Operation[] | null>("unfinished_operations").catch(() => null)) ?? [];
  try {
    fleet.rows = await invoke<TenantRecord[]>("registry_tenants");
    if (fleet.rows.length > 0) {
      renderFleet();
      return;
    }
  } catch (e) {
    lastError = null;
    void e;
  }
  // No registry tenants (the keyring is not open): show the demo fleet.
  const [demo, key] = await Promise.all([invoke<TenantOverview[]>("list_tenants"), invoke<KeyStatus>("key_status")]);
  const table = el("table", { class: "tenants", "aria-label": "Demo tenants" });
  table.append(el("thead", {}, el("tr", {}, ...["Tenant", "Status", "Template", "Tables", "Hash"].map((h) => el("th", { scope: "col" }, h)))));
  const body = el("tbody");
  for (const r of demo) {
    const status = el("td", {}, badge(r.status));
    if (r.note) status.append(el("div", { class: "note" }, r.note));
    body.append(
      el("tr", { "data-slug": r.slug, "data-status": r.status }, el("td", {}, el("strong", {}, r.display_name), el("div", { class: "muted" }, r.slug)), status, el("td", {}, `${r.template} ${r.template_version}`), el("td", { class: "num" }, String(r.table_count)), el("td", { class: "mono" }, shortHash(r.current_hash))),
    );
  }
  table.append(body);
  show(
    summary(demo),
    banner("info", key.error_message ? `The data key is not available, so the registry is read-only: ${key.error_message}` : "No tenants registered yet."),
    table,
  );
}

// ----------------------------------------------------------------- tenant

async function tenantScreen(slug: string): Promise<void> {
  const d = await invoke<TenantDetail>("tenant_detail", { slug });
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
    el("dt", {}, "Last sync"), el("dd", {}, t.last_sync_at ?? "never"),
    el("dt", {}, "Domains"), el("dd", {}, t.domains.join(", ") || "—"),
  );
  const healthBox = el("div", { id: "health" });
  const healthBtn = el("button", { type: "button", id: "run-health" }, "Run health check");
  healthBtn.addEventListener("click", async () => {
    healthBox.replaceChildren(el("p", { class: "muted" }, "Checking…"));
    try {
      const h = await invoke<HealthReport>("tenant_health", { slug });
      const table = el("table", { class: "tenants" });
      for (const c of h.checks) table.append(el("tr", {}, el("td", {}, c.ok ? "✔" : "✘"), el("td", {}, c.name), el("td", {}, c.detail), el("td", { class: "num" }, c.millis === null ? "" : `${c.millis} ms`)));
      healthBox.replaceChildren(banner(h.healthy ? "info" : "error", h.healthy ? "Healthy" : "Unhealthy"), table);
    } catch (e) {
      healthBox.replaceChildren(banner("error", errorText(e)));
    }
  });
  const actions = el(
    "div",
    { class: "toolbar" },
    healthBtn,
    el("a", { class: "button", href: `#/drift/${slug}` }, "Drift"),
    el("a", { class: "button danger", href: `#/reset/${slug}` }, "Reset…"),
  );
  const repair = confirmBySlug(slug, "Repair", async () => {
    const o = await invoke<{ created: string[]; not_repaired: string[] }>("repair_tenant", { slug });
    return `Created: ${o.created.join(", ") || "nothing"}. Left alone: ${o.not_repaired.join("; ") || "nothing"}.`;
  });
  const note = el("input", { type: "text", placeholder: "Why this customisation is accepted", "aria-label": "Acceptance note" });
  const accept = confirmBySlug(slug, "Accept as baseline", async () => {
    const hash = await invoke<string>("accept_customisation", { slug, note: note.value });
    return `Accepted ${shortHash(hash)}.`;
  });
  const version = el("input", { type: "text", placeholder: "target version", "aria-label": "Target template version" });
  const allow = el("input", { type: "checkbox", id: "allow-customized" });
  const upgrade = confirmBySlug(slug, "Upgrade", async () => {
    const o = await invoke<{ from: string; to: string; status: string; warning: string | null }>("upgrade_tenant", { slug, to: version.value, allowCustomized: allow.checked });
    return `Upgraded ${o.from} → ${o.to}: ${o.status}.${o.warning ? ` ${o.warning}` : ""}`;
  });
  const audit = el("table", { class: "tenants", "aria-label": "History" });
  for (const a of d.audit) audit.append(el("tr", {}, el("td", { class: "mono" }, a.at.replace("T", " ").slice(0, 19)), el("td", {}, a.actor), el("td", {}, a.action), el("td", {}, resultBadge(a.result)), el("td", {}, a.detail)));
  const backups = el("ul");
  for (const b of d.backups) backups.append(el("li", {}, `${b.id}: ${b.location} (${b.created_at})${b.purged_at ? " — gone" : ""}`));
  show(
    el("p", {}, el("a", { href: "#/" }, "← Fleet")),
    el("h2", {}, t.display_name, " ", el("small", { class: "muted" }, t.slug)),
    facts,
    actions,
    healthBox,
    el("h3", {}, "Actions"),
    el("div", { class: "toolbar" }, el("strong", {}, "Repair"), el("span", { class: "muted" }, "create only the missing template objects"), repair),
    el("div", { class: "toolbar" }, el("strong", {}, "Accept"), note, accept),
    el("div", { class: "toolbar" }, el("strong", {}, "Upgrade"), version, el("label", { for: "allow-customized" }, allow, " even if customized"), upgrade),
    el("h3", {}, "History"),
    audit,
    el("h3", {}, "Backups"),
    d.backups.length ? backups : el("p", { class: "muted" }, "No backups."),
  );
}

// ------------------------------------------------------------------ drift

function sideBySide(o: ObjectDiff): HTMLElement {
  const table = el("table", { class: "sbs", "aria-label": `DDL of ${o.name}` }, el("tr", {}, el("th", {}, "Template"), el("th", {}, "Tenant")));
  for (const l of o.side_by_side) {
    table.append(el("tr", { class: l.tag }, el("td", {}, el("pre", {}, l.template ?? "")), el("td", {}, el("pre", {}, l.tenant ?? ""))));
  }
  return table;
}

async function driftScreen(slug: string): Promise<void> {
  const d = await invoke<TenantDiff>("tenant_diff", { slug });
  const detail = el("div", { class: "detail" });
  const list = el("ul", { class: "objects", role: "listbox", "aria-label": "Objects" });
  const select = (o: ObjectDiff): void => {
    const changes = el("ul", { class: "changes" });
    for (const c of o.changes) changes.append(el("li", {}, `${c.area} ${c.item}: ${c.presence} — ${c.template ?? "∅"} → ${c.tenant ?? "∅"}`));
    detail.replaceChildren(el("h3", {}, `${o.kind} ${o.name} `, presenceBadge(o.presence)), changes, o.presence === "identical" ? el("p", { class: "muted" }, "Identical.") : sideBySide(o));
  };
  for (const o of d.diff.objects) {
    const item = el("li", { role: "option", tabindex: "0", "data-presence": o.presence }, `${o.presence.padEnd(9)} ${o.kind} ${o.name}`);
    item.addEventListener("click", () => select(o));
    item.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") select(o);
    });
    list.append(item);
  }
  const saved = el("span", { class: "muted", "aria-live": "polite" });
  const exportAs = (format: "markdown" | "html"): HTMLElement => {
    const b = el("button", { type: "button" }, format === "html" ? "Export HTML" : "Export Markdown");
    b.addEventListener("click", async () => {
      try {
        saved.textContent = `Saved to ${await invoke<string>("export_diff_report", { slug, format })}`;
      } catch (e) {
        saved.textContent = errorText(e);
      }
    });
    return b;
  };
  show(
    el("p", {}, el("a", { href: `#/tenant/${slug}` }, `← ${slug}`)),
    el("h2", {}, `Drift of ${slug} against ${d.template} ${d.template_version}`),
    el("div", { class: "toolbar" }, exportAs("markdown"), exportAs("html"), saved),
    el("div", { class: "split" }, list, detail),
  );
  const first = d.diff.objects[0];
  if (first) select(first);
}

// ------------------------------------------------------------------ reset

async function resetScreen(slug: string): Promise<void> {
  const plan = await invoke<ResetPlan>("reset_plan", { slug });
  const table = el("table", { class: "tenants", "aria-label": "Reset plan" });
  table.append(el("tr", {}, ...["Object", "Change", "Rows moving to the backup"].map((h) => el("th", {}, h))));
  for (const o of plan.objects) table.append(el("tr", {}, el("td", {}, `${o.kind} ${o.name}`), el("td", {}, o.presence), el("td", { class: "num" }, o.rows === null ? "" : String(o.rows))));
  const typed = el("input", { type: "text", id: "confirm-slug", autocomplete: "off", spellcheck: "false", "aria-label": "Type the tenant slug to confirm" });
  const go = el("button", { type: "button", class: "danger", id: "do-reset", disabled: "" }, "Reset");
  typed.addEventListener("input", () => go.toggleAttribute("disabled", typed.value !== slug));
  const result = el("div", { id: "reset-result", "aria-live": "polite" });
  go.addEventListener("click", async () => {
    go.setAttribute("disabled", "");
    result.replaceChildren(el("p", {}, "Backing up and rebuilding…"));
    try {
      const o = await invoke<ResetOutcome>("reset_tenant", { slug, plannedHash: plan.drift_hash, confirmation: typed.value });
      result.replaceChildren(banner(o.status === "synced" ? "info" : "error", `Reset finished: ${o.status}. Backup: ${o.backup}.`), el("p", {}, el("a", { href: `#/tenant/${slug}` }, "Back to the tenant")));
    } catch (e) {
      result.replaceChildren(banner("error", errorText(e)));
    }
  });
  show(
    el("p", {}, el("a", { href: `#/tenant/${slug}` }, `← ${slug}`)),
    el("h2", {}, `Reset ${slug} to ${plan.template} ${plan.template_version}`),
    el("ol", { class: "steps" },
      el("li", {}, el("strong", {}, "Plan. "), `Server ${plan.server}, schema ${plan.schema}. Current hash ${shortHash(plan.drift_hash)}, template ${shortHash(plan.template_hash)}.`),
      el("li", {}, el("strong", {}, "Backup first. "), plan.backup),
      ...((plan.changes ?? []).length ? [el("li", {}, el("strong", {}, "Also. "), el("ul", { "aria-label": "Other changes" }, ...plan.changes.map((c) => el("li", {}, c))))] : []),
      el("li", {}, el("strong", {}, "Confirm. "), `Type ${slug} exactly:`, " ", typed, " ", go),
    ),
    table,
    result,
  );
}

// ------------------------------------------------------- templates, settings

async function templatesScreen(): Promise<void> {
  const all = await invoke<TemplateView[]>("list_templates");
  const nodes: Node[] = [el("h2", {}, "Templates")];
  if (all.length === 0) nodes.push(el("p", { class: "muted" }, "No templates. Add one with `tenantry template add`."));
  for (const { summary: t, lint } of all) {
    const table = el("table", { class: "tenants", "aria-label": `Versions of ${t.name}` });
    table.append(el("tr", {}, ...["Version", "Migrations", "Measured hash", "Measured at"].map((h) => el("th", {}, h))));
    for (const v of t.versions) table.append(el("tr", {}, el("td", {}, v.version), el("td", { class: "num" }, String(v.migrations)), el("td", { class: "mono" }, v.hash ?? "not measured"), el("td", {}, v.measured_at ?? "")));
    const findings = el("ul", { class: "lint", "aria-label": `Lint findings of ${t.name}` });
    for (const f of lint) findings.append(el("li", {}, el("strong", {}, f.kind.replace(/_/g, " ")), ` ${f.location}: ${f.message}`));
    nodes.push(el("h3", {}, `${t.name} (${t.engine})`), table, lint.length ? findings : el("p", { class: "muted" }, "Lint: no findings."));
  }
  show(...nodes);
}

async function settingsScreen(): Promise<void> {
  const k = await invoke<KeyStatus>("key_status");
  show(
    el("h2", {}, "Settings"),
    el("dl", { class: "facts" },
      el("dt", {}, "Key store"), el("dd", {}, k.store),
      el("dt", {}, "Data key"), el("dd", { class: "mono" }, k.key_id ?? "not available"),
      el("dt", {}, "Keyring entry"), el("dd", { class: "mono" }, k.entry ?? "not available"),
      el("dt", {}, "Registry"), el("dd", { class: "mono" }, k.registry),
    ),
    k.error_message ? banner("error", k.error_message) : el("p", {}, "Rotating re-encrypts every connection string under a new key. Type ", el("code", {}, "rotate"), " to confirm: ", confirmBySlug("rotate", "Rotate key", async () => `New data key ${await invoke<string>("rotate_key")}.`)),
  );
}

// ----------------------------------------------------------------- router

export async function route(): Promise<void> {
  const [, screen, slug] = location.hash.replace(/^#/, "").split("/");
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.getAttribute("href") === `#/${screen ?? ""}`));
  try {
    if (screen === "tenant" && slug) await tenantScreen(decodeURIComponent(slug));
    else if (screen === "drift" && slug) await driftScreen(decodeURIComponent(slug));
    else if (screen === "reset" && slug) await resetScreen(decodeURIComponent(slug));
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
    const typing = ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement;
    if (ev.key === "/" && !typing) {
      ev.preventDefault();
      document.getElementById("search")?.focus();
    }
  });
  void route();
}
