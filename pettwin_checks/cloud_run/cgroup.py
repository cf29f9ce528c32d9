"""Container resources from the cgroup filesystem (v2, v1 as fallback), psutil where cgroup files are missing.

Parsing functions are pure; `CgroupReader.read()` is the only place that touches files. A value that cannot be
read stays None and the file is listed in `Sample.unreadable`, so the caller can warn once and fill the gap from
psutil (`fill_from_psutil`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import psutil

DEFAULT_ROOT = "/sys/fs/cgroup"
# cgroup v1 reports "no limit" as PAGE_COUNTER_MAX pages (0x7FFFFFFFFFFFF000 on 4 KiB pages); anything this large
# is not a limit anyone configured.
V1_UNLIMITED_FLOOR = 1 << 62
V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "pids")


@dataclass(frozen=True)
class Layout:
    """Where each controller's files are for the watched cgroup."""

    version: int  # 1 or 2
    dirs: dict[str, Path]  # controller -> directory; v2 maps every controller to the same directory

    def path(self, controller: str, filename: str) -> Path | None:
        directory = self.dirs.get(controller)
        return directory / filename if directory else None


@dataclass(frozen=True)
class Sample:
    """One reading of the container's resources. None means unknown (not read, or no such limit)."""

    source: str  # "cgroup v2", "cgroup v1" or "psutil"
    cpu_usage_seconds: float | None = None
    cpu_limit_cores: float | None = None
    cpu_periods: int | None = None
    cpu_throttled_periods: int | None = None
    cpu_throttled_seconds: float | None = None
    memory_usage_bytes: int | None = None
    memory_limit_bytes: int | None = None
    oom_kills: int | None = None
    pids_current: int | None = None
    pids_limit: int | None = None
    unreadable: tuple[str, ...] = field(default=())


# ---------------------------------------------------------------------------------------------- pure parsing


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """`/proc/<pid>/cgroup` -> {controller: path}; the v2 unified hierarchy is under the key ""."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            paths[""] = path
            continue
        for controller in controllers.split(","):
            paths[controller.removeprefix("name=")] = path
    return paths


def parse_keyed(text: str) -> dict[str, int]:
    """Flat keyed files (`cpu.stat`, `memory.events`, `memory.oom_control`): `key value` per line."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                values[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return values


def parse_v2_cpu_max(text: str) -> float | None:
    """`cpu.max` ("max 100000" or "200000 100000") -> cores, None when unlimited."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    period = int(parts[1]) if len(parts) > 1 else 100000
    return int(parts[0]) / period if period > 0 else None


def parse_v1_cpu_quota(quota_text: str, period_text: str) -> float | None:
    quota, period = int(quota_text.strip()), int(period_text.strip())
    if quota <= 0 or period <= 0:  # -1 means no quota
        return None
    return quota / period


def parse_limit(text: str) -> int | None:
    """A byte or count limit: "max" (v2) or a huge number (v1) mean unlimited."""
    text = text.strip()
    if text == "max" or not text:
        return None
    value = int(text)
    return None if value >= V1_UNLIMITED_FLOOR else value


def locate(root: str | Path = DEFAULT_ROOT, proc_cgroup: str = "", cgroup_path: str | None = None) -> Layout | None:
    """The directories of the watched cgroup under `root`, or None when no cgroup filesystem is there.

    `cgroup_path` (relative to the hierarchy root) overrides what `/proc/self/cgroup` says. When the path from
    /proc does not exist under the mount (a container without its own cgroup namespace sees its host path, but
    has its own cgroup mounted at the root), the root of the hierarchy is used.
    """
    root = Path(root)
    paths = parse_proc_cgroup(proc_cgroup)
    if (root / "cgroup.controllers").is_file():
        return Layout(2, {c: _existing(root, cgroup_path or paths.get("", "/")) for c in V1_CONTROLLERS})
    dirs = {}
    for controller in V1_CONTROLLERS:
        mount = _v1_mount(root, controller)
        if mount is not None:
            dirs[controller] = _existing(mount, cgroup_path or paths.get(controller, "/"))
    if dirs:
        return Layout(1, dirs)
    unified = root / "unified"
    if (unified / "cgroup.controllers").is_file():
        return Layout(2, {c: _existing(unified, cgroup_path or paths.get("", "/")) for c in V1_CONTROLLERS})
    return None


def _v1_mount(root: Path, controller: str) -> Path | None:
    # Controllers are often co-mounted ("cpu,cpuacct") with symlinks for each name.
    for candidate in (root / controller, *sorted(root.glob(f"*{controller}*"))):
        if candidate.is_dir() and controller in candidate.name.split(","):
            return candidate
    return None


def _existing(mount: Path, path: str) -> Path:
    candidate = mount / path.lstrip("/")
    return candidate if candidate.is_dir() else mount


# ---------------------------------------------------------------------------------------------- file reading


class CgroupReader:
    def __init__(self, layout: Layout):
        self.layout = layout

    def read(self) -> Sample:
        unreadable: list[str] = []

        def read(controller: str, filename: str) -> str | None:
            path = self.layout.path(controller, filename)
            if path is None:
                return None
            try:
                return path.read_text()
            except FileNotFoundError:
                # An absent file is a kernel or controller difference, not an error worth a warning;
                # the value falls back to psutil when it has one.
                return None
            except OSError as error:
                unreadable.append(f"{path} ({error.strerror or type(error).__name__})")
                return None

        values = self._read_v2(read) if self.layout.version == 2 else self._read_v1(read)
        return Sample(source=f"cgroup v{self.layout.version}", unreadable=tuple(unreadable), **values)

    @staticmethod
    def _read_v2(read) -> dict:
        values: dict = {}
        cpu_stat = read("cpu", "cpu.stat")
        if cpu_stat is not None:
            stat = parse_keyed(cpu_stat)
            if "usage_usec" in stat:
                values["cpu_usage_seconds"] = stat["usage_usec"] / 1e6
            # The throttling keys exist only when the cpu controller is enabled for this cgroup.
            if "nr_periods" in stat:
                values["cpu_periods"] = stat["nr_periods"]
                values["cpu_throttled_periods"] = stat.get("nr_throttled", 0)
                values["cpu_throttled_seconds"] = stat.get("throttled_usec", 0) / 1e6
        cpu_max = read("cpu", "cpu.max")
        if cpu_max is not None:
            values["cpu_limit_cores"] = parse_v2_cpu_max(cpu_max)
        _read_int(read, values, "memory_usage_bytes", "memory", "memory.current")
        memory_max = read("memory", "memory.max")
        if memory_max is not None:
            values["memory_limit_bytes"] = parse_limit(memory_max)
        events = read("memory", "memory.events")
        if events is not None:
            values["oom_kills"] = parse_keyed(events).get("oom_kill", 0)
        _read_int(read, values, "pids_current", "pids", "pids.current")
        pids_max = read("pids", "pids.max")
        if pids_max is not None:
            values["pids_limit"] = parse_limit(pids_max)
        return values

    @staticmethod
    def _read_v1(read) -> dict:
        values: dict = {}
        usage = read("cpuacct", "cpuacct.usage")
        if usage is not None:
            values["cpu_usage_seconds"] = int(usage.strip()) / 1e9
        cpu_stat = read("cpu", "cpu.stat")
        if cpu_stat is not None:
            stat = parse_keyed(cpu_stat)
            if "nr_periods" in stat:
                values["cpu_periods"] = stat["nr_periods"]
                values["cpu_throttled_periods"] = stat.get("nr_throttled", 0)
                values["cpu_throttled_seconds"] = stat.get("throttled_time", 0) / 1e9
        quota, period = read("cpu", "cpu.cfs_quota_us"), read("cpu", "cpu.cfs_period_us")
        if quota is not None and period is not None:
            values["cpu_limit_cores"] = parse_v1_cpu_quota(quota, period)
        _read_int(read, values, "memory_usage_bytes", "memory", "memory.usage_in_bytes")
        limit = read("memory", "memory.limit_in_bytes")
        if limit is not None:
            values["memory_limit_bytes"] = parse_limit(limit)
        oom_control = read("memory", "memory.oom_control")
        if oom_control is not None:
            # `oom_kill` appeared in kernel 4.13; older kernels only say whether the group is under OOM.
            oom_kill = parse_keyed(oom_control).get("oom_kill")
            if oom_kill is not None:
                values["oom_kills"] = oom_kill
        _read_int(read, values, "pids_current", "pids", "pids.current")
        pids_max = read("pids", "pids.max")
        if pids_max is not None:
            values["pids_limit"] = parse_limit(pids_max)
        return values


def _read_int(read, values: dict, key: str, controller: str, filename: str) -> None:
    text = read(controller, filename)
    if text is not None and text.strip():
        values[key] = int(text.strip())


def in_cgroup(layout: Layout | None, pid: int) -> bool:
    """Whether process `pid` runs in the watched cgroup (so in the agent's own container).

    The cgroup's `cgroup.procs` lists its member processes; where it cannot be read, the process's
    /proc/<pid>/cgroup is compared with this process's.
    """
    directory = next((layout.dirs[c] for c in ("memory", "pids", "cpu") if layout and c in layout.dirs), None)
    if directory is not None:
        try:
            return str(pid) in (directory / "cgroup.procs").read_text().split()
        except OSError:
            pass
    return read_proc_cgroup(pid) == read_proc_cgroup()


def read_proc_cgroup(pid: int | str = "self") -> str:
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return f.read()
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------- psutil


def fill_from_psutil(sample: Sample | None) -> Sample:
    """Fill what cgroup could not tell from the machine's own counters (on Cloud Run gen2 the VM is the instance).

    Throttling and OOM kills have no psutil equivalent and stay unknown.
    """
    sample = sample or Sample(source="psutil")
    updates: dict = {}
    if sample.memory_usage_bytes is None:
        memory = psutil.virtual_memory()
        updates["memory_usage_bytes"] = memory.total - memory.available
    if sample.cpu_usage_seconds is None:
        times = psutil.cpu_times()
        updates["cpu_usage_seconds"] = sum(
            getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal")
        )
    if sample.pids_current is None:
        updates["pids_current"] = len(psutil.pids())
    if not updates:
        return sample
    source = sample.source if sample.source == "psutil" else f"{sample.source} + psutil"
    return replace(sample, source=source, **updates)


def host_memory_bytes() -> int:
    return psutil.virtual_memory().total
