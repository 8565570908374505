// The feedback sheet (CF-10): text and an optional screenshot picked with a file input, sent to
// POST /api/feedback with the page and the exam in view; the hospital sees it as a ticket.
import { el } from '../../dom';
import { t } from '../../i18n';
import { api, ApiError } from './api';

const MAX_SIDE = 1280; // a screenshot is scaled down to keep the JSON body small
const MAX_CHARS = 700_000; // well under the server's max_json_bytes (1 MB by default)

export function openFeedback(study: string | null): void {
  document.querySelector('.m-sheet-backdrop')?.remove();
  const text = el('textarea', { class: 'm-input m-feedback-text', rows: 5, maxlength: 4000,
    placeholder: t('m.feedback.placeholder'), 'aria-label': t('m.feedback.text') });
  const file = el('input', { class: 'm-feedback-file', type: 'file', accept: 'image/*', 'aria-label': t('m.feedback.screenshot') });
  const status = el('p', { class: 'm-status', role: 'status' });
  const submit = el('button', { class: 'm-button m-primary m-feedback-send', type: 'button' }, t('m.feedback.send'));
  const cancel = el('button', { class: 'm-button', type: 'button' }, t('m.common.cancel'));
  const sheet = el('div', { class: 'm-sheet', role: 'dialog', 'aria-modal': 'true', 'aria-label': t('m.feedback.title') },
    el('h2', {}, t('m.feedback.title')), text,
    el('label', { class: 'm-file' }, el('span', {}, t('m.feedback.screenshot')), file),
    status, el('div', { class: 'm-row' }, cancel, submit));
  const backdrop = el('div', { class: 'm-sheet-backdrop' }, sheet);
  document.body.append(backdrop);
  cancel.onclick = () => backdrop.remove();
  backdrop.onclick = (event) => { if (event.target === backdrop) backdrop.remove(); };
  text.focus();
  submit.onclick = async () => {
    if (!text.value.trim()) {
      status.textContent = t('m.feedback.empty');
      return;
    }
    submit.disabled = true;
    status.textContent = t('m.common.sending');
    try {
      const picture = file.files?.[0] ? await asPng(file.files[0]) : null;
      const made = await api.feedback({ study, page: location.pathname, text: text.value.trim(), screenshot: picture });
      sheet.dataset.ticket = String(made.id);
      status.textContent = t('m.feedback.thanks', { id: String(made.id) });
      submit.remove();
      cancel.textContent = t('m.common.close');
    } catch (error) {
      submit.disabled = false;
      status.textContent = error instanceof ApiError && error.status === 401 ? t('m.feedback.needSession')
        : error instanceof ApiError ? `${t('m.error.server')}: ${error.message}` : t('m.feedback.badImage');
    }
  };
}

/** Any picture the phone has (JPEG, PNG, HEIC where the browser decodes it) as a PNG data URL, scaled down. */
async function asPng(picture: File): Promise<string> {
  const bitmap = await createImageBitmap(picture);
  let scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  for (;;) {
    const canvas = document.createElement('canvas');
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    canvas.getContext('2d')!.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const url = canvas.toDataURL('image/png');
    if (url.length <= MAX_CHARS || canvas.width < 200) return url;
    scale *= 0.7;
  }
}
