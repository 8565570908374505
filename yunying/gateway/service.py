"""The gateway process: receiver, drop folder, upload streams and a scheduler, composed once."""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import asdict
from datetime import date
from typing import Any

from yunying.gateway.cloud import CloudClient, CloudRejectedRequest, CloudUnavailable
from yunying.gateway.dropfolder import DropFolder
from yunying.gateway.intake import Intake
from yunying.gateway.lanes import LaneClassifier, parse_lane_rules
from yunying.gateway.pacs import PacsClient, PacsPeer
from yunying.gateway.preparation import PrepareConfig, PreparePool
from yunying.gateway.pull import Puller
from yunying.gateway.receiver import StorageReceiver
from yunying.gateway.reconcile import Reconciler
from yunying.gateway.sealing import make_sealer
from yunying.gateway.settings import GatewaySettings
from yunying.gateway.spool import Spool
from yunying.gateway.status import heartbeat_body, snapshot
from yunying.gateway.uploader import Uploader

log = logging.getLogger(__name__)
HOUSEKEEPING_S = 300.0


class Gateway:
    """Everything one gateway runs. ``start()`` returns at once; ``stop()`` ends it cleanly."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.spool = Spool(settings.queue_db, settings.spool_dir,
                           sealer=make_sealer(settings.spool_encryption, settings.spool_key),
                           budget_bytes=settings.disk_budget_bytes, keep_sent_s=settings.keep_sent_s)
        self.intake = Intake(self.spool, LaneClassifier(parse_lane_rules(settings.lane_rules)))
        self.receiver = StorageReceiver(self.intake, ae_title=settings.ae_title, host=settings.dicom_host,
                                        port=settings.dicom_port, allowed_calling_aes=settings.allowed_calling_aes)
        self.drop = DropFolder(settings.drop_dir, self.intake) if settings.drop_dir else None
        self.cloud = CloudClient(settings) if settings.cloud_url else None
        self.prepare = PreparePool(PrepareConfig(settings.compression, tuple(settings.protection_rules),
                                                 settings.protection_secret.encode(), settings.protection_hash),
                                   settings.compression_workers)
        self.uploader = Uploader(self.spool, self.cloud, self.prepare, settings) if self.cloud else None
        if self.uploader is not None:
            self.intake.on_queued = self.uploader.wake
        self.pacs = (PacsClient(PacsPeer.parse(settings.pacs, settings.ae_title), timeout=settings.pacs_timeout_s)
                     if settings.pacs else None)
        self.puller = (Puller(self.pacs, self.intake, self.spool, own_ae=settings.ae_title,
                              retrieve=settings.pacs_retrieve) if self.pacs else None)
        self.reconciler = (Reconciler(self.pacs, self.cloud, self.spool, self.puller)
                           if self.pacs and self.cloud and self.puller else None)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._last: dict[str, float] = {}

    def start(self) -> None:
        self.spool.recover_jobs()
        self.spool.sweep()
        self.receiver.start()
        if self.uploader is not None:
            self.uploader.start()
        for name, target in (("scheduler", self._schedule), ("jobs", self._jobs)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("gateway %s started (cloud %s)", self.settings.name, "configured" if self.cloud else "not configured")

    def stop(self) -> None:
        self._stop.set()
        self.receiver.stop()
        if self.uploader is not None:
            self.uploader.stop()
        for thread in self._threads:
            thread.join(timeout=30)
        if self.cloud is not None:
            self.cloud.close()
        self.prepare.close()
        self.spool.close()

    def wait(self) -> None:
        while not self._stop.wait(1.0):
            pass

    # -- periodic work --------------------------------------------------------------------------

    def _due(self, name: str, interval: float) -> bool:
        if interval <= 0:
            return False
        now = time.monotonic()
        if now - self._last.get(name, -1e12) >= interval:
            self._last[name] = now
            return True
        return False

    def _schedule(self) -> None:
        running: dict[str, threading.Thread] = {}
        while not self._stop.wait(0.5):
            for name, interval, action in (
                    ("drop", self.settings.drop_poll_s if self.drop else 0, self._scan_drop),
                    ("heartbeat", self.settings.heartbeat_interval_s if self.cloud else 0, self.send_heartbeat),
                    ("housekeeping", HOUSEKEEPING_S, self._housekeeping),
                    ("pull", self.settings.pull_interval_s if self.puller else 0, self._pull_recent),
                    ("reconcile", self.settings.reconcile_interval_s if self.reconciler else 0, self._reconcile),
                    ("backfill", 5.0 if self.puller else 0, self._backfill)):
                if (name not in running or not running[name].is_alive()) and self._due(name, interval):
                    running[name] = threading.Thread(target=self._guarded, args=(name, action), name=name, daemon=True)
                    running[name].start()

    def _guarded(self, name: str, action: Any) -> None:
        try:
            action()
        except Exception as exc:
            log.warning("%s failed: %s: %s", name, type(exc).__name__, exc)
            self.spool.event(f"{name}-error", f"{type(exc).__name__}: {exc}")

    def _scan_drop(self) -> None:
        assert self.drop is not None
        self.drop.scan_once()

    def _housekeeping(self) -> None:
        self.spool.evict_sent()
        self.spool.sweep()

    def _pull_recent(self) -> None:
        assert self.puller is not None
        self.puller.pull_recent(self.settings.pull_days, self.settings.pull_modalities)

    def _reconcile(self) -> None:
        assert self.reconciler is not None
        self.reconciler.run(self.settings.reconcile_days)

    def _room_for_history(self) -> bool:
        """Backfill waits while the spool is filling with data the cloud has not taken (an outage)."""
        figures = self.spool.figures()
        return figures.pending_bytes < self.settings.disk_warn_fraction * figures.budget_bytes / 2

    def _backfill(self) -> None:
        assert self.puller is not None
        while not self._stop.is_set() and self._room_for_history() and self.puller.backfill_step(self.settings.backfill_window,
                                                                    modalities=self.settings.pull_modalities):
            pass

    def status(self) -> dict[str, Any]:
        with self.spool.reading() as db:
            return snapshot(self.settings, self.spool.figures(), db, extra={"codecs": self.prepare.figures()})

    def send_heartbeat(self) -> None:
        url = self.settings.effective_heartbeat_url
        if self.cloud is None or not url:
            return
        try:
            body = heartbeat_body(self.status())
            self.cloud.heartbeat(url, body)
        except (CloudUnavailable, CloudRejectedRequest) as exc:
            log.info("heartbeat not delivered: %s", exc)

    # -- jobs from the CLI ----------------------------------------------------------------------

    def _jobs(self) -> None:
        while not self._stop.wait(0.5):
            job = self.spool.next_job()
            if job is None:
                continue
            job_id, kind, raw = job
            try:
                result = self.run_job(kind, json.loads(raw))
                self.spool.finish_job(job_id, "done", json.dumps(result))
            except Exception as exc:
                self.spool.finish_job(job_id, "error", json.dumps({"error": f"{type(exc).__name__}: {exc}"}))

    def run_job(self, kind: str, args: dict[str, Any]) -> dict[str, Any]:
        if kind == "retry-failed":
            count = self.spool.retry_failed()
            if self.uploader is not None:
                self.uploader.wake()
            return {"requeued": count}
        if self.puller is None:
            raise RuntimeError("no PACS configured (pacs = \"AET@host:port\")")
        if kind == "pull":
            if args.get("all"):
                report = self.puller.pull_all()
            elif args.get("accessions"):
                report = self.puller.pull_accessions(args["accessions"])
            else:
                report = self.puller.pull_recent(int(args.get("days", 1)), args.get("modalities") or [])
            return asdict(report)
        if kind == "backfill":
            state = self.puller.start_backfill(date.fromisoformat(args["from"]), date.fromisoformat(args["to"]))
            return asdict(state)
        if kind == "reconcile":
            if self.reconciler is None:
                raise RuntimeError("reconciliation needs both a PACS and a cloud")
            until = date.fromisoformat(args["until"]) if args.get("until") else None
            result: dict[str, Any] = json.loads(
                self.reconciler.run(int(args.get("days", self.settings.reconcile_days)), until).to_json())
            return result
        raise ValueError(f"unknown job {kind!r}")
