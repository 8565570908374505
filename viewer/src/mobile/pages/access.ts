// /m/access — who opened the patient's exams, when (SH-1), and the patient's blocks (CF-8): a hospital or a
// doctor named in the log can be blocked from the patient's exams, and unblocked again.
import { el } from '../../dom';
import { t } from '../../i18n';
import { AccessEntry, api, Block, Exam, Hospital } from '../app/api';
import { dateTime, dicomDate } from '../app/format';
import { current } from '../app/router';
import { errorCard, frame, isShare, noSession, session } from '../app/shell';

const PAGE = 30; // entries per request (the API's limit)

export async function accessPage(root: HTMLElement): Promise<void> {
  const still = current();
  const who = await session();
  if (!still()) return;
  if (!who || isShare(who)) return noSession(root);
  const main = frame(root, { title: t('m.access.title'), who, tab: 'access' });
  const blocks = el('section', { class: 'm-card m-blocks' });
  const log = el('section', { class: 'm-access-log' }, el('h2', {}, t('m.access.log')));
  main.append(blocks, log);
  let hospitals: Hospital[] = [];
  let exams: Exam[] = [];
  try {
    ({ hospitals, exams } = await api.exams());
  } catch {
    /* the block form then offers doctors only, the log shows exams by their UID */
  }
  if (!still()) return;
  const redraw = () => void drawBlocks(blocks, hospitals, redraw);
  await drawBlocks(blocks, hospitals, redraw);
  await drawLog(log, undefined, redraw, new Map(exams.map((e) => [e.study_uid, e])));
}

async function drawBlocks(host: HTMLElement, hospitals: Hospital[], changed: () => void): Promise<void> {
  let found: Block[] = [];
  try {
    found = (await api.blocks()).blocks;
  } catch (error) {
    host.replaceChildren(errorCard(error));
    return;
  }
  const choose = el('select', { class: 'm-input m-block-hospital', 'aria-label': t('m.access.chooseHospital') },
    el('option', { value: '' }, t('m.access.chooseHospital')),
    ...hospitals.map((h) => el('option', { value: String(h.id) }, h.name)));
  const add = el('button', { type: 'button', class: 'm-button m-danger m-block-add' }, t('m.access.blockHospital'));
  add.onclick = async () => {
    if (!choose.value) return;
    add.disabled = true;
    try {
      await api.block({ institution_id: /^\d+$/.test(choose.value) ? Number(choose.value) : choose.value });
      changed();
    } catch (error) {
      host.append(errorCard(error));
      add.disabled = false;
    }
  };
  host.replaceChildren(el('h2', {}, t('m.access.blocks')), el('p', { class: 'm-muted m-small' }, t('m.access.blocksHint')),
    ...(found.length ? found.map((block) => blockRow(block, hospitals, changed)) : [el('p', { class: 'm-muted' }, t('m.access.noBlocks'))]),
    choose, add);
}

function blockRow(block: Block, hospitals: Hospital[], changed: () => void): HTMLElement {
  const named = typeof block.institution === 'string' ? block.institution || undefined : block.institution?.name;
  const hospital = named
    ?? hospitals.find((h) => String(h.id) === String(block.institution_id ?? ''))?.name;
  const label = block.username ? t('m.access.doctor', { name: block.username }) : hospital ?? t('m.access.aHospital');
  const undo = el('button', { type: 'button', class: 'm-button m-small-button m-unblock' }, t('m.access.unblock'));
  undo.onclick = async () => {
    undo.disabled = true;
    try {
      await api.unblock(block.id);
      changed();
    } catch {
      undo.disabled = false;
    }
  };
  return el('div', { class: 'm-row m-block', 'data-block': block.id }, el('span', {}, label), undo);
}

async function drawLog(host: HTMLElement, before: number | undefined, changed: () => void,
  exams: Map<string, Exam>): Promise<void> {
  let entries: AccessEntry[];
  try {
    entries = (await api.accessLog(before)).entries;
  } catch (error) {
    host.append(errorCard(error));
    return;
  }
  if (!entries.length && !before) host.append(el('p', { class: 'm-muted', 'data-state': 'no-access' }, t('m.access.none')));
  for (const entry of entries) host.append(entryCard(entry, changed, exams));
  if (entries.length >= PAGE) {
    const more = el('button', { type: 'button', class: 'm-button m-more' }, t('m.access.more'));
    more.onclick = () => {
      more.remove();
      void drawLog(host, entries[entries.length - 1].seq, changed, exams);
    };
    host.append(more);
  }
}

/** Who, as the patient reads it: themselves, a visitor of one of their shares, a link opened, or a staff account. */
function whoText(who: string): string {
  if (who.startsWith('patient:')) return t('m.access.who.you');
  const share = /^share:(\d+)$/.exec(who);
  if (share) return t('m.access.who.share', { id: share[1] });
  if (who === 'anonymous') return t('m.access.who.anonymous');
  return who;
}

/** A staff account (a user name) can be blocked; the patient, share visitors and link openers cannot. */
function isStaff(who: string): boolean {
  return !!who && who !== 'anonymous' && !who.startsWith('patient:') && !who.startsWith('share:');
}

function actionText(action: string): string {
  const key = `m.access.action.${action}`;
  return t(key) === key ? action : t(key);
}

function entryCard(entry: AccessEntry, changed: () => void, exams: Map<string, Exam>): HTMLElement {
  const exam = exams.get(entry.exam);
  const examText = exam ? `${exam.modality} ${dicomDate(exam.date)}` : entry.exam;
  const card = el('div', { class: 'm-card m-access-entry', 'data-action': entry.action, 'data-who': entry.who,
    'data-exam': entry.exam },
    el('p', { class: 'm-access-who' }, [whoText(entry.who), entry.institution].filter(Boolean).join(' · ')),
    el('p', { class: 'm-access-what' }, [actionText(entry.action), examText].filter(Boolean).join(' · ')),
    el('p', { class: 'm-muted m-small' }, dateTime(entry.at)));
  if (isStaff(entry.who)) {
    const block = el('button', { type: 'button', class: 'm-button m-small-button m-block-doctor' }, t('m.access.blockDoctor'));
    block.onclick = async () => {
      if (!window.confirm(t('m.access.blockConfirm', { name: entry.who }))) return;
      block.disabled = true;
      try {
        await api.block({ username: entry.who });
        changed();
      } catch (error) {
        card.append(errorCard(error));
        block.disabled = false;
      }
    };
    card.append(block);
  }
  return card;
}
