// Window presets per modality (CT: lung, mediastinum, bone, brain, abdomen, soft tissue, liver) plus the
// image's own window; chosen from a menu or with the number keys 1–9 (1 is always the image default).

import { metaData, utilities as coreUtilities } from '@cornerstonejs/core';
import type { Types } from '@cornerstonejs/core';
import { clear, el } from '../../dom';
import { type WindowPreset, presetLabel, presetsFor } from './presetData';
import type { Feature, ViewerContext } from '../context';
import './messages';

export { PRESETS, presetLabel, presetsFor } from './presetData';
export type { WindowPreset } from './presetData';

function firstNumber(value: number | number[] | undefined): number | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'number' && Number.isFinite(first) ? first : undefined;
}

export function applyPreset(viewport: Types.IStackViewport, preset: WindowPreset): void {
  let { width, center } = preset;
  if (width === null || center === null) {
    const voi = metaData.get('voiLutModule', viewport.getCurrentImageId()) as
      { windowWidth?: number | number[]; windowCenter?: number | number[] } | undefined;
    width = firstNumber(voi?.windowWidth) ?? null;
    center = firstNumber(voi?.windowCenter) ?? null;
  }
  if (width === null || center === null) {
    // no window in the image: Cornerstone's own default range
    const { invert, colormap } = viewport.getProperties();
    viewport.resetProperties();
    viewport.setProperties({ invert, colormap });
  } else {
    viewport.setProperties({ voiRange: coreUtilities.windowLevel.toLowHighRange(width, center) });
  }
  viewport.render();
}

export const presetsFeature: Feature = {
  id: 'window-presets',
  install(ctx: ViewerContext) {
    const menu = el('div', { class: 'yy-menu yy-preset-menu', role: 'menu', hidden: true });
    const modality = () => ctx.activeSlot()?.series?.modality;
    const choose = (index: number) => {
      const viewport = ctx.stackViewport();
      const preset = presetsFor(modality())[index];
      if (!viewport || !preset) return;
      applyPreset(viewport, preset);
      menu.hidden = true;
    };
    const fill = () => {
      clear(menu);
      presetsFor(modality()).forEach((preset, index) => {
        const item = el('button', { type: 'button', role: 'menuitem', class: 'yy-menu-item', 'data-preset': preset.key },
          presetLabel(preset, index));
        item.addEventListener('click', () => choose(index));
        menu.append(item);
      });
    };
    const button = ctx.addButton({
      id: 'view-presets', label: 'view.presets', title: 'view.presets.title', group: 'group.view',
      onClick: () => { fill(); menu.hidden = !menu.hidden; },
    });
    button.parentElement!.classList.add('yy-has-menu');
    button.after(menu);
    document.addEventListener('pointerdown', (event) => {
      if (!menu.hidden && !menu.contains(event.target as Node) && event.target !== button) menu.hidden = true;
    });
    document.addEventListener('keydown', (event) => {
      const target = event.target as HTMLElement;
      if (target.closest('input, textarea, select') || event.ctrlKey || event.metaKey || event.altKey) return;
      if (/^[1-9]$/.test(event.key)) {
        event.preventDefault();
        choose(Number(event.key) - 1);
      }
    });
  },
};
