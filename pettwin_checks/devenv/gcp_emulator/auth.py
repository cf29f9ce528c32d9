"""OAuth side of the emulator: the service-account keys and user credentials it issues, the JWT-bearer and
refresh-token grants of Google's token endpoint, the bearer tokens the APIs accept."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REFRESH_TOKEN_GRANT = "refresh_token"
# What `gcloud auth application-default login` asks for by default; its refresh token grants these.
GCLOUD_ADC_SCOPES = (
    "openid",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/sqlservice.login",
)
TOKEN_LIFETIME_SECONDS = 3599
# Google rejects assertions whose exp is more than an hour after iat, and tolerates a little clock skew.
MAX_ASSERTION_LIFETIME = 3600
# What a token carries when nobody asked for scopes (the metadata server's default on Cloud Run).
DEFAULT_SCOPES = frozenset({"https://www.googleapis.com/auth/cloud-platform"})
CLOCK_SKEW = 300
# Audiences Google's token endpoint accepts in an assertion; google-auth always sends the first one,
# whatever the key file's token_uri says.
GOOGLE_TOKEN_AUDIENCES = {
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com/oauth2/v4/token",
    "https://accounts.google.com/o/oauth2/token",
}


class OAuthError(Exception):
    """An error the token endpoint returns as {"error": ..., "error_description": ...}."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict:
        return {"error": self.error, "error_description": self.description}


@dataclass
class IssuedKey:
    key_id: str
    client_email: str
    public_key: rsa.RSAPublicKey


@dataclass
class RefreshToken:
    client_id: str
    client_secret: str
    principal: str
    scopes: frozenset[str]


@dataclass
class AccessToken:
    principal: str
    expires_at: float
    scopes: frozenset[str]


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


class TokenAuthority:
    """Issues keys and tokens; answers whether a bearer token is valid. Thread-safe."""

    def __init__(self, project_id: str):
        self.project_id = project_id
        self._lock = threading.Lock()
        self._keys: dict[str, IssuedKey] = {}
        self._tokens: dict[str, AccessToken] = {}
        self._refresh_tokens: dict[str, RefreshToken] = {}
        self._clients: dict[str, str] = {}  # OAuth client id -> secret

    def service_account_key(self, token_uri: str, account: str = "pettwin-agent") -> dict:
        """A new service-account JSON key (as the IAM console downloads it) whose token_uri is `token_uri`."""
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = secrets.token_hex(20)
        client_email = f"{account}@{self.project_id}.iam.gserviceaccount.com"
        with self._lock:
            self._keys[key_id] = IssuedKey(key_id, client_email, private_key.public_key())
        pem = private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": client_email,
            "client_id": str(int(key_id[:15], 16)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{client_email}",
            "universe_domain": "googleapis.com",
        }

    def authorized_user(self, token_uri: str, account: str = "developer@example.com", scopes=GCLOUD_ADC_SCOPES) -> dict:
        """A user's application default credentials file (what `gcloud auth application-default login` writes),
        its refresh token granting `scopes`; token_uri is where google-auth refreshes it."""
        client_id = f"{secrets.randbelow(10**12):012d}-emulator.apps.googleusercontent.com"
        client_secret = "d-" + secrets.token_urlsafe(18)
        refresh_token = "1//emu-" + secrets.token_urlsafe(32)
        with self._lock:
            self._clients[client_id] = client_secret
            self._refresh_tokens[refresh_token] = RefreshToken(client_id, client_secret, account, frozenset(scopes))
        return {
            "type": "authorized_user",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
            "token_uri": token_uri,
            "quota_project_id": self.project_id,
            "universe_domain": "googleapis.com",
        }

    def revoke_refresh_token(self, refresh_token: str) -> None:
        with self._lock:
            self._refresh_tokens.pop(refresh_token, None)

    def revoke_key(self, key_id: str) -> None:
        with self._lock:
            self._keys.pop(key_id, None)

    def issue_token(
        self, principal: str, lifetime: int = TOKEN_LIFETIME_SECONDS, scopes=DEFAULT_SCOPES
    ) -> tuple[str, int]:
        """A new access token for `principal` that carries `scopes` (an API checks them against its method)."""
        token = "ya29.emu-" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = AccessToken(principal, time.time() + lifetime, frozenset(scopes))
        return token, lifetime

    def expire_tokens(self) -> None:
        """Make every token issued so far expired (to test a client's refresh path)."""
        with self._lock:
            for token in self._tokens.values():
                token.expires_at = 0.0

    def check_bearer(self, token: str, service: str) -> tuple[str | None, frozenset[str] | None]:
        """(None, the token's scopes) when the token is valid for `service` (monitoring.googleapis.com...), else
        (the ErrorInfo reason Google would give, None).

        A self-signed JWT (google-auth's always_use_jwt_access, AIP-4111) is itself the bearer token: with a
        `scope` claim it carries those scopes; without one its `aud` must be the API, `https://<service>/`, and
        Google grants it that API (scopes None: nothing to check).
        """
        with self._lock:
            issued = self._tokens.get(token)
        if issued is not None:
            if issued.expires_at > time.time():
                return None, issued.scopes
            return "ACCESS_TOKEN_EXPIRED", None
        if token.count(".") == 2:
            try:
                claims = self._verify_jwt(token, audience=None)
            except OAuthError:
                return "ACCESS_TOKEN_TYPE_UNSUPPORTED", None
            scope = claims.get("scope")
            if isinstance(scope, str) and scope:
                return None, frozenset(scope.split())
            if claims.get("aud") != f"https://{service}/":
                return "ACCESS_TOKEN_TYPE_UNSUPPORTED", None
            return None, None
        return "ACCESS_TOKEN_TYPE_UNSUPPORTED", None

    def exchange(self, form: dict[str, str], token_uri: str) -> dict:
        """Google's OAuth token endpoint: the JWT-bearer grant (service-account keys) and the refresh-token grant
        (authorized_user files)."""
        grant_type = form.get("grant_type", "")
        if grant_type == REFRESH_TOKEN_GRANT:
            return self._refresh(form)
        if grant_type != JWT_BEARER_GRANT:
            raise OAuthError("unsupported_grant_type", f"Invalid grant_type: {grant_type}")
        assertion = form.get("assertion")
        if not assertion:
            raise OAuthError("invalid_request", "Missing required parameter: assertion")
        claims = self._verify_jwt(assertion, audience=token_uri)
        if "target_audience" in claims:
            raise OAuthError("invalid_request", "ID tokens are not issued by this emulator")
        if not claims.get("scope"):
            raise OAuthError("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        token, lifetime = self.issue_token(claims["iss"], scopes=claims["scope"].split())
        return {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"}

    def _refresh(self, form: dict[str, str]) -> dict:
        """grant_type=refresh_token with client_id, client_secret, refresh_token and optionally scope (a subset
        of what the refresh token was granted; the grant's scopes when absent)."""
        for name in ("client_id", "refresh_token"):
            if not form.get(name):
                raise OAuthError("invalid_request", f"Missing required parameter: {name}")
        with self._lock:
            secret = self._clients.get(form["client_id"])
            grant = self._refresh_tokens.get(form["refresh_token"])
        if secret is None:
            raise OAuthError("invalid_client", "The OAuth client was not found.", status=401)
        if form.get("client_secret") != secret:
            raise OAuthError("invalid_client", "Unauthorized", status=401)
        if grant is None or grant.client_id != form["client_id"]:
            raise OAuthError("invalid_grant", "Token has been expired or revoked.")
        # A refresh token cannot widen its grant: every scope asked must be one it was granted (google-auth:
        # "The scopes must be derivable from the refresh token").
        asked = frozenset(form.get("scope", "").split()) or grant.scopes
        if not asked <= grant.scopes:
            invalid = ", ".join(sorted(asked - grant.scopes))
            raise OAuthError("invalid_scope", f"Some requested scopes were invalid. {{invalid=[{invalid}]}}")
        token, lifetime = self.issue_token(grant.principal, scopes=asked)
        return {"access_token": token, "expires_in": lifetime, "scope": " ".join(sorted(asked)), "token_type": "Bearer"}

    def _verify_jwt(self, jwt: str, audience: str | None) -> dict:
        try:
            header_b64, claims_b64, signature_b64 = jwt.split(".")
            header = json.loads(_b64url_decode(header_b64))
            claims = json.loads(_b64url_decode(claims_b64))
            signature = _b64url_decode(signature_b64)
        except ValueError:
            raise OAuthError("invalid_grant", "Invalid JWT: malformed assertion") from None
        if header.get("alg") != "RS256":
            raise OAuthError("invalid_grant", "Invalid JWT: unsupported signing algorithm")
        with self._lock:
            issued = self._keys.get(header.get("kid", ""))
            if issued is None:
                # Without a kid Google tries the account's keys; an unknown kid is an invalid signature.
                issued = next((k for k in self._keys.values() if k.client_email == claims.get("iss")), None)
        if issued is None:
            raise OAuthError("invalid_grant", "Invalid JWT Signature.")
        try:
            issued.public_key.verify(
                signature, f"{header_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature:
            raise OAuthError("invalid_grant", "Invalid JWT Signature.") from None
        if claims.get("iss") != issued.client_email:
            raise OAuthError("invalid_grant", "Invalid JWT: issuer does not match the signing key's account.")
        if audience is not None and claims.get("aud") not in GOOGLE_TOKEN_AUDIENCES | {audience}:
            raise OAuthError("invalid_grant", "Invalid JWT: the audience is not a Google OAuth token endpoint.")
        now = time.time()
        iat, exp = claims.get("iat"), claims.get("exp")
        if (
            not isinstance(iat, (int, float))
            or not isinstance(exp, (int, float))
            or iat > now + CLOCK_SKEW
            or exp < now - CLOCK_SKEW
            or exp - iat > MAX_ASSERTION_LIFETIME
        ):
            raise OAuthError(
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
                "Check your iat and exp values in the JWT claim.",
            )
        return claims
