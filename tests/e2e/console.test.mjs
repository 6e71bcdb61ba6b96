// End-to-end: the real console window (under Xvfb) driven through
// tauri-driver + WebKitWebDriver, over real PostgreSQL tenants prepared by
// scripts/e2e.sh with the CLI. Saves screenshots to target/screenshots/.
//
// Needs (set by scripts/e2e.sh): TENANTRY_E2E_APP (the console binary),
// TENANTRY_DATA_DIR, TENANTRY_KEYRING_SERVICE, TENANTRY_E2E_CANARY,
// TENANTRY_E2E_CUSTOMIZED (a customized tenant's slug).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { remote } from "webdriverio";

const app = process.env.TENANTRY_E2E_APP;
const canary = process.env.TENANTRY_E2E_CANARY;
const customized = process.env.TENANTRY_E2E_CUSTOMIZED;
const shots = new URL("../../target/screenshots/", import.meta.url).pathname;
mkdirSync(shots, { recursive: true });

let driver;
let browser;

before(async () => {
  assert.ok(app && canary && customized, "run through scripts/e2e.sh");
  driver = spawn(process.env.TAURI_DRIVER ?? "tauri-driver", [], { stdio: ["ignore", "inherit", "inherit"] });
  for (let i = 0; i < 50; i++) {
    try {
      const r = await fetch("http://127.0.0.1:4444/status");
      if (r.ok) break;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  browser = await remote({
    hostname: "127.0.0.1",
    port: 4444,
    logLevel: "error",
    capabilities: { "tauri:options": { application: app } },
  });
});

after(async () => {
  await browser?.deleteSession().catch(() => {});
  driver?.kill();
});

async function noCanary(where) {
  const html = await browser.execute(() => document.documentElement.outerHTML);
  assert.ok(!html.includes(canary), `the password reached the DOM on ${where}`);
}

test("the fleet opens with every tenant and its status", async () => {
  await browser.waitUntil(async () => (await browser.$$(".row")).length >= 4, { timeout: 20000 });
  const status = await browser.$(`.row[data-slug="${customized}"]`).getAttribute("data-status");
  assert.equal(status, "customized");
  await browser.saveScreenshot(`${shots}e2e-fleet.png`);
  await noCanary("the fleet");
});

test("a scan runs with progress and reports", async () => {
  await browser.$("#scan").click();
  await browser.waitUntil(async () => (await browser.$(".info").getText()).includes("Scanned"), { timeout: 30000 });
  await browser.saveScreenshot(`${shots}e2e-scanned.png`);
});

test("the customized tenant's drift shows the custom table side by side", async () => {
  await browser.execute((slug) => {
    location.hash = `#/drift/${slug}`;
  }, customized);
  await browser.waitUntil(async () => (await browser.$$(".objects li")).length > 0, { timeout: 20000 });
  const first = await browser.$(".objects li").getText();
  assert.match(first, /added\s+table partner_feed/);
  assert.ok(await browser.$(".sbs").isExisting());
  await browser.saveScreenshot(`${shots}e2e-drift.png`);
  await noCanary("the drift screen");
});

test("the reset wizard needs the exact slug and ends synced", async () => {
  await browser.execute((slug) => {
    location.hash = `#/reset/${slug}`;
  }, customized);
  const input = await browser.$("#confirm-slug");
  await input.waitForExist({ timeout: 20000 });
  await input.setValue(`${customized} `);
  assert.equal(await browser.$("#do-reset").isEnabled(), false, "a near miss must not enable the reset");
  await input.setValue(customized);
  assert.equal(await browser.$("#do-reset").isEnabled(), true);
  await browser.saveScreenshot(`${shots}e2e-reset-plan.png`);
  await browser.$("#do-reset").click();
  await browser.waitUntil(async () => (await browser.$("#reset-result").getText()).includes("Reset finished"), { timeout: 30000 });
  assert.match(await browser.$("#reset-result").getText(), /Reset finished: synced/);
  await browser.saveScreenshot(`${shots}e2e-reset-done.png`);
  await browser.execute(() => {
    location.hash = "#/";
  });
  await browser.waitUntil(async () => (await browser.$(`.row[data-slug="${customized}"]`).getAttribute("data-status")) === "synced", { timeout: 20000 });
  await noCanary("the fleet after the reset");
});

test("the tenant screen runs a health check and shows the history", async () => {
  await browser.execute((slug) => {
    location.hash = `#/tenant/${slug}`;
  }, customized);
  await browser.$("#run-health").waitForExist({ timeout: 20000 });
  await browser.$("#run-health").click();
  await browser.waitUntil(async () => (await browser.$("#health").getText()).includes("Healthy"), { timeout: 20000 });
  const history = await browser.$("table[aria-label=History]").getText();
  assert.match(history, /reset/);
  await browser.saveScreenshot(`${shots}e2e-tenant.png`);
  await noCanary("the tenant screen");
});
