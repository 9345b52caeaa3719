"""Pinned episodes (see ``tests/test_pinned.py``), and the loop that plays them.

``python -m tests.pins`` records ``tests/fixtures/pinned_returns.json``; ``tests/test_pinned.py``
plays the same episodes and asserts every number is unchanged, to the last digit: the return,
every final episode metric and ``trace_sha256``, a digest of every step's observation, action
mask, reward, simulated time step and settled jobs (so a rewrite of the step, e.g. compiled, must reproduce
each step bit for bit, not only the totals). The loop uses only the public API
(``gymnasium.make``, ``make_policy``, ``predict``/``step``), so the recording does not depend on
the code it pins. ``python -m tests.pins orbit_env/Tiny-v1`` re-records one env's cases only,
``python -m tests.pins link_aware`` one policy's (a retuned rule).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import gymnasium
import numpy as np

import orbit_env  # noqa: F401  (registers the ids)

PINS = Path(__file__).resolve().parent / "fixtures" / "pinned_returns.json"
HEURISTICS = (
    "random", "round_robin", "least_loaded", "most_charged", "sunlit_first", "earliest_finish",
    "energy_aware", "value_density", "eclipse_safe", "link_aware", "marginal_cost",
)  # fmt: skip
# (env id, policy spec, seeds), on the test split: every baseline, 3 seeds, on both envs.
# (The -v0 models were retired with the -v0 layout.)
CASES: tuple[tuple[str, str, tuple[int, ...]], ...] = tuple(
    (env_id, name, (1000, 1001, 1002))
    for env_id in ("orbit_env/Tiny-v1", "orbit_env/WalkerLEO-v1")
    for name in HEURISTICS
)


def key(env_id: str, spec: str, seed: int) -> str:
    return f"{env_id}|{spec}|{seed}"


def play(env: gymnasium.Env, spec: str, seed: int) -> dict[str, float | str]:
    """One episode on the test split: the return, every final episode metric and the trace digest."""
    from agents.registry import make_policy

    policy = make_policy(spec, env=env, seed=seed)
    obs, info = env.reset(seed=seed)
    trace = hashlib.sha256()
    _digest(trace, obs, info, 0.0)
    total, done, state, start = 0.0, False, None, np.ones(1, dtype=bool)
    while not done:
        action, state = policy.predict(obs, state=state, episode_start=start, deterministic=True)
        obs, reward, terminated, truncated, info = env.step(action)
        _digest(trace, obs, info, reward)
        total += float(reward)
        done = terminated or truncated
        start = np.zeros(1, dtype=bool)
    metrics = {k: float(v) for k, v in info["episode_metrics"].items()}
    return {"return": total, **metrics, "trace_sha256": trace.hexdigest()}


def _digest(trace, obs: np.ndarray, info: dict, reward: float) -> None:
    """Fold one step into the digest: observation, action mask, reward, simulated time step and
    the jobs settled with their reward parts."""
    trace.update(np.ascontiguousarray(obs, dtype=np.float32).tobytes())
    trace.update(np.ascontiguousarray(info["action_mask"], dtype=bool).tobytes())
    trace.update(np.float64([reward, info["dt_s"]]).tobytes())
    trace.update(np.ascontiguousarray(info["settled"]["jobs"], dtype=np.int64).tobytes())
    trace.update(np.ascontiguousarray(info["settled"]["reward"], dtype=np.float64).tobytes())


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
    # arguments: env ids and/or policy names; only the cases that match are re-recorded
    args = set(sys.argv[1:])
    envs, policies = args & {c[0] for c in CASES}, args & set(HEURISTICS)
    if args - envs - policies:
        raise SystemExit(f"tests.pins: no cases for {', '.join(sorted(args - envs - policies))}")

    def chosen(env_id: str, spec: str) -> bool:
        return (not envs or env_id in envs) and (not policies or spec in policies)

    cases = tuple(c for c in CASES if chosen(c[0], c[1]))
    kept = json.loads(PINS.read_text()) if args and PINS.exists() else {}
    kept = {k: v for k, v in kept.items() if not chosen(*k.split("|")[:2])}
    PINS.write_text(json.dumps({**kept, **record(cases)}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {PINS}", file=sys.stderr)
