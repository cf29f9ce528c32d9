"""The Kafka benchmark still runs and reads what it says it reads: a small live run, judged by its printed figures
(counts only: times are the benchmark's to print, never a test's to assert)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

BENCH = Path(__file__).resolve().parents[2] / "bench" / "kafka_lag.py"


@pytest.mark.parametrize("aggregator", ["stub", "copying"])
def test_a_small_live_benchmark_reads_every_time_lag_exactly_with_one_fetch_a_run(aggregator):
    """Through either aggregator the benchmark reads back the same submissions (a copying one that lost or garbled a
    series would count fewer exact time lags or contexts)."""
    args = ["--groups", "4", "--partitions", "20", "--runs", "4", "--floor-runs", "1", "--live"]
    args += ["--max-contexts", "1000000", "--aggregator", aggregator]
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
    # The first run's, most: 4 groups on 2 topics of 10 partitions; a group partition 5 series (the sparse flags all
    # on the first run), a group 9, a group topic 4 (no rates yet), a partition's broker_offset 1, the check's own 7.
    assert f"metric contexts per run: max {4 * 10 * 5 + 4 * 9 + 4 * 4 + 20 + 7} " in out, out
