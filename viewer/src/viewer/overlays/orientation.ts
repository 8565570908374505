// Orientation letters at the four edges of a 2D view, from the patient axes (DICOM LPS: +x Left,
// +y Posterior, +z Head). The screen directions are measured through the viewport itself
// (canvasToWorld of neighbouring canvas points), so rotation, flips and the camera are all included.

type Vector = [number, number, number];

const POSITIVE = ['L', 'P', 'H'];
const NEGATIVE = ['R', 'A', 'F'];

/** Letters of a direction, strongest axis first; axes contributing less than ~0.3 are left out (oblique views get two or three). */
export function orientationLetters(direction: Vector): string {
  const length = Math.hypot(...direction);
  if (!(length > 0)) return '';
  const unit = direction.map((c) => c / length);
  return [0, 1, 2]
    .filter((axis) => Math.abs(unit[axis]) > 0.3)
    .sort((a, b) => Math.abs(unit[b]) - Math.abs(unit[a]))
    .map((axis) => (unit[axis] > 0 ? POSITIVE[axis] : NEGATIVE[axis]))
    .join('');
}

export interface EdgeLetters { left: string; right: string; top: string; bottom: string }

/** Letters for the edges given the world directions of the screen's +x (right) and +y (down). */
export function edgeLetters(right: Vector, down: Vector): EdgeLetters {
  const negate = (v: Vector): Vector => [-v[0], -v[1], -v[2]];
  return {
    right: orientationLetters(right), left: orientationLetters(negate(right)),
    bottom: orientationLetters(down), top: orientationLetters(negate(down)),
  };
}
