"""Reading record times from Fetch answers' record batches: batches built by kafka-python's own producer-side builder
(the bytes a broker stores and returns), then read from offsets inside them, compressed, transactional, cut short."""

import struct

import pytest
from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.legacy_records import LegacyRecordBatchBuilder

from pettwin_checks.kafka_lag.record_batch import (
    ABORT_MARKER,
    CONTROL,
    LOG_APPEND_TIME,
    TRANSACTIONAL,
    read_batches,
)

pytestmark = pytest.mark.unit

NONE, GZIP, SNAPPY, LZ4, ZSTD = 0, 1, 2, 3, 4


def batch(base: int, timestamps: list[int], codec: int = NONE, producer_id: int = -1, attributes: int = 0) -> bytes:
    """A v2 batch at offset `base`, one record a timestamp (its value compressible), extra attribute bits set."""
    builder = DefaultRecordBatchBuilder(
        2, codec, producer_id >= 0, producer_id, 0 if producer_id >= 0 else -1, 0, 1 << 20
    )
    for delta, timestamp in enumerate(timestamps):
        builder.append(delta, timestamp, None, b"pet telemetry " * 20, [])
    data = bytearray(builder.build())
    struct.pack_into(">q", data, 0, base)
    if attributes:
        struct.pack_into(">h", data, 21, struct.unpack_from(">h", data, 21)[0] | attributes)
    return bytes(data)


def marker(base: int, producer_id: int, kind: int) -> bytes:
    """A transaction's control batch: one record whose key is (version 0, type: 0 abort, 1 commit)."""
    builder = DefaultRecordBatchBuilder(2, NONE, True, producer_id, 0, -1, 1 << 20)
    builder.append(0, 5_000, struct.pack(">hh", 0, kind), b"\0\0\0\0\0\0", [])
    data = bytearray(builder.build())
    struct.pack_into(">q", data, 0, base)
    struct.pack_into(">h", data, 21, struct.unpack_from(">h", data, 21)[0] | CONTROL | TRANSACTIONAL)
    return bytes(data)


def read(data: bytes, start: int, aborted=(), enough=None, most=16):
    return read_batches(data, start, start, list(aborted), start if enough is None else enough, most)


def test_the_record_at_an_offset_inside_a_batch_that_starts_before_it():
    """The broker answers from the batch holding the offset: its earlier records are skipped."""
    reading = read(batch(100, [1_000, 1_010, 1_020, 1_030]), 102, enough=103)
    assert reading.spans == [(102, 102, 1_020), (103, 103, 1_030)]
    assert (reading.known_until, reading.resume_at, reading.problem) == (104, 104, None)


def test_spans_stop_when_enough_is_known():
    reading = read(batch(0, list(range(1_000, 1_100))), 10, enough=12, most=4)
    assert reading.spans == [(10, 10, 1_010), (11, 11, 1_011), (12, 12, 1_012), (13, 13, 1_013)]


def test_records_of_one_millisecond_are_one_span():
    reading = read(batch(0, [7_000] * 50) + batch(50, [7_000, 7_001]), 5, enough=60)
    assert reading.spans == [(5, 50, 7_000), (51, 51, 7_001)]


@pytest.mark.parametrize("codec", [GZIP, LZ4, ZSTD])
def test_compressed_batches(codec):
    data = batch(40, [2_000, 2_005, 2_009], codec)
    assert struct.unpack_from(">h", data, 21)[0] & 0x07 == codec  # really compressed
    assert read(data, 41).spans[0] == (41, 41, 2_005)


def test_a_codec_this_process_cannot_decode_is_a_problem_not_a_time():
    data = bytearray(batch(0, [1, 2]))
    struct.pack_into(">h", data, 21, SNAPPY)  # python-snappy is not installed (the agent does not ship it)
    reading = read(bytes(data), 0)
    assert reading.spans == [] and "snappy" in reading.problem


def test_log_append_time_is_the_batchs_time_without_decoding():
    data = bytearray(batch(10, [1_000, 1_001, 1_002], attributes=LOG_APPEND_TIME))
    struct.pack_into(">q", data, 35, 9_999)  # the broker's append time, in max timestamp
    data[61:] = b"\xff" * (len(data) - 61)  # records unreadable: never decoded
    assert read(bytes(data), 11).spans == [(11, 12, 9_999)]


def test_aborted_transactions_and_markers_are_skipped_as_read_committed():
    """Offsets 0-2 aborted (producer 7), 3 its abort marker, 4-5 committed (producer 8), 6 their commit marker."""
    data = batch(0, [1, 2, 3], producer_id=7) + marker(3, 7, ABORT_MARKER)
    data += batch(4, [50, 60], producer_id=8) + marker(6, 8, 1)
    reading = read(data, 0, aborted=[(7, 0)], enough=5)
    # from 0 to 4 the next record a read_committed consumer gets is 4
    assert reading.spans == [(0, 4, 50), (5, 5, 60)]
    assert reading.resume_at == 7
    # without the aborted list, the transaction's records are read (read_uncommitted would)
    assert read(data, 0).spans[0] == (0, 0, 1)


def test_only_markers_and_aborted_data_left():
    data = batch(10, [1, 2], producer_id=3) + marker(12, 3, ABORT_MARKER)
    reading = read(data, 10, aborted=[(3, 10)])
    assert (reading.spans, reading.known_until, reading.resume_at, reading.resume_bytes) == ([], 10, 13, 0)


def test_a_batch_cut_by_the_size_limit_is_asked_again_whole():
    whole = batch(0, [1]) + batch(1, [5, 6, 7], GZIP)
    cut = whole[: len(whole) - 10]
    reading = read(cut, 2)
    assert reading.spans == [] and reading.resume_at == 2
    assert reading.resume_bytes == len(whole) - len(batch(0, [1]))
    # the continuation keeps what is known: offsets from the first read's start are answered
    again = read_batches(whole[len(batch(0, [1])) :], 2, 1, [], 2, 16)
    assert again.spans[0] == (2, 2, 6)


def test_older_message_formats_are_a_problem():
    builder = LegacyRecordBatchBuilder(1, 0, 1 << 20)
    builder.append(0, 1_000, None, b"old", None)
    reading = read(bytes(builder.build()), 0)
    assert reading.spans == [] and "v1" in reading.problem
