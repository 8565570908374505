// /m/shares — the patient shares exams (CF-6, SH-3): choose exams (hidden ones are left out unless chosen),
// hide or show exams, an expiry, an optional password, anonymous, with history; the answer is a QR code and a
// link to copy. Below, the patient's shares with how often each was opened, and revoke.
import { el } from '../../dom';
import { t } from '../../i18n';
import { api, Exam, Share, ShareCreated } from '../app/api';
import { dateTime, dicomDate } from '../app/format';
import { current } from '../app/router';
import { errorCard, frame, isShare, noSession, session } from '../app/shell';
import { copyButton } from './download';

const EXPIRY_HOURS = [24, 72, 168, 720];

export async function sharesPage(root: HTMLElement): Promise<void> {
  const still = current();
  const who = await session();
  if (!still()) return;
  if (!who || isShare(who)) return noSession(root);
  const main = frame(root, { title: t('m.shares.title'), who, tab: 'shares' });
  const list = el('section', { class: 'm-share-list' });
  let exams: Exam[] = [];
  try {
    exams = (await api.exams()).exams;
  } catch (error) {
    main.append(errorCard(error));
  }
  if (!still()) return;
  main.append(createForm(exams, () => void drawShares(list)), list);
  await drawShares(list);
}

function createForm(exams: Exam[], changed: () => void): HTMLElement {
  const rows = exams.map((exam) => {
    const box = el('input', { type: 'checkbox', class: 'm-check', value: exam.study_uid, checked: !exam.hidden });
    const hide = el('button', { type: 'button', class: 'm-button m-small-button m-hide-toggle' },
      t(exam.hidden ? 'm.shares.unhide' : 'm.shares.hide'));
    const badge = el('span', { class: 'm-badge m-hidden-badge', hidden: !exam.hidden }, t('m.exams.hidden'));
    hide.onclick = async () => {
      hide.disabled = true;
      try {
        await api.hide(exam.study_uid, !exam.hidden);
        exam.hidden = !exam.hidden;
        box.checked = !exam.hidden && box.checked;
        badge.hidden = !exam.hidden;
        hide.textContent = t(exam.hidden ? 'm.shares.unhide' : 'm.shares.hide');
      } finally {
        hide.disabled = false;
      }
    };
    return el('div', { class: 'm-share-exam', 'data-study': exam.study_uid },
      el('label', { class: 'm-check-label' }, box,
        el('span', {}, `${exam.modality} · ${dicomDate(exam.date)} · ${exam.hospital.name}`), badge), hide);
  });
  const expiry = el('select', { class: 'm-input m-expiry', 'aria-label': t('m.shares.expiry') },
    ...EXPIRY_HOURS.map((h) => el('option', { value: h, selected: h === 72 }, t(`m.shares.hours.${h}`))));
  const password = el('input', { class: 'm-input m-share-password', type: 'text', autocomplete: 'off', maxlength: 64,
    placeholder: t('m.shares.passwordOptional'), 'aria-label': t('m.shares.password') });
  const anonymous = el('input', { type: 'checkbox', class: 'm-check m-anonymous' });
  const history = el('input', { type: 'checkbox', class: 'm-check m-history' });
  const problem = el('p', { class: 'm-error', role: 'alert', hidden: true });
  const result = el('div', { class: 'm-share-result', 'aria-live': 'polite' });
  const submit = el('button', { type: 'submit', class: 'm-button m-primary m-share-create' }, t('m.shares.create'));
  const form = el('form', { class: 'm-card m-share-form' }, el('h2', {}, t('m.shares.new')),
    el('p', { class: 'm-label' }, t('m.shares.choose')), el('p', { class: 'm-muted m-small' }, t('m.exam.hideHint')),
    ...(rows.length ? rows : [el('p', { class: 'm-muted' }, t('m.exams.none'))]),
    el('label', { class: 'm-label' }, t('m.shares.expiry')), expiry,
    el('label', { class: 'm-label' }, t('m.shares.password')), password,
    el('label', { class: 'm-check-label' }, anonymous, el('span', {}, t('m.shares.anonymous'))),
    el('label', { class: 'm-check-label' }, history, el('span', {}, t('m.shares.history'))),
    problem, submit, result);
  form.onsubmit = async (event) => {
    event.preventDefault();
    const studies = [...form.querySelectorAll<HTMLInputElement>('.m-share-exam input:checked')].map((b) => b.value);
    problem.hidden = studies.length > 0;
    if (!studies.length) return void (problem.textContent = t('m.shares.chooseOne'));
    submit.disabled = true;
    try {
      const made = await api.share({ studies, expires_in_hours: Number(expiry.value), password: password.value || null,
        anonymous: anonymous.checked, history: history.checked });
      result.replaceChildren(shareResult(made));
      result.scrollIntoView({ block: 'start' });
      changed();
    } catch (error) {
      result.replaceChildren(errorCard(error));
    } finally {
      submit.disabled = false;
    }
  };
  return form;
}

function shareResult(made: ShareCreated): HTMLElement {
  return el('div', { class: 'm-card m-share-made', 'data-share': made.id },
    el('img', { class: 'm-qr', src: made.qr_png, alt: t('m.shares.qr') }),
    el('p', { class: 'm-link' }, made.url), copyButton(made.url, 'm-copy-link'),
    el('p', { class: 'm-muted' }, t('m.shares.until', { at: dateTime(made.expires_at) })));
}

async function drawShares(list: HTMLElement): Promise<void> {
  try {
    const { shares } = await api.shares();
    list.replaceChildren(el('h2', {}, t('m.shares.mine')),
      ...(shares.length ? shares.map((share) => shareCard(share, list)) : [el('p', { class: 'm-muted' }, t('m.shares.noneYet'))]));
  } catch (error) {
    list.replaceChildren(errorCard(error));
  }
}

function shareCard(share: Share, list: HTMLElement): HTMLElement {
  const flags = [share.password && t('m.shares.withPassword'), share.anonymous && t('m.shares.anonymousShort'),
    share.history && t('m.shares.historyShort')].filter(Boolean).join(' · ');
  const state = share.revoked ? t('m.shares.revoked') : new Date(share.expires_at) < new Date() ? t('m.shares.expired')
    : t('m.shares.until', { at: dateTime(share.expires_at) });
  const card = el('div', { class: `m-card m-share${share.revoked ? ' m-revoked' : ''}`, 'data-share': share.id },
    el('p', {}, t('m.shares.examsCount', { n: share.studies.length }) + (flags ? ` · ${flags}` : '')),
    el('p', { class: 'm-muted' }, state), el('p', { class: 'm-muted' }, t('m.shares.opened', { n: share.opened })));
  if (!share.revoked) {
    const revoke = el('button', { type: 'button', class: 'm-button m-danger m-revoke' }, t('m.shares.revoke'));
    revoke.onclick = async () => {
      if (!window.confirm(t('m.shares.revokeConfirm'))) return;
      revoke.disabled = true;
      try {
        await api.revokeShare(share.id);
        await drawShares(list);
      } catch (error) {
        card.append(errorCard(error));
        revoke.disabled = false;
      }
    };
    card.append(revoke);
  }
  return card;
}
