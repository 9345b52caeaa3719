"""Week-long episodes: jobs and energy stay conserved to 1e-9 relative after ~10^4 simulator steps.

Rounding in the exact piecewise integration accumulates over an episode; these runs check that it
stays far below the design's 1e-9 relative tolerance after a week of orbits, eclipses, brownouts
and tens of thousands of decisions (a random masked policy).
"""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest

import orbit_env  # noqa: F401  (registers the ids)
from tests.checks import assert_jobs_conserved

DAY_S = 86400.0
CHECK_EVERY = 2000  # decisions between full invariant checks


def run_week(env_id: str, days: float, seed: int, **overrides) -> dict:
    env = gym.make(env_id, horizon_s=days * DAY_S, **overrides)
    started = time.perf_counter()
    obs, info = env.reset(seed=seed)
    sim = env.unwrapped.sim
    rng = np.random.default_rng(seed)
    steps, total, done = 0, 0.0, False
    while not done:
        mask = info["action_mask"]
        assert mask.any()
        obs, reward, terminated, truncated, info = env.step(int(rng.choice(np.flatnonzero(mask))))
        total += reward
        steps += 1
        done = terminated or truncated
        if steps % CHECK_EVERY == 0 or done:
            assert np.isfinite(obs).all() and np.isfinite(total)
            sim.check_invariants(rtol=1e-9)
    assert terminated and not truncated
    assert days * DAY_S <= sim.now_s <= sim.max_steps * sim.dt_s  # the horizon, then the drain
    sim.check_invariants(rtol=1e-9)
    battery, bus, _ = sim.energy_errors()
    assert battery <= 1e-9 and bus <= 1e-9
    m = info["episode_metrics"]
    assert_jobs_conserved(m)
    assert m["jobs_arrived"] == sim.counters.arrived and m["decisions"] == steps
    assert m["energy_generated_kwh"] > 0 and m["energy_used_kwh"] > 0
    seconds = time.perf_counter() - started
    print(
        f"{env_id}: {steps:,} decisions, {sim.step_index:,} simulator steps, {sim.now_s / DAY_S:g} "
        f"simulated days in {seconds:.1f} s; {m['jobs_arrived']:,} jobs, {m['brownouts']} brownouts; "
        f"relative energy errors {battery:.1e} (battery), {bus:.1e} (bus)"
    )
    return {"steps": steps, "metrics": m}


def test_tiny_week_conserves_jobs_and_energy():
    out = run_week("orbit_env/Tiny-v1", 7.0, seed=11)
    assert out["steps"] > 1000


@pytest.mark.slow
def test_walker_leo_week_conserves_jobs_and_energy():
    # ~72k decisions and 10,080 simulator steps: ~45 s here (geometry ~6 s, not cached: ~90 MB)
    out = run_week("orbit_env/WalkerLEO-v1", 7.0, seed=0, geometry_cache=False)
    assert out["steps"] > 20_000
    assert out["metrics"]["brownouts"] > 0 and out["metrics"]["energy_curtailed_kwh"] > 0
