"""The newest point of rarely written series, kept as JSON in the persistent cache."""

import pytest

from pettwin_checks.gcp.snapshot import Snapshot
from pettwin_checks.gcp.timeseries import Point, TimeSeries

pytestmark = pytest.mark.unit


def limit_series(*values):
    points = [Point(60.0 * i, 60.0 * i, v) for i, v in enumerate(values)]
    return TimeSeries(
        "serviceruntime.googleapis.com/quota/limit",
        {"quota_metric": "q", "limit_name": "L"},
        "consumer_quota",
        {"location": "us-central1"},
        "GAUGE",
        "INT64",
        points,
    )


def test_round_trip_keeps_each_series_newest_point_and_when_it_was_read():
    snapshot = Snapshot(1000.0, [limit_series(30, 32)])
    loaded = Snapshot.loads(snapshot.dumps())
    assert loaded.fetched_at == 1000.0 and loaded.age(4600.0) == 3600.0
    (series,) = loaded.series
    assert series.identity == limit_series().identity
    assert series.points == [Point(60.0, 60.0, 32)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{not json",
        '{"fetched_at": 1}',
        '{"fetched_at": 1, "series": [[1, 2]]}',
        '{"fetched_at": 1, "series": [["m", {}, "r", {}, "G", "I", 0, 0, "32"]]}',
    ],
)
def test_an_unreadable_entry_is_read_anew(text):
    assert Snapshot.loads(text) is None
