"""DICOM parsing, matching, JSON, transcoding and rendering (framework-free)."""

from yunying.dicom.codecs import prefer_charls_for_jpeg_ls

prefer_charls_for_jpeg_ls()
