// Stepless zoom and pan of a film sheet with CSS transforms (CF-5). Pure geometry first (testable in the
// browser through window.yunyingMobile), then the pointer binding: one finger pans a zoomed sheet, two fingers
// pinch around their midpoint, a double tap zooms the tapped cell of the layout to fill the stage and a second
// double tap goes back; the mouse wheel zooms on a desktop.

export interface View { s: number; x: number; y: number } // scale, then translation (stage pixels)
export interface Box { x: number; y: number; w: number; h: number }

export const MIN_SCALE = 1;
export const MAX_SCALE = 12;
const TAP_MS = 300; // longest press that is a tap
const DOUBLE_MS = 350; // longest gap between the taps of a double tap
const TAP_SLOP = 24; // pixels a tap may move

/** Where the sheet sits in the stage at scale 1: contained, centred. */
export function fit(stageW: number, stageH: number, imageW: number, imageH: number): Box {
  const scale = Math.min(stageW / imageW, stageH / imageH);
  const w = imageW * scale;
  const h = imageH * scale;
  return { x: (stageW - w) / 2, y: (stageH - h) / 2, w, h };
}

/** Keep the zoomed sheet on the stage: centred along an axis where it is smaller, else edges never inside. */
export function clamp(view: View, stage: { w: number; h: number }, sheet: Box): View {
  const s = Math.min(MAX_SCALE, Math.max(MIN_SCALE, view.s));
  const axis = (t: number, start: number, size: number, stageSize: number) => {
    const scaled = size * s;
    if (scaled <= stageSize) return (stageSize - scaled) / 2 - start * s;
    return Math.min(-start * s, Math.max(stageSize - (start + size) * s, t));
  };
  return { s, x: axis(view.x, sheet.x, sheet.w, stage.w), y: axis(view.y, sheet.y, sheet.h, stage.h) };
}

/** Zoom to ``s1`` keeping the stage point ``(px, py)`` over the same spot of the sheet. */
export function zoomAt(view: View, s1: number, px: number, py: number): View {
  const s = Math.min(MAX_SCALE, Math.max(MIN_SCALE, s1));
  return { s, x: px - ((px - view.x) / view.s) * s, y: py - ((py - view.y) / view.s) * s };
}

/** The view in which ``cell`` (stage coordinates at scale 1) fills the stage, centred. */
export function zoomToBox(cell: Box, stage: { w: number; h: number }): View {
  const s = Math.min(MAX_SCALE, Math.min(stage.w / cell.w, stage.h / cell.h));
  return { s, x: stage.w / 2 - (cell.x + cell.w / 2) * s, y: stage.h / 2 - (cell.y + cell.h / 2) * s };
}

/** The cell of a ``cols`` × ``rows`` layout under the stage point (at the current view), or null outside. */
export function cellAt(view: View, sheet: Box, cols: number, rows: number, px: number, py: number):
  { row: number; col: number; box: Box } | null {
  const sx = (px - view.x) / view.s - sheet.x;
  const sy = (py - view.y) / view.s - sheet.y;
  if (sx < 0 || sy < 0 || sx >= sheet.w || sy >= sheet.h) return null;
  const w = sheet.w / cols;
  const h = sheet.h / rows;
  const col = Math.floor(sx / w);
  const row = Math.floor(sy / h);
  return { row, col, box: { x: sheet.x + col * w, y: sheet.y + row * h, w, h } };
}

/** ``"4x5"`` → 4 columns, 5 rows (as DICOM Image Display Format ``STANDARD\C,R``); more if the cells say so. */
export function grid(layout: string, cells: Array<{ row: number; col: number }>): { cols: number; rows: number } {
  const found = /^(\d+)\s*[x×,]\s*(\d+)$/i.exec(layout.trim());
  let cols = found ? Number(found[1]) : 1;
  let rows = found ? Number(found[2]) : 1;
  for (const cell of cells) {
    cols = Math.max(cols, cell.col + 1);
    rows = Math.max(rows, cell.row + 1);
  }
  return { cols: Math.max(1, cols), rows: Math.max(1, rows) };
}

interface Pointer { x: number; y: number; x0: number; y0: number; t0: number }

/** Bind zoom and pan to ``stage``, transforming ``layer`` (same size as the stage, transform-origin 0 0). */
export class FilmZoom {
  view: View = { s: 1, x: 0, y: 0 };
  private sheet: Box = { x: 0, y: 0, w: 1, h: 1 };
  private stageSize = { w: 1, h: 1 };
  private pointers = new Map<number, Pointer>();
  private start: { view: View; mid: { x: number; y: number }; dist: number } | null = null;
  private lastTap: { t: number; x: number; y: number } | null = null;
  private zoomedCell: string | null = null;

  constructor(private stage: HTMLElement, private layer: HTMLElement, private image: { w: number; h: number },
    private layout: { cols: number; rows: number }) {
    stage.addEventListener('pointerdown', (e) => this.down(e));
    stage.addEventListener('pointermove', (e) => this.move(e));
    stage.addEventListener('pointerup', (e) => this.up(e));
    stage.addEventListener('pointercancel', (e) => this.up(e, true));
    stage.addEventListener('wheel', (e) => {
      e.preventDefault();
      const p = this.local(e);
      this.apply(zoomAt(this.view, this.view.s * Math.exp(-e.deltaY / 400), p.x, p.y));
    }, { passive: false });
    this.measure();
  }

  /** Re-read the stage size (after a resize or rotation) and go back to the whole sheet. */
  measure(): void {
    const rect = this.stage.getBoundingClientRect();
    this.stageSize = { w: rect.width || 1, h: rect.height || 1 };
    this.sheet = fit(this.stageSize.w, this.stageSize.h, this.image.w, this.image.h);
    this.reset();
  }

  reset(): void {
    this.zoomedCell = null;
    this.apply({ s: 1, x: 0, y: 0 });
  }

  get zoomed(): boolean {
    return this.view.s > 1.01;
  }

  /** The sheet's box at scale 1 (where the image is drawn inside the layer). */
  get sheetBox(): Box {
    return this.sheet;
  }

  private apply(next: View): void {
    this.view = clamp(next, this.stageSize, this.sheet);
    this.layer.style.transform = `translate(${this.view.x}px, ${this.view.y}px) scale(${this.view.s})`;
    this.stage.dataset.scale = this.view.s.toFixed(3);
    this.stage.dataset.zoomed = String(this.zoomed);
    if (this.zoomedCell && this.zoomed) this.stage.dataset.cell = this.zoomedCell;
    else delete this.stage.dataset.cell;
  }

  private local(e: { clientX: number; clientY: number }): { x: number; y: number } {
    const rect = this.stage.getBoundingClientRect();
    return { x: e.clientX - rect.left, y: e.clientY - rect.top };
  }

  private down(e: PointerEvent): void {
    const p = this.local(e);
    this.stage.setPointerCapture?.(e.pointerId);
    this.pointers.set(e.pointerId, { ...p, x0: p.x, y0: p.y, t0: e.timeStamp });
    this.begin();
  }

  private begin(): void {
    const points = [...this.pointers.values()];
    if (points.length === 0) return void (this.start = null);
    const mid = points.length >= 2 ? { x: (points[0].x + points[1].x) / 2, y: (points[0].y + points[1].y) / 2 } : points[0];
    const dist = points.length >= 2 ? Math.hypot(points[0].x - points[1].x, points[0].y - points[1].y) : 0;
    this.start = { view: { ...this.view }, mid: { ...mid }, dist };
  }

  private move(e: PointerEvent): void {
    const pointer = this.pointers.get(e.pointerId);
    if (!pointer || !this.start) return;
    Object.assign(pointer, this.local(e));
    const points = [...this.pointers.values()];
    if (points.length >= 2 && this.start.dist > 0) {
      const mid = { x: (points[0].x + points[1].x) / 2, y: (points[0].y + points[1].y) / 2 };
      const dist = Math.hypot(points[0].x - points[1].x, points[0].y - points[1].y);
      const scaled = zoomAt(this.start.view, this.start.view.s * (dist / this.start.dist), this.start.mid.x, this.start.mid.y);
      this.zoomedCell = null;
      this.apply({ ...scaled, x: scaled.x + mid.x - this.start.mid.x, y: scaled.y + mid.y - this.start.mid.y });
    } else if (points.length === 1 && this.zoomed) {
      this.apply({ ...this.start.view, x: this.start.view.x + pointer.x - this.start.mid.x,
        y: this.start.view.y + pointer.y - this.start.mid.y });
    }
  }

  private up(e: PointerEvent, cancelled = false): void {
    const pointer = this.pointers.get(e.pointerId);
    const single = this.pointers.size === 1;
    this.pointers.delete(e.pointerId);
    this.begin(); // the fingers left continue from here
    if (!pointer || cancelled || !single) return;
    const tap = e.timeStamp - pointer.t0 < TAP_MS && Math.hypot(pointer.x - pointer.x0, pointer.y - pointer.y0) < TAP_SLOP;
    if (!tap) return void (this.lastTap = null);
    const last = this.lastTap;
    if (last && e.timeStamp - last.t < DOUBLE_MS && Math.hypot(pointer.x - last.x, pointer.y - last.y) < TAP_SLOP * 2) {
      this.lastTap = null;
      this.doubleTap(pointer.x, pointer.y);
    } else {
      this.lastTap = { t: e.timeStamp, x: pointer.x, y: pointer.y };
    }
  }

  /** Double tap: the tapped cell fills the stage; when zoomed, back to the whole sheet. */
  doubleTap(x: number, y: number): void {
    if (this.zoomed) return this.reset();
    const cell = cellAt(this.view, this.sheet, this.layout.cols, this.layout.rows, x, y);
    if (!cell) return;
    this.zoomedCell = `${cell.row},${cell.col}`;
    this.apply(zoomToBox(cell.box, this.stageSize));
  }
}
