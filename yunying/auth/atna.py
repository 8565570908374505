"""Audit entries as DICOM audit messages (IHE ATNA) sent over syslog.

:func:`audit_message` builds the XML of DICOM PS3.15 Annex A.5 (``AuditMessage`` with
``EventIdentification``, ``ActiveParticipant``, ``AuditSourceIdentification`` and, for studies,
``ParticipantObjectIdentification``); :func:`syslog_frame` wraps it as an RFC 5424 message
(facility authpriv, MSGID ``IHE+RFC-3881``, as IHE ITI-20 asks); :class:`SyslogSender` sends frames
over UDP (RFC 5426) or TCP with octet counting (RFC 6587 §3.4.1) from a background thread.

Only what the audit entry says goes out, minus ``detail``: subjects are sent only when they are
UIDs (or our fixed query descriptions), so no patient identifier ever reaches a syslog collector.
"""

from __future__ import annotations

import atexit
import ipaddress
import logging
import os
import queue
import re
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from yunying.auth.audit import Entry, iso_utc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Code:
    """A coded value: ``csd-code``, ``codeSystemName``, ``originalText`` (PS3.15 A.5.1)."""

    code: str
    meaning: str
    system: str = "DCM"


@dataclass(frozen=True)
class AtnaEvent:
    event: Code
    action: str  # EventActionCode: C create, R read, U update, D delete, E execute
    type_code: Code | None = None  # EventTypeCode
    requestor_role: Code | None = None  # RoleIDCode of the user; the archive takes the other role
    archive_role: Code | None = None


SOURCE = Code("110153", "Source Role ID")
DESTINATION = Code("110152", "Destination Role ID")
STUDY_UID = Code("110180", "Study Instance UID")
QUERY_LABEL = Code("QUERY", "Query description", "99YUNYING")  # private: we never send the query itself

# Our action names → DICOM audit events (PS3.16 CID 400 event IDs, CID 401 action codes, CID 402 role IDs).
EVENTS: dict[str, AtnaEvent] = {
    "query": AtnaEvent(Code("110112", "Query"), "E", requestor_role=SOURCE, archive_role=DESTINATION),
    "retrieve": AtnaEvent(Code("110104", "DICOM Instances Transferred"), "R", requestor_role=DESTINATION,
                          archive_role=SOURCE),
    "view": AtnaEvent(Code("110103", "DICOM Instances Accessed"), "R"),
    "store": AtnaEvent(Code("110104", "DICOM Instances Transferred"), "C", requestor_role=SOURCE, archive_role=DESTINATION),
    "commitment": AtnaEvent(Code("110103", "DICOM Instances Accessed"), "R"),
    "delete": AtnaEvent(Code("110105", "DICOM Study Deleted"), "D"),
    "share": AtnaEvent(Code("110106", "Export"), "R"),
    "login": AtnaEvent(Code("110114", "User Authentication"), "E", Code("110122", "Login")),
    "logout": AtnaEvent(Code("110114", "User Authentication"), "E", Code("110123", "Logout")),
    "login-locked": AtnaEvent(Code("110114", "User Authentication"), "E", Code("110122", "Login")),
    "denied": AtnaEvent(Code("110113", "Security Alert"), "E", Code("110132", "Use of Restricted Function")),
    "grant": AtnaEvent(Code("110113", "Security Alert"), "U", Code("110135", "Object Security Attributes Changed")),
    "revoke-grant": AtnaEvent(Code("110113", "Security Alert"), "U", Code("110135", "Object Security Attributes Changed")),
    "user": AtnaEvent(Code("110113", "Security Alert"), "U", Code("110137", "User Security Attributes Changed")),
    "token": AtnaEvent(Code("110113", "Security Alert"), "U", Code("110137", "User Security Attributes Changed")),
    "audit-read": AtnaEvent(Code("110101", "Audit Log Used"), "R"),
    "audit-verify": AtnaEvent(Code("110101", "Audit Log Used"), "E"),
}
# An action not listed: its prefix before "-" (user-create → user), else this.
OTHER = AtnaEvent(Code("110100", "Application Activity"), "E")

# EventOutcomeIndicator (PS3.15 A.5.1): 0 success, 4 minor failure, 8 serious failure, 12 major failure.
OUTCOMES: dict[str, str] = {"success": "0", "partial": "4", "failed": "4", "not-found": "4", "refused": "8",
                            "denied": "8", "error": "12"}

_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$")
_LABEL = re.compile(r"^(QIDO|C-FIND) [A-Z]{1,12}$")  # the subjects of query entries
_XML_UNSAFE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def event_of(action: str) -> AtnaEvent:
    return EVENTS.get(action) or EVENTS.get(action.split("-", 1)[0]) or OTHER


def _text(value: str) -> str:
    """Characters XML 1.0 can carry (escaping of <, &, quotes is ElementTree's)."""
    return _XML_UNSAFE.sub("\ufffd", value)


def _code(parent: ET.Element, tag: str, code: Code) -> None:
    ET.SubElement(parent, tag, {"csd-code": code.code, "codeSystemName": code.system, "originalText": code.meaning})


def _network_access_point(source: str) -> tuple[str, str] | None:
    """(NetworkAccessPointID, NetworkAccessPointTypeCode: 1 host name, 2 IP address) of "ip", "ip:port", "host"."""
    text = source.strip()
    if not text or text == "-":
        return None
    for candidate in (text, text.rsplit(":", 1)[0].strip("[]")):
        try:
            return str(ipaddress.ip_address(candidate)), "2"
        except ValueError:
            continue
    host = text.rsplit(":", 1)[0]
    return (host[:255], "1") if re.fullmatch(r"[A-Za-z0-9.-]{1,255}", host) else None


def audit_message(entry: Entry, *, source_id: str) -> bytes:
    """The DICOM audit message (PS3.15 A.5, XML, UTF-8) for ``entry``."""
    event = event_of(entry.action)
    root = ET.Element("AuditMessage")
    ident = ET.SubElement(root, "EventIdentification", {
        "EventActionCode": event.action, "EventDateTime": iso_utc(entry.at),
        "EventOutcomeIndicator": OUTCOMES.get(entry.outcome, "4")})
    _code(ident, "EventID", event.event)
    if event.type_code is not None:
        _code(ident, "EventTypeCode", event.type_code)
    user = ET.SubElement(root, "ActiveParticipant", {"UserID": _text(entry.actor) or "-", "UserIsRequestor": "true"})
    if entry.actor_role:
        user.set("AlternativeUserID", _text(entry.actor_role))
    point = _network_access_point(entry.source)
    if point is not None:
        user.set("NetworkAccessPointID", point[0])
        user.set("NetworkAccessPointTypeCode", point[1])
    if event.requestor_role is not None:
        _code(user, "RoleIDCode", event.requestor_role)
    archive = ET.SubElement(root, "ActiveParticipant", {"UserID": _text(source_id), "UserIsRequestor": "false"})
    if event.archive_role is not None:
        _code(archive, "RoleIDCode", event.archive_role)
    source = ET.SubElement(root, "AuditSourceIdentification", {"AuditSourceID": _text(source_id)})
    if entry.actor_institution:
        source.set("AuditEnterpriseSiteID", _text(entry.actor_institution))
    ET.SubElement(source, "AuditSourceTypeCode", {"csd-code": "4"})  # application server process
    for uid in (part.strip() for part in entry.subject.split(",")):
        if _UID.match(uid) and len(uid) <= 64:
            _participant(root, uid, "3", STUDY_UID)  # a study: system object (2), role report (3)
    if _LABEL.match(entry.subject):
        _participant(root, entry.subject, "24", QUERY_LABEL)  # a query: role query (24)
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml


def _participant(root: ET.Element, object_id: str, role: str, id_type: Code) -> None:
    obj = ET.SubElement(root, "ParticipantObjectIdentification", {
        "ParticipantObjectID": object_id, "ParticipantObjectTypeCode": "2", "ParticipantObjectTypeCodeRole": role})
    _code(obj, "ParticipantObjectIDTypeCode", id_type)


AUTHPRIV_NOTICE = 10 * 8 + 5  # PRI: facility 10 (security/authorization), severity 5 (notice)
AUTHPRIV_WARNING = 10 * 8 + 4  # failures
BOM = b"\xef\xbb\xbf"


def syslog_frame(message: bytes, entry: Entry, *, hostname: str, app_name: str = "yunying") -> bytes:
    """An RFC 5424 syslog message carrying ``message`` (UTF-8 with BOM)."""
    pri = AUTHPRIV_NOTICE if entry.outcome == "success" else AUTHPRIV_WARNING
    host = re.sub(r"[^\x21-\x7e]", "", hostname)[:255] or "-"
    header = f"<{pri}>1 {iso_utc(entry.at)} {host} {app_name} {os.getpid()} IHE+RFC-3881 - "
    return header.encode("ascii") + BOM + message


@dataclass(frozen=True)
class SyslogTarget:
    transport: str  # "udp" | "tcp"
    host: str
    port: int


def parse_target(url: str) -> SyslogTarget:
    """``udp://host:514`` or ``tcp://host:6514``; anything else raises ValueError (checked at start-up)."""
    parts = urlsplit(url)
    if parts.scheme not in ("udp", "tcp") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"YUNYING_AUDIT_SYSLOG must be udp://host:port or tcp://host:port, not {url!r}")
    try:
        port = parts.port or 514
    except ValueError as exc:
        raise ValueError(f"YUNYING_AUDIT_SYSLOG has a bad port: {url!r}") from exc
    return SyslogTarget(parts.scheme, parts.hostname, port)


class SyslogSender:
    """Sends audit entries as ATNA messages from a background thread; never blocks or fails the caller.

    A bounded queue takes entries (full: the entry is dropped and counted; the chain in the
    database still has it). One thread per process builds and sends the messages; after a fork the
    child starts its own. TCP reconnects with back-off and keeps the message it could not send.
    """

    def __init__(self, url: str, *, source_id: str, capacity: int = 10_000, timeout: float = 5.0) -> None:
        self.target = parse_target(url)
        self.source_id, self.capacity, self.timeout = source_id, capacity, timeout
        self.hostname = socket.gethostname()
        self.dropped = 0
        self._pid = -1
        self._lock = threading.Lock()
        self._queue: queue.Queue[Entry] = queue.Queue(capacity)
        self._sock: socket.socket | None = None
        self._last_drop_log = 0.0

    def submit(self, entries: Sequence[Entry]) -> None:
        self._ensure_thread()
        for entry in entries:
            try:
                self._queue.put_nowait(entry)
            except queue.Full:
                self.dropped += 1
                if time.monotonic() - self._last_drop_log > 60:
                    self._last_drop_log = time.monotonic()
                    log.warning("audit syslog: queue full, %d message(s) dropped so far (the database keeps them)",
                                self.dropped)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every submitted entry was sent or given up on; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _ensure_thread(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            if self._pid != -1:  # forked: the parent's queue and socket are not ours
                self._queue, self._sock = queue.Queue(self.capacity), None
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="audit-syslog", daemon=True).start()
            atexit.register(self.flush, 2.0)

    def _run(self) -> None:
        backoff = 0.5
        while True:
            entry = self._queue.get()
            try:
                frame = syslog_frame(audit_message(entry, source_id=self.source_id), entry, hostname=self.hostname)
                while not self._send(frame):
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
                backoff = 0.5
            except Exception:
                log.exception("audit syslog: cannot send entry %d", entry.seq)
            finally:
                self._queue.task_done()

    def _send(self, frame: bytes) -> bool:
        try:
            if self._sock is None:
                self._sock = self._connect()
            if self.target.transport == "udp":
                self._sock.send(frame)
            else:
                self._sock.sendall(str(len(frame)).encode("ascii") + b" " + frame)
            return True
        except OSError as exc:
            log.warning("audit syslog: %s://%s:%d: %s", self.target.transport, self.target.host, self.target.port, exc)
            if self._sock is not None:
                self._sock.close()
            self._sock = None
            return self.target.transport == "udp"  # a lost datagram is lost; a TCP message is retried

    def _connect(self) -> socket.socket:
        kind = socket.SOCK_DGRAM if self.target.transport == "udp" else socket.SOCK_STREAM
        family, _, _, _, address = socket.getaddrinfo(self.target.host, self.target.port, type=kind)[0]
        sock = socket.socket(family, kind)
        sock.settimeout(self.timeout)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            raise
        return sock
