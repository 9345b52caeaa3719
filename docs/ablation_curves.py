"""Validation curves of several train.py runs on one figure (an ablation), with rliable intervals.

Usage::

    python docs/ablation_curves.py sweeps_out/credit_ablation [RUN ...] [--baseline NAME=11186 ...]
        [--out docs/img/credit_ablation.png] [--table]

Each argument is a run folder (``evaluations.npz``, ``config.yml``) or a folder holding run
folders (a sweep's ``runs/``). Each run is drawn at every validation: the interquartile mean
of its validation episodes with a 95 % stratified-bootstrap interval (``rliable``; Agarwal et
al., "Deep RL at the Edge of the Statistical Precipice", NeurIPS 2021). The label is what the
run switched on: its start (clone or scratch) and its credit and guard hyperparameters.
``--table`` prints one Markdown row per run: best and final validation IQM with intervals.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import yaml

SWITCHES = {
    "time_constant_h": "τ={}h",
    "per_job_credit": "per-job",
    "lagged_credit": "lagged",
    "shared_stream": "shared×{}",
    "clone_kl_coef": "guard β={}",
}


def run_folders(paths: list[str]) -> list[Path]:
    """Run folders under ``paths`` (a run folder itself, or any folder holding some)."""
    found: list[Path] = []
    for text in paths:
        path = Path(text)
        if not path.exists():
            raise SystemExit(f"ablation_curves: no folder {path}")
        runs = (
            [path]
            if (path / "evaluations.npz").is_file()
            else sorted(p.parent for p in path.rglob("evaluations.npz"))
        )
        if not runs:
            raise SystemExit(f"ablation_curves: no evaluations.npz under {path} (run with --eval-freq > 0)")
        found += runs
    return found


def label(run: Path) -> str:
    """What the run switched on, from its config.yml: e.g. ``clone · τ=3.0h · per-job``."""
    config = yaml.safe_load((run / "config.yml").read_text())
    start = "clone" if (config.get("args") or {}).get("init_from") else "scratch"
    hyper = config.get("hyperparams") or {}
    off = {None, False}
    on = {k: v for k, v in hyper.items() if k in SWITCHES and v not in off and (k, v) != ("shared_stream", 1)}
    parts = [fmt.format(on[key]) for key, fmt in SWITCHES.items() if key in on]
    return " · ".join([start, *parts]) if parts else f"{start} · current recipe"


def iqm_intervals(returns: np.ndarray, reps: int = 2000, seed: int = 0) -> np.ndarray:
    """IQM and 95 % interval of each row of ``returns [evals, episodes]`` → ``[evals, 3]``."""
    from rliable import library as rly
    from rliable import metrics

    out = np.empty((len(returns), 3))
    for i, row in enumerate(returns):
        # one training run: its episodes are the samples the bootstrap draws (rliable's runs axis)
        scores = {"run": np.asarray(row, dtype=float)[:, None]}
        with warnings.catch_warnings():  # arch >= 7 deprecates the random_state rliable passes
            warnings.simplefilter("ignore", FutureWarning)
            point, interval = rly.get_interval_estimates(
                scores, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=reps,
                random_state=np.random.RandomState(seed),
            )  # fmt: skip
        out[i] = point["run"][0], interval["run"][0, 0], interval["run"][1, 0]
    return out


def curves(runs: list[Path]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(label, steps [E], IQM with interval [E, 3]) per run."""
    out = []
    for run in runs:
        data = np.load(run / "evaluations.npz")
        steps, returns = np.asarray(data["timesteps"]), np.asarray(data["results"], dtype=float)
        out.append((label(run), steps, iqm_intervals(returns)))
    return out


def _cell(stat: np.ndarray, step: int) -> str:
    return f"{stat[0]:,.0f} [{stat[1]:,.0f}, {stat[2]:,.0f}] ({int(step):,})"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="run folders, or folders holding them")
    parser.add_argument("--baseline", action="append", default=[], help="NAME=return on the same episodes")
    parser.add_argument("--out", default=None, help="PNG to write (none: no figure)")
    parser.add_argument("--title", default="Validation return (IQM, 95 % interval)")
    parser.add_argument("--table", action="store_true", help="print best and final IQM per run")
    args = parser.parse_args(argv)
    rows = curves(run_folders(args.paths))
    if args.table:
        print("| run | best val IQM [95 % CI] (step) | final val IQM [95 % CI] (step) |")
        print("|---|---|---|")
        for name, steps, stats in sorted(rows, key=lambda r: -r[2][:, 0].max()):
            b = int(np.argmax(stats[:, 0]))
            best, final = _cell(stats[b], steps[b]), _cell(stats[-1], steps[-1])
            print(f"| {name} | {best} | {final} |")
    if args.out:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(9, 5.5))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for name, steps, stats in rows:
            (line,) = ax.plot(steps, stats[:, 0], marker="o", ms=3, label=name)
            ax.fill_between(steps, stats[:, 1], stats[:, 2], color=line.get_color(), alpha=0.12)
        for spec in args.baseline:
            name, _, value = spec.rpartition("=")
            ax.axhline(float(value), ls="--", color="k", lw=1)
            ax.annotate(name or "baseline", (0, float(value)), xycoords=("axes fraction", "data"),
                        xytext=(4, 3), textcoords="offset points", fontsize=8)  # fmt: skip
        ax.set_xlabel("environment steps")
        ax.set_ylabel("validation return")
        ax.set_title(args.title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
        fig.tight_layout()
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.out, dpi=120)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
