"""Sweeps over hyperparameters and seeds on Ray Tune; each trial an ordinary train.py run.

    python sweep.py --config sweeps/walker_lr.yml --ray local              # this machine
    python sweep.py --config sweeps/walker_lr.yml --ray auto               # a node of a Ray cluster
    python sweep.py --config sweeps/tiny_smoke.yml --samples 2 --out sweeps_out/smoke

A sweep file (YAML) names the scenario, the fixed train.py options and either a ``search``
space, which Optuna (Ray Tune's ``OptunaSearch``) samples ``samples`` times, or a ``grid``,
every combination of which runs once (an ablation: methods × seeds)::

    env: orbit_env/WalkerLEO-v1
    algo: maskable_ppo
    timesteps: 200000                 # env steps per trial
    seed: 0                           # unless the grid or the search sets it
    args: {eval_freq: 20000, eval_episodes: 3, init_from: eclipse_safe}   # any train.py option
    hyperparams: {n_steps: 1024}      # fixed --hyperparams
    env_kwargs: {}                    # fixed --env-kwargs
    search:                           # or grid: {seed: [0, 1, 2], args.init_from: [null, eclipse_safe]}
      hyperparams.learning_rate: {loguniform: [1.0e-5, 1.0e-3]}
      hyperparams.clip_range: {uniform: [0.1, 0.3]}
      hyperparams.n_epochs: {randint: [5, 20]}       # integers, both ends included
      args.init_from: {choice: [null, eclipse_safe]}
    samples: 8
    early_stop: {grace_steps: 50000, reduction_factor: 3}   # ASHA on the validation return; or false

Keys of ``search`` and ``grid``: ``seed``, ``timesteps``, ``hyperparams.<name>``,
``env_kwargs.<name>`` and ``args.<train.py option>``. A grid may also list ``points``, whole
settings run as they are and crossed with the grid's other keys (an ablation that switches one
method at a time: ``points: [{}, {hyperparams.per_job_credit: true}, ...]``).

Model selection uses the validation split only: every trial validates on ``split="val"``
(train.py's ``--eval-seed`` episodes, 500+), the scheduler stops trials on that return, and the
trials table ranks them by their best validation return. The test seeds (1000+) stay unseen
for ``evaluate.py``.

Outputs in ``--out`` (default ``sweeps_out/<file stem>``): ``runs/<trial>/`` (each a train.py run
folder: config.yml, models, TensorBoard events), ``trials.csv`` and ``trials.md`` (one row per
trial: its settings, steps trained, final and best validation return, status, folder) and
``tune/`` (Ray Tune's own records). Each trial takes one CPU; as many run at once as the
cluster has CPUs (``--max-concurrent`` caps it).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import yaml

ROOT = Path(__file__).resolve().parent
METRIC = "eval/mean_reward"
BEST = "eval/best_mean_reward"
TOP_KEYS = {
    "env", "algo", "timesteps", "seed", "args", "hyperparams", "env_kwargs",
    "search", "grid", "points", "samples", "early_stop", "max_concurrent",
}  # fmt: skip
DISTRIBUTIONS = ("loguniform", "uniform", "randint", "choice")
SEARCHABLE = ("seed", "timesteps")
PATH_ARGS = ("init_from", "resume")  # train.py options that name a file or folder
POINT = "point"  # the grid key of a sweep file's ``points`` (an index into them)
PREFIXES = ("hyperparams.", "env_kwargs.", "args.")
# Options sweep.py sets itself, per trial.
RESERVED_ARGS = {
    "env",
    "algo",
    "timesteps",
    "seed",
    "run_dir",
    "run_name",
    "resume",
    "hyperparams",
    "env_kwargs",
}


class SweepError(ValueError):
    """A bad sweep file or argument, found before any trial starts."""


# -- the sweep file --------------------------------------------------------------------------------
def load_sweep(path: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The sweep file with defaults filled in and every key checked.

    Raises:
        SweepError: unknown keys, a bad distribution, both or neither of search and grid.
    """
    if not path.is_file():
        raise SweepError(f"--config: no sweep file at {path}")
    sweep = yaml.safe_load(path.read_text()) or {}
    if not isinstance(sweep, dict):
        raise SweepError(f"{path}: a sweep file is a mapping (env:, search: or grid:, ...)")
    sweep.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = sorted(set(sweep) - TOP_KEYS)
    if unknown:
        raise SweepError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(TOP_KEYS))}")
    for key in ("args", "hyperparams", "env_kwargs"):
        sweep[key] = dict(sweep.get(key) or {})
    reserved = sorted(set(sweep["args"]) & RESERVED_ARGS)
    if reserved:
        raise SweepError(f"{path}: args may not set {', '.join(reserved)} (top-level keys or set per trial)")
    sweep.setdefault("env", "orbit_env/WalkerLEO-v1")
    sweep.setdefault("algo", "maskable_ppo")
    sweep.setdefault("seed", 0)
    sweep.setdefault("samples", 8)
    sweep.setdefault("early_stop", False)
    points = sweep.get("points")
    if points is not None:
        if not isinstance(points, list) or not points or not all(isinstance(x, dict) for x in points):
            raise SweepError(
                f"{path}: points must be a non-empty list of settings (mappings), got {points!r}"
            )
        if sweep.get("search"):
            raise SweepError(f"{path}: points go with a grid (or alone), not with an Optuna search")
        for point in points:
            for name in point:
                _check_key(path, name)
        sweep["grid"] = {**(sweep.get("grid") or {}), POINT: list(range(len(points)))}
    has_search, has_grid = bool(sweep.get("search")), bool(sweep.get("grid"))
    if has_search == has_grid:
        raise SweepError(
            f"{path}: give exactly one of search (Optuna samples it) and grid (every combination)"
        )
    for name, value in (sweep.get("search") or {}).items():
        _check_key(path, name)
        _check_distribution(path, name, value)
    for name, values in (sweep.get("grid") or {}).items():
        if name != POINT:
            _check_key(path, name)
        if not isinstance(values, list) or not values:
            raise SweepError(f"{path}: grid {name!r} must be a non-empty list of values, got {values!r}")
    if not isinstance(sweep["samples"], int) or sweep["samples"] < 1:
        raise SweepError(f"{path}: samples must be an integer >= 1, got {sweep['samples']!r}")
    stop = sweep["early_stop"]
    if stop not in (False, None) and not (
        isinstance(stop, dict) and set(stop) <= {"grace_steps", "reduction_factor"}
    ):
        raise SweepError(
            f"{path}: early_stop is false or {{grace_steps: N, reduction_factor: R}}, got {stop!r}"
        )
    return sweep


def _check_key(path: Path, name: str) -> None:
    if name in SEARCHABLE or (name.startswith(PREFIXES) and name.split(".", 1)[1]):
        if name.startswith("args.") and name[5:] in RESERVED_ARGS:
            raise SweepError(f"{path}: {name!r}: use the top-level key {name[5:]!r}")
        return
    raise SweepError(
        f"{path}: cannot sweep {name!r}; keys are seed, timesteps, "
        + ", ".join(p + "<name>" for p in PREFIXES)
    )


def _check_distribution(path: Path, name: str, value: Any) -> None:
    if not (isinstance(value, dict) and len(value) == 1 and next(iter(value)) in DISTRIBUTIONS):
        raise SweepError(
            f"{path}: search {name!r} must be one of {{{'|'.join(DISTRIBUTIONS)}: [...]}}, got {value!r}"
        )
    kind, spec = next(iter(value.items()))
    if kind == "choice":
        if not isinstance(spec, list) or not spec:
            raise SweepError(f"{path}: search {name!r}: choice takes a non-empty list")
        return
    if not (isinstance(spec, list) and len(spec) == 2 and all(isinstance(x, int | float) for x in spec)):
        raise SweepError(f"{path}: search {name!r}: {kind} takes [low, high], got {spec!r}")
    low, high = spec
    if not low < high or (kind == "loguniform" and low <= 0):
        raise SweepError(
            f"{path}: search {name!r}: {kind} needs 0 < low < high (low > 0 for loguniform), got {spec}"
        )


def tune_space(sweep: dict[str, Any]) -> dict[str, Any]:
    """The Ray Tune parameter space of the search or grid."""
    from ray import tune

    if sweep.get("grid"):
        return {name: tune.grid_search(values) for name, values in sweep["grid"].items()}
    make = {
        "loguniform": lambda s: tune.loguniform(*s),
        "uniform": lambda s: tune.uniform(*s),
        "randint": lambda s: tune.randint(s[0], s[1] + 1),
        "choice": tune.choice,
    }
    return {name: make[kind](spec) for name, value in sweep["search"].items() for kind, spec in value.items()}


def trial_argv(
    sweep: dict[str, Any], params: dict[str, Any], run_dir: Path, run_name: str, base_dir: Path | None = None
) -> list[str]:
    """train.py's command line for one trial: the sweep's fixed settings with ``params`` on top.

    A relative model path in ``args.init_from`` or ``args.resume`` is taken from ``base_dir`` (the
    folder the sweep was started in; Ray runs each trial in a folder of its own).
    """
    if POINT in params:
        params = {**sweep["points"][params[POINT]], **{k: v for k, v in params.items() if k != POINT}}
    settings = {"seed": sweep["seed"], "timesteps": sweep.get("timesteps")}
    groups = {
        "args": dict(sweep["args"]),
        "hyperparams": dict(sweep["hyperparams"]),
        "env_kwargs": dict(sweep["env_kwargs"]),
    }
    for name, value in params.items():
        if name in SEARCHABLE:
            settings[name] = value
        else:
            group, key = name.split(".", 1)
            groups[group][key] = value
    argv = ["--env", str(sweep["env"]), "--algo", str(sweep["algo"]), "--seed", str(settings["seed"])]
    if settings["timesteps"] is not None:
        argv += ["--timesteps", str(int(settings["timesteps"]))]
    argv += ["--run-dir", str(run_dir), "--run-name", run_name, "--no-progress"]
    for key, value in groups["args"].items():
        flag = "--" + key.replace("_", "-")
        if key in PATH_ARGS and isinstance(value, str) and base_dir is not None and _looks_like_path(value):
            value = str(base_dir / value)
        if value is True:
            argv.append(flag)
        elif value is not None and value is not False:  # 0 is a value (e.g. checkpoint_freq: 0)
            argv += [flag, str(value)]
    for group in ("hyperparams", "env_kwargs"):
        if groups[group]:
            argv += ["--" + group.replace("_", "-"), *(f"{k}={_text(v)}" for k, v in groups[group].items())]
    return argv


def _looks_like_path(value: str) -> bool:
    return not Path(value).is_absolute() and (value.endswith(".zip") or "/" in value)


def _text(value: Any) -> str:
    """A value as train.py's ``key=value`` parser reads it back (``None`` is ``null``)."""
    if value is None:
        return "null"
    return repr(value) if isinstance(value, float) else str(value)


def example_points(sweep: dict[str, Any]) -> list[dict[str, Any]]:
    """Settings to check before the sweep starts: every grid combination, or each search key's ends."""
    if sweep.get("grid"):
        names = list(sweep["grid"])
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*sweep["grid"].values())]
    points = [{}]
    for name, value in sweep["search"].items():
        kind, spec = next(iter(value.items()))
        values = spec if kind == "choice" else [spec[0], spec[1]]
        points += [{name: v} for v in values]
    return points


def check_trials(sweep: dict[str, Any], out: Path) -> None:
    """Parse and check train.py's arguments for example settings, so a typo fails before Ray starts."""
    sys.path.insert(0, str(ROOT))
    import train
    from agents import rl

    for params in example_points(sweep):
        argv = trial_argv(sweep, params, out / "runs", "check")
        try:
            with mock.patch.object(argparse.ArgumentParser, "error", _raise_bad_arguments):
                args = train.parse_args(argv)
            env_id, _, overrides = train.check_arguments(args)
            rl.load_hyperparams(args.algo, env_id, overrides, finetune=args.init_from is not None)
        except (ValueError, FileNotFoundError, _BadArguments, SystemExit) as err:
            text = str(err) or "bad train.py arguments"
            raise SweepError(f"trial settings {params or '(the fixed ones)'}: {text}") from None


class _BadArguments(Exception):
    """train.py's argparse error, raised instead of printing the usage and exiting."""


def _raise_bad_arguments(parser: argparse.ArgumentParser, message: str) -> None:
    raise _BadArguments(message)


# -- one trial (runs in a Ray worker) --------------------------------------------------------------
def run_trial(config: dict[str, Any], sweep: dict[str, Any], runs_dir: str, base_dir: str) -> None:
    """Ray Tune's trainable: one train.py run, reporting each validation to Tune."""
    sys.path.insert(0, str(ROOT))
    import torch
    from ray import tune

    import train

    torch.set_num_threads(1)
    name = tune.get_context().get_trial_name()
    argv = trial_argv(sweep, config, Path(runs_dir), name, Path(base_dir))

    def report(step: int, values: dict[str, float]) -> None:
        tune.report({"timesteps": step, **values})

    train.main(argv, on_validation=report)


# -- the sweep -------------------------------------------------------------------------------------------
def run_sweep(
    sweep: dict[str, Any],
    out: Path,
    ray_address: str = "local",
    max_concurrent: int | None = None,
    verbose: int = 1,
) -> list[dict[str, Any]]:
    """Run every trial on Ray Tune; write and return the trials table (best validation first)."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    from agents.parallel import connect_ray

    out = out.resolve()
    (out / "runs").mkdir(parents=True, exist_ok=True)
    connect_ray(ray_address)
    timesteps = int(sweep.get("timesteps") or 1_000_000)
    stop = sweep["early_stop"]
    scheduler = (
        ASHAScheduler(
            time_attr="timesteps",
            max_t=timesteps,
            grace_period=int(stop.get("grace_steps", timesteps // 4)),
            reduction_factor=float(stop.get("reduction_factor", 3)),
        )
        if stop
        else FIFOScheduler()
    )
    grid = bool(sweep.get("grid"))
    searcher = None if grid else OptunaSearch(seed=int(sweep["seed"]))
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, sweep=sweep, runs_dir=str(out / "runs"), base_dir=str(Path.cwd())),
        {"cpu": 1},
    )
    tuner = tune.Tuner(
        trainable,
        param_space=tune_space(sweep),
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=1 if grid else int(sweep["samples"]),
            max_concurrent_trials=max_concurrent or sweep.get("max_concurrent"),
            trial_name_creator=lambda trial: f"trial_{trial.trial_id}",
            trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}",
        ),
        run_config=tune.RunConfig(name="tune", storage_path=str(out), verbose=verbose),
    )
    grid_results = tuner.fit()
    rows = trials_table(grid_results, sweep, out)
    write_table(rows, out)
    return rows


def trials_table(grid_results: Any, sweep: dict[str, Any], out: Path) -> list[dict[str, Any]]:
    """One row per trial: settings, steps, final and best validation return, status, run folder."""
    timesteps = int(sweep.get("timesteps") or 0)
    names = [n for n in (sweep.get("grid") or sweep.get("search")) if n != POINT]
    point_keys = list(dict.fromkeys(k for point in sweep.get("points") or [] for k in point))
    rows = []
    for result in grid_results:
        metrics = result.metrics or {}
        trial = metrics.get("trial_id") or Path(result.path).name.removeprefix("trial_")
        steps = metrics.get("timesteps")
        if result.error is not None:
            status = f"error: {type(result.error).__name__}"
        elif steps is not None and timesteps and steps < timesteps:
            status = "stopped early"
        else:
            status = "done"
        rows.append(
            {
                "trial": f"trial_{trial}",
                **{name: result.config.get(name) for name in names},
                **_point_settings(sweep, result.config, point_keys),
                "steps": steps,
                "final_val_return": metrics.get(METRIC),
                "best_val_return": metrics.get(BEST),
                "status": status,
                "run_folder": str(out / "runs" / f"trial_{trial}"),
            }
        )
    rows.sort(key=lambda r: -_number(r["best_val_return"]))
    return rows


def _point_settings(sweep: dict[str, Any], config: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """A trial's settings from its ``points`` entry, one column per key any point sets."""
    if POINT not in config:
        return {}
    point = sweep["points"][config[POINT]]
    return {key: point.get(key, "—") for key in keys}


def _number(x: Any) -> float:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else -math.inf


def write_table(rows: list[dict[str, Any]], out: Path) -> str:
    """``trials.csv`` and ``trials.md`` in ``out``; the Markdown."""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with (out / "trials.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}" if abs(v) < 1e-2 or abs(v) >= 1e5 else f"{v:.2f}"
        return "—" if v is None else str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    lines += [
        "",
        "Ranked by best validation return (split val, train.py's --eval-seed episodes); test seeds unseen.",
    ]
    text = "\n".join(lines)
    (out / "trials.md").write_text(text + "\n")
    return text


# -- command line ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sweep.py", description="Hyperparameter and seed sweeps of train.py on Ray Tune."
    )
    p.add_argument("--config", required=True, help="sweep file (YAML), e.g. sweeps/walker_lr.yml")
    p.add_argument("--env", default=None, help="env id (overrides the file's)")
    p.add_argument("--samples", type=int, default=None, help="Optuna trials (overrides the file's)")
    p.add_argument("--timesteps", type=int, default=None, help="env steps per trial (overrides the file's)")
    p.add_argument("--out", default=None, help="output folder (default sweeps_out/<file stem>)")
    p.add_argument(
        "--ray",
        default="local",
        metavar="ADDRESS",
        help="'local' (start Ray here), 'auto' or a cluster address",
    )
    p.add_argument("--max-concurrent", type=int, default=None, help="trials at once (default: one per CPU)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    path = Path(args.config)
    out = Path(args.out) if args.out else Path("sweeps_out") / path.stem
    try:
        overrides = {"env": args.env, "samples": args.samples, "timesteps": args.timesteps}
        sweep = load_sweep(path, overrides)
        check_trials(sweep, out)
        if args.max_concurrent is not None and args.max_concurrent < 1:
            raise SweepError(f"--max-concurrent must be >= 1, got {args.max_concurrent}")
        try:
            import optuna  # noqa: F401

            from agents.parallel import connect_ray

            connect_ray(args.ray)
        except ImportError:
            raise SweepError('sweep.py needs Ray Tune and Optuna: pip install -e ".[ray]"') from None
        except ConnectionError as err:
            raise SweepError(f"--ray: {err}") from None
    except SweepError as err:
        print(f"sweep.py: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    rows = run_sweep(sweep, out, args.ray, args.max_concurrent)
    print(write_table(rows, out.resolve()))
    print(f"\nwrote {out}/trials.{{csv,md}}; run folders in {out}/runs/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
