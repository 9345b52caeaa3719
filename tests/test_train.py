"""train.py and agents.rl: a short real run on Tiny-v1, resuming, loading, cloning, the SatScorer policy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch as th
import yaml
from gymnasium import spaces
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import orbit_env  # noqa: F401
import train
from agents import rl
from agents.models import detect_algo, load_model
from agents.registry import make_policy
from agents.rollout import run_episode
from evaluate import evaluate
from tests.checks import load_script

th.set_num_threads(1)

TINY = "orbit_env/Tiny-v1"
FAST = ["--hyperparams", "n_steps=64", "batch_size=32", "n_epochs=2", "--no-progress"]


def scalar_tags(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short MaskablePPO run on Tiny-v1, cloned from eclipse_safe, shared by the tests below."""
    root = tmp_path_factory.mktemp("runs")
    args = ["--env", TINY, "--timesteps", "300", "--n-envs", "1", "--seed", "3", "--run-dir", str(root)]
    args += ["--run-name", "smoke", "--eval-freq", "150", "--eval-episodes", "1", "--checkpoint-freq", "150"]
    args += ["--init-from", "eclipse_safe", "--bc-episodes", "1", "--bc-epochs", "2", *FAST]
    return train.main([*args, "--dagger-rounds", "1", "--dagger-episodes", "1"])


def test_short_run_writes_models_config_checkpoints_and_tensorboard(run: Path) -> None:
    for name in (
        "model.zip",
        "best_model.zip",
        "bc_model.zip",
        "config.yml",
        "evaluations.npz",
        "progress.csv",
    ):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "checkpoints").glob("*.zip")) == [
        "rl_model_150_steps.zip",
        "rl_model_300_steps.zip",
    ]
    config = yaml.safe_load((run / "config.yml").read_text())
    assert config["env"] == TINY and config["algo"] == "maskable_ppo" and config["seed"] == 3
    assert len(config["git_commit"]) == 40 or config["git_commit"] == "unknown"
    assert {"orbit-env", "gymnasium", "stable-baselines3", "sb3-contrib", "torch", "numpy"} <= set(
        config["versions"]
    )
    assert config["hyperparams"]["n_steps"] == 64 and config["hyperparams"]["policy"] == "SatScorer"
    assert config["args"]["eval_freq"] == 150 and config["start_time"]
    assert config["validation"] == {"split": "val", "seeds": [500, 500]}


def test_tensorboard_logs_episode_metrics_at_the_global_step(run: Path) -> None:
    tags = scalar_tags(run)
    tags_wanted = ("episode/on_time_value_rate", "episode/brownouts", "episode/return", "eval/mean_reward")
    for tag in (*tags_wanted, "rollout/ep_rew_mean"):
        assert tag in tags, tag
    steps = [s for s, _ in tags["episode/on_time_value_rate"]]
    assert steps == sorted(steps) and steps[0] >= 64  # global steps, not episode counts
    assert all(0.0 <= v <= 1.0 for _, v in tags["episode/on_time_value_rate"])
    # At the first log with finished episodes both means cover the same episodes; later SB3's is
    # a mean over the last 100 episodes and episode/return over the episodes since the last log.
    assert tags["episode/return"][0] == pytest.approx(tags["rollout/ep_rew_mean"][0], rel=1e-6)


def test_init_from_heuristic_logs_bc_accuracy(run: Path) -> None:
    tags = scalar_tags(run)
    assert [s for s, _ in tags["bc/accuracy"]] == [1, 2]
    assert "bc/loss" in tags and "bc/final_accuracy" in tags
    bc = yaml.safe_load((run / "config.yml").read_text())["behaviour_clone"]
    assert bc["teacher"] == "eclipse_safe" and bc["episodes"] == 1 and bc["samples"] > 10
    assert 0.0 <= bc["accuracy"] <= 1.0
    # One DAgger round: the clone's agreement on its own states, logged after the cloning epochs.
    (dagger,) = bc["dagger"]
    assert 0.0 <= dagger["accuracy"] <= 1.0 and dagger["samples"] > 10
    assert bc["samples"] >= 2 * min(dagger["samples"], 10)  # teacher and DAgger samples together
    assert [s for s, _ in tags["bc/dagger_accuracy"]] == [3]
    # The run's hyperparameters got the finetune block of the Tiny-v1 entry.
    assert yaml.safe_load((run / "config.yml").read_text())["hyperparams"]["learning_rate"] == 3e-5


class _AlwaysReject:
    """A student that rejects every job (action N + 1)."""

    def __init__(self, n_actions: int) -> None:
        self.n_actions = n_actions

    def predict(self, obs, **kwargs):
        return np.int64(self.n_actions - 1), None


def test_dagger_labels_the_students_states_with_the_teachers_actions() -> None:
    teacher = rl.collect_teacher(TINY, "eclipse_safe", episodes=1, seed=0)
    # A student that plays like the teacher reaches the teacher's states: the same data.
    from agents.base import defer_s_of
    from agents.heuristics import HEURISTICS

    same = HEURISTICS["eclipse_safe"](seed=0, defer_s=defer_s_of(gymnasium.make(TINY)))
    mirror = rl.collect_teacher(TINY, "eclipse_safe", episodes=1, seed=0, student=same)
    for key in ("obs", "actions", "masks", "rewards"):
        assert np.array_equal(mirror[key], teacher[key]), key
    assert np.array_equal(mirror["played"], mirror["actions"])
    # A student that rejects everything: its actions are played, the labels are still the teacher's.
    n_actions = teacher["masks"].shape[1]
    rejecting = rl.collect_teacher(TINY, "eclipse_safe", episodes=1, seed=0, student=_AlwaysReject(n_actions))
    assert (rejecting["played"] == n_actions - 1).all()
    assert (rejecting["actions"] < n_actions - 2).any()  # the teacher would have placed some
    assert rejecting["returns"][0] < teacher["returns"][0]
    agreement = rl._agreement(rejecting["played"], rejecting["actions"], n_actions - 2)
    assert agreement["accuracy_placements"] == 0.0


def test_dagger_rounds_add_the_clones_episodes(tmp_path: Path) -> None:
    from sb3_contrib import MaskablePPO

    model = MaskablePPO(rl.SatScorerPolicy, gymnasium.make(TINY), seed=0, n_steps=64)
    stats = rl.behaviour_clone(
        model, TINY, episodes=1, epochs=2, seed=1, dagger_rounds=2, dagger_episodes=1, dagger_epochs=1
    )
    assert len(stats["dagger"]) == 2 and len(stats["epoch_loss"]) == 1  # the last refit's epochs
    teacher = rl.collect_teacher(TINY, "eclipse_safe", episodes=1, seed=1)
    assert stats["samples"] == len(teacher["actions"]) + sum(r["samples"] for r in stats["dagger"])
    with pytest.raises(ValueError, match="dagger_rounds must be an integer >= 0"):
        rl.behaviour_clone(model, TINY, episodes=1, dagger_rounds=-1)
    with pytest.raises(ValueError, match="dagger_epochs must be an integer >= 1"):
        rl.behaviour_clone(model, TINY, episodes=1, dagger_rounds=1, dagger_epochs=0)


def test_the_teachers_ties_hold_its_action_and_only_valid_satellites_and_grow_with_the_tolerance():
    tight = rl.collect_teacher(TINY, "marginal_cost", episodes=1, seed=0, tie_tolerance=0.001)
    loose = rl.collect_teacher(TINY, "marginal_cost", episodes=1, seed=0, tie_tolerance=0.5)
    plain = rl.collect_teacher(TINY, "marginal_cost", episodes=1, seed=0)
    assert "ties" not in plain and np.array_equal(plain["actions"], tight["actions"])  # same play
    for data in (tight, loose):
        ties, actions, masks = data["ties"], data["actions"], data["masks"]
        assert ties[np.arange(len(actions)), actions].all()  # the teacher's own action is in its set
        assert not (ties & ~masks).any()  # never a masked action
        placed = actions < masks.shape[1] - 2
        assert (ties[~placed].sum(axis=1) == 1).all()  # a deferral or rejection is its own set
    assert (loose["ties"] >= tight["ties"]).all() and loose["ties"].sum() > tight["ties"].sum()


def test_the_tie_set_script_counts_sets_that_grow_with_the_tolerance():
    script = load_script("docs/tie_sets.py")
    tight = script.tie_sets(TINY, "marginal_cost", 0.001, 300, 100000)
    loose = script.tie_sets(TINY, "marginal_cost", 0.5, 300, 100000)
    assert tight.size == loose.size > 0  # the same placements: the rule's play does not see τ
    assert (tight >= 1).all() and (loose >= tight).all() and loose.sum() > tight.sum()


def test_a_clone_towards_sets_of_ties_scores_its_set_and_reduces_to_plain_cloning_on_singletons():
    from sb3_contrib import MaskablePPO

    model = MaskablePPO(rl.SatScorerPolicy, gymnasium.make(TINY), seed=0, n_steps=64)
    data = rl.collect_teacher(TINY, "marginal_cost", episodes=1, seed=0, tie_tolerance=0.5)
    plain = rl._ActorFit(model.policy, {k: v for k, v in data.items() if k != "ties"}, "m", 0, 64, 1e-3)
    singletons = dict(data, ties=np.eye(data["masks"].shape[1], dtype=bool)[data["actions"]])
    as_sets = rl._ActorFit(model.policy, singletons, "m", 0, 64, 1e-3)
    wide = rl._ActorFit(model.policy, data, "m", 0, 64, 1e-3)
    idx = np.arange(len(data["actions"]))
    with th.no_grad():
        assert float(as_sets._loss(idx)) == pytest.approx(float(plain._loss(idx)), rel=1e-5)
        assert float(wide._loss(idx)) <= float(plain._loss(idx)) + 1e-6  # a bigger set is never worse
    stats = rl.behaviour_clone(model, TINY, teacher="marginal_cost", episodes=1, epochs=2, tie_tolerance=0.5)
    assert stats["tie_tolerance"] == 0.5 and stats["mean_ties"] >= 1.0
    assert stats["accuracy_ties"] >= stats["accuracy"]
    with pytest.raises(ValueError, match="tie_tolerance must be a number >= 0"):
        rl.behaviour_clone(model, TINY, episodes=1, tie_tolerance=-0.1)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--bc-tie-tolerance", "-1", "--init-from", "marginal_cost"], "--bc-tie-tolerance must be a number"),
        (["--dagger-rounds", "-1", "--init-from", "eclipse_safe"], "--dagger-rounds must be >= 0"),
        (
            ["--dagger-rounds", "1", "--dagger-episodes", "0", "--init-from", "eclipse_safe"],
            "--dagger-episodes",
        ),
        (["--dagger-rounds", "1"], "needs --init-from HEURISTIC"),
        (["--dagger-rounds", "1", "--dagger-epochs", "0", "--init-from", "link_aware"], "--dagger-epochs"),
    ],
)
def test_bad_dagger_settings_are_clear_errors(extra: list[str], message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=message):
        train.main(["--env", TINY, "--timesteps", "64", "--run-dir", str(tmp_path), *extra, *FAST])
    assert not any(tmp_path.iterdir())


def test_init_from_a_saved_clone_starts_from_its_weights(run: Path, tmp_path: Path) -> None:
    args = ["--env", TINY, "--timesteps", "64", "--n-envs", "1", "--run-dir", str(tmp_path)]
    args += ["--eval-freq", "0"]
    run_dir = train.main([*args, "--run-name", "ws", "--init-from", str(run / "bc_model.zip"), *FAST])
    config = yaml.safe_load((run_dir / "config.yml").read_text())
    ws = config["warm_start"]
    assert ws["model"] == str(run / "bc_model.zip") and len(ws["sha256"]) == 64 and ws["num_timesteps"] == 0
    assert ws["behaviour_clone"]["teacher"] == "eclipse_safe"  # the clone's cost stays on record
    assert config["hyperparams"]["learning_rate"] == 3e-5  # the finetune block, as with a heuristic
    # Before any update the new model is the clone: with lr 0 the weights stay equal.
    frozen = train.main(
        [*args, "--run-name", "ws0", "--init-from", str(run / "bc_model.zip"), *FAST[:-1], "learning_rate=0"]
        + ["--no-progress"]
    )
    clone = load_model(run / "bc_model.zip").policy.state_dict()
    for key, value in load_model(frozen / "model.zip").policy.state_dict().items():
        assert th.equal(value, clone[key]), key


def test_init_from_a_model_of_another_env_is_a_clear_error_and_leaves_no_run(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--env", "orbit_env/WalkerLEO-v1", "--timesteps", "64", "--run-dir", str(tmp_path)]
    with pytest.raises(ValueError, match=r"103 entries .*4 satellites.*1303 entries"):
        train.main([*args, "--run-name", "bad", "--init-from", str(run / "model.zip"), *FAST])
    assert not (tmp_path / "bad").exists()
    for spec, message in (("nothing", "neither a heuristic"), (str(tmp_path / "missing.zip"), "no model at")):
        with pytest.raises(SystemExit):
            train.parse_args(["--init-from", spec])
        assert message in capsys.readouterr().err


def test_background_validation_matches_the_foreground_one(run: Path, tmp_path: Path) -> None:
    """Same run with --eval-async: same validation results, at the same steps, and the same best model."""
    args = ["--env", TINY, "--timesteps", "300", "--n-envs", "1", "--seed", "3", "--run-dir", str(tmp_path)]
    args += ["--run-name", "async", "--eval-freq", "150", "--eval-episodes", "1", "--checkpoint-freq", "150"]
    args += ["--init-from", "eclipse_safe", "--bc-episodes", "1", "--bc-epochs", "2", "--eval-async", *FAST]
    background = train.main([*args, "--dagger-rounds", "1", "--dagger-episodes", "1"])  # as the fixture
    with np.load(run / "evaluations.npz") as fg, np.load(background / "evaluations.npz") as bg:
        assert fg["timesteps"].tolist() == bg["timesteps"].tolist() == [150, 300, 320]  # 320: the end
        for key in ("results", "ep_lengths", "on_time"):
            np.testing.assert_array_equal(fg[key], bg[key])
    assert scalar_tags(background)["eval/mean_reward"] == scalar_tags(run)["eval/mean_reward"]
    best = {k: v for k, v in load_model(run / "best_model.zip").policy.state_dict().items()}
    for key, value in load_model(background / "best_model.zip").policy.state_dict().items():
        assert th.equal(value, best[key]), key
    assert not any((background / "validation").iterdir())  # scored copies are removed


def test_resume_continues_the_step_count(run: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    first = load_model(copy / "model.zip").num_timesteps
    train.main(["--resume", str(copy), "--timesteps", "100", "--no-progress"])
    resumed = load_model(copy / "model.zip")
    assert resumed.num_timesteps >= first + 100
    config = yaml.safe_load((copy / "config.yml").read_text())
    assert len(config["starts"]) == 2 and config["starts"][1]["from_step"] == first
    assert config["args"]["eval_freq"] == 150  # the run's arguments, not the parser's defaults
    assert max(s for s, _ in scalar_tags(copy)["rollout/ep_rew_mean"]) > first


def test_saved_model_runs_in_evaluate(run: Path) -> None:
    assert detect_algo(run / "best_model.zip") == "maskable_ppo"
    # SatScorer models are detected as maskable_ppo; naming the algorithm works as well.
    results = evaluate(
        TINY, [f"maskable_ppo:{run / 'best_model.zip'}"], episodes=1, seed=1000, ceiling=False, progress=False
    )
    (row,) = results["policies"].values()
    assert np.isfinite(row["return"]["mean"])


def test_model_on_an_env_of_another_size_gives_a_clear_error(run: Path) -> None:
    walker = gymnasium.make("orbit_env/WalkerLEO-v1")
    with pytest.raises(ValueError, match=r"103 entries .*4 satellites.*1303 entries"):
        make_policy(f"maskable_ppo:{run / 'model.zip'}", env=walker)
    with pytest.raises(ValueError, match=r"trained on orbit_env/Tiny-v1"):
        load_model(run / "model.zip", env=walker)


@pytest.mark.parametrize("validation", [["--eval-freq", "0"], ["--eval-freq", "40", "--eval-async"]])
def test_ctrl_c_saves_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, validation: list[str]
) -> None:
    def interrupt(self: train.EpisodeMetricsCallback) -> bool:
        if self.num_timesteps >= 100:
            raise KeyboardInterrupt
        return True

    monkeypatch.setattr(train.EpisodeMetricsCallback, "_on_step", interrupt)
    args = ["--env", TINY, "--timesteps", "1000", "--n-envs", "1", "--run-dir", str(tmp_path)]
    args += ["--eval-episodes", "1", *validation]
    run_dir = train.main([*args, "--run-name", "ctrl_c", "--checkpoint-freq", "0", *FAST])
    assert load_model(run_dir / "model.zip").num_timesteps == 100
    assert yaml.safe_load((run_dir / "config.yml").read_text())["starts"][0]["interrupted"] is True
    # A background worker is stopped at once and its unscored copies are removed.
    assert not (run_dir / "validation").exists() or not any((run_dir / "validation").iterdir())


@pytest.mark.parametrize("algo", ["a2c", "dqn"])
def test_other_algorithms_train_and_save(algo: str, tmp_path: Path) -> None:
    args = ["--env", TINY, "--algo", algo, "--timesteps", "80", "--n-envs", "1", "--run-dir", str(tmp_path)]
    with pytest.warns(UserWarning, match="DQN cannot use action masks") if algo == "dqn" else _nothing():
        run_dir = train.main([*args, "--eval-freq", "40", "--eval-episodes", "1", "--no-progress"])
    assert detect_algo(run_dir / "model.zip") == algo
    assert (run_dir / "best_model.zip").is_file()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_satscorer_logits_permute_with_the_satellites() -> None:
    n, f = 7, len(orbit_env.envs.observation.SAT_COLUMNS)
    size = orbit_env.envs.observation.ObservationLayout(n).size
    policy = rl.SatScorerPolicy(
        spaces.Box(-1.0, 1.0, (size,), np.float32), spaces.Discrete(n + 2), lambda _: 3e-4
    )
    rng = np.random.default_rng(0)
    obs = rng.uniform(-1, 1, (3, size)).astype(np.float32)
    perm = rng.permutation(n)
    sats = obs[:, : n * f].reshape(3, n, f)
    permuted = np.concatenate([sats[:, perm].reshape(3, -1), obs[:, n * f :]], axis=1)
    masks = np.ones((3, n + 2), dtype=bool)
    masks[:, 2] = False  # satellite 2 invalid; after the permutation it sits wherever perm puts it
    masks_p = np.concatenate([masks[:, :n][:, perm], masks[:, n:]], axis=1)
    with th.no_grad():
        probs = policy.get_distribution(th.as_tensor(obs), masks).distribution.probs.numpy()
        probs_p = policy.get_distribution(th.as_tensor(permuted), masks_p).distribution.probs.numpy()
        value = policy.predict_values(th.as_tensor(obs)).numpy()
        value_p = policy.predict_values(th.as_tensor(permuted)).numpy()
    np.testing.assert_allclose(probs_p[:, :n], probs[:, :n][:, perm], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(probs_p[:, n:], probs[:, n:], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(value_p, value, rtol=1e-5, atol=1e-6)
    assert np.all(probs[:, 2] == 0) or np.all(probs[:, 2] < 1e-6)


def test_satscorer_runs_on_the_dict_observation() -> None:
    env = gymnasium.make(TINY, obs_mode="dict")
    model = rl.make_model(
        "maskable_ppo", env, {"policy": "SatScorer", "n_steps": 32, "batch_size": 16}, seed=0
    )
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, action_masks=env.unwrapped.action_masks(), deterministic=True)
    assert env.unwrapped.action_masks()[int(action)]


def test_hyperparams_from_yml_with_overrides_and_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "maskable_ppo.yml").write_text(
        "default:\n  n_steps: 128\n  learning_rate: !!float 3e-4\n  finetune:\n    learning_rate: 1.0e-5\n"
        "orbit_env/Tiny-v1:\n  n_steps: 32\n"
    )
    overrides = rl.parse_key_values(["learning_rate=1e-4", "policy_kwargs=dict(net_arch=[32, 32])"])
    hp = rl.load_hyperparams("maskable_ppo", TINY, overrides, hyperparams_dir=tmp_path)
    assert hp["n_steps"] == 32 and hp["learning_rate"] == 1e-4 and hp["n_envs"] == 1
    assert rl.model_kwargs("maskable_ppo", hp)["policy_kwargs"] == {"net_arch": [32, 32]}
    fallback = rl.load_hyperparams("maskable_ppo", "orbit_env/WalkerLEO-v1", {}, True, tmp_path)
    assert fallback["n_steps"] == 128 and fallback["learning_rate"] == 1e-5
    schedule = rl.model_kwargs("maskable_ppo", {"learning_rate": "lin_3e-4"})["learning_rate"]
    assert schedule(1.0) == pytest.approx(3e-4) and schedule(0.5) == pytest.approx(1.5e-4)
    with pytest.raises(ValueError, match="unknown maskable_ppo hyperparameter.*n_step\\b"):
        rl.load_hyperparams("maskable_ppo", TINY, {"n_step": 8}, hyperparams_dir=tmp_path)
    with pytest.raises(ValueError, match="needs algo maskable_ppo"):
        rl.model_kwargs("ppo", {"policy": "SatScorer"})
    with pytest.raises(ValueError, match="not key=value"):
        rl.parse_key_values(["learning_rate"])


def test_shipped_hyperparams_are_package_data_that_rl_zoo_reads() -> None:
    """Entries hold only what rl-zoo passes to the algorithm (policy by import path); the
    fine-tuning blocks sit in the top-level section the zoo never reads; train.py resolves the
    policy to its short name. A missing file is an error naming the path, never a silent default."""
    zoo_keys = {"n_envs", "n_timesteps", "normalize", "policy_kwargs"}
    assert Path(str(rl.HYPERPARAMS_DIR)).parent == Path(rl.__file__).parent  # inside the package
    for algo in ("maskable_ppo", "ppo", "a2c", "dqn"):
        table = yaml.safe_load((rl.HYPERPARAMS_DIR / f"{algo}.yml").read_text())
        sections = table.pop(rl.FINETUNE_SECTION, {})
        assert set(sections) <= set(table), algo
        for key, entry in table.items():
            assert set(entry) <= set(rl.allowed_keys(algo)) - {"finetune"} | zoo_keys, (algo, key)
            assert entry["policy"] in ("MlpPolicy", "agents.rl.SatScorerPolicy"), (algo, key)
    assert rl.load_hyperparams("maskable_ppo", TINY)["policy"] == "SatScorer"
    with pytest.raises(FileNotFoundError, match="nowhere.*maskable_ppo.yml"):
        rl.load_hyperparams("maskable_ppo", TINY, hyperparams_dir=Path("nowhere"))


def test_normalize_wraps_training_in_reward_normalisation_saved_with_the_run(tmp_path: Path) -> None:
    """``normalize: true`` (rl-zoo's key) normalises the training reward only; its statistics are
    saved with the final model and every checkpoint, and a resumed run continues from them."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    args = ["--env", TINY, "--timesteps", "128", "--n-envs", "1", "--run-dir", str(tmp_path)]
    args += ["--eval-freq", "128", "--eval-episodes", "1", "--checkpoint-freq", "64"]
    run_dir = train.main([*args, "--run-name", "norm", *FAST[:-1], "normalize=true", "--no-progress"])
    assert yaml.safe_load((run_dir / "config.yml").read_text())["hyperparams"]["normalize"] is True
    assert (run_dir / "checkpoints" / "vecnormalize_64_steps.pkl").is_file()
    venv = DummyVecEnv([lambda: gymnasium.make(TINY)])
    stats = VecNormalize.load(str(run_dir / "vecnormalize.pkl"), venv)
    assert not stats.norm_obs and stats.norm_reward and stats.gamma == 0.999
    assert stats.ret_rms.count > 128
    # Validation scores the plain episode return: replaying the best model gives the same number.
    with np.load(run_dir / "evaluations.npz") as evaluations:
        best = float(np.max(evaluations["results"]))
    policy = make_policy(str(run_dir / "best_model.zip"))
    replay, _, _ = run_episode(gymnasium.make(TINY, split="val"), policy, 500)
    assert replay == best
    train.main(["--resume", str(run_dir), "--timesteps", "64", "--no-progress"])
    resumed = VecNormalize.load(str(run_dir / "vecnormalize.pkl"), venv)
    assert resumed.ret_rms.count > stats.ret_rms.count + 63
    with pytest.raises(ValueError, match="norm_obs is not supported"):
        train.main([*args, "--run-name", "bad", *FAST[:-1], "normalize=dict(norm_obs=True)"])
    assert not (tmp_path / "bad").exists()


def test_learning_curve_draws_tensorboard_and_checkpoint_validation(run: Path, tmp_path: Path) -> None:
    curve = load_script("docs/learning_curve.py")
    row = {"return": {"mean": 10.0, "ci95": [8.0, 12.0]}, "brownouts": {"mean": 1.0}}
    better = {"mean": 11.0, "ci95": [9.0, 13.0]}
    results = {
        "episodes": 8,
        "policies": {
            "eclipse_safe": row,
            str(run / "checkpoints" / "rl_model_150_steps.zip"): {**row, "return": better},
            f"maskable_ppo:{run / 'bc_model.zip'}": row,
            str(run / "model.zip"): row,
            "ceiling": {"return": {"mean": 20.0}},
        },
    }
    (tmp_path / "results.json").write_text(json.dumps(results))
    points, baselines, episodes = curve.validation_points(tmp_path)
    final = load_model(run / "model.zip").num_timesteps
    assert [p[:2] for p in points] == [(0, 10.0), (150, 11.0), (final, 10.0)]
    assert baselines == [("eclipse_safe", 10.0)] and episodes == 8
    out = tmp_path / "curve.png"
    assert curve.main([str(run), "--out", str(out), "--validation", str(tmp_path)]) == 0
    assert out.stat().st_size > 10_000


def test_every_shipped_entry_is_fine_tuned_from_a_clone_at_the_finetune_rate() -> None:
    """An entry without its own key in the ``finetune`` section gets the section's ``default``
    (SuncatcherEclipse-v1 used to get none, so a clone was fine-tuned at RL's 3e-4)."""
    for env_id in ("orbit_env/WalkerLEO-v1", "orbit_env/Suncatcher-v1", "orbit_env/SuncatcherEclipse-v1"):
        rl_rate = rl.load_hyperparams("maskable_ppo", env_id)["learning_rate"]
        tuned = rl.load_hyperparams("maskable_ppo", env_id, finetune=True)
        assert rl_rate == 3e-4 and tuned["learning_rate"] == 3e-5, env_id
        assert tuned["target_kl"] == 0.02 and tuned["ent_coef"] == 0.0, env_id


def test_native_vec_env_trains_the_same_model_as_dummy_vec_env(tmp_path: Path) -> None:
    """``--vec-env native`` plays the same episodes as DummyVecEnv over make_vec_env (seeds
    seed + i), so a seeded run learns the same weights; shared streams need DummyVecEnv."""
    args = ["--env", TINY, "--timesteps", "128", "--n-envs", "2", "--seed", "4", "--run-dir", str(tmp_path)]
    args += ["--eval-freq", "0", "--checkpoint-freq", "0", *FAST]
    weights = {}
    for vec in ("dummy", "native"):
        run_dir = train.main([*args, "--run-name", vec, "--vec-env", vec])
        weights[vec] = load_model(run_dir / "model.zip").policy.state_dict()
    assert weights["dummy"].keys() == weights["native"].keys()
    for key, value in weights["dummy"].items():
        assert th.equal(value, weights["native"][key]), key
    with pytest.raises(ValueError, match="shared streams"):
        train.main([*args, "--run-name", "shared", "--vec-env", "native", *FAST[:-1], "shared_stream=2"])
    assert not (tmp_path / "shared").exists()


def test_sigint_stops_a_run_started_with_sigint_ignored_and_saves_the_model(tmp_path: Path) -> None:
    """A run started in the background of a script inherits SIGINT ignored; train.py restores
    it, so ``kill -INT`` stops the run and writes model.zip, as Ctrl-C does."""
    import signal
    import subprocess
    import sys
    import time

    args = [sys.executable, "train.py", "--env", TINY, "--timesteps", "1000000", "--n-envs", "1"]
    args += ["--run-dir", str(tmp_path), "--run-name", "bg", "--eval-freq", "0", "--checkpoint-freq", "0"]
    args += ["--threads", "1", *FAST]
    proc = subprocess.Popen(
        args,
        cwd=Path(train.__file__).parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # as `cmd &` in a script
    )
    progress = tmp_path / "bg" / "progress.csv"
    deadline = time.monotonic() + 240
    while (not progress.is_file() or progress.stat().st_size == 0) and time.monotonic() < deadline:
        time.sleep(0.5)  # training has started once SB3 logs its first rollout
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=240)
    finally:
        proc.kill()  # no-op once it has exited; a run that ignored the signal must not outlive the test
    assert proc.returncode == 0, out[-2000:]
    assert "interrupted at step" in out
    assert 0 < load_model(tmp_path / "bg" / "model.zip").num_timesteps < 1_000_000


def test_an_interrupt_inside_compiled_code_counts_as_ctrl_c() -> None:
    """CPython reports a Ctrl-C that lands while numba boxes a result as a SystemError caused by
    the KeyboardInterrupt; train.py saves the model for it as for a plain Ctrl-C."""
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as cause:
            raise SystemError("<function _numba_unpickle> returned a result with an exception set") from cause
    except SystemError as err:
        assert train.is_interrupt(err)
    assert train.is_interrupt(KeyboardInterrupt())
    assert not train.is_interrupt(SystemError("a real error"))
