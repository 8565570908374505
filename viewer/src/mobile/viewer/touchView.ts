// The gestures (gestures.ts) applied to a Cornerstone viewport — stack or volume (MPR) alike: scrolling through
// images or slices, windowing, pinch zoom about the fingers with pan, double tap to fit or zoom in.
// Only the viewport's display state changes (camera, VOI), never the image data.

import { utilities as coreUtilities, type Types } from '@cornerstonejs/core';
import type { Slot, ViewerContext } from '../../viewer/context';
import { attachGestures, type GestureMode, type Point } from './gestures';

type Vec3 = [number, number, number];
type AnyViewport = Types.IStackViewport | Types.IVolumeViewport;

/** Zoom limits relative to "fit": a phone user cannot lose the image by pinching. */
const MIN_ZOOM = 0.25;
const MAX_ZOOM = 20;
const DOUBLE_TAP_ZOOM = 2.5;

function viewportOf(ctx: ViewerContext, slot: Slot): AnyViewport | null {
  const viewport = ctx.engine.getViewport(slot.id) as AnyViewport | undefined;
  return viewport && (viewport as { getCamera?: unknown }).getCamera ? viewport : null;
}

function voiOf(viewport: AnyViewport): { lower: number; upper: number } | undefined {
  return (viewport.getProperties() as { voiRange?: { lower: number; upper: number } }).voiRange;
}

/** Window by a drag: width follows x multiplicatively (same feel on CT HU and 8-bit images), centre follows y. */
export function windowBy(viewport: AnyViewport, dx: number, dy: number): void {
  const range = voiOf(viewport);
  if (!range) return;
  const { windowWidth, windowCenter } = coreUtilities.windowLevel.toWindowLevel(range.lower, range.upper);
  const width = Math.max(1, windowWidth * Math.exp(dx / 200));
  const center = windowCenter + (dy * windowWidth) / 300;
  viewport.setProperties({ voiRange: coreUtilities.windowLevel.toLowHighRange(width, center) });
  viewport.render();
}

export function scrollBy(viewport: AnyViewport, steps: number): void {
  const total = viewport.getNumberOfSlices?.() ?? 0;
  if (!steps || total < 2) return;
  const index = viewport.getCurrentImageIdIndex();
  const clamped = Math.max(0, Math.min(total - 1, index + steps)) - index;
  if (!clamped) return;
  const volumeId = 'getVolumeId' in viewport ? viewport.getVolumeId() : undefined;
  coreUtilities.scroll(viewport as unknown as Types.IViewport, { delta: clamped, volumeId });
}

/** Canvas (CSS pixel) position of a point given relative to the slot element. */
function canvasPoint(viewport: AnyViewport, element: HTMLElement, point: Point): Types.Point2 {
  const canvas = viewport.canvas.getBoundingClientRect();
  const box = element.getBoundingClientRect();
  return [point.x + box.left - canvas.left, point.y + box.top - canvas.top];
}

interface Pinch {
  camera: Types.ICamera;
  fitScale: number;
  anchor: Vec3;
}

/** Zoom to ``scale`` × the pinch's starting zoom, keeping the world point that was under ``start`` under ``now``. */
function zoomAbout(viewport: AnyViewport, element: HTMLElement, pinch: Pinch, scale: number, now: Point): void {
  const wanted = pinch.camera.parallelScale! / scale;
  const parallelScale = Math.min(pinch.fitScale / MIN_ZOOM, Math.max(pinch.fitScale / MAX_ZOOM, wanted));
  viewport.setCamera({ parallelScale, focalPoint: pinch.camera.focalPoint, position: pinch.camera.position });
  const under = viewport.canvasToWorld(canvasPoint(viewport, element, now));
  const shift = [0, 1, 2].map((k) => pinch.anchor[k] - under[k]) as Vec3;
  const { focalPoint, position } = pinch.camera;
  viewport.setCamera({
    parallelScale,
    focalPoint: focalPoint!.map((v, k) => v + shift[k]) as Vec3,
    position: position!.map((v, k) => v + shift[k]) as Vec3,
  });
  viewport.render();
}

function fitScale(viewport: AnyViewport): number {
  const zoom = viewport.getZoom();
  return (viewport.getCamera().parallelScale ?? 1) * (zoom > 0 ? zoom : 1);
}

/** Wire the slot's element to its viewport (whatever viewport the slot holds when a gesture starts). */
export function attachTouchView(ctx: ViewerContext, slot: Slot, mode: () => GestureMode): () => void {
  let pinch: Pinch | null = null;
  return attachGestures(slot.element, {
    scroll(steps) {
      const viewport = viewportOf(ctx, slot);
      if (viewport) scrollBy(viewport, steps);
    },
    window(dx, dy) {
      const viewport = viewportOf(ctx, slot);
      if (viewport) windowBy(viewport, dx, dy);
    },
    pinchStart(center) {
      const viewport = viewportOf(ctx, slot);
      if (!viewport) return;
      const camera = viewport.getCamera();
      pinch = { camera, fitScale: fitScale(viewport), anchor: viewport.canvasToWorld(canvasPoint(viewport, slot.element, center)) as Vec3 };
    },
    pinch(scale, center) {
      const viewport = viewportOf(ctx, slot);
      if (viewport && pinch) zoomAbout(viewport, slot.element, pinch, scale, center);
    },
    pinchEnd() {
      pinch = null;
    },
    doubleTap(at) {
      const viewport = viewportOf(ctx, slot);
      if (!viewport) return;
      if (viewport.getZoom() > 1.05 || viewport.getZoom() < 0.95) {
        viewport.setZoom(1);
        viewport.setPan([0, 0]);
        viewport.render();
        return;
      }
      const camera = viewport.getCamera();
      const anchor = viewport.canvasToWorld(canvasPoint(viewport, slot.element, at)) as Vec3;
      zoomAbout(viewport, slot.element, { camera, fitScale: fitScale(viewport), anchor }, DOUBLE_TAP_ZOOM, at);
    },
    tap() {
      if (ctx.activeSlot() !== slot) ctx.setActiveSlot(slot);
    },
  }, mode);
}
