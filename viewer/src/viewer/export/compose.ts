// Drawing an exported image: the viewport's canvas only (the on-screen overlays with patient data are DOM/SVG
// and are never copied), plus, when asked, a band of non-identifying information and the patient's identifiers.

import type { Types } from '@cornerstonejs/core';
import { TAG, personName, showDate, text } from '../../api/dicomweb';
import { t } from '../../i18n';
import type { Slot } from '../context';

export interface ComposeOptions {
  identifiers: boolean;
  band: boolean;
}

/** Text lines written at the top when identifiers are wanted. */
export function identifierLines(slot: Slot): string[] {
  const first = slot.study?.first;
  if (!first) return [];
  return [
    [personName(first, TAG.PatientName), text(first, TAG.PatientID)].filter(Boolean).join('  '),
    [showDate(text(first, TAG.StudyDate)), text(first, TAG.AccessionNumber), text(first, TAG.InstitutionName)].filter(Boolean).join('  '),
  ].filter(Boolean);
}

export function bandLine(slot: Slot, viewport: Types.IStackViewport): string {
  const { voiRange } = viewport.getProperties();
  const width = voiRange ? Math.round(voiRange.upper - voiRange.lower) : '-';
  const center = voiRange ? Math.round((voiRange.upper + voiRange.lower) / 2) : '-';
  return t('export.bandText', {
    modality: slot.series?.modality ?? '', series: slot.series?.number ?? '', index: viewport.getCurrentImageIdIndex() + 1,
    count: viewport.getImageIds().length, width, center,
  });
}

/** A 2D canvas of the viewport's size with its image and the chosen text. */
export function composeImage(slot: Slot, viewport: Types.IStackViewport, options: ComposeOptions): HTMLCanvasElement {
  const source = viewport.getCanvas();
  const canvas = document.createElement('canvas');
  canvas.width = source.width;
  canvas.height = source.height;
  const g = canvas.getContext('2d')!;
  g.fillStyle = '#000';
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.drawImage(source, 0, 0);
  const size = Math.max(12, Math.round(canvas.height / 45));
  g.font = `${size}px "Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif`;
  g.textBaseline = 'top';
  const write = (lines: string[], y: number) => {
    if (!lines.length) return;
    const height = lines.length * (size + 4) + 8;
    g.fillStyle = 'rgba(0, 0, 0, 0.65)';
    g.fillRect(0, y, canvas.width, height);
    g.fillStyle = '#fff';
    lines.forEach((line, k) => g.fillText(line, 8, y + 4 + k * (size + 4)));
  };
  if (options.identifiers) write(identifierLines(slot), 0);
  if (options.band) write([bandLine(slot, viewport)], canvas.height - (size + 12));
  return canvas;
}
