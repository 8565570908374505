// A small modal asking for an annotation's text (Cornerstone's default is window.prompt, which blocks the page).
import { el } from '../../dom';
import { t } from '../../i18n';

/** Resolves with the entered text, or null when cancelled. */
export function askText(initial = ''): Promise<string | null> {
  return new Promise((resolve) => {
    const input = el('input', { type: 'text', class: 'yy-annot-input', name: 'annotation-text', maxlength: 1024 });
    input.value = initial;
    const ok = el('button', { type: 'submit', class: 'yy-button', 'data-action': 'annot-dialog-ok' }, t('annot.dialog.ok'));
    const cancel = el('button', { type: 'button', class: 'yy-button', 'data-action': 'annot-dialog-cancel' }, t('annot.dialog.cancel'));
    const form = el('form', { class: 'yy-annot-dialog', role: 'dialog', 'aria-modal': 'true', 'aria-label': t('annot.dialog.title') },
      el('label', {}, t('annot.dialog.title'), input), el('div', { class: 'yy-annot-dialog-buttons' }, ok, cancel));
    const backdrop = el('div', { class: 'yy-annot-backdrop' }, form);
    const finish = (value: string | null) => {
      backdrop.remove();
      resolve(value && value.trim() ? value.trim() : null);
    };
    form.addEventListener('submit', (event) => { event.preventDefault(); finish(input.value); });
    cancel.addEventListener('click', () => finish(null));
    form.addEventListener('keydown', (event) => {
      event.stopPropagation(); // typing must not trigger the toolbar's shortcuts
      if (event.key === 'Escape') finish(null);
    });
    document.body.append(backdrop);
    input.focus();
  });
}
