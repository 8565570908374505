"""The edge gateway's DICOM client for the hospital PACS: C-ECHO, C-FIND, C-MOVE and C-GET as an SCU.

Every public call opens one association, does its work and releases it (simple and robust: no pooled
association can go stale behind a hospital firewall). Connection and association problems, and
statuses that refuse a request, raise :class:`PacsError` with a sentence naming the cause; statuses
that report how retrieval sub-operations went come back as a :class:`TransferResult`.

Queries use the Study Root information model (PS3.4 C.6.2). Patient identifiers (names, IDs) are
never logged, here or by pynetdicom (see :func:`_no_identifiers_in_logs`).
"""

from __future__ import annotations

import datetime
import logging
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)
from pynetdicom import AE, _config, build_context, build_role, evt
from pynetdicom.association import Association
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    BasicTextSRStorage,
    ComprehensiveSRStorage,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalMammographyXRayImageStorageForPresentation,
    DigitalMammographyXRayImageStorageForProcessing,
    DigitalXRayImageStorageForPresentation,
    DigitalXRayImageStorageForProcessing,
    EncapsulatedPDFStorage,
    EnhancedCTImageStorage,
    EnhancedMRImageStorage,
    EnhancedSRStorage,
    GrayscaleSoftcopyPresentationStateStorage,
    KeyObjectSelectionDocumentStorage,
    MRImageStorage,
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage,
    NuclearMedicineImageStorage,
    PositronEmissionTomographyImageStorage,
    SecondaryCaptureImageStorage,
    SegmentationStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    Verification,
    XRayAngiographicImageStorage,
    XRayRadiofluoroscopicImageStorage,
)

log = logging.getLogger(__name__)

# Query/Retrieve statuses, PS3.4 Tables C.4-1 (C-FIND), C.4-2 (C-MOVE), C.4-3 (C-GET); PS3.7 C.
SUCCESS = 0x0000
PENDING = frozenset({0xFF00, 0xFF01})
CANCEL = 0xFE00
WARNING_SUBOPS_FAILED = 0xB000
UNABLE_TO_PERFORM_SUBOPS = 0xA702
MOVE_DESTINATION_UNKNOWN = 0xA801
PROCESSING_FAILURE = 0x0110
STATUS_NAMES: dict[int, str] = {
    0x0000: "Success",
    0xFF00: "Pending",
    0xFF01: "Pending: optional keys not supported",
    0xFE00: "Cancel",
    0xB000: "Warning: sub-operations complete, one or more failures",
    0xA700: "Refused: out of resources",
    0xA701: "Refused: out of resources, unable to calculate number of matches",
    0xA702: "Refused: out of resources, unable to perform sub-operations",
    0xA801: "Refused: move destination unknown",
    0xA900: "Error: identifier does not match SOP class",
    0x0110: "Processing failure",
    0x0122: "Refused: SOP class not supported",
    0x0124: "Refused: not authorized",
}
# Final C-MOVE/C-GET statuses that describe how the sub-operations went (-> TransferResult); any
# other final status refused the request itself (-> PacsError).
TRANSFER_OUTCOMES = frozenset({SUCCESS, WARNING_SUBOPS_FAILED, CANCEL, UNABLE_TO_PERFORM_SUBOPS})

# What a C-GET can receive (PS3.4 C.4.3.1: the SCU gets only SOP classes it negotiated, with the SCP
# role, PS3.7 D.3.3.4). An association carries at most 128 presentation contexts (PS3.8 9.3.2.2: odd
# IDs 1..255), one is the C-GET model, so: 19 image classes x 6 contexts (one per transfer syntax
# group, so a PACS can send each stored encoding as is) + 7 document classes uncompressed = 121.
GET_IMAGE_SOP_CLASSES = (
    CTImageStorage, EnhancedCTImageStorage, MRImageStorage, EnhancedMRImageStorage,
    ComputedRadiographyImageStorage, DigitalXRayImageStorageForPresentation, DigitalXRayImageStorageForProcessing,
    DigitalMammographyXRayImageStorageForPresentation, DigitalMammographyXRayImageStorageForProcessing,
    UltrasoundImageStorage, UltrasoundMultiFrameImageStorage, SecondaryCaptureImageStorage,
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage, MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    MultiFrameTrueColorSecondaryCaptureImageStorage, PositronEmissionTomographyImageStorage,
    NuclearMedicineImageStorage, XRayAngiographicImageStorage, XRayRadiofluoroscopicImageStorage,
)
GET_DOCUMENT_SOP_CLASSES = (
    BasicTextSRStorage, EnhancedSRStorage, ComprehensiveSRStorage, KeyObjectSelectionDocumentStorage,
    EncapsulatedPDFStorage, GrayscaleSoftcopyPresentationStateStorage, SegmentationStorage,
)
UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
GET_IMAGE_SYNTAX_GROUPS: tuple[tuple[str, ...], ...] = (
    UNCOMPRESSED, (JPEGLosslessSV1,), (JPEGLSLossless,), (JPEG2000Lossless,), (JPEGBaseline8Bit,), (RLELossless,),
)
MAX_PRESENTATION_CONTEXTS = 128


class PacsError(Exception):
    """The PACS could not be reached, refused or aborted the association, or answered a failure status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PacsPeer:
    """A remote DICOM application entity and the AE title we call it with."""

    ae_title: str
    host: str
    port: int
    calling_ae: str = "YUNYING_GW"

    @classmethod
    def parse(cls, text: str, calling_ae: str = "YUNYING_GW") -> PacsPeer:
        """Parse ``"AET@host:port"`` (an IPv6 host in brackets: ``"AET@[::1]:104"``)."""
        ae_title, at, address = text.strip().partition("@")
        host, colon, port = address.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not (at and colon and ae_title and host and port.isdigit()) or not 0 < int(port) < 65536:
            raise ValueError(f"not a DICOM peer {text!r}: expected AET@host:port")
        if len(ae_title) > 16 or len(calling_ae) > 16:
            raise ValueError(f"AE titles are at most 16 characters: {text!r}")
        return cls(ae_title, host, int(port), calling_ae)

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class StudyHit:
    study_uid: str
    study_date: str
    accession: str
    modalities: tuple[str, ...]
    patient_key: str  # Patient ID: groups the "whole patient"; never log it


@dataclass(frozen=True)
class SeriesHit:
    series_uid: str
    modality: str
    number_of_instances: int | None  # None when the PACS does not compute it (dcmqrscp)


@dataclass
class TransferResult:
    """Outcome of a C-MOVE or C-GET: the final status and its sub-operation counts (PS3.4 C.4.2.1.4)."""

    completed: int = 0
    failed: int = 0
    warning: int = 0
    status: int = 0
    failed_sop_uids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == SUCCESS and self.failed == 0


def status_name(status: int) -> str:
    if status in STATUS_NAMES:
        return STATUS_NAMES[status]
    if 0xC000 <= status <= 0xCFFF:
        return "Failed: unable to process"
    return "unknown status"


def _no_identifiers_in_logs() -> None:
    """pynetdicom logs request/response identifiers (patient names, IDs) at INFO by default: never.

    Also done by ``yunying.logging.configure_logging``; repeated here so a gateway embedding this client
    without that set-up still keeps patient identifiers out of its logs.
    """
    _config.LOG_REQUEST_IDENTIFIERS = False
    _config.LOG_RESPONSE_IDENTIFIERS = False


def get_storage_contexts() -> list[PresentationContext]:
    """The storage contexts a C-GET proposes (fresh objects: pynetdicom numbers them per association)."""
    contexts = [build_context(sop_class, list(group)) for sop_class in GET_IMAGE_SOP_CLASSES for group in GET_IMAGE_SYNTAX_GROUPS]
    contexts += [build_context(sop_class, list(UNCOMPRESSED)) for sop_class in GET_DOCUMENT_SOP_CLASSES]
    return contexts


class PacsClient:
    """C-ECHO / C-FIND / C-MOVE / C-GET against one PACS; one association per call.

    Parameters
    ----------
    peer
        The PACS, and the calling AE title the PACS knows the gateway by.
    timeout
        Seconds allowed to connect, to negotiate the association, and for each DIMSE response or
        network silence; an unreachable or mute PACS fails within about this time.
    """

    def __init__(self, peer: PacsPeer, *, timeout: float = 30.0) -> None:
        _no_identifiers_in_logs()
        self.peer = peer
        self.timeout = timeout

    # -- verification ---------------------------------------------------------------------------

    def echo(self) -> bool:
        """C-ECHO; True when the PACS answers Success. Raises PacsError when it cannot be associated."""
        with self._association([build_context(Verification)]) as assoc:
            rsp = assoc.send_c_echo()
        return bool(rsp) and int(rsp.get("Status", -1)) == SUCCESS

    # -- queries ----------------------------------------------------------------------------------

    def find_studies(self, *, date_from: datetime.date | None = None, date_to: datetime.date | None = None,
                     modality: str | None = None, accession: str | None = None) -> list[StudyHit]:
        """Studies matching a Study Date range, a modality and/or an accession number (STUDY level).

        The modality is sent as Modalities in Study; a PACS that neither matches nor returns that key
        (dcmqrscp) returns every study, so when a modality is asked for and a match carries no
        Modalities in Study, its series are queried (same association) and the study is kept only if
        one has that modality; its ``modalities`` then come from its series.
        """
        query = _identifier("STUDY", StudyInstanceUID="", StudyDate=_date_range(date_from, date_to),
                            AccessionNumber=accession or "", ModalitiesInStudy=modality or "", PatientID="")
        with self._association([build_context(StudyRootQueryRetrieveInformationModelFind)]) as assoc:
            hits = [_study_hit(ds) for ds in self._find(assoc, query)]
            if modality:
                hits = [hit for hit in (self._with_modalities(assoc, hit) for hit in hits) if modality in hit.modalities]
        log.info("C-FIND studies at %s: %d match(es)", self.peer, len(hits))
        return hits

    def find_series(self, study_uid: str) -> list[SeriesHit]:
        """The series of a study (SERIES level)."""
        with self._association([build_context(StudyRootQueryRetrieveInformationModelFind)]) as assoc:
            return self._find_series(assoc, study_uid)

    def find_instances(self, study_uid: str, series_uid: str) -> list[str]:
        """SOP Instance UIDs of a series (IMAGE level)."""
        if not series_uid:
            raise ValueError("an IMAGE-level query needs the series_uid (hierarchical query)")
        with self._association([build_context(StudyRootQueryRetrieveInformationModelFind)]) as assoc:
            return self._find_instances(assoc, study_uid, series_uid)

    def count_instances(self, study_uid: str) -> int:
        """Instances in a study, counted by IMAGE-level queries per series (one association).

        Number of Study Related Instances is optional for a PACS to compute (dcmqrscp does not), and
        an IMAGE-level query needs the series UID (hierarchical query, PS3.4 C.4.1.3.1), hence per series.
        """
        with self._association([build_context(StudyRootQueryRetrieveInformationModelFind)]) as assoc:
            series = self._find_series(assoc, study_uid)
            return sum(len(self._find_instances(assoc, study_uid, hit.series_uid)) for hit in series)

    # -- retrieval --------------------------------------------------------------------------------

    def move(self, study_uid: str, destination_ae: str, *, series_uid: str | None = None,
             sop_uids: Sequence[str] = ()) -> TransferResult:
        """C-MOVE a study, a series or some instances of a series to ``destination_ae``.

        The PACS opens its own association to the destination, which it must know by that AE title.
        Statuses Success, Warning (0xB000), Cancel and 0xA702 come back as a TransferResult (check
        ``ok`` and ``failed_sop_uids``); a refused request, e.g. 0xA801 "move destination unknown",
        raises PacsError with ``status`` set. ``timeout`` bounds the wait for each response: a PACS that
        sends no pending responses (they are optional) needs one longer than the whole move.
        """
        query = _retrieve_identifier(study_uid, series_uid, sop_uids)
        with self._association([build_context(StudyRootQueryRetrieveInformationModelMove)]) as assoc:
            responses = assoc.send_c_move(query, destination_ae, StudyRootQueryRetrieveInformationModelMove)
            result = self._transfer_result("C-MOVE", responses)
        log.info("C-MOVE from %s to %s: %d completed, %d failed, %d warning, status 0x%04X",
                 self.peer, destination_ae, result.completed, result.failed, result.warning, result.status)
        return result

    def get(self, study_uid: str, on_instance: Callable[[bytes], int], *, series_uid: str | None = None,
            sop_uids: Sequence[str] = ()) -> TransferResult:
        """C-GET a study, a series or some instances of a series over this association.

        ``on_instance`` receives each instance as DICOM Part 10 bytes (file meta + data set as sent)
        and returns the C-STORE status to answer: 0x0000 stored, 0xA700 out of resources, ... An
        exception in it is logged and answered 0x0110 (processing failure).

        Only SOP classes and transfer syntaxes proposed here can arrive (see ``get_storage_contexts``:
        the common image classes uncompressed, JPEG lossless, JPEG-LS lossless, JPEG 2000 lossless,
        JPEG baseline and RLE; SR, KOS, PDF, GSPS and SEG uncompressed). The PACS counts anything
        else as a failed sub-operation; pull such studies with C-MOVE instead.
        """

        def on_store(event: Any) -> int:
            try:
                return on_instance(event.encoded_dataset())
            except Exception:
                log.exception("C-GET from %s: storing a received instance failed", self.peer)
                return PROCESSING_FAILURE

        contexts = [build_context(StudyRootQueryRetrieveInformationModelGet), *get_storage_contexts()]
        roles = [build_role(sop_class, scp_role=True) for sop_class in (*GET_IMAGE_SOP_CLASSES, *GET_DOCUMENT_SOP_CLASSES)]
        query = _retrieve_identifier(study_uid, series_uid, sop_uids)
        with self._association(contexts, roles, [(evt.EVT_C_STORE, on_store)]) as assoc:
            responses = assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet)
            result = self._transfer_result("C-GET", responses)
        log.info("C-GET from %s: %d completed, %d failed, %d warning, status 0x%04X",
                 self.peer, result.completed, result.failed, result.warning, result.status)
        return result

    # -- internals --------------------------------------------------------------------------------

    def _association(self, contexts: list[PresentationContext], roles: list[Any] | None = None,
                     handlers: list[Any] | None = None) -> _Associated:
        assert len(contexts) <= MAX_PRESENTATION_CONTEXTS
        ae = AE(ae_title=self.peer.calling_ae)
        ae.connection_timeout = self.timeout
        ae.acse_timeout = self.timeout
        ae.dimse_timeout = self.timeout
        ae.network_timeout = self.timeout
        ae.maximum_pdu_size = 0  # unlimited: C-GET receives whole instances
        assoc = ae.associate(self.peer.host, self.peer.port, contexts, ae_title=self.peer.ae_title,
                             ext_neg=roles or None, evt_handlers=handlers or None)
        if not assoc.is_established:
            raise PacsError(_association_failure(assoc, self.peer, self.timeout))
        sock = getattr(getattr(assoc.dul, "socket", None), "socket", None)
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Associated(assoc, self.peer)

    def _find(self, assoc: Association, query: Dataset) -> Iterator[Dataset]:
        for status, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
            code = _status_code(status, self.peer, "C-FIND")
            if code in PENDING:
                if identifier is not None:
                    yield identifier
            elif code == SUCCESS:
                return
            else:
                raise PacsError(f"C-FIND at {self.peer} failed: 0x{code:04X} {status_name(code)}", code)

    def _find_series(self, assoc: Association, study_uid: str) -> list[SeriesHit]:
        query = _identifier("SERIES", StudyInstanceUID=study_uid, SeriesInstanceUID="", Modality="",
                            NumberOfSeriesRelatedInstances="")
        return [SeriesHit(str(ds.get("SeriesInstanceUID", "")), str(ds.get("Modality", "")),
                          _int_or_none(ds.get("NumberOfSeriesRelatedInstances")))
                for ds in self._find(assoc, query)]

    def _find_instances(self, assoc: Association, study_uid: str, series_uid: str) -> list[str]:
        query = _identifier("IMAGE", StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid, SOPInstanceUID="")
        return [str(ds.SOPInstanceUID) for ds in self._find(assoc, query) if ds.get("SOPInstanceUID")]

    def _with_modalities(self, assoc: Association, hit: StudyHit) -> StudyHit:
        if hit.modalities:
            return hit
        modalities = sorted({series.modality for series in self._find_series(assoc, hit.study_uid) if series.modality})
        return StudyHit(hit.study_uid, hit.study_date, hit.accession, tuple(modalities), hit.patient_key)

    def _transfer_result(self, service: str, responses: Iterator[tuple[Dataset, Dataset | None]]) -> TransferResult:
        result, final = TransferResult(), False
        for status, identifier in responses:
            code = _status_code(status, self.peer, service)
            if code in PENDING:
                continue
            result.status, final = code, True
            result.completed = int(status.get("NumberOfCompletedSuboperations", 0) or 0)
            result.failed = int(status.get("NumberOfFailedSuboperations", 0) or 0)
            result.warning = int(status.get("NumberOfWarningSuboperations", 0) or 0)
            if identifier is not None:
                result.failed_sop_uids = _values(identifier.get("FailedSOPInstanceUIDList"))
            if code not in TRANSFER_OUTCOMES:
                raise PacsError(f"{service} at {self.peer} refused: 0x{code:04X} {status_name(code)}", code)
        if not final:
            raise PacsError(f"{service} at {self.peer}: no final response")
        return result


class _Associated:
    """Context manager: release the association on the way out (abort it if still busy)."""

    def __init__(self, assoc: Association, peer: PacsPeer) -> None:
        self.assoc = assoc
        self.peer = peer

    def __enter__(self) -> Association:
        return self.assoc

    def __exit__(self, *exc: object) -> None:
        if self.assoc.is_established:
            if exc[0] is None:
                self.assoc.release()
            else:
                self.assoc.abort()


def _association_failure(assoc: Association, peer: PacsPeer, timeout: float) -> str:
    """A sentence saying why no association was established."""
    primitive = getattr(assoc.acceptor, "primitive", None)
    if assoc.is_rejected and primitive is not None:
        return (f"association rejected by {peer} (calling AE {peer.calling_ae}): {primitive.result_str}, "
                f"source {primitive.source_str}, reason {primitive.reason_str}")
    if primitive is not None and getattr(primitive, "result", None) == 0:
        return f"{peer} accepted none of the proposed presentation contexts"
    return f"cannot reach {peer}: connection refused, unreachable, or no association response within {timeout:g} s"


def _status_code(status: Dataset, peer: PacsPeer, service: str) -> int:
    if "Status" not in status:  # pynetdicom yields an empty status when the association ended mid-operation
        raise PacsError(f"{service} at {peer}: no response (association aborted, or timed out)")
    return int(status.Status)


def _identifier(level: str, **keys: object) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def _retrieve_identifier(study_uid: str, series_uid: str | None, sop_uids: Sequence[str]) -> Dataset:
    """STUDY, SERIES or IMAGE level unique keys (PS3.4 C.4.2.2.1); instances need their series."""
    if sop_uids and not series_uid:
        raise ValueError("retrieving instances needs their series_uid (hierarchical retrieve)")
    if sop_uids:
        return _identifier("IMAGE", StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid, SOPInstanceUID=list(sop_uids))
    if series_uid:
        return _identifier("SERIES", StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid)
    return _identifier("STUDY", StudyInstanceUID=study_uid)


def _date_range(date_from: datetime.date | None, date_to: datetime.date | None) -> str:
    """Study Date range matching (PS3.4 C.2.2.2.5): ``from-to``, ``from-``, ``-to`` or universal."""
    if date_from is None and date_to is None:
        return ""
    return f"{date_from.strftime('%Y%m%d') if date_from else ''}-{date_to.strftime('%Y%m%d') if date_to else ''}"


def _study_hit(ds: Dataset) -> StudyHit:
    return StudyHit(study_uid=str(ds.get("StudyInstanceUID", "")), study_date=str(ds.get("StudyDate", "") or ""),
                    accession=str(ds.get("AccessionNumber", "") or ""), modalities=tuple(_values(ds.get("ModalitiesInStudy"))),
                    patient_key=str(ds.get("PatientID", "") or ""))


def _values(value: object) -> list[str]:
    """The non-empty values of a (possibly multi-valued, possibly absent) string element."""
    if value is None or value == "":
        return []
    items = [value] if isinstance(value, str) or not isinstance(value, Sequence) else list(value)
    return [str(item) for item in items if str(item)]


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None
