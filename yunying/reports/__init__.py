"""Diagnostic reports: stored, amended, linked to studies; from HL7 ORU, DICOM SR/PDF and the API."""
