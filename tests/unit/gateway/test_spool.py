"""The gateway spool on a real SQLite file and real files under tmp_path, with an injected clock."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from yunying.gateway.lanes import Lane
from yunying.gateway.sealing import NoSeal, Sealer, make_sealer
from yunying.gateway.spool import Accepted, Item, Spool, SpoolCorrupt, SpoolFull

DATA = Path("/work/shared/dicom")
REAL_CT = DATA / "ct_abdomen_pancreas_tcia" / "1-001.dcm"
KEY = "11" * 32
STUDY_A, STUDY_B, STUDY_C = "1.2.826.0.1.3680043.1.1", "1.2.826.0.1.3680043.1.2", "1.2.826.0.1.3680043.1.3"


class Clock:
    """A clock the test moves by hand (starts at the real time so file mtimes compare sensibly)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def open_spool(tmp_path: Path, clock: Clock, **kwargs: object) -> Spool:
    return Spool(tmp_path / "queue.sqlite3", tmp_path / "spool", clock=clock, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def spool(tmp_path: Path, clock: Clock) -> Iterator[Spool]:
    s = open_spool(tmp_path, clock)
    yield s
    s.close()


def uid(n: int) -> str:
    return f"1.2.826.0.1.3680043.2.{n}"


def payload(n: int, size: int = 100, version: int = 0) -> bytes:
    return f"instance {n} v{version} ".encode().ljust(size, b".")


def put(spool: Spool, n: int, *, study: str = STUDY_A, lane: Lane = Lane.ROUTINE, size: int = 100,
        version: int = 0) -> Accepted:
    return spool.accept(payload(n, size, version), sop_uid=uid(n), study_uid=study, series_uid=study + ".1",
                        lane=lane, source="test")


def claim_all(spool: Spool) -> list[Item]:
    return spool.claim(max_instances=1000, max_bytes=1 << 40)


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def blob_path(spool: Spool, item: Item) -> Path:
    path = spool.blobs.local_path(item.blob_key)
    assert path is not None
    return path


def send(spool: Spool, items: list[Item]) -> None:
    spool.mark_sent({i.id: i.size for i in items})
    spool.release(items)


# -- accept and read back --------------------------------------------------------------------------


def test_accept_real_instance_reads_back_byte_identical(spool: Spool, tmp_path: Path) -> None:
    if not REAL_CT.is_file():
        pytest.skip("shared DICOM test data not available")
    data = REAL_CT.read_bytes()
    assert spool.accept(data, sop_uid=uid(1), study_uid=STUDY_A, series_uid=STUDY_A + ".1",
                        lane=Lane.ROUTINE, source="scp") is Accepted.NEW
    assert spool.study_items(STUDY_A) == {uid(1): "queued"}
    [item] = claim_all(spool)
    assert (item.sop_uid, item.study_uid, item.lane, item.size) == (uid(1), STUDY_A, Lane.ROUTINE, len(data))
    assert blob_path(spool, item).read_bytes() == data  # unsealed: the file is the instance
    assert spool.read(item) == data
    assert files_under(tmp_path / "spool") == [blob_path(spool, item)]


def test_sealed_file_differs_on_disk_and_opens_only_with_its_key(tmp_path: Path, clock: Clock) -> None:
    data = payload(1, size=4096)
    sealed = open_spool(tmp_path, clock, sealer=make_sealer("aes-256-gcm", KEY))
    sealed.accept(data, sop_uid=uid(1), study_uid=STUDY_A, series_uid=STUDY_A + ".1", lane=Lane.ROUTINE, source="t")
    [item] = claim_all(sealed)
    on_disk = blob_path(sealed, item).read_bytes()
    assert on_disk != data
    assert data[:64] not in on_disk  # not merely wrapped: the content is encrypted
    assert sealed.read(item) == data
    sealed.close()

    wrong_key: Sealer = make_sealer("aes-256-gcm", "22" * 32)
    for sealer in (wrong_key, NoSeal()):
        reopened = open_spool(tmp_path, clock, sealer=sealer)
        [again] = claim_all(reopened)
        with pytest.raises(SpoolCorrupt):
            reopened.read(again)
        reopened.close()


def test_duplicates_already_queued_then_already_sent(spool: Spool) -> None:
    assert put(spool, 1) is Accepted.NEW
    assert put(spool, 1) is Accepted.ALREADY_QUEUED
    items = claim_all(spool)
    assert len(items) == 1  # still one row
    send(spool, items)
    assert put(spool, 1) is Accepted.ALREADY_SENT
    assert spool.study_items(STUDY_A) == {uid(1): "sent"}
    assert claim_all(spool) == []


def test_same_uid_new_bytes_replaces_and_removes_old_file(spool: Spool, tmp_path: Path) -> None:
    put(spool, 1, version=0)
    [old] = claim_all(spool)
    send(spool, [old])
    old_file = blob_path(spool, old)
    assert old_file.is_file()

    assert put(spool, 1, version=1) is Accepted.REPLACED
    assert not old_file.exists()
    [new] = claim_all(spool)
    assert new.id == old.id and new.sha256 != old.sha256
    assert spool.read(new) == payload(1, version=1)
    assert files_under(tmp_path / "spool") == [blob_path(spool, new)]
    assert spool.figures().used_bytes == 100  # the old copy no longer counts against the budget


def test_duplicate_in_a_more_urgent_lane_raises_priority(spool: Spool) -> None:
    put(spool, 1, study=STUDY_A, lane=Lane.ROUTINE)
    put(spool, 2, study=STUDY_B, lane=Lane.BACKFILL)
    assert put(spool, 2, study=STUDY_B, lane=Lane.EMERGENCY) is Accepted.ALREADY_QUEUED
    [first] = claim_all(spool)
    assert (first.sop_uid, first.lane) == (uid(2), Lane.EMERGENCY)
    assert put(spool, 1, study=STUDY_A, lane=Lane.BACKFILL) is Accepted.ALREADY_QUEUED  # never lowered
    [second] = claim_all(spool)
    assert second.lane is Lane.ROUTINE


# -- claiming ----------------------------------------------------------------------------------------


def test_claim_order_is_lane_first_regardless_of_arrival(spool: Spool, clock: Clock) -> None:
    put(spool, 1, study=STUDY_C, lane=Lane.BACKFILL)
    clock.advance(1)
    put(spool, 2, study=STUDY_B, lane=Lane.ROUTINE)
    clock.advance(1)
    put(spool, 3, study=STUDY_A, lane=Lane.EMERGENCY)
    claims = [claim_all(spool) for _ in range(4)]
    assert [[i.sop_uid for i in c] for c in claims] == [[uid(3)], [uid(2)], [uid(1)], []]


def test_claim_takes_one_study_and_respects_limits(spool: Spool) -> None:
    put(spool, 101, study=STUDY_B)
    for n in range(1, 6):
        put(spool, n, study=STUDY_A)
    put(spool, 102, study=STUDY_B)
    first = claim_all(spool)
    assert [i.sop_uid for i in first] == [uid(101), uid(102)]  # the whole study, nothing of A
    send(spool, first)

    by_count = spool.claim(max_instances=2, max_bytes=1 << 40)
    assert [i.sop_uid for i in by_count] == [uid(1), uid(2)]
    send(spool, by_count)
    by_bytes = spool.claim(max_instances=100, max_bytes=250)  # 100 + 100 fit, a third would not
    assert [i.sop_uid for i in by_bytes] == [uid(3), uid(4)]
    assert [i.sop_uid for i in claim_all(spool)] == [uid(5)]  # 3 and 4 are in flight
    assert claim_all(spool) == []


def test_claim_hands_out_an_oversized_item_alone(spool: Spool) -> None:
    put(spool, 1, size=5000)
    put(spool, 2, size=100)
    assert [i.sop_uid for i in spool.claim(max_instances=10, max_bytes=1000)] == [uid(1)]
    assert [i.sop_uid for i in spool.claim(max_instances=10, max_bytes=1000)] == [uid(2)]


def test_inflight_items_are_not_claimed_twice_until_released(spool: Spool) -> None:
    put(spool, 1, study=STUDY_A)
    put(spool, 2, study=STUDY_B)
    first = claim_all(spool)
    second = claim_all(spool)
    assert [i.sop_uid for i in first] == [uid(1)]
    assert [i.sop_uid for i in second] == [uid(2)]
    assert claim_all(spool) == []
    spool.release(first)
    assert [i.sop_uid for i in claim_all(spool)] == [uid(1)]


# -- retry, failure, requeue -----------------------------------------------------------------------


def test_mark_retry_delays_until_the_clock_passes(spool: Spool, clock: Clock) -> None:
    put(spool, 1)
    items = claim_all(spool)
    asked: list[int] = []

    def delay_for(attempt: int) -> float:
        asked.append(attempt)
        return 30.0

    spool.mark_retry(items, "cloud unavailable", delay_for)
    spool.release(items)
    assert asked == [1]
    assert claim_all(spool) == []
    clock.advance(29)
    assert claim_all(spool) == []
    clock.advance(1)
    [again] = claim_all(spool)
    assert again.attempts == 1
    spool.mark_retry([again], "again", delay_for)
    assert asked == [1, 2]


def test_ready_all_makes_delayed_items_claimable(spool: Spool) -> None:
    put(spool, 1)
    put(spool, 2, study=STUDY_B)
    items = claim_all(spool)
    spool.mark_retry(items, "down", lambda _attempt: 3600.0)
    spool.release(items)
    assert [i.sop_uid for i in claim_all(spool)] == [uid(2)]
    assert spool.ready_all() == 1
    assert [i.sop_uid for i in claim_all(spool)] == [uid(1)]


def test_mark_failed_then_retry_failed(spool: Spool) -> None:
    put(spool, 1)
    items = claim_all(spool)
    spool.mark_retry(items, "x", lambda _attempt: 0.0)
    spool.mark_failed({items[0].id: "refused by the cloud (failure reason 0xC000)"})
    spool.release(items)
    assert claim_all(spool) == []
    figures = spool.figures()
    assert figures.failed == 1 and figures.queued == 0
    assert any("0xC000" in message for _at, message in figures.last_errors)

    assert spool.retry_failed() == 1
    [again] = claim_all(spool)
    assert again.attempts == 0
    assert spool.read(again) == payload(1)
    assert spool.retry_failed() == 0


def test_requeue_sent_unknown_and_evicted(spool: Spool, clock: Clock) -> None:
    spool.keep_sent_s = 10
    put(spool, 1)
    put(spool, 2)
    put(spool, 4, study=STUDY_C)
    put(spool, 3, study=STUDY_B)  # stays queued
    sent = claim_all(spool)
    send(spool, sent)
    clock.advance(60)
    assert spool.evict_sent() == 200  # both sent copies gone
    [kept] = claim_all(spool)
    assert kept.sop_uid == uid(4)
    send(spool, [kept])  # sent, copy kept

    requeued, missing = spool.requeue([uid(4), uid(1), uid(99), uid(3)])
    assert requeued == 1
    assert sorted(missing) == sorted([uid(1), uid(99)])
    assert spool.study_items(STUDY_A) == {uid(1): "sent", uid(2): "sent"}
    claims = [claim_all(spool), claim_all(spool), claim_all(spool)]
    assert sorted(i.sop_uid for c in claims for i in c) == [uid(3), uid(4)]  # uid 3 not duplicated


def test_evicted_instance_arriving_again_is_queued_again(spool: Spool, clock: Clock) -> None:
    """Reconciliation pulls instances without a local copy again: they must be sent again."""
    spool.keep_sent_s = 10
    put(spool, 1)
    send(spool, claim_all(spool))
    clock.advance(60)
    assert spool.evict_sent() == 100
    assert spool.requeue([uid(1)]) == (0, [uid(1)])
    assert put(spool, 1) is Accepted.REPLACED
    [item] = claim_all(spool)
    assert spool.read(item) == payload(1)
    assert spool.figures().used_bytes == 100


def test_requeue_puts_backfill_items_in_the_routine_lane(spool: Spool) -> None:
    put(spool, 1, lane=Lane.BACKFILL)
    send(spool, claim_all(spool))
    assert spool.requeue([uid(1)]) == (1, [])
    [item] = claim_all(spool)
    assert item.lane is Lane.ROUTINE


# -- housekeeping ------------------------------------------------------------------------------------


def test_evict_sent_respects_keep_sent_s(tmp_path: Path, clock: Clock) -> None:
    spool = open_spool(tmp_path, clock, keep_sent_s=100.0)
    put(spool, 1, study=STUDY_A)
    put(spool, 2, study=STUDY_B)
    put(spool, 3, study=STUDY_C)  # never sent: never evicted
    first = claim_all(spool)
    send(spool, first)
    clock.advance(50)
    second = claim_all(spool)
    send(spool, second)
    [queued] = claim_all(spool)

    clock.advance(40)  # first sent 90 s ago
    assert spool.evict_sent() == 0
    clock.advance(20)  # first 110 s, second 60 s ago
    assert spool.evict_sent() == 100
    assert not blob_path(spool, first[0]).exists()
    assert blob_path(spool, second[0]).exists()
    assert blob_path(spool, queued).exists()
    assert spool.study_items(STUDY_A) == {uid(1): "sent"}  # the row stays, only the copy goes
    assert spool.figures().used_bytes == 200
    spool.close()


def test_disk_budget_evicts_sent_files_then_refuses(tmp_path: Path, clock: Clock) -> None:
    spool = open_spool(tmp_path, clock, budget_bytes=1000, keep_sent_s=86400.0)
    put(spool, 1, study=STUDY_A, size=600)
    [a] = claim_all(spool)
    send(spool, [a])  # young: kept unless space is needed

    assert put(spool, 2, study=STUDY_B, size=600) is Accepted.NEW
    assert not blob_path(spool, a).exists()  # evicted to make room
    assert spool.figures().used_bytes == 600

    before = files_under(tmp_path / "spool")
    with pytest.raises(SpoolFull):
        put(spool, 3, study=STUDY_C, size=600)  # the only other file is still queued
    assert spool.study_items(STUDY_C) == {}
    assert files_under(tmp_path / "spool") == before
    assert spool.figures().used_bytes == 600
    assert put(spool, 4, study=STUDY_C, size=400) is Accepted.NEW  # exactly at the budget still fits
    spool.close()


def test_sweep_removes_orphans_and_stale_partials_only(spool: Spool, tmp_path: Path, clock: Clock) -> None:
    put(spool, 1)
    [item] = claim_all(spool)
    root = tmp_path / "spool"
    referenced = blob_path(spool, item)
    orphan = root / "ab" / "cd" / "orphan"
    young_orphan = root / "ab" / "cd" / "young"
    stale_partial = root / "ab" / "cd" / ".x1.partial"
    young_partial = root / "ab" / "cd" / ".x2.partial"
    orphan.parent.mkdir(parents=True)
    for path in (orphan, young_orphan, stale_partial, young_partial):
        path.write_bytes(b"left by a crash")
    old = clock() - 3600
    for path in (referenced, orphan, stale_partial):
        os.utime(path, (old, old))

    assert spool.sweep(older_than_s=60.0) >= 1
    assert referenced.is_file() and spool.read(item) == payload(1)
    assert young_orphan.is_file() and young_partial.is_file()
    assert not orphan.exists() and not stale_partial.exists()


def test_read_detects_altered_and_missing_files(spool: Spool) -> None:
    put(spool, 1)
    put(spool, 2, study=STUDY_B)
    [one] = claim_all(spool)
    [two] = claim_all(spool)
    path = blob_path(spool, one)
    data = bytearray(path.read_bytes())
    data[10] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(SpoolCorrupt):
        spool.read(one)
    blob_path(spool, two).unlink()
    with pytest.raises(SpoolCorrupt):
        spool.read(two)


# -- figures, jobs, progress, restart ----------------------------------------------------------------


def test_figures(spool: Spool, clock: Clock) -> None:
    put(spool, 1, study=STUDY_A, lane=Lane.ROUTINE)
    clock.advance(10)
    put(spool, 2, study=STUDY_A, lane=Lane.ROUTINE)
    put(spool, 3, study=STUDY_B, lane=Lane.EMERGENCY)
    put(spool, 4, study=STUDY_C, lane=Lane.BACKFILL, size=1000)
    put(spool, 5, study=STUDY_C, lane=Lane.BACKFILL, size=1000)
    clock.advance(20)

    figures = spool.figures()
    assert {k: v.depth for k, v in figures.lanes.items()} == {"emergency": 1, "routine": 2, "backfill": 2}
    assert figures.lanes["routine"].oldest_age_s == 30.0
    assert figures.lanes["emergency"].oldest_age_s == 20.0
    assert figures.queued == 5 and figures.failed == 0 and figures.sent_total == 0
    assert figures.used_bytes == 2300

    [emergency] = claim_all(spool)
    spool.mark_failed({emergency.id: "refused"})
    routine = claim_all(spool)  # in flight, still queued
    backfill = claim_all(spool)
    assert {i.lane for i in routine} == {Lane.ROUTINE} and {i.lane for i in backfill} == {Lane.BACKFILL}
    spool.mark_sent({backfill[0].id: 400, backfill[1].id: 0})  # 0: confirmed by a query, not sent

    figures = spool.figures()
    assert figures.failed == 1 and figures.sent_total == 2
    assert figures.lanes["emergency"].depth == 0 and figures.lanes["emergency"].oldest_age_s == 0.0
    assert figures.lanes["backfill"].depth == 0
    assert (figures.original_bytes, figures.sent_bytes) == (1000, 400)


def test_jobs_submit_next_finish_and_recover(tmp_path: Path, clock: Clock) -> None:
    spool = open_spool(tmp_path, clock)
    assert spool.next_job() is None
    first = spool.submit_job("reconcile", '{"days": 7}')
    second = spool.submit_job("backfill", '{"study": "1.2.3"}')
    assert spool.job(first) == ("pending", None)
    assert spool.next_job() == (first, "reconcile", '{"days": 7}')
    assert spool.next_job() == (second, "backfill", '{"study": "1.2.3"}')
    assert spool.next_job() is None
    spool.finish_job(first, "done", "3 missing")
    assert spool.job(first) == ("done", "3 missing")
    assert spool.job(9999) is None
    spool.close()

    restarted = open_spool(tmp_path, clock)  # the process died while `second` was running
    assert restarted.job(second) == ("running", None)
    restarted.recover_jobs()
    assert restarted.next_job() == (second, "backfill", '{"study": "1.2.3"}')
    assert restarted.job(first) == ("done", "3 missing")
    restarted.close()


def test_progress_save_load_and_survive_restart(tmp_path: Path, clock: Clock) -> None:
    spool = open_spool(tmp_path, clock)
    assert spool.load_progress("backfill") is None
    spool.save_progress("backfill", "20240101")
    spool.save_progress("backfill", "20240102")
    spool.save_progress("pull", "x")
    assert spool.load_progress("backfill") == "20240102"
    spool.close()
    reopened = open_spool(tmp_path, clock)
    assert reopened.load_progress("backfill") == "20240102"
    assert reopened.load_progress("pull") == "x"
    reopened.close()


def test_reopening_keeps_queue_states_files_and_budget(tmp_path: Path, clock: Clock) -> None:
    spool = open_spool(tmp_path, clock, budget_bytes=1000)
    put(spool, 1, study=STUDY_A, lane=Lane.EMERGENCY)
    put(spool, 2, study=STUDY_B)
    put(spool, 3, study=STUDY_C, lane=Lane.BACKFILL)
    put(spool, 4, study=STUDY_C, lane=Lane.BACKFILL)
    [emergency] = claim_all(spool)
    send(spool, [emergency])
    [routine] = claim_all(spool)
    spool.mark_failed({routine.id: "refused"})
    inflight = claim_all(spool)  # claimed, never released: the process dies mid-upload
    assert len(inflight) == 2
    before = spool.figures()
    spool.close()

    clock.advance(5)
    reopened = open_spool(tmp_path, clock, budget_bytes=1000)
    after = reopened.figures()
    assert after.used_bytes == before.used_bytes == 400
    assert (after.failed, after.sent_total, after.queued) == (1, 1, 2)
    assert after.lanes["backfill"].oldest_age_s == 5.0
    assert put(reopened, 1, study=STUDY_A, lane=Lane.EMERGENCY) is Accepted.ALREADY_SENT
    again = claim_all(reopened)  # nothing in flight survives a restart
    assert sorted(i.sop_uid for i in again) == [uid(3), uid(4)]
    assert [reopened.read(i) for i in again] == [payload(3), payload(4)]
    with pytest.raises(SpoolFull):  # the budget still counts the files from before the restart
        put(reopened, 5, study=STUDY_A, size=701)  # 300 queued or failed + 701 > 1000
    reopened.close()


def test_a_refused_instance_received_again_is_queued_again(spool: Spool) -> None:
    put(spool, 1)
    (item,) = claim_all(spool)
    spool.release([item])
    spool.mark_failed({item.id: "refused by the cloud (failure reason 0xC000)"})
    assert claim_all(spool) == []
    assert put(spool, 1) is Accepted.REPLACED  # the sender's copy: a fresh chance (e.g. after a cloud fix)
    assert [i.sop_uid for i in claim_all(spool)] == [uid(1)]


def test_pending_bytes_count_only_what_is_not_yet_in_the_cloud(spool: Spool) -> None:
    put(spool, 1, size=100)
    put(spool, 2, size=300)
    items = claim_all(spool)
    send(spool, [i for i in items if i.sop_uid == uid(1)])
    figures = spool.figures()
    assert figures.used_bytes == 400 and figures.pending_bytes == 300


def test_more_urgent_waiting_sees_only_ready_items_not_in_flight(spool: Spool) -> None:
    put(spool, 1, lane=Lane.BACKFILL)
    assert not spool.more_urgent_waiting(Lane.BACKFILL)
    put(spool, 2, study=STUDY_B, lane=Lane.EMERGENCY)
    assert spool.more_urgent_waiting(Lane.BACKFILL) and spool.more_urgent_waiting(Lane.ROUTINE)
    assert not spool.more_urgent_waiting(Lane.EMERGENCY)
    urgent = spool.claim(10, 1 << 30)
    assert [i.sop_uid for i in urgent] == [uid(2)]
    assert not spool.more_urgent_waiting(Lane.BACKFILL)  # already on its way
