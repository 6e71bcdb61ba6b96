// Benchmark: the console's fleet screen over a big registry, in the real
// window (under Xvfb, through tauri-driver + WebKitWebDriver). Prints:
//   - window start to the first rows on screen (the registry is already
//     populated: the fleet screen is the first screen);
//   - the fleet screen opened again from another screen;
//   - a jump to the middle of the list (its page fetched on demand);
//   - a search, from the last key typed to the matching rows on screen;
//   - a status filter.
// Each is the median of three, timed in the page with performance.now()
// (start to rows in the DOM) except the start, timed here.
//
// Needs (set by scripts/bench-console.sh): TENANTRY_E2E_APP,
// TENANTRY_BENCH_TENANTS (how many tenants the registry holds).
import { spawn } from "node:child_process";
import { remote } from "webdriverio";

const app = process.env.TENANTRY_E2E_APP;
const tenants = Number(process.env.TENANTRY_BENCH_TENANTS ?? "0");
if (!app || !tenants) throw new Error("run through scripts/bench-console.sh");

const driver = spawn(process.env.TAURI_DRIVER ?? "tauri-driver", [], { stdio: ["ignore", "ignore", "inherit"] });
for (let i = 0; i < 50; i++) {
  try {
    if ((await fetch("http://127.0.0.1:4444/status")).ok) break;
  } catch {
    /* not up yet */
  }
  await new Promise((r) => setTimeout(r, 100));
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
const report = (step, secs) => rows.push([step, secs]);

try {
  const started = performance.now();
  const browser = await remote({ hostname: "127.0.0.1", port: 4444, logLevel: "error", capabilities: { "tauri:options": { application: app } } });
  try {
    await browser.waitUntil(async () => (await browser.$$(".row[data-slug]")).length > 0, { timeout: 60000, interval: 20 });
    report("window start to first rows on screen", (performance.now() - started) / 1000);
    const shown = await browser.execute(() => document.getElementById("match-count")?.textContent ?? "");
    if (!shown.includes(tenants.toLocaleString("en"))) throw new Error(`the fleet screen says "${shown}", expected ${tenants} tenants`);

    /** Runs `act` in the page, then waits there until `done()` holds; seconds. */
    const timed = async (act, done) =>
      browser.executeAsync(
        (actSrc, doneSrc, finish) => {
          const t = performance.now();
          new Function(actSrc)();
          const poll = () => (new Function(`return (${doneSrc})`)() ? finish((performance.now() - t) / 1000) : requestAnimationFrame(poll));
          poll();
        },
        act,
        done,
      );
    const holds = (src) => browser.execute((c) => !!new Function(`return (${c})`)(), src);
    /** Three runs of `act` from the state `prepare` leads to (`ready` says when it is there). */
    const runs = async (step, prepare, ready, act, done) => {
      const times = [];
      for (let i = 0; i < 3; i++) {
        await browser.execute((c) => new Function(c)(), prepare);
        await browser.waitUntil(() => holds(ready), { timeout: 30000, interval: 20 });
        times.push(await timed(act, done));
      }
      report(step, median(times));
    };
    const loaded = "document.querySelector('.row[data-slug]') !== null && document.querySelector('.row.placeholder') === null";
    const away = "location.hash = '#/templates'";
    const onTemplates = "document.querySelector('.list') === null && document.querySelector('h2') !== null";
    const fresh = "location.hash = '#/templates'; setTimeout(() => (location.hash = '#/'), 50);";
    const top = `${loaded} && document.querySelector('.list').scrollTop === 0 && document.getElementById('search').value === ''`;
    await runs("fleet screen again (from Templates)", away, onTemplates, "location.hash = '#/'", `!!document.querySelector('#match-count') && ${loaded}`);
    const middle = Math.floor(tenants / 2);
    await runs(
      `scroll to row ${middle.toLocaleString("en")}`,
      fresh,
      top,
      `document.querySelector('.list').scrollTop = ${middle} * 48;`,
      `${loaded} && Number(document.querySelector('.row[data-slug]').getAttribute('aria-rowindex')) > ${middle - 20}`,
    );
    const slugs = "[...document.querySelectorAll('.row[data-slug]')]";
    await runs(
      "search (last key to matching rows shown)",
      "const s = document.getElementById('search'); s.value = ''; s.dispatchEvent(new Event('input'));",
      `${loaded} && !${slugs}.every((r) => r.getAttribute('data-slug').includes('4242'))`,
      "const s = document.getElementById('search'); s.value = '4242'; s.dispatchEvent(new Event('input'));",
      `${loaded} && ${slugs}.every((r) => r.getAttribute('data-slug').includes('4242'))`,
    );
    const status = "document.querySelector('select[aria-label=\"Filter by status\"]')";
    await runs(
      "status filter (failed)",
      `const s = ${status}; s.value = 'all'; s.dispatchEvent(new Event('change'));`,
      `${loaded} && !${slugs}.every((r) => r.getAttribute('data-status') === 'failed')`,
      `const s = ${status}; s.value = 'failed'; s.dispatchEvent(new Event('change'));`,
      `${loaded} && ${slugs}.every((r) => r.getAttribute('data-status') === 'failed')`,
    );
  } finally {
    await browser.deleteSession().catch(() => {});
  }
} finally {
  driver.kill();
}

console.log(`console fleet screen, ${tenants.toLocaleString("en")} tenants in the registry (debug build, Xvfb)`);
console.log(`${"step".padEnd(44)} ${"seconds".padStart(8)}`);
for (const [step, secs] of rows) console.log(`${step.padEnd(44)} ${secs.toFixed(3).padStart(8)}`);
