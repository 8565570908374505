"""An Encapsulated PDF Storage instance made with pydicom (a hospital's PDF report as DICOM)."""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"


def pdf_instance(path: Path, accession: str, study_uid: str | None = None, patient_id: str = "PDF-PAT-1") -> bytes:
    """Write the instance to ``path`` around a small PDF of odd length (DICOM pads it); return the PDF bytes."""
    pdf = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
           b"trailer<</Root 1 0 R>>\n%%EOF\n")
    if len(pdf) % 2 == 0:
        pdf += b"\n"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ENCAPSULATED_PDF
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid or generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID, ds.AccessionNumber = "Pdf^Report", patient_id, accession
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "DOC", 99, 1
    ds.StudyDate, ds.ContentDate, ds.ContentTime = "20261122", "20261122", "101500"
    ds.DocumentTitle, ds.BurnedInAnnotation = "CT chest report", "YES"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = pdf
    ds.EncapsulatedDocumentLength = len(pdf)
    ds.save_as(path, enforce_file_format=True)
    return pdf
