// The cloud-film API as the phone pages use it (docs/cloudfilm.md is the contract). Same-origin fetches:
// the patient (yy_patient) or share (yy_share) cookie authenticates; errors become ApiError carrying the
// problem body's detail and, on 429, the seconds to wait from Retry-After. A 401 is left to the caller
// (a phone has no sign-in page: it shows "open your link again").

export class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly retryAfter: number | null = null) {
    super(message);
  }
}

export interface OpenInfo {
  hospital: string;
  exam: { modality: string; date: string };
  methods: Array<'phone' | 'id_card'>;
  expires_at: string;
}
export interface CodeSent { sent_to: string; expires_in: number }
export interface Me {
  kind?: 'patient' | 'share';
  display_name?: string;
  exams?: number;
  expires_at?: string;
  anonymous?: boolean;
  watermark?: string;
  csrf_token?: string | null;
}
export interface Hospital { id: number | string; name: string; count?: number }
export interface Exam {
  study_uid: string;
  hospital: Hospital;
  modality: string;
  modalities: string[];
  date: string;
  description: string;
  n_images: number;
  report: { status: string | null } | null;
  films: number;
  hidden: boolean;
}
export interface ExamList { exams: Exam[]; hospitals: Hospital[] }
export interface Report {
  status: string | null; findings: string; impression: string; author: string; verifier: string;
  observed_at: string; hospital: string; pdf: string | null;
}
export interface FilmCell { series_uid: string; sop_uid: string; frame: number; key: boolean; row: number; col: number }
export interface Sheet {
  n: number; png: string; pdf: string; width: number; height: number; images: FilmCell[]; layout: string;
  window: { center: number; width: number };
}
export interface Films { state: 'ready' | 'pending' | 'none'; sheets: Sheet[] }
export interface Download {
  id: string | number; state: 'pending' | 'ready' | string; password: string; valid_until: string;
  parts: Array<{ n: number; size: number; url: string }>; total_size: number;
}
export interface ShareCreated { id: string | number; url: string; qr_png: string; expires_at: string }
export interface Share {
  id: string | number; studies: string[]; expires_at: string; anonymous: boolean; password: boolean; history: boolean;
  revoked: boolean; opened: number;
}
export interface AccessEntry { seq: number; at: string; who: string; institution: string; action: string; exam: string }
export interface Block {
  id: string | number; institution?: string | Hospital | null; institution_id?: number | null; username?: string | null;
  created_at?: string;
}

let csrf: string | null = null;

/** Remember the session's CSRF token, when the server gives one (sent on unsafe requests). */
export function useCsrf(token: string | null | undefined): void {
  csrf = token ?? null;
}

async function failure(response: Response): Promise<ApiError> {
  let detail = response.statusText;
  try {
    const body = await response.json();
    detail = body.detail || body.title || detail;
  } catch {
    /* not JSON */
  }
  const wait = Number(response.headers.get('Retry-After'));
  return new ApiError(response.status, detail, Number.isFinite(wait) && wait > 0 ? wait : null);
}

export async function get<T>(url: string): Promise<T> {
  const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (!response.ok) throw await failure(response);
  return (await response.json()) as T;
}

export async function send<T>(method: 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (csrf) headers['X-CSRF-Token'] = csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(url, {
    method, credentials: 'same-origin', headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

const enc = encodeURIComponent;

export const api = {
  openInfo: (token: string) => get<OpenInfo>(`/api/cloudfilm/open/${enc(token)}`),
  sendCode: (token: string, method: string, value: string) =>
    send<CodeSent>('POST', `/api/cloudfilm/open/${enc(token)}/code`, { method, value }),
  verify: (token: string, method: string, value: string, code: string) =>
    send<{ next?: string }>('POST', `/api/cloudfilm/open/${enc(token)}/verify`, { method, value, code }),
  me: () => get<Me>('/api/patient/me'),
  exams: (q = '') => get<ExamList>(`/api/patient/exams${q ? `?q=${enc(q)}` : ''}`),
  report: (study: string) => get<Report>(`/api/patient/exams/${enc(study)}/report`),
  hide: (study: string, hidden: boolean) => send<unknown>('POST', `/api/patient/exams/${enc(study)}/${hidden ? 'hide' : 'unhide'}`),
  accessLog: (before?: number) =>
    get<{ entries: AccessEntry[] }>(`/api/patient/access-log?limit=30${before ? `&before=${before}` : ''}`),
  blocks: () => get<{ blocks: Block[] }>('/api/patient/blocks'),
  block: (what: { institution_id: number | string } | { username: string }) => send<Block>('POST', '/api/patient/blocks', what),
  unblock: (id: string | number) => send<void>('DELETE', `/api/patient/blocks/${enc(String(id))}`),
  logout: () => send<void>('POST', '/api/patient/logout'),
  films: (study: string) => get<Films>(`/api/studies/${enc(study)}/films`),
  download: (study: string) => send<Download>('POST', `/api/studies/${enc(study)}/downloads`),
  downloadState: (id: string | number) => get<Download>(`/api/downloads/${enc(String(id))}`),
  shares: () => get<{ shares: Share[] }>('/api/patient/shares'),
  share: (body: { studies: string[]; expires_in_hours: number; password: string | null; anonymous: boolean; history: boolean }) =>
    send<ShareCreated>('POST', '/api/patient/shares', body),
  revokeShare: (id: string | number) => send<void>('DELETE', `/api/patient/shares/${enc(String(id))}`),
  shareInfo: (token: string) => get<{ needs_password: boolean; expires_at: string }>(`/api/shares/${enc(token)}`),
  openShare: (token: string, password: string | null) =>
    send<{ next?: string }>('POST', `/api/shares/${enc(token)}/open`, { password }),
  feedback: (body: { study: string | null; page: string; text: string; screenshot: string | null }) =>
    send<{ id: string | number }>('POST', '/api/feedback', body),
};
