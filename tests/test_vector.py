"""The native vector env (``gymnasium.make_vec``) and its stable-baselines3 adapter: the same
episodes as single envs, Gymnasium's three autoreset modes, shared geometry, clear errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import orbit_env  # noqa: F401  (registers the ids)
from orbit_env.envs.vector import OrbitVectorEnv

ENV_ID = "orbit_env/Tiny-v1"  # 4 satellites, episodes of ~30 decisions
EPOCH = "2026-03-20T00:00:00Z"  # one epoch for every env: their simulators share its geometry


def _random_valid(rng: np.random.Generator, masks: np.ndarray) -> np.ndarray:
    return (rng.random(masks.shape) * masks).argmax(axis=1)


def test_make_vec_returns_the_native_vector_env_with_batched_spaces_and_masks():
    envs = gym.make_vec(ENV_ID, num_envs=3)
    assert isinstance(envs, OrbitVectorEnv)
    n = envs.n_sats
    obs, infos = envs.reset(seed=0)
    assert obs.shape == (3, *envs.single_observation_space.shape) and obs.dtype == np.float32
    assert envs.action_space.shape == (3,)
    assert infos["action_mask"].shape == (3, n + 2) and infos["action_mask"].dtype == bool
    assert np.array_equal(envs.action_masks(), infos["action_mask"])
    envs.close()


def _single_episodes(seeds: list[int], actions: np.ndarray) -> list[list[tuple]]:
    """Per env: (obs, reward, terminated, mask, settled jobs) of each step, with NEXT_STEP's reset
    step (reward 0, action ignored) after an episode ends."""
    out = []
    for i, seed in enumerate(seeds):
        env = gym.make(ENV_ID, epoch=EPOCH)
        obs, info = env.reset(seed=seed)
        rows, ended = [], False
        for a in actions[:, i]:
            if ended:
                obs, info = env.reset()
                rows.append((obs, 0.0, False, info["action_mask"], None))
                ended = False
                continue
            obs, reward, terminated, _, info = env.step(int(a))
            rows.append((obs, reward, terminated, info["action_mask"], info["settled"]["jobs"]))
            ended = terminated
        out.append(rows)
        env.close()
    return out


def test_next_step_autoreset_plays_the_same_episodes_as_single_envs_seeded_seed_plus_i():
    b, steps = 3, 90  # ~3 episodes per env
    envs = gym.make_vec(ENV_ID, num_envs=b, epoch=EPOCH)
    _, infos = envs.reset(seed=11)
    rng = np.random.default_rng(0)
    actions, got = [], []
    for _ in range(steps):
        a = _random_valid(rng, infos["action_mask"])
        obs, reward, terminated, truncated, infos = envs.step(a)
        actions.append(a)
        got.append((obs, reward, terminated, infos["action_mask"], infos["settled"]["jobs"]))
        assert not truncated.any()
    want = _single_episodes([11 + i for i in range(b)], np.array(actions))
    ends = 0
    for t in range(steps):
        for i in range(b):
            obs, reward, terminated, mask, settled = want[i][t]
            assert np.array_equal(got[t][0][i], obs)
            assert got[t][1][i] == reward and got[t][2][i] == terminated
            assert np.array_equal(got[t][3][i], mask)
            if settled is not None:
                assert np.array_equal(got[t][4][i], settled)
            ends += terminated
    assert ends >= b  # the comparison crossed episode ends in every env
    envs.close()


def test_same_step_autoreset_returns_the_next_episode_with_the_final_observation_in_infos():
    envs = OrbitVectorEnv(2, scenario="Tiny-v1", epoch=EPOCH, autoreset_mode="SameStep")
    single = gym.make(ENV_ID, epoch=EPOCH)
    _, infos = envs.reset(seed=5)
    single.reset(seed=5)
    rng = np.random.default_rng(1)
    for _ in range(200):
        a = _random_valid(rng, infos["action_mask"])
        obs, _, terminated, _, infos = envs.step(a)
        s_obs, _, s_term, _, s_info = single.step(int(a[0]))
        assert terminated[0] == s_term
        if s_term:
            assert infos["_final_obs"][0] and np.array_equal(infos["final_obs"][0], s_obs)
            final = infos["final_info"]  # Gymnasium's layout: the final infos merged, key by key
            assert final["_episode_metrics"][0]
            for key, value in s_info["episode_metrics"].items():
                assert final["episode_metrics"][key][0] == value
            s_obs, s_info = single.reset()
            assert np.array_equal(obs[0], s_obs)  # the next episode's first observation
            break
        assert np.array_equal(obs[0], s_obs)
    else:
        pytest.fail("no episode ended in 200 steps")
    envs.close()


def test_disabled_autoreset_asks_for_a_masked_reset():
    envs = OrbitVectorEnv(2, scenario="Tiny-v1", epoch=EPOCH, autoreset_mode=AutoresetMode.DISABLED)
    _, infos = envs.reset(seed=[4, 3])  # env 1's episode ends first (rejecting every job)
    terminated = np.zeros(2, dtype=bool)
    while not terminated.any():
        _, _, terminated, _, infos = envs.step(np.full(2, envs.n_sats + 1))  # reject: ends fast
    decisions = [env.sim.counters.decisions for env in envs.envs]
    with pytest.raises(RuntimeError, match="reset_mask"):
        envs.step(np.full(2, envs.n_sats + 1))
    assert terminated.tolist() == [False, True]
    assert [env.sim.counters.decisions for env in envs.envs] == decisions  # refused before env 0 moved
    obs, infos = envs.reset(options={"reset_mask": terminated.copy()})
    assert infos["_action_mask"].tolist() == terminated.tolist()  # only the reset envs report
    envs.step(np.full(2, envs.n_sats + 1))
    envs.close()


def test_envs_of_one_epoch_share_the_geometry_and_keep_their_own_episode_state():
    envs = OrbitVectorEnv(3, scenario="Tiny-v1", epoch=EPOCH)
    envs.reset(seed=0)
    sims = [env.sim for env in envs.envs]
    assert sims[0].geometry is sims[1].geometry is sims[2].geometry
    assert sims[0].links.next_reach is sims[1].links.next_reach
    assert sims[0].links.antennas is not sims[1].links.antennas
    assert sims[0].energy_wh is not sims[1].energy_wh
    assert not np.array_equal(sims[0].energy_wh, sims[1].energy_wh) or sims[0].jobs is not sims[1].jobs
    envs.close()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: OrbitVectorEnv(0, scenario="Tiny-v1"), "num_envs"),
        (lambda: OrbitVectorEnv(True, scenario="Tiny-v1"), "num_envs"),
        (lambda: OrbitVectorEnv(2, scenario="Tiny-v1", autoreset_mode="Sometimes"), "autoreset_mode"),
        (lambda: OrbitVectorEnv(2, scenario="Tiny-v1", battery_wh=-1.0), "battery_wh"),
    ],
)
def test_bad_construction_is_a_clear_error(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_actions_resets_and_seeds_are_clear_errors():
    envs = OrbitVectorEnv(2, scenario="Tiny-v1", epoch=EPOCH)
    with pytest.raises(RuntimeError, match="reset"):
        envs.step(np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match="seed"):
        envs.reset(seed=[1, 2, 3])
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(seed=0, options={"reset_mask": np.array([True, False])})  # the first reset: all
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        envs.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(TypeError, match="integers"):
        envs.step(np.zeros(2))
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(options={"reset_mask": np.array([1, 0])})
    envs.close()


# -- stable-baselines3 ------------------------------------------------------------------------


def test_sb3_adapter_plays_what_dummy_vec_env_plays_with_batched_masks():
    pytest.importorskip("stable_baselines3")
    from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    from agents.vec import OrbitVecEnv

    kwargs = {"split": "train"}
    dummy = make_vec_env(ENV_ID, n_envs=3, seed=7, env_kwargs=kwargs, vec_env_cls=DummyVecEnv)
    native = OrbitVecEnv(ENV_ID, 3, env_kwargs=kwargs)
    native.seed(7)
    assert is_masking_supported(native)
    assert np.array_equal(dummy.reset(), native.reset())
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(150):
        masks = get_action_masks(native)
        assert masks.shape == (3, native.envs[0].n_sats + 2)
        assert np.array_equal(get_action_masks(dummy), masks)
        a = _random_valid(rng, masks)
        (o1, r1, d1, i1), (o2, r2, d2, i2) = dummy.step(a), native.step(a)
        assert np.array_equal(o1, o2) and np.array_equal(r1, r2) and np.array_equal(d1, d2)
        for x, y in zip(i1, i2, strict=True):
            if "terminal_observation" in x:
                assert np.array_equal(x["terminal_observation"], y["terminal_observation"])
                ends += 1
    assert ends >= 3
    assert native.get_attr("n_sats") == [4, 4, 4]
    assert native.env_is_wrapped(object) == [False] * 3
    native.set_attr("strict", True, indices=[0])
    assert native.get_attr("strict") == [True, False, False]
    dummy.close()
    native.close()


def test_sb3_adapter_trains_maskable_ppo_and_reports_episodes_through_vec_monitor():
    pytest.importorskip("sb3_contrib")
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.vec_env import VecMonitor

    from agents.vec import OrbitVecEnv

    venv = VecMonitor(OrbitVecEnv(ENV_ID, 2, env_kwargs={"split": "train"}))
    model = MaskablePPO("MlpPolicy", venv, n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(256)
    assert model.num_timesteps == 256
    assert len(model.ep_info_buffer) >= 2  # Tiny episodes are ~30 decisions
    venv.close()


def test_sb3_adapter_rejects_other_ids():
    pytest.importorskip("stable_baselines3")
    from agents.vec import OrbitVecEnv

    with pytest.raises(ValueError, match="orbit_env id"):
        OrbitVecEnv("CartPole-v1", 2)


# -- the compiled batch step ---------------------------------------------------------------------


def _play(envs, steps: int, seed: int) -> list[tuple]:
    """(obs, rewards, terminated, infos) of ``steps`` random valid steps."""
    _, infos = envs.reset(seed=seed)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        obs, rewards, terminated, _, infos = envs.step(_random_valid(rng, infos["action_mask"]))
        out.append((obs, rewards, terminated, infos))
    return out


def test_an_env_whose_simulator_needs_python_between_clock_steps_plays_the_same_in_the_batch():
    # a listener makes that env's clock return to Python at every boundary: the batch steps it
    # through Python, the others in the compiled call, with the same episodes as without it
    plain = OrbitVectorEnv(3, scenario="Tiny-v1", epoch=EPOCH)
    listened = OrbitVectorEnv(3, scenario="Tiny-v1", epoch=EPOCH)
    listened.reset(seed=2)
    boundaries = []
    listened.envs[1].sim.add_listener(lambda sim: boundaries.append(sim.step_index))
    a, b = _play(plain, 120, seed=2), _play(listened, 120, seed=2)
    assert boundaries  # the listener was called
    for (obs_a, r_a, t_a, i_a), (obs_b, r_b, t_b, i_b) in zip(a, b, strict=True):
        assert np.array_equal(obs_a, obs_b) and np.array_equal(r_a, r_b) and np.array_equal(t_a, t_b)
        assert np.array_equal(i_a["action_mask"], i_b["action_mask"])
        assert np.array_equal(i_a["decided_job"], i_b["decided_job"])
        for env_jobs_a, env_jobs_b in zip(i_a["settled"]["jobs"], i_b["settled"]["jobs"], strict=True):
            assert np.array_equal(env_jobs_a, env_jobs_b)
    assert sum(t.sum() for _, _, t, _ in a) >= 3  # episodes ended on the way


def test_mask_infos_report_the_mask_and_episode_ends_only():
    full = OrbitVectorEnv(2, scenario="Tiny-v1", epoch=EPOCH)
    lean = gym.make_vec(ENV_ID, num_envs=2, epoch=EPOCH, infos="mask")
    ended = 0
    for (obs_a, r_a, t_a, i_a), (obs_b, r_b, t_b, i_b) in zip(
        _play(full, 80, seed=7), _play(lean, 80, seed=7), strict=True
    ):
        assert np.array_equal(obs_a, obs_b) and np.array_equal(r_a, r_b) and np.array_equal(t_a, t_b)
        assert np.array_equal(i_a["action_mask"], i_b["action_mask"])
        assert set(i_b) <= {"action_mask", "_action_mask", "episode_metrics", "_episode_metrics"}
        if t_b.any():
            ended += 1
            assert i_b["_episode_metrics"].tolist() == t_b.tolist()
            for key, values in i_a["episode_metrics"].items():
                assert np.array_equal(i_b["episode_metrics"][key], values)
    assert ended
    with pytest.raises(ValueError, match="infos"):
        OrbitVectorEnv(2, scenario="Tiny-v1", infos="some")


def _assert_same(got, want, path="infos"):
    """Equal key by key, recursively: same keys in the same order, same dtypes, same values."""
    if isinstance(want, dict):
        assert list(got) == list(want), path
        for key in want:
            _assert_same(got[key], want[key], f"{path}[{key!r}]")
    elif isinstance(want, np.ndarray) and want.dtype == object:
        assert got.dtype == object and got.shape == want.shape, path
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, np.ndarray):
        assert got.dtype == want.dtype and np.array_equal(got, want), path
    else:
        assert type(got) is type(want) and got == want, path


def test_the_batched_infos_of_a_step_are_the_single_envs_infos_batched():
    # the compiled step's infos are built from its arrays; they must be exactly what batching
    # the single envs' own info dicts gives (keys, order, dtypes, values), episode ends included
    b = 3
    envs = OrbitVectorEnv(b, scenario="Tiny-v1", epoch=EPOCH, autoreset_mode="SameStep")
    singles = [gym.make(ENV_ID, epoch=EPOCH).unwrapped for _ in range(b)]
    _, infos = envs.reset(seed=21)
    for i, env in enumerate(singles):
        env.reset(seed=21 + i)
    rng = np.random.default_rng(3)
    ended = 0
    for _ in range(80):
        actions = _random_valid(rng, infos["action_mask"])
        _, _, terminated, _, infos = envs.step(actions)
        per_env = []
        for env, a in zip(singles, actions, strict=True):
            obs, _, term, _, info = env.step(int(a))
            if term:
                info = {"final_obs": obs, "final_info": info}
                _, reset_info = env.reset()
                info.update(reset_info)
            per_env.append(info)
        _assert_same(infos, envs._batch_infos(per_env))
        ended += terminated.sum()
    assert ended >= b
