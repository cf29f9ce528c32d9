"""What the client really puts on the wire, counted in kafka-python's protocol layer (pettwin_checks.devenv.kafka_wire):
requests per run that do not grow with the groups, and at most wire.MAX_IN_FLIGHT requests in flight per broker
connection (with thousands pipelined a connection to the broker stopped answering).

Only brokers before 3.0 make a request per group (OffsetFetch before v8, FindCoordinator before v4). The client is
made to speak to the local broker as to a 2.8 one (kafka-python's `api_version` caps the versions it uses, as the
broker's own API versions would), which is also the test of that fallback."""

from __future__ import annotations

import logging

import pytest

from pettwin_checks.devenv.kafka_wire import WireCount
from pettwin_checks.kafka.connection import KafkaConnection
from pettwin_checks.kafka_lag import wire
from pettwin_checks.kafka_lag.client import KafkaClient
from pettwin_checks.kafka_lag.selection import Selection
from pettwin_checks.kafka_lag.wire import MAX_IN_FLIGHT

from .common import commit, create_topic, unique

pytestmark = pytest.mark.integration

GROUPS = 600  # about 1,200 requests on a 2.8 broker (coordinator lookups, offset fetches): far more than the cap


def client_for(bootstrap: str, **settings) -> KafkaClient:
    client = KafkaClient(KafkaConnection(kafka_connect_str=bootstrap), 60.0, logging.getLogger("test.wire"))
    client._wire.settings.update(settings)
    return client


def configured(groups: list[str]) -> Selection:
    return Selection(dict.fromkeys(groups), False, [], [], [], [])


def test_a_broker_before_3_0_gets_a_request_per_group_and_at_most_max_in_flight(kafka_broker):
    groups = [unique("in-flight") for _ in range(GROUPS)]  # unknown groups are answered like idle ones
    client = client_for(kafka_broker.bootstrap, api_version=(2, 8))
    with WireCount() as counted:
        snapshot, _ = client.snapshot(configured(groups))

    assert {group.group_id for group in snapshot.groups} == set(groups)
    assert not [group.error for group in snapshot.groups if group.error]
    # the fallback (a fresh broker answers some lookups "not available" while it creates the offsets topic)
    assert counted.sent["OffsetFetch"] == GROUPS and counted.sent["FindCoordinator"] >= GROUPS
    assert counted.peak_in_flight <= MAX_IN_FLIGHT
    assert counted.peak_in_flight > MAX_IN_FLIGHT // 2  # the requests are still pipelined, not sent one by one


def test_without_the_cap_the_same_requests_go_far_past_it(kafka_broker, monkeypatch):
    """The reference: with the client's cap lifted, the same run puts hundreds in flight, so the test above can fail."""
    monkeypatch.setattr(wire, "MAX_IN_FLIGHT", 100_000)
    groups = [unique("in-flight") for _ in range(GROUPS)]
    client = client_for(kafka_broker.bootstrap, api_version=(2, 8))
    with WireCount() as counted:
        client.snapshot(configured(groups))

    assert counted.peak_in_flight > 2 * MAX_IN_FLIGHT


def test_requests_per_run_do_not_grow_with_the_groups(kafka_broker):
    """On a 3.x/4.x broker a run is one request per API (one broker, fewer groups than a batch), whatever the groups."""
    topic = unique("wire")
    create_topic(kafka_broker.bootstrap, topic, 4)
    few, many = [unique("wire-few") for _ in range(3)], [unique("wire-many") for _ in range(300)]
    for group in few + many[:20]:
        commit(kafka_broker.bootstrap, group, topic, {0: 0, 1: 0})

    def second_run(selection: Selection) -> dict[str, int]:
        client = client_for(kafka_broker.bootstrap)
        client.snapshot(selection)  # the first run also connects (ApiVersions)
        with WireCount() as counted:
            snapshot, _ = client.snapshot(selection)
        assert not [group.error for group in snapshot.groups if group.error]
        client.close()
        return dict(counted.sent)

    per_run = {"Metadata": 1, "FindCoordinator": 1, "DescribeGroups": 1, "OffsetFetch": 1, "ListOffsets": 1}
    assert second_run(configured(few)) == per_run
    assert second_run(configured(many)) == per_run
    # Listed groups need no coordinator lookup: the broker that lists a group coordinates it.
    listed = Selection({}, True, [f"^({'|'.join(many)})$"], [], [], [])
    without_lookup = {api: n for api, n in per_run.items() if api != "FindCoordinator"}
    assert second_run(listed) == {**without_lookup, "ListGroups": 1}
