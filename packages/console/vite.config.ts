import react from "@vitejs/plugin-react"
import { defineConfig } from "vite"

// The Backend serves `dist/`: `index.html` for the console's routes, `dist/assets/*` hashed and cached for a year.
// Nothing is inlined (the Content-Security-Policy allows no inline script or style), no module-preload polyfill.
export default defineConfig({
  plugins: [react()],
  // The `source` export condition: the console bundles the @yoi packages' src/*.ts, so it builds without their dist/.
  resolve: { conditions: ["source", "module", "browser", "development|production"] },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: "es2022",
    reportCompressedSize: false,
    chunkSizeWarningLimit: 1024
  }
})
