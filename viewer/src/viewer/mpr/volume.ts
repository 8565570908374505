// Volumes for 3D: one streaming volume per series (built from the wadors image ids whose metadata
// study.ts registered), loaded progressively; and taking a layout slot over as a volume viewport.

import { Enums, cache, setVolumesForViewports, volumeLoader, type Types } from '@cornerstonejs/core';
import { ToolGroupManager, type Types as ToolTypes } from '@cornerstonejs/tools';
import { el } from '../../dom';
import { translateTree } from '../../i18n';
import type { Slot, ViewerContext } from '../context';
import type { Series } from '../study';

export function volumeIdOf(series: Series): string {
  return `cornerstoneStreamingImageVolume:yy-${series.uid}`;
}

/** The series' volume from the cache, or created now; its slices keep streaming in after this returns. */
export async function streamVolume(series: Series): Promise<Types.IImageVolume> {
  const volumeId = volumeIdOf(series);
  const cached = cache.getVolume(volumeId);
  if (cached) return cached;
  const volume = await volumeLoader.createAndCacheVolume(volumeId, { imageIds: series.imageIds });
  // not awaited: the viewports show the slices as they arrive
  (volume as unknown as { load(): void }).load();
  return volume;
}

export function volumeLoaded(volumeId: string): boolean {
  return Boolean(cache.getVolume(volumeId)?.loadStatus?.loaded);
}

/** Replace whatever viewport a slot has with a volume viewport of ``type`` in ``tools``. */
export function takeOverSlot(ctx: ViewerContext, slot: Slot, kind: string, labelKey: string,
  viewportInput: { type: Enums.ViewportType; orientation?: Enums.OrientationAxis }): void {
  const engine = ctx.engine;
  if (engine.getViewport(slot.id)) {
    ToolGroupManager.getToolGroupForViewport(slot.id, engine.id)?.removeViewports(engine.id, slot.id);
    engine.disableElement(slot.id);
  }
  engine.enableElement({
    viewportId: slot.id, type: viewportInput.type, element: slot.element,
    defaultOptions: { background: [0, 0, 0] as Types.Point3, orientation: viewportInput.orientation },
  });
  slot.kind = kind;
  slot.frame.querySelectorAll('.yy-slot-message, .yy-mpr-label').forEach((node) => node.remove());
  const label = el('div', { class: 'yy-mpr-label', 'data-i18n': labelKey });
  slot.frame.append(label);
  translateTree(slot.frame);
}

/** Show the volume in the slots' viewports and hand them to the tool group. */
export async function showVolume(ctx: ViewerContext, volumeId: string, slots: Slot[], tools: ToolTypes.IToolGroup): Promise<void> {
  const ids = slots.map((s) => s.id);
  await setVolumesForViewports(ctx.engine, [{ volumeId }], ids);
  for (const id of ids) tools.addViewport(id, ctx.engine.id);
  ctx.engine.renderViewports(ids);
}

/** Resolves once every slice of the volume is in (volume rendering waits: a half volume in 3D misleads). */
export function whenLoaded(volumeId: string, timeoutMs = 600_000): Promise<void> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const check = () => {
      if (volumeLoaded(volumeId)) resolve();
      else if (!cache.getVolume(volumeId) || Date.now() - started > timeoutMs) reject(new Error('volume not loaded'));
      else setTimeout(check, 200);
    };
    check();
  });
}
