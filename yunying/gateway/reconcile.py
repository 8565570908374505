"""Gap detection (GW-9, GW-12): what the hospital PACS holds versus what the cloud holds.

Per day: the PACS's studies (C-FIND), each study's instances (series → instance C-FIND), the
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
from yunying.gateway.pacs import PacsClient, PacsError
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
        return json.dumps({"days": [asdict(d) for d in self.days], "missing": self.missing})


class Reconciler:
    def __init__(self, pacs: PacsClient, cloud: CloudClient, spool: Spool, puller: Puller) -> None:
        self.pacs = pacs
        self.cloud = cloud
        self.spool = spool
        self.puller = puller

    def run(self, days: int, until: date | None = None) -> ReconcileReport:
        last = until or date.today()
        report = ReconcileReport([self.day(last - timedelta(days=n)) for n in range(days)])
        self.spool.save_progress("reconcile", report.to_json())
        if report.missing:
            log.warning("reconciliation: %d instance(s) were missing from the cloud and are being re-sent", report.missing)
        return report

    def day(self, day: date) -> DayReport:
        out = DayReport(day.isoformat())
        try:
            hits = self.pacs.find_studies(date_from=day, date_to=day)
        except PacsError as exc:
            out.errors.append(str(exc))
            return out
        for hit in hits:
            out.studies += 1
            try:
                self._study(hit.study_uid, out)
            except Exception as exc:  # one study's trouble must not hide the others' gaps
                out.errors.append(f"{type(exc).__name__}: {exc}")
        return out

    def _study(self, study_uid: str, out: DayReport) -> None:
        at_pacs: set[str] = set()
        for series in self.pacs.find_series(study_uid):
            at_pacs.update(self.pacs.find_instances(study_uid, series.series_uid))
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
        if not_local:
            out.pulled_again += self.puller.fetch(study_uid, Lane.ROUTINE, "reconcile", sop_uids=not_local)
