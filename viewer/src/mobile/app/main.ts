// Entry of the phone pages (mobile.html, served at /m/… and /s/{token} by yunying.web.mobile): messages, text
// size, then the router over the pages. The touch image viewer (/m/viewer) is a page of its own.
import '../styles/mobile.css';
import { onLocaleChange } from '../../i18n';
import { registerMobileMessages } from './messages';
import { render, Route, startRouter } from './router';
import { applyTextSize } from './shell';
import { accessPage } from '../pages/access';
import { examPage } from '../pages/exam';
import { examsPage } from '../pages/exams';
import { shareEntryPage } from '../pages/shareEntry';
import { sharesPage } from '../pages/shares';
import { verifyPage } from '../pages/verify';

const ROUTES: Route[] = [
  { pattern: /^\/m\/open\/(?<token>[^/]+)\/?$/, render: (root, p) => verifyPage(root, { token: p.token }) },
  { pattern: /^\/s\/(?<token>[^/]+)\/?$/, render: (root, p) => shareEntryPage(root, { token: p.token }) },
  { pattern: /^\/m\/exams\/?$/, render: (root) => examsPage(root) },
  { pattern: /^\/m\/exams\/(?<study>[^/]+)\/?$/, render: (root, p) => examPage(root, { study: p.study }) },
  { pattern: /^\/m\/shares\/?$/, render: (root) => sharesPage(root) },
  { pattern: /^\/m\/access\/?$/, render: (root) => accessPage(root) },
];

registerMobileMessages();
applyTextSize();
const root = document.getElementById('app')!;
onLocaleChange(() => void render());
startRouter(root, ROUTES, '/m/exams');
window.addEventListener('unhandledrejection', (event) => {
  root.append(Object.assign(document.createElement('pre'), { className: 'm-fatal', textContent: String(event.reason?.stack || event.reason) }));
});
