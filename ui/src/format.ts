// How values are written on every screen: one timestamp format, short
// hashes, long values kept at both ends.

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

/** `v7:0123456789ab…`: a hash's format and its first 12 hex digits. */
export function shortHash(hash: string | null): string {
  if (!hash) return "—";
  const [format, hex] = hash.split(":");
  return `${format}:${(hex ?? "").slice(0, 12)}…`;
}

/** `1 version`, `3 versions`. */
/**
 * A sync probe's count and meaning ("rows where …", "values longer than …"),
 * the meaning's first word singular for 1, as the engine's `counted` writes it.
 */
export function counted(n: number, meaning: string): string {
  const m = n === 1 ? meaning.replace(/^(rows|values) /, (w) => `${w.slice(0, -2)} `) : meaning;
  return `${n.toLocaleString("en")} ${m}`;
}

export function plural(n: number, noun: string): string {
  return `${n.toLocaleString("en")} ${noun}${n === 1 ? "" : "s"}`;
}
