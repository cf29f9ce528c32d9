"""A real Apache Kafka broker on 127.0.0.1 for tests and the demo: KRaft, one combined broker+controller node.

Where the broker comes from, in order of preference:
1. ``KAFKA_BOOTSTRAP_SERVERS`` is set: that broker is used as is (only its PLAINTEXT endpoint is known);
   start() only waits until it answers and stop() does nothing.
2. ``java`` is available: Apache Kafka's jars are resolved from Maven Central with ``mvn`` into a cache
   (``$PETTWIN_KAFKA_CACHE`` or ``~/.cache/pettwin-checks/kafka/<version>/lib``) and the broker runs as a child JVM.
3. A Docker engine answers: the ``apache/kafka`` image runs the same configuration.

Client listeners: PLAINTEXT, SASL_PLAINTEXT (PLAIN and SCRAM-SHA-512), SSL (mutual TLS: a client certificate is
required) and SASL_SSL (PLAIN, like Confluent Cloud). Ports, passwords, certificates and data survive stop()/start()
because they live in the work directory (state.json, tls/, data/).

CLI: ``python -m pettwin_checks.devenv.kafka_broker run`` prints one JSON line describing the broker and serves until
SIGINT/SIGTERM; ``... fetch`` only resolves the jars (to warm a CI cache).
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import Self

from .kafka_runtime import (
    DEFAULT_VERSION,
    LOOPBACK,
    cache_root,
    distinct_free_ports,
    jar_dir_is_complete,
    java_command,
    java_executable,
    logging_jvm_options,
    major_version,
    new_cluster_id,
    port_is_free,
    resolve_jars,
    serve,
    signal_group,
    terminate_with_parent,
    write_private,
)
from .kafka_tls import write_tls_material

READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
PORT_RELEASE_TIMEOUT_S = 15.0

CLIENT_LISTENERS = ("PLAINTEXT", "SASL_PLAINTEXT", "SSL", "SASL_SSL")
INTERNAL_LISTENERS = ("BROKER", "CONTROLLER")
PROTOCOL_OF_LISTENER = {
    "PLAINTEXT": "PLAINTEXT",
    "SASL_PLAINTEXT": "SASL_PLAINTEXT",
    "SSL": "SSL",
    "SASL_SSL": "SASL_SSL",
    "BROKER": "PLAINTEXT",
    "CONTROLLER": "PLAINTEXT",
}
DOCKER_MOUNT = "/pettwin"

log = logging.getLogger(__name__)

_running_brokers: set[KafkaBroker] = set()
_running_lock = threading.Lock()


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], check=False, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# --------------------------------------------------------------------------------------------------------- broker


class KafkaBroker:
    """One Kafka broker for tests. ``start()`` is idempotent; ``stop()`` keeps ports and data for a later start()."""

    def __init__(self, workdir: str | None = None, version: str | None = None):
        external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
        self.external: bool = bool(external)
        self.version: str = version or os.environ.get("KAFKA_VERSION") or DEFAULT_VERSION
        self._process: subprocess.Popen | None = None
        self._log_file = None
        self._log_start_offset = 0
        self._docker_container: str | None = None
        self._owns_workdir = False
        if self.external:
            self.workdir: str | None = None
            self.log_path: str | None = None
            self.bootstrap: str = external
            self.sasl_bootstrap = self.ssl_bootstrap = self.sasl_ssl_bootstrap = None
            self.ca_cert = self.client_cert = self.client_key = None
            self.plain_user = self.scram_user = None
            return
        if workdir is None:
            workdir = tempfile.mkdtemp(prefix="pettwin-kafka-")
            self._owns_workdir = True
        self.workdir = os.path.abspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.log_path = os.path.join(self.workdir, "broker.log")
        self._state = self._load_or_create_state()
        ports = self._state["ports"]
        self.bootstrap = f"{LOOPBACK}:{ports['PLAINTEXT']}"
        self.sasl_bootstrap = f"{LOOPBACK}:{ports['SASL_PLAINTEXT']}"
        self.ssl_bootstrap = f"{LOOPBACK}:{ports['SSL']}"
        self.sasl_ssl_bootstrap = f"{LOOPBACK}:{ports['SASL_SSL']}"
        tls_dir = os.path.join(self.workdir, "tls")
        self.ca_cert = os.path.join(tls_dir, "ca.pem")
        self.client_cert = os.path.join(tls_dir, "client.pem")
        self.client_key = os.path.join(tls_dir, "client.key")
        self.plain_user = tuple(self._state["plain_user"])
        self.scram_user = tuple(self._state["scram_user"])

    # ------------------------------------------------------------------------------------------------ public API

    @property
    def ports(self) -> dict[str, int]:
        """Every listener's port, client and internal ones (empty for an external broker)."""
        return {} if self.external else dict(self._state["ports"])

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self.external or (self._process is not None and self._process.poll() is None)

    def start(self) -> Self:
        if self.external:
            self._wait_ready(READY_TIMEOUT_S)
            return self
        if self.running:
            return self
        if self._process is not None:
            self._terminate()  # it died on its own: release what it held, then start afresh on the same ports and data
        java = java_executable()
        if java is not None and (shutil.which("mvn") is not None or jar_dir_is_complete(self._version_dir())):
            self._start_java(java, resolve_jars(self.version))
        elif _docker_answers():
            self._start_docker()
        else:
            missing = "java" if java is None else "mvn"
            raise RuntimeError(
                f"cannot start Apache Kafka: `{missing}` is not on PATH and no Docker engine answers. Install Java 17+"
                " and Maven, or start Docker, or set KAFKA_BOOTSTRAP_SERVERS to an existing broker"
            )
        with _running_lock:
            _running_brokers.add(self)
        try:
            self._wait_ready(READY_TIMEOUT_S)
        except BaseException:
            self._terminate()  # not stop(): a port held by someone else must not hide why the start failed
            raise
        return self

    def stop(self) -> None:
        if self.external or self._process is None:
            return
        self._terminate()
        self._wait_ports_released()

    def _terminate(self) -> None:
        process = self._process
        if process.poll() is None:
            if self._docker_container:
                subprocess.run(
                    ["docker", "stop", "-t", str(int(STOP_TIMEOUT_S)), self._docker_container],
                    check=False,
                    capture_output=True,
                    timeout=STOP_TIMEOUT_S + 30,
                )
            else:
                # The JVM leads its own process group; SIGTERM runs Kafka's shutdown hook (controlled shutdown).
                signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("Kafka broker pid %d ignored SIGTERM for %.0fs; killing it", process.pid, STOP_TIMEOUT_S)
                if self._docker_container:
                    subprocess.run(
                        ["docker", "kill", self._docker_container], check=False, capture_output=True, timeout=60
                    )
                signal_group(process.pid, signal.SIGKILL)
                process.wait()
        self._process = None
        self._docker_container = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        with _running_lock:
            _running_brokers.discard(self)

    def close(self) -> None:
        self.stop()
        if self._owns_workdir and self.workdir and os.path.isdir(self.workdir):
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def describe(self) -> dict:
        """Endpoints, credentials and paths, as printed by the CLI."""
        return {
            "version": None if self.external else self.version,
            "external": self.external,
            "bootstrap": self.bootstrap,
            "sasl_bootstrap": self.sasl_bootstrap,
            "ssl_bootstrap": self.ssl_bootstrap,
            "sasl_ssl_bootstrap": self.sasl_ssl_bootstrap,
            "ca_cert": self.ca_cert,
            "client_cert": self.client_cert,
            "client_key": self.client_key,
            "plain_user": list(self.plain_user) if self.plain_user else None,
            "scram_user": list(self.scram_user) if self.scram_user else None,
            "log_path": self.log_path,
            "workdir": self.workdir,
            "pid": self.pid,
        }

    def __repr__(self) -> str:
        where = "external" if self.external else f"version={self.version} workdir={self.workdir}"
        return f"<KafkaBroker {self.bootstrap} {where} running={self.running}>"

    # ------------------------------------------------------------------------------------------------ internals

    def _version_dir(self) -> str:
        return os.path.join(cache_root(), self.version)

    def _load_or_create_state(self) -> dict:
        state_path = os.path.join(self.workdir, "state.json")
        if os.path.isfile(state_path):
            with open(state_path) as f:
                state = json.load(f)
            if state["version"] != self.version:
                raise ValueError(
                    f"{self.workdir} holds a Kafka {state['version']} broker; asked for {self.version}. "
                    "Use another workdir."
                )
            return state
        state = {
            "version": self.version,
            "cluster_id": new_cluster_id(),
            "ports": distinct_free_ports(CLIENT_LISTENERS + INTERNAL_LISTENERS),
            "plain_user": ["pettwin-plain", secrets.token_hex(12)],
            "scram_user": ["pettwin-scram", secrets.token_hex(12)],
        }
        fd = os.open(state_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(state, f, indent=2)
        return state

    def _server_properties(self, root: str, client_bind_host: str) -> str:
        """server.properties with paths under ``root`` (the workdir, or its mount point inside a container)."""
        ports = self._state["ports"]
        plain_name, plain_password = self.plain_user
        listeners = ",".join(
            f"{name}://{client_bind_host if name in CLIENT_LISTENERS else LOOPBACK}:{ports[name]}"
            for name in CLIENT_LISTENERS + INTERNAL_LISTENERS
        )
        advertised = ",".join(f"{name}://{LOOPBACK}:{ports[name]}" for name in CLIENT_LISTENERS + ("BROKER",))
        plain_jaas = (
            f'org.apache.kafka.common.security.plain.PlainLoginModule required user_{plain_name}="{plain_password}";'
        )
        lines = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{LOOPBACK}:{ports['CONTROLLER']}",
            "listeners": listeners,
            "advertised.listeners": advertised,
            "listener.security.protocol.map": ",".join(f"{k}:{v}" for k, v in PROTOCOL_OF_LISTENER.items()),
            "inter.broker.listener.name": "BROKER",
            "controller.listener.names": "CONTROLLER",
            "log.dirs": f"{root}/data",
            # SASL: PLAIN users live in the JAAS line; SCRAM credentials were written into the metadata at format time.
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": plain_jaas,
            "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.sasl_ssl.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_ssl.plain.sasl.jaas.config": plain_jaas,
            # TLS from PEM files; the SSL listener insists on a client certificate (mutual TLS), SASL_SSL does not.
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": f"{root}/tls/server-keystore.pem",
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": f"{root}/tls/ca.pem",
            "listener.name.ssl.ssl.client.auth": "required",
            # One node, tuned for fast tests.
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "1",
            "group.initial.rebalance.delay.ms": "0",
            "delete.topic.enable": "true",
            "log.segment.bytes": str(1024 * 1024),
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
        }
        if major_version(self.version) >= 4:
            lines["share.coordinator.state.topic.replication.factor"] = "1"
            lines["share.coordinator.state.topic.min.isr"] = "1"
        return "".join(f"{key}={value}\n" for key, value in lines.items())

    def _write_private(self, filename: str, content: str) -> str:
        return write_private(self.workdir, filename, content)

    def _ensure_tls_material(self) -> None:
        if not all(os.path.isfile(p) for p in (self.ca_cert, self.client_cert, self.client_key)):
            write_tls_material(os.path.join(self.workdir, "tls"))

    def _scram_argument(self) -> str:
        name, password = self.scram_user
        return f"SCRAM-SHA-512=[name={name},password={password}]"

    def _java_command(self, java: str, lib_dir: str, main_class: str, *args: str) -> list[str]:
        return java_command(java, lib_dir, logging_jvm_options(self.version, self.workdir), main_class, *args)

    def run_tool(self, main_class: str, *args: str, timeout: float = 60.0) -> str:
        """Run one of Kafka's own command-line tools (e.g. ConsumerGroupCommand) from the resolved jars."""
        java = java_executable()
        if java is None or self.external:
            raise RuntimeError("Kafka's tools need java and the resolved jars (not available for an external broker)")
        command = self._java_command(java, resolve_jars(self.version), main_class, *args)
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=timeout).stdout

    def _open_log(self):
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115  (the broker writes to it until stop())
        self._log_file.write(
            f"\n===== pettwin-checks: starting Kafka {self.version} at {time.ctime()} =====\n".encode()
        )
        self._log_file.flush()
        self._log_start_offset = self._log_file.tell()
        return self._log_file

    def _start_java(self, java: str, lib_dir: str) -> None:
        self._ensure_tls_material()
        properties = self._write_private("server.properties", self._server_properties(self.workdir, LOOPBACK))
        out = self._open_log()
        if not os.path.isfile(os.path.join(self.workdir, "data", "meta.properties")):
            fmt = subprocess.run(
                self._java_command(
                    java,
                    lib_dir,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    self._state["cluster_id"],
                    "-c",
                    properties,
                    "--add-scram",
                    self._scram_argument(),
                ),
                check=False,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                timeout=180,
            )
            if fmt.returncode != 0:
                out.close()
                self._log_file = None
                raise RuntimeError(
                    f"formatting Kafka storage failed (exit {fmt.returncode}); {self._startup_problems()}"
                )
        self._process = subprocess.Popen(
            self._java_command(java, lib_dir, "kafka.Kafka", properties),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.workdir,
            start_new_session=True,
            preexec_fn=terminate_with_parent,  # noqa: PLW1509  (only prctl, async-signal-safe)
        )

    def _start_docker(self) -> None:
        self._ensure_tls_material()
        # Inside the container the client listeners bind all interfaces so the published ports reach them;
        # on the host they are published on 127.0.0.1 only.
        self._write_private("server-docker.properties", self._server_properties(DOCKER_MOUNT, "0.0.0.0"))
        os.makedirs(os.path.join(self.workdir, "data"), exist_ok=True)
        self._docker_container = f"pettwin-kafka-{os.getpid()}-{self._state['ports']['PLAINTEXT']}"
        properties = f"{DOCKER_MOUNT}/server-docker.properties"
        script = (
            f"/opt/kafka/bin/kafka-storage.sh format --ignore-formatted -t {self._state['cluster_id']} "
            f"-c {properties} --add-scram '{self._scram_argument()}' && "
            f"exec /opt/kafka/bin/kafka-server-start.sh {properties}"
        )
        publish = [
            arg
            for name in CLIENT_LISTENERS
            for arg in ("-p", f"{LOOPBACK}:{self._state['ports'][name]}:{self._state['ports'][name]}")
        ]
        cmd = [
            "docker",
            "run",
            "--rm",
            "--name",
            self._docker_container,
            "--user",
            f"{os.getuid()}:{os.getgid()}",
            "-e",
            f"LOG_DIR={DOCKER_MOUNT}/logs",
            "-v",
            f"{self.workdir}:{DOCKER_MOUNT}",
            *publish,
            f"apache/kafka:{self.version}",
            "sh",
            "-c",
            script,
        ]
        self._process = subprocess.Popen(
            cmd,
            stdout=self._open_log(),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=terminate_with_parent,  # noqa: PLW1509  (only prctl, async-signal-safe)
        )

    def _wait_ready(self, timeout: float) -> None:
        """Until the broker answers a metadata request on PLAINTEXT listing itself (so it is unfenced), and the
        other client listeners accept connections."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        quiet = logging.getLogger(f"{__name__}.readiness")
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
        admin = AdminClient(
            {
                "bootstrap.servers": self.bootstrap,
                "reconnect.backoff.max.ms": 500,
                "socket.connection.setup.timeout.ms": 3000,
                "logger": quiet,
                "error_cb": lambda err: None,
            }
        )
        deadline = time.monotonic() + timeout
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(
                    f"Kafka broker exited with code {self._process.returncode} while starting; "
                    f"{self._startup_problems()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                detail = f"; {self._startup_problems()}" if self.log_path else ""
                raise TimeoutError(f"Kafka broker at {self.bootstrap} not ready after {timeout:.0f}s{detail}")
            try:
                if admin.list_topics(timeout=min(5.0, remaining)).brokers:
                    break
            except KafkaException:
                pass
            time.sleep(0.2)
        if not self.external:
            for name in CLIENT_LISTENERS:
                with socket.create_connection((LOOPBACK, self._state["ports"][name]), timeout=5):
                    pass

    def _startup_problems(self, limit: int = 12) -> str:
        """The errors this start logged (the root cause is usually a 'Caused by:' deep in a stack trace)."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_start_offset)
                lines = f.read().decode("utf-8", "replace").splitlines()
        except OSError:
            return f"see {self.log_path}"
        problems = [line for line in lines if " ERROR " in line or " FATAL " in line or line.startswith("Caused by:")]
        shown = "\n".join((problems or lines)[-limit:])
        return f"from {self.log_path}:\n{shown}"

    def _wait_ports_released(self) -> None:
        deadline = time.monotonic() + PORT_RELEASE_TIMEOUT_S
        for port in self._state["ports"].values():
            while not port_is_free(port):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"port {port} still in use {PORT_RELEASE_TIMEOUT_S:.0f}s after the broker stopped"
                    )
                time.sleep(0.1)


def _stop_running_brokers() -> None:
    with _running_lock:
        brokers = list(_running_brokers)
    for broker in brokers:
        try:
            broker.stop()
        except Exception:  # interpreter exit: stop the others regardless
            log.exception("stopping %r at exit failed", broker)


atexit.register(_stop_running_brokers)


# ------------------------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pettwin_checks.devenv.kafka_broker", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run", help="start a broker, print its endpoints as one JSON line, serve until SIGINT/SIGTERM"
    )
    run.add_argument(
        "--workdir", help="keep state, data and logs here (default: a temporary directory, removed at exit)"
    )
    run.add_argument("--version", help=f"Apache Kafka version (default: $KAFKA_VERSION or {DEFAULT_VERSION})")
    fetch = commands.add_parser("fetch", help="only resolve the broker's jars into the cache")
    fetch.add_argument("--version", help=f"Apache Kafka version (default: $KAFKA_VERSION or {DEFAULT_VERSION})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        return _fetch(args) if args.command == "fetch" else _run(args)
    except (RuntimeError, TimeoutError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _fetch(args: argparse.Namespace) -> int:
    version = args.version or os.environ.get("KAFKA_VERSION") or DEFAULT_VERSION
    started = time.monotonic()
    lib_dir = resolve_jars(version)
    print(json.dumps({"version": version, "lib": lib_dir, "seconds": round(time.monotonic() - started, 1)}))
    return 0


def _run(args: argparse.Namespace) -> int:
    broker = KafkaBroker(workdir=args.workdir, version=args.version)
    return serve(broker, lambda: broker.running, broker.log_path)


if __name__ == "__main__":
    sys.exit(main())
