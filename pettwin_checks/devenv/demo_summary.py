"""What an operator looks at in one check run, from the report `pettwin-checks run` makes (pure: no I/O).

Kafka: a line per consumer group (state, members, lag, lag in seconds, status and its reason). Vertex AI: a line per
model (p95 latency, error rate, 429s, quota headroom); runs seconds apart rarely cross a settled Cloud Monitoring
minute, so a run without one shows the last settled minute's figures and how long ago they came (SettledFigures).
Cloud Run: the probes, each container's figures under its own name, the revision. Every service check that is not OK
and every warning is printed with its message; the metric rows are left to `--all` and `--json`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

MISSING = "-"


def tag_value(tags: Iterable[str], name: str) -> str | None:
    prefix = f"{name}:"
    return next((tag[len(prefix) :] for tag in tags if tag.startswith(prefix)), None)


def by_tag(report: dict, metric: str, tag: str) -> dict[str, dict]:
    """`metric`'s rows keyed by the value of `tag` (rows without it are left out)."""
    rows = {}
    for row in report["metrics"]:
        if row["name"] == metric and (value := tag_value(row["tags"], tag)) is not None:
            rows.setdefault(value, row)
    return rows


def value_of(report: dict, metric: str, **tags: str) -> float | None:
    for row in report["metrics"]:
        if row["name"] == metric and all(tag_value(row["tags"], k) == v for k, v in tags.items()):
            return row["value"]
    return None


def number(value: float | None, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return MISSING
    return f"{value:,.{digits}f}{suffix}"


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    return ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in (header, *rows)]


def title(report: dict) -> str:
    return f"=== {report['check']} run {report['run']} ({report['duration_s']} s) ==="


def problems(report: dict, skip: Iterable[str] = ()) -> list[str]:
    """Errors, warnings and every service check that is not OK, with the message that says what to do."""
    lines = [f"  ERROR {error.get('message')}" for error in report["error"] or []]
    lines += [f"  warning: {warning}" for warning in report["warnings"]]
    for check in report["service_checks"]:
        if check["status"] != "OK" and check["name"] not in skip:
            where = ",".join(tag for tag in check["tags"] if not tag.startswith(("env_name:", "project_id:")))
            lines.append(f"  {check['status']} {check['name']} [{where}]: {check['message'] or ''}".rstrip())
    return lines


def reason(message: str, status: str) -> str:
    """The status service check's message without the status it starts with (the column says it)."""
    return message.removeprefix(f"{status}: ")


def kafka_lines(report: dict) -> list[str]:
    status_checks = {
        tag_value(check["tags"], "consumer_group"): check
        for check in report["service_checks"]
        if check["name"] == "pettwin.kafka.consumer_group.status"
    }
    states = by_tag(report, "pettwin.kafka.consumer_group.state", "consumer_group")
    statuses = by_tag(report, "pettwin.kafka.consumer_group.lag_status", "consumer_group")
    rows = []
    for group in sorted(set(status_checks) | set(states)):
        status_row, check = statuses.get(group), status_checks.get(group)
        status = tag_value(status_row["tags"], "lag_status") if status_row else (check or {}).get("status", MISSING)
        rows.append(
            (
                group,
                tag_value(states[group]["tags"], "consumer_group_state") if group in states else MISSING,
                number(value_of(report, "pettwin.kafka.consumer_group.members", consumer_group=group)),
                number(value_of(report, "pettwin.kafka.consumer_group.lag", consumer_group=group)),
                number(value_of(report, "pettwin.kafka.consumer_group.lag_seconds", consumer_group=group), 1),
                status,
                reason((check or {}).get("message") or "", status),
            )
        )
    connect = next((c for c in report["service_checks"] if c["name"] == "pettwin.kafka.can_connect"), None)
    lines = [f"{title(report)}  can_connect {connect['status'] if connect else MISSING}, {len(rows)} groups"]
    if rows:
        lines += table(("consumer group", "state", "members", "lag", "lag s", "status", "reason"), rows)
    return lines + problems(report, skip={"pettwin.kafka.consumer_group.status"})


def rows_of(report: dict, metric: str) -> list[dict]:
    return [row for row in report["metrics"] if row["name"] == metric]


def spend_note(report: dict) -> str:
    """Gemini spend over the minutes this run counted, from the check's estimate (token counts x token_prices)."""
    spend = [row["value"] for row in rows_of(report, "pettwin.vertex_ai.publisher.cost")]
    return f", spend ${sum(spend):,.4f} (estimate, this run's minutes)" if spend else ""


@dataclass
class SettledFigures:
    """The Vertex AI figures (p95 latency, errors, 429s) per model of the last run that saw a settled minute."""

    per_model: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    seen_at: float | None = None  # time.monotonic() of that run

    def age(self, now: float) -> str:
        return f"{now - self.seen_at:.0f} s ago" if self.seen_at is not None else MISSING


def vertex_lines(report: dict, settled: SettledFigures | None = None, now: float = 0.0) -> list[str]:
    # The model's own latency (latency_type:model), not the Vertex AI overhead reported beside it.
    latency = {
        tag_value(row["tags"], "model"): row["value"]
        for row in rows_of(report, "pettwin.vertex_ai.publisher.latency.p95")
        if tag_value(row["tags"], "latency_type") in ("model", None)
    }
    throttled: dict[str, float] = defaultdict(float)
    for row in rows_of(report, "pettwin.vertex_ai.publisher.throttled"):
        throttled[tag_value(row["tags"], "model")] += row["value"]
    headroom: dict[str, float] = {}  # base model -> its tightest quota
    for row in rows_of(report, "pettwin.vertex_ai.quota.headroom_pct"):
        if model := tag_value(row["tags"], "base_model"):
            headroom[model] = min(row["value"], headroom.get(model, row["value"]))
    error_rates = by_tag(report, "pettwin.vertex_ai.publisher.error_rate", "model")
    figures = {
        model: (
            number(latency.get(model)),
            number(error_rates[model]["value"], 1) if model in error_rates else MISSING,
            number(throttled[model]) if model in throttled else MISSING,
        )
        for model in set(latency) | set(error_rates)
    }
    settled = settled if settled is not None else SettledFigures()
    if latency:
        settled.per_model, settled.seen_at = figures, now
    shown = figures if latency else settled.per_model
    rows = [
        (model, *shown.get(model, (MISSING,) * 3), number(headroom.get(model), 1))
        for model in sorted(set(shown) | set(headroom))
    ]
    checks = {check["name"]: check["status"] for check in report["service_checks"]}
    probe = value_of(report, "pettwin.vertex_ai.probe.latency")
    lines = [
        f"{title(report)}  monitoring.can_query {checks.get('pettwin.vertex_ai.monitoring.can_query', MISSING)}, "
        f"probe {checks.get('pettwin.vertex_ai.can_connect', 'off')}"
        + (f" ({number(probe, 0, ' ms')})" if probe is not None else "")
        + spend_note(report)
    ]
    if rows:
        lines += table(("model", "p95 ms", "errors %", "429s", "quota headroom %"), rows)
    if not latency:
        came = f"the last one's, from {settled.age(now)}" if settled.per_model else "none seen yet"
        lines.append(f"  (no new settled minute in Cloud Monitoring this run: latency, errors and 429s are {came})")
    return lines + problems(report)


def container_of(row: dict, untagged: str) -> str:
    """Whose container a figure describes: its `container` (cgroup) or `container_name` (Cloud Monitoring) tag."""
    name = tag_value(row["tags"], "container") or tag_value(row["tags"], "container_name")
    return f"container {name}" if name else untagged


def container_lines(report: dict) -> list[str]:
    """A line per container the figures describe: this agent's own cgroup, and Cloud Monitoring's per-container series
    (the app's, with app_container_name), each named, never mixed."""
    lines = []
    if memory := next(iter(rows_of(report, "pettwin.cloud_run.container.memory.usage")), None):
        name = tag_value(memory["tags"], "container")
        lines.append(
            f"  {container_of(memory, 'this process')} (cgroup): CPU "
            f"{number(value_of(report, 'pettwin.cloud_run.container.cpu.usage', container=name), 2)} cores, "
            f"memory {number(memory['value'] / 2**20, 0, ' MiB')} "
            f"({number(value_of(report, 'pettwin.cloud_run.container.memory.usage_pct', container=name), 1, ' %')} "
            f"of the limit), restarts "
            f"{number(value_of(report, 'pettwin.cloud_run.container.restarts', container=name))}, OOM kills "
            f"{number(value_of(report, 'pettwin.cloud_run.container.memory.oom_kills', container=name))}"
        )
    if cpu := next(iter(rows_of(report, "pettwin.cloud_run.container.cpu.utilization.p95")), None):
        name = tag_value(cpu["tags"], "container_name")
        memory_p95 = value_of(report, "pettwin.cloud_run.container.memory.utilization.p95", container_name=name)
        lines.append(
            f"  {container_of(cpu, 'every container of the revision')} (Cloud Monitoring): CPU p95 {number(cpu['value'], 1, ' %')}, "
            f"memory p95 {number(memory_p95, 1, ' %')}"
        )
    return lines or ["  containers: no figure this run"]


def cloud_run_lines(report: dict) -> list[str]:
    checks = {(check["name"], tag_value(check["tags"], "probe")): check for check in report["service_checks"]}
    lines = [title(report)]
    for probe, row in sorted(by_tag(report, "pettwin.cloud_run.app.probe.success", "probe").items()):
        check = checks.get(("pettwin.cloud_run.app.health", probe), {})
        latency = value_of(report, "pettwin.cloud_run.app.probe.latency", probe=probe)
        failures = value_of(report, "pettwin.cloud_run.app.probe.consecutive_failures", probe=probe)
        lines.append(
            f"  probe {probe} ({tag_value(row['tags'], 'probe_type')}): {check.get('status', MISSING)}, "
            f"{number(latency, 1, ' ms')}, {number(failures)} consecutive failures"
        )
    lines += container_lines(report)
    revision = checks.get(("pettwin.cloud_run.revision.ready", None))
    if revision or value_of(report, "pettwin.cloud_run.service.ready") is not None:
        traffic = ", ".join(
            f"{number(row['value'])} % on {name}"
            for name, row in sorted(
                by_tag(report, "pettwin.cloud_run.service.traffic.percent", "revision_name").items()
            )
        )
        lines.append(
            f"  revision: {revision['status'] if revision else MISSING}, service ready "
            f"{number(value_of(report, 'pettwin.cloud_run.service.ready'))}, latest revision ready "
            f"{number(value_of(report, 'pettwin.cloud_run.service.latest_revision_ready'))}; traffic {traffic or MISSING}"
        )
    return lines + problems(report)


SUMMARIES = {"pettwin_kafka_lag": kafka_lines, "pettwin_cloud_run": cloud_run_lines}


def summarize(report: dict, settled: SettledFigures | None = None, now: float = 0.0) -> str:
    """`settled` carries Vertex AI's last settled minute across runs (the demo keeps one; `now` is its clock)."""
    if report["check"] == "pettwin_vertex_ai":
        return "\n".join(vertex_lines(report, settled, now))
    return "\n".join(SUMMARIES[report["check"]](report))
