"""Domain errors. Adapters (DIMSE, HTTP) map them to their own statuses."""

from __future__ import annotations


class YunyingError(Exception):
    """Base class of every error the domain raises on purpose."""


class InvalidDicom(YunyingError):
    """The input is not a DICOM object we can accept; the message says why."""


class NotFound(YunyingError):
    """The requested patient, study, series, instance or frame does not exist."""


class CorruptBlob(YunyingError):
    """A stored object no longer matches its recorded checksum."""


class CannotDecode(YunyingError):
    """The pixel data cannot be decoded (unsupported syntax or damaged codestream)."""


class NotAcceptable(YunyingError):
    """None of the requested representations can be produced."""
