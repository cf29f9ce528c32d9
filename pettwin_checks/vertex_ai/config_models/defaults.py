"""Defaults of the instance options, in one place (conf.yaml.example documents the same values)."""

# What the agent uses when the instance does not set min_collection_interval (conf.yaml.example sets 60).
MIN_COLLECTION_INTERVAL = 15.0
# Without collection_timeout, a run may use this share of the interval, at most COLLECTION_TIMEOUT_MAX seconds.
COLLECTION_TIMEOUT_SHARE = 0.8
COLLECTION_TIMEOUT_MAX = 40.0
INGESTION_DELAY = 240
INITIAL_LOOKBACK = 60
MAX_LOOKBACK = 3600
GAUGE_LOOKBACK = 300
# Quota limits are written once a day: re-read them (over 25 h) this often, keeping the last answer in between.
QUOTA_REFRESH_INTERVAL = 3600
PAGE_SIZE = 10_000
MAX_CONTEXTS = 1000
MAX_ATTEMPTS = 4
BACKOFF_BASE = 0.5
BACKOFF_MAX = 8.0
CALL_TIMEOUT = 20.0
QUOTA_METRICS = (
    "generate_content_requests_per_minute_per_project_per_base_model",
    "generate_content_input_tokens_per_minute_per_base_model",
)
PROBE_MODEL = "gemini-2.5-flash"
PROBE_LOCATION = "us-central1"
PROBE_METHOD = "countTokens"
PROBE_PROMPT = "ping"
PROBE_INTERVAL = 60.0
PROBE_TIMEOUT = 10.0
