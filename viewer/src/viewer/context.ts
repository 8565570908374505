// What the viewer shell offers to its features (tools, overlays, MPR, annotations, comparison …).
// A feature is installed once per viewer page and works through this context only.

import type { RenderingEngine, Types } from '@cornerstonejs/core';
import type { Types as ToolTypes } from '@cornerstonejs/tools';
import type { Series, Study } from './study';

export type ViewerEvent = 'viewports-changed' | 'series-shown' | 'image-changed' | 'active-changed' | 'locale-changed';

export interface Slot {
  /** Cornerstone viewport id ('vp-0' …) */
  id: string;
  element: HTMLDivElement;
  /** Container around the element: overlays and messages go here. */
  frame: HTMLDivElement;
  study: Study | null;
  series: Series | null;
  /** 'stack' for 2D stacks; features that take a slot over (MPR, VR) set their own kind. */
  kind: string;
}

export interface ToolbarButton {
  id: string;
  /** i18n keys */
  label: string;
  title?: string;
  group: string;
  shortcut?: string;
  /** A button of the same radio group stays pressed (the primary-button tool). */
  radio?: string;
  onClick: () => void | Promise<void>;
}

export interface ViewerContext {
  engine: RenderingEngine;
  /** Tool group of the 2D stack viewports ('yy-stack'). */
  stackTools: ToolTypes.IToolGroup;
  study: Study;
  slots(): Slot[];
  activeSlot(): Slot;
  setActiveSlot(slot: Slot): void;
  stackViewport(slot?: Slot): Types.IStackViewport | null;
  /** Show a series (of any loaded study) in a slot as a 2D stack. */
  showSeries(slot: Slot, series: Series, study?: Study, imageIndex?: number): Promise<void>;
  setLayout(rows: number, cols: number): Promise<void>;
  /** The tool bound to the primary mouse button of the stack tool group. */
  setPrimaryTool(toolName: string): void;
  primaryTool(): string;
  addButton(button: ToolbarButton): HTMLButtonElement;
  /** Press a radio button (keeps the toolbar in step with keyboard shortcuts). */
  pressButton(id: string): void;
  notify(key: string, params?: Record<string, string | number>, level?: 'info' | 'warning' | 'error'): void;
  on(event: ViewerEvent, handler: (slot?: Slot) => void): void;
  emit(event: ViewerEvent, slot?: Slot): void;
  /** Extra studies opened beside the current one (priors, comparison). */
  openStudy(uid: string): Promise<Study>;
  /** Panels at the right side (header viewer, key images, annotations list …). */
  sidePanel(id: string, titleKey: string): HTMLElement;
}

export interface Feature {
  id: string;
  install(ctx: ViewerContext): void | Promise<void>;
}
