"""Credit assignment (agents.credit): SB3's returns when off, return conservation, where credit goes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from sb3_contrib.common.maskable.buffers import MaskableRolloutBuffer

import orbit_env  # noqa: F401  (registers the ids)
from agents import credit, rl

ROOT = Path(__file__).resolve().parents[1]
TINY = "orbit_env/Tiny-v1"


def _buffers(n_steps: int, n_envs: int, gamma: float, env_kwargs: dict | None = None, **credit_kwargs):
    env = gym.make(TINY, **(env_kwargs or {}))
    args = (n_steps, env.observation_space, env.action_space)
    ours = credit.CreditRolloutBuffer(*args, gamma=gamma, gae_lambda=0.95, n_envs=n_envs, **credit_kwargs)
    return ours, env


def _fill_random(buffers, n_steps: int, n_envs: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(n_steps, n_envs)).astype(np.float32)
    values = rng.normal(size=(n_steps, n_envs)).astype(np.float32)
    starts = (rng.random((n_steps, n_envs)) < 0.1).astype(np.float32)
    dt = rng.uniform(0.0, 30.0, (n_steps, n_envs))
    for buf in buffers:
        buf.reset()
        buf.rewards[:], buf.values[:], buf.episode_starts[:] = rewards, values, starts
        buf.pos, buf.full = n_steps, True
        if isinstance(buf, credit.CreditRolloutBuffer):
            buf.dt_s[:] = dt
            buf.decided[:] = -1
            buf.settled = [[(np.zeros(0, np.int64), np.zeros(0))] * n_envs for _ in range(n_steps)]
    last = th.as_tensor(rng.normal(size=n_envs).astype(np.float32))
    dones = rng.random(n_envs) < 0.5
    for buf in buffers:
        buf.compute_returns_and_advantage(last, dones)


def test_with_both_switches_off_the_returns_are_sb3s_bit_for_bit():
    ours, env = _buffers(64, 2, gamma=0.99)
    sb3 = MaskableRolloutBuffer(
        64, env.observation_space, env.action_space, gamma=0.99, gae_lambda=0.95, n_envs=2
    )
    _fill_random([ours, sb3], 64, 2)
    np.testing.assert_array_equal(ours.advantages, sb3.advantages)
    np.testing.assert_array_equal(ours.returns, sb3.returns)


def test_a_very_long_time_constant_is_sb3_without_discount():
    ours, env = _buffers(64, 2, gamma=0.5, time_constant_h=1e12)  # gamma unused with a time constant
    sb3 = MaskableRolloutBuffer(
        64, env.observation_space, env.action_space, gamma=1.0, gae_lambda=0.95, n_envs=2
    )
    _fill_random([ours, sb3], 64, 2)
    np.testing.assert_allclose(ours.returns, sb3.returns, rtol=1e-5, atol=1e-5)


def test_the_time_discount_falls_by_e_per_time_constant():
    ours, _ = _buffers(4, 1, gamma=0.999, time_constant_h=2.0)
    ours.dt_s[:, 0] = [0.0, 3600.0, 7200.0, 21600.0]
    np.testing.assert_allclose(ours.step_discounts()[:, 0], np.exp([0.0, -0.5, -1.0, -3.0]), rtol=1e-6)


def test_credit_goes_to_the_last_decision_on_the_job_in_the_same_episode():
    ours, _ = _buffers(5, 1, gamma=1.0, per_job_credit=True)
    ours.rewards[:, 0] = [0.0, 0.0, 0.0, 11.5 - 5.0, 3.0]  # step 3: jobs settle, and a brownout (−5)
    ours.decided[:, 0] = [5, 6, 5, 8, 2]  # job 5 decided twice (deferred, then placed)
    ours.episode_starts[:, 0] = [0, 0, 0, 0, 1]  # step 4 starts a new episode
    none = (np.zeros(0, np.int64), np.zeros(0))
    ours.settled = [[none], [none], [none], [(np.array([5, 6, 9]), np.array([10.0, -2.5, 4.0]))], [none]]
    ours.rewards[4, 0] = 3.0
    ours.settled[4] = [(np.array([8]), np.array([3.0]))]  # job 8 of the previous episode: a new one now
    ours.dt_s[:] = 1.0
    got = ours.credited_rewards()[:, 0]
    # job 5 -> step 2 (its last decision), job 6 -> step 1, job 9 (decided before this rollout)
    # and the brownout stay at step 3; job id 8 in the new episode is not the old job 8
    np.testing.assert_allclose(got, [0.0, -2.5, 10.0, 4.0 - 5.0, 3.0])


def test_brownout_credit_moves_each_part_to_the_placement_of_the_job_it_stopped():
    ours, _ = _buffers(4, 1, gamma=1.0, per_job_credit=True, brownout_credit=True)
    ours.rewards[:, 0] = [0.0, 0.0, -5.0 - 5.0, 0.0]  # step 2: two brownouts, one stopped jobs 3 and 4
    ours.decided[:, 0] = [3, 4, 7, 3]  # jobs 3 and 4 placed at steps 0 and 1; job 3 again at step 3
    ours.dt_s[:] = 1.0
    none = (np.zeros(0, np.int64), np.zeros(0))
    step_2 = {
        "settled": {"jobs": none[0], "reward": none[1]},
        "brownouts": {"jobs": np.array([3, 4]), "reward": np.array([-2.5, -2.5]), "unassigned": -5.0},
    }
    ours.settled = [[none], [none], [credit._job_parts(step_2)], [none]]
    got = ours.credited_rewards()[:, 0]
    # each stopped job's part goes to its placement; the brownout that stopped none stays at step 2
    np.testing.assert_allclose(got, [-2.5, -2.5, -5.0, 0.0])


def test_brownout_credit_needs_per_job_credit_and_the_env_info():
    with pytest.raises(ValueError, match="brownout_credit .* needs per_job_credit"):
        _buffers(4, 1, gamma=1.0, brownout_credit=True)
    with pytest.raises(ValueError, match="brownout_credit .* needs per_job_credit"):
        credit.buffer_settings("maskable_ppo", {"brownout_credit": True})
    with pytest.raises(ValueError, match="brownout_credit must be true or false"):
        credit.buffer_settings("maskable_ppo", {"per_job_credit": True, "brownout_credit": "yes"})
    ours, _ = _buffers(4, 1, gamma=1.0, per_job_credit=True, brownout_credit=True)
    empty = {"jobs": np.zeros(0, np.int64), "reward": np.zeros(0)}
    with pytest.raises(ValueError, match=r"info\['brownouts'\]"):
        ours.record([{"dt_s": 1.0, "decided_job": 0, "time_s": 1.0, "settled": empty}])


def _real_rollout(n_steps: int, seed: int = 3, brownout_credit: bool = False, **env_kwargs):
    """A buffer filled from Tiny-v1 with masked random actions, infos recorded as the callback does."""
    ours, env = _buffers(n_steps, 1, gamma=0.999, env_kwargs=env_kwargs, per_job_credit=True,
                         brownout_credit=brownout_credit, time_constant_h=1.0)  # fmt: skip
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    start, episodes = 1.0, [[]]
    for t in range(n_steps):
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        obs, reward, terminated, truncated, info = env.step(action)
        ours.record([info])  # at pos, before add (the order of SB3's collect_rollouts)
        ours.add(obs[None], np.array([[action]]), np.array([reward]), np.array([start]),
                 th.zeros(1), th.zeros(1), action_masks=info["action_mask"][None])  # fmt: skip
        episodes[-1].append(t)
        start = 0.0
        if terminated or truncated:
            obs, info = env.reset(seed=seed + len(episodes))
            start = 1.0
            episodes.append([])
    return ours, [e for e in episodes if e]


def test_per_job_credit_keeps_each_episodes_undiscounted_return():
    ours, episodes = _real_rollout(120)
    assert len(episodes) >= 3  # Tiny episodes are a few dozen decisions: several whole ones
    credited = ours.credited_rewards()[:, 0]
    raw = ours.rewards[:, 0].astype(np.float64)
    assert not np.allclose(credited, raw)  # something moved
    for steps in episodes:
        assert credited[steps].sum() == pytest.approx(raw[steps].sum(), abs=1e-9)
    ours.compute_returns_and_advantage(th.zeros(1), np.array([False]))
    assert np.isfinite(ours.returns).all()


def test_brownout_credit_keeps_each_episodes_undiscounted_return_and_moves_the_penalties():
    # a small battery: random placements brown satellites out with jobs running
    moved, episodes = _real_rollout(120, brownout_credit=True, battery_wh=300.0)
    kept, _ = _real_rollout(120, brownout_credit=False, battery_wh=300.0)  # the same rollout
    np.testing.assert_array_equal(moved.rewards, kept.rewards)
    assert len(episodes) >= 3
    with_brownouts, settled_only = moved.credited_rewards()[:, 0], kept.credited_rewards()[:, 0]
    raw = moved.rewards[:, 0].astype(np.float64)
    for steps in episodes:
        assert with_brownouts[steps].sum() == pytest.approx(raw[steps].sum(), abs=1e-9)
    assert not np.allclose(with_brownouts, settled_only)  # some brownout penalty moved to a placement
    assert (with_brownouts - settled_only).sum() == pytest.approx(0.0, abs=1e-9)


def test_lagged_credit_trains_on_the_previous_rollout_with_the_next_ones_settlements():
    size = 60
    whole, _ = _real_rollout(2 * size)  # one buffer over both rollouts: the reference
    whole.compute_returns_and_advantage(th.zeros(1), np.zeros(1, dtype=bool))
    lagged, _ = _buffers(size, 1, gamma=0.999, per_job_credit=True, time_constant_h=1.0, lagged_credit=True)
    fields = ("observations", "actions", "rewards", "episode_starts", "values", "log_probs", "action_masks",
              "dt_s", "decided", "time_s", "stream")  # fmt: skip
    for half in (0, 1):
        lagged.reset()
        rows = slice(half * size, (half + 1) * size)
        for name in fields:
            getattr(lagged, name)[:] = getattr(whole, name)[rows]
        lagged.settled = whole.settled[rows]
        lagged.pos, lagged.full = size, True
        lagged.compute_returns_and_advantage(th.zeros(1), np.zeros(1, dtype=bool))
    # the buffer now holds the first rollout, credited and discounted over both
    assert np.array_equal(lagged.observations, whole.observations[:size])
    np.testing.assert_allclose(lagged.advantages, whole.advantages[:size], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(lagged.returns, whole.returns[:size], rtol=1e-6, atol=1e-5)
    # and the case it exists for occurs here: a job decided in the first rollout settles in the second
    first = set(whole.decided[:size, 0].tolist()) - {-1}
    assert first & {int(j) for t in range(size, 2 * size) for j in whole.settled[t][0][0]}


def test_missing_step_infos_are_a_clear_error():
    ours, _ = _buffers(4, 1, gamma=0.99, time_constant_h=1.0)
    ours.pos, ours.full = 4, True
    with pytest.raises(RuntimeError, match="StepInfoRecorder"):
        ours.compute_returns_and_advantage(th.zeros(1), np.array([False]))


@pytest.mark.parametrize(
    ("algo", "hyper", "message"),
    [
        ("ppo", {"time_constant_h": 3.0}, "need algo maskable_ppo"),
        ("maskable_ppo", {"time_constant_h": -1.0}, "positive number of hours"),
        ("maskable_ppo", {"time_constant_h": "3h"}, "positive number of hours"),
        ("maskable_ppo", {"per_job_credit": "yes"}, "true or false"),
        ("maskable_ppo", {"per_job_credit": True, "normalize": True}, "normalize: false"),
        ("maskable_ppo", {"lagged_credit": True}, "it needs per_job_credit"),
        ("maskable_ppo", {"lagged_credit": 1, "per_job_credit": True}, "lagged_credit must be true or false"),
        (
            "maskable_ppo",
            {"lagged_credit": True, "per_job_credit": True, "shared_stream": 2, "n_envs": 2},
            "do not combine",
        ),
    ],
)
def test_bad_credit_settings_are_clear_errors(algo, hyper, message):
    with pytest.raises(ValueError, match=message):
        rl.model_kwargs(algo, {"policy": "MlpPolicy", **hyper})


def test_train_py_learns_with_both_switches(tmp_path):
    argv = [sys.executable, "train.py", "--env", "Tiny-v1", "--timesteps", "256", "--run-dir", str(tmp_path)]
    argv += ["--run-name", "credit", "--eval-freq", "0", "--checkpoint-freq", "0", "--no-progress"]
    argv += ["--hyperparams", "n_envs=2", "n_steps=64", "batch_size=64", "n_epochs=1"]
    argv += ["time_constant_h=3", "per_job_credit=True"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    from sb3_contrib import MaskablePPO

    model = MaskablePPO.load(tmp_path / "credit" / "model.zip", device="cpu")
    assert model.rollout_buffer_class is credit.CreditRolloutBuffer
    assert model.rollout_buffer_kwargs == {"time_constant_h": 3, "per_job_credit": True, "shared_stream": 1}
    assert "time_constant_h: 3" in (tmp_path / "credit" / "config.yml").read_text()


# -- shared streams -----------------------------------------------------------------------------------
def test_a_shared_stream_group_plays_the_same_job_streams_whatever_the_actions():
    envs = [credit.SharedStreamSeeds(gym.make(TINY, split="train"), base_seed=77) for _ in range(2)]
    for episode in range(2):
        streams = []
        for k, env in enumerate(envs):
            obs, info = env.reset(seed=123 + k)  # the vector env's own seeds are overridden
            assert info["stream_seed"] == 77 + episode
            streams.append(env.unwrapped.sim.jobs)
            done, rng = False, np.random.default_rng(k)
            while not done:  # different actions in each env
                action = int(rng.choice(np.flatnonzero(info["action_mask"])))
                obs, _, terminated, truncated, info = env.step(action)
                assert info["stream_seed"] == 77 + episode
                done = terminated or truncated
        assert streams[0].equals(streams[1])
    assert credit.stream_base_seed(0, 0, 2) == credit.stream_base_seed(0, 1, 2)
    assert credit.stream_base_seed(0, 2, 2) != credit.stream_base_seed(0, 1, 2)
    assert credit.stream_base_seed(0, 0, 2) > 1_000_000  # far from the val and test seeds


def test_the_shared_stream_advantage_is_the_return_minus_the_partners_at_the_same_time():
    ours, _ = _buffers(4, 2, gamma=1.0, shared_stream=2)
    ours.gae_lambda = 1.0  # plain returns, to read the test
    ours.rewards[:] = 0.0
    ours.values[:] = 0.0
    ours.episode_starts[:] = 0.0
    ours.rewards[:, 0] = [1.0, 0.0, 0.0, 2.0]  # env 0: returns 3, 2, 2, 2
    ours.rewards[:, 1] = [0.0, 5.0, 0.0, 0.0]  # env 1: returns 5, 5, 0, 0
    ours.dt_s[:] = 10.0
    ours.time_s[:, 0] = [10.0, 20.0, 30.0, 40.0]  # decisions at 0, 10, 20, 30
    ours.time_s[:, 1] = [10.0, 15.0, 35.0, 45.0]  # decisions at 0, 5, 25, 35
    ours.stream[:] = 7
    ours.decided[:] = -1
    ours.settled = [[(np.zeros(0, np.int64), np.zeros(0))] * 2 for _ in range(4)]
    ours.pos, ours.full = 4, True
    ours.compute_returns_and_advantage(th.zeros(2), np.array([False, False]))
    np.testing.assert_allclose(ours.returns[:, 0], [3, 2, 2, 2])
    # env 0 at 0 -> env 1's step at 0 (5); at 10 -> env 1's at 5 (5); at 20 -> 5 (5); at 30 -> 25 (0)
    np.testing.assert_allclose(ours.advantages[:, 0], [3 - 5, 2 - 5, 2 - 5, 2 - 0])
    # env 1 at 0 -> 3; at 5 -> env 0's at 0 (3); at 25 -> 20 (2); at 35: env 0 ends at 30 -> critic's
    np.testing.assert_allclose(ours.advantages[:, 1], [5 - 3, 5 - 3, 0 - 2, 0.0], atol=1e-6)


def test_shared_stream_needs_the_wrapper_and_a_divisor_of_n_envs():
    with pytest.raises(ValueError, match="shared_stream=3 must divide n_envs=2"):
        rl.model_kwargs("maskable_ppo", {"policy": "MlpPolicy", "n_envs": 2, "shared_stream": 3})
    ours, _ = _buffers(2, 2, gamma=1.0, shared_stream=2)
    ours.dt_s[:], ours.time_s[:] = 1.0, 1.0
    ours.pos, ours.full = 2, True
    with pytest.raises(RuntimeError, match="SharedStreamSeeds"):
        ours.compute_returns_and_advantage(th.zeros(2), np.array([False, False]))


def test_train_py_learns_on_shared_streams(tmp_path):
    argv = [sys.executable, "train.py", "--env", "Tiny-v1", "--timesteps", "256", "--run-dir", str(tmp_path)]
    argv += ["--run-name", "shared", "--eval-freq", "0", "--checkpoint-freq", "0", "--no-progress"]
    argv += ["--hyperparams", "n_envs=2", "n_steps=64", "batch_size=64", "n_epochs=1", "shared_stream=2"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


# -- the clone guard -------------------------------------------------------------------------------
def test_clone_kl_is_zero_on_itself_ignores_masked_actions_and_grows_with_the_gap():
    mask = th.tensor([[True, True, False]])
    logits = th.tensor([[1.0, 0.0, 5.0]])

    def dist(values):
        return th.distributions.Categorical(logits=th.where(mask, values, th.tensor(-1e8)))

    assert float(credit.clone_kl(dist(logits), dist(logits))) == 0.0
    masked_only = dist(th.tensor([[1.0, 0.0, -3.0]]))  # differs only where masked
    assert float(credit.clone_kl(dist(logits), masked_only)) == pytest.approx(0.0, abs=1e-7)
    near, far = dist(th.tensor([[0.5, 0.0, 5.0]])), dist(th.tensor([[-2.0, 0.0, 5.0]]))
    assert 0 < float(credit.clone_kl(dist(logits), near)) < float(credit.clone_kl(dist(logits), far))


def _kl_to_start_after_learning(guard: float | None) -> float:
    """KL(start ‖ policy) on a Tiny-v1 rollout after 512 steps of PPO at a high learning rate."""
    from sb3_contrib import MaskablePPO

    env = gym.make("orbit_env/Tiny-v1")
    model = MaskablePPO("MlpPolicy", env, n_steps=128, batch_size=64, n_epochs=10, learning_rate=3e-3, seed=0)
    callbacks = [] if guard is None else [credit.CloneAnchor(guard)]
    start = __import__("copy").deepcopy(model.policy)
    model.learn(512, callback=callbacks)
    batch = next(model.rollout_buffer.get(None))
    with th.no_grad():
        ref = start.get_distribution(batch.observations, action_masks=batch.action_masks).distribution
        cur = model.policy.get_distribution(batch.observations, action_masks=batch.action_masks).distribution
        return float(credit.clone_kl(ref, cur))


def test_the_clone_guard_keeps_the_policy_nearer_its_start():
    free, guarded = _kl_to_start_after_learning(None), _kl_to_start_after_learning(100.0)
    assert guarded < 0.5 * free, (free, guarded)


@pytest.mark.parametrize("coef", [0, -1.0, float("nan"), True, "1"])
def test_a_bad_clone_kl_coef_is_a_clear_error(coef):
    with pytest.raises(ValueError, match="clone_kl_coef must be a positive number"):
        credit.CloneAnchor(coef)


def test_the_clone_guard_needs_a_policy_to_start_from(tmp_path):
    import train

    argv = ["--env", "Tiny-v1", "--timesteps", "64", "--run-dir", str(tmp_path), "--no-progress"]
    with pytest.raises(
        ValueError, match="clone_kl_coef anchors to the starting policy: it needs --init-from"
    ):
        train.main([*argv, "--hyperparams", "clone_kl_coef=1.0"])
    assert not any(tmp_path.iterdir())  # refused before any run folder was made


# -- the ablation figure -----------------------------------------------------------------------------
def _fake_run(folder: Path, init_from: str | None, hyper: dict, returns: list[list[float]]) -> Path:
    import yaml

    folder.mkdir(parents=True)
    steps = 100 * np.arange(1, len(returns) + 1)
    np.savez(folder / "evaluations.npz", timesteps=steps, results=np.asarray(returns))
    (folder / "config.yml").write_text(
        yaml.safe_dump({"args": {"init_from": init_from}, "hyperparams": hyper})
    )
    return folder


def test_ablation_curves_label_each_run_and_bracket_its_iqm(tmp_path, capsys):
    from tests.checks import load_script

    curves = load_script("docs/ablation_curves.py")
    _fake_run(tmp_path / "runs" / "a", "eclipse_safe", {"n_envs": 2}, [[1, 2, 3, 4, 100], [5, 6, 7, 8, 9]])
    hyper = {"time_constant_h": 3.0, "per_job_credit": True, "shared_stream": 1}
    _fake_run(tmp_path / "runs" / "b", None, hyper, [[10, 10, 10, 10, 10], [0, 0, 0, 0, 0]])
    labels = [curves.label(run) for run in curves.run_folders([str(tmp_path / "runs")])]
    assert labels == ["clone · current recipe", "scratch · τ=3.0h · per-job"]
    stats = curves.iqm_intervals(np.array([[1, 2, 3, 4, 100]]), reps=200)
    assert stats[0, 0] == pytest.approx(3.0)  # the interquartile mean ignores the outlier
    assert stats[0, 1] <= stats[0, 0] <= stats[0, 2]
    out = tmp_path / "ablation.png"
    curves.main([str(tmp_path / "runs"), "--table", "--baseline", "teacher=8", "--out", str(out)])
    table = capsys.readouterr().out
    assert "| scratch · τ=3.0h · per-job | 10 [10, 10] (100) | 0 [0, 0] (200) |" in table
    assert out.stat().st_size > 10_000
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="no evaluations.npz under"):
        curves.run_folders([str(tmp_path / "empty")])
