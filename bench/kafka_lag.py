"""Benchmark of the Kafka lag check against a real local broker: figures, not a pass/fail test.

    python bench/kafka_lag.py [--groups 500] [--partitions 2000] [--runs 500] [--live] [--max-contexts N]

Creates the topics (10 partitions each) and N consumer groups spread over them with committed offsets, then runs
the check repeatedly and prints: the first run (a cold start, with the check's default options unless
--collection-timeout), then over the other runs median, p95 and max wall time, CPU seconds, the requests on the wire per
run by Kafka API (Fetch included, and the most Fetch requests in one run), how many time lags were exact, submitted
metric contexts, and the process RSS after runs 1, 10, 100, 500, 1000, 2000 and the last; the same wall and CPU
figures for the floor (the protocol minimum for the offsets: the batched requests alone, no Fetch, nothing done with
the answers), run between the check's runs in a process of its own, so the RSS figures are the check's alone.
With --live, between two runs every high watermark and every group's committed offset move (kafka_live.py).
Requests are counted in kafka-python's protocol layer (pettwin_checks.devenv.kafka_wire).
Starts a broker with pettwin_checks.devenv.kafka_broker.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import signal
import statistics
import sys
import tempfile
import time
from array import array
from collections import Counter

import psutil
from datadog_checks.base.stubs import datadog_agent
from kafka_floor import FloorProcess, timed_run
from kafka_live import Mover
from kafka_seed import seed
from kafka_submissions import install

from pettwin_checks.devenv.kafka_broker import KafkaBroker
from pettwin_checks.devenv.kafka_wire import WireCount
from pettwin_checks.kafka_lag.check import PettwinKafkaLagCheck


class DiskCache:
    """The persistent cache in files, as the agent keeps it (under its run directory). The stub keeps it in a dict in
    the check's process, which would count megabytes of cached state in the check's RSS."""

    def __init__(self, directory: str) -> None:
        self.directory = pathlib.Path(directory)

    def write(self, key: str, value: str) -> None:
        (self.directory / key).write_text(value)

    def read(self, key: str) -> str:
        path = self.directory / key
        return path.read_text() if path.exists() else ""


def skip_tag_lint(metric: str, tags: list[str]) -> None:
    """The stub aggregator's generic-tag lint, off."""


def broker_workdir(stack: contextlib.ExitStack) -> str | None:
    """The broker's directory in memory (/dev/shm) where the machine has one, else a temporary one of its own.

    In lockstep every partition's log crosses `log.index.interval.bytes` on the same Produce: 5,000 partitions wrote
    their first offset- and time-index entries at once, each the first write to a sparse memory-mapped file, which on
    this machine's ext4 costs about 13 ms (2,000 such writes: 25 s; on tmpfs 6 ms in all), so the broker answered
    nothing for a minute (bench/README.md). That is the benchmark's disk, not the check."""
    if not os.access("/dev/shm", os.W_OK):
        return None
    return stack.enter_context(tempfile.TemporaryDirectory(prefix="pettwin-bench-kafka-", dir="/dev/shm"))


def timed(owner, method: str, seconds: list[float] | None = None) -> list[float]:
    """Record how long each call of a method takes (the offsets' broker I/O), to tell it apart from computing and
    submitting; into `seconds` when given."""
    seconds = [] if seconds is None else seconds
    call = getattr(owner, method)

    def timed_call(*args):
        started = time.perf_counter()
        try:
            return call(*args)
        finally:
            seconds.append(time.perf_counter() - started)

    setattr(owner, method, timed_call)
    return seconds


def timed_reads(client) -> list[float]:
    """Record, in runs with records to read, how long the check waited for the Fetch answers (and decoded them) after
    submitting what the offsets alone tell: the part of the reads the run's wall time still shows."""
    seconds: list[float] = []
    start_reading = client.start_reading

    def timed_start(wanted):
        reading = start_reading(wanted)
        if wanted:
            timed(reading, "finish", seconds)
        return reading

    client.start_reading = timed_start
    return seconds


CHECKPOINTS = (1, 10, 100, 500, 1000, 2000)


def figures(walls: list[float], cpus: list[float], rss: dict[int, float]) -> dict:
    """Over the runs after the first (a cold start, reported on its own) when there are several."""
    steady_walls, steady_cpus = (walls[1:], cpus[1:]) if len(walls) > 1 else (walls, cpus)
    return {
        "first": (walls[0], cpus[0]) if walls else None,
        "wall": statistics.median(steady_walls),
        "p95": sorted(steady_walls)[int(0.95 * (len(steady_walls) - 1))],
        "max": max(steady_walls),
        "cpu": statistics.median(steady_cpus),
        "cpu_max": max(steady_cpus),
        "rss": rss,
        "walls": walls,
    }


def measure(check_run, floor: FloorProcess, runs: int, floor_runs: int, between) -> tuple[dict, dict]:
    """Wall and CPU seconds per run of the check and of the floor, and the process RSS at checkpoints.

    The floor runs are spread evenly between the check's, so both see the broker in the same state (its load
    drifts over a long benchmark). RSS checkpoints are printed as they are reached, so a long run shows progress.
    `between()` runs after each of the check's runs, untimed (reading what the run submitted, the live mode's
    moves). SIGUSR1 ends
    the measuring early, with the figures of the runs done (the benchmark's own processes are left to end cleanly).
    """
    stop: list[bool] = []
    signal.signal(signal.SIGUSR1, lambda *_: stop.append(True))
    process = psutil.Process()
    check_times, floor_times = ([], []), ([], [])
    rss: dict[int, float] = {}
    floor_every = max(1, runs // max(1, floor_runs))
    for number in range(1, runs + 1):
        timed_run(check_run, *check_times)
        between()
        if number % floor_every == 0 or not floor_times[0]:
            floor.timed_run(*floor_times)
        if number in CHECKPOINTS or number == runs or stop:
            rss[number] = process.memory_info().rss / 2**20
            floor_so_far = f"{statistics.median(floor_times[0]):.3f}s" if floor_times[0] else "not run yet"
            print(
                f"  after run {number}: RSS {rss[number]:.1f} MiB; medians so far: check wall "
                f"{statistics.median(check_times[0]):.3f}s, CPU {statistics.median(check_times[1]):.3f}s, "
                f"floor wall {floor_so_far}",
                flush=True,
            )
        if stop:
            print(f"  stopped: figures of the {number} runs done", flush=True)
            break
    return figures(*check_times, rss), figures(*floor_times, {})


def report(name: str, measured: dict) -> None:
    print(
        f"{name}: wall per run median {measured['wall']:.3f}s (p95 {measured['p95']:.3f}s, max "
        f"{measured['max']:.3f}s), CPU per run median {measured['cpu']:.3f}s (max {measured['cpu_max']:.3f}s); "
        f"first run {measured['first'][0]:.3f}s, CPU {measured['first'][1]:.3f}s"
    )
    if measured["rss"]:
        print(f"{name}: RSS " + ", ".join(f"after run {run}: {mib:.1f} MiB" for run, mib in measured["rss"].items()))


def time_lag_kinds(submissions) -> dict[str, int]:
    """Of this run's lagging partitions (consumer_lag > 0): how many got a time lag of each kind, how many none, how
    many a time lag of 0."""
    lagging = {tuple(sorted(m.tags)) for m in submissions.metrics("pettwin.kafka.consumer_lag") if m.value > 0}
    kinds: Counter[str] = Counter()
    for m in submissions.metrics("pettwin.kafka.consumer_lag_seconds"):
        kind = next(t for t in m.tags if t.startswith("lag_seconds_kind:"))
        key = tuple(sorted(t for t in m.tags if t != kind))
        if key in lagging:
            kinds[kind.split(":")[1]] += 1
            kinds["zero"] += m.value == 0
    kinds["none"] = len(lagging) - sum(v for k, v in kinds.items() if k != "zero")
    kinds["lagging"] = len(lagging)
    return kinds


# A move (untimed) this long means the broker stalled: a run right after one may wait on the same stall.
STALLED_MOVE = 5.0


def report_slow_runs(walls: list[float], moves: list[float]) -> None:
    """The runs over 1 s, and how many came right after a move that took over STALLED_MOVE seconds (run k follows
    move k - 1); the maximum of the other runs."""
    after_stall = {number for number, seconds in enumerate(moves, start=2) if seconds > STALLED_MOVE}
    slow = [number for number, wall in enumerate(walls, start=1) if wall > 1.0 and number > 1]
    others = [wall for number, wall in enumerate(walls, start=1) if number > 1 and number not in after_stall]
    print(
        f"runs over 1 s after the first: {len(slow)} ({len(set(slow) & after_stall)} right after a move that took "
        f"over {STALLED_MOVE:g}s, of {len(after_stall)} such moves); max of the runs not after one: "
        f"{max(others, default=0):.3f}s"
    )


def report_time_lags(observed: Observed) -> None:
    first, steady = observed.first_time_lags, observed.steady_time_lags
    print(f"first run: lagging partitions {first['lagging']}, time lags {dict(first)}")
    lagging, exact = steady["lagging"], steady["exact"]
    print(
        f"other runs: {exact} of {lagging} lagging partitions' time lags exact ({100 * exact / max(1, lagging):.2f}%), "
        f"none {steady['none']}, zero {steady['zero']}; runs with every one exact: "
        f"{observed.all_exact_runs} of {len(observed.fetches) - 1}"
    )
    fetches, totals = observed.fetches[1:] or observed.fetches, observed.requests[1:] or observed.requests
    print(
        f"Fetch requests per run: first {observed.fetches[0]}, then median {statistics.median(fetches)}, max "
        f"{max(fetches)}; all requests per run after the first: median {statistics.median(totals)}, max {max(totals)}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--partitions", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--floor-runs", type=int, default=50, help="runs of the batched requests alone (the floor)")
    parser.add_argument("--max-contexts", type=int, help="cardinality budget for the check (default: the check's 5000)")
    parser.add_argument(
        "--collection-timeout", type=float, help="the check's collection_timeout (default: the check's)"
    )
    parser.add_argument(
        "--live", action="store_true", help="move every high watermark and committed offset between runs"
    )
    parser.add_argument(
        "--aggregator",
        choices=("stub", "copying"),
        default="stub",
        help="where the check submits: datadog_checks_base's stub, or one that keeps no Python object of a "
        "submission, as the agent's (kafka_submissions.py)",
    )
    return parser.parse_args()


def bench_instance(args: argparse.Namespace, bootstrap: str) -> dict:
    instance = {
        "kafka_connect_str": bootstrap,
        "monitor_unlisted_consumer_groups": True,
        "include_consumer_groups": ["^bench-group-"],
    }
    if args.collection_timeout:
        instance["collection_timeout"] = args.collection_timeout
    if args.max_contexts:
        instance["max_contexts"] = args.max_contexts
    return instance


class Observed:
    """The check's runs (`check_run`, timed) and what each submitted and sent (`after_run`, untimed: reading it is
    the benchmark's work, not the check's), then the live mode's move."""

    def __init__(self, check: PettwinKafkaLagCheck, counted: WireCount, mover: Mover | None, submissions) -> None:
        self.check, self.counted, self.mover, self.submissions = check, counted, mover, submissions
        # Per run as flat arrays and running totals, so that 2,000 runs add little to the RSS the benchmark reports.
        self.fetches, self.requests = array("l"), array("l")  # Fetch and all requests on the wire, by run
        self.first_time_lags: dict[str, int] = {}
        self.steady_time_lags: Counter[str] = Counter()  # summed over the runs after the first
        self.all_exact_runs = 0
        self.max_contexts = 0
        self.folded: float | None = None  # the last run's contexts.folded (absent when the broker was unreachable)
        self.unanswered = 0
        self._sent_before = Counter()
        self._warned: set[str] = set()

    def check_run(self) -> None:
        self._sent_before = Counter(self.counted.sent)
        error = self.check.run()
        if error:
            raise SystemExit(f"check run failed: {error}")

    def after_run(self) -> None:
        sent = self.counted.sent - self._sent_before
        self.fetches.append(sent.get("Fetch", 0))
        self.requests.append(sum(sent.values()))
        submissions = self.submissions
        self._count_time_lags(time_lag_kinds(submissions))
        for warning in self.check.get_warnings():
            if warning not in self._warned:
                self._warned.add(warning)
                print(f"  run {len(self.fetches)} warned: {warning[:300]}", flush=True)
        self.max_contexts = max(self.max_contexts, submissions.contexts())
        for folded in submissions.metrics("pettwin.kafka.contexts.folded"):
            self.folded = folded.value
        self.unanswered += self.check.client._wire._manager is None  # closed after a run with no answer
        # The agent keeps nothing of a submission in the check's process; the stub keeps every one until reset.
        submissions.reset()
        if self.mover is not None:
            self.mover.move()

    def _count_time_lags(self, kinds: dict[str, int]) -> None:
        if not self.first_time_lags:
            self.first_time_lags = kinds
            return
        self.steady_time_lags.update(kinds)
        self.all_exact_runs += kinds.get("exact", 0) == kinds["lagging"]


def report_wire(observed: Observed, wire_sent: Counter, runs: int, floor_close: tuple, instance: dict) -> None:
    floor_runs, floor_unanswered, floor_wire = floor_close
    print(
        f"runs with a request left unanswered within collection_timeout (fresh connections next run): "
        f"check {observed.unanswered} of {runs}, floor {floor_unanswered} of {floor_runs}"
    )
    for name, sent, count in (("check", wire_sent, runs), ("floor", floor_wire, floor_runs)):
        print(
            f"{name} requests on the wire per run (kafka-python's protocol layer; the first run also connects): "
            f"{sum(sent.values()) / count:.2f}: "
            + ", ".join(f"{api} {n / count:.2f}" for api, n in sorted(sent.items()))
        )
    print(
        f"metric contexts per run: max {observed.max_contexts} (budget {instance.get('max_contexts', 5000)}), "
        f"folded contexts reported: {observed.folded:g}"
    )


def report_times(measured: dict, floor: FloorProcess, floor_figures: dict, broker_seconds, read_seconds) -> None:
    report("floor (the batched requests alone)", floor_figures)
    report("check", measured)
    print("floor RSS (its own process): " + ", ".join(f"after run {n}: {mib:.1f} MiB" for n, mib in floor.rss.items()))
    print(
        f"check / floor wall time: {measured['wall'] / floor_figures['wall']:.2f}x; the check's broker I/O alone: "
        f"median {statistics.median(broker_seconds):.3f}s "
        f"({statistics.median(broker_seconds) / floor_figures['wall']:.2f}x the floor)"
    )
    if read_seconds:
        print(
            f"record reads left after the offsets' series (the wait for the Fetch answers, decoding them; in runs "
            f"with something to read: {len(read_seconds)}): first "
            f"{read_seconds[0]:.3f}s, then median {statistics.median(read_seconds[1:] or read_seconds):.3f}s"
        )


def main() -> int:
    args = parse_args()
    with contextlib.ExitStack() as stack:
        broker = stack.enter_context(KafkaBroker(broker_workdir(stack)))
        started = time.monotonic()
        committed = seed(broker.bootstrap, args.groups, args.partitions)
        print(
            f"seeded {args.groups} groups over {args.partitions} partitions in {time.monotonic() - started:.1f}s "
            f"(Kafka {broker.version}, {broker.bootstrap}, data in {broker.workdir})"
        )
        floor = FloorProcess(broker.bootstrap)
        mover = Mover(broker.bootstrap, committed) if args.live else None
        cache = DiskCache(stack.enter_context(tempfile.TemporaryDirectory(prefix="pettwin-bench-cache-")))
        datadog_agent.write_persistent_cache, datadog_agent.read_persistent_cache = cache.write, cache.read
        # The stub aggregator checks every tag of every submission against Datadog's generic tag names: a lint for
        # tests (the suite runs it), not something the agent does, so the benchmark turns it off. Its own switch
        # (DDEV_SKIP_GENERIC_TAGS_CHECK) still reads os.environ once a submission, about 0.035 s a run at 68,000
        # series (bench/README.md), so the lint is replaced outright.
        sys.modules["datadog_checks.base.stubs.aggregator"].check_tag_names = skip_tag_lint
        instance = bench_instance(args, broker.bootstrap)
        check = PettwinKafkaLagCheck("pettwin_kafka_lag", {}, [instance])
        broker_seconds = timed(check.client, "snapshot")
        read_seconds = timed_reads(check.client)
        with WireCount() as wire:
            observed = Observed(check, wire, mover, install(args.aggregator))
            measured, floor_figures = measure(observed.check_run, floor, args.runs, args.floor_runs, observed.after_run)
        floor_close = floor.close()
        if mover is not None:
            mover.close()

    runs = max(measured["rss"])  # the runs done (fewer than asked when interrupted)
    print(
        f"runs: check {runs}, floor {floor_close[0]}, live {args.live}, aggregator {args.aggregator}, "
        f"instance {instance}"
    )
    if mover is not None:
        print(f"moves between runs (untimed): median {statistics.median(mover.seconds):.2f}s")
        report_slow_runs(measured["walls"], mover.seconds)
    report_time_lags(observed)
    report_times(measured, floor, floor_figures, broker_seconds, read_seconds)
    report_wire(observed, wire.sent, runs, floor_close, instance)
    rss = measured["rss"]
    print(
        f"check RSS growth: run 1 -> {runs}: {rss[runs] - rss[1]:+.1f} MiB; "
        f"run 10 -> {runs} (after the status windows fill): {rss[runs] - rss[min(10, runs)]:+.1f} MiB"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
