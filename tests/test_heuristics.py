"""Baselines: valid actions only, the right answer where it is known, and the expected ordering."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

from agents.base import Policy, layout_for
from agents.heuristics import HEURISTICS
from orbit_env.config import ScenarioConfig
from orbit_env.envs.features import FeatureBuilder
from orbit_env.envs.observation import ObservationLayout
from orbit_env.sim.simulator import Simulator
from tests.synthetic import SyntheticGeometry, always_visible
from tests.test_simulator import ONE_STATION, make_jobs


def run_episode(env: gym.Env, policy: Policy, seed: int) -> tuple[float, dict]:
    """Whole episode; asserts every action is allowed by the mask. Returns (return, metrics)."""
    obs, info = env.reset(seed=seed)
    total = 0.0
    while True:
        action, _ = policy.predict(obs)
        assert info["action_mask"][int(action)], f"{policy} chose a masked action {action}"
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        if terminated or truncated:
            return total, info["episode_metrics"]


@pytest.mark.parametrize("name", sorted(HEURISTICS))
def test_every_baseline_satisfies_the_policy_protocol(name):
    policy = HEURISTICS[name](seed=0)
    assert isinstance(policy, Policy)
    env = gym.make("orbit_env/Tiny-v1")
    obs, _ = env.reset(seed=0)
    single, state = policy.predict(obs)
    assert np.ndim(single) == 0 and state is None
    batch, _ = policy.predict(np.stack([obs, obs]), episode_start=np.array([True, True]))
    assert batch.shape == (2,)


@pytest.mark.parametrize("scenario", ["Tiny-v1", "WalkerLEO-v1"])
@pytest.mark.parametrize("name", sorted(HEURISTICS))
def test_every_baseline_chooses_only_valid_actions(scenario, name):
    env = gym.make(f"orbit_env/{scenario}")
    _, metrics = run_episode(env, HEURISTICS[name](seed=1), seed=3)
    assert metrics["jobs_arrived"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["Suncatcher-v1", "SuncatcherEclipse-v1", "OrbitPlacement-v1"])
@pytest.mark.parametrize("name", sorted(HEURISTICS))
def test_every_baseline_chooses_only_valid_actions_on_the_large_scenarios(scenario, name):
    run_episode(gym.make(f"orbit_env/{scenario}"), HEURISTICS[name](seed=1), seed=3)


def sunlit_charged_vs_eclipse_near_reserve() -> np.ndarray:
    """Observation of a 2-satellite case: 0 sunlit and full, 1 in a long eclipse at 22 % charge."""
    t = 121
    frac = np.zeros((t, 2))
    frac[:, 0] = 1.0
    geo = SyntheticGeometry(dt_s=60.0, sunlit_fraction=frac, station_hops=always_visible(t, 1, 2))
    cfg = ScenarioConfig(ground=ONE_STATION, horizon_s=7200.0)
    sim = Simulator(cfg, geo)
    sim.reset(
        np.random.default_rng(0), jobs=make_jobs(arrival_s=[30.0], work_s=[1800.0], deadline_s=[7000.0])
    )
    sim.energy_wh[:] = [0.95 * 2000.0, 0.22 * 2000.0]
    sim.advance()
    job = int(sim.pending()[0])
    return FeatureBuilder(ObservationLayout(2)).observe(sim, job, pending=1)


def test_rules_pick_the_sunlit_charged_satellite_and_random_sometimes_does_not():
    obs = sunlit_charged_vs_eclipse_near_reserve()
    layout = layout_for(obs)
    sats = layout.satellites(obs)
    assert sats[:, layout.sat_index("valid_target")].tolist() == [1.0, 1.0]  # both are allowed
    assert sats[1, layout.sat_index("eclipse_margin")] < 0.2  # satellite 1 would run dry
    for name in ("earliest_finish", "energy_aware"):
        action, _ = HEURISTICS[name](seed=0).predict(obs)
        assert action == 0, name
    random_policy = HEURISTICS["random"](seed=0)
    choices = {int(random_policy.predict(obs)[0]) for _ in range(50)}
    assert choices - {0}, "random should sometimes choose another action"


def mean_returns(names: list[str], seeds: range) -> dict[str, tuple[float, float]]:
    env = gym.make("orbit_env/WalkerLEO-v1", split="test")
    out = {}
    for name in names:
        results = [run_episode(env, HEURISTICS[name](seed=s), seed=s) for s in seeds]
        out[name] = (
            float(np.mean([r for r, _ in results])),
            float(np.mean([m["brownouts"] for _, m in results])),
        )
    return out


@pytest.mark.slow
def test_textbook_rules_beat_random_and_round_robin_and_eclipse_safe_browns_out_less():
    res = mean_returns(
        ["random", "round_robin", "earliest_finish", "energy_aware", "eclipse_safe"], range(10)
    )
    for good in ("earliest_finish", "energy_aware"):
        for weak in ("random", "round_robin"):
            assert res[good][0] > res[weak][0], (good, weak, res)
    assert res["eclipse_safe"][1] < res["energy_aware"][1], res


def test_rules_take_the_envs_defer_s_for_their_fallback():
    from agents.base import DEFAULT_DEFER_S
    from agents.heuristics import fallback
    from agents.registry import make_policy

    env = gym.make("orbit_env/Tiny-v1", defer_s=5000.0)
    assert make_policy("eclipse_safe", env=env).defer_s == 5000.0
    assert make_policy("eclipse_safe").defer_s == DEFAULT_DEFER_S == 600.0
    layout = env.unwrapped.layout
    job = np.zeros(len(layout.job_columns), dtype=np.float32)
    job[layout.job_index("time_to_deadline")] = 3 * 3600.0 / layout.column("time_to_deadline").scale
    job[layout.job_index("work")] = 3600.0 / layout.column("work").scale
    # 3 h to the deadline, 1 h of work: room for another look after 600 s, none after 5000 s
    assert fallback(layout, job, 600.0) == layout.n_sats  # defer
    assert fallback(layout, job, 5000.0) == layout.n_sats + 1  # reject


# -- link_aware and marginal_cost: the right answer on hand-built observations ---------------------


def encoded(layout: ObservationLayout, sats: dict, job: dict, glob: dict | None = None) -> np.ndarray:
    """A flat observation from physical values by column name (unnamed columns 0)."""

    def entry(name: str, value):
        c = layout.column(name)
        return (np.log1p(value) if c.log else np.asarray(value, dtype=float)) / c.scale

    s = np.zeros((layout.n_sats, layout.n_sat_features))
    j = np.zeros(len(layout.job_columns))
    g = np.zeros(len(layout.global_columns))
    for name, value in sats.items():
        s[:, layout.sat_index(name)] = entry(name, value)
    for name, value in job.items():
        j[layout.job_index(name)] = entry(name, value)
    for name, value in (glob or {}).items():
        g[layout.global_index(name)] = entry(name, value)
    return layout.encode(s, j, g)


THREE_OPEN = {  # three valid, sunlit satellites, far from eclipse, delivering well on time
    "valid_target": 1.0,
    "sunlit": 1.0,
    "time_to_crossing": 1.0,
    "delivery_slack": 0.5,
    "soc_after_queue": 0.9,
    "eclipse_margin": [0.9, 0.3, 0.9],
    "queue_fill": [0.0, 0.0, 0.8],
}
ONE_HOUR_JOB = {"present": 1.0, "work": 3600.0, "time_to_deadline": 5 * 3600.0}


def test_marginal_cost_runs_where_value_most_exceeds_the_barrier_cost_and_sheds_when_none_does():
    from agents.heuristics import Barriers, MarginalCostPolicy

    layout = ObservationLayout(3)
    rule = MarginalCostPolicy(barriers=Barriers(base_price=2.0, battery_weight=0.2, queue_weight=0.5))
    # prices per hour: 2·(1 + 0.2·(1/0.9 − 1)) = 2.04, 2·(1 + 0.2·(1/0.3 − 1)) = 2.93,
    # 2·(1 + 0.02 + 0.5·(1/0.2 − 1)) = 6.04
    price = rule.price(layout, layout.satellites(encoded(layout, THREE_OPEN, ONE_HOUR_JOB))[None])[0]
    np.testing.assert_allclose(
        price, [2 * (1 + 0.2 / 9), 2 * (1 + 0.2 * (1 / 0.3 - 1)), 2 * (1 + 0.2 / 9 + 2)], rtol=1e-5
    )
    assert rule.predict(encoded(layout, THREE_OPEN, {**ONE_HOUR_JOB, "value": 10.0}))[0] == 0
    # worth 2.5: only satellite 0 (2.04) earns it; satellite 0 masked: satellite 1 costs 2.93, shed (defer)
    assert rule.predict(encoded(layout, THREE_OPEN, {**ONE_HOUR_JOB, "value": 2.5}))[0] == 0
    masked = {**THREE_OPEN, "valid_target": [0.0, 1.0, 1.0]}
    assert rule.predict(encoded(layout, masked, {**ONE_HOUR_JOB, "value": 2.5}))[0] == 3
    # a battery at its limit is an infinite cost
    drained = {**THREE_OPEN, "eclipse_margin": [0.0, 0.0, 0.0]}
    assert rule.predict(encoded(layout, drained, {**ONE_HOUR_JOB, "value": 100.0}))[0] == 3


def test_link_aware_keeps_a_congested_stations_antennas_for_uploads_worth_them():
    from agents.heuristics import LinkAwarePolicy, Thresholds

    layout = ObservationLayout(3)
    t = Thresholds(min_soc_after_queue=0.1, scarce_soc=0.0, eclipse_margin_soc=0.0, busy_backlog_s=600.0)
    rule = LinkAwarePolicy(thresholds=dataclasses.replace(t, min_value_per_gb=0.5, delivery_margin=0.2))
    upload = {**ONE_HOUR_JOB, "value": 5.0, "input_size": 20.0}  # 0.25 per GB
    assert rule.predict(encoded(layout, THREE_OPEN, {**upload, "origin_backlog": 0.0}))[0] in (0, 1, 2)
    assert rule.predict(encoded(layout, THREE_OPEN, {**upload, "origin_backlog": 1200.0}))[0] == 3  # deferred
    worth = {**upload, "value": 20.0, "origin_backlog": 1200.0}  # 1 per GB
    assert rule.predict(encoded(layout, THREE_OPEN, worth))[0] in (0, 1, 2)
    on_board = {**upload, "in_orbit_data": 1.0, "origin_backlog": 1200.0}
    assert rule.predict(encoded(layout, THREE_OPEN, on_board))[0] in (0, 1, 2)
    # a delivery estimate with less slack than the margin is not trusted
    tight = {**THREE_OPEN, "delivery_slack": 0.1}
    assert rule.predict(encoded(layout, tight, {**upload, "origin_backlog": 0.0}))[0] == 3
