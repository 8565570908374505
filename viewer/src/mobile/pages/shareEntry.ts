// /s/{token} — a share link (CF-6): asks for the password when the share has one, then the visitor sees the
// shared exams through the same pages as the patient (the API scopes them to the share).
import { el } from '../../dom';
import { t } from '../../i18n';
import { api, ApiError } from '../app/api';
import { dateTime, waitText } from '../app/format';
import { current, navigate } from '../app/router';
import { forgetSession, frame } from '../app/shell';

export async function shareEntryPage(root: HTMLElement, params: { token: string }): Promise<void> {
  const main = frame(root, { title: t('m.shareEntry.title'), who: null });
  const still = current();
  let info: { needs_password: boolean; expires_at: string };
  try {
    info = await api.shareInfo(params.token);
  } catch (error) {
    if (!still()) return;
    const status = error instanceof ApiError ? error.status : 0;
    main.append(el('section', { class: 'm-card m-empty', 'data-state': `link-${status || 'error'}` },
      el('h2', {}, t(status === 410 ? 'm.shareEntry.expired' : status === 404 ? 'm.shareEntry.unknown' : 'm.error.network'))));
    return;
  }
  if (!still()) return;
  const password = el('input', { class: 'm-input m-share-password', type: 'password', autocomplete: 'off',
    'aria-label': t('m.shareEntry.password'), placeholder: t('m.shareEntry.password') });
  const problem = el('p', { class: 'm-error', role: 'alert', hidden: true });
  const submit = el('button', { type: 'submit', class: 'm-button m-primary m-share-open' }, t('m.shareEntry.open'));
  const form = el('form', { class: 'm-card' },
    el('p', {}, t('m.shareEntry.intro')),
    el('p', { class: 'm-muted' }, t('m.shareEntry.until', { at: dateTime(info.expires_at) })),
    ...(info.needs_password ? [password] : []), problem, submit,
    el('p', { class: 'm-muted m-small' }, t('m.shell.screenshotNotice')));
  form.onsubmit = async (event) => {
    event.preventDefault();
    submit.disabled = true;
    problem.hidden = true;
    try {
      const answer = await api.openShare(params.token, info.needs_password ? password.value : null);
      forgetSession();
      navigate(answer.next && answer.next.startsWith('/m/') ? answer.next : '/m/exams', true);
    } catch (error) {
      submit.disabled = false;
      problem.hidden = false;
      problem.textContent = !(error instanceof ApiError) ? t('m.error.network')
        : error.status === 401 || error.status === 403 ? t('m.shareEntry.wrongPassword')
          : error.status === 429 ? t('m.verify.locked', { wait: waitText(error.retryAfter ?? 60) })
            : error.status === 410 ? t('m.shareEntry.expired') : `${t('m.error.server')}: ${error.message}`;
    }
  };
  main.append(form);
}
