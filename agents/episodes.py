"""evaluate.py's unit of work: one policy, or the offline ceiling, on one seed, in any process.

A worker (``agents.parallel``) builds an :class:`EvalWorker` once, holding the env and the
loaded models, and plays :class:`EpisodeTask` items on it. The result of a task does not depend
on the process that plays it or on which tasks it played before: a heuristic is made afresh per
episode (its randomness follows the episode's seed), models predict deterministically (or, for
a task with ``deterministic=False``, sample with torch seeded by the episode's seed), and the env
rebuilds its simulator from the seed.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import gymnasium

import orbit_env  # noqa: F401  (registers the orbit_env/* ids)
from agents import rollout
from agents.base import Policy

CEILING = "ceiling"


@dataclass(frozen=True)
class EpisodeTask:
    """Play ``name`` (a policy row or ``"ceiling"``) on episode ``episode`` with seed ``seed``;
    ``deterministic=False``: models sample their actions (torch seeded with ``seed`` first)."""

    name: str
    episode: int
    seed: int
    trace: bool = False
    deterministic: bool = True


@dataclass
class EvalWorker:
    """What a worker holds: the env, the policy specs, the models loaded so far, the ceiling."""

    env: gymnasium.Env
    specs: dict[str, str | Policy]
    kinds: dict[str, str]
    ceiling_fn: Any = None
    ceiling_time_limit_s: float = 60.0
    loaded: dict[str, Policy] = field(default_factory=dict)


def make_worker(
    env_id: str,
    split: str,
    env_kwargs: dict[str, Any],
    specs: dict[str, str | Policy],
    kinds: dict[str, str],
    ceiling: bool,
    ceiling_time_limit_s: float,
) -> EvalWorker:
    """A worker's state, built in the worker process (``agents.parallel`` ``init``)."""
    if any(kind == "model" for kind in kinds.values()):
        import torch

        torch.set_num_threads(1)  # one observation at a time; one core per worker
    env = gymnasium.make(env_id, split=split, **env_kwargs)
    ceiling_fn = None
    if ceiling:
        from agents.ceiling import ceiling as ceiling_fn
    return EvalWorker(env, specs, kinds, ceiling_fn, ceiling_time_limit_s)


def play(worker: EvalWorker, task: EpisodeTask) -> dict[str, Any]:
    """One task's result: ``{"row": {metric: value}, "status", "trace", "wall_s"}``."""
    from agents.registry import make_policy  # here: keeps this module free of the model loader

    start = time.perf_counter()
    status, trace = None, None
    if task.name == CEILING:
        row, status = ceiling_row(worker.ceiling_fn, worker.env, task.seed, worker.ceiling_time_limit_s)
    else:
        spec, kind = worker.specs[task.name], worker.kinds[task.name]
        if kind == "heuristic":
            policy = make_policy(spec, env=worker.env, seed=task.seed)
        elif not isinstance(spec, str):
            policy = spec
        else:
            if task.name not in worker.loaded:
                worker.loaded[task.name] = make_policy(spec, env=worker.env, seed=task.seed)
            policy = worker.loaded[task.name]
        if kind == "model" and not task.deterministic:
            import torch

            torch.manual_seed(task.seed)  # the samples follow the episode, not the process
        ret, metrics, trace = rollout.run_episode(
            worker.env, policy, task.seed, trace=task.trace, deterministic=task.deterministic
        )
        row = {"return": ret, **metrics}
    return {"row": row, "status": status, "trace": trace, "wall_s": time.perf_counter() - start}


def ceiling_row(ceiling_fn: Any, env: gymnasium.Env, seed: int, time_limit_s: float) -> tuple[dict, str]:
    """The ceiling's return, value on time and solve time on ``seed``, and the LP status."""
    env.reset(seed=seed)
    try:
        out = ceiling_fn(env.unwrapped.sim, bucket_s=600.0, time_limit_s=time_limit_s)
    except Exception as err:  # one failed LP should not cost the whole evaluation
        warnings.warn(f"ceiling failed on seed {seed}: {type(err).__name__}: {err}", stacklevel=2)
        return {"return": math.nan, "value_on_time": math.nan, "solve_s": math.nan}, f"error: {err}"
    row = {k: float(out.get(k, math.nan)) for k in ("return", "value_on_time", "solve_s")}
    return row, str(out.get("status", "unknown"))
