// Who opened the page, for the watermark band (decision 0010 §7): a patient or share visitor gets the server's
// text from GET /api/patient/me ("watermark"); a doctor's session gives the username (GET /api/session).
// Plain fetches: a 401/404 here means "not that kind of session", not "sign in again".

async function json(url: string): Promise<Record<string, unknown> | null> {
  try {
    const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    return response.ok ? ((await response.json()) as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export interface Who {
  text: string;
  whole: boolean; // the server's watermark text (names who and when), drawn as it is
}

export async function watermarkWho(): Promise<Who> {
  const me = await json('/api/patient/me');
  if (me && typeof me.watermark === 'string' && me.watermark) return { text: me.watermark, whole: true };
  if (me && typeof me.display_name === 'string' && me.display_name) return { text: me.display_name, whole: false };
  const session = await json('/api/session');
  const user = session?.user as { username?: string } | undefined;
  return { text: user?.username ?? '', whole: false };
}
