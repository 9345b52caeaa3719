"""A fingerprint of an episode's first steps, to show a change of the step left the results alone.

Usage::

    python -m bench.fingerprint --env orbit_env/Megaconstellation-v1 --steps 2000 [--seed 3]

Plays a random masked policy (its own generator, seed 0) from ``reset(seed=SEED)`` and prints
the sha256 of every observation and reward in order, and the summed reward. Run it before and
after a change (e.g. in a ``git worktree`` of the old commit): equal digests mean the same
observations and rewards to the last bit. For scenarios the pinned tests do not cover.
"""

from __future__ import annotations

import hashlib

import gymnasium
import numpy as np

import orbit_env  # noqa: F401  (registers the ids)
from bench.common import parse_step_args, step_parser


def fingerprint(env_id: str, steps: int, seed: int) -> tuple[str, float, int]:
    """(sha256 hex digest, summed reward, steps played) of up to ``steps`` steps of one episode."""
    env = gymnasium.make(env_id)
    _, info = env.reset(seed=seed)
    rng = np.random.default_rng(0)
    digest, total, played = hashlib.sha256(), 0.0, 0
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(
            int(rng.choice(np.flatnonzero(info["action_mask"])))
        )
        digest.update(np.ascontiguousarray(obs).tobytes())
        digest.update(np.float64(reward).tobytes())
        total += float(reward)
        played += 1
        if terminated or truncated:
            break
    env.close()
    return digest.hexdigest(), total, played


def main(argv: list[str] | None = None) -> str:
    args = parse_step_args(step_parser(__doc__.splitlines()[0], steps=2000, seed=3), argv)
    digest, total, played = fingerprint(args.env, args.steps, args.seed)
    print(f"{args.env} seed {args.seed}, {played} steps: sha256 {digest[:16]}, return {total!r}")
    return digest


if __name__ == "__main__":
    main()
