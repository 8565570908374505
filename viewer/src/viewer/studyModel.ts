// A study as a viewer sees it, without any rendering library: series with their instances (from WADO-RS
// metadata) in display order. study.ts adds the Cornerstone image ids; the phone viewer's server-rendered
// fallback (src/mobile/viewer/fallback.ts) uses this alone, so it loads no WebGL code.

import { DicomJson, TAG, numbers, text } from '../api/dicomweb';

export interface Instance {
  sopInstanceUid: string;
  sopClassUid: string;
  instanceNumber: number;
  frames: number;
  metadata: DicomJson;
  position: number[] | null;
  orientation: number[] | null;
}

export interface Series {
  uid: string;
  number: number;
  modality: string;
  description: string;
  instances: Instance[];
  imageIds: string[];
  /** Not displayable as images (SR, PR, KO, waveforms …): listed, not opened in a viewport. */
  nonImage: boolean;
}

export interface Study {
  uid: string;
  first: DicomJson;
  series: Series[];
}

const NON_IMAGE_MODALITIES = new Set(['SR', 'PR', 'KO', 'ECG', 'REG', 'RTSTRUCT', 'RTPLAN', 'DOC', 'SEG']);

function cross(a: number[], b: number[]): number[] {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

/** Instances ordered along the slice normal when they share one orientation, else by instance number. */
export function sortInstances(instances: Instance[]): Instance[] {
  const byNumber = [...instances].sort((a, b) => a.instanceNumber - b.instanceNumber);
  const first = byNumber[0];
  if (!first?.orientation || first.orientation.length !== 6) return byNumber;
  const same = byNumber.every((i) => i.position && i.orientation &&
    i.orientation.every((v, k) => Math.abs(v - first.orientation![k]) < 1e-3));
  if (!same) return byNumber;
  const normal = cross(first.orientation.slice(0, 3), first.orientation.slice(3, 6));
  const along = (i: Instance) => i.position!.reduce((sum, v, k) => sum + v * normal[k], 0);
  // Geometric order, in the direction the scanner numbered the images (head→feet stays head→feet).
  const ascending = along(byNumber[0]) <= along(byNumber[byNumber.length - 1]);
  return byNumber.sort((a, b) => (ascending ? along(a) - along(b) : along(b) - along(a)));
}

/** Group WADO-RS metadata into series (image series first, by series number); ``imageIdsOf`` names the frames. */
export function buildStudy(studyUid: string, items: DicomJson[],
  imageIdsOf: (seriesUid: string, instance: Instance) => string[]): Study {
  const bySeries = new Map<string, DicomJson[]>();
  for (const item of items) {
    const uid = text(item, TAG.SeriesInstanceUID);
    bySeries.set(uid, [...(bySeries.get(uid) ?? []), item]);
  }
  const series: Series[] = [];
  for (const [uid, members] of bySeries) {
    const modality = text(members[0], TAG.Modality);
    const instances = sortInstances(members.map((m) => ({
      sopInstanceUid: text(m, TAG.SOPInstanceUID),
      sopClassUid: text(m, TAG.SOPClassUID),
      instanceNumber: Number(text(m, TAG.InstanceNumber) || 0),
      frames: Math.max(1, Number(text(m, TAG.NumberOfFrames) || 1)),
      metadata: m,
      position: numbers(m, TAG.ImagePositionPatient).length === 3 ? numbers(m, TAG.ImagePositionPatient) : null,
      orientation: numbers(m, TAG.ImageOrientationPatient).length === 6 ? numbers(m, TAG.ImageOrientationPatient) : null,
    })));
    const hasPixels = members.some((m) => m['7FE00010'] !== undefined || m[TAG.Rows] !== undefined);
    const nonImage = NON_IMAGE_MODALITIES.has(modality) || !hasPixels;
    const imageIds = nonImage ? [] : instances.flatMap((instance) => imageIdsOf(uid, instance));
    series.push({
      uid, modality, nonImage, instances, imageIds,
      number: Number(text(members[0], TAG.SeriesNumber) || 0),
      description: text(members[0], TAG.SeriesDescription),
    });
  }
  series.sort((a, b) => Number(a.nonImage) - Number(b.nonImage) || a.number - b.number);
  return { uid: studyUid, first: items[0], series };
}
