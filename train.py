"""Train an RL placement policy on an orbit_env scenario (design §7).

    python train.py --env orbit_env/WalkerLEO-v1 --algo maskable_ppo --timesteps 1000000 --seed 0
    python train.py --env orbit_env/WalkerLEO-v1 --init-from eclipse_safe --bc-episodes 20
    python train.py --env orbit_env/WalkerLEO-v1 --init-from runs/<clone run>/bc_model.zip
    python train.py --resume runs/WalkerLEO-v1_maskable_ppo_0_20260101-120000 --timesteps 500000
    tensorboard --logdir runs/

Read top to bottom: arguments, the callbacks, then the steps of a run, each a short function
that ``main`` calls in order: check the arguments, prepare the run folder and config, make the
envs, build (or resume) the model, start from a clone or a saved model, make the callbacks,
learn, save, summarise.

Hyperparameters come from ``agents/hyperparams/<algo>.yml`` (the env's entry, else ``default``;
with ``--init-from`` the entry's block of the file's ``finetune`` section on top), then
``--hyperparams key=value``. ``normalize: true`` wraps the training envs in VecNormalize (reward
only: observations are already in [-1, 1]); validation and evaluation see the plain reward.
The credit-assignment hyperparameters of MaskablePPO (``time_constant_h``, ``per_job_credit``,
``lagged_credit``, ``shared_stream``; :mod:`agents.credit`) swap in its rollout buffer and the callback that
feeds it each step's info; ``shared_stream`` also makes the training envs play shared job
streams. ``clone_kl_coef`` (with ``--init-from``) adds a KL term towards the policy training
started from to every PPO update.

The run folder (``runs/<env>_<algo>_<seed>_<timestamp>/``, or ``--run-dir``/``--run-name``) holds:

* ``config.yml``: every argument, the resolved hyperparameters, ``env`` and ``env_kwargs``,
  package versions, git commit, start time, cloning stats and one entry per (re)start.
* ``model.zip`` (final, also written on Ctrl-C), ``best_model.zip`` (best mean validation
  return), ``checkpoints/rl_model_<steps>_steps.zip`` (and the replay buffer for DQN),
  ``bc_model.zip`` (the clone before RL, with ``--init-from``); with ``normalize``, the
  VecNormalize statistics (``vecnormalize.pkl``, ``checkpoints/vecnormalize_<steps>_steps.pkl``).
* TensorBoard events and ``progress.csv``: SB3's scalars, ``episode/<metric>`` (the env's
  ``episode_metrics``, mean over the training episodes finished since the last log),
  ``eval/<metric>`` and ``bc/*``; every scalar at the global step (env steps over all envs).
* ``evaluations.npz``: steps, returns and on-time value rates of every validation episode.

Honest evaluation: model selection looks at its validation episodes, so those must not be the
episodes of the final comparison. Validation uses ``split="val"`` days, disjoint from the train
days it learns on and the test days ``evaluate.py`` reports on (so it measures generalisation to
unseen days without spending the test days), with seeds ``--eval-seed`` .. (default 500–599);
``evaluate.py`` compares policies on seeds from 1000, which training never sees. Behaviour
cloning rolls out the teacher on ``split="train"`` with seeds from 100 000
(``agents.rl.collect_teacher``).

Masking: MaskablePPO reads the env's ``action_masks()`` through the Monitor and Gymnasium
wrappers (``VecEnv.env_method`` uses ``get_wrapper_attr``), or, with ``--vec-env native``, all
envs' masks in one call. PPO, A2C and DQN cannot use masks: an invalid action counts as reject.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import multiprocessing
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
import zipfile
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch as th
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger, configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecMonitor, VecNormalize
from tqdm import tqdm

import orbit_env  # noqa: F401  (registers the orbit_env/* ids)
from agents import credit, models, rl
from agents.heuristics import HEURISTICS
from agents.registry import ModelPolicy
from agents.rollout import resolve_env_id, run_episode
from agents.vec import OrbitVecEnv
from orbit_env.config import parse_overrides

REPO = Path(__file__).resolve().parent
VALIDATION_SPLIT = "val"  # model selection days: disjoint from train and test days
PACKAGES = ("orbit-env", "gymnasium", "stable-baselines3", "sb3-contrib", "torch", "numpy")


# -- arguments ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="train.py",
        description="Train MaskablePPO / PPO / A2C / DQN on an orbit_env scenario.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--env", default="orbit_env/WalkerLEO-v1", help="env id (orbit_env/ prefix optional)")
    p.add_argument("--algo", default="maskable_ppo", choices=list(models.ALGOS), help="learning algorithm")
    p.add_argument(
        "--timesteps",
        type=int,
        default=None,
        help="env steps to train (all envs together); None: the entry's n_timesteps, else 1e6. "
        "With --resume: further steps (None: what is left of the run's budget)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the model and of the training envs (seed + i)"
    )
    p.add_argument("--n-envs", type=int, default=None, help="parallel envs (None: the entry's n_envs)")
    p.add_argument(
        "--vec-env",
        default="dummy",
        choices=["dummy", "subproc", "native"],
        help="vector env: SB3's DummyVecEnv or SubprocVecEnv over gymnasium.make envs, or orbit_env's "
        "native one (agents.vec.OrbitVecEnv: same episodes, shared geometry, batched masks)",
    )
    p.add_argument("--run-dir", default="runs", help="parent folder of run folders")
    p.add_argument("--run-name", default=None, help="run folder name (None: <env>_<algo>_<seed>_<time>)")
    p.add_argument("--resume", default=None, help="run folder or model .zip to continue (same config)")
    p.add_argument("--env-kwargs", nargs="*", default=[], metavar="KEY=VALUE", help="env config overrides")
    p.add_argument(
        "--hyperparams", nargs="*", default=[], metavar="KEY=VALUE", help="hyperparameter overrides"
    )
    p.add_argument(
        "--init-from",
        default=None,
        metavar="HEURISTIC|MODEL.zip",
        help="clone this heuristic into the policy before RL, or start from a saved model's weights "
        f"(e.g. another run's bc_model.zip); either applies the entry's finetune block. "
        f"Heuristics: {', '.join(sorted(HEURISTICS))}",
    )
    p.add_argument("--bc-episodes", type=int, default=20, help="teacher episodes for behaviour cloning")
    p.add_argument("--bc-epochs", type=int, default=10, help="supervised epochs of behaviour cloning")
    p.add_argument("--bc-lr", type=float, default=1e-3, help="Adam learning rate of behaviour cloning")
    p.add_argument(
        "--dagger-rounds",
        type=int,
        default=0,
        help="DAgger rounds after cloning: the clone plays --dagger-episodes new train episodes, the "
        "teacher labels the states it reaches, and the clone is fitted again on all the data",
    )
    p.add_argument("--dagger-episodes", type=int, default=5, help="episodes the clone plays per DAgger round")
    p.add_argument(
        "--dagger-epochs", type=int, default=None, help="epochs of each DAgger refit (None: --bc-epochs)"
    )
    p.add_argument(
        "--bc-tie-tolerance",
        type=float,
        default=0.0,
        help="clone towards a set: every satellite the teacher scores within this share of its best "
        "score (0: the teacher's action only)",
    )
    p.add_argument(
        "--eval-freq", type=int, default=10000, help="validate every this many env steps (0: never)"
    )
    p.add_argument("--eval-episodes", type=int, default=5, help="validation episodes per evaluation")
    p.add_argument(
        "--eval-async",
        action="store_true",
        help="validate in a worker process while training goes on (a second core takes it off the clock)",
    )
    p.add_argument("--eval-seed", type=int, default=500, help="seed of validation episode 0 (val split)")
    p.add_argument(
        "--checkpoint-freq", type=int, default=50000, help="checkpoint every this many steps (0: never)"
    )
    p.add_argument("--device", default="cpu", help="torch device")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for small nets)")
    p.add_argument("--verbose", type=int, default=0, help="1: print SB3's tables")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Arguments; with ``--resume`` the run's saved arguments are the defaults (CLI still wins)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.init_from is not None and args.init_from not in HEURISTICS:
        if not args.init_from.endswith(".zip"):
            parser.error(
                f"--init-from: {args.init_from!r} is neither a heuristic ({', '.join(sorted(HEURISTICS))}) "
                "nor a model .zip"
            )
        if not Path(args.init_from).is_file():
            parser.error(f"--init-from: no model at {args.init_from}")
    if args.resume:
        run_dir, _ = find_resume(args.resume)
        saved = load_config(run_dir).get("args", {})
        # Overrides given now apply on top of the run's resolved config, so they are not inherited.
        fresh = ("resume", "timesteps", "init_from", "hyperparams", "env_kwargs")
        keep = {k: v for k, v in saved.items() if k not in fresh}
        parser.set_defaults(**keep)
        args = parser.parse_args(argv)
        args.run_dir_resolved = run_dir
    return args


# -- run folder and config --------------------------------------------------------------------
def find_resume(spec: str) -> tuple[Path, Path]:
    """(run folder, model to load): the newest of ``model.zip`` and ``checkpoints/*.zip`` by step count."""
    path = Path(spec)
    if path.is_file():
        if _readable_timesteps(path) is None:
            raise ValueError(f"--resume: {spec} is not a readable model zip")
        return run_folder(path), path
    if not path.is_dir():
        raise FileNotFoundError(f"--resume: no run folder or model at {spec}")
    candidates = [path / "model.zip", *sorted((path / "checkpoints").glob("*.zip"))]
    candidates = [c for c in candidates if c.is_file()]
    if not candidates:
        raise FileNotFoundError(f"--resume: {spec} has no model.zip and no checkpoints/*.zip")
    # A run killed while saving leaves a cut zip behind: resume from the newest readable save.
    readable: dict[Path, int] = {}
    for c in candidates:
        n = _readable_timesteps(c)
        if n is None:
            warnings.warn(f"--resume: skipping {c}: not a readable model zip", stacklevel=1)
        else:
            readable[c] = n
    if not readable:
        raise FileNotFoundError(f"--resume: {spec} has no readable model.zip or checkpoints/*.zip")
    return path, max(readable, key=readable.__getitem__)


def run_folder(model_path: Path) -> Path:
    """The run folder of a saved model: its folder, or the one above ``checkpoints/``."""
    return model_path.parent.parent if model_path.parent.name == "checkpoints" else model_path.parent


def saved_timesteps(path: Path) -> int:
    """``num_timesteps`` stored in a model zip (without loading it)."""
    with zipfile.ZipFile(path) as archive:
        return int(json.loads(archive.read("data")).get("num_timesteps", 0))


def _readable_timesteps(path: Path) -> int | None:
    """``saved_timesteps``, or ``None`` for a file that is no readable model zip."""
    try:
        return saved_timesteps(path)
    except (OSError, KeyError, ValueError, TypeError, AttributeError, zipfile.BadZipFile):
        return None


def load_config(run_dir: Path) -> dict[str, Any]:
    cfg = run_dir / "config.yml"
    return yaml.safe_load(cfg.read_text()) if cfg.is_file() else {}


def git_commit() -> tuple[str, bool | None]:
    """(HEAD commit or "unknown", whether the work tree has uncommitted changes)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, timeout=10
        ).stdout
        return head, bool(status.strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown", None


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def write_config(run_dir: Path, config: dict[str, Any]) -> None:
    (run_dir / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))


# -- callbacks ------------------------------------------------------------------------------------
class EpisodeMetricsCallback(BaseCallback):
    """Logs each finished episode's ``info["episode_metrics"]`` as ``episode/<metric>``, and its
    return as ``episode/return`` (SB3's ``rollout/ep_rew_mean`` averages the last 100 episodes,
    which on 24-hour scenarios is most of a run).

    Values are averaged over the episodes finished since the last dump (``record_mean``); SB3
    dumps at the end of every rollout (on-policy) or every few episodes (DQN), at the global step.
    """

    def _on_step(self) -> bool:
        for info in self.locals.get("infos", ()):
            metrics = info.get("episode_metrics")
            if metrics:
                for key, value in metrics.items():
                    self.logger.record_mean(f"episode/{key}", float(value))
            if "episode" in info:  # the Monitor's summary: the return of just these episodes
                self.logger.record_mean("episode/return", float(info["episode"]["r"]))
        return True


def play_validation(
    env: gymnasium.Env, policy: Any, seeds: Sequence[int]
) -> tuple[list[float], list[dict[str, float]]]:
    """Returns and ``episode_metrics`` of one episode per seed."""
    returns, rows = [], []
    for seed in seeds:
        ret, metrics, _ = run_episode(env, policy, seed)
        returns.append(ret)
        rows.append(metrics)
    return returns, rows


_WORKER_ENVS: dict[str, gymnasium.Env] = {}


def validate_saved(
    path: str, env_id: str, env_kwargs: dict[str, Any], algo: str, seeds: list[int]
) -> tuple[list[float], list[dict[str, float]]]:
    """``play_validation`` of a saved model, in a worker process (one torch thread, env kept)."""
    th.set_num_threads(1)
    key = repr((env_id, sorted(env_kwargs.items())))
    if key not in _WORKER_ENVS:
        _WORKER_ENVS[key] = gymnasium.make(env_id, split=VALIDATION_SPLIT, **env_kwargs)
    policy = ModelPolicy(models.load_model(path, algo), algo, Path(path))
    return play_validation(_WORKER_ENVS[key], policy, seeds)


class ValidationCallback(BaseCallback):
    """Every ``eval_freq`` env steps, play ``n_episodes`` on fixed seeds and keep the best model.

    Episodes use seeds ``seed, seed + 1, ...`` on the validation env (``split="val"``), the same
    episodes at every evaluation, so the best model is chosen on a like-for-like comparison (SB3's
    EvalCallback seeds only the first reset). The policy acts deterministically, masked from the
    observation for MaskablePPO (``agents.registry.ModelPolicy``, as ``evaluate.py`` does). Logs
    ``eval/mean_reward``, ``eval/std_reward``, ``eval/mean_ep_length`` (decisions) and
    ``eval/<metric>`` for every episode metric at the step of the evaluated model; a final
    evaluation runs at the end of training.

    ``background=True`` plays the episodes in a worker process on a saved copy of the model
    (``validation/model_<steps>_steps.zip``, removed once scored) while training goes on: on two
    cores this takes validation off the training's clock. Results are logged when they arrive, at
    the step of the model they score, and are identical to the foreground ones. If an evaluation
    point comes while one validation runs and another waits, it is skipped (and said so). The end
    of training waits for the outstanding validations.
    """

    def __init__(
        self,
        env: gymnasium.Env | None,
        algo: str,
        eval_freq: int,
        n_episodes: int,
        seed: int,
        run_dir: Path,
        report: Any = print,
        background: bool = False,
        env_id: str | None = None,
        env_kwargs: dict[str, Any] | None = None,
        on_result: Callable[[int, dict[str, float]], Any] | None = None,
    ) -> None:
        super().__init__()
        self.on_result = on_result
        if background and env_id is None:
            raise ValueError("background validation needs env_id (the worker builds its own env)")
        self.env, self.algo, self.eval_freq = env, algo, eval_freq
        self.seeds = [seed + i for i in range(n_episodes)]
        self.run_dir, self.report = run_dir, report
        self.background, self.env_id, self.env_kwargs = background, env_id, dict(env_kwargs or {})
        self.pool: Any = None
        self.pending: deque[tuple[int, Path, Any]] = deque()
        self.best_mean = -np.inf
        self.seconds = 0.0  # wall time the training spent validating or waiting for it [s]
        self.last_eval_step = -1
        self.next_eval = 0
        self.history: dict[str, list] = {"timesteps": [], "results": [], "ep_lengths": [], "on_time": []}
        npz = run_dir / "evaluations.npz"
        if npz.is_file():  # a resumed run keeps its history and its best
            with np.load(npz) as old:
                self.history = {k: old[k].tolist() for k in self.history}
                if len(old["results"]):
                    self.best_mean = float(np.max(np.mean(old["results"], axis=1)))

    def _on_training_start(self) -> None:
        self.next_eval = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq
        if self.background and self.pool is None:
            # spawn: a fresh interpreter (fork would copy torch's threads and the training envs).
            self.pool = multiprocessing.get_context("spawn").Pool(1)

    def _on_step(self) -> bool:
        self._collect(wait=False)
        if self.num_timesteps >= self.next_eval:
            self.evaluate()
            self.next_eval = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq
        return True

    def _on_training_end(self) -> None:
        if self.last_eval_step != self.num_timesteps:
            self.evaluate(final=True)
        if self.pending:
            self.report(f"waiting for {len(self.pending)} background validation(s)")
        self._collect(wait=True)
        self.close()

    def close(self, terminate: bool = False) -> None:
        """Stop the worker (``terminate``: at once, dropping validations still running)."""
        if self.pool is not None:
            if terminate:
                self.pool.terminate()
            else:
                self.pool.close()
            self.pool.join()
            self.pool = None
        for _, path, _ in self.pending:
            path.unlink(missing_ok=True)
        self.pending.clear()

    def evaluate(self, final: bool = False) -> None:
        """Validate the model as it is now: here, or handed to the worker (never skipped if ``final``)."""
        step = self.num_timesteps
        self.last_eval_step = step
        if not self.background:
            started = time.perf_counter()
            returns, rows = play_validation(self.env, ModelPolicy(self.model, self.algo), self.seeds)
            self._record(step, returns, rows, lambda best: self.model.save(best))
            self.seconds += time.perf_counter() - started
            return
        if len(self.pending) >= 2 and not final:
            self.report(f"validation @ {step:,} steps skipped: the worker is still on earlier models")
            return
        path = self.run_dir / "validation" / f"model_{step}_steps.zip"
        path.parent.mkdir(exist_ok=True)
        self.model.save(path)
        job = self.pool.apply_async(
            validate_saved, (str(path), self.env_id, self.env_kwargs, self.algo, self.seeds)
        )
        self.pending.append((step, path, job))

    def _collect(self, wait: bool) -> None:
        while self.pending and (wait or self.pending[0][2].ready()):
            step, path, job = self.pending[0]
            started = time.perf_counter()
            returns, rows = job.get()  # a worker's exception is raised here
            if wait:
                self.seconds += time.perf_counter() - started
            self.pending.popleft()
            self._record(step, returns, rows, lambda best, src=path: shutil.copyfile(src, best))
            path.unlink(missing_ok=True)

    def _record(
        self, step: int, returns: list[float], rows: list[dict[str, float]], save_best: Callable[[Path], Any]
    ) -> None:
        mean = float(np.mean(returns))
        values = {
            "eval/mean_reward": mean,
            "eval/std_reward": float(np.std(returns)),
            "eval/mean_ep_length": float(np.mean([r["decisions"] for r in rows])),
            **{f"eval/{key}": float(np.mean([r[key] for r in rows])) for key in rows[0]},
        }
        # Straight to the output formats at the evaluated model's step, so a result that arrives
        # later (background) lands where it belongs and SB3's pending train/* values are left alone.
        for fmt in self.logger.output_formats:
            fmt.write(values, dict.fromkeys(values), step)
        on_time = [r["on_time_value_rate"] for r in rows]
        for key, value in zip(
            self.history, (step, returns, [r["decisions"] for r in rows], on_time), strict=True
        ):
            self.history[key].append(value)
        np.savez(self.run_dir / "evaluations.npz", **{k: np.asarray(v) for k, v in self.history.items()})
        best = mean > self.best_mean
        if best:
            self.best_mean = mean
            save_best(self.run_dir / "best_model.zip")
        if self.on_result is not None:  # e.g. sweep.py's report to Ray Tune
            self.on_result(step, {**values, "eval/best_mean_reward": self.best_mean})
        self.report(
            f"eval @ {step:,} steps: return {mean:.1f} ± {np.std(returns):.1f}, on-time value "
            f"rate {np.mean(on_time):.3f}, brownouts {np.mean([r['brownouts'] for r in rows]):.1f}"
            + (" (new best)" if best else "")
        )


class StepCheckpointCallback(BaseCallback):
    """Saves ``checkpoints/rl_model_<steps>_steps.zip`` every ``freq`` env steps, with the replay buffer
    (DQN) and the VecNormalize statistics (``normalize``) beside it, so a resume continues from both.

    Counted in env steps over all envs from step 0, so a resumed run keeps the same grid (SB3's
    CheckpointCallback counts calls, i.e. steps ÷ n_envs, from the start of each ``learn``).
    """

    def __init__(self, freq: int, folder: Path) -> None:
        super().__init__()
        self.freq, self.folder, self.next = freq, folder, 0

    def _on_training_start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.next = (self.num_timesteps // self.freq + 1) * self.freq

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next:
            self.model.save(self.folder / f"rl_model_{self.num_timesteps}_steps.zip")
            if getattr(self.model, "replay_buffer", None) is not None:
                self.model.save_replay_buffer(self.folder / f"replay_buffer_{self.num_timesteps}_steps.pkl")
            normalized = self.model.get_vec_normalize_env()
            if normalized is not None:
                normalized.save(str(self.folder / f"vecnormalize_{self.num_timesteps}_steps.pkl"))
            self.next = (self.num_timesteps // self.freq + 1) * self.freq
        return True


class ProgressBarCallback(BaseCallback):
    """A tqdm bar over the env steps of this ``learn`` call (SB3's own bar needs ``rich``)."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.total, self.bar, self.start = total, None, 0

    def _on_training_start(self) -> None:
        self.start = self.num_timesteps
        self.bar = tqdm(total=self.total, unit="step", dynamic_ncols=True, desc="training")

    def _on_step(self) -> bool:
        # learn() finishes its last rollout, so the step count may pass the total: stop the bar there.
        self.bar.update(min(self.num_timesteps - self.start, self.total) - self.bar.n)
        return True

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()


# -- the steps of a run ---------------------------------------------------------------------------
@dataclass
class Run:
    """What the steps of one training run share: its folder, config and what it trains.

    ``timesteps`` are the env steps of this call (all envs together); ``resume_from`` is the
    saved model a resumed run continues from (None for a new run).
    """

    run_dir: Path
    config: dict[str, Any]
    env_id: str
    env_kwargs: dict[str, Any]
    overrides: dict[str, Any]
    hyperparams: dict[str, Any]
    n_envs: int
    timesteps: int
    resume_from: Path | None

    @property
    def resuming(self) -> bool:
        return self.resume_from is not None


@dataclass
class Envs:
    """The training VecEnv (train split; wrapped in VecNormalize with ``normalize``) and the
    foreground validation env (test split; None when validation is off or in a worker)."""

    train: VecEnv
    validation: gymnasium.Env | None


def check_arguments(args: argparse.Namespace) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(env id, env config overrides, hyperparameter overrides), with the errors a run must not start on."""
    env_id = resolve_env_id(args.env)
    env_kwargs = parse_overrides(args.env_kwargs)
    if "split" in env_kwargs:
        raise ValueError(
            "the split is fixed (train for learning, val for validation); drop it from --env-kwargs"
        )
    overrides = rl.parse_key_values(args.hyperparams, "--hyperparams")
    dagger = (
        ("--dagger-rounds", args.dagger_rounds, 0),
        ("--dagger-episodes", args.dagger_episodes, 1),
        ("--dagger-epochs", 1 if args.dagger_epochs is None else args.dagger_epochs, 1),
    )
    for flag, value, low in dagger:
        if value < low:
            raise ValueError(f"{flag} must be >= {low}, got {value}")
    if not (np.isfinite(args.bc_tie_tolerance) and args.bc_tie_tolerance >= 0):
        raise ValueError(f"--bc-tie-tolerance must be a number >= 0, got {args.bc_tie_tolerance}")
    # (a resumed run inherits its cloning arguments but clones nothing)
    if args.dagger_rounds and not args.resume and not (args.init_from and args.init_from in HEURISTICS):
        raise ValueError(
            "--dagger-rounds needs --init-from HEURISTIC (the teacher that labels the clone's states)"
        )
    if args.eval_freq > 0 and args.eval_seed + args.eval_episodes > 1000:
        raise ValueError("validation seeds must stay below 1000, the seeds evaluate.py compares policies on")
    return env_id, env_kwargs, overrides


def prepare_run(
    args: argparse.Namespace, env_id: str, env_kwargs: dict[str, Any], overrides: dict[str, Any]
) -> Run:
    """The run folder (new, or the one ``--resume`` names), its config and the resolved hyperparameters.

    A new folder is created only once the hyperparameters are known to be good.
    """
    resume_from = None
    if args.resume:
        run_dir, resume_from = find_resume(args.resume)
        config = load_config(run_dir)
        if not config:
            raise FileNotFoundError(f"--resume: no config.yml in {run_dir} (not a train.py run folder)")
        env_kwargs = {**config.get("env_kwargs", {}), **env_kwargs}
        # The run's resolved hyperparameters (finetune block included), then the new overrides.
        hyperparams = rl.load_hyperparams(args.algo, env_id, {**config.get("hyperparams", {}), **overrides})
    else:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        name = args.run_name or f"{env_id.split('/')[-1]}_{args.algo}_{args.seed}_{stamp}"
        run_dir = Path(args.run_dir) / name
        if run_dir.exists() and any(run_dir.iterdir()):
            raise FileExistsError(
                f"{run_dir} exists and is not empty; use --resume {run_dir} or another name"
            )
        hyperparams = rl.load_hyperparams(args.algo, env_id, overrides, finetune=args.init_from is not None)
        credit.guard_callbacks(hyperparams, warm_started=args.init_from is not None)  # checks, early
        if args.vec_env == "native" and int(hyperparams.get("shared_stream") or 1) > 1:
            raise ValueError("--vec-env native does not play shared streams: use dummy with shared_stream")
        run_dir.mkdir(parents=True, exist_ok=True)
        config = {}
    n_envs = int(args.n_envs or hyperparams.get("n_envs", 1))
    hyperparams["n_envs"] = n_envs
    timesteps = steps_to_train(args, run_dir, config, hyperparams, resume_from)
    return Run(run_dir, config, env_id, env_kwargs, overrides, hyperparams, n_envs, timesteps, resume_from)


def steps_to_train(
    args: argparse.Namespace,
    run_dir: Path,
    config: dict[str, Any],
    hyperparams: dict[str, Any],
    resume_from: Path | None,
) -> int:
    """Env steps of this call: ``--timesteps``, else what is left of a resumed run's budget, else
    the entry's ``n_timesteps`` (1e6 without one)."""
    if args.timesteps is not None:
        return args.timesteps
    if resume_from is not None:
        done_steps = saved_timesteps(resume_from)
        timesteps = int(config.get("timesteps", 0)) - done_steps
        if timesteps <= 0:
            raise ValueError(f"{run_dir} already trained {done_steps:,} steps; give --timesteps for more")
        return timesteps
    return int(float(hyperparams.get("n_timesteps", 1_000_000)))


def record_start(run: Run, args: argparse.Namespace, argv: Sequence[str] | None) -> None:
    """Write ``config.yml``: the whole config for a new run, then one entry in ``starts`` per (re)start."""
    done_steps = saved_timesteps(run.resume_from) if run.resuming else 0
    commit, dirty = git_commit()
    start = {
        "time": dt.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(sys.argv if argv is None else ["train.py", *argv]),
        "git_commit": commit,
        "git_dirty": dirty,
        "from_step": done_steps,
        "timesteps": run.timesteps,
        "resumed_from": str(run.resume_from) if run.resuming else None,
        "env_kwargs": run.env_kwargs,
        "hyperparam_overrides": run.overrides,
    }
    config = run.config
    if not run.resuming:
        config.update(
            {
                "env": run.env_id,
                "env_kwargs": run.env_kwargs,
                "algo": args.algo,
                "seed": args.seed,
                "timesteps": run.timesteps,
                "n_envs": run.n_envs,
                "hyperparams": run.hyperparams,
                "args": {k: v for k, v in vars(args).items() if k != "run_dir_resolved"},
                "validation": {
                    "split": VALIDATION_SPLIT,
                    "seeds": [args.eval_seed, args.eval_seed + args.eval_episodes - 1],
                },
                "versions": versions(),
                "git_commit": commit,
                "git_dirty": dirty,
                "start_time": start["time"],
                "starts": [],
            }
        )
    else:
        config["timesteps"] = done_steps + run.timesteps
        config["hyperparams"] = run.hyperparams
        config["versions_at_resume"] = versions()
    config["starts"].append(start)
    write_config(run.run_dir, config)


def make_envs(args: argparse.Namespace, run: Run) -> Envs:
    """Training envs on the train split (seeds ``seed + i``), validation on the val split.

    With ``normalize`` the training VecEnv is wrapped in VecNormalize (reward only); a resumed run
    continues from the statistics saved with its model. Validation plays the plain env, so its
    returns are never normalised.
    """
    vec_cls = SubprocVecEnv if args.vec_env == "subproc" else DummyVecEnv
    group = int(run.hyperparams.get("shared_stream") or 1)
    if args.vec_env == "native":  # (shared streams refused in prepare_run)
        native = OrbitVecEnv(run.env_id, run.n_envs, env_kwargs={"split": "train", **run.env_kwargs})
        train_env = VecMonitor(native)
        train_env.seed(args.seed)  # env i plays seeds seed + i, as make_vec_env seeds them
    elif group > 1:  # groups of envs play the same job streams (agents.credit)
        thunks = [_shared_stream_env(run, args.seed, rank, group) for rank in range(run.n_envs)]
        train_env: VecEnv = vec_cls(thunks)
    else:
        train_env = make_vec_env(
            run.env_id,
            n_envs=run.n_envs,
            seed=args.seed,
            env_kwargs={"split": "train", **run.env_kwargs},
            vec_env_cls=vec_cls,
        )
    normalize = rl.normalize_kwargs(run.hyperparams)
    if normalize is not None:
        stats = saved_companion(run.run_dir, run.resume_from, "vecnormalize") if run.resuming else None
        if stats is not None and stats.is_file():
            train_env = VecNormalize.load(str(stats), train_env)
        else:
            train_env = VecNormalize(train_env, **normalize)
    foreground_eval = args.eval_freq > 0 and not args.eval_async
    validation = (
        gymnasium.make(run.env_id, split=VALIDATION_SPLIT, **run.env_kwargs) if foreground_eval else None
    )
    return Envs(train_env, validation)


def _shared_stream_env(run: Run, seed: int, rank: int, group: int) -> Callable[[], gymnasium.Env]:
    """Training env ``rank`` for shared streams: it plays group ``rank // group``'s seeds in order."""

    def init() -> gymnasium.Env:
        env = Monitor(gymnasium.make(run.env_id, split="train", **run.env_kwargs))
        return credit.SharedStreamSeeds(env, credit.stream_base_seed(seed, rank, group))

    return init


def saved_companion(run_dir: Path, model_path: Path, stem: str) -> Path:
    """The file saved beside a model: ``<stem>.pkl`` for ``model.zip``, else the checkpoint's
    ``checkpoints/<stem>_<steps>_steps.pkl`` (replay buffer, VecNormalize statistics)."""
    if model_path.name == "model.zip":
        return run_dir / f"{stem}.pkl"
    return run_dir / "checkpoints" / f"{stem}_{saved_timesteps(model_path)}_steps.pkl"


def build_or_resume_model(
    args: argparse.Namespace, run: Run, env: VecEnv, logger: Logger, say: Callable[[str], Any]
) -> BaseAlgorithm:
    """A new model, or the run's newest save (with its schedules and, for DQN, its replay buffer)."""
    if run.resuming:
        model = models.load_model(
            run.resume_from,
            args.algo,
            env=env,
            device=args.device,
            keep_schedules=True,
            **_resume_kwargs(args.algo, run.overrides),
        )
        replay = saved_companion(run.run_dir, run.resume_from, "replay_buffer")
        if args.algo == "dqn" and replay.is_file():
            model.load_replay_buffer(replay)
        say(f"resuming {run.resume_from} at step {model.num_timesteps:,}")
    else:
        model = rl.make_model(
            args.algo, env, run.hyperparams, seed=args.seed, device=args.device, verbose=args.verbose
        )
    model.set_logger(logger)
    return model


def start_from_saved_model(
    args: argparse.Namespace, run: Run, model: BaseAlgorithm, logger: Logger, say: Callable[[str], Any]
) -> None:
    """Start from a saved model's weights (e.g. another run's clone); its origin goes into the config.

    A model that does not fit leaves no half-made run folder behind.
    """
    try:
        source_model = rl.warm_start(model, args.init_from)
    except ValueError:
        logger.close()
        shutil.rmtree(run.run_dir)  # created by this call
        raise
    source = Path(args.init_from)
    origin = load_config(run_folder(source))
    run.config["warm_start"] = {
        "model": str(source),
        "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "num_timesteps": int(source_model.num_timesteps),
        # The source run's cloning stats (and time), so the cost of the warm start is on record.
        **({"behaviour_clone": origin["behaviour_clone"]} if "behaviour_clone" in origin else {}),
    }
    write_config(run.run_dir, run.config)
    say(f"warm start from {source} (its step count {run.config['warm_start']['num_timesteps']:,})")


def clone_heuristic(
    args: argparse.Namespace, run: Run, model: BaseAlgorithm, logger: Logger, say: Callable[[str], Any]
) -> None:
    """Behaviour-clone ``--init-from``'s heuristic into the policy; ``bc/*`` logged at the cloning
    epoch, the clone saved as ``bc_model.zip`` and its stats put into the config."""
    dagger = f", {args.dagger_rounds} DAgger rounds of {args.dagger_episodes}" if args.dagger_rounds else ""
    say(f"behaviour cloning {args.init_from}: {args.bc_episodes} episodes, {args.bc_epochs} epochs{dagger}")
    stats = rl.behaviour_clone(
        model,
        run.env_id,
        teacher=args.init_from,
        episodes=args.bc_episodes,
        epochs=args.bc_epochs,
        env_kwargs=run.env_kwargs,
        seed=args.seed,
        learning_rate=args.bc_lr,
        progress=not args.no_progress,
        dagger_rounds=args.dagger_rounds,
        dagger_episodes=args.dagger_episodes,
        dagger_epochs=args.dagger_epochs,
        tie_tolerance=args.bc_tie_tolerance,
    )
    for epoch, (loss, acc) in enumerate(zip(stats["epoch_loss"], stats["epoch_accuracy"], strict=True)):
        logger.record("bc/loss", loss)
        logger.record("bc/accuracy", acc)
        logger.dump(epoch + 1)
    for r, round_stats in enumerate(stats["dagger"]):  # the clone on its own states, before each round's fit
        logger.record("bc/dagger_accuracy", round_stats["accuracy"])
        if round_stats["accuracy_placements"] is not None:
            logger.record("bc/dagger_accuracy_placements", round_stats["accuracy_placements"])
        logger.record("bc/dagger_return", round_stats["return"])
        logger.dump(len(stats["epoch_loss"]) + r + 1)
        say(
            f"DAgger round {r + 1}: the clone agreed with {args.init_from} on "
            f"{round_stats['accuracy']:.3f} of its own states, return {round_stats['return']:.1f}"
        )
    logger.record("bc/final_accuracy", stats["accuracy"])
    if "accuracy_ties" in stats:
        logger.record("bc/final_accuracy_ties", stats["accuracy_ties"])
    if stats["accuracy_placements"] is not None:
        logger.record("bc/final_accuracy_placements", stats["accuracy_placements"])
    if stats["value_explained_variance"] is not None:
        logger.record("bc/value_explained_variance", stats["value_explained_variance"])
    logger.dump(0)
    model.save(run.run_dir / "bc_model.zip")  # the clone before RL, to measure what fine-tuning adds
    run.config["behaviour_clone"] = {k: v for k, v in stats.items() if not k.startswith("epoch_")}
    write_config(run.run_dir, run.config)
    nan = float("nan")
    placements, ev = stats["accuracy_placements"], stats["value_explained_variance"]
    say(
        f"cloned {stats['samples']:,} decisions in {stats['seconds']:.0f} s: accuracy "
        f"{stats['accuracy']:.3f} (placements {nan if placements is None else placements:.3f}), "
        f"value explained variance {nan if ev is None else ev:.3f}; "
        f"teacher return {stats['teacher_return']:.1f}"
    )


def make_callbacks(
    args: argparse.Namespace,
    run: Run,
    validation_env: gymnasium.Env | None,
    say: Callable[[str], Any],
    on_validation: Callable[[int, dict[str, float]], Any] | None = None,
) -> list[BaseCallback]:
    """Episode metrics, then validation, checkpoints and the progress bar as the arguments ask."""
    callbacks: list[BaseCallback] = [EpisodeMetricsCallback()]
    if any(key in run.hyperparams for key in credit.CREDIT_KEYS):
        callbacks.append(credit.StepInfoRecorder())  # the credit buffer reads each step's info
    # clone_kl_coef: a pull towards the starting policy (on --resume, the policy resumed from)
    warm_started = bool(args.init_from or run.config.get("args", {}).get("init_from"))
    callbacks += credit.guard_callbacks(run.hyperparams, warm_started)
    if args.eval_freq > 0:
        callbacks.append(
            ValidationCallback(
                validation_env,
                args.algo,
                args.eval_freq,
                args.eval_episodes,
                args.eval_seed,
                run.run_dir,
                say,
                background=args.eval_async,
                env_id=run.env_id,
                env_kwargs=run.env_kwargs,
                on_result=on_validation,
            )
        )
    if args.checkpoint_freq > 0:
        callbacks.append(StepCheckpointCallback(args.checkpoint_freq, run.run_dir / "checkpoints"))
    if not args.no_progress:
        callbacks.append(ProgressBarCallback(run.timesteps))
    return callbacks


def is_interrupt(err: BaseException) -> bool:
    """Ctrl-C: a ``KeyboardInterrupt``, or the ``SystemError`` CPython raises when one lands
    while compiled (numba) code is boxing its result (the interrupt is its cause)."""
    while err is not None:
        if isinstance(err, KeyboardInterrupt):
            return True
        err = err.__cause__ or err.__context__
    return False


def learn(model: BaseAlgorithm, run: Run, callbacks: list[BaseCallback]) -> tuple[float, bool]:
    """``model.learn`` for ``run.timesteps``; Ctrl-C stops the bar and the validation worker.

    Returns:
        (wall time [s], whether it was interrupted).
    """
    started = time.perf_counter()
    interrupted = False
    try:
        model.learn(
            total_timesteps=run.timesteps,
            callback=CallbackList(callbacks),
            reset_num_timesteps=not run.resuming,
            progress_bar=False,
        )
    except (KeyboardInterrupt, SystemError) as err:
        if not is_interrupt(err):
            raise
        interrupted = True
        for cb in callbacks:
            if isinstance(cb, ProgressBarCallback) and cb.bar is not None:
                cb.bar.close()
            if isinstance(cb, ValidationCallback):
                cb.close(terminate=True)
        print(f"\ninterrupted at step {model.num_timesteps:,}: saving {run.run_dir / 'model.zip'}")
    return time.perf_counter() - started, interrupted


def save_final(args: argparse.Namespace, run: Run, model: BaseAlgorithm) -> None:
    """``model.zip`` (also after Ctrl-C), the DQN replay buffer and the VecNormalize statistics."""
    model.save(run.run_dir / "model.zip")
    if args.algo == "dqn":
        model.save_replay_buffer(run.run_dir / "replay_buffer.pkl")
    normalized = model.get_vec_normalize_env()
    if normalized is not None:
        normalized.save(str(run.run_dir / "vecnormalize.pkl"))


def record_end(
    run: Run, model: BaseAlgorithm, steps: int, elapsed: float, validation_s: float, interrupted: bool
) -> tuple[float, float]:
    """Close this start's entry in ``config.yml``; returns (steps/s, steps/s without validation)."""
    fps = steps / max(elapsed, 1e-9)
    train_fps = steps / max(elapsed - validation_s, 1e-9)
    start = run.config["starts"][-1]
    start.update(
        {"end_time": dt.datetime.now().isoformat(timespec="seconds"), "to_step": model.num_timesteps}
    )
    start.update(
        {"interrupted": interrupted, "fps": round(fps, 1), "fps_without_validation": round(train_fps, 1)}
    )
    write_config(run.run_dir, run.config)
    return fps, train_fps


def summarise(
    args: argparse.Namespace,
    run: Run,
    model: BaseAlgorithm,
    speed: tuple[float, float],
    elapsed: float,
    validation_s: float,
    interrupted: bool,
) -> None:
    """Print what was done, where everything is and how to evaluate it."""
    fps, train_fps = speed
    run_dir = run.run_dir
    status = "stopped" if interrupted else "done"
    print(
        f"{status}: {model.num_timesteps:,} steps in {elapsed:.0f} s: {fps:.0f} steps/s, "
        f"{train_fps:.0f} steps/s without the {validation_s:.0f} s of validation"
    )
    print(f"  run folder   {run_dir}")
    print(f"  final model  {run_dir / 'model.zip'}")
    if (run_dir / "best_model.zip").is_file():
        print(
            f"  best model   {run_dir / 'best_model.zip'} "
            f"(validation: {VALIDATION_SPLIT} split, seeds {args.eval_seed}+)"
        )
    print(f"  config       {run_dir / 'config.yml'}")
    print(f"  tensorboard  tensorboard --logdir {run_dir}")
    best = run_dir / "best_model.zip"
    best = best if best.is_file() else run_dir / "model.zip"
    print(f"  evaluate     python evaluate.py --env {run.env_id} --policies eclipse_safe,{args.algo}:{best}")


# -- main -----------------------------------------------------------------------------------------
def main(
    argv: Sequence[str] | None = None, on_validation: Callable[[int, dict[str, float]], Any] | None = None
) -> Path:
    """Train; return the run folder.

    ``on_validation(step, values)`` is called after each validation with its ``eval/*`` scalars
    and ``eval/best_mean_reward`` (``sweep.py`` reports them to Ray Tune).
    """
    args = parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        # A run started in the background of a script (``nohup python train.py ... &``) inherits
        # SIGINT ignored; restore it, so ``kill -INT`` stops the run and saves model.zip as Ctrl-C does.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    th.set_num_threads(args.threads)
    say = print if args.no_progress else tqdm.write
    env_id, env_kwargs, overrides = check_arguments(args)
    run = prepare_run(args, env_id, env_kwargs, overrides)
    record_start(run, args, argv)
    envs = make_envs(args, run)
    # SB3's logger writes TensorBoard and CSV into the run folder.
    logger = configure(str(run.run_dir), ["csv", "tensorboard"] + (["stdout"] if args.verbose else []))
    model = build_or_resume_model(args, run, envs.train, logger, say)
    if args.init_from and not run.resuming:
        start_from = clone_heuristic if args.init_from in HEURISTICS else start_from_saved_model
        start_from(args, run, model, logger, say)
    callbacks = make_callbacks(args, run, envs.validation, say, on_validation)
    say(
        f"training {args.algo} on {env_id} for {run.timesteps:,} steps with {run.n_envs} env(s); "
        f"run folder {run.run_dir}"
    )
    first_step = model.num_timesteps
    elapsed, interrupted = learn(model, run, callbacks)
    save_final(args, run, model)
    validation_s = sum(cb.seconds for cb in callbacks if isinstance(cb, ValidationCallback))
    speed = record_end(run, model, model.num_timesteps - first_step, elapsed, validation_s, interrupted)
    envs.train.close()
    if envs.validation is not None:
        envs.validation.close()
    summarise(args, run, model, speed, elapsed, validation_s, interrupted)
    return run.run_dir


def _resume_kwargs(algo: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameter overrides applied to a loaded model (SB3's ``load(**kwargs)``)."""
    kwargs = rl.model_kwargs(algo, overrides)
    for key in ("policy", "policy_kwargs"):
        if key in kwargs:
            raise ValueError(f"--hyperparams {key}=... cannot change when resuming (the network is saved)")
    return kwargs


if __name__ == "__main__":
    try:
        main()
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        sys.exit(2)
