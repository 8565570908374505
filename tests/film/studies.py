"""Test studies for films, made from the shared real CT and CR data (new UIDs, a Chinese patient name)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.support.data import SHARED, ct_series

KOS = "1.2.840.10008.5.1.4.1.1.88.59"
PATIENT_NAME = "Wang^XiaoDong=王^小东"
PATIENT_ID = "FILM-PAT-001"


@dataclass
class FilmStudy:
    study_uid: str
    files: list[Path] = field(default_factory=list)
    by_number: dict[int, str] = field(default_factory=dict)  # instance number → SOP Instance UID (CT series)
    localizer: str = ""
    kos: str = ""


def _identify(ds: Dataset, study_uid: str, accession: str) -> None:
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.StudyInstanceUID, ds.AccessionNumber = study_uid, accession
    ds.PatientName, ds.PatientID, ds.PatientSex, ds.PatientBirthDate = PATIENT_NAME, PATIENT_ID, "M", "19600315"
    ds.StudyDate, ds.StudyDescription, ds.InstitutionName = "20261120", "CT ABDOMEN", "Modality Site"


def _save(ds: Dataset, path: Path) -> Path:
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)
    return path


def ct_study(out: Path, n: int, accession: str = "FILM-ACC-1", *, localizer: bool = False,
             kos_number: int | None = None) -> FilmStudy:
    """``n`` real CT slices (instance numbers 1..n) in a new study, written in reverse order; optionally a
    localizer (series 1) and a Key Object Selection referencing slice ``kos_number``."""
    out.mkdir(parents=True, exist_ok=True)
    study = FilmStudy(generate_uid())
    series_uid = generate_uid()
    for i, source in reversed(list(enumerate(ct_series()[:n], start=1))):
        ds = pydicom.dcmread(source)
        _identify(ds, study.study_uid, accession)
        ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.InstanceNumber, ds.SeriesNumber = series_uid, generate_uid(), i, 2
        study.files.append(_save(ds, out / f"ct-{i:03d}.dcm"))
        study.by_number[i] = str(ds.SOPInstanceUID)
    if localizer:
        ds = pydicom.dcmread(ct_series()[0])
        _identify(ds, study.study_uid, accession)
        ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.InstanceNumber, ds.SeriesNumber = generate_uid(), generate_uid(), 1, 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
        study.files.append(_save(ds, out / "localizer.dcm"))
        study.localizer = str(ds.SOPInstanceUID)
    if kos_number is not None:
        study.files.append(_kos(out / "kos.dcm", study, accession, study.by_number[kos_number]))
    return study


def _kos(path: Path, study: FilmStudy, accession: str, referenced: str) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID = KOS, ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    _identify(ds, study.study_uid, accession)
    ds.SOPClassUID, ds.SOPInstanceUID, ds.SeriesInstanceUID = KOS, generate_uid(), generate_uid()
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber, ds.ValueType = "KO", 90, 1, "CONTAINER"
    concept = Dataset()
    concept.CodeValue, concept.CodingSchemeDesignator, concept.CodeMeaning = "113000", "DCM", "Of Interest"
    ds.ConceptNameCodeSequence = Sequence([concept])
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", referenced
    item = Dataset()
    item.RelationshipType, item.ValueType, item.ReferencedSOPSequence = "CONTAINS", "IMAGE", Sequence([ref])
    ds.ContentSequence = Sequence([item])
    study.kos = str(ds.SOPInstanceUID)
    return _save(ds, path)


CR_FILES = [SHARED / "dicomdir_media_pcir" / "77654033" / name for name in ("CR1/6154", "CR2/6247", "CR3/6278")]
