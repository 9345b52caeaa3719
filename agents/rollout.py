"""The episode runner shared by ``evaluate.py``, ``train.py``, ``agents.tune`` and the docs scripts.

>>> ret, metrics, traces = run_episode(env, make_policy("eclipse_safe", seed=1000), seed=1000)
"""

from __future__ import annotations

import difflib
from typing import Any

import gymnasium
import numpy as np

import orbit_env  # noqa: F401  (registers the orbit_env/* ids)
from agents.base import Policy

TRACE_KEYS = ("t_s", "soc_mean", "soc_min", "jobs")


def resolve_env_id(env_id: str) -> str:
    """The registered id for ``env_id``, which may omit the ``orbit_env/`` prefix.

    Raises:
        ValueError: no such id, with the closest registered one.
    """
    env_id = env_id.strip().split(":")[-1]  # "orbit_env:orbit_env/X" names the module to import
    for candidate in (env_id, f"orbit_env/{env_id}"):
        if candidate in gymnasium.registry:
            return candidate
    known = sorted(k for k in gymnasium.registry if k.startswith("orbit_env/"))
    close = difflib.get_close_matches(f"orbit_env/{env_id.split('/')[-1]}", known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ValueError(f"unknown env id {env_id!r}; {hint}known: {', '.join(known)}")


def run_episode(
    env: Any, policy: Policy, seed: int, trace: bool = False, deterministic: bool = True
) -> tuple[float, dict[str, float], dict[str, list[float]] | None]:
    """Play one episode; return, final ``episode_metrics`` and (if asked) per-simulator-step traces.

    Args:
        env: an orbit_env env (``gymnasium.make`` result; its ``unwrapped.sim`` is read for traces).
        policy: anything with SB3's ``predict``.
        seed: ``env.reset(seed=seed)``.
        trace: record one sample per simulator step (see below).
        deterministic: passed to ``policy.predict`` (``False``: a model samples its actions).

    Traces hold one sample per simulator step: ``t_s`` [s from the episode start], ``soc_mean``
    and ``soc_min`` (battery charge / capacity over all satellites) and ``jobs`` (queued plus
    running jobs in the constellation, after the decisions taken at that time).
    """
    obs, info = env.reset(seed=seed)
    sim = env.unwrapped.sim
    traces: dict[str, list[float]] | None = None
    remove = None
    if trace:
        traces = {key: [] for key in TRACE_KEYS}
        t0 = sim.now_s
        _sample(traces, sim, t0)
        # One env step can advance the simulator many steps (no job to decide on in between).
        remove = sim.add_listener(lambda s: _sample(traces, s, t0))
    state, start, total, done = None, np.ones(1, dtype=bool), 0.0, False
    try:
        while not done:
            action, state = policy.predict(obs, state=state, episode_start=start, deterministic=deterministic)
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            done = terminated or truncated
            start = np.zeros(1, dtype=bool)
            if traces is not None:  # decisions at the current time change the job count
                _sample(traces, sim, t0, replace=traces["t_s"][-1] == sim.now_s - t0)
    finally:
        if remove is not None:
            remove()
    metrics = {k: float(v) for k, v in info["episode_metrics"].items()}
    return total, metrics, traces


def _sample(traces: dict[str, list[float]], sim: Any, t0: float, replace: bool = False) -> None:
    soc = sim.soc()
    jobs = sim.queued_jobs().sum() + sim.busy_slots().sum()
    sample = (float(sim.now_s - t0), float(soc.mean()), float(soc.min()), float(jobs))
    for key, value in zip(TRACE_KEYS, sample, strict=True):
        if replace:
            traces[key][-1] = value
        else:
            traces[key].append(value)
