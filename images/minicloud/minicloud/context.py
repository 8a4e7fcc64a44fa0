"""The request context that travels with every RPC message."""
from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


@dataclass
class RequestContext:
    """Who asked, and the request id that ties log lines across services."""

    request_id: str = field(default_factory=new_request_id)
    project_id: str | None = None
    user_id: str | None = None
    is_admin: bool = False
    #: test hook: service -> how long a cast is held there before it runs, ``SECONDS`` or
    #: ``stop+SECONDS`` (``minicloud.debug_hold``; honoured only by services whose config has
    #: ``"debug_delay": true``; see DESIGN.md, "Public APIs").
    debug_hold: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_any(cls, value: RequestContext | dict[str, Any] | None) -> RequestContext:
        """Accept a context, a wire dict (unknown keys ignored) or None (a new one)."""
        if isinstance(value, RequestContext):
            return value
        if not value:
            return cls()
        known = {k: value[k] for k in ("request_id", "project_id", "user_id", "is_admin", "debug_hold")
                 if k in value and value[k] is not None}
        return cls(**known)


def admin_context() -> RequestContext:
    return RequestContext(is_admin=True)
