// The study list (/viewer without a study): search by patient ID, name, accession, modality, body part,
// date range and hospital; selecting a study shows the patient's other exams (priors) beside it.

import { DICOMWEB, DicomJson, StudyQuery, TAG, personName, priorStudies, searchStudies, showDate, text, values } from '../api/dicomweb';
import { getJson, loadSession } from '../api/http';
import { clear, el } from '../dom';
import { onLocaleChange, t, translateTree } from '../i18n';
import { languageButton } from '../viewer/app';
import './messages';

// Rows per page; ?pageSize= changes it (small pages for tests and slow links).
const PAGE = Math.max(1, Math.min(200, Number(new URLSearchParams(location.search).get('pageSize')) || 50));
const FIELDS: Array<[keyof StudyQuery | 'dateFrom' | 'dateTo', string, string]> = [
  ['PatientID', 'list.patientId', 'text'], ['PatientName', 'list.patientName', 'text'],
  ['AccessionNumber', 'list.accession', 'text'], ['ModalitiesInStudy', 'list.modality', 'text'],
  ['BodyPartExamined', 'list.bodyPart', 'text'], ['InstitutionName', 'list.hospital', 'text'],
  ['dateFrom', 'list.dateFrom', 'date'], ['dateTo', 'list.dateTo', 'date'],
];

function dicomDate(value: string): string {
  return value.replace(/-/g, '');
}

export function viewerUrl(studyUid: string, compareWith?: string): string {
  const params = new URLSearchParams({ study: studyUid });
  if (compareWith) params.set('compare', compareWith);
  return `/viewer?${params}`;
}

const SERIES_LIMIT = 1000;

/** Body part is a series attribute the archive does not match at study level: find the studies through a
 *  series search (same filters), then search those studies by UID. null: no study has such a series. */
async function studiesWithBodyPart(query: StudyQuery): Promise<string | null> {
  const params = new URLSearchParams({ limit: String(SERIES_LIMIT), includefield: TAG.StudyInstanceUID });
  // ModalitiesInStudy is left to the study search that follows (the archive answers 500 to it on /series)
  for (const [key, value] of Object.entries(query)) if (value && key !== 'ModalitiesInStudy') params.set(key, String(value));
  const series = await getJson<DicomJson[]>(`${DICOMWEB}/series?${params}`, 'application/dicom+json');
  const uids = [...new Set(series.map((s) => text(s, TAG.StudyInstanceUID)).filter(Boolean))];
  return uids.length ? uids.join(',') : null;
}

export async function startWorklist(root: HTMLElement): Promise<void> {
  await loadSession();
  root.classList.add('yy-worklist');
  const form = el('form', { class: 'yy-search', role: 'search' });
  for (const [name, label, type] of FIELDS) {
    form.append(el('label', {}, el('span', { 'data-i18n': label }), el('input', { name, type, autocomplete: 'off' })));
  }
  form.append(el('button', { type: 'submit', 'data-i18n': 'list.search' }), el('button', { type: 'reset', 'data-i18n': 'list.reset' }));
  const results = el('table', { class: 'yy-results' });
  const more = el('button', { type: 'button', class: 'yy-more', hidden: true, 'data-i18n': 'list.more' });
  const priors = el('aside', { class: 'yy-priors' });
  const status = el('div', { class: 'yy-list-status', role: 'status' });
  root.append(
    el('header', { class: 'yy-header' }, el('h1', { 'data-i18n': 'list.title' }), el('span', { class: 'yy-spacer' }), languageButton()),
    form, el('div', { class: 'yy-list-body' }, el('div', { class: 'yy-list-main' }, status, results, more), priors),
  );
  translateTree(root);

  // The archive's QIDO has no matching key for InstitutionName (it returns the attribute but ignores it as a
  // filter): the hospital filter is applied here, to whole server pages, reading on until a page is full.
  let offset = 0;
  let query: StudyQuery = {};
  let hospital = '';

  function readQuery(): StudyQuery {
    const data = new FormData(form);
    const get = (name: string) => String(data.get(name) ?? '').trim();
    const next: StudyQuery = {};
    for (const [name] of FIELDS) {
      if (name === 'dateFrom' || name === 'dateTo') continue;
      const value = get(name);
      if (!value) continue;
      // one modality or body part is matched as the code (CT, not ct); several may be given as CT,MR
      (next as Record<string, string>)[name] = name === 'ModalitiesInStudy' || name === 'BodyPartExamined'
        ? value.toUpperCase().replace(/[\s\\]+/g, ',') : value;
    }
    const from = dicomDate(get('dateFrom'));
    const to = dicomDate(get('dateTo'));
    if (from || to) next.StudyDate = `${from}-${to}`;
    return next;
  }

  function header(): HTMLTableRowElement {
    return el('tr', {}, ...['list.patientName', 'list.patientId', 'list.date', 'list.modality', 'list.description',
      'list.accession', 'list.hospital', 'list.images', 'list.open'].map((key) => el('th', { 'data-i18n': key })));
  }

  function row(study: DicomJson): HTMLTableRowElement {
    const uid = text(study, TAG.StudyInstanceUID);
    const open = el('a', { href: viewerUrl(uid), class: 'yy-open', 'data-i18n': 'list.open' });
    const tr = el('tr', { 'data-study': uid, tabindex: 0 },
      el('td', {}, personName(study, TAG.PatientName)), el('td', {}, text(study, TAG.PatientID)),
      el('td', {}, showDate(text(study, TAG.StudyDate))), el('td', {}, values(study, TAG.ModalitiesInStudy).join('/')),
      el('td', {}, text(study, TAG.StudyDescription)), el('td', {}, text(study, TAG.AccessionNumber)),
      el('td', {}, text(study, TAG.InstitutionName)), el('td', {}, text(study, TAG.NumberOfStudyRelatedInstances)),
      el('td', {}, open));
    tr.addEventListener('click', (event) => {
      if ((event.target as HTMLElement).closest('a')) return;
      results.querySelectorAll('tr.yy-selected').forEach((r) => r.classList.remove('yy-selected'));
      tr.classList.add('yy-selected');
      void showPriors(study);
    });
    tr.addEventListener('dblclick', () => location.assign(viewerUrl(uid)));
    return tr;
  }

  async function showPriors(study: DicomJson): Promise<void> {
    clear(priors);
    const uid = text(study, TAG.StudyInstanceUID);
    priors.append(el('h2', { 'data-i18n': 'list.priors' }));
    // the server matches the patient across hospitals (same record, or the same verified ID card number)
    const others = (await priorStudies(uid)).filter((s) => text(s, TAG.StudyInstanceUID) !== uid);
    if (!others.length) priors.append(el('p', { 'data-i18n': 'list.noPriors' }));
    for (const other of others) {
      const otherUid = text(other, TAG.StudyInstanceUID);
      priors.append(el('div', { class: 'yy-prior', 'data-study': otherUid },
        el('span', {}, `${showDate(text(other, TAG.StudyDate))} ${values(other, TAG.ModalitiesInStudy).join('/')} ${text(other, TAG.StudyDescription)}`),
        el('span', { class: 'yy-hospital' }, text(other, TAG.InstitutionName)),
        el('a', { href: viewerUrl(otherUid), 'data-i18n': 'list.open' }),
        el('a', { href: viewerUrl(uid, otherUid), class: 'yy-compare', 'data-i18n': 'list.compare' })));
    }
    translateTree(priors);
  }

  // Searches may overlap (typing fast, clear then search): only the latest one shows its rows.
  let generation = 0;

  async function search(append: boolean): Promise<void> {
    const mine = ++generation;
    status.textContent = t('app.loading');
    root.dataset.listState = 'loading';
    try {
      const found: DicomJson[] = [];
      let exhausted = false;
      let at = offset;
      const wanted = { ...query };
      if (wanted.BodyPartExamined) {
        const uids = await studiesWithBodyPart(wanted);
        delete wanted.BodyPartExamined;
        if (uids === null) exhausted = true;
        else wanted.StudyInstanceUID = uids;
      }
      while (found.length < PAGE && !exhausted) {
        const page = await searchStudies({ ...wanted, limit: PAGE, offset: at });
        at += page.length;
        exhausted = page.length < PAGE;
        found.push(...page.filter((study) => !hospital || text(study, TAG.InstitutionName).toLowerCase().includes(hospital)));
        if (!hospital) break;
      }
      if (mine !== generation) return;
      offset = at;
      if (!append) {
        clear(results);
        results.append(header());
      }
      found.forEach((study) => results.append(row(study)));
      translateTree(results);
      more.hidden = exhausted || found.length < PAGE;
      status.textContent = !append && !found.length ? t('list.none') : '';
      root.dataset.listState = 'done';
    } catch (error) {
      if (mine !== generation) return;
      status.textContent = t('list.failed', { detail: (error as Error).message });
      root.dataset.listState = 'failed';
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    query = readQuery();
    hospital = (query.InstitutionName ?? '').toLowerCase();
    delete query.InstitutionName;
    offset = 0;
    void search(false);
  });
  form.addEventListener('reset', () => setTimeout(() => form.requestSubmit(), 0));
  more.addEventListener('click', () => {
    void search(true);
  });
  onLocaleChange(() => translateTree(root));
  await search(false);
  document.body.dataset.listReady = 'true';
}
