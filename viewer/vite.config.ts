// Built assets are served by the Python server under /viewer (yunying.web.viewer).
// Cornerstone3D needs ES-module workers; the DICOM image loader must not be pre-bundled.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/viewer/',
  build: { target: 'esnext', chunkSizeWarningLimit: 8000, outDir: process.env.VIEWER_OUT_DIR || 'dist', emptyOutDir: true },
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['@cornerstonejs/dicom-image-loader'] },
});
