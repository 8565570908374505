// The film tab of an exam: the electronic film sheets (GET /api/studies/{study}/films), one at a time on a
// stage that fills the screen, with stepless pinch zoom, pan and double tap (zoom.ts); the PDF of all
// sheets is a plain link. A film still being made says so (and can be asked again).
import { el } from '../../dom';
import { t } from '../../i18n';
import { api, Films, Sheet } from '../app/api';
import { errorCard } from '../app/shell';
import { FilmZoom, grid } from './zoom';

export async function filmView(host: HTMLElement, study: string): Promise<void> {
  host.replaceChildren(el('p', { class: 'm-muted' }, t('m.common.loading')));
  let films: Films;
  try {
    films = await api.films(study);
  } catch (error) {
    if (host.dataset.tab === 'film') host.replaceChildren(errorCard(error));
    return;
  }
  if (host.dataset.tab !== 'film') return; // another tab was chosen while the film was asked for
  if (films.state !== 'ready' || films.sheets.length === 0) {
    const again = el('button', { type: 'button', class: 'm-button' }, t('m.film.again'));
    again.onclick = () => void filmView(host, study);
    host.replaceChildren(el('section', { class: 'm-card m-empty', 'data-state': `film-${films.state}` },
      el('p', {}, t(films.state === 'pending' ? 'm.film.pending' : 'm.film.none')), ...(films.state === 'pending' ? [again] : [])));
    return;
  }
  let index = 0;
  const counter = el('span', { class: 'm-sheet-counter' });
  const prev = el('button', { type: 'button', class: 'm-button m-sheet-prev', 'aria-label': t('m.film.prev') }, '‹');
  const next = el('button', { type: 'button', class: 'm-button m-sheet-next', 'aria-label': t('m.film.next') }, '›');
  const stageHost = el('div', { class: 'm-film-host' });
  const pdf = el('a', { class: 'm-button m-film-pdf', href: `/api/studies/${encodeURIComponent(study)}/films.pdf`,
    target: '_blank', rel: 'noopener' }, t('m.film.pdf'));
  host.replaceChildren(el('div', { class: 'm-film-bar' }, prev, counter, next, pdf), stageHost,
    el('p', { class: 'm-muted m-small' }, t('m.film.hint')));
  const show = () => {
    counter.textContent = t('m.film.sheet', { n: index + 1, total: films.sheets.length });
    prev.disabled = index === 0;
    next.disabled = index === films.sheets.length - 1;
    showSheet(stageHost, films.sheets[index]);
  };
  prev.onclick = () => { index = Math.max(0, index - 1); show(); };
  next.onclick = () => { index = Math.min(films.sheets.length - 1, index + 1); show(); };
  show();
}

function showSheet(host: HTMLElement, sheet: Sheet): void {
  const image = el('img', { class: 'm-film-image', src: sheet.png, alt: t('m.film.sheetAlt', { n: sheet.n }), draggable: 'false' });
  const layer = el('div', { class: 'm-film-layer' }, image);
  const stage = el('div', { class: 'm-film-stage', 'data-sheet': sheet.n, 'data-layout': sheet.layout }, layer);
  host.replaceChildren(stage);
  const start = () => {
    const size = { w: sheet.width || image.naturalWidth || 1, h: sheet.height || image.naturalHeight || 1 };
    const zoom = new FilmZoom(stage, layer, size, grid(sheet.layout, sheet.images));
    const place = () => {
      zoom.measure();
      const box = zoom.sheetBox;
      Object.assign(image.style, { left: `${box.x}px`, top: `${box.y}px`, width: `${box.w}px`, height: `${box.h}px` });
    };
    place();
    window.addEventListener('resize', () => { if (stage.isConnected) place(); });
    stage.dataset.ready = 'true';
    (window as unknown as { yunyingMobile?: Record<string, unknown> }).yunyingMobile = {
      ...((window as unknown as { yunyingMobile?: Record<string, unknown> }).yunyingMobile ?? {}), film: zoom };
  };
  if (image.complete && image.naturalWidth) start();
  else {
    image.addEventListener('load', start, { once: true });
    image.addEventListener('error', () => { stage.dataset.ready = 'error'; }, { once: true });
  }
}
