"""Shared Google Cloud plumbing for the PetTwin checks. Knows no product (no Vertex AI, no Cloud Run).

Public API (all network calls take a `Deadline`, go through the check's `self.http`, and are counted):

    from pettwin_checks.gcp import GcpSession, Deadline, TimeSeriesQuery, Aggregation, next_window

    session = GcpSession(self.http, self.instance, apis=("monitoring", "run"), retry=RetryPolicy(), log=self.log)
    deadline = Deadline(30)                            # the run's budget; every call's timeout fits inside it
    project = session.project_id(deadline)             # config project_id > credentials file > metadata server
    monitoring = session.monitoring(project, page_size=10_000)
    query = TimeSeriesQuery(
        "run.googleapis.com/request_count", resource_type="cloud_run_revision",
        extra_filter=(one_of("resource", "service_name", ["api"]),),
        aggregation=Aggregation("ALIGN_DELTA", "REDUCE_SUM", ("resource.label.service_name",)),
    )
    window = next_window(time.time(), last_end, ingestion_delay=180, initial_lookback=60, max_lookback=3600)
    result = monitoring.list_time_series(query, window.start, window.end, deadline, period_seconds=window.seconds)
    for series in result.series:                       # TimeSeries: labels, points (newest first), values parsed
        series.label("service_name"), series.points[0].value      # int | float | bool | Distribution
    session.stats.as_dict()                            # calls / retries / failures per API since stats.reset()
    # Admin API v2 needs a real region ("-" is refused); a 403 says whether a scope or a role is missing:
    session.rest.get_json("run", f"{session.endpoints.run}/v2/projects/{project}/locations/us-central1/services",
                          deadline)                    # except GcpApiError as e: session.denial_remedy(e, role)
    session.metadata.region(deadline)                  # metadata server (GCE_METADATA_HOST / metadata_endpoint)

Modules:
- endpoints: `Endpoints` base URLs per API, from options monitoring_endpoint, run_endpoint, aiplatform_endpoint,
  metadata_endpoint, oauth_token_endpoint, iam_credentials_endpoint (ENDPOINT_OPTIONS); GCE_METADATA_HOST honoured.
- scopes: the OAuth scopes each API accepts (`scopes_for(apis)`, narrowest first), `is_scope_refusal` and
  `denial_remedy` (a missing scope is not a missing IAM role).
- credentials: `GoogleCredentials` in ADC order (credentials_path, GOOGLE_APPLICATION_CREDENTIALS, gcloud ADC
  file, metadata server) with optional impersonation; `token(deadline)` refreshes before expiry; failures raise
  `GcpAuthError` naming `source`.
- rest: `GcpRestClient.get_json/post_json/request_json(api, url, deadline, ...)`: bearer token, retries with
  exponential backoff + full jitter on 429/5xx/network errors within the deadline (`RetryPolicy`), one token
  refresh on 401, Google error bodies parsed into `GcpApiError` (status, grpc_status, reason, retryable).
- monitoring: `MonitoringClient.list_time_series(query, start, end, deadline)` follows every page; all or nothing.
- timeseries (pure): `TimeSeriesQuery`, `Aggregation`, filter helpers `quote`, `one_of`, `label_field`,
  RFC 3339 helpers, `parse_page` / `parse_value` (defensive parsing), `merge_pages`.
- distribution (pure): `parse_distribution`, `bucket_bounds` (linear/exponential/explicit), `merge`, `percentile`.
- snapshot (pure): `Snapshot` keeps the newest point of rarely written series (daily quota limits) as JSON for
  the persistent cache, with when it was read.
- windows (pure): `next_window` gap-free, overlap-free query windows behind the ingestion delay.
- metadata: `MetadataServer` project/region/instance/service-account lookups.
- deadline: `Deadline(seconds)`, `timeout(cap)` raises `DeadlineExceeded` once the budget is spent.
- stats: `ApiCallStats` (calls, retries, failures per API).
- errors: `GcpError`, `GcpAuthError`, `GcpApiError`, `MalformedResponse` (`NotJson`: not JSON at all),
  `DeadlineExceeded`, and `redact()`,
  which every message built here goes through so tokens and keys never reach a log, tag or exception.
"""

from pettwin_checks.deadline import Deadline, DeadlineExceeded

from .distribution import Distribution, MalformedDistribution, merge, parse_distribution, percentile
from .endpoints import ENDPOINT_OPTIONS, Endpoints
from .errors import GcpApiError, GcpAuthError, GcpError, MalformedResponse, NotJson, redact
from .monitoring import ListResult, MonitoringClient
from .rest import GcpRestClient, RetryPolicy
from .scopes import denial_remedy, is_scope_refusal, scopes_for
from .session import GcpSession
from .stats import ApiCallStats
from .timeseries import Aggregation, Point, TimeSeries, TimeSeriesQuery, label_field, one_of, quote
from .windows import Window, next_window

__all__ = [
    "ENDPOINT_OPTIONS",
    "Aggregation",
    "ApiCallStats",
    "Deadline",
    "DeadlineExceeded",
    "Distribution",
    "Endpoints",
    "GcpApiError",
    "GcpAuthError",
    "GcpError",
    "GcpRestClient",
    "GcpSession",
    "ListResult",
    "MalformedDistribution",
    "MalformedResponse",
    "MonitoringClient",
    "NotJson",
    "Point",
    "RetryPolicy",
    "TimeSeries",
    "TimeSeriesQuery",
    "Window",
    "denial_remedy",
    "is_scope_refusal",
    "label_field",
    "merge",
    "next_window",
    "one_of",
    "parse_distribution",
    "percentile",
    "quote",
    "redact",
    "scopes_for",
]
