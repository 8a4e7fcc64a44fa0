"""Version discovery (``GET /`` and ``GET /v2.1``): no token needed, as in Nova.

keystoneauth reads ``version`` as the maximum microversion and ``min_version``
as the minimum; openstacksdk then asks for at most that.
"""
from __future__ import annotations

from typing import Any

from minicloud.api.app import ComputeApp
from minicloud.api.microversion import MIN_VERSION

UPDATED = "2013-07-23T11:33:21Z"


def _root(app: ComputeApp) -> str:
    return app.base_url.rsplit("/v2.1", 1)[0]


def v21_document(app: ComputeApp) -> dict[str, Any]:
    return {"id": "v2.1", "status": "CURRENT", "version": app.max_version, "min_version": MIN_VERSION,
            "updated": UPDATED,
            "links": [{"rel": "self", "href": f"{_root(app)}/v2.1/"},
                      {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2.1"}]}


def root(app: ComputeApp) -> dict[str, Any]:
    return {"versions": [v21_document(app)]}


def v21(app: ComputeApp) -> dict[str, Any]:
    return {"version": v21_document(app)}
