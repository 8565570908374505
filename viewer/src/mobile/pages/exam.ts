// /m/exams/{study} — one exam with the tabs report · film · images (CF-3, CF-5, CF-7). Swiping left or right
// (or the arrows) goes to the next or previous exam of the list and keeps the tab, so a patient can leaf through
// reports or films. The images open in the touch viewer (/m/viewer, a page of its own).
import { el } from '../../dom';
import { t } from '../../i18n';
import { api, ApiError, Exam, Me } from '../app/api';
import { dateTime, dicomDate, modalityName } from '../app/format';
import { current, navigate } from '../app/router';
import { errorCard, frame, isShare, noSession, session } from '../app/shell';
import { filmView } from '../film/filmView';
import { downloadPanel } from './download';
import { examOrder } from './exams';

type Tab = 'report' | 'film' | 'images';
const TAB_KEY = 'yunying.mobile.tab';
const SWIPE_PX = 70;

export async function examPage(root: HTMLElement, params: { study: string }): Promise<void> {
  const still = current();
  const who = await session();
  if (!still()) return;
  if (!who) return noSession(root);
  const main = frame(root, { title: t('m.exam.title'), back: '/m/exams', who, study: params.study, tab: 'exams' });
  let order: Exam[] = [];
  try {
    order = await examOrder();
  } catch (error) {
    main.append(errorCard(error));
  }
  if (!still()) return;
  const position = order.findIndex((exam) => exam.study_uid === params.study);
  const exam = order[position];
  const prevExam = position > 0 ? order[position - 1] : null;
  const nextExam = position >= 0 && position < order.length - 1 ? order[position + 1] : null;
  const go = (target: Exam | null) => {
    if (target) navigate(`/m/exams/${encodeURIComponent(target.study_uid)}`, true);
  };
  main.dataset.study = params.study;
  const pages = pager(position, order.length, () => go(prevExam), () => go(nextExam));
  main.append(summary(exam, who, params.study), pages);

  let tab = (sessionStorage.getItem(TAB_KEY) as Tab | null) ?? 'report';
  const tabs = el('div', { class: 'm-tabs', role: 'tablist' });
  const body = el('div', { class: 'm-tab-body', role: 'tabpanel' });
  const select = (next: Tab) => {
    tab = next;
    sessionStorage.setItem(TAB_KEY, next);
    tabs.querySelectorAll('button').forEach((b) => b.setAttribute('aria-selected', String(b.dataset.tab === next)));
    body.dataset.tab = next;
    if (next === 'report') void reportView(body, params.study);
    else if (next === 'film') {
      // the film gets the screen: the tabs reach the top (sticky) and the stage fills what is left
      const header = document.querySelector('.m-header')?.getBoundingClientRect().height ?? 0;
      window.scrollTo({ top: pages.getBoundingClientRect().bottom + window.scrollY - header });
      void filmView(body, params.study);
    }
    else imagesView(body, params.study, exam);
  };
  for (const one of ['report', 'film', 'images'] as const) {
    const b = el('button', { type: 'button', role: 'tab', class: 'm-tab', 'data-tab': one }, t(`m.exam.tab.${one}`));
    b.onclick = () => select(one);
    tabs.append(b);
  }
  main.append(tabs, body);
  swipe(main, () => go(nextExam), () => go(prevExam));
  select(tab);
}

function summary(exam: Exam | undefined, who: Me, study: string): HTMLElement {
  if (!exam) return el('section', { class: 'm-card' }, el('p', { class: 'm-muted' }, t('m.exam.unknown')));
  const head = el('div', { class: 'm-exam-head' }, el('span', { class: 'm-modality' }, exam.modality),
    el('span', { class: 'm-exam-date' }, dicomDate(exam.date)));
  const card = el('section', { class: 'm-card m-exam-summary' }, head,
    el('p', { class: 'm-exam-desc' }, exam.description || modalityName(exam.modality)),
    el('p', { class: 'm-muted' }, exam.hospital.name));
  if (!isShare(who)) {
    const hide = el('button', { type: 'button', class: 'm-button m-small-button m-hide-toggle', title: t('m.exam.hideHint'),
      'aria-pressed': String(exam.hidden) },
      t(exam.hidden ? 'm.exam.unhide' : 'm.exam.hide'));
    hide.onclick = async () => {
      hide.disabled = true;
      try {
        await api.hide(study, !exam.hidden);
        exam.hidden = !exam.hidden;
        hide.textContent = t(exam.hidden ? 'm.exam.unhide' : 'm.exam.hide');
        hide.setAttribute('aria-pressed', String(exam.hidden));
      } catch (error) {
        card.append(errorCard(error));
      } finally {
        hide.disabled = false;
      }
    };
    head.append(hide);
  }
  return card;
}

function pager(position: number, total: number, onPrev: () => void, onNext: () => void): HTMLElement {
  const prev = el('button', { type: 'button', class: 'm-button m-prev-exam', 'aria-label': t('m.exam.prev') }, '‹');
  const next = el('button', { type: 'button', class: 'm-button m-next-exam', 'aria-label': t('m.exam.next') }, '›');
  prev.disabled = position <= 0;
  next.disabled = position < 0 || position >= total - 1;
  prev.onclick = onPrev;
  next.onclick = onNext;
  return el('div', { class: 'm-pager' }, prev,
    el('span', { class: 'm-muted' }, position >= 0 ? t('m.exam.position', { n: position + 1, total }) : ''), next);
}

/** A one-finger horizontal swipe (not on a zoomed film, not a pinch) calls ``onLeft`` / ``onRight``. */
function swipe(area: HTMLElement, onLeft: () => void, onRight: () => void): void {
  let start: { x: number; y: number; id: number } | null = null;
  let fingers = 0;
  area.addEventListener('pointerdown', (e) => {
    fingers++;
    const zoomed = (e.target as Element).closest('.m-film-stage[data-zoomed="true"]');
    start = fingers === 1 && !zoomed ? { x: e.clientX, y: e.clientY, id: e.pointerId } : null;
  });
  const end = (e: PointerEvent) => {
    fingers = Math.max(0, fingers - 1);
    if (!start || start.id !== e.pointerId || e.type === 'pointercancel') return void (start = null);
    const dx = e.clientX - start.x;
    const dy = e.clientY - start.y;
    start = null;
    if (Math.abs(dx) > SWIPE_PX && Math.abs(dx) > 2 * Math.abs(dy)) (dx < 0 ? onLeft : onRight)();
  };
  area.addEventListener('pointerup', end);
  area.addEventListener('pointercancel', end);
}

async function reportView(host: HTMLElement, study: string): Promise<void> {
  host.replaceChildren(el('p', { class: 'm-muted' }, t('m.common.loading')));
  try {
    const report = await api.report(study);
    if (host.dataset.tab !== 'report') return;
    if (!report.status) {
      host.replaceChildren(el('p', { class: 'm-card m-empty', 'data-state': 'no-report' }, t('m.exams.noReport')));
      return;
    }
    const section = (title: string, text: string) =>
      el('section', { class: 'm-report-part' }, el('h3', {}, title), el('p', { class: 'm-report-text' }, text || '—'));
    host.replaceChildren(el('article', { class: 'm-card m-report', 'data-status': report.status },
      el('p', { class: 'm-badge' }, t(`m.report.status.${report.status}`)),
      section(t('m.report.findings'), report.findings), section(t('m.report.impression'), report.impression),
      el('p', { class: 'm-muted m-small' }, [report.hospital, report.author && t('m.report.author', { name: report.author }),
        report.verifier && t('m.report.verifier', { name: report.verifier }),
        report.observed_at && dateTime(report.observed_at)].filter(Boolean).join(' · ')),
      ...(report.pdf ? [el('a', { class: 'm-button', href: report.pdf, target: '_blank', rel: 'noopener' }, t('m.report.pdf'))] : [])));
  } catch (error) {
    if (host.dataset.tab !== 'report') return;
    host.replaceChildren(error instanceof ApiError && error.status === 404
      ? el('p', { class: 'm-card m-empty', 'data-state': 'no-report' }, t('m.exams.noReport')) : errorCard(error));
  }
}

function imagesView(host: HTMLElement, study: string, exam: Exam | undefined): void {
  host.replaceChildren(
    el('section', { class: 'm-card' },
      el('p', {}, exam ? t('m.exams.images', { n: exam.n_images }) : ''),
      el('a', { class: 'm-button m-primary m-open-viewer', href: `/m/viewer?study=${encodeURIComponent(study)}` },
        t('m.exam.openViewer')),
      el('p', { class: 'm-muted m-small' }, t('m.exam.viewerHint'))),
    downloadPanel(study));
}
