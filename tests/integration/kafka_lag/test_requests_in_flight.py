"""The cap on requests in flight per broker connection holds for the admin calls the check makes (client.MAX_IN_FLIGHT:
with thousands in flight a connection to the broker stopped answering). librdkafka documents the setting mostly for
produce requests, so this counts, from librdkafka's own protocol log, what is really on the wire."""

from __future__ import annotations

import logging
import re

from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient

from pettwin_checks.kafka_lag.client import MAX_IN_FLIGHT, KafkaClient
from pettwin_checks.kafka_lag.selection import Selection

from .common import unique

# "Sent OffsetFetchRequest (v7, 60 bytes @ 0, CorrId 12)" / "Received OffsetFetchResponse (v7, ..., CorrId 12, ...)"
WIRE = re.compile(r"\[thrd:([^\]]+)\].*\b(Sent|Received) \w+(?:Request|Response) \(")


class ProtocolLog(logging.Handler):
    """Peak number of requests sent and not yet answered, per broker thread, from librdkafka's protocol debug log."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    def emit(self, record: logging.LogRecord) -> None:
        match = WIRE.search(record.getMessage())
        if match is None:
            return
        broker, direction = match.groups()
        self.in_flight[broker] = self.in_flight.get(broker, 0) + (1 if direction == "Sent" else -1)
        self.peak[broker] = max(self.peak.get(broker, 0), self.in_flight[broker])


def protocol_logger(name: str) -> tuple[logging.Logger, ProtocolLog]:
    log = logging.getLogger(name)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    handler = ProtocolLog()
    log.addHandler(handler)
    return log, handler


GROUPS = 600  # about 3,600 requests (coordinator lookups, descriptions, offset fetches): far more than the cap


def test_the_check_keeps_at_most_max_in_flight_requests_per_connection(kafka_broker):
    groups = [unique("in-flight") for _ in range(GROUPS)]  # unknown groups are answered like idle ones
    log, wire = protocol_logger("test.in_flight.check")
    client = KafkaClient({"bootstrap.servers": kafka_broker.bootstrap, "debug": "protocol"}, 60.0, log)
    snapshot, _ = client.snapshot(Selection(dict.fromkeys(groups), False, [], [], [], []))

    assert {group.group_id for group in snapshot.groups} == set(groups)
    assert not [group.error for group in snapshot.groups if group.error]
    assert wire.peak, "no protocol log was seen: the measurement itself failed"
    assert max(wire.peak.values()) <= MAX_IN_FLIGHT
    assert max(wire.peak.values()) > MAX_IN_FLIGHT // 2  # the requests are still pipelined, not sent one by one


def test_without_the_cap_librdkafka_puts_thousands_in_flight(kafka_broker):
    """The reference: the same calls on a bare admin client go far past the cap, so the test above can fail."""
    groups = [unique("in-flight") for _ in range(GROUPS)]
    log, wire = protocol_logger("test.in_flight.bare")
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap, "debug": "protocol", "logger": log})
    calls = [
        *admin.describe_consumer_groups(groups, request_timeout=60).values(),
        *(
            call
            for group in groups
            for call in admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)]).values()
        ),
    ]
    for call in calls:
        call.result(timeout=60)
    admin.poll(0)  # the log lines are served by poll

    assert max(wire.peak.values()) > 2 * MAX_IN_FLIGHT
