"""Load and run one checks.d shim the way the Datadog Agent's Python loader does; print what it submitted.

Runs under the agent-like interpreter built by tests/agent/agent_venv.py, so it imports only what that
interpreter has (the standard library, yaml, datadog_checks and the installed pettwin-checks):

    <embedded python> agent_loader.py checks.d/pettwin_kafka_lag.py conf.yaml [--runs N] [--interval S]

What the agent does, and this script repeats:
- the module is imported from the file, under the file's base name;
- the check class is the first attribute, in dir() order, that is a subclass of AgentCheck other than
  AgentCheck itself and has no subclass of its own;
- one check object per instance: class(name=..., init_config=..., instances=[instance]);
- each run calls check.run(), which returns "" or a JSON list of errors.
Outside the agent, datadog_checks.base submits to its stub aggregator, which is what is printed as JSON.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import inspect
import json
import sys
import time
from pathlib import Path

import yaml
from datadog_checks.base import AgentCheck
from datadog_checks.base.stubs import aggregator


def load_module(shim: Path):
    name = shim.stem
    spec = importlib.util.spec_from_file_location(name, shim)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def pick_check_class(module):
    for attribute in dir(module):
        candidate = getattr(module, attribute)
        if (
            inspect.isclass(candidate)
            and issubclass(candidate, AgentCheck)
            and candidate is not AgentCheck
            and not candidate.__subclasses__()
        ):
            return candidate
    raise SystemExit(f"no AgentCheck subclass without subclasses in {module.__file__}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("shim", type=Path)
    parser.add_argument("config", type=Path)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.0)
    parser.add_argument("--metadata", type=Path, help="metadata.csv: report submitted metrics it lacks or mistypes")
    parser.add_argument("--service-checks", type=Path, help="service_checks.json: report unknown service checks")
    args = parser.parse_args()

    check_name = args.shim.stem
    check_class = pick_check_class(load_module(args.shim))
    config = yaml.safe_load(args.config.read_text()) or {}
    init_config = config.get("init_config") or {}
    checks = [
        check_class(name=check_name, init_config=init_config, instances=[instance])
        for instance in config.get("instances") or []
    ]
    for index, check in enumerate(checks):
        check.check_id = f"{check_name}:{index}"

    errors = []
    for run in range(args.runs):
        if run:
            time.sleep(args.interval)
        for check in checks:
            error = check.run()
            if error:
                errors.extend(json.loads(error))
    for check in checks:
        check.cancel()

    contract_errors = []
    if args.metadata:
        with open(args.metadata, newline="") as f:
            rows = {row["metric_name"]: row for row in csv.DictReader(f)}
        try:
            aggregator.assert_metrics_using_metadata(rows, check_submission_type=True)
        except AssertionError as error:
            contract_errors.append(f"metadata.csv: {error}")
    if args.service_checks:
        known = {entry["check"] for entry in json.loads(args.service_checks.read_text())}
        unknown = sorted(set(aggregator.service_check_names) - known)
        if unknown:
            contract_errors.append(f"service_checks.json lacks {unknown}")

    import pettwin_checks

    print(
        json.dumps(
            {
                "check_class": f"{check_class.__module__}.{check_class.__qualname__}",
                "namespace": check_class.__NAMESPACE__,
                "package_file": pettwin_checks.__file__,
                "contract_errors": contract_errors,
                "instances": len(checks),
                "errors": errors,
                "metrics": sorted({name for name in aggregator.metric_names}),
                "metric_types": {
                    name: aggregator.METRIC_ENUM_MAP_REV[aggregator.metrics(name)[0].type]
                    for name in aggregator.metric_names
                },
                "service_checks": {
                    name: sorted({sc.status for sc in aggregator.service_checks(name)})
                    for name in aggregator.service_check_names
                },
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
