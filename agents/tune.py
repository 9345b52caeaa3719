"""Tune the parameters of the strong rules on train-split seeds only.

``value_density``, ``eclipse_safe`` and ``link_aware`` take :class:`~agents.heuristics.Thresholds`
(``link_aware`` starts from ``eclipse_safe``'s tuned energy thresholds and tunes its link
parameters), ``marginal_cost`` takes :class:`~agents.heuristics.Barriers`.

Coordinate search: each parameter in turn is swept over its grid with the others held, and
the best mean return on the train seeds is kept; rounds repeat until nothing improves. The
evaluation seeds of ``evaluate.py`` (test split, seeds from 1000) are never touched.

Usage::

    python -m agents.tune --env orbit_env/WalkerLEO-v1 --policy eclipse_safe --episodes 4 --rounds 2
    python -m agents.tune --env orbit_env/Suncatcher-v1 --policy link_aware --from-tuned \
        --grid min_value_per_gb=0.1,0.15,0.2,0.25,0.35   # refine around the shipped values
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import gymnasium as gym
import numpy as np
from tqdm import tqdm

import orbit_env  # noqa: F401  (registers the ids)
from agents.base import defer_s_of
from agents.heuristics import HEURISTICS, TUNED, TUNED_BARRIERS, Barriers, Thresholds
from agents.rollout import run_episode

GRID: dict[str, tuple[float, ...]] = {
    "scarce_soc": (0.0, 0.3, 0.4, 0.5, 0.6, 0.8),
    "min_value_density": (2.0, 4.0, 8.0, 12.0, 20.0),
    "eclipse_margin_soc": (-0.1, 0.0, 0.1, 0.2, 0.3),
    "min_soc_after_queue": (0.1, 0.2, 0.3),
    "delivery_margin": (0.0, 0.05, 0.1, 0.2, 0.3),
    "busy_backlog_s": (0.0, 120.0, 600.0, 1800.0, float("inf")),
    "min_value_per_gb": (0.25, 0.5, 1.0, 2.0),
    "base_price": (0.5, 1.0, 2.0, 4.0, 8.0),
    "battery_weight": (0.0, 0.05, 0.2, 0.5, 1.0),
    "min_soc": (-0.1, 0.0, 0.1, 0.2),
    "queue_weight": (0.0, 0.2, 0.5, 1.0),
    "eclipse_weight": (0.0, 0.25, 0.5, 1.0, 2.0),
}
#: per rule: the parameters swept, and where the search starts
TUNABLE: dict[str, tuple[tuple[str, ...], Thresholds | Barriers]] = {
    "value_density": (("scarce_soc", "min_value_density", "min_soc_after_queue"), Thresholds()),
    "eclipse_safe": (
        ("scarce_soc", "min_value_density", "eclipse_margin_soc", "min_soc_after_queue"),
        Thresholds(),
    ),
    "link_aware": (("delivery_margin", "busy_backlog_s", "min_value_per_gb"), TUNED["eclipse_safe"]),
    "marginal_cost": (
        ("base_price", "battery_weight", "min_soc", "queue_weight", "eclipse_weight"),
        TUNED_BARRIERS,
    ),
}
TRAIN_SEEDS_FROM = 0  # train seeds 0, 1, ...; evaluation uses the test split from seed 1000


def mean_return(env: gym.Env, policy_name: str, params: Thresholds | Barriers, seeds: list[int]) -> float:
    """Mean episode return of the rule with ``params`` over ``seeds``."""
    rule = HEURISTICS[policy_name]
    defer_s = defer_s_of(env)
    keyword = "barriers" if isinstance(params, Barriers) else "thresholds"
    returns = [
        run_episode(env, rule(seed=seed, defer_s=defer_s, **{keyword: params}), seed)[0] for seed in seeds
    ]
    return float(np.mean(returns))


def tune(
    env_id: str,
    policy_name: str,
    episodes: int,
    rounds: int,
    from_tuned: bool = False,
    grid: dict[str, tuple[float, ...]] | None = None,
) -> tuple[Thresholds | Barriers, float]:
    """Coordinate search; ``from_tuned`` starts at the shipped values, ``grid`` replaces some grids."""
    env = gym.make(env_id, split="train")
    seeds = list(range(TRAIN_SEEDS_FROM, TRAIN_SEEDS_FROM + episodes))
    params, best = TUNABLE[policy_name]
    grids = {**GRID, **(grid or {})}
    if from_tuned:
        best = TUNED_BARRIERS if policy_name == "marginal_cost" else TUNED[policy_name]
    best_score = mean_return(env, policy_name, best, seeds)
    print(f"start {best} -> {best_score:.1f}")
    for r in range(rounds):
        improved = False
        for name in params:
            for value in tqdm(grids[name], desc=f"round {r + 1} {name}", leave=False):
                if value == getattr(best, name):
                    continue
                trial = dataclasses.replace(best, **{name: value})
                score = mean_return(env, policy_name, trial, seeds)
                if score > best_score:
                    best, best_score, improved = trial, score, True
            print(f"round {r + 1} {name}: {best} -> {best_score:.1f}")
        if not improved:
            break
    return best, best_score


def parse_grid(items: list[str], policy_name: str) -> dict[str, tuple[float, ...]]:
    """``["name=v1,v2", ...]`` -> grids, each name one of the rule's tuned parameters."""
    grids: dict[str, tuple[float, ...]] = {}
    allowed = TUNABLE[policy_name][0]
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or name not in allowed:
            names = ", ".join(allowed)
            raise SystemExit(f"--grid {item!r}: expected NAME=V1,V2,... with NAME one of {names}")
        try:
            grids[name] = tuple(float(v) for v in values.split(","))
        except ValueError:
            raise SystemExit(f"--grid {item!r}: the values must be numbers separated by commas") from None
    return grids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="orbit_env/WalkerLEO-v1")
    parser.add_argument("--policy", default="eclipse_safe", choices=sorted(TUNABLE))
    parser.add_argument("--episodes", type=int, default=4, help="train-split seeds 0..episodes-1")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--from-tuned", action="store_true", help="start at the shipped tuned values")
    parser.add_argument(
        "--grid", action="append", default=[], metavar="NAME=V1,V2", help="replace one parameter's grid"
    )
    args = parser.parse_args(argv)
    grids = parse_grid(args.grid, args.policy)
    start = time.perf_counter()
    best, score = tune(args.env, args.policy, args.episodes, args.rounds, args.from_tuned, grids)
    print(f"best for {args.policy} on {args.env} (train split): {best}, mean return {score:.1f}")
    print(f"took {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
