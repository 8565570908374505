// The i18n layer: every UI string comes from a message catalogue, Simplified Chinese by default,
// English switchable (?lang=en, or the choice kept in localStorage). Feature modules register their
// own catalogues (registerMessages) so no file holds every string and no string is hard-coded.

export type Locale = 'zh-CN' | 'en';
export type Catalogue = Record<string, string>;

const LOCALES: Locale[] = ['zh-CN', 'en'];
const STORAGE_KEY = 'yunying.locale';
const catalogues: Record<Locale, Catalogue> = { 'zh-CN': {}, en: {} };
const listeners: Array<() => void> = [];
let current: Locale = pickInitialLocale();

function pickInitialLocale(): Locale {
  const fromUrl = new URLSearchParams(location.search).get('lang');
  if (fromUrl === 'en' || fromUrl === 'zh-CN' || fromUrl === 'zh') return fromUrl === 'zh' ? 'zh-CN' : fromUrl;
  const stored = localStorage.getItem(STORAGE_KEY);
  return stored === 'en' ? 'en' : 'zh-CN';
}

/** Add a feature's strings; keys must be unique across features (checked: a duplicate throws). */
export function registerMessages(messages: { 'zh-CN': Catalogue; en: Catalogue }): void {
  for (const locale of LOCALES) {
    for (const [key, text] of Object.entries(messages[locale])) {
      if (key in catalogues[locale]) throw new Error(`duplicate i18n key ${key}`);
      catalogues[locale][key] = text;
    }
  }
}

/** The text of ``key`` in the current locale, with {name} placeholders filled from ``params``. */
export function t(key: string, params: Record<string, string | number> = {}): string {
  const text = catalogues[current][key] ?? catalogues['zh-CN'][key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_m, name: string) => (name in params ? String(params[name]) : `{${name}}`));
}

export function locale(): Locale {
  return current;
}

export function setLocale(next: Locale): void {
  if (next === current) return;
  current = next;
  localStorage.setItem(STORAGE_KEY, next);
  document.documentElement.lang = next;
  translateTree(document.body);
  listeners.forEach((listener) => listener());
}

export function onLocaleChange(listener: () => void): void {
  listeners.push(listener);
}

/** Elements built with data-i18n / data-i18n-title / data-i18n-placeholder get their text from the catalogue. */
export function translateTree(root: ParentNode): void {
  root.querySelectorAll<HTMLElement>('[data-i18n]').forEach((el) => { el.textContent = t(el.dataset.i18n!); });
  root.querySelectorAll<HTMLElement>('[data-i18n-title]').forEach((el) => { el.title = t(el.dataset.i18nTitle!); });
  root.querySelectorAll<HTMLInputElement>('[data-i18n-placeholder]').forEach((el) => {
    el.placeholder = t(el.dataset.i18nPlaceholder!);
  });
}

/** Keys missing in one locale (a test asserts none). */
export function missingKeys(): string[] {
  const zh = Object.keys(catalogues['zh-CN']);
  const en = Object.keys(catalogues.en);
  return [...zh.filter((k) => !(k in catalogues.en)), ...en.filter((k) => !(k in catalogues['zh-CN']))];
}

document.documentElement.lang = current;
