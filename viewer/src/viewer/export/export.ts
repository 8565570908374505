// Export (VW-9): the current viewport as a PNG or JPEG download, without identifiers unless the user turns
// them on, and a print view (header + the images of every viewport) printed with window.print.

import { TAG, personName, text } from '../../api/dicomweb';
import { el } from '../../dom';
import { t } from '../../i18n';
import type { Feature, ViewerContext } from '../context';
import { ComposeOptions, composeImage } from './compose';
import './export.css';
import './messages';

function download(canvas: HTMLCanvasElement, type: 'image/png' | 'image/jpeg', name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    canvas.toBlob((blob) => {
      if (!blob) { reject(new Error('canvas export failed')); return; }
      const url = URL.createObjectURL(blob);
      const link = el('a', { href: url, download: name });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      resolve();
    }, type, 0.92);
  });
}

/** A file name without patient data: modality, series and image number. */
function fileName(ctx: ViewerContext, extension: string): string {
  const slot = ctx.activeSlot();
  const index = (ctx.stackViewport(slot)?.getCurrentImageIdIndex() ?? 0) + 1;
  return `yunying-${slot.series?.modality ?? 'image'}-s${slot.series?.number ?? 0}-i${index}.${extension}`;
}

export const exportFeature: Feature = {
  id: 'export',
  install(ctx) {
    const options: ComposeOptions = { identifiers: false, band: true };

    async function exportAs(type: 'image/png' | 'image/jpeg', extension: string): Promise<void> {
      const slot = ctx.activeSlot();
      const viewport = ctx.stackViewport(slot);
      if (!viewport?.getCurrentImageId() || !slot.series) {
        ctx.notify('export.nothing', {}, 'warning');
        return;
      }
      const name = fileName(ctx, extension);
      await download(composeImage(slot, viewport, options), type, name);
      ctx.notify('export.saved', { name });
    }

    function printView(): HTMLElement {
      document.querySelector('.yy-print')?.remove();
      const first = ctx.study.first;
      const header = el('header', {}, el('h1', {}, t('export.printTitle')),
        el('div', {}, [text(first, TAG.StudyDescription), text(first, TAG.StudyDate), text(first, TAG.InstitutionName)].filter(Boolean).join(' · ')),
        el('div', {}, t('export.printedAt', { time: new Date().toLocaleString() })));
      if (options.identifiers) header.append(el('div', { class: 'yy-print-patient' }, [personName(first, TAG.PatientName), text(first, TAG.PatientID)].join(' · ')));
      const images = el('div', { class: 'yy-print-images' });
      for (const slot of ctx.slots()) {
        const viewport = ctx.stackViewport(slot);
        if (!viewport?.getCurrentImageId()) continue;
        const canvas = composeImage(slot, viewport, { ...options, identifiers: false });
        images.append(el('figure', {}, el('img', { src: canvas.toDataURL('image/png'), alt: '' }),
          el('figcaption', {}, `${slot.series?.modality ?? ''} ${slot.series?.description ?? ''}`)));
      }
      const view = el('section', { class: 'yy-print' }, header, images);
      document.body.append(view);
      return view;
    }

    const toggle = (id: string, on: boolean) => document.querySelector(`[data-action="${id}"]`)?.classList.toggle('yy-pressed', on);
    ctx.addButton({ id: 'export-png', label: 'export.png', title: 'export.png.title', group: 'group.export', onClick: () => exportAs('image/png', 'png') });
    ctx.addButton({ id: 'export-jpeg', label: 'export.jpeg', title: 'export.jpeg.title', group: 'group.export', onClick: () => exportAs('image/jpeg', 'jpg') });
    ctx.addButton({ id: 'export-identifiers', label: 'export.identifiers', title: 'export.identifiers.title', group: 'group.export',
      onClick: () => { options.identifiers = !options.identifiers; toggle('export-identifiers', options.identifiers); } });
    ctx.addButton({ id: 'export-band', label: 'export.band', title: 'export.band.title', group: 'group.export',
      onClick: () => { options.band = !options.band; toggle('export-band', options.band); } });
    toggle('export-band', true);
    ctx.addButton({ id: 'export-print', label: 'export.print', title: 'export.print.title', group: 'group.export',
      onClick: () => {
        printView();
        window.print();
      } });
  },
};
