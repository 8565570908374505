// /m/open/{token} — the link of the QR code or SMS (CF-2). Shows only the hospital and the exam's type and
// date; the patient chooses phone or ID-card number, asks for a code (sent to the phone on file; resend after
// a countdown) and enters the 6 digits. Wrong or expired code, lockout (with the time to wait) and an
// expired or unknown link each have their own message.
import { el } from '../../dom';
import { t } from '../../i18n';
import { api, ApiError, OpenInfo } from '../app/api';
import { dicomDate, modalityName, waitText } from '../app/format';
import { current, navigate } from '../app/router';
import { forgetSession, frame } from '../app/shell';

const RESEND_SECONDS = 60;

export async function verifyPage(root: HTMLElement, params: { token: string }): Promise<void> {
  const main = frame(root, { title: t('m.verify.title'), who: null });
  const still = current();
  let info: OpenInfo;
  try {
    info = await api.openInfo(params.token);
  } catch (error) {
    if (!still()) return;
    main.append(linkProblem(error));
    return;
  }
  if (!still()) return;
  main.append(el('section', { class: 'm-card m-open-exam' },
    el('p', { class: 'm-hospital' }, info.hospital),
    el('p', { class: 'm-muted' }, `${modalityName(info.exam.modality)} · ${dicomDate(info.exam.date)}`)));
  main.append(form(params.token, info));
}

function linkProblem(error: unknown): HTMLElement {
  const status = error instanceof ApiError ? error.status : 0;
  const key = status === 410 ? 'm.verify.expiredLink' : status === 404 ? 'm.verify.unknownLink'
    : status === 429 ? 'm.verify.tooMany' : 'm.error.network';
  return el('section', { class: 'm-card m-empty', 'data-state': `link-${status || 'error'}` },
    el('h2', {}, t(key)), el('p', {}, t('m.verify.askHospital')));
}

function form(token: string, info: OpenInfo): HTMLElement {
  const methods = info.methods.length ? info.methods : ['phone' as const];
  let method = methods[0];
  const value = el('input', { class: 'm-input m-value', autocomplete: 'off', required: true });
  const choose = el('div', { class: 'm-segmented', role: 'radiogroup', 'aria-label': t('m.verify.method') });
  const setMethod = (next: typeof method) => {
    method = next;
    value.type = next === 'phone' ? 'tel' : 'text';
    value.inputMode = next === 'phone' ? 'tel' : 'text';
    value.maxLength = next === 'phone' ? 20 : 18;
    value.placeholder = t(next === 'phone' ? 'm.verify.phonePlaceholder' : 'm.verify.idPlaceholder');
    value.setAttribute('aria-label', t(`m.verify.${next}`));
    choose.querySelectorAll('button').forEach((b) => b.setAttribute('aria-checked', String(b.dataset.method === next)));
  };
  for (const one of methods) {
    const b = el('button', { type: 'button', role: 'radio', 'data-method': one, class: 'm-seg' }, t(`m.verify.${one}`));
    b.onclick = () => setMethod(one);
    choose.append(b);
  }
  setMethod(method);

  const sendButton = el('button', { type: 'button', class: 'm-button m-send-code' }, t('m.verify.send'));
  const sent = el('p', { class: 'm-status', role: 'status' });
  const code = el('input', { class: 'm-input m-code', type: 'text', inputmode: 'numeric', pattern: '[0-9]*', maxlength: 6,
    autocomplete: 'one-time-code', placeholder: '······', 'aria-label': t('m.verify.code') });
  const submit = el('button', { type: 'submit', class: 'm-button m-primary m-verify' }, t('m.verify.submit'));
  const problem = el('p', { class: 'm-error', role: 'alert', hidden: true });
  const showProblem = (text: string, state: string) => {
    problem.hidden = false;
    problem.textContent = text;
    problem.dataset.state = state;
  };
  let timer = 0;
  const countdown = (seconds: number) => {
    window.clearInterval(timer);
    let left = seconds;
    sendButton.disabled = true;
    const tick = () => {
      if (!sendButton.isConnected) return window.clearInterval(timer);
      if (left <= 0) {
        window.clearInterval(timer);
        sendButton.disabled = false;
        sendButton.textContent = t('m.verify.resend');
        return;
      }
      sendButton.textContent = t('m.verify.resendIn', { wait: waitText(left--) });
    };
    tick();
    timer = window.setInterval(tick, 1000);
  };

  sendButton.onclick = async () => {
    problem.hidden = true;
    if (!value.value.trim()) return showProblem(t('m.verify.needValue'), 'need-value');
    sendButton.disabled = true;
    try {
      const answer = await api.sendCode(token, method, value.value.trim());
      sent.textContent = t('m.verify.sent', { to: answer.sent_to, minutes: Math.round(answer.expires_in / 60) });
      sent.dataset.state = 'sent';
      countdown(RESEND_SECONDS);
      code.focus();
    } catch (error) {
      sendButton.disabled = false;
      reportFailure(error, showProblem, countdown);
    }
  };
  code.oninput = () => { code.value = code.value.replace(/\D/g, '').slice(0, 6); };

  const form = el('form', { class: 'm-card m-verify-form', novalidate: true },
    el('h2', {}, t('m.verify.who')), choose, value, sendButton, sent,
    el('label', { class: 'm-label' }, t('m.verify.code')), code, problem, submit,
    el('p', { class: 'm-muted m-small' }, t('m.verify.privacy')));
  form.onsubmit = async (event) => {
    event.preventDefault();
    problem.hidden = true;
    if (!/^\d{6}$/.test(code.value)) return showProblem(t('m.verify.codeFormat'), 'code-format');
    submit.disabled = true;
    try {
      const answer = await api.verify(token, method, value.value.trim(), code.value);
      forgetSession();
      navigate(answer.next && answer.next.startsWith('/m/') ? answer.next : '/m/exams', true);
    } catch (error) {
      submit.disabled = false;
      reportFailure(error, showProblem, countdown);
    }
  };
  return form;
}

function reportFailure(error: unknown, show: (text: string, state: string) => void, countdown: (s: number) => void): void {
  if (!(error instanceof ApiError)) return show(t('m.error.network'), 'network');
  if (error.status === 401) return show(t('m.verify.wrongCode'), 'wrong');
  if (error.status === 429) {
    const wait = error.retryAfter ?? 60;
    countdown(wait);
    return show(t('m.verify.locked', { wait: waitText(wait) }), 'locked');
  }
  if (error.status === 410) return show(t('m.verify.expiredLink'), 'expired');
  if (error.status === 422 || error.status === 400) return show(t('m.verify.badValue'), 'bad-value');
  show(`${t('m.error.server')}: ${error.message}`, 'error');
}
