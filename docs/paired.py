"""Paired comparisons from evaluate.py results: every policy against one, seed by seed.

Usage::

    python docs/paired.py results/WalkerLEO-v1-lagged [results/WalkerLEO-v1 ...] --against link_aware

Folders of one env with the same seeds are merged (a policy in several takes the later one).
For each policy: its mean return, the mean per-seed difference to ``--against`` with a 95 %
bootstrap interval (2,000 resamples of the per-seed differences, generator seed 0), the
difference in percent of the reference's mean, and on how many seeds it is ahead.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def load(folders: list[str]) -> tuple[list[int], dict[str, np.ndarray]]:
    """Seeds and per-seed returns of every policy (ceiling excluded)."""
    seeds: list[int] | None = None
    returns: dict[str, np.ndarray] = {}
    for folder in folders:
        path = Path(folder) / "results.json" if Path(folder).is_dir() else Path(folder)
        data = json.loads(path.read_text())
        if seeds is not None and list(data["seeds"]) != seeds:
            raise SystemExit(f"paired: {path} has other seeds than the folders before it")
        seeds = list(data["seeds"])
        for name, row in data["policies"].items():
            if name != "ceiling":
                returns[name] = np.asarray(row["return"]["values"], dtype=float)
    return seeds or [], returns


def paired(diff: np.ndarray, reps: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``diff`` and its 95 % bootstrap interval."""
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, (reps, diff.size))].mean(axis=1)
    return float(diff.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--against", required=True, help="the reference policy (e.g. the best baseline)")
    args = parser.parse_args(argv)
    seeds, returns = load(args.folders)
    if args.against not in returns:
        raise SystemExit(f"paired: no policy {args.against!r} in {', '.join(returns)}")
    ref = returns[args.against]
    lines = [
        f"{len(seeds)} seeds {seeds[0]}–{seeds[-1]}, each policy minus {args.against} ({ref.mean():,.0f})",
        "| policy | return | paired difference [95 % CI] | % | seeds ahead |",
        "|---|---|---|---|---|",
    ]
    for name, values in returns.items():
        if name == args.against:
            continue
        mean, lo, hi = paired(values - ref)
        ahead = int((values > ref).sum())
        lines.append(
            f"| {name} | {values.mean():,.0f} | {mean:+,.0f} [{lo:+,.0f}, {hi:+,.0f}] | "
            f"{100 * mean / ref.mean():+.1f} | {ahead}/{len(values)} |"
        )
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    main()
