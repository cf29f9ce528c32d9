"""Benchmark of the Vertex AI check against the local GCP emulator: figures, not a pass/fail test.

    python bench/vertex_ai.py [--sizes 5 200] [--runs 5] [--page-size 10000] [--write-scenario DIR]

For each size N it generates a scenario with N publisher models (invocations by response code, latency and
first-token distributions, tokens, per-base-model quota) and N custom endpoints (latency, responses, replicas),
loads it into the emulator, and runs the check (project-level collection, the probe off). It prints API calls
per run by API and the wall time per run (median and max). The call count depends on the families enabled, not
on N: that is the point of grouping on Google's side.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml
from datadog_checks.base.stubs import aggregator, datadog_agent

from pettwin_checks.devenv.gcp_emulator import GcpEmulator
from pettwin_checks.vertex_ai.check import PettwinVertexAiCheck

QUOTA = "aiplatform.googleapis.com/quota/generate_content_requests_per_minute_per_project_per_base_model/"


PUBLISHER = "aiplatform.googleapis.com/publisher/online_serving/"
ENDPOINT = "aiplatform.googleapis.com/prediction/online/"
LATENCY_BUCKETS = {"exponential": {"num_finite_buckets": 16, "growth_factor": 2, "scale": 1}}


def series_of(metric: str, resource: dict, kind: str, values, labels: dict | None = None) -> dict:
    """One series in the emulator's YAML format; a list of values is a latency distribution (ms)."""
    one = {"metric": metric, "resource": resource, **({"labels": labels} if labels else {}), "kind": kind}
    if isinstance(values, list):
        one.update(value_type="DISTRIBUTION", unit="ms", buckets=LATENCY_BUCKETS)
    else:
        one["value_type"] = "INT64"
    one["values"] = values
    return one


def model_series(i: int, container: dict) -> list[dict]:
    """Publisher model i: invocations (200 and 429), latencies, tokens, and its base model's quota."""
    labels = {"publisher": "google", "model_user_id": f"bench-model-{i:04d}", "model_version_id": "default"}
    model = {"type": "aiplatform.googleapis.com/PublisherModel", "labels": {**container, **labels}}
    location = {"type": "aiplatform.googleapis.com/Location", "labels": container}
    quota = {"base_model": f"bench-model-{i:04d}", "limit_name": "L"}
    return [
        series_of(PUBLISHER + "model_invocation_count", model, "DELTA", 50 + i % 7, {"response_code": "200"}),
        series_of(
            PUBLISHER + "model_invocation_count",
            model,
            "DELTA",
            i % 3,
            {"response_code": "429", "error_category": "capacity"},
        ),
        series_of(
            PUBLISHER + "model_invocation_latencies", model, "DELTA", [0] * 9 + [10, 30, 10], {"latency_type": "model"}
        ),
        series_of(PUBLISHER + "first_token_latencies", model, "DELTA", [0] * 8 + [20, 20]),
        series_of(PUBLISHER + "token_count", model, "DELTA", 4000, {"type": "input"}),
        series_of(PUBLISHER + "token_count", model, "DELTA", 800, {"type": "output"}),
        series_of(QUOTA + "usage", location, "DELTA", 50, {**quota, "method": "GenerateContent"}),
        series_of(QUOTA + "limit", location, "GAUGE", 100, quota),
    ]


def endpoint_series(i: int, container: dict) -> list[dict]:
    """Custom endpoint i: prediction latencies, responses, replicas."""
    endpoint = {"type": "aiplatform.googleapis.com/Endpoint", "labels": {**container, "endpoint_id": str(10**15 + i)}}
    deployed = {"deployed_model_id": "1"}
    return [
        series_of(
            ENDPOINT + "prediction_latencies",
            endpoint,
            "DELTA",
            [0] * 6 + [5, 5],
            {**deployed, "latency_type": "model"},
        ),
        series_of(ENDPOINT + "response_count", endpoint, "DELTA", 20, {**deployed, "response_code": "200"}),
        series_of(ENDPOINT + "replicas", endpoint, "GAUGE", 2, deployed),
    ]


def scenario(size: int) -> dict:
    """A scenario with `size` models and `size` endpoints, in the emulator's YAML format."""
    container = {"resource_container": "412345678901", "location": "us-central1"}
    series = []
    for i in range(size):
        series += model_series(i, container) + endpoint_series(i, container)
    return {
        "project": {"id": "pettwin-demo", "number": "412345678901", "region": "us-central1"},
        "history_minutes": 30,
        "series": series,
    }


def run_size(emulator: GcpEmulator, key_path: str, size: int, runs: int, page_size: int, write_dir: str | None):
    text = yaml.safe_dump(scenario(size), sort_keys=False)
    if write_dir:
        Path(write_dir, f"vertex_ai_bench_{size}.yaml").write_text(text)
    emulator.load_scenario(text)
    datadog_agent.reset()
    instance = {
        "credentials_path": key_path,
        "monitoring_endpoint": emulator.url,
        "ingestion_delay": 300,
        "initial_lookback": 300,
        "page_size": page_size,
        "min_collection_interval": 60,
        # Priced like gemini-2.5-flash, so the spend estimate is part of what is measured.
        "token_prices": {"bench-model": {"input": 0.30, "output": 2.50}},
    }
    check = PettwinVertexAiCheck("pettwin_vertex_ai", {}, [instance])
    start = time.time()
    timings, calls, contexts = [], [], 0
    for run in range(runs):
        aggregator.reset()
        # Each run one minute later, so every windowed family has one new settled minute to read.
        check.wall_clock = lambda run=run: start + 60 * run
        began = time.perf_counter()
        error = check.run()
        timings.append(time.perf_counter() - began)
        if error:
            raise SystemExit(f"run {run + 1} failed: {error}")
        calls.append(dict(check.session.stats.calls))
        contexts = max(contexts, sum(len(aggregator.metrics(name)) for name in aggregator.metric_names))
    return timings, calls, contexts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[5, 200], help="models/endpoints per scenario")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--page-size", type=int, default=10_000)
    parser.add_argument("--write-scenario", metavar="DIR", help="also write each generated scenario YAML there")
    args = parser.parse_args()

    emulator = GcpEmulator(scenario="default").start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            key_path = emulator.write_service_account_key(Path(tmp) / "key.json")
            print(
                f"{'models+endpoints':>16}  {'runs':>4}  {'calls/run (first, then steady)':<44}  "
                f"{'wall median s':>13}  {'wall max s':>10}  {'contexts':>8}"
            )
            for size in args.sizes:
                timings, calls, contexts = run_size(
                    emulator, key_path, size, args.runs, args.page_size, args.write_scenario
                )
                first, steady = calls[0], calls[-1]
                shown = f"{sum(first.values())} {first} / {sum(steady.values())}"
                print(
                    f"{size:>16}  {args.runs:>4}  {shown:<44}  {statistics.median(timings):>13.3f}  "
                    f"{max(timings):>10.3f}  {contexts:>8}"
                )
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
