"""Draw a training run's learning curve from its TensorBoard event files.

Usage::

    python docs/learning_curve.py runs/X [--out docs/img/learning_curve.png] [--baseline [NAME=]8078 ...]
        [--validation results/X-val ...]

Top: validation return (``eval/mean_reward`` ± ``eval/std_reward``) and the training episodes'
return (``episode/return``; older runs: SB3's ``rollout/ep_rew_mean``, a mean over the last 100
episodes, i.e. a running mean on long episodes) against environment steps, with an optional
horizontal line for a baseline measured on the same validation seeds. Bottom: brownouts per episode.

``--validation`` adds checkpoints scored afterwards by ``evaluate.py`` (for a run trained with
``--eval-freq 0``), e.g. ``python evaluate.py --split test --seed 500 --episodes 8 --policies
value_density,runs/X/bc_model.zip,runs/X/checkpoints/rl_model_800000_steps.zip --out
results/X-val``: each model is drawn at its step count (``bc_model.zip`` at 0) with its 95 %
interval, and each heuristic in the same file as a baseline.
"""

from __future__ import annotations

import argparse
import json
import re
import zipfile
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def scalars(run: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """tag -> (steps, values) from every event file of ``run``."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for path in sorted(run.rglob("events.out.tfevents*")):
        acc = EventAccumulator(str(path))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            steps, values = out.setdefault(tag, ([], []))
            for event in acc.Scalars(tag):
                steps.append(event.step)
                values.append(event.value)
    return {tag: (np.asarray(s), np.asarray(v)) for tag, (s, v) in out.items()}


def model_step(spec: str) -> int | None:
    """Environment steps behind a model path of ``evaluate.py`` (None: not a model)."""
    path = Path(spec.partition(":")[2] if ":" in spec and not Path(spec).exists() else spec)
    if path.name == "bc_model.zip":
        return 0
    if match := re.search(r"_(\d+)_steps\.zip$", path.name):
        return int(match.group(1))
    if path.suffix == ".zip" and path.is_file():
        with zipfile.ZipFile(path) as archive:
            return int(json.loads(archive.read("data")).get("num_timesteps", 0))
    return None


def validation_points(
    results: Path,
) -> tuple[list[tuple[int, float, float, float, float]], list[tuple[str, float]], int]:
    """(step, mean, ci low, ci high, brownouts) per model, (name, mean) per heuristic, episodes."""
    path = results / "results.json" if results.is_dir() else results
    data = json.loads(path.read_text())
    points, baselines = [], []
    for name, row in data["policies"].items():
        if name == "ceiling":
            continue
        step = model_step(name)
        mean = row["return"]["mean"]
        if step is None:
            baselines.append((name, mean))
        else:
            low, high = row["return"]["ci95"]
            points.append((step, mean, low, high, row["brownouts"]["mean"]))
    return sorted(points), baselines, int(data["episodes"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", type=Path, help="run folder written by train.py")
    parser.add_argument("--out", type=Path, default=Path("docs/img/learning_curve.png"))
    parser.add_argument(
        "--baseline",
        action="append",
        default=[],
        metavar="[NAME=]RETURN",
        help="a baseline's mean return on the validation seeds (repeatable; NAME defaults to "
        "--baseline-name)",
    )
    parser.add_argument("--baseline-name", default="eclipse_safe")
    parser.add_argument(
        "--validation",
        action="append",
        default=[],
        type=Path,
        metavar="RESULTS",
        help="evaluate.py output (folder or results.json) scoring this run's checkpoints (repeatable)",
    )
    args = parser.parse_args(argv)
    baselines = []
    for item in args.baseline:
        name, sep, value = item.rpartition("=")
        try:
            baselines.append((name if sep else args.baseline_name, float(value)))
        except ValueError:
            parser.error(f"--baseline expects [NAME=]RETURN, got {item!r}")
    data = scalars(args.run)
    fig = Figure(figsize=(9, 6.5), constrained_layout=True)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True)
    if "eval/mean_reward" in data:
        steps, mean = data["eval/mean_reward"]
        std = data.get("eval/std_reward", (steps, np.zeros_like(mean)))[1]
        top.errorbar(
            steps, mean, yerr=std, marker="o", capsize=3, label="validation return (test-split days)"
        )
    # Checkpoints scored by evaluate.py: one series per number of episodes (files may split a run).
    series: dict[int, list] = {}
    for results in args.validation:
        points, heuristics, episodes = validation_points(results)
        baselines += [h for h in heuristics if h[0] not in {b[0] for b in baselines}]
        series.setdefault(episodes, []).extend(points)
    for episodes, points in series.items():
        if points:
            step, mean, low, high, brown = (np.asarray(c) for c in zip(*sorted(points), strict=True))
            label = f"checkpoints, {episodes} validation episodes (95 % CI)"
            top.errorbar(step, mean, yerr=[mean - low, high - mean], marker="s", capsize=3, label=label)
            bottom.plot(step, brown, marker="s", label=f"checkpoints ({episodes} validation episodes)")
    if "episode/return" in data:  # episodes finished since the previous log
        top.plot(*data["episode/return"], alpha=0.6, label="training episodes (train split)")
    elif "rollout/ep_rew_mean" in data:
        label = "training episodes, mean of the last 100 (train split)"
        top.plot(*data["rollout/ep_rew_mean"], alpha=0.6, label=label)
    for (name, value), style in zip(baselines, ("--", ":", "-."), strict=False):
        top.axhline(value, color="k", linestyle=style, label=f"{name}, same validation seeds")
    top.set_ylabel("episode return")
    top.legend(loc="lower right", fontsize=8)
    top.grid(alpha=0.3)
    for tag, label in (("eval/brownouts", "validation"), ("episode/brownouts", "training episodes")):
        if tag in data:
            bottom.plot(*data[tag], marker="o" if tag.startswith("eval") else None, label=label)
    bottom.set_ylabel("brownouts per episode")
    bottom.set_xlabel("environment steps (decisions)")
    bottom.legend(fontsize=8)
    bottom.grid(alpha=0.3)
    fig.suptitle(f"learning curve: {args.run.name}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
