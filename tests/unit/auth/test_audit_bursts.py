"""Per-image audit coalescing: the first read of a burst is recorded, repeats within the window are not,
other users/studies/kinds are separate bursts, and the window ends."""

from __future__ import annotations

import time

from yunying.auth.audit_bursts import AuditBursts


def test_first_of_burst_then_quiet_until_the_window_ends() -> None:
    bursts = AuditBursts(0.2)
    assert bursts.first_of_burst("rad", "1.2.3", "frames")
    assert not bursts.first_of_burst("rad", "1.2.3", "frames")
    assert bursts.first_of_burst("rad", "1.2.3", "thumbnail")  # another kind of request
    assert bursts.first_of_burst("other", "1.2.3", "frames")  # another user
    assert bursts.first_of_burst("rad", "1.2.4", "frames")  # another study
    time.sleep(0.25)
    assert bursts.first_of_burst("rad", "1.2.3", "frames")


def test_zero_window_records_everything() -> None:
    bursts = AuditBursts(0)
    assert all(bursts.first_of_burst("rad", "1.2.3", "frames") for _ in range(3))
