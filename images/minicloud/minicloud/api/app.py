"""The compute API's request pipeline: auth, microversion, debug delay, headers.

Every versioned handler gets an ``ApiRequest`` (the raw request, the caller's
context, the negotiated microversion) and the shared ``ComputeApp`` (config,
database engine, token validator, conductor client). The pipeline mirrors
Nova's paste stack: keystonemiddleware auth, then microversion negotiation,
then the handler; the negotiated version is echoed on every answer, errors too.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import Engine

from minicloud.api import microversion
from minicloud.api.microversion import APIVersion
from minicloud.auth import RequestContext, TokenValidator
from minicloud.config import Config
from minicloud.context import RequestContext as RpcContext
from minicloud.db import api as db
from minicloud.debug_hold import Hold
from minicloud.rpc import ConductorAPI, RemoteError, ServiceUnreachable
from minicloud.web import HTTPError, Request, Response

LOG = logging.getLogger("minicloud.api")

DEBUG_DELAY_HEADER = "X-Minicloud-Debug-Delay"
DEBUG_HOLD_HEADER = "X-Minicloud-Debug-Hold"
CAST_RETRY_SECONDS = 10.0
CAST_RETRY_INTERVAL = 0.2


@dataclass
class ApiRequest:
    raw: Request
    context: RequestContext
    version: APIVersion

    @property
    def params(self) -> dict[str, str]:
        return self.raw.params

    @property
    def query(self) -> dict[str, str]:
        return self.raw.query

    def json(self) -> Any:
        return self.raw.json()


@dataclass
class ComputeApp:
    """What every handler needs; built once per process by ``services/compute_api.py``."""

    config: Config
    engine: Engine
    validator: TokenValidator
    conductor: ConductorAPI
    #: set once the API may serve (only the 1.1+ready-before-warm variant has one; None: at once)
    warm: threading.Event | None = None

    @property
    def max_version(self) -> str:
        return self.config.release.max_microversion

    @property
    def base_url(self) -> str:
        """The versioned compute endpoint as clients see it (behind the load balancer, if any)."""
        root = self.config.public_endpoint("compute")
        return root if root.endswith("/v2.1") else f"{root}/v2.1"

    @property
    def debug_delay_allowed(self) -> bool:
        return self.config.raw.get("debug_delay") is True

    def rpc_context(self, context: RequestContext) -> RpcContext:
        """The ``context`` an RPC message carries (see DESIGN.md)."""
        return RpcContext(request_id=context.request_id, project_id=context.project_id,
                          user_id=context.user_id, is_admin=context.is_admin,
                          debug_hold=dict(context.debug_hold) or None)

    def cast(self, what: str, send: Callable[[], None]) -> None:
        """Send a cast to the conductor, retrying while it is unreachable (a restart).

        Nova's API hands casts to a message queue that outlives a conductor
        restart; over HTTP, a bounded retry gives the same effect. A conductor
        that stays away is a 503, a refused message a 500 (with its error type).
        """
        deadline = time.monotonic() + CAST_RETRY_SECONDS
        while True:
            try:
                send()
                return
            except ServiceUnreachable as exc:
                if time.monotonic() >= deadline:
                    raise HTTPError(503, f"{what}: conductor unreachable: {exc.message}",
                                    "serviceUnavailable") from None
                threading.Event().wait(CAST_RETRY_INTERVAL)
            except RemoteError as exc:
                LOG.error("%s: conductor refused: %s", what, exc)
                raise HTTPError(500, f"{what}: {exc}", "computeFault") from None

    def instance_or_404(self, request: ApiRequest, uuid: str) -> dict[str, Any]:
        """The instance, if the caller may see it (its project, or admin); else 404."""
        try:
            instance = db.instance_get(self.engine, uuid)
        except db.NotFound:
            instance = None
        if (instance is None or instance["vm_state"] == "deleted"
                or (instance["project_id"] != request.context.project_id and not request.context.is_admin)):
            raise HTTPError(404, f"Instance {uuid} could not be found.", "itemNotFound")
        return instance


ApiHandler = Callable[[ComputeApp, ApiRequest], "Response | dict[str, Any] | None"]


def _debug_delay(app: ComputeApp, request: Request) -> None:
    """Hold the request for ``X-Minicloud-Debug-Delay`` (only with ``"debug_delay": true``):
    ``SECONDS`` or ``stop+SECONDS`` (until this service's stop began, then that long more).

    Exists so tests can have slow requests in flight when a service is stopped.
    """
    raw = request.headers.get(DEBUG_DELAY_HEADER)
    if not raw or not app.debug_delay_allowed:
        return
    try:
        delay = Hold.parse(raw)
    except ValueError:
        raise HTTPError(400, f"{DEBUG_DELAY_HEADER} must be SECONDS or stop+SECONDS", "badRequest") from None
    LOG.info("debug delay %ss on %s %s", delay, request.method, request.path)
    delay.wait()


def _debug_hold(app: ComputeApp, request: Request) -> tuple[tuple[str, str], ...]:
    """``X-Minicloud-Debug-Hold: conductor=1.5,compute-agent=stop+0.5`` (only with
    ``"debug_delay": true``): the casts of this request are held in each named service before
    they run, for ``SECONDS`` or until that service's stop began and ``SECONDS`` more.

    Exists so tests can have a cast in flight when a conductor or compute agent is stopped.
    """
    raw = request.headers.get(DEBUG_HOLD_HEADER)
    if not raw or not app.debug_delay_allowed:
        return ()
    holds = []
    try:
        for item in raw.split(","):
            service, _, spec = item.strip().partition("=")
            holds.append((service.strip(), str(Hold.parse(spec))))
    except ValueError:
        raise HTTPError(400, f"{DEBUG_HOLD_HEADER} must be SERVICE=SECONDS[,...] "
                             "(SECONDS or stop+SECONDS)", "badRequest") from None
    return tuple(holds)


def versioned(app: ComputeApp, handler: ApiHandler) -> Callable[[Request], Response]:
    """Wrap a handler in the pipeline: authenticate, negotiate, delay, call, echo version."""

    def pipeline(request: Request) -> Response:
        if app.warm is not None and not app.warm.is_set():
            raise HTTPError(503, "compute-api is starting: its caches are not warm yet", "serviceUnavailable")
        context = app.validator.authenticate(request)
        if not context.project_id:
            raise HTTPError(401, "an unscoped token cannot use the compute API", "unauthorized")
        hold = _debug_hold(app, request)
        if hold:
            context = replace(context, debug_hold=hold)
        version = microversion.negotiate(request.headers, app.max_version)
        headers = microversion.response_headers(version)
        try:
            _debug_delay(app, request)
            result = handler(app, ApiRequest(request, context, version))
        except HTTPError as exc:
            exc.headers = {**headers, **exc.headers}
            raise
        response = result if isinstance(result, Response) else Response(200, result)
        response.headers = {**headers, **response.headers}
        return response

    return pipeline


def bool_param(value: str | None, name: str) -> bool:
    """Nova's query booleans: empty means true, else true/false/1/0/yes/no/on/off."""
    if value is None:
        return False
    lowered = value.strip().lower()
    if lowered in ("", "1", "true", "t", "yes", "y", "on"):
        return True
    if lowered in ("0", "false", "f", "no", "n", "off"):
        return False
    raise HTTPError(400, f"Invalid value {value!r} for {name}: expected a boolean", "badRequest")


def paginate(items: list[dict[str, Any]], query: dict[str, str], key: str,
             next_url: Callable[[str, int], str]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Nova-style ``limit``/``marker`` paging; returns the page and its ``*_links``."""
    marker = query.get("marker")
    if marker is not None:
        ids = [str(item[key]) for item in items]
        if marker not in ids:
            raise HTTPError(400, f"marker [{marker}] not found", "badRequest")
        items = items[ids.index(marker) + 1:]
    if "limit" not in query:
        return items, []
    try:
        limit = int(query["limit"])
    except ValueError:
        raise HTTPError(400, "limit must be a non-negative integer", "badRequest") from None
    if limit < 0:
        raise HTTPError(400, "limit must be a non-negative integer", "badRequest")
    page = items[:limit]
    if page and len(items) > limit:
        return page, [{"rel": "next", "href": next_url(str(page[-1][key]), limit)}]
    return page, []
