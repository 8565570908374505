// The frame of every phone page: a header (back, title, text size, language, sign out), the watermark
// band naming who is looking, the page's content, the bottom navigation of a patient, and the feedback
// button. Also the session ("who is this": GET /api/patient/me) shared by the pages.
import { el, clear } from '../../dom';
import { locale, setLocale, t } from '../../i18n';
import { api, ApiError, Me, useCsrf } from './api';
import { openFeedback } from './feedback';
import { navigate } from './router';

const TEXT_KEY = 'yunying.mobile.textSize';
const TEXT_SIZES = ['1', '2', '3']; // 17, 20, 23 px base (styles/mobile.css)

let me: Me | null = null;

export function applyTextSize(): void {
  const stored = localStorage.getItem(TEXT_KEY);
  document.documentElement.dataset.text = stored && TEXT_SIZES.includes(stored) ? stored : '1';
}

function nextTextSize(): void {
  const now = document.documentElement.dataset.text || '1';
  const next = TEXT_SIZES[(TEXT_SIZES.indexOf(now) + 1) % TEXT_SIZES.length];
  localStorage.setItem(TEXT_KEY, next);
  document.documentElement.dataset.text = next;
}

/** Who is looking (patient or share visitor); null when there is no session (a 401). */
export async function session(fresh = false): Promise<Me | null> {
  if (me && !fresh) return me;
  try {
    me = await api.me();
    useCsrf(me.csrf_token);
    return me;
  } catch (error) {
    if (error instanceof ApiError && (error.status === 401 || error.status === 403)) return (me = null);
    throw error;
  }
}

export function forgetSession(): void {
  me = null;
}

export function isShare(who: Me | null): boolean {
  return who?.kind === 'share';
}

export interface Frame {
  title: string;
  back?: string; // in-app path of the back arrow
  study?: string | null; // the exam in view (feedback context)
  who?: Me | null; // null: a public page (no navigation, no watermark)
  tab?: 'exams' | 'shares' | 'access';
}

/** Draw the frame into ``root`` and return the element the page fills. */
export function frame(root: HTMLElement, spec: Frame): HTMLElement {
  clear(root);
  const tools = el('div', { class: 'm-tools' },
    button('m-textsize', t('m.shell.textSize'), 'A', nextTextSize),
    button('m-lang', t('m.shell.language'), locale() === 'en' ? '中' : 'EN',
      () => setLocale(locale() === 'en' ? 'zh-CN' : 'en')));
  if (spec.who) tools.append(button('m-logout', t(isShare(spec.who) ? 'm.shell.leave' : 'm.shell.logout'), t('m.shell.logoutShort'), logout));
  const header = el('header', { class: 'm-header' },
    spec.back ? el('a', { class: 'm-back', href: spec.back, 'data-nav': true, 'aria-label': t('m.shell.back') }, '‹') : el('span'),
    el('h1', { class: 'm-title' }, spec.title), tools);
  const main = el('main', { class: 'm-main' });
  root.append(header);
  if (spec.who) root.append(watermark(spec.who));
  root.append(main);
  if (spec.who && !isShare(spec.who)) root.append(nav(spec.tab));
  root.append(el('button', { class: 'm-fab', type: 'button', 'aria-label': t('m.feedback.open') }, t('m.feedback.button')));
  root.querySelector<HTMLButtonElement>('.m-fab')!.onclick = () => openFeedback(spec.study ?? null);
  document.title = `${spec.title} · ${t('m.shell.brand')}`;
  return main;
}

function button(cls: string, label: string, text: string, onClick: () => void): HTMLButtonElement {
  const made = el('button', { class: `m-tool ${cls}`, type: 'button', 'aria-label': label, title: label }, text);
  made.onclick = onClick;
  return made;
}

function watermark(who: Me): HTMLElement {
  const text = who.watermark || (who.display_name ? t('m.shell.watermark', { name: who.display_name }) : t('m.shell.brand'));
  const band = el('div', { class: 'm-watermark', 'aria-hidden': 'true' });
  for (let i = 0; i < 6; i++) band.append(el('span', {}, text));
  const notice = isShare(who) ? el('p', { class: 'm-notice' }, t('m.shell.screenshotNotice')) : null;
  return notice ? el('div', {}, band, notice) : band;
}

function nav(tab: Frame['tab']): HTMLElement {
  const item = (name: NonNullable<Frame['tab']>, href: string) =>
    el('a', { class: `m-nav-item${tab === name ? ' m-active' : ''}`, href, 'data-nav': true }, t(`m.nav.${name}`));
  return el('nav', { class: 'm-nav' }, item('exams', '/m/exams'), item('shares', '/m/shares'), item('access', '/m/access'));
}

async function logout(): Promise<void> {
  try {
    await api.logout();
  } catch {
    /* the session may have ended already */
  }
  forgetSession();
  navigate('/m/exams', true);
}

/** The page shown without a session: there is no sign-in on a phone, only the link from the hospital. */
export function noSession(root: HTMLElement): void {
  const main = frame(root, { title: t('m.shell.brand'), who: null });
  main.append(el('section', { class: 'm-card m-empty', 'data-state': 'no-session' },
    el('h2', {}, t('m.session.none')), el('p', {}, t('m.session.howto'))));
}

/** A failure of a page's API call, as a card (the problem detail from the server). */
export function errorCard(error: unknown): HTMLElement {
  const text = error instanceof ApiError ? `${t('m.error.server')} (${error.status}): ${error.message}` : t('m.error.network');
  return el('p', { class: 'm-error', role: 'alert' }, text);
}
