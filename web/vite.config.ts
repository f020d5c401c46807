import { fileURLToPath } from "node:url";

import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The bundle goes inside the Python package (git ignores it), where `genesis serve` finds it
// in a checkout and the wheel build (hatch_build.py) picks it up: running genesis needs no Node.
const bundleDir = fileURLToPath(new URL("../src/genesis/service/web_dist", import.meta.url));

// `npm run dev` proxies the API to a local `genesis serve` (GENESIS_DEV_API overrides it).
const api = process.env.GENESIS_DEV_API ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: bundleDir,
    emptyOutDir: true,
    assetsDir: "assets",
    // The Content-Security-Policy allows no inline script or data: fonts; keep assets as files.
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: false,
  },
  server: {
    host: "127.0.0.1",
    strictPort: false,
    proxy: {
      "/v1": { target: api, changeOrigin: false },
      "/livez": api,
      "/readyz": api,
    },
  },
});
