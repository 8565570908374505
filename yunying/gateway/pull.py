"""Active pulls from the hospital PACS: recent exams, accession lists, and history backfill.

Retrieval is C-MOVE to the gateway's own SCP (or C-GET), one study at a time; the instances
arrive through the same intake as any push, in the lane the pull asked for. Backfill walks its
date range one day at a time, newest first, only inside the configured time window, and keeps its
progress in the spool database so a restart continues where it stopped.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta

from yunying.gateway.intake import Intake, InvalidInstance
from yunying.gateway.lanes import Lane
from yunying.gateway.pacs import PacsClient, PacsError, StudyHit
from yunying.gateway.settings import in_window, parse_window
from yunying.gateway.spool import Spool, SpoolFull

log = logging.getLogger(__name__)


@dataclass
class PullReport:
    studies: int = 0
    skipped: int = 0  # already complete in the spool
    instances: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class BackfillState:
    date_from: str
    date_to: str
    next_day: str  # the day still to do (walking backwards); "" when finished
    studies: int = 0
    instances: int = 0
    failed: int = 0
    days_done: int = 0
    days_total: int = 0

    @property
    def finished(self) -> bool:
        return not self.next_day


class Puller:
    def __init__(self, pacs: PacsClient, intake: Intake, spool: Spool, *, own_ae: str, retrieve: str = "move") -> None:
        self.pacs = pacs
        self.intake = intake
        self.spool = spool
        self.own_ae = own_ae
        self.retrieve = retrieve
        self._lock = threading.Lock()  # one pull at a time: the PACS is a hospital's production system

    def fetch(self, study_uid: str, lane: Lane, source: str, *, series_uid: str | None = None,
              sop_uids: Iterable[str] = ()) -> int:
        """Retrieve a study, a series, or some instances of a series into the spool; returns instances received."""
        uids = list(sop_uids)
        if self.retrieve == "get":
            def on_instance(data: bytes) -> int:
                try:
                    self.intake.accept(data, source, lane=lane)
                except InvalidInstance:
                    return 0xC000
                except SpoolFull:
                    return 0xA700
                return 0x0000
            result = self.pacs.get(study_uid, on_instance, series_uid=series_uid, sop_uids=uids)
        else:
            self.intake.expect(study_uid, lane, source)
            try:
                result = self.pacs.move(study_uid, self.own_ae, series_uid=series_uid, sop_uids=uids)
            finally:
                self.intake.done_expecting(study_uid)
        if not result.ok:
            raise PacsError(f"retrieve of a study ended with status 0x{result.status:04X}, {result.failed} failed")
        return result.completed

    def pull(self, hits: Iterable[StudyHit], lane: Lane, source: str) -> PullReport:
        report = PullReport()
        with self._lock:
            for hit in hits:
                if not hit.study_uid:  # an empty key would retrieve everything the PACS has
                    report.errors.append("the PACS listed a study without Study Instance UID; skipped")
                    continue
                report.studies += 1
                try:
                    if self._complete_locally(hit.study_uid):
                        report.skipped += 1
                        continue
                    report.instances += self.fetch(hit.study_uid, lane, source)
                except PacsError as exc:
                    report.failed += 1
                    report.errors.append(str(exc))
                    self.spool.event("pull-error", str(exc))
        return report

    def _complete_locally(self, study_uid: str) -> bool:
        known = self.spool.study_items(study_uid)
        return bool(known) and len(known) >= self.pacs.count_instances(study_uid)

    def pull_recent(self, days: int, modalities: Iterable[str] = ()) -> PullReport:
        today = date.today()
        hits = self._find(today - timedelta(days=days - 1), today, list(modalities))
        return self.pull(hits, Lane.ROUTINE, "pull")

    def pull_all(self) -> PullReport:
        """Every study the PACS returns for a universal query (first connection of a gateway)."""
        return self.pull(self.pacs.find_studies(), Lane.BACKFILL, "pull")

    def pull_accessions(self, accessions: Iterable[str]) -> PullReport:
        hits: list[StudyHit] = []
        for accession in accessions:
            hits.extend(self.pacs.find_studies(accession=accession))
        return self.pull(hits, Lane.ROUTINE, "pull")

    def _find(self, day_from: date, day_to: date, modalities: list[str]) -> list[StudyHit]:
        if not modalities:
            return self.pacs.find_studies(date_from=day_from, date_to=day_to)
        hits: dict[str, StudyHit] = {}
        for modality in modalities:
            for hit in self.pacs.find_studies(date_from=day_from, date_to=day_to, modality=modality):
                hits[hit.study_uid] = hit
        return list(hits.values())

    # -- backfill -------------------------------------------------------------------------------

    def start_backfill(self, day_from: date, day_to: date) -> BackfillState:
        state = BackfillState(day_from.isoformat(), day_to.isoformat(), day_to.isoformat(),
                              days_total=(day_to - day_from).days + 1)
        self.spool.save_progress("backfill", json.dumps(asdict(state)))
        return state

    def backfill_state(self) -> BackfillState | None:
        raw = self.spool.load_progress("backfill")
        return None if raw is None else BackfillState(**json.loads(raw))

    def backfill_step(self, window: str = "", now: Callable[[], datetime] = datetime.now,
                      modalities: Iterable[str] = ()) -> bool:
        """Do one day of the backfill if inside the window; False when idle (finished or outside)."""
        state = self.backfill_state()
        if state is None or state.finished or not in_window(parse_window(window), now().time()):
            return False
        day = date.fromisoformat(state.next_day)
        report = self.pull(self._find(day, day, list(modalities)), Lane.BACKFILL, "backfill")
        state.studies += report.studies
        state.instances += report.instances
        state.failed += report.failed
        state.days_done += 1
        previous = day - timedelta(days=1)
        state.next_day = "" if previous < date.fromisoformat(state.date_from) else previous.isoformat()
        self.spool.save_progress("backfill", json.dumps(asdict(state)))
        return True
