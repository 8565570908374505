// Cornerstone annotation state ⇄ the server's annotation document. Generic: every tool's annotations on
// this study's images are saved (measurements of other features too), with the drawn points in image and
// patient coordinates, the text, the computed values, and Cornerstone's own object to redraw them.

import { utilities as coreUtilities, type Types } from '@cornerstonejs/core';
import { annotation as csAnnotation, type Types as ToolTypes } from '@cornerstonejs/tools';
import type { Study } from '../study';
import type { AnnotationItem, KeyImage, Measurement } from './api';

type Loose = Record<string, unknown>;

const IMAGE_ID = /\/studies\/([^/]+)\/series\/([^/]+)\/instances\/([^/]+)\/frames\/(\d+)$/;

export interface ImageRef { studyUid: string; seriesUid: string; sopInstanceUid: string; frame: number }

export function parseImageId(imageId: string | undefined | null): ImageRef | null {
  const found = imageId ? IMAGE_ID.exec(imageId) : null;
  return found ? { studyUid: found[1], seriesUid: found[2], sopInstanceUid: found[3], frame: Number(found[4]) } : null;
}

/** Frame numbers only for multi-frame instances (DICOM references single-frame images without one). */
export function frameOf(study: Study, ref: ImageRef): number | null {
  for (const series of study.series) {
    const instance = series.instances.find((i) => i.sopInstanceUid === ref.sopInstanceUid);
    if (instance) return instance.frames > 1 ? ref.frame : null;
  }
  return null;
}

/** The image id of a reference, and where it is in its series. */
export function locate(study: Study, sopInstanceUid: string, frame: number | null):
  { imageId: string; seriesIndex: number; imageIndex: number } | null {
  for (const [seriesIndex, series] of study.series.entries()) {
    const imageIndex = series.imageIds.findIndex((id) => {
      const ref = parseImageId(id);
      return ref?.sopInstanceUid === sopInstanceUid && ref.frame === (frame ?? 1);
    });
    if (imageIndex >= 0) return { imageId: series.imageIds[imageIndex], seriesIndex, imageIndex };
  }
  return null;
}

// Cornerstone's cached statistics → measurement names the server maps to SR concepts.
const STATS: Array<[string, string, (stats: Loose) => string]> = [
  ['length', 'length', (s) => String(s.unit ?? 'mm')],
  ['area', 'area', (s) => String(s.areaUnit ?? 'mm2')],
  ['angle', 'angle', () => 'deg'],
  ['mean', 'mean', (s) => String(s.modalityUnit ?? '')],
  ['stdDev', 'stddev', (s) => String(s.modalityUnit ?? '')],
  ['max', 'max', (s) => String(s.modalityUnit ?? '')],
  ['min', 'min', (s) => String(s.modalityUnit ?? '')],
  ['perimeter', 'perimeter', (s) => String(s.unit ?? 'mm')],
];

function measurements(data: Loose): Measurement[] {
  const cached = (data.cachedStats ?? {}) as Record<string, Loose>;
  const stats = Object.values(cached)[0];
  if (!stats || typeof stats !== 'object') return [];
  const found: Measurement[] = [];
  for (const [key, name, unit] of STATS) {
    const value = stats[key];
    if (typeof value === 'number' && Number.isFinite(value)) found.push({ name, value, unit: unit(stats).slice(0, 16) });
  }
  return found;
}

function worldPoints(data: Loose): Types.Point3[] {
  const contour = data.contour as { polyline?: Types.Point3[] } | undefined;
  if (contour?.polyline?.length) return contour.polyline;
  const handles = data.handles as { points?: Types.Point3[] } | undefined;
  return handles?.points ?? [];
}

/** A JSON copy of Cornerstone's object, without what is recomputed on load (statistics, selection state). */
function stateOf(annotation: ToolTypes.Annotation): Record<string, unknown> {
  const copy = JSON.parse(JSON.stringify(annotation)) as Loose;
  const data = (copy.data ?? {}) as Loose;
  delete data.cachedStats;
  delete copy.isSelected;
  copy.highlighted = false;
  return copy;
}

const finite = (point: number[]) => point.every((v) => Number.isFinite(v));

export function toItem(study: Study, annotation: ToolTypes.Annotation): AnnotationItem | null {
  const imageId = annotation.metadata?.referencedImageId;
  const ref = parseImageId(imageId);
  if (!ref || ref.studyUid !== study.uid || !annotation.annotationUID) return null;
  const data = (annotation.data ?? {}) as Loose;
  const world = worldPoints(data).filter((p) => p && finite(Array.from(p)));
  const image = world.map((p) => Array.from(coreUtilities.worldToImageCoords(imageId!, p) ?? [])).filter((p) => p.length >= 2 && finite(p));
  const text = (data.label ?? data.text) as unknown;
  return {
    uid: annotation.annotationUID.slice(0, 64),
    tool: String(annotation.metadata?.toolName ?? "?").slice(0, 64),
    sop_instance_uid: ref.sopInstanceUid,
    frame: frameOf(study, ref),
    points: image.map((p) => p.slice(0, 2)),
    world_points: world.map((p) => Array.from(p)),
    text: typeof text === 'string' && text ? text.slice(0, 1024) : null,
    measurements: measurements(data).slice(0, 32),
    state: stateOf(annotation),
  };
}

/** Every annotation of this study's images now in Cornerstone's state. */
export function collect(study: Study): AnnotationItem[] {
  const all = csAnnotation.state.getAllAnnotations();
  return all.map((a) => toItem(study, a)).filter((item): item is AnnotationItem => item !== null);
}

/** Put saved annotations back into Cornerstone's state (they are drawn on their images when shown). */
export function restore(items: AnnotationItem[], element: HTMLDivElement): number {
  let restored = 0;
  for (const item of items) {
    if (!item.state || csAnnotation.state.getAnnotation(item.uid)) continue;
    const saved = item.state as unknown as ToolTypes.Annotation;
    saved.invalidated = true; // statistics are recomputed on the next render
    const forUid = saved.metadata?.FrameOfReferenceUID;
    csAnnotation.state.addAnnotation(saved, forUid || element);
    restored++;
  }
  return restored;
}

export function keyImageOf(study: Study, imageId: string | undefined): KeyImage | null {
  const ref = parseImageId(imageId);
  if (!ref || ref.studyUid !== study.uid) return null;
  return { sop_instance_uid: ref.sopInstanceUid, frame: frameOf(study, ref) };
}

export const sameKey = (a: KeyImage, b: KeyImage) => a.sop_instance_uid === b.sop_instance_uid && (a.frame ?? 1) === (b.frame ?? 1);
