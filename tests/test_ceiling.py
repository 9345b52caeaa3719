"""The offline ceiling: an exact optimum on a hand-made case, and no heuristic ever above it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import orbit_env  # noqa: F401  (registers the ids)
from agents.ceiling import ceiling
from agents.heuristics import HEURISTICS
from orbit_env.config import ScenarioConfig
from orbit_env.sim.simulator import Simulator
from tests.checks import load_script
from tests.synthetic import SyntheticGeometry, always_visible
from tests.test_simulator import make_jobs

PINNED = json.loads((Path(__file__).resolve().parent / "fixtures" / "pinned_ceiling.json").read_text())


def _run(env, seed: int, name: str) -> tuple[float, dict]:
    obs, _ = env.reset(seed=seed)
    policy = HEURISTICS[name](seed=0)
    total, done = 0.0, False
    while not done:
        action, _ = policy.predict(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        done = terminated or truncated
    return total, info["episode_metrics"]


def _assert_below(env_id: str, seeds: list[int], names: list[str], **kwargs) -> None:
    env = gym.make(env_id)
    for seed in seeds:
        env.reset(seed=seed)
        bound = ceiling(env.unwrapped.sim, **kwargs)
        assert bound["status"] in ("optimal", "pooled", "trivial")
        for name in names:
            ret, metrics = _run(env, seed, name)
            assert ret <= bound["return"] + 1e-6, (env_id, seed, name, ret, bound)
            assert metrics["value_on_time"] <= bound["value_on_time"] + 1e-6, (env_id, seed, name, bound)


def test_ceiling_equals_the_optimum_when_two_jobs_compete_for_one_slot():
    # one satellite with one slot, always sunlit and in contact, that stops propagating at
    # 1500 s: its slot is alive over [0, 1440) s. Two jobs presented at 60 s each need the whole
    # 1380 s left, so only one can run: the best is the valuable one on time, the other rejected.
    dt, steps = 60.0, 60
    valid = np.ones((steps + 1, 1), dtype=bool)
    valid[25:] = False
    geo = SyntheticGeometry(
        dt_s=dt,
        sunlit_fraction=np.ones((steps + 1, 1)),
        station_hops=always_visible(steps + 1, 10, 1),
        valid=valid,
    )
    sim = Simulator(ScenarioConfig(horizon_s=steps * dt, dt_s=dt).replace(accelerators=1), geo)
    jobs = make_jobs(
        arrival_s=[0.0, 0.0],
        work_s=[1380.0, 1380.0],
        input_gb=[0.0, 0.0],
        deadline_s=[1500.0, 1500.0],
        value=[3.0, 1.0],
    )
    sim.reset(np.random.default_rng(0), jobs=jobs)
    bound = ceiling(sim, bucket_s=dt)  # one-step buckets: no slack inside a bucket
    assert bound["status"] == "optimal"
    assert bound["return"] == pytest.approx(3.0 - 0.25 * 1.0, abs=1e-4)
    assert bound["value_on_time"] == pytest.approx(3.0, abs=1e-4)
    np.testing.assert_allclose(bound["job_on_time"], [1.0, 0.0], atol=1e-6)  # which job the LP runs
    # and that optimum is reached: run job 0, reject job 1
    sim.advance()
    sim.place(0, 0)
    sim.reject(1)
    while not sim.done:
        sim.advance()
    c = sim.counters
    assert c.value_on_time == 3.0 and c.value_rejected == 1.0 and c.brownouts == 0


def test_no_heuristic_beats_the_ceiling_on_tiny():
    names = ["earliest_finish", "energy_aware", "eclipse_safe", "random"]
    _assert_below("orbit_env/Tiny-v0", [0, 1, 2], names)


def test_no_heuristic_beats_the_ceiling_on_walker():
    # pooled phase groups and coarse steps: still a bound, and a few seconds per episode
    _assert_below(
        "orbit_env/WalkerLEO-v0", [0], ["eclipse_safe", "earliest_finish"], groups=4, bucket_s=1200.0
    )


@pytest.mark.slow
def test_no_heuristic_beats_the_full_ceiling_on_walker_seeds():
    names = ["earliest_finish", "energy_aware", "value_density", "eclipse_safe", "random"]
    _assert_below("orbit_env/WalkerLEO-v0", [1, 2], names)


def test_ceiling_refuses_a_state_after_decisions():
    env = gym.make("orbit_env/Tiny-v0")
    env.reset(seed=1)
    env.step(env.unwrapped.n_sats + 1)  # reject the first job
    with pytest.raises(ValueError, match="after reset"):
        ceiling(env.unwrapped.sim)


def test_job_on_time_shares_add_up_to_the_lp_on_time_value_and_the_gap_script_uses_them():
    env = gym.make("orbit_env/Tiny-v0", split="test")
    env.reset(seed=1000)
    sim = env.unwrapped.sim
    bound = ceiling(sim)
    share = bound["job_on_time"]
    assert share.shape == sim.jobs.value.shape and ((share >= 0) & (share <= 1)).all()
    assert share @ sim.jobs.value == pytest.approx(bound["on_time_value"], rel=1e-9)
    module = load_script("docs/ceiling_gap.py")
    res = module.gap("orbit_env/Tiny-v0", ["eclipse_safe"], [1000], progress=False)
    assert res["ceiling"].sum() == pytest.approx(bound["on_time_value"], rel=1e-9)
    assert (res["ceiling"] <= res["arrived"] + 1e-9).all()
    _, metrics = _run(env, 1000, "eclipse_safe")
    assert res["on_time"]["eclipse_safe"].sum() == pytest.approx(metrics["value_on_time"])
    assert "| all |" in module.markdown(res, 1)


# -- pinned numbers: the LP refactor (issue 14) left every output unchanged ---------------------------
def _pinned(walker: bool) -> list[dict]:
    return [c for c in PINNED["cases"] if (c["env_id"] == "orbit_env/WalkerLEO-v0") == walker]


def _case_id(case: dict) -> str:
    return f"{case['env_id'].split('/')[1]}-{case['seed']}-groups{case['groups']}"


def _ceiling_record(case: dict) -> dict:
    """Every scalar ceiling() returns (but solve_s) and the sha256 of its job_on_time bytes."""
    env = gym.make(case["env_id"], split=PINNED["split"])
    env.reset(seed=case["seed"])
    kwargs = {"bucket_s": PINNED["bucket_s"], "time_limit_s": PINNED["time_limit_s"]}
    if case["groups"] is not None:
        kwargs["groups"] = case["groups"]
    out = ceiling(env.unwrapped.sim, **kwargs)
    record = {
        k: v.item() if isinstance(v, np.generic) else v
        for k, v in out.items()
        if k not in ("solve_s", "job_on_time")
    }
    shares = np.ascontiguousarray(out["job_on_time"]).tobytes()
    record["job_on_time_sha256"] = hashlib.sha256(shares).hexdigest()
    return record


@pytest.mark.parametrize("case", _pinned(walker=False), ids=_case_id)
def test_ceiling_on_tiny_matches_the_numbers_pinned_before_the_refactor(case):
    assert _ceiling_record(case) == case["expected"]  # exact: ==, not approx


@pytest.mark.slow
@pytest.mark.parametrize("case", _pinned(walker=True), ids=_case_id)
def test_ceiling_on_walker_matches_the_numbers_pinned_before_the_refactor(case):
    assert _ceiling_record(case) == case["expected"]
