// The phone viewer on Cornerstone3D: start-up (WebGL, decoder workers) and the study's metadata in parallel,
// then the shell, tools, 3D and overlay. Returns false when Cornerstone cannot start (the caller falls back to
// server-rendered images); errors about the study itself are shown here.

import { Enums as CoreEnums } from '@cornerstonejs/core';
import { TAG, personName, showDate, text } from '../../api/dicomweb';
import { ApiError } from '../../api/http';
import { startCornerstone } from '../../viewer/cornerstone';
import { type Study, loadStudy } from '../../viewer/study';
import type { Chrome } from './chrome';
import { installMpr } from './mpr';
import { installOverlay } from './overlay';
import { createShell, openShell } from './shell';
import { installMoreButton, installTools } from './tools';

declare global {
  interface Window { yunyingViewer?: Record<string, unknown> }
}

export async function startWebgl(chrome: Chrome, studyUid: string, seriesUid: string | null): Promise<boolean> {
  const loading = loadStudy(studyUid);
  loading.catch(() => undefined); // handled below
  try {
    await startCornerstone();
  } catch {
    return false;
  }
  let study: Study;
  try {
    study = await loading;
  } catch (error) {
    chrome.hideProgress();
    const status = error instanceof ApiError ? error.status : 0;
    chrome.notify(status === 404 || status === 403 ? 'm.studyNotFound' : 'm.loadFailed', { detail: String((error as Error).message) }, 'error');
    return true;
  }
  chrome.setTitle([personName(study.first, TAG.PatientName), showDate(text(study.first, TAG.StudyDate))]);
  if (!study.series.some((s) => !s.nonImage)) {
    chrome.hideProgress();
    chrome.notify('m.noImages', {}, 'error');
    return true;
  }
  chrome.progress(null, 'm.loadingImages');
  const viewer = createShell(chrome, study);
  const first = document.querySelector('.m-grid')!;
  let firstImageMs: number | null = null; // from the page's navigation start (the benchmark reads it)
  first.addEventListener(CoreEnums.Events.IMAGE_RENDERED, () => {
    firstImageMs = Math.round(performance.now());
    chrome.hideProgress();
  }, { capture: true, once: true });
  await openShell(viewer, { series: seriesUid });
  Object.assign(window.yunyingViewer!.mobile as object, { firstImageMs: () => firstImageMs });
  installTools(chrome, viewer);
  const mpr = installMpr(chrome, viewer);
  installMoreButton(chrome, viewer);
  installOverlay(viewer.ctx, mpr.planeLabel);
  chrome.notify('m.help');
  document.body.dataset.viewerReady = 'true';
  return true;
}
