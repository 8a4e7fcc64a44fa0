"""Typed clients for the conductor, the scheduler and the compute agents.

The compute client pins what it sends (Nova's ``upgrade_levels``): with
``upgrade_levels.compute = "auto"`` it sends at most what the oldest registered
compute agent understands -- the older RPC version without the newer
arguments, and Instance backported with ``obj_make_compatible``. A release
string pins to that release; null sends our newest. The ``+unpinned`` defect
variant ignores the cap, which is exactly the bug the harness must catch.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, cast

from minicloud import objects as objects_mod
from minicloud.config import PORTS, Config
from minicloud.context import RequestContext
from minicloud.defects import has_defect
from minicloud.releases import Release, get_release, service_version_release
from minicloud.rpc import RemoteIncompatibleObjectVersion, RPCClient, UnsupportedVersion

Ctx = RequestContext | dict[str, Any] | None

CONDUCTOR_RPC_VERSION = "1.0"
SCHEDULER_RPC_VERSION = "1.0"
CAP_CACHE_SECONDS = 2.0


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def compute_rpc_url(bind: str) -> str:
    return f"http://{bind}:{PORTS['compute-agent']}"


class ConductorAPI:
    """Client of the conductor (the API's and the agents' only way to the DB)."""

    def __init__(self, config: Config) -> None:
        self.objects = objects_mod.for_release(config.release)
        self.client = RPCClient(config.endpoint("conductor"), self.objects)

    # casts used by the compute API
    def build_instances(self, ctx: Ctx, instance_uuid: str) -> None:
        self.client.cast(ctx, "build_instances", CONDUCTOR_RPC_VERSION, instance_uuid=instance_uuid)

    def live_migrate_instance(self, ctx: Ctx, instance_uuid: str, host: str | None) -> None:
        self.client.cast(ctx, "live_migrate_instance", CONDUCTOR_RPC_VERSION,
                         instance_uuid=instance_uuid, host=host)

    def delete_instance(self, ctx: Ctx, instance_uuid: str) -> None:
        self.client.cast(ctx, "delete_instance", CONDUCTOR_RPC_VERSION, instance_uuid=instance_uuid)

    def reboot_instance(self, ctx: Ctx, instance_uuid: str, reboot_type: str) -> None:
        self.client.cast(ctx, "reboot_instance", CONDUCTOR_RPC_VERSION,
                         instance_uuid=instance_uuid, reboot_type=reboot_type)

    # calls
    def service_update(self, ctx: Ctx, service_id: int | str, values: dict[str, Any]) -> dict[str, Any]:
        return cast("dict[str, Any]", self.client.call(ctx, "service_update", CONDUCTOR_RPC_VERSION,
                                service_id=service_id, values=values))

    def service_create_or_update(self, ctx: Ctx, host: str, binary: str,
                                 values: dict[str, Any]) -> dict[str, Any]:
        """Register or heartbeat; raises ServiceTooOld if our version is refused."""
        return cast("dict[str, Any]", self.client.call(ctx, "service_create_or_update", CONDUCTOR_RPC_VERSION,
                                host=host, binary=binary, values=values))

    def service_min_version(self, ctx: Ctx, binary: str) -> int | None:
        return cast("int | None", self.client.call(ctx, "service_min_version", CONDUCTOR_RPC_VERSION,
                                                   binary=binary))

    def service_get_by_host(self, ctx: Ctx, host: str, binary: str) -> dict[str, Any]:
        return cast("dict[str, Any]", self.client.call(ctx, "service_get_by_host", CONDUCTOR_RPC_VERSION,
                                host=host, binary=binary))

    def compute_host_states(self, ctx: Ctx) -> list[dict[str, Any]]:
        states = self.client.call(ctx, "compute_host_states", CONDUCTOR_RPC_VERSION)
        return cast("list[dict[str, Any]]", states)

    def instance_get(self, ctx: Ctx, instance_uuid: str) -> Any:
        return self.client.call(ctx, "instance_get", CONDUCTOR_RPC_VERSION, instance_uuid=instance_uuid)

    def instance_update(self, ctx: Ctx, instance_uuid: str, values: dict[str, Any]) -> Any:
        return (self.client.call(ctx, "instance_update", CONDUCTOR_RPC_VERSION,
                                instance_uuid=instance_uuid, values=values))

    def migration_create(self, ctx: Ctx, values: dict[str, Any]) -> dict[str, Any]:
        created = self.client.call(ctx, "migration_create", CONDUCTOR_RPC_VERSION, values=values)
        return cast("dict[str, Any]", created)

    def migration_update(self, ctx: Ctx, migration_id: int, values: dict[str, Any]) -> dict[str, Any]:
        return cast("dict[str, Any]", self.client.call(ctx, "migration_update", CONDUCTOR_RPC_VERSION,
                                migration_id=migration_id, values=values))

    def finish_live_migration(self, ctx: Ctx, instance_uuid: str, migration_id: int, status: str,
                              instance_values: dict[str, Any], error: str | None = None) -> dict[str, Any]:
        return cast("dict[str, Any]", self.client.call(ctx, "finish_live_migration", CONDUCTOR_RPC_VERSION,
                                instance_uuid=instance_uuid, migration_id=migration_id, status=status,
                                instance_values=instance_values, error=error))


class SchedulerAPI:
    def __init__(self, config: Config) -> None:
        self.objects = objects_mod.for_release(config.release)
        self.client = RPCClient(config.endpoint("scheduler"), self.objects)

    def select_destinations(self, ctx: Ctx, request_spec: Any) -> dict[str, Any]:
        """The chosen compute host ``{"host", "rpc_url"}``; raises NoValidHost."""
        return cast("dict[str, Any]", self.client.call(ctx, "select_destinations", SCHEDULER_RPC_VERSION,
                                request_spec=request_spec))


class _AskConductor:
    """The default min-version source: ask the conductor. Equal per conductor URL,
    so every ComputeAPI of a process shares one cache entry."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.key = config.endpoint("conductor")

    def __call__(self) -> int | None:
        return ConductorAPI(self.config).service_min_version(None, "compute-agent")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _AskConductor) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)


# min-version source -> (monotonic time, value). Keyed by the source itself (bound
# methods of one object compare equal), never by id(): ids are reused after GC.
_cap_cache: dict[Callable[[], int | None], tuple[float, int | None]] = {}
_cap_lock = threading.Lock()


class ComputeAPI:
    """Client of one compute agent, version-capped as Nova's ``upgrade_levels``.

    ``min_version`` returns the lowest service version among registered compute
    agents (the conductor passes a DB query; elsewhere it is asked of the
    conductor). Results are cached ~2 s per source.
    """

    def __init__(self, config: Config, host: str, rpc_url: str | None = None,
                 min_version: Callable[[], int | None] | None = None) -> None:
        self.config = config
        self.release = config.release
        self.host = host
        self.objects = objects_mod.for_release(config.release)
        if rpc_url is None:
            rpc_url = ConductorAPI(config).service_get_by_host(None, host, "compute-agent")["rpc_url"]
        self.client = RPCClient(str(rpc_url), self.objects)
        self._min_version = min_version or _AskConductor(config)

    def cap_release(self) -> Release | None:
        """The release whose versions we must not exceed (None: no cap)."""
        if has_defect(self.release, "unpinned"):
            return None  # the defect: sends its newest to older agents
        level = self.config.upgrade_levels_compute
        if level is None:
            return None
        if level != "auto":
            return get_release(level)
        key = self._min_version
        now = time.monotonic()
        with _cap_lock:
            cached = _cap_cache.get(key)
        if cached and now - cached[0] < CAP_CACHE_SECONDS:
            version = cached[1]
        else:
            version = self._min_version()
            with _cap_lock:
                _cap_cache[key] = (now, version)
        if version is None:
            return None
        try:
            return service_version_release(version)
        except KeyError:
            return None  # a version we do not know is newer than ours: no cap

    def versions(self) -> tuple[str, dict[str, str]]:
        """(RPC version cap, object target versions) for the next message."""
        own_rpc, own_obj = self.release.compute_rpc, self.release.instance_version
        cap = self.cap_release()
        if cap is None:
            return own_rpc, {"Instance": own_obj}
        rpc = min(own_rpc, cap.compute_rpc, key=_version_tuple)
        return rpc, {"Instance": min(own_obj, cap.instance_version, key=_version_tuple)}

    @staticmethod
    def _can_send(cap: str, version: str) -> bool:
        return _version_tuple(version) <= _version_tuple(cap)

    def _cast_capped(self, ctx: Ctx, method: str,
                     message: Callable[[str, dict[str, str]], tuple[str, dict[str, Any]]]) -> str:
        """Cast ``method`` built by ``message(cap, targets) -> (version, args)`` under the cap.

        The auto cap is cached ~2 s, so right after an agent is rolled back to an
        older release it can still be too high. An agent refusing the version is
        the proof: forget the cached cap, ask again, and resend once if the fresh
        cap is lower. With an unchanged cap (no pin, a fixed pin, or a cap that
        really is this high) the refusal stands.
        """
        cap, targets = self.versions()
        version, args = message(cap, targets)
        try:
            self.client.cast(ctx, method, version, targets, **args)
            return version
        except (UnsupportedVersion, RemoteIncompatibleObjectVersion):
            with _cap_lock:
                _cap_cache.pop(self._min_version, None)
            fresh_cap, fresh_targets = self.versions()
            if (fresh_cap, fresh_targets) == (cap, targets):
                raise
        version, args = message(fresh_cap, fresh_targets)
        self.client.cast(ctx, method, version, fresh_targets, **args)
        return version

    def build_and_run_instance(self, ctx: Ctx, instance: Any, flavor: Any,
                               description: str | None = None, locked: bool = False) -> str:
        """Cast the build; return the RPC version it was sent with."""
        def message(cap: str, _targets: dict[str, str]) -> tuple[str, dict[str, Any]]:
            args: dict[str, Any] = {"instance": instance, "flavor": flavor}
            version = "1.0"
            if self._can_send(cap, "1.1"):
                args["description"] = description
                version = "1.1"
            if self._can_send(cap, "1.2"):
                args["locked"] = locked
                version = "1.2"
            return version, args
        return self._cast_capped(ctx, "build_and_run_instance", message)

    def terminate_instance(self, ctx: Ctx, instance: Any) -> None:
        self._cast_capped(ctx, "terminate_instance", lambda _cap, _t: ("1.0", {"instance": instance}))

    def reboot_instance(self, ctx: Ctx, instance: Any, reboot_type: str) -> None:
        self._cast_capped(ctx, "reboot_instance",
                          lambda _cap, _t: ("1.0", {"instance": instance, "reboot_type": reboot_type}))

    def live_migration(self, ctx: Ctx, instance: Any, migration: Any, dest_host: str,
                       dest_url: str) -> None:
        self._cast_capped(ctx, "live_migration", lambda _cap, _t: ("1.0", {
            "instance": instance, "migration": migration, "dest_host": dest_host, "dest_url": dest_url}))


class Heartbeat:
    """Calls ``beat`` every ``interval`` seconds in a daemon thread until stopped.

    A failed beat is logged and retried at the next interval: a conductor
    restart must not kill the agents (they just look down for a moment).
    """

    def __init__(self, beat: Callable[[], object], interval: float, name: str) -> None:
        self._beat = beat
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{name}", daemon=True)
        self._failing = False

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def _run(self) -> None:
        import logging

        log = logging.getLogger("minicloud.heartbeat")
        while not self._stop.wait(self._interval):
            try:
                self._beat()
                if self._failing:
                    log.info("heartbeat recovered")
                self._failing = False
            except Exception as exc:  # keep beating; the peer may be restarting
                if not self._failing:
                    log.warning("heartbeat failed: %s", exc)
                self._failing = True

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval + 5)
