// Can a series form a regular volume? Checked on the metadata before anything is loaded, so that a
// radiograph, a two-slice scout or a stack of mixed orientations gets a clear message instead of a
// broken 3D view. Returns null when fine, else the i18n key of the reason (and its parameters).

import { TAG, numbers } from '../../api/dicomweb';
import type { Series } from '../study';

export interface VolumeProblem {
  reason: string;
  params?: Record<string, string | number>;
}

const MIN_SLICES = 3;
/** Relative deviation of one gap from the median gap that still counts as a regular volume. */
const SPACING_TOLERANCE = 0.2;

function cross(a: number[], b: number[]): number[] {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

export function volumeProblem(series: Series): VolumeProblem | null {
  if (series.nonImage || !series.imageIds.length) return { reason: 'mpr.reason.nonImage' };
  if (series.instances.some((i) => i.frames > 1)) return { reason: 'mpr.reason.multiframe' };
  const count = series.instances.length;
  if (count < MIN_SLICES) return { reason: 'mpr.reason.tooFew', params: { count } };
  const first = series.instances[0];
  if (series.instances.some((i) => !i.position || !i.orientation)) return { reason: 'mpr.reason.noGeometry' };
  const orientation = first.orientation!;
  if (series.instances.some((i) => i.orientation!.some((v, k) => Math.abs(v - orientation[k]) > 1e-3))) {
    return { reason: 'mpr.reason.orientation' };
  }
  const size = (i: (typeof series.instances)[number]) => `${numbers(i.metadata, TAG.Rows)[0]}x${numbers(i.metadata, TAG.Columns)[0]}`;
  if (series.instances.some((i) => size(i) !== size(first))) return { reason: 'mpr.reason.size' };
  // instances are already sorted along the normal (study.ts); gaps must be positive and even
  const normal = cross(orientation.slice(0, 3), orientation.slice(3, 6));
  const along = series.instances.map((i) => i.position!.reduce((sum, v, k) => sum + v * normal[k], 0));
  const gaps = along.slice(1).map((v, k) => Math.abs(v - along[k]));
  const median = [...gaps].sort((a, b) => a - b)[Math.floor(gaps.length / 2)];
  if (!(median > 1e-3) || gaps.some((g) => Math.abs(g - median) > SPACING_TOLERANCE * median)) {
    return { reason: 'mpr.reason.spacing' };
  }
  return null;
}
