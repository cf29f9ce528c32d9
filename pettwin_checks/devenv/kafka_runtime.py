"""What running Apache Kafka's JVMs on 127.0.0.1 needs, for one broker (kafka_broker.py) or a cluster
(kafka_cluster.py): free ports, Kafka's jars resolved from Maven Central with mvn into a cache, the java command
line with its logging, and processes that die with their parent and are stopped by their own pid."""

from __future__ import annotations

import base64
import ctypes
import fcntl
import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

DEFAULT_VERSION = "3.9.2"
SCALA_VERSION = "2.13"
MVN_TIMEOUT_S = 1200.0
LOOPBACK = "127.0.0.1"

# Kafka 3.x logs through slf4j 1.7 and expects log4j 1 (reload4j) classes; Kafka 4.x moved to log4j2.
LOGGING_DEPENDENCIES = {
    3: [("org.slf4j", "slf4j-reload4j", "1.7.36")],
    4: [("org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3")],
}

log = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on, chosen below the kernel's ephemeral range.

    Outgoing connections take their local port from the ephemeral range, so a port chosen there could be taken
    while the broker is stopped and then block its restart on the same port.
    """
    ephemeral_low = _ephemeral_port_range()[0]
    low, high = 10000, max(10001, ephemeral_low - 1)
    for _ in range(200):
        port = random.randint(low, high)
        if port_is_free(port):
            return port
    raise RuntimeError(f"no free TCP port found on {LOOPBACK} between {low} and {high}")


def _ephemeral_port_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def port_is_free(port: int) -> bool:
    """True when nothing listens on the port. SO_REUSEADDR, like the JVM's server sockets, so that connections
    lingering in TIME_WAIT after a clean stop do not count as 'in use'."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def distinct_free_ports(names) -> dict[str, int]:
    ports: dict[str, int] = {}
    for name in names:
        port = free_port()
        while port in ports.values():
            port = free_port()
        ports[name] = port
    return ports


def major_version(version: str) -> int:
    return int(version.split(".", 1)[0])


# --------------------------------------------------------------------------------------------------- jar resolution


def cache_root() -> str:
    if os.environ.get("PETTWIN_KAFKA_CACHE"):
        return os.path.abspath(os.environ["PETTWIN_KAFKA_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pettwin-checks", "kafka")


def jar_dir_is_complete(version_dir: str) -> bool:
    """Resolved, and for the jar set this code asks for (a cache made for another pom is resolved again)."""
    if not (os.path.isfile(os.path.join(version_dir, ".complete")) and os.path.isdir(os.path.join(version_dir, "lib"))):
        return False
    try:
        with open(os.path.join(version_dir, "pom.xml")) as f:
            return f.read() == _broker_pom(os.path.basename(version_dir))
    except OSError:
        return False


def _broker_pom(version: str) -> str:
    major = major_version(version)
    if major not in LOGGING_DEPENDENCIES:
        raise ValueError(f"unsupported Kafka version {version!r}: expected 3.x or 4.x")
    deps = [
        ("org.apache.kafka", f"kafka_{SCALA_VERSION}", version),
        # Kafka's own admin tools (kafka-consumer-groups): the reference the lag tests compare against.
        ("org.apache.kafka", "kafka-tools", version),
        *LOGGING_DEPENDENCIES[major],
    ]
    dependency_xml = "\n".join(
        f"    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></dependency>"
        for g, a, v in deps
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>pettwin-checks.devenv</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>{version}</version>
  <packaging>pom</packaging>
  <dependencies>
{dependency_xml}
  </dependencies>
</project>
"""


def resolve_jars(version: str) -> str:
    """Directory holding every runtime jar of Apache Kafka ``version``, resolved with mvn on first use."""
    version_dir = os.path.join(cache_root(), version)
    lib_dir = os.path.join(version_dir, "lib")
    if jar_dir_is_complete(version_dir):
        return lib_dir
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError(
            f"Apache Kafka {version} jars are not cached in {version_dir} and `mvn` is not on PATH: install Maven "
            "(and Java 17+), or set KAFKA_BOOTSTRAP_SERVERS to an existing broker"
        )
    os.makedirs(version_dir, exist_ok=True)
    # Several processes (pytest-xdist workers, a CI warm-up step) may resolve the same version at once.
    with open(os.path.join(version_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if jar_dir_is_complete(version_dir):
            return lib_dir
        pom_path = os.path.join(version_dir, "pom.xml")
        with open(pom_path, "w") as f:
            f.write(_broker_pom(version))
        staging = lib_dir + ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        mvn_log = os.path.join(version_dir, "mvn.log")
        cmd = [
            mvn,
            "-B",
            "-q",
            "-f",
            pom_path,
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        log.info("resolving Apache Kafka %s jars with mvn into %s", version, lib_dir)
        with open(mvn_log, "wb") as out:
            try:
                rc = subprocess.run(
                    cmd, check=False, stdout=out, stderr=subprocess.STDOUT, cwd=version_dir, timeout=MVN_TIMEOUT_S
                )
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"mvn did not resolve Apache Kafka {version} in {MVN_TIMEOUT_S:.0f}s; see {mvn_log}")
        if rc.returncode != 0:
            raise RuntimeError(
                f"mvn could not resolve Apache Kafka {version} (exit {rc.returncode}); see {mvn_log}:\n"
                + _tail(mvn_log)
            )
        broker_jar = f"kafka_{SCALA_VERSION}-{version}.jar"
        if not os.path.isfile(os.path.join(staging, broker_jar)):
            raise RuntimeError(f"mvn finished but {broker_jar} is missing from {staging}; see {mvn_log}")
        shutil.rmtree(lib_dir, ignore_errors=True)
        os.rename(staging, lib_dir)
        with open(os.path.join(version_dir, ".complete"), "w") as f:
            f.write("\n".join(sorted(os.listdir(lib_dir))) + "\n")
    return lib_dir


def _tail(path: str, lines: int = 40) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            return "\n".join(f.read().decode("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return ""


def java_executable() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(os.path.join(java_home, "bin", "java"), os.X_OK):
        return os.path.join(java_home, "bin", "java")
    return shutil.which("java")


def new_cluster_id() -> str:
    # Kafka's Uuid string form: 16 random bytes, URL-safe base64, no padding; never one starting with '-'
    # (it would read as an option on a command line).
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


if sys.platform.startswith("linux"):
    _libc = ctypes.CDLL(None, use_errno=True)
    _PR_SET_PDEATHSIG = 1

    def terminate_with_parent() -> None:
        """Runs in the child before exec: the kernel sends SIGTERM to the broker when its parent dies, even by
        SIGKILL, when atexit handlers never run. 'Parent' is the thread that started it, so start brokers from a
        thread that lives as long as they should (the main thread, in pytest and the CLI)."""
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

else:
    terminate_with_parent = None


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def write_private(directory: str, filename: str, content: str) -> str:
    """A file only this user can read (it may hold passwords); its path."""
    path = os.path.join(directory, filename)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(content)
    return path


def logging_jvm_options(version: str, directory: str) -> list[str]:
    """JVM options that send Kafka's log to stdout (appended to the node's log file, so JVM crashes land there
    too), with the logging configuration written into `directory`."""
    pattern = "[%d] %p %m (%c)%n"
    if major_version(version) >= 4:
        path = write_private(
            directory,
            "log4j2.properties",
            (
                "status = warn\n"
                # Kafka logs its own shutdown from a JVM shutdown hook; log4j2 must not close before that.
                "shutdownHook = disable\n"
                "appender.stdout.type = Console\n"
                "appender.stdout.name = STDOUT\n"
                "appender.stdout.layout.type = PatternLayout\n"
                f"appender.stdout.layout.pattern = {pattern}\n"
                "rootLogger.level = info\n"
                "rootLogger.appenderRef.stdout.ref = STDOUT\n"
            ),
        )
        return [f"-Dlog4j2.configurationFile={path}"]
    path = write_private(
        directory,
        "log4j.properties",
        (
            "log4j.rootLogger=INFO, stdout\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            f"log4j.appender.stdout.layout.ConversionPattern={pattern}\n"
        ),
    )
    return [f"-Dlog4j.configuration=file:{path}"]


def java_command(
    java: str, lib_dir: str, jvm_options: list[str], main_class: str, *args: str, heap: str = "768m"
) -> list[str]:
    return [
        java,
        "-Xms128m",
        f"-Xmx{heap}",
        # A test broker on a small shared machine: fewer JIT and GC threads start it faster.
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC",
        "-Djava.awt.headless=true",
        *jvm_options,
        "-cp",
        os.path.join(lib_dir, "*"),
        main_class,
        *args,
    ]


def serve(server, alive: Callable[[], bool], where: str) -> int:
    """The CLIs' `run`: start `server` (a broker or a cluster), print its description as one JSON line, and serve
    until SIGINT or SIGTERM (0) or until it dies (1, pointing at `where`); it is closed in every case."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # SIGINT already raises KeyboardInterrupt
    try:
        server.start()
        print(json.dumps(server.describe()), flush=True)
        while alive():
            time.sleep(1.0)
        log.error("Kafka exited unexpectedly; see %s", where)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        server.close()
