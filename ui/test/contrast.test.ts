// @vitest-environment node
// Contrast of the console's colours, read from styles.css itself, in both
// themes: every badge's text on its background and every coloured text on
// the panel must keep WCAG AA's 4.5:1 for normal-size text.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const css = readFileSync(new URL("../src/styles.css", import.meta.url), "utf8");

/** The custom properties declared in the first block after `marker`. */
function variables(marker: string): Record<string, string> {
  const start = css.indexOf(marker);
  expect(start, `styles.css has ${marker}`).toBeGreaterThanOrEqual(0);
  const open = css.indexOf(":root {", start);
  const body = css.slice(open, css.indexOf("}", open));
  const vars: Record<string, string> = {};
  for (const m of body.matchAll(/--([a-z-]+):\s*(#[0-9a-fA-F]{6})\s*;/g)) vars[m[1]] = m[2];
  return vars;
}

const light = variables(":root {");
const dark = { ...light, ...variables("@media (prefers-color-scheme: dark)") };

function luminance(hex: string): number {
  const channel = (i: number): number => {
    const c = parseInt(hex.slice(1 + 2 * i, 3 + 2 * i), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2);
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

const STATUSES = ["synced", "customized", "outdated", "unknown", "failed"];
const PRESENCES = ["added", "missing", "changed", "identical"];

describe.each([
  ["light", light],
  ["dark", dark],
])("%s theme", (_, vars) => {
  it.each([...STATUSES, ...PRESENCES])("a %s badge's text is readable on it", (name) => {
    expect(vars[name], `--${name} is declared`).toBeDefined();
    expect(contrast(vars["badge-text"], vars[name])).toBeGreaterThanOrEqual(4.5);
  });

  it.each([...STATUSES, ...PRESENCES, "text", "muted", "accent"])("%s text is readable on the panel and the page", (name) => {
    expect(contrast(vars[name], vars.panel)).toBeGreaterThanOrEqual(4.5);
    expect(contrast(vars[name], vars.bg)).toBeGreaterThanOrEqual(4.5);
  });

  it("a primary button's text is readable on the accent", () => {
    expect(contrast(vars["accent-text"], vars.accent)).toBeGreaterThanOrEqual(4.5);
  });
});

it("every status and diff badge takes its own colour", () => {
  for (const s of STATUSES) expect(css).toContain(`.status-${s}.badge { background: var(--${s}); }`);
  for (const p of PRESENCES) expect(css).toContain(`.presence-${p}.badge { background: var(--${p}); }`);
  expect(css).not.toMatch(/\.badge[^{]*\{[^}]*color:\s*#fff/);
});
