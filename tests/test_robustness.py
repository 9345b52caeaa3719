"""Odd input fails clearly or works as documented; long random runs never produce a NaN."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stable_baselines3.common.vec_env import DummyVecEnv, VecCheckNan

from orbit_env.sim.orbits import Constellation

TINY = "orbit_env/Tiny-v1"


@pytest.fixture(scope="module")
def tiny_env():
    env = gym.make(TINY, strict=True)
    env.reset(seed=0)
    return env


ODD_ACTIONS = st.one_of(
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.text(max_size=3),
    st.lists(st.integers(0, 5), min_size=2, max_size=3).map(np.array),
    st.just(np.array([], dtype=np.int64)),
    st.just(np.float32(1.0)),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=ODD_ACTIONS)
def test_malformed_actions_raise_a_clear_error_and_change_nothing(tiny_env, action):
    sim = tiny_env.unwrapped.sim
    before = (sim.now_s, sim.counters.decisions)
    with pytest.raises((TypeError, ValueError), match="action"):
        tiny_env.step(action)
    assert (sim.now_s, sim.counters.decisions) == before


@settings(max_examples=60, deadline=None)
@given(action=st.integers(min_value=-(10**6), max_value=10**6))
def test_any_integer_action_is_taken_or_counted_as_an_invalid_reject(action):
    env = gym.make(TINY)
    _, info = env.reset(seed=1)
    n = env.unwrapped.n_sats
    allowed = 0 <= action < n + 2 and info["action_mask"][action]
    rejected = env.unwrapped.sim.counters.rejected
    _, reward, _, _, info2 = env.step(np.int64(action))
    assert np.isfinite(reward)
    assert info2["invalid_action"] == (not allowed)
    if not allowed:
        assert env.unwrapped.sim.counters.rejected == rejected + 1


VALID_TLE = (
    "ISS (ZARYA)\n"
    "1 25544U 98067A   23086.20188432  .00024982  00000+0  45015-3 0  9999\n"
    "2 25544  51.6429  14.7356 0005804 135.3885   8.0988 15.49616489389078\n"
)


@settings(max_examples=200, deadline=None)
@given(
    cut=st.integers(0, len(VALID_TLE)),
    junk=st.text(max_size=4),
    where=st.integers(0, len(VALID_TLE)),
    swap=st.booleans(),
)
def test_mangled_tle_text_parses_or_raises_value_error_naming_a_line(cut, junk, where, swap):
    lines = VALID_TLE.splitlines()
    if swap:
        lines[1], lines[2] = lines[2], lines[1]
    text = "\n".join(lines) + "\n"
    text = (text[:where] + junk + text[where:])[: cut + len(junk)]
    try:
        constellation = Constellation.from_tle(text)
    except ValueError as err:
        assert "line" in str(err) or "empty" in str(err).lower() or "no TLE" in str(err), str(err)
    else:
        assert len(constellation) >= 1


def random_masked_steps(name: str, steps: int, seed: int) -> None:
    """Random valid actions under VecCheckNan(raise_exception=True): any NaN/inf raises."""
    vec = VecCheckNan(DummyVecEnv([lambda: gym.make(f"orbit_env/{name}")]), raise_exception=True)
    vec.seed(seed)
    vec.reset()
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        mask = vec.env_method("action_masks")[0]
        vec.step(np.array([rng.choice(np.flatnonzero(mask))]))


@pytest.mark.parametrize("name", ["Tiny-v1", "WalkerLEO-v1"])
def test_random_steps_never_produce_nan_under_vec_check_nan(name):
    random_masked_steps(name, 2000, seed=3)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["Tiny-v1", "WalkerLEO-v1", "Suncatcher-v1", "SuncatcherEclipse-v1"])
def test_100k_random_steps_never_produce_nan(name):
    random_masked_steps(name, 100_000, seed=4)
