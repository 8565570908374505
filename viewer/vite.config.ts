// Built assets are served by the Python server under /viewer (yunying.web.viewer); the phone pages
// (mobile.html → /m/…, yunying.web.mobile) are a second entry of the same build sharing /viewer/assets.
// Cornerstone3D needs ES-module workers; the DICOM image loader must not be pre-bundled.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const page = (name: string): string => fileURLToPath(new URL(name, import.meta.url));

export default defineConfig({
  base: '/viewer/',
  build: {
    target: 'esnext', chunkSizeWarningLimit: 8000, outDir: process.env.VIEWER_OUT_DIR || 'dist', emptyOutDir: true,
    rollupOptions: { input: { main: page('index.html'), mobile: page('mobile.html') } },
  },
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['@cornerstonejs/dicom-image-loader'] },
});
