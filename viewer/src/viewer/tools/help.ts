// Keyboard shortcut help: a '?' button opening a list built from the toolbar itself (every button that
// carries a shortcut, in its current language), so the list never drifts from the real bindings.

import { clear, el } from '../../dom';
import { t, translateTree } from '../../i18n';
import type { Feature } from '../context';
import './messages';

function keyName(key: string): string {
  return key === ' ' ? t('help.key.space') : key.length === 1 ? key.toUpperCase() : key;
}

function fillHelp(list: HTMLElement): void {
  clear(list);
  const rows: Array<[string, string]> = [];
  document.querySelectorAll<HTMLButtonElement>('.yy-toolbar button[data-shortcut]').forEach((button) => {
    rows.push([keyName(button.dataset.shortcut!), button.textContent ?? '']);
  });
  rows.push(['1–9', t('help.presets')]);
  for (const [key, label] of rows) {
    list.append(el('tr', { 'data-shortcut-row': key }, el('td', {}, el('kbd', {}, key)), el('td', {}, label)));
  }
}

export const shortcutHelpFeature: Feature = {
  id: 'shortcut-help',
  install(ctx) {
    const list = el('tbody');
    const dialog = el('dialog', { class: 'yy-dialog yy-help', 'aria-labelledby': 'yy-help-title' },
      el('h2', { id: 'yy-help-title', 'data-i18n': 'help.title' }),
      el('table', { class: 'yy-help-table' }, list),
      el('form', { method: 'dialog' }, el('button', { type: 'submit', 'data-i18n': 'help.close' })));
    document.body.append(dialog);
    translateTree(dialog);
    const open = () => {
      if (dialog.open) { dialog.close(); return; }
      fillHelp(list);
      translateTree(dialog);
      dialog.showModal();
    };
    ctx.addButton({ id: 'help-shortcuts', label: 'help.button', title: 'help.title', group: 'group.help', shortcut: '?', onClick: open });
  },
};
