"""Manual proof that the OpenStack images deploy: a real cloud up, one server booted and deleted.

    /work/main/.venv/bin/python images/openstack/prove.py [--release 2026.1] [--keep-on-failure]

Starts MariaDB, RabbitMQ, Keystone, Placement, the Glance and Neutron
stand-ins, nova-api, nova-conductor, nova-scheduler and three nova-computes
(fake.FakeDriverWithoutFakeNodes) as containers on a user network of their
own, API ports published on 127.0.0.1 only; runs the database syncs and cell
setup; makes the catalog with openstacksdk; boots one server (``--nic none``),
waits for ACTIVE, deletes it. Prints the time of every phase and the peak
memory of the cloud (sum of the containers' RSS, sampled every second).

Everything it creates carries ``rollgate.managed=true`` and
``rollgate.run=<run id>`` and is removed on exit, on an error, on Ctrl-C and
on SIGTERM (``--keep-on-failure`` keeps a failed cloud for a look; remove it
later with ``docker rm -f $(docker ps -aq -f label=rollgate.run=<id>)``).
Not a CI test (issue 7: the CI budget is full); the next engineer turns it
into the ``openstack`` cloud profile.
"""
from __future__ import annotations

import argparse
import secrets
import signal
import sys
import time
from types import FrameType

from prove_cloud import (  # the script's directory is on sys.path
    ADMIN_PASSWORD,
    ProofCloud,
    make_catalog,
    poll,
    wait_http,
)

STANDIN_IMAGE_ID = "5e7a0d1e-0000-4000-8000-00000000c1a0"  # bin/rollgate-standin serves it
COMPUTES = 3


def deploy(cloud: ProofCloud, phases: dict[str, float]) -> None:
    """From nothing to a cloud whose three computes are mapped and reported to Placement."""
    mark = time.monotonic()
    cloud.create_network_and_volumes()
    cloud.start_infrastructure()
    phases["mariadb+rabbitmq healthy"] = time.monotonic() - mark

    # Setup runs in one-off containers in parallel; each service starts once its own schema is
    # there. Phases from here on are times since the setup started (they overlap).
    setup_started = time.monotonic()

    def since_setup(name: str) -> None:
        phases[f"t+ {name}"] = time.monotonic() - setup_started

    public_keystone = f"http://127.0.0.1:{cloud.ports['keystone']}/v3"
    setup = cloud.start_oneoffs({
        "keystone-setup": "keystone-manage db_sync && "
                          "keystone-manage fernet_setup --keystone-user root --keystone-group root && "
                          "keystone-manage credential_setup --keystone-user root --keystone-group root && "
                          f"keystone-manage bootstrap --bootstrap-password {ADMIN_PASSWORD} "
                          f"--bootstrap-public-url {public_keystone} "
                          "--bootstrap-internal-url http://keystone:5000/v3 "
                          "--bootstrap-admin-url http://keystone:5000/v3 --bootstrap-region-id RegionOne",
        "placement-db-sync": "placement-manage db sync",
        "nova-db-setup": "nova-manage api_db sync && nova-manage cell_v2 map_cell0 && "
                         "nova-manage cell_v2 create_cell --name=cell1 --verbose && nova-manage db sync",
    })
    setup["keystone-setup"].result()
    since_setup("keystone db_sync + bootstrap done")
    cloud.start_keystone()
    setup["placement-db-sync"].result()
    since_setup("placement db sync done")
    cloud.start_placement_and_standins()
    wait_http(public_keystone, cloud, "keystone")
    since_setup("keystone answers")
    conn = make_catalog(cloud)
    since_setup("catalog made (openstacksdk)")
    setup["nova-db-setup"].result()
    since_setup("nova api_db/cell0/cell1/db sync done")

    cloud.start_nova(COMPUTES)
    wait_http(f"http://127.0.0.1:{cloud.ports['placement']}/", cloud, "placement")
    wait_http(f"http://127.0.0.1:{cloud.ports['nova-api']}/", cloud, "nova-api")
    poll("3 nova-compute services up", lambda: sum(
        1 for s in conn.compute.services() if s.binary == "nova-compute" and s.state == "up") == COMPUTES,
        timeout=240, cloud=cloud)
    cloud.exec_in("nova-conductor", "nova-manage cell_v2 discover_hosts --verbose")
    poll("3 resource providers in Placement",
         lambda: len(list(conn.placement.resource_providers())) == COMPUTES, timeout=120, cloud=cloud)
    since_setup("nova started; 3 computes up, mapped, in Placement")
    cloud.conn = conn


def smoke(cloud: ProofCloud, phases: dict[str, float]) -> str:
    """Boot one server with no network, see it ACTIVE on a compute, delete it."""
    conn = cloud.conn
    mark = time.monotonic()
    flavor = conn.compute.create_flavor(name=f"rg-{cloud.run_id}", ram=64, vcpus=1, disk=1)
    server = conn.compute.create_server(name=f"rg-{cloud.run_id}-vm", image_id=STANDIN_IMAGE_ID,
                                        flavor_id=flavor.id, networks="none")
    server = conn.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], interval=1, wait=180)
    host = server.compute_host or "?"
    phases["boot to ACTIVE"] = time.monotonic() - mark
    mark = time.monotonic()
    conn.compute.delete_server(server)
    conn.compute.wait_for_delete(server, interval=1, wait=120)
    conn.compute.delete_flavor(flavor)
    phases["delete"] = time.monotonic() - mark
    return host


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--release", default="2026.1", choices=("2026.1", "2026.2"))
    parser.add_argument("--keep-on-failure", action="store_true")
    args = parser.parse_args()
    run_id = "osp" + secrets.token_hex(3)

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    # Also when started in the background by a shell, which leaves SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cloud = ProofCloud(run_id, args.release)
    phases: dict[str, float] = {}
    started = time.monotonic()
    ok = False
    try:
        cloud.check_images()
        cloud.sampler.start()
        deploy(cloud, phases)
        phases["DEPLOY TOTAL"] = time.monotonic() - started
        host = smoke(cloud, phases)
        ok = True
        print(f"\nPASS run {run_id} release {args.release}: server booted on {host} and deleted")
    except KeyboardInterrupt:
        print(f"\ninterrupted; cleaning up run {run_id}", file=sys.stderr)
    except Exception as exc:  # the proof reports any failure with the evidence, then cleans up
        print(f"\nFAIL run {run_id}: {type(exc).__name__}: {exc}", file=sys.stderr)
        cloud.dump_logs()
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the cleanup
        cloud.sampler.stop()
        for name, seconds in phases.items():
            print(f"  {name:45} {seconds:7.1f}s")
        print(f"  {'peak RSS of the cloud (all containers)':45} {cloud.sampler.peak_rss / 2**30:7.2f} GiB"
              f" ({cloud.sampler.containers_at_peak} containers)")
        if ok or not args.keep_on_failure:
            cleanup_started = time.monotonic()
            left = cloud.clean_up()
            print(f"  cleanup ({time.monotonic() - cleanup_started:.1f}s): {left or 'nothing left'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
