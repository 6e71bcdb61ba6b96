// Builds the static frontend into dist/: one bundled script (TypeScript and
// Svelte components), the page and its stylesheet. No dev server: the app loads dist/ as its frontendDist.
import { build } from "esbuild";
import sveltePlugin from "esbuild-svelte";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist", { recursive: true });
await build({
  entryPoints: ["src/main.ts"],
  bundle: true,
  format: "esm",
  target: "es2022",
  outfile: "dist/main.js",
  minify: true,
  sourcemap: false,
  logLevel: "warning",
  // Svelte screens: compiled for the browser; they style themselves with
  // the global stylesheet's classes, so no component CSS is emitted.
  mainFields: ["svelte", "browser", "module", "main"],
  conditions: ["svelte", "browser"],
  plugins: [sveltePlugin({ compilerOptions: { css: "injected" } })],
});
copyFileSync("index.html", "dist/index.html");
copyFileSync("src/styles.css", "dist/styles.css");
copyFileSync("../icons/32x32.png", "dist/favicon.png");
