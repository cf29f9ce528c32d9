"""Query windows: behind the ingestion delay, on the minute grid, meeting exactly run after run."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pettwin_checks.gcp.windows import next_window

pytestmark = pytest.mark.unit

OPTIONS = {"ingestion_delay": 180, "initial_lookback": 60, "max_lookback": 3600}


def test_first_window_looks_back_from_the_settled_minute():
    window = next_window(10_000.0, None, **OPTIONS)  # settled: 9820 -> minute 9780
    assert (window.start, window.end, window.skipped_seconds) == (9720.0, 9780.0, 0.0)


def test_next_window_starts_where_the_last_ended():
    first = next_window(10_000.0, None, **OPTIONS)
    second = next_window(10_130.0, first.end, **OPTIONS)  # settled 9950 -> 9900
    assert (second.start, second.end) == (first.end, 9900.0)


def test_nothing_new_yet_gives_no_window():
    assert next_window(10_010.0, 9780.0, **OPTIONS) is None  # settled 9830: minute still 9780
    assert next_window(10_000.0, 9900.0, **OPTIONS) is None  # the last end is ahead (clock moved back)


def test_long_outage_caps_the_window_and_says_what_was_skipped():
    window = next_window(100_000.0, 10_020.0, **OPTIONS)
    assert window.end == 99_780.0
    assert window.start == 99_780.0 - 3600
    assert window.skipped_seconds == (99_780.0 - 3600) - 10_020.0


def test_a_last_end_off_the_grid_restarts_on_the_grid():
    window = next_window(10_000.0, 9_745.5, **OPTIONS)
    assert window.start % 60 == 0 and window.end == 9780.0


@given(st.floats(1e9, 2e9), st.lists(st.floats(0, 900), min_size=1, max_size=30))
def test_successive_runs_cover_every_minute_exactly_once(start, gaps):
    now, last_end, covered = start, None, []
    for gap in gaps:
        now += gap
        window = next_window(now, last_end, ingestion_delay=240, initial_lookback=60, max_lookback=86400)
        if window is None:
            continue
        assert window.start % 60 == 0 and window.end % 60 == 0 and window.end > window.start
        assert window.end <= now - 240
        covered.append((window.start, window.end))
        last_end = window.end
    for (_, previous_end), (next_start, _) in itertools.pairwise(covered):
        assert next_start == previous_end  # no gap, no overlap
