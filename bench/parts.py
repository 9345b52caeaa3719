"""Time each part of ``env.step`` without a profiler's overhead (for whoever optimises the step).

Usage::

    python -m bench.parts --env orbit_env/WalkerLEO-v1 --steps 4000 [--seed 0]

Wraps the env's and the simulator's methods with ``perf_counter`` timers, plays a random
masked policy (the first 300 steps untimed, to load the compiled kernels) and prints the mean
µs per step of each part. Parts nest (``sim.next_decision`` contains ``sim.advance``), so
they do not add up; the wrappers themselves cost ~0.3 µs per call. ``batch.env_step`` is the
compiled step (the decision, the clock to the next one, the observation, the reward).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import gymnasium
import numpy as np

import orbit_env  # noqa: F401  (registers the ids)
from bench.common import parse_step_args, step_parser
from orbit_env.envs import batch

ENV_PARTS = ("_next_decision", "_check_action", "_info")
FEATURE_PARTS = ("observe",)
BATCH_PARTS = ("env_step", "take_logs")  # the compiled step and the settled jobs' and brownouts' logs
SIM_PARTS = (
    "place", "defer", "reject", "next_decision", "advance", "decision", "pending",
    "valid_targets", "committed_s",
)  # fmt: skip


def _timed(obj: Any, name: str, label: str, totals: dict[str, float]) -> None:
    fn: Callable[..., Any] = getattr(obj, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[label] += time.perf_counter() - start

    setattr(obj, name, wrapper)


def _random_action(env: Any, rng: np.random.Generator) -> int:
    mask = env.action_masks()
    choices = np.flatnonzero(mask[:-1] if mask[:-2].any() else mask)  # place or defer while possible
    return int(rng.choice(choices))


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_step_args(step_parser(__doc__.splitlines()[0], steps=4000), argv)
    env = gymnasium.make(args.env)
    raw = env.unwrapped
    rng = np.random.default_rng(args.seed)
    env.reset(seed=args.seed)
    for _ in range(300):  # loads the compiled kernels; not timed
        if env.step(_random_action(raw, rng))[2]:
            env.reset(seed=args.seed + 1)
    totals: dict[str, float] = defaultdict(float)
    for name in ENV_PARTS:
        _timed(raw, name, f"env.{name}", totals)
    for name in FEATURE_PARTS:
        _timed(raw._features, name, f"features.{name}", totals)
    compiled = {name: getattr(batch, name) for name in BATCH_PARTS}
    for name in BATCH_PARTS:
        _timed(batch, name, f"batch.{name}", totals)
    sim_parts = [name for name in SIM_PARTS if hasattr(raw.sim, name)]
    step_s, resets = 0.0, 0
    timed_sims: set[int] = set()
    try:
        for _ in range(args.steps):
            if id(raw.sim) not in timed_sims:  # a reset may bring another simulator (another epoch)
                for name in sim_parts:
                    _timed(raw.sim, name, f"sim.{name}", totals)
                timed_sims.add(id(raw.sim))
            action = _random_action(raw, rng)
            start = time.perf_counter()
            terminated = env.step(action)[2]
            step_s += time.perf_counter() - start
            if terminated:
                resets += 1
                env.reset(seed=args.seed + 1 + resets)
    finally:  # the module's compiled functions back
        for name, fn in compiled.items():
            setattr(batch, name, fn)
    per_step = {label: seconds / args.steps * 1e6 for label, seconds in totals.items()}
    print(
        f"{args.env}: {args.steps:,} steps, {step_s / args.steps * 1e6:.0f} µs per env.step ({resets} resets)"
    )
    for label, us in sorted(per_step.items(), key=lambda kv: -kv[1]):
        print(f"  {label:26s} {us:7.1f} µs/step")
    env.close()
    return per_step


if __name__ == "__main__":
    main()
