"""BulkGauge submits exactly what AgentCheck.gauge would, under every instance option that changes a submission."""

import pytest
from datadog_checks.base import AgentCheck
from datadog_checks.base.utils.limiter import Limiter

from pettwin_checks.kafka_lag.check import PettwinKafkaLagCheck
from pettwin_checks.kafka_lag.gauges import BulkGauge

pytestmark = pytest.mark.unit

SERIES = [
    ("consumer_lag", 12, ["kafka_cluster_id:c1", "consumer_group:billing", "topic:t", "partition:0"]),
    ("consumer_lag", 0, ["kafka_cluster_id:c1", "consumer_group:billing", "topic:t", "partition:1"]),
    ("consumer_offset", 7.5, ["service:pettwin", "env:prod", "consumer_group:g"]),
    ("broker_offset", 3, []),
    ("consumer_lag_seconds", None, ["consumer_group:g"]),
]


@pytest.fixture(autouse=True)
def generic_tags_allowed(monkeypatch):
    """SERIES carries `service` and `env`, which the stub refuses unless told, to show disable_generic_tags at work."""
    monkeypatch.setenv("DDEV_SKIP_GENERIC_TAGS_CHECK", "1")


def make_check(**options) -> PettwinKafkaLagCheck:
    instance = {"kafka_connect_str": "127.0.0.1:1", "monitor_unlisted_consumer_groups": True, **options}
    check = PettwinKafkaLagCheck("pettwin_kafka_lag", {}, [instance])
    check.check_id = "bulk-gauge"
    return check


def submitted(aggregator) -> list[tuple]:
    found = [
        (m.name, m.type, m.value, tuple(m.tags), m.hostname, m.flush_first_value)
        for name in sorted(aggregator.metric_names)
        for m in aggregator.metrics(name)
    ]
    aggregator.reset()
    return found


def both_ways(aggregator, check, bulk) -> tuple[list, list]:
    for name, value, tags in SERIES:
        check.gauge(name, value, tags=tags)
    by_agent_check = submitted(aggregator)
    for name, value, tags in SERIES:
        bulk(name, value, list(tags))
    return by_agent_check, submitted(aggregator)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"metric_patterns": {"exclude": [r"consumer_offset$"]}},
        {"metric_patterns": {"include": [r"\.consumer_lag$"]}},
        {"disable_generic_tags": True},
    ],
    ids=["default", "exclude", "include", "disable_generic_tags"],
)
def test_what_bulk_gauge_submits_is_what_agent_check_gauge_submits(aggregator, options):
    check = make_check(**options)
    by_agent_check, by_bulk = both_ways(aggregator, check, BulkGauge(check))
    assert by_bulk == by_agent_check
    assert by_agent_check  # the options leave something to compare


def test_the_metric_patterns_and_generic_tags_cases_differ_from_the_default(aggregator):
    """The comparison above would pass on a BulkGauge that ignored the options if they changed nothing."""
    default, _ = both_ways(aggregator, make_check(), BulkGauge(make_check()))
    for options in ({"metric_patterns": {"exclude": [r"consumer_offset$"]}}, {"disable_generic_tags": True}):
        check = make_check(**options)
        assert both_ways(aggregator, check, BulkGauge(check))[1] != default


def test_a_metric_limit_counts_bulk_series_as_it_counts_agent_check_ones(aggregator):
    check = make_check()
    check.metric_limiter = Limiter(check.name, "metrics", 2, check.warning)
    bulk = BulkGauge(check)
    for name, value, tags in SERIES:
        bulk(name, value, tags)
    assert len(submitted(aggregator)) == 2


def test_without_a_per_check_aggregator_bulk_gauge_submits_to_the_agent_modules(aggregator, monkeypatch):
    """datadog_checks_base 37, which the agent embeds, has no AgentCheck._aggregator: the agent module's aggregator
    takes the same submissions."""
    check = make_check()
    by_agent_check, _ = both_ways(aggregator, check, BulkGauge(check))
    monkeypatch.delattr(AgentCheck, "_aggregator")
    bulk = BulkGauge(check)
    for name, value, tags in SERIES:
        bulk(name, value, list(tags))
    assert submitted(aggregator) == by_agent_check
