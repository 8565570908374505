// DICOMweb reads through the server's QIDO-RS / WADO-RS, in DICOM JSON (PS3.18 F.2).

import { getJson } from './http';

export const DICOMWEB = '/dicom-web';

export type DicomJson = Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string; InlineBinary?: string }>;

export const TAG = {
  PatientName: '00100010', PatientID: '00100020', PatientBirthDate: '00100030', PatientSex: '00100040',
  PatientAge: '00101010', StudyInstanceUID: '0020000D', StudyDate: '00080020', StudyTime: '00080030',
  AccessionNumber: '00080050', StudyDescription: '00081030', ModalitiesInStudy: '00080061',
  InstitutionName: '00080080', BodyPartExamined: '00180015', NumberOfStudyRelatedInstances: '00201208',
  NumberOfStudyRelatedSeries: '00201206', SeriesInstanceUID: '0020000E', SeriesNumber: '00200011',
  SeriesDescription: '0008103E', Modality: '00080060', NumberOfSeriesRelatedInstances: '00201209',
  SOPInstanceUID: '00080018', SOPClassUID: '00080016', InstanceNumber: '00200013', NumberOfFrames: '00280008',
  ImagePositionPatient: '00200032', ImageOrientationPatient: '00200037', SliceThickness: '00180050',
  SliceLocation: '00201041', PixelSpacing: '00280030', ImagerPixelSpacing: '00181164', Rows: '00280010',
  Columns: '00280011', TransferSyntaxUID: '00020010', WindowCenter: '00281050', WindowWidth: '00281051',
  RescaleSlope: '00281053', RescaleIntercept: '00281052', PhotometricInterpretation: '00280004',
  BitsAllocated: '00280100', SeriesDate: '00080021', SeriesTime: '00080031', ReferringPhysicianName: '00080090',
} as const;

/** First value of a tag as text ('' when absent); PN values give their alphabetic (or ideographic) form. */
export function text(item: DicomJson, tag: string): string {
  const value = item[tag]?.Value?.[0];
  if (value === undefined || value === null) return '';
  if (typeof value === 'object') {
    const pn = value as { Alphabetic?: string; Ideographic?: string; Phonetic?: string };
    return (pn.Alphabetic || pn.Ideographic || pn.Phonetic || '').replace(/\^/g, ' ').trim();
  }
  return String(value);
}

/** A DICOM date (YYYYMMDD) as YYYY-MM-DD; other text unchanged. */
export function showDate(value: string): string {
  return /^\d{8}$/.test(value) ? `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6)}` : value;
}

/** Ideographic (e.g. Chinese characters) and alphabetic forms of a PN, joined for display. */
export function personName(item: DicomJson, tag: string): string {
  const value = item[tag]?.Value?.[0] as { Alphabetic?: string; Ideographic?: string } | undefined;
  if (!value || typeof value !== 'object') return text(item, tag);
  const parts = [value.Ideographic, value.Alphabetic].filter(Boolean).map((p) => p!.replace(/\^/g, ' ').trim());
  return [...new Set(parts)].join(' / ');
}

export function numbers(item: DicomJson, tag: string): number[] {
  return (item[tag]?.Value ?? []).map((v) => Number(v)).filter((v) => !Number.isNaN(v));
}

export function values(item: DicomJson, tag: string): string[] {
  return (item[tag]?.Value ?? []).map((v) => String(v));
}

export interface StudyQuery {
  PatientID?: string; PatientName?: string; AccessionNumber?: string; ModalitiesInStudy?: string;
  StudyDate?: string; BodyPartExamined?: string; InstitutionName?: string; StudyInstanceUID?: string;
  limit?: number; offset?: number;
}

export function searchStudies(query: StudyQuery): Promise<DicomJson[]> {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== '') params.set(key, String(value));
  }
  if (query.PatientName && !query.PatientName.includes('*')) params.set('fuzzymatching', 'true');
  for (const field of ['00081030', '00080061', '00080080', '00201206', '00201208', '00100030', '00100040']) {
    params.append('includefield', field);
  }
  return getJson<DicomJson[]>(`${DICOMWEB}/studies?${params}`, 'application/dicom+json');
}

/** The patient's other studies the user may see, from every hospital (matched by verified identity), newest first. */
export function priorStudies(studyUid: string): Promise<DicomJson[]> {
  return getJson<DicomJson[]>(`/api/studies/${studyUid}/priors`, 'application/dicom+json');
}

export function studySeries(studyUid: string): Promise<DicomJson[]> {
  return getJson<DicomJson[]>(`${DICOMWEB}/studies/${studyUid}/series`, 'application/dicom+json');
}

export function studyMetadata(studyUid: string): Promise<DicomJson[]> {
  return getJson<DicomJson[]>(`${DICOMWEB}/studies/${studyUid}/metadata`, 'application/dicom+json');
}

export function seriesMetadata(studyUid: string, seriesUid: string): Promise<DicomJson[]> {
  return getJson<DicomJson[]>(`${DICOMWEB}/studies/${studyUid}/series/${seriesUid}/metadata`, 'application/dicom+json');
}

export function thumbnailUrl(studyUid: string, seriesUid: string): string {
  return `${DICOMWEB}/studies/${studyUid}/series/${seriesUid}/thumbnail?viewport=96,96`;
}
