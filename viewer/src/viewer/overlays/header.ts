// DICOM header viewer: a side panel listing the current instance's attributes (tag, name, VR, value)
// from its WADO-RS metadata, nested sequences indented, with a filter on any of the columns.
// Tag names come from dcmjs's data dictionary (dcmjs is in the bundle already through Cornerstone).

import { data as dcmjsData } from 'dcmjs';
import type { DicomJson } from '../../api/dicomweb';
import { clear, el } from '../../dom';
import { t, translateTree } from '../../i18n';
import type { Feature, ViewerContext } from '../context';
import { instanceOf } from './viewportOverlay';
import './messages';

type Dictionary = Record<string, { name: string } | undefined>;

export interface HeaderRow { depth: number; tag: string; name: string; vr: string; value: string }

function formatTag(tag: string): string {
  return `(${tag.slice(0, 4)},${tag.slice(4, 8)})`.toUpperCase();
}

function formatValue(attribute: DicomJson[string]): string {
  if (attribute.BulkDataURI) return t('header.bulk');
  if (attribute.InlineBinary) return t('header.binary', { size: Math.floor((attribute.InlineBinary.length * 3) / 4) });
  return (attribute.Value ?? []).map((value) => {
    if (value && typeof value === 'object') {
      const pn = value as { Alphabetic?: string; Ideographic?: string; Phonetic?: string };
      return [pn.Alphabetic, pn.Ideographic, pn.Phonetic].filter(Boolean).join('=');
    }
    return String(value);
  }).join('\\');
}

export function headerRows(item: DicomJson, names: Dictionary, depth = 0): HeaderRow[] {
  const rows: HeaderRow[] = [];
  for (const tag of Object.keys(item).sort()) {
    const attribute = item[tag];
    const tagText = formatTag(tag);
    const name = names[tagText]?.name ?? (Number.parseInt(tag.slice(0, 4), 16) % 2 ? t('header.private') : '');
    if (attribute.vr === 'SQ') {
      const items = (attribute.Value ?? []) as DicomJson[];
      rows.push({ depth, tag: tagText, name, vr: 'SQ', value: t('header.items', { count: items.length }) });
      items.forEach((child, index) => {
        rows.push({ depth: depth + 1, tag: '', name: t('header.item', { index: index + 1 }), vr: '', value: '' });
        rows.push(...headerRows(child, names, depth + 2));
      });
    } else {
      rows.push({ depth, tag: tagText, name, vr: attribute.vr, value: formatValue(attribute) });
    }
  }
  return rows;
}

export const headerFeature: Feature = {
  id: 'dicom-header',
  install(ctx: ViewerContext) {
    let body: HTMLElement | null = null;
    const filter = el('input', { type: 'search', class: 'yy-header-filter', 'data-action': 'header-filter',
      'data-i18n-placeholder': 'header.filter' });
    const table = el('tbody');
    const caption = el('div', { class: 'yy-header-caption' });
    const wrapper = el('div', { class: 'yy-header-viewer' }, filter, caption,
      el('table', { class: 'yy-header-table' },
        el('thead', {}, el('tr', {}, ...['header.tag', 'header.name', 'header.vr', 'header.value']
          .map((key) => el('th', { 'data-i18n': key })))),
        table));

    const applyFilter = () => {
      const needle = filter.value.trim().toLowerCase();
      table.querySelectorAll<HTMLTableRowElement>('tr').forEach((row) => {
        row.hidden = !!needle && !(row.textContent ?? '').toLowerCase().includes(needle);
      });
    };
    const refresh = () => {
      if (!body || body.closest<HTMLElement>('.yy-panel')!.hidden) return;
      const slot = ctx.activeSlot();
      const viewport = ctx.stackViewport(slot);
      const instance = viewport ? instanceOf(slot, viewport.getCurrentImageId()) : undefined;
      const names: Dictionary = dcmjsData.DicomMetaDictionary.dictionary;
      clear(table);
      caption.textContent = instance ? t('header.instance', { number: instance.instanceNumber, uid: instance.sopInstanceUid }) : t('header.none');
      if (!instance) return;
      for (const row of headerRows(instance.metadata, names)) {
        table.append(el('tr', { 'data-tag': row.tag },
          el('td', { class: 'yy-header-tag', style: `padding-left:${row.depth * 10 + 2}px` }, row.tag),
          el('td', {}, row.name), el('td', {}, row.vr), el('td', { class: 'yy-header-value' }, row.value)));
      }
      applyFilter();
    };
    filter.addEventListener('input', applyFilter);
    ctx.addButton({
      id: 'view-header', label: 'header.button', title: 'header.button.title', group: 'group.view', shortcut: 'd',
      onClick: () => {
        if (!body) {
          body = ctx.sidePanel('dicom-header', 'header.title');
          body.append(wrapper);
          translateTree(wrapper);
        } else {
          const panel = body.closest<HTMLElement>('.yy-panel')!;
          panel.hidden = !panel.hidden;
        }
        // the side column changes width with the panel: let Cornerstone refit its canvases
        ctx.engine.resize(true, true);
        refresh();
      },
    });
    for (const event of ['image-changed', 'active-changed', 'series-shown'] as const) {
      ctx.on(event, (slot) => { if (!slot || slot === ctx.activeSlot()) refresh(); });
    }
  },
};
