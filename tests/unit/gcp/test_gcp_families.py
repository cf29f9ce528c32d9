"""The GCP engine's pure part: families, modes, the windows each mode reads, values, the cardinality cap."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pettwin_checks.gcp.distribution import Distribution
from pettwin_checks.gcp.families import (
    SPARSE_LOOKBACK,
    Family,
    Lookbacks,
    Sample,
    cap_samples,
    family_window,
    series_value,
)
from pettwin_checks.gcp.timeseries import Point, TimeSeries, TimeSeriesQuery

pytestmark = pytest.mark.unit

LOOKBACKS = Lookbacks(ingestion_delay=180, initial_lookback=300, max_lookback=3600, gauge_lookback=600)


def series(values):
    points = [Point(60.0 * i, 60.0 * (i + 1), v) for i, v in enumerate(values)]
    return TimeSeries("m", {}, "r", {}, "DELTA", "INT64", points)


def test_series_value_by_mode():
    assert series_value(series([3, 4]), "window") == 7
    assert series_value(series([3, 9, 4]), "peak") == 9
    assert series_value(series([3, 4]), "span") == 7
    assert series_value(series([3, 4]), "newest") == 4  # points sorted by end time, not list order
    assert series_value(series([]), "window") is None
    assert series_value(series([True]), "window") is None  # boolean where a number is expected
    dist = Distribution(2, 5.0, (1.0,), (0, 2))
    assert series_value(series([dist, dist]), "window").count == 4
    assert series_value(series([dist, dist]), "span").count == 4
    assert series_value(series([dist, dist]), "peak") is None


def test_the_window_each_mode_reads():
    now = 10_000.0  # settled up to floor((now - 180) / 60) * 60 = 9780
    first = family_window("window", now, None, LOOKBACKS)
    assert (first.start, first.end) == (9480.0, 9780.0)
    following = family_window("window", now + 120, first.end, LOOKBACKS)
    assert (following.start, following.end) == (9780.0, 9900.0)  # starts where the last one ended
    assert family_window("window", now + 10, first.end, LOOKBACKS) is None  # no new settled minute
    for mode in ("span", "newest", "peak"):
        window = family_window(mode, now, first.end, LOOKBACKS)
        assert (window.start, window.end) == (9180.0, 9780.0)  # the last gauge_lookback, every run
    sparse = family_window("sparse", now, None, LOOKBACKS)
    assert sparse.end - sparse.start == SPARSE_LOOKBACK


def test_a_family_has_a_query_or_inputs_and_a_known_mode():
    query = TimeSeriesQuery("x.googleapis.com/m")
    assert not Family("a", query).derived
    derived = Family("b", inputs=("a", "c"))
    assert (
        derived.derived
        and derived.ready({"a": []})
        and not Family("d", inputs=("a", "c"), needs_all=True).ready({"a": []})
    )
    with pytest.raises(ValueError, match="either a query or inputs"):
        Family("e")
    with pytest.raises(ValueError, match="mode"):
        Family("f", query, "latest")


@given(
    st.lists(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 50), st.integers(-100, 100)), max_size=40),
    st.integers(1, 10),
)
def test_cap_keeps_at_most_the_budget_per_name_and_values_unchanged(rows, budget):
    unique = {(name, key): value for name, key, value in rows}  # one sample per (name, tag set)
    samples = [Sample(name, "gauge", float(value), (f"k:{key}",)) for (name, key), value in unique.items()]
    kept, dropped = cap_samples(samples, budget)
    for name in ("a", "b"):
        total = len([s for s in samples if s.name == name])
        assert len([s for s in kept if s.name == name]) == min(total, budget)
    assert set(kept) <= set(samples)
    assert dropped == max([0] + [len([s for s in samples if s.name == n]) - budget for n in ("a", "b")])
