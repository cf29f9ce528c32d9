"""Defaults of the instance options, in one place (conf.yaml.example documents the same values)."""

MIN_COLLECTION_INTERVAL = 60.0
COLLECTION_TIMEOUT = 40.0
INGESTION_DELAY = 240
INITIAL_LOOKBACK = 60
MAX_LOOKBACK = 3600
GAUGE_LOOKBACK = 300
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
