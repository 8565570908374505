// The phone viewer's frame, shared by the Cornerstone view and the server-rendered fallback: a top bar (back,
// patient and date, language), a progress bar, the stage with the watermark band, a bottom toolbar of large
// buttons (≥ 48 px) and bottom sheets (series, window presets, more tools). Text comes from the i18n layer.

import { clear, el } from '../../dom';
import { locale, onLocaleChange, setLocale, t, translateTree } from '../../i18n';
import './messages';
import './mobile.css';

export interface Sheet {
  body: HTMLElement;
  open(): void;
  close(): void;
  toggle(): void;
  isOpen(): boolean;
}

export interface Chrome {
  root: HTMLElement;
  stage: HTMLElement;
  setTitle(parts: string[]): void;
  /** fraction 0…1, or null for "busy, amount unknown"; hide() when done. */
  progress(fraction: number | null, key: string, params?: Record<string, string | number>): void;
  hideProgress(): void;
  button(id: string, labelKey: string, icon: string, onClick: () => void | Promise<void>): HTMLButtonElement;
  sheet(id: string, titleKey: string): Sheet;
  notify(key: string, params?: Record<string, string | number>, level?: 'info' | 'warning' | 'error'): void;
  /** ``who`` a user name (the page adds the time), or with ``whole`` the session's own text (it names who and when). */
  setWatermark(who: string, whole?: boolean): void;
}

export function buildChrome(root: HTMLElement): Chrome {
  root.classList.add('m-viewer');
  const title = el('div', { class: 'm-title', 'data-field': 'title' });
  const back = el('button', { type: 'button', class: 'm-icon', 'data-action': 'back', 'data-i18n-title': 'm.back' }, '‹');
  back.addEventListener('click', () => (history.length > 1 ? history.back() : location.assign('/')));
  const language = el('button', { type: 'button', class: 'm-icon m-lang', 'data-action': 'language', 'data-i18n': 'm.language' });
  language.addEventListener('click', () => setLocale(locale() === 'en' ? 'zh-CN' : 'en'));
  const bar = el('div', { class: 'm-progress-bar' });
  const progressText = el('span', { class: 'm-progress-text' });
  const progress = el('div', { class: 'm-progress', role: 'progressbar', 'aria-valuemin': '0', 'aria-valuemax': '100' }, bar, progressText);
  const watermark = el('div', { class: 'm-watermark', 'data-field': 'watermark', 'aria-hidden': 'true' });
  const stage = el('main', { class: 'm-stage' }, watermark);
  const toolbar = el('nav', { class: 'm-toolbar', role: 'toolbar' });
  const messages = el('div', { class: 'm-messages', role: 'status', 'aria-live': 'polite' });
  const scrim = el('div', { class: 'm-scrim', hidden: true });
  root.append(el('header', { class: 'm-top' }, back, title, language), progress, stage, toolbar, scrim, messages);

  const sheets: Sheet[] = [];
  let watermarkWho = '';
  let watermarkWhole = false;
  const renderWatermark = () => {
    if (!watermarkWho) return;
    if (watermarkWhole) return void (watermark.textContent = t('m.watermark.session', { text: watermarkWho }));
    const now = new Date();
    const time = `${now.getFullYear()}-${String(now.getMonth() + 1).padStart(2, '0')}-${String(now.getDate()).padStart(2, '0')} ` +
      `${String(now.getHours()).padStart(2, '0')}:${String(now.getMinutes()).padStart(2, '0')}`;
    watermark.textContent = t('m.watermark', { who: watermarkWho, time });
  };
  let progressKey: [string, Record<string, string | number>] | null = null;

  const chrome: Chrome = {
    root, stage,
    setTitle(parts) {
      title.textContent = parts.filter(Boolean).join(' · ');
    },
    progress(fraction, key, params = {}) {
      progress.hidden = false;
      progress.classList.toggle('m-busy', fraction === null);
      bar.style.width = fraction === null ? '' : `${Math.round(100 * Math.max(0, Math.min(1, fraction)))}%`;
      progress.setAttribute('aria-valuenow', fraction === null ? '' : String(Math.round(100 * fraction)));
      progressKey = [key, params];
      progressText.textContent = t(key, params);
    },
    hideProgress() {
      progress.hidden = true;
      progressKey = null;
    },
    button(id, labelKey, icon, onClick) {
      const button = el('button', { type: 'button', class: 'm-tool', 'data-action': id },
        el('span', { class: 'm-tool-icon', 'aria-hidden': 'true' }, icon), el('span', { class: 'm-tool-label', 'data-i18n': labelKey }));
      button.addEventListener('click', () => {
        void Promise.resolve(onClick()).catch((error) => chrome.notify('m.loadFailed', { detail: String((error as Error)?.message ?? error) }, 'error'));
      });
      toolbar.append(button);
      translateTree(button);
      return button;
    },
    sheet(id, titleKey) {
      const body = el('div', { class: 'm-sheet-body' });
      const close = el('button', { type: 'button', class: 'm-icon', 'data-action': `${id}-close`, 'data-i18n-title': 'm.close' }, '✕');
      const box = el('section', { class: 'm-sheet', 'data-sheet': id, hidden: true, role: 'dialog' },
        el('div', { class: 'm-sheet-head' }, el('h2', { 'data-i18n': titleKey }), close), body);
      root.append(box);
      translateTree(box);
      const sheet: Sheet = {
        body,
        open() {
          sheets.forEach((other) => other !== sheet && other.close());
          box.hidden = false;
          scrim.hidden = false;
        },
        close() {
          box.hidden = true;
          if (sheets.every((s) => !s.isOpen())) scrim.hidden = true;
        },
        toggle() {
          if (box.hidden) sheet.open();
          else sheet.close();
        },
        isOpen: () => !box.hidden,
      };
      close.addEventListener('click', () => sheet.close());
      sheets.push(sheet);
      return sheet;
    },
    notify(key, params = {}, level = 'info') {
      const item = el('div', { class: `m-message m-${level}`, 'data-key': key }, t(key, params));
      item.addEventListener('click', () => item.remove());
      messages.append(item);
      if (level !== 'error') setTimeout(() => item.remove(), level === 'info' ? 5000 : 10_000);
    },
    setWatermark(who, whole = false) {
      watermarkWho = who;
      watermarkWhole = whole;
      renderWatermark();
    },
  };
  scrim.addEventListener('click', () => sheets.forEach((s) => s.close()));
  // every minute: the time on the band stays the time of viewing
  setInterval(renderWatermark, 60_000);
  // what the chrome filled in itself follows a language switch (data-i18n elements are translated by i18n)
  onLocaleChange(() => {
    renderWatermark();
    if (progressKey) progressText.textContent = t(progressKey[0], progressKey[1]);
  });
  translateTree(root);
  return chrome;
}

export { clear };
