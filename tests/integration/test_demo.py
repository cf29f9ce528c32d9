"""`pettwin-checks demo`, shortened: the real workload on the session's broker, the GCP emulator and the app
stand-in; the summary per run is short, what the demo says of its groups holds, and each injected fault shows in the
runs after it what the README says it shows."""

from __future__ import annotations

import io
import re
import uuid
from pathlib import Path

import pytest

from pettwin_checks.devenv.demo import FAULTS, run_demo

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_says() -> dict[str, str]:
    """What the README's demo block says each fault shows: `scripts/demo --fault NAME   # what it shows`."""
    return dict(re.findall(r"^scripts/demo --fault (\S+)\s+# (.+)$", README.read_text(), flags=re.MULTILINE))


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

    said = readme_says()
    assert set(said) == set(FAULTS)

    kafka = [block for block in runs if block[0].startswith("=== pettwin_kafka_lag")]
    alerts = [next(line for line in block if line.split()[0] == f"{prefix}pettwin-alerts") for block in kafka]
    # The group the demo describes as keeping up: consuming, one member, and no lag status but OK.
    assert all(line.split()[1:3] == ["Stable", "1"] and line.split()[5] == "OK" for line in alerts[:2]), alerts
    archiver = next(line for line in kafka[0] if line.split()[0] == f"{prefix}pettwin-archiver")
    assert archiver.split()[1:3] == ["Empty", "0"]
    # consumer-behind: "a consumer stops: its group goes Empty, its lag grows, status <S>".
    assert "goes Empty" in said["consumer-behind"] and "lag grows" in said["consumer-behind"]
    assert alerts[-1].split()[1:3] == ["Empty", "0"]
    lag = [int(line.split()[3].replace(",", "")) for line in alerts]
    assert lag[-1] > lag[-2] > lag[1], "its lag grows once it stopped"
    (status,) = re.findall(r"status (\w+)", said["consumer-behind"])
    assert alerts[-1].split()[5] == status, alerts[-1]

    vertex = [block for block in runs if block[0].startswith("=== pettwin_vertex_ai")]
    flash = [next(line for line in block if line.split()[0] == "gemini-2.5-flash").split() for block in vertex]
    # Between settled minutes the last one's figures stay, with their age, never blanks.
    assert all(row[1] != "-" for row in flash), flash
    # vertex-quota: "Gemini at its quota: headroom 0 %, 429s as its minute settles": the quota at once; the 429s
    # with the first settled minute after the fault, until which the row says its figures are an earlier minute's.
    assert "headroom 0 %" in said["vertex-quota"] and "429s as its minute settles" in said["vertex-quota"]
    assert float(flash[0][-1]) > 0 and float(flash[-1][-1]) == 0.0
    more_429s = int(flash[-1][3].replace(",", "")) > int(flash[0][3].replace(",", ""))
    assert more_429s or any("no new settled minute" in line for line in vertex[-1]), vertex[-1]

    cloud_run = [block for block in runs if block[0].startswith("=== pettwin_cloud_run")]
    assert "probe health (http): OK" in cloud_run[0][1]
    # Every container figure names the container it describes.
    assert all(re.match(r"  container \S+ \(cgroup\)", block[2]) for block in cloud_run), cloud_run[0]
    # failed-rollout: "a revision fails and the app answers 503: both CRITICAL, with the reason".
    assert "503" in said["failed-rollout"] and "both CRITICAL, with the reason" in said["failed-rollout"]
    assert "probe health (http): CRITICAL" in cloud_run[-1][1]
    assert any(line.startswith("  revision: CRITICAL") for line in cloud_run[-1])
    assert any(re.search(r"CRITICAL pettwin\.cloud_run\.app\.health .*HTTP 503", line) for line in cloud_run[-1])
    assert any(re.search(r"CRITICAL pettwin\.cloud_run\.revision\.ready .*not ready", line) for line in cloud_run[-1])
    assert "# Try next:" in text
