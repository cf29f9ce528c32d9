"""agent/assets: the log pipeline, monitors and dashboard parse as Datadog API objects, name only metrics and
service checks this repository submits, and encode the team's alerting thresholds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.agent.agent_emulation import BACKEND_LOGS_YAML, ROOT
from tests.contract import metadata_rows, service_check_names

datadog_api_client = pytest.importorskip("datadog_api_client", reason="datadog-api-client (dev extra) validates assets")
from datadog_api_client import Configuration
from datadog_api_client.model_utils import ModelComposed, OpenApiModel, validate_and_convert_types
from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_api_client.v1.model.logs_pipeline import LogsPipeline
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.service_level_objective_request import ServiceLevelObjectiveRequest
from datadog_checks.base import AgentCheck

from pettwin_checks.cloud_run.families import WHOLE_REVISION
from pettwin_checks.kafka_lag.lag import LagStatus
from pettwin_checks.kafka_lag.series import SERVICE_CHECK_STATUS

pytestmark = pytest.mark.unit

ASSETS = ROOT / "agent" / "assets"
PIPELINE = ASSETS / "logs" / "pettwin_backend_pipeline.json"
DASHBOARD = ASSETS / "dashboards" / "pettwin_overview.json"
MONITORS = sorted((ASSETS / "monitors").glob("*.json"))
SLOS = sorted((ASSETS / "slos").glob("*.json"))
METRIC = re.compile(r"(?<![\"\w.])(pettwin\.[a-z0-9_]+(?:\.[a-z0-9_]+)+)")
SERVICE_CHECK = re.compile(r"\"(pettwin\.[a-z0-9_.]+)\"\.over\(")


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def parse(data: dict, model):
    """Deserialize like the API client does, then refuse what it silently tolerates: a oneOf or enum it could
    not match (an `_unparsed` object) and keys the model does not know."""
    parsed = validate_and_convert_types(data, (model,), ["asset"], True, True, configuration=Configuration())
    _assert_fully_parsed(parsed, data, model.__name__)
    return parsed


def _assert_fully_parsed(obj, data, path: str) -> None:
    if isinstance(obj, list):
        for index, (item, raw) in enumerate(zip(obj, data)):
            _assert_fully_parsed(item, raw, f"{path}[{index}]")
        return
    if not isinstance(obj, OpenApiModel):
        return
    assert not obj._unparsed, f"{path}: not a valid {type(obj).__name__}: {data}"
    instance = obj.get_oneof_instance() if isinstance(obj, ModelComposed) else obj
    assert not getattr(instance, "_unparsed", False), f"{path}: matches no variant of {type(obj).__name__}"
    if not isinstance(data, dict):
        return  # an enum value: `_unparsed` above already says whether it is one of the allowed values
    attribute_map = type(instance).attribute_map
    unknown = set(data) - set(attribute_map.values())
    assert not unknown, f"{path}: {type(instance).__name__} has no field {sorted(unknown)}"
    for attribute, key in attribute_map.items():
        if key in data:
            _assert_fully_parsed(getattr(instance, attribute), data[key], f"{path}.{key}")


def test_parser_rejects_what_the_api_would(tmp_path):
    pipeline = load(PIPELINE)
    pipeline["processors"][0]["type"] = "date-remaper"
    with pytest.raises(AssertionError, match="not a valid"):
        parse(pipeline, LogsPipeline)
    monitor = load(MONITORS[0])
    monitor["options"]["notify_nodata"] = True
    with pytest.raises(AssertionError, match="notify_nodata"):
        parse(monitor, Monitor)


def test_log_pipeline_structure():
    pipeline = parse(load(PIPELINE), LogsPipeline)
    raw = load(PIPELINE)
    source = next(s for s in yaml.safe_load(BACKEND_LOGS_YAML.read_text())["logs"] if s["type"] == "file")
    # The pipeline catches exactly what the agent's log sources label.
    assert raw["filter"]["query"] == f"service:{source['service']} source:{source['source']}"
    types = [processor["type"] for processor in raw["processors"]]
    for required in (
        "status-remapper",
        "service-remapper",
        "trace-id-remapper",
        "span-id-remapper",
        "category-processor",
    ):
        assert required in types, required
    assert types.index("trace-id-remapper") < types.index("category-processor")
    by_type = {processor["type"]: processor for processor in raw["processors"]}
    assert "dd.trace_id" in by_type["trace-id-remapper"]["sources"]
    assert "dd.span_id" in by_type["span-id-remapper"]["sources"]
    assert "level" in by_type["status-remapper"]["sources"]
    categories = by_type["category-processor"]["categories"]
    assert [category["name"] for category in categories] == ["critical", "high", "medium", "low"]
    assert by_type["category-processor"]["target"] == "alert.severity"
    assert pipeline.is_enabled


def metric_names(text: str) -> set[str]:
    return set(METRIC.findall(text)) - set(SERVICE_CHECK.findall(text))


@pytest.mark.parametrize("path", MONITORS, ids=[path.stem for path in MONITORS])
def test_monitor_parses_and_names_known_metrics(path):
    raw = load(path)
    monitor = parse(raw, Monitor)
    assert str(monitor.type) in ("query alert", "service check")
    assert "managed-by:pettwin-checks" in raw["tags"]
    known_metrics = metadata_rows("pettwin.")
    for name in metric_names(raw["query"]):
        assert name in known_metrics, f"{path.name}: {name} is not in metadata.csv"
    for name in SERVICE_CHECK.findall(raw["query"]):
        assert name in service_check_names("pettwin."), f"{path.name}: {name} is not in service_checks.json"
    assert metric_names(raw["query"]) or SERVICE_CHECK.findall(raw["query"]), "the monitor watches nothing of ours"


def test_service_check_monitors_group_by_tags_the_check_sends():
    groups = {
        entry["check"]: set(entry["groups"]) | {"host"}
        for entry in json.loads((ROOT / "service_checks.json").read_text())
    }
    for path in MONITORS:
        query = load(path)["query"]
        for name in SERVICE_CHECK.findall(query):
            by = group_by(query)
            assert by <= groups[name], f"{path.name}: {name} has no tag {sorted(by - groups[name])}"


def group_by(query: str) -> set[str]:
    """The tags a monitor query groups by (service check `.by("a","b")` or metric `by {a,b}`)."""
    if ".by(" in query:
        return set(re.findall(r'"([a-z_*]+)"', query.split(".by(", 1)[1].split(")", 1)[0])) - {"*"}
    match = re.search(r"\bby \{([^}]*)\}", query)
    return {tag.strip() for tag in match.group(1).split(",")} if match else set()


def test_no_monitor_groups_by_the_host_that_happens_to_collect():
    # Cluster- and project-scope series come from whichever agent is the elected collector: grouping by host would
    # alert on every handover. Instance-scope monitors group by the service and revision instead.
    for path in MONITORS:
        assert "host" not in group_by(load(path)["query"]), path.name


@pytest.mark.parametrize(
    "stem, watched_scope",
    [("no_data_kafka_lag", {"kafka_cluster_id"}), ("no_data_vertex_ai", {"project_id"})],
)
def test_no_data_monitors_of_shared_scopes_group_by_what_they_watch(stem, watched_scope):
    raw = monitor(stem)
    assert group_by(raw["query"]) == watched_scope
    assert raw["options"]["notify_no_data"] is True
    if raw["type"] == "query alert":
        # A heartbeat: the metric carries the tag it is grouped by.
        (metric,) = metric_names(raw["query"])
        assert metric in metadata_rows(metric)


def test_lag_status_monitor_has_the_service_checks_severities():
    """One severity per status: the monitor warns exactly where consumer_group.status is WARNING (WARN, REWIND)
    and alerts exactly where it is CRITICAL (STALL, STOP, ERR)."""
    thresholds = monitor("kafka_lag_status")["options"]["thresholds"]
    for status in LagStatus:
        if status.value >= thresholds["critical"]:
            expected = AgentCheck.CRITICAL
        elif status.value >= thresholds["warning"]:
            expected = AgentCheck.WARNING
        else:
            expected = AgentCheck.OK
        assert SERVICE_CHECK_STATUS[status] == expected, status.name
    assert threshold_of(monitor("kafka_lag_status")["query"]) == (">=", thresholds["critical"])


def monitor(stem: str) -> dict:
    return load(ASSETS / "monitors" / f"{stem}.json")


def threshold_of(query: str) -> tuple[str, float]:
    match = re.search(r"(>=|<=|>|<)\s*(-?[0-9.]+)\s*$", query)
    return match.group(1), float(match.group(2))


@pytest.mark.parametrize(
    "stem, metric, comparator, critical, warning",
    [
        ("kafka_consumer_lag", "pettwin.kafka.consumer_group.lag", ">", 5000, 1000),
        ("kafka_consumer_lag_seconds", "pettwin.kafka.consumer_group.lag_seconds", ">", 300, 60),
        ("kafka_lag_status", "pettwin.kafka.consumer_group.lag_status", ">=", 3, 1),
        ("vertex_ai_latency_p95", "pettwin.vertex_ai.publisher.latency.p95", ">", 2000, 1500),
        ("vertex_ai_error_rate", "pettwin.vertex_ai.publisher.error_rate", ">", 5, 2),
        ("vertex_ai_quota_headroom", "pettwin.vertex_ai.quota.headroom_pct", "<", 10, 20),
        ("cloud_run_container_memory", "pettwin.cloud_run.container.memory.utilization.p95", ">", 80, 70),
        ("vertex_ai_cost_spike", "pettwin.vertex_ai.publisher.cost", ">", 25, 10),
    ],
)
def test_metric_monitor_thresholds(stem, metric, comparator, critical, warning):
    raw = monitor(stem)
    assert metric_names(raw["query"]) == {metric}
    # The query's threshold is the critical one, and the warning sits on the safe side of it.
    assert threshold_of(raw["query"]) == (comparator, critical)
    thresholds = raw["options"]["thresholds"]
    assert (thresholds["critical"], thresholds["warning"]) == (critical, warning)
    units = metadata_rows(metric)[metric]["unit_name"]
    if metric.endswith(("latency.p95",)):
        assert units == "millisecond"  # 2 s written as 2000 ms
    if metric.endswith(("error_rate", "headroom_pct", "utilization.p95")):
        assert units == "percent"  # 5 %, 10 %, 80 % written as 5, 10, 80
    if metric.endswith(".cost"):
        assert units == "dollar"  # USD 25 written as 25


def test_cost_spike_monitor_sums_the_hours_spend_per_model():
    # publisher.cost is a count of dollars per window: an hour's spend is its sum over the hour, by model.
    query = monitor("vertex_ai_cost_spike")["query"]
    assert query.startswith("sum(last_1h):sum:pettwin.vertex_ai.publisher.cost{*} by {model}.as_count()")
    assert (
        metadata_rows("pettwin.vertex_ai.publisher.cost")["pettwin.vertex_ai.publisher.cost"]["metric_type"] == "count"
    )


def test_app_container_assets_read_the_app_containers_series_in_either_shape():
    # From the agent sidecar, cgroup figures are the agent's own (container:agent); the app's come from Cloud Run's
    # per-container series, named by container_name, or, where Google sends a utilization without that label, as
    # the whole revision's figure (container_name:all): the assets read both, never the sidecar's alone.
    app_or_revision = f"container_name IN (app, {WHOLE_REVISION})"
    assert "{" + app_or_revision + "}" in monitor("cloud_run_container_memory")["query"]
    dashboard = json.dumps(json.loads((ASSETS / "dashboards" / "pettwin_overview.json").read_text()))
    queries = re.findall(r'"q": "([^"]*pettwin\.cloud_run\.container\.[^"]*)"', dashboard)
    for query in queries:
        if ".utilization." in query:
            assert app_or_revision in query and "container_name:" not in query, query
        else:
            assert "container:" in query, query
    assert len([q for q in queries if ".utilization." in q]) == 3


def test_app_health_and_no_data_monitors():
    health = monitor("cloud_run_app_health")
    assert health["type"] == "service check"
    assert SERVICE_CHECK.findall(health["query"]) == ["pettwin.cloud_run.app.health"]
    no_data = [load(path) for path in MONITORS if path.stem.startswith("no_data_")]
    assert len(no_data) == 3  # one per check
    for raw in no_data:
        assert raw["options"]["notify_no_data"] is True and raw["options"]["no_data_timeframe"] == 5
    watched = set().union(*(metric_names(raw["query"]) | set(SERVICE_CHECK.findall(raw["query"])) for raw in no_data))
    assert {name.split(".")[1] for name in watched} == {"kafka", "vertex_ai", "cloud_run"}


def test_dashboard_parses_and_covers_the_three_checks():
    raw = load(DASHBOARD)
    parse(raw, Dashboard)
    text = json.dumps(raw)
    known_metrics = metadata_rows("pettwin.")
    named = metric_names(text) - set(re.findall(r'"check": "([^"]+)"', text))
    assert named
    for name in named:
        assert name in known_metrics, f"dashboard: {name} is not in metadata.csv"
    for name in re.findall(r'"check": "([^"]+)"', text):
        assert name in service_check_names("pettwin."), f"dashboard: {name} is not in service_checks.json"
    assert {name.split(".")[1] for name in named} == {"kafka", "vertex_ai", "cloud_run"}
    variables = {variable["name"] for variable in raw["template_variables"]}
    for variable in re.findall(r"\$([a-z_]+)", text):
        assert variable in variables, f"dashboard uses ${variable} but defines no such template variable"


def test_produce_rate_is_one_value_per_topic():
    """Every group reading a topic reports the same topic.produce_rate: summing over groups would show N groups
    times the rate. The widget takes one value per topic (max) and never splits it by consumer group."""
    requests = [
        query for query in re.findall(r'"q": "([^"]+)"', json.dumps(load(DASHBOARD))) if "produce_rate" in query
    ]
    assert requests
    for query in requests:
        assert query.split(":", 1)[0] in ("max", "avg", "min"), query
        assert "topic" in group_by(query) and "consumer_group" not in group_by(query), query


@pytest.mark.parametrize("path", SLOS, ids=[path.stem for path in SLOS])
def test_slo_parses_and_names_known_metrics(path):
    raw = load(path)
    parse(raw, ServiceLevelObjectiveRequest)
    assert "managed-by:pettwin-checks" in raw["tags"]
    named = metric_names(json.dumps(raw["sli_specification"]))
    assert named and named <= set(metadata_rows("pettwin."))
