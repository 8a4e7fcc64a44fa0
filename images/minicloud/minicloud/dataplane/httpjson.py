"""A small blocking HTTP client for service-to-service calls of the data plane.

``http.client`` rather than ``requests``: these calls sit inside the live
migration's hold window, where a fresh loopback connection costs well under a
millisecond and no connection pool can go stale between steps.
"""
from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit


class CallError(Exception):
    """A call failed: unreachable, timed out, or answered with a non-2xx status."""

    def __init__(self, method: str, url: str, problem: str, status: int | None = None) -> None:
        super().__init__(f"{method} {url}: {problem}")
        self.status = status


def call(method: str, url: str, body: Any = None, timeout: float = 5.0,
         raw_body: bytes | None = None) -> tuple[int, bytes, dict[str, str]]:
    """Send one request; return (status, body, lower-cased headers). Raises CallError."""
    split = urlsplit(url)
    path = split.path + (f"?{split.query}" if split.query else "")
    payload = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else b"")
    headers = {"Content-Type": "application/json" if raw_body is None else "application/octet-stream",
               "Content-Length": str(len(payload)), "Connection": "close"}
    conn = http.client.HTTPConnection(split.hostname or "", split.port or 80, timeout=timeout)
    try:
        conn.request(method, path or "/", body=payload, headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, data, {k.lower(): v for k, v in response.getheaders()}
    except (OSError, http.client.HTTPException) as exc:
        raise CallError(method, url, f"{type(exc).__name__}: {exc}") from None
    finally:
        conn.close()


def call_json(method: str, url: str, body: Any = None, timeout: float = 5.0,
              raw_body: bytes | None = None) -> Any:
    """Like ``call`` but require 2xx and decode the JSON answer (None if empty)."""
    status, data, _ = call(method, url, body, timeout, raw_body)
    if not 200 <= status < 300:
        raise CallError(method, url, f"HTTP {status}: {data[:300].decode(errors='replace')}", status)
    if not data:
        return None
    try:
        return json.loads(data)
    except json.JSONDecodeError:
        raise CallError(method, url, f"not JSON: {data[:100]!r}", status) from None
