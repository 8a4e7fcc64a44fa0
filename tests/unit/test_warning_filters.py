"""rollgate's pytest plugin filters dependencies' deprecation noise (here and in ``pytest
scenarios/X.yaml``): openstacksdk's notices about its own internals must not bury the summary;
other warnings stay."""
from __future__ import annotations

import warnings

import pytest
from openstack import warnings as os_warnings


def test_openstacksdk_deprecation_notices_are_filtered() -> None:
    with warnings.catch_warnings(record=True) as seen:
        # catch_warnings(record=True) keeps the filters pytest installed from pyproject.toml
        warnings.warn("the 'service_type' parameter is unnecesary", os_warnings.RemovedInSDK50Warning,
                      stacklevel=1)
        warnings.warn("influxdb", os_warnings.RemovedInSDK60Warning, stacklevel=1)
        warnings.warn("legacy", os_warnings.LegacyAPIWarning, stacklevel=1)
    assert seen == []


def test_other_warnings_still_show() -> None:
    with pytest.warns(UserWarning, match="ours"):
        warnings.warn("ours", UserWarning, stacklevel=1)
