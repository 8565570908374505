// Progressive loading: a series shows its first image as soon as that one is decoded (showSeries → setStack),
// then this feature fetches the rest of the series in the background, nearest images first and ahead in the
// direction the user scrolls. Requests go through Cornerstone's image-load pool as 'prefetch' (the pool serves
// scrolling's 'interaction' requests first) and decoding happens in the dicom-image-loader's web workers, so
// the main thread stays free for scrolling. Only a few requests are in flight at a time, which leaves the
// browser's connections to the server free for the image the user scrolls to.
//
// Progress is shown in the slot (i18n) and exposed for tests and the benchmark as
// window.yunyingViewer.prefetch (the active slot's series) and window.yunyingViewer.prefetchSlots (all slots).

import { Enums as CoreEnums, cache, imageLoadPoolManager, imageLoader } from '@cornerstonejs/core';
import { el } from '../dom';
import { t } from '../i18n';
import type { Feature, Slot, ViewerContext } from './context';
import './prefetchMessages';
import '../styles/prefetch.css';

/** Requests of one series in flight at once (browsers open 6 connections per host: one stays for scrolling). */
const IN_FLIGHT = 5;
/** Images behind the scrolling direction count this many times their distance. */
const BEHIND_WEIGHT = 2;

export interface PrefetchProgress {
  seriesUid: string;
  total: number;
  loaded: number;
  failed: number;
  /** ms from the request to show the series (page navigation for the first one) until its first image was drawn */
  firstImageMs: number;
  /** ms from the same origin until every image of the series was decoded and cached; null while loading */
  allLoadedMs: number | null;
  /** images already decoded when the first image was drawn (the rest comes progressively) */
  loadedAtFirstImage: number;
  /** +1 or -1: the direction the user last scrolled */
  direction: number;
}

interface Job {
  slot: Slot;
  imageIds: string[];
  requested: boolean[];
  inFlight: number;
  origin: number;
  stopped: boolean;
  progress: PrefetchProgress;
  lastIndex: number;
  indicator: HTMLElement;
}

const jobs = new Map<string, Job>();

function currentIndex(ctx: ViewerContext, job: Job): number {
  const viewport = ctx.stackViewport(job.slot);
  return viewport ? viewport.getCurrentImageIdIndex() : job.lastIndex;
}

/** The next image to fetch: the nearest one not yet requested, images ahead in the scroll direction first. */
function nextIndex(job: Job, current: number): number {
  let best = -1;
  let bestCost = Infinity;
  for (let i = 0; i < job.imageIds.length; i++) {
    if (job.requested[i]) continue;
    const delta = (i - current) * job.progress.direction;
    const cost = delta >= 0 ? delta : -delta * BEHIND_WEIGHT;
    if (cost < bestCost) {
      bestCost = cost;
      best = i;
    }
  }
  return best;
}

function countLoaded(job: Job): number {
  return job.imageIds.reduce((n, id) => n + (cache.isLoaded(id) ? 1 : 0), 0);
}

function render(job: Job): void {
  const { loaded, total, failed, allLoadedMs } = job.progress;
  const done = allLoadedMs !== null || loaded + failed >= total;
  job.indicator.hidden = done && !failed;
  job.indicator.textContent = failed ? t('prefetch.failed', { count: failed }) : t('prefetch.progress', { loaded, total });
  job.indicator.setAttribute('aria-valuenow', String(loaded));
  job.indicator.setAttribute('aria-valuemax', String(total));
  job.indicator.style.setProperty('--yy-prefetch', `${total ? (100 * loaded) / total : 100}%`);
}

function update(job: Job): void {
  job.progress.loaded = countLoaded(job);
  if (job.progress.allLoadedMs === null && job.progress.loaded === job.progress.total) {
    job.progress.allLoadedMs = Math.round(performance.now() - job.origin);
  }
  render(job);
}

function pump(ctx: ViewerContext, job: Job): void {
  while (!job.stopped && job.inFlight < IN_FLIGHT) {
    const index = nextIndex(job, currentIndex(ctx, job));
    if (index < 0) break;
    job.requested[index] = true;
    const imageId = job.imageIds[index];
    if (cache.isLoaded(imageId)) continue;
    job.inFlight++;
    const finish = (ok: boolean) => {
      job.inFlight--;
      if (!ok) job.progress.failed++;
      if (job.stopped) return;
      update(job);
      pump(ctx, job);
    };
    imageLoadPoolManager.addRequest(
      () => imageLoader.loadAndCacheImage(imageId, { priority: 0, requestType: CoreEnums.RequestType.Prefetch })
        .then(() => finish(true), () => finish(false)),
      CoreEnums.RequestType.Prefetch, { imageId }, 0);
  }
  update(job);
}

function start(ctx: ViewerContext, slot: Slot, origin: number): void {
  jobs.get(slot.id)?.indicator.remove();
  const previous = jobs.get(slot.id);
  if (previous) previous.stopped = true;
  jobs.delete(slot.id);
  const series = slot.series;
  const viewport = ctx.stackViewport(slot);
  if (!series || series.nonImage || !series.imageIds.length || !viewport) return;
  const imageIds = viewport.getImageIds();
  const lastIndex = viewport.getCurrentImageIdIndex();
  const indicator = el('div', { class: 'yy-prefetch', role: 'progressbar', 'aria-valuemin': '0' });
  slot.frame.append(indicator);
  const job: Job = {
    slot, imageIds, requested: imageIds.map(() => false), inFlight: 0, origin, stopped: false, lastIndex, indicator,
    progress: {
      seriesUid: series.uid, total: imageIds.length, loaded: 0, failed: 0, direction: 1, allLoadedMs: null,
      loadedAtFirstImage: imageIds.reduce((n, id) => n + (cache.isLoaded(id) ? 1 : 0), 0),
      firstImageMs: Math.round(performance.now() - origin),
    },
  };
  jobs.set(slot.id, job);
  pump(ctx, job);
}

export const prefetchFeature: Feature = {
  id: 'prefetch',
  install(ctx) {
    // When was the series asked for? showSeries is wrapped so that every caller (series bar, layouts,
    // other features) starts the clock; the series shown before this feature was installed count from
    // the page's navigation start (performance.now() origin).
    const requestedAt = new Map<string, number>();
    const show = ctx.showSeries.bind(ctx);
    ctx.showSeries = (slot, series, study, imageIndex) => {
      requestedAt.set(slot.id, performance.now());
      return show(slot, series, study, imageIndex);
    };
    ctx.on('series-shown', (slot) => {
      if (slot) start(ctx, slot, requestedAt.get(slot.id) ?? 0);
    });
    ctx.on('image-changed', (slot) => {
      const job = slot && jobs.get(slot.id);
      if (!job) return;
      const index = currentIndex(ctx, job);
      if (index !== job.lastIndex) job.progress.direction = index > job.lastIndex ? 1 : -1;
      job.lastIndex = index;
    });
    ctx.on('viewports-changed', () => {
      for (const [id, job] of jobs) {
        if (!ctx.slots().includes(job.slot) || job.slot.kind !== 'stack') {
          job.stopped = true;
          job.indicator.remove();
          jobs.delete(id);
        }
      }
    });
    ctx.on('locale-changed', () => jobs.forEach(render));
    for (const slot of ctx.slots()) {
      if (slot.series && slot.kind === 'stack') start(ctx, slot, 0);
    }
    const exposed = ((window as unknown as { yunyingViewer?: Record<string, unknown> }).yunyingViewer ??= {});
    Object.defineProperties(exposed, {
      prefetch: { get: () => jobs.get(ctx.activeSlot().id)?.progress ?? null, enumerable: true, configurable: true },
      prefetchSlots: {
        get: () => Object.fromEntries([...jobs].map(([id, job]) => [id, job.progress])), enumerable: true, configurable: true,
      },
    });
  },
};
