"""All broker I/O of the Kafka lag check: Kafka protocol requests batched per broker, every wait bounded by the run's
deadline.

A run sends Metadata once, ListGroups once per broker, then per coordinator one DescribeGroups and one OffsetFetch
(v8+, KIP-709) for up to BATCH groups, and per partition leader one ListOffsets for up to BATCH partitions: the
number of requests follows the brokers and the batch caps, not the groups. Groups that were not listed get their
coordinator from FindCoordinator v4 (KIP-699), BATCH keys a request. Brokers older than 3.0 (their API versions
tell) get one OffsetFetch and one FindCoordinator per group. The requests are kafka-python's protocol classes, sent
over its connections; the I/O is served on the check's thread while it waits, so nothing runs between runs.
"""

from __future__ import annotations

import logging
import struct
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from typing import Any

import kafka.errors as Errors
from kafka.future import Future
from kafka.net.manager import KafkaConnectionManager
from kafka.net.selector import NetworkSelector
from kafka.protocol.admin import DescribeGroupsRequest, ListGroupsRequest
from kafka.protocol.consumer import ListOffsetsRequest, OffsetFetchRequest
from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment
from kafka.protocol.metadata import FindCoordinatorRequest, MetadataRequest, MetadataResponse

from .connection import KafkaConnection, kafka_python_config, tls_context
from .lag import ClusterSnapshot, GroupSnapshot
from .selection import Selection

GROUP_STATES = {"Stable", "PreparingRebalance", "CompletingRebalance", "Empty", "Dead"}

# Share of kafka_timeout the coordinator lookups, group descriptions and offset fetches may take; ListOffsets gets
# the rest.
GROUP_SHARE = 0.6
# A connection silent this long is closed by kafka-python, failing its requests. The run's deadline is kept by how
# long the check waits; a run that leaves a request unanswered closes every connection anyway (see snapshot).
REQUEST_TIMEOUT = 60.0
# Requests of this client in flight on one broker connection at most; more wait in the client's queue. A run sends a
# few requests a broker, but one per group to brokers older than 3.0: with thousands pipelined, a connection to a
# Kafka 3.9 broker stopped answering altogether in 9 of 30 runs (measured with librdkafka), never with a cap of 100.
MAX_IN_FLIGHT = 100
# Groups (per coordinator) or partitions (per leader) in one request. A batch's answers are the run's largest
# allocation and the process keeps the memory they took, so one round of batches is applied and dropped before the
# next is asked.
BATCH = 500
# FindCoordinator answers these while the broker creates or loads the offsets topic: asked again after LOOKUP_RETRY.
COORDINATOR_NOT_READY = {Errors.CoordinatorNotAvailableError.errno, Errors.CoordinatorLoadInProgressError.errno}
LOOKUP_RETRY = 0.1

# kafka-python logs every connection attempt and, at debug, every request (a SASL request holds the password). Its
# lines above debug go to this module's debug log, so a dead broker costs one clear line per run (the check's).
log = logging.getLogger(__name__)


class _ToDebug(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("kafka-python %s: %s", record.levelname.lower(), record.getMessage())


_library_log = logging.getLogger("kafka")
_library_log.setLevel(logging.INFO)  # never DEBUG: request dumps would show SASL credentials
_library_log.propagate = False
if not any(isinstance(handler, _ToDebug) for handler in _library_log.handlers):
    _library_log.addHandler(_ToDebug())


def batches(items: list) -> list[list]:
    """`items` in batches of BATCH, in order."""
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


class BrokerUnavailable(Exception):
    """The cluster could not be asked at all this run; the message says what failed and what to check."""


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.expires = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.expires - time.monotonic())


def reason(future: Future) -> str:
    """Why a request got no answer to use, for a warning."""
    return "timed out" if not future.is_done else str(future.exception)


class KafkaClient:
    def __init__(self, connection: KafkaConnection, timeout: float, log: logging.Logger) -> None:
        self._connection = connection
        self._timeout = timeout
        self._log = log
        self._settings: dict[str, Any] = {
            **kafka_python_config(connection),
            "request_timeout_ms": int(REQUEST_TIMEOUT * 1000),
            "socket_connection_setup_timeout_ms": int(timeout * 1000),
            "socket_connection_setup_timeout_max_ms": int(timeout * 1000),
            # kafka-python's own cap fails requests past it; the client's queue keeps below it (see _pump)
            "max_in_flight_requests_per_connection": MAX_IN_FLIGHT + 1,
            "reconnect_backoff_max_ms": 2000,
            "metadata_max_age_ms": 2**31 - 1,  # the client asks for the metadata itself, once a run
        }
        self._net: NetworkSelector | None = None
        self._manager: KafkaConnectionManager | None = None
        self._queues: dict[Any, deque] = defaultdict(deque)  # requests waiting for room in flight, by node
        self._in_flight: Counter = Counter()
        self._pumping: set = set()
        self._unanswered = False  # a request of this run got no answer in time
        self._authenticated = False  # a request got an answer on these connections: the credentials work
        # Each topic's partitions as (topic, partition) tuples, the same objects run after run: every committed
        # offset, assignment and high watermark is keyed by one of them instead of a tuple and a topic name of its
        # own (about 100,000 objects a run at 2,000 groups, most of what a run allocated).
        self._partitions: dict[str, tuple[tuple[str, int], ...]] = {}
        self._leaders: dict[str, list[int]] = {}  # each topic's partition leaders, by partition, from the metadata
        # Requests asked for, by Kafka API (the benchmark counts what reaches the wire separately).
        self.requests: Counter[str] = Counter()

    def _connections(self) -> KafkaConnectionManager:
        # Made on first use, so the check starts while the broker is down, then reused for every run.
        if self._manager is None:
            try:
                context = tls_context(self._connection)
            except OSError as e:
                raise BrokerUnavailable(
                    f"cannot load the TLS files ({e}): check tls_ca_cert, tls_cert, tls_private_key and "
                    "tls_private_key_password"
                ) from None
            self._net = NetworkSelector(slow_task_threshold_secs=0)
            self._manager = KafkaConnectionManager(self._net, **self._settings, ssl_context=context)
        return self._manager

    def close(self) -> None:
        """Close every connection; requests still in flight fail at once, so no answer outlives the client."""
        if self._manager is not None:
            self._manager.close()
            self._net.poll(timeout_ms=0)
            self._net.close()
        self._manager = self._net = None
        self._authenticated = False
        self._queues.clear()
        self._in_flight.clear()

    def snapshot(self, selection: Selection) -> tuple[ClusterSnapshot, dict[str, set[str]]]:
        """`_snapshot`, with fresh connections next run when the cluster could not be asked or a request went
        unanswered: a silent connection is dropped with what it holds. A broker that answers with an error (say, not
        authorised for one group) keeps its connection."""
        self._unanswered = False
        try:
            result = self._snapshot(selection)
        except BrokerUnavailable:
            self.close()
            raise
        if self._unanswered:
            self.close()
        return result

    def _snapshot(self, selection: Selection) -> tuple[ClusterSnapshot, dict[str, set[str]]]:
        """One consistent view of the watched groups; also the deleted topics each group still references.

        Committed offsets are fetched before the high watermarks, so lag can be overstated by what was produced in
        between but never understated.
        """
        deadline = Deadline(self._timeout)
        cluster_id = self._metadata(deadline)
        coordinators: dict[str, Any] = {}
        if selection.needs_group_listing:
            coordinators = self._list_groups(deadline)
        groups = self._groups(selection.group_ids(list(coordinators)), coordinators, deadline)

        deleted: dict[str, set[str]] = {}
        for group in groups.values():
            group.partitions, gone = selection.resolve_partitions(group, self._partitions)
            if gone:
                deleted[group.group_id] = gone
        wanted = sorted({tp for group in groups.values() for tp in group.partitions})
        high_watermarks, hw_errors = self._high_watermarks(wanted, deadline)
        return ClusterSnapshot(cluster_id, high_watermarks, hw_errors, list(groups.values())), deleted

    # -- sending and waiting ---------------------------------------------------------------------------------------

    def _send(self, node_id: Any, request) -> Future:
        """Queue `request` for a broker; it goes on the wire while fewer than MAX_IN_FLIGHT of ours are there."""
        self.requests[type(request).__name__.removesuffix("Request")] += 1
        answer = Future()
        self._queues[node_id].append((request, answer))
        self._pump(node_id)
        return answer

    def _pump(self, node_id: Any) -> None:
        if node_id in self._pumping:  # an answer that came at once, inside the loop below: the loop goes on
            return
        self._pumping.add(node_id)
        try:
            queue = self._queues[node_id]
            while queue and self._in_flight[node_id] < MAX_IN_FLIGHT:
                request, answer = queue.popleft()
                try:
                    connection = self._connections().get_connection(node_id, refresh_metadata_on_err=False)
                except Errors.KafkaError as e:  # in reconnect backoff, unknown broker, or a failed authentication
                    answer.failure(e)
                    continue
                self._in_flight[node_id] += 1
                connection.send_request(request).add_both(self._answered, node_id, connection, answer)
        finally:
            self._pumping.discard(node_id)

    def _answered(self, node_id: Any, connection, answer: Future, value: Any) -> None:
        self._in_flight[node_id] -= 1
        if not isinstance(value, BaseException):
            self._authenticated = True
            answer.success(value)
        elif self._closed_during_sasl(connection):
            answer.failure(
                Errors.SaslAuthenticationFailedError(f"connection closed during SASL authentication ({value})")
            )
        else:
            answer.failure(value)
        self._pump(node_id)

    def _closed_during_sasl(self, connection) -> bool:
        """Whether a connection that never got ready failed after the broker answered ApiVersions, in the SASL
        exchange, while no connection has authenticated yet: the broker closes it on wrong credentials, and its
        error answer can be lost with the close (kafka-python drops data read together with the end of stream)."""
        return (
            connection.sasl_enabled
            and not self._authenticated
            and connection.init_future.failed()
            and connection.broker_version_data is not None
        )

    def _wait(self, futures: Iterable[Future], deadline: Deadline) -> list[Future]:
        """Serve the connections until every future is done or the deadline has passed; the ones not done."""
        pending = [future for future in futures if not future.is_done]
        while pending and deadline.remaining() > 0:
            self._net.poll(timeout_ms=deadline.remaining() * 1000, future=pending[0])
            pending = [future for future in pending if not future.is_done]
        if pending:
            self._unanswered = True
        return pending

    def _in_rounds(self, items_by_node: dict[Any, list], ask: Callable, deadline: Deadline) -> None:
        """Ask each broker for its items, BATCH at a time, all brokers at once. `ask(node, batch)` sends the requests
        and returns them as (future, apply) pairs; `apply(future)` copies the answer, or the failure, where it belongs.

        Round k asks for every broker's k-th batch and waits its even share of what is left of `deadline`, so a broker
        that does not answer delays the others by at most that share; what is still unanswered gets the rest at the
        end. A round's answers are applied and dropped before the next round is asked.
        """
        chunks = {node: batches(items) for node, items in items_by_node.items()}
        rounds = max((len(node_chunks) for node_chunks in chunks.values()), default=0)
        unanswered: list[tuple[Future, Callable]] = []
        for number in range(rounds):
            asked = [
                pair
                for node, node_chunks in chunks.items()
                if number < len(node_chunks)
                for pair in ask(node, node_chunks[number])
            ]
            share = Deadline(deadline.remaining() / (rounds - number))
            pending = set(self._wait([future for future, _ in asked], share))
            for future, apply in asked:
                if future in pending:
                    unanswered.append((future, apply))
                else:
                    apply(future)
            del asked, pending  # before the next round is asked: one round of answers alive at a time
        if unanswered:
            self._wait([future for future, _ in unanswered], deadline)
            for future, apply in unanswered:
                apply(future)

    # -- the cluster ------------------------------------------------------------------------------------------------

    def _metadata(self, deadline: Deadline) -> str | None:
        """The cluster id; updates the brokers, each topic's partitions and their leaders. Asked of a broker already
        connected, else of the bootstrap servers in turn. The full metadata (an object per partition) is dropped."""
        manager = self._connections()
        cluster = manager.cluster
        candidates = [broker.node_id for broker in cluster.bootstrap_brokers()]
        if cluster.brokers() and manager.least_loaded_node() is not None:
            candidates.insert(0, manager.least_loaded_node())
        request = MetadataRequest(
            topics=MetadataRequest.ALL_TOPICS,
            allow_auto_topic_creation=False,
            include_cluster_authorized_operations=False,
            include_topic_authorized_operations=False,
        )
        errors: list[BaseException] = []
        response = None
        for node_id in candidates:
            answer = self._send(node_id, request)
            self._wait([answer], deadline)
            if answer.succeeded():
                response = answer.value
                break
            if not answer.is_done:  # the deadline has passed
                break
            errors.append(answer.exception)
        if response is None:
            raise BrokerUnavailable(explain_failure(errors, self._connection.kafka_connect_str, self._timeout))
        # The connection manager only needs the brokers' addresses.
        cluster.update_metadata(
            MetadataResponse(
                version=response.API_VERSION,
                brokers=response.brokers,
                cluster_id=response.cluster_id,
                controller_id=response.controller_id,
                topics=[],
            )
        )
        known_partitions, self._partitions, self._leaders = self._partitions, {}, {}
        for topic in response.topics:
            if topic.error_code:
                continue
            count = len(topic.partitions)
            partitions = known_partitions.get(topic.name)
            if partitions is None or len(partitions) != count:
                partitions = tuple((topic.name, p) for p in range(count))
            self._partitions[topic.name] = partitions
            leaders = [-1] * count
            for partition in topic.partitions:
                if 0 <= partition.partition_index < count and not partition.error_code:
                    leaders[partition.partition_index] = partition.leader_id
            self._leaders[topic.name] = leaders
        return response.cluster_id

    def _partition(self, topic: str, partition: int) -> tuple[str, int]:
        """The shared tuple of a partition the metadata listed, else a new one (a topic deleted or grown since)."""
        partitions = self._partitions.get(topic)
        if partitions is not None and 0 <= partition < len(partitions):
            return partitions[partition]
        return (topic, partition)

    def _list_groups(self, deadline: Deadline) -> dict[str, Any]:
        """Every group, with its coordinator: the broker that lists a group coordinates it."""
        asked = {
            broker.node_id: self._send(broker.node_id, ListGroupsRequest())
            for broker in self._manager.cluster.brokers()
        }
        self._wait(asked.values(), deadline)
        coordinators: dict[str, Any] = {}
        failures: list[str] = []
        errors: list[BaseException] = []
        for node_id, answer in asked.items():
            if not answer.succeeded():
                failures.append(reason(answer))
                errors += [answer.exception] if answer.failed() else []
            elif answer.value.error_code:
                failures.append(Errors.for_code(answer.value.error_code).__name__)
            else:
                for group in answer.value.groups:
                    coordinators[group.group_id] = node_id
        if failures and len(failures) == len(asked):
            raise BrokerUnavailable(explain_failure(errors, self._connection.kafka_connect_str, self._timeout))
        if failures:
            self._log.warning(
                "Listing groups failed on %d of %d brokers (%s): their groups are missing this run",
                len(failures),
                len(asked),
                failures[0],
            )
        return coordinators

    def _api_version(self, request_class) -> int:
        return self._manager.broker_version_data.api_version(request_class)

    # -- groups -----------------------------------------------------------------------------------------------------

    def _groups(
        self, group_ids: list[str], coordinators: dict[str, Any], deadline: Deadline
    ) -> dict[str, GroupSnapshot]:
        """State, members and committed offsets of each group; a group whose answers do not come keeps its error."""
        groups = {group_id: GroupSnapshot(group_id) for group_id in group_ids}
        # A slow coordinator may hold its groups' answers; stop waiting early enough that the high watermarks
        # of every other group still fit in the run, so it costs only its own groups.
        share = Deadline(min(deadline.remaining(), GROUP_SHARE * self._timeout))
        unknown = [group_id for group_id in group_ids if group_id not in coordinators]
        if unknown:
            coordinators = {**coordinators, **self._find_coordinators(unknown, groups, share)}
        by_coordinator: dict[Any, list[str]] = defaultdict(list)
        for group_id in group_ids:
            if group_id in coordinators:
                by_coordinator[coordinators[group_id]].append(group_id)
        many_per_fetch = self._api_version(OffsetFetchRequest) >= 8

        def ask(node_id: Any, batch: list[str]) -> list[tuple[Future, Callable]]:
            described = self._send(node_id, DescribeGroupsRequest(groups=batch, include_authorized_operations=False))
            asked = [(described, lambda future: self._apply_descriptions(groups, batch, future))]
            if many_per_fetch:
                Group = OffsetFetchRequest.OffsetFetchRequestGroup
                request = OffsetFetchRequest(
                    groups=[Group(group_id=g, topics=None) for g in batch], require_stable=False, min_version=8
                )
                fetches = [(request, batch)]
            else:  # brokers before 3.0: one group a request
                fetches = [
                    (OffsetFetchRequest(group_id=g, topics=None, min_version=2, max_version=7), [g]) for g in batch
                ]
            for request, fetched in fetches:
                future = self._send(node_id, request)
                asked.append((future, lambda future, fetched=fetched: self._apply_offsets(groups, fetched, future)))
            return asked

        self._in_rounds(by_coordinator, ask, share)
        return groups

    def _find_coordinators(self, group_ids: list[str], groups: dict[str, GroupSnapshot], deadline: Deadline) -> dict:
        """The coordinator of each group that was not listed; a group whose lookup fails gets the error. A broker
        that has no coordinator ready yet (the offsets topic being created or loaded) is asked again shortly."""
        coordinators: dict[str, Any] = {}
        while group_ids:
            retry = []
            for key, answer in self._lookups(group_ids, deadline):
                if isinstance(answer, str):
                    groups[key].error = f"coordinator lookup failed: {answer}"
                elif answer.error_code in COORDINATOR_NOT_READY and deadline.remaining() > LOOKUP_RETRY:
                    retry.append(key)
                elif answer.error_code:
                    groups[key].error = f"coordinator lookup failed: {Errors.for_code(answer.error_code).__name__}"
                else:
                    coordinators[key] = answer.node_id
            if retry:
                self._net.poll(timeout_ms=LOOKUP_RETRY * 1000)
            group_ids = retry
        return coordinators

    def _lookups(self, group_ids: list[str], deadline: Deadline) -> list[tuple[str, Any]]:
        """(group, FindCoordinator answer, or why there is none) for each group."""
        node_id = self._manager.least_loaded_node()
        if self._api_version(FindCoordinatorRequest) >= 4:
            requests = [
                (FindCoordinatorRequest(key_type=0, coordinator_keys=b, min_version=4), b) for b in batches(group_ids)
            ]
        else:  # brokers before 3.0: one key a request
            requests = [(FindCoordinatorRequest(key=g, key_type=0, max_version=3), [g]) for g in group_ids]
        asked = [(self._send(node_id, request), keys) for request, keys in requests]
        self._wait([future for future, _ in asked], deadline)
        answers: list[tuple[str, Any]] = []
        for future, keys in asked:
            if not future.succeeded():
                answers += [(key, reason(future)) for key in keys]
            elif future.value.API_VERSION >= 4:
                answers += [(answer.key, answer) for answer in future.value.coordinators if answer.key in keys]
            else:
                answers.append((keys[0], future.value))
        return answers

    def _apply_descriptions(self, groups: dict[str, GroupSnapshot], batch: list[str], future: Future) -> None:
        if not future.succeeded():
            # Lag can still be computed from the committed offsets; only state and members are unknown.
            self._log.debug("describe of %d groups failed: %s", len(batch), reason(future))
            return
        for described in future.value.groups:
            group = groups.get(described.group_id)
            if group is None:
                continue
            if described.error_code:
                error = Errors.for_code(described.error_code).__name__
                self._log.debug("describe of group %s failed: %s", group.group_id, error)
                continue
            group.state = described.group_state if described.group_state in GROUP_STATES else "Unknown"
            group.members = len(described.members)
            if described.protocol_type == "consumer":
                group.assigned = {
                    self._partition(assigned.topic, p)
                    for member in described.members
                    for assigned in _assignment(member.member_assignment)
                    for p in assigned.partitions
                }

    def _apply_offsets(self, groups: dict[str, GroupSnapshot], batch: list[str], future: Future) -> None:
        if not future.succeeded():
            for group_id in batch:
                groups[group_id].error = f"offset fetch failed: {reason(future)}"
            return
        response = future.value
        answers = response.groups if response.API_VERSION >= 8 else [response]
        for group_id, answer in (
            ((a.group_id, a) for a in answers) if response.API_VERSION >= 8 else zip(batch, answers)
        ):
            group = groups.get(group_id)
            if group is None:
                continue
            if answer.error_code:
                group.error = f"offset fetch failed: {Errors.for_code(answer.error_code).__name__}"
                continue
            group.committed = {
                self._partition(topic.name, p.partition_index): p.committed_offset
                for topic in answer.topics
                for p in topic.partitions
                if not p.error_code and p.committed_offset >= 0
            }

    # -- high watermarks --------------------------------------------------------------------------------------------

    def _high_watermarks(self, partitions: list[tuple[str, int]], deadline: Deadline):
        high_watermarks: dict[tuple[str, int], int] = {}
        errors: dict[tuple[str, int], str] = {}
        by_leader: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for tp in partitions:
            leaders = self._leaders.get(tp[0])
            leader = leaders[tp[1]] if leaders is not None and tp[1] < len(leaders) else -1
            if leader < 0:
                errors[tp] = "no leader" if leaders is not None else "unknown topic"
            else:
                by_leader[leader].append(tp)
        Topic = ListOffsetsRequest.ListOffsetsTopic
        Partition = Topic.ListOffsetsPartition

        def keep(batch: list[tuple[str, int]], future: Future) -> None:
            if not future.succeeded():
                failure = reason(future)
                for tp in batch:
                    errors[tp] = failure
                return
            for topic in future.value.topics:
                for p in topic.partitions:
                    tp = self._partition(topic.name, p.partition_index)
                    if p.error_code:
                        errors[tp] = Errors.for_code(p.error_code).__name__
                    else:
                        high_watermarks[tp] = p.offset

        def ask(node_id: int, batch: list[tuple[str, int]]) -> list[tuple[Future, Callable]]:
            by_topic: dict[str, list] = defaultdict(list)
            for topic, p in batch:
                by_topic[topic].append(Partition(partition_index=p, current_leader_epoch=-1, timestamp=-1))
            request = ListOffsetsRequest(
                replica_id=-1,
                isolation_level=0,
                topics=[Topic(name=topic, partitions=asked) for topic, asked in by_topic.items()],
                min_version=1,
            )
            return [(self._send(node_id, request), lambda future: keep(batch, future))]

        self._in_rounds(by_leader, ask, deadline)
        return high_watermarks, errors


def _assignment(data: bytes) -> list:
    """A member's assigned topic partitions from its consumer-protocol assignment; none if it cannot be read."""
    if not data:
        return []
    try:
        return ConsumerProtocolAssignment.decode(data).assigned_partitions
    except (struct.error, ValueError, IndexError, UnicodeDecodeError):  # another protocol's bytes, or truncated
        return []


def explain_failure(errors: list[BaseException], bootstrap: str, timeout: float) -> str:
    """What failed and what to check, from the connection or request errors of the run."""
    text = " ".join(f"{type(e).__name__} {e}" for e in errors).lower()
    if "sasl" in text or "authentic" in text:
        return (
            f"authentication failed against {bootstrap}: check sasl_mechanism, sasl_plain_username and "
            "sasl_plain_password (for Confluent Cloud: an API key and secret of this cluster)"
        )
    if "ssl" in text or "certificate" in text or "handshake" in text or "tls" in text:
        return (
            f"TLS handshake failed with {bootstrap}: check security_protocol, tls_ca_cert (the CA that signed the "
            "broker certificate), tls_cert/tls_private_key for mutual TLS, and tls_verify"
        )
    if "dns" in text or "resolv" in text or "name or service not known" in text:
        return f"cannot resolve {bootstrap}: check kafka_connect_str and DNS from the agent's host"
    if "refused" in text or "unable to connect" in text or "connection" in text or "disconnected" in text:
        return (
            f"cannot connect to {bootstrap}: check kafka_connect_str, that the brokers are up, and that the "
            "agent's network can reach their listeners"
        )
    return (
        f"no answer from {bootstrap} within kafka_timeout ({timeout:g}s): check that the brokers are up and "
        "reachable, and raise kafka_timeout for a slow cluster"
    )
