"""Saved models: the algorithm table, the one loader, the algorithm detector and the size check.

>>> detect_algo("runs/X/best_model.zip")                    # 'maskable_ppo', read from the zip
>>> model = load_model("runs/X/best_model.zip", env=env)    # algorithm read from the zip
>>> check_observation_space(model.observation_space, env.observation_space, path, env)

Importing this module needs neither torch nor stable-baselines3: the algorithm classes are
imported when a model is loaded (:func:`algo_class`). :mod:`agents.registry` (policies by name)
and :mod:`agents.rl` (model factories, training) both load and inspect models through here.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from orbit_env.envs.observation import ObservationLayout

ALGOS: tuple[str, ...] = ("maskable_ppo", "ppo", "a2c", "dqn")
# Module of the project's own policy classes (SatScorer): every one is a MaskableActorCriticPolicy.
PROJECT_POLICY_MODULE = "agents.rl"
# Run-folder files that may name the env a model was trained on (train.py writes its config).
RUN_CONFIGS = ("config.yml", "config.yaml", "config.json", "args.yml", "args.yaml", "args.json")


# -- the algorithm table ------------------------------------------------------------------------
def check_algo(algo: str) -> str:
    """``algo`` in lower case, if it is a name of :data:`ALGOS`.

    Raises:
        ValueError: unknown algorithm (the known ones are named).
    """
    name = str(algo).lower()
    if name not in ALGOS:
        raise ValueError(f"unknown algorithm {algo!r}; algorithms: {', '.join(ALGOS)}")
    return name


def algo_class(algo: str) -> type:
    """The stable-baselines3 / sb3-contrib class of ``algo`` (imported here, not at module import)."""
    algo = check_algo(algo)
    if algo == "maskable_ppo":
        from sb3_contrib import MaskablePPO

        return MaskablePPO
    from stable_baselines3 import A2C, DQN, PPO

    return {"ppo": PPO, "a2c": A2C, "dqn": DQN}[algo]


# -- detection and loading ----------------------------------------------------------------------
def detect_algo(path: str | Path) -> str:
    """The algorithm of an SB3 zip, from the policy class and hyperparameters in its ``data`` JSON.

    SatScorer models (policy class defined in :mod:`agents.rl`) are ``maskable_ppo``.

    Raises:
        ValueError: not an SB3 model zip, or a policy class that names no algorithm.
    """
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
    if module.startswith("sb3_contrib.common.maskable") or module == PROJECT_POLICY_MODULE:
        return "maskable_ppo"
    if module.startswith("stable_baselines3.dqn") or "exploration_rate" in data:
        return "dqn"
    if module.startswith("stable_baselines3.common.policies"):  # actor-critic: PPO or A2C
        return "ppo" if "clip_range" in data or "n_epochs" in data else "a2c"
    raise ValueError(
        f"cannot tell the algorithm of {path} (policy class from {module or 'nowhere'}); "
        f"name it as algo:path with algo in {', '.join(ALGOS)}"
    )


def resolve_model_path(path: str | Path) -> Path:
    """The zip file of ``path``: as given, with SB3's ``.zip`` appended, or a run folder's model.

    A run folder gives its ``best_model.zip``, else its ``model.zip``.

    Raises:
        FileNotFoundError: no such model file (the path is named).
    """
    p = Path(path).expanduser()
    if p.is_dir():
        p = next((p / n for n in ("best_model.zip", "model.zip") if (p / n).is_file()), p)
    if p.is_file():
        return p
    if p.suffix != ".zip" and p.with_name(p.name + ".zip").is_file():  # SB3's save() appends .zip
        return p.with_name(p.name + ".zip")
    raise FileNotFoundError(f"model file not found: {path}")


def inference_objects() -> dict[str, Any]:
    """``custom_objects`` that replace a saved model's schedules (learning rate, clip range).

    Schedules are pickled closures that may not unpickle across Python / SB3 versions; only
    training needs them, so a model loaded to act gets constants instead (as rl-baselines3-zoo's
    ``enjoy.py`` does). A model loaded to go on training must keep its own
    (``load_model(..., keep_schedules=True)``): these would set its learning rate and PPO clip
    range to 0.
    """
    return {"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "clip_range": lambda _: 0.0}


def load_model(
    path: str | Path,
    algo: str | None = None,
    env: Any = None,
    device: str = "cpu",
    keep_schedules: bool = False,
    **kwargs: Any,
) -> Any:
    """Load a saved SB3 / sb3-contrib model; the algorithm is read from the zip unless given.

    Args:
        path: a ``.zip`` (may be given without the suffix) or a run folder (:func:`resolve_model_path`).
        algo: a name of :data:`ALGOS`; None: :func:`detect_algo`.
        env: optional env or VecEnv to attach; its observation space is checked first
            (:func:`check_observation_space`, an error naming both sizes).
        device: torch device.
        keep_schedules: keep the saved learning-rate and clip-range schedules (to resume training);
            otherwise they are replaced (:func:`inference_objects`).
        kwargs: passed to ``<Algo>.load`` (``custom_objects`` are laid over the replacements,
            other keys change hyperparameters of the loaded model).

    Raises:
        FileNotFoundError: no model file.
        ValueError: unknown algorithm, not an SB3 zip, a zip of another algorithm (with a hint),
            or an env whose observations the model cannot read.
    """
    path = resolve_model_path(path)
    algo = check_algo(algo) if algo else detect_algo(path)
    custom_objects = {} if keep_schedules else inference_objects()
    custom_objects.update(kwargs.pop("custom_objects", None) or {})
    try:
        model = algo_class(algo).load(path, device=device, custom_objects=custom_objects or None, **kwargs)
    except Exception as err:  # SB3 raises anything from KeyError to TypeError on a wrong class
        try:
            hint = f"; the zip looks like {detect_algo(path)}"
        except ValueError:
            hint = ""
        raise ValueError(f"could not load {path} as {algo} ({type(err).__name__}: {err}){hint}") from None
    if env is not None:
        check_observation_space(model.observation_space, env.observation_space, path, env)
        model.set_env(env)
    return model


# -- observation-space checks -------------------------------------------------------------------
def flat_size(space: spaces.Space) -> int:
    """Entries in a flat observation of ``space`` (the Dict form flattened as the Box form)."""
    if isinstance(space, spaces.Dict):
        return sum(flat_size(s) for s in space.spaces.values())
    return int(np.prod(space.shape))


def describe_size(size: int) -> str:
    """``'96 entries (4 satellites: Tiny-v1)'``: the size with its constellation and scenarios."""
    n_sats = ObservationLayout.satellites_for_size(size)
    if n_sats is None:
        return f"{size} entries (no orbit_env layout)"
    from orbit_env.scenarios import SCENARIOS

    names = [name for name, cfg in SCENARIOS.items() if cfg.orbit.total == n_sats]
    return f"{size} entries ({n_sats} satellites{': ' + ', '.join(names) if names else ''})"


def trained_on(path: Path) -> str | None:
    """The env id in the run folder's config next to a model, if one is there."""
    for folder in (path.parent, path.parent.parent):
        for name in RUN_CONFIGS:
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
    """Raise ``ValueError`` naming both sizes when a model cannot read the env's observations.

    Args:
        model_space: the model's observation space; env_space: the env's.
        path: the model file (its run folder's config names the env it was trained on).
        env: the env, for its id in the message.
    """
    if type(model_space) is type(env_space) and flat_size(model_space) == flat_size(env_space):
        if not isinstance(model_space, spaces.Dict) or all(
            model_space[k].shape == env_space[k].shape for k in env_space.spaces
        ):
            return
    origin = trained_on(path) if path is not None else None
    where = f" (trained on {origin})" if origin else ""
    kind = {spaces.Dict: "dict", spaces.Box: "flat"}
    m_kind = kind.get(type(model_space), type(model_space).__name__)
    e_kind = kind.get(type(env_space), type(env_space).__name__)
    model_size, env_size = describe_size(flat_size(model_space)), describe_size(flat_size(env_space))
    raise ValueError(
        f"model {path or ''}{where} expects {m_kind} observations of {model_size}, "
        f"but the env{_env_name(env)} gives {e_kind} observations of {env_size}"
    )


def _env_name(env: Any) -> str:
    spec = getattr(env, "spec", None)
    if spec is not None and getattr(spec, "id", None):
        return f" {spec.id}"
    return ""
