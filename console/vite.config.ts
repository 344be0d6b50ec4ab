// Two pages, the operator console (/ui) and the developer portal
// (/portal), sharing one assets folder. The output (dist/) is embedded in
// edgegw-cp (control-plane/src/web/assets.rs); nothing is loaded from
// elsewhere, and no script or style is inlined into the pages (the
// Content-Security-Policy allows only 'self').
import { defineConfig } from "vite";
import { resolve } from "node:path";

export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    rollupOptions: {
      input: {
        ui: resolve(import.meta.dirname, "ui/index.html"),
        portal: resolve(import.meta.dirname, "portal/index.html"),
      },
    },
  },
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
});
