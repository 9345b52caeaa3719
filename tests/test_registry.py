"""make_policy: heuristics by name, SB3 models by path (algorithm read from the zip), clear errors."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import orbit_env  # noqa: F401  (registers the ids)
from agents.base import HeuristicPolicy, Policy
from agents.models import detect_algo
from agents.registry import POLICY_NAMES, ModelPolicy, list_policies, make_policy


@pytest.fixture(scope="module")
def tiny_env():
    env = gym.make("orbit_env/Tiny-v1")
    yield env
    env.close()


@pytest.fixture(scope="module")
def models(tmp_path_factory, tiny_env) -> dict[str, Path]:
    """One barely trained model per algorithm, saved as SB3 zips (about a second each)."""
    import torch
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import A2C, DQN, PPO

    folder = tmp_path_factory.mktemp("models")
    specs = {
        "maskable_ppo": (MaskablePPO, {"n_steps": 64, "batch_size": 32}),
        "ppo": (PPO, {"n_steps": 64, "batch_size": 32}),
        "a2c": (A2C, {"n_steps": 8}),
        "dqn": (DQN, {"learning_starts": 16, "buffer_size": 1000}),
    }
    paths = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks; more threads only contend when the machine is busy
    try:
        for algo, (cls, kwargs) in specs.items():
            model = cls("MlpPolicy", tiny_env, device="cpu", seed=0, **kwargs)
            model.learn(128)
            paths[algo] = folder / f"{algo}.zip"
            model.save(paths[algo])
    finally:
        torch.set_num_threads(threads)
    return paths


def test_every_heuristic_name_constructs_and_predicts_a_valid_action(tiny_env):
    obs, info = tiny_env.reset(seed=3)
    assert list_policies() == list(POLICY_NAMES)
    for name in POLICY_NAMES:
        policy = make_policy(name, seed=0)
        assert isinstance(policy, HeuristicPolicy) and isinstance(policy, Policy)
        action, _ = policy.predict(obs)
        assert info["action_mask"][int(action)], name


def test_unknown_name_lists_the_valid_names_and_the_closest():
    with pytest.raises(ValueError, match="did you mean 'energy_aware'") as err:
        make_policy("energy-aware")
    for name in POLICY_NAMES:
        assert name in str(err.value)


def test_missing_model_file_names_the_file(tmp_path):
    missing = tmp_path / "runs" / "best_model.zip"
    with pytest.raises(FileNotFoundError, match="best_model.zip"):
        make_policy(str(missing))
    with pytest.raises(FileNotFoundError, match="nothing.zip"):
        make_policy(f"ppo:{tmp_path / 'nothing.zip'}")


def test_a_file_that_is_not_an_sb3_zip_is_a_value_error(tmp_path):
    bogus = tmp_path / "model.zip"
    bogus.write_text("not a zip")
    with pytest.raises(ValueError, match="not a stable-baselines3 model"):
        make_policy(str(bogus))


def test_unknown_algorithm_prefix_is_rejected(models):
    with pytest.raises(ValueError, match="unknown algorithm 'sb3'"):
        make_policy(f"sb3:{models['ppo']}")


@pytest.mark.parametrize("algo", ["maskable_ppo", "ppo", "a2c", "dqn"])
def test_algorithm_is_detected_from_the_zip(models, algo, tiny_env):
    assert detect_algo(models[algo]) == algo
    policy = make_policy(str(models[algo]), env=tiny_env)
    assert isinstance(policy, ModelPolicy) and policy.algo == algo
    explicit = make_policy(f"{algo}:{models[algo]}")
    assert explicit.algo == algo


def test_path_without_the_zip_suffix_loads(models):
    assert make_policy(str(models["ppo"].with_suffix(""))).algo == "ppo"


def test_the_wrong_explicit_algorithm_says_what_the_zip_is(models):
    with pytest.raises(ValueError, match="looks like maskable_ppo"):
        make_policy(f"ppo:{models['maskable_ppo']}")


def test_maskable_ppo_never_takes_a_masked_action(models, tiny_env):
    policy = make_policy(str(models["maskable_ppo"]), env=tiny_env)
    obs, info = tiny_env.reset(seed=5)
    done = False
    while not done:
        action, _ = policy.predict(obs)
        assert info["action_mask"][int(action)]
        obs, _, terminated, truncated, info = tiny_env.step(action)
        assert not info["invalid_action"]
        done = terminated or truncated
    batch, _ = policy.predict(np.stack([obs, obs]))
    assert batch.shape == (2,)


def test_model_trained_on_another_size_is_a_clear_value_error(models):
    walker = gym.make("orbit_env/WalkerLEO-v1")
    with pytest.raises(ValueError) as err:
        make_policy(str(models["maskable_ppo"]), env=walker)
    message = str(err.value)
    assert "103 entries (4 satellites: Tiny-v1)" in message
    assert "1303 entries (64 satellites" in message and "orbit_env/WalkerLEO-v1" in message


def test_run_folder_config_names_the_training_env(models, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    model = run / "best_model.zip"
    model.write_bytes(models["ppo"].read_bytes())
    (run / "config.yml").write_text("env: orbit_env/Tiny-v1\nalgo: ppo\n")
    with pytest.raises(ValueError, match=r"trained on orbit_env/Tiny-v1"):
        make_policy(str(model), env=gym.make("orbit_env/WalkerLEO-v1"))
