"""RPC over HTTP: ``POST /rpc`` with ``{"method", "version", "args", "context"}``.

Semantics follow oslo.messaging as Nova uses it: a receiver refuses a message
whose version it does not support (major differs, or minor newer) and an object
it cannot deserialize, with 409 and the error type on the wire; a *call*
answers with the result; a *cast* is validated and decoded synchronously, then
answered 202 and done in a background thread. Clients raise ``RemoteError``
subclasses carrying the remote error type and message.

Objects travel as OVO primitives. The sender's object versions ride in the
context (``object_versions``) so that a reply is backported for the caller.
The service clients (ConductorAPI, SchedulerAPI, ComputeAPI) are in
``minicloud.rpc_clients`` and re-exported here.
"""
from __future__ import annotations

import inspect
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from minicloud.context import RequestContext
from minicloud.debug_hold import Hold
from minicloud.objects import IncompatibleObjectVersion, ReleaseObjects, UnsupportedObjectError
from minicloud.web import Request, Response, Router

LOG = logging.getLogger("minicloud.rpc")
CALL_TIMEOUT = 60.0
CAST_TIMEOUT = 15.0


class RemoteError(Exception):
    """An RPC failed at the receiver (or could not reach it)."""

    remote_type = "RemoteError"
    status = 500

    def __init__(self, message: str, remote_type: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if remote_type:
            self.remote_type = remote_type
        if status:
            self.status = status

    def __str__(self) -> str:
        return f"{self.remote_type}: {self.message}"


class UnsupportedVersion(RemoteError):
    remote_type = "UnsupportedVersion"
    status = 409


class RemoteIncompatibleObjectVersion(RemoteError):
    remote_type = "IncompatibleObjectVersion"
    status = 409


class NoSuchMethod(RemoteError):
    remote_type = "NoSuchMethod"
    status = 400


class BadMessage(RemoteError):
    remote_type = "BadMessage"
    status = 400


class NotFound(RemoteError):
    remote_type = "NotFound"
    status = 404


class ServiceTooOld(RemoteError):
    """A peer's service version is below what this cloud accepts."""

    remote_type = "ServiceTooOld"
    status = 409


class NoValidHost(RemoteError):
    remote_type = "NoValidHost"
    status = 409


class ServiceUnreachable(RemoteError):
    """Connection refused, reset or timed out: the receiver never answered."""

    remote_type = "ServiceUnreachable"
    status = 503


_TYPED: dict[str, type[RemoteError]] = {cls.remote_type: cls for cls in (
    UnsupportedVersion, RemoteIncompatibleObjectVersion, NoSuchMethod, BadMessage, NotFound,
    ServiceTooOld, NoValidHost, ServiceUnreachable)}


def _parse_version(text: str) -> tuple[int, int]:
    major, _, minor = str(text).partition(".")
    return int(major), int(minor or 0)


def version_supported(wanted: str, supported: str) -> bool:
    """oslo.messaging's rule: same major, minor not newer than ours."""
    w, s = _parse_version(wanted), _parse_version(supported)
    return w[0] == s[0] and w[1] <= s[1]


def _error(exc: RemoteError) -> Response:
    return Response(exc.status, {"error": {"type": exc.remote_type, "message": exc.message}})


class RPCServer:
    """Dispatches ``POST /rpc`` to an endpoint object's methods.

    ``endpoint`` methods take ``(ctx, **args)``. ``calls``/``casts`` name the
    methods that may be called remotely. Casts run in tracked threads so that a
    graceful shutdown can wait for them (``drain``).
    """

    def __init__(self, endpoint: object, api_version: str, objects: ReleaseObjects,
                 calls: set[str], casts: set[str], hold_as: tuple[str, ...] = ()) -> None:
        self.endpoint = endpoint
        #: this service's keys in a context's debug_hold, most specific first (``conductor@HOST``,
        #: ``conductor``); empty: ignore holds
        self.hold_as = hold_as
        self.api_version = api_version
        self.objects = objects
        self.calls = calls
        self.casts = casts
        self._running = 0
        self._cond = threading.Condition()

    def mount(self, router: Router) -> None:
        router.add("POST", "/rpc", self.handle)

    def handle(self, request: Request) -> Response:
        try:
            message = json.loads(request.body or b"{}")
            method, version = message["method"], str(message["version"])
            raw_args, raw_ctx = message.get("args") or {}, message.get("context") or {}
            if not isinstance(raw_args, dict) or not isinstance(raw_ctx, dict):
                raise TypeError("args and context must be objects")
            _parse_version(version)
        except (ValueError, KeyError, TypeError) as exc:
            return _error(BadMessage(f"malformed RPC message: {exc}"))
        if method not in self.calls and method not in self.casts:
            return _error(NoSuchMethod(f"Endpoint does not support RPC method {method}"))
        if not version_supported(version, self.api_version):
            LOG.warning("refusing %s: RPC version %s not supported (have %s)", method, version,
                        self.api_version)
            return _error(UnsupportedVersion(
                f"Endpoint does not support RPC version {version}. Attempted method: {method}"))
        try:
            args = self.objects.deserialize(raw_args)
        except IncompatibleObjectVersion as exc:
            LOG.warning("refusing %s: %s", method, exc)
            return _error(RemoteIncompatibleObjectVersion(str(exc)))
        except (UnsupportedObjectError, ValueError, TypeError, KeyError) as exc:
            return _error(BadMessage(f"cannot deserialize arguments: {exc}"))
        ctx = RequestContext.from_any(raw_ctx)
        target_versions = raw_ctx.get("object_versions") or {}
        func = getattr(self.endpoint, method)
        try:
            inspect.signature(func).bind(ctx, **args)
        except TypeError as exc:
            return _error(BadMessage(f"{method} {version}: {exc}"))
        if method in self.casts:
            self._start_cast(method, func, ctx, args)
            return Response(202, {"accepted": True})
        try:
            result = func(ctx, **args)
        except RemoteError as exc:
            return _error(exc)
        except LookupError as exc:
            return _error(NotFound(str(exc)))
        except Exception as exc:
            LOG.exception("%s failed (request %s)", method, ctx.request_id)
            return _error(RemoteError(str(exc), type(exc).__name__, 500))
        return Response(200, {"result": self.objects.serialize(result, target_versions)})

    def _start_cast(self, method: str, func: Callable[..., Any], ctx: RequestContext,
                    args: dict[str, Any]) -> None:
        holds = ctx.debug_hold or {}
        spec = next((holds[key] for key in self.hold_as if key in holds), None)
        try:
            hold = Hold.parse(spec) if spec is not None else None
        except ValueError:
            LOG.warning("ignoring a malformed debug hold %r on cast %s", spec, method)
            hold = None

        def run() -> None:
            try:
                if hold:  # a deliberate hold (test hook), not a wait for a condition
                    instance = args.get("instance_uuid") or getattr(args.get("instance"), "uuid", None)
                    LOG.info("debug hold %ss on cast %s (request %s, instance %s)", hold, method,
                             ctx.request_id, instance)
                    hold.wait()
                func(ctx, **args)
            except Exception:
                LOG.exception("cast %s failed (request %s)", method, ctx.request_id)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

        with self._cond:
            self._running += 1
        threading.Thread(target=run, name=f"cast-{method}", daemon=True).start()

    def drain(self, timeout: float) -> bool:
        """Wait for running casts to finish (graceful shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True


class RPCClient:
    """Sends calls and casts to one ``POST /rpc`` endpoint."""

    def __init__(self, url: str, objects: ReleaseObjects) -> None:
        self.url = url.rstrip("/") + "/rpc"
        self.objects = objects

    def _send(self, ctx: RequestContext | dict[str, Any] | None, method: str, version: str,
              args: dict[str, Any], target_versions: dict[str, str] | None,
              timeout: float) -> tuple[int, Any]:
        context = RequestContext.from_any(ctx).to_dict()
        context["object_versions"] = {n: c.VERSION for n, c in self.objects.classes.items()}
        body = json.dumps({"method": method, "version": version,
                           "args": self.objects.serialize(args, target_versions),
                           "context": context}).encode()
        request = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                error = json.loads(exc.read() or b"{}").get("error") or {}
            except ValueError:
                error = {}
            kind = error.get("type") or f"HTTP{exc.code}"
            cls = _TYPED.get(kind, RemoteError)
            raise cls(error.get("message") or str(exc), kind, exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServiceUnreachable(f"{method} to {self.url}: {reason}") from None

    def call(self, ctx: RequestContext | dict[str, Any] | None, method: str, version: str,
             target_versions: dict[str, str] | None = None, timeout: float = CALL_TIMEOUT,
             **args: Any) -> Any:
        """Send and wait for the result (objects come back hydrated)."""
        _, payload = self._send(ctx, method, version, args, target_versions, timeout)
        return self.objects.deserialize(payload.get("result"))

    def cast(self, ctx: RequestContext | dict[str, Any] | None, method: str, version: str,
             target_versions: dict[str, str] | None = None, **args: Any) -> None:
        """Send; return once the receiver accepted and decoded the message."""
        self._send(ctx, method, version, args, target_versions, CAST_TIMEOUT)


from minicloud.rpc_clients import ComputeAPI, ConductorAPI, SchedulerAPI  # noqa: E402

__all__ = ["BadMessage", "ComputeAPI", "ConductorAPI", "NoSuchMethod", "NoValidHost", "NotFound",
           "RPCClient", "RPCServer", "RemoteError", "RemoteIncompatibleObjectVersion",
           "SchedulerAPI", "ServiceTooOld", "ServiceUnreachable", "UnsupportedVersion",
           "version_supported"]
