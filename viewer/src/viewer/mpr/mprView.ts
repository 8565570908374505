// MPR: three orthographic views (axial, sagittal, coronal) of one volume, linked by the Crosshairs tool
// (reference lines, slice positions, oblique rotation by dragging the line-end handles), plus slab
// projections (MIP / MinIP / average over a thickness in mm) set from the side panel.

import { Enums, type Types } from '@cornerstonejs/core';
import {
  CrosshairsTool, Enums as ToolEnums, PanTool, StackScrollTool, ToolGroupManager, WindowLevelTool, ZoomTool,
  addTool, annotation, type Types as ToolTypes,
} from '@cornerstonejs/tools';
import { el } from '../../dom';
import type { Slot, ViewerContext } from '../context';
import { showVolume, takeOverSlot } from './volume';

const GROUP_ID = 'yy-mpr';
const { MouseBindings, KeyboardBindings } = ToolEnums;

export const MPR_VIEWS: Array<{ orientation: Enums.OrientationAxis; label: string; color: string }> = [
  { orientation: Enums.OrientationAxis.AXIAL, label: 'mpr.axial', color: 'rgb(230, 60, 60)' },
  { orientation: Enums.OrientationAxis.SAGITTAL, label: 'mpr.sagittal', color: 'rgb(240, 210, 40)' },
  { orientation: Enums.OrientationAxis.CORONAL, label: 'mpr.coronal', color: 'rgb(60, 200, 80)' },
];

export type Projection = 'composite' | 'mip' | 'minip' | 'average';
const BLEND: Record<Projection, Enums.BlendModes> = {
  composite: Enums.BlendModes.COMPOSITE,
  mip: Enums.BlendModes.MAXIMUM_INTENSITY_BLEND,
  minip: Enums.BlendModes.MINIMUM_INTENSITY_BLEND,
  average: Enums.BlendModes.AVERAGE_INTENSITY_BLEND,
};

let group: ToolTypes.IToolGroup | null = null;
/** viewport id → colour of the reference lines that view draws in the others */
const lineColors = new Map<string, string>();

function toolGroup(): ToolTypes.IToolGroup {
  if (group) return group;
  addTool(CrosshairsTool);
  group = ToolGroupManager.createToolGroup(GROUP_ID)!;
  for (const tool of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool]) group.addTool(tool.toolName);
  group.addTool(CrosshairsTool.toolName, {
    getReferenceLineColor: (viewportId: string) => lineColors.get(viewportId) ?? 'rgb(200, 200, 200)',
    getReferenceLineControllable: () => true,
    getReferenceLineDraggableRotatable: () => true,
    // slab thickness comes from the side panel, not from handles on the lines
    getReferenceLineSlabThicknessControlsOn: () => false,
  });
  group.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }] });
  group.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  group.setToolActive(ZoomTool.toolName, {
    bindings: [{ mouseButton: MouseBindings.Primary, modifierKey: KeyboardBindings.Shift }],
  });
  group.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  return group;
}

/** Turn three slots into the MPR views of the volume. */
export async function showMpr(ctx: ViewerContext, slots: Slot[], volumeId: string): Promise<void> {
  const tools = toolGroup();
  // re-activated after the viewports are in, so the crosshair centre is computed for this volume
  tools.setToolDisabled(CrosshairsTool.toolName);
  slots.forEach((slot, index) => {
    const view = MPR_VIEWS[index];
    lineColors.set(slot.id, view.color);
    takeOverSlot(ctx, slot, 'mpr', view.label, { type: Enums.ViewportType.ORTHOGRAPHIC, orientation: view.orientation });
  });
  await showVolume(ctx, volumeId, slots, tools);
  tools.setToolActive(CrosshairsTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
}

export function mprViewports(ctx: ViewerContext): Types.IVolumeViewport[] {
  return ctx.slots().filter((s) => s.kind === 'mpr')
    .map((s) => ctx.engine.getViewport(s.id) as Types.IVolumeViewport).filter(Boolean);
}

export function applyProjection(ctx: ViewerContext, projection: Projection, thicknessMm: number): void {
  const viewports = mprViewports(ctx);
  for (const viewport of viewports) {
    viewport.setBlendMode(BLEND[projection]);
    if (projection === 'composite' || !(thicknessMm > 0)) viewport.resetSlabThickness();
    else viewport.setSlabThickness(thicknessMm);
  }
  ctx.engine.renderViewports(viewports.map((v) => v.id));
}

/** Slab thickness + projection controls. */
export function projectionControls(ctx: ViewerContext): HTMLElement {
  const thickness = el('input', { type: 'number', min: 0, max: 200, step: 1, value: 10, 'data-control': 'slab-thickness' });
  const mode = el('select', { 'data-control': 'slab-mode' },
    ...(['composite', 'mip', 'minip', 'average'] as Projection[]).map((p) => el('option', { value: p, 'data-i18n': `mpr.blend.${p}` })));
  const apply = () => applyProjection(ctx, mode.value as Projection, Number(thickness.value));
  thickness.addEventListener('change', apply);
  mode.addEventListener('change', apply);
  return el('div', { 'data-section': 'mpr' },
    el('label', {}, el('span', { 'data-i18n': 'mpr.projection' }), mode),
    el('label', {}, el('span', { 'data-i18n': 'mpr.slab' }), thickness));
}

/** For tests and overlays: the crosshair centre and its rotation handles (world coordinates). */
export function crosshairState(ctx: ViewerContext): { center: number[] | null; rotationPoints: Record<string, Array<{ world: number[]; line: string }>> } {
  const tool = group?.getToolInstance(CrosshairsTool.toolName) as CrosshairsTool | undefined;
  const rotationPoints: Record<string, Array<{ world: number[]; line: string }>> = {};
  for (const slot of ctx.slots().filter((s) => s.kind === 'mpr')) {
    const found = annotation.state.getAnnotations(CrosshairsTool.toolName, slot.element) ?? [];
    const mine = found.find((a) => (a.data as { viewportId?: string }).viewportId === slot.id) ?? found[0];
    const points = ((mine?.data.handles as { rotationPoints?: unknown[][] } | undefined)?.rotationPoints ?? []);
    rotationPoints[slot.id] = points.map((p) => ({ world: Array.from(p[0] as number[]), line: (p[1] as { id: string }).id }));
  }
  return { center: tool?.toolCenter ? Array.from(tool.toolCenter) : null, rotationPoints };
}
