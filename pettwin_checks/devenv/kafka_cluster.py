"""A real Apache Kafka cluster on 127.0.0.1 for failover tests: three KRaft nodes, each broker and controller,
replication factor 3, PLAINTEXT only, random free ports; every node is a child JVM stopped by its own pid.

Faults on request: stop a broker (SIGTERM, Kafka's controlled shutdown), kill -9 it, start it again, and move
partition leaders with Kafka's own admin tools (a preferred-leader election through the AdminClient, a reassignment
through kafka-reassign-partitions). Leaders are never rebalanced by the cluster itself
(auto.leader.rebalance.enable=false): they move only when a test moves them.

Jars come from Maven Central as for the single broker (kafka_runtime.resolve_jars); ``KAFKA_VERSION`` picks the
version. CLI: ``python -m pettwin_checks.devenv.kafka_cluster run`` prints one JSON line and serves until SIGINT.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Self

from .kafka_runtime import (
    DEFAULT_VERSION,
    LOOPBACK,
    distinct_free_ports,
    java_command,
    java_executable,
    logging_jvm_options,
    major_version,
    new_cluster_id,
    resolve_jars,
    serve,
    signal_group,
    terminate_with_parent,
    write_private,
)

SIZE = 3
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0
HEAP = "320m"  # three JVMs on a small shared machine

log = logging.getLogger(__name__)


class ClusterNode:
    """One KRaft node (broker and controller) of a KafkaCluster: its ports, data and log under its own directory."""

    def __init__(self, cluster: KafkaCluster, node_id: int, ports: dict[str, int]) -> None:
        self.cluster = cluster
        self.node_id = node_id
        self.ports = ports
        self.workdir = os.path.join(cluster.workdir, f"node-{node_id}")
        os.makedirs(self.workdir, exist_ok=True)
        self.log_path = os.path.join(self.workdir, "broker.log")
        self.bootstrap = f"{LOOPBACK}:{ports['PLAINTEXT']}"
        self._process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def properties(self) -> str:
        voters = ",".join(f"{n.node_id}@{LOOPBACK}:{n.ports['CONTROLLER']}" for n in self.cluster.nodes)
        lines = {
            "process.roles": "broker,controller",
            "node.id": str(self.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{LOOPBACK}:{self.ports['PLAINTEXT']},CONTROLLER://{LOOPBACK}:{self.ports['CONTROLLER']}",
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{self.ports['PLAINTEXT']}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "log.dirs": os.path.join(self.workdir, "data"),
            "num.partitions": "3",
            "default.replication.factor": "3",
            "min.insync.replicas": "2",
            # Several partitions of the offsets topic, so groups have different coordinators.
            "offsets.topic.replication.factor": "3",
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.replication.factor": "3",
            "transaction.state.log.min.isr": "2",
            "transaction.state.log.num.partitions": "3",
            "group.initial.rebalance.delay.ms": "0",
            "auto.leader.rebalance.enable": "false",  # leaders move when a test moves them
            "delete.topic.enable": "true",
            "log.segment.bytes": str(1024 * 1024),
            "num.network.threads": "2",
            "num.io.threads": "2",
            "num.replica.fetchers": "1",
            "num.recovery.threads.per.data.dir": "1",
        }
        if major_version(self.cluster.version) >= 4:
            lines["share.coordinator.state.topic.replication.factor"] = "3"
            lines["share.coordinator.state.topic.min.isr"] = "2"
        return "".join(f"{key}={value}\n" for key, value in lines.items())

    def start(self) -> None:
        """Start the JVM (formatting the storage the first time); does not wait until it serves."""
        if self.running:
            return
        java, lib_dir = self.cluster.java, self.cluster.lib_dir
        properties = write_private(self.workdir, "server.properties", self.properties())
        jvm_options = logging_jvm_options(self.cluster.version, self.workdir)
        with open(self.log_path, "ab") as out:
            if not os.path.isfile(os.path.join(self.workdir, "data", "meta.properties")):
                subprocess.run(
                    java_command(
                        java,
                        lib_dir,
                        jvm_options,
                        "kafka.tools.StorageTool",
                        "format",
                        "-t",
                        self.cluster.cluster_id,
                        "-c",
                        properties,
                        heap=HEAP,
                    ),
                    check=True,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=180,
                )
            command = java_command(java, lib_dir, jvm_options, "kafka.Kafka", properties, heap=HEAP)
            # Started from the cluster's own thread: a JVM dies with the thread that started it (see
            # terminate_with_parent), and a test may restart a node from a thread that ends before the cluster.
            self._process = self.cluster.spawner.submit(
                subprocess.Popen,
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                start_new_session=True,
                preexec_fn=terminate_with_parent,
            ).result()

    def stop(self) -> None:
        """SIGTERM: Kafka's controlled shutdown moves this node's leaders away first."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """kill -9: no shutdown at all, as when a machine dies."""
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            signal_group(process.pid, sig)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("Kafka node %d (pid %d) outlived signal %d; killing it", self.node_id, process.pid, sig)
                signal_group(process.pid, signal.SIGKILL)
                process.wait()
        self._process = None


class KafkaCluster:
    """SIZE KRaft nodes on loopback. ``start()`` waits until every broker is in the metadata."""

    def __init__(self, workdir: str | None = None, version: str | None = None, size: int = SIZE) -> None:
        self.version = version or os.environ.get("KAFKA_VERSION") or DEFAULT_VERSION
        self._owns_workdir = workdir is None
        self.workdir = os.path.abspath(workdir or tempfile.mkdtemp(prefix="pettwin-kafka-cluster-"))
        os.makedirs(self.workdir, exist_ok=True)
        self.cluster_id = new_cluster_id()
        self.java = java_executable()
        if self.java is None:
            raise RuntimeError("the Kafka cluster needs java 17+ on PATH (or JAVA_HOME) and mvn for its jars")
        self.lib_dir = resolve_jars(self.version)
        self.spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka-cluster-spawner")
        names = [f"{kind}-{node_id}" for node_id in range(1, size + 1) for kind in ("PLAINTEXT", "CONTROLLER")]
        ports = distinct_free_ports(names)
        self.nodes = [
            ClusterNode(self, node_id, {kind: ports[f"{kind}-{node_id}"] for kind in ("PLAINTEXT", "CONTROLLER")})
            for node_id in range(1, size + 1)
        ]
        self.bootstrap = ",".join(node.bootstrap for node in self.nodes)

    def node(self, node_id: int) -> ClusterNode:
        return self.nodes[node_id - 1]

    def start(self) -> Self:
        for node in self.nodes:
            node.start()
        try:
            self.wait_for_brokers({node.node_id for node in self.nodes})
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Every node at once: one by one, the last ones would wait for a controller quorum that has gone."""
        for node in self.nodes:
            if node.running:
                signal_group(node.pid, signal.SIGTERM)
        for node in self.nodes:
            node.stop()

    def close(self) -> None:
        """Kill every node (its data goes with the work directory) and remove what this cluster made."""
        for node in self.nodes:
            node.kill()
        self.spawner.shutdown()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def restart(self, node_id: int) -> None:
        """Start a stopped or killed node again and wait until it is back in the metadata and in every ISR."""
        self.node(node_id).start()
        self.wait_for_brokers({node.node_id for node in self.nodes if node.running})
        self.wait_until_in_sync()

    def admin(self):
        """An AdminClient that has learned the brokers: librdkafka drops its bootstrap connections once it knows
        them, failing a call in flight on one (_DESTROY_BROKER)."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "logger": _quiet_logger()})
        admin.list_topics(timeout=10)
        return admin

    def wait_for_brokers(self, node_ids: set[int], timeout: float = READY_TIMEOUT_S) -> None:
        """Until the metadata lists exactly `node_ids` as brokers (a fenced broker is not listed)."""
        from confluent_kafka import KafkaException

        admin = self.admin()
        deadline = time.monotonic() + timeout
        while True:
            for node in self.nodes:
                if node.pid is not None and not node.running:
                    raise RuntimeError(f"Kafka node {node.node_id} exited; see {node.log_path}")
            try:
                if set(admin.list_topics(timeout=5).brokers) == node_ids:
                    return
            except KafkaException:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"brokers {sorted(node_ids)} not all up after {timeout:.0f}s; see {self.workdir}")
            time.sleep(0.3)

    def wait_until_in_sync(self, timeout: float = 60.0) -> None:
        """Until every partition's ISR holds every running node (a restarted node has caught up)."""
        running = {node.node_id for node in self.nodes if node.running}
        admin = self.admin()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            topics = admin.list_topics(timeout=5).topics.values()
            if all(running <= set(p.isrs) for t in topics for p in t.partitions.values()):
                return
            time.sleep(0.3)
        raise TimeoutError(f"partitions not back in sync on {sorted(running)} after {timeout:.0f}s")

    def create_topic(self, topic: str, partitions: int, timeout: float = 60.0) -> None:
        """A topic replicated on every node, its leaders spread over them; asked again while librdkafka reports its
        own transient failures (a connection replaced under the call)."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import NewTopic

        deadline = time.monotonic() + timeout
        while True:
            admin = self.admin()
            future = admin.create_topics([NewTopic(topic, num_partitions=partitions)])[topic]
            try:
                future.result(timeout=30)
                break
            except KafkaException as e:
                if "TOPIC_ALREADY_EXISTS" in str(e):
                    break
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        while len([tp for tp, leader in self.leaders().items() if tp[0] == topic and leader >= 0]) < partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {topic} has no leaders after {timeout:.0f}s")
            time.sleep(0.2)

    def leaders(self) -> dict[tuple[str, int], int]:
        """Each partition's leader now (-1 while it has none)."""
        topics = self.admin().list_topics(timeout=10).topics
        return {(name, p.id): p.leader for name, t in topics.items() for p in t.partitions.values()}

    def elect_preferred_leaders(self, partitions: list[tuple[str, int]]) -> None:
        """A preferred-leader election (what kafka-leader-election --election-type PREFERRED asks): partitions led
        elsewhere than by their first replica move back to it."""
        from confluent_kafka import ElectionType, KafkaException, TopicPartition

        admin = self.admin()  # kept until the answer: a destroyed client fails its calls
        future = admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition(t, p) for t, p in partitions])
        try:
            future.result(timeout=30)
        except KafkaException as e:
            if "ELECTION_NOT_NEEDED" not in str(e):  # already led by the preferred replica
                raise

    def reassign(self, replicas: dict[tuple[str, int], list[int]], timeout: float = 120.0) -> None:
        """Kafka's kafka-reassign-partitions: each partition onto `replicas` (the first is its preferred leader),
        waiting until the reassignment completes."""
        plan = {
            "version": 1,
            "partitions": [{"topic": t, "partition": p, "replicas": r} for (t, p), r in replicas.items()],
        }
        path = write_private(self.workdir, "reassignment.json", json.dumps(plan))
        tool = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
        self.run_tool(tool, "--bootstrap-server", self.bootstrap, "--reassignment-json-file", path, "--execute")
        deadline = time.monotonic() + timeout
        while "still in progress" in self.run_tool(
            tool, "--bootstrap-server", self.bootstrap, "--reassignment-json-file", path, "--verify"
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reassignment not complete after {timeout:.0f}s")
            time.sleep(1)

    def run_tool(self, main_class: str, *args: str, timeout: float = 120.0) -> str:
        """One of Kafka's own command-line tools from the resolved jars; its output."""
        command = java_command(
            self.java, self.lib_dir, logging_jvm_options(self.version, self.workdir), main_class, *args, heap="256m"
        )
        return subprocess.run(command, check=True, capture_output=True, text=True, timeout=timeout).stdout

    def describe(self) -> dict:
        return {
            "version": self.version,
            "bootstrap": self.bootstrap,
            "nodes": {node.node_id: {"pid": node.pid, "log_path": node.log_path} for node in self.nodes},
            "workdir": self.workdir,
        }


def _quiet_logger() -> logging.Logger:
    quiet = logging.getLogger(f"{__name__}.admin")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    return quiet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pettwin_checks.devenv.kafka_cluster", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--version", help=f"Apache Kafka version (default: $KAFKA_VERSION or {DEFAULT_VERSION})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)

    cluster = KafkaCluster(version=args.version)
    return serve(cluster, lambda: all(node.running for node in cluster.nodes), cluster.workdir)


if __name__ == "__main__":
    sys.exit(main())
