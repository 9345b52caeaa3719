"""Combine evaluate.py outputs into the README's results table (one column per scenario).

Usage: ``python docs/results_table.py results/Tiny-v0 results/WalkerLEO-v0 ...``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def cell(metric: dict) -> str:
    lo, hi = metric["ci95"]
    return f"{metric['mean']:.0f} [{lo:.0f}, {hi:.0f}]"


def main(folders: list[str]) -> str:
    runs = [json.loads((Path(f) / "results.json").read_text()) for f in folders]
    names = [r["env"].split("/")[-1] for r in runs]
    policies = list(runs[0]["policies"])
    lines = [
        "| policy | " + " | ".join(f"{n} return [95 % CI] · brownouts" for n in names) + " |",
        "|---|" + "---|" * len(runs),
    ]
    for policy in policies:
        cells = []
        for run in runs:
            m = run["policies"].get(policy)
            if m is None:
                cells.append("")
                continue
            brown = m.get("brownouts")
            cells.append(cell(m["return"]) + (f" · {brown['mean']:.1f}" if brown else ""))
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    heads = []
    for name, run in zip(names, runs, strict=True):
        pol = run["policies"]
        best = max((p for p in pol if p != "ceiling"), key=lambda p: pol[p]["return"]["mean"])
        if "ceiling" in pol:
            ceiling = pol["ceiling"]["return"]["mean"]
            room = (ceiling - pol[best]["return"]["mean"]) / abs(ceiling)
            heads.append(f"{name}: best heuristic `{best}`, headroom (ceiling − best) / ceiling = {room:.1%}")
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {h}" for h in heads)


if __name__ == "__main__":
    print(main(sys.argv[1:]))
