"""One way in for every source (DICOM SCP, C-MOVE/C-GET pulls, drop folder): check, class, spool."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from yunying.gateway.lanes import Lane, LaneClassifier
from yunying.gateway.spool import Accepted, Spool


class InvalidInstance(Exception):
    """Not a storable DICOM instance; the message says why (no patient data in it)."""


@dataclass(frozen=True)
class Received:
    sop_uid: str
    study_uid: str
    lane: Lane
    accepted: Accepted


def _uid(ds: Dataset, keyword: str) -> str:
    value = str(ds.get(keyword, "") or "").strip()
    if not value or not UID(value).is_valid:
        raise InvalidInstance(f"{keyword} missing or not a valid UID")
    return value


class Intake:
    """Validates an instance just enough to queue it, picks its lane, and spools it durably."""

    def __init__(self, spool: Spool, classifier: LaneClassifier, on_queued: Callable[[Lane], None] | None = None) -> None:
        self.spool = spool
        self.classifier = classifier
        self.on_queued = on_queued
        self._expected: dict[str, tuple[Lane, str]] = {}
        self._lock = threading.Lock()

    def expect(self, study_uid: str, lane: Lane, source: str) -> None:
        """A pull of ``study_uid`` is under way: its instances arrive over the SCP in ``lane``."""
        with self._lock:
            self._expected[study_uid] = (lane, source)

    def done_expecting(self, study_uid: str) -> None:
        with self._lock:
            self._expected.pop(study_uid, None)

    def accept(self, data: bytes, source: str, *, lane: Lane | None = None, sop_uid_expected: str | None = None) -> Received:
        """Spool ``data`` (DICOM Part 10 bytes). Raises InvalidInstance or SpoolFull; never drops silently."""
        try:
            ds = dcmread(BytesIO(data), stop_before_pixels=True)
        except (InvalidDicomError, EOFError, ValueError, KeyError, OSError) as exc:
            raise InvalidInstance(f"not a readable DICOM file ({type(exc).__name__})") from exc
        except Exception as exc:
            raise InvalidInstance(f"not a readable DICOM file ({type(exc).__name__})") from exc
        if "TransferSyntaxUID" not in getattr(ds, "file_meta", Dataset()):
            raise InvalidInstance("no file meta information (transfer syntax unknown)")
        sop_uid = _uid(ds, "SOPInstanceUID")
        study_uid = _uid(ds, "StudyInstanceUID")
        series_uid = _uid(ds, "SeriesInstanceUID")
        _uid(ds, "SOPClassUID")
        if sop_uid_expected is not None and sop_uid_expected != sop_uid:
            raise InvalidInstance("SOP Instance UID in the data set differs from the command's")
        with self._lock:
            expected = self._expected.get(study_uid)
        if lane is None and expected is not None:  # a pull asked for this study: its lane, unless a rule says more urgent
            lane, source = min(self.classifier.classify(ds, default=expected[0]), expected[0]), expected[1]
        elif lane is None:
            lane = self.classifier.classify(ds)
        accepted = self.spool.accept(data, sop_uid=sop_uid, study_uid=study_uid, series_uid=series_uid,
                                     lane=lane, source=source)
        if self.on_queued is not None and accepted in (Accepted.NEW, Accepted.REPLACED):
            self.on_queued(lane)
        return Received(sop_uid, study_uid, lane, accepted)
