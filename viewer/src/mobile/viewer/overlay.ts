// The phone overlay, reduced from the diagnostic one (overlays/viewportOverlay.ts): patient name and study
// date (top left), image n/N or the MPR plane and slice (top right), W/L (bottom left) and a scale bar
// (bottom right). Redrawn once per animation frame when the image, window or camera changes.

import { Enums as CoreEnums, utilities as coreUtilities, type Types } from '@cornerstonejs/core';
import { TAG, personName, showDate, text } from '../../api/dicomweb';
import { clear, el } from '../../dom';
import { t } from '../../i18n';
import type { Slot, ViewerContext } from '../../viewer/context';
import { scaleBarLength } from '../../viewer/overlays/viewportOverlay';

type AnyViewport = Types.IStackViewport | Types.IVolumeViewport;

function mmPerPixel(viewport: AnyViewport): number {
  const canvas = viewport.canvas;
  const cx = canvas.clientWidth / 2;
  const cy = canvas.clientHeight / 2;
  const a = viewport.canvasToWorld([cx, cy]);
  const b = viewport.canvasToWorld([cx + 1, cy]);
  return Math.hypot(b[0] - a[0], b[1] - a[1], b[2] - a[2]);
}

function line(field: string, value: string): HTMLElement {
  return el('div', { class: 'm-ov-line', 'data-field': field }, value);
}

function render(ctx: ViewerContext, slot: Slot, planeLabel: (slot: Slot) => string): void {
  let overlay = slot.frame.querySelector<HTMLElement>(':scope > .m-overlay');
  const viewport = ctx.engine.getViewport(slot.id) as AnyViewport | undefined;
  const first = slot.series?.instances[0]?.metadata ?? ctx.study.first;
  // a volume plane other than the acquired one has no image id: the MPR slot shows its overlay anyway
  if (!viewport || (slot.kind !== 'mpr' && !viewport.getCurrentImageId?.())) {
    overlay?.remove();
    return;
  }
  if (!overlay) {
    overlay = el('div', { class: 'm-overlay', 'aria-hidden': 'true' });
    slot.frame.append(overlay);
  }
  clear(overlay);
  const total = viewport.getNumberOfSlices();
  const index = viewport.getCurrentImageIdIndex();
  const voi = (viewport.getProperties() as { voiRange?: { lower: number; upper: number } }).voiRange;
  const wl = voi ? coreUtilities.windowLevel.toWindowLevel(voi.lower, voi.upper) : null;
  const plane = planeLabel(slot);
  overlay.append(
    el('div', { class: 'm-ov m-ov-tl' }, line('patient-name', personName(first, TAG.PatientName)),
      line('study-date', showDate(text(first, TAG.StudyDate)))),
    el('div', { class: 'm-ov m-ov-tr' }, ...(plane ? [line('plane', plane)] : []),
      line('image', t('m.slice', { index: index + 1, total }))),
    el('div', { class: 'm-ov m-ov-bl' },
      line('wl', wl ? t('m.wlValue', { width: Math.round(wl.windowWidth), center: Math.round(wl.windowCenter) }) : '')),
  );
  const perPixel = mmPerPixel(viewport);
  if (perPixel > 0) {
    const length = scaleBarLength(perPixel, viewport.canvas.clientWidth);
    const label = length >= 10 ? `${length / 10} cm` : `${length} mm`;
    overlay.append(el('div', { class: 'm-ov-scale', 'data-field': 'scale', style: `width:${(length / perPixel).toFixed(1)}px` },
      el('span', {}, label)));
  }
}

export function installOverlay(ctx: ViewerContext, planeLabel: (slot: Slot) => string): void {
  const watched = new WeakSet<HTMLElement>();
  const pending = new Set<Slot>();
  const schedule = (slot: Slot) => {
    if (!pending.size) {
      requestAnimationFrame(() => {
        const due = [...pending];
        pending.clear();
        for (const s of due) if (ctx.slots().includes(s)) render(ctx, s, planeLabel);
      });
    }
    pending.add(slot);
  };
  const watch = () => {
    for (const slot of ctx.slots()) {
      if (!watched.has(slot.element)) {
        watched.add(slot.element);
        for (const event of [CoreEnums.Events.VOI_MODIFIED, CoreEnums.Events.CAMERA_MODIFIED, CoreEnums.Events.STACK_NEW_IMAGE,
          CoreEnums.Events.VOLUME_NEW_IMAGE, CoreEnums.Events.IMAGE_RENDERED]) {
          slot.element.addEventListener(event, () => {
            if (event !== CoreEnums.Events.IMAGE_RENDERED || !slot.frame.querySelector('.m-overlay')) schedule(slot);
          });
        }
      }
      schedule(slot);
    }
  };
  ctx.on('viewports-changed', watch);
  ctx.on('series-shown', (slot) => { watch(); if (slot) schedule(slot); });
  ctx.on('image-changed', (slot) => { if (slot) schedule(slot); });
  ctx.on('locale-changed', () => ctx.slots().forEach(schedule));
  watch();
}
