"""The Kafka benchmark still runs and reads what it says it reads: a small live run, judged by its printed figures
(counts only: times are the benchmark's to print, never a test's to assert)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[2] / "bench" / "kafka_lag.py"


def test_a_small_live_benchmark_reads_every_time_lag_exactly_with_one_fetch_a_run():
    args = ["--groups", "4", "--partitions", "20", "--runs", "4", "--floor-runs", "1", "--live"]
    done = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    exact = re.search(r"other runs: (\d+) of (\d+) lagging partitions' time lags exact", out)
    assert exact and exact[1] == exact[2] and int(exact[2]) > 0, out
    assert "none 0, zero 0; runs with every one exact: 3 of 3" in out, out
    fetches = re.search(r"Fetch requests per run: first (\d+), then median ([\d.]+), max (\d+)", out)
    assert fetches and int(fetches[3]) <= 2, out  # one broker: at most two rounds a run
    wire = re.search(r"check requests on the wire per run [^:]*: ([\d.]+):", out)
    assert wire and float(wire[1]) <= 25, out
    assert re.search(r"check RSS growth: run 1 -> 4: [+-][\d.]+ MiB", out), out
