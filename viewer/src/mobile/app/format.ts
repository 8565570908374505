// How the phone pages show dates, times, sizes and durations (locale-aware through i18n).
import { locale, t } from '../../i18n';

/** ``20261120`` → ``2026-11-20`` (other text unchanged). */
export function dicomDate(value: string): string {
  return /^\d{8}$/.test(value) ? `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6)}` : value;
}

/** An ISO 8601 time in the phone's own time zone, to the minute. */
export function dateTime(iso: string): string {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return iso;
  return when.toLocaleString(locale() === 'en' ? 'en-GB' : 'zh-CN', {
    year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hour12: false,
  });
}

/** Bytes as people read them: 1 decimal above a kilobyte (KB, MB, GB with 1024 steps). */
export function bytes(size: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Seconds to wait as "N min" / "N s" (rounded up). */
export function waitText(seconds: number): string {
  return seconds >= 90 ? t('m.wait.minutes', { n: Math.ceil(seconds / 60) }) : t('m.wait.seconds', { n: Math.ceil(seconds) });
}

/** "CT" → "CT · 计算机断层" where the modality has a plain name. */
export function modalityName(code: string): string {
  const key = `m.modality.${code}`;
  const name = t(key);
  return name === key ? code : `${code} · ${name}`;
}
