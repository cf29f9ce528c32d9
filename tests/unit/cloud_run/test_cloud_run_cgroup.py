"""cgroup readers against v1 and v2 trees built in temp dirs, and against the live cgroup of this machine."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from pettwin_checks.cloud_run import cgroup

pytestmark = pytest.mark.unit

MiB = 1024 * 1024


def write(base: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def v2_tree(tmp_path):
    """A cgroup v2 mount with the container in /app.slice/app (as /proc/self/cgroup would say)."""
    write(tmp_path, {"cgroup.controllers": "cpu memory pids\n"})
    write(
        tmp_path / "app.slice" / "app",
        {
            "cpu.stat": "usage_usec 7250000\nuser_usec 5000000\nsystem_usec 2250000\n"
            "nr_periods 1200\nnr_throttled 37\nthrottled_usec 4125000\n",
            "cpu.max": "200000 100000\n",
            "memory.current": str(410 * MiB) + "\n",
            "memory.max": str(512 * MiB) + "\n",
            "memory.events": "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n",
            "pids.current": "23\n",
            "pids.max": "max\n",
        },
    )
    return tmp_path


@pytest.fixture
def v1_tree(tmp_path):
    """cgroup v1: cpu and cpuacct co-mounted (with the usual symlinks), memory and pids on their own."""
    (tmp_path / "cpu,cpuacct" / "docker" / "abc").mkdir(parents=True)
    (tmp_path / "cpu").symlink_to("cpu,cpuacct")
    (tmp_path / "cpuacct").symlink_to("cpu,cpuacct")
    write(
        tmp_path / "cpu,cpuacct" / "docker" / "abc",
        {
            "cpuacct.usage": "3500000000\n",
            "cpu.stat": "nr_periods 400\nnr_throttled 9\nthrottled_time 1500000000\n",
            "cpu.cfs_quota_us": "50000\n",
            "cpu.cfs_period_us": "100000\n",
        },
    )
    write(
        tmp_path / "memory" / "docker" / "abc",
        {
            "memory.usage_in_bytes": str(300 * MiB) + "\n",
            "memory.limit_in_bytes": "9223372036854771712\n",
            "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        },
    )
    write(tmp_path / "pids" / "docker" / "abc", {"pids.current": "8\n", "pids.max": "100\n"})
    return tmp_path


V1_PROC = "12:pids:/docker/abc\n4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n0::/\n"


def test_v2_tree_exact_values(v2_tree):
    layout = cgroup.locate(v2_tree, "0::/app.slice/app\n")
    assert layout.version == 2
    assert layout.dirs["memory"] == v2_tree / "app.slice" / "app"
    sample = cgroup.CgroupReader(layout).read()
    assert sample == cgroup.Sample(
        source="cgroup v2",
        cpu_usage_seconds=7.25,
        cpu_limit_cores=2.0,
        cpu_periods=1200,
        cpu_throttled_periods=37,
        cpu_throttled_seconds=4.125,
        memory_usage_bytes=410 * MiB,
        memory_limit_bytes=512 * MiB,
        oom_kills=2,
        pids_current=23,
        pids_limit=None,
    )


def test_v1_tree_exact_values(v1_tree):
    layout = cgroup.locate(v1_tree, V1_PROC)
    assert layout.version == 1
    assert layout.dirs["cpuacct"] == v1_tree / "cpuacct" / "docker" / "abc"
    sample = cgroup.CgroupReader(layout).read()
    assert sample == cgroup.Sample(
        source="cgroup v1",
        cpu_usage_seconds=3.5,
        cpu_limit_cores=0.5,
        cpu_periods=400,
        cpu_throttled_periods=9,
        cpu_throttled_seconds=1.5,
        memory_usage_bytes=300 * MiB,
        memory_limit_bytes=None,
        oom_kills=1,
        pids_current=8,
        pids_limit=100,
    )


def test_path_override_and_missing_path_fall_back_to_mount_root(v2_tree):
    write(v2_tree, {"memory.current": "1\n"})
    # /proc says a path this mount does not have (no cgroup namespace): the mount root is the container's.
    assert cgroup.locate(v2_tree, "0::/elsewhere\n").dirs["memory"] == v2_tree
    assert cgroup.locate(v2_tree, "0::/\n", cgroup_path="/app.slice/app").dirs["cpu"] == v2_tree / "app.slice" / "app"


def test_no_cgroup_filesystem(tmp_path):
    assert cgroup.locate(tmp_path, "0::/\n") is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_reported_not_raised(v2_tree):
    target = v2_tree / "app.slice" / "app" / "memory.current"
    target.chmod(0)
    sample = cgroup.CgroupReader(cgroup.locate(v2_tree, "0::/app.slice/app\n")).read()
    assert sample.memory_usage_bytes is None
    assert sample.unreadable and "memory.current" in sample.unreadable[0]


def test_unreadable_directory_is_reported_not_raised(v2_tree):
    """A file that exists but cannot be read as a file (EISDIR stands in for EACCES, which root ignores)."""
    target = v2_tree / "app.slice" / "app" / "memory.current"
    target.unlink()
    target.mkdir()
    sample = cgroup.CgroupReader(cgroup.locate(v2_tree, "0::/app.slice/app\n")).read()
    assert sample.memory_usage_bytes is None
    assert len(sample.unreadable) == 1 and "memory.current" in sample.unreadable[0]
    filled = cgroup.fill_from_psutil(sample)
    assert filled.source == "cgroup v2 + psutil"
    assert 0 < filled.memory_usage_bytes <= psutil.virtual_memory().total
    assert filled.oom_kills == 2  # what cgroup did read is kept


def test_psutil_only():
    sample = cgroup.fill_from_psutil(None)
    assert sample.source == "psutil"
    assert sample.cpu_usage_seconds > 0
    assert sample.pids_current > 1
    assert sample.cpu_throttled_periods is None and sample.oom_kills is None


@pytest.mark.parametrize(("text", "cores"), [("max 100000", None), ("150000 100000", 1.5), ("50000", 0.5)])
def test_cpu_max(text, cores):
    assert cgroup.parse_v2_cpu_max(text) == cores


@pytest.mark.parametrize(
    ("text", "limit"), [("max\n", None), ("9223372036854771712", None), ("536870912\n", 512 * MiB)]
)
def test_limit(text, limit):
    assert cgroup.parse_limit(text) == limit


def test_live_cgroup_of_this_machine():
    """Whatever this machine runs (v1, v2 or hybrid), the reader finds this process's cgroup and reads sane values."""
    proc = cgroup.read_proc_cgroup()
    layout = cgroup.locate(cgroup.DEFAULT_ROOT, proc)
    if layout is None:
        pytest.skip("no cgroup filesystem mounted")
    sample = cgroup.CgroupReader(layout).read()
    assert sample.unreadable == ()
    assert sample.memory_usage_bytes is not None and sample.memory_usage_bytes > 0
    assert sample.cpu_usage_seconds is not None and sample.cpu_usage_seconds > 0
    if sample.memory_limit_bytes is not None:
        assert sample.memory_limit_bytes >= sample.memory_usage_bytes
    # The counter moves forward while this process burns CPU.
    sum(range(3_000_000))
    assert cgroup.CgroupReader(layout).read().cpu_usage_seconds > sample.cpu_usage_seconds


def test_a_process_is_in_the_watched_cgroup_when_its_cgroup_procs_lists_it(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "cgroup.procs").write_text("1\n7\n")
    layout = cgroup.locate(tmp_path, "0::/agent\n")
    assert cgroup.in_cgroup(layout, 7)
    assert not cgroup.in_cgroup(layout, 12)  # another container's process
    # Without a readable cgroup.procs, /proc/<pid>/cgroup is compared with this process's own.
    (tmp_path / "agent" / "cgroup.procs").unlink()
    assert cgroup.in_cgroup(layout, os.getpid())
