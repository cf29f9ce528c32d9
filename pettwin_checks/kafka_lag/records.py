"""Reads when the records at the lagging groups' committed offsets were produced, for the exact time lag: Fetch
requests (read_committed) over the check's own connections, one per partition leader and round, two rounds at most.

Round one asks every partition for ROUND_ONE_BYTES from its offset: enough for the batch headers and, uncompressed,
the first records; a LogAppendTime batch tells its time by its header alone. Round two asks again, from where the
first answer stopped, only the partitions it did not settle: a batch cut by the size limit (a compressed one cannot
be read in part; its size is in its header) or aborted data and markers longer than the first answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import kafka.errors as Errors
from kafka.future import Future

from pettwin_checks.deadline import Deadline

from .lag import TopicPartition
from .protocol import fetch_request, fetched_partitions
from .record_batch import read_batches
from .time_lag import MAX_SPANS, PartitionRead, RecordKey
from .wire import MAX_ANSWER_BYTES, Wire, reason

ROUND_ONE_BYTES = 2048
ROUND_TWO_BYTES = 65536  # at least; a batch cut in round one is asked for whole, if it fits in an answer
# Share of what is left of the deadline round one may wait.
ROUND_ONE_SHARE = 0.6


class _Partition:
    """One partition's reading across the rounds: the offsets wanted (ascending), what is known so far."""

    __slots__ = ("known_until", "read", "resume_at", "resume_bytes", "wanted")

    def __init__(self, wanted: list[int]) -> None:
        self.wanted = wanted
        self.read = PartitionRead()
        self.known_until = self.resume_at = wanted[0]
        self.resume_bytes = ROUND_ONE_BYTES

    def absorb(self, data: bytes, aborted: list, high_watermark: int, last_stable: int) -> tuple[bool, str | None]:
        """Reads one Fetch answer's batches on from what is known; (settled, why not everything wanted was read)."""
        reading = read_batches(data, self.known_until, self.resume_at, aborted, self.wanted[-1], MAX_SPANS)
        self.read.spans += reading.spans
        self.known_until, self.resume_at = reading.known_until, reading.resume_at
        self.resume_bytes = max(reading.resume_bytes, ROUND_TWO_BYTES)
        if reading.problem or self.known_until > self.wanted[-1]:
            return True, reading.problem
        if reading.resume_bytes > MAX_ANSWER_BYTES:
            return True, f"a record batch of {reading.resume_bytes} bytes, larger than an answer is asked to hold"
        if not reading.resume_bytes and reading.resume_at >= high_watermark:
            self.read.nothing_from = self.known_until  # only markers or aborted data up to the end
            return True, None
        # Records past the last stable offset wait for their transaction: a read_committed consumer cannot read
        # them yet, and neither can this.
        if 0 <= last_stable <= reading.resume_at and not reading.resume_bytes:
            return True, "the records next are in a transaction still open"
        return False, None


class RecordReader:
    """`leader(tp)` is a partition's leader from this run's metadata (-1 for none); `partition(topic, p)` the shared
    (topic, partition) tuple to key answers by."""

    def __init__(
        self,
        wire: Wire,
        leader: Callable[[TopicPartition], int],
        partition: Callable[[str, int], TopicPartition],
    ) -> None:
        self._wire = wire
        self._leader = leader
        self._partition = partition

    def start(self, wanted: list[RecordKey]) -> Reading:
        """Round one on the wire for the records at or after each (partition, offset): the brokers read them while
        the check goes on, until `Reading.finish`."""
        offsets: dict[TopicPartition, list[int]] = defaultdict(list)
        for tp, offset in sorted(wanted):
            offsets[tp].append(offset)
        reading = Reading(self, {tp: _Partition(wanted) for tp, wanted in offsets.items()})
        if reading.ask():
            self._wire.push()
        return reading

    def ask(self, pending: dict[TopicPartition, _Partition], errors: dict[TopicPartition, str]) -> list[Asked]:
        """One Fetch per leader for the pending partitions; one without a leader is an error."""
        by_leader: dict[int, list[TopicPartition]] = defaultdict(list)
        for tp in pending:
            leader = self._leader(tp)
            if leader < 0:
                errors[tp] = "no leader"
            else:
                by_leader[leader].append(tp)
        asked = []
        for node, tps in by_leader.items():
            offsets = [(tp[0], tp[1], pending[tp].resume_at, pending[tp].resume_bytes) for tp in tps]
            asked.append((self._wire.send(node, fetch_request(offsets, MAX_ANSWER_BYTES)), tps))
        return asked

    def wait(self, asked: list[Asked], deadline: Deadline) -> None:
        self._wire.wait([future for future, _ in asked], deadline)

    def absorb(
        self, asked: list[Asked], pending: dict[TopicPartition, _Partition], errors: dict[TopicPartition, str]
    ) -> set[TopicPartition]:
        """Reads each answer into its partitions; the partitions settled (every wanted offset answered, or nothing
        more to read this run)."""
        settled: set[TopicPartition] = set()
        for future, tps in asked:
            if not future.succeeded():
                failure = reason(future)
                errors.update((tp, failure) for tp in tps)
                continue
            for topic, p, error_code, high_watermark, last_stable, aborted, data in fetched_partitions(future.value):
                tp = self._partition(topic, p)
                state = pending.get(tp)
                if state is None:
                    continue
                if error_code:
                    errors[tp] = Errors.for_code(error_code).__name__
                    continue
                done, problem = state.absorb(data, aborted, high_watermark, last_stable)
                if problem:
                    errors[tp] = problem
                if done:
                    settled.add(tp)
        return settled


Asked = tuple[Future, list[TopicPartition]]  # a Fetch on the wire and the partitions it asks for


class Reading:
    """One run's record reads, a round at a time (two at most)."""

    def __init__(self, reader: RecordReader, states: dict[TopicPartition, _Partition]) -> None:
        self._reader = reader
        self._states = states
        self._pending = dict(states)
        self._errors: dict[TopicPartition, str] = {}
        self._asked: list[Asked] = []
        self._rounds = 0

    def ask(self) -> bool:
        """The next round; whether it sent anything."""
        self._asked = self._reader.ask(self._pending, self._errors)
        self._rounds += 1
        return bool(self._asked)

    def finish(self, deadline: Deadline) -> tuple[dict[TopicPartition, PartitionRead], dict[TopicPartition, str]]:
        """What the records at or after each (partition, offset) tell (see PartitionRead), and why a partition's
        could not be read, or not far enough to answer every offset wanted (a Fetch error, no leader, no answer in
        time, a codec or format not read, an open transaction, more than two rounds' worth)."""
        while True:
            share = Deadline(deadline.remaining() * (ROUND_ONE_SHARE if self._rounds == 1 else 1.0))
            self._reader.wait(self._asked, share)
            settled = self._reader.absorb(self._asked, self._pending, self._errors)
            self._pending = {
                tp: state for tp, state in self._pending.items() if tp not in settled and tp not in self._errors
            }
            if not self._pending or deadline.remaining() <= 0 or self._rounds == 2:
                break
            self.ask()
        for tp in self._pending:
            self._errors[tp] = "not read in full within two fetches"
        return {tp: state.read for tp, state in self._states.items()}, self._errors
