"""Container restarts and uptime, detected across check runs (and agent restarts) from a persisted baseline."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

import psutil

# Process start times are derived from clock ticks since boot; two readings of one process can differ by a tick.
START_TIME_SLACK = 1.0


@dataclass(frozen=True)
class Baseline:
    """What the previous run saw; stored in the persistent cache as JSON."""

    boot_time: float | None = None
    app_started_at: float | None = None
    restarts_total: int = 0

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> Baseline | None:
        if not text:
            return None
        try:
            raw = json.loads(text)
            return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})
        except (ValueError, TypeError):
            return None


@dataclass(frozen=True)
class Restart:
    detected: int  # restarts seen by this run (0 or 1: several restarts between two runs look like one)
    reason: str | None = None


def detect_restart(previous: Baseline | None, current: Baseline) -> Restart:
    """Did the app container restart since `previous`? Its main process's start time moved forward.

    Only where the agent shares the app's container: from a sidecar the app's process is invisible, and the
    cgroup counters are the agent's own. A new boot of the machine is a new instance, not a container restart,
    so it only resets the baseline.
    """
    if previous is None:
        return Restart(0)
    if previous.boot_time and current.boot_time and abs(current.boot_time - previous.boot_time) > START_TIME_SLACK:
        return Restart(0)
    started_anew = previous.app_started_at and current.app_started_at
    if started_anew and current.app_started_at - previous.app_started_at > START_TIME_SLACK:
        return Restart(1, "the app process started anew")
    return Restart(0)


def app_process(pattern: re.Pattern) -> tuple[int, float] | None:
    """(pid, start time) of the oldest process whose name or command line matches `pattern` (a compiled regex).

    The oldest one is the container's main process (a server's workers start after it). None when no process
    matches, e.g. when the app runs in a PID namespace the agent cannot see.
    """
    oldest = None
    for process in psutil.process_iter(["name", "cmdline", "create_time"]):
        info = process.info
        command = " ".join(info.get("cmdline") or [])
        if pattern.search(info.get("name") or "") or pattern.search(command):
            started = info.get("create_time")
            if started and (oldest is None or started < oldest[1]):
                oldest = (process.pid, started)
    return oldest
