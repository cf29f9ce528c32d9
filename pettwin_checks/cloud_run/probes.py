"""Probes of the app container over the shared localhost, mirroring Cloud Run's httpGet and tcpSocket probes.

They use the socket layer directly rather than the check's HTTP wrapper: a probe must never go through a proxy,
must measure the app alone (no retries, no redirects, no TLS) and must stop at its own timeout however slowly
the app answers, as Cloud Run's own prober does.
"""

from __future__ import annotations

import http.client
import socket
import time
from dataclasses import dataclass

BODY_LIMIT = 64 * 1024  # bytes read when looking for `body_contains`; health bodies are small


@dataclass(frozen=True)
class ProbeSpec:
    name: str
    kind: str  # "http" or "tcp"
    host: str
    port: int
    timeout: float
    failure_threshold: int = 1
    startup_grace_period: float = 0.0
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    expected_status: tuple[tuple[int, int], ...] = ((200, 399),)
    body_contains: str | None = None

    @property
    def target(self) -> str:
        if self.kind == "http":
            return f"GET http://{_host_for_url(self.host)}:{self.port}{self.path}"
        return f"TCP {_host_for_url(self.host)}:{self.port}"


@dataclass(frozen=True)
class ProbeResult:
    success: bool
    latency: float  # seconds, until the answer (or the failure)
    status_code: int | None = None
    error: str | None = None  # why it failed, for the service check message


@dataclass
class ProbeState:
    """What a probe remembers between runs."""

    consecutive_failures: int = 0
    ever_succeeded: bool = False


@dataclass(frozen=True)
class Verdict:
    status: str  # "ok", "warning" or "critical"
    message: str | None = None


# ---------------------------------------------------------------------------------------------- pure logic


def parse_status_ranges(text: str) -> tuple[tuple[int, int], ...]:
    """ "200-399", "200,204", "200-299,304" -> ((low, high), ...). Raises ValueError on anything else."""
    ranges = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        low_code, high_code = int(low), int(high or low)
        if not (100 <= low_code <= high_code <= 599):
            raise ValueError(f"status range {part!r} must be within 100-599, low before high")
        ranges.append((low_code, high_code))
    if not ranges:
        raise ValueError("no status code given")
    return tuple(ranges)


def format_status_ranges(ranges: tuple[tuple[int, int], ...]) -> str:
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


def status_expected(code: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(low <= code <= high for low, high in ranges)


def judge(spec: ProbeSpec, result: ProbeResult, state: ProbeState, seconds_since_start: float | None) -> Verdict:
    """Update `state` with `result` and say what the service check reports.

    Before the first success and within the startup grace period, a failure is a WARNING (the app is starting,
    as with Cloud Run's startup probe). Afterwards failures below `failure_threshold` are a WARNING and from
    the threshold on CRITICAL.
    """
    if result.success:
        state.consecutive_failures = 0
        state.ever_succeeded = True
        return Verdict("ok")
    state.consecutive_failures += 1
    failures = state.consecutive_failures
    reason = f"{spec.name} probe {spec.target} failed: {result.error}"
    starting = (
        not state.ever_succeeded
        and spec.startup_grace_period > 0
        and seconds_since_start is not None
        and seconds_since_start < spec.startup_grace_period
    )
    if starting:
        left = spec.startup_grace_period - seconds_since_start
        return Verdict("warning", f"{reason} (app starting: {left:.0f} s of the startup grace period left)")
    if failures < spec.failure_threshold:
        return Verdict("warning", f"{reason} ({failures} of {spec.failure_threshold} consecutive failures)")
    return Verdict("critical", f"{reason} ({failures} consecutive failure{'s' if failures > 1 else ''})")


# ---------------------------------------------------------------------------------------------- I/O


def run_probe(spec: ProbeSpec) -> ProbeResult:
    return _http_probe(spec) if spec.kind == "http" else _tcp_probe(spec)


def _tcp_probe(spec: ProbeSpec) -> ProbeResult:
    started = time.monotonic()
    try:
        with socket.create_connection((spec.host, spec.port), timeout=spec.timeout):
            return ProbeResult(True, time.monotonic() - started)
    except OSError as error:
        return ProbeResult(False, time.monotonic() - started, error=_describe(error, spec.timeout))


def _http_probe(spec: ProbeSpec) -> ProbeResult:
    started = time.monotonic()
    deadline = started + spec.timeout

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    connection = http.client.HTTPConnection(spec.host, spec.port, timeout=spec.timeout)
    try:
        connection.connect()
        # http.client drops its reference once a "Connection: close" answer starts; the response reads from it.
        sock = connection.sock
        headers = {"User-Agent": "pettwin-checks-probe", "Connection": "close", **dict(spec.headers)}
        sock.settimeout(remaining())
        connection.request("GET", spec.path, headers=headers)
        sock.settimeout(remaining())
        response = connection.getresponse()
        body = b""
        if spec.body_contains is not None:
            body = _read_body(sock, response, remaining)
        latency = time.monotonic() - started
        if latency > spec.timeout:
            raise TimeoutError
    except (OSError, http.client.HTTPException) as error:
        return ProbeResult(False, time.monotonic() - started, error=_describe(error, spec.timeout))
    finally:
        connection.close()

    code = response.status
    if not status_expected(code, spec.expected_status):
        reason = f"HTTP {code} {response.reason}".rstrip()
        return ProbeResult(False, latency, code, f"{reason} (expected {format_status_ranges(spec.expected_status)})")
    if spec.body_contains is not None and spec.body_contains.encode() not in body:
        return ProbeResult(False, latency, code, f"HTTP {code} but the body does not contain {spec.body_contains!r}")
    return ProbeResult(True, latency, code)


def _read_body(sock: socket.socket, response: http.client.HTTPResponse, remaining) -> bytes:
    chunks, size = [], 0
    # Python 3.13's read1 closes the response (and with it the socket) once Content-Length bytes are read.
    while size < BODY_LIMIT and not response.isclosed():
        sock.settimeout(remaining())
        chunk = response.read1(BODY_LIMIT - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _describe(error: BaseException, timeout: float) -> str:
    if isinstance(error, (TimeoutError, socket.timeout)):
        return f"no answer within the {timeout:g} s timeout"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (nothing listening on the port)"
    if isinstance(error, http.client.RemoteDisconnected):
        return "the app closed the connection without answering"
    if isinstance(error, ConnectionResetError):
        return "connection reset by the app"
    if isinstance(error, http.client.HTTPException):
        return f"invalid HTTP answer ({type(error).__name__})"
    if isinstance(error, OSError) and error.strerror:
        return f"connection error: {error.strerror}"
    return f"connection error: {type(error).__name__}"


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host
