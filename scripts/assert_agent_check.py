#!/usr/bin/env python3
"""Assert what one check submitted in a real agent: the output of `agent check <check> --json` (or of
`pettwin-checks run <check> --json`, the same facts in this project's shape), read from a file or stdin.

    agent check pettwin_kafka_lag --json | scripts/assert_agent_check.py pettwin_kafka_lag
    scripts/assert_agent_check.py pettwin_vertex_ai vertex.json

Holds, for the check named: the run raised no error; every metric it submitted is in metadata.csv and every service
check in service_checks.json; what docker-compose.e2e.yml's healthy environment must show (EXPECTED) is there.
Exit 0 when all hold; else 1, with one line per failure. Standard library only: it runs wherever Python 3 does.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AGENT_STATUSES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}

# What each check shows against docker-compose.e2e.yml (agent/e2e/conf.d): service checks at the status named, and
# metrics that must be there (with the tag named, when one is).
EXPECTED = {
    "pettwin_kafka_lag": {
        "service_checks": {"pettwin.kafka.can_connect": "OK"},
        "metrics": {"pettwin.kafka.consumer_lag": "consumer_group:pettwin-alerts", "pettwin.kafka.broker_offset": ""},
    },
    "pettwin_vertex_ai": {
        "service_checks": {"pettwin.vertex_ai.monitoring.can_query": "OK", "pettwin.vertex_ai.can_connect": "OK"},
        "metrics": {"pettwin.vertex_ai.probe.latency": ""},
    },
    "pettwin_cloud_run": {
        "service_checks": {"pettwin.cloud_run.app.health": "OK", "pettwin.cloud_run.revision.ready": "OK"},
        "metrics": {"pettwin.cloud_run.app.probe.success": "probe:liveness"},
    },
}


@dataclass
class Submitted:
    """One run's submissions, whichever tool printed them."""

    metrics: list[tuple[str, list[str]]] = field(default_factory=list)  # (name, tags)
    service_checks: list[tuple[str, str, str]] = field(default_factory=list)  # (name, status, message)
    errors: list[str] = field(default_factory=list)


def json_document(text: str):
    """The JSON document in `text`: `agent check` prints log lines before it."""
    decoder = json.JSONDecoder()
    for start, char in enumerate(text):
        if char in "[{" and (start == 0 or text[start - 1] == "\n"):
            try:
                return decoder.raw_decode(text[start:])[0]
            except ValueError:
                continue
    raise ValueError("no JSON document in the output")


def from_agent(collectors: list[dict]) -> Submitted:
    """`agent check --json`: a list of collectors, each with the runner's state and what its aggregator got."""
    submitted = Submitted()
    for collector in collectors:
        aggregator = collector.get("aggregator") or {}
        for series in aggregator.get("metrics") or []:
            submitted.metrics.append((series["metric"], series.get("tags") or []))
        for check in aggregator.get("service_checks") or []:
            status = AGENT_STATUSES.get(check["status"], str(check["status"]))
            submitted.service_checks.append((check["check"], status, check.get("message") or ""))
        if error := (collector.get("runner") or {}).get("LastError"):
            submitted.errors.append(str(error))
    return submitted


def from_pettwin_checks(reports: list[dict]) -> Submitted:
    """`pettwin-checks run --json`: a list of run reports."""
    submitted = Submitted()
    for report in reports:
        submitted.metrics += [(metric["name"], metric["tags"]) for metric in report["metrics"]]
        submitted.service_checks += [(sc["name"], sc["status"], sc["message"] or "") for sc in report["service_checks"]]
        if report.get("error"):
            submitted.errors.append(json.dumps(report["error"]))
    return submitted


def parse(text: str) -> Submitted:
    document = json_document(text)
    runs = document if isinstance(document, list) else [document]
    if all("aggregator" in run or "runner" in run for run in runs):  # no collector at all: nothing submitted
        return from_agent(runs)
    if runs and all("service_checks" in run and "check" in run for run in runs):
        return from_pettwin_checks(runs)
    raise ValueError("neither `agent check --json` nor `pettwin-checks run --json` output")


def contract(root: Path) -> tuple[set[str], set[str]]:
    with (root / "metadata.csv").open(newline="") as f:
        metrics = {row["metric_name"] for row in csv.DictReader(f)}
    service_checks = {entry["check"] for entry in json.loads((root / "service_checks.json").read_text())}
    return metrics, service_checks


def failures(check: str, submitted: Submitted, root: Path = ROOT) -> list[str]:
    known_metrics, known_service_checks = contract(root)
    found = [f"the run failed: {error}" for error in submitted.errors]
    namespace = EXPECTED[check]
    found += [f"metric {name} is not in metadata.csv" for name in {m for m, _ in submitted.metrics} - known_metrics]
    found += [
        f"service check {name} is not in service_checks.json"
        for name in {name for name, _, _ in submitted.service_checks} - known_service_checks
    ]
    for name, wanted in namespace["service_checks"].items():
        statuses = [(status, message) for sc, status, message in submitted.service_checks if sc == name]
        if not statuses:
            found.append(f"service check {name} was not submitted")
        found += [f"{name} is {status}, not {wanted}: {message}" for status, message in statuses if status != wanted]
    for name, tag in namespace["metrics"].items():
        if not any(metric == name and (not tag or tag in tags) for metric, tags in submitted.metrics):
            found.append(f"metric {name}{f' with {tag}' if tag else ''} was not submitted")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=sorted(EXPECTED))
    parser.add_argument("output", nargs="?", help="the JSON output (default: stdin)")
    arguments = parser.parse_args(argv)
    text = Path(arguments.output).read_text() if arguments.output else sys.stdin.read()
    try:
        submitted = parse(text)
    except ValueError as e:
        print(f"{arguments.check}: {e}", file=sys.stderr)
        return 1
    found = failures(arguments.check, submitted)
    for failure in found:
        print(f"{arguments.check}: {failure}", file=sys.stderr)
    if not found:
        print(
            f"{arguments.check}: OK ({len(submitted.metrics)} metric points, "
            f"{len(submitted.service_checks)} service checks)"
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
