// Image manipulation of the active stack viewport: rotation, flips, inversion, pseudo-colour, cine,
// magnifier and region auto-window. All of it is display state of the viewport (camera and
// properties), never a change to the image data; 'reset' (in the shell) brings everything back.

import type { Types } from '@cornerstonejs/core';
import { MagnifyTool, WindowLevelRegionTool, addTool, utilities } from '@cornerstonejs/tools';
import { el } from '../../dom';
import { translateTree } from '../../i18n';
import type { Feature, Slot, ViewerContext } from '../context';
import './messages';

/** Colour maps offered (vtk.js preset names registered with Cornerstone); 'Grayscale' is the way back. */
export const COLORMAPS = ['Grayscale', 'hsv', 'jet', 'Black-Body Radiation', 'Viridis (matplotlib)', 'Cool to Warm'];
const DEFAULT_FPS = 10;

function withViewport(ctx: ViewerContext, change: (viewport: Types.IStackViewport) => void): void {
  const viewport = ctx.stackViewport();
  if (!viewport) return;
  change(viewport);
  viewport.render();
}

function rotate(ctx: ViewerContext, degrees: number): void {
  withViewport(ctx, (viewport) => {
    const rotation = (((viewport.getViewPresentation().rotation ?? 0) + degrees) % 360 + 360) % 360;
    viewport.setViewPresentation({ rotation });
  });
}

function flip(ctx: ViewerContext, direction: 'flipHorizontal' | 'flipVertical'): void {
  withViewport(ctx, (viewport) => {
    const presentation = viewport.getViewPresentation();
    viewport.setViewPresentation({ [direction]: !presentation[direction] });
  });
}

function installCine(ctx: ViewerContext): void {
  const playing = new Set<string>();
  const fps = el('input', {
    type: 'number', min: 1, max: 60, step: 1, value: DEFAULT_FPS, class: 'yy-fps', 'data-action': 'cine-fps',
    'data-i18n-title': 'view.cineFps.title',
  });
  const framesPerSecond = () => Math.min(60, Math.max(1, Number(fps.value) || DEFAULT_FPS));
  const start = (slot: Slot) => {
    utilities.cine.playClip(slot.element, { framesPerSecond: framesPerSecond(), loop: true });
    playing.add(slot.id);
  };
  const stop = (slot: Slot) => {
    utilities.cine.stopClip(slot.element);
    playing.delete(slot.id);
  };
  const button = ctx.addButton({
    id: 'view-cine', label: 'view.cine', title: 'view.cine.title', group: 'group.view', shortcut: 'k',
    onClick: () => {
      const slot = ctx.activeSlot();
      if (!ctx.stackViewport(slot)) return;
      if (playing.has(slot.id)) stop(slot);
      else start(slot);
      button.classList.toggle('yy-pressed', playing.has(slot.id));
    },
  });
  fps.addEventListener('change', () => {
    // a new speed applies at once to every playing viewport
    for (const slot of ctx.slots()) if (playing.has(slot.id)) start(slot);
  });
  button.after(fps);
  translateTree(button.parentElement!);
  ctx.on('active-changed', (slot) => button.classList.toggle('yy-pressed', !!slot && playing.has(slot.id)));
  ctx.on('series-shown', (slot) => { if (slot && playing.has(slot.id)) stop(slot); });
  ctx.on('viewports-changed', () => {
    for (const id of [...playing]) if (!ctx.slots().some((s) => s.id === id)) playing.delete(id);
  });
}

function installColormaps(ctx: ViewerContext, anchor: HTMLElement): void {
  const select = el('select', { class: 'yy-colormap', 'data-action': 'colormap', 'data-i18n-title': 'view.colormap.title' },
    ...COLORMAPS.map((name) => el('option', { value: name, 'data-i18n': `view.colormap.${name}` })));
  select.addEventListener('change', () => {
    withViewport(ctx, (viewport) => viewport.setProperties({ colormap: { name: select.value } }));
  });
  ctx.on('active-changed', () => {
    const name = ctx.stackViewport()?.getProperties().colormap?.name;
    select.value = name && COLORMAPS.includes(name) ? name : 'Grayscale';
  });
  anchor.after(select);
  translateTree(anchor.parentElement!);
}

export const manipulationFeature: Feature = {
  id: 'manipulation',
  install(ctx) {
    for (const tool of [MagnifyTool, WindowLevelRegionTool]) addTool(tool);
    const simple: Array<[string, string, () => void]> = [
      ['rotateLeft', ',', () => rotate(ctx, -90)],
      ['rotateRight', '.', () => rotate(ctx, 90)],
      ['flipH', 'h', () => flip(ctx, 'flipHorizontal')],
      ['flipV', 'v', () => flip(ctx, 'flipVertical')],
      ['invert', 'i', () => withViewport(ctx, (v) => v.setProperties({ invert: !v.getProperties().invert }))],
    ];
    let last: HTMLButtonElement | null = null;
    for (const [key, shortcut, action] of simple) {
      last = ctx.addButton({ id: `view-${key}`, label: `view.${key}`, title: `view.${key}.title`, group: 'group.view', shortcut,
        onClick: action });
    }
    installColormaps(ctx, last!);
    ctx.addButton({ id: 'view-magnify', label: 'view.magnify', title: 'view.magnify.title', group: 'group.view', radio: 'primary',
      shortcut: 'm', onClick: () => ctx.setPrimaryTool(MagnifyTool.toolName) });
    ctx.addButton({ id: 'view-roiWindow', label: 'view.roiWindow', title: 'view.roiWindow.title', group: 'group.view',
      radio: 'primary', shortcut: 'o', onClick: () => ctx.setPrimaryTool(WindowLevelRegionTool.toolName) });
    installCine(ctx);
  },
};
