# This file is generated from pettwin_checks/cloud_run/assets/configuration/spec.yaml by scripts/sync-config
# (datadog_checks_dev's model generator, as `ddev validate models --sync`). Do not edit: change the spec.


def instance_cgroup_root():
    return "/sys/fs/cgroup"


def instance_collect_cloud_run_metrics():
    return True


def instance_collect_container_resources():
    return True


def instance_collect_revision_health():
    return True


def instance_disable_generic_tags():
    return False


def instance_empty_default_hostname():
    return False


def instance_enable_legacy_tags_normalization():
    return True


def instance_memory_critical_threshold():
    return 95


def instance_memory_warning_threshold():
    return 80


def instance_metrics_delay():
    return 180


def instance_metrics_window():
    return 300


def instance_min_collection_interval():
    return 15


def instance_probe_host():
    return "127.0.0.1"


def instance_run_budget():
    return 12


def instance_services():
    return []


def instance_skip_proxy():
    return False


def instance_tag_instance_id():
    return False


def instance_tags():
    return []


def instance_timeout():
    return 10


def instance_tls_verify():
    return True
