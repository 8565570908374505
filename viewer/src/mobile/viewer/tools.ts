// The phone toolbar: series sheet, window presets (per modality, shared with the diagnostic viewer), the W/L
// mode toggle, measurements (Cornerstone's LengthTool and AngleTool on a single touch), cine, and a "more"
// sheet with invert, rotate 90°, flips, reset, layout and cine speed. Works on whatever viewport the active
// slot holds (a stack, or the MPR plane).

import { type Types, utilities as coreUtilities } from '@cornerstonejs/core';
import { AngleTool, LengthTool, addTool, annotation, utilities } from '@cornerstonejs/tools';
import { thumbnailUrl } from '../../api/dicomweb';
import { clear, el } from '../../dom';
import { t, translateTree } from '../../i18n';
import type { Slot } from '../../viewer/context';
import { applyPreset, presetLabel, presetsFor } from '../../viewer/tools/presets';
import type { Chrome } from './chrome';
import type { MobileViewer } from './shell';

type AnyViewport = Types.IStackViewport | Types.IVolumeViewport;
const FPS_STEPS = [2, 5, 10, 15, 20, 30];

function sheetButton(id: string, labelKey: string, onClick: () => void, extra: Record<string, string> = {}): HTMLButtonElement {
  const button = el('button', { type: 'button', class: 'm-sheet-button', 'data-action': id, 'data-i18n': labelKey, ...extra });
  button.addEventListener('click', onClick);
  return button;
}

/** The last toolbar button (after the 3D one). */
export function installMoreButton(chrome: Chrome, viewer: MobileViewer): void {
  chrome.button('more', 'm.more', '⋯', () => viewer.more.toggle());
}

export function installTools(chrome: Chrome, viewer: MobileViewer): void {
  const { ctx } = viewer;
  const activeViewport = (): AnyViewport | null => (ctx.engine.getViewport(ctx.activeSlot().id) as AnyViewport | undefined) ?? null;
  const change = (fn: (viewport: AnyViewport) => void) => {
    const viewport = activeViewport();
    if (!viewport) return;
    fn(viewport);
    viewport.render();
  };

  // series: thumbnails, tap shows the series in the active viewport
  const seriesSheet = chrome.sheet('series', 'm.series.title');
  const seriesList = el('div', { class: 'm-series-list' });
  seriesSheet.body.append(seriesList);
  for (const series of ctx.study.series.filter((s) => !s.nonImage)) {
    const item = el('button', { type: 'button', class: 'm-series', 'data-series': series.uid },
      el('img', { class: 'm-thumb', alt: '', loading: 'lazy', src: thumbnailUrl(ctx.study.uid, series.uid) }),
      el('span', { class: 'm-series-text' }, `${series.modality} ${series.number} ${series.description}`),
      el('span', { class: 'm-series-count', 'data-count': series.imageIds.length }));
    item.addEventListener('click', () => {
      seriesSheet.close();
      void ctx.showSeries(ctx.activeSlot(), series);
    });
    seriesList.append(item);
  }
  const countLabels = () => seriesList.querySelectorAll<HTMLElement>('.m-series-count').forEach((node) => {
    node.textContent = t('m.series.count', { count: Number(node.dataset.count) });
  });
  const markShown = () => seriesList.querySelectorAll<HTMLElement>('.m-series').forEach((node) => {
    node.classList.toggle('m-shown', ctx.activeSlot()?.series?.uid === node.dataset.series);
  });
  countLabels();
  ctx.on('locale-changed', countLabels);
  ctx.on('series-shown', markShown);
  ctx.on('active-changed', markShown);
  chrome.button('series', 'm.series', '▤', () => { markShown(); seriesSheet.toggle(); });

  // window presets of the active series' modality (CT: lung, mediastinum, bone …)
  const presetSheet = chrome.sheet('presets', 'm.presets.title');
  const fillPresets = () => {
    clear(presetSheet.body);
    presetsFor(ctx.activeSlot().series?.modality).forEach((preset, index) => {
      presetSheet.body.append(sheetButton(`preset-${preset.key}`, '', () => {
        const viewport = activeViewport();
        if (viewport) applyPreset(viewport as Types.IStackViewport, preset);
        presetSheet.close();
      }, { 'data-preset': preset.key }));
      presetSheet.body.lastElementChild!.textContent = presetLabel(preset, index);
      presetSheet.body.lastElementChild!.removeAttribute('data-i18n');
    });
  };
  chrome.button('presets', 'm.presets', '◐', () => { fillPresets(); presetSheet.toggle(); });

  // W/L mode: one finger windows in both axes instead of scrolling
  const wl = chrome.button('wl', 'm.wl', '☼', () => {
    viewer.setMode(viewer.mode() === 'wl' ? 'browse' : 'wl');
    if (viewer.mode() === 'wl') chrome.notify('m.help.wl');
    syncPressed();
  });

  // measurements: a single touch draws (Cornerstone's tools); two fingers still zoom and pan
  for (const tool of [LengthTool, AngleTool]) {
    addTool(tool);
    ctx.stackTools.addTool(tool.toolName);
    ctx.stackTools.setToolPassive(tool.toolName);
  }
  const measureSheet = chrome.sheet('measure', 'm.measure.title');
  const measure = chrome.button('measure', 'm.measure', '↔', () => measureSheet.toggle());
  const choose = (toolName: string) => {
    viewer.setMode('browse');
    ctx.setPrimaryTool(toolName);
    measureSheet.close();
    syncPressed();
  };
  measureSheet.body.append(
    sheetButton('measure-length', 'm.length', () => choose(LengthTool.toolName)),
    sheetButton('measure-angle', 'm.angle', () => choose(AngleTool.toolName)),
    sheetButton('measure-off', 'm.measure.off', () => choose('')),
    sheetButton('measure-clear', 'm.measure.clear', () => {
      annotation.state.removeAllAnnotations();
      ctx.engine.render();
      measureSheet.close();
    }),
  );
  function syncPressed(): void {
    wl.classList.toggle('m-pressed', viewer.mode() === 'wl');
    measure.classList.toggle('m-pressed', viewer.mode() === 'measure');
    measure.dataset.tool = ctx.primaryTool();
  }

  // cine: play/pause the active viewport at the chosen speed
  let fps = 10;
  const playing = new Set<string>();
  const play = (slot: Slot) => {
    utilities.cine.playClip(slot.element, { framesPerSecond: fps, loop: true });
    playing.add(slot.id);
  };
  const stop = (slot: Slot) => {
    utilities.cine.stopClip(slot.element);
    playing.delete(slot.id);
  };
  const cine = chrome.button('cine', 'm.cine', '▶', () => {
    const slot = ctx.activeSlot();
    if (playing.has(slot.id)) stop(slot);
    else play(slot);
    syncCine();
  });
  function syncCine(): void {
    const on = playing.has(ctx.activeSlot().id);
    cine.classList.toggle('m-pressed', on);
    cine.querySelector('.m-tool-icon')!.textContent = on ? '❚❚' : '▶';
    cine.querySelector<HTMLElement>('.m-tool-label')!.dataset.i18n = on ? 'm.cine.stop' : 'm.cine';
    translateTree(cine);
  }
  ctx.on('active-changed', syncCine);
  ctx.on('series-shown', (slot) => { if (slot && playing.has(slot.id)) stop(slot); syncCine(); });
  ctx.on('viewports-changed', () => {
    for (const slot of ctx.slots()) if (playing.has(slot.id) && slot.kind !== 'stack') stop(slot);
    syncCine();
  });

  // more: invert, rotate, flips, reset, layout, cine speed
  const moreSheet = viewer.more;
  const fpsLabel = el('span', { class: 'm-fps', 'data-field': 'fps' });
  const showFps = () => { fpsLabel.textContent = t('m.fps', { fps }); };
  const stepFps = (direction: number) => {
    const index = FPS_STEPS.indexOf(fps);
    fps = FPS_STEPS[Math.max(0, Math.min(FPS_STEPS.length - 1, index + direction))];
    showFps();
    for (const slot of ctx.slots()) if (playing.has(slot.id)) play(slot);
  };
  showFps();
  ctx.on('locale-changed', showFps);
  moreSheet.body.append(
    sheetButton('invert', 'm.invert', () => change((v) => v.setProperties({ invert: !v.getProperties()?.invert }))),
    sheetButton('rotate', 'm.rotate', () => change((v) => {
      const rotation = (((v.getViewPresentation().rotation ?? 0) + 90) % 360 + 360) % 360;
      v.setViewPresentation({ rotation });
    })),
    sheetButton('flipH', 'm.flipH', () => change((v) => v.setViewPresentation({ flipHorizontal: !v.getViewPresentation().flipHorizontal }))),
    sheetButton('flipV', 'm.flipV', () => change((v) => v.setViewPresentation({ flipVertical: !v.getViewPresentation().flipVertical }))),
    sheetButton('reset', 'm.reset', () => change((v) => {
      v.resetCamera();
      v.resetProperties();
      v.setViewPresentation({ rotation: 0, flipHorizontal: false, flipVertical: false });
    })),
    sheetButton('layout-1', 'm.layout1', () => void ctx.setLayout(1, 1).then(() => moreSheet.close())),
    sheetButton('layout-2', 'm.layout2', () => void ctx.setLayout(1, 2).then(() => moreSheet.close())),
    el('div', { class: 'm-fps-row' },
      sheetButton('fps-slower', 'm.fps.slower', () => stepFps(-1)), fpsLabel, sheetButton('fps-faster', 'm.fps.faster', () => stepFps(1))),
  );
  translateTree(moreSheet.body);
  translateTree(measureSheet.body);
  // for tests: what the toolbar state is (read only)
  Object.assign((window as unknown as { yunyingViewer: Record<string, unknown> }).yunyingViewer, {
    mobileTools: { fps: () => fps, playing: () => [...playing], windowLevel: () => {
      const voi = (activeViewport()?.getProperties() as { voiRange?: { lower: number; upper: number } } | undefined)?.voiRange;
      return voi ? coreUtilities.windowLevel.toWindowLevel(voi.lower, voi.upper) : null;
    } },
  });
}
