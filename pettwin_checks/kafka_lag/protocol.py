"""The Kafka protocol as the check speaks it: every request built, every answer turned into plain Python data, and the
record-batch codecs. kafka-python's protocol classes are used here and nowhere else, so an upgrade that changes
them changes this module only (tests/unit/kafka_lag/test_protocol.py fails loudly on the fields it relies on).

Answers are read into tuples of names, numbers and error codes (0 for none); a caller never touches a response
object.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from kafka import codec
from kafka.protocol.admin import DescribeGroupsRequest, ListGroupsRequest
from kafka.protocol.consumer import FetchRequest, ListOffsetsRequest, OffsetFetchRequest
from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment
from kafka.protocol.metadata import FindCoordinatorRequest, MetadataRequest, MetadataResponse

# Versions asked for. Fetch: 4 brought isolation_level (read_committed); 13 replaced topic names with topic ids,
# which the metadata asked here does not carry, so 12 at most (kafka-python's own consumer stops there too).
FETCH_VERSIONS = (4, 12)
OFFSET_FETCH_BATCHED = 8  # KIP-709: many groups a request
FIND_COORDINATOR_BATCHED = 4  # KIP-699: many keys a request
READ_COMMITTED = 1


def metadata_request() -> Any:
    return MetadataRequest(
        topics=MetadataRequest.ALL_TOPICS,
        allow_auto_topic_creation=False,
        include_cluster_authorized_operations=False,
        include_topic_authorized_operations=False,
    )


def brokers_only(response: Any) -> Any:
    """The metadata answer without its topics, for kafka-python's connection manager (it needs the brokers' addresses
    only; the full answer holds an object per partition)."""
    return MetadataResponse(
        version=response.API_VERSION,
        brokers=response.brokers,
        cluster_id=response.cluster_id,
        controller_id=response.controller_id,
        topics=[],
    )


def cluster_id(response: Any) -> str | None:
    return response.cluster_id


def metadata_topics(response: Any) -> Iterator[tuple[str, int, int, list[tuple[int, int, int]]]]:
    """(topic, error code, partition count, [(partition, error code, leader id)]) for each topic."""
    for topic in response.topics:
        partitions = [(p.partition_index, p.error_code, p.leader_id) for p in topic.partitions]
        yield topic.name, topic.error_code, len(topic.partitions), partitions


def list_groups_request() -> Any:
    return ListGroupsRequest()


def listed_groups(response: Any) -> tuple[int, list[str]]:
    """(error code, group ids)."""
    return response.error_code, [group.group_id for group in response.groups]


def batched_find_coordinator(api_version: Any) -> bool:
    """Whether FindCoordinator takes many keys (v4, KIP-699); `api_version(request_class)` is the wire's."""
    return api_version(FindCoordinatorRequest) >= FIND_COORDINATOR_BATCHED


def find_coordinator_requests(group_ids: list[str], batched: bool, batch_size: int) -> list[tuple[Any, list[str]]]:
    """(request, the groups it asks for): `batch_size` keys a request, or one before v4."""
    if batched:
        return [
            (FindCoordinatorRequest(key_type=0, coordinator_keys=keys, min_version=4), keys)
            for keys in (group_ids[i : i + batch_size] for i in range(0, len(group_ids), batch_size))
        ]
    return [(FindCoordinatorRequest(key=g, key_type=0, max_version=3), [g]) for g in group_ids]


def found_coordinators(response: Any, keys: list[str]) -> list[tuple[str, int, int]]:
    """(group, error code, coordinator node id) for each group asked in `keys`."""
    if response.API_VERSION >= FIND_COORDINATOR_BATCHED:
        return [(c.key, c.error_code, c.node_id) for c in response.coordinators if c.key in keys]
    return [(keys[0], response.error_code, response.node_id)]


def describe_groups_request(group_ids: list[str]) -> Any:
    return DescribeGroupsRequest(groups=group_ids, include_authorized_operations=False)


def described_groups(response: Any) -> Iterator[tuple[str, int, str, str, int, list[tuple[str, int]] | None]]:
    """(group, error code, error message, state, members, assigned (topic, partition)s or None when the group is not
    on the consumer protocol) for each group."""
    for group in response.groups:
        assigned = None
        if group.protocol_type == "consumer":
            assigned = [
                (topic, p)
                for member in group.members
                for topic, partitions in _assignment(member.member_assignment)
                for p in partitions
            ]
        yield (
            group.group_id,
            group.error_code,
            group.error_message or "",
            group.group_state,
            len(group.members),
            assigned,
        )


def _assignment(data: bytes) -> list[tuple[str, list[int]]]:
    """A member's assigned (topic, partitions) from its consumer-protocol assignment; none if it cannot be read."""
    if not data:
        return []
    try:
        return [(a.topic, a.partitions) for a in ConsumerProtocolAssignment.decode(data).assigned_partitions]
    except (struct.error, ValueError, IndexError, UnicodeDecodeError):  # another protocol's bytes, or truncated
        return []


def batched_offset_fetch(api_version: Any) -> bool:
    """Whether OffsetFetch takes many groups (v8, KIP-709)."""
    return api_version(OffsetFetchRequest) >= OFFSET_FETCH_BATCHED


def offset_fetch_requests(group_ids: list[str], batched: bool) -> list[tuple[Any, list[str]]]:
    """(request, the groups it asks for): all of `group_ids` in one, or one a group before v8."""
    if batched:
        Group = OffsetFetchRequest.OffsetFetchRequestGroup
        request = OffsetFetchRequest(
            groups=[Group(group_id=g, topics=None) for g in group_ids], require_stable=False, min_version=8
        )
        return [(request, group_ids)]
    return [(OffsetFetchRequest(group_id=g, topics=None, min_version=2, max_version=7), [g]) for g in group_ids]


def fetched_offsets(response: Any, group_ids: list[str]) -> Iterator[tuple[str, int, list[tuple[str, int, int, int]]]]:
    """(group, error code, [(topic, partition, error code, committed offset, -1 for none)]) for each group."""
    if response.API_VERSION >= OFFSET_FETCH_BATCHED:
        answers = ((a.group_id, a) for a in response.groups)
    else:
        answers = zip(group_ids, [response])
    for group_id, answer in answers:
        offsets = [
            (topic.name, p.partition_index, p.error_code, p.committed_offset)
            for topic in answer.topics
            for p in topic.partitions
        ]
        yield group_id, answer.error_code, offsets


def list_offsets_request(partitions: list[tuple[str, int]]) -> Any:
    """The high watermarks (latest offsets, read_uncommitted) of `partitions`."""
    Topic = ListOffsetsRequest.ListOffsetsTopic
    by_topic: dict[str, list] = {}
    for topic, p in partitions:
        by_topic.setdefault(topic, []).append(
            Topic.ListOffsetsPartition(partition_index=p, current_leader_epoch=-1, timestamp=-1)
        )
    topics = [Topic(name=topic, partitions=asked) for topic, asked in by_topic.items()]
    return ListOffsetsRequest(replica_id=-1, isolation_level=0, topics=topics, min_version=1)


def listed_offsets(response: Any) -> Iterator[tuple[str, int, int, int]]:
    """(topic, partition, error code, offset) for each partition."""
    for topic in response.topics:
        for p in topic.partitions:
            yield topic.name, p.partition_index, p.error_code, p.offset


def fetch_request(offsets: list[tuple[str, int, int, int]], max_bytes: int) -> Any:
    """A read_committed Fetch of (topic, partition, offset, max bytes) each, answered at once (no wait for data), in
    no fetch session, `max_bytes` in all."""
    Topic = FetchRequest.FetchTopic
    by_topic: dict[str, list] = {}
    for topic, p, offset, partition_max_bytes in offsets:
        by_topic.setdefault(topic, []).append(
            Topic.FetchPartition(
                partition=p,
                current_leader_epoch=-1,
                fetch_offset=offset,
                last_fetched_epoch=-1,
                log_start_offset=-1,
                partition_max_bytes=partition_max_bytes,
            )
        )
    return FetchRequest(
        replica_id=-1,
        max_wait_ms=0,
        min_bytes=0,
        max_bytes=max_bytes,
        isolation_level=READ_COMMITTED,
        session_id=0,
        session_epoch=-1,
        topics=[Topic(topic=topic, partitions=asked) for topic, asked in by_topic.items()],
        forgotten_topics_data=[],
        rack_id="",
        min_version=FETCH_VERSIONS[0],
        max_version=FETCH_VERSIONS[1],
    )


def fetched_partitions(
    response: Any,
) -> Iterator[tuple[str, int, int, int, int, list[tuple[int, int]], bytes]]:
    """(topic, partition, error code, high watermark, last stable offset, aborted transactions as (producer id, first
    offset) sorted by first offset, the record batches' bytes) for each partition of a Fetch answer."""
    for topic in response.responses:
        for p in topic.partitions:
            aborted = sorted(((a.producer_id, a.first_offset) for a in p.aborted_transactions or ()), key=_second)
            records = p.records or b""
            yield topic.topic, p.partition_index, p.error_code, p.high_watermark, p.last_stable_offset, aborted, records


def _second(pair: tuple[int, int]) -> int:
    return pair[1]


# Record-batch compression codecs (the batch attributes' low 3 bits), as kafka-python decodes them. Snappy needs the
# python-snappy package, which the Datadog Agent does not ship: its batches are left unread (time lag unknown).
CODECS = {1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
_DECODERS = {1: codec.gzip_decode, 2: codec.snappy_decode, 3: codec.lz4_decode, 4: codec.zstd_decode}
_AVAILABLE = {1: codec.has_gzip(), 2: codec.has_snappy(), 3: codec.has_lz4(), 4: codec.has_zstd()}


def decompress(codec_id: int, data: bytes) -> bytes:
    """A compressed batch's records; raises ValueError for a codec this process cannot decode."""
    if not _AVAILABLE.get(codec_id):
        raise ValueError(f"{CODECS.get(codec_id, f'codec {codec_id}')} is not supported by this agent's Python")
    return _DECODERS[codec_id](data)
