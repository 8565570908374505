// A tiny client-side router: the server answers every phone path with the same page (yunying.web.mobile);
// here the path picks the page. In-app links carry data-nav and move with history.pushState; anything
// else (the touch viewer at /m/viewer, downloads, PDFs) is an ordinary navigation.

export type Params = Record<string, string>;
export interface Route {
  pattern: RegExp; // named groups become params
  render: (root: HTMLElement, params: Params) => Promise<void>;
}

let routes: Route[] = [];
let root: HTMLElement;
let rendering = 0;

export function startRouter(element: HTMLElement, table: Route[], fallback: string): void {
  root = element;
  routes = table;
  window.addEventListener('popstate', () => void render());
  document.addEventListener('click', (event) => {
    const link = (event.target as Element | null)?.closest<HTMLAnchorElement>('a[data-nav]');
    if (!link || event.defaultPrevented || event.metaKey || event.ctrlKey || event.shiftKey) return;
    event.preventDefault();
    navigate(link.getAttribute('href')!);
  });
  if (!routes.some((route) => route.pattern.test(location.pathname))) history.replaceState(null, '', fallback);
  void render();
}

export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  void render();
}

/** Draw the page of the current path again (after a language change, a new session …). */
export async function render(): Promise<void> {
  const mine = ++rendering;
  for (const route of routes) {
    const found = route.pattern.exec(location.pathname);
    if (!found) continue;
    const params: Params = {};
    for (const [name, value] of Object.entries(found.groups ?? {})) params[name] = decodeURIComponent(value);
    document.body.dataset.mobileReady = 'false';
    window.scrollTo(0, 0);
    await route.render(root, params);
    if (mine === rendering) document.body.dataset.mobileReady = 'true';
    return;
  }
}

/** True while this render is still the newest (a slow answer must not draw over a newer page). */
export function current(): () => boolean {
  const mine = rendering;
  return () => mine === rendering;
}
