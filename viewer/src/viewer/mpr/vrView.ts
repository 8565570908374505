// Volume rendering: a VOLUME_3D viewport with Cornerstone's transfer-function presets, trackball
// rotation, zoom, pan, and cropping of the volume's extent by six clipping planes set from sliders.

import { Enums, type Types, type VolumeViewport3D } from '@cornerstonejs/core';
import {
  Enums as ToolEnums, PanTool, ToolGroupManager, TrackballRotateTool, ZoomTool, addTool, type Types as ToolTypes,
} from '@cornerstonejs/tools';
// vtk.js is Cornerstone core's own (pinned) dependency; its plane is what volume mappers clip with
import vtkPlane from '@kitware/vtk.js/Common/DataModel/Plane';
import { el } from '../../dom';
import type { Slot, ViewerContext } from '../context';
import { showVolume, takeOverSlot } from './volume';

const GROUP_ID = 'yy-vr';
const { MouseBindings } = ToolEnums;

/** i18n key suffix → Cornerstone preset name (CONSTANTS.VIEWPORT_PRESETS) */
export const VR_PRESETS: Array<[string, string]> = [
  ['bone', 'CT-Bone'], ['softTissue', 'CT-Soft-Tissue'], ['vessels', 'CT-Chest-Contrast-Enhanced'],
  ['aaa', 'CT-AAA'], ['lung', 'CT-Lung'], ['mip', 'CT-MIP'],
];
const AXES = ['x', 'y', 'z'] as const;

let group: ToolTypes.IToolGroup | null = null;
/** puts the crop sliders back to the full extent (a new volume starts uncropped) */
let resetSliders: () => void = () => undefined;
/** crop fractions per axis: [from, to] in 0..1 */
const crop: Array<[number, number]> = [[0, 1], [0, 1], [0, 1]];

function toolGroup(): ToolTypes.IToolGroup {
  if (group) return group;
  addTool(TrackballRotateTool);
  group = ToolGroupManager.createToolGroup(GROUP_ID)!;
  group.addTool(TrackballRotateTool.toolName);
  group.addTool(ZoomTool.toolName);
  group.addTool(PanTool.toolName);
  group.setToolActive(TrackballRotateTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  group.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  return group;
}

/**
 * Ray steps per voxel: a software WebGL (SwiftShader, no GPU: thin clients, virtual desktops) takes
 * seconds per full-quality frame, so there the rays sample four times coarser.
 */
let softwareRenderer: boolean | null = null;
function sampleDistanceMultiplier(): number {
  if (softwareRenderer === null) {
    const gl = document.createElement('canvas').getContext('webgl2');
    const info = gl?.getExtension('WEBGL_debug_renderer_info');
    const renderer = gl && info ? String(gl.getParameter(info.UNMASKED_RENDERER_WEBGL)) : '';
    softwareRenderer = /swiftshader|llvmpipe|software/i.test(renderer);
    gl?.getExtension('WEBGL_lose_context')?.loseContext();
  }
  return softwareRenderer ? 4 : 1;
}

export async function showVr(ctx: ViewerContext, slot: Slot, volumeId: string, preset: string): Promise<void> {
  takeOverSlot(ctx, slot, 'vr', 'mpr.volume', { type: Enums.ViewportType.VOLUME_3D });
  await showVolume(ctx, volumeId, [slot], toolGroup());
  crop.forEach((range) => { range[0] = 0; range[1] = 1; });
  resetSliders();
  vrViewport(ctx)?.setProperties({ sampleDistanceMultiplier: sampleDistanceMultiplier() });
  setPreset(ctx, preset);
}

export function vrViewport(ctx: ViewerContext): VolumeViewport3D | null {
  const slot = ctx.slots().find((s) => s.kind === 'vr');
  return slot ? (ctx.engine.getViewport(slot.id) as unknown as VolumeViewport3D) : null;
}

export function setPreset(ctx: ViewerContext, preset: string): void {
  const viewport = vrViewport(ctx);
  if (!viewport) return;
  viewport.setProperties({ preset });
  viewport.render();
}

/**
 * Crop planes on the volume mapper: exactly six (one per box face), because vtk.js's ray-cast shader
 * declares its clip-plane uniforms as arrays of six — a seventh and eighth plane index past them and
 * are silently dropped (in SwiftShader the head–feet planes then never clipped anything).
 *
 * The viewport re-aims the mapper's first two planes at the camera (its slab) whenever the camera turns;
 * it announces that with CLIPPING_PLANES_UPDATED right after, so the listener puts the crop faces back
 * before the next frame is drawn.
 */
const cropPlanes: vtkPlane[] = [];
const watchedElements = new WeakSet<HTMLElement>();

function cropBounds(actor: Types.VolumeActor): number[] {
  // world-axis box around the volume (the actor's bounds: the image data may live in a voxel manager)
  return actor.getBounds();
}

/** Writes the crop box faces into the six planes (x-min, x-max, y-min, y-max, z-min, z-max). */
function placeCropPlanes(bounds: number[]): void {
  AXES.forEach((_axis, a) => {
    const low = bounds[2 * a];
    const size = bounds[2 * a + 1] - low;
    ([0, 1] as const).forEach((end) => {
      const normal: [number, number, number] = [0, 0, 0];
      normal[a] = end ? -1 : 1;
      const origin: [number, number, number] = [0, 0, 0];
      origin[a] = low + size * crop[a][end];
      cropPlanes[2 * a + end].setNormal(normal);
      cropPlanes[2 * a + end].setOrigin(origin);
    });
  });
}

function isCropped(): boolean {
  return crop.some(([from, to]) => from > 0 || to < 1);
}

function watchCameraClipping(ctx: ViewerContext, viewport: VolumeViewport3D): void {
  if (watchedElements.has(viewport.element)) return;
  watchedElements.add(viewport.element);
  viewport.element.addEventListener(Enums.Events.CLIPPING_PLANES_UPDATED, () => {
    const current = vrViewport(ctx);
    const actor = current?.getDefaultActor()?.actor as Types.VolumeActor | undefined;
    if (actor && isCropped()) placeCropPlanes(cropBounds(actor));
  });
}

export function applyCrop(ctx: ViewerContext): void {
  const viewport = vrViewport(ctx);
  const actor = viewport?.getDefaultActor()?.actor as Types.VolumeActor | undefined;
  if (!viewport || !actor) return;
  watchCameraClipping(ctx, viewport);
  const mapper = actor.getMapper() as unknown as {
    removeAllClippingPlanes(): void; addClippingPlane(plane: vtkPlane): void; getClippingPlanes(): vtkPlane[];
  };
  if (cropPlanes.length === 0) for (let i = 0; i < 6; i++) cropPlanes.push(vtkPlane.newInstance());
  if (isCropped()) {
    placeCropPlanes(cropBounds(actor));
    // the same six plane objects stay on the mapper while the sliders move: the shader (built per plane
    // count) is compiled once when cropping starts, not on every slider step
    const current = mapper.getClippingPlanes();
    if (current.length !== 6 || current.some((plane, i) => plane !== cropPlanes[i])) {
      mapper.removeAllClippingPlanes();
      cropPlanes.forEach((plane) => mapper.addClippingPlane(plane));
    }
  } else {
    mapper.removeAllClippingPlanes();
  }
  viewport.render();
}

export function clearCrop(ctx: ViewerContext): void {
  crop.forEach((range) => { range[0] = 0; range[1] = 1; });
  applyCrop(ctx);
}

/** Preset selector and crop sliders. */
export function vrControls(ctx: ViewerContext, preset: { value: string }): HTMLElement {
  const select = el('select', { 'data-control': 'vr-preset' },
    ...VR_PRESETS.map(([key, name]) => el('option', { value: name, 'data-i18n': `mpr.preset.${key}` })));
  select.value = preset.value;
  select.addEventListener('change', () => {
    preset.value = select.value;
    setPreset(ctx, select.value);
  });
  const sliders: HTMLInputElement[] = [];
  const rows = AXES.map((axis, a) => {
    const make = (end: 0 | 1) => {
      const input = el('input', { type: 'range', min: 0, max: 100, step: 1, value: end * 100, 'data-control': `crop-${axis}-${end ? 'max' : 'min'}` });
      input.addEventListener('input', () => {
        crop[a][end] = Number(input.value) / 100;
        if (crop[a][0] > crop[a][1] - 0.01) crop[a][end] = end ? crop[a][0] + 0.01 : crop[a][1] - 0.01;
        applyCrop(ctx);
      });
      sliders.push(input);
      return input;
    };
    return el('fieldset', {}, el('legend', { 'data-i18n': `mpr.crop.${axis}` }),
      el('label', {}, el('span', { 'data-i18n': 'mpr.crop.min' }), make(0)),
      el('label', {}, el('span', { 'data-i18n': 'mpr.crop.max' }), make(1)));
  });
  resetSliders = () => sliders.forEach((s, i) => { s.value = String(i % 2 ? 100 : 0); });
  const reset = el('button', { type: 'button', class: 'yy-button', 'data-action': 'crop-reset', 'data-i18n': 'mpr.crop.reset' });
  reset.addEventListener('click', () => {
    resetSliders();
    clearCrop(ctx);
  });
  return el('div', { 'data-section': 'vr' },
    el('label', {}, el('span', { 'data-i18n': 'mpr.preset' }), select),
    el('div', { 'data-i18n': 'mpr.crop' }), ...rows, reset);
}
