// MPR and MIP on a phone: the series becomes a streaming volume (the diagnostic viewer's mpr/volume.ts), shown
// one plane at a time in the first viewport with a plane switcher (axial, sagittal, coronal), a MIP toggle with
// slab thickness, and a way back to 2D. The same touch gestures scroll slices, window, zoom and pan.

import { Enums, eventTarget, type Types } from '@cornerstonejs/core';
import { el } from '../../dom';
import { t, translateTree } from '../../i18n';
import type { Slot } from '../../viewer/context';
import '../../viewer/mpr/messages';
import { showVolume, streamVolume, takeOverSlot, volumeIdOf } from '../../viewer/mpr/volume';
import { volumeProblem } from '../../viewer/mpr/volumeCheck';
import type { Series } from '../../viewer/study';
import type { Chrome } from './chrome';
import type { MobileViewer } from './shell';

export const PLANES: Array<{ key: string; orientation: Enums.OrientationAxis; label: string }> = [
  { key: 'axial', orientation: Enums.OrientationAxis.AXIAL, label: 'mpr.axial' },
  { key: 'sagittal', orientation: Enums.OrientationAxis.SAGITTAL, label: 'mpr.sagittal' },
  { key: 'coronal', orientation: Enums.OrientationAxis.CORONAL, label: 'mpr.coronal' },
];
const SLABS_MM = [5, 10, 20, 40];

export function installMpr(chrome: Chrome, viewer: MobileViewer): { planeLabel(slot: Slot): string } {
  const { ctx } = viewer;
  let source: Series | null = null;
  let plane = PLANES[0];
  let mip = false;
  let slab = 20;

  const planeButtons = PLANES.map((p) => {
    const button = el('button', { type: 'button', class: 'm-seg', 'data-plane': p.key, 'data-i18n': p.label });
    button.addEventListener('click', () => setPlane(p));
    return button;
  });
  const mipButton = el('button', { type: 'button', class: 'm-seg', 'data-action': 'mip', 'data-i18n': 'm.mip' });
  const slabSelect = el('select', { class: 'm-seg', 'data-control': 'slab' },
    ...SLABS_MM.map((mm) => el('option', { value: mm, 'data-mm': mm })));
  slabSelect.value = String(slab);
  const back = el('button', { type: 'button', class: 'm-seg', 'data-action': 'mpr-2d', 'data-i18n': 'm.mpr.2d' });
  const bar = el('div', { class: 'm-mpr-bar', hidden: true }, ...planeButtons, mipButton, slabSelect, back);
  chrome.stage.append(bar);
  const labelSlabs = () => slabSelect.querySelectorAll('option').forEach((o) => { o.textContent = t('m.mip.thickness', { mm: o.value }); });
  labelSlabs();
  ctx.on('locale-changed', labelSlabs);
  translateTree(bar);

  const mprViewport = (): Types.IVolumeViewport | null => {
    const slot = ctx.slots()[0];
    return slot?.kind === 'mpr' ? (ctx.engine.getViewport(slot.id) as Types.IVolumeViewport) : null;
  };
  const sync = () => {
    planeButtons.forEach((b, i) => b.classList.toggle('m-pressed', PLANES[i] === plane));
    mipButton.classList.toggle('m-pressed', mip);
  };

  function applyBlend(): void {
    const viewport = mprViewport();
    if (!viewport) return;
    viewport.setBlendMode(mip ? Enums.BlendModes.MAXIMUM_INTENSITY_BLEND : Enums.BlendModes.COMPOSITE);
    if (mip) viewport.setSlabThickness(slab);
    else viewport.resetSlabThickness();
    viewport.render();
    sync();
  }

  function setPlane(next: (typeof PLANES)[number]): void {
    plane = next;
    const viewport = mprViewport();
    if (viewport) {
      viewport.setOrientation(next.orientation);
      applyBlend();
    }
    sync();
    ctx.emit('image-changed', ctx.slots()[0]);
  }

  async function enter(): Promise<void> {
    const slot = ctx.activeSlot();
    const series = slot.kind === 'stack' ? slot.series : source;
    if (!series) return;
    const problem = volumeProblem(series);
    if (problem) {
      ctx.notify('mpr.notVolume', { reason: t(problem.reason, problem.params) }, 'warning');
      return;
    }
    await streamVolume(series);
    source = series;
    await ctx.setLayout(1, 1);
    const first = ctx.slots()[0];
    first.series = series;
    takeOverSlot(ctx, first, 'mpr', plane.label, { type: Enums.ViewportType.ORTHOGRAPHIC, orientation: plane.orientation });
    first.frame.querySelectorAll('.yy-mpr-label').forEach((node) => node.remove()); // the overlay names the plane
    await showVolume(ctx, volumeIdOf(series), [first], ctx.stackTools);
    ctx.setActiveSlot(first);
    mip = false;
    applyBlend();
    bar.hidden = false;
    ctx.emit('viewports-changed');
  }

  async function leave(): Promise<void> {
    bar.hidden = true;
    if (source) await ctx.showSeries(ctx.slots()[0], source);
    ctx.emit('viewports-changed');
  }

  mipButton.addEventListener('click', () => { mip = !mip; applyBlend(); });
  slabSelect.addEventListener('change', () => { slab = Number(slabSelect.value); applyBlend(); });
  back.addEventListener('click', () => void leave());
  ctx.on('series-shown', (slot) => { if (slot === ctx.slots()[0]) bar.hidden = true; });
  chrome.button('mpr', 'm.mpr', '◩', enter);

  // volume streaming progress in the chrome's bar
  eventTarget.addEventListener(Enums.Events.IMAGE_VOLUME_MODIFIED, ((event: CustomEvent) => {
    const detail = event.detail as { volumeId?: string; numberOfFrames?: number; framesProcessed?: number };
    if (!source || detail.volumeId !== volumeIdOf(source) || !detail.numberOfFrames) return;
    const loaded = detail.framesProcessed ?? 0;
    if (loaded >= detail.numberOfFrames) chrome.hideProgress();
    else chrome.progress(loaded / detail.numberOfFrames, 'm.mpr.loading', { loaded, total: detail.numberOfFrames });
  }) as EventListener);

  Object.assign((window as unknown as { yunyingViewer: Record<string, unknown> }).yunyingViewer, {
    mobile3d: {
      plane: () => (mprViewport() ? plane.key : null),
      mip: () => mip,
      normal: () => (mprViewport()?.getCamera().viewPlaneNormal ?? null),
    },
  });
  return { planeLabel: (slot) => (slot.kind === 'mpr' ? t(plane.label) + (mip ? ` · MIP ${slab} mm` : '') : '') };
}
