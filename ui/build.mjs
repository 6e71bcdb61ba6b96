// Builds the static frontend into dist/: one bundled script, the page and
// its stylesheet. No dev server: the app loads dist/ as its frontendDist.
import { build } from "esbuild";
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
});
copyFileSync("index.html", "dist/index.html");
copyFileSync("src/styles.css", "dist/styles.css");
copyFileSync("../icons/32x32.png", "dist/favicon.png");
