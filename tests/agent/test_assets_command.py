"""`pettwin-checks assets`: the plan is computed right, and apply talks the Datadog API's wire format (against a
local HTTP server standing in for api.datadoghq.com; never a real key or host)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from pettwin_checks.assets import Action, Asset, DatadogAssets, differs, load_assets, plan
from tests.agent.agent_emulation import ROOT

pytest.importorskip("datadog_api_client")
from datadog_api_client import Configuration

ASSETS = ROOT / "agent" / "assets"


@pytest.mark.unit
def test_load_assets_finds_every_file():
    assets = load_assets(ASSETS)
    kinds = ("pipeline", "monitor", "dashboard", "slo")
    counts = {kind: sum(1 for asset in assets if asset.kind == kind) for kind in kinds}
    monitors = len(list((ASSETS / "monitors").glob("*.json")))
    assert counts == {"pipeline": 1, "monitor": monitors, "dashboard": 1, "slo": 1}
    assert len({(asset.kind, asset.name) for asset in assets}) == len(assets)  # names are unique keys


@pytest.mark.unit
def test_differs_ignores_fields_the_api_adds():
    wanted = {"name": "m", "options": {"thresholds": {"critical": 5000, "warning": 1000}}, "tags": ["a"]}
    returned = {
        "name": "m",
        "id": 7,
        "options": {"thresholds": {"critical": 5000.0, "warning": 1000.0}, "silenced": {}},
        "tags": ["a"],
        "created": "2026-01-01",
    }
    assert not differs(wanted, returned)
    assert differs(wanted, {**returned, "options": {"thresholds": {"critical": 4000, "warning": 1000}}})
    assert differs(wanted, {**returned, "tags": ["a", "b"]})


@pytest.mark.unit
def test_plan_creates_updates_and_leaves_alone():
    a = Asset("monitor", "A", {"name": "A", "query": "q1"}, Path("a.json"))
    b = Asset("monitor", "B", {"name": "B", "query": "q2"}, Path("b.json"))
    c = Asset("dashboard", "C", {"title": "C"}, Path("c.json"))
    existing = {"monitor": {"A": (1, {"name": "A", "query": "q1", "id": 1}), "B": (2, {"name": "B", "query": "old"})}}
    assert plan([a, b, c], existing) == [Action("unchanged", a, 1), Action("update", b, 2), Action("create", c)]


class FakeDatadog(BaseHTTPRequestHandler):
    """Just enough of the v1 API: lists answer from `existing`, writes echo the body with an id."""

    existing: ClassVar[dict] = {
        "/api/v1/logs/config/pipelines": [],
        "/api/v1/dashboard": {"dashboards": []},
        "/api/v1/slo": {"data": []},
    }
    requests: ClassVar[list] = []

    def _reply(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        path = self.path.split("?")[0]
        self.requests.append(("GET", self.path, self.headers.get("DD-API-KEY"), None))
        if path == "/api/v1/monitor":
            self._reply(200, self.server.monitors)
        else:
            self._reply(200, self.existing[path])

    def _write(self, method):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append((method, self.path, self.headers.get("DD-API-KEY"), body))
        created = {**body, "id": 4242 if "monitor" in self.path else "id-4242"}
        self._reply(200, {"data": [created]} if self.path.startswith("/api/v1/slo") else created)

    def do_POST(self):
        self._write("POST")

    def do_PUT(self):
        self._write("PUT")

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_datadog():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeDatadog)
    lag = json.loads((ASSETS / "monitors" / "kafka_consumer_lag.json").read_text())
    server.monitors = [
        {**lag, "id": 101, "options": {**lag["options"], "thresholds": {"critical": 9000, "warning": 1000}}}
    ]
    FakeDatadog.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.integration
def test_plan_and_apply_over_http(fake_datadog):
    configuration = Configuration(
        host=f"http://127.0.0.1:{fake_datadog.server_address[1]}",
        api_key={"apiKeyAuth": "fake-api-key", "appKeyAuth": "fake-app-key"},
    )
    datadog = DatadogAssets(configuration)
    assets = load_assets(ASSETS)
    actions = plan(assets, datadog.existing(assets))
    verbs = {(action.asset.kind, action.asset.name): action.verb for action in actions}
    lag_name = json.loads((ASSETS / "monitors" / "kafka_consumer_lag.json").read_text())["name"]
    assert verbs.pop(("monitor", lag_name)) == "update"  # its critical threshold differs on the server
    assert set(verbs.values()) == {"create"}
    list_monitors = [r for r in FakeDatadog.requests if r[0] == "GET" and r[1].startswith("/api/v1/monitor")]
    assert "monitor_tags=managed-by%3Apettwin-checks" in list_monitors[0][1]

    for action in actions:
        datadog.apply(action)
    writes = [(method, path) for method, path, _, _ in FakeDatadog.requests if method != "GET"]
    assert ("PUT", "/api/v1/monitor/101") in writes
    assert writes.count(("POST", "/api/v1/monitor")) == len(list((ASSETS / "monitors").glob("*.json"))) - 1
    assert ("POST", "/api/v1/logs/config/pipelines") in writes and ("POST", "/api/v1/dashboard") in writes
    assert ("POST", "/api/v1/slo") in writes
    list_slos = [r for r in FakeDatadog.requests if r[0] == "GET" and r[1].startswith("/api/v1/slo")]
    assert "tags_query=managed-by%3Apettwin-checks" in list_slos[0][1]
    (update,) = [body for method, path, _, body in FakeDatadog.requests if method == "PUT"]
    assert update["options"]["thresholds"]["critical"] == 5000
    assert all(key == "fake-api-key" for _, _, key, _ in FakeDatadog.requests)
