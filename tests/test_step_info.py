"""The step info a learner needs for credit assignment: decided job, simulated time, settled jobs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import orbit_env  # noqa: F401  (registers the ids)
from agents.registry import make_policy


def _play(env_id: str, policy: str, seed: int, **kwargs):
    env = gym.make(env_id, **kwargs)
    obs, info = env.reset(seed=seed)
    steps = [info]
    rewards = []
    agent = make_policy(policy, env=env, seed=seed)
    done = False
    while not done:
        action, _ = agent.predict(obs)
        obs, reward, terminated, truncated, info = env.step(action)
        steps.append(info)
        rewards.append(reward)
        done = terminated or truncated
    return env, steps, rewards


@pytest.mark.parametrize(
    ("env_id", "policy", "kwargs"),
    [
        ("orbit_env/Tiny-v1", "random", {}),
        ("orbit_env/Tiny-v1", "eclipse_safe", {}),
        ("orbit_env/WalkerLEO-v1", "earliest_finish", {"horizon_s": 4 * 3600.0}),
    ],
)
def test_every_job_settles_once_and_the_parts_add_up_to_the_rewards(env_id, policy, kwargs):
    env, steps, rewards = _play(env_id, policy, 11, **kwargs)
    sim, penalty = env.unwrapped.sim, env.unwrapped.config.reward
    for before, after, reward in zip(steps[:-1], steps[1:], rewards, strict=True):
        assert after["decided_job"] == before["job"]  # the action decided the job the last info named
        parts = after["settled"]["reward"].sum() + after["reward_components"]["brownout"]
        assert parts == pytest.approx(reward, abs=1e-9)
    settled = np.concatenate([s["settled"]["jobs"] for s in steps])
    metrics = steps[-1]["episode_metrics"]
    assert len(settled) == len(set(settled.tolist())) == metrics["jobs_arrived"] > 0
    value = sim.jobs.value[settled]
    reward = np.concatenate([s["settled"]["reward"] for s in steps])
    on_time = np.isclose(reward, value)
    assert value[on_time].sum() == pytest.approx(metrics["value_on_time"])
    rejected = np.isclose(reward, -penalty.reject_penalty * value) & ~on_time
    assert value[rejected].sum() == pytest.approx(metrics["value_rejected"])


def test_dt_s_sums_to_the_episode_length_and_the_decided_job_is_never_a_future_one():
    env, steps, _ = _play("orbit_env/Tiny-v1", "earliest_finish", 5)
    sim = env.unwrapped.sim
    dt = np.array([s["dt_s"] for s in steps])
    assert (dt >= 0).all() and dt.sum() == pytest.approx(sim.now_s)
    assert steps[0]["decided_job"] == -1 and steps[0]["settled"]["jobs"].size == 0
    decided = np.array([s["decided_job"] for s in steps[1:]])
    assert (decided >= 0).all() and (decided < len(sim.jobs)).all()
    times = np.array([s["time_s"] for s in steps])
    np.testing.assert_allclose(np.diff(times), dt[1:])


def test_brownout_parts_name_the_running_jobs_they_stopped_and_add_up_to_the_penalty():
    # a small battery on Tiny-v1: random placements brown satellites out, some with jobs running
    env = gym.make("orbit_env/Tiny-v1", battery_wh=300.0)
    obs, info = env.reset(seed=3)
    assert info["brownouts"]["jobs"].size == 0 and info["brownouts"]["unassigned"] == 0.0
    rng = np.random.default_rng(0)
    placed: set[int] = set()
    stopped, total, done = 0, 0.0, False
    while not done:
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        if action < env.unwrapped.n_sats:
            placed.add(info["job"])
        obs, reward, terminated, truncated, info = env.step(action)
        parts = info["brownouts"]
        assert parts["reward"].sum() + parts["unassigned"] == pytest.approx(
            info["reward_components"]["brownout"], abs=1e-9
        )
        assert set(parts["jobs"].tolist()) <= placed  # only placed (running) jobs are stopped
        stopped += parts["jobs"].size
        total += parts["reward"].sum() + parts["unassigned"]
        done = terminated or truncated
    metrics = info["episode_metrics"]
    penalty = env.unwrapped.config.reward.brownout_penalty
    assert metrics["brownouts"] > 0 and stopped > 0  # the case this test is about happened
    assert total == pytest.approx(-penalty * metrics["brownouts"])
    assert stopped <= metrics["job_failures"]
