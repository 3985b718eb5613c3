import { defineConfig } from "vitest/config";

// One origin, no third-party requests: everything (libsodium's wasm
// included, inlined by libsodium.js) is bundled into dist/.
export default defineConfig({
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 4096,
  },
  test: {
    include: ["test/**/*.test.ts"],
  },
});
