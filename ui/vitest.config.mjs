import { defineConfig } from "vitest/config";
import { svelte } from "@sveltejs/vite-plugin-svelte";

export default defineConfig({
  plugins: [svelte()],
  // Svelte's browser build (mount), not its server build.
  resolve: { conditions: ["browser"] },
  test: { environment: "jsdom", include: ["test/**/*.test.ts"] },
});
