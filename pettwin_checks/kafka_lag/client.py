"""All broker I/O of the Kafka lag check: one admin client, batched calls, every wait bounded by the run's deadline."""

from __future__ import annotations

import logging
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, wait
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from pettwin_checks.coordination import DebugLogger

from .lag import ClusterSnapshot, GroupSnapshot
from .selection import Selection

GROUP_STATE_NAMES = {
    "STABLE": "Stable",
    "PREPARING_REBALANCING": "PreparingRebalance",
    "COMPLETING_REBALANCING": "CompletingRebalance",
    "EMPTY": "Empty",
    "DEAD": "Dead",
}


# Share of kafka_timeout the group descriptions and offset fetches may take; ListOffsets gets the rest.
GROUP_SHARE = 0.6
# librdkafka's own admin request timeout must never fire: an answer that arrives after it has fired aborts the whole
# process (assertion in rd_kafka_enq_once_del_source_return; reproduced with confluent-kafka 2.11.1 to 2.16.1 by
# pausing the broker). So no answer can outlive REQUEST_TIMEOUT: a connection silent for SOCKET_TIMEOUT fails its
# requests first. The run's deadline is kept by how long the check waits.
SOCKET_TIMEOUT = 60.0
REQUEST_TIMEOUT = 300.0
# Requests in flight on one broker connection at most (librdkafka's default is a million). With thousands pipelined
# (a run at 2,000 groups sends about 12,000), a connection to a Kafka 3.9 broker stopped answering altogether in 9 of
# 30 runs, while the broker served other clients; not once in 60 runs with a cap of 100, nor in 30 with 1,000. A
# broker serves one connection's requests one at a time, so the cap does not slow a run (median 2.5 s either way).
MAX_IN_FLIGHT = 100
# Groups or partitions asked for in one batch of admin calls (see KafkaClient._in_batches). A batch's answers are
# the run's largest allocation, and the process keeps the memory they took: at 1,000 about 8 MB for the groups, and
# 5 MiB more RSS after 60 runs at 2,000 groups than at 500. Runs were as fast, against the floor, at 250, 500, 1,000.
BATCH = 500


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


class KafkaClient:
    def __init__(self, librdkafka_config: dict[str, Any], timeout: float, log: logging.Logger) -> None:
        self._config = dict(librdkafka_config)
        self._timeout = timeout
        self._log = log
        self._admin: AdminClient | None = None
        self._errors: list[KafkaError] = []
        self._calls: list[Future] = []  # this run's unanswered calls, kept with the client if it is replaced
        self._retired: list[tuple[AdminClient, list[Future]]] = []  # replaced clients whose calls may still run
        # Each topic's partitions as (topic, partition) tuples, the same objects run after run: every committed
        # offset, assignment and high watermark is keyed by one of them instead of a tuple and a topic name of its
        # own (about 100,000 objects a run at 2,000 groups, most of what a run allocated).
        self._partitions: dict[str, tuple[tuple[str, int], ...]] = {}
        # Admin requests issued, by Kafka API, for the benchmark (librdkafka may fan a call out per broker).
        self.requests: Counter[str] = Counter()
        self._logger = ConnectionLog(log)
        self._reader: Consumer | None = None  # reads record timestamps (record_times); made on first use

    def _client(self) -> AdminClient:
        # Created on first use, so the check starts while the broker is down, then reused for every run.
        if self._admin is None:
            config = {
                **self._config,
                "error_cb": self._errors.append,
                "logger": self._logger,
                "socket.connection.setup.timeout.ms": int(self._timeout * 1000),
                "socket.timeout.ms": int(SOCKET_TIMEOUT * 1000),
                "max.in.flight.requests.per.connection": MAX_IN_FLIGHT,
                "reconnect.backoff.max.ms": 2000,
            }
            self._admin = AdminClient(config)
        return self._admin

    def close(self) -> None:
        self._admin = None
        self._calls, self._retired = [], []
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _replace(self) -> None:
        """A fresh admin client from the next call on. The old one is kept until the calls it still has in flight
        have ended (by SOCKET_TIMEOUT at the latest): librdkafka never frees a request whose client is destroyed
        under it, a few KiB each, so dropping it at once would leak memory at every replacement."""
        if self._admin is not None:
            self._retired.append((self._admin, [call for call in self._calls if not call.done()]))
        self._admin = None

    def snapshot(self, selection: Selection) -> tuple[ClusterSnapshot, dict[str, set[str]]]:
        """`_snapshot`, with a fresh admin client next run when any call went unanswered: librdkafka can keep a dead
        or wedged connection long after the broker is fine again, and a new client is answered at once. A broker that
        answers with an error (say, not authorised for one group) keeps the client and its connections."""
        self._retired = [(admin, calls) for admin, calls in self._retired if not all(f.done() for f in calls)]
        self._calls = []
        try:
            result = self._snapshot(selection)
        except BrokerUnavailable:
            self._replace()
            raise
        if any(not call.done() for call in self._calls):
            self._replace()
        self._calls = []
        return result

    def _snapshot(self, selection: Selection) -> tuple[ClusterSnapshot, dict[str, set[str]]]:
        """One consistent view of the watched groups; also the deleted topics each group still references.

        Committed offsets are fetched before the high watermarks, so lag can be overstated by what was produced in
        between but never understated.
        """
        deadline = Deadline(self._timeout)
        self._errors.clear()
        self._logger.clear()
        admin = self._client()

        cluster_id = self._topics(admin, deadline)

        listed: list[str] = []
        if selection.needs_group_listing:
            listing = admin.list_consumer_groups(request_timeout=REQUEST_TIMEOUT)
            self.requests["ListGroups"] += 1
            listed = [g.group_id for g in self._result(listing, deadline).valid]
        groups = self._groups(admin, selection.group_ids(listed), deadline)

        deleted: dict[str, set[str]] = {}
        for group in groups.values():
            group.partitions, gone = selection.resolve_partitions(group, self._partitions)
            if gone:
                deleted[group.group_id] = gone
        wanted = sorted({tp for group in groups.values() for tp in group.partitions})
        high_watermarks, hw_errors = self._high_watermarks(admin, wanted, deadline)
        return ClusterSnapshot(cluster_id, high_watermarks, hw_errors, list(groups.values())), deleted

    def _topics(self, admin: AdminClient, deadline: Deadline) -> str | None:
        """The cluster id; updates each topic's partitions. The full metadata (an object per partition) is dropped."""
        self.requests["Metadata"] += 1
        try:
            metadata = admin.list_topics(timeout=max(deadline.remaining(), 0.001))
        except KafkaException as e:
            raise BrokerUnavailable(self._explain(e.args[0] if e.args else None)) from None
        known = self._partitions
        self._partitions = {}
        for name, topic in metadata.topics.items():
            if topic.error is None:
                partitions = known.get(name)
                if partitions is None or len(partitions) != len(topic.partitions):
                    partitions = tuple((name, p) for p in range(len(topic.partitions)))
                self._partitions[name] = partitions
        return metadata.cluster_id

    def _partition(self, topic: str, partition: int) -> tuple[str, int]:
        """The shared tuple of a partition the metadata listed, else a new one (a topic deleted or grown since)."""
        partitions = self._partitions.get(topic)
        if partitions is not None and 0 <= partition < len(partitions):
            return partitions[partition]
        return (topic, partition)

    def _groups(self, admin: AdminClient, group_ids: list[str], deadline: Deadline) -> dict[str, GroupSnapshot]:
        """State, members and committed offsets of each group; a group whose answers do not come keeps its error."""
        groups = {group_id: GroupSnapshot(group_id) for group_id in group_ids}

        def describe(group_id: str, future: Future) -> None:
            self._apply_description(groups[group_id], future)

        def offsets(group_id: str, future: Future) -> None:
            self._apply_offsets(groups[group_id], future)

        def ask(batch: list[str]) -> list[tuple[dict[str, Future], Callable[[str, Future], None]]]:
            described = admin.describe_consumer_groups(batch, request_timeout=REQUEST_TIMEOUT)
            # librdkafka's ListConsumerGroupOffsets takes one group a call: one request each, all in flight at once.
            fetched = {
                group_id: future
                for group_id in batch
                for future in admin.list_consumer_group_offsets(
                    [ConsumerGroupTopicPartitions(group_id)], request_timeout=REQUEST_TIMEOUT
                ).values()
            }
            self.requests["DescribeGroups"] += 1
            self.requests["OffsetFetch"] += len(fetched)
            return [(described, describe), (fetched, offsets)]

        # A slow coordinator may hold its groups' answers; stop waiting early enough that the high watermarks
        # of every other group still fit in the run, so it costs only its own groups.
        self._in_batches(group_ids, ask, Deadline(min(deadline.remaining(), GROUP_SHARE * self._timeout)))
        return groups

    def _high_watermarks(self, admin: AdminClient, partitions: list[tuple[str, int]], deadline: Deadline):
        high_watermarks: dict[tuple[str, int], int] = {}
        errors: dict[tuple[str, int], str] = {}
        latest = OffsetSpec.latest()

        def keep(tp: tuple[str, int], future: Future) -> None:
            try:
                high_watermarks[tp] = future.result(timeout=0).offset
            except (KafkaException, FutureTimeout) as e:
                errors[tp] = self._short(e)

        def ask(batch: list[tuple[str, int]]) -> list[tuple[dict[tuple[str, int], Future], Callable]]:
            request = {TopicPartition(t, p): latest for t, p in batch}
            futures = admin.list_offsets(
                request, isolation_level=IsolationLevel.READ_UNCOMMITTED, request_timeout=REQUEST_TIMEOUT
            )
            self.requests["ListOffsets"] += 1
            return [({tp: futures[asked] for tp, asked in zip(batch, request)}, keep)]

        self._in_batches(partitions, ask, deadline)
        return high_watermarks, errors

    def _in_batches(self, items: list, ask: Callable[[list], list], deadline: Deadline) -> None:
        """Ask for `items` BATCH at a time. `ask(batch)` issues the calls and returns them as (futures by key, apply)
        pairs, and `apply(key, future)` copies an answer, or its failure, where it belongs.

        Answers become Python objects of 1-2 KiB each; asked for all at once at 10,000 partitions they took tens of
        MB every run, and the pools they fragmented stayed with the process. A batch waits for its even share of what
        is left of `deadline`, then the next is asked, so a broker that does not answer delays the others by at most
        that share; what is still unanswered gets the rest of the deadline at the end, and is kept in `_calls` (a
        replaced client waits for it). Nothing is made per answer here: this runs for every partition each run.
        """
        in_batches = batches(items)
        unanswered: list[tuple[Callable, Any, Future]] = []
        for number, batch in enumerate(in_batches):
            asked = ask(batch)
            share = Deadline(deadline.remaining() / (len(in_batches) - number))
            pending = self._wait([future for futures, _ in asked for future in futures.values()], share)
            for futures, apply in asked:
                for key, future in futures.items():
                    if future in pending:
                        unanswered.append((apply, key, future))
                    else:
                        apply(key, future)
            self._calls += pending
            del asked, pending  # before the next batch is asked: one batch of answers alive at a time, not two
        if unanswered:
            self._wait([future for _, _, future in unanswered], deadline)
            for apply, key, future in unanswered:
                apply(key, future)

    def record_times(
        self, wanted: list[tuple[tuple[str, int], int]], deadline: float
    ) -> dict[tuple[tuple[str, int], int], int | None]:
        """For each (partition, committed offset): the timestamp (ms since the epoch) of the first record a
        read_committed consumer gets from that offset, or None when there is none before the end (only transaction
        markers or aborted data left). A key left out could not be read by `deadline` (a time.monotonic() instant)
        or at all (e.g. the offset was deleted by retention). Never raises.

        One consumer, kept across runs, assigned at the offsets: librdkafka fetches every partition of a leader in
        one request. No group is joined and nothing is committed. A partition wanted at several offsets (groups
        at different places) is read at the lowest first, then sought to the next.
        """
        times: dict[tuple[tuple[str, int], int], int | None] = {}
        by_partition: dict[tuple[str, int], list[int]] = {}
        for tp, offset in sorted(wanted):
            by_partition.setdefault(tp, []).append(offset)
        partitions = list(by_partition)
        try:
            reader = self._record_reader()
            chunks = batches(partitions)
            for number, chunk in enumerate(chunks):
                share = (deadline - time.monotonic()) / (len(chunks) - number)  # an even share of what is left
                if share <= 0:
                    break
                self._read_first_records(reader, {tp: by_partition[tp] for tp in chunk}, times, share)
        except KafkaException as e:
            self._log.debug("reading record timestamps failed: %s", self._short(e))
        return times

    def _record_reader(self) -> Consumer:
        if self._reader is None:
            self._reader = Consumer(
                {
                    **self._config,
                    # Required by the consumer; never joined (assign, not subscribe) and never committed to.
                    "group.id": "pettwin-checks.record-times",
                    "enable.auto.commit": False,
                    "enable.auto.offset.store": False,
                    "isolation.level": "read_committed",
                    "enable.partition.eof": True,  # "nothing before the end" is an answer too
                    "auto.offset.reset": "error",  # an offset deleted by retention is unreadable, not another
                    # Only the first record of each partition is wanted: small fetches, little prefetched.
                    "fetch.message.max.bytes": 65536,
                    "fetch.max.bytes": 1048576,
                    "queued.max.messages.kbytes": 4096,
                    # The broker answers a fetch at the end of a partition at once, not after 500 ms (the default
                    # wait for more data): "nothing left to read" is the answer wanted there.
                    "fetch.wait.max.ms": 10,
                    "fetch.error.backoff.ms": 50,
                    "error_cb": lambda error: self._log.debug("record reader: %s", error),
                    "logger": DebugLogger(self._log),
                    "socket.connection.setup.timeout.ms": int(self._timeout * 1000),
                }
            )
        return self._reader

    def _read_first_records(
        self, reader: Consumer, offsets: dict[tuple[str, int], list[int]], times: dict, seconds: float
    ) -> None:
        """Reads until every partition of `offsets` (ascending offsets each) is answered or `seconds` passed."""
        expires = time.monotonic() + seconds
        pending = {tp: list(wanted) for tp, wanted in offsets.items()}
        assigned = [TopicPartition(t, p, wanted[0]) for (t, p), wanted in pending.items()]
        reader.assign(assigned)
        reader.resume(assigned)  # librdkafka keeps a partition paused across assignments (paused when answered)
        try:
            while pending and (remaining := expires - time.monotonic()) > 0:
                message = reader.poll(remaining)  # one at a time: consume(n) would wait for n
                tp = None if message is None else self._partition(message.topic(), message.partition())
                wanted = pending.get(tp)
                if not wanted:
                    continue
                error = message.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    times.update(((tp, offset), None) for offset in wanted)
                    wanted.clear()
                elif error is not None:  # unreadable (deleted by retention, no Read permission): left unanswered
                    self._log.debug("record %s[%d] at %d unreadable: %s", tp[0], tp[1], wanted.pop(0), error.str())
                elif message.offset() < wanted[0]:
                    continue  # fetched before the last seek
                else:
                    kind, timestamp = message.timestamp()
                    while wanted and wanted[0] <= message.offset():  # offsets before it hold no data record
                        offset = wanted.pop(0)
                        if kind != TIMESTAMP_NOT_AVAILABLE:
                            times[(tp, offset)] = timestamp
                if wanted:
                    reader.seek(TopicPartition(tp[0], tp[1], wanted[0]))
                else:
                    del pending[tp]
                    reader.pause([TopicPartition(tp[0], tp[1])])  # nothing more to fetch for it
        finally:
            reader.assign([])

    def _apply_description(self, group: GroupSnapshot, future: Future) -> None:
        try:
            description = future.result(timeout=0)
        except (KafkaException, FutureTimeout) as e:
            # Lag can still be computed from the committed offsets; only state and members are unknown.
            self._log.debug("describe of group %s failed: %s", group.group_id, self._short(e))
            return
        group.state = GROUP_STATE_NAMES.get(description.state.name, "Unknown")
        group.members = len(description.members)
        group.assigned = {
            self._partition(tp.topic, tp.partition)
            for member in description.members
            if member.assignment is not None
            for tp in member.assignment.topic_partitions
        }

    def _apply_offsets(self, group: GroupSnapshot, future: Future) -> None:
        try:
            result = future.result(timeout=0)
        except (KafkaException, FutureTimeout) as e:
            group.error = f"offset fetch failed: {self._short(e)}"
            return
        group.committed = {
            self._partition(tp.topic, tp.partition): tp.offset
            for tp in result.topic_partitions
            if tp.error is None and tp.offset >= 0
        }

    def _wait(self, futures: list[Future], deadline: Deadline) -> set[Future]:
        """Wait for the futures until the deadline; the ones still unanswered."""
        pending = wait(futures, timeout=deadline.remaining()).not_done
        self._client().poll(0)  # serve error_cb so a failure can be explained
        return pending

    def _result(self, future: Future, deadline: Deadline):
        try:
            return future.result(timeout=deadline.remaining())
        except FutureTimeout:
            self._calls.append(future)
            self._client().poll(0)
            raise BrokerUnavailable(self._explain(None)) from None
        except KafkaException as e:
            raise BrokerUnavailable(self._explain(e.args[0] if e.args else None)) from None

    @staticmethod
    def _short(error: Exception) -> str:
        if isinstance(error, FutureTimeout):
            return "timed out"
        inner = error.args[0] if error.args else None
        return inner.str() if isinstance(inner, KafkaError) else str(error)

    def _explain(self, error: KafkaError | None) -> str:
        """What failed and what to check, from the call's error or the connection errors librdkafka reported."""
        self._client().poll(0)
        errors = [e for e in (error, *reversed(self._errors)) if isinstance(e, KafkaError)]
        return explain_failure(
            errors,
            self._config.get("bootstrap.servers", ""),
            self._timeout,
            self._config.get("security.protocol", "PLAINTEXT"),
            self._logger.closed_by_peer,
        )


class ConnectionLog(DebugLogger):
    """librdkafka's log lines to debug, noting whether a broker closed fresh connections at the first requests:
    librdkafka reports no error for that, and it is what a listener expecting TLS or SASL does to a client that
    speaks neither (the broker then looks down rather than misconfigured). A broker going away closes connections
    that have been up for longer, and then refuses new ones."""

    CLOSED_EARLY = re.compile(r"closed by peer.*\(after (\d+)ms in state (APIVERSION_QUERY|UP)")

    def __init__(self, log: logging.Logger) -> None:
        super().__init__(log)
        self._recent: deque[bool] = deque(maxlen=20)

    @property
    def closed_by_peer(self) -> bool:
        return any(self._recent)

    def clear(self) -> None:
        self._recent.clear()

    def log(self, level: int, msg: str, *args: Any) -> None:
        super().log(level, msg, *args)
        line = str(args[-1]) if args else ""
        if "Disconnected" in line:
            early = self.CLOSED_EARLY.search(line)
            self._recent.append(early is not None and (early[2] == "APIVERSION_QUERY" or int(early[1]) < 2000))


def explain_failure(
    errors: list[KafkaError],
    bootstrap: str,
    timeout: float,
    security_protocol: str = "PLAINTEXT",
    closed_by_peer: bool = False,
) -> str:
    codes = {e.code() for e in errors}
    text = " ".join(e.str() for e in errors).lower()
    if "not valid in current sasl state" in text:
        return (
            f"the listener at {bootstrap} does not take SASL (it refused the SASL handshake): check "
            f"security_protocol ({security_protocol} here; PLAINTEXT or SSL for a listener without SASL) and that "
            "kafka_connect_str points to the SASL listener's port"
        )
    if "connecting to a plaintext broker listener" in text:
        return (
            f"the listener at {bootstrap} does not speak TLS: check security_protocol ({security_protocol} here; "
            "PLAINTEXT or SASL_PLAINTEXT for a listener without TLS) and that kafka_connect_str points to the TLS "
            "listener's port"
        )
    if KafkaError._AUTHENTICATION in codes or ("sasl" in text and "authentic" in text):
        return (
            f"authentication failed against {bootstrap}: check sasl_mechanism, sasl_plain_username and "
            "sasl_plain_password (for Confluent Cloud: an API key and secret of this cluster)"
        )
    if KafkaError._SSL in codes or "ssl" in text or "certificate" in text or "handshake" in text:
        return (
            f"TLS handshake failed with {bootstrap}: check security_protocol, tls_ca_cert (the CA that signed the "
            "broker certificate), tls_cert/tls_private_key for mutual TLS, and tls_verify"
        )
    if KafkaError._RESOLVE in codes or "resolve" in text:
        return f"cannot resolve {bootstrap}: check kafka_connect_str and DNS from the agent's host"
    if closed_by_peer and "connection refused" not in text and security_protocol != "SASL_SSL":
        expected = {"PLAINTEXT": "TLS or SASL", "SSL": "SASL", "SASL_PLAINTEXT": "TLS"}[security_protocol]
        return (
            f"the brokers at {bootstrap} closed each connection at the first requests: their listener likely expects "
            f"{expected}, a protocol mismatch; check security_protocol ({security_protocol} here; for Confluent "
            "Cloud SASL_SSL) and that kafka_connect_str points to the listener you mean"
        )
    if KafkaError._TRANSPORT in codes or "connection refused" in text or KafkaError._ALL_BROKERS_DOWN in codes:
        return (
            f"cannot connect to {bootstrap}: check kafka_connect_str, that the brokers are up, and that the "
            "agent's network can reach their listeners"
        )
    return (
        f"no answer from {bootstrap} within kafka_timeout ({timeout:g}s): check that the brokers are up and "
        "reachable, and raise kafka_timeout for a slow cluster"
    )
