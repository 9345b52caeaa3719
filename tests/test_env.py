"""The Gymnasium layer: registration, checkers, masks, determinism, conservation, errors."""

from __future__ import annotations

import sys
import warnings
from datetime import datetime, timezone

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import orbit_env
from orbit_env.envs.placement import OrbitPlacementEnv
from orbit_env.scenarios import SCENARIOS, season_days
from tests.checks import assert_jobs_conserved

FAST_IDS = ["Tiny-v1", "WalkerLEO-v1", "Suncatcher-v1", "SuncatcherEclipse-v1", "OrbitPlacement-v1"]
METRIC_KEYS = {
    "jobs_arrived",
    "jobs_on_time",
    "jobs_late",
    "jobs_expired",
    "jobs_rejected",
    "jobs_in_flight",
    "value_arrived",
    "value_on_time",
    "on_time_value_rate",
    "brownouts",
    "energy_generated_kwh",
    "energy_used_kwh",
    "energy_curtailed_kwh",
    "accelerator_utilization",
    "latency_mean_s",
    "latency_p95_s",
}


def masked_random(info: dict, rng: np.random.Generator) -> int:
    return int(rng.choice(np.flatnonzero(info["action_mask"])))


@pytest.mark.parametrize("name", FAST_IDS + [pytest.param("Megaconstellation-v1", marks=pytest.mark.slow)])
def test_both_env_checkers_pass_without_warnings(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        env = gym.make(f"orbit_env/{name}", render_mode="ansi")
        gym_check_env(env.unwrapped)
        sb3_check_env(gym.make(f"orbit_env/{name}").unwrapped)


def test_dict_observations_pass_the_gymnasium_checker_and_match_the_flat_layout():
    flat_env = gym.make("orbit_env/Tiny-v1")
    dict_env = gym.make("orbit_env/Tiny-v1", obs_mode="dict")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(dict_env.unwrapped, skip_render_check=True)
    flat, _ = flat_env.reset(seed=3)
    as_dict, _ = dict_env.reset(seed=3)
    layout = flat_env.unwrapped.layout
    assert np.array_equal(layout.satellites(flat), as_dict["satellites"])
    assert np.array_equal(layout.job(flat), as_dict["job"])
    assert np.array_equal(layout.globals(flat), as_dict["globals"])


def test_registration_is_idempotent_and_works_without_a_prior_import():
    orbit_env._register()
    orbit_env._register()
    assert all(f"orbit_env/{name}" in gym.registry for name in SCENARIOS)
    env = gym.make("orbit_env:orbit_env/Tiny-v1")
    assert isinstance(env.unwrapped, OrbitPlacementEnv)


def rollout(env: gym.Env, seed: int, steps: int | None = None, actions: list[int] | None = None):
    """Masked random rollout; returns (observations, rewards, infos, actions)."""
    rng = np.random.default_rng(seed + 1)
    obs, info = env.reset(seed=seed)
    observations, rewards, infos, taken = [obs], [], [info], []
    i = 0
    while steps is None or i < steps:
        a = actions[i] if actions is not None else masked_random(info, rng)
        obs, reward, terminated, truncated, info = env.step(a)
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
        taken.append(a)
        i += 1
        if terminated or truncated or (actions is not None and i >= len(actions)):
            break
    return observations, rewards, infos, taken


def test_same_seed_and_actions_give_identical_observations_rewards_and_infos():
    env = gym.make("orbit_env/Tiny-v1")
    obs_a, rew_a, info_a, actions = rollout(env, seed=11)
    obs_b, rew_b, info_b, _ = rollout(gym.make("orbit_env/Tiny-v1"), seed=11, actions=actions)
    assert len(obs_a) == len(obs_b)
    assert all(np.array_equal(a, b) for a, b in zip(obs_a, obs_b, strict=True))
    assert rew_a == rew_b
    for a, b in zip(info_a, info_b, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], np.ndarray):
                assert np.array_equal(a[key], b[key])
            elif key in ("settled", "brownouts"):
                assert all(np.array_equal(a[key][k], b[key][k]) for k in a[key])
            else:
                assert a[key] == b[key]


def test_different_seeds_give_different_job_streams():
    env = gym.make("orbit_env/WalkerLEO-v1", epoch="2026-03-20T00:00:00Z")
    env.reset(seed=1)
    jobs_1 = env.unwrapped.sim.jobs
    env.reset(seed=2)
    assert not env.unwrapped.sim.jobs.equals(jobs_1)


@pytest.mark.parametrize("name", FAST_IDS)
def test_masked_random_rollouts_keep_every_invariant(name):
    env = gym.make(f"orbit_env/{name}")
    steps = 300 if name != "Tiny-v1" else None
    rng = np.random.default_rng(0)
    obs, info = env.reset(seed=5)
    sim = env.unwrapped.sim
    for _ in range(steps or 10**6):
        assert env.observation_space.contains(obs)
        assert info["action_mask"].any() and info["action_mask"][-2:].all()
        obs, reward, terminated, truncated, info = env.step(masked_random(info, rng))
        assert np.isfinite(reward)
        assert not info["invalid_action"]
        assert reward == pytest.approx(sum(info["reward_components"].values()))
        sim.check_invariants()
        if terminated or truncated:
            break
    if steps is None:
        assert terminated and not truncated  # every job settled: the episode terminates
        metrics = info["episode_metrics"]
        assert METRIC_KEYS <= metrics.keys()
        assert_jobs_conserved(metrics)
        assert all(np.isfinite(v) for v in metrics.values())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batery_wh": 2000}, "unknown config field 'batery_wh'; did you mean 'battery_wh'"),
        ({"load": -1.0}, "load must be in"),
        ({"battery_wh": 0}, "battery_wh must be in"),
        ({"dt_s": 0}, "dt_s must be in"),
        ({"dt_s": -60.0}, "dt_s must be in"),
        ({"epoch": "yesterday"}, "epoch must be an ISO 8601"),
        ({"obs_mode": "image"}, "obs_mode must be one of"),
        ({"render_mode": "video"}, "render_mode must be one of"),
    ],
)
@pytest.mark.filterwarnings("ignore:.*render_mode='video'")  # gymnasium's own warning before ours
def test_bad_keywords_give_a_clear_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make("orbit_env/WalkerLEO-v1", **kwargs)


def test_overrides_reach_the_simulator():
    env = gym.make("orbit_env/WalkerLEO-v1", battery_wh=1500, load=1.2, epoch="2026-06-01T06:00:00Z")
    env.reset(seed=0)
    sim = env.unwrapped.sim
    assert sim.power.battery_wh == 1500
    assert sim.config.workload.load == 1.2
    assert sim.geometry.start == datetime(2026, 6, 1, 6, tzinfo=timezone.utc)


def test_invalid_actions_count_as_reject_or_raise_when_strict():
    env = gym.make("orbit_env/Tiny-v1")
    obs, info = env.reset(seed=0)
    n = env.unwrapped.n_sats
    masked = np.flatnonzero(~info["action_mask"])
    bad = int(masked[0]) if masked.size else n + 5
    rejected = env.unwrapped.sim.counters.rejected
    _, _, _, _, info2 = env.step(bad)
    assert info2["invalid_action"]
    assert env.unwrapped.sim.counters.rejected == rejected + 1
    strict = gym.make("orbit_env/Tiny-v1", strict=True)
    strict.reset(seed=0)
    with pytest.raises(ValueError, match="invalid action"):
        strict.step(bad)
    with pytest.raises(TypeError, match="action must be an integer"):
        strict.step(1.5)
    with pytest.raises(ValueError, match="single integer"):
        strict.step(np.array([1, 2]))


def test_actions_accept_numpy_integers_and_single_element_arrays():
    env = gym.make("orbit_env/Tiny-v1")
    env.reset(seed=0)
    n = env.unwrapped.n_sats
    for action in (np.int64(n), np.array(n), np.array([n])):
        _, _, term, trunc, info = env.step(action)
        assert not info["invalid_action"]
        if term or trunc:
            break


def test_split_days_are_disjoint_cover_the_window_and_epochs_come_from_the_split():
    for name, cfg in SCENARIOS.items():
        days = {split: set(season_days(cfg.replace(split=split))) for split in ("train", "val", "test")}
        assert all(days.values()), name  # every scenario has days of every split
        assert not days["train"] & days["val"] and not days["train"] & days["test"], name
        assert not days["val"] & days["test"], name
        assert len(days["val"]) >= 7 and len(days["test"]) >= 12, name  # enough for 8-20 episodes' days
    for split in ("val", "test"):
        env = gym.make("orbit_env/SuncatcherEclipse-v1", split=split)
        env.reset(seed=4)
        doy = env.unwrapped.sim.geometry.start.timetuple().tm_yday
        assert doy in set(season_days(env.unwrapped.config))
    with pytest.raises(ValueError, match="split"):
        gym.make("orbit_env/Tiny-v1", split="validation")


def test_warm_reset_reuses_the_geometry(monkeypatch, tmp_path):
    monkeypatch.setenv("ORBIT_ENV_CACHE", str(tmp_path))
    env = gym.make("orbit_env/WalkerLEO-v1", epoch="2026-03-20T00:00:00Z")
    env.reset(seed=0)
    first = env.unwrapped.sim
    assert any(tmp_path.iterdir()), "the geometry was written to the cache"
    env.reset(seed=1)
    assert env.unwrapped.sim is first  # same epoch: the simulator (and its geometry) is reused
    from orbit_env.sim import geometry

    def no_compute(*args, **kwargs):
        raise AssertionError("geometry recomputed despite a warm cache")

    monkeypatch.setattr(geometry, "_compute", no_compute)
    other = gym.make("orbit_env/WalkerLEO-v1", epoch="2026-03-20T00:00:00Z")
    other.reset(seed=0)  # a new env loads the cached file


def lines_per_step(n_sats: int, steps: int = 150) -> float:
    """Python lines executed in orbit_env per env.step, for a Walker shell of ``n_sats``."""
    env = gym.make(
        "orbit_env/OrbitPlacement-v1", total=n_sats, planes=n_sats // 8, epoch="2026-03-20T00:00:00Z"
    )
    rng = np.random.default_rng(0)
    _, info = env.reset(seed=0)
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        if "orbit_env" in frame.f_code.co_filename:
            if event == "line":
                count += 1
            return tracer
        return None

    sys.settrace(tracer)
    try:
        for _ in range(steps):
            _, _, term, trunc, info = env.step(masked_random(info, rng))
            if term or trunc:
                break
    finally:
        sys.settrace(None)
    return count / steps


def test_step_has_no_python_loop_over_satellites():
    # 16x the satellites must not mean more Python lines per decision: the work is numpy.
    small, large = lines_per_step(16), lines_per_step(256)
    assert large < 1.5 * small, (small, large)
