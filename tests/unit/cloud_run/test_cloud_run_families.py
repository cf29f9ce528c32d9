"""The Cloud Run check's family table: what each family's series become, whatever shape Google sends them in."""

from __future__ import annotations

import pytest

from pettwin_checks.cloud_run.families import build_families, container_shape
from pettwin_checks.gcp.distribution import Distribution
from pettwin_checks.gcp.timeseries import Point, TimeSeries

pytestmark = pytest.mark.unit

TAGS = ("service_name:api", "revision_name:api-00002", "location:europe-west1")


def family(key, app_container=None):
    return next(f for f in build_families(["api"], app_container) if f.name == key)


def series(metric_labels, points, revision="api-00002"):
    return TimeSeries(
        "m",
        metric_labels,
        "cloud_run_revision",
        {"service_name": "api", "revision_name": revision, "location": "europe-west1"},
        "DELTA",
        "INT64",
        points,
    )


def utilization(fraction_bucket: int, count: int = 4) -> Distribution:
    bounds = tuple(round(0.05 * i, 2) for i in range(21))
    counts = [0] * 22
    counts[fraction_bucket] = count
    return Distribution(count, 0.05 * fraction_bucket - 0.025, bounds, tuple(counts))


def test_counts_sum_the_window():
    answer = [series({"response_code_class": "2xx"}, [Point(60, 120, 7), Point(120, 180, 11)])]
    (only,) = family("request_count").samples(answer)
    assert (only.kind, only.name, only.value, only.tags) == (
        "count",
        "request.count",
        18,
        (*TAGS, "response_code_class:2xx"),
    )


def test_probe_failures_keep_only_unhealthy_but_report_zero():
    answer = [
        series({"container_name": "app", "probe_type": "Liveness", "is_healthy": "true"}, [Point(0, 60, 6)]),
        series({"container_name": "app", "probe_type": "Liveness", "is_healthy": "false"}, [Point(0, 60, 2)]),
        series({"container_name": "app", "probe_type": "Startup", "is_healthy": "true"}, [Point(0, 60, 1)]),
    ]
    result = {s.tags[-1]: s.value for s in family("completed_probe_count").samples(answer)}
    assert result == {"probe_type:Liveness": 2, "probe_type:Startup": 0}


def test_gauge_takes_newest_point_and_utilization_is_percent():
    answer = [series({"state": "active"}, [Point(0, 60, 3), Point(60, 120, 4)])]
    (gauge,) = family("instance_count").samples(answer)
    assert (gauge.value, gauge.tags[-1]) == (4, "state:active")
    result = {
        s.name: s.value for s in family("memory_utilizations").samples([series({}, [Point(0, 60, utilization(11))])])
    }
    assert result == pytest.approx(
        {
            "container.memory.utilization.p50": 52.5,
            "container.memory.utilization.p95": 54.75,
            "container.memory.utilization.p99": 54.95,
        }
    )


def test_one_query_per_family_filters_services_never_containers():
    families = build_families(["api", "worker"], "app")
    assert families[1].query.filter == (
        'metric.type = "run.googleapis.com/request_latencies" AND resource.type = '
        '"cloud_run_revision" AND resource.label.service_name = one_of("api", "worker")'
    )
    assert build_families([], None)[1].query.filter.count("AND") == 1
    # container_name may be absent on a series: never filtered or grouped on in the request (a series without the
    # label might be dropped); per-container families come unreduced and are grouped after reading.
    for f in families:
        assert (
            "container_name" not in f.query.filter and "metric.label.container_name" not in f.query.aggregation.group_by
        )
    for name in ("startup_latencies", "completed_probe_count", "cpu_utilizations", "memory_utilizations"):
        aggregation = family(name).query.aggregation
        assert (aggregation.aligner, aggregation.reducer, aggregation.group_by) == ("ALIGN_DELTA", "REDUCE_NONE", ())


PER_CONTAINER = [
    series({"container_name": "app"}, [Point(0, 60, utilization(15))]),  # [0.70, 0.75)
    series({"container_name": "datadog-agent"}, [Point(0, 60, utilization(2))]),  # [0.05, 0.10)
]
WHOLE_REVISION = [series({}, [Point(0, 60, utilization(9))])]  # [0.40, 0.45)


@pytest.mark.parametrize("name", ["cpu_utilizations", "memory_utilizations"])
def test_per_container_shape_reports_each_container_or_only_the_apps(name):
    assert container_shape(PER_CONTAINER) == "per_container"
    every = {s.tags[-1]: s.value for s in family(name).samples(PER_CONTAINER) if s.name.endswith(".p50")}
    assert every == pytest.approx({"container_name:app": 72.5, "container_name:datadog-agent": 7.5})
    apps = {s.tags[-1]: s.value for s in family(name, "app").samples(PER_CONTAINER) if s.name.endswith(".p50")}
    assert apps == pytest.approx({"container_name:app": 72.5})


@pytest.mark.parametrize("app_container", [None, "app"])
def test_whole_revision_shape_is_reported_tagged_all_with_or_without_app_container_name(app_container):
    assert container_shape(WHOLE_REVISION) == "whole_revision"
    samples = family("cpu_utilizations", app_container).samples(WHOLE_REVISION)
    p50 = {s.tags: s.value for s in samples if s.name == "container.cpu.utilization.p50"}
    assert p50 == pytest.approx({(*TAGS, "container_name:all"): 42.5})
    # Never tagged as one container's.
    assert not [s for s in samples if "container_name:app" in s.tags]


def test_unreduced_series_of_one_tag_set_are_merged():
    # Two series of the app container that differ in a label the check does not tag: one figure.
    answer = [
        series({"container_name": "app", "other": "a"}, [Point(0, 60, utilization(15, 2))]),
        series({"container_name": "app", "other": "b"}, [Point(0, 60, utilization(15, 2))]),
    ]
    samples = family("cpu_utilizations").samples(answer)
    assert [(s.name, s.tags[-1]) for s in samples if s.name.endswith(".p50")] == [
        ("container.cpu.utilization.p50", "container_name:app")
    ]


def test_mixed_and_empty_shapes():
    assert container_shape(PER_CONTAINER + WHOLE_REVISION) == "mixed"
    assert container_shape([]) == "empty"
    tags = {s.tags[-1] for s in family("cpu_utilizations", "app").samples(PER_CONTAINER + WHOLE_REVISION)}
    assert tags == {"container_name:app", "container_name:all"}
