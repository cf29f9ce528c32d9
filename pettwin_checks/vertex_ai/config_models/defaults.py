# This file is generated from pettwin_checks/vertex_ai/assets/configuration/spec.yaml by scripts/sync-config
# (datadog_checks_dev's model generator, as `ddev validate models --sync`). Do not edit: change the spec.


def instance_backoff_base():
    return 0.5


def instance_backoff_max():
    return 8


def instance_call_timeout():
    return 20


def instance_collect_project_metrics():
    return True


def instance_collection_timeout():
    return 40


def instance_disable_generic_tags():
    return False


def instance_discover_quota_metrics():
    return True


def instance_empty_default_hostname():
    return False


def instance_enable_legacy_tags_normalization():
    return True


def instance_endpoint_ids():
    return []


def instance_gauge_lookback():
    return 300


def instance_ingestion_delay():
    return 240


def instance_initial_lookback():
    return 60


def instance_locations():
    return []


def instance_max_attempts():
    return 4


def instance_max_contexts():
    return 1000


def instance_max_lookback():
    return 3600


def instance_min_collection_interval():
    return 60


def instance_models():
    return []


def instance_page_size():
    return 10000


def instance_quota_metrics():
    return [
        "generate_content_requests_per_minute_per_project_per_base_model",
        "generate_content_input_tokens_per_minute_per_base_model",
    ]


def instance_skip_proxy():
    return False


def instance_tags():
    return []


def instance_timeout():
    return 10


def instance_tls_verify():
    return True
