"""What follows a final report: listeners that run inside the report's own transaction.

When an exam's report becomes final (or amended) *and* the exam's images are in the archive — in
either order: a report arriving for a stored study, or a study arriving for a stored final report —
every listener in :data:`ON_FINAL` is called with the open session and the report, before the
commit. Listeners only record work (a row in an outbox/job table, an access token); anything slow
(composing film sheets, sending messages) happens after the commit in a worker, so the HL7 ACK is
not held up and nothing is done for a report that was rolled back.

Listeners are registered once by :func:`yunying.compose.build_archive` (cloud film, film sheets).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from yunying.index.models import Report

ReportListener = Callable[[Session, Report], None]

ON_FINAL: list[ReportListener] = []
FINAL_STATUSES = frozenset({"final", "amended"})


def listen(listener: ReportListener) -> None:
    """Register ``listener`` (idempotent: building several archives in one process registers it once)."""
    if listener not in ON_FINAL:
        ON_FINAL.append(listener)


def report_changed(session: Session, report: Report) -> None:
    """Call the listeners when ``report`` is final/amended and linked to its study (flushes first)."""
    if report.study_fk is None or report.status not in FINAL_STATUSES:
        return
    session.flush()
    for listener in ON_FINAL:
        listener(session, report)
