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
    """env.step is one compiled call (batch.env_step) unless a listener needs Python between the
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


def test_the_pending_and_settlement_scans_agree_with_plain_loops_over_random_states():
    # the scans pass over eight jobs at a time through the states' words: same answers as a
    # job-by-job loop, at every alignment of the window
    from orbit_env.sim import kernels

    rng = np.random.default_rng(0)
    for trial in range(200):
        j = int(rng.integers(1, 80))
        buf = np.zeros(-(-j // 8) * 8, dtype=np.int8)
        state = buf[:j]
        # runs of settled jobs (5..8) with a few unsettled (1..4) among them
        state[:] = np.where(rng.random(j) < 0.15, rng.integers(1, 5, j), rng.integers(5, 9, j))
        words = buf.view(np.uint64)
        present = rng.integers(0, 5, j).astype(float)
        arrival = rng.integers(0, 3, j).astype(float)
        delivery, deadline = rng.integers(0, 6, j).astype(float), rng.integers(0, 6, j).astype(float)
        lo, hi = sorted(int(x) for x in rng.integers(0, j + 1, 2))
        ids, lo_after = kernels.pending_jobs(state, present, arrival, 2.5, lo, hi)
        first, count, lo_first = kernels.first_pending(state, words, present, arrival, 2.5, lo, hi)
        assert (first, count, lo_first) == ((int(ids[0]) if ids.size else -1), ids.size, lo_after), trial
        landed, late, expired = kernels.settlement_scan(state, words, delivery, deadline, 3.0, lo, hi)
        want = ([], [], [])
        for k in range(lo, hi):
            if state[k] == kernels.DOWNLINK:
                if delivery[k] < 3.0:
                    want[0].append(k)
                elif deadline[k] <= 3.0 and delivery[k] > deadline[k]:
                    want[1].append(k)
            elif 1 <= state[k] <= 3 and deadline[k] <= 3.0:
                want[2].append(k)
        assert [landed.tolist(), late.tolist(), expired.tolist()] == list(want), trial


def test_the_compiled_entry_hops_search_matches_the_all_pairs_table():
    # Megaconstellation-size geometries have no all-pairs table: clock.entry_hops searches the
    # sample's active ISLs itself. With the table taken from the clock's struct, the search must
    # give the table's hops for jobs whose input is on board a satellite.
    import gymnasium as gym

    import orbit_env  # noqa: F401

    env = gym.make("orbit_env/WalkerLEO-v1", epoch="2026-03-20T00:00:00Z").unwrapped
    _, info = env.reset(seed=1)
    sim = env.sim
    table = sim.geometry.sat_hops_all
    assert table.shape[0]  # WalkerLEO-v1 has one
    sim._clock_tables = {**sim._clock_tables, "sat_hops_all": np.zeros((0, 0, 0), dtype=np.int16)}
    sim._build_state()
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(600):
        job = info["job"]
        if job >= 0 and sim.input_sat[job] >= 0:
            src, k = sim.input_sat[job], sim.step_index
            want = table[k, src] if sim.valid_now[src] else np.full(sim.n_sats, -1, dtype=np.int16)
            np.testing.assert_array_equal(sim.entry_hops(job), want)
            checked += 1
        _, _, terminated, _, info = env.step(int(rng.choice(np.flatnonzero(info["action_mask"]))))
        if terminated:
            break
    assert checked > 20
