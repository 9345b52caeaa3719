"""Every config field refuses bad values with an error naming the field and its range."""

from __future__ import annotations

import dataclasses
import math
import re
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbit_env.config import (
    SUBCONFIGS,
    ConstellationConfig,
    LinkConfig,
    PowerConfig,
    RewardConfig,
    ScenarioConfig,
    StationConfig,
    WorkloadConfig,
    all_field_names,
    field_owner,
)
from orbit_env.sim.orbits import GroundStation

NUMERIC_CONFIGS = (ConstellationConfig, PowerConfig, LinkConfig, WorkloadConfig, RewardConfig, ScenarioConfig)
NON_NUMERIC = {
    "constellation",
    "tle_path",
    "trace_path",
    "isl_topology",
    "name",
    "epoch",
    "split",
    "season_doy",
    "initial_soc",
    *SUBCONFIGS,
}
NUMERIC_FIELDS = [
    (cls, f.name) for cls in NUMERIC_CONFIGS for f in dataclasses.fields(cls) if f.name not in NON_NUMERIC
]
BAD_VALUES = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, None, "3", True, [1.0], complex(1, 1)]),
    st.floats(max_value=-1e7, allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e8, allow_nan=False, allow_infinity=False),
)


@settings(max_examples=400, deadline=None)
@given(case=st.sampled_from(NUMERIC_FIELDS), value=BAD_VALUES)
def test_every_numeric_field_rejects_bad_values_naming_the_field(case, value):
    cls, name = case
    with pytest.raises((ValueError, TypeError)) as err:
        cls(**{name: value})
    assert name in str(err.value)


@pytest.mark.parametrize("cls", NUMERIC_CONFIGS)
def test_defaults_are_valid(cls):
    assert dataclasses.is_dataclass(cls())


def test_every_numeric_field_is_swept():
    assert len(NUMERIC_FIELDS) >= 35


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"battery_wh": 0}, re.escape("battery_wh must be in (0, 1e+07], got 0")),
        ({"battery_wh": -3.0}, "battery_wh must be in"),
        ({"initial_soc": (0.9, 0.1)}, "initial_soc"),
        ({"initial_soc": (0.1,)}, "initial_soc"),
        ({"accelerator_idle_w": 800.0}, "accelerator_idle_w must be in"),
        ({"accelerators": 2.5}, "accelerators must be an integer"),
    ],
)
def test_power_config_messages(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        PowerConfig(**kwargs)


def test_constellation_choices_and_walker_shape():
    with pytest.raises(ValueError, match="constellation must be one of"):
        ConstellationConfig(constellation="ring")
    with pytest.raises(ValueError, match="multiple of planes"):
        ConstellationConfig(total=10, planes=3)
    with pytest.raises(ValueError, match="tle_path"):
        ConstellationConfig(constellation="tle", tle_path="/no/such/file.tle")
    with pytest.raises(ValueError, match="phasing"):
        ConstellationConfig(phasing=8)


def test_workload_shares_must_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        WorkloadConfig(inference_share=0.5, training_share=0.5, earth_observation_share=0.5)
    with pytest.raises(ValueError, match="trace_path"):
        WorkloadConfig(trace_path="/no/such/trace.csv")


def test_scenario_fields():
    with pytest.raises(ValueError, match="epoch must be timezone-aware"):
        ScenarioConfig(epoch=datetime(2026, 1, 1))
    with pytest.raises(TypeError, match="epoch"):
        ScenarioConfig(epoch="2026-01-01")
    with pytest.raises(ValueError, match="dt_s"):
        ScenarioConfig(dt_s=0)
    with pytest.raises(ValueError, match="horizon_s"):
        ScenarioConfig(dt_s=60.0, horizon_s=30.0)
    with pytest.raises(ValueError, match="split must be one of"):
        ScenarioConfig(split="validation")
    with pytest.raises(ValueError, match="season_doy"):
        ScenarioConfig(season_doy=(0, 400))
    with pytest.raises(TypeError, match="power must be a PowerConfig"):
        ScenarioConfig(power={"battery_wh": 10})
    assert ScenarioConfig(epoch=datetime(2026, 1, 1, tzinfo=timezone.utc)).steps == 720


def test_stations():
    with pytest.raises(ValueError, match="at least one"):
        StationConfig(stations=())
    with pytest.raises(TypeError, match="tuple of GroundStation"):
        StationConfig(stations=[GroundStation("A", 0, 0)])
    with pytest.raises(ValueError, match="unique names"):
        StationConfig(stations=(GroundStation("A", 0, 0), GroundStation("A", 1, 1)))
    with pytest.raises(ValueError, match="demand_stations"):
        StationConfig(stations=(GroundStation("A", 0, 0),), demand_stations=(3,))
    with pytest.raises(ValueError, match="lat_deg must be in"):
        GroundStation("B", 95.0, 0.0)
    with pytest.raises(ValueError, match="min_elevation_deg"):
        GroundStation("B", 45.0, 0.0, min_elevation_deg=-5.0)


def test_field_names_are_unique_across_configs():
    names = all_field_names()
    assert len(names) == len(set(names))


def test_flat_overrides_reach_their_config_and_unknown_names_suggest_the_closest():
    cfg = ScenarioConfig().replace(battery_wh=1000.0, load=1.2, isl_gbps=1600.0, dt_s=30.0)
    assert cfg.power.battery_wh == 1000.0
    assert cfg.workload.load == 1.2
    assert cfg.links.isl_gbps == 1600.0
    assert cfg.dt_s == 30.0
    assert field_owner("battery_wh") == "power"
    with pytest.raises(ValueError, match="'battery_wh'"):
        ScenarioConfig().replace(batery_wh=10)
    with pytest.raises(ValueError, match="load must be in"):
        ScenarioConfig().replace(load=-1.0)


def test_configs_are_frozen():
    cfg = PowerConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.battery_wh = 5.0  # type: ignore[misc]


def test_command_line_overrides_are_typed_for_the_configs():
    from orbit_env.config import parse_overrides

    parsed = parse_overrides(
        ["battery_wh=1000", "load=1.2", "epoch=2026-12-21T00:00:00Z", "season_doy=[335, 20]"]
    )
    assert parsed == {
        "battery_wh": 1000,
        "load": 1.2,
        "epoch": "2026-12-21T00:00:00Z",
        "season_doy": (335, 20),
    }
    assert ScenarioConfig().replace(**{k: v for k, v in parsed.items() if k != "epoch"}).season_doy == (
        335,
        20,
    )
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["battery_wh"])
