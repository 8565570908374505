// The study for the Cornerstone viewers: the model of studyModel.ts with Cornerstone image ids (wadors: …/frames/N)
// whose metadata is registered with the loader.

import { wadors } from '@cornerstonejs/dicom-image-loader';
import { ApiError } from '../api/http';
import { DICOMWEB, studyMetadata } from '../api/dicomweb';
import { buildStudy } from './studyModel';
import type { Study } from './studyModel';

export { sortInstances } from './studyModel';
export type { Instance, Series, Study } from './studyModel';

export function frameImageId(studyUid: string, seriesUid: string, sopUid: string, frame: number): string {
  return `wadors:${location.origin}${DICOMWEB}/studies/${studyUid}/series/${seriesUid}/instances/${sopUid}/frames/${frame}`;
}

export async function loadStudy(studyUid: string): Promise<Study> {
  const items = await studyMetadata(studyUid);
  // no content (204) is how the archive answers a study that is not there (or not visible): same as 404
  if (!items.length) throw new ApiError(404, 'study not found');
  return buildStudy(studyUid, items, (seriesUid, instance) => {
    const imageIds: string[] = [];
    for (let frame = 1; frame <= instance.frames; frame++) {
      const imageId = frameImageId(studyUid, seriesUid, instance.sopInstanceUid, frame);
      wadors.metaDataManager.add(imageId, instance.metadata as never);
      imageIds.push(imageId);
    }
    return imageIds;
  });
}
