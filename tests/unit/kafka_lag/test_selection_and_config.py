import pytest
from datadog_checks.base import ConfigurationError

from pettwin_checks.kafka.connection import librdkafka_config
from pettwin_checks.kafka_lag.check import PettwinKafkaLagCheck
from pettwin_checks.kafka_lag.lag import GroupSnapshot
from pettwin_checks.kafka_lag.selection import Selection

pytestmark = pytest.mark.unit


def selection(groups=None, unlisted=False, **filters):
    return Selection(
        groups or {},
        unlisted,
        filters.get("include_groups", []),
        filters.get("exclude_groups", []),
        filters.get("include_topics", []),
        filters.get("exclude_topics", []),
    )


def test_internal_topics_are_never_watched():
    s = selection(unlisted=True)
    for topic in ("__consumer_offsets", "__transaction_state", "_confluent-metrics", "_confluent-command"):
        assert not s.wants_topic(topic)
    assert s.wants_topic("pet-telemetry")


def test_group_filters():
    s = selection(unlisted=True, include_groups=["^pettwin-"], exclude_groups=["-test$"])
    assert s.group_ids(["pettwin-alerts", "pettwin-alerts-test", "other", "pettwin-audit"]) == [
        "pettwin-alerts",
        "pettwin-audit",
    ]
    explicit = selection({"configured": None})
    assert not explicit.needs_group_listing
    assert explicit.group_ids([]) == ["configured"]


def listed(**counts: int) -> dict[str, tuple[tuple[str, int], ...]]:
    """Each topic's partitions as the client keeps them from the metadata."""
    return {topic: tuple((topic, p) for p in range(count)) for topic, count in counts.items()}


def test_resolve_partitions_all_of_each_topic_and_deleted_topics():
    s = selection(unlisted=True, exclude_topics=["^debug"])
    group = GroupSnapshot(
        "g",
        committed={("pets", 0): 4, ("gone", 0): 1, ("debug-x", 0): 3},
        assigned={("alerts", 1)},
    )
    partitions, problems = s.resolve_partitions(group, listed(pets=3, alerts=2, **{"debug-x": 1}))
    assert partitions == [("alerts", 0), ("alerts", 1), ("pets", 0), ("pets", 1), ("pets", 2)]
    assert problems == {"committed offsets for topic gone, which was deleted; ignored"}


def test_resolve_partitions_from_the_map():
    s = selection({"g": {"pets": [2, 0, 9, 2], "alerts": None}})
    partitions, problems = s.resolve_partitions(
        GroupSnapshot("g", committed={("other", 0): 1}), listed(pets=3, alerts=2, other=1)
    )
    # listed partitions that exist, each once; every partition of a topic listed without partitions; nothing unlisted
    assert partitions == [("alerts", 0), ("alerts", 1), ("pets", 0), ("pets", 2)]
    # the partition that does not exist is named, not dropped silently
    assert problems == {
        "configured partitions [9] of topic pets do not exist (it has 3, 0 to 2): check consumer_groups"
    }


def test_a_configured_topic_that_does_not_exist_is_named_as_configuration():
    s = selection({"g": {"pets": None, "typo-pets": [0]}})
    partitions, problems = s.resolve_partitions(GroupSnapshot("g"), listed(pets=1))
    assert partitions == [("pets", 0)]
    assert problems == {"configured topic typo-pets does not exist on the cluster: check consumer_groups"}


def test_a_configured_group_the_cluster_does_not_know_is_missing():
    s = selection({"ghost": None, "idle": None}, unlisted=True)
    assert s.is_missing(GroupSnapshot("ghost", state="Dead"))
    # a group with offsets exists even with no member; a listed group exists; an unanswered one is not judged
    assert not s.is_missing(GroupSnapshot("idle", state="Empty", committed={("t", 0): 1}))
    assert not s.is_missing(GroupSnapshot("idle", state="Dead", committed={("t", 0): 1}))
    assert not s.is_missing(GroupSnapshot("listed", state="Dead"))
    assert not s.is_missing(GroupSnapshot("ghost", state="Dead", error="offset fetch failed: timed out"))


BASE = {"kafka_connect_str": "127.0.0.1:9092", "monitor_unlisted_consumer_groups": True}


@pytest.mark.parametrize(
    "override, field",
    [
        ({"kafka_connect_str": None}, "kafka_connect_str"),
        ({"kafka_connect_str": " , "}, "kafka_connect_str"),
        ({"security_protocol": "SASL_TLS"}, "security_protocol"),
        ({"include_consumer_groups": ["(unclosed"]}, "include_consumer_groups"),
        ({"exclude_topics": ["[z-a]"]}, "exclude_topics"),
        ({"granularity": "broker"}, "granularity"),
        ({"collection_timeout": 0}, "collection_timeout"),
        ({"collection_timeout": 0.5}, "collection_timeout"),  # librdkafka refuses its timeouts below 1 s at every run
        ({"security_protocol": "SASL_SSL"}, "sasl_plain_username"),
        ({"tls_ca_cert": "/nonexistent/ca.pem", "security_protocol": "SSL"}, "tls_ca_cert"),
        ({"monitor_unlisted_consumer_groups": False}, "consumer_groups"),
        ({"leader_election": {"enabled": True, "session_timeout": 0.5}}, "leader_election -> session_timeout"),
        ({"leader_election": {"enabled": True, "group": ""}}, "leader_election -> group"),
        ({"leader_election": True}, "leader_election"),  # the flag it was before 0.1.0 is a block now
    ],
)
def test_bad_config_fails_at_init_naming_the_field(override, field):
    instance = {**BASE, **override}
    if instance["kafka_connect_str"] is None:
        del instance["kafka_connect_str"]
    with pytest.raises(ConfigurationError) as error:
        PettwinKafkaLagCheck("pettwin_kafka_lag", {}, [instance])
    assert field in str(error.value)


def test_leader_election_block_defaults():
    """Off unless enabled; a derived group and the 10 s session when only `enabled` is given."""
    off = PettwinKafkaLagCheck("pettwin_kafka_lag", {}, [BASE])
    assert off.leader is None
    assert off.config.leader_election.model_dump() == {"enabled": False, "group": None, "session_timeout": 10}
    on = PettwinKafkaLagCheck("pettwin_kafka_lag", {}, [{**BASE, "leader_election": {"enabled": True}}])
    assert on.config.leader_election.session_timeout == 10 and on.leader is not None
    assert on.leader._config["group.id"].startswith("pettwin-checks.pettwin_kafka_lag.")
    assert on.leader._config["session.timeout.ms"] == 10_000


def test_secret_never_in_config_error():
    instance = {**BASE, "security_protocol": "SASL_SSL", "sasl_plain_username": "key", "sasl_plain_password": 12345}
    with pytest.raises(ConfigurationError) as error:
        PettwinKafkaLagCheck("pettwin_kafka_lag", {}, [instance])
    assert "12345" not in str(error.value)


def test_librdkafka_config_for_confluent_cloud():
    check = PettwinKafkaLagCheck(
        "pettwin_kafka_lag",
        {},
        [
            {
                **BASE,
                "kafka_connect_str": ["a:9092", "b:9092"],
                "security_protocol": "SASL_SSL",
                "sasl_plain_username": "KEY",
                "sasl_plain_password": "SECRET",
            }
        ],
    )
    settings = librdkafka_config(check.config)
    assert settings["bootstrap.servers"] == "a:9092,b:9092"
    assert settings["security.protocol"] == "SASL_SSL"
    assert settings["sasl.mechanism"] == "PLAIN"
    assert (settings["sasl.username"], settings["sasl.password"]) == ("KEY", "SECRET")
    assert settings["enable.ssl.certificate.verification"] is True
    assert settings["ssl.endpoint.identification.algorithm"] == "https"


def test_conf_yaml_example_is_valid():
    import re
    from pathlib import Path

    import yaml

    text = Path(__file__).resolve().parents[3].joinpath("conf.d/pettwin_kafka_lag.d/conf.yaml.example").read_text()
    config = yaml.safe_load(re.sub(r"ENC\[[^\]]+\]", "resolved-secret", text))
    assert config["instances"]
    for instance in config["instances"]:
        check = PettwinKafkaLagCheck("pettwin_kafka_lag", config["init_config"] or {}, [instance])
        assert check.config.security_protocol == "SASL_SSL"
