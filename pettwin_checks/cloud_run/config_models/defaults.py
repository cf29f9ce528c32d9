"""Defaults of the instance options (the values conf.yaml.example documents)."""

MIN_COLLECTION_INTERVAL = 15.0
# Every network call of a run shares this budget; it stays under the default collection interval.
RUN_BUDGET = 12.0
TIMEOUT = 10.0
METADATA_RETRY_INTERVAL = 300.0

PROBE_HOST = "127.0.0.1"
APP_PORT = 8080
PROBE_TIMEOUT = 1.0  # Cloud Run's default timeoutSeconds
PROBE_FAILURE_THRESHOLD = 1
EXPECTED_STATUS = "200-399"

CGROUP_ROOT = "/sys/fs/cgroup"
MEMORY_WARNING_THRESHOLD = 80.0
MEMORY_CRITICAL_THRESHOLD = 95.0

# Monitoring: Cloud Run metrics are sampled every 60 s and visible after up to 3 minutes.
METRICS_WINDOW = 300.0
METRICS_DELAY = 180.0
# After an outage, count at most this much missed history (Monitoring keeps far more, but a run must stay cheap).
MAX_LOOKBACK = 3600.0
