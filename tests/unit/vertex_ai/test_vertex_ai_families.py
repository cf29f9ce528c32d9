"""The Vertex AI check's pure logic: its family table, rates, headroom, dynamic shared quota, spend."""

import pytest

from pettwin_checks.gcp.distribution import Distribution
from pettwin_checks.gcp.families import SPARSE_ALIGNMENT, Sample
from pettwin_checks.gcp.timeseries import Point, TimeSeries
from pettwin_checks.vertex_ai.config_models.validators import DEFAULT_TOKEN_PRICES
from pettwin_checks.vertex_ai.families import build_families
from pettwin_checks.vertex_ai.samples import (
    cost_samples,
    dynamic_shared_quota_samples,
    headroom_pct,
    price_of,
    quota_samples,
    response_code_class,
    service_quota_samples,
    unpriced_models,
)

pytestmark = pytest.mark.unit


def series(metric_labels=None, resource_labels=None, values=(1,), metric="m"):
    points = [Point(60.0 * i, 60.0 * (i + 1), v) for i, v in enumerate(values)]
    return TimeSeries(metric, dict(metric_labels or {}), "r", dict(resource_labels or {}), "DELTA", "INT64", points)


MODEL = {"model_user_id": "gemini-2.5-flash", "publisher": "google", "location": "us-central1"}
TABLE = build_families(
    publisher_models=True,
    endpoints=True,
    quota=True,
    quota_metrics=["q_per_minute"],
    discover_quota_metrics=True,
    token_prices=DEFAULT_TOKEN_PRICES,
)
FAMILIES = {f.name: f for f in TABLE if not f.derived}
DERIVED = [f for f in TABLE if f.derived]


def test_one_query_per_family_and_no_per_model_query():
    assert len(FAMILIES) == 4 + 4 + 3 + 4
    assert all(f.query.metric_type.count("/") >= 2 for f in FAMILIES.values())
    filters = build_families(
        publisher_models=True, endpoints=False, quota=False, locations=["us-central1"], models=["a", "b"]
    )
    assert filters[0].query.filter.endswith(
        'resource.label.location = "us-central1" AND resource.label.model_user_id = one_of("a", "b")'
    )
    invocations = FAMILIES["publisher_invocations"].query.aggregation
    assert (invocations.aligner, invocations.reducer) == ("ALIGN_DELTA", "REDUCE_SUM")
    assert "metric.label.response_code" in invocations.group_by


def test_every_family_knows_what_it_becomes_and_every_derived_family_reads_known_families():
    names = set(FAMILIES)
    assert {f.name for f in DERIVED} == {
        "publisher_cost",
        "quota:q_per_minute",
        "service_quota",
        "dynamic_shared_quota",
    }
    for derived in DERIVED:
        assert set(derived.inputs) <= names
    # A family without samples of its own is read by some derived family.
    read = {name for derived in DERIVED for name in derived.inputs}
    assert {name for name, family in FAMILIES.items() if family.samples is None} <= read


def test_daily_quota_series_are_read_hourly_aligned_over_a_window_that_holds_a_daily_point():
    for name in ("service_quota_limit", "service_quota_allocation_usage"):
        family = FAMILIES[name]
        assert family.mode == "sparse"
        assert family.query.aggregation.period_seconds == SPARSE_ALIGNMENT
    # aiplatform's per-base-model limits are per minute (Google samples them every 60 s).
    assert FAMILIES["quota_limit:q_per_minute"].mode == "newest"


def test_invocations_rates_and_throttles():
    rows = [
        series({"response_code": "200"}, MODEL, [90]),
        series({"response_code": "429", "error_category": "capacity"}, MODEL, [6]),
        series({"response_code": "503", "error_category": "system"}, MODEL, [4]),
    ]
    samples = FAMILIES["publisher_invocations"].samples(rows)
    by = {(s.name, s.tags): s.value for s in samples}
    model_tags = ("model:gemini-2.5-flash", "publisher:google", "location:us-central1")
    assert by[("publisher.invocations", (*model_tags, "response_code_class:4xx", "error_category:capacity"))] == 6
    assert by[("publisher.invocations", (*model_tags, "response_code_class:2xx", "error_category:none"))] == 90
    assert by[("publisher.throttled", model_tags)] == 6
    assert by[("publisher.error_rate", model_tags)] == pytest.approx(10.0)
    assert by[("publisher.throttle_rate", model_tags)] == pytest.approx(6.0)


def test_latency_percentiles_from_the_window_distribution():
    dist = Distribution(100, 410.0, (0.0, 100.0, 250.0, 500.0, 1000.0), (0, 0, 20, 60, 20, 0))
    samples = FAMILIES["publisher_latency"].samples([series({"latency_type": "model"}, MODEL, [dist])])
    values = {s.name: s.value for s in samples}
    assert values == {
        "publisher.latency.avg": 410.0,
        "publisher.latency.p50": pytest.approx(375.0),
        "publisher.latency.p95": pytest.approx(875.0),
        "publisher.latency.p99": pytest.approx(975.0),
    }
    empty = FAMILIES["publisher_latency"].samples([series({}, MODEL, [Distribution(0, 0, (), ())])])
    assert empty == []  # no requests in the window: no latency, not a zero latency


@pytest.mark.parametrize(
    "code, expected",
    [
        ("200", "2xx"),
        ("429", "4xx"),
        ("5xx", "5xx"),
        ("", "unknown"),
        ("OK", "unknown"),
        ("2000", "unknown"),
        (None, "unknown"),
    ],
)
def test_response_code_class(code, expected):
    assert response_code_class(code) == expected


def test_headroom():
    assert headroom_pct(120, 200) == pytest.approx(40.0)
    assert headroom_pct(250, 200) == pytest.approx(-25.0)
    assert headroom_pct(0, 0) == 0.0
    assert headroom_pct(5, -1) is None


def test_quota_samples_pair_usage_with_limit_per_base_model():
    flash = {"base_model": "gemini-2.5-flash", "location": "us-central1"}
    usage = [series(flash, None, [100, 140, 120])]
    limits = [series(flash, None, [200]), series({"base_model": "other", "location": "us-central1"}, None, [-1])]
    samples = quota_samples("q_per_minute", usage, limits)
    tags = ("quota_metric:q_per_minute", "location:us-central1", "base_model:gemini-2.5-flash")
    assert Sample("quota.usage", "gauge", 140, tags) in samples  # the busiest minute
    assert Sample("quota.limit", "gauge", 200, tags) in samples
    assert Sample("quota.headroom_pct", "gauge", pytest.approx(30.0), tags) in samples
    assert not [s for s in samples if "base_model:other" in s.tags]  # unlimited: no limit, no headroom
    # usage failed this run: limit still reported, headroom not guessed
    assert {s.name for s in quota_samples("q_per_minute", None, limits)} == {"quota.limit"}
    # not a per-minute quota: no headroom from a per-minute usage
    assert "quota.headroom_pct" not in {s.name for s in quota_samples("q_per_day", usage, limits)}


def test_service_quota_skips_quota_metrics_read_per_base_model():
    consumer = {"location": "us-central1"}
    limits = [
        series({"quota_metric": "aiplatform.googleapis.com/a_per_minute", "limit_name": "APerMinute"}, consumer, [600]),
        series({"quota_metric": "aiplatform.googleapis.com/configured", "limit_name": "X"}, consumer, [5]),
    ]
    usage = [series({"quota_metric": "aiplatform.googleapis.com/a_per_minute"}, consumer, [300, 150])]
    samples = service_quota_samples(limits, usage, None, {"configured"})
    assert not [s for s in samples if "quota_metric:configured" in s.tags]
    assert (
        Sample(
            "quota.headroom_pct", "gauge", pytest.approx(50.0), ("location:us-central1", "quota_metric:a_per_minute")
        )
        in samples
    )


def test_dynamic_shared_quota_is_a_model_without_a_base_model_limit():
    invocations = [
        series({}, MODEL, [5]),
        series({}, {**MODEL, "model_user_id": "gemini-2.5-pro-002"}, [5]),
        series({}, {**MODEL, "model_user_id": "gemini-2.0-flash-001"}, [5]),
    ]
    limits = [
        [
            series({"base_model": "gemini-2.5-flash"}, {"location": "us-central1"}, [200]),
            series({"base_model": "gemini-2.5-pro"}, {"location": "us-central1"}, [50]),
        ]
    ]
    values = {
        next(t for t in s.tags if t.startswith("model:")): s.value
        for s in dynamic_shared_quota_samples(invocations, limits)
    }
    assert values == {"model:gemini-2.5-flash": 0.0, "model:gemini-2.5-pro-002": 0.0, "model:gemini-2.0-flash-001": 1.0}


def tokens(model, token_type, value):
    labels = {**MODEL, "model_user_id": model}
    return series({"type": token_type}, labels, [value])


def test_price_of_a_model_or_the_model_it_is_a_version_of():
    prices = {"gemini-2.0-flash": (0.15, 0.6), "gemini-2.0-flash-lite": (0.075, 0.3)}
    assert price_of("gemini-2.0-flash", prices) == (0.15, 0.6)
    assert price_of("gemini-2.0-flash-001", prices) == (0.15, 0.6)
    assert price_of("gemini-2.0-flash-lite-001", prices) == (0.075, 0.3)  # the longest name it is a version of
    assert price_of("gemini-2.0-flashy", prices) is None
    assert price_of("claude-sonnet-4", prices) is None


def test_spend_per_model_from_input_and_output_tokens():
    prices = {"gemini-2.5-flash": (0.30, 2.50), "gemini-2.5-pro": (1.25, 10.0)}
    answer = [
        tokens("gemini-2.5-flash", "input", 1_000_000),
        tokens("gemini-2.5-flash", "output", 200_000),
        tokens("gemini-2.5-pro", "input", 40_000),
        tokens("mystery-model", "input", 5_000),
    ]
    by_model = {next(t for t in s.tags if t.startswith("model:")): s for s in cost_samples(prices, answer)}
    assert by_model["model:gemini-2.5-flash"].value == pytest.approx(0.30 + 0.2 * 2.50)  # 0.80 USD
    assert by_model["model:gemini-2.5-pro"].value == pytest.approx(0.04 * 1.25)
    assert by_model["model:gemini-2.5-flash"].kind == "count"
    # No price: no sample at all, never 0; the check names it.
    assert "model:mystery-model" not in by_model
    assert unpriced_models(prices, answer) == {"mystery-model"}
    assert cost_samples(prices, None) == []
