"""Probes against real local HTTP and TCP servers that the test turns healthy, slow, failing and closed."""

from __future__ import annotations

import socket
import threading

import pytest

from pettwin_checks.cloud_run.probes import ProbeSpec, run_probe
from pettwin_checks.devenv.app_standin import AppStandin

pytestmark = pytest.mark.integration


@pytest.fixture
def app():
    with AppStandin(slow_seconds=3.0) as standin:
        yield standin


def http_spec(port: int, **overrides) -> ProbeSpec:
    values = {"name": "liveness", "kind": "http", "host": "127.0.0.1", "port": port, "timeout": 0.5, "path": "/healthz"}
    values.update(overrides)
    return ProbeSpec(**values)


def test_http_probe_through_every_mode(app):
    healthy = run_probe(http_spec(app.port))
    assert (healthy.success, healthy.status_code, healthy.error) == (True, 200, None)
    assert 0 < healthy.latency < 0.5

    app.set_mode("failing")
    failing = run_probe(http_spec(app.port))
    assert (failing.success, failing.status_code) == (False, 503)
    assert failing.error == "HTTP 503 Service Unavailable (expected 200-399)"

    app.set_mode("slow")
    slow = run_probe(http_spec(app.port))
    assert (slow.success, slow.status_code) == (False, None)
    assert slow.error == "no answer within the 0.5 s timeout"
    assert 0.5 <= slow.latency < 1.5

    app.set_mode("healthy")
    app.close()
    closed = run_probe(http_spec(app.port))
    assert closed.success is False
    assert closed.error == "connection refused (nothing listening on the port)"

    app.reopen()
    assert run_probe(http_spec(app.port)).success


def test_http_probe_status_range_body_and_headers(app):
    assert run_probe(http_spec(app.port, path="/ready", body_contains="ready")).success
    wrong_body = run_probe(http_spec(app.port, body_contains="ready"))
    assert wrong_body.error == "HTTP 200 but the body does not contain 'ready'"
    missing = run_probe(http_spec(app.port, path="/nope"))
    assert missing.error == "HTTP 404 Not Found (expected 200-399)"
    assert run_probe(http_spec(app.port, path="/nope", expected_status=((404, 404),))).success
    assert run_probe(http_spec(app.port, headers=(("X-Probe", "pettwin"),))).success


def test_http_probe_sends_configured_headers():
    seen = {}

    class Server(threading.Thread):
        def __init__(self):
            super().__init__(daemon=True)
            self.listener = socket.create_server(("127.0.0.1", 0))
            self.port = self.listener.getsockname()[1]

        def run(self):
            conn, _ = self.listener.accept()
            with conn:
                seen["request"] = conn.recv(65536).decode()
                conn.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")

    server = Server()
    server.start()
    result = run_probe(http_spec(server.port, headers=(("X-Health-Token", "abc"),)))
    server.join(5)
    server.listener.close()
    assert (result.success, result.status_code) == (True, 204)
    assert "GET /healthz HTTP/1.1" in seen["request"]
    assert "X-Health-Token: abc" in seen["request"]


def test_http_probe_app_closing_without_answer():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept_and_drop():
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.close()

    thread = threading.Thread(target=accept_and_drop, daemon=True)
    thread.start()
    result = run_probe(http_spec(port))
    thread.join(5)
    listener.close()
    assert result.success is False
    assert result.error == "the app closed the connection without answering"


def test_tcp_probe_open_and_closed():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    spec = ProbeSpec(name="startup", kind="tcp", host="127.0.0.1", port=port, timeout=0.5)
    assert run_probe(spec).success
    listener.close()
    closed = run_probe(spec)
    assert closed.success is False
    assert closed.error == "connection refused (nothing listening on the port)"


def test_standin_mode_switch_over_http(app):
    import urllib.request

    request = urllib.request.Request(f"{app.url}/_standin/mode/failing", method="POST")
    with urllib.request.urlopen(request, timeout=2) as response:
        assert response.read() == b"failing"
    assert app.mode == "failing"
    assert run_probe(http_spec(app.port)).status_code == 503
