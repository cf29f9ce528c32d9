"""Reads, from a Fetch answer's record batches, what a read_committed consumer would get from an offset on: which
record comes next after each offset, and when it was produced. Only batch headers and record headers are decoded
(the key, value and headers of a record are skipped by their lengths), and a batch is walked only as far as needed.

Message format v2 only (Kafka 0.11 on; the only one Kafka 4 stores): a batch in the older formats (v0/v1, possible
on a topic written by a pre-0.11 client to a Kafka 3 broker) stops the reading with a problem, as does a batch
whose codec this process cannot decode (see protocol.decompress) or a record without a timestamp.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .protocol import decompress

# v2 batch header: base offset, batch length, partition leader epoch, magic, crc, attributes, last offset delta, base
# timestamp, max timestamp, producer id, producer epoch, base sequence, record count.
HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = HEADER.size  # 61
BATCH_START = struct.Struct(">qi")  # base offset, batch length
LOG_OVERHEAD = 12  # base offset and batch length: a batch's size is its length + 12
MAGIC_OFFSET = 16
CODEC_MASK = 0x07
LOG_APPEND_TIME = 0x08
TRANSACTIONAL = 0x10
CONTROL = 0x20
ABORT_MARKER = 0  # a control record's key: version (int16), then type (int16): 0 abort, 1 commit

Span = tuple[int, int, int]  # offsets first..last, from each of which the next readable record was produced at ms


@dataclass(slots=True)
class Reading:
    """What one partition's record batches told, from the offset read on.

    `spans` are contiguous from that offset: for every offset in a span, the next record a read_committed consumer
    gets was produced at the span's timestamp. `known_until` is the first offset not covered; `resume_at` where a
    further read should start (a batch boundary), and `resume_bytes` the size of the batch there when the answer
    held only part of it. `problem` says why reading stopped short of the data there was."""

    spans: list[Span] = field(default_factory=list)
    known_until: int = 0
    resume_at: int = 0
    resume_bytes: int = 0
    problem: str | None = None


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint (or varlong) at `pos`: (value, position after it)."""
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


def _is_abort_marker(records: bytes) -> bool:
    """Whether a control batch's (single) record is an abort marker, from its key."""
    _, pos = _varint(records, 0)  # record length
    pos += 1  # attributes
    _, pos = _varint(records, pos)  # timestamp delta
    _, pos = _varint(records, pos)  # offset delta
    key_length, pos = _varint(records, pos)
    return key_length >= 4 and struct.unpack_from(">h", records, pos + 2)[0] == ABORT_MARKER


def read_batches(
    data: bytes, start: int, fetched_from: int, aborted: list[tuple[int, int]], enough: int, max_spans: int
) -> Reading:
    """What the batches in `data`, fetched from offset `fetched_from`, say from offset `start` on (`start` is below
    `fetched_from` when what lies between is known to hold nothing readable). Read_committed: aborted transactions
    (`aborted`: (producer id, first offset) from the Fetch answer, by first offset) and control batches are skipped,
    as a consumer skips them. Stops once the spans reach past offset `enough` and number `max_spans`, so a long answer
    is not walked through."""
    reading = Reading(known_until=start, resume_at=max(start, fetched_from))
    spans = reading.spans
    aborted_producers: set[int] = set()
    next_aborted = 0
    pos, size = 0, len(data)
    while pos + MAGIC_OFFSET < size:
        if data[pos + MAGIC_OFFSET] != 2:
            reading.problem = f"message format v{data[pos + MAGIC_OFFSET]} is not read (v2 only)"
            return reading
        base, length = BATCH_START.unpack_from(data, pos)
        end = pos + LOG_OVERHEAD + length
        if end > size:  # the answer's size limit cut this batch
            reading.resume_at, reading.resume_bytes = max(base, reading.resume_at), LOG_OVERHEAD + length
            return reading
        (_, _, _, _, _, attributes, last_delta, base_time, max_time, producer_id, _, _, count) = HEADER.unpack_from(
            data, pos
        )
        last = base + last_delta
        body = data[pos + HEADER_SIZE : end]
        pos = end
        if producer_id >= 0 and attributes & TRANSACTIONAL:
            while next_aborted < len(aborted) and aborted[next_aborted][1] <= last:
                aborted_producers.add(aborted[next_aborted][0])
                next_aborted += 1
            if attributes & CONTROL:
                if _is_abort_marker(body):
                    aborted_producers.discard(producer_id)
            elif producer_id in aborted_producers:
                reading.resume_at = max(reading.resume_at, last + 1)
                continue
        reading.resume_at = max(reading.resume_at, last + 1)
        if attributes & CONTROL or last < reading.known_until:
            continue
        log_append_time = bool(attributes & LOG_APPEND_TIME)
        if log_append_time and count == last_delta + 1:  # a record at every offset, all with the batch's time
            _add(spans, reading.known_until, last, max_time)
            reading.known_until = last + 1
        else:
            codec = attributes & CODEC_MASK
            try:
                records = decompress(codec, body) if codec else body
            except (ValueError, OSError, RuntimeError) as e:
                reading.problem = str(e)
                return reading
            if not _walk(records, base, base_time, max_time if log_append_time else None, reading, enough, max_spans):
                return reading
        if reading.known_until > enough and len(spans) >= max_spans:
            break
    return reading


def _walk(
    records: bytes, base: int, base_time: int, log_append_time: int | None, reading: Reading, enough: int, most: int
) -> bool:
    """Adds a span for each record at or past `reading.known_until`, until the spans reach past `enough` and number
    `most`; False when a record has no timestamp."""
    spans = reading.spans
    pos, size = 0, len(records)
    while pos < size and (reading.known_until <= enough or len(spans) < most):
        length, pos = _varint(records, pos)
        end = pos + length
        timestamp_delta, after = _varint(records, pos + 1)  # after the attributes byte
        offset_delta, _ = _varint(records, after)
        offset = base + offset_delta
        if offset >= reading.known_until:
            timestamp = log_append_time if log_append_time is not None else base_time + timestamp_delta
            if timestamp < 0:
                reading.problem = "records without a timestamp"
                return False
            _add(spans, reading.known_until, offset, timestamp)
            reading.known_until = offset + 1
        pos = end
    return True


def _add(spans: list[Span], first: int, last: int, timestamp: int) -> None:
    """Appends first..last at `timestamp`, merged into the previous span when it goes on at the same time."""
    if spans and spans[-1][2] == timestamp and spans[-1][1] + 1 == first:
        spans[-1] = (spans[-1][0], last, timestamp)
    else:
        spans.append((first, last, timestamp))
