"""Cloud Monitoring API v3 client: timeSeries.list with paging, over GcpRestClient."""

from __future__ import annotations

from dataclasses import dataclass, field

from pettwin_checks.deadline import Deadline

from .errors import MalformedResponse
from .rest import GcpRestClient
from .timeseries import MalformedPage, TimeSeries, TimeSeriesQuery, merge_pages, parse_page

DEFAULT_PAGE_SIZE = 10_000
MAX_PAGES = 1_000  # a server that keeps handing out page tokens must not keep a run busy forever


@dataclass
class ListResult:
    series: list[TimeSeries]
    pages: int
    problems: list[str] = field(default_factory=list)  # skipped series/points, for a warning


class MonitoringClient:
    def __init__(self, rest: GcpRestClient, endpoint: str, project: str, page_size: int = DEFAULT_PAGE_SIZE):
        self._rest = rest
        self._url = f"{endpoint.rstrip('/')}/v3/projects/{project}/timeSeries"
        self.project = project
        self.page_size = page_size

    def list_time_series(
        self, query: TimeSeriesQuery, start: float, end: float, deadline: Deadline, period_seconds: int | None = None
    ) -> ListResult:
        """Every page of one timeSeries.list. All or nothing: a failure on any page raises (GcpApiError,
        GcpAuthError, DeadlineExceeded, MalformedResponse), so a caller never submits half a query's series."""
        pages: list[list[TimeSeries]] = []
        problems: list[str] = []
        token = ""
        seen_tokens: set[str] = set()
        while True:
            params = query.params(start, end, self.page_size, token or None, period_seconds)
            body = self._rest.get_json("monitoring", self._url, deadline, params=params)
            try:
                series, token, page_problems = parse_page(body)
            except MalformedPage as bad:
                raise MalformedResponse(f"timeSeries.list {query.metric_type}: {bad}") from None
            pages.append(series)
            problems.extend(page_problems)
            if not token:
                break
            if token in seen_tokens or len(pages) >= MAX_PAGES:
                raise MalformedResponse(f"timeSeries.list {query.metric_type}: page tokens do not end")
            seen_tokens.add(token)
        return ListResult(merge_pages(pages), len(pages), problems)
