"""kafka-python's protocol classes as pettwin_checks/kafka_lag/protocol.py relies on them, pinned to the range in
pyproject (kafka-python>=3.0.12,<3.1). An upgrade that renames a field, drops an API version the check asks for or
changes a codec fails here, by name, rather than as a wrong or missing figure at run time.

Each request the module builds is encoded at the versions the check can send and decoded back; each answer the module
reads is built from the schema, encoded, decoded, and read back into the plain data the client uses."""

import importlib.metadata
import pathlib
import re
import struct

import pytest
from kafka import codec
from kafka.protocol.admin import DescribeGroupsResponse, ListGroupsResponse
from kafka.protocol.consumer import FetchRequest, FetchResponse, ListOffsetsResponse, OffsetFetchResponse
from kafka.protocol.metadata import FindCoordinatorResponse, MetadataResponse

from pettwin_checks.kafka_lag import protocol

pytestmark = pytest.mark.unit

# (class, the versions the check sends or reads, the fields it relies on)
RELIED_ON = [
    ("Metadata", (1, 12), ["brokers", "cluster_id", "controller_id", "topics"]),
    ("ListGroups", (0, 4), ["error_code", "groups"]),
    ("FindCoordinator", (0, 4), ["error_code", "node_id", "coordinators"]),
    ("DescribeGroups", (0, 5), ["groups"]),
    ("OffsetFetch", (2, 8), ["groups", "topics", "error_code"]),
    ("ListOffsets", (1, 7), ["topics"]),
    ("Fetch", protocol.FETCH_VERSIONS, ["responses"]),
]


def test_the_installed_kafka_python_is_in_the_pinned_range():
    version = importlib.metadata.version("kafka-python")
    major, minor, patch = (int(part) for part in re.findall(r"\d+", version)[:3])
    assert (3, 0, 12) <= (major, minor, patch) < (3, 1, 0), version
    pyproject = pathlib.Path(__file__).parents[3] / "pyproject.toml"
    pin = re.search(r'"kafka-python([^"]*)"', pyproject.read_text()).group(1)
    assert pin == ">=3.0.12,<3.1", f"pyproject's pin changed to {pin}: review protocol.py and this test"


@pytest.mark.parametrize("api, versions, fields", RELIED_ON, ids=[r[0] for r in RELIED_ON])
def test_the_apis_speak_the_versions_and_fields_the_check_uses(api, versions, fields):
    module = {
        "Metadata": "kafka.protocol.metadata",
        "FindCoordinator": "kafka.protocol.metadata",
        "ListGroups": "kafka.protocol.admin",
        "DescribeGroups": "kafka.protocol.admin",
    }.get(api, "kafka.protocol.consumer")
    response = getattr(importlib.import_module(module), f"{api}Response")
    low, high = response.valid_versions
    assert low <= versions[0] and versions[1] <= high, f"{api} versions {response.valid_versions}"
    names = {field["name"] for field in response.json["fields"]}
    missing = {"".join(word.title() for word in f.split("_")) for f in fields} - names
    assert not missing, f"{api}Response lost {missing}"


@pytest.mark.parametrize("version", range(*[protocol.FETCH_VERSIONS[0], protocol.FETCH_VERSIONS[1] + 1]))
def test_fetch_request_round_trip(version):
    request = protocol.fetch_request([("pets", 3, 1_000, 2048), ("pets", 4, 7, 65536)], 16 << 20)
    assert (request._min_version, request._max_version) == protocol.FETCH_VERSIONS
    decoded = FetchRequest.decode(request.encode(version=version), version=version)
    assert decoded.isolation_level == protocol.READ_COMMITTED and decoded.max_wait_ms == 0
    [topic] = decoded.topics
    assert topic.topic == "pets"
    assert [(p.partition, p.fetch_offset, p.partition_max_bytes) for p in topic.partitions] == [
        (3, 1_000, 2048),
        (4, 7, 65536),
    ]


@pytest.mark.parametrize("version", [4, 11, 12])
def test_fetch_answer_read_back(version):
    Topic = FetchResponse.FetchableTopicResponse
    Partition = Topic.PartitionData
    aborted = [Partition.AbortedTransaction(producer_id=9, first_offset=30)]
    aborted.append(Partition.AbortedTransaction(producer_id=8, first_offset=20))
    partitions = [
        Partition(
            partition_index=3,
            error_code=0,
            high_watermark=50,
            last_stable_offset=45,
            log_start_offset=0,
            aborted_transactions=aborted,
            preferred_read_replica=-1,
            records=b"batch bytes",
        ),
        Partition(partition_index=4, error_code=1, high_watermark=-1, last_stable_offset=-1, records=None),
    ]
    response = FetchResponse(
        throttle_time_ms=0, error_code=0, session_id=0, responses=[Topic(topic="pets", partitions=partitions)]
    )
    decoded = FetchResponse.decode(response.encode(version=version), version=version)
    assert list(protocol.fetched_partitions(decoded)) == [
        ("pets", 3, 0, 50, 45, [(8, 20), (9, 30)], b"batch bytes"),
        ("pets", 4, 1, -1, -1, [], b""),
    ]


def test_offsets_and_groups_answers_read_back():
    Topic = ListOffsetsResponse.ListOffsetsTopicResponse
    listed = ListOffsetsResponse(
        topics=[Topic(name="t", partitions=[Topic.ListOffsetsPartitionResponse(partition_index=1, offset=42)])]
    )
    assert list(protocol.listed_offsets(ListOffsetsResponse.decode(listed.encode(version=7), version=7))) == [
        ("t", 1, 0, 42)
    ]
    Group = OffsetFetchResponse.OffsetFetchResponseGroup
    Topic = Group.OffsetFetchResponseTopics
    partition = Topic.OffsetFetchResponsePartitions(partition_index=2, committed_offset=11, error_code=0)
    fetched = OffsetFetchResponse(groups=[Group(group_id="g", topics=[Topic(name="t", partitions=[partition])])])
    decoded = OffsetFetchResponse.decode(fetched.encode(version=8), version=8)
    assert list(protocol.fetched_offsets(decoded, ["g"])) == [("g", 0, [("t", 2, 0, 11)])]
    groups = ListGroupsResponse(error_code=0, groups=[ListGroupsResponse.ListedGroup(group_id="g")])
    assert protocol.listed_groups(ListGroupsResponse.decode(groups.encode(version=4), version=4)) == (0, ["g"])
    described = DescribeGroupsResponse(
        groups=[DescribeGroupsResponse.DescribedGroup(group_id="g", group_state="Empty", protocol_type="consumer")]
    )
    decoded = DescribeGroupsResponse.decode(described.encode(version=5), version=5)
    assert list(protocol.described_groups(decoded)) == [("g", 0, "", "Empty", 0, [])]
    coordinator = FindCoordinatorResponse.Coordinator(key="g", node_id=3, error_code=0)
    found = FindCoordinatorResponse(coordinators=[coordinator])
    decoded = FindCoordinatorResponse.decode(found.encode(version=4), version=4)
    assert protocol.found_coordinators(decoded, ["g"]) == [("g", 0, 3)]


def test_metadata_answer_read_back():
    Topic = MetadataResponse.MetadataResponseTopic
    partition = Topic.MetadataResponsePartition(partition_index=0, leader_id=1, error_code=0)
    broker = MetadataResponse.MetadataResponseBroker(node_id=1, host="h", port=9092, rack=None)
    response = MetadataResponse(
        brokers=[broker],
        cluster_id="c",
        controller_id=1,
        topics=[Topic(name="t", error_code=0, partitions=[partition])],
    )
    decoded = MetadataResponse.decode(response.encode(version=12), version=12)
    assert list(protocol.metadata_topics(decoded)) == [("t", 0, 1, [(0, 0, 1)])]
    assert protocol.cluster_id(decoded) == "c" and protocol.brokers_only(decoded).topics == []


def test_the_codecs_kafka_python_decodes():
    """gzip always; lz4 and zstd with the packages the Datadog Agent ships; snappy needs python-snappy (not shipped)."""
    import gzip

    assert protocol.decompress(1, gzip.compress(b"pets")) == b"pets"
    if not codec.has_snappy():
        with pytest.raises(ValueError, match="snappy"):
            protocol.decompress(2, b"\0" * 8)
    assert struct.calcsize(">qiibIhiqqqhii") == 61  # the v2 batch header record_batch.py reads
