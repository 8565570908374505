// Download of the original images (CF-7): the server packs the exam into encrypted ZIP parts; the page shows
// the generated password (once), how long it is valid, each part's size and link, and the total.
import { el } from '../../dom';
import { t } from '../../i18n';
import { api, Download } from '../app/api';
import { bytes, dateTime } from '../app/format';
import { errorCard } from '../app/shell';

const POLL_MS = 2000;

export function downloadPanel(study: string): HTMLElement {
  const start = el('button', { type: 'button', class: 'm-button m-download-start' }, t('m.download.start'));
  const out = el('div', { class: 'm-download-out', 'aria-live': 'polite' });
  const panel = el('section', { class: 'm-card m-download' }, el('h2', {}, t('m.download.title')),
    el('p', { class: 'm-muted m-small' }, t('m.download.intro')), start, out);
  start.onclick = async () => {
    start.disabled = true;
    out.replaceChildren(el('p', { class: 'm-muted' }, t('m.download.preparing')));
    try {
      let made = await api.download(study);
      while (made.state === 'pending' && panel.isConnected) {
        show(out, made);
        await new Promise((resolve) => window.setTimeout(resolve, POLL_MS));
        made = await api.downloadState(made.id);
      }
      show(out, made);
    } catch (error) {
      start.disabled = false;
      out.replaceChildren(errorCard(error));
    }
  };
  return panel;
}

function show(out: HTMLElement, made: Download): void {
  const ready = made.state === 'ready';
  const password = el('code', { class: 'm-password', 'data-password': made.password }, made.password);
  out.replaceChildren(
    el('p', { class: 'm-label' }, t('m.download.password')),
    el('div', { class: 'm-row m-password-row' }, password, copyButton(made.password, 'm-copy-password')),
    el('p', { class: 'm-small' }, t('m.download.passwordOnce')),
    el('p', { class: 'm-valid' }, t('m.download.validUntil', { at: dateTime(made.valid_until) })),
    el('p', { class: 'm-total', 'data-total': made.total_size }, t('m.download.total', { size: bytes(made.total_size), n: made.parts.length })),
    ready ? el('ul', { class: 'm-parts' }, ...made.parts.map((part) => el('li', {},
      el('a', { class: 'm-button m-part', href: part.url, download: '', 'data-size': part.size },
        t('m.download.part', { n: part.n, size: bytes(part.size) })))))
      : el('p', { class: 'm-muted' }, t('m.download.preparing')));
  out.dataset.state = made.state;
}

/** A button that copies ``text`` (Clipboard API where the page may use it, else a selected text field). */
export function copyButton(text: string, cls = ''): HTMLButtonElement {
  const button = el('button', { type: 'button', class: `m-button m-copy ${cls}` }, t('m.common.copy'));
  button.onclick = async () => {
    let done = false;
    try {
      await navigator.clipboard.writeText(text);
      done = true;
    } catch {
      const field = el('textarea', { class: 'm-offscreen', readonly: true });
      field.value = text;
      document.body.append(field);
      field.select();
      done = document.execCommand('copy');
      field.remove();
    }
    button.textContent = t(done ? 'm.common.copied' : 'm.common.copyFailed');
    button.dataset.copied = String(done);
  };
  return button;
}
