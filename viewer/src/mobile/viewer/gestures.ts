// Touch gestures of the phone viewer, recognised from Pointer Events (touch, pen, and the mouse for desktops)
// and handed to callbacks as plain numbers, so the Cornerstone view and the server-rendered fallback share them:
//
// - one finger, vertical swipe → scroll through the images (finger up = next image), one step per STEP_PX;
// - one finger, horizontal drag → windowing (the axis is decided after SLOP_PX, then kept for the gesture);
//   in "W/L" mode a one-finger drag windows in both axes (x = width, y = centre) and never scrolls;
// - two fingers → pinch zoom (stepless, about the fingers' midpoint) and pan (the midpoint moving);
// - double tap → fit / zoom in at the tap; a single tap is reported too (activates a viewport).
// In a measuring mode one finger belongs to Cornerstone's tool (draws the line); two fingers still zoom and pan.

export type GestureMode = 'browse' | 'wl' | 'measure';

export interface Point { x: number; y: number }

export interface GestureHandlers {
  /** ``steps`` images forward (> 0) or back (< 0). */
  scroll?(steps: number): void;
  /** Window change in screen pixels since the last call (x: width, y: centre). */
  window?(dx: number, dy: number): void;
  pinchStart?(center: Point): void;
  /** ``scale``: finger distance now ÷ at the start (> 1: zoom in); ``center``: the fingers' midpoint now. */
  pinch?(scale: number, center: Point): void;
  pinchEnd?(): void;
  doubleTap?(at: Point): void;
  tap?(at: Point): void;
}

export const SLOP_PX = 10;
export const STEP_PX = 14;
const DOUBLE_TAP_MS = 320;
const DOUBLE_TAP_PX = 40;
const TAP_MS = 280;

type OneFinger = 'undecided' | 'scroll' | 'window' | 'none';

/** Recognise gestures on ``element`` (coordinates relative to it); returns a function that stops listening. */
export function attachGestures(element: HTMLElement, handlers: GestureHandlers, mode: () => GestureMode): () => void {
  const pointers = new Map<number, Point>();
  let start: Point | null = null;
  let startedAt = 0;
  let last: Point | null = null;
  let oneFinger: OneFinger = 'none';
  let scrolled = 0;
  let pinchDistance = 0;
  let pinching = false;
  let lastTap: { at: Point; time: number } | null = null;

  const local = (event: PointerEvent): Point => {
    const box = element.getBoundingClientRect();
    return { x: event.clientX - box.left, y: event.clientY - box.top };
  };
  const twoFingers = (): [Point, Point] => {
    const [a, b] = [...pointers.values()];
    return [a, b];
  };
  const midpoint = ([a, b]: [Point, Point]): Point => ({ x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 });
  const distance = ([a, b]: [Point, Point]): number => Math.hypot(a.x - b.x, a.y - b.y);

  function down(event: PointerEvent): void {
    if (event.pointerType === 'mouse' && event.button !== 0) return;
    pointers.set(event.pointerId, local(event));
    try {
      element.setPointerCapture(event.pointerId);
    } catch {
      /* synthetic pointers cannot always be captured */
    }
    if (pointers.size === 1) {
      start = last = local(event);
      startedAt = performance.now();
      scrolled = 0;
      oneFinger = mode() === 'measure' ? 'none' : 'undecided';
    } else if (pointers.size === 2) {
      oneFinger = 'none'; // a second finger turns the gesture into a pinch for good
      const fingers = twoFingers();
      pinchDistance = Math.max(1, distance(fingers));
      pinching = true;
      handlers.pinchStart?.(midpoint(fingers));
    }
  }

  function move(event: PointerEvent): void {
    if (!pointers.has(event.pointerId)) return;
    const point = local(event);
    pointers.set(event.pointerId, point);
    if (pinching && pointers.size >= 2) {
      const fingers = twoFingers();
      handlers.pinch?.(distance(fingers) / pinchDistance, midpoint(fingers));
      return;
    }
    if (pointers.size !== 1 || !start || !last || oneFinger === 'none') return;
    const dx = point.x - start.x;
    const dy = point.y - start.y;
    if (oneFinger === 'undecided') {
      if (Math.hypot(dx, dy) < SLOP_PX) return;
      oneFinger = mode() === 'wl' || Math.abs(dx) > Math.abs(dy) ? 'window' : 'scroll';
      last = start;
    }
    if (oneFinger === 'window') {
      handlers.window?.(point.x - last.x, mode() === 'wl' ? point.y - last.y : 0);
    } else {
      const steps = Math.trunc(-dy / STEP_PX);
      if (steps !== scrolled) {
        handlers.scroll?.(steps - scrolled);
        scrolled = steps;
      }
    }
    last = point;
  }

  function up(event: PointerEvent): void {
    if (!pointers.has(event.pointerId)) return;
    const point = local(event);
    pointers.delete(event.pointerId);
    if (pinching) {
      if (pointers.size < 2) {
        pinching = false;
        handlers.pinchEnd?.();
      }
      if (pointers.size === 0) start = null;
      return;
    }
    if (pointers.size > 0 || !start) return;
    const still = oneFinger === 'undecided' || (oneFinger === 'none' && Math.hypot(point.x - start.x, point.y - start.y) < SLOP_PX);
    const quick = performance.now() - startedAt < TAP_MS;
    start = null;
    if (!still || !quick || event.type === 'pointercancel') return;
    const now = performance.now();
    if (mode() !== 'measure' && lastTap && now - lastTap.time < DOUBLE_TAP_MS &&
        Math.hypot(point.x - lastTap.at.x, point.y - lastTap.at.y) < DOUBLE_TAP_PX) {
      lastTap = null;
      handlers.doubleTap?.(point);
      return;
    }
    lastTap = { at: point, time: now };
    handlers.tap?.(point);
  }

  const options = { passive: true };
  element.addEventListener('pointerdown', down, options);
  element.addEventListener('pointermove', move, options);
  element.addEventListener('pointerup', up, options);
  element.addEventListener('pointercancel', up, options);
  return () => {
    element.removeEventListener('pointerdown', down);
    element.removeEventListener('pointermove', move);
    element.removeEventListener('pointerup', up);
    element.removeEventListener('pointercancel', up);
  };
}
