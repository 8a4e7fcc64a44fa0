"""``/flavors``: list, detail, show (any authenticated user)."""
from __future__ import annotations

from typing import Any

from minicloud.api import views
from minicloud.api.app import ApiRequest, ComputeApp
from minicloud.db import api as db
from minicloud.web import HTTPError


def list_flavors(app: ComputeApp, request: ApiRequest, detail: bool) -> dict[str, Any]:
    return {"flavors": [views.flavor_view(f, app.base_url, request.version, detail,
                                             release=app.config.release)
                        for f in db.flavor_list(app.engine)]}


def show_flavor(app: ComputeApp, request: ApiRequest) -> dict[str, Any]:
    flavor_id = request.params["flavor_id"]
    flavor = next((f for f in db.flavor_list(app.engine) if str(f["id"]) == flavor_id), None)
    if flavor is None:
        raise HTTPError(404, f"Flavor {flavor_id} could not be found.", "itemNotFound")
    return {"flavor": views.flavor_view(flavor, app.base_url, request.version, detail=True,
                                         release=app.config.release)}
