// Without WebGL (old phones, WebGL switched off, or ?render=server): images rendered by the server —
// WADO-RS /rendered JPEGs at the screen's size (never above the image's own matrix), the window in the URL
// (?window=center,width,linear) for presets — with the same gestures: swipe to scroll (neighbours preloaded in
// the scrolling direction), pinch zoom and pan and double tap as CSS transforms. No measuring or 3D here: the
// pixels on screen are a picture, not data. Loads no Cornerstone code (studyModel.ts, not study.ts).

import { DICOMWEB, TAG, numbers, personName, showDate, studyMetadata, text, thumbnailUrl } from '../../api/dicomweb';
import { ApiError } from '../../api/http';
import { clear, el } from '../../dom';
import { t } from '../../i18n';
import { presetLabel, presetsFor, type WindowPreset } from '../../viewer/tools/presetData';
import { buildStudy, type Series, type Study } from '../../viewer/studyModel';
import type { Chrome } from './chrome';
import { attachGestures, type Point } from './gestures';

const PRELOAD_AHEAD = 4;
const PRELOAD_BEHIND = 1;
const MAX_ZOOM = 10;

interface View { scale: number; x: number; y: number }

function renderedUrl(studyUid: string, seriesUid: string, sop: string, frame: number, frames: number): string {
  const base = `${DICOMWEB}/studies/${studyUid}/series/${seriesUid}/instances/${sop}`;
  return frames > 1 ? `${base}/frames/${frame}/rendered` : `${base}/rendered`;
}

export async function startFallback(chrome: Chrome, studyUid: string, seriesUid: string | null): Promise<void> {
  let study: Study;
  try {
    const items = await studyMetadata(studyUid);
    if (!items.length) throw new ApiError(404, 'study not found');
    study = buildStudy(studyUid, items, (series, instance) => Array.from({ length: instance.frames },
      (_x, k) => renderedUrl(studyUid, series, instance.sopInstanceUid, k + 1, instance.frames)));
  } catch (error) {
    chrome.hideProgress();
    const status = error instanceof ApiError ? error.status : 0;
    chrome.notify(status === 404 || status === 403 ? 'm.studyNotFound' : 'm.loadFailed', { detail: String((error as Error).message) }, 'error');
    return;
  }
  const images = study.series.filter((s) => !s.nonImage && s.imageIds.length);
  chrome.setTitle([personName(study.first, TAG.PatientName), showDate(text(study.first, TAG.StudyDate))]);
  if (!images.length) {
    chrome.hideProgress();
    chrome.notify('m.noImages', {}, 'error');
    return;
  }
  chrome.notify('m.fallback', {}, 'warning');

  const picture = el('img', { class: 'm-rendered', alt: '', draggable: 'false' });
  const layer = el('div', { class: 'm-rendered-layer' }, picture);
  const overlay = el('div', { class: 'm-overlay', 'aria-hidden': 'true' });
  const frame = el('div', { class: 'm-slot m-fallback' }, el('div', { class: 'm-viewport' }, layer), overlay);
  chrome.stage.prepend(el('div', { class: 'm-grid' }, frame));

  let series: Series = images.find((s) => s.uid === seriesUid) ?? images[0];
  let index = 0;
  let preset: WindowPreset | null = null;
  let view: View = { scale: 1, x: 0, y: 0 };
  let direction = 1;
  let firstImageMs: number | null = null;
  const preloaded = new Map<string, HTMLImageElement>();

  const urlAt = (i: number): string => {
    const instance = series.instances[Math.min(i, series.instances.length - 1)];
    const columns = numbers(instance?.metadata ?? {}, TAG.Columns)[0] || 1024;
    const rows = numbers(instance?.metadata ?? {}, TAG.Rows)[0] || 1024;
    const scale = Math.min(1, (frame.clientWidth * devicePixelRatio) / columns, (frame.clientHeight * devicePixelRatio) / rows);
    const params = new URLSearchParams({ viewport: `${Math.max(64, Math.round(columns * scale))},${Math.max(64, Math.round(rows * scale))}`, quality: '85' });
    if (preset?.width && preset.center !== null) params.set('window', `${preset.center},${preset.width},linear`);
    return `${series.imageIds[i]}?${params}`;
  };
  const preload = () => {
    const wanted = new Set<string>();
    for (let k = -PRELOAD_BEHIND; k <= PRELOAD_AHEAD; k++) {
      const i = index + k * direction;
      if (i >= 0 && i < series.imageIds.length) wanted.add(urlAt(i));
    }
    for (const url of [...preloaded.keys()]) if (!wanted.has(url)) preloaded.delete(url);
    for (const url of wanted) {
      if (!preloaded.has(url)) preloaded.set(url, Object.assign(new Image(), { src: url }));
    }
  };
  const drawOverlay = () => {
    const first = series.instances[0]?.metadata ?? study.first;
    clear(overlay);
    overlay.append(
      el('div', { class: 'm-ov m-ov-tl' }, el('div', { class: 'm-ov-line', 'data-field': 'patient-name' }, personName(first, TAG.PatientName)),
        el('div', { class: 'm-ov-line', 'data-field': 'study-date' }, showDate(text(first, TAG.StudyDate)))),
      el('div', { class: 'm-ov m-ov-tr' }, el('div', { class: 'm-ov-line', 'data-field': 'image' },
        t('m.slice', { index: index + 1, total: series.imageIds.length }))),
      el('div', { class: 'm-ov m-ov-bl' }, el('div', { class: 'm-ov-line', 'data-field': 'wl' },
        preset?.width ? t('m.wlValue', { width: preset.width, center: preset.center ?? '' }) : '')),
    );
  };
  const show = (next: number) => {
    index = Math.max(0, Math.min(series.imageIds.length - 1, next));
    picture.src = urlAt(index);
    drawOverlay();
    preload();
  };
  const applyView = () => {
    layer.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
  };
  picture.addEventListener('load', () => {
    if (firstImageMs === null) firstImageMs = Math.round(performance.now()); // from the navigation start
    chrome.hideProgress();
  });

  // gestures: scroll and zoom; windowing here is by preset (each change is a new picture from the server)
  let pinch: { view: View; anchor: Point } | null = null;
  const contentPoint = (at: Point, v: View): Point => ({ x: (at.x - v.x) / v.scale, y: (at.y - v.y) / v.scale });
  const zoomTo = (scale: number, anchor: Point, at: Point) => {
    const s = Math.max(1, Math.min(MAX_ZOOM, scale));
    view = { scale: s, x: at.x - s * anchor.x, y: at.y - s * anchor.y };
    applyView();
  };
  attachGestures(frame, {
    scroll(steps) {
      direction = steps > 0 ? 1 : -1;
      show(index + steps);
    },
    pinchStart(center) { pinch = { view: { ...view }, anchor: contentPoint(center, view) }; },
    pinch(scale, center) { if (pinch) zoomTo(pinch.view.scale * scale, pinch.anchor, center); },
    pinchEnd() { pinch = null; },
    doubleTap(at) {
      if (view.scale > 1.01) {
        view = { scale: 1, x: 0, y: 0 };
        applyView();
      } else {
        zoomTo(2.5, contentPoint(at, view), at);
      }
    },
  }, () => 'browse');

  // toolbar: series, presets, reset
  const seriesSheet = chrome.sheet('series', 'm.series.title');
  for (const item of images) {
    const button = el('button', { type: 'button', class: 'm-series', 'data-series': item.uid },
      el('img', { class: 'm-thumb', alt: '', loading: 'lazy', src: thumbnailUrl(study.uid, item.uid) }),
      el('span', { class: 'm-series-text' }, `${item.modality} ${item.number} ${item.description}`),
      el('span', { class: 'm-series-count' }, t('m.series.count', { count: item.imageIds.length })));
    button.addEventListener('click', () => {
      series = item;
      preset = null;
      preloaded.clear();
      seriesSheet.close();
      show(0);
    });
    seriesSheet.body.append(button);
  }
  chrome.button('series', 'm.series', '▤', () => seriesSheet.toggle());
  const presetSheet = chrome.sheet('presets', 'm.presets.title');
  chrome.button('presets', 'm.presets', '◐', () => {
    clear(presetSheet.body);
    presetsFor(series.modality).forEach((item, k) => {
      const button = el('button', { type: 'button', class: 'm-sheet-button', 'data-preset': item.key }, presetLabel(item, k));
      button.addEventListener('click', () => { preset = item.width === null ? null : item; presetSheet.close(); show(index); });
      presetSheet.body.append(button);
    });
    presetSheet.toggle();
  });
  chrome.button('reset', 'm.reset', '⟲', () => { view = { scale: 1, x: 0, y: 0 }; applyView(); });

  chrome.progress(null, 'm.loadingImages');
  show(0);
  const exposed = window as unknown as { yunyingViewer?: Record<string, unknown> };
  Object.assign(exposed.yunyingViewer ??= {}, {
    ready: true,
    mobile: {
      render: 'server', index: () => index, total: () => series.imageIds.length, src: () => picture.currentSrc || picture.src,
      scale: () => view.scale, series: () => series.uid, firstImageMs: () => firstImageMs,
    },
  });
  document.body.dataset.viewerReady = 'true';
}
