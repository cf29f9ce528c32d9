"""The emulator object: lifecycle, identity, scenario, faults and the request log (the HTTP side is handler.py)."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs

from . import scenario as scenario_mod
from .auth import DEFAULT_SCOPES, TokenAuthority
from .handler import Handler
from .scenario import Scenario, SeriesSpec


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
        return {
            "path_regex": self.path_regex,
            "status": self.status,
            "latency": self.latency,
            "count": self.remaining,
            "body": self.body,
            "method": self.method,
        }


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

    def start(self) -> GcpEmulator:
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), Handler)
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

    def __enter__(self) -> Self:
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
        return {
            "url": self.url,
            "metadata_host": self.metadata_host,
            "project_id": self.project_id,
            "project_number": self.project_number,
            "region": self.region,
            "token_uri": self.token_uri,
            "scenario": self.scenario.name,
        }

    # ---------------------------------------------------------------- test controls

    def write_service_account_key(self, path) -> str:
        """Write a service-account JSON key whose token_uri targets this emulator; returns the path."""
        key = self.tokens.service_account_key(self.token_uri)
        target = Path(path)
        target.write_text(json.dumps(key, indent=2))
        os.chmod(target, 0o600)
        return str(target)

    def write_authorized_user_file(self, path, scopes=None) -> str:
        """Write a user's application default credentials file (type authorized_user, as `gcloud auth
        application-default login` writes it) whose token_uri targets this emulator; returns the path."""
        kwargs = {"scopes": scopes} if scopes is not None else {}
        info = self.tokens.authorized_user(self.token_uri, **kwargs)
        target = Path(path)
        target.write_text(json.dumps(info, indent=2))
        os.chmod(target, 0o600)
        return str(target)

    def revoke_service_account_key(self, path) -> None:
        """Delete the key written to `path` on the emulator's side: its assertions now fail with invalid_grant.
        Access tokens it already obtained stay valid until they expire, as with Google."""
        key_id = json.loads(Path(path).read_text())["private_key_id"]
        self.tokens.revoke_key(key_id)

    def issue_access_token(self, principal: str | None = None, scopes=DEFAULT_SCOPES) -> str:
        """A valid bearer token carrying `scopes` without going through OAuth (for tests of the APIs themselves)."""
        token, _ = self.tokens.issue_token(principal or self.scenario.service_account, scopes=scopes)
        return token

    def expire_tokens(self) -> None:
        self.tokens.expire_tokens()

    def inject_fault(
        self,
        path_regex: str,
        status: int | None = None,
        latency: float = 0.0,
        count: int | None = None,
        body: str | None = None,
        method: str | None = None,
    ) -> None:
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

    def series(
        self, metric_type: str, metric_labels: dict | None = None, resource_labels: dict | None = None
    ) -> list[SeriesSpec]:
        """The current scenario's declared series of `metric_type` whose labels include the given ones, so a
        test can compute expected values: `spec.value_at_minute(epoch_seconds // 60)`."""
        wanted_metric = (metric_labels or {}).items()
        wanted_resource = (resource_labels or {}).items()
        return [
            s
            for s in self.scenario.series
            if s.metric_type == metric_type
            and wanted_metric <= s.metric_labels.items()
            and wanted_resource <= s.resource_labels.items()
        ]

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
        entry = {
            "method": method,
            "path": path,
            "query": query,
            "params": parse_qs(query),
            "status": status,
            "faulted": faulted,
            "time": time.time(),
        }
        with self._lock:
            self._requests.append(entry)
