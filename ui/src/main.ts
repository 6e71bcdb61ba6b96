// The fleet screen: every tenant of the demo fleet with its measured status.
import { invoke } from "@tauri-apps/api/core";
import type { TenantOverview } from "./bindings/TenantOverview";
import type { IpcError } from "./bindings/IpcError";

const STATUS_ORDER = ["failed", "customized", "outdated", "unknown", "synced"] as const;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function isIpcError(e: unknown): e is IpcError {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

function shortHash(hash: string | null): string {
  if (!hash) return "—";
  const [format, hex] = hash.split(":");
  return `${format}:${hex.slice(0, 12)}…`;
}

function renderSummary(rows: TenantOverview[]): void {
  const summary = document.getElementById("summary")!;
  summary.replaceChildren();
  for (const status of STATUS_ORDER) {
    const n = rows.filter((r) => r.status === status).length;
    const chip = el("span", { class: `chip status-${status}` });
    chip.append(el("strong", {}, String(n)), document.createTextNode(` ${status}`));
    summary.append(chip);
  }
}

function renderRows(rows: TenantOverview[]): void {
  const tbody = document.querySelector("#tenants tbody")!;
  tbody.replaceChildren();
  const sorted = [...rows].sort(
    (a, b) =>
      STATUS_ORDER.indexOf(a.status) - STATUS_ORDER.indexOf(b.status) ||
      a.slug.localeCompare(b.slug),
  );
  for (const r of sorted) {
    const tr = el("tr", { "data-slug": r.slug, "data-status": r.status, tabindex: "0" });
    const name = el("td");
    name.append(el("div", { class: "name" }, r.display_name), el("div", { class: "slug" }, r.slug));
    const status = el("td");
    status.append(el("span", { class: `badge status-${r.status}` }, r.status));
    if (r.note) status.append(el("div", { class: "note" }, r.note));
    tr.append(
      name,
      status,
      el("td", {}, `${r.template} ${r.template_version}`),
      el("td", { class: "num" }, String(r.table_count)),
      el("td", { class: "mono", title: r.current_hash ?? "" }, shortHash(r.current_hash)),
      el("td", { class: "mono location", title: r.location }, r.location),
    );
    tbody.append(tr);
  }
}

async function load(): Promise<void> {
  const loading = document.getElementById("loading")!;
  const error = document.getElementById("error")!;
  loading.hidden = false;
  error.hidden = true;
  try {
    const rows = await invoke<TenantOverview[]>("list_tenants");
    renderSummary(rows);
    renderRows(rows);
  } catch (e) {
    error.textContent = isIpcError(e)
      ? `Could not read the fleet (${e.code}): ${e.message}`
      : `Could not read the fleet: ${String(e)}`;
    error.hidden = false;
  } finally {
    loading.hidden = true;
  }
}

window.addEventListener("DOMContentLoaded", () => {
  document.getElementById("refresh")!.addEventListener("click", () => void load());
  document.addEventListener("keydown", (ev) => {
    if (ev.key === "r" && !ev.ctrlKey && !ev.metaKey && !ev.altKey) void load();
  });
  void load();
});
