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

DAY_S = 86400.0
CHECK_EVERY = 2000  # decisions between full invariant checks


def energy_errors(sim) -> tuple[float, float]:
    """Relative errors of battery change = charged − discharged and generation = used + stored +
    curtailed, each over the constellation's largest per-satellite flow."""
    lg, p = sim.ledger, sim.power
    change = sim.energy_wh - sim.energy0_wh
    scale = max(1.0, float(np.abs(lg.generated).max()), float(np.abs(change).max()))
    battery = float(np.abs(change - (lg.charged - lg.discharged)).max()) / scale
    bus = float(np.abs(lg.generated - (lg.used + lg.stored(p) + lg.curtailed)).max()) / scale
    return battery, bus


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
    assert truncated and not terminated
    assert sim.now_s == pytest.approx(days * DAY_S)
    sim.check_invariants(rtol=1e-9)
    battery, bus = energy_errors(sim)
    assert battery <= 1e-9 and bus <= 1e-9
    m = info["episode_metrics"]
    assert m["jobs_arrived"] == sum(
        m[k] for k in ("jobs_on_time", "jobs_late", "jobs_expired", "jobs_rejected", "jobs_in_flight")
    )
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
    out = run_week("orbit_env/Tiny-v0", 7.0, seed=11)
    assert out["steps"] > 1000


@pytest.mark.slow
def test_walker_leo_week_conserves_jobs_and_energy():
    # ~72k decisions and 10,080 simulator steps: ~45 s here (geometry ~6 s, not cached: ~90 MB)
    out = run_week("orbit_env/WalkerLEO-v0", 7.0, seed=0, geometry_cache=False)
    assert out["steps"] > 20_000
    assert out["metrics"]["brownouts"] > 0 and out["metrics"]["energy_curtailed_kwh"] > 0
