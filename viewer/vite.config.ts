// Built assets are served by the Python server under /viewer (yunying.web.viewer); three pages share them: the
// diagnostic viewer (index.html, /viewer), the phone viewer (mobile-viewer.html, /m/viewer, yunying.web.mobile_viewer)
// and the cloud film's phone pages (mobile.html, /m/… and /s/{token}, yunying.web.mobile).
// Cornerstone3D needs ES-module workers; the DICOM image loader must not be pre-bundled.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const page = (name: string): string => fileURLToPath(new URL(name, import.meta.url));

export default defineConfig({
  base: '/viewer/',
  build: {
    target: 'esnext', chunkSizeWarningLimit: 8000, outDir: process.env.VIEWER_OUT_DIR || 'dist', emptyOutDir: true,
    rollupOptions: { input: { main: page('index.html'), mobile: page('mobile.html'), 'mobile-viewer': page('mobile-viewer.html') } },
  },
  worker: { format: 'es' },
  optimizeDeps: { exclude: ['@cornerstonejs/dicom-image-loader'] },
});
