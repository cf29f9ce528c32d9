"""The metadata server as Cloud Run serves it: project and instance identity, and the service account's tokens.

The token endpoint honours `?scopes=a,b` as Cloud Run's does (comma-separated; a token without it carries
cloud-platform), and the token carries those scopes, so an API that needs another scope answers 403.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qs

from .auth import DEFAULT_SCOPES

if TYPE_CHECKING:
    from .server import GcpEmulator

FLAVOR = {"Metadata-Flavor": "Google"}
PREFIX = "/computeMetadata/v1"


class Answer(NamedTuple):
    status: int
    body: bytes
    content_type: str
    headers: dict


def _text(status: int, text: str, content_type: str = "application/text", **headers) -> Answer:
    return Answer(status, text.encode(), content_type, {**FLAVOR, **headers})


_NOT_FOUND = ("Not Found\n", "text/html; charset=UTF-8")


def metadata_tree(emulator: GcpEmulator) -> dict:
    s = emulator.scenario
    account = {
        "aliases": ["default"],
        "email": s.service_account,
        "scopes": sorted(DEFAULT_SCOPES),
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


def _token(emulator: GcpEmulator, account: str, params: dict[str, list[str]]) -> Answer:
    if account not in {"default", emulator.scenario.service_account}:
        return _text(404, *_NOT_FOUND)
    requested = params.get("scopes", [""])[-1]
    if any(" " in scope.strip() for scope in requested.split(",")):
        # Cloud Run's metadata server takes a comma-separated list only; a space-separated one fails this way.
        return _text(500, "Internal Server Error\n", "text/plain; charset=utf-8")
    scopes = frozenset(s.strip() for s in requested.split(",") if s.strip()) or DEFAULT_SCOPES
    token, lifetime = emulator.tokens.issue_token(emulator.scenario.service_account, scopes=scopes)
    body = json.dumps({"access_token": token, "expires_in": lifetime, "token_type": "Bearer"})
    return _text(200, body, "application/json")


def answer(emulator: GcpEmulator, method: str, path: str, query: str, headers) -> Answer:
    """The metadata server's answer to one request (`headers`: the request's headers)."""
    if headers.get("Metadata-Flavor") != "Google" or headers.get("X-Forwarded-For"):
        return _text(403, 'Missing required header "Metadata-Flavor": "Google"\n', "text/plain; charset=utf-8")
    if method != "GET":
        return _text(405, "Method not allowed\n", "text/plain; charset=utf-8")
    if path == "/":
        return _text(200, "computeMetadata/\n")
    if not path.startswith(PREFIX):
        return _text(404, *_NOT_FOUND)
    params = parse_qs(query)
    parts = [p for p in path[len(PREFIX) :].split("/") if p]
    if len(parts) == 4 and parts[:2] == ["instance", "service-accounts"] and parts[3] == "token":
        return _token(emulator, parts[2], params)
    node = metadata_tree(emulator)
    for part in parts:
        if not isinstance(node, dict) or part not in node or node[part] is None:
            return _text(404, *_NOT_FOUND)
        node = node[part]
    as_json = params.get("alt", [""])[-1] == "json"
    if isinstance(node, dict):
        if as_json or params.get("recursive", ["false"])[-1].lower() == "true":
            return _text(200, json.dumps(_recursive_json(node)), "application/json")
        if not path.endswith("/"):
            # The real server redirects a directory without its trailing slash.
            return _text(301, "", "text/html; charset=UTF-8", Location=path + "/")
        return _text(200, "".join(f"{k}/\n" if isinstance(v, dict) else f"{k}\n" for k, v in node.items()))
    if as_json:
        return _text(200, json.dumps(_recursive_json(node)), "application/json")
    return _text(200, "\n".join(node) + "\n" if isinstance(node, list) else str(node))
