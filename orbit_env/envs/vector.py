"""OrbitVectorEnv: B episodes of one scenario behind Gymnasium's ``VectorEnv`` API.

``gymnasium.make_vec("orbit_env/WalkerLEO-v1", num_envs=B)`` returns it (the ids' vector entry
point, Gymnasium's default mode when one is registered). Its B envs share each epoch's
geometry and precomputed tables (:class:`~orbit_env.envs.placement.SimulatorPool`), so B
episodes of one epoch cost one geometry in memory and one build. The envs are stepped one
after the other in this release; the batch is the interface a compiled multi-episode step
will fill.

Gymnasium's own ``sync`` and ``async`` vector envs cannot batch this env's infos: the jobs
settled in a step (``info["settled"]``) and the brownouts' jobs vary in length between
envs, which Gymnasium's info merge assumes fixed. Here they are object arrays (one array per
env), and ``infos["action_mask"]`` is ``bool[B, N + 2]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from orbit_env.envs.placement import OrbitPlacementEnv, SimulatorPool

#: info keys stacked into one array of shape [B, ...]; every other array is one object per env
_STACKED = frozenset({"action_mask"})
_ABSENT = object()  # an env's info without a key


class OrbitVectorEnv(VectorEnv):
    """B independent episodes of one scenario, stepped together.

    Args:
        num_envs: B, at least 1.
        scenario, obs_mode, strict, geometry_cache, **overrides: as for ``OrbitPlacementEnv``
            (every env gets the same).
        autoreset_mode: Gymnasium's ``AutoresetMode`` (or its value): ``NextStep`` (default: the
            step after an episode ends resets that env, ignoring its action, with reward 0),
            ``SameStep`` (the ending step returns the new episode's first observation; the last
            one and its info are ``infos["final_obs"]`` and ``infos["final_info"]``) or
            ``Disabled`` (reset ended envs with ``reset(options={"reset_mask": ...})``).

    Observations: ``float32[B, D]`` (``obs_mode="flat"``) or a dict of batched blocks; actions:
    ``int[B]``; rewards ``float64[B]``; infos: each single-env key as an array over the envs,
    with the ``_key`` masks Gymnasium uses. ``action_masks()`` returns ``bool[B, N + 2]``.
    Sub-env ``i`` is seeded ``seed + i`` by ``reset(seed=seed)``.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int,
        scenario: Any = "OrbitPlacement-v1",
        obs_mode: str = "flat",
        strict: bool = False,
        geometry_cache: bool = True,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **overrides: Any,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        try:
            self.autoreset_mode = AutoresetMode(autoreset_mode)
        except ValueError:
            allowed = ", ".join(m.value for m in AutoresetMode)
            raise ValueError(f"autoreset_mode must be one of {allowed}, got {autoreset_mode!r}") from None
        self.num_envs = int(num_envs)
        first = OrbitPlacementEnv(
            scenario, obs_mode=obs_mode, strict=strict, geometry_cache=geometry_cache, **overrides
        )
        self.envs = [first] + [
            OrbitPlacementEnv(first.config, obs_mode=obs_mode, strict=strict, geometry_cache=geometry_cache)
            for _ in range(self.num_envs - 1)
        ]
        pool = SimulatorPool(
            first.config,
            geometry_cache,
            first._fixed_constellation,
            size=max(first._sim_cache_size, min(self.num_envs, 8)),
        )
        for env in self.envs:
            env._pool = pool
            env._fixed_constellation = first._fixed_constellation  # one catalogue, not B
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.config = first.config
        self.layout = first.layout
        self.n_sats = first.n_sats
        self.single_observation_space = first.observation_space
        self.single_action_space = first.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._flat = obs_mode == "flat"
        self._rewards = np.zeros(self.num_envs)
        self._terminations = np.zeros(self.num_envs, dtype=bool)
        self._truncations = np.zeros(self.num_envs, dtype=bool)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self._started = False

    # -- Gymnasium VectorEnv API ---------------------------------------------------------------
    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        seeds = self._seeds(seed)
        super().reset(seed=seed if isinstance(seed, int | np.integer) else None)
        options = dict(options or {})
        reset_mask = options.pop("reset_mask", None)
        if reset_mask is None:
            which = np.ones(self.num_envs, dtype=bool)
        else:
            which = np.asarray(reset_mask)
            if which.shape != (self.num_envs,) or which.dtype != np.bool_ or not which.any():
                raise ValueError(
                    f"options['reset_mask'] must be a bool array of shape ({self.num_envs},) with at "
                    f"least one True, got {reset_mask!r}"
                )
            if not self._started and not which.all():
                raise ValueError("the first reset must reset every env (no reset_mask, or all True)")
        per_env: list[dict[str, Any] | None] = [None] * self.num_envs
        obs = [None] * self.num_envs if not self._started else list(self._obs_list)
        for i in np.flatnonzero(which):
            obs[i], per_env[i] = self.envs[i].reset(seed=seeds[i], options=options or None)
        self._terminations[which] = False
        self._truncations[which] = False
        self._autoreset[which] = False
        self._obs_list = obs
        self._started = True
        return self._batch(obs), self._batch_infos(per_env)

    def step(self, actions: Any):
        if not self._started:
            raise RuntimeError("call reset() before step()")
        acts = np.asarray(actions)
        if acts.shape != (self.num_envs,) and not (self.num_envs == 1 and acts.shape == ()):
            raise ValueError(f"actions must have shape ({self.num_envs},), got {acts.shape}")
        acts = acts.reshape(self.num_envs)
        if acts.dtype.kind not in "iu":
            raise TypeError(f"actions must be integers in [0, {self.n_sats + 1}], got dtype {acts.dtype}")
        mode = self.autoreset_mode
        if mode is AutoresetMode.DISABLED and self._autoreset.any():  # before any env moves
            ended = np.flatnonzero(self._autoreset).tolist()
            raise RuntimeError(
                f"the episodes of envs {ended} are over: reset them with "
                "reset(options={'reset_mask': mask})"
            )
        per_env: list[dict[str, Any] | None] = [None] * self.num_envs
        obs = self._obs_list
        for i, env in enumerate(self.envs):
            if mode is AutoresetMode.NEXT_STEP and self._autoreset[i]:
                obs[i], info = env.reset()
                self._rewards[i], self._terminations[i], self._truncations[i] = 0.0, False, False
            else:
                obs[i], r, term, trunc, info = env.step(int(acts[i]))
                self._rewards[i], self._terminations[i], self._truncations[i] = r, term, trunc
                if mode is AutoresetMode.SAME_STEP and (term or trunc):
                    final = {"final_obs": obs[i], "final_info": info}
                    obs[i], info = env.reset()
                    info = {**final, **info}
            per_env[i] = info
        ended = self._terminations | self._truncations
        self._autoreset = ended if mode is not AutoresetMode.SAME_STEP else np.zeros_like(ended)
        return (
            self._batch(obs),
            self._rewards.copy(),
            self._terminations.copy(),
            self._truncations.copy(),
            self._batch_infos(per_env),
        )

    def action_masks(self) -> np.ndarray:
        """bool[B, N + 2]: each env's valid actions now (sb3-contrib's protocol, batched)."""
        return np.stack([env._mask for env in self.envs])

    def close_extras(self, **kwargs: Any) -> None:
        for env in self.envs:
            env.close()

    # -- internals -----------------------------------------------------------------------------
    def _seeds(self, seed: int | list[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, int | np.integer) and not isinstance(seed, bool):
            return [int(seed) + i for i in range(self.num_envs)]
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(f"seed must be an int, None or a list of {self.num_envs} seeds, got {seed!r}")
        return seeds

    def _batch(self, obs: list[Any]) -> Any:
        if self._flat:
            return np.stack(obs)
        return {name: np.stack([o[name] for o in obs]) for name in self.single_observation_space.spaces}

    def _batch_infos(self, per_env: list[dict[str, Any] | None]) -> dict[str, Any]:
        """The envs' infos (``None``: the env did not report) in Gymnasium's layout: each key's
        values as one array over the envs, and ``_key``, where each env reported it; nested
        dicts batched the same way inside."""
        keys: dict[str, None] = {}
        for info in per_env:
            if info is not None:
                keys.update(dict.fromkeys(info))
        out: dict[str, Any] = {}
        for key in keys:
            values = [_ABSENT if info is None else info.get(key, _ABSENT) for info in per_env]
            present = [v is not _ABSENT for v in values]
            first = values[present.index(True)]
            if type(first) is dict:
                out[key] = self._batch_infos([v if p else None for v, p in zip(values, present, strict=True)])
            else:
                out[key] = self._column(key, first, values, present)
            out["_" + key] = np.array(present, dtype=bool)
        return out

    def _column(self, key: str, first: Any, values: list[Any], present: list[bool]) -> np.ndarray:
        """One key's values as a [B] (or [B, ...] for the stacked keys) array; envs without the key
        get zeros (None in object columns)."""
        n, every = self.num_envs, all(present)
        if key in _STACKED:
            if every:
                return np.stack(values)
            column = np.zeros((n, *first.shape), dtype=first.dtype)
        elif isinstance(first, bool | int | float | np.number):
            if every:
                return np.array(values, dtype=type(first))
            column = np.zeros(n, dtype=type(first))
        else:
            column = np.empty(n, dtype=object)
        for i, (value, here) in enumerate(zip(values, present, strict=True)):
            if here:
                column[i] = value
        return column
