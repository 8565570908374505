"""Viewer annotations (VW-5): each user's measurements, text, drawings and key images of a study, and their DICOM SR.

No web framework here: ``store`` keeps the documents, ``sr`` turns one into a Comprehensive SR.
"""
