# This file is generated from pettwin_checks/kafka_lag/assets/configuration/spec.yaml by scripts/sync-config
# (datadog_checks_dev's model generator, as `ddev validate models --sync`). Do not edit: change the spec.


def instance_consumer_groups():
    return {}


def instance_disable_generic_tags():
    return False


def instance_empty_default_hostname():
    return False


def instance_enable_legacy_tags_normalization():
    return True


def instance_exclude_consumer_groups():
    return []


def instance_exclude_topics():
    return []


def instance_granularity():
    return "partition"


def instance_include_consumer_groups():
    return []


def instance_include_topics():
    return []


def instance_kafka_timeout():
    return 5


def instance_leader_election():
    return False


def instance_leader_election_session_timeout():
    return 10


def instance_max_contexts():
    return 5000


def instance_min_collection_interval():
    return 15


def instance_monitor_unlisted_consumer_groups():
    return False


def instance_sasl_mechanism():
    return "PLAIN"


def instance_security_protocol():
    return "PLAINTEXT"


def instance_status_window():
    return 600


def instance_tags():
    return []


def instance_tls_validate_hostname():
    return True


def instance_tls_verify():
    return True
