// Window presets per modality as data (no rendering library: the phone viewer's server-rendered fallback uses
// them too). CT: lung, mediastinum, bone, brain, abdomen, soft tissue, liver; 1 is always the image's own window.

import { t } from '../../i18n';
import './messages';

export interface WindowPreset {
  key: string;
  /** null: the window stored in the image (or computed by Cornerstone when there is none) */
  width: number | null;
  center: number | null;
}

const DEFAULT: WindowPreset = { key: 'default', width: null, center: null };

export const PRESETS: Record<string, WindowPreset[]> = {
  CT: [
    DEFAULT,
    { key: 'lung', width: 1500, center: -600 },
    { key: 'mediastinum', width: 350, center: 50 },
    { key: 'bone', width: 2000, center: 500 },
    { key: 'brain', width: 80, center: 40 },
    { key: 'abdomen', width: 400, center: 50 },
    { key: 'softTissue', width: 400, center: 40 },
    { key: 'liver', width: 150, center: 30 },
  ],
};

export function presetsFor(modality: string | undefined): WindowPreset[] {
  return PRESETS[modality ?? ''] ?? [DEFAULT];
}

export function presetLabel(preset: WindowPreset, index: number): string {
  const name = t(`preset.${preset.key}`);
  const values = preset.width === null ? '' : ` (${preset.width}/${preset.center})`;
  return `${index + 1} ${name}${values}`;
}
