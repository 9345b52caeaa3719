"""Combine evaluate.py outputs into the README's results table (one column per scenario).

Usage: ``python docs/results_table.py results/Tiny-v1 results/WalkerLEO-v1 results/WalkerLEO-v1-model ...``

Folders of the same env are merged (they must share seeds and split; a policy measured in more
than one folder takes the later folder's numbers, e.g. a rule re-run after tuning); saved
models (``*.zip``) share one row, "trained maskable_ppo".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def cell(metric: dict) -> str:
    lo, hi = metric["ci95"]
    return f"{metric['mean']:.0f} [{lo:.0f}, {hi:.0f}]"


MODEL_ROW = "trained maskable_ppo"


def label(policy: str) -> str:
    """A row label: saved models (``*.zip``) share one row, the trained policy of each scenario."""
    return MODEL_ROW if policy.endswith(".zip") else policy


def merged(folders: list[str]) -> dict[str, dict]:
    """env id -> results, folders of the same env merged (same seeds required: comparisons are paired)."""
    out: dict[str, dict] = {}
    for folder in folders:
        run = json.loads((Path(folder) / "results.json").read_text())
        policies = {label(p): m for p, m in run["policies"].items()}
        if run["env"] not in out:
            out[run["env"]] = dict(run, policies=policies)
            continue
        first = out[run["env"]]
        if run["seeds"] != first["seeds"] or run["split"] != first["split"]:
            raise SystemExit(f"{folder}: other seeds or split than the first {run['env']} folder")
        for name, metrics in policies.items():
            first["policies"][name] = metrics
    return out


def main(folders: list[str]) -> str:
    runs = list(merged(folders).values())
    names = [r["env"].split("/")[-1] for r in runs]
    policies = list(dict.fromkeys(p for r in runs for p in r["policies"] if p != "ceiling"))
    policies = [p for p in policies if p != MODEL_ROW] + [MODEL_ROW, "ceiling"]
    lines = [
        "| policy | " + " | ".join(f"{n} return [95 % CI] · brownouts" for n in names) + " |",
        "|---|" + "---|" * len(runs),
    ]
    for policy in policies:
        if not any(policy in run["policies"] for run in runs):
            continue  # e.g. no trained model measured in these folders
        cells = []
        for run in runs:
            m = run["policies"].get(policy)
            if m is None:
                cells.append("—")
                continue
            brown = m.get("brownouts")
            cells.append(cell(m["return"]) + (f" · {brown['mean']:.1f}" if brown else ""))
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    heads = []
    for name, run in zip(names, runs, strict=True):
        pol = run["policies"]
        rules = [p for p in pol if p not in ("ceiling", MODEL_ROW)]
        best = max(rules, key=lambda p: pol[p]["return"]["mean"])
        if "ceiling" in pol:
            ceiling = pol["ceiling"]["return"]["mean"]
            room = (ceiling - pol[best]["return"]["mean"]) / abs(ceiling)
            heads.append(f"{name}: best heuristic `{best}`, headroom (ceiling − best) / ceiling = {room:.1%}")
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {h}" for h in heads)


if __name__ == "__main__":
    print(main(sys.argv[1:]))
