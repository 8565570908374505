// Comparison (VW-7) and detach (VW-8): /viewer?study=A&compare=B[,C] opens the studies side by side (current
// left, priors right); a "priors" panel lists the patient's other studies (/api/studies/{uid}/priors: the same
// patient at every hospital whose studies the user may see, matched by the server); toggles synchronise
// scrolling by position, window/level and zoom/pan, and show reference lines; a viewport opens in a new window.

import { ReferenceLinesTool, Synchronizer, SynchronizerManager, addTool, synchronizers } from '@cornerstonejs/tools';
import { DicomJson, TAG, priorStudies, showDate, text, values } from '../../api/dicomweb';
import { clear, el } from '../../dom';
import { translateTree } from '../../i18n';
import type { Feature, Slot, ViewerContext } from '../context';
import type { Series, Study } from '../study';
import { PositionSync } from './positionSync';
import './messages';

const ENGINE_ID = 'yy-engine';
const VOI_SYNC = 'yy-compare-voi';
const ZOOM_SYNC = 'yy-compare-zoompan';

/** The series of ``study`` that best matches ``like``: same modality and description, else same modality, else the largest. */
export function matchingSeries(study: Study, like: Series | null): Series | null {
  const images = study.series.filter((s) => !s.nonImage && s.imageIds.length);
  const byModality = images.filter((s) => s.modality === like?.modality);
  const pool = byModality.length ? byModality : images;
  return pool.find((s) => s.description && s.description === like?.description)
    ?? [...pool].sort((a, b) => b.imageIds.length - a.imageIds.length)[0] ?? null;
}

/** Adds every stack viewport to a synchroniser (a viewport replaced by a new layout is re-added). */
function syncAll(ctx: ViewerContext, sync: Synchronizer | undefined): void {
  if (!sync) return;
  for (const slot of ctx.slots()) {
    if (ctx.stackViewport(slot)) sync.add({ renderingEngineId: ENGINE_ID, viewportId: slot.id });
  }
}

export const compareFeature: Feature = {
  id: 'compare',
  async install(ctx) {
    const position = new PositionSync(ctx);
    const toggles = new Map<string, boolean>();

    function toggle(id: string, on: boolean): void {
      toggles.set(id, on);
      document.querySelector(`[data-action="${id}"]`)?.classList.toggle('yy-pressed', on);
    }

    async function compareWith(uids: string[]): Promise<void> {
      const others: Study[] = [];
      for (const uid of uids) {
        try {
          others.push(await ctx.openStudy(uid));
        } catch (error) {
          ctx.notify('compare.failed', { detail: (error as Error).message || uid }, 'error');
        }
      }
      if (!others.length) return;
      const current = ctx.slots()[0]?.series ?? matchingSeries(ctx.study, null);
      await ctx.setLayout(1, Math.min(4, others.length + 1));
      const slots = ctx.slots();
      if (current && slots[0].series !== current) await ctx.showSeries(slots[0], current, ctx.study);
      for (const [index, other] of others.slice(0, slots.length - 1).entries()) {
        const series = matchingSeries(other, current);
        if (series) await ctx.showSeries(slots[index + 1], series, other);
        ctx.notify('compare.opened', { date: showDate(text(other.first, TAG.StudyDate)) });
      }
      ctx.setActiveSlot(slots[0]);
      // comparing is mostly about scrolling together: start synchronised (the toggle turns it off)
      position.enabled = true;
      toggle('compare-sync-scroll', true);
    }

    async function listPriors(): Promise<void> {
      const panel = ctx.sidePanel('compare-priors', 'compare.panel');
      clear(panel);
      // the server matches the patient across hospitals (same record, or the same verified ID card number)
      const found: DicomJson[] = await priorStudies(ctx.study.uid);
      const others = found.filter((s) => text(s, TAG.StudyInstanceUID) !== ctx.study.uid);
      if (!others.length) panel.append(el('p', { 'data-i18n': 'compare.none' }));
      for (const other of others) {
        const uid = text(other, TAG.StudyInstanceUID);
        const button = el('button', { type: 'button', class: 'yy-compare-with', 'data-study': uid, 'data-i18n': 'compare.with' });
        button.addEventListener('click', () => void compareWith([uid]));
        panel.append(el('div', { class: 'yy-prior', 'data-study': uid },
          el('span', {}, `${showDate(text(other, TAG.StudyDate))} ${values(other, TAG.ModalitiesInStudy).join('/')}`),
          el('span', {}, text(other, TAG.StudyDescription)),
          el('span', { class: 'yy-hospital' }, text(other, TAG.InstitutionName)), button));
      }
      translateTree(panel);
    }

    ctx.addButton({ id: 'compare-priors', label: 'compare.priors', title: 'compare.priors.title', group: 'group.compare',
      onClick: listPriors });
    ctx.addButton({ id: 'compare-sync-scroll', label: 'compare.syncScroll', title: 'compare.syncScroll.title', group: 'group.compare',
      onClick: () => {
        position.enabled = !position.enabled;
        toggle('compare-sync-scroll', position.enabled);
      } });
    ctx.addButton({ id: 'compare-link', label: 'compare.link', title: 'compare.link.title', group: 'group.compare',
      onClick: () => {
        position.linkHere();
        position.enabled = true;
        toggle('compare-sync-scroll', true);
        ctx.notify('compare.linked');
      } });
    ctx.addButton({ id: 'compare-sync-voi', label: 'compare.syncVoi', title: 'compare.syncVoi.title', group: 'group.compare',
      onClick: () => {
        const on = !toggles.get('compare-sync-voi');
        if (on) syncAll(ctx, synchronizers.createVOISynchronizer(VOI_SYNC, { syncInvertState: true, syncColormap: false }));
        else SynchronizerManager.destroySynchronizer(VOI_SYNC);
        toggle('compare-sync-voi', on);
      } });
    ctx.addButton({ id: 'compare-sync-zoom', label: 'compare.syncZoom', title: 'compare.syncZoom.title', group: 'group.compare',
      onClick: () => {
        const on = !toggles.get('compare-sync-zoom');
        if (on) syncAll(ctx, synchronizers.createZoomPanSynchronizer(ZOOM_SYNC));
        else SynchronizerManager.destroySynchronizer(ZOOM_SYNC);
        toggle('compare-sync-zoom', on);
      } });
    addTool(ReferenceLinesTool);
    ctx.stackTools.addTool(ReferenceLinesTool.toolName);
    const referenceSource = (slot: Slot) =>
      ctx.stackTools.setToolConfiguration(ReferenceLinesTool.toolName, { sourceViewportId: slot.id });
    ctx.addButton({ id: 'compare-ref-lines', label: 'compare.refLines', title: 'compare.refLines.title', group: 'group.compare',
      onClick: () => {
        const on = !toggles.get('compare-ref-lines');
        if (on) {
          referenceSource(ctx.activeSlot());
          ctx.stackTools.setToolEnabled(ReferenceLinesTool.toolName);
        } else {
          ctx.stackTools.setToolDisabled(ReferenceLinesTool.toolName);
        }
        toggle('compare-ref-lines', on);
        ctx.engine.render();
      } });
    ctx.addButton({ id: 'compare-detach', label: 'compare.detach', title: 'compare.detach.title', group: 'group.compare',
      onClick: () => {
        const slot = ctx.activeSlot();
        if (!slot.series || !slot.study) return;
        const index = ctx.stackViewport(slot)?.getCurrentImageIdIndex() ?? 0;
        const params = new URLSearchParams({ study: slot.study.uid, series: slot.series.uid, image: String(index + 1) });
        const opened = window.open(`/viewer?${params}`, `yy-detached-${slot.series.uid}`, 'popup,width=1920,height=1080');
        if (!opened) ctx.notify('compare.popupBlocked', {}, 'warning');
      } });

    ctx.on('active-changed', (slot) => {
      if (slot && toggles.get('compare-ref-lines')) {
        referenceSource(slot);
        ctx.engine.render();
      }
    });
    // viewports made by a new layout or a new series join the synchronisers that are on
    const refresh = () => {
      if (toggles.get('compare-sync-voi')) syncAll(ctx, SynchronizerManager.getSynchronizer(VOI_SYNC));
      if (toggles.get('compare-sync-zoom')) syncAll(ctx, SynchronizerManager.getSynchronizer(ZOOM_SYNC));
    };
    ctx.on('viewports-changed', refresh);
    ctx.on('series-shown', refresh);

    (window as unknown as { yunyingCompare: unknown }).yunyingCompare = { position, compareWith };
    const wanted = new URLSearchParams(location.search).get('compare');
    if (wanted) await compareWith(wanted.split(',').map((uid) => uid.trim()).filter(Boolean));
  },
};
