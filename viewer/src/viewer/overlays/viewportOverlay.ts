// Text over each viewport: four corners (patient, series/image, window and zoom, slice position),
// orientation letters at the edges and a scale bar. HTML in the slot frame, refreshed when the image,
// the window (VOI_MODIFIED) or the camera (CAMERA_MODIFIED) changes.

import { Enums as CoreEnums, utilities as coreUtilities } from '@cornerstonejs/core';
import type { Types } from '@cornerstonejs/core';
import { TAG, numbers, personName, text } from '../../api/dicomweb';
import type { DicomJson } from '../../api/dicomweb';
import { clear, el } from '../../dom';
import { t } from '../../i18n';
import type { Feature, Slot, ViewerContext } from '../context';
import type { Instance } from '../study';
import { edgeLetters } from './orientation';
import './messages';
import './overlays.css';

type Vector = [number, number, number];

/** The instance (WADO-RS metadata) behind a wadors image id …/instances/<uid>/frames/<n>. */
export function instanceOf(slot: Slot, imageId: string | undefined): Instance | undefined {
  const match = imageId?.match(/\/instances\/([^/]+)\/frames\/(\d+)/);
  return match ? slot.series?.instances.find((i) => i.sopInstanceUid === match[1]) : undefined;
}

function line(field: string, value: string): HTMLElement | null {
  return value ? el('div', { class: 'yy-ov-line', 'data-field': field }, value) : null;
}

function sexAge(item: DicomJson): string {
  return [text(item, TAG.PatientSex), text(item, TAG.PatientAge)].filter(Boolean).join(' ');
}

function fixed(value: number, digits = 1): string {
  // at most `digits` decimals, without trailing zeros (2.5 not 2.50)
  return Number.isFinite(value) ? String(Number(value.toFixed(digits))) : '';
}

/** What the measurement units rest on: a warning line when only the detector spacing (or nothing) is known. */
function calibrationNote(item: DicomJson): string {
  if (numbers(item, TAG.PixelSpacing).length === 2) return '';
  if (numbers(item, TAG.ImagerPixelSpacing).length === 2) return t('overlay.calibration.imager');
  return t('overlay.calibration.none');
}

function corners(viewport: Types.IStackViewport, instance: Instance): HTMLElement[] {
  const item = instance.metadata;
  const total = viewport.getImageIds().length;
  const index = viewport.getCurrentImageIdIndex();
  const { voiRange } = viewport.getProperties();
  const wl = voiRange ? coreUtilities.windowLevel.toWindowLevel(voiRange.lower, voiRange.upper) : null;
  const position = numbers(item, TAG.ImagePositionPatient);
  const location = text(item, TAG.SliceLocation);
  const thickness = text(item, TAG.SliceThickness);
  const topLeft = [
    line('patient-name', personName(item, TAG.PatientName)), line('patient-id', text(item, TAG.PatientID)),
    line('sex-age', sexAge(item)), line('hospital', text(item, TAG.InstitutionName)),
    line('study', [text(item, TAG.StudyDate), text(item, TAG.StudyDescription)].filter(Boolean).join(' ')),
  ];
  const topRight = [
    line('series', [t('overlay.series', { number: text(item, TAG.SeriesNumber) }), text(item, TAG.SeriesDescription)].join(' ')),
    line('image', t('overlay.image', { index: index + 1, total })),
    line('instance', text(item, TAG.InstanceNumber) ? t('overlay.instance', { number: text(item, TAG.InstanceNumber) }) : ''),
  ];
  const bottomLeft = [
    line('wl', wl ? t('overlay.wl', { width: Math.round(wl.windowWidth), center: Math.round(wl.windowCenter) }) : ''),
    line('zoom', t('overlay.zoom', { zoom: viewport.getZoom().toFixed(2) })),
  ];
  const bottomRight = [
    line('location', location ? t('overlay.location', { value: fixed(Number(location)) })
      : position.length === 3 ? t('overlay.position', { value: position.map((v) => fixed(v)).join(', ') }) : ''),
    line('thickness', thickness ? t('overlay.thickness', { value: fixed(Number(thickness), 2) }) : ''),
    line('calibration', calibrationNote(item)),
  ];
  const box = (corner: string, lines: Array<HTMLElement | null>) =>
    el('div', { class: `yy-ov-corner yy-ov-${corner}` }, ...lines.filter((l): l is HTMLElement => l !== null));
  return [box('tl', topLeft), box('tr', topRight), box('bl', bottomLeft), box('br', bottomRight)];
}

function screenAxes(viewport: Types.IStackViewport): { right: Vector; down: Vector; mmPerPixel: number } {
  const canvas = viewport.canvas;
  const cx = canvas.clientWidth / 2;
  const cy = canvas.clientHeight / 2;
  const origin = viewport.canvasToWorld([cx, cy]);
  const rightPoint = viewport.canvasToWorld([cx + 1, cy]);
  const downPoint = viewport.canvasToWorld([cx, cy + 1]);
  const right = [0, 1, 2].map((k) => rightPoint[k] - origin[k]) as Vector;
  const down = [0, 1, 2].map((k) => downPoint[k] - origin[k]) as Vector;
  return { right, down, mmPerPixel: Math.hypot(...right) };
}

const NICE_LENGTHS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

/** The longest round length (world units) that fits in a quarter of the view width. */
export function scaleBarLength(unitsPerPixel: number, viewWidth: number): number {
  const fits = NICE_LENGTHS.filter((length) => length / unitsPerPixel <= viewWidth / 4);
  return fits.length ? fits[fits.length - 1] : NICE_LENGTHS[0];
}

function decorations(viewport: Types.IStackViewport, instance: Instance): HTMLElement[] {
  const { right, down, mmPerPixel } = screenAxes(viewport);
  const parts: HTMLElement[] = [];
  if (instance.orientation) {
    const letters = edgeLetters(right, down);
    for (const edge of ['left', 'right', 'top', 'bottom'] as const) {
      parts.push(el('div', { class: `yy-ov-orient yy-ov-orient-${edge}`, 'data-edge': edge }, letters[edge]));
    }
  }
  if (mmPerPixel > 0) {
    const hasSpacing = numbers(instance.metadata, TAG.PixelSpacing).length === 2 ||
      numbers(instance.metadata, TAG.ImagerPixelSpacing).length === 2;
    const length = scaleBarLength(mmPerPixel, viewport.canvas.clientWidth);
    const width = length / mmPerPixel;
    const label = hasSpacing ? (length >= 10 ? `${length / 10} cm` : `${length} mm`) : `${length} px`;
    parts.push(el('div', { class: 'yy-ov-scale', 'data-field': 'scale', style: `width:${width.toFixed(1)}px` },
      el('span', {}, label)));
  }
  return parts;
}

function render(ctx: ViewerContext, slot: Slot): void {
  let overlay = slot.frame.querySelector<HTMLElement>(':scope > .yy-overlay');
  const viewport = slot.kind === 'stack' ? ctx.stackViewport(slot) : null;
  const instance = viewport ? instanceOf(slot, viewport.getCurrentImageId()) : undefined;
  if (!viewport || !instance) {
    overlay?.remove();
    return;
  }
  if (!overlay) {
    overlay = el('div', { class: 'yy-overlay', 'aria-hidden': 'true' });
    slot.frame.append(overlay);
  }
  clear(overlay);
  overlay.append(...corners(viewport, instance), ...decorations(viewport, instance));
}

export const viewportOverlayFeature: Feature = {
  id: 'viewport-overlay',
  install(ctx) {
    const watched = new WeakSet<HTMLElement>();
    const pending = new Set<Slot>();
    // one redraw per animation frame: W/L drags fire many VOI events
    const schedule = (slot: Slot) => {
      if (!pending.size) {
        requestAnimationFrame(() => {
          const due = [...pending];
          pending.clear();
          for (const s of due) render(ctx, s);
        });
      }
      pending.add(slot);
    };
    const watch = () => {
      for (const slot of ctx.slots()) {
        if (!watched.has(slot.element)) {
          watched.add(slot.element);
          for (const event of [CoreEnums.Events.VOI_MODIFIED, CoreEnums.Events.CAMERA_MODIFIED, CoreEnums.Events.STACK_NEW_IMAGE,
            CoreEnums.Events.IMAGE_RENDERED]) {
            // IMAGE_RENDERED catches the first draw after setStack (the image becomes known only then)
            slot.element.addEventListener(event, () => {
              if (event !== CoreEnums.Events.IMAGE_RENDERED || !slot.frame.querySelector('.yy-overlay')) schedule(slot);
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
  },
};
