// End-to-end: the real console window (under Xvfb) driven through
// tauri-driver + WebKitWebDriver + WebdriverIO, walking a newcomer's path:
// the first-run screen, the demo, a template added from its folder and a
// tenant added through the console's forms, then a real PostgreSQL fleet
// (three more imported from a CSV file, guarded by the CLI beside the
// running console), a scan, a drift, a reset and a sync, and a MariaDB
// tenant whose sync is stopped by a lock and finished from the console. Saves a screenshot of
// every screen in light and dark to target/screenshots/ (1280x800).
//
// Needs (set by scripts/e2e.sh): TENANTRY_E2E_APP (the console binary),
// TENANTRY_E2E_CLI, TENANTRY_E2E_DB (an empty PostgreSQL database),
// TENANTRY_DATA_DIR, TENANTRY_KEYRING_SERVICE, TENANTRY_E2E_CANARY,
// TENANTRY_E2E_CUSTOMIZED (the slug of the tenant the test customizes),
// TENANTRY_E2E_MYDB, TENANTRY_E2E_TEMPLATE (a template folder), TENANTRY_E2E_WORK.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { remote } from "webdriverio";

const app = process.env.TENANTRY_E2E_APP;
const cli = process.env.TENANTRY_E2E_CLI;
const db = process.env.TENANTRY_E2E_DB;
const canary = process.env.TENANTRY_E2E_CANARY;
const customized = process.env.TENANTRY_E2E_CUSTOMIZED;
const mydb = process.env.TENANTRY_E2E_MYDB;
const templateDir = process.env.TENANTRY_E2E_TEMPLATE;
const work = process.env.TENANTRY_E2E_WORK;
const shots = new URL("../../target/screenshots/", import.meta.url).pathname;
mkdirSync(shots, { recursive: true });

let driver;
let browser;

before(async () => {
  assert.ok(app && cli && db && canary && customized && mydb && templateDir && work, "run through scripts/e2e.sh");
  // The console opens the registry in its data directory as a user's does
  // (the one TENANTRY_REGISTRY names for the CLI), so Settings offers the
  // choice of a team registry as it would.
  const { TENANTRY_REGISTRY: _cliOnly, ...consoleEnv } = process.env;
  driver = spawn(process.env.TAURI_DRIVER ?? "tauri-driver", [], { stdio: ["ignore", "inherit", "inherit"], env: consoleEnv });
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

/**
 * Saves `<name>-light.png` and `<name>-dark.png`. The window follows the
 * system theme, which WebDriver cannot set, so the dark shot applies the
 * stylesheet's own `prefers-color-scheme: dark` rules for a moment.
 */
async function shoot(name) {
  await browser.saveScreenshot(`${shots}e2e-${name}-light.png`);
  const applied = await browser.execute(() => {
    // Custom properties are copied one by one: WebKit's cssText of a rule
    // does not always carry them.
    const root = document.documentElement;
    let n = 0;
    for (const sheet of document.styleSheets) {
      for (const rule of sheet.cssRules) {
        if (!rule.media || !rule.media.mediaText.includes("prefers-color-scheme: dark")) continue;
        for (const inner of rule.cssRules) {
          if (inner.selectorText !== ":root") continue;
          for (let i = 0; i < inner.style.length; i++) {
            const name = inner.style[i];
            root.style.setProperty(name, inner.style.getPropertyValue(name));
            n++;
          }
        }
      }
    }
    root.style.colorScheme = "dark";
    return n;
  });
  assert.ok(applied > 0, "the stylesheet has dark rules to apply");
  await new Promise((r) => setTimeout(r, 100));
  await browser.saveScreenshot(`${shots}e2e-${name}-dark.png`);
  await browser.execute(() => {
    document.documentElement.removeAttribute("style");
  });
}

async function go(hash) {
  await browser.execute((h) => {
    location.hash = h;
  }, hash);
}

/** The CLI on the console's registry (same data dir and keyring session). */
function tenantry(...args) {
  return execFileSync(cli, args, { encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
}

function psql(sql) {
  execFileSync("psql", ["-q", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-c", sql], { stdio: "ignore" });
}

function mariadb(sql) {
  return execFileSync("mariadb", ["--protocol=tcp", "-h", "127.0.0.1", "-P", "3306", "-u", "root", "-N", mydb, "-e", sql], { encoding: "utf8" }).trim();
}

function psqlValue(sql) {
  return execFileSync("psql", ["-qtA", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-c", sql], { encoding: "utf8" }).trim();
}

test("an empty registry opens on the first-run screen", async () => {
  await browser.waitUntil(async () => (await browser.$("h2").isExisting()) && (await browser.$("h2").getText()) === "Welcome to Tenantry", { timeout: 20000 });
  assert.ok(await browser.$("#open-demo").isExisting());
  assert.ok(await browser.$("#add-tenant").isExisting());
  await shoot("first-run");
});

test("the demo opens in its own registry, marked, with every status", async () => {
  await browser.$("#open-demo").click();
  await browser.waitUntil(async () => (await browser.$$(".row")).length === 7, { timeout: 20000 });
  assert.match(await browser.$(".demo-banner").getText(), /nothing here touches your registry/);
  assert.equal(await browser.$('.row[data-slug="initech"]').getAttribute("data-status"), "customized");
  assert.equal(await browser.$('.row[data-slug="hooli"]').getAttribute("data-status"), "outdated");
  await shoot("demo-fleet");
  await go("#/demo/drift/umbrella");
  await browser.waitUntil(async () => (await browser.$$(".objects li")).length > 0, { timeout: 20000 });
  await shoot("demo-drift");
  await go("#/demo/reset/initech");
  await browser.$("#reset-afterwards").waitForExist({ timeout: 20000 });
  assert.match(await browser.$("#reset-afterwards").getText(), /they are empty/);
  await shoot("demo-reset-plan");
  await go("#/demo/sync/initech");
  await browser.$("#sync-afterwards").waitForExist({ timeout: 20000 });
  assert.match(await browser.$('[aria-label="Sync plan"]').getText(), /table /);
  await shoot("demo-sync-plan");
  // Back to the user's own registry: still empty.
  await browser.$('nav a[data-workspace="own"]').click();
  await browser.waitUntil(async () => (await browser.$("h2").getText()) === "Welcome to Tenantry", { timeout: 20000 });
});

test("the PostgreSQL template is added from its folder on the Templates screen, measured", async () => {
  await go("#/");
  await browser.$("#add-template").waitForExist({ timeout: 20000 });
  await browser.$("#add-template").click();
  await browser.$("#t-dir").waitForExist({ timeout: 20000 });
  await browser.$("#t-dir").setValue(templateDir);
  await browser.$("#t-name").setValue("saas");
  await browser.$("#t-engine").selectByAttribute("value", "postgres");
  await browser.$("#t-scratch").setValue(`postgres://postgres@127.0.0.1:5432/${db}`);
  await browser.$("#t-password").setValue(canary);
  await shoot("template-folder");
  await browser.$("#t-add").click();
  const view = () => browser.execute(() => document.getElementById("view").innerText);
  await browser.waitUntil(async () => (await view()).includes("Added saas") || (await browser.$("#template-result [role=alert]").isExisting()), { timeout: 60000 });
  assert.match(await view(), /Added saas \(postgres\): 1 version measured; no lint findings\./);
  assert.match(await browser.$("table[aria-label='Versions of saas']").getText(), /1\.0\.0/);
  await shoot("template-added");
  await noCanary("the Templates screen after adding a template");
  await go("#/");
  await browser.$("#add-tenant").waitForExist({ timeout: 20000 });
});

test("a tenant is added through the form, its connection tested first", async () => {
  await browser.$("#add-tenant").click();
  await browser.$("#f-slug").waitForExist({ timeout: 20000 });
  await browser.$("#f-slug").setValue("alpha");
  await browser.$("#f-name").setValue("Alpha Ltd");
  await browser.$("#f-url").setValue(`postgres://postgres@127.0.0.1:5432/${db}`);
  await browser.$("#f-password").setValue(canary);
  await browser.$("#f-schema").setValue("tenant_alpha");
  await browser.$("#f-template").selectByAttribute("value", "saas");
  await browser.$("#test-connection").click();
  // The schema does not exist yet: the check says so, and that the guard makes it.
  await browser.waitUntil(async () => (await browser.$("#add-result").getText()).includes("schema guard creates it"), { timeout: 20000 });
  assert.match(await browser.$("#add-result").getText(), /postgres:•••@127\.0\.0\.1/);
  await shoot("add-tenant");
  await noCanary("the add-tenant form after the test");
  await browser.$("#save-tenant").click();
  await browser.waitUntil(async () => (await browser.execute(() => location.hash)) === "#/tenant/alpha", { timeout: 20000 });
  await browser.$("#run-health").waitForExist({ timeout: 20000 });
  await noCanary("the new tenant's screen");
});

test("three more are imported from a CSV file after a preview, and the CLI guards them beside the running console", async () => {
  const url = `postgres://postgres:${canary}@127.0.0.1:5432/${db}`;
  const csv = `${work}/tenants.csv`;
  writeFileSync(csv, ["slug,url,schema,template,template_version", ...["beta", "gamma", "delta"].map((t) => `${t},${url},tenant_${t},saas,1.0.0`)].join("\n") + "\n");
  await go("#/");
  await browser.$("#fleet-import").waitForExist({ timeout: 20000 });
  await browser.$("#fleet-import").click();
  await browser.$("#i-path").waitForExist({ timeout: 20000 });
  await browser.$("#i-path").setValue(csv);
  await browser.$("#i-preview").click();
  await browser.waitUntil(async () => (await browser.$("#i-import").getText()) === "Import 3 tenants", { timeout: 20000 });
  assert.match(await browser.$("table[aria-label='Import preview']").getText(), /beta, gamma, delta/);
  await shoot("import-preview");
  await noCanary("the import preview");
  await browser.$("#i-import").click();
  await browser.waitUntil(async () => (await browser.$("#import-result").getText()).includes("Imported: 3 new"), { timeout: 20000 });
  await noCanary("the import's result");
  tenantry("guard", "--all");
  psql(`CREATE TABLE tenant_${customized}.partner_feed (id int); INSERT INTO tenant_${customized}.partner_feed VALUES (1), (2);`);
  await go("#/");
  await browser.waitUntil(async () => (await browser.$$(".row")).length === 4, { timeout: 20000 });
  await browser.$("#scan").click();
  await browser.waitUntil(async () => (await browser.$(".info").isExisting()) && (await browser.$(".info").getText()).includes("Scanned"), { timeout: 30000 });
  assert.equal(await browser.$(`.row[data-slug="${customized}"]`).getAttribute("data-status"), "customized");
  assert.equal(await browser.$('.row[data-slug="alpha"]').getAttribute("data-status"), "synced");
  await shoot("fleet-scanned");
  await noCanary("the fleet");
});

test("the customized tenant's drift shows the custom table side by side", async () => {
  await go(`#/drift/${customized}`);
  await browser.waitUntil(async () => (await browser.$$(".objects li")).length > 0, { timeout: 20000 });
  const first = await browser.$(".objects li").getText();
  assert.match(first, /added\s+table partner_feed/);
  const merged = await browser.execute(() => {
    const root = document.getElementById("ddl-merge").shadowRoot;
    const view = root && root.querySelector(".cm-mergeView");
    // Its styles applied (the CSP allows a shadow root's constructed sheets):
    // the two editors sit side by side.
    const editors = root ? [...root.querySelectorAll(".cm-editor")].map((e) => e.getBoundingClientRect()) : [];
    return { view: !!view, sideBySide: editors.length === 2 && editors[1].left > editors[0].right - 1 };
  });
  assert.deepEqual(merged, { view: true, sideBySide: true });
  await shoot("drift");
  await noCanary("the drift screen");
});

test("a synced tenant offers no reset; the customized one's reset needs the exact slug and ends synced", async () => {
  await go("#/tenant/alpha");
  await browser.$("#run-health").waitForExist({ timeout: 20000 });
  assert.equal(await browser.$('a[href="#/reset/alpha"]').isExisting(), false);
  assert.ok(await browser.$("#no-actions").isExisting());
  await shoot("tenant-synced");

  await go(`#/reset/${customized}`);
  const input = await browser.$("#confirm-slug");
  await input.waitForExist({ timeout: 20000 });
  assert.match(await browser.$('[aria-label="Reset plan"]').getText(), /partner_feed/);
  await input.setValue(`${customized} `);
  assert.equal(await browser.$("#do-reset").isEnabled(), false, "a near miss must not enable the reset");
  await input.setValue(customized);
  assert.equal(await browser.$("#do-reset").isEnabled(), true);
  await shoot("reset-plan");
  await browser.$("#do-reset").click();
  await browser.waitUntil(async () => (await browser.$("#reset-result").getText()).includes("Reset finished"), { timeout: 30000 });
  assert.match(await browser.$("#reset-result").getText(), /Reset finished: synced/);
  // The journal's entries, streamed from the engine as it wrote them.
  assert.match(await browser.$("#reset-result").getText(), /reset started; backup: schema tenantry_q_[\s\S]*in one transaction[\s\S]*finished: ok/);
  const inView = await browser.execute(() => {
    const r = document.getElementById("reset-result").getBoundingClientRect();
    return r.top >= 0 && r.bottom <= window.innerHeight;
  });
  assert.ok(inView, "the result must be in view");
  await shoot("reset-done");
  await go("#/");
  await browser.waitUntil(async () => (await browser.$(`.row[data-slug="${customized}"]`).getAttribute("data-status")) === "synced", { timeout: 20000 });
  await noCanary("the fleet after the reset");
});

test("a customized tenant is synced back keeping its rows, from a plan that names every step", async () => {
  psql(`ALTER TABLE tenant_gamma.users ADD COLUMN badge text; ALTER TABLE tenant_gamma.projects ALTER COLUMN name DROP NOT NULL;
        INSERT INTO tenant_gamma.accounts (name) VALUES ('Gamma Ltd'), ('Gamma GmbH');`);
  execFileSync(cli, ["scan", "--fail-on", "never"], { stdio: ["ignore", "ignore", "inherit"] });
  await go("#/tenant/gamma");
  await browser.$("#sync-link").waitForExist({ timeout: 20000 });
  await browser.$("#sync-link").click();
  const input = await browser.$("#confirm-slug");
  await input.waitForExist({ timeout: 20000 });
  const steps = await browser.$('[aria-label="Sync plan"]').getText();
  assert.match(steps, /destructive/);
  assert.match(steps, /custom column badge/);
  assert.match(steps, /make name NOT NULL again/);
  await browser.$("#keep summary").click();
  assert.match(await browser.$("#keep").getText(), /table users/);
  await input.setValue("gamma");
  assert.equal(await browser.$("#do-sync").isEnabled(), true);
  await shoot("sync-plan");
  await browser.$("#do-sync").click();
  await browser.waitUntil(async () => (await browser.$("#sync-result").getText()).includes("now matches"), { timeout: 30000 });
  assert.match(await browser.$("#sync-result").getText(), /gamma is synced: it now matches saas 1\.0\.0/);
  assert.equal(psqlValue("SELECT count(*) FROM tenant_gamma.accounts"), "2", "the rows stay");
  await shoot("sync-done");
  await noCanary("the sync screen");
});

test("a MariaDB tenant's sync runs step by step: stopped by a lock it says what ran, and the console finishes it", async () => {
  execFileSync(cli, ["tenant", "add", "omega", "--url", "-", "--template", "saas-my", "--template-version", "1.0.0"], { input: `mysql://root@127.0.0.1:3306/${mydb}\n`, stdio: ["pipe", "ignore", "inherit"] });
  tenantry("guard", "omega");
  mariadb(`INSERT INTO accounts (name) VALUES ('Omega Ltd'), ('Omega GmbH');
           INSERT INTO users (account_id, email) VALUES (1, 'a@omega.test'), (2, 'b@omega.test');
           INSERT INTO invoices (account_id, number) VALUES (1, 'INV-1');
           CREATE VIEW big_accounts AS SELECT id FROM accounts;
           ALTER TABLE users ADD COLUMN badge TEXT; UPDATE users SET badge = 'gold' WHERE id = 1;
           ALTER TABLE invoices ALTER COLUMN total_cents SET DEFAULT 100;`);
  execFileSync(cli, ["scan", "--fail-on", "never"], { stdio: ["ignore", "ignore", "inherit"] });
  await go("#/tenant/omega");
  await browser.$("#sync-link").waitForExist({ timeout: 20000 });
  await browser.$("#sync-link").click();
  const input = await browser.$("#confirm-slug");
  await input.waitForExist({ timeout: 20000 });
  assert.match(await browser.$("#sync-afterwards").getText(), /the steps run one by one/);
  assert.match(await browser.$('[aria-label="Sync plan"]').getText(), /custom column badge/);
  await input.setValue("omega");
  await shoot("sync-mysql-plan");

  // Another session reads invoices in an open transaction: the sync's
  // ALTER there waits for the lock, and its connection is killed.
  const holder = spawn("mariadb", ["--protocol=tcp", "-h", "127.0.0.1", "-P", "3306", "-u", "root", mydb], { stdio: ["pipe", "ignore", "inherit"] });
  holder.stdin.write("START TRANSACTION; SELECT * FROM invoices LIMIT 1;\n");
  await browser.waitUntil(async () => mariadb(`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '${mydb}' AND COMMAND = 'Sleep'`) !== "0", { timeout: 20000 });
  await browser.$("#do-sync").click();
  let victim = "";
  await browser.waitUntil(async () => {
    victim = mariadb("SELECT ID FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for table metadata lock%' AND INFO LIKE '%invoices%'");
    return victim !== "";
  }, { timeout: 30000 });
  mariadb(`KILL CONNECTION ${victim}`);
  await browser.waitUntil(async () => (await browser.$("#sync-result").getText()).includes("stopped at step"), { timeout: 30000 });
  holder.stdin.end("COMMIT;\n");
  assert.ok(await browser.$("#sync-finish").isExisting(), "the stopped sync offers to plan what is left");
  await shoot("sync-mysql-stopped");

  await browser.$("#sync-finish").click();
  await browser.$("#sync-resumes").waitForExist({ timeout: 20000 });
  assert.match(await browser.$("#sync-resumes").getText(), /stopped after 3 steps/);
  assert.doesNotMatch(await browser.$('[aria-label="Sync plan"]').getText(), /custom column badge/);
  await browser.$("#confirm-slug").setValue("omega");
  await shoot("sync-mysql-resume");
  await browser.$("#do-sync").click();
  await browser.waitUntil(async () => (await browser.$("#sync-result").getText()).includes("now matches"), { timeout: 30000 });
  assert.match(await browser.$("#sync-result").getText(), /omega is synced: it now matches saas-my 1\.0\.0/);
  assert.equal(mariadb("SELECT COUNT(*) FROM accounts"), "2", "the rows stay");
  await noCanary("the MariaDB sync");
});

test("the tenant screen runs a health check and shows the history", async () => {
  await go(`#/tenant/${customized}`);
  await browser.$("#run-health").waitForExist({ timeout: 20000 });
  await browser.$("#run-health").click();
  await browser.waitUntil(async () => (await browser.$("#health").getText()).includes("Healthy"), { timeout: 20000 });
  const history = await browser.$("table[aria-label=History]").getText();
  assert.match(history, /reset/);
  await shoot("tenant");
  // Its drift timeline: provisioned synced, customized by the scan, synced
  // again by the reset.
  const timeline = await browser.$("ol[aria-label='Drift timeline']");
  const changes = await timeline.getText();
  assert.match(changes, /synced\s*→\s*customized/);
  assert.match(changes, /customized\s*→\s*synced/);
  await timeline.scrollIntoView();
  await shoot("tenant-timeline");
  await noCanary("the tenant screen");
});

test("a reference schema is captured from the Templates screen as the template's next version", async () => {
  // A staging-style reference: the template as it is, plus what comes next.
  const fixture = new URL("../fixtures/postgres/template.sql", import.meta.url).pathname;
  psql("CREATE SCHEMA reference_tpl");
  execFileSync("psql", ["-q", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-f", fixture], {
    stdio: "ignore",
    env: { ...process.env, PGOPTIONS: "--search_path=reference_tpl" },
  });
  psql("CREATE TABLE reference_tpl.partner_feed (id int PRIMARY KEY, label text NOT NULL)");
  await go("#/templates");
  await browser.$("#c-url").waitForExist({ timeout: 20000 });
  await browser.$("#c-url").setValue(`postgres://postgres@127.0.0.1:5432/${db}`);
  await browser.$("#c-password").setValue(canary);
  await browser.$("#c-schema").setValue("reference_tpl");
  await browser.$("#c-name").setValue("saas");
  await browser.$("#c-version").setValue("1.1.0");
  await browser.$("#capture").click();
  const page = () => browser.execute(() => document.body.innerText);
  await browser.waitUntil(async () => /Captured saas version 1\.1\.0|reference was not captured/.test(await page()), { timeout: 60000 });
  assert.match(await page(), /Captured saas version 1\.1\.0/);
  const versions = await browser.$("table[aria-label='Versions of saas']").getText();
  assert.match(versions, /1\.0\.0[\s\S]*1\.1\.0/);
  await browser.$("#c-url").scrollIntoView();
  await shoot("template-capture");
  await noCanary("the templates screen");
  // The CLI sees the same lineage; the stored migration is only the difference.
  const listed = tenantry("template", "list", "--json");
  assert.match(listed, /"1\.1\.0"/);
});

test("a shared registry: the console acts for its member, and a viewer is offered only reading", async () => {
  // A second member's public key (X25519, as `tenantry member key` prints it).
  const { generateKeyPairSync } = await import("node:crypto");
  const raw = generateKeyPairSync("x25519").publicKey.export({ format: "der", type: "spki" }).subarray(-32);
  const bob = `tenantry-member-v1:${raw.toString("hex")}`;
  // The console's user (same keyring) enrols as an admin, adds Bob as an
  // admin, then makes themself a viewer.
  tenantry("member", "add", "bob", "--public-key", bob, "--as", "dana", "--role", "admin");
  tenantry("member", "role", "dana", "viewer");
  assert.match(tenantry("member", "list"), /dana \(you\)\s+viewer/);

  await go("#/settings");
  await browser.$("#you").waitForExist({ timeout: 20000 });
  assert.match(await browser.$("#you").getText(), /You are dana, a viewer/);
  assert.match(await browser.$("table[aria-label=Members]").getText(), /bob\s*admin[\s\S]*dana \(you\)\s*viewer/);
  assert.ok(await browser.$("#no-rotate").isExisting(), "rotation is not offered to a viewer");
  await shoot("members-viewer");

  await go("#/");
  await browser.$("#match-count").waitForExist({ timeout: 20000 });
  for (const id of ["scan", "guard-fleet", "fleet-add", "fleet-import"]) {
    assert.ok(!(await browser.$(`#${id}`).isExisting()), `${id} is not offered to a viewer`);
  }
  await go(`#/tenant/${customized}`);
  await browser.$("#run-health").waitForExist({ timeout: 20000 });
  await browser.waitUntil(async () => (await browser.$("#no-actions").isExisting()), { timeout: 20000 });
  assert.match(await browser.$("#no-actions").getText(), /As a viewer of this shared registry/);
  await shoot("tenant-viewer");
  await go(`#/reset/${customized}`);
  await browser.waitUntil(async () => /resetting a tenant is for admins/.test(await browser.execute(() => document.body.innerText)), { timeout: 20000 });

  // The engine refuses it too, from the CLI, and the audit log names dana.
  let refused = "";
  try {
    tenantry("scan", "--fail-on", "never");
  } catch (e) {
    refused = String(e.stderr);
  }
  assert.match(refused, /role_refused/);
  assert.match(tenantry("audit", "log", "--limit", "5"), /dana \(/);
});
