// /m/exams — every exam of the patient at every hospital (CF-3), newest first, grouped by hospital, type or
// month (the patient chooses), with a keyword search (server side, ?q=). Hidden exams are marked: they are
// left out of new shares. A share visitor sees the shared exams the same way.
import { el } from '../../dom';
import { t } from '../../i18n';
import { api, Exam, ExamList } from '../app/api';
import { dicomDate, modalityName } from '../app/format';
import { current } from '../app/router';
import { errorCard, frame, noSession, session } from '../app/shell';

type Grouping = 'hospital' | 'type' | 'date';
const GROUP_KEY = 'yunying.mobile.groupBy';
let lastList: ExamList | null = null;

/** The exams last listed (the order the exam page swipes through), fetched when there is none yet. */
export async function examOrder(): Promise<Exam[]> {
  if (!lastList) lastList = await api.exams();
  return lastList.exams;
}

export async function examsPage(root: HTMLElement): Promise<void> {
  const still = current();
  const who = await session();
  if (!still()) return;
  if (!who) return noSession(root);
  const main = frame(root, { title: t('m.exams.title'), who, tab: 'exams' });
  if (who.display_name) main.append(el('p', { class: 'm-greeting' }, t('m.exams.hello', { name: who.display_name })));
  const search = el('input', { class: 'm-input m-search', type: 'search', enterkeyhint: 'search',
    placeholder: t('m.exams.search'), 'aria-label': t('m.exams.search') });
  let grouping = (localStorage.getItem(GROUP_KEY) as Grouping | null) ?? 'hospital';
  const groups = el('div', { class: 'm-segmented m-grouping', role: 'radiogroup', 'aria-label': t('m.exams.groupBy') });
  const list = el('div', { class: 'm-exam-list', 'aria-live': 'polite' });
  main.append(search, groups, list);
  const draw = () => {
    groups.querySelectorAll('button').forEach((b) => b.setAttribute('aria-checked', String(b.dataset.group === grouping)));
    drawList(list, lastList, grouping);
  };
  for (const one of ['hospital', 'type', 'date'] as const) {
    const b = el('button', { type: 'button', role: 'radio', class: 'm-seg', 'data-group': one }, t(`m.exams.by.${one}`));
    b.onclick = () => {
      grouping = one;
      localStorage.setItem(GROUP_KEY, one);
      draw();
    };
    groups.append(b);
  }
  let asked = 0;
  const load = async (q: string) => {
    const mine = ++asked;
    list.dataset.loading = 'true';
    try {
      const found = await api.exams(q);
      if (mine !== asked) return;
      lastList = found;
      draw();
    } catch (error) {
      if (mine === asked) list.replaceChildren(errorCard(error));
    } finally {
      if (mine === asked) list.dataset.loading = 'false';
    }
  };
  let debounce = 0;
  search.oninput = () => {
    window.clearTimeout(debounce);
    debounce = window.setTimeout(() => void load(search.value.trim()), 300);
  };
  await load('');
}

function groupOf(exam: Exam, grouping: Grouping): string {
  if (grouping === 'hospital') return exam.hospital.name;
  if (grouping === 'type') return modalityName(exam.modality || exam.modalities[0] || '?');
  return /^\d{6}/.test(exam.date) ? `${exam.date.slice(0, 4)}-${exam.date.slice(4, 6)}` : t('m.exams.noDate');
}

function drawList(list: HTMLElement, found: ExamList | null, grouping: Grouping): void {
  list.replaceChildren();
  if (!found || found.exams.length === 0) {
    list.append(el('p', { class: 'm-card m-empty', 'data-state': 'no-exams' }, t('m.exams.none')));
    return;
  }
  const grouped = new Map<string, Exam[]>();
  for (const exam of found.exams) {
    const key = groupOf(exam, grouping);
    grouped.set(key, [...(grouped.get(key) ?? []), exam]);
  }
  for (const [name, exams] of grouped) {
    list.append(el('section', { class: 'm-group', 'data-group-name': name },
      el('h2', { class: 'm-group-title' }, `${name} (${exams.length})`), ...exams.map(card)));
  }
}

function card(exam: Exam): HTMLElement {
  const report = exam.report?.status ? t(`m.report.status.${exam.report.status}`) : t('m.exams.noReport');
  return el('a', { class: `m-card m-exam${exam.hidden ? ' m-hidden' : ''}`, href: `/m/exams/${encodeURIComponent(exam.study_uid)}`,
    'data-nav': true, 'data-study': exam.study_uid, 'data-films': exam.films },
  el('div', { class: 'm-exam-head' },
    el('span', { class: 'm-modality' }, exam.modality || exam.modalities.join('/')),
    el('span', { class: 'm-exam-date' }, dicomDate(exam.date)),
    ...(exam.hidden ? [el('span', { class: 'm-badge m-hidden-badge' }, t('m.exams.hidden'))] : [])),
  el('p', { class: 'm-exam-desc' }, exam.description || modalityName(exam.modality)),
  el('p', { class: 'm-muted' }, exam.hospital.name),
  el('p', { class: 'm-exam-meta' }, `${report} · ${t('m.exams.images', { n: exam.n_images })}`
    + (exam.films ? ` · ${t('m.exams.films', { n: exam.films })}` : '')));
}
