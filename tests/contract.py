"""metadata.csv and service_checks.json are the contract: helpers that hold submitted data to them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from datadog_checks.base.stubs.aggregator import AggregatorStub

ROOT = Path(__file__).resolve().parent.parent
METADATA_COLUMNS = [
    "metric_name",
    "metric_type",
    "interval",
    "unit_name",
    "per_unit_name",
    "description",
    "orientation",
    "integration",
    "short_name",
    "curated_metric",
]


def metadata_rows(prefix: str = "") -> dict[str, dict]:
    with open(ROOT / "metadata.csv", newline="") as f:
        return {row["metric_name"]: row for row in csv.DictReader(f) if row["metric_name"].startswith(prefix)}


def service_check_names(prefix: str = "") -> set[str]:
    with open(ROOT / "service_checks.json") as f:
        return {sc["check"] for sc in json.load(f) if sc["check"].startswith(prefix)}


# Rows only a leader election submits; the election tests exercise them (tests/integration/kafka_lag/
# test_leader_election.py, tests/integration/test_project_scope_election.py), so `every_row` runs need no broker.
ELECTION_ROWS = (
    "pettwin.kafka.collector.leader",
    "pettwin.vertex_ai.collector.leader",
    "pettwin.cloud_run.collector.leader",
)


def assert_contract(aggregator: AggregatorStub, prefix: str, every_row: bool = False) -> None:
    """Every submitted metric is in metadata.csv with its type, every service check in service_checks.json.

    With `every_row`, also every metadata row / service check under `prefix` was submitted in this test, except the
    leader-election rows, which the election tests cover.
    """
    rows = metadata_rows(prefix)
    aggregator.assert_metrics_using_metadata(rows, check_submission_type=True, check_symmetric_inclusion=False)
    submitted_metrics = {name for name in aggregator.metric_names if name.startswith(prefix)}
    submitted_checks = {name for name in aggregator.service_check_names if name.startswith(prefix)}
    unknown_checks = submitted_checks - service_check_names(prefix)
    assert not unknown_checks, f"service checks missing from service_checks.json: {sorted(unknown_checks)}"
    if every_row:
        rows = {name: row for name, row in rows.items() if name not in ELECTION_ROWS}
        assert not rows.keys() - submitted_metrics, (
            f"in metadata.csv, never submitted: {sorted(rows.keys() - submitted_metrics)}"
        )
        missing = service_check_names(prefix) - submitted_checks
        assert not missing, f"in service_checks.json, never submitted: {sorted(missing)}"
