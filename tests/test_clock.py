"""The compiled clock (orbit_env.sim.clock): one call to the next decision, the same episode as
stepping the clock one boundary at a time, and the arrays it grows seen from Python."""

from __future__ import annotations

import numpy as np
import pytest

from orbit_env.sim import clock
from orbit_env.sim.simulator import Simulator
from tests.test_simulator import periodic_sim


def play(sim: Simulator, seed: int) -> list[tuple[int, int, float]]:
    """One episode: each pending job goes to a random valid satellite, else is deferred or
    rejected. Returns the decisions (job, action, time [s])."""
    rng = np.random.default_rng(seed)
    sim.reset(np.random.default_rng(seed))
    log = []
    while True:
        job, _ = sim.next_decision()
        if job is None:
            return log
        valid = np.flatnonzero(sim.valid_targets(job))
        action = int(rng.choice(valid)) if valid.size and rng.random() < 0.8 else -int(rng.integers(1, 3))
        log.append((job, action, sim.now_s))
        if action >= 0:
            sim.place(job, action)
        elif action == -1:
            sim.defer(job)
        else:
            sim.reject(job)


def snapshot(sim: Simulator) -> dict:
    c = sim.counters
    names = (*clock.INT_COUNTERS, *clock.FLOAT_COUNTERS)
    return {
        **{name: getattr(c, name) for name in names},
        "latency_s": c.latency_s,
        "brownout_times_s": c.brownout_times_s,
        "state": sim.state.tolist(),
        "delivery_s": sim.delivery_s.tolist(),
        "energy_wh": sim.energy_wh.tolist(),
        "step": sim.step_index,
    }


def test_one_call_to_the_next_decision_plays_the_episode_stepping_one_boundary_at_a_time_plays():
    fast = periodic_sim(n=6, hours=12.0, load=1.6, battery_wh=300.0)
    slow = periodic_sim(n=6, hours=12.0, load=1.6, battery_wh=300.0)
    steps = []
    slow.add_listener(lambda s: steps.append(s.step_index))  # a listener: the clock steps in Python
    decisions = play(fast, seed=4)
    assert play(slow, seed=4) == decisions
    assert snapshot(fast) == snapshot(slow)
    assert steps == list(range(1, slow.step_index + 1))  # every boundary seen once, in order
    assert fast.counters.brownouts > 0 and fast.counters.on_time > 0  # the episode exercised both
    fast.check_invariants()


def test_arrays_the_clock_grows_are_the_ones_python_reads():
    sim = periodic_sim(n=6, hours=12.0, load=1.6, battery_wh=300.0)
    play(sim, seed=4)
    assert sim._ints[clock.GENERATION] > 0  # the antenna schedule, radio or brownout logs grew
    grown = dict(zip(clock.GROWN, clock.grown_arrays(sim._st), strict=True))
    assert np.shares_memory(grown["ant_lo"], sim.links.antennas.lo)
    assert np.shares_memory(grown["ant_hi"], sim.links.antennas.hi)
    assert np.shares_memory(grown["brownout_t"], sim._brownout_t)
    assert len(sim.counters.brownout_times_s) == sim.counters.brownouts


def test_take_settled_and_take_brownouts_empty_their_logs():
    sim = periodic_sim(n=6, hours=12.0, load=1.6, battery_wh=300.0)
    play(sim, seed=5)
    settled = sim.take_settled()
    assert settled.size == sim.counters.arrived  # every job settled exactly once
    assert np.unique(settled).size == settled.size
    assert sim.take_settled().size == 0
    idle, jobs, share = sim.take_brownouts()
    assert sim.counters.brownouts > 0
    assert idle + share.sum() == pytest.approx(sim.counters.brownouts)  # each brownout's shares add up to one
    assert sim.take_brownouts()[1].size == 0


def test_the_env_steps_the_same_with_a_listener_as_in_one_compiled_call():
    """env.step is one compiled call (clock.act) unless a listener needs Python between the
    clock's steps; both ways play the same episode."""
    import gymnasium as gym

    import orbit_env  # noqa: F401

    envs = [gym.make("orbit_env/Tiny-v1", epoch="2026-03-20T00:00:00Z") for _ in range(2)]
    infos = [env.reset(seed=3)[1] for env in envs]
    seen = []
    start = envs[1].unwrapped.sim.step_index
    envs[1].unwrapped.sim.add_listener(lambda s: seen.append(s.step_index))
    rng = np.random.default_rng(0)
    for _ in range(150):
        action = int(rng.choice(np.flatnonzero(infos[0]["action_mask"])))
        results = [env.step(action) for env in envs]
        (obs0, r0, t0, _, infos[0]), (obs1, r1, t1, _, infos[1]) = results
        assert np.array_equal(obs0, obs1) and r0 == r1 and t0 == t1
        assert np.array_equal(infos[0]["settled"]["jobs"], infos[1]["settled"]["jobs"])
        if t0:
            break
    assert len(seen) > 5 and seen == list(range(start + 1, start + 1 + len(seen)))  # every step, once


def test_a_copied_or_pickled_env_goes_on_exactly_as_the_original():
    """The clock's structs do not pickle; a copy rebuilds them over its own copied arrays."""
    import copy
    import pickle

    import gymnasium as gym

    import orbit_env  # noqa: F401

    env = gym.make("orbit_env/Tiny-v1", epoch="2026-03-20T00:00:00Z").unwrapped
    _, info = env.reset(seed=2)
    rng = np.random.default_rng(1)
    for _ in range(8):
        _, _, terminated, _, info = env.step(int(rng.choice(np.flatnonzero(info["action_mask"]))))
        assert not terminated
    copies = [copy.deepcopy(env), pickle.loads(pickle.dumps(env))]
    for _ in range(120):
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        obs, reward, terminated, _, info = env.step(action)
        for twin in copies:
            t_obs, t_reward, t_terminated, _, t_info = twin.step(action)
            assert np.array_equal(obs, t_obs) and reward == t_reward and terminated == t_terminated
            assert np.array_equal(info["settled"]["jobs"], t_info["settled"]["jobs"])
        if terminated:
            break
    assert terminated  # the copies were followed to the episode's end
    assert copies[0].sim.counters.value_on_time == env.sim.counters.value_on_time
