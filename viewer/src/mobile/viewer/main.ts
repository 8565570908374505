// Entry of the phone viewer (/m/viewer?study=<StudyInstanceUID>[&series=<SeriesInstanceUID>][&render=server]):
// Cornerstone3D when the browser has WebGL2, else (or with render=server) the server-rendered fallback. The two
// are separate chunks, so the fallback never downloads the WebGL code.
import { buildChrome } from './chrome';
import { watermarkWho } from './watermark';

function hasWebGl2(): boolean {
  try {
    return !!document.createElement('canvas').getContext('webgl2');
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const root = document.getElementById('app')!;
  const params = new URLSearchParams(location.search);
  const study = params.get('study');
  const series = params.get('series');
  const chrome = buildChrome(root);
  void watermarkWho().then((who) => chrome.setWatermark(who.text, who.whole));
  if (!study) {
    chrome.notify('m.noStudy', {}, 'error');
    return;
  }
  chrome.progress(null, 'm.loading');
  if (params.get('render') !== 'server' && hasWebGl2()) {
    const { startWebgl } = await import('./webgl');
    if (await startWebgl(chrome, study, series)) return;
  }
  const { startFallback } = await import('./fallback');
  await startFallback(chrome, study, series);
}

main().catch((error) => {
  document.body.append(Object.assign(document.createElement('pre'), { className: 'm-fatal', textContent: String(error?.stack || error) }));
});
