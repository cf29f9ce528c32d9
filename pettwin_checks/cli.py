"""`pettwin-checks`: run a check outside the agent and print what it submits, like `agent check` does."""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import logging
import sys
import time
from typing import Any

import yaml

# check name (conf.d / checks.d) -> "module:Class". Imported lazily so one check's dependencies never load another's.
CHECKS = {
    "pettwin_kafka_lag": "pettwin_checks.kafka_lag.check:PettwinKafkaLagCheck",
    "pettwin_vertex_ai": "pettwin_checks.vertex_ai.check:PettwinVertexAiCheck",
    "pettwin_cloud_run": "pettwin_checks.cloud_run.check:PettwinCloudRunCheck",
}

SERVICE_CHECK_STATUS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


def load_check_class(name: str):
    if name not in CHECKS:
        raise SystemExit(f"unknown check {name!r}; known: {', '.join(sorted(CHECKS))}")
    module_name, class_name = CHECKS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


class ConfigError(Exception):
    """A configuration the check refuses; its message is one line naming the file, the instance and the field."""


def load_config(path: str) -> tuple[dict, list[dict]]:
    try:
        with open(path) as f:
            config = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: {' '.join(str(e).split())}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: not a mapping with `init_config` and `instances`")
    instances = config.get("instances") or []
    if not instances or not isinstance(instances, list):
        raise ConfigError(f"{path}: no `instances` configured (a list of mappings)")
    for number, instance in enumerate(instances, 1):
        if instance is None:
            raise ConfigError(
                f"{path}: instance {number} is empty (a bare `-`): give it its options, or `- {{}}` for every default"
            )
        if not isinstance(instance, dict):
            raise ConfigError(f"{path}: instance {number} is not a mapping of options: {instance!r}")
    init_config = config.get("init_config") or {}
    if not isinstance(init_config, dict):
        raise ConfigError(f"{path}: `init_config` is not a mapping of options")
    return init_config, instances


def create_checks(check_class, name: str, init_config: dict, instances: list[dict]) -> list:
    """One check per instance, each with its own check id (the persistent cache is keyed by it: each instance keeps
    its own state); a configuration a check refuses is a ConfigError naming the instance and field."""
    checks = [create_check(check_class, name, init_config, instance, n) for n, instance in enumerate(instances, 1)]
    for check, check_id in zip(checks, check_ids(name, init_config, instances)):
        check.check_id = check_id
    return checks


def create_check(check_class, name: str, init_config: dict, instance: dict, number: int):
    """The check for one instance; a configuration it refuses is a ConfigError naming the instance and field."""
    from datadog_checks.base.errors import ConfigurationError

    try:
        return check_class(name, init_config, [instance])
    except ConfigurationError as e:
        raise ConfigError(f"instance {number}: {_one_line(str(e))}") from None


def _one_line(message: str) -> str:
    """The base class's multi-line model errors ("Detected N errors...", then each location and its message)
    as `location: message; ...`."""
    problems, location = [], None
    for line in message.splitlines()[1:] or message.splitlines():
        if not line.strip():
            continue
        if not line.startswith(" "):
            location = line.strip()
            continue
        text = line.strip().removeprefix("Value error, ")
        problems.append(f"{location}: {text}" if location else text)
        location = None
    return "; ".join(problems) or message.strip()


def run_once(check, name: str, instance: int, run: int) -> dict:
    """One run of one check instance with the stub aggregator (process-global: one check at a time), as a report."""
    from datadog_checks.base.stubs import aggregator

    aggregator.reset()
    started = time.monotonic()
    error = check.run()
    return {
        "check": name,
        "instance": instance,
        "run": run,
        "duration_s": round(time.monotonic() - started, 3),
        "error": json.loads(error) if error else None,
        "warnings": check.get_warnings(),
        "metrics": _metrics(aggregator),
        "service_checks": _service_checks(aggregator),
        "events": list(aggregator.events),
    }


def run_check(name: str, init_config: dict, instances: list[dict], times: int = 1, interval: float = 0.0) -> list[dict]:
    """Run each instance `times` times with the stub aggregator ddev uses; return one report per run."""
    checks = create_checks(load_check_class(name), name, init_config, instances)
    reports = []
    for run in range(times):
        if run:
            time.sleep(interval)
        for index, check in enumerate(checks):
            reports.append(run_once(check, name, index, run + 1))
    for check in checks:
        check.cancel()
    return reports


def check_ids(name: str, init_config: dict, instances: list[dict]) -> list[str]:
    """An id per instance, as the agent gives one: the check name and a digest of its configuration (with its
    position when two instances are configured alike)."""
    ids = []
    for index, instance in enumerate(instances):
        text = json.dumps([instance, init_config], sort_keys=True, default=str)
        check_id = f"{name}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"
        ids.append(check_id if check_id not in ids else f"{check_id}:{index}")
    return ids


def _metrics(aggregator) -> list[dict[str, Any]]:
    types = aggregator.METRIC_ENUM_MAP_REV
    return [
        {"name": m.name, "value": m.value, "type": types[m.type], "tags": sorted(m.tags)}
        for name in sorted(aggregator._metrics)
        for m in aggregator._metrics[name]
    ]


def _service_checks(aggregator) -> list[dict[str, Any]]:
    return [
        {"name": sc.name, "status": SERVICE_CHECK_STATUS[sc.status], "tags": sorted(sc.tags), "message": sc.message}
        for name in sorted(aggregator._service_checks)
        for sc in aggregator._service_checks[name]
    ]


def format_report(report: dict) -> str:
    lines = [f"=== {report['check']} instance {report['instance']} run {report['run']} ({report['duration_s']} s) ==="]
    if report["error"]:
        for error in report["error"]:
            lines.append(f"ERROR: {error.get('message')}")
            lines.append(error.get("traceback", ""))
    rows = [(m["name"], _format_value(m["value"]), m["type"], ",".join(m["tags"])) for m in report["metrics"]]
    lines.append(f"Metrics ({len(rows)}):")
    lines.extend(_table(("name", "value", "type", "tags"), rows))
    sc_rows = [(s["name"], s["status"], ",".join(s["tags"]), s["message"] or "") for s in report["service_checks"]]
    lines.append(f"Service checks ({len(sc_rows)}):")
    lines.extend(_table(("name", "status", "tags", "message"), sc_rows))
    lines.extend(f"WARNING: {warning}" for warning in report["warnings"])
    lines.append(f"Events ({len(report['events'])}):")
    lines.extend(f"  {json.dumps(event, default=str)}" for event in report["events"])
    return "\n".join(lines)


def _format_value(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def _table(header: tuple, rows: list[tuple]) -> list[str]:
    if not rows:
        return []
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    return [
        "  " + "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in (header, *rows)
    ]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pettwin-checks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a check and print what it submits")
    run.add_argument("check", choices=sorted(CHECKS))
    run.add_argument("-c", "--config", help="conf.yaml with init_config and instances")
    run.add_argument("--json", action="store_true", help="print JSON (one document with every run)")
    run.add_argument("--times", type=int, default=1, help="how many runs (default 1)")
    run.add_argument("--interval", type=float, default=15.0, help="seconds between runs (default 15)")

    demo = commands.add_parser("demo", help="start a local broker, the GCP emulator and a workload; run every check")
    demo.add_argument("--times", type=int, default=3, help="runs per check (default 3)")
    demo.add_argument("--interval", type=float, default=10.0, help="seconds between runs (default 10)")
    demo.add_argument("--json", action="store_true", help="print every report as JSON")
    demo.add_argument("--all", action="store_true", help="print every metric row, as `run` does")
    demo.add_argument(
        "--fault",
        action="append",
        choices=["consumer-behind", "vertex-quota", "failed-rollout", "all"],
        help="after the first runs, break this and run the checks it concerns again (repeatable; all: each in turn)",
    )

    assets = commands.add_parser(
        "assets", help="plan or apply agent/assets (monitors, dashboard, log pipeline, SLO) in Datadog, or export them"
    )
    assets.add_argument("action", choices=["plan", "apply", "export"])
    assets.add_argument("--dir", default="agent/assets")
    assets.add_argument("--terraform", metavar="DIR", help="export: write Terraform for the datadog provider into DIR")
    return parser


def demo_command(args: argparse.Namespace) -> int:
    try:
        from pettwin_checks.devenv.demo import run_demo
    except ImportError:  # the wheel the agent image installs leaves the development harness out
        print("pettwin-checks: the demo needs a development install (scripts/demo)", file=sys.stderr)
        return 2
    return run_demo(times=args.times, interval=args.interval, as_json=args.json, every_row=args.all, faults=args.fault)


def assets_command(args: argparse.Namespace) -> int:
    from pettwin_checks.assets import main as assets_main

    return assets_main([args.action, "--dir", args.dir, *(["--terraform", args.terraform] if args.terraform else [])])


def run_command(args: argparse.Namespace) -> int:
    try:
        init_config, instances = load_config(args.config)
        reports = run_check(args.check, init_config, instances, times=args.times, interval=args.interval)
    except ConfigError as e:
        message = str(e) if str(e).startswith(args.config) else f"{args.config}: {e}"
        print(f"pettwin-checks: {message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(reports, indent=2, default=str))
    else:
        print("\n\n".join(format_report(report) for report in reports))
    return 1 if any(report["error"] for report in reports) else 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.command == "demo":
        return demo_command(args)
    if args.command == "assets":
        return assets_command(args)
    if not args.config:
        parser.error("run needs -c/--config")
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
