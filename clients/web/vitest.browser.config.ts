import { defineConfig } from "vitest/config";

// Browser tests: Debian's chromium via playwright-core, a real havend and
// the haven CLI (paths from HAVEND and HAVEN). Run after `npm run build`.
export default defineConfig({
  test: {
    include: ["test/browser/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
  },
});
