"""`python -m pettwin_checks.devenv.gcp_emulator --port 0 --scenario default`

Prints one JSON line ({"url", "metadata_host", "project_id", ...}) once serving, then serves until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from .scenario import ScenarioError
from .server import GcpEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pettwin_checks.devenv.gcp_emulator",
        description="Local GCP emulator for pettwin-checks tests and demos.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    parser.add_argument("--scenario", default="default", help="scenario name, path to a YAML file, or YAML text")
    parser.add_argument("--no-auth", action="store_true", help="accept API calls without a bearer token")
    args = parser.parse_args(argv)

    try:
        emulator = GcpEmulator(scenario=args.scenario, host=args.host, port=args.port, require_auth=not args.no_auth)
    except ScenarioError as bad:
        print(f"error: {bad}", file=sys.stderr)
        return 2
    emulator.start()
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    print(json.dumps(emulator.info()), flush=True)
    done.wait()
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
