"""Scenario files: valid fixtures load into the model, invalid ones fail with file, field and fix."""
from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from harness.errors import ValidationError
from harness.scenario import DEFAULT_TOPOLOGY, SECTION_PARSERS, release_key, release_problem, scenario_schema
from harness.scenario.load import load_scenario, parse_scenario

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios"
VALID = sorted((FIXTURES / "valid").glob("*.yaml"))
INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))


def expectation(path: Path) -> tuple[str, str]:
    """The ``# expect: FIELD | PROBLEM SUBSTRING`` first line of an invalid fixture."""
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path} lacks its expectation line"
    field, _, problem = first.removeprefix("# expect: ").partition(" | ")
    return field, problem


def test_fixture_sets_are_not_empty() -> None:
    assert len(VALID) >= 5
    assert len(INVALID) >= 20


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_fixture_loads_and_matches_the_packaged_schema(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.name
    assert scenario.path == str(path)
    # Editors validate with the schema alone: it must accept every valid file too.
    jsonschema.Draft202012Validator(scenario_schema()).validate(yaml.safe_load(path.read_text()))


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_fixture_names_file_field_and_problem(path: Path) -> None:
    field, problem = expectation(path)
    with pytest.raises(ValidationError) as caught:
        load_scenario(path)
    assert caught.value.path == str(path)
    assert caught.value.field == field
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{path}: {field}: ")


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(scenario_schema())


def test_default_topology_when_omitted() -> None:
    scenario = load_scenario(FIXTURES / "valid" / "minimal.yaml")
    hosts = scenario.topology.hosts
    assert [(h.name, h.roles[0]) for h in hosts] == list(DEFAULT_TOPOLOGY)
    assert len(scenario.topology.with_role("controller")) == 2
    assert len(scenario.topology.with_role("compute")) == 3
    assert [len(scenario.topology.with_role(r)) for r in ("network", "db", "lb")] == [1, 1, 1]
    assert all(r == "1.0" for h in hosts for r in h.releases.values())
    assert scenario.topology.host("db-1").releases == {}


def test_full_fixture_model() -> None:
    scenario = load_scenario(FIXTURES / "valid" / "full.yaml")
    assert scenario.seed == 1234
    compute3 = scenario.topology.host("compute-3")
    assert compute3.releases == {"compute-agent": "1.1", "hypervisor": "1.0"}
    assert compute3.upgradable_services == ("compute-agent",)
    spec = compute3.to_spec()
    assert (spec.name, spec.address, spec.roles) == ("compute-3", "127.0.10.5", ("compute",))
    infra = scenario.topology.host("infra-1")
    assert infra.roles == ("db", "lb")
    assert infra.services == ()
    assert scenario.upgrade is not None
    policy = scenario.upgrade.policy
    assert (policy.batch_size, policy.max_unavailable, policy.order) == (2, 2, "random")
    assert policy.pause_between_batches == 5.0
    assert policy.online_migration_batch == 10
    assert scenario.traffic["api"] == {"users": 4, "wait_s": 0.5}
    assert scenario.traffic_config.api.users == 4
    assert scenario.traffic_config.dataplane.write_interval_ms == 50
    assert scenario.slo_config.max_dataplane_gap_ms == 2000
    assert scenario.faults[0]["action"] == "kill"
    assert scenario.resources == {"servers": 4}


def test_reboot_defaults_to_computes_and_same_release() -> None:
    scenario = load_scenario(FIXTURES / "valid" / "reboot.yaml")
    assert scenario.upgrade is not None
    assert scenario.upgrade.to_release == scenario.upgrade.from_release == "1.1"
    assert scenario.upgrade.policy.roles == ("compute",)


def test_max_unavailable_defaults_to_batch_size() -> None:
    scenario = parse_scenario({"name": "x", "upgrade": {"from": "1.0", "to": "1.1",
                                                        "policy": {"batch_size": 2}}})
    assert scenario.upgrade is not None
    assert scenario.upgrade.policy.max_unavailable == 2


def test_unreadable_file_is_a_validation_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ValidationError) as caught:
        load_scenario(path)
    assert caught.value.field == "(top level)"


def test_section_parser_hook_is_called_with_the_file() -> None:
    seen: list[tuple[object, str]] = []

    def parse_traffic(value: object, path: str) -> None:
        seen.append((value, path))
        raise ValidationError(path, "traffic.api_users", "must be positive")

    SECTION_PARSERS["traffic"] = parse_traffic
    try:
        with pytest.raises(ValidationError, match=r"f\.yaml: traffic\.api_users: must be positive"):
            parse_scenario({"name": "x", "traffic": {"api_users": -1},
                            "topology": {"release": "1.0"}}, "f.yaml")
    finally:
        del SECTION_PARSERS["traffic"]
    assert seen == [({"api_users": -1}, "f.yaml")]


@pytest.mark.parametrize(("label", "ok"), [("1.0", True), ("1.1.1", True), ("2.0+unpinned", True),
                                           ("1.1+nostart", True), ("3.0", False), ("1.1+x", False)])
def test_release_labels(label: str, ok: bool) -> None:
    assert (release_problem(label) is None) is ok


def test_release_order() -> None:
    assert sorted(["2.0", "1.1.1", "1.0", "1.1"], key=release_key) == ["1.0", "1.1", "1.1.1", "2.0"]


def test_traffic_and_slo_errors_come_from_the_traffic_parsers(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text('name: x\nupgrade: {from: "1.0", to: "1.1"}\nslo: {max_lost_writez: 1}\n')
    with pytest.raises(ValidationError) as caught:
        load_scenario(path)
    assert caught.value.path == str(path)
    assert caught.value.field.startswith("slo")
    defaults = load_scenario(FIXTURES / "valid" / "minimal.yaml")
    assert defaults.slo_config.max_lost_writes == 0
    assert defaults.traffic_config.api.users >= 1
