"""`pettwin-checks assets plan|apply|export`: the log pipeline, monitors, dashboard and SLO of agent/assets.

Assets are matched to what exists by name (pipelines; monitors and SLOs tagged managed-by:pettwin-checks) or title
(dashboards). `plan` only reads; `apply` creates what is missing and updates what differs. Credentials come
from DD_API_KEY, DD_APP_KEY and DD_SITE, read by datadog-api-client; nothing is printed from them.
`export --terraform DIR` writes the same assets as Terraform for the `datadog` provider and needs no credentials.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANAGED_TAG = "managed-by:pettwin-checks"
# kind -> (directory under the assets root, field that names an asset)
KINDS = {
    "pipeline": ("logs", "name"),
    "monitor": ("monitors", "name"),
    "dashboard": ("dashboards", "title"),
    "slo": ("slos", "name"),
}


@dataclass(frozen=True)
class Asset:
    kind: str
    name: str
    body: dict
    path: Path


@dataclass(frozen=True)
class Action:
    verb: str  # create, update or unchanged
    asset: Asset
    existing_id: Any = None


def load_assets(root: Path) -> list[Asset]:
    assets = []
    for kind, (directory, name_field) in KINDS.items():
        for path in sorted((root / directory).glob("*.json")):
            body = json.loads(path.read_text())
            assets.append(Asset(kind, body[name_field], body, path))
    return assets


def differs(wanted: Any, existing: Any) -> bool:
    """True when `existing` lacks or changes anything `wanted` sets (fields the API adds are ignored)."""
    if isinstance(wanted, dict):
        return not isinstance(existing, dict) or any(differs(v, existing.get(k)) for k, v in wanted.items())
    if isinstance(wanted, list):
        return (
            not isinstance(existing, list)
            or len(wanted) != len(existing)
            or any(differs(w, e) for w, e in zip(wanted, existing))
        )
    return wanted != existing


def plan(assets: list[Asset], existing: dict[str, dict[str, tuple[Any, dict]]]) -> list[Action]:
    """`existing`: kind -> name -> (id, body as the API returns it)."""
    actions = []
    for asset in assets:
        found = existing.get(asset.kind, {}).get(asset.name)
        if found is None:
            actions.append(Action("create", asset))
        else:
            object_id, body = found
            actions.append(Action("update" if differs(asset.body, body) else "unchanged", asset, object_id))
    return actions


class DatadogAssets:
    """Reads and writes assets through datadog-api-client (v1 logs pipelines, monitors, dashboards, SLOs)."""

    def __init__(self, configuration=None):
        from datadog_api_client import ApiClient, Configuration
        from datadog_api_client.v1.api.dashboards_api import DashboardsApi
        from datadog_api_client.v1.api.logs_pipelines_api import LogsPipelinesApi
        from datadog_api_client.v1.api.monitors_api import MonitorsApi
        from datadog_api_client.v1.api.service_level_objectives_api import ServiceLevelObjectivesApi

        self._client = ApiClient(configuration or Configuration())
        self.pipelines = LogsPipelinesApi(self._client)
        self.monitors = MonitorsApi(self._client)
        self.dashboards = DashboardsApi(self._client)
        self.slos = ServiceLevelObjectivesApi(self._client)

    def existing(self, assets: list[Asset]) -> dict[str, dict[str, tuple[Any, dict]]]:
        found: dict[str, dict[str, tuple[Any, dict]]] = {kind: {} for kind in KINDS}
        for pipeline in self.pipelines.list_logs_pipelines().value:  # a list model, not a list
            found["pipeline"][pipeline.name] = (pipeline.id, pipeline.to_dict())
        for monitor in self.monitors.list_monitors(monitor_tags=MANAGED_TAG):
            found["monitor"][monitor.name] = (monitor.id, monitor.to_dict())
        for slo in self.slos.list_slos(tags_query=MANAGED_TAG).data or []:
            found["slo"][slo.name] = (slo.id, slo.to_dict())
        wanted_titles = {asset.name for asset in assets if asset.kind == "dashboard"}
        for summary in self.dashboards.list_dashboards().dashboards or []:
            if summary.title in wanted_titles:
                found["dashboard"][summary.title] = (summary.id, self.dashboards.get_dashboard(summary.id).to_dict())
        return found

    def apply(self, action: Action) -> Any:
        from datadog_api_client.v1.model.dashboard import Dashboard
        from datadog_api_client.v1.model.logs_pipeline import LogsPipeline
        from datadog_api_client.v1.model.monitor import Monitor
        from datadog_api_client.v1.model.monitor_update_request import MonitorUpdateRequest
        from datadog_api_client.v1.model.service_level_objective import ServiceLevelObjective
        from datadog_api_client.v1.model.service_level_objective_request import ServiceLevelObjectiveRequest

        body, kind = action.asset.body, action.asset.kind
        if kind == "pipeline":
            model = _model(LogsPipeline, body)
            if action.verb == "create":
                return self.pipelines.create_logs_pipeline(model).id
            return self.pipelines.update_logs_pipeline(action.existing_id, model).id
        if kind == "monitor":
            if action.verb == "create":
                return self.monitors.create_monitor(_model(Monitor, body)).id
            return self.monitors.update_monitor(action.existing_id, _model(MonitorUpdateRequest, body)).id
        if kind == "slo":
            if action.verb == "create":
                return self.slos.create_slo(_model(ServiceLevelObjectiveRequest, body)).data[0].id
            return self.slos.update_slo(action.existing_id, _model(ServiceLevelObjective, body)).data[0].id
        if action.verb == "create":
            return self.dashboards.create_dashboard(_model(Dashboard, body)).id
        return self.dashboards.update_dashboard(action.existing_id, _model(Dashboard, body)).id


def _model(model_class, body: dict):
    from datadog_api_client import Configuration
    from datadog_api_client.model_utils import validate_and_convert_types

    return validate_and_convert_types(
        body, (model_class,), [model_class.__name__], True, True, configuration=Configuration()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="pettwin-checks assets", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["plan", "apply", "export"])
    parser.add_argument("--dir", type=Path, default=Path("agent/assets"), help="assets root (default: agent/assets)")
    parser.add_argument("--terraform", type=Path, metavar="DIR", help="export: write Terraform files into DIR")
    args = parser.parse_args(argv)

    assets = load_assets(args.dir)
    if args.command == "export":
        if not args.terraform:
            parser.error("export needs --terraform DIR")
        from pettwin_checks.assets_terraform import export

        for path in export(assets, args.terraform):
            print(f"wrote {path}")
        return 0
    missing = [name for name in ("DD_API_KEY", "DD_APP_KEY") if not os.environ.get(name)]
    if missing:
        # Planning reads what exists in the org, so it needs the keys too; fail before any network call.
        raise SystemExit(f"set {' and '.join(missing)} (and DD_SITE if not datadoghq.com) to plan or apply assets")
    datadog = DatadogAssets()
    actions = plan(assets, datadog.existing(assets))
    for action in actions:
        line = f"{action.verb:9} {action.asset.kind:9} {action.asset.name}"
        if args.command == "apply" and action.verb != "unchanged":
            line += f"  -> id {datadog.apply(action)}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
