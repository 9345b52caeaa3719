"""Policies by name: a heuristic's name or a saved stable-baselines3 / sb3-contrib model.

>>> policy = make_policy("eclipse_safe", seed=0)                     # a heuristic
>>> policy = make_policy("runs/X/best_model.zip", env=env)           # algorithm read from the zip
>>> policy = make_policy("ppo:runs/X/best_model.zip", env=env)       # or named explicitly
>>> action, _ = policy.predict(obs)

A loaded model is wrapped in :class:`ModelPolicy`, which satisfies the
:class:`~agents.base.Policy` protocol and hands MaskablePPO the action mask decoded from the
observation's ``valid_target`` flags, so masking needs no access to the env.
"""

from __future__ import annotations

import difflib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from agents.base import Policy, flatten_observation, layout_for
from agents.heuristics import HEURISTICS
from orbit_env.envs.observation import GLOBAL_COLUMNS, JOB_COLUMNS, SAT_COLUMNS

POLICY_NAMES: tuple[str, ...] = tuple(HEURISTICS)
ALGOS: tuple[str, ...] = ("maskable_ppo", "ppo", "a2c", "dqn")
# Run-folder files that may name the env a model was trained on (train.py writes its config).
_RUN_CONFIGS = ("config.yml", "config.yaml", "config.json", "args.yml", "args.yaml", "args.json")


def list_policies() -> list[str]:
    """The heuristic names ``make_policy`` accepts (any ``.zip`` model path is accepted too)."""
    return list(POLICY_NAMES)


def make_policy(spec: str, env: Any = None, seed: int | None = None) -> Policy:
    """A policy from a heuristic name, a model path, or ``algo:path``.

    Args:
        spec: a name from :data:`POLICY_NAMES`; a path to an SB3 / sb3-contrib ``.zip`` (the
            algorithm is read from the zip); or ``algo:path`` with algo in :data:`ALGOS`.
        env: optional env (or VecEnv); a model's observation space is checked against its own.
        seed: seed of a heuristic's random generator (models predict deterministically).

    Raises:
        ValueError: unknown name or algorithm, not an SB3 model, or observation size mismatch.
        FileNotFoundError: the model file does not exist.
    """
    spec = str(spec).strip()
    if spec in HEURISTICS:
        return HEURISTICS[spec](seed=seed)
    algo, path = _split_algo(spec)
    if algo is None and not _looks_like_path(spec):
        raise ValueError(_unknown_name_message(spec))
    model_path = _resolve_path(path)
    if algo is None:
        algo = detect_algo(model_path)
    model = _load(algo, model_path)
    if env is not None:
        check_observation_space(model.observation_space, env.observation_space, model_path, env)
    return ModelPolicy(model, algo, model_path)


class ModelPolicy:
    """A loaded SB3 model behind the :class:`~agents.base.Policy` protocol.

    MaskablePPO receives ``action_masks`` decoded from the observation itself (the
    ``valid_target`` column, defer and reject always valid), single ``[D]`` or batched ``[B, D]``.
    """

    def __init__(self, model: Any, algo: str, path: Path | None = None) -> None:
        self.model = model
        self.algo = algo
        self.path = path
        self.masked = algo == "maskable_ppo"

    @property
    def observation_space(self) -> spaces.Space:
        return self.model.observation_space

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        if not self.masked:
            return self.model.predict(observation, state, episode_start, deterministic)
        flat = flatten_observation(observation)
        masks = layout_for(flat).action_mask(flat)
        return self.model.predict(observation, state, episode_start, deterministic, action_masks=masks)

    def __repr__(self) -> str:
        return f"ModelPolicy({self.algo}, {str(self.path)!r})"


# -- loading ------------------------------------------------------------------------------------
def detect_algo(path: str | Path) -> str:
    """The algorithm of an SB3 zip, from the policy class and hyperparameters in its ``data`` JSON."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a stable-baselines3 model zip ({err})") from None
    policy_class = data.get("policy_class", {}) if isinstance(data, dict) else None
    if not isinstance(policy_class, dict):
        raise ValueError(f"{path} is not a stable-baselines3 model zip (its 'data' is no model description)")
    module = str(policy_class.get("__module__", ""))
    if module.startswith("sb3_contrib.common.maskable") or module == "agents.rl":  # SatScorer is maskable
        return "maskable_ppo"
    if module.startswith("stable_baselines3.dqn") or "exploration_rate" in data:
        return "dqn"
    if module.startswith("stable_baselines3.common.policies"):  # actor-critic: PPO or A2C
        return "ppo" if "clip_range" in data or "n_epochs" in data else "a2c"
    raise ValueError(
        f"cannot tell the algorithm of {path} (policy class from {module or 'nowhere'}); "
        f"name it as algo:path with algo in {', '.join(ALGOS)}"
    )


def _algo_class(algo: str) -> type:
    if algo == "maskable_ppo":
        from sb3_contrib import MaskablePPO

        return MaskablePPO
    from stable_baselines3 import A2C, DQN, PPO

    return {"ppo": PPO, "a2c": A2C, "dqn": DQN}[algo]


def _load(algo: str, path: Path) -> Any:
    # Schedules are pickled closures that may not unpickle across Python/SB3 versions; they are
    # only needed for training, so replace them (as rl-baselines3-zoo's enjoy.py does).
    custom_objects = {"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "clip_range": lambda _: 0.0}
    try:
        return _algo_class(algo).load(path, device="cpu", custom_objects=custom_objects)
    except Exception as err:  # SB3 raises anything from KeyError to TypeError on a wrong class
        try:
            hint = f"; the zip looks like {detect_algo(path)}"
        except ValueError:
            hint = ""
        raise ValueError(f"could not load {path} as {algo} ({type(err).__name__}: {err}){hint}") from None


def _split_algo(spec: str) -> tuple[str | None, str]:
    head, sep, tail = spec.partition(":")
    if sep and head.lower() in ALGOS:
        return head.lower(), tail
    if sep and tail and not Path(spec).exists() and "/" not in head and "\\" not in head and len(head) > 1:
        raise ValueError(f"unknown algorithm {head!r} in {spec!r}; algorithms: {', '.join(ALGOS)}")
    return None, spec


def _looks_like_path(spec: str) -> bool:
    return spec.endswith(".zip") or "/" in spec or "\\" in spec or Path(spec).exists()


def _resolve_path(path: str) -> Path:
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if p.suffix != ".zip" and p.with_name(p.name + ".zip").is_file():  # SB3's save() appends .zip
        return p.with_name(p.name + ".zip")
    raise FileNotFoundError(f"model file not found: {path}")


def _unknown_name_message(name: str) -> str:
    close = difflib.get_close_matches(name, POLICY_NAMES, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"unknown policy {name!r}; {hint}valid names: {', '.join(POLICY_NAMES)} "
        "(or a path to a saved model .zip, optionally as algo:path)"
    )


# -- observation-space checks ------------------------------------------------------------------
def flat_size(space: spaces.Space) -> int:
    """Entries in a flat observation of ``space`` (the Dict form flattened as the Box form)."""
    if isinstance(space, spaces.Dict):
        return sum(flat_size(s) for s in space.spaces.values())
    return int(np.prod(space.shape))


def describe_size(size: int) -> str:
    """``'96 entries (4 satellites: Tiny-v0)'``: the size with its constellation and scenarios."""
    extra = len(JOB_COLUMNS) + len(GLOBAL_COLUMNS)
    n_sats, rest = divmod(size - extra, len(SAT_COLUMNS))
    if rest or n_sats < 1:
        return f"{size} entries (no orbit_env layout)"
    from orbit_env.scenarios import SCENARIOS

    names = [name for name, cfg in SCENARIOS.items() if cfg.orbit.total == n_sats]
    return f"{size} entries ({n_sats} satellites{': ' + ', '.join(names) if names else ''})"


def trained_on(path: Path) -> str | None:
    """The env id in the run folder's config next to a model, if one is there."""
    for folder in (path.parent, path.parent.parent):
        for name in _RUN_CONFIGS:
            cfg = folder / name
            if not cfg.is_file():
                continue
            try:
                import yaml

                data = yaml.safe_load(cfg.read_text())  # JSON is YAML too
            except Exception:  # a config we cannot read just means "unknown"
                continue
            if isinstance(data, dict):
                for key in ("env", "env_id"):
                    if isinstance(data.get(key), str):
                        return data[key]
    return None


def check_observation_space(
    model_space: spaces.Space, env_space: spaces.Space, path: Path | None = None, env: Any = None
) -> None:
    """Raise ``ValueError`` naming both sizes when a model cannot read the env's observations."""
    if type(model_space) is type(env_space) and flat_size(model_space) == flat_size(env_space):
        if not isinstance(model_space, spaces.Dict) or all(
            model_space[k].shape == env_space[k].shape for k in env_space.spaces
        ):
            return
    origin = trained_on(path) if path is not None else None
    where = f" (trained on {origin})" if origin else ""
    env_name = _env_name(env)
    kind = {spaces.Dict: "dict", spaces.Box: "flat"}
    m_kind = kind.get(type(model_space), type(model_space).__name__)
    e_kind = kind.get(type(env_space), type(env_space).__name__)
    model_size, env_size = describe_size(flat_size(model_space)), describe_size(flat_size(env_space))
    raise ValueError(
        f"model {path or ''}{where} expects {m_kind} observations of {model_size}, "
        f"but the env{env_name} gives {e_kind} observations of {env_size}"
    )


def _env_name(env: Any) -> str:
    spec = getattr(env, "spec", None)
    if spec is not None and getattr(spec, "id", None):
        return f" {spec.id}"
    return ""
