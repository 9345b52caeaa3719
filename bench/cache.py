"""How much of a step's time is cache misses: ``env.step`` alone vs with other work between steps.

Usage::

    python -m bench.cache --env orbit_env/WalkerLEO-v1 --steps 2000 [--seed 0]

Plays a random masked policy and times only ``env.step``, with, between steps: nothing; a
JSON round trip (CPU work that touches little memory); a sum over 2 MB of floats (evicts the
caches); and, if torch is installed, the forward pass of SB3's default ``MlpPolicy`` network
for this observation (64 × 64, two nets), which is what a training loop puts between steps.
A step that slows down only when memory is touched between steps is paying for cache misses
(its Python objects and tables reloaded from L3 or memory), not for the work in between.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np

import orbit_env  # noqa: F401  (registers the ids)
from bench.common import masked_policy, parse_step_args, step_parser, timed_steps

_DOC = {"a": [list(range(50)) for _ in range(20)], "b": {str(i): i for i in range(200)}}


def _fillers(obs_size: int) -> dict[str, Callable[[], object] | None]:
    big = np.random.default_rng(0).random(2 * 1024 * 1024 // 8)
    fillers: dict[str, Callable[[], object] | None] = {
        "nothing": None,
        "JSON round trip": lambda: json.loads(json.dumps(_DOC)),
        "sum over 2 MB": big.sum,
    }
    try:
        import torch
    except ImportError:  # the core install: no torch
        return fillers
    torch.set_num_threads(1)

    def net() -> torch.nn.Module:
        return torch.nn.Sequential(
            torch.nn.Linear(obs_size, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh()
        )

    pi, vf, x = net(), net(), torch.zeros(1, obs_size)

    def forward() -> None:
        with torch.no_grad():
            pi(x), vf(x)

    fillers["MlpPolicy forward (torch)"] = forward
    return fillers


def cache_effect(env_id: str, steps: int, seed: int = 0) -> dict[str, dict[str, float]]:
    """µs per ``env.step`` and per filler call, for each filler between steps (the filler runs
    in the policy's turn, which :func:`bench.common.timed_steps` leaves out of the step's time)."""
    env = gymnasium.make(env_id)
    out: dict[str, dict[str, float]] = {}
    for name, filler in _fillers(int(np.prod(env.observation_space.shape))).items():
        choose = masked_policy(np.random.default_rng(seed))
        fill_s = [0.0]

        def policy(env: Any, info: dict, filler=filler, choose=choose, fill_s=fill_s) -> Any:
            if filler is not None:
                t0 = time.perf_counter()
                filler()
                fill_s[0] += time.perf_counter() - t0
            return choose(env, info)

        _, info = env.reset(seed=seed)
        timing = timed_steps(env, info, steps, policy)
        out[name] = {"step_us": timing.per_step_s * 1e6, "between_us": fill_s[0] / steps * 1e6}
    env.close()
    return out


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    args = parse_step_args(step_parser(__doc__.splitlines()[0], steps=2000), argv)
    cache_effect(args.env, min(args.steps, 200), args.seed)  # warm: kernels loaded, geometry built
    result = cache_effect(args.env, args.steps, args.seed)
    base = result["nothing"]["step_us"]
    print(f"{args.env}, {args.steps:,} steps, env.step only:")
    for name, r in result.items():
        print(f"  between steps: {name:28s} env.step {r['step_us']:7.1f} µs ({r['step_us'] / base:4.2f}×)")
    return result


if __name__ == "__main__":
    main()
