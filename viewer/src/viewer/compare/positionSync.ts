// Scrolling by position: when one viewport shows a new image, the other stacks of the same orientation jump
// to their image nearest in patient position along the slice normal. Two studies have different frames of
// reference, so positions are compared in patient coordinates (the scanner's table-based position), plus a
// per-viewport offset the user sets with "link at current position" when the patient lay differently.

import { metaData } from '@cornerstonejs/core';
import type { Slot, ViewerContext } from '../context';

interface Plane {
  normal: number[];
  along: number;
}

function plane(imageId: string): Plane | null {
  const module = metaData.get('imagePlaneModule', imageId) as
    { imagePositionPatient?: number[]; rowCosines?: number[]; columnCosines?: number[] } | undefined;
  const position = module?.imagePositionPatient;
  const row = module?.rowCosines;
  const column = module?.columnCosines;
  if (!position || !row || !column) return null;
  const normal = [row[1] * column[2] - row[2] * column[1], row[2] * column[0] - row[0] * column[2], row[0] * column[1] - row[1] * column[0]];
  return { normal, along: position[0] * normal[0] + position[1] * normal[1] + position[2] * normal[2] };
}

function parallel(a: number[], b: number[]): boolean {
  return Math.abs(a[0] * b[0] + a[1] * b[1] + a[2] * b[2]) > 0.99;
}

export class PositionSync {
  enabled = false;
  /** Per viewport: subtracted from its positions before comparing (0 = patient coordinates as stored). */
  private offsets = new Map<string, number>();
  /** Image index each viewport was sent to by us: its own image-changed event then does not echo back. */
  private pending = new Map<string, number>();

  constructor(private readonly ctx: ViewerContext) {
    ctx.on('image-changed', (slot) => { if (slot) this.follow(slot); });
    ctx.on('series-shown', (slot) => { if (slot) this.offsets.delete(slot.id); });
  }

  /** The current image's position along the normal, corrected by the viewport's offset. */
  private current(slot: Slot): Plane | null {
    const viewport = this.ctx.stackViewport(slot);
    const imageId = viewport?.getCurrentImageId();
    const found = imageId ? plane(imageId) : null;
    return found ? { normal: found.normal, along: found.along - (this.offsets.get(slot.id) ?? 0) } : null;
  }

  /** Make the images shown now count as the same position ("link at current position"). */
  linkHere(): void {
    const source = this.current(this.ctx.activeSlot());
    if (!source) return;
    for (const slot of this.ctx.slots()) {
      const imageId = this.ctx.stackViewport(slot)?.getCurrentImageId();
      const own = imageId ? plane(imageId) : null;
      if (own && parallel(own.normal, source.normal)) this.offsets.set(slot.id, own.along - source.along);
    }
  }

  private follow(source: Slot): void {
    const viewport = this.ctx.stackViewport(source);
    if (!viewport) return;
    const expected = this.pending.get(source.id);
    if (expected !== undefined) {
      this.pending.delete(source.id);
      if (expected === viewport.getCurrentImageIdIndex()) return;
    }
    if (!this.enabled) return;
    const from = this.current(source);
    if (!from) return;
    for (const target of this.ctx.slots()) {
      if (target === source) continue;
      const stack = this.ctx.stackViewport(target);
      if (!stack) continue;
      const offset = this.offsets.get(target.id) ?? 0;
      let best = -1;
      let distance = Infinity;
      stack.getImageIds().forEach((imageId, index) => {
        const p = plane(imageId);
        if (!p || !parallel(p.normal, from.normal)) return;
        const d = Math.abs(p.along - offset - from.along);
        if (d < distance) { distance = d; best = index; }
      });
      if (best < 0 || best === stack.getCurrentImageIdIndex()) continue;
      this.pending.set(target.id, best);
      void stack.setImageIdIndex(best);
    }
  }
}
