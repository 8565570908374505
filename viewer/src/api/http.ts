// Same-origin HTTP to the Yunying server: the session cookie authenticates, unsafe requests carry the
// session's CSRF token, errors become ApiError with the server's problem detail.

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export interface SessionInfo {
  csrf_token: string | null;
  user: { username: string; display_name?: string | null };
  roles: string[];
  permissions: string[];
  institution: { code: string; name: string } | null;
}

let session: SessionInfo | null = null;

export async function loadSession(): Promise<SessionInfo> {
  session = await getJson<SessionInfo>('/api/session');
  return session;
}

export function currentSession(): SessionInfo | null {
  return session;
}

async function failure(response: Response): Promise<ApiError> {
  let detail = response.statusText;
  try {
    const body = await response.json();
    detail = body.detail || body.title || detail;
  } catch {
    /* not JSON */
  }
  if (response.status === 401) {
    location.assign(`/ui/login?next=${encodeURIComponent(location.pathname + location.search)}`);
  }
  return new ApiError(response.status, detail);
}

export async function getJson<T>(url: string, accept = 'application/json'): Promise<T> {
  const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: accept } });
  if (response.status === 204) return [] as T;
  if (!response.ok) throw await failure(response);
  return (await response.json()) as T;
}

export async function sendJson<T>(method: 'POST' | 'PUT' | 'DELETE', url: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (session?.csrf_token) headers['X-CSRF-Token'] = session.csrf_token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(url, {
    method, credentials: 'same-origin', headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export async function getBlob(url: string): Promise<Blob> {
  const response = await fetch(url, { credentials: 'same-origin' });
  if (!response.ok) throw await failure(response);
  return response.blob();
}
