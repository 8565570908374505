"""Exams of one sentinel patient (names, IDs, dates the anonymous views must never show)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pydicom
from PIL import Image
from pydicom.uid import generate_uid

from tests.support.data import ct_series

NAME = "ZHANGSAN^XIAOMING=张三^小明"
PATIENT_ID = "PID-73915"
BIRTH = "19800102"
# Every identifier of the sentinel patient, as a visitor of an anonymous share must never see it.
IDENTIFIERS = ("ZHANGSAN", "XIAOMING", "张三", "小明", PATIENT_ID, BIRTH, "1980-01-02")


@dataclass(frozen=True)
class Exam:
    study_uid: str
    accession: str
    path: Path


def make_exam(out: Path, accession: str, *, patient_id: str = PATIENT_ID, name: str = NAME,
              date: str = "20261120") -> Exam:
    """One real CT slice as a new study of the sentinel patient, its description naming the patient."""
    ds = pydicom.dcmread(ct_series()[0])
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = name, patient_id, BIRTH
    ds.AccessionNumber, ds.StudyDate = accession, date
    ds.StudyDescription = f"CT CHEST {name.split('^')[0]}"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{accession}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return Exam(str(ds.StudyInstanceUID), accession, path)


def png_data_url(size: int = 64) -> tuple[str, bytes]:
    buffer = BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(buffer, format="PNG")
    data = buffer.getvalue()
    return "data:image/png;base64," + base64.b64encode(data).decode(), data
