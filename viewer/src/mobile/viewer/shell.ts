// The phone viewer with Cornerstone3D: the ViewerContext of the diagnostic viewer (viewer/context.ts) on a phone
// frame (chrome.ts), so the shared features work unchanged (progressive loading), plus the phone's own tools
// (tools.ts), overlay (overlay.ts) and one-plane MPR (mpr.ts). Slots are 1 or 2 viewports; every slot's element
// takes the touch gestures (touchView.ts). No tool is bound to a single touch unless a measurement is chosen.

import { Enums as CoreEnums, RenderingEngine, type Types, getRenderingEngine } from '@cornerstonejs/core';
import * as cornerstoneCore from '@cornerstonejs/core';
import * as cornerstoneTools from '@cornerstonejs/tools';
import { Enums as ToolEnums, ToolGroupManager } from '@cornerstonejs/tools';
import { el } from '../../dom';
import { onLocaleChange, t } from '../../i18n';
import type { Slot, ToolbarButton, ViewerContext, ViewerEvent } from '../../viewer/context';
import { prefetchFeature } from '../../viewer/prefetch';
import type { Series, Study } from '../../viewer/study';
import type { Chrome, Sheet } from './chrome';
import type { GestureMode } from './gestures';
import { attachTouchView } from './touchView';

const ENGINE_ID = 'yy-mobile-engine';
const GROUP_ID = 'yy-mobile';

export interface MobileViewer {
  ctx: ViewerContext;
  mode(): GestureMode;
  setMode(mode: GestureMode): void;
  /** The "more tools" sheet (features of the diagnostic viewer put their buttons here too). */
  more: Sheet;
}

export function createShell(chrome: Chrome, study: Study): MobileViewer {
  const engine = getRenderingEngine(ENGINE_ID) ?? new RenderingEngine(ENGINE_ID);
  const tools = ToolGroupManager.createToolGroup(GROUP_ID)!;
  const grid = el('div', { class: 'm-grid' });
  chrome.stage.prepend(grid);
  const listeners = new Map<ViewerEvent, Array<(slot?: Slot) => void>>();
  const more = chrome.sheet('more', 'm.more.title');
  let slots: Slot[] = [];
  let active: Slot;
  let primary = '';
  let mode: GestureMode = 'browse';

  const ctx: ViewerContext = {
    engine, stackTools: tools, study,
    slots: () => slots,
    activeSlot: () => active,
    setActiveSlot(slot) {
      active = slot;
      slots.forEach((s) => s.frame.classList.toggle('m-active', s === slot && slots.length > 1));
      ctx.emit('active-changed', slot);
    },
    stackViewport(slot = active) {
      const viewport = engine.getViewport(slot.id);
      return viewport && viewport.type === CoreEnums.ViewportType.STACK ? (viewport as Types.IStackViewport) : null;
    },
    async showSeries(slot, series, owner = study, imageIndex) {
      if (slot.kind !== 'stack') makeStack(slot);
      slot.study = owner;
      slot.series = series;
      slot.frame.querySelectorAll('.m-slot-message, .yy-mpr-label').forEach((node) => node.remove());
      const viewport = ctx.stackViewport(slot)!;
      if (series.nonImage || !series.imageIds.length) {
        slotMessage(slot, 'm.noImages');
        return;
      }
      const start = imageIndex ?? 0;
      try {
        await viewport.setStack(series.imageIds, start);
      } catch {
        slotMessage(slot, 'm.imageFailed', { index: start + 1 });
      }
      viewport.render();
      ctx.emit('series-shown', slot);
    },
    setLayout: (rows, cols) => layout(rows * cols),
    setPrimaryTool(toolName) {
      if (toolName === primary) return;
      if (primary) tools.setToolPassive(primary);
      primary = toolName;
      if (toolName) tools.setToolActive(toolName, { bindings: [{ mouseButton: ToolEnums.MouseBindings.Primary }] });
      mode = toolName ? 'measure' : mode === 'measure' ? 'browse' : mode;
    },
    primaryTool: () => primary,
    addButton(spec: ToolbarButton) {
      // features from the diagnostic viewer land in the "more" sheet
      const button = el('button', { type: 'button', class: 'm-sheet-button', 'data-action': spec.id, 'data-i18n': spec.label });
      button.addEventListener('click', () => void Promise.resolve(spec.onClick()).then(() => more.close()));
      more.body.append(button);
      return button;
    },
    pressButton: () => undefined,
    notify: (key, params, level) => chrome.notify(key, params, level),
    on(event, handler) {
      listeners.set(event, [...(listeners.get(event) ?? []), handler]);
    },
    emit(event, slot) {
      for (const handler of listeners.get(event) ?? []) handler(slot);
    },
    async openStudy(uid) {
      if (uid === study.uid) return study;
      throw new Error('the phone viewer shows one study');
    },
    sidePanel(id) {
      const body = el('div', { class: 'm-panel', 'data-panel': id });
      more.body.append(body);
      return body;
    },
  };

  function makeStack(slot: Slot): void {
    if (engine.getViewport(slot.id)) {
      ToolGroupManager.getToolGroupForViewport(slot.id, ENGINE_ID)?.removeViewports(ENGINE_ID, slot.id);
      engine.disableElement(slot.id);
    }
    engine.enableElement({
      viewportId: slot.id, type: CoreEnums.ViewportType.STACK, element: slot.element,
      defaultOptions: { background: [0, 0, 0] as Types.Point3 },
    });
    tools.addViewport(slot.id, ENGINE_ID);
    slot.kind = 'stack';
  }

  function slotMessage(slot: Slot, key: string, params: Record<string, string | number> = {}): void {
    slot.frame.append(el('div', { class: 'm-slot-message', 'data-key': key }, t(key, params)));
  }

  async function layout(wanted: number): Promise<void> {
    for (const slot of slots.slice(wanted)) {
      if (engine.getViewport(slot.id)) {
        ToolGroupManager.getToolGroupForViewport(slot.id, ENGINE_ID)?.removeViewports(ENGINE_ID, slot.id);
        engine.disableElement(slot.id);
      }
      slot.frame.remove();
    }
    slots = slots.slice(0, wanted);
    grid.classList.toggle('m-grid-2', wanted > 1);
    const images = study.series.filter((s) => !s.nonImage);
    for (let index = slots.length; index < wanted; index++) {
      const element = el('div', { class: 'm-viewport', 'data-viewport': `vp-${index}` });
      element.addEventListener('contextmenu', (event) => event.preventDefault());
      const frame = el('div', { class: 'm-slot' }, element);
      const slot: Slot = { id: `vp-${index}`, element, frame, study: null, series: null, kind: 'none' };
      grid.append(frame);
      slots.push(slot);
      makeStack(slot);
      attachTouchView(ctx, slot, () => mode);
      const series = images[index] ?? images[0];
      if (series) await ctx.showSeries(slot, series);
    }
    engine.resize(true, true);
    if (!slots.includes(active)) ctx.setActiveSlot(slots[0]);
    else ctx.setActiveSlot(active);
    ctx.emit('viewports-changed');
  }

  new ResizeObserver(() => requestAnimationFrame(() => engine.resize(true, true))).observe(grid);
  onLocaleChange(() => ctx.emit('locale-changed'));
  grid.addEventListener(CoreEnums.Events.STACK_NEW_IMAGE, (event) => {
    const slot = slots.find((s) => s.element === event.target);
    if (!slot) return;
    slot.frame.querySelectorAll('.m-slot-message').forEach((node) => node.remove());
    ctx.emit('image-changed', slot);
  }, true);

  return {
    ctx, more,
    mode: () => mode,
    setMode(next) {
      if (next !== 'measure' && primary) ctx.setPrimaryTool('');
      mode = next;
    },
  };
}

/** Start the shell on ``study``: layout 1×1, the wanted (or first) series, the shared and phone features. */
export async function openShell(viewer: MobileViewer, start: { series: string | null }): Promise<Series | null> {
  const { ctx } = viewer;
  await ctx.setLayout(1, 1);
  const wanted = start.series ? ctx.study.series.find((s) => s.uid === start.series) : null;
  if (wanted && wanted !== ctx.slots()[0].series) await ctx.showSeries(ctx.slots()[0], wanted);
  await prefetchFeature.install(ctx);
  const exposed = window as unknown as { yunyingViewer?: Record<string, unknown> };
  Object.assign(exposed.yunyingViewer ??= {}, {
    ctx, ready: true, mobile: { mode: viewer.mode, render: 'webgl' },
    cs: { core: cornerstoneCore, tools: cornerstoneTools },
  });
  return ctx.slots()[0].series;
}
