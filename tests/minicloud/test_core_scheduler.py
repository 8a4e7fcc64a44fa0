"""The scheduler never picks a disabled, down or full host; NoValidHost ends in ERROR."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from minicloud import db, objects
from minicloud.db import api
from minicloud.rpc import ConductorAPI, NoValidHost, SchedulerAPI
from minicloud.services.scheduler import INSTANCES_PER_HOST, choose_host

from tests.minicloud.core_support import CoreCloud, wait_until


def state(host: str, instances: int = 0, up: bool = True, disabled: bool = False) -> dict[str, Any]:
    return {"host": host, "up": up, "disabled": disabled, "forced_down": False,
            "instances": instances, "rpc_url": f"http://{host}", "version": 11}


def test_choose_host_filters_and_weighs() -> None:
    states = [state("a", 3), state("b", 1, disabled=True), state("c", 2), state("d", 0, up=False),
              state("e", INSTANCES_PER_HOST)]
    assert choose_host(states, [], [])["host"] == "c"
    assert choose_host(states, ["c"], [])["host"] == "a"
    with pytest.raises(NoValidHost, match=r"b: disabled.*d: down.*e: full"):
        choose_host(states, ["a", "c"], [])
    with pytest.raises(NoValidHost, match="no compute host registered"):
        choose_host([], [], [])


@pytest.fixture
def two_computes(tmp_path: Path) -> Iterator[CoreCloud]:
    cloud = CoreCloud(tmp_path, release="1.1")
    try:
        cloud.prepare_schema(("expand", "1.1"), ("contract", "1.1"))
        cloud.start("conductor")
        cloud.start("scheduler")
        cloud.start("compute-agent", "compute-1")
        cloud.start("compute-agent", "compute-2")
        yield cloud
    finally:
        cloud.stop_all()


@pytest.mark.integration
def test_scheduler_never_chooses_a_disabled_host(two_computes: CoreCloud) -> None:
    config = two_computes.config()
    conductor, scheduler = ConductorAPI(config), SchedulerAPI(config)
    o = objects.for_release(config.release)
    engine = db.connect(two_computes.database)
    # compute-1 is the less loaded host: it would win if it were not disabled.
    api.instance_create(engine, {"name": "load", "host": "compute-2", "vm_state": "active"})
    spec = o.RequestSpec(instance_uuid="0a3d6d0c-5b5e-4c9e-9a51-2f0b6f1de001", project_id="p",
                         flavor=o.flavor_from_dict(api.flavor_get(engine, "1")),
                         ignore_hosts=[], force_hosts=[])
    assert scheduler.select_destinations(None, spec)["host"] == "compute-1"
    compute_1 = api.service_get_by_host(engine, "compute-1", "compute-agent")
    updated = conductor.service_update(None, compute_1["id"], {"disabled": True,
                                                               "disabled_reason": "maintenance"})
    assert updated["disabled"] is True
    chosen = {scheduler.select_destinations(None, spec)["host"] for _ in range(10)}
    assert chosen == {"compute-2"}

    compute_2 = api.service_get_by_host(engine, "compute-2", "compute-agent")
    conductor.service_update(None, compute_2["id"], {"disabled": True})
    with pytest.raises(NoValidHost, match="compute-1: disabled; compute-2: disabled"):
        scheduler.select_destinations(None, spec)

    # A build with no valid host ends in ERROR with the fault recorded.
    inst = api.instance_create(engine, {"name": "nowhere", "project_id": "p", "flavor_id": "1"})
    conductor.build_instances({"project_id": "p"}, str(inst["uuid"]))
    failed = wait_until(lambda: (i := api.instance_get(engine, str(inst["uuid"])))["vm_state"] == "error"
                        and i, 15, "instance ERROR", evidence=two_computes.logs)
    assert failed["fault"].startswith("No valid host was found.")
    assert failed["host"] is None
