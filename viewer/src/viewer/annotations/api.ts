// The annotations API of the server (yunying/api/routes/annotations.py): the signed-in user's own document.
import { getBlob, getJson, sendJson } from '../../api/http';

export interface Measurement { name: string; value: number; unit: string }

export interface AnnotationItem {
  uid: string;
  tool: string;
  sop_instance_uid: string | null;
  frame: number | null;
  /** image coordinates (column, row) */
  points: number[][];
  /** patient coordinates (mm) */
  world_points: number[][];
  text: string | null;
  measurements: Measurement[];
  /** Cornerstone's own annotation object (to redraw it on reload) */
  state: Record<string, unknown> | null;
}

export interface KeyImage { sop_instance_uid: string; frame: number | null }

export interface AnnotationDocument {
  study_uid?: string;
  version: number;
  annotations: AnnotationItem[];
  key_images: KeyImage[];
}

export const annotationsUrl = (studyUid: string) => `/api/studies/${encodeURIComponent(studyUid)}/annotations`;
export const srUrl = (studyUid: string) => `${annotationsUrl(studyUid)}/sr`;

export const fetchAnnotations = (studyUid: string) => getJson<AnnotationDocument>(annotationsUrl(studyUid));
export const saveAnnotations = (studyUid: string, doc: AnnotationDocument) =>
  sendJson<AnnotationDocument>('PUT', annotationsUrl(studyUid), doc);
export const fetchSr = (studyUid: string) => getBlob(srUrl(studyUid));
