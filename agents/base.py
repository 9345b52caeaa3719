"""The policy protocol: stable-baselines3's ``predict`` signature, batched.

A heuristic and a trained model go through the same evaluation code (``evaluate.py``, SB3's
``evaluate_policy``, any VecEnv) because both implement::

    predict(observation, state=None, episode_start=None, deterministic=True) -> (action, state)

``observation`` is one flat observation ``[D]`` (the action comes back as a 0-d array) or a
batch ``[B, D]`` (actions ``[B]``). Heuristics read the observation only, decoded by name with
:class:`~orbit_env.envs.observation.ObservationLayout`; they never see the simulator.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from orbit_env.config import ScenarioConfig
from orbit_env.envs.observation import ObservationLayout

#: deferral delay [s] a rule assumes when it is not told the env's (the config's default)
DEFAULT_DEFER_S: float = ScenarioConfig.__dataclass_fields__["defer_s"].default


@runtime_checkable
class Policy(Protocol):
    """Anything with SB3's ``predict``."""

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]: ...


def layout_for(observation: np.ndarray) -> ObservationLayout:
    """The layout whose flat size matches ``observation`` (its last axis)."""
    return ObservationLayout.for_size(int(np.shape(observation)[-1]))


def defer_s_of(env: Any) -> float:
    """The deferral delay [s] of an orbit_env env (or VecEnv), else :data:`DEFAULT_DEFER_S`."""
    config = getattr(getattr(env, "unwrapped", None), "config", None)
    if config is None and hasattr(env, "get_attr"):  # a VecEnv
        config = env.get_attr("config")[0]
    return float(getattr(config, "defer_s", DEFAULT_DEFER_S))


def flatten_observation(observation: Any) -> np.ndarray:
    """A flat observation (or batch) from the flat or the ``obs_mode="dict"`` form."""
    if isinstance(observation, dict):
        sats = np.asarray(observation["satellites"])
        batch = sats.shape[:-2]
        return np.concatenate(
            [
                sats.reshape(batch + (-1,)),
                np.asarray(observation["job"]),
                np.asarray(observation["globals"]),
            ],
            axis=-1,
        )
    return np.asarray(observation, dtype=np.float32)


def pick_best(score: np.ndarray, allowed: np.ndarray, otherwise: np.ndarray) -> np.ndarray:
    """argmax of ``score`` over ``allowed`` satellites per row; ``otherwise`` where none is allowed."""
    masked = np.where(allowed, score, -np.inf)
    best = masked.argmax(axis=-1)
    return np.where(allowed.any(axis=-1), best, otherwise)


class HeuristicPolicy:
    """Base class of the hand-written rules: batching, decoding and the fallback.

    Subclasses implement :meth:`choose` on decoded blocks of a batch.

    Args:
        seed: seed of the rule's random generator (only ``random`` draws from it).
        defer_s: the env's deferral delay [s], which the fallback uses to judge whether a job
            can wait for another look (:func:`agents.base.defer_s_of` reads it from an env).
    """

    name = "heuristic"
    #: relative score tolerance of :attr:`ties` (0: no ties recorded)
    tie_tolerance: float = 0.0

    def __init__(self, seed: int | None = None, defer_s: float = DEFAULT_DEFER_S) -> None:
        self.rng = np.random.default_rng(seed)
        self.defer_s = float(defer_s)
        self._layout: ObservationLayout | None = None
        #: bool[B, N + 2] after :meth:`predict` with ``tie_tolerance > 0``: the actions the rule
        #: rates as good as its choice (the satellites whose score is within the tolerance of
        #: the chosen one's); only the chosen action where it did not pick by score
        self.ties: np.ndarray | None = None
        self._picked: tuple[np.ndarray, np.ndarray] | None = None  # (action, ties) of the last pick

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        obs = flatten_observation(observation)
        single = obs.ndim == 1
        batch = obs[None] if single else obs
        if self._layout is None or self._layout.size != batch.shape[-1]:
            self._layout = layout_for(batch)
        if episode_start is not None:
            self.on_episode_start(np.atleast_1d(episode_start))
        lay = self._layout
        self._picked = None
        actions = self.choose(lay, lay.satellites(batch), lay.job(batch), lay.globals(batch))
        actions = np.asarray(actions, dtype=np.int64)
        if self.tie_tolerance > 0:
            self.ties = np.zeros((actions.shape[0], lay.n_sats + 2), dtype=bool)
            if self._picked is not None:  # rows whose action is the scored pick: its ties
                scored = actions == self._picked[0]
                self.ties[scored] = self._picked[1][scored]
            self.ties[np.arange(actions.shape[0]), actions] = True
        return (actions[0] if single else actions), state

    def pick(self, score: np.ndarray, allowed: np.ndarray, otherwise: np.ndarray) -> np.ndarray:
        """:func:`pick_best` that also remembers, with ``tie_tolerance > 0``, the allowed
        satellites scored within ``tie_tolerance · max(|best score|, 1)`` of the best (see :attr:`ties`)."""
        action = pick_best(score, allowed, otherwise)
        if self.tie_tolerance > 0:
            masked = np.where(allowed, score, -np.inf)
            top = masked.max(axis=-1, keepdims=True)
            near = allowed & (masked >= top - self.tie_tolerance * np.maximum(np.abs(top), 1.0))
            placed = action < score.shape[-1]
            ties = np.zeros((score.shape[0], score.shape[-1] + 2), dtype=bool)
            ties[placed, : score.shape[-1]] = near[placed]
            self._picked = (action, ties)
        return action

    def on_episode_start(self, starts: np.ndarray) -> None:
        """Reset per-episode state for the batch entries that start an episode."""

    def choose(
        self, layout: ObservationLayout, sats: np.ndarray, job: np.ndarray, glob: np.ndarray
    ) -> np.ndarray:
        """Actions ``[B]`` for decoded blocks ``sats [B, N, F]``, ``job [B, J]``, ``glob [B, G]``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
