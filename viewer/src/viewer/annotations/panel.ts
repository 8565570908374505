// The side panel: the user's key images and annotations; a click shows the image.
import { clear, el } from '../../dom';
import { t } from '../../i18n';
import type { ViewerContext } from '../context';
import type { AnnotationItem, KeyImage } from './api';
import { locate } from './serialize';

export interface PanelActions { onDelete(uid: string): void }

async function show(ctx: ViewerContext, sopInstanceUid: string, frame: number | null): Promise<void> {
  const found = locate(ctx.study, sopInstanceUid, frame);
  if (!found) return;
  const series = ctx.study.series[found.seriesIndex];
  const slot = ctx.activeSlot();
  const viewport = ctx.stackViewport(slot);
  if (viewport && slot.series?.uid === series.uid) await viewport.setImageIdIndex(found.imageIndex);
  else await ctx.showSeries(slot, series, ctx.study, found.imageIndex);
}

function where(ctx: ViewerContext, sopInstanceUid: string | null, frame: number | null): string {
  const found = sopInstanceUid ? locate(ctx.study, sopInstanceUid, frame) : null;
  if (!found) return '';
  const series = ctx.study.series[found.seriesIndex];
  return `${t('annot.series', { number: series.number })} · ${t('annot.image', { index: found.imageIndex + 1 })}`;
}

function describe(item: AnnotationItem): string {
  const key = `annot.tool.${item.tool}`;
  const name = t(key) === key ? item.tool : t(key);
  const values = item.measurements.slice(0, 2).map((m) => `${m.value.toFixed(1)} ${m.unit}`);
  return [name, item.text ?? '', ...values].filter(Boolean).join(' · ');
}

export function renderPanel(panel: HTMLElement, ctx: ViewerContext, items: AnnotationItem[], keys: KeyImage[],
  actions: PanelActions): void {
  clear(panel);
  const keyList = el('ul', { class: 'yy-annot-keys', 'data-list': 'key-images' });
  for (const key of keys) {
    const button = el('button', { type: 'button', class: 'yy-link', 'data-sop': key.sop_instance_uid },
      where(ctx, key.sop_instance_uid, key.frame) || key.sop_instance_uid);
    button.addEventListener('click', () => void show(ctx, key.sop_instance_uid, key.frame));
    keyList.append(el('li', {}, button));
  }
  const annotationList = el('ul', { class: 'yy-annot-list', 'data-list': 'annotations' });
  for (const item of items) {
    const open = el('button', { type: 'button', class: 'yy-link', 'data-annotation': item.uid, title: where(ctx, item.sop_instance_uid, item.frame) },
      describe(item));
    open.addEventListener('click', () => { if (item.sop_instance_uid) void show(ctx, item.sop_instance_uid, item.frame); });
    const remove = el('button', { type: 'button', class: 'yy-link yy-annot-remove', 'data-remove': item.uid, 'aria-label': t('annot.eraser') }, '×');
    remove.addEventListener('click', () => actions.onDelete(item.uid));
    annotationList.append(el('li', {}, open, remove));
  }
  panel.append(
    el('h3', {}, t('annot.keyImages')), keys.length ? keyList : el('p', { class: 'yy-muted' }, t('annot.none')),
    el('h3', {}, t('annot.annotations')), items.length ? annotationList : el('p', { class: 'yy-muted' }, t('annot.none')),
  );
}
