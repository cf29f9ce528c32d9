"""`pettwin-checks demo`, shortened: the real workload on the session's broker, the GCP emulator and the app
stand-in; the summary per run is short, and each injected fault shows in the runs after it."""

from __future__ import annotations

import io
import re
import uuid

import pytest

from pettwin_checks.devenv.demo import FAULTS, run_demo

pytestmark = pytest.mark.integration


def blocks(text: str) -> list[list[str]]:
    """The output cut into one block per check run (a `===` title and what follows it)."""
    runs: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("=== "):
            runs.append([line])
        elif runs and line.startswith("  "):
            runs[-1].append(line)
    return runs


def test_demo_shows_each_fault(kafka_broker, kafka_admin, monkeypatch):  # kafka_admin: the broker is up
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_broker.bootstrap)  # the demo's KafkaBroker uses it as is
    prefix = f"demo-{uuid.uuid4().hex[:6]}-"
    out = io.StringIO()
    assert run_demo(times=2, interval=1.0, faults=["all"], prefix=prefix, out=out) == 0
    text = out.getvalue()
    runs = blocks(text)
    # Two runs of each check, then two runs of the check each fault concerns.
    titles = [block[0].split()[1] for block in runs]
    assert titles == ["pettwin_kafka_lag", "pettwin_vertex_ai", "pettwin_cloud_run"] * 2 + [
        check for fault in FAULTS.values() for check in fault.checks for _ in range(2)
    ]
    for block in runs:
        assert len(block) <= 12, "a run's summary is a screenful at most:\n" + "\n".join(block)
    assert "pettwin.kafka.consumer_offset" not in text  # metric rows stay behind --all / --json

    kafka = [block for block in runs if block[0].startswith("=== pettwin_kafka_lag")]
    alerts = [next(line for line in block if line.split()[0] == f"{prefix}pettwin-alerts") for block in kafka]
    assert alerts[0].split()[1:3] == ["Stable", "1"]  # consuming, one member
    assert alerts[-1].split()[1:3] == ["Empty", "0"]  # consumer-behind stopped it
    lag = [int(line.split()[3].replace(",", "")) for line in alerts]
    assert lag[-1] > lag[1], "its lag grows once it stopped"
    archiver = next(line for line in kafka[0] if line.split()[0] == f"{prefix}pettwin-archiver")
    assert archiver.split()[1:3] == ["Empty", "0"]

    vertex = [block for block in runs if block[0].startswith("=== pettwin_vertex_ai")]
    flash = [next(line for line in block if line.split()[0] == "gemini-2.5-flash") for block in vertex]
    assert float(flash[0].split()[-1]) > 0 and float(flash[-1].split()[-1]) == 0.0  # quota headroom gone

    cloud_run = [block for block in runs if block[0].startswith("=== pettwin_cloud_run")]
    assert "probe health (http): OK" in cloud_run[0][1]
    assert "probe health (http): CRITICAL" in cloud_run[-1][1]
    assert any(line.startswith("  revision: CRITICAL") for line in cloud_run[-1])
    assert any(re.search(r"CRITICAL pettwin\.cloud_run\.revision\.ready .*not ready", line) for line in cloud_run[-1])
    assert "# Try next:" in text
