"""Reads the timestamp of the record at a committed offset, for the exact time lag (a read_committed librdkafka
consumer: it fetches every partition of a leader in one request and skips control records and aborted data)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaError, KafkaException, TopicPartition

from pettwin_checks.kafka.connection import CLOSE_TIMEOUT, DebugLogger, KafkaConnection, close_within, librdkafka_config


class RecordReader:
    """One consumer, made on first use and kept across runs, assigned at the offsets wanted; no group is joined and
    nothing is committed. `partition(topic, partition)` gives the shared (topic, partition) tuple to key answers by."""

    def __init__(
        self,
        connection: KafkaConnection,
        timeout: float,
        log: logging.Logger,
        partition: Callable[[str, int], tuple[str, int]],
    ) -> None:
        self._connection = connection
        self._timeout = timeout
        self._log = log
        self._partition = partition
        self._consumer: Consumer | None = None

    def close(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None and not close_within(consumer, CLOSE_TIMEOUT):
            self._log.warning(
                "Closing the record reader took over %gs; left to finish in the background", CLOSE_TIMEOUT
            )

    def _reader(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(
                {
                    **librdkafka_config(self._connection),
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
        return self._consumer

    def times(
        self, wanted: list[tuple[tuple[str, int], int]], deadline: float, batch: int
    ) -> dict[tuple[tuple[str, int], int], int | None]:
        """For each (partition, committed offset): the timestamp (ms since the epoch) of the first record a
        read_committed consumer gets from that offset, or None when there is none before the end (only transaction
        markers or aborted data left). A key left out could not be read by `deadline` (a time.monotonic() instant)
        or at all (e.g. the offset was deleted by retention). Never raises.

        Partitions are read `batch` at a time, each batch within its share of what is left of the deadline. A
        partition wanted at several offsets (groups at different places) is read at the lowest first, then sought to
        the next.
        """
        times: dict[tuple[tuple[str, int], int], int | None] = {}
        by_partition: dict[tuple[str, int], list[int]] = {}
        for tp, offset in sorted(wanted):
            by_partition.setdefault(tp, []).append(offset)
        partitions = list(by_partition)
        chunks = [partitions[i : i + batch] for i in range(0, len(partitions), batch)]
        try:
            for number, chunk in enumerate(chunks):
                share = (deadline - time.monotonic()) / (len(chunks) - number)
                if share <= 0:
                    break
                self.read_first_records({tp: by_partition[tp] for tp in chunk}, times, share)
        except KafkaException as e:
            self._log.debug("reading record timestamps failed: %s", e)
        return times

    def read_first_records(self, offsets: dict[tuple[str, int], list[int]], times: dict, seconds: float) -> None:
        """Reads until every partition of `offsets` (ascending offsets each) is answered or `seconds` passed: the
        timestamp of the first record at or after each offset, None when there is none before the end."""
        reader = self._reader()
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
