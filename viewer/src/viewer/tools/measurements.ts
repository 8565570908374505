// Measurement tools (length, angles, ROIs with statistics, HU probe, cardiothoracic ratio) on the
// primary mouse button of the 2D stack tool group. Cornerstone computes the statistics (mean, SD,
// min/max in modality units — HU for CT) and labels units from the image calibration: 'mm' with
// Pixel Spacing, 'mm Proj' / 'mm ERMF' with only Imager Pixel Spacing, 'px' without any spacing.

import {
  AngleTool, CobbAngleTool, EllipticalROITool, LengthTool, PlanarFreehandROITool, ProbeTool, RectangleROITool, addTool,
} from '@cornerstonejs/tools';
import type { Feature, ViewerContext } from '../context';
import { CardiothoracicRatioTool } from './cardiothoracic';
import './messages';

interface Measurement {
  key: string;
  toolName: string;
  shortcut: string;
}

export const MEASUREMENTS: Measurement[] = [
  { key: 'length', toolName: LengthTool.toolName, shortcut: 'l' },
  { key: 'angle', toolName: AngleTool.toolName, shortcut: 'a' },
  { key: 'cobb', toolName: CobbAngleTool.toolName, shortcut: 'c' },
  { key: 'rectangle', toolName: RectangleROITool.toolName, shortcut: 'r' },
  { key: 'ellipse', toolName: EllipticalROITool.toolName, shortcut: 'e' },
  { key: 'freehand', toolName: PlanarFreehandROITool.toolName, shortcut: 'f' },
  { key: 'probe', toolName: ProbeTool.toolName, shortcut: 'b' },
  { key: 'ctr', toolName: CardiothoracicRatioTool.toolName, shortcut: 't' },
];

export const measurementsFeature: Feature = {
  id: 'measurements',
  install(ctx: ViewerContext) {
    for (const tool of [LengthTool, AngleTool, CobbAngleTool, RectangleROITool, EllipticalROITool, PlanarFreehandROITool,
      ProbeTool, CardiothoracicRatioTool]) {
      addTool(tool);
      // passive: existing annotations stay visible and editable whatever tool is on the mouse
      ctx.stackTools.addTool(tool.toolName);
      ctx.stackTools.setToolPassive(tool.toolName);
    }
    for (const { key, toolName, shortcut } of MEASUREMENTS) {
      ctx.addButton({
        id: `measure-${key}`, label: `measure.${key}`, title: `measure.${key}.title`, group: 'group.tools',
        radio: 'primary', shortcut, onClick: () => ctx.setPrimaryTool(toolName),
      });
    }
  },
};
