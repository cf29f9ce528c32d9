"""The emulator's HTTP handler: dispatch, bearer tokens and their scopes, the discovery-document checks every
API route passes first, fault injection, request log, control plane."""

from __future__ import annotations

import json
import re
import time
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from . import descriptors, discovery, errors, metadata, partial_response
from .auth import OAuthError
from .cloud_run import CloudRunAdmin
from .errors import ApiError
from .iam_credentials import generate_access_token
from .monitoring import list_time_series
from .scenario import ScenarioError
from .vertex import VertexModels

if TYPE_CHECKING:
    from .server import Fault, GcpEmulator

_SEGMENT = r"([^/:?]+)"
# The methods the emulator implements: discovery method id -> (path with the handler's arguments, handler).
IMPLEMENTED = {
    "monitoring.projects.timeSeries.list": (rf"^/v3/projects/{_SEGMENT}/timeSeries$", "time_series"),
    "monitoring.projects.metricDescriptors.list": (
        rf"^/v3/projects/{_SEGMENT}/metricDescriptors$",
        "metric_descriptors",
    ),
    "monitoring.projects.metricDescriptors.get": (
        rf"^/v3/projects/{_SEGMENT}/metricDescriptors/(.+)$",
        "metric_descriptor",
    ),
    "monitoring.projects.monitoredResourceDescriptors.list": (
        rf"^/v3/projects/{_SEGMENT}/monitoredResourceDescriptors$",
        "resource_descriptors",
    ),
    "monitoring.projects.monitoredResourceDescriptors.get": (
        rf"^/v3/projects/{_SEGMENT}/monitoredResourceDescriptors/(.+)$",
        "resource_descriptor",
    ),
    "run.projects.locations.services.list": (
        rf"^/v2/projects/{_SEGMENT}/locations/{_SEGMENT}/services$",
        "run_services",
    ),
    "run.projects.locations.services.get": (
        rf"^/v2/projects/{_SEGMENT}/locations/{_SEGMENT}/services/{_SEGMENT}$",
        "run_service",
    ),
    "run.projects.locations.services.revisions.list": (
        rf"^/v2/projects/{_SEGMENT}/locations/{_SEGMENT}/services/{_SEGMENT}/revisions$",
        "run_revisions",
    ),
    "run.projects.locations.services.revisions.get": (
        rf"^/v2/projects/{_SEGMENT}/locations/{_SEGMENT}/services/{_SEGMENT}/revisions/{_SEGMENT}$",
        "run_revision",
    ),
    "aiplatform.projects.locations.publishers.models.countTokens": (
        rf"^/v1/projects/{_SEGMENT}/locations/{_SEGMENT}/publishers/{_SEGMENT}/models/{_SEGMENT}:countTokens$",
        "count_tokens",
    ),
    "aiplatform.projects.locations.publishers.models.generateContent": (
        rf"^/v1/projects/{_SEGMENT}/locations/{_SEGMENT}/publishers/{_SEGMENT}/models/{_SEGMENT}:generateContent$",
        "generate_content",
    ),
    "iamcredentials.projects.serviceAccounts.generateAccessToken": (
        r"^/v1/projects/-/serviceAccounts/([^/:]+):generateAccessToken$",
        "generate_access_token",
    ),
}


def _paging(query: str) -> tuple[int, str]:
    """pageSize (an int32, as the discovery check made sure) and pageToken of a Cloud Run list call."""
    params = parse_qs(query)
    page_size = int(params.get("pageSize", ["0"])[-1])
    if page_size < 0:
        raise errors.invalid_argument("page_size must not be negative.", "page_size")
    return page_size, params.get("pageToken", [""])[-1]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections close instead of pinning a thread
    server_version = "ESF"
    sys_version = ""

    @property
    def emulator(self) -> GcpEmulator:
        return self.server.emulator

    def log_message(self, format, *args):
        return  # the request log is kept in memory; stderr stays quiet

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_PUT(self):
        self._dispatch("PUT")

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
        # An API method's answer honours the `fields` (2xx only) and `prettyPrint` system parameters.
        if 200 <= status < 300:
            payload = partial_response.select(payload, self._selection)
        indent = 2 if self._pretty else None
        self._send(status, json.dumps(payload, indent=indent).encode(), "application/json; charset=UTF-8", headers)

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
        self._selection, self._pretty = None, True
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
            self._send(*metadata.answer(self.emulator, method, path, query, self.headers))
            return
        if path == "/token":
            self._token(method)
            return
        found = discovery.find(method, path)
        if found is None:
            self._send_error(ApiError(404, f"The requested URL {path} was not found on this server."))
            return
        contract, path_params = found
        try:
            self._check_contract(contract, method, query)
            if contract.id in IMPLEMENTED:
                pattern, name = IMPLEMENTED[contract.id]
                getattr(self, f"_api_{name}")(*re.match(pattern, path).groups(), query=query)
            else:
                self._answer_unimplemented(contract, path_params)
        except ApiError as error:
            self._send_error(error)

    def _check_contract(self, contract: discovery.Method, method: str, query: str) -> None:
        """What Google checks before a method runs, in its order: the credential, its scopes, then the request
        against the method's discovery description (query parameters, body fields)."""
        params = parse_qs(query, keep_blank_values=True)
        self._pretty = (params.get("prettyPrint") or ["true"])[-1] not in {"false", "0"}
        if self.emulator.require_auth:
            discovery.check_scopes(contract, self._authorize(params, contract.service))
        discovery.check_query(contract, params)
        fields = (params.get("fields") or [""])[-1] or self.headers.get("X-Goog-FieldMask", "")
        if fields:
            self._selection = partial_response.parse(fields)
            partial_response.check(fields, self._selection, contract.schemas, contract.response_schema)
        if method in {"POST", "PUT", "PATCH"}:
            discovery.check_body(contract, self._json_body())

    def _answer_unimplemented(self, contract: discovery.Method, path_params: dict[str, str]) -> None:
        """A method of the served APIs the emulator does not model: what Google answers the emulator's identity,
        a read-only service account in a project holding none of those resources. A write: 403 naming the
        permission; a list: an empty page; a get: 404."""
        resource = next(iter(path_params.values()), "")
        if not contract.is_read:
            raise errors.permission_denied(self.path.split("?")[0], discovery.permission(contract), resource)
        if contract.id.endswith(".list"):
            self._send_json(200, {})
            return
        raise errors.not_found("Requested entity was not found.")

    def _authorize(self, params: dict[str, list[str]], service: str) -> frozenset[str] | None:
        """The bearer token's scopes (None: a self-signed JWT for this API's audience), or raises Google's 401."""
        header = self.headers.get("Authorization", "")
        if not header and (params.get("access_token") or params.get("oauth_token")):
            header = "Bearer " + (params.get("access_token") or params["oauth_token"])[-1]
        if not header:
            raise errors.unauthenticated("CREDENTIALS_MISSING")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise errors.unauthenticated("ACCESS_TOKEN_TYPE_UNSUPPORTED")
        reason, scopes = self.emulator.tokens.check_bearer(token.strip(), service)
        if reason is not None:
            raise errors.unauthenticated(reason)
        return scopes

    # ---------------------------------------------------------------- OAuth token endpoint

    def _token(self, method: str) -> None:
        if method != "POST":
            self._send_json(405, {"error": "invalid_request", "error_description": "POST required"})
            return
        raw = self._request_body.decode("utf-8", "replace")
        form = {k: v[-1] for k, v in parse_qs(raw).items()}
        try:
            answer = self.emulator.tokens.exchange(form, self.emulator.token_uri)
        except OAuthError as error:
            self._send_json(error.status, error.body())
            return
        self._send_json(200, answer)

    # ---------------------------------------------------------------- Google APIs

    def _api_time_series(self, project: str, *, query: str) -> None:
        emulator = self.emulator
        self._known_project(project)
        body = list_time_series(
            emulator.scenario, project, parse_qs(query, keep_blank_values=True), emulator._cumulative_origin_minute
        )
        self._send_json(200, body)

    def _known_project(self, project: str) -> None:
        if project not in {self.emulator.project_id, self.emulator.project_number}:
            raise errors.permission_denied(self.path.split("?")[0])

    def _descriptors(self) -> dict:
        return descriptors.for_scenario(self.emulator.scenario.series)

    def _api_metric_descriptors(self, project: str, *, query: str) -> None:
        self._known_project(project)
        selector = (parse_qs(query).get("filter") or [""])[-1]
        listed = descriptors.list_metric_descriptors(self._descriptors(), selector, project)
        self._send_json(200, {"metricDescriptors": listed})

    def _api_metric_descriptor(self, project: str, metric_type: str, *, query: str) -> None:
        self._known_project(project)
        descriptor = self._descriptors().get(metric_type)
        if descriptor is None:
            raise errors.not_found(f"Could not find descriptor for metric '{metric_type}'.")
        self._send_json(200, descriptor.to_json(project))

    def _api_resource_descriptors(self, project: str, *, query: str) -> None:
        self._known_project(project)
        listed = [
            descriptors.resource_descriptor_json(name, labels, project)
            for name, labels in sorted(descriptors.resource_types().items())
        ]
        self._send_json(200, {"resourceDescriptors": listed})

    def _api_resource_descriptor(self, project: str, resource_type: str, *, query: str) -> None:
        self._known_project(project)
        labels = descriptors.resource_types().get(resource_type)
        if labels is None:
            raise errors.not_found(f"Could not find monitored resource descriptor '{resource_type}'.")
        self._send_json(200, descriptors.resource_descriptor_json(resource_type, labels, project))

    def _cloud_run(self) -> CloudRunAdmin:
        return CloudRunAdmin(self.emulator.scenario, time.time())

    def _api_run_services(self, project: str, location: str, *, query: str) -> None:
        self._send_json(200, self._cloud_run().list_services(project, location, *_paging(query)))

    def _api_run_service(self, project: str, location: str, service: str, *, query: str) -> None:
        self._send_json(200, self._cloud_run().get_service(project, location, service))

    def _api_run_revisions(self, project: str, location: str, service: str, *, query: str) -> None:
        self._send_json(200, self._cloud_run().list_revisions(project, location, service, *_paging(query)))

    def _api_run_revision(self, project: str, location: str, service: str, revision: str, *, query: str) -> None:
        self._send_json(200, self._cloud_run().get_revision(project, location, service, revision))

    def _api_count_tokens(self, project, location, publisher, model, *, query: str) -> None:
        answer = VertexModels(self.emulator.scenario).count_tokens(
            project, location, publisher, model, self._json_body()
        )
        self._send_json(200, answer)

    def _api_generate_content(self, project, location, publisher, model, *, query: str) -> None:
        answer = VertexModels(self.emulator.scenario).generate_content(
            project, location, publisher, model, self._json_body()
        )
        self._send_json(200, answer)

    def _api_generate_access_token(self, account: str, *, query: str) -> None:
        self._send_json(200, generate_access_token(self.emulator.tokens, account, self._json_body()))

    # ---------------------------------------------------------------- control plane

    def _control(self, method: str, path: str) -> None:
        emulator = self.emulator
        try:
            body = self._json_body() if method == "POST" else {}
            if path == "/_emulator/info" and method == "GET":
                self._send_json(200, emulator.info())
            elif path == "/_emulator/faults" and method == "POST":
                emulator.inject_fault(
                    body["path_regex"],
                    status=body.get("status"),
                    latency=float(body.get("latency", 0.0)),
                    count=body.get("count"),
                    body=body.get("body"),
                    method=body.get("method"),
                )
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
