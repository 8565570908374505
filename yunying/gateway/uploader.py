"""Upload streams: take the most urgent ready batch from the spool, prepare it, STOW-RS it.

* Emergency first: a stream never starts a less urgent lane while a more urgent batch is in
  flight, each claim takes the most urgent, oldest ready study, and a batch being prepared stops
  early (sending what is ready) as soon as something more urgent is waiting.
* Resumable: a batch is at most ``batch_max_instances`` / ``batch_max_bytes``, and every instance
  the cloud confirms is marked sent at once. Before a batch that failed before is sent again, the
  cloud is asked (QIDO-RS) which of its instances it already holds: those are not sent again.
* An unreachable cloud (network, timeout, 5xx, credentials) pauses all streams with exponential
  back-off (with jitter): an outage is the cloud's state, not the items', so when it ends the most
  urgent items go first, whatever order they failed in. Per-instance retries (the cloud answered
  "out of resources" for one instance) back off per item.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

from yunying.gateway.cloud import CloudClient, CloudRejectedRequest, CloudUnavailable
from yunying.gateway.compress import Compressed
from yunying.gateway.lanes import Lane
from yunying.gateway.settings import GatewaySettings
from yunying.gateway.spool import Item, Spool, SpoolCorrupt

log = logging.getLogger(__name__)

Prepare = Callable[[bytes], Compressed]


class Uploader:
    """``settings.upload_streams`` threads draining the spool into the cloud."""

    def __init__(self, spool: Spool, cloud: CloudClient, prepare: Prepare, settings: GatewaySettings) -> None:
        self.spool = spool
        self.cloud = cloud
        self.prepare = prepare
        self.settings = settings
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lanes_in_flight: list[Lane] = []
        self._lane_lock = threading.Lock()
        self._failures = 0  # consecutive "cloud unavailable" outcomes
        self._paused_until = 0.0

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        for n in range(self.settings.upload_streams):
            thread = threading.Thread(target=self._run, name=f"upload-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout=self.settings.request_timeout_s + 5)

    def wake(self, _lane: Lane | None = None) -> None:
        with self._wake:
            self._wake.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.step()
            except Exception:  # a bug must not stop the stream; the items stay queued
                log.exception("upload stream error")
                worked = False
            if not worked:
                with self._wake:
                    self._wake.wait(timeout=0.5)

    # -- one batch ------------------------------------------------------------------------------

    def _claim(self) -> list[Item]:
        with self._lane_lock:
            if time.monotonic() < self._paused_until:
                return []
            items = self.spool.claim(self.settings.batch_max_instances, self.settings.batch_max_bytes)
            if not items:
                return []
            lane = min(i.lane for i in items)
            if self._lanes_in_flight and min(self._lanes_in_flight) < lane:
                self.spool.release(items)  # a more urgent lane is on the wire: leave it the bandwidth
                return []
            self._lanes_in_flight.append(lane)
            return items

    def step(self) -> bool:
        """Upload one batch; False when there was nothing ready."""
        items = self._claim()
        if not items:
            return False
        lane = min(i.lane for i in items)
        try:
            self._upload(items)
        finally:
            self.spool.release(items)
            with self._lane_lock:
                self._lanes_in_flight.remove(lane)
            self.wake()
        return True

    def backoff(self, attempt: int) -> float:
        delay = min(self.settings.retry_max_s, self.settings.retry_base_s * 2 ** max(0, attempt - 1))
        return float(delay * random.uniform(0.8, 1.2))

    def _upload(self, items: list[Item]) -> None:
        try:
            items = self._skip_confirmed(items)
            if not items:
                return
            parts: list[tuple[str, bytes]] = []
            sizes: dict[str, int] = {}
            ready: list[Item] = []
            corrupt: dict[int, str] = {}
            lane = min(i.lane for i in items)
            for item in items:
                if ready and self.spool.more_urgent_waiting(lane):
                    break  # send what is prepared now; the rest goes back to the queue behind the urgent study
                try:
                    prepared = self.prepare(self.spool.read(item))
                except SpoolCorrupt as exc:
                    corrupt[item.id] = str(exc)
                    continue
                except Exception as exc:  # e.g. a protection rule that cannot apply: this item, not the queue
                    corrupt[item.id] = f"could not be prepared for upload ({type(exc).__name__}: {exc})"
                    continue
                parts.append((item.sop_uid, prepared.data))
                sizes[item.sop_uid] = len(prepared.data)
                ready.append(item)
            self.spool.mark_failed(corrupt)
            if not parts:
                return
            self.spool.note_sent_attempt(ready)
            outcome = self.cloud.store(parts)
        except CloudUnavailable as exc:
            with self._lane_lock:
                self._failures += 1
                delay = self.backoff(self._failures)
                self._paused_until = max(self._paused_until, time.monotonic() + delay)
            self.spool.event("cloud-unavailable", str(exc))
            log.warning("cloud unavailable, uploads paused %.1f s: %s", delay, exc)
            return
        except CloudRejectedRequest as exc:
            if len(items) == 1:
                self.spool.mark_failed({items[0].id: str(exc)})
                return
            log.warning("cloud refused a batch of %d (%s); sending them one by one", len(items), exc)
            for item in items:  # find the culprit; the others go through
                self._upload([item])
            return
        by_uid = {i.sop_uid: i for i in ready}
        self.spool.mark_sent({by_uid[uid].id: sizes[uid] for uid in outcome.stored if uid in by_uid})
        self.spool.mark_failed({by_uid[uid].id: reason for uid, reason in outcome.refused.items() if uid in by_uid})
        retry = [by_uid[uid] for uid in outcome.retry if uid in by_uid]
        if retry:
            self.spool.mark_retry(retry, next(iter(outcome.retry.values())), self.backoff)
        if outcome.stored and self._failures:
            with self._lane_lock:
                self._failures = 0
            self.spool.ready_all()  # the cloud is back: everything waiting may go now
            self.wake()

    def _skip_confirmed(self, items: list[Item]) -> list[Item]:
        """For a batch sent before without an answer, don't resend what the cloud already holds."""
        if not any(i.sends for i in items):
            return items
        held = self.cloud.study_instances(items[0].study_uid)
        confirmed = {i.id: 0 for i in items if i.sop_uid in held}
        if confirmed:
            self.spool.mark_sent(confirmed)
            log.info("%d instance(s) already in the cloud after an interrupted upload; not resent", len(confirmed))
        return [i for i in items if i.id not in confirmed]
