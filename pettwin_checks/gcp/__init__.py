"""Shared Google Cloud plumbing for the PetTwin checks. Knows no product (no Vertex AI, no Cloud Run).

Every network call takes the run's `Deadline`, goes through the check's `self.http`, and is counted (`stats`).
A check describes what it reads from Cloud Monitoring as a table of families and lets the engine run it:

    session = GcpSession(self.http, self.instance, apis=("monitoring", "run"), retry=RetryPolicy(), log=self.log)
    families = [Family("requests", TimeSeriesQuery("run.googleapis.com/request_count", Aggregation(
        "ALIGN_DELTA", "REDUCE_SUM", ("resource.label.service_name",), 60), "cloud_run_revision"), "window", to_samples)]
    collector = FamilyCollector(session, families, Lookbacks(180, 300, 3600, 300), self, page_size=10_000)
    collection = collector.collect(session.project_id(deadline), deadline, time.time())   # samples by family
    ...submit collection.samples...; collector.commit(project, collection)                  # windows move on
    status, message = monitoring_status(collection, project=project, session=session, budget=30)

Modules:
- families (pure): `Family` (one query and how its series become `Sample`s, or a family derived from others),
  the modes (window, span, newest, peak, sparse) and the interval each reads, `series_value`, `cap_samples`.
- collection: `FamilyCollector` runs a family table for one project: one timeSeries.list per family, a failure that
  would repeat stops the run's queries, window ends and sparse answers in the persistent cache per project+family.
- messages: `failure_message` (what a failed call means and what to do) and `monitoring_status`, for every check.
- session: `GcpSession`: endpoints, credentials (ADC order, impersonation), REST with retries, metadata server.
- endpoints, scopes, credentials, rest, transport, metadata, stats: the pieces the session is made of.
- monitoring: `MonitoringClient.list_time_series` follows every page; all or nothing.
- timeseries, distribution, windows, snapshot (pure): the query and response model, bucket maths, gap-free windows,
  the newest point of rarely written series as JSON.
- errors: `GcpError`, `GcpAuthError`, `GcpApiError`, `MalformedResponse` (`NotJson`), `persists_within_run`, and
  `redact()`, which every message built here goes through so tokens and keys never reach a log, tag or exception.
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
