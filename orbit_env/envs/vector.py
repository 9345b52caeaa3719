"""OrbitVectorEnv: B episodes of one scenario behind Gymnasium's ``VectorEnv`` API.

``gymnasium.make_vec("orbit_env/WalkerLEO-v1", num_envs=B)`` returns it (the ids' vector entry
point, Gymnasium's default mode when one is registered). Its B envs share each epoch's
geometry and precomputed tables (:class:`~orbit_env.envs.placement.SimulatorPool`), so B
episodes of one epoch cost one geometry in memory and one build. A step is one compiled call
for all B envs (:func:`orbit_env.envs.batch.step_batch`: each env's decision, clock, observation,
reward and logs); Python resets the envs whose episodes ended, and steps on its own any env whose
simulator needs Python between clock steps (listeners, radiation upsets).

Gymnasium's own ``sync`` and ``async`` vector envs cannot batch this env's infos: the jobs
settled in a step (``info["settled"]``) and the brownouts' jobs vary in length between
envs, which Gymnasium's info merge assumes fixed. Here they are object arrays (one array per
env), and ``infos["action_mask"]`` is ``bool[B, N + 2]``.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from orbit_env.envs import batch
from orbit_env.envs.batch import REWARD_KEYS
from orbit_env.envs.placement import OrbitPlacementEnv, SimulatorPool

#: info keys stacked into one array of shape [B, ...]; every other array is one object per env
_STACKED = frozenset({"action_mask"})
#: the ``infos`` choices: every key, or the mask and what ends an episode
INFOS = ("all", "mask")
_MASK_KEYS = frozenset({"action_mask", "episode_metrics", "final_obs", "final_info"})
_ABSENT = object()  # an env's info without a key
_STEP_KEYS = 19  # the "_key" masks of a step's infos (OrbitVectorEnv._step_infos)


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
        infos: ``"all"`` (default): every key of the single env's info, batched; ``"mask"``:
            only ``action_mask``, and where episodes end ``episode_metrics`` (and
            ``final_obs``/``final_info`` with ``SameStep``): for training loops that read nothing
            else, it skips most of the infos' cost (an eighth of a WalkerLEO-v1 step at B = 16).

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
        infos: str = "all",
        **overrides: Any,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        if infos not in INFOS:
            raise ValueError(f"infos must be one of {INFOS}, got {infos!r}")
        self._all_infos = infos == "all"
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
        b = self.num_envs
        self._terminations = np.zeros(b, dtype=bool)
        self._truncations = np.zeros(b, dtype=bool)
        self._autoreset = np.zeros(b, dtype=bool)
        self._started = False
        # the compiled step's inputs and outputs: every env's reward totals and step results are
        # rows of one array (the envs write their own rows at reset)
        self._last = np.zeros((b, len(REWARD_KEYS)))
        self._results = np.zeros((b, batch.N_RESULTS))
        for i, env in enumerate(self.envs):
            env._last, env._results = self._last[i], self._results[i]
        self._penalties = first._penalties
        # the envs' clock and feature structs, as a typed list for step_batch and as the Python
        # objects last seen (a reset may bring another simulator or struct)
        self._seen: list[tuple[Any, Any]] = [(None, None)] * b
        self._structs: tuple[Any, Any] | None = None

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
        flat = np.empty((self.num_envs, self.layout.size), dtype=np.float32)
        for i, env in enumerate(self.envs):
            if which[i]:
                obs, per_env[i] = env.reset(seed=seeds[i], options=options or None)
                flat[i] = obs if self._flat else self.layout.from_dict(obs)
            else:  # an env left as it is: its observation again
                flat[i] = env._current_observation()
        self._terminations[which] = False
        self._truncations[which] = False
        self._autoreset[which] = False
        self._started = True
        return self._batch(flat), self._batch_infos(self._kept(per_env))

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
        b = self.num_envs
        compiled = ~self._autoreset if mode is AutoresetMode.NEXT_STEP else np.ones(b, dtype=bool)
        self._check_structs()
        if self.envs[0].strict:  # every action checked before any env moves
            for i in np.flatnonzero(compiled):
                self.envs[i]._check_action(int(acts[i]))
        decided, jobs, pending = (
            np.empty(b, dtype=np.int64),
            np.empty(b, dtype=np.int64),
            np.empty(b, dtype=np.int64),
        )
        flat = np.empty((b, self.layout.size), dtype=np.float32)
        masks = np.empty((b, self.n_sats + 2), dtype=bool)
        invalid = np.zeros(b, dtype=bool)
        sts, fss = self._structs
        stopped, status, grown, *logs = batch.step_batch(
            sts, fss, compiled, decided, jobs, pending, acts.astype(np.int64), self.config.defer_s,
            self._penalties, self._last, flat, masks, self._results, invalid,
        )  # fmt: skip
        if grown.any() or stopped >= 0:
            for i in np.flatnonzero(grown):
                self.envs[i].sim._refresh()
            if stopped >= 0:
                self.envs[stopped].sim._check(status)  # raises (a battery too small for the load)
        results = self._results
        rewards = results[:, batch.R_REWARD].copy()
        terminated = compiled & (jobs < 0)
        per_env: list[dict[str, Any] | None] | None = None
        if not compiled.all() or terminated.any():  # episodes ended or envs stepped in Python: per env
            for i in np.flatnonzero(compiled):  # an episode without decisions ends at its one step
                self.envs[i]._no_decision = False
            per_env = self._row_infos(compiled, terminated, decided, invalid, logs)
            for i in np.flatnonzero(~compiled):
                env = self.envs[i]
                if self._autoreset[i] and mode is AutoresetMode.NEXT_STEP:
                    obs, per_env[i] = env.reset()
                    rewards[i], terminated[i] = 0.0, False
                else:
                    obs, rewards[i], terminated[i], _, per_env[i] = env.step(int(acts[i]))
                flat[i] = obs if self._flat else self.layout.from_dict(obs)
            if mode is AutoresetMode.SAME_STEP:
                for i in np.flatnonzero(terminated):
                    env = self.envs[i]
                    final = {"final_obs": self._single(flat[i].copy()), "final_info": per_env[i]}
                    obs, info = env.reset()
                    flat[i] = obs if self._flat else self.layout.from_dict(obs)
                    per_env[i] = {**final, **info}
        self._terminations[:] = terminated
        self._truncations[:] = False
        self._autoreset = (
            terminated.copy() if mode is not AutoresetMode.SAME_STEP else np.zeros_like(terminated)
        )
        if per_env is not None:
            infos = self._batch_infos(self._kept(per_env))
        elif self._all_infos:
            infos = self._step_infos(decided, jobs, pending, masks, invalid, logs)
        else:
            infos = {"action_mask": masks, "_action_mask": np.ones(b, dtype=bool)}
        return self._batch(flat), rewards, terminated, self._truncations.copy(), infos

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

    def _kept(self, per_env: list[dict[str, Any] | None]) -> list[dict[str, Any] | None]:
        """The envs' infos with only the keys ``infos`` asks for."""
        if self._all_infos:
            return per_env
        kept = []
        for info in per_env:
            if info is not None:
                info = {k: v for k, v in info.items() if k in _MASK_KEYS}
                if "final_info" in info:
                    info["final_info"] = {k: v for k, v in info["final_info"].items() if k in _MASK_KEYS}
            kept.append(info)
        return kept

    def _check_structs(self) -> None:
        """Make the typed lists of the envs' clock and feature structs again if a reset brought
        another simulator or struct to any env."""
        changed, seen = self._structs is None, self._seen
        for i, env in enumerate(self.envs):
            st, fs = env.sim._st, env._features._state
            if seen[i][0] is not st or seen[i][1] is not fs:
                seen[i] = (st, fs)
                changed = True
        if changed:
            if numba.config.DISABLE_JIT:
                self._structs = ([st for st, _ in self._seen], [fs for _, fs in self._seen])
            else:
                self._structs = (
                    numba.typed.List([st for st, _ in self._seen]),
                    numba.typed.List([fs for _, fs in self._seen]),
                )

    def _row_infos(self, compiled, terminated, decided, invalid, logs) -> list[dict[str, Any] | None]:
        """The compiled step's outputs as each env's info (``None`` for the envs it did not run),
        made by ``OrbitPlacementEnv._info`` as its own step makes it."""
        settled, settled_reward, n_settled, failed, failed_reward, n_failed, unassigned = logs
        s_end, f_end = np.cumsum(n_settled).tolist(), np.cumsum(n_failed).tolist()
        per_env: list[dict[str, Any] | None] = [None] * self.num_envs
        for i in np.flatnonzero(compiled):
            r = self._results[i].tolist()
            s0, f0 = s_end[i] - int(n_settled[i]), f_end[i] - int(n_failed[i])
            env_logs = (
                settled[s0 : s_end[i]], settled_reward[s0 : s_end[i]],
                failed[f0 : f_end[i]], failed_reward[f0 : f_end[i]], float(unassigned[i]),
            )  # fmt: skip
            components = dict(zip(REWARD_KEYS, r[batch.R_COMPONENTS : batch.R_COMPONENTS + 4], strict=True))
            env = self.envs[i]  # its mask, pending job and clock are this step's
            info = env._info(bool(invalid[i]), components, r[batch.R_DT_S], int(decided[i]), env_logs)
            if terminated[i]:
                info["episode_metrics"] = env.sim.metrics()
            per_env[i] = info
        return per_env

    def _step_infos(self, decided, jobs, pending, masks, invalid, logs) -> dict[str, Any]:
        """The infos of a step the compiled call made for every env, none ending an episode:
        what :meth:`_batch_infos` makes of :meth:`_row_infos`, built from the arrays directly
        (the ``_key`` masks are rows of one array, as are the float columns)."""
        settled, settled_reward, n_settled, failed, failed_reward, n_failed, unassigned = logs
        present = iter(np.ones((_STEP_KEYS, self.num_envs), dtype=bool))
        results = self._results.T.copy()  # [N_RESULTS, B]: a row per column
        components: dict[str, Any] = {}
        for j, key in enumerate(REWARD_KEYS):
            components[key] = results[batch.R_COMPONENTS + j]
            components["_" + key] = next(present)
        settled_jobs, settled_rewards = _ragged(n_settled, settled, settled_reward)
        failed_jobs, failed_rewards = _ragged(n_failed, failed, failed_reward)
        return {
            "action_mask": masks,
            "_action_mask": next(present),
            "invalid_action": invalid,
            "_invalid_action": next(present),
            "reward_components": components,
            "_reward_components": next(present),
            "time_s": results[batch.R_TIME_S],
            "_time_s": next(present),
            "job": jobs,
            "_job": next(present),
            "pending": pending,
            "_pending": next(present),
            "dt_s": results[batch.R_DT_S],
            "_dt_s": next(present),
            "decided_job": decided,
            "_decided_job": next(present),
            "settled": {
                "jobs": settled_jobs,
                "_jobs": next(present),
                "reward": settled_rewards,
                "_reward": next(present),
            },
            "_settled": next(present),
            "brownouts": {
                "jobs": failed_jobs,
                "_jobs": next(present),
                "reward": failed_rewards,
                "_reward": next(present),
                "unassigned": unassigned,
                "_unassigned": next(present),
            },
            "_brownouts": next(present),
        }

    def _batch(self, flat: np.ndarray) -> Any:
        """The batched observation of ``flat`` (float32[B, D]) in the env's ``obs_mode``."""
        if self._flat:
            return flat
        blocks = self.layout.to_dict(flat)
        return {name: np.ascontiguousarray(blocks[name]) for name in self.single_observation_space.spaces}

    def _single(self, flat: np.ndarray) -> Any:
        """One env's observation of ``flat`` (float32[D]) in the env's ``obs_mode``."""
        return flat if self._flat else self.envs[0]._dict_obs(flat)

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


def _ragged(counts: np.ndarray, *columns: np.ndarray) -> list[np.ndarray]:
    """Each of ``columns`` (a log concatenated in env order, ``counts[i]`` entries of env i) as an
    object array of B arrays, env i's part in slot i; an env without entries gets an empty
    array (one, read-only, shared by the envs of the column)."""
    outs = []
    for values in columns:
        out = np.empty(counts.shape[0], dtype=object)
        empty = values[:0]
        empty.flags.writeable = False
        out.fill(empty)
        outs.append(out)
    if columns and columns[0].shape[0]:
        start = 0
        for i, end in enumerate(np.cumsum(counts).tolist()):
            if end > start:
                for out, values in zip(outs, columns, strict=True):
                    out[i] = values[start:end]
            start = end
    return outs
