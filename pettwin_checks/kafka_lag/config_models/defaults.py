"""Defaults of the instance options, in one place (the conf.yaml.example documents the same values)."""

KAFKA_TIMEOUT = 5.0
MIN_COLLECTION_INTERVAL = 15.0
STATUS_WINDOW = 600.0
MAX_CONTEXTS = 5000
