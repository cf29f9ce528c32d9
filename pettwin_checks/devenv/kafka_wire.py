"""Kafka requests counted where they reach the wire, for the benchmark and the tests (never used by the checks).

kafka-python encodes each request into its connection's protocol buffer and writes what `send_bytes` returns to the
socket; its answers come back through `receive_bytes`. Counting there sees every request the process really sends
(the client's own, the Fetch requests of the exact time lag included, and kafka-python's: ApiVersions, SASL,
metadata refreshes), read from the frames themselves, rather than what the code asked for.
"""

from __future__ import annotations

import struct
from collections import Counter
from typing import Self

from kafka.protocol.api_key import ApiKey
from kafka.protocol.parser import KafkaProtocol


def api_names(frames: bytes) -> list[str]:
    """The Kafka API of each request frame in `frames` (size, then api_key, api_version, correlation id...)."""
    names, offset = [], 0
    while offset + 6 <= len(frames):
        size, api_key = struct.unpack_from(">ih", frames, offset)
        try:
            names.append(ApiKey(api_key).name)
        except ValueError:
            names.append(f"api-{api_key}")
        offset += 4 + size
    return names


class WireCount:
    """While active, counts the requests written by every kafka-python connection in the process, by Kafka API, and
    the most requests one connection had on the wire unanswered at once."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.peak_in_flight = 0
        self._in_flight: Counter[int] = Counter()  # by connection (its protocol parser)
        self._originals = (KafkaProtocol.send_bytes, KafkaProtocol.receive_bytes)

    def __enter__(self) -> Self:
        send_bytes, receive_bytes = self._originals
        count = self

        def counted_send(parser):
            data = send_bytes(parser)
            names = api_names(data)
            count.sent.update(names)
            count._in_flight[id(parser)] += len(names)
            count.peak_in_flight = max(count.peak_in_flight, count._in_flight[id(parser)])
            return data

        def counted_receive(parser, data):
            responses = receive_bytes(parser, data)
            count._in_flight[id(parser)] -= len(responses)
            return responses

        KafkaProtocol.send_bytes, KafkaProtocol.receive_bytes = counted_send, counted_receive
        return self

    def __exit__(self, *exc) -> None:
        KafkaProtocol.send_bytes, KafkaProtocol.receive_bytes = self._originals
