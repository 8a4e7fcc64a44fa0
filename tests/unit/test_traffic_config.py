"""TrafficConfig and SloConfig: defaults, overrides, and errors that name file and field."""
from __future__ import annotations

import pytest

from harness.errors import ValidationError
from harness.traffic.config import (
    DEFAULT_API_MIX,
    SloConfig,
    TrafficConfig,
    parse_slo,
    parse_traffic,
    traffic_from_dict,
)
from harness.traffic.plan import ApiTarget, InstanceTarget, TrafficPlan


def test_defaults_are_the_issue_rates_and_slos() -> None:
    traffic = parse_traffic(None)
    assert traffic == TrafficConfig()
    assert traffic.samplers.api_interval_ms == 100
    assert traffic.samplers.dataplane_interval_ms == 20
    assert traffic.samplers.connections == ("new", "reused")
    assert traffic.api.mix == DEFAULT_API_MIX
    slo = parse_slo({})
    assert slo == SloConfig()
    assert slo.max_failed_api_requests == 0
    assert slo.max_lost_writes == 0
    assert slo.max_dataplane_gap_ms == 500.0
    assert slo.api_p99_ratio == 3.0


def test_overrides_are_typed() -> None:
    traffic = parse_traffic({"api": {"users": 0, "mix": {"list_servers": 1}},
                             "samplers": {"dataplane_interval_ms": 50, "connections": ["reused"],
                                          "api_targets": ["compute"]},
                             "dataplane": {"enabled": False}}, "s.yaml")
    assert traffic.api.users == 0
    assert traffic.api.mix == {"list_servers": 1}
    assert traffic.samplers.dataplane_interval_ms == 50.0
    assert traffic.samplers.connections == ("reused",)
    assert traffic.samplers.api_targets == ("compute",)
    assert traffic.dataplane.enabled is False
    assert traffic_from_dict(traffic.to_dict()) == traffic


@pytest.mark.parametrize(("data", "field", "problem"), [
    ({"samplers": {"api_interval_ms": 0}}, "traffic.samplers.api_interval_ms", "must be > 0"),
    ({"samplers": {"api_interval_ms": "fast"}}, "traffic.samplers.api_interval_ms", "must be a number"),
    ({"samplers": {"connections": ["pooled"]}}, "traffic.samplers.connections", "'pooled' is not one of"),
    ({"api": {"users": 1.5}}, "traffic.api.users", "must be an integer"),
    ({"api": {"mix": {"reboot_all": 3}}}, "traffic.api.mix.reboot_all", "unknown field"),
    ({"api": {"mix": {"list_servers": 0}}}, "traffic.api.mix", "weight > 0"),
    ({"dataplane": {"enabled": "yes"}}, "traffic.dataplane.enabled", "true or false"),
    ({"speed": 3}, "traffic.speed", "valid fields: api, dataplane, samplers"),
    ({"api": []}, "traffic.api", "must be a mapping"),
])
def test_errors_name_the_file_and_the_field(data: object, field: str, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_traffic(data, "scenarios/x.yaml")
    assert caught.value.path == "scenarios/x.yaml"
    assert caught.value.field == field
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"scenarios/x.yaml: {field}: ")


@pytest.mark.parametrize(("data", "field"), [
    ({"max_lost_writes": -1}, "slo.max_lost_writes"),
    ({"api_p99_ratio": 0}, "slo.api_p99_ratio"),
    ({"max_dataplane_gap_ms": True}, "slo.max_dataplane_gap_ms"),
    ({"p100": 1}, "slo.p100"),
])
def test_slo_errors_name_the_field(data: object, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_slo(data, "s.yaml")
    assert caught.value.field == field


def test_plan_round_trips_and_counts_users(tmp_path: object) -> None:
    plan = TrafficPlan(run_dir="r", timeline="r/t.jsonl", locust_dir="r/l", config=parse_traffic(None),
                       api_targets=[ApiTarget("compute", "127.0.0.1", 8774, "/v2.1")],
                       instances=[InstanceTarget("vm-1", "u", "127.0.0.1", 20001),
                                  InstanceTarget("vm-2", "v", "127.0.0.1", 20002)],
                       clouds_yaml="r/clouds.yaml")
    assert TrafficPlan.from_dict(plan.to_dict()) == plan
    assert plan.user_counts() == {"ApiSamplerUser": 2, "DataPlaneSamplerUser": 4,
                                  "DataPlaneWriterUser": 2, "OpenStackApiUser": 2, "ApiOpSamplerUser": 0}
