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
import base64
import ctypes
import datetime
import fcntl
import ipaddress
import json
import logging
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Self

DEFAULT_VERSION = "3.9.2"
SCALA_VERSION = "2.13"
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
PORT_RELEASE_TIMEOUT_S = 15.0
MVN_TIMEOUT_S = 1200.0

# Kafka 3.x logs through slf4j 1.7 and expects log4j 1 (reload4j) classes; Kafka 4.x moved to log4j2.
LOGGING_DEPENDENCIES = {
    3: [("org.slf4j", "slf4j-reload4j", "1.7.36")],
    4: [("org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3")],
}

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
LOOPBACK = "127.0.0.1"
DOCKER_MOUNT = "/pettwin"

log = logging.getLogger(__name__)

_running_brokers: set[KafkaBroker] = set()
_running_lock = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on, chosen below the kernel's ephemeral range.

    Outgoing connections take their local port from the ephemeral range, so a port chosen there could be taken
    while the broker is stopped and then block its restart on the same port.
    """
    ephemeral_low = _ephemeral_port_range()[0]
    low, high = 10000, max(10001, ephemeral_low - 1)
    for _ in range(200):
        port = random.randint(low, high)
        if _port_is_free(port):
            return port
    raise RuntimeError(f"no free TCP port found on {LOOPBACK} between {low} and {high}")


def _ephemeral_port_range() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _port_is_free(port: int) -> bool:
    """True when nothing listens on the port. SO_REUSEADDR, like the JVM's server sockets, so that connections
    lingering in TIME_WAIT after a clean stop do not count as 'in use'."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _distinct_free_ports(names) -> dict[str, int]:
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


def _jar_dir_is_complete(version_dir: str) -> bool:
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
    if _jar_dir_is_complete(version_dir):
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
        if _jar_dir_is_complete(version_dir):
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


def _java_executable() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(os.path.join(java_home, "bin", "java"), os.X_OK):
        return os.path.join(java_home, "bin", "java")
    return shutil.which("java")


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], check=False, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# ------------------------------------------------------------------------------------------------------------ TLS


def _write_tls_material(tls_dir: str) -> None:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    not_before, not_after = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=3650)

    def new_key():
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def name(common_name):
        return x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pettwin-checks devenv"),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )

    def key_usage(*, cert_sign):
        return x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=not cert_sign,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=cert_sign,
            crl_sign=cert_sign,
            encipher_only=False,
            decipher_only=False,
        )

    ca_key = new_key()
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(name("pettwin-checks test CA"))
        .issuer_name(name("pettwin-checks test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    def leaf(common_name, usage, alt_names):
        key = new_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        return key, builder.sign(ca_key, hashes.SHA256())

    server_key, server_cert = leaf(
        "localhost",
        ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))],
    )
    client_key, client_cert = leaf("pettwin-checks-client", ExtendedKeyUsageOID.CLIENT_AUTH, [])

    def pem_cert(cert):
        return cert.public_bytes(serialization.Encoding.PEM)

    def pem_key(key):
        # Unencrypted PKCS#8: the form both Kafka's PEM key store and librdkafka read without a password.
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    os.makedirs(tls_dir, exist_ok=True)
    files = {
        "ca.pem": pem_cert(ca_cert),
        # Kafka's file-based PEM key store: the private key followed by the certificate chain.
        "server-keystore.pem": pem_key(server_key) + pem_cert(server_cert) + pem_cert(ca_cert),
        "client.pem": pem_cert(client_cert),
        "client.key": pem_key(client_key),
    }
    for filename, content in files.items():
        path = os.path.join(tls_dir, filename)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(content)


# --------------------------------------------------------------------------------------------------------- broker


def _new_cluster_id() -> str:
    # Kafka's Uuid string form: 16 random bytes, URL-safe base64, no padding; never one starting with '-'
    # (it would read as an option on a command line).
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


if sys.platform.startswith("linux"):
    _libc = ctypes.CDLL(None, use_errno=True)
    _PR_SET_PDEATHSIG = 1

    def _terminate_with_parent() -> None:
        """Runs in the child before exec: the kernel sends SIGTERM to the broker when its parent dies, even by
        SIGKILL, when atexit handlers never run. 'Parent' is the thread that started it, so start brokers from a
        thread that lives as long as they should (the main thread, in pytest and the CLI)."""
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

else:
    _terminate_with_parent = None


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
        java = _java_executable()
        if java is not None and (shutil.which("mvn") is not None or _jar_dir_is_complete(self._version_dir())):
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
                _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("Kafka broker pid %d ignored SIGTERM for %.0fs; killing it", process.pid, STOP_TIMEOUT_S)
                if self._docker_container:
                    subprocess.run(
                        ["docker", "kill", self._docker_container], check=False, capture_output=True, timeout=60
                    )
                _signal_group(process.pid, signal.SIGKILL)
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
            "cluster_id": _new_cluster_id(),
            "ports": _distinct_free_ports(CLIENT_LISTENERS + INTERNAL_LISTENERS),
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
        path = os.path.join(self.workdir, filename)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(content)
        return path

    def _ensure_tls_material(self) -> None:
        if not all(os.path.isfile(p) for p in (self.ca_cert, self.client_cert, self.client_key)):
            _write_tls_material(os.path.join(self.workdir, "tls"))

    def _scram_argument(self) -> str:
        name, password = self.scram_user
        return f"SCRAM-SHA-512=[name={name},password={password}]"

    def _logging_jvm_options(self) -> list[str]:
        # Broker logs go to stdout, which is appended to log_path (so JVM crashes land there too).
        pattern = "[%d] %p %m (%c)%n"
        if major_version(self.version) >= 4:
            path = self._write_private(
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
        path = self._write_private(
            "log4j.properties",
            (
                "log4j.rootLogger=INFO, stdout\n"
                "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
                "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
                f"log4j.appender.stdout.layout.ConversionPattern={pattern}\n"
            ),
        )
        return [f"-Dlog4j.configuration=file:{path}"]

    def _java_command(self, java: str, lib_dir: str, main_class: str, *args: str) -> list[str]:
        return [
            java,
            "-Xms128m",
            "-Xmx768m",
            # A test broker on a small shared machine: fewer JIT and GC threads start it faster.
            "-XX:TieredStopAtLevel=1",
            "-XX:+UseSerialGC",
            "-Djava.awt.headless=true",
            *self._logging_jvm_options(),
            "-cp",
            os.path.join(lib_dir, "*"),
            main_class,
            *args,
        ]

    def run_tool(self, main_class: str, *args: str, timeout: float = 60.0) -> str:
        """Run one of Kafka's own command-line tools (e.g. ConsumerGroupCommand) from the resolved jars."""
        java = _java_executable()
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
            preexec_fn=_terminate_with_parent,  # noqa: PLW1509  (only prctl, async-signal-safe)
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
            preexec_fn=_terminate_with_parent,  # noqa: PLW1509  (only prctl, async-signal-safe)
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
            while not _port_is_free(port):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"port {port} still in use {PORT_RELEASE_TIMEOUT_S:.0f}s after the broker stopped"
                    )
                time.sleep(0.1)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


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
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # SIGINT already raises KeyboardInterrupt
    broker = KafkaBroker(workdir=args.workdir, version=args.version)
    try:
        broker.start()
        print(json.dumps(broker.describe()), flush=True)
        while broker.running:
            time.sleep(1.0)
        log.error("Kafka broker exited unexpectedly; see %s", broker.log_path)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        broker.close()


if __name__ == "__main__":
    sys.exit(main())
