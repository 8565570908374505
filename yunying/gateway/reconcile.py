"""Gap detection (GW-9, GW-12): what the hospital PACS holds versus what the cloud holds.

Over a range of days: the PACS's studies (one C-FIND for the range, split when the PACS may have
capped the answer), each study's instances (series → instance C-FIND), the
cloud's instances of that study (QIDO-RS). Instances missing from the cloud and not waiting in
the queue are re-sent: from the spool when a local copy is still there, otherwise pulled from the
PACS again. The report per day is kept for the status page and the cloud's heartbeat.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

from yunying.gateway.cloud import CloudClient
from yunying.gateway.lanes import Lane
from yunying.gateway.pacs import PacsClient, PacsError, StudyHit
from yunying.gateway.pull import Puller
from yunying.gateway.spool import ItemState, Spool

log = logging.getLogger(__name__)


@dataclass
class DayReport:
    day: str
    studies: int = 0
    pacs_instances: int = 0
    cloud_instances: int = 0
    queued: int = 0  # not yet uploaded: not a gap
    missing: int = 0
    resent_from_spool: int = 0
    pulled_again: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class ReconcileReport:
    days: list[DayReport] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return sum(d.missing for d in self.days)

    def to_json(self) -> str:
        busy = [asdict(d) for d in self.days if d.studies or d.errors]  # quiet days say nothing
        return json.dumps({"days_checked": len(self.days), "days": busy, "missing": self.missing})


def _day(text: str) -> date | None:
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except (ValueError, IndexError):
        return None


class Reconciler:
    def __init__(self, pacs: PacsClient, cloud: CloudClient, spool: Spool, puller: Puller, *,
                 max_results: int = 500) -> None:
        self.max_results = max_results  # a PACS answering this many studies may have cut the list short
        self.pacs = pacs
        self.cloud = cloud
        self.spool = spool
        self.puller = puller

    def run(self, days: int, until: date | None = None) -> ReconcileReport:
        last = until or date.today()
        first = last - timedelta(days=days - 1)
        reports = {first + timedelta(days=n): DayReport((first + timedelta(days=n)).isoformat()) for n in range(days)}
        try:
            hits = self._studies(first, last)
        except PacsError as exc:
            for out in reports.values():
                out.errors.append(str(exc))
            hits = []
        for hit in hits:
            day = _day(hit.study_date)
            found = reports.get(day) if day is not None else None
            if found is None:
                continue
            found.studies += 1
            try:
                self._study(hit.study_uid, found)
            except Exception as exc:  # one study's trouble must not hide the others' gaps
                found.errors.append(f"{type(exc).__name__}: {exc}")
        report = ReconcileReport([reports[d] for d in sorted(reports, reverse=True)])
        self.spool.save_progress("reconcile", report.to_json())
        if report.missing:
            log.warning("reconciliation: %d instance(s) were missing from the cloud and are being re-sent", report.missing)
        return report

    def _studies(self, first: date, last: date) -> list[StudyHit]:
        """The PACS's studies in a date range: one C-FIND, split in halves while the PACS may have capped it."""
        hits = self.pacs.find_studies(date_from=first, date_to=last)
        if len(hits) < self.max_results or first == last:
            return hits
        middle = first + (last - first) / 2
        return self._studies(first, middle) + self._studies(middle + timedelta(days=1), last)

    def _study(self, study_uid: str, out: DayReport) -> None:
        series_of: dict[str, str] = {}
        for series in self.pacs.find_series(study_uid):
            for uid in self.pacs.find_instances(study_uid, series.series_uid):
                series_of[uid] = series.series_uid
        at_pacs = set(series_of)
        in_cloud = self.cloud.study_instances(study_uid)
        local = self.spool.study_items(study_uid)
        out.pacs_instances += len(at_pacs)
        out.cloud_instances += len(at_pacs & in_cloud)
        gaps = at_pacs - in_cloud
        waiting = {uid for uid in gaps if local.get(uid) == ItemState.QUEUED}
        out.queued += len(waiting)
        missing = gaps - waiting
        if not missing:
            return
        out.missing += len(missing)
        requeued, not_local = self.spool.requeue(sorted(missing))
        out.resent_from_spool += requeued
        by_series: dict[str, list[str]] = {}
        for uid in not_local:
            by_series.setdefault(series_of[uid], []).append(uid)
        for series_uid, uids in by_series.items():
            out.pulled_again += self.puller.fetch(study_uid, Lane.ROUTINE, "reconcile", series_uid=series_uid, sop_uids=uids)
