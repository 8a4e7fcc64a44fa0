"""``python -m minicloud SERVICE --config FILE``: run one minicloud service."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from minicloud.config import SERVICES, ConfigError, load_config

# service name -> module under minicloud.services exposing main(config) -> int
MODULES = {name: "minicloud.services." + name.replace("-", "_") for name in SERVICES}


def setup_logging(service: str, host: str, release: str) -> None:
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {service} {host} {release} %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="minicloud")
    parser.add_argument("service", choices=SERVICES)
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.service)
    except ConfigError as exc:
        print(f"minicloud: error: {exc}", file=sys.stderr)
        return 2
    setup_logging(args.service, config.host, config.release.label)
    module = importlib.import_module(MODULES[args.service])
    return int(module.main(config))


if __name__ == "__main__":
    sys.exit(main())
