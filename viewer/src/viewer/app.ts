// The viewer page (/viewer?study=<StudyInstanceUID>): header, series bar, toolbar, a grid of viewports
// (1x1 … 4x4) and side panels. Features (features.ts) add tools, overlays, 3D, comparison … through the
// ViewerContext; this file only owns layout, series display and the basic navigation tools.

import { Enums as CoreEnums, RenderingEngine, Types, eventTarget, getRenderingEngine } from '@cornerstonejs/core';
import {
  Enums as ToolEnums, PanTool, StackScrollTool, ToolGroupManager, WindowLevelTool, ZoomTool, addTool,
} from '@cornerstonejs/tools';
import * as cornerstoneCore from '@cornerstonejs/core';
import * as cornerstoneTools from '@cornerstonejs/tools';
import { ApiError, loadSession } from '../api/http';
import { TAG, personName, text, thumbnailUrl } from '../api/dicomweb';
import { clear, el } from '../dom';
import { locale, onLocaleChange, setLocale, t, translateTree } from '../i18n';
import './messages';
import { startCornerstone } from './cornerstone';
import type { Slot, ToolbarButton, ViewerContext, ViewerEvent } from './context';
import { FEATURES } from './features';
import { Series, Study, loadStudy } from './study';

const ENGINE_ID = 'yy-engine';
const STACK_GROUP = 'yy-stack';
const { MouseBindings } = ToolEnums;

export interface ViewerStart {
  /** Open this series (SeriesInstanceUID) in the first viewport (a detached window shows just it). */
  series?: string | null;
  /** 1-based image number within that series. */
  image?: number | null;
}

export async function startViewer(root: HTMLElement, studyUid: string | null, start: ViewerStart = {}): Promise<void> {
  const header = el('header', { class: 'yy-header' });
  const toolbar = el('div', { class: 'yy-toolbar', role: 'toolbar' });
  const seriesBar = el('nav', { class: 'yy-series-bar', 'aria-label': 'series' });
  const grid = el('main', { class: 'yy-grid' });
  const side = el('aside', { class: 'yy-side' });
  const messages = el('div', { class: 'yy-messages', role: 'status', 'aria-live': 'polite' });
  root.append(header, el('div', { class: 'yy-body' }, seriesBar, el('div', { class: 'yy-center' }, toolbar, grid), side), messages);
  root.classList.add('yy-viewer');

  const notify = (key: string, params: Record<string, string | number> = {}, level: 'info' | 'warning' | 'error' = 'info') => {
    const item = el('div', { class: `yy-message yy-${level}`, 'data-key': key }, t(key, params));
    messages.append(item);
    if (level === 'info') setTimeout(() => item.remove(), 6000);
  };

  header.append(
    el('a', { href: '/viewer', class: 'yy-brand', 'data-i18n': 'app.worklist' }),
    el('span', { class: 'yy-patient', id: 'yy-patient' }),
    el('span', { class: 'yy-spacer' }),
    languageButton(),
  );
  translateTree(root);

  if (!studyUid) {
    notify('viewer.noStudy', {}, 'error');
    return;
  }
  // the study's metadata, the session and Cornerstone's start-up (WebGL, workers) in parallel: first image sooner
  const session = loadSession();
  const started = startCornerstone();
  const loading = loadStudy(studyUid);
  loading.catch(() => undefined); // handled below, after start-up
  await session;
  await started;
  let study: Study;
  try {
    study = await loading;
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 403)) notify('viewer.studyNotFound', {}, 'error');
    else if (error instanceof ApiError && error.status === 400) notify('viewer.badStudyUid', { uid: studyUid }, 'error');
    else notify('viewer.loadFailed', { detail: String((error as Error).message || error) }, 'error');
    return;
  }
  document.getElementById('yy-patient')!.textContent = [
    personName(study.first, TAG.PatientName), text(study.first, TAG.PatientID), text(study.first, TAG.StudyDate),
    text(study.first, TAG.StudyDescription),
  ].filter(Boolean).join(' · ');

  const engine = getRenderingEngine(ENGINE_ID) ?? new RenderingEngine(ENGINE_ID);
  for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool]) addTool(tool);
  const stackTools = ToolGroupManager.createToolGroup(STACK_GROUP)!;
  for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool]) stackTools.addTool(tool.toolName);
  let primary = WindowLevelTool.toolName;
  stackTools.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  stackTools.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  stackTools.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  stackTools.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });

  const listeners = new Map<ViewerEvent, Array<(slot?: Slot) => void>>();
  const studies = new Map<string, Study>([[study.uid, study]]);
  let slots: Slot[] = [];
  let active: Slot;
  const buttons = new Map<string, { button: HTMLButtonElement; spec: ToolbarButton }>();
  const groups = new Map<string, HTMLElement>();
  const panels = new Map<string, HTMLElement>();

  const ctx: ViewerContext = {
    engine, stackTools, study,
    slots: () => slots,
    activeSlot: () => active,
    setActiveSlot(slot) {
      active = slot;
      slots.forEach((s) => s.frame.classList.toggle('yy-active', s === slot));
      ctx.emit('active-changed', slot);
    },
    stackViewport(slot = active) {
      const viewport = engine.getViewport(slot.id);
      return viewport && viewport.type === CoreEnums.ViewportType.STACK ? (viewport as Types.IStackViewport) : null;
    },
    async showSeries(slot, series, owner = study, imageIndex) {
      if (slot.kind !== 'stack') await makeStack(slot);
      slot.study = owner;
      slot.series = series;
      clearSlotMessage(slot);
      const viewport = ctx.stackViewport(slot)!;
      if (series.nonImage || !series.imageIds.length) {
        slotMessage(slot, 'viewer.nonImage');
        return;
      }
      const start = imageIndex ?? 0;
      try {
        await viewport.setStack(series.imageIds, start);
      } catch (error) {
        slotMessage(slot, 'viewer.imageFailed', { index: start + 1, detail: describe(error) });
      }
      viewport.render();
      markSeries();
      ctx.emit('series-shown', slot);
    },
    setLayout: (rows, cols) => layout(rows, cols),
    setPrimaryTool(toolName) {
      if (toolName === primary) return;
      stackTools.setToolPassive(primary);
      if (!stackTools.hasTool(toolName)) stackTools.addTool(toolName);
      stackTools.setToolActive(toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
      primary = toolName;
    },
    primaryTool: () => primary,
    addButton(spec) {
      let group = groups.get(spec.group);
      if (!group) {
        group = el('div', { class: 'yy-group', 'data-group': spec.group }, el('span', { class: 'yy-group-label', 'data-i18n': spec.group }));
        groups.set(spec.group, group);
        toolbar.append(group);
      }
      const button = el('button', {
        type: 'button', class: 'yy-button', 'data-action': spec.id, 'data-i18n': spec.label,
        'data-i18n-title': spec.title, 'data-radio': spec.radio, 'data-shortcut': spec.shortcut,
      });
      button.addEventListener('click', () => {
        if (spec.radio) ctx.pressButton(spec.id);
        void Promise.resolve(spec.onClick()).catch((error) => notify('viewer.loadFailed', { detail: describe(error) }, 'error'));
      });
      group.append(button);
      buttons.set(spec.id, { button, spec });
      translateTree(group);
      return button;
    },
    pressButton(id) {
      const found = buttons.get(id);
      if (!found?.spec.radio) return;
      for (const { button, spec } of buttons.values()) {
        if (spec.radio === found.spec.radio) button.classList.toggle('yy-pressed', spec.id === id);
      }
    },
    notify,
    on(event, handler) {
      listeners.set(event, [...(listeners.get(event) ?? []), handler]);
    },
    emit(event, slot) {
      for (const handler of listeners.get(event) ?? []) handler(slot);
    },
    async openStudy(uid) {
      const known = studies.get(uid);
      if (known) return known;
      const loaded = await loadStudy(uid);
      studies.set(uid, loaded);
      return loaded;
    },
    sidePanel(id, titleKey) {
      let panel = panels.get(id);
      if (!panel) {
        const body = el('div', { class: 'yy-panel-body' });
        const box = el('section', { class: 'yy-panel', 'data-panel': id }, el('h2', { 'data-i18n': titleKey }), body);
        side.append(box);
        translateTree(box);
        panels.set(id, body);
        panel = body;
      }
      return panel;
    },
  };

  async function makeStack(slot: Slot): Promise<void> {
    const existing = engine.getViewport(slot.id);
    if (existing) {
      ToolGroupManager.getToolGroupForViewport(slot.id, ENGINE_ID)?.removeViewports(ENGINE_ID, slot.id);
      engine.disableElement(slot.id);
    }
    engine.enableElement({
      viewportId: slot.id, type: CoreEnums.ViewportType.STACK, element: slot.element,
      defaultOptions: { background: [0, 0, 0] as Types.Point3 },
    });
    stackTools.addViewport(slot.id, ENGINE_ID);
    slot.kind = 'stack';
  }

  function slotMessage(slot: Slot, key: string, params: Record<string, string | number> = {}): void {
    clearSlotMessage(slot);
    slot.frame.append(el('div', { class: 'yy-slot-message', 'data-key': key }, t(key, params)));
  }

  function clearSlotMessage(slot: Slot): void {
    slot.frame.querySelectorAll('.yy-slot-message').forEach((node) => node.remove());
  }

  async function layout(rows: number, cols: number): Promise<void> {
    const wanted = rows * cols;
    const previous = slots;
    for (const slot of previous.slice(wanted)) {
      if (engine.getViewport(slot.id)) {
        ToolGroupManager.getToolGroupForViewport(slot.id, ENGINE_ID)?.removeViewports(ENGINE_ID, slot.id);
        engine.disableElement(slot.id);
      }
      slot.frame.remove();
    }
    slots = previous.slice(0, wanted);
    grid.style.gridTemplateRows = `repeat(${rows}, minmax(0, 1fr))`;
    grid.style.gridTemplateColumns = `repeat(${cols}, minmax(0, 1fr))`;
    const images = study.series.filter((s) => !s.nonImage);
    for (let index = slots.length; index < wanted; index++) {
      const element = el('div', { class: 'yy-viewport', 'data-viewport': `vp-${index}` });
      element.addEventListener('contextmenu', (event) => event.preventDefault());
      const frame = el('div', { class: 'yy-slot' }, element);
      const slot: Slot = { id: `vp-${index}`, element, frame, study: null, series: null, kind: 'none' };
      frame.addEventListener('pointerdown', () => { if (active !== slot) ctx.setActiveSlot(slot); }, true);
      grid.append(frame);
      slots.push(slot);
      await makeStack(slot);
      const series = images[index] ?? images[0];
      if (series) await ctx.showSeries(slot, series);
    }
    engine.resize(true, true);
    if (!slots.includes(active)) ctx.setActiveSlot(slots[0]);
    ctx.emit('viewports-changed');
  }

  function markSeries(): void {
    seriesBar.querySelectorAll<HTMLElement>('[data-series]').forEach((item) => {
      item.classList.toggle('yy-shown', slots.some((s) => s.series?.uid === item.dataset.series));
    });
  }

  // series bar: one thumbnail per series, click shows it in the active viewport
  for (const series of study.series) {
    const item = el('button', { type: 'button', class: 'yy-series', 'data-series': series.uid, title: series.description },
      series.nonImage ? el('div', { class: 'yy-thumb yy-thumb-none' }, series.modality)
        : el('img', { class: 'yy-thumb', alt: '', loading: 'lazy', src: thumbnailUrl(study.uid, series.uid) }),
      el('span', { class: 'yy-series-label' }, `${series.modality} ${t('viewer.seriesNumber', { number: series.number })}`),
      el('span', { class: 'yy-series-desc' }, series.description),
      el('span', { class: 'yy-series-count' }, t('viewer.images', { count: series.imageIds.length || series.instances.length })));
    item.addEventListener('click', () => void ctx.showSeries(active, series));
    seriesBar.append(item);
  }

  // layout buttons and basic navigation tools
  for (const [rows, cols] of [[1, 1], [1, 2], [2, 2], [3, 3], [4, 4]]) {
    const button = ctx.addButton({ id: `layout-${rows}x${cols}`, label: `${rows}×${cols}`, group: 'group.layout', onClick: () => layout(rows, cols) });
    button.textContent = `${rows}×${cols}`;
    button.removeAttribute('data-i18n');
    button.title = t('layout.title', { rows, cols });
  }
  const basic: Array<[string, string, string]> = [
    ['windowLevel', WindowLevelTool.toolName, 'w'], ['pan', PanTool.toolName, 'p'], ['zoom', ZoomTool.toolName, 'z'],
    ['scroll', StackScrollTool.toolName, 's'],
  ];
  for (const [key, toolName, shortcut] of basic) {
    ctx.addButton({ id: `tool-${key}`, label: `tool.${key}`, title: `tool.${key}.title`, group: 'group.basic', radio: 'primary',
      shortcut, onClick: () => ctx.setPrimaryTool(toolName) });
  }
  ctx.pressButton('tool-windowLevel');
  ctx.addButton({ id: 'tool-reset', label: 'tool.reset', title: 'tool.reset.title', group: 'group.basic', shortcut: 'Escape',
    onClick: () => {
      const viewport = ctx.stackViewport();
      if (!viewport) return;
      viewport.resetCamera();
      viewport.resetProperties();
      viewport.render();
    } });

  slots = [];
  await layout(1, 1);
  ctx.setActiveSlot(slots[0]);
  if (start.series) {
    const wanted = study.series.find((s) => s.uid === start.series);
    if (wanted) await ctx.showSeries(slots[0], wanted, study, Math.max(0, Math.min((start.image ?? 1) - 1, wanted.imageIds.length - 1)));
    else notify('viewer.seriesNotFound', { uid: start.series }, 'error');
  }

  // keep image-changed events flowing for overlays and synchronisers; an image that shows clears the
  // message a failed one left, so the user can scroll past a bad image to the good ones.
  // (Cornerstone's events do not bubble: listen in the capture phase, which every event passes through)
  grid.addEventListener(CoreEnums.Events.STACK_NEW_IMAGE, (event) => {
    const slot = slots.find((s) => s.element === event.target);
    if (!slot) return;
    clearSlotMessage(slot);
    slot.frame.classList.remove('yy-image-failed');
    ctx.emit('image-changed', slot);
  }, true);
  // Cornerstone reports load failures on its global event target (not the element): find the slot by image id.
  eventTarget.addEventListener(CoreEnums.Events.IMAGE_LOAD_ERROR, ((event: CustomEvent) => {
    const detail = (event.detail ?? {}) as { imageId?: string; error?: unknown };
    if (!detail.imageId) return;
    for (const slot of slots) {
      const viewport = ctx.stackViewport(slot);
      const index = viewport?.getImageIds().indexOf(detail.imageId) ?? -1;
      if (index < 0) continue;
      const [key, params] = explainLoadError(detail.error);
      slotMessage(slot, key, { index: index + 1, ...params });
      // the previous image stays on the canvas: dim it so it is not taken for the failed one
      slot.frame.classList.add('yy-image-failed');
    }
  }) as EventListener);

  for (const feature of FEATURES) await feature.install(ctx);
  onLocaleChange(() => ctx.emit('locale-changed'));
  // keyboard: each button may carry a shortcut
  document.addEventListener('keydown', (event) => {
    const target = event.target as HTMLElement;
    if (target.closest('input, textarea, select') || event.ctrlKey || event.metaKey || event.altKey) return;
    for (const { button, spec } of buttons.values()) {
      if (spec.shortcut && (spec.shortcut === event.key || spec.shortcut === event.key.toLowerCase())) {
        event.preventDefault();
        button.click();
        return;
      }
    }
  });
  // the grid also changes size when features add toolbar rows or side panels: keep the canvases in step
  let resizing = 0;
  new ResizeObserver(() => {
    cancelAnimationFrame(resizing);
    resizing = requestAnimationFrame(() => engine.resize(true, true));
  }).observe(grid);
  // merged, not replaced: features may have exposed their own state (prefetch progress …); cs gives tests and
  // the benchmark the Cornerstone modules this page runs (e.g. a 3D viewport on a loaded volume)
  const exposed = window as unknown as { yunyingViewer?: Record<string, unknown> };
  Object.assign(exposed.yunyingViewer ??= {}, { ctx, ready: true, cs: { core: cornerstoneCore, tools: cornerstoneTools } });
  document.body.dataset.viewerReady = 'true';
}

/** The message for an image that failed to load: undecodable syntax, damaged data (the archive's 422), or other. */
function explainLoadError(error: unknown): [string, Record<string, string | number>] {
  const detail = describe(error);
  const syntax = /no decoder for transfer syntax ([\d.]+)/i.exec(detail);
  if (syntax) return ['viewer.unsupportedSyntax', { syntax: syntax[1] }];
  if ((error as { status?: number } | null)?.status === 422) return ['viewer.imageDamaged', { detail: detail.replace(/^HTTP 422 ?/, '') }];
  return ['viewer.imageFailed', { detail }];
}

function describe(error: unknown): string {
  if (!error) return '?';
  if (error instanceof Error) return error.message;
  // the image loader rejects with its XMLHttpRequest for HTTP failures: show the server's problem detail
  const maybe = error as { message?: string; error?: { message?: string }; status?: number; response?: unknown };
  const problem = typeof maybe.response === 'string' ? maybe.response
    : maybe.response instanceof ArrayBuffer ? new TextDecoder().decode(maybe.response) : '';
  let detail = '';
  try {
    detail = problem ? String((JSON.parse(problem) as { detail?: string }).detail ?? '') : '';
  } catch {
    detail = '';
  }
  return maybe.message || maybe.error?.message || (maybe.status ? `HTTP ${maybe.status}${detail ? ` ${detail}` : ''}` : String(error));
}

export function languageButton(): HTMLButtonElement {
  const button = el('button', { type: 'button', class: 'yy-lang', 'data-action': 'language', 'data-i18n': 'app.language' });
  button.addEventListener('click', () => setLocale(locale() === 'en' ? 'zh-CN' : 'en'));
  return button;
}

export { clear };
export type { Series };
