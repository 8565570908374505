// The 2D reading tools (measurements, image manipulation, window presets, shortcut help) and the
// viewport overlays (corner text, orientation, scale bar, DICOM header), as one list for features.ts.
import type { Feature } from '../context';
import { headerFeature } from '../overlays/header';
import { viewportOverlayFeature } from '../overlays/viewportOverlay';
import { shortcutHelpFeature } from './help';
import { manipulationFeature } from './manipulation';
import { measurementsFeature } from './measurements';
import { presetsFeature } from './presets';

export const viewerToolsFeatures: Feature[] = [
  measurementsFeature, manipulationFeature, presetsFeature, viewportOverlayFeature, headerFeature, shortcutHelpFeature,
];
