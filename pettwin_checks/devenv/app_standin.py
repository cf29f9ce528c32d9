"""A stand-in for the PetTwin backend container: an HTTP server on 127.0.0.1 with /healthz and /ready.

Its mode decides how it answers, so tests and the demo can watch the `pettwin_cloud_run` probes react:
- healthy: 200 "ok"
- slow: answers after `slow_seconds` (past a probe's timeout)
- failing: 503 "unavailable"
- closed: not listening at all (connection refused); `reopen()` listens again on the same port

Switch from Python (`AppStandin.set_mode`) or over HTTP: `POST /_standin/mode/<mode>` (healthy, slow, failing).

    python -m pettwin_checks.devenv.app_standin --port 8080 [--mode healthy] [--slow-seconds 5]
"""

from __future__ import annotations

import argparse
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

MODES = ("healthy", "slow", "failing")
HEALTH_PATHS = ("/healthz", "/ready")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self):
        standin = self.server.standin
        if self.path.split("?")[0] not in HEALTH_PATHS:
            return self._answer(404, b"not found")
        standin.hits += 1
        mode = standin.mode
        if mode == "slow" and standin.stopping.wait(standin.slow_seconds):
            return None
        if mode == "failing":
            return self._answer(503, b"unavailable")
        return self._answer(200, b"ok" if self.path.startswith("/healthz") else b"ready")

    def do_POST(self):
        prefix = "/_standin/mode/"
        if not self.path.startswith(prefix) or self.path[len(prefix) :] not in MODES:
            return self._answer(400, f"POST {prefix}<{'|'.join(MODES)}>".encode())
        self.server.standin.set_mode(self.path[len(prefix) :])
        return self._answer(200, self.server.standin.mode.encode())

    def _answer(self, status: int, body: bytes):
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the prober gave up (timeout) and closed its end

    def log_message(self, format, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, standin: AppStandin):
        self.standin = standin
        super().__init__(address, _Handler)


class AppStandin:
    def __init__(self, port: int = 0, host: str = "127.0.0.1", mode: str = "healthy", slow_seconds: float = 5.0):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.host = host
        self.port = port
        self.mode = mode
        self.slow_seconds = slow_seconds
        self.hits = 0
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> AppStandin:
        self.stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="app-standin", daemon=True)
        self._thread.start()
        return self

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode = mode

    def close(self) -> None:
        """Stop listening: probes now get 'connection refused'."""
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def reopen(self) -> AppStandin:
        """Listen again on the same port, as a restarted container would."""
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pettwin_checks.devenv.app_standin",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port (printed on start)")
    parser.add_argument("--mode", choices=MODES, default="healthy")
    parser.add_argument("--slow-seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    standin = AppStandin(args.port, args.host, args.mode, args.slow_seconds).start()
    print(
        f"app stand-in listening on {standin.url} (mode {standin.mode}); "
        f"switch with: curl -X POST {standin.url}/_standin/mode/<{'|'.join(MODES)}>",
        flush=True,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    standin.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
