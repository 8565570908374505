// Entry: /viewer → study list; /viewer?study=<StudyInstanceUID> → the viewer.
import './styles/viewer.css';
import { startViewer } from './viewer/app';
import { startWorklist } from './worklist/worklist';

const root = document.getElementById('app')!;
const params = new URLSearchParams(location.search);
const studyUid = params.get('study');
const wantsViewer = params.has('study');
const image = Number(params.get('image') || '') || null;
(wantsViewer ? startViewer(root, studyUid, { series: params.get('series'), image }) : startWorklist(root)).catch((error) => {
  root.append(Object.assign(document.createElement('pre'), { className: 'yy-fatal', textContent: String(error?.stack || error) }));
});
