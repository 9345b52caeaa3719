"""How often a rule's placement is one of several near-equal choices (for set-target cloning).

Usage::

    python docs/tie_sets.py --env orbit_env/WalkerLEO-v1 --policy link_aware --decisions 3000 \
        --tolerance 0.005 0.01 0.02

Plays the rule on one train episode (``--seed``, split ``train``) for ``--decisions`` decisions
at each tolerance τ and reports, over the decisions where it placed the job, the mean and median
size of the set of satellites it scores within τ · max(|best|, 1) of its best (the targets of
``train.py --bc-tie-tolerance τ``) and the share of placements with more than one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gymnasium
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout

import orbit_env  # noqa: E402,F401
from agents.registry import make_policy  # noqa: E402
from agents.rollout import resolve_env_id  # noqa: E402


def tie_sets(env_id: str, policy: str, tolerance: float, decisions: int, seed: int) -> np.ndarray:
    """int[P]: the tie-set size at each of the rule's placements among the first ``decisions``."""
    env = gymnasium.make(env_id, split="train")
    rule = make_policy(policy, env=env, seed=0)
    if not hasattr(rule, "tie_tolerance"):
        raise SystemExit(f"{policy!r} is not a heuristic rule: it has no tie sets")
    rule.tie_tolerance = tolerance
    n = env.unwrapped.n_sats
    obs, _ = env.reset(seed=seed)
    sizes = []
    for _ in range(decisions):
        action = int(np.asarray(rule.predict(obs, deterministic=True)[0]).reshape(()))
        if action < n:
            sizes.append(int(rule.ties[0, :n].sum()))
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            break
    return np.asarray(sizes, dtype=np.int64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="orbit_env/WalkerLEO-v1")
    parser.add_argument("--policy", default="link_aware")
    parser.add_argument("--decisions", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=100000, help="train-split episode seed")
    parser.add_argument("--tolerance", type=float, nargs="+", default=[0.005, 0.01, 0.02])
    args = parser.parse_args(argv)
    if args.decisions < 1 or min(args.tolerance) <= 0:
        parser.error("--decisions must be at least 1 and every --tolerance above 0")
    env_id = resolve_env_id(args.env)
    print(f"{env_id}, {args.policy}, train episode {args.seed}, first {args.decisions} decisions:")
    print("| tolerance | placements | mean set | median set | share with ties |")
    print("|---|---|---|---|---|")
    for tol in args.tolerance:
        s = tie_sets(env_id, args.policy, tol, args.decisions, args.seed)
        if s.size == 0:
            print(f"| {tol:g} | 0 | – | – | – |")
            continue
        print(f"| {tol:g} | {s.size} | {s.mean():.1f} | {np.median(s):.0f} | {(s > 1).mean():.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
