"""Which images a study's film shows, in which order, with which window (docs/cloudfilm.md "Films").

1. Key images first: those marked in the viewer (every user's, documents oldest first, each in its
   order), then those of Key Object Selection documents (in series / instance order).
2. Then every image series in Series Number order, instances by Instance Number, then slice position
   (multi-frame objects: every frame). Localizers / scouts and objects that are not images (SR, PDF,
   KOS, presentation states, SEG, RT dose …) are left out.
3. If more images remain than ``max_sheets`` sheets of the largest layout hold, the key images are kept
   and the rest of the room is shared among the series in proportion to their size (largest remainder,
   then one for a series left without any, taken from the largest share); each series is then evenly
   subsampled, first and last kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from io import BytesIO
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from yunying.annotations.store import study_key_images
from yunying.dicom.render import window_for
from yunying.film.layout import KEY_OBJECT_SELECTION, LOCALIZER_TYPES, NOT_IMAGES, Layout, choose_layout, layouts_for, preset
from yunying.index.models import Instance, Series
from yunying.storage.base import BlobStore, get_verified


@dataclass(frozen=True)
class FilmImage:
    """One printed frame."""

    series_uid: str
    sop_uid: str
    frame: int  # 1-based
    frames: int  # frames of the instance
    series_number: int | None
    instance_number: int | None
    modality: str
    blob_key: str
    checksum: str
    window: tuple[float, float] | None  # None: the image's VOI LUT, else its own value range ("voi")
    voi: str  # "window" | "preset" | "lut" | "auto"
    key: bool = False


@dataclass(frozen=True)
class Selection:
    images: list[FilmImage]
    layout: Layout
    modality: str
    available: int  # printable frames before subsampling


def _int(value: Any) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _position(ds: Dataset) -> float | None:
    """Distance along the slice normal (Image Position · normal), for ordering slices without numbers."""
    try:
        ipp = [float(v) for v in ds.ImagePositionPatient]
        iop = [float(v) for v in ds.ImageOrientationPatient]
    except (AttributeError, TypeError, ValueError):
        return None
    row, col = iop[:3], iop[3:]
    normal = (row[1] * col[2] - row[2] * col[1], row[2] * col[0] - row[0] * col[2], row[0] * col[1] - row[1] * col[0])
    return sum(p * n for p, n in zip(ipp, normal, strict=True))


def _values(value: Any) -> list[Any]:
    """A multi-valued element's values as a list (one value or none as well)."""
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, MultiValue | list | tuple) else [value]


def _is_localizer(ds: Dataset) -> bool:
    """Image Type value 3 (or later) names a localizer (CT LOCALIZER, MR/XA SCOUT …)."""
    values = [str(v).strip().upper() for v in _values(ds.get("ImageType"))]
    return bool(LOCALIZER_TYPES.intersection(values[2:]))


def _window(ds: Dataset, modality: str, body_part: str) -> tuple[tuple[float, float] | None, str]:
    own = window_for(ds)
    if own is not None:
        return own, "window"
    if ds.get("VOILUTSequence"):
        return None, "lut"
    chosen = preset(modality, body_part)
    return (chosen, "preset") if chosen is not None else (None, "auto")


@dataclass
class _Candidate:
    image: FilmImage
    order: tuple[Any, ...]


def _series_rows(session: Session, study_fk: int) -> list[tuple[Series, list[Instance]]]:
    series = session.scalars(select(Series).where(Series.study_fk == study_fk)).all()
    instances = session.scalars(select(Instance).where(Instance.study_fk == study_fk).order_by(Instance.id)).all()
    by_series: dict[int, list[Instance]] = {}
    for inst in instances:
        by_series.setdefault(inst.series_fk, []).append(inst)
    ordered = sorted(series, key=lambda s: (s.series_number is None, s.series_number or 0, s.id))
    return [(s, by_series.get(s.id, [])) for s in ordered]


def _header(blobs: BlobStore, inst: Instance) -> Dataset:
    return dcmread(BytesIO(get_verified(blobs, inst.blob_key, inst.checksum)), stop_before_pixels=True)


def _printable(series: Series, members: list[Instance], blobs: BlobStore) -> list[FilmImage]:
    """The series' printable frames in order, all with the window of its first printable image."""
    found: list[_Candidate] = []
    window: tuple[tuple[float, float] | None, str] | None = None
    for inst in members:
        if (not inst.renderable or inst.rows is None or inst.sop_class_uid in NOT_IMAGES
                or inst.sop_class_uid == KEY_OBJECT_SELECTION):
            continue
        ds = _header(blobs, inst)
        if _is_localizer(ds):
            continue
        modality = str(ds.get("Modality", "") or series.modality)
        if window is None:
            window = _window(ds, modality, str(ds.get("BodyPartExamined", "") or series.body_part))
        frames = max(inst.number_of_frames or 1, 1)
        position = _position(ds)
        for frame in range(1, frames + 1):
            image = FilmImage(series.series_uid, inst.sop_uid, frame, frames, series.series_number,
                              _int(ds.get("InstanceNumber")), modality, inst.blob_key, inst.checksum, window[0], window[1])
            number = image.instance_number
            found.append(_Candidate(image, (number is None, number or 0, position is None, position or 0.0,
                                            inst.sop_uid, frame)))
    return [c.image for c in sorted(found, key=lambda c: c.order)]


def _kos_references(ds: Dataset) -> Iterator[tuple[str, int | None]]:
    for item in ds.get("ContentSequence") or []:
        if str(item.get("ValueType", "")) == "IMAGE":
            for ref in item.get("ReferencedSOPSequence") or []:
                frames = _values(ref.get("ReferencedFrameNumber"))
                for frame in frames or [None]:
                    yield str(ref.ReferencedSOPInstanceUID), _int(frame)
        yield from _kos_references(item)


def _key_references(session: Session, study_fk: int, rows: list[tuple[Series, list[Instance]]],
                    blobs: BlobStore) -> list[tuple[str, int | None]]:
    refs = [(k.sop_instance_uid, k.frame) for k in study_key_images(session, study_fk)]
    for _series, members in rows:
        kos = [i for i in members if i.sop_class_uid == KEY_OBJECT_SELECTION]
        for inst in sorted(kos, key=lambda i: (i.instance_number is None, i.instance_number or 0, i.id)):
            ds = dcmread(BytesIO(get_verified(blobs, inst.blob_key, inst.checksum)))
            refs.extend(_kos_references(ds))
    return refs


def spread(total: int, count: int) -> list[int]:
    """``count`` indices of ``range(total)`` evenly spread, first and last included (middle for one)."""
    if count >= total:
        return list(range(total))
    if count == 1:
        return [(total - 1) // 2]
    return [round(i * (total - 1) / (count - 1)) for i in range(count)]


def share(sizes: list[int], room: int) -> list[int]:
    """How many images each series keeps when ``room`` is less than their sum: in proportion to the series'
    sizes (largest remainder), then at least one for every series while there is a series with more to give."""
    total = sum(sizes)
    if total <= room:
        return list(sizes)
    quotas = [room * size / total for size in sizes]
    counts = [min(size, math.floor(q)) for size, q in zip(sizes, quotas, strict=True)]
    by_remainder = sorted(range(len(sizes)), key=lambda i: (-(quotas[i] - math.floor(quotas[i])), i))
    while sum(counts) < room:
        grew = [i for i in by_remainder if counts[i] < sizes[i]][: room - sum(counts)]
        for i in grew:
            counts[i] += 1
    for i, size in enumerate(sizes):
        if counts[i] == 0 and size > 0:
            largest = max(range(len(counts)), key=lambda j: counts[j])
            if counts[largest] <= 1:
                break
            counts[largest] -= 1
            counts[i] = 1
    return counts


def select_images(session: Session, blobs: BlobStore, study_fk: int, max_sheets: int) -> Selection:
    """The film's images of study ``study_fk`` (see the module's rules) and its layout."""
    rows = _series_rows(session, study_fk)
    series_images = [images for series, members in rows if (images := _printable(series, members, blobs))]
    by_ref = {(i.sop_uid, i.frame): i for images in series_images for i in images}
    keys: list[FilmImage] = []
    for sop, frame in _key_references(session, study_fk, rows, blobs):
        image = by_ref.get((sop, frame or 1))
        if image is not None and all((k.sop_uid, k.frame) != (sop, image.frame) for k in keys):
            keys.append(replace(image, key=True))
    modality = _main_modality(series_images)
    available = len(keys) + sum(len(images) for images in series_images)
    layout = choose_layout(modality, available)
    room = max_sheets * layouts_for(modality)[-1].cells
    keys = keys[:room]
    counts = share([len(images) for images in series_images], room - len(keys))
    chosen = list(keys)
    for images, count in zip(series_images, counts, strict=True):
        chosen.extend(images[i] for i in spread(len(images), count))
    return Selection(chosen, layout, modality, available)


def _main_modality(series_images: list[list[FilmImage]]) -> str:
    counts: dict[str, int] = {}
    for images in series_images:
        counts[images[0].modality] = counts.get(images[0].modality, 0) + len(images)
    return max(counts, key=lambda m: counts[m]) if counts else ""
