"""State kept across runs (high-watermark histories and commit windows), and its persisted form."""

from __future__ import annotations

import json
from array import array
from base64 import b64decode, b64encode
from collections.abc import Iterable, Iterator

from .lag import TopicPartition
from .status import WINDOW_SLOTS, CommitWindows, GroupPartition
from .time_lag import PartitionHistory

# Bumped when the cached layout changes; a state of another version is dropped (the check starts afresh).
STATE_VERSION = 2
# Bytes of numbers per persisted shard: each shard's text stays well under glibc's default mmap threshold (128 KiB).
SHARD_BYTES = 64 * 1024


def _pack(arrays) -> str:
    return b64encode(b"".join(a.tobytes() for a in arrays)).decode("ascii")


def _unpack(typecode: str, text: str) -> array:
    values = array(typecode)
    values.frombytes(b64decode(text, validate=True))
    return values


def _shard_json(
    histories: list[tuple[TopicPartition, PartitionHistory]],
    table: CommitWindows,
    windows: list[tuple[GroupPartition, int]],
) -> str:
    """Names and counts as JSON, the numbers as the arrays' raw bytes in base64.

    Encoding each float as decimal text costs more than the rest of a run; raw bytes are a copy. The cache is the agent host's own, so the native byte order is the one that reads it back.
    """
    return json.dumps(
        {
            "version": STATE_VERSION,
            "h": [[t, p, len(h.offsets), h.last_seen] for (t, p), h in histories],
            "ho": _pack(h.offsets for _, h in histories),
            "ht": _pack(h.times for _, h in histories),
            "w": [[g, t, p, 3 * table.counts[slot], table.since(slot)] for (g, t, p), slot in windows],
            "wv": _pack(table.observed(slot) for _, slot in windows),
        },
        separators=(",", ":"),
    )


class LagState:
    """High-watermark history per partition and commit windows per group partition, serialisable as JSON."""

    def __init__(self) -> None:
        self.histories: dict[TopicPartition, PartitionHistory] = {}
        self.windows = CommitWindows()

    def to_shards(self, shard_bytes: int = SHARD_BYTES) -> Iterator[str]:
        """The state as JSON texts of about `shard_bytes` of numbers each, every one readable alone by `from_json`.

        One text for thousands of groups is tens of MB, allocated whole and copied by base64 and JSON at each write.
        Once glibc has freed a block that big it raises its mmap threshold, and later blocks of that size stay in the
        heap, so the process grows (bench/README.md). Small texts reuse the same memory. They are
        made one at a time, as the caller writes them: all of them at once were the run's peak every minute.
        """
        histories: list = []
        windows: list = []
        size = 0
        made = False
        for item in self.histories.items():
            histories.append(item)
            size += 16 * len(item[1].offsets) + 48  # the numbers, and a row of names and counts
            if size >= shard_bytes:
                yield _shard_json(histories, self.windows, windows)
                made = True
                histories, size = [], 0
        for item in self.windows.slots.items():
            windows.append(item)
            size += 24 * self.windows.counts[item[1]] + 64
            if size >= shard_bytes:
                yield _shard_json(histories, self.windows, windows)
                made = True
                histories, windows, size = [], [], 0
        if histories or windows or not made:
            yield _shard_json(histories, self.windows, windows)

    @classmethod
    def from_shards(cls, texts: Iterable[str]) -> LagState:
        """The state from its shards; an unreadable shard loses only its own part (that part starts afresh)."""
        state = cls()
        for text in texts:
            state._read_shard(text)
        return state

    @classmethod
    def from_json(cls, text: str) -> LagState:
        """One shard of the state; anything unreadable starts afresh rather than failing the check."""
        state = cls()
        state._read_shard(text)
        return state

    def _read_shard(self, text: str) -> None:
        """Adds what one shard holds, or nothing when any of it is unreadable."""
        if not text:
            return
        histories: list[tuple[TopicPartition, PartitionHistory]] = []
        windows: list[tuple[GroupPartition, array, float | None]] = []
        try:
            data = json.loads(text)
            if data["version"] != STATE_VERSION:
                return
            offsets, times, values = _unpack("q", data["ho"]), _unpack("d", data["ht"]), _unpack("d", data["wv"])
            if not len(offsets) == len(times) == sum(row[2] for row in data["h"]):
                return
            if len(values) != sum(row[3] for row in data["w"]):
                return
            if any(row[3] % 3 or row[3] > WINDOW_SLOTS for row in data["w"]):
                return
            start = 0
            for topic, partition, count, last_seen in data["h"]:
                history = PartitionHistory(
                    offsets[start : start + count],
                    times[start : start + count],
                    tuple(last_seen) if last_seen else None,
                )
                histories.append(((topic, partition), history))
                start += count
            start = 0
            for group, topic, partition, count, since in data["w"]:
                windows.append(
                    ((group, topic, partition), values[start : start + count], None if since is None else float(since))
                )
                start += count
        except (ValueError, KeyError, TypeError):
            return
        self.histories.update(histories)
        for key, observed, since in windows:
            self.windows.restore(key, observed, since)

    def retain(self, partitions: set[TopicPartition], group_partitions: set[tuple[str, str, int]]) -> None:
        """Forget deleted topics and vanished groups so the state grows with what is watched, not with history."""
        for key in self.histories.keys() - partitions:
            del self.histories[key]
        self.windows.forget(self.windows.keys() - group_partitions)
