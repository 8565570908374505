// Cornerstone3D start-up: rendering core, tools, and the DICOM image loader whose web workers decode
// (WASM codecs) so that decoding never blocks scrolling.

import { init as coreInit } from '@cornerstonejs/core';
import { init as toolsInit } from '@cornerstonejs/tools';
import { init as loaderInit } from '@cornerstonejs/dicom-image-loader';

let started: Promise<void> | null = null;

export function startCornerstone(): Promise<void> {
  started ??= (async () => {
    await coreInit();
    toolsInit();
    const workers = Math.max(1, Math.min(4, (navigator.hardwareConcurrency || 2) - 0));
    loaderInit({ maxWebWorkers: workers });
  })();
  return started;
}
