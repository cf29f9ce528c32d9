"""`pettwin-checks assets export --terraform DIR`: what it writes parses as HCL (python-hcl2) and every resource
says exactly what its JSON source under agent/assets says, in the datadog provider's schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pettwin_checks.assets import load_assets
from pettwin_checks.assets import main as assets_main
from pettwin_checks.assets_terraform import hcl_string
from tests.agent.agent_emulation import ROOT

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 (dev extra) parses the Terraform export")

pytestmark = pytest.mark.unit

ASSETS = ROOT / "agent" / "assets"
TYPES = {
    "datadog_monitor": "monitor",
    "datadog_dashboard_json": "dashboard",
    "datadog_logs_custom_pipeline": "pipeline",
    "datadog_service_level_objective": "slo",
}


def unquote(value):
    """python-hcl2 keeps strings as written (quotes, escapes, `$${`); read them back the way Terraform does."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return json.loads(value).replace("$${", "${").replace("%%{", "%{")
    if isinstance(value, list):
        return [unquote(item) for item in value]
    if isinstance(value, dict):
        return {unquote(key): unquote(item) for key, item in value.items() if key != "__is_block__"}
    return value


def block(value) -> dict:
    """A nested block as parsed: a one-element list of the block's body."""
    assert isinstance(value, list) and len(value) == 1, value
    return value[0]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[tuple[str, str], dict]:
    directory = tmp_path_factory.mktemp("terraform")
    assert assets_main(["export", "--dir", str(ASSETS), "--terraform", str(directory)]) == 0
    resources = {}
    for path in sorted(directory.glob("*.tf")):
        parsed = unquote(hcl2.loads(path.read_text()))
        for entry in parsed.get("resource", []):
            for resource_type, named in entry.items():
                for name, body in named.items():
                    assert (resource_type, name) not in resources, f"{resource_type}.{name} written twice"
                    resources[(resource_type, name)] = body
        if path.name == "versions.tf":
            provider = block(parsed["terraform"])["required_providers"]
            assert block(provider)["datadog"]["source"] == "DataDog/datadog"
    return resources


def sources() -> dict[tuple[str, str], dict]:
    return {(asset.kind, asset.path.stem): asset.body for asset in load_assets(ASSETS)}


def test_every_asset_is_one_resource_and_nothing_else(exported):
    written = {(TYPES[resource_type], name) for resource_type, name in exported}
    assert written == set(sources())
    assert {kind for kind, _ in written} == {"monitor", "dashboard", "pipeline", "slo"}


def test_monitors_match_their_json(exported):
    for (kind, name), source in sources().items():
        if kind != "monitor":
            continue
        body = dict(exported[("datadog_monitor", name)])
        assert block(body.pop("monitor_thresholds")) == source["options"]["thresholds"], name
        options = {key: value for key, value in source["options"].items() if key != "thresholds"}
        top_level = {key: value for key, value in source.items() if key != "options"}
        assert body == {**top_level, **options}, name


def test_dashboard_is_its_json(exported):
    (body,) = [body for (resource_type, _), body in exported.items() if resource_type == "datadog_dashboard_json"]
    assert json.loads(body["dashboard"]) == json.loads((ASSETS / "dashboards" / "pettwin_overview.json").read_text())


def test_pipeline_processors_in_order(exported):
    source = json.loads((ASSETS / "logs" / "pettwin_backend_pipeline.json").read_text())
    body = exported[("datadog_logs_custom_pipeline", "pettwin_backend_pipeline")]
    assert body["name"] == source["name"] and body["is_enabled"] is source["is_enabled"]
    assert block(body["filter"]) == source["filter"]
    assert len(body["processor"]) == len(source["processors"])
    for processor, wanted in zip(body["processor"], source["processors"]):
        ((block_name, inner),) = processor.items()
        assert block_name == wanted["type"].replace("-", "_")
        inner = block(inner)
        categories = inner.pop("category", [])
        assert [{**c, "filter": block(c["filter"])} for c in categories] == wanted.get("categories", [])
        assert inner == {k: v for k, v in wanted.items() if k not in ("type", "categories")}


def test_slo_is_the_gemini_p95_time_slice(exported):
    source = json.loads((ASSETS / "slos" / "gemini_latency_p95.json").read_text())
    body = dict(exported[("datadog_service_level_objective", "gemini_latency_p95")])
    assert body.pop("thresholds") == source["thresholds"]
    time_slice = dict(block(block(body.pop("sli_specification"))["time_slice"]))
    query = block(time_slice.pop("query"))
    wanted = source["sli_specification"]["time_slice"]
    assert [f["formula_expression"] for f in query["formula"]] == [f["formula"] for f in wanted["query"]["formulas"]]
    assert [block(q["metric_query"]) for q in query["query"]] == wanted["query"]["queries"]
    assert time_slice == {k: v for k, v in wanted.items() if k != "query"}
    assert body == {k: v for k, v in source.items() if k not in ("sli_specification", "thresholds")}
    # The SLO holds Gemini to the latency monitor's critical bound.
    monitor = json.loads((ASSETS / "monitors" / "vertex_ai_latency_p95.json").read_text())
    assert wanted["threshold"] == monitor["options"]["thresholds"]["critical"]
    assert "pettwin.vertex_ai.publisher.latency.p95" in wanted["query"]["queries"][0]["query"]


def test_strings_reach_terraform_without_templates():
    # `${` and `%{` would be Terraform template syntax; Datadog's `{{...}}` variables pass as they are.
    text = 'a "b" ${c} %{d} {{e.name}}\nf'
    assert unquote(hcl_string(text)) == text
    assert "$${c}" in hcl_string(text) and "%%{d}" in hcl_string(text)


def test_export_needs_a_directory(capsys):
    with pytest.raises(SystemExit):
        assets_main(["export", "--dir", str(ASSETS)])
    assert "--terraform" in capsys.readouterr().err


def test_cli_exports(tmp_path: Path):
    from pettwin_checks.cli import main

    assert main(["assets", "export", "--dir", str(ASSETS), "--terraform", str(tmp_path)]) == 0
    assert sorted(path.name for path in tmp_path.glob("*.tf")) == [
        "dashboards.tf",
        "monitors.tf",
        "pipelines.tf",
        "slos.tf",
        "versions.tf",
    ]
