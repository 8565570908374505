// Cardiothoracic ratio: Cornerstone has no such tool, but the Cobb angle tool already draws two
// independent lines. The first line is the widest cardiac diameter, the second the widest inner
// thoracic diameter; the ratio of their lengths (in world millimetres, so units cancel) is the CTR.

import { CobbAngleTool } from '@cornerstonejs/tools';
import type { Types as ToolTypes } from '@cornerstonejs/tools';
import { t } from '../../i18n';

type Point3 = [number, number, number];

export interface CtrStats {
  angle?: number;
  cardiacWidth?: number;
  thoracicWidth?: number;
  ratio?: number;
}

function distance(a: Point3, b: Point3): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

/** The ratio of the first line's length to the second's (null until both lines exist). */
export function cardiothoracicRatio(points: Point3[]): { cardiac: number; thoracic: number; ratio: number } | null {
  if (points.length < 4) return null;
  const cardiac = distance(points[0], points[1]);
  const thoracic = distance(points[2], points[3]);
  if (!(thoracic > 0)) return null;
  return { cardiac, thoracic, ratio: cardiac / thoracic };
}

function ctrTextLines(data: { cachedStats: Record<string, CtrStats> }, targetId: string): string[] | undefined {
  const stats = data.cachedStats[targetId];
  if (stats?.ratio === undefined) return undefined;
  return [t('measure.ctr.value', { ratio: stats.ratio.toFixed(2) })];
}

export class CardiothoracicRatioTool extends CobbAngleTool {
  static toolName = 'CardiothoracicRatio';

  constructor(toolProps: ToolTypes.PublicToolProps = {}) {
    super(toolProps, {
      supportedInteractionTypes: ['Mouse', 'Touch'],
      configuration: { shadow: true, preventHandleOutsideImage: false, getTextLines: ctrTextLines, showArcLines: false },
    });
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  _calculateCachedStats(annotation: any, renderingEngine: any, enabledElement: any): any {
    const cachedStats = super._calculateCachedStats(annotation, renderingEngine, enabledElement) as Record<string, CtrStats> | undefined;
    const widths = cardiothoracicRatio(annotation.data.handles.points as Point3[]);
    if (!cachedStats || !widths) return cachedStats;
    for (const stats of Object.values(cachedStats)) {
      stats.cardiacWidth = widths.cardiac;
      stats.thoracicWidth = widths.thoracic;
      stats.ratio = widths.ratio;
      // The base class draws its text box only when `angle` is truthy; the two CTR lines are usually
      // parallel (angle 0), so keep it non-zero for drawing while the ratio carries the meaning.
      stats.angle = stats.angle || 1e-6;
    }
    return cachedStats;
  }
}
