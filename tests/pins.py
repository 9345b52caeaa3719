"""Pinned episode returns (see ``tests/test_pinned.py``), and the loop that plays them.

``python -m tests.pins`` records ``tests/fixtures/pinned_returns.json``; ``tests/test_pinned.py``
plays the same episodes and asserts every number is unchanged, to the last digit. The loop uses
only the public API (``gymnasium.make``, ``make_policy``, ``predict``/``step``), so the recording
does not depend on the code it pins.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import gymnasium
import numpy as np

import orbit_env  # noqa: F401  (registers the ids)

PINS = Path(__file__).resolve().parent / "fixtures" / "pinned_returns.json"
HEURISTICS = (
    "random", "round_robin", "least_loaded", "most_charged", "sunlit_first",
    "earliest_finish", "energy_aware", "value_density", "eclipse_safe",
)  # fmt: skip
# (env id, policy spec, seeds), on the test split. (The -v0 models were retired with the -v0 layout.)
CASES: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    *(("orbit_env/Tiny-v1", name, (1000, 1001, 1002)) for name in HEURISTICS),
    ("orbit_env/WalkerLEO-v1", "eclipse_safe", (1000,)),
    ("orbit_env/WalkerLEO-v1", "earliest_finish", (1000,)),
)


def key(env_id: str, spec: str, seed: int) -> str:
    return f"{env_id}|{spec}|{seed}"


def play(env: gymnasium.Env, spec: str, seed: int) -> dict[str, float]:
    """One episode on the test split: the return and every final episode metric."""
    from agents.registry import make_policy

    policy = make_policy(spec, env=env, seed=seed)
    obs, _ = env.reset(seed=seed)
    total, done, state, start = 0.0, False, None, np.ones(1, dtype=bool)
    while not done:
        action, state = policy.predict(obs, state=state, episode_start=start, deterministic=True)
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        done = terminated or truncated
        start = np.zeros(1, dtype=bool)
    return {"return": total, **{k: float(v) for k, v in info["episode_metrics"].items()}}


def record(cases=CASES) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    envs: dict[str, gymnasium.Env] = {}
    for env_id, spec, seeds in cases:
        env = envs.setdefault(env_id, gymnasium.make(env_id, split="test"))
        for seed in seeds:
            out[key(env_id, spec, seed)] = play(env, spec, seed)
            print(key(env_id, spec, seed), repr(out[key(env_id, spec, seed)]["return"]), flush=True)
    return out


if __name__ == "__main__":
    PINS.write_text(json.dumps(record(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {PINS}", file=sys.stderr)
