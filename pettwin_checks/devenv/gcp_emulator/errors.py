"""Google API error bodies (google.rpc.Status in its JSON mapping) as Google's REST front ends send them."""

from __future__ import annotations

import re

STATUS_BY_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    # 502 has no canonical code (google/rpc/code.proto maps UNAVAILABLE to 503): it reads as UNKNOWN.
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
HELP = "type.googleapis.com/google.rpc.Help"


class ApiError(Exception):
    """Raised by a route handler; the server turns it into Google's JSON error body."""

    def __init__(self, code: int, message: str, details: list | None = None, headers: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers or {}

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message, "status": STATUS_BY_CODE.get(self.code, "UNKNOWN")}
        if self.details:
            error["details"] = self.details
        return {"error": error}


def service_for_path(path: str) -> str:
    """The googleapis.com service a request path belongs to (what the real host would be)."""
    if path.startswith("/v3/"):
        return "monitoring.googleapis.com"
    if path.startswith("/v2/"):
        return "run.googleapis.com"
    if ":generateAccessToken" in path:
        return "iamcredentials.googleapis.com"
    if "/publishers/" in path or "/endpoints/" in path:
        return "aiplatform.googleapis.com"
    return "googleapis.com"


# The IAM permission each API route needs; a 403 names it the way Google does.
_PERMISSIONS = [
    (re.compile(r"^/v3/projects/[^/]+/timeSeries$"), "monitoring.timeSeries.list"),
    (re.compile(r"^/v2/projects/[^/]+/locations/[^/]+/services$"), "run.services.list"),
    (re.compile(r"^/v2/projects/[^/]+/locations/[^/]+/services/[^/]+$"), "run.services.get"),
    (re.compile(r"^/v2/projects/[^/]+/locations/[^/]+/services/[^/]+/revisions$"), "run.revisions.list"),
    (re.compile(r"^/v2/projects/[^/]+/locations/[^/]+/services/[^/]+/revisions/[^/]+$"), "run.revisions.get"),
    (re.compile(r":generateAccessToken$"), "iam.serviceAccounts.getAccessToken"),
    (re.compile(r"/publishers/[^/]+/models/[^/:]+:"), "aiplatform.endpoints.predict"),
]


def permission_for_path(path: str) -> str:
    for pattern, permission in _PERMISSIONS:
        if pattern.search(path):
            return permission
    return "resourcemanager.projects.get"


def _project_of(path: str) -> str:
    match = re.search(r"/projects/([^/:]+)", path)
    return match.group(1) if match else "-"


def invalid_argument(message: str, field: str | None = None) -> ApiError:
    details = []
    if field:
        details.append({"@type": BAD_REQUEST, "fieldViolations": [{"field": field, "description": message}]})
    return ApiError(400, message, details)


def unauthenticated(reason: str) -> ApiError:
    message = (
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
        "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
    )
    if reason == "CREDENTIALS_MISSING":
        message = (
            "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie "
            "or other valid authentication credential. See "
            "https://developers.google.com/identity/sign-in/web/devconsole-project."
        )
    details = [{"@type": ERROR_INFO, "reason": reason, "domain": "googleapis.com", "metadata": {}}]
    return ApiError(401, message, details, headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'})


def permission_denied(path: str, permission: str | None = None, resource: str | None = None) -> ApiError:
    """Google's 403 for a principal without the IAM permission (named from the path unless given)."""
    permission = permission or permission_for_path(path)
    service = service_for_path(path)
    message = f"Permission '{permission}' denied on resource (or it may not exist)."
    if service == "monitoring.googleapis.com":
        message = f"Permission {permission} denied (or the resource may not exist)."
    details = [
        {
            "@type": ERROR_INFO,
            "reason": "IAM_PERMISSION_DENIED",
            "domain": "iam.googleapis.com",
            "metadata": {"permission": permission, "resource": resource or f"projects/{_project_of(path)}"},
        }
    ]
    return ApiError(403, message, details)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)


def resource_exhausted(path: str, project_number: str) -> ApiError:
    service = service_for_path(path)
    if service == "aiplatform.googleapis.com":
        # Vertex AI's shared-capacity 429 carries no details, only this message.
        return ApiError(
            429,
            "Resource exhausted. Please try again later. Please refer to "
            "https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.",
        )
    quota_metric = f"{service}/read_requests"
    limit_name = "ReadRequestsPerMinutePerProject"
    consumer = f"projects/{project_number}"
    message = (
        f"Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute' of service "
        f"'{service}' for consumer 'project_number:{project_number}'."
    )
    details = [
        {
            "@type": ERROR_INFO,
            "reason": "RATE_LIMIT_EXCEEDED",
            "domain": "googleapis.com",
            "metadata": {
                "service": service,
                "consumer": consumer,
                "quota_metric": quota_metric,
                "quota_limit": limit_name,
                "quota_limit_value": "6000",
                "quota_location": "global",
            },
        },
        {
            "@type": QUOTA_FAILURE,
            "violations": [
                {
                    "subject": consumer,
                    "description": message,
                }
            ],
        },
        {
            "@type": HELP,
            "links": [
                {
                    "description": "Request a higher quota limit.",
                    "url": "https://cloud.google.com/docs/quotas/help/request_increase",
                }
            ],
        },
    ]
    return ApiError(429, message, details)


def for_status(code: int, path: str, project_number: str) -> ApiError:
    """The error Google would send for an injected status on this path."""
    if code == 401:
        return unauthenticated("ACCESS_TOKEN_EXPIRED")
    if code == 403:
        return permission_denied(path)
    if code == 404:
        return not_found(f"Requested entity was not found: {path}")
    if code == 429:
        return resource_exhausted(path, project_number)
    if code == 400:
        return invalid_argument("Request contains an invalid argument.")
    if code == 500:
        return ApiError(500, "Internal error encountered.")
    if code == 503:
        return ApiError(503, "The service is currently unavailable.")
    if code == 504:
        return ApiError(504, "The request timed out. Please try again.")
    return ApiError(code, f"HTTP {code}")
