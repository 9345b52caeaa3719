"""OrbitVecEnv: stable-baselines3's ``VecEnv`` over orbit_env's native vector env.

>>> venv = VecMonitor(OrbitVecEnv("orbit_env/WalkerLEO-v1", n_envs=4, env_kwargs={"split": "train"}))
>>> model = MaskablePPO("MlpPolicy", venv)

Against ``DummyVecEnv`` over ``gymnasium.make`` envs it saves, per step: the Gymnasium
wrappers' calls, the deep copy of every info dict (each step's dicts are new, so nothing is
shared between steps), and sb3-contrib's per-env ``action_masks`` calls (one batched call). Its
envs share each epoch's geometry (:class:`orbit_env.envs.vector.OrbitVectorEnv`). Episodes end
as SB3 expects: the ending step's info holds ``terminal_observation`` and the observation
returned is the next episode's first. Add ``VecMonitor`` for episode returns in the logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

import orbit_env  # noqa: F401  (registers the ids)
from orbit_env.envs.vector import OrbitVectorEnv


class OrbitVecEnv(VecEnv):
    """``n_envs`` episodes of ``env_id`` (an orbit_env id), each seeded ``seed + i`` by
    :meth:`seed` (SB3's convention; ``make_vec_env`` calls it), stepped in one process.

    Args:
        env_id: a registered orbit_env id, e.g. ``"orbit_env/WalkerLEO-v1"``.
        n_envs: at least 1.
        env_kwargs: keyword overrides for every env (``split="train"``, ``battery_wh=...``).
    """

    def __init__(self, env_id: str, n_envs: int, env_kwargs: dict[str, Any] | None = None) -> None:
        spec = gymnasium.spec(env_id)
        if spec.vector_entry_point is None or not str(spec.vector_entry_point).startswith("orbit_env."):
            raise ValueError(f"env_id must be an orbit_env id (with a native vector env), got {env_id!r}")
        kwargs = {**spec.kwargs, **(env_kwargs or {})}
        self.vector = OrbitVectorEnv(n_envs, **kwargs)
        self.envs = self.vector.envs
        super().__init__(n_envs, self.vector.single_observation_space, self.vector.single_action_space)
        self._actions: np.ndarray | None = None
        self._obs: list[Any] = [None] * n_envs
        self._rewards = np.zeros(n_envs, dtype=np.float32)
        self._dones = np.zeros(n_envs, dtype=bool)

    # -- VecEnv API ----------------------------------------------------------------------------
    def reset(self) -> Any:
        for i, env in enumerate(self.envs):
            self._obs[i], self.reset_infos[i] = env.reset(seed=self._seeds[i], **self._option_kwargs(i))
        self._reset_seeds()
        self._reset_options()
        return self._stacked()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self) -> tuple[Any, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        if self._actions is None:
            raise RuntimeError("step_async() must come before step_wait()")
        infos: list[dict[str, Any]] = []
        for i, env in enumerate(self.envs):
            obs, reward, terminated, truncated, info = env.step(int(self._actions[i]))
            done = terminated or truncated
            info["TimeLimit.truncated"] = truncated and not terminated
            if done:
                info["terminal_observation"] = obs
                obs, self.reset_infos[i] = env.reset()
            self._obs[i] = obs
            self._rewards[i], self._dones[i] = reward, done
            infos.append(info)
        self._actions = None
        return self._stacked(), self._rewards.copy(), self._dones.copy(), infos

    def action_masks(self) -> np.ndarray:
        """bool[n_envs, N + 2]: every env's valid actions, in one call."""
        return self.vector.action_masks()

    def close(self) -> None:
        self.vector.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [env.render() if env.render_mode == "rgb_array" else None for env in self.envs]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.envs[i], attr_name) for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for i in self._get_indices(indices):
            setattr(self.envs[i], attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        which = self._get_indices(indices)
        if method_name == "action_masks" and not method_args and not method_kwargs:
            masks = self.vector.action_masks()  # sb3-contrib asks every step: one batched read
            return [masks[i] for i in which]
        return [getattr(self.envs[i], method_name)(*method_args, **method_kwargs) for i in which]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]  # the envs are never wrapped

    # -- internals -----------------------------------------------------------------------------
    def _stacked(self) -> Any:
        """The envs' last observations as one batch (a dict of batched blocks in ``obs_mode="dict"``)."""
        if self.vector._flat:
            return np.stack(self._obs)
        return {name: np.stack([o[name] for o in self._obs]) for name in self.observation_space.spaces}

    def _option_kwargs(self, i: int) -> dict[str, Any]:
        options = self._options[i]
        return {"options": options} if options else {}
