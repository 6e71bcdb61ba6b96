// Benchmark: the console's fleet screen over a big registry, in the real
// window (under Xvfb, through tauri-driver + WebKitWebDriver). Prints:
//   - window start to the first rows on screen (the registry is already
//     populated: the fleet screen is the first screen), the first start
//     (which also makes the demo fleet) and a later one;
//   - the fleet screen opened again from another screen;
//   - a jump to the middle of the list (its page fetched on demand);
//   - a search, from the last key typed to the matching rows on screen;
//   - a status filter (customized: the unfiltered list starts with the
//     failed ones).
// Each is the median of three, timed in the page with performance.now()
// (start to rows in the DOM) except the start, timed here.
//
// Needs (set by scripts/bench-console.sh): TENANTRY_E2E_APP,
// TENANTRY_BENCH_TENANTS (how many tenants the registry holds); optional
// TENANTRY_BENCH_LABEL (which build, when two are compared).
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
const label = process.env.TENANTRY_BENCH_LABEL ? ` [${process.env.TENANTRY_BENCH_LABEL}]` : "";
console.log(`console fleet screen${label}, ${tenants.toLocaleString("en")} tenants in the registry (debug build, Xvfb)`);
console.log(`${"step".padEnd(44)} ${"seconds".padStart(8)}`);
const report = (step, secs) => console.log(`${step.padEnd(44)} ${secs.toFixed(3).padStart(8)}`);

/** Starts the console; seconds from asking for it to its first rows on screen. */
async function start() {
  const started = performance.now();
  const browser = await remote({ hostname: "127.0.0.1", port: 4444, logLevel: "error", capabilities: { "tauri:options": { application: app } } });
  await browser.waitUntil(async () => (await browser.$$(".row[data-slug]")).length > 0, { timeout: 60000, interval: 20 });
  return [browser, (performance.now() - started) / 1000];
}

try {
  // The first start also makes the demo fleet in the fresh data folder; a
  // user's every later start is the second one.
  const [first, firstSecs] = await start();
  report("first start (demo fleet made) to first rows", firstSecs);
  await first.deleteSession();
  const [browser, secs] = await start();
  try {
    report("start to first rows on screen", secs);
    const shown = await browser.execute(() => document.getElementById("match-count")?.textContent ?? "");
    if (!shown.includes(tenants.toLocaleString("en"))) throw new Error(`the fleet screen says "${shown}", expected ${tenants} tenants`);

    // The page's CSP allows no eval: every step is a function WebDriver
    // sends as it is. `ready` waits for the state a step starts from;
    // `timed` runs the action and polls until its result is on screen,
    // timed in the page.
    await browser.setTimeout({ script: 60000 });
    const runs = async (step, prepare, ready, timed, arg) => {
      const times = [];
      try {
        for (let i = 0; i < 3; i++) {
          await browser.execute(prepare, arg ?? null);
          await browser.waitUntil(() => browser.execute(ready, arg ?? null), { timeout: 30000, interval: 100 });
          times.push(await browser.executeAsync(timed, arg ?? null));
        }
        report(step, median(times));
      } catch (e) {
        console.log(`${step.padEnd(44)} failed after ${times.length} run(s): ${String(e.message ?? e).split("\n")[0]}`);
      }
    };
    const middle = Math.floor(tenants / 2);
    await runs(
      "fleet screen again (from Templates)",
      () => (location.hash = "#/templates"),
      () => document.querySelector(".list") === null && document.querySelector("h2") !== null,
      (_, finish) => {
        const t = performance.now();
        location.hash = "#/";
        const poll = () =>
          document.querySelector("#match-count") && document.querySelector(".row[data-slug]") && !document.querySelector(".row.placeholder")
            ? finish((performance.now() - t) / 1000)
            : setTimeout(poll, 4);
        poll();
      },
    );
    await runs(
      `scroll to row ${middle.toLocaleString("en")}`,
      () => {
        // A fresh fleet screen (its pages loaded anew), told apart from this one.
        document.querySelector(".list").dataset.old = "1";
        location.hash = "#/templates";
        setTimeout(() => (location.hash = "#/"), 50);
      },
      () => {
        const l = document.querySelector(".list");
        return !!l && !l.dataset.old && l.scrollTop === 0 && !!document.querySelector(".row[data-slug]") && !document.querySelector(".row.placeholder");
      },
      (row, finish) => {
        const t = performance.now();
        document.querySelector(".list").scrollTop = row * 48;
        const poll = () => {
          const first = document.querySelector(".row[data-slug]");
          return first && !document.querySelector(".row.placeholder") && Number(first.getAttribute("aria-rowindex")) > row - 20
            ? finish((performance.now() - t) / 1000)
            : setTimeout(poll, 4);
        };
        poll();
      },
      middle,
    );
    await runs(
      "status filter (customized)",
      () => {
        const s = document.querySelector('select[aria-label="Filter by status"]');
        s.value = "all";
        s.dispatchEvent(new Event("change", { bubbles: true }));
      },
      () => {
        const rows = [...document.querySelectorAll(".row[data-slug]")];
        return rows.length > 0 && !rows.every((r) => r.getAttribute("data-status") === "customized");
      },
      (_, finish) => {
        const t = performance.now();
        const s = document.querySelector('select[aria-label="Filter by status"]');
        s.value = "customized";
        s.dispatchEvent(new Event("change", { bubbles: true }));
        const poll = () => {
          const rows = [...document.querySelectorAll(".row[data-slug]")];
          return rows.length > 0 && rows.every((r) => r.getAttribute("data-status") === "customized")
            ? finish((performance.now() - t) / 1000)
            : setTimeout(poll, 4);
        };
        poll();
      },
    );
    await runs(
      "search (last key to matching rows shown)",
      () => {
        // The whole fleet again: no search, every status.
        const s = document.getElementById("search");
        s.value = "";
        s.dispatchEvent(new Event("input", { bubbles: true }));
        const status = document.querySelector('select[aria-label="Filter by status"]');
        status.value = "all";
        status.dispatchEvent(new Event("change", { bubbles: true }));
      },
      () => {
        const rows = [...document.querySelectorAll(".row[data-slug]")];
        return rows.length > 0 && !rows.every((r) => r.getAttribute("data-slug").includes("4242"));
      },
      (_, finish) => {
        const t = performance.now();
        const s = document.getElementById("search");
        s.value = "4242";
        s.dispatchEvent(new Event("input", { bubbles: true }));
        const poll = () => {
          const rows = [...document.querySelectorAll(".row[data-slug]")];
          return rows.length > 0 && rows.every((r) => r.getAttribute("data-slug").includes("4242"))
            ? finish((performance.now() - t) / 1000)
            : setTimeout(poll, 4);
        };
        poll();
      },
    );
  } finally {
    await browser.deleteSession().catch(() => {});
  }
} finally {
  driver.kill();
}
