"""The demo's per-run summary: what an operator looks at, taken from the reports `pettwin-checks run` makes."""

from __future__ import annotations

import pytest

from pettwin_checks.devenv.demo_summary import SettledFigures, summarize

pytestmark = pytest.mark.unit

CLUSTER = "kafka_cluster_id:abc"


def metric(name: str, value: float, *tags: str) -> dict:
    return {"name": name, "value": value, "type": "gauge", "tags": sorted(tags)}


def service_check(name: str, status: str, *tags: str, message: str | None = None) -> dict:
    return {"name": name, "status": status, "tags": sorted(tags), "message": message}


def report(check: str, metrics: list, service_checks: list, warnings=(), error=None, run: int = 2) -> dict:
    return {
        "check": check,
        "instance": 0,
        "run": run,
        "duration_s": 0.05,
        "error": error,
        "warnings": list(warnings),
        "metrics": metrics,
        "service_checks": service_checks,
        "events": [],
    }


def group_rows(group: str, state: str, members: int, lag: int, lag_s: float | None, status: str) -> list[dict]:
    tags = (f"consumer_group:{group}", CLUSTER)
    rows = [
        metric("pettwin.kafka.consumer_group.state", 1, *tags, f"consumer_group_state:{state}"),
        metric("pettwin.kafka.consumer_group.members", members, *tags),
        metric("pettwin.kafka.consumer_group.lag", lag, *tags),
        metric("pettwin.kafka.consumer_group.lag_status", 3 if status == "STALL" else 0, *tags, f"lag_status:{status}"),
        # Partition rows are what --all shows; the summary leaves them out.
        metric("pettwin.kafka.consumer_lag", lag, *tags, "topic:pet-telemetry", "partition:0"),
    ]
    if lag_s is not None:
        rows.append(metric("pettwin.kafka.consumer_group.lag_seconds", lag_s, *tags))
    return rows


def test_kafka_a_line_per_group_with_state_members_lag_status_and_reason():
    metrics = group_rows("alerts", "Stable", 2, 12, 0.4, "OK") + group_rows("archiver", "Empty", 0, 1500, None, "STALL")
    checks = [
        service_check("pettwin.kafka.can_connect", "OK"),
        service_check("pettwin.kafka.consumer_group.status", "OK", "consumer_group:alerts", CLUSTER),
        service_check(
            "pettwin.kafka.consumer_group.status",
            "CRITICAL",
            "consumer_group:archiver",
            CLUSTER,
            message="STALL: pet-telemetry[1]: committed offset stuck at 150 with lag 230",
        ),
    ]
    lines = summarize(report("pettwin_kafka_lag", metrics, checks)).splitlines()
    assert lines[0] == "=== pettwin_kafka_lag run 2 (0.05 s) ===  can_connect OK, 2 groups"
    assert lines[1].split() == ["consumer", "group", "state", "members", "lag", "lag", "s", "status", "reason"]
    assert lines[2].split() == ["alerts", "Stable", "2", "12", "0.4", "OK"]
    # No time lag yet is shown as such, not as 0; the reason drops the status it repeats.
    assert lines[3].split()[:6] == ["archiver", "Empty", "0", "1,500", "-", "STALL"]
    assert lines[3].endswith("pet-telemetry[1]: committed offset stuck at 150 with lag 230")
    assert "STALL: pet" not in lines[3]
    assert len(lines) == 4  # the group status is in the table, not repeated below it; no partition rows


def test_kafka_unreachable_says_what_to_do():
    checks = [service_check("pettwin.kafka.can_connect", "CRITICAL", message="broker refused: check kafka_connect_str")]
    lines = summarize(report("pettwin_kafka_lag", [], checks)).splitlines()
    assert lines[0].endswith("can_connect CRITICAL, 0 groups")
    assert lines[1] == "  CRITICAL pettwin.kafka.can_connect []: broker refused: check kafka_connect_str"


def vertex_metrics(model: str, p95: float, error_rate: float, throttled: float) -> list[dict]:
    tags = (f"model:{model}", "publisher:google", "project_id:p", "location:us-central1")
    return [
        metric("pettwin.vertex_ai.publisher.latency.p95", p95, *tags, "latency_type:model"),
        metric("pettwin.vertex_ai.publisher.latency.p95", 30, *tags, "latency_type:overhead"),
        metric("pettwin.vertex_ai.publisher.error_rate", error_rate, *tags),
        metric("pettwin.vertex_ai.publisher.throttled", throttled, *tags),
    ]


def quota(model: str, headroom: float, quota_metric: str) -> dict:
    return metric(
        "pettwin.vertex_ai.quota.headroom_pct", headroom, f"base_model:{model}", f"quota_metric:{quota_metric}"
    )


def test_vertex_a_line_per_model_with_p95_errors_429s_and_the_tightest_quota():
    metrics = vertex_metrics("gemini-2.5-flash", 2867.2, 21.6, 55) + [
        quota("gemini-2.5-flash", 0.0, "requests_per_minute"),
        quota("gemini-2.5-flash", 98.2, "input_tokens_per_minute"),
        quota("gemini-2.5-pro", 14.0, "requests_per_minute"),
        metric("pettwin.vertex_ai.probe.latency", 5.3, "model:gemini-2.5-flash", "outcome:ok"),
    ]
    checks = [
        service_check("pettwin.vertex_ai.monitoring.can_query", "OK", "project_id:p"),
        service_check("pettwin.vertex_ai.can_connect", "WARNING", "model:gemini-2.5-flash", message="throttled: 429"),
    ]
    lines = summarize(report("pettwin_vertex_ai", metrics, checks)).splitlines()
    assert lines[0].endswith("monitoring.can_query OK, probe WARNING (5 ms)")
    assert lines[2].split() == ["gemini-2.5-flash", "2,867", "21.6", "55", "0.0"]  # the model latency, not overhead
    assert lines[3].split() == ["gemini-2.5-pro", "-", "-", "-", "14.0"]
    assert lines[-1] == "  WARNING pettwin.vertex_ai.can_connect [model:gemini-2.5-flash]: throttled: 429"


def test_vertex_line_shows_the_spend_estimate_when_there_is_one():
    spend = [
        metric("pettwin.vertex_ai.publisher.cost", 0.02, "model:gemini-2.5-flash"),
        metric("pettwin.vertex_ai.publisher.cost", 0.0125, "model:gemini-2.5-pro"),
    ]
    checks = [service_check("pettwin.vertex_ai.monitoring.can_query", "OK", "project_id:p")]
    with_spend = summarize(report("pettwin_vertex_ai", vertex_metrics("gemini-2.5-flash", 900, 0, 0) + spend, checks))
    assert with_spend.splitlines()[0].endswith("probe off, spend $0.0325 (estimate, this run's minutes)")
    without = summarize(report("pettwin_vertex_ai", vertex_metrics("gemini-2.5-flash", 900, 0, 0), checks))
    assert "spend" not in without.splitlines()[0]


def test_vertex_between_settled_minutes_shows_the_last_ones_figures_and_their_age():
    settled = SettledFigures()
    first = vertex_metrics("gemini-2.5-flash", 2867.2, 21.6, 55) + [quota("gemini-2.5-flash", 30.0, "rpm")]
    lines = summarize(report("pettwin_vertex_ai", first, []), settled, now=100.0).splitlines()
    assert lines[2].split() == ["gemini-2.5-flash", "2,867", "21.6", "55", "30.0"] and len(lines) == 3
    # The next run saw no new settled minute: only the quota (read every run) is new.
    later = [quota("gemini-2.5-flash", 12.5, "rpm")]
    lines = summarize(report("pettwin_vertex_ai", later, []), settled, now=130.0).splitlines()
    assert lines[2].split() == ["gemini-2.5-flash", "2,867", "21.6", "55", "12.5"]
    assert lines[3] == (
        "  (no new settled minute in Cloud Monitoring this run: latency, errors and 429s are the last one's, "
        "from 30 s ago)"
    )


def test_vertex_before_any_settled_minute_says_so():
    lines = summarize(report("pettwin_vertex_ai", [quota("gemini-2.5-flash", 30.0, "rpm")], [])).splitlines()
    assert lines[2].split() == ["gemini-2.5-flash", "-", "-", "-", "30.0"]
    assert lines[-1].endswith("latency, errors and 429s are none seen yet)")


def test_cloud_run_probes_container_and_revision():
    probe = ("probe:health", "probe_type:http", "service_name:backend")
    metrics = [
        metric("pettwin.cloud_run.app.probe.success", 0, *probe),
        metric("pettwin.cloud_run.app.probe.latency", 1.8, *probe),
        metric("pettwin.cloud_run.app.probe.consecutive_failures", 3, *probe),
        # The sidecar's own cgroup, and Cloud Monitoring's series of the app's container.
        metric("pettwin.cloud_run.container.cpu.usage", 0.5, "service_name:backend", "container:agent"),
        metric("pettwin.cloud_run.container.memory.usage", 512 * 2**20, "service_name:backend", "container:agent"),
        metric("pettwin.cloud_run.container.memory.usage_pct", 50.0, "service_name:backend", "container:agent"),
        metric("pettwin.cloud_run.container.memory.oom_kills", 0, "service_name:backend", "container:agent"),
        metric("pettwin.cloud_run.container.cpu.utilization.p95", 39.5, "service_name:backend", "container_name:app"),
        metric(
            "pettwin.cloud_run.container.memory.utilization.p95", 59.8, "service_name:backend", "container_name:app"
        ),
        metric("pettwin.cloud_run.service.ready", 0, "service_name:backend"),
        metric("pettwin.cloud_run.service.latest_revision_ready", 0, "service_name:backend"),
        metric("pettwin.cloud_run.service.traffic.percent", 100, "service_name:backend", "revision_name:backend-2"),
    ]
    checks = [
        service_check("pettwin.cloud_run.app.health", "CRITICAL", *probe, message="HTTP 503 (expected 200-399)"),
        service_check("pettwin.cloud_run.revision.ready", "CRITICAL", "service_name:backend", message="rollout failed"),
    ]
    lines = summarize(report("pettwin_cloud_run", metrics, checks)).splitlines()
    assert lines[1] == "  probe health (http): CRITICAL, 1.8 ms, 3 consecutive failures"
    # Every container figure says whose container it describes.
    assert lines[2] == (
        "  container agent (cgroup): CPU 0.50 cores, memory 512 MiB (50.0 % of the limit), restarts -, OOM kills 0"
    )
    assert lines[3] == "  container app (Cloud Monitoring): CPU p95 39.5 %, memory p95 59.8 %"
    assert lines[4] == ("  revision: CRITICAL, service ready 0, latest revision ready 0; traffic 100 % on backend-2")
    assert any(
        line.endswith("app.health [probe:health,probe_type:http,service_name:backend]: HTTP 503 (expected 200-399)")
        for line in lines
    )
    assert lines[-1].endswith("revision.ready [service_name:backend]: rollout failed")


def test_cloud_run_instance_scope_only_has_no_revision_line():
    metrics = [metric("pettwin.cloud_run.container.cpu.usage", 0.5)]
    lines = summarize(report("pettwin_cloud_run", metrics, [], warnings=["cgroup files unreadable"])).splitlines()
    assert not any(line.startswith("  revision") for line in lines)
    assert lines[-1] == "  warning: cgroup files unreadable"


def test_errors_are_shown():
    lines = summarize(report("pettwin_cloud_run", [], [], error=[{"message": "boom", "traceback": "..."}]))
    assert "  ERROR boom" in lines.splitlines()


def test_try_next_names_the_faults_not_shown():
    from pettwin_checks.devenv.demo import try_next

    text = try_next(["vertex-quota"])
    assert "--fault consumer-behind" in text and "--fault failed-rollout" in text
    assert "--fault vertex-quota" not in text and "--fault all" in text


def test_cli_offers_every_fault(capsys):
    from pettwin_checks.cli import main
    from pettwin_checks.devenv.demo import FAULTS

    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    usage = capsys.readouterr().out
    for fault in [*FAULTS, "all"]:
        assert fault in usage


def test_untagged_figures_say_which_containers_they_cover():
    metrics = [
        metric("pettwin.cloud_run.container.memory.usage", 2**30),
        metric("pettwin.cloud_run.container.cpu.utilization.p95", 20.0, "service_name:backend"),
    ]
    lines = summarize(report("pettwin_cloud_run", metrics, [])).splitlines()
    assert lines[1].startswith("  this process (cgroup): CPU - cores, memory 1,024 MiB")
    assert lines[2] == "  every container of the revision (Cloud Monitoring): CPU p95 20.0 %, memory p95 -"
