"""Token validation for minicloud's API services (image, compute-api).

Like keystonemiddleware's auth_token: every request's ``X-Auth-Token`` is
validated against the identity service (``GET /v3/auth/tokens``), and a valid
answer is cached briefly so a burst of requests costs one identity call, while
a revoked or expired token stops working within ``cache_ttl`` seconds.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from minicloud.web import HTTPError, Request

LOG = logging.getLogger("minicloud.auth")

ADMIN_ROLE = "admin"


@dataclass(frozen=True)
class RequestContext:
    """Who is calling: what the API needs for policy and for writing records."""

    token: str
    user_id: str
    user_name: str
    project_id: str
    project_name: str
    roles: tuple[str, ...]
    request_id: str = field(default_factory=lambda: f"req-{uuid.uuid4()}")
    debug_hold: tuple[tuple[str, str], ...] = ()  # X-Minicloud-Debug-Hold (tests only)

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles

    def with_new_request_id(self) -> RequestContext:
        """A copy for one request: cached identities must not share request ids."""
        return RequestContext(self.token, self.user_id, self.user_name, self.project_id,
                              self.project_name, self.roles)


def context_from_token_body(token: str, body: dict[str, object]) -> RequestContext:
    """Build a context from a Keystone v3 token body (``{"token": {...}}``)."""
    data = body["token"]
    assert isinstance(data, dict)
    user = data.get("user") or {}
    project = data.get("project") or {}
    roles = tuple(str(role["name"]) for role in data.get("roles") or [])
    return RequestContext(token=token, user_id=str(user.get("id", "")),
                          user_name=str(user.get("name", "")),
                          project_id=str(project.get("id", "")),
                          project_name=str(project.get("name", "")), roles=roles)


def _parse_expiry(body: dict[str, object]) -> float:
    """Seconds from now until the token expires (0 if unparseable)."""
    data = body.get("token")
    raw = data.get("expires_at") if isinstance(data, dict) else None
    if not isinstance(raw, str):
        return 0.0
    try:
        expires = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (expires - datetime.now(UTC)).total_seconds()


class TokenValidator:
    """Validates tokens against identity, with a short, bounded, thread-safe cache."""

    def __init__(self, identity_url: str, cache_ttl: float = 10.0, timeout: float = 5.0,
                 max_entries: int = 4096, key_rounds: int = 0) -> None:
        self.identity_url = identity_url.rstrip("/")
        #: PBKDF2 rounds of the cache key (0: the token itself); only the 1.1+token-cache-key-kdf
        #: variant sets it
        self.key_rounds = key_rounds
        self.cache_ttl = cache_ttl
        self.timeout = timeout
        self.max_entries = max_entries
        self._cache: dict[str, tuple[RequestContext, float]] = {}
        self._lock = threading.Lock()

    def _key(self, token: str) -> str:
        if not self.key_rounds:
            return token
        return hashlib.pbkdf2_hmac("sha256", token.encode(), b"minicloud-token-cache", self.key_rounds).hex()

    def _cached(self, token: str) -> RequestContext | None:
        token = self._key(token)
        with self._lock:
            entry = self._cache.get(token)
            if entry is None:
                return None
            if entry[1] <= time.monotonic():
                del self._cache[token]
                return None
            return entry[0]

    def _remember(self, token: str, context: RequestContext, lifetime: float) -> None:
        keep_until = time.monotonic() + min(self.cache_ttl, max(lifetime, 0.0))
        token = self._key(token)
        with self._lock:
            if len(self._cache) >= self.max_entries:
                now = time.monotonic()
                for key in [k for k, (_, until) in self._cache.items() if until <= now]:
                    del self._cache[key]
                while len(self._cache) >= self.max_entries:  # still full: drop the oldest
                    del self._cache[next(iter(self._cache))]
            self._cache[token] = (context, keep_until)

    def validate(self, token: str) -> RequestContext:
        """Return the caller's context; 401 for a bad token, 503 if identity is unreachable."""
        if not token:
            raise HTTPError(401, "authentication required: no X-Auth-Token", "unauthorized")
        cached = self._cached(token)
        if cached is not None:
            return cached.with_new_request_id()
        # The token validates itself (Keystone allows a token to validate its own
        # subject), so services need no service-user credentials.
        request = urllib.request.Request(
            f"{self.identity_url}/v3/auth/tokens",
            headers={"X-Auth-Token": token, "X-Subject-Token": token, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403, 404):
                raise HTTPError(401, "the token is invalid or has expired", "unauthorized") from None
            LOG.warning("identity answered %d while validating a token", exc.code)
            raise HTTPError(503, f"identity service error {exc.code}", "serviceUnavailable") from None
        except (OSError, ValueError) as exc:
            LOG.warning("identity unreachable while validating a token: %s", exc)
            raise HTTPError(503, f"identity service unreachable: {exc}", "serviceUnavailable") from None
        context = context_from_token_body(token, body)
        self._remember(token, context, _parse_expiry(body))
        return context

    def authenticate(self, request: Request) -> RequestContext:
        """Validate the request's ``X-Auth-Token``."""
        return self.validate(request.headers.get("X-Auth-Token", ""))


def require_admin(context: RequestContext, action: str) -> None:
    """Raise 403 unless the caller has the admin role (Nova's admin-only policy rules)."""
    if not context.is_admin:
        raise HTTPError(403, f"Policy doesn't allow {action} to be performed.", "forbidden")
