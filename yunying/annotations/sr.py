"""A user's annotations of a study as a DICOM Comprehensive SR (highdicom), built on demand, never stored.

The document tree (a Comprehensive SR, not a TID 1500 report: the viewer's free text and drawings
do not fit that template)::

    CONTAINER  (LN 18748-4) Diagnostic imaging report
      CONTAINER  (DCM 121070) Findings
        NUM  Length / Area / Angle / Mean …   value + UCUM unit
          SCOORD  (DCM 111030) Image Region    INFERRED FROM  — the drawn points, image coordinates
            IMAGE  (DCM 121112) Source of Measurement  SELECTED FROM  — SOP Instance UID + frame
        TEXT  (DCM 121071) Finding              the annotation's text, with the same SCOORD/IMAGE children
        SCOORD (DCM 111030) Image Region        a drawing without text or measurement (arrow, freehand)
      CONTAINER  (DCM 121180) Key Images
        IMAGE  (DCM 121180) Key Images           one per marked image (+ frame)

Every referenced instance is listed in the Current Requested Procedure Evidence Sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from yunying import __version__
from yunying.annotations.store import Document, referenced_instances

REPORT = Code("18748-4", "LN", "Diagnostic imaging report")
FINDINGS = Code("121070", "DCM", "Findings")
FINDING = Code("121071", "DCM", "Finding")
KEY_IMAGES = Code("121180", "DCM", "Key Images")
IMAGE_REGION = Code("111030", "DCM", "Image Region")
SOURCE = Code("121112", "DCM", "Source of Measurement")

# measurement name (as the viewer sends it, lower case) → concept
MEASURES: dict[str, Code] = {
    "length": codes.SCT.Length, "area": codes.SCT.Area, "angle": codes.SCT.Angle, "mean": codes.SCT.Mean,
    "stddev": codes.SCT.StandardDeviation, "max": codes.SCT.Maximum, "min": codes.SCT.Minimum,
    "diameter": codes.SCT.Diameter, "radius": codes.SCT.Radius, "perimeter": codes.SCT.Perimeter,
    "volume": codes.SCT.Volume,
}
# the viewer's unit text → UCUM
UNITS: dict[str, Code] = {
    "mm": Code("mm", "UCUM", "millimeter"), "mm2": Code("mm2", "UCUM", "square millimeter"),
    "mm²": Code("mm2", "UCUM", "square millimeter"), "cm": Code("cm", "UCUM", "centimeter"),
    "cm2": Code("cm2", "UCUM", "square centimeter"), "cm²": Code("cm2", "UCUM", "square centimeter"),
    "mm3": Code("mm3", "UCUM", "cubic millimeter"), "deg": Code("deg", "UCUM", "degree"),
    "°": Code("deg", "UCUM", "degree"), "hu": Code("[hnsf'U]", "UCUM", "Hounsfield unit"),
    "px": Code("{pixel}", "UCUM", "pixel"), "px2": Code("{pixel}2", "UCUM", "square pixel"),
}
NO_UNIT = Code("1", "UCUM", "no units")


@dataclass(frozen=True)
class Reference:
    """What the SR needs to know of a referenced instance (from the index)."""

    sop_instance_uid: str
    sop_class_uid: str
    series_instance_uid: str


def _unit(text: str) -> Code:
    return UNITS.get(text.strip().lower(), NO_UNIT)


def _region(annotation: dict[str, Any], refs: dict[str, Reference]) -> hd.sr.ScoordContentItem | None:
    """The drawn points as an image region with its source image, or None without a usable reference."""
    ref = refs.get(str(annotation.get("sop_instance_uid") or ""))
    points = annotation.get("points") or []
    if ref is None or not points:
        return None
    data = np.array([[float(p[0]), float(p[1])] for p in points], dtype=np.float32)
    graphic = hd.sr.GraphicTypeValues.POINT if len(data) == 1 else hd.sr.GraphicTypeValues.POLYLINE
    region = hd.sr.ScoordContentItem(name=IMAGE_REGION, graphic_type=graphic, graphic_data=data if len(data) > 1 else data[0],
                                     relationship_type=hd.sr.RelationshipTypeValues.INFERRED_FROM)
    frame = annotation.get("frame")
    region.ContentSequence = hd.sr.ContentSequence([hd.sr.ImageContentItem(
        name=SOURCE, referenced_sop_class_uid=ref.sop_class_uid, referenced_sop_instance_uid=ref.sop_instance_uid,
        referenced_frame_numbers=frame if isinstance(frame, int) else None,
        relationship_type=hd.sr.RelationshipTypeValues.SELECTED_FROM)])
    return region


def _with_region(item: hd.sr.ContentItem, region: hd.sr.ScoordContentItem | None) -> hd.sr.ContentItem:
    if region is not None:
        item.ContentSequence = hd.sr.ContentSequence([region])
    return item


def _findings(annotations: list[dict[str, Any]], refs: dict[str, Reference]) -> list[hd.sr.ContentItem]:
    contains = hd.sr.RelationshipTypeValues.CONTAINS
    items: list[hd.sr.ContentItem] = []
    for annotation in annotations:
        measured = False
        for m in annotation.get("measurements") or []:
            concept = MEASURES.get(str(m.get("name", "")).lower())
            value = m.get("value")
            if concept is None or not isinstance(value, int | float):
                continue
            items.append(_with_region(hd.sr.NumContentItem(name=concept, value=float(value), unit=_unit(str(m.get("unit", ""))),
                                                           relationship_type=contains), _region(annotation, refs)))
            measured = True
        text = annotation.get("text")
        if isinstance(text, str) and text.strip():
            items.append(_with_region(hd.sr.TextContentItem(name=FINDING, value=text.strip()[:1024], relationship_type=contains),
                                      _region(annotation, refs)))
        elif not measured:
            region = _region(annotation, refs)
            if region is not None:
                region.RelationshipType = contains.value
                items.append(region)
    return items


_PATIENT_STUDY_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                        "ReferringPhysicianName", "StudyID", "AccessionNumber")


def _evidence(first: Dataset, refs: Sequence[Reference]) -> list[Dataset]:
    """``first`` (a real instance of the study: patient and study attributes come from it) plus one stub per reference.

    Only the identifying patient/study attributes of ``first`` are taken, Type 2 ones empty when it lacks them (an
    encapsulated PDF report, say, often has no birth date: highdicom needs the attributes present)."""
    head = Dataset()
    for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        setattr(head, keyword, getattr(first, keyword))
    for keyword in _PATIENT_STUDY_TYPE2:
        setattr(head, keyword, first.get(keyword, ""))
    if "SpecificCharacterSet" in first:
        head.SpecificCharacterSet = first.SpecificCharacterSet
    first = head
    evidence = [first]
    for ref in refs:
        if ref.sop_instance_uid == first.SOPInstanceUID:
            continue
        stub = Dataset()
        stub.StudyInstanceUID = first.StudyInstanceUID
        stub.SeriesInstanceUID, stub.SOPInstanceUID, stub.SOPClassUID = (ref.series_instance_uid, ref.sop_instance_uid,
                                                                         ref.sop_class_uid)
        evidence.append(stub)
    return evidence


def build_sr(document: Document, instances: dict[str, Reference], first: Dataset,
             institution_name: str | None = None) -> hd.sr.ComprehensiveSR:
    """The SR of ``document``; ``instances`` are the study's (SOP UID → reference), ``first`` a dataset of one of them."""
    used = referenced_instances(document.annotations, document.key_images)
    refs = {uid: instances[uid] for uid in used if uid in instances}
    contains = hd.sr.RelationshipTypeValues.CONTAINS
    findings = hd.sr.ContainerContentItem(name=FINDINGS, relationship_type=contains)
    findings.ContentSequence = hd.sr.ContentSequence(_findings(document.annotations, refs))
    keys = hd.sr.ContainerContentItem(name=KEY_IMAGES, relationship_type=contains)
    keys.ContentSequence = hd.sr.ContentSequence([
        hd.sr.ImageContentItem(name=KEY_IMAGES, referenced_sop_class_uid=refs[k.sop_instance_uid].sop_class_uid,
                               referenced_sop_instance_uid=k.sop_instance_uid, referenced_frame_numbers=k.frame,
                               relationship_type=contains)
        for k in document.key_images if k.sop_instance_uid in refs])
    root = hd.sr.ContainerContentItem(name=REPORT, template_id=None)
    root.ContentSequence = hd.sr.ContentSequence([findings, keys])
    sr = hd.sr.ComprehensiveSR(
        evidence=_evidence(first, list(refs.values())), content=root, series_instance_uid=generate_uid(), series_number=990,
        sop_instance_uid=generate_uid(), instance_number=1, manufacturer="Yunying", institution_name=institution_name,
        series_description="Annotations", software_versions=__version__)
    return sr
