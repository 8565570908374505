// The 3D feature: MPR (three linked orthographic views with slab projections) and volume rendering of
// the active slot's series, with a way back to the 2D stack layout. A series that cannot form a volume
// gets a message and the 2D view stays as it was.

import { t, translateTree } from '../../i18n';
import type { Feature, Slot, ViewerContext } from '../context';
import type { Series, Study } from '../study';
import './messages';
import './mpr.css';
import { crosshairState, projectionControls, showMpr } from './mprView';
import { streamVolume, volumeIdOf, volumeLoaded, whenLoaded } from './volume';
import { volumeProblem } from './volumeCheck';
import { VR_PRESETS, showVr, vrControls } from './vrView';

type Mode = '2d' | 'mpr' | 'vr';

export const mprFeature: Feature = {
  id: 'mpr',
  install(ctx: ViewerContext) {
    let mode: Mode = '2d';
    let source: { series: Series; study: Study } | null = null;
    const preset = { value: VR_PRESETS[0][1] };
    let panel: { section: HTMLElement; side: HTMLElement; mpr: HTMLElement; vr: HTMLElement } | null = null;

    function showPanel(which: Mode): void {
      if (!panel) {
        const body = ctx.sidePanel('mpr', 'mpr.panel');
        const section = body.parentElement!;
        section.classList.add('yy-mpr-panel');
        const mpr = projectionControls(ctx);
        const vr = vrControls(ctx, preset);
        body.append(mpr, vr);
        panel = { section, side: section.parentElement!, mpr, vr };
        // translate the new controls now; later locale switches translate the whole page
        translateTree(section);
      }
      if (which === '2d') {
        panel.section.remove();
        return;
      }
      if (!panel.section.isConnected) panel.side.append(panel.section);
      panel.mpr.hidden = which !== 'mpr';
      panel.vr.hidden = which !== 'vr';
      if (which === 'mpr') {
        // a fresh MPR starts with thin slices
        (panel.mpr.querySelector('[data-control=slab-mode]') as HTMLSelectElement).value = 'composite';
      }
    }

    /** The series to reconstruct: the active slot's, checked; null (with a message) if it cannot form a volume. */
    function pickSeries(): { series: Series; study: Study } | null {
      const slot = ctx.activeSlot();
      const series = slot.kind === 'stack' ? slot.series : source?.series ?? slot.series;
      const study = slot.kind === 'stack' ? slot.study ?? ctx.study : source?.study ?? ctx.study;
      if (!series) return null;
      const problem = volumeProblem(series);
      if (problem) {
        ctx.notify('mpr.notVolume', { reason: t(problem.reason, problem.params) }, 'warning');
        return null;
      }
      return { series, study };
    }

    async function load(picked: { series: Series }): Promise<string | null> {
      try {
        await streamVolume(picked.series);
        return volumeIdOf(picked.series);
      } catch (error) {
        ctx.notify('mpr.volumeFailed', { detail: String((error as Error)?.message ?? error) }, 'error');
        return null;
      }
    }

    async function enterMpr(): Promise<void> {
      const picked = pickSeries();
      if (!picked) return;
      const volumeId = await load(picked);
      if (!volumeId) return;
      source = picked;
      await ctx.setLayout(1, 3);
      const slots = ctx.slots().slice(0, 3);
      slots.forEach((slot) => { slot.series = picked.series; slot.study = picked.study; });
      await showMpr(ctx, slots, volumeId);
      ctx.setActiveSlot(slots[0]);
      mode = 'mpr';
      showPanel('mpr');
      ctx.emit('viewports-changed');
    }

    async function enterVr(): Promise<void> {
      const picked = pickSeries();
      if (!picked) return;
      const volumeId = await load(picked);
      if (!volumeId) return;
      source = picked;
      if (!volumeLoaded(volumeId)) {
        ctx.notify('mpr.loading');
        await whenLoaded(volumeId);
      }
      await ctx.setLayout(1, 1);
      const slot = ctx.slots()[0];
      slot.series = picked.series;
      slot.study = picked.study;
      await showVr(ctx, slot, volumeId, preset.value);
      mode = 'vr';
      showPanel('vr');
      ctx.emit('viewports-changed');
    }

    async function back(): Promise<void> {
      if (mode === '2d' || !source) return;
      const { series, study } = source;
      mode = '2d';
      showPanel('2d');
      await ctx.setLayout(1, 1);
      await ctx.showSeries(ctx.slots()[0], series, study);
    }

    // a slot given back to a 2D stack (series bar click, layout change) drops its 3D label
    ctx.on('series-shown', (slot?: Slot) => {
      if (slot?.kind === 'stack') slot.frame.querySelectorAll('.yy-mpr-label').forEach((node) => node.remove());
      if (mode !== '2d' && !ctx.slots().some((s) => s.kind === 'mpr' || s.kind === 'vr')) {
        mode = '2d';
        showPanel('2d');
      }
    });

    ctx.addButton({ id: 'mpr-open', label: 'mpr.open', title: 'mpr.open.title', group: 'group.3d', onClick: enterMpr });
    ctx.addButton({ id: 'mpr-vr', label: 'mpr.vr', title: 'mpr.vr.title', group: 'group.3d', onClick: enterVr });
    ctx.addButton({ id: 'mpr-back', label: 'mpr.back', title: 'mpr.back.title', group: 'group.3d', onClick: back });

    // read-only state for the browser tests (no control goes through here)
    (window as unknown as { yunyingViewer3d: unknown }).yunyingViewer3d = {
      mode: () => mode,
      volumeLoaded: () => (source ? volumeLoaded(volumeIdOf(source.series)) : false),
      crosshairs: () => crosshairState(ctx),
    };
  },
};
