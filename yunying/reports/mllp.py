"""The HL7 v2 listener (IN-1): ORU^R01 over MLLP, framed by python-hl7's asyncio streams.

One asyncio loop in a daemon thread; each message is handled in a worker thread (database I/O) and
answered on the same connection, in order. The ACK is written only after the report is committed
(AA) — or explains why not (AE: content, AR: type/version/sender or a temporary failure).
Logs name the facility, control id and outcome; never a patient identifier or report text.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping

from hl7.mllp import HL7StreamReader, HL7StreamWriter, InvalidBlockError, start_hl7_server
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from yunying.auth.audit import record
from yunying.index.models import Institution
from yunying.reports import oru, service

log = logging.getLogger(__name__)

# MSH-18 character set (HL7 table 0211) → Python codec; absent or unknown: UTF-8.
CHARSETS = {"UNICODE UTF-8": "utf-8", "UTF-8": "utf-8", "GB 18030-2000": "gb18030", "GB18030": "gb18030",
            "8859/1": "latin-1", "ASCII": "ascii"}
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
ANY_FACILITY = "*"


def decode(block: bytes) -> str:
    first = block.split(b"\r", 1)[0].split(b"|")
    charset = first[17].split(b"^")[0].decode("ascii", "replace").strip() if len(first) > 17 else ""
    return block.decode(CHARSETS.get(charset.upper(), "utf-8"), "replace")


def _institution(sessions: sessionmaker[Session], facilities: Mapping[str, str], facility: str) -> int:
    code = facilities.get(facility) or facilities.get(ANY_FACILITY)
    if code is not None:
        with sessions() as session:
            found = session.execute(select(Institution.id).where(Institution.code == code,
                                                                 Institution.disabled.is_(False))).scalar_one_or_none()
        if found is not None:
            return int(found)
    raise oru.OruError(oru.Ack.REJECT, oru.ERR_UNKNOWN_KEY, "sending facility (MSH-4) is not registered")


def handle(sessions: sessionmaker[Session], facilities: Mapping[str, str], block: bytes, peer: str = "") -> str:
    """One MLLP block in, the ACK out (after the report is durable)."""
    head: oru.Header | None = None
    try:
        message = oru.parse(decode(block))
        head = oru.header(message)
        oru.check_header(head)
        institution_id = _institution(sessions, facilities, head.facility_id)
        view = service.receive(sessions, oru.to_report(message, institution_id))
    except oru.OruError as exc:
        return _refused(sessions, head, exc.ack, exc.code, exc.text, peer)
    except service.ReportConflict as exc:
        return _refused(sessions, head, oru.Ack.ERROR, oru.ERR_APPLICATION, str(exc), peer)
    except Exception as exc:  # database down and the like: the sender should retry later
        log.error("hl7: storing a report failed: %s", type(exc).__name__)
        return _refused(sessions, head, oru.Ack.REJECT, oru.ERR_APPLICATION, "temporary failure: resend later", peer)
    subject = view.study_uid or f"report:{view.id}"
    _audit(sessions, head, "success", subject, f"report {view.id} version {view.current.version} ({view.status})", peer)
    log.info("hl7: %s from %s stored as report %d version %d", head.control_id, head.facility_id, view.id,
             view.current.version)
    return oru.ack(head, oru.Ack.ACCEPT)


def _refused(sessions: sessionmaker[Session], head: oru.Header | None, code: oru.Ack, error: str, text: str,
             peer: str) -> str:
    log.warning("hl7: %s from %s answered %s: %s", head.control_id if head else "-", head.facility_id if head else "-",
                code.value, text)
    _audit(sessions, head, f"refused:{code.value}", "", text, peer)
    return oru.ack(head, code, text, error)


def _audit(sessions: sessionmaker[Session], head: oru.Header | None, outcome: str, subject: str, detail: str,
           peer: str) -> None:
    try:
        record(sessions, actor=f"hl7:{head.facility_id if head else '?'}"[:100], action="report-receive",
               subject=subject, source=peer, outcome=outcome,
               detail=f"control id {head.control_id if head else '-'}: {detail}")
    except Exception as exc:  # the report is durable; a failing audit append must not turn AA into a resend
        log.error("hl7: audit append failed: %s", type(exc).__name__)


class Hl7Listener:
    """``start()`` binds ``host:port`` (raising OSError when it cannot) and serves until ``stop()``."""

    def __init__(self, sessions: sessionmaker[Session], facilities: Mapping[str, str], host: str, port: int) -> None:
        self.sessions, self.facilities, self.host, self.port = sessions, dict(facilities), host, port
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="hl7-mllp", daemon=True)

    def start(self) -> Hl7Listener:
        self._server = self._loop.run_until_complete(start_hl7_server(
            self._connection, host=self.host, port=self.port, limit=MAX_MESSAGE_BYTES))
        self.port = self._server.sockets[0].getsockname()[1]
        self._thread.start()
        return self

    async def _connection(self, reader: HL7StreamReader, writer: HL7StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        source = str(peer[0]) if isinstance(peer, tuple) else ""
        try:
            while True:
                try:
                    block = await reader.readblock()
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except (InvalidBlockError, ValueError) as exc:
                    log.warning("hl7: bad MLLP framing from %s: %s", source, type(exc).__name__)
                    return
                answer = await asyncio.to_thread(handle, self.sessions, self.facilities, bytes(block), source)
                writer.writeblock(answer.encode("utf-8"))
                await writer.drain()
        finally:
            writer.close()

    def stop(self) -> None:
        if self._server is not None:
            server = self._server
            asyncio.run_coroutine_threadsafe(_close(server), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


async def _close(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()
