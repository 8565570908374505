// Annotations (VW-5): text, arrow and freehand tools, eraser and Delete-key deletion, key images, a side panel
// listing both, automatic saving of the user's own annotations per study (debounced PUT with version) and
// their restoration on reload, and the DICOM SR export.

import { eventTarget } from '@cornerstonejs/core';
import {
  ArrowAnnotateTool, EraserTool, Enums as ToolEnums, LabelTool, LengthTool, PlanarFreehandROITool, addTool,
  annotation as csAnnotation, type Types as ToolTypes,
} from '@cornerstonejs/tools';
import { ApiError } from '../../api/http';
import { el } from '../../dom';
import type { Feature, ViewerContext } from '../context';
import { type AnnotationDocument, type AnnotationItem, type KeyImage, fetchAnnotations, fetchSr, saveAnnotations } from './api';
import './annotations.css';
import './messages';
import { renderPanel } from './panel';
import { collect, keyImageOf, parseImageId, restore, sameKey } from './serialize';
import { askText } from './textDialog';

const SAVE_DELAY_MS = 700;
const EVENTS = [
  ToolEnums.Events.ANNOTATION_ADDED, ToolEnums.Events.ANNOTATION_MODIFIED, ToolEnums.Events.ANNOTATION_REMOVED,
  ToolEnums.Events.ANNOTATION_COMPLETED,
];

/** What tests (and other features) can see: the saving state and the key images. */
export interface AnnotationsHandle {
  /** This study's annotations as they are now in Cornerstone's state (serialised as they would be saved). */
  annotations(): AnnotationItem[];
  keyImages(): KeyImage[];
  /** UIDs of the selected annotations (what Delete removes). */
  selected(): string[];
  version(): number;
  /** Resolves when no save is pending or running. */
  settled(): Promise<void>;
  saveNow(): Promise<void>;
}

function registerTools(ctx: ViewerContext): void {
  const textConfig = {
    getTextCallback: (done: (text: string | null) => void) => void askText().then(done),
    changeTextCallback: (data: { data?: { label?: string; text?: string } }, _details: unknown, done: (text: string | null) => void) =>
      void askText(data?.data?.label ?? data?.data?.text ?? '').then(done),
  };
  const tools: Array<[{ toolName: string } & Parameters<typeof addTool>[0], Record<string, unknown>]> = [
    [ArrowAnnotateTool, textConfig], [LabelTool, textConfig], [PlanarFreehandROITool, {}], [EraserTool, {}],
    [LengthTool, {}], // also the measurement feature's; registered here too so annotations never depend on it
  ];
  for (const [tool, configuration] of tools) {
    addTool(tool); // idempotent
    if (!ctx.stackTools.hasTool(tool.toolName)) ctx.stackTools.addTool(tool.toolName, configuration);
    else if (Object.keys(configuration).length) ctx.stackTools.setToolConfiguration(tool.toolName, configuration);
    ctx.stackTools.setToolPassive(tool.toolName); // drawn annotations stay editable by their handles
  }
}

export const annotationsFeature: Feature = {
  id: 'annotations',
  async install(ctx) {
    registerTools(ctx);
    const study = ctx.study;
    let keyImages: KeyImage[] = [];
    let version = 0;
    let restoring = false;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let running: Promise<void> = Promise.resolve();
    let dirty = false;
    const panel = ctx.sidePanel('annotations', 'annot.panel');

    const render = () => {
      ctx.engine.render();
      refreshPanel();
    };
    const refreshPanel = () => renderPanel(panel, ctx, collect(study), keyImages, {
      onDelete: (uid) => { csAnnotation.state.removeAnnotation(uid); render(); },
    });
    const keyButtonState = () => {
      const current = keyImageOf(study, ctx.stackViewport()?.getCurrentImageId());
      keyButton.classList.toggle('yy-pressed', !!current && keyImages.some((k) => sameKey(k, current)));
    };

    const save = async (): Promise<void> => {
      dirty = false;
      const doc: AnnotationDocument = { version, annotations: collect(study), key_images: keyImages };
      try {
        version = (await saveAnnotations(study.uid, doc)).version;
      } catch (error) {
        if (error instanceof ApiError && error.status === 409) {
          // Another window saved meanwhile: this window's view is what the user sees, so it wins (and says so).
          version = (await fetchAnnotations(study.uid)).version;
          ctx.notify('annot.conflict', {}, 'warning');
          version = (await saveAnnotations(study.uid, { ...doc, version })).version;
        } else {
          ctx.notify('annot.saveFailed', { detail: (error as Error).message }, 'error');
        }
      }
    };
    const schedule = () => {
      if (restoring) return;
      dirty = true;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        timer = null;
        running = running.then(save);
      }, SAVE_DELAY_MS);
      refreshPanel();
    };
    const handle: AnnotationsHandle = {
      annotations: () => collect(study),
      keyImages: () => keyImages,
      selected: () => csAnnotation.selection.getAnnotationsSelected() ?? [],
      version: () => version,
      async settled() {
        while (timer || dirty) {
          await new Promise((r) => setTimeout(r, 50));
          await running;
        }
        await running;
      },
      async saveNow() {
        if (timer) clearTimeout(timer);
        timer = null;
        running = running.then(save);
        await running;
      },
    };
    (window as unknown as { yunyingAnnotations: AnnotationsHandle }).yunyingAnnotations = handle;

    for (const name of EVENTS) {
      eventTarget.addEventListener(name, ((event: CustomEvent<{ annotation?: ToolTypes.Annotation }>) => {
        const ref = parseImageId(event.detail?.annotation?.metadata?.referencedImageId);
        if (ref?.studyUid === study.uid) schedule();
      }) as EventListener);
    }

    // toolbar
    const tools: Array<[string, string, string]> = [
      ['arrow', ArrowAnnotateTool.toolName, 'annot.arrow'], ['text', LabelTool.toolName, 'annot.text'],
      ['freehand', PlanarFreehandROITool.toolName, 'annot.freehand'], ['eraser', EraserTool.toolName, 'annot.eraser'],
    ];
    for (const [id, toolName, label] of tools) {
      ctx.addButton({ id: `annot-${id}`, label, title: `${label}.title`, group: 'group.annotate', radio: 'primary',
        onClick: () => ctx.setPrimaryTool(toolName) });
    }
    ctx.addButton({ id: 'annot-delete', label: 'annot.deleteSelected', title: 'annot.deleteSelected.title', group: 'group.annotate',
      shortcut: 'Delete', onClick: () => {
        const selected = csAnnotation.selection.getAnnotationsSelected() ?? [];
        for (const uid of selected) csAnnotation.state.removeAnnotation(uid);
        if (selected.length) render();
      } });
    const keyButton = ctx.addButton({ id: 'annot-key-image', label: 'annot.keyImage', title: 'annot.keyImage.title',
      group: 'group.annotate', shortcut: 'x', onClick: () => {
        const current = keyImageOf(study, ctx.stackViewport()?.getCurrentImageId());
        if (!current) {
          ctx.notify('annot.noImage', {}, 'warning');
          return;
        }
        keyImages = keyImages.some((k) => sameKey(k, current)) ? keyImages.filter((k) => !sameKey(k, current)) : [...keyImages, current];
        keyButtonState();
        schedule();
      } });
    ctx.addButton({ id: 'annot-export-sr', label: 'annot.exportSr', title: 'annot.exportSr.title', group: 'group.export',
      onClick: async () => {
        await handle.settled(); // export what the user sees
        try {
          const blob = await fetchSr(study.uid);
          const url = URL.createObjectURL(blob);
          const link = el('a', { href: url, download: `annotations-${study.uid}.dcm`, class: 'yy-hidden' });
          document.body.append(link);
          link.click();
          link.remove();
          setTimeout(() => URL.revokeObjectURL(url), 10_000);
        } catch (error) {
          ctx.notify('annot.exportFailed', { detail: (error as Error).message }, 'error');
        }
      } });
    ctx.on('image-changed', keyButtonState);
    ctx.on('active-changed', keyButtonState);
    ctx.on('locale-changed', refreshPanel);

    // load the user's saved document
    try {
      const doc = await fetchAnnotations(study.uid);
      version = doc.version;
      keyImages = doc.key_images;
      restoring = true;
      try {
        restore(doc.annotations, ctx.activeSlot().element);
      } finally {
        restoring = false;
      }
      ctx.engine.render();
    } catch (error) {
      ctx.notify('annot.loadFailed', { detail: (error as Error).message }, 'error');
    }
    keyButtonState();
    refreshPanel();
  },
};

