"""`pettwin-checks assets export --terraform DIR`: the assets of agent/assets as Terraform for the `datadog` provider.

One resource per JSON file: monitors as `datadog_monitor`, the dashboard as `datadog_dashboard_json` (the JSON
itself), the log pipeline as `datadog_logs_custom_pipeline`, the SLO as `datadog_service_level_objective`. The
JSON files stay the single source; this writes what they say in the provider's schema, nothing more.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PROVIDER = """terraform {
  required_providers {
    datadog = {
      source = "DataDog/datadog"
    }
  }
}
"""
RESOURCE_TYPES = {
    "monitor": "datadog_monitor",
    "dashboard": "datadog_dashboard_json",
    "pipeline": "datadog_logs_custom_pipeline",
    "slo": "datadog_service_level_objective",
}
# API list fields whose items are repeated blocks named in the singular in the provider's schema.
BLOCK_NAMES = {"processors": "processor", "categories": "category"}


def hcl_string(text: str) -> str:
    """A quoted HCL string: JSON's escapes, plus `$${` and `%%{` so Terraform reads no template in it."""
    return json.dumps(text, ensure_ascii=False).replace("${", "$${").replace("%{", "%%{")


def hcl_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return hcl_string(value)
    if isinstance(value, list) and all(not isinstance(item, (dict, list)) for item in value):
        return "[" + ", ".join(hcl_value(item) for item in value) + "]"
    raise ValueError(f"no HCL attribute for {value!r}")


def block(name: str, body: dict, indent: int = 0) -> list[str]:
    """`name { ... }`: scalars and lists of scalars are attributes, dicts nested blocks, lists of dicts repeated
    blocks."""
    pad = "  " * (indent + 1)
    lines = ["  " * indent + f"{name} {{"]
    for key, value in body.items():
        if isinstance(value, dict):
            lines += block(key, value, indent + 1)
        elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            for item in value:
                lines += block(BLOCK_NAMES.get(key, key), item, indent + 1)
        else:
            lines.append(f"{pad}{key} = {hcl_value(value)}")
    lines.append("  " * indent + "}")
    return lines


def monitor_body(source: dict) -> dict:
    """The provider takes the API's `options` as top-level arguments, `thresholds` as `monitor_thresholds`."""
    body = {key: value for key, value in source.items() if key != "options"}
    for key, value in source.get("options", {}).items():
        body["monitor_thresholds" if key == "thresholds" else key] = value
    return body


def pipeline_body(source: dict) -> dict:
    """Each processor is a block named after its type (`date-remapper` -> `processor { date_remapper { ... } }`)."""
    processors = [
        {processor["type"].replace("-", "_"): {k: v for k, v in processor.items() if k != "type"}}
        for processor in source["processors"]
    ]
    return {**{k: v for k, v in source.items() if k != "processors"}, "processors": processors}


def slo_body(source: dict) -> dict:
    """A time-slice SLO: the API's formulas and queries become `formula` and `query { metric_query }` blocks."""
    time_slice = source["sli_specification"]["time_slice"]
    query = time_slice["query"]
    formulas = [{"formula_expression": formula["formula"]} for formula in query["formulas"]]
    queries = [{"metric_query": dict(item)} for item in query["queries"]]
    spec = {key: value for key, value in time_slice.items() if key != "query"}
    body = {key: value for key, value in source.items() if key not in ("sli_specification", "thresholds")}
    body["sli_specification"] = {"time_slice": {**spec, "query": {"formula": formulas, "query": queries}}}
    return {**body, "thresholds": source["thresholds"]}


def resource(kind: str, name: str, source: dict) -> str:
    resource_type = RESOURCE_TYPES[kind]
    if kind == "dashboard":
        return f'resource "{resource_type}" "{name}" {{\n  dashboard = {hcl_string(json.dumps(source))}\n}}\n'
    body = {"monitor": monitor_body, "pipeline": pipeline_body, "slo": slo_body}[kind](source)
    lines = block(f'resource "{resource_type}" "{name}"', body)
    return "\n".join(lines) + "\n"


def export(assets, directory: Path) -> list[Path]:
    """Write one .tf file per kind of asset (and the provider requirement) into `directory`; return the files."""
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / "versions.tf"]
    written[0].write_text(PROVIDER)
    by_kind: dict[str, list[str]] = {}
    for asset in assets:
        by_kind.setdefault(asset.kind, []).append(resource(asset.kind, asset.path.stem, asset.body))
    for kind, resources in by_kind.items():
        path = directory / f"{kind}s.tf"
        path.write_text("\n".join(resources))
        written.append(path)
    return written
