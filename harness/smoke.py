"""The smoke check: the smallest proof that a deployed cloud works end to end.

Authenticate, list images and flavors, boot a server, wait until it is ACTIVE,
write and read a key through its floating address, delete it. A broken
promise of the cloud raises CloudFailure (FAIL); anything else is ERROR.
"""
from __future__ import annotations

import logging
import time
from typing import Any

import requests

from harness.clouds.minicloud.health import floating_endpoint as data_path_endpoint
from harness.deploy import connect
from harness.errors import CloudFailure
from harness.runstate import RunState

LOG = logging.getLogger(__name__)


def floating_endpoint(server: Any) -> str:
    """``ip:port`` of a server's data path; CloudFailure when the server has none."""
    endpoint = data_path_endpoint(server)
    if endpoint is None:
        raise CloudFailure(f"server {server.id} has no floating address: {server.addresses}")
    return endpoint


def run_smoke(state: RunState, timeout: float = 60.0) -> list[str]:
    """Run the smoke check; return the steps done. Raises CloudFailure."""
    conn = connect(state)
    done: list[str] = []
    images = list(conn.image.images())
    flavors = list(conn.compute.flavors())
    if not images or not flavors:
        raise CloudFailure(f"cloud lists {len(images)} images and {len(flavors)} flavors; expected some")
    done.append(f"listed {len(images)} images, {len(flavors)} flavors")
    started = time.monotonic()
    server = conn.compute.create_server(name="rollgate-smoke", image_id=images[0].id,
                                        flavor_id=flavors[0].id, networks="none")
    try:
        try:
            server = conn.compute.wait_for_server(server, status="ACTIVE", wait=timeout, interval=0.1)
        except Exception as exc:
            raise CloudFailure(f"server {server.id} did not become ACTIVE: {exc}") from exc
        done.append(f"server ACTIVE on {server.compute_host} in {time.monotonic() - started:.2f}s")
        endpoint = floating_endpoint(server)
        put = requests.put(f"http://{endpoint}/kv/smoke", data=b"ok", timeout=5)
        got = requests.get(f"http://{endpoint}/kv/smoke", timeout=5)
        if not put.ok or got.text != "ok":
            raise CloudFailure(
                f"data path {endpoint}: PUT {put.status_code}, GET {got.status_code} {got.text!r}")
        done.append(f"data path {endpoint} wrote and read a key")
    finally:
        conn.compute.delete_server(server, ignore_missing=True)
    try:
        conn.compute.wait_for_delete(server, wait=timeout, interval=0.1)
    except Exception as exc:
        raise CloudFailure(f"server {server.id} was not deleted: {exc}") from exc
    done.append("server deleted")
    return done
