"""Policies by name: a heuristic's name or a saved stable-baselines3 / sb3-contrib model.

>>> policy = make_policy("eclipse_safe", seed=0)                     # a heuristic
>>> policy = make_policy("runs/X/best_model.zip", env=env)           # algorithm read from the zip
>>> policy = make_policy("ppo:runs/X/best_model.zip", env=env)       # or named explicitly
>>> action, _ = policy.predict(obs)

A loaded model is wrapped in :class:`ModelPolicy`, which satisfies the
:class:`~agents.base.Policy` protocol and hands MaskablePPO the action mask decoded from the
observation's ``valid_target`` flags, so masking needs no access to the env. Loading, the
algorithm detector and the observation-size check are :mod:`agents.models`'.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from agents.base import Policy, defer_s_of, flatten_observation, layout_for
from agents.heuristics import HEURISTICS
from agents.models import ALGOS, check_observation_space, detect_algo, load_model, resolve_model_path

POLICY_NAMES: tuple[str, ...] = tuple(HEURISTICS)


def list_policies() -> list[str]:
    """The heuristic names ``make_policy`` accepts (any ``.zip`` model path is accepted too)."""
    return list(POLICY_NAMES)


def make_policy(spec: str, env: Any = None, seed: int | None = None) -> Policy:
    """A policy from a heuristic name, a model path, or ``algo:path``.

    Args:
        spec: a name from :data:`POLICY_NAMES`; a path to an SB3 / sb3-contrib ``.zip`` or a run
            folder (the algorithm is read from the zip); or ``algo:path`` with algo in
            :data:`~agents.models.ALGOS`.
        env: optional env (or VecEnv); a model's observation space is checked against its own,
            and a heuristic takes the env's ``defer_s`` (else the config's default).
        seed: seed of a heuristic's random generator (models predict deterministically).

    Raises:
        ValueError: unknown name or algorithm, not an SB3 model, or observation size mismatch.
        FileNotFoundError: the model file does not exist.
    """
    spec = str(spec).strip()
    if spec in HEURISTICS:
        return HEURISTICS[spec](seed=seed, defer_s=defer_s_of(env))
    algo, path = _split_algo(spec)
    if algo is None and not _looks_like_path(spec):
        raise ValueError(_unknown_name_message(spec))
    model_path = resolve_model_path(path)
    if algo is None:
        algo = detect_algo(model_path)
    model = load_model(model_path, algo)
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


def _split_algo(spec: str) -> tuple[str | None, str]:
    head, sep, tail = spec.partition(":")
    if sep and head.lower() in ALGOS:
        return head.lower(), tail
    if sep and tail and not Path(spec).exists() and "/" not in head and "\\" not in head and len(head) > 1:
        raise ValueError(f"unknown algorithm {head!r} in {spec!r}; algorithms: {', '.join(ALGOS)}")
    return None, spec


def _looks_like_path(spec: str) -> bool:
    return spec.endswith(".zip") or "/" in spec or "\\" in spec or Path(spec).exists()


def _unknown_name_message(name: str) -> str:
    close = difflib.get_close_matches(name, POLICY_NAMES, n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"unknown policy {name!r}; {hint}valid names: {', '.join(POLICY_NAMES)} "
        "(or a path to a saved model .zip, optionally as algo:path)"
    )
