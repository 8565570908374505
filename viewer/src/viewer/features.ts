// The viewer's features, installed in this order (each adds its buttons, panels and event handlers).
import type { Feature } from './context';
import { annotationsFeature } from './annotations';
import { compareFeature } from './compare/compare';
import { exportFeature } from './export/export';
import { mprFeature } from './mpr';
import { prefetchFeature } from './prefetch';
import { viewerToolsFeatures } from './tools';

export const FEATURES: Feature[] = [
  prefetchFeature,
  ...viewerToolsFeatures,
  annotationsFeature,
  mprFeature,
  compareFeature,
  exportFeature,
];
