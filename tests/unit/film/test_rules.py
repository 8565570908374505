"""The film's selection rules as pure functions (docs/cloudfilm.md "Films")."""

from __future__ import annotations

from yunying.film.layout import LAYOUTS, choose_layout, preset
from yunying.film.select import share, spread


def test_layouts_subsampling_and_presets() -> None:
    assert [choose_layout("CT", n).name for n in (1, 20, 21, 500)] == ["4x5", "4x5", "5x6", "5x6"]
    assert [choose_layout("CR", n).name for n in (1, 2, 3)] == ["1x1", "1x2", "1x2"]
    assert choose_layout("MG", 4).name == "2x2" and choose_layout("XA", 1).name == "3x4"
    assert all(list(options) == sorted(options, key=lambda lay: lay.cells) for options in LAYOUTS.values())

    assert spread(5, 5) == [0, 1, 2, 3, 4] and spread(5, 1) == [2] and spread(10, 3) == [0, 4, 9]
    assert spread(100, 10)[0] == 0 and spread(100, 10)[-1] == 99 and len(set(spread(100, 10))) == 10
    # Room shared in proportion (largest remainder), at least one per series, never more than a series has.
    assert share([10, 20], 40) == [10, 20]
    assert share([100, 50, 10], 32) == [20, 10, 2]
    assert share([300, 1, 1], 10) == [8, 1, 1]
    assert sum(share([7, 7, 7], 10)) == 10 and max(share([7, 7, 7], 10)) == 4
    assert share([5, 5, 5], 2) == [1, 1, 0]

    assert preset("CT", "head") == (40.0, 80.0) and preset("ct", "KNEE") == (40.0, 400.0)
    assert preset("MR", "HEAD") is None
