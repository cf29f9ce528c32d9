"""IAM Credentials generateAccessToken (service-account impersonation), as Google checks its request."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from . import errors
from .auth import TokenAuthority

# Without an organization-policy exception Google allows an hour at most (up to 12 h with one).
MAX_LIFETIME = 3600


def generate_access_token(tokens: TokenAuthority, account: str, body: dict) -> dict:
    """The GenerateAccessTokenResponse for `account`, or Google's 404/400."""
    if not account.endswith(".iam.gserviceaccount.com") or "@" not in account:
        raise errors.not_found(f"Not found; Gaia id not found for email {account}")
    scopes = body.get("scope")
    if not scopes:
        raise errors.invalid_argument("Scope required.", "scope")
    lifetime = MAX_LIFETIME
    if "lifetime" in body:
        match = re.fullmatch(r"(\d+)(?:\.\d+)?s", str(body["lifetime"]))
        if not match:
            raise errors.invalid_argument(
                f"Invalid value at 'lifetime' (type.googleapis.com/google.protobuf.Duration), \"{body['lifetime']}\"",
                "lifetime",
            )
        lifetime = int(match.group(1))
        if not 1 <= lifetime <= MAX_LIFETIME:
            raise errors.invalid_argument(
                "The lifetime must be between 1s and 3600s. To extend it up to 43200s, allow the service "
                "account in constraints/iam.allowServiceAccountCredentialLifetimeExtension.",
                "lifetime",
            )
    token, _ = tokens.issue_token(account, lifetime, scopes=scopes)
    expire = datetime.fromtimestamp(int(time.time()) + lifetime, tz=UTC)
    return {"accessToken": token, "expireTime": expire.strftime("%Y-%m-%dT%H:%M:%SZ")}
