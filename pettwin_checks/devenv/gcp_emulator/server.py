"""The emulator's HTTP server: routing, bearer-token checks, fault injection, request log, control plane."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from . import errors, scenario as scenario_mod
from .auth import OAuthError, TokenAuthority
from .cloud_run import CloudRunAdmin
from .errors import ApiError
from .monitoring import list_time_series
from .scenario import Scenario, ScenarioError, SeriesSpec
from .vertex import VertexModels

_SEGMENT = r"([^/:?]+)"
_API_ROUTES = [
    ("GET", re.compile(rf"^/v3/projects/{_SEGMENT}/timeSeries$"), "time_series"),
    ("GET", re.compile(rf"^/v2/projects/{_SEGMENT}/locations/{_SEGMENT}/services$"), "run_services"),
    ("GET", re.compile(rf"^/v2/projects/{_SEGMENT}/locations/{_SEGMENT}/services/{_SEGMENT}$"), "run_service"),
    ("GET", re.compile(rf"^/v2/projects/{_SEGMENT}/locations/{_SEGMENT}/services/{_SEGMENT}/revisions$"),
     "run_revisions"),
    ("GET", re.compile(rf"^/v2/projects/{_SEGMENT}/locations/{_SEGMENT}/services/{_SEGMENT}/revisions/{_SEGMENT}$"),
     "run_revision"),
    ("POST", re.compile(rf"^/v1/projects/{_SEGMENT}/locations/{_SEGMENT}/publishers/{_SEGMENT}/models/{_SEGMENT}"
                        r":countTokens$"), "count_tokens"),
    ("POST", re.compile(rf"^/v1/projects/{_SEGMENT}/locations/{_SEGMENT}/publishers/{_SEGMENT}/models/{_SEGMENT}"
                        r":generateContent$"), "generate_content"),
    ("POST", re.compile(r"^/v1/projects/-/serviceAccounts/([^/:]+):generateAccessToken$"), "generate_access_token"),
]


@dataclass
class Fault:
    path_regex: str
    status: int | None
    latency: float
    remaining: int | None  # None: forever
    body: str | None = None
    method: str | None = None
    pattern: re.Pattern = field(init=False)

    def __post_init__(self):
        self.pattern = re.compile(self.path_regex)

    def describe(self) -> dict:
        return {"path_regex": self.path_regex, "status": self.status, "latency": self.latency,
                "count": self.remaining, "body": self.body, "method": self.method}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class GcpEmulator:
    """A local stand-in for the Google endpoints the checks call. Start it, point clients at `url`."""

    def __init__(self, scenario: str = "default", host: str = "127.0.0.1", port: int = 0, require_auth: bool = True):
        self.host = host
        self.port = port
        self.require_auth = require_auth
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        # Set to end injected delays early; replaced by a fresh event each time it fires.
        self._cut_delays = threading.Event()
        self._faults: list[Fault] = []
        self._requests: list[dict] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.scenario: Scenario = scenario_mod.load(scenario)
        self._cumulative_origin_minute = int(time.time() // 60) - self.scenario.history_minutes
        self.tokens = TokenAuthority(self.scenario.project_id)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> "GcpEmulator":
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), _Handler)
        self._server.emulator = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="gcp-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._end_delays()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> "GcpEmulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------- identity

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def metadata_host(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def project_id(self) -> str:
        return self.scenario.project_id

    @property
    def project_number(self) -> str:
        return self.scenario.project_number

    @property
    def region(self) -> str:
        return self.scenario.region

    def info(self) -> dict:
        return {"url": self.url, "metadata_host": self.metadata_host, "project_id": self.project_id,
                "project_number": self.project_number, "region": self.region, "token_uri": self.token_uri,
                "scenario": self.scenario.name}

    # ---------------------------------------------------------------- test controls

    def write_service_account_key(self, path) -> str:
        """Write a service-account JSON key whose token_uri targets this emulator; returns the path."""
        key = self.tokens.service_account_key(self.token_uri)
        target = Path(path)
        target.write_text(json.dumps(key, indent=2))
        os.chmod(target, 0o600)
        return str(target)

    def revoke_service_account_key(self, path) -> None:
        """Delete the key written to `path` on the emulator's side: its assertions now fail with invalid_grant.
        Access tokens it already obtained stay valid until they expire, as with Google."""
        key_id = json.loads(Path(path).read_text())["private_key_id"]
        self.tokens.revoke_key(key_id)

    def issue_access_token(self, principal: str | None = None) -> str:
        """A valid bearer token without going through OAuth (for tests of the APIs themselves)."""
        token, _ = self.tokens.issue_token(principal or self.scenario.service_account)
        return token

    def expire_tokens(self) -> None:
        self.tokens.expire_tokens()

    def inject_fault(self, path_regex: str, status: int | None = None, latency: float = 0.0,
                     count: int | None = None, body: str | None = None, method: str | None = None) -> None:
        """Requests whose path matches `path_regex` (re.search) wait `latency` seconds, then get `status`
        with Google's error body (or `body` verbatim) instead of the real answer. `count` limits how many
        requests the fault applies to; None means until cleared. Control-plane paths are never faulted."""
        fault = Fault(path_regex, status, float(latency), count, body, method.upper() if method else None)
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        """Remove every fault; requests still waiting out an injected latency are answered at once."""
        with self._lock:
            self._faults.clear()
        self._end_delays()

    def _end_delays(self) -> None:
        with self._lock:
            fired, self._cut_delays = self._cut_delays, threading.Event()
        fired.set()

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Wait until no request is being handled (so a test's log is complete); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def faults(self) -> list[dict]:
        with self._lock:
            return [f.describe() for f in self._faults]

    def load_scenario(self, name_or_yaml: str) -> None:
        loaded = scenario_mod.load(name_or_yaml)
        with self._lock:
            self.scenario = loaded
            self._cumulative_origin_minute = int(time.time() // 60) - loaded.history_minutes
            self.tokens.project_id = loaded.project_id

    def series(self, metric_type: str, metric_labels: dict | None = None,
               resource_labels: dict | None = None) -> list[SeriesSpec]:
        """The current scenario's declared series of `metric_type` whose labels include the given ones, so a
        test can compute expected values: `spec.value_at_minute(epoch_seconds // 60)`."""
        wanted_metric = (metric_labels or {}).items()
        wanted_resource = (resource_labels or {}).items()
        return [s for s in self.scenario.series if s.metric_type == metric_type
                and wanted_metric <= s.metric_labels.items() and wanted_resource <= s.resource_labels.items()]

    def requests(self) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self._requests]

    def reset_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # ---------------------------------------------------------------- request plumbing (used by the handler)

    def _begin_request(self) -> None:
        with self._lock:
            self._in_flight += 1

    def _end_request(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method and fault.method != method:
                    continue
                if fault.pattern.search(path):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def _record(self, method: str, path: str, query: str, status: int, faulted: bool) -> None:
        entry = {"method": method, "path": path, "query": query, "params": parse_qs(query),
                 "status": status, "faulted": faulted, "time": time.time()}
        with self._lock:
            self._requests.append(entry)


def _metadata_tree(emulator: GcpEmulator) -> dict:
    s = emulator.scenario
    account = {
        "aliases": ["default"],
        "email": s.service_account,
        "scopes": ["https://www.googleapis.com/auth/cloud-platform"],
        "token": None,  # served dynamically; never listed in recursive answers
    }
    return {
        "project": {"project-id": s.project_id, "numeric-project-id": s.project_number, "attributes": {}},
        "instance": {
            "id": s.instance_id,
            "region": f"projects/{s.project_number}/regions/{s.region}",
            "zone": f"projects/{s.project_number}/zones/{s.zone}",
            "service-accounts": {"default": dict(account), s.service_account: dict(account)},
        },
    }


def _camel(name: str) -> str:
    head, *rest = name.split("-")
    return head + "".join(part.capitalize() for part in rest)


def _recursive_json(node) -> object:
    if isinstance(node, dict):
        return {_camel(k): _recursive_json(v) for k, v in node.items() if v is not None}
    return node


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections close instead of pinning a thread
    server_version = "ESF"
    sys_version = ""

    @property
    def emulator(self) -> GcpEmulator:
        return self.server.emulator

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        return  # the request log is kept in memory; stderr stays quiet

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # ---------------------------------------------------------------- responses

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self._status = status
        # Logged before the client can see the answer, so a test reading the log right after sees this request.
        self._log_request()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload, headers: dict | None = None) -> None:
        self._send(status, json.dumps(payload, indent=2).encode(), "application/json; charset=UTF-8", headers)

    def _send_error(self, error: ApiError) -> None:
        self._send_json(error.code, error.body(), error.headers)

    def _json_body(self) -> dict:
        raw = self._request_body
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise errors.invalid_argument("Invalid JSON payload received. Unexpected token.") from None
        if not isinstance(body, dict):
            raise errors.invalid_argument("Invalid JSON payload received. Expected an object.")
        return body

    # ---------------------------------------------------------------- dispatch

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        path, query = unquote(split.path), split.query
        self._status = 500
        self._log_entry = None if path.startswith("/_emulator/") else (method, path, query)
        self._fault = None
        # Read the whole body up front: an answer sent before reading it would desync a keep-alive connection.
        length = int(self.headers.get("Content-Length") or 0)
        self._request_body = self.rfile.read(length) if length > 0 else b""
        if path.startswith("/_emulator/"):
            self._control(method, path)
            return
        emulator = self.emulator
        emulator._begin_request()
        fault = self._fault = emulator._take_fault(method, path)
        try:
            if fault is not None:
                if fault.latency:
                    emulator._cut_delays.wait(fault.latency)
                if fault.status is not None or fault.body is not None:
                    self._send_fault(fault, path)
                    return
            self._route(method, path, query)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its deadline); the request is logged already
        finally:
            self._log_request()
            emulator._end_request()

    def _log_request(self) -> None:
        if self._log_entry is not None:
            method, path, query = self._log_entry
            self._log_entry = None
            self.emulator._record(method, path, query, self._status, self._fault is not None)

    def _send_fault(self, fault: Fault, path: str) -> None:
        status = fault.status or 200
        if fault.body is not None:
            self._send(status, fault.body.encode(), "application/json; charset=UTF-8")
        elif path == "/" or path.startswith("/computeMetadata"):
            self._send(status, f"Error {status}\n".encode(), "text/plain", {"Metadata-Flavor": "Google"})
        elif path == "/token":
            self._send_json(status, {"error": "internal_failure", "error_description": f"HTTP {status}"})
        else:
            self._send_error(errors.for_status(status, path, self.emulator.project_number))

    def _route(self, method: str, path: str, query: str) -> None:
        if path == "/" or path.startswith("/computeMetadata"):
            self._metadata(method, path, query)
            return
        if path == "/token":
            self._token(method)
            return
        for route_method, pattern, name in _API_ROUTES:
            match = pattern.match(path)
            if match and route_method == method:
                try:
                    self._authorize(path)
                    getattr(self, f"_api_{name}")(*match.groups(), query=query)
                except ApiError as error:
                    self._send_error(error)
                return
        self._send_error(ApiError(404, f"The requested URL {path} was not found on this server."))

    def _authorize(self, path: str) -> None:
        if not self.emulator.require_auth:
            return
        header = self.headers.get("Authorization", "")
        if not header:
            raise errors.unauthenticated("CREDENTIALS_MISSING")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.unauthenticated("ACCESS_TOKEN_TYPE_UNSUPPORTED")
        reason = self.emulator.tokens.check_bearer(token.strip())
        if reason is not None:
            raise errors.unauthenticated(reason)

    # ---------------------------------------------------------------- metadata server

    def _metadata(self, method: str, path: str, query: str) -> None:
        flavor = {"Metadata-Flavor": "Google"}
        if self.headers.get("Metadata-Flavor") != "Google" or self.headers.get("X-Forwarded-For"):
            self._send(403, b"Missing required header \"Metadata-Flavor\": \"Google\"\n", "text/plain; charset=utf-8",
                       flavor)
            return
        if method != "GET":
            self._send(405, b"Method not allowed\n", "text/plain; charset=utf-8", flavor)
            return
        if path == "/":
            self._send(200, b"computeMetadata/\n", "application/text", flavor)
            return
        params = parse_qs(query)
        prefix = "/computeMetadata/v1"
        if not path.startswith(prefix):
            self._send(404, b"Not Found\n", "text/html; charset=UTF-8", flavor)
            return
        parts = [p for p in path[len(prefix):].split("/") if p]
        emulator = self.emulator
        if len(parts) == 4 and parts[:2] == ["instance", "service-accounts"] and parts[3] == "token":
            account = parts[2]
            if account not in {"default", emulator.scenario.service_account}:
                self._send(404, b"Not Found\n", "text/html; charset=UTF-8", flavor)
                return
            token, lifetime = emulator.tokens.issue_token(emulator.scenario.service_account)
            self._send(200, json.dumps({"access_token": token, "expires_in": lifetime, "token_type": "Bearer"})
                       .encode(), "application/json", flavor)
            return
        node = _metadata_tree(emulator)
        for part in parts:
            if not isinstance(node, dict) or part not in node or node[part] is None:
                self._send(404, b"Not Found\n", "text/html; charset=UTF-8", flavor)
                return
            node = node[part]
        recursive = params.get("recursive", ["false"])[-1].lower() == "true"
        if isinstance(node, dict):
            if recursive or params.get("alt", [""])[-1] == "json":
                self._send(200, json.dumps(_recursive_json(node)).encode(), "application/json", flavor)
                return
            if not path.endswith("/"):
                # The real server redirects a directory without its trailing slash.
                self._send(301, b"", "text/html; charset=UTF-8", {**flavor, "Location": path + "/"})
                return
            listing = "".join(f"{k}/\n" if isinstance(v, dict) else f"{k}\n" for k, v in node.items())
            self._send(200, listing.encode(), "application/text", flavor)
            return
        if params.get("alt", [""])[-1] == "json":
            self._send(200, json.dumps(_recursive_json(node)).encode(), "application/json", flavor)
            return
        text = "\n".join(node) + "\n" if isinstance(node, list) else str(node)
        self._send(200, text.encode(), "application/text", flavor)

    # ---------------------------------------------------------------- OAuth token endpoint

    def _token(self, method: str) -> None:
        if method != "POST":
            self._send_json(405, {"error": "invalid_request", "error_description": "POST required"})
            return
        raw = self._request_body.decode("utf-8", "replace")
        form = {k: v[-1] for k, v in parse_qs(raw).items()}
        try:
            answer = self.emulator.tokens.exchange_assertion(form, self.emulator.token_uri)
        except OAuthError as error:
            self._send_json(error.status, error.body())
            return
        self._send_json(200, answer)

    # ---------------------------------------------------------------- Google APIs

    def _api_time_series(self, project: str, *, query: str) -> None:
        emulator = self.emulator
        if project not in {emulator.project_id, emulator.project_number}:
            raise errors.permission_denied(self.path.split("?")[0])
        body = list_time_series(emulator.scenario, project, parse_qs(query, keep_blank_values=True),
                                emulator._cumulative_origin_minute)
        self._send_json(200, body)

    def _cloud_run(self) -> CloudRunAdmin:
        return CloudRunAdmin(self.emulator.scenario, time.time())

    def _api_run_services(self, project: str, location: str, *, query: str) -> None:
        self._send_json(200, self._cloud_run().list_services(project, location))

    def _api_run_service(self, project: str, location: str, service: str, *, query: str) -> None:
        self._send_json(200, self._cloud_run().get_service(project, location, service))

    def _api_run_revisions(self, project: str, location: str, service: str, *, query: str) -> None:
        self._send_json(200, self._cloud_run().list_revisions(project, location, service))

    def _api_run_revision(self, project: str, location: str, service: str, revision: str, *, query: str) -> None:
        self._send_json(200, self._cloud_run().get_revision(project, location, service, revision))

    def _api_count_tokens(self, project, location, publisher, model, *, query: str) -> None:
        answer = VertexModels(self.emulator.scenario).count_tokens(project, location, publisher, model,
                                                                   self._json_body())
        self._send_json(200, answer)

    def _api_generate_content(self, project, location, publisher, model, *, query: str) -> None:
        answer = VertexModels(self.emulator.scenario).generate_content(project, location, publisher, model,
                                                                       self._json_body())
        self._send_json(200, answer)

    def _api_generate_access_token(self, account: str, *, query: str) -> None:
        body = self._json_body()
        if not account.endswith(".iam.gserviceaccount.com") or "@" not in account:
            raise errors.not_found(f"Not found; Gaia id not found for email {account}")
        scopes = body.get("scope")
        if not isinstance(scopes, list) or not scopes:
            raise errors.invalid_argument("Scope required.", "scope")
        lifetime = 3600
        if "lifetime" in body:
            match = re.fullmatch(r"(\d+)s", str(body["lifetime"]))
            if not match or not 1 <= int(match.group(1)) <= 43200:
                raise errors.invalid_argument("The lifetime must be between 1s and 43200s.", "lifetime")
            lifetime = int(match.group(1))
        token, _ = self.emulator.tokens.issue_token(account, lifetime)
        expire = datetime.fromtimestamp(int(time.time()) + lifetime, tz=timezone.utc)
        self._send_json(200, {"accessToken": token, "expireTime": expire.strftime("%Y-%m-%dT%H:%M:%SZ")})

    # ---------------------------------------------------------------- control plane

    def _control(self, method: str, path: str) -> None:
        emulator = self.emulator
        try:
            body = self._json_body() if method == "POST" else {}
            if path == "/_emulator/info" and method == "GET":
                self._send_json(200, emulator.info())
            elif path == "/_emulator/faults" and method == "POST":
                emulator.inject_fault(body["path_regex"], status=body.get("status"),
                                      latency=float(body.get("latency", 0.0)), count=body.get("count"),
                                      body=body.get("body"), method=body.get("method"))
                self._send_json(200, {"faults": emulator.faults()})
            elif path == "/_emulator/faults" and method == "GET":
                self._send_json(200, {"faults": emulator.faults()})
            elif path == "/_emulator/faults" and method == "DELETE":
                emulator.clear_faults()
                self._send_json(200, {"faults": []})
            elif path == "/_emulator/scenario" and method == "POST":
                emulator.load_scenario(body.get("yaml") or body["name"])
                self._send_json(200, emulator.info())
            elif path == "/_emulator/requests" and method == "GET":
                self._send_json(200, {"requests": emulator.requests()})
            elif path == "/_emulator/requests" and method == "DELETE":
                emulator.reset_requests()
                self._send_json(200, {"requests": []})
            elif path == "/_emulator/tokens/expire" and method == "POST":
                emulator.expire_tokens()
                self._send_json(200, {})
            elif path == "/_emulator/service-account-key" and method == "POST":
                self._send_json(200, emulator.tokens.service_account_key(emulator.token_uri))
            else:
                self._send_json(404, {"error": f"no control endpoint {method} {path}"})
        except (KeyError, TypeError, ValueError, ScenarioError, re.error) as bad:
            self._send_json(400, {"error": str(bad) if not isinstance(bad, KeyError) else f"missing {bad}"})
        except ApiError as error:
            self._send_error(error)

