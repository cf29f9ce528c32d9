"""Google's own machine-readable contract for each emulated method: the discovery documents shipped in the
google-api-python-client wheel (googleapiclient/discovery_cache/documents/).

From them the emulator takes, per method: the OAuth scopes a bearer token must carry (any one of them), the query
parameters it binds (with their types and enums), and the request body schema. What Google answers when a request
breaks them is rebuilt here: the 403 ACCESS_TOKEN_SCOPE_INSUFFICIENT body and the 400 "Invalid JSON payload
received" bodies with a google.rpc.BadRequest detail.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import BAD_REQUEST, ERROR_INFO, ApiError

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
# google-auth's impersonated credentials mint their source token with this scope only, and IAM Credentials accepts
# it (the scope the IAM APIs were first published under); the discovery document lists cloud-platform alone.
IAM_SCOPE = "https://www.googleapis.com/auth/iam"


@dataclass(frozen=True)
class Method:
    """One API method of the discovery documents, plus the gRPC name Google reports in ErrorInfo."""

    id: str  # run.projects.locations.services.list
    http_method: str
    service: str  # run.googleapis.com
    rpc: str  # google.cloud.run.v2.Services.ListServices (the method id where the emulator does not know it)
    scopes: frozenset[str]
    query: dict  # name -> discovery parameter (method's query parameters and the API's standard ones)
    request_schema: str | None
    response_schema: str | None
    schemas: dict  # the document's schemas, for body validation and partial responses
    path: re.Pattern  # the URL path, path parameters as named groups

    @property
    def is_read(self) -> bool:
        return self.http_method == "GET"


# The APIs the emulator serves, all on one port (their paths do not overlap).
DOCUMENTS = ("monitoring.v3", "run.v2", "aiplatform.v1", "iamcredentials.v1")
# gRPC names Google reports in ErrorInfo for the methods the emulator implements.
_RPC = {
    "monitoring.projects.timeSeries.list": "google.monitoring.v3.MetricService.ListTimeSeries",
    "monitoring.projects.timeSeries.create": "google.monitoring.v3.MetricService.CreateTimeSeries",
    "monitoring.projects.metricDescriptors.list": "google.monitoring.v3.MetricService.ListMetricDescriptors",
    "monitoring.projects.metricDescriptors.get": "google.monitoring.v3.MetricService.GetMetricDescriptor",
    "monitoring.projects.monitoredResourceDescriptors.list": (
        "google.monitoring.v3.MetricService.ListMonitoredResourceDescriptors"
    ),
    "monitoring.projects.monitoredResourceDescriptors.get": (
        "google.monitoring.v3.MetricService.GetMonitoredResourceDescriptor"
    ),
    "run.projects.locations.services.list": "google.cloud.run.v2.Services.ListServices",
    "run.projects.locations.services.get": "google.cloud.run.v2.Services.GetService",
    "run.projects.locations.services.delete": "google.cloud.run.v2.Services.DeleteService",
    "run.projects.locations.services.revisions.list": "google.cloud.run.v2.Revisions.ListRevisions",
    "run.projects.locations.services.revisions.get": "google.cloud.run.v2.Revisions.GetRevision",
    "aiplatform.projects.locations.publishers.models.countTokens": (
        "google.cloud.aiplatform.v1.PredictionService.CountTokens"
    ),
    "aiplatform.projects.locations.publishers.models.generateContent": (
        "google.cloud.aiplatform.v1.PredictionService.GenerateContent"
    ),
    "iamcredentials.projects.serviceAccounts.generateAccessToken": (
        "google.iam.credentials.v1.IAMCredentials.GenerateAccessToken"
    ),
}
_EXTRA_SCOPES = {"iamcredentials.projects.serviceAccounts.generateAccessToken": {IAM_SCOPE}}


def documents_dir() -> Path:
    spec = importlib.util.find_spec("googleapiclient")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the GCP emulator needs google-api-python-client (its discovery documents): "
            "pip install google-api-python-client"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "discovery_cache" / "documents"


@functools.cache
def _document(name: str) -> dict:
    return json.loads((documents_dir() / f"{name}.json").read_text())


def _methods(resource: dict):
    yield from resource.get("methods", {}).values()
    for child in resource.get("resources", {}).values():
        yield from _methods(child)


def _path_pattern(found: dict) -> re.Pattern:
    """The method's `path` template as a regex: each {param} / {+param} by its parameter's pattern."""

    def parameter(match: re.Match) -> str:
        name = match.group(1)
        pattern = found["parameters"].get(name, {}).get("pattern", "^[^/]+$")
        return f"(?P<{name}>{pattern.removeprefix('^').removesuffix('$')})"

    parts = re.split(r"(\{\+?\w+\})", found["path"])
    regex = "".join(
        parameter(re.fullmatch(r"\{\+?(\w+)\}", part)) if part.startswith("{") else re.escape(part) for part in parts
    )
    return re.compile(f"/{regex}")


@functools.cache
def _all_methods() -> tuple[Method, ...]:
    methods = []
    for document_name in DOCUMENTS:
        document = _document(document_name)
        standard = {name: p for name, p in document.get("parameters", {}).items() if p.get("location") == "query"}
        service = document["rootUrl"].split("//", 1)[1].rstrip("/")
        for found in _methods(document):
            query = dict(standard)
            query.update({n: p for n, p in found.get("parameters", {}).items() if p.get("location") == "query"})
            methods.append(
                Method(
                    found["id"],
                    found["httpMethod"],
                    service,
                    _RPC.get(found["id"], found["id"]),
                    frozenset(found.get("scopes", ())) | _EXTRA_SCOPES.get(found["id"], set()),
                    query,
                    (found.get("request") or {}).get("$ref"),
                    (found.get("response") or {}).get("$ref"),
                    document["schemas"],
                    _path_pattern(found),
                )
            )
    return tuple(methods)


def find(http_method: str, path: str) -> tuple[Method, dict[str, str]] | None:
    """The discovery method a request is for, and its path parameters; None when no API has it."""
    for candidate in _all_methods():
        if candidate.http_method == http_method:
            match = candidate.path.fullmatch(path)
            if match:
                return candidate, match.groupdict()
    return None


def permission(method_: Method) -> str:
    """The IAM permission Google checks for a method, read from its id as Google names most of them:
    <api>.<collection>.<verb> (run.projects.locations.services.delete -> run.services.delete)."""
    parts = method_.id.split(".")
    return f"{parts[0]}.{parts[-2]}.{parts[-1]}"


# ---------------------------------------------------------------- scopes


def insufficient_scopes(method_: Method) -> ApiError:
    details = [
        {
            "@type": ERROR_INFO,
            "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
            "domain": "googleapis.com",
            "metadata": {"service": method_.service, "method": method_.rpc},
        }
    ]
    return ApiError(
        403,
        "Request had insufficient authentication scopes.",
        details,
        headers={
            "WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", '
            'error="insufficient_scope", scope="' + " ".join(sorted(method_.scopes)) + '"'
        },
    )


def check_scopes(method_: Method, token_scopes: frozenset[str] | None) -> None:
    """None means the token's scopes are not known (a self-signed JWT for an audience): nothing to check."""
    if token_scopes is not None and not token_scopes & method_.scopes:
        raise insufficient_scopes(method_)


# ---------------------------------------------------------------- 400 INVALID_ARGUMENT bodies


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def bad_request(violations: list[tuple[str | None, str]]) -> ApiError:
    """One 400 for all violations, as Google sends them: messages joined by newlines, one fieldViolation each."""
    field_violations = [
        {"field": field, "description": text} if field else {"description": text} for field, text in violations
    ]
    return ApiError(
        400, "\n".join(text for _, text in violations), [{"@type": BAD_REQUEST, "fieldViolations": field_violations}]
    )


def _proto_type(parameter: dict) -> str:
    fmt = parameter.get("format")
    return {
        "int32": "TYPE_INT32",
        "int64": "TYPE_INT64",
        "uint32": "TYPE_UINT32",
        "uint64": "TYPE_UINT64",
        "double": "TYPE_DOUBLE",
        "float": "TYPE_FLOAT",
    }.get(fmt, "TYPE_BOOL" if parameter.get("type") == "boolean" else "TYPE_STRING")


def _query_value_error(name: str, parameter: dict, value: str) -> str | None:
    field = ".".join(snake(part) for part in name.split("."))
    kind = parameter.get("type")
    if kind == "integer" and not re.fullmatch(r"-?\d+", value.strip()):
        return f"Invalid value at '{field}' ({_proto_type(parameter)}), \"{value}\""
    if kind == "integer" and parameter.get("format") == "int32" and not -(2**31) <= int(value) < 2**31:
        return f"Invalid value at '{field}' (TYPE_INT32), \"{value}\""
    if kind == "boolean" and value not in {"true", "false", "1", "0"}:
        return f"Invalid value at '{field}' (TYPE_BOOL), \"{value}\""
    if parameter.get("enum") and value not in parameter["enum"]:
        return f"Invalid value at '{field}' ({parameter.get('x-enum-type', 'TYPE_ENUM')}), \"{value}\""
    return None


# The proto enum type Google names in an invalid-enum message, for the parameters the emulator serves.
_ENUM_TYPES = {
    "perSeriesAligner": "type.googleapis.com/google.monitoring.v3.Aggregation.Aligner",
    "crossSeriesReducer": "type.googleapis.com/google.monitoring.v3.Aggregation.Reducer",
    "view": "type.googleapis.com/google.monitoring.v3.ListTimeSeriesRequest.TimeSeriesView",
}


def check_query(method_: Method, params: dict[str, list[str]]) -> None:
    """Unknown query parameters, values of the wrong type and unknown enum values: Google's 400."""
    violations = []
    for name, values in params.items():
        parameter = method_.query.get(name)
        if parameter is None:
            violations.append(
                (
                    None,
                    (
                        f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query '
                        f"parameter. Field '{name}' could not be found in request message."
                    ),
                )
            )
            continue
        if len(values) > 1 and not parameter.get("repeated"):
            violations.append(
                (
                    None,
                    (
                        f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query '
                        f"parameter. '{name}' is a message field, or a repeated field is not allowed."
                    ),
                )
            )
            continue
        enum_type = _ENUM_TYPES.get(name.rsplit(".", 1)[-1])
        described = dict(parameter, **({"x-enum-type": enum_type} if enum_type else {}))
        for value in values:
            problem = _query_value_error(name, described, value)
            if problem:
                violations.append((".".join(snake(p) for p in name.split(".")), problem))
    if violations:
        raise bad_request(violations)


# ---------------------------------------------------------------- request bodies


def check_body(method_: Method, body: dict) -> None:
    """Unknown fields (at any depth) and values of the wrong JSON type in a request body: Google's 400."""
    if method_.request_schema is None:
        return
    violations: list[tuple[str | None, str]] = []
    _check_object(method_.schemas, method_.schemas[method_.request_schema], body, "", violations)
    if violations:
        raise bad_request(violations)


def _check_object(schemas: dict, schema: dict, value: dict, path: str, out: list) -> None:
    properties = schema.get("properties", {})
    # Google's JSON parser accepts a field's proto name (snake_case) as well as its JSON name (camelCase).
    by_name = {**{snake(k): v for k, v in properties.items()}, **properties}
    for key, item in value.items():
        prop = by_name.get(key)
        if prop is None:
            where = f" at '{path}'" if path else ""
            text = f'Invalid JSON payload received. Unknown name "{key}"{where}: Cannot find field.'
            out.append((path or None, text))
            continue
        _check_value(schemas, prop, item, f"{path}.{snake(key)}" if path else snake(key), out)


def _check_value(schemas: dict, prop: dict, item, path: str, out: list) -> None:
    if item is None:
        return  # JSON null is the field's default value
    if "$ref" in prop:
        prop = schemas[prop["$ref"]]
    kind = prop.get("type")
    wrong = False
    if kind == "object" and "properties" in prop:
        if isinstance(item, dict):
            _check_object(schemas, prop, item, path, out)
        else:
            wrong = True
    elif kind == "object":  # a map (additionalProperties) or a Struct
        if not isinstance(item, dict):
            wrong = True
        elif "additionalProperties" in prop:
            for key, entry in item.items():
                _check_value(schemas, prop["additionalProperties"], entry, f"{path}[{key}].value", out)
    elif kind == "array":
        if isinstance(item, list):
            for index, entry in enumerate(item):
                _check_value(schemas, prop.get("items", {}), entry, f"{path}[{index}]", out)
        else:
            wrong = True
    elif kind == "string":
        wrong = not isinstance(item, str) or bool(prop.get("enum")) and item not in prop["enum"]
    elif kind == "integer":
        wrong = isinstance(item, bool) or not (
            isinstance(item, int)
            or isinstance(item, float)
            and item.is_integer()
            or isinstance(item, str)
            and re.fullmatch(r"-?\d+", item)
        )
    elif kind == "number":
        wrong = isinstance(item, bool) or not isinstance(item, (int, float, str))
    elif kind == "boolean":
        wrong = not isinstance(item, bool)
    if wrong:
        shown = json.dumps(item) if not isinstance(item, str) else f'"{item}"'
        out.append((path, f"Invalid value at '{path}' ({_proto_type(prop)}), {shown}"))
