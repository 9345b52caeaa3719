"""Evaluate placement policies on the same episodes (design §7).

    python evaluate.py --env orbit_env/WalkerLEO-v1 \\
        --policies random,earliest_finish,eclipse_safe,runs/X/best_model.zip \\
        --episodes 20 --seed 1000 --out results/

    python evaluate.py --env orbit_env/SuncatcherEclipse-v1 --workers 2     # two local processes
    python evaluate.py --env orbit_env/SuncatcherEclipse-v1 --ray auto      # a Ray cluster's CPUs

Episode i of every policy uses seed S + i, so all policies face the same epochs and job
streams. Every (policy, episode) pair, and the ceiling of each episode, is one task
(``agents.episodes``); ``--workers``/``--ray`` spread the tasks over processes or Ray actors
(``agents.parallel``) with the same results as one process, and a worker that dies has its
task played again, with a warning naming the policy and episode. Each policy is run to the
end of each episode; its return and every ``info["episode_metrics"]`` entry are recorded.
The offline ceiling (``agents.ceiling``, an upper bound on any policy's return) is solved
once per episode. Outputs in ``--out``:

* ``results.json``: ``{"env", "episodes", "seed", "split", "env_kwargs", "policies": {name:
  {metric: {"mean", "ci95": [lo, hi], "values": [...]}}}, ...}``; 95 % bootstrap intervals of
  the mean (2000 resamples, fixed generator), plus the ceiling statuses and one episode's traces.
* ``results.csv``: one row per policy and episode.
* ``results.md``: the summary table, the normalised score (R - R_random) / (R_best - R_random)
  and the ceiling's headroom over the best heuristic.
* ``metrics.png`` (bars with intervals) and ``traces.png`` (battery charge and jobs over time
  of one episode for two policies).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import pickle
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from tqdm import tqdm

import orbit_env  # noqa: F401  (registers the orbit_env/* ids)
from agents import episodes, parallel, rollout
from agents.base import Policy
from agents.registry import POLICY_NAMES, make_policy
from orbit_env.config import SPLITS, parse_overrides

DEFAULT_ENV = "orbit_env/WalkerLEO-v1"
CEILING = episodes.CEILING
N_BOOTSTRAP = 2000
BOOTSTRAP_SEED = 0
PLOT_METRICS = ("return", "on_time_value_rate", "brownouts", "accelerator_utilization")


class SetupError(ValueError):
    """Bad input found before any episode runs; the CLI prints it as one line and exits 2."""


# -- arguments -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate.py",
        description="Run placement policies on the same seeds; write JSON, CSV, Markdown and plots.",
    )
    parser.add_argument(
        "--env", default=DEFAULT_ENV, help="env id, with or without the orbit_env/ prefix (%(default)s)"
    )
    parser.add_argument(
        "--policies",
        default=",".join(POLICY_NAMES),
        help="comma-separated heuristic names and/or model .zip paths (optionally algo:path, algo in "
        "maskable_ppo, ppo, a2c, dqn); default: every heuristic",
    )
    parser.add_argument("--episodes", type=int, default=20, help="episodes per policy (%(default)s)")
    parser.add_argument("--seed", type=int, default=1000, help="episode i uses seed SEED + i (%(default)s)")
    parser.add_argument("--split", default="test", choices=SPLITS, help="epoch split (%(default)s)")
    parser.add_argument("--out", default="results", help="output folder (%(default)s)")
    parser.add_argument(
        "--env-kwargs",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides passed to gymnasium.make (values parsed as int, float, bool or str), "
        "e.g. battery_wh=1000 load=1.2",
    )
    parser.add_argument("--no-ceiling", action="store_true", help="skip the offline ceiling (LP per episode)")
    parser.add_argument(
        "--ceiling-time-limit",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="solver time limit per episode for the ceiling (%(default)s)",
    )
    parser.add_argument("--no-plots", action="store_true", help="do not write metrics.png and traces.png")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="play episodes (and the ceiling's LPs) in N local processes, or on N Ray actors with --ray "
        "(default 1; with --ray, one per CPU of the cluster); results are identical to a serial run",
    )
    parser.add_argument(
        "--ray",
        default=None,
        metavar="ADDRESS",
        help="run the episodes on a Ray cluster: 'local' starts Ray on this machine, 'auto' joins the "
        "cluster this node belongs to, or give the head's address (needs the [ray] extra)",
    )
    parser.add_argument(
        "--stochastic",
        action="store_true",
        help="models sample their actions instead of taking the most likely one (torch seeded with "
        "each episode's seed; heuristics are unaffected)",
    )
    parser.add_argument(
        "--trace-episode", type=int, default=0, help="episode whose battery and queue traces are plotted (0)"
    )
    return parser


def parse_env_kwargs(items: Sequence[str]) -> dict[str, Any]:
    """``["battery_wh=1000", "epoch=2026-12-21T00:00:00Z"]`` -> typed dict (see ``parse_overrides``)."""
    try:
        return parse_overrides(items)
    except ValueError as err:
        raise SetupError(f"--env-kwargs: {err}") from None


def resolve_env_id(env_id: str) -> str:
    """The registered id for ``env_id``, which may omit the ``orbit_env/`` prefix."""
    try:
        return rollout.resolve_env_id(env_id)
    except ValueError as err:
        raise SetupError(str(err)) from None


def _load_ceiling():
    try:
        from agents.ceiling import ceiling
    except ImportError as err:
        warnings.warn(f"no ceiling row: agents.ceiling cannot be imported ({err})", stacklevel=3)
        return None
    return ceiling


def _policy_specs(policies: Sequence[str] | Mapping[str, str | Policy]) -> dict[str, str | Policy]:
    if isinstance(policies, str):
        policies = [p for p in policies.split(",") if p.strip()]
    if isinstance(policies, Mapping):
        specs = dict(policies)
    else:
        specs = {}
        for spec in policies:
            name = str(spec).strip()
            if name in specs:
                raise SetupError(f"policy {name!r} is given twice")
            specs[name] = name
    if not specs:
        raise SetupError("no policies given")
    if CEILING in specs:
        raise SetupError(f"{CEILING!r} is the name of the offline bound's row, not a policy")
    return specs


def evaluate(
    env_id: str = DEFAULT_ENV,
    policies: Sequence[str] | Mapping[str, str | Policy] = POLICY_NAMES,
    episodes: int = 20,
    seed: int = 1000,
    split: str = "test",
    env_kwargs: Mapping[str, Any] | None = None,
    ceiling: bool = True,
    progress: bool = True,
    trace_episode: int = 0,
    ceiling_time_limit_s: float = 60.0,
    workers: int = 1,
    ray_address: str | None = None,
    deterministic: bool = True,
) -> dict[str, Any]:
    """Run every policy on episodes with seeds ``seed, seed + 1, ...``; the results dict.

    Args:
        env_id: gymnasium id, with or without the ``orbit_env/`` prefix.
        policies: heuristic names / model paths (``make_policy`` specs), or a mapping from row
            name to a spec or a ready :class:`~agents.base.Policy`.
        episodes: episodes per policy.
        seed: seed of episode 0.
        split: ``"train"``, ``"val"`` or ``"test"`` epochs.
        env_kwargs: config overrides for ``gymnasium.make``.
        ceiling: solve the offline ceiling per episode (skipped with a warning if unavailable).
        progress: show a tqdm bar.
        trace_episode: episode whose per-step battery and queue traces are recorded.
        ceiling_time_limit_s: solver time limit per episode [s].
        workers: local worker processes (1: play here), or Ray actors with ``ray_address``
            (0: one per CPU of the cluster). The results do not depend on it: heuristics are
            made afresh per episode and models predict deterministically. (Two things can
            differ between any two runs, parallel or not: a policy object passed in that keeps
            state from one episode to the next, and a ceiling LP that hits its time limit and
            falls back to a coarser bound, or skips its on-time-value LP.)
        ray_address: ``"local"``, ``"auto"`` or a Ray cluster address; ``None`` for no Ray.
        deterministic: ``False``: models sample their actions (SB3's ``deterministic=False``),
            torch seeded with each episode's seed, so the samples too do not depend on the
            worker; heuristics are unaffected.

    Returns:
        ``{"env", "episodes", "seed", "seeds", "split", "env_kwargs", "policies": {name: {metric:
        {"mean", "ci95", "values"}}}, "kinds": {name: "heuristic" | "model" | "policy" |
        "ceiling"}, "ceiling_status": [...] | None, "traces": {name: {...}}, "wall_s": {name: s}}``.

    Raises:
        SetupError (a ValueError): unknown env, policy or bad arguments, found before any episode.
        FileNotFoundError: a model file is missing.
    """
    env_kwargs = dict(env_kwargs or {})
    if episodes < 1:
        raise SetupError(f"episodes must be >= 1, got {episodes}")
    if not 0 <= trace_episode < episodes:
        raise SetupError(f"trace episode must be in [0, {episodes - 1}], got {trace_episode}")
    env_id, env = _make_env(env_id, split, env_kwargs)
    specs = _policy_specs(policies)
    loaded, kinds = _load_policies(specs, env, seed)
    ceiling_fn = _load_ceiling() if ceiling else None
    if ceiling_fn is not None:
        kinds[CEILING] = CEILING
    seeds = [seed + i for i in range(episodes)]
    workers = _check_workers(workers, ray_address, specs)
    make_args = (env_id, split, env_kwargs, specs, kinds, ceiling_fn is not None, ceiling_time_limit_s)
    start = time.perf_counter()
    rows, statuses, traces, wall_s = _play(
        env,
        specs,
        loaded,
        kinds,
        ceiling_fn,
        seeds,
        trace_episode,
        ceiling_time_limit_s,
        progress,
        workers,
        ray_address,
        make_args,
        deterministic,
    )
    elapsed_s = time.perf_counter() - start
    env.close()
    _check_same_streams(rows, kinds, seeds)
    return {
        "env": env_id,
        "episodes": episodes,
        "seed": seed,
        "seeds": seeds,
        "split": split,
        "env_kwargs": env_kwargs,
        "policies": {name: summarise(r) for name, r in rows.items()},
        "kinds": kinds,
        "ceiling_status": statuses,
        "trace_episode": trace_episode,
        "traces": traces,
        "wall_s": wall_s,
        "elapsed_s": elapsed_s,
        "workers": workers,
        "ray": ray_address,
        "deterministic": deterministic,
    }


def _check_workers(workers: Any, ray_address: str | None, specs: dict[str, str | Policy]) -> int:
    """``workers`` as an int; policies given as objects must pickle to reach other processes."""
    try:
        parallel.check_workers(workers, ray_address)
    except ValueError as err:
        raise SetupError(str(err)) from None
    if workers == 1 and ray_address is None:
        return workers
    for name, spec in specs.items():
        if not isinstance(spec, str):
            try:
                pickle.dumps(spec)
            except Exception as err:
                raise SetupError(
                    f"policy {name!r} cannot be sent to worker processes ({err}); give it by name "
                    "or path, or run with one worker"
                ) from err
    if ray_address is not None:  # connect now, so a wrong address fails before any episode
        try:
            parallel.connect_ray(ray_address)
        except ImportError:
            raise SetupError('--ray needs Ray: pip install -e ".[ray]"') from None
        except ConnectionError as err:
            raise SetupError(f"--ray: {err}") from None
    return workers


def _make_env(env_id: str, split: str, env_kwargs: dict[str, Any]) -> tuple[str, gymnasium.Env]:
    """The registered id and its env on ``split``; bad ids and overrides as a :class:`SetupError`."""
    if "split" in env_kwargs:
        raise SetupError("give the split with --split, not in --env-kwargs")
    env_id = resolve_env_id(env_id)
    try:
        return env_id, gymnasium.make(env_id, split=split, **env_kwargs)
    except (ValueError, TypeError, gymnasium.error.Error) as err:
        raise SetupError(f"cannot make {env_id} with {env_kwargs}: {err}") from err


def _load_policies(
    specs: dict[str, str | Policy], env: gymnasium.Env, seed: int
) -> tuple[dict[str, Policy], dict[str, str]]:
    """Every policy and its kind, loaded before the first episode so a bad name fails in a second."""
    loaded: dict[str, Policy] = {}
    kinds: dict[str, str] = {}
    for name, spec in specs.items():
        if not isinstance(spec, str):
            loaded[name], kinds[name] = spec, "policy"
            continue
        try:
            loaded[name] = make_policy(spec, env=env, seed=seed)
        except ValueError as err:
            raise SetupError(str(err)) from err
        kinds[name] = "heuristic" if spec in POLICY_NAMES else "model"
    return loaded, kinds


def _play(
    env: gymnasium.Env,
    specs: dict[str, str | Policy],
    loaded: dict[str, Policy],
    kinds: dict[str, str],
    ceiling_fn: Any,
    seeds: list[int],
    trace_episode: int,
    ceiling_time_limit_s: float,
    progress: bool,
    workers: int = 1,
    ray_address: str | None = None,
    make_args: tuple = (),
    deterministic: bool = True,
) -> tuple[dict[str, list[dict[str, float]]], list[str] | None, dict[str, dict], dict[str, float]]:
    """Every policy (and the ceiling) on every seed: per-episode rows, ceiling statuses, traces, wall time.

    Tasks go episode-major (the ceiling first), so an env keeps the simulators of recent epochs
    for the policies that follow. One worker plays them here on ``env``; more workers each build
    their own env from ``make_args`` (``episodes.make_worker``'s arguments) and play the same
    tasks, with the same results.
    """
    names = ([CEILING] if ceiling_fn is not None else []) + list(specs)
    tasks = [
        episodes.EpisodeTask(
            name, i, s, trace=name != CEILING and i == trace_episode, deterministic=deterministic
        )
        for i, s in enumerate(seeds)
        for name in names
    ]
    bar = tqdm(total=len(tasks), disable=not progress, unit="ep", dynamic_ncols=True)

    def done(i: int, result: dict) -> None:
        bar.set_description(f"{tasks[i].name} (ep {tasks[i].episode})")
        bar.update()

    def lost(i: int, message: str) -> None:
        task = tasks[i]
        warnings.warn(
            f"{message}: {task.name} on episode {task.episode} (seed {task.seed}) is played again",
            stacklevel=2,
        )

    here = episodes.EvalWorker(env, specs, kinds, ceiling_fn, ceiling_time_limit_s, dict(loaded))
    try:
        results = parallel.run_tasks(
            tasks,
            episodes.play,
            episodes.make_worker,
            make_args,
            workers=workers,
            ray_address=ray_address,
            on_result=done,
            on_lost=lost,
            state=here,
        )
    finally:
        bar.close()
    rows_order = list(specs) + ([CEILING] if ceiling_fn is not None else [])  # the ceiling row last
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in rows_order}
    wall_s: dict[str, float] = dict.fromkeys(rows_order, 0.0)
    traces: dict[str, dict[str, list[float]]] = {}
    statuses: list[str] | None = [] if ceiling_fn is not None else None
    for task, result in zip(tasks, results, strict=True):
        rows[task.name].append(result["row"])
        wall_s[task.name] += result["wall_s"]
        if result["trace"] is not None:
            traces[task.name] = result["trace"]
        if task.name == CEILING:
            statuses.append(result["status"])
    return rows, statuses, traces, wall_s


def _check_same_streams(rows: dict, kinds: dict, seeds: list[int]) -> None:
    """Warn if policies saw different job streams (they share seeds, so they should not)."""
    runs = [r for name, r in rows.items() if kinds[name] != CEILING]
    for i, s in enumerate(seeds):
        arrived = {r[i].get("jobs_arrived") for r in runs}
        if len(arrived) > 1:
            warnings.warn(
                f"episode {i} (seed {s}): policies saw different job counts {arrived}", stacklevel=2
            )


# -- statistics ------------------------------------------------------------------------------------
def bootstrap_ci(
    values: Sequence[float], rng: np.random.Generator, n: int = N_BOOTSTRAP
) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean of the finite ``values``."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan
    means = x[rng.integers(0, x.size, size=(n, x.size))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def summarise(rows: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    """``{metric: {"mean", "ci95": [lo, hi], "values"}}`` over episodes (NaN entries ignored)."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    out = {}
    for key in keys:
        values = [row.get(key, math.nan) for row in rows]
        finite = [v for v in values if math.isfinite(v)]
        rng = np.random.default_rng(BOOTSTRAP_SEED)  # the same resamples for every metric and policy
        lo, hi = bootstrap_ci(values, rng)
        out[key] = {
            "mean": float(np.mean(finite)) if finite else math.nan,
            "ci95": [lo, hi],
            "values": values,
        }
    return out


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """Best heuristic, normalised scores and the ceiling's headroom from a results dict."""
    pol, kinds = results["policies"], results["kinds"]
    mean = {name: m["return"]["mean"] for name, m in pol.items()}
    heuristics = [n for n in pol if kinds.get(n) == "heuristic" and math.isfinite(mean[n])]
    best = max(heuristics, key=mean.get) if heuristics else None
    scores: dict[str, float] = {}
    if best is not None and "random" in pol and mean[best] > mean["random"]:
        span = mean[best] - mean["random"]
        scores = {n: (mean[n] - mean["random"]) / span for n in pol}
    headroom = None
    if CEILING in pol and best is not None and mean[CEILING] > 0:
        headroom = (mean[CEILING] - mean[best]) / mean[CEILING]
    return {"best_heuristic": best, "scores": scores, "headroom": headroom}


# -- outputs ---------------------------------------------------------------------------------------
def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None  # JSON has no NaN
    if isinstance(x, np.integer):
        return int(x)
    return x


def write_json(results: dict[str, Any], path: Path) -> None:
    out = dict(results)
    out["summary"] = headline(results)
    path.write_text(json.dumps(_jsonable(out), indent=1) + "\n")


def write_csv(results: dict[str, Any], path: Path) -> None:
    pol = results["policies"]
    columns = list(dict.fromkeys(k for m in pol.values() for k in m))
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["policy", "episode", "seed", *columns])
        for name, metrics in pol.items():
            for i, s in enumerate(results["seeds"]):
                cells = [metrics[k]["values"][i] if k in metrics else "" for k in columns]
                writer.writerow([name, i, s, *("" if c == "" or not math.isfinite(c) else c for c in cells)])


def _fmt(x: float | None, spec: str = ".1f", unit: str = "") -> str:
    return "—" if x is None or not math.isfinite(x) else format(x, spec) + unit


def markdown_table(results: dict[str, Any]) -> str:
    """The summary table with the normalised-score and headroom lines."""
    pol = results["policies"]
    head = headline(results)
    best, scores = head["best_heuristic"], head["scores"]
    lines = [
        "| policy | return (95 % CI) | normalised score | on-time value rate | brownouts | "
        "utilisation | latency p95 [s] | time / episode [s] |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ceiling_rate = _ceiling_on_time_rate(results)
    for name, m in pol.items():
        r = m["return"]
        lo, hi = r["ci95"]

        def mean(key: str, m=m) -> float | None:
            return m[key]["mean"] if key in m else None

        def percent(x: float | None) -> str:
            return _fmt(None if x is None else 100 * x, unit=" %")

        rate = ceiling_rate if name == CEILING else mean("on_time_value_rate")
        label = "ceiling (offline bound)" if name == CEILING else f"**{name}**" if name == best else name
        cells = [
            label,
            f"{_fmt(r['mean'])} (−{_fmt(r['mean'] - lo)}/+{_fmt(hi - r['mean'])})",
            _fmt(scores.get(name), ".2f"),
            percent(rate),
            _fmt(mean("brownouts")),
            percent(mean("accelerator_utilization")),
            _fmt(mean("latency_p95_s"), ".0f"),
            _fmt(results["wall_s"][name] / results["episodes"], ".2f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        "",
        f"{results['env']} (split {results['split']}), {results['episodes']} episodes with seeds "
        f"{results['seeds'][0]}–{results['seeds'][-1]}, every policy on the same seeds"
        + (f", env kwargs {results['env_kwargs']}" if results["env_kwargs"] else "")
        + f". Means with 95 % bootstrap intervals ({N_BOOTSTRAP} resamples).",
    ]
    if not results.get("deterministic", True):
        notes.append("Models sample their actions (`--stochastic`; torch seeded with each episode's seed).")
    if scores:
        notes.append(
            f"Normalised score = (R − R_random) / (R_best − R_random), best heuristic **{best}** "
            f"(mean return {_fmt(pol[best]['return']['mean'])})."
        )
    elif "random" not in pol:
        notes.append("Normalised score needs the random policy in the run.")
    else:
        notes.append("Normalised score undefined: no heuristic beats random.")
    if CEILING in pol:
        if head["headroom"] is not None:
            notes.append(
                f"Headroom = (ceiling − best heuristic) / ceiling = {100 * head['headroom']:.1f} % "
                f"(mean ceiling return {_fmt(pol[CEILING]['return']['mean'])} over "
                f"{results['episodes']} episodes vs {best}'s mean return "
                f"{_fmt(pol[best]['return']['mean'])})."
            )
        statuses = results.get("ceiling_status") or []
        counts = {s: statuses.count(s) for s in dict.fromkeys(statuses)}
        notes.append("Ceiling statuses: " + ", ".join(f"{n} × {s}" for s, n in counts.items()) + ".")
        if ceiling_rate is not None:
            notes.append(
                "The ceiling's on-time value rate is its value on time ÷ the episode's value arrived."
            )
    return "\n".join(lines + notes)


def _ceiling_on_time_rate(results: dict[str, Any]) -> float | None:
    """Ceiling value on time ÷ value arrived, if every policy saw the same value arrive."""
    pol = results["policies"]
    if CEILING not in pol:
        return None
    arrived = [m["value_arrived"]["values"] for n, m in pol.items() if n != CEILING and "value_arrived" in m]
    if not arrived or any(a != arrived[0] for a in arrived):
        return None
    rates = [v / a for v, a in zip(pol[CEILING]["value_on_time"]["values"], arrived[0], strict=True) if a > 0]
    rates = [r for r in rates if math.isfinite(r)]
    return float(np.mean(rates)) if rates else None


def _short(name: str, width: int = 22) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def plot_metrics(results: dict[str, Any], path: Path) -> None:
    """One bar chart per metric, bars at the mean with 95 % interval error bars."""
    from matplotlib.figure import Figure

    pol, kinds = results["policies"], results["kinds"]
    colours = {"heuristic": "tab:blue", "model": "tab:orange", "policy": "tab:orange", CEILING: "tab:gray"}
    fig = Figure(figsize=(max(8.0, 0.9 * len(pol) + 4), 7.5), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    for ax, metric in zip(axes, PLOT_METRICS, strict=True):
        names = [n for n in pol if metric in pol[n]]
        means = np.array([pol[n][metric]["mean"] for n in names], dtype=float)
        lo = np.array([pol[n][metric]["ci95"][0] for n in names], dtype=float)
        hi = np.array([pol[n][metric]["ci95"][1] for n in names], dtype=float)
        err = np.nan_to_num(np.vstack([means - lo, hi - means]))
        x = np.arange(len(names))
        ax.bar(x, np.nan_to_num(means), color=[colours[kinds[n]] for n in names], yerr=err, capsize=3)
        ax.set_xticks(x, [_short(n) for n in names], rotation=35, ha="right", fontsize=8)
        ax.set_title(metric)
        if not np.nan_to_num(hi).any() and not np.nan_to_num(lo).any():
            ax.set_ylim(0.0, 1.0)  # all zero (e.g. no brownouts): a readable empty axis
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{results['env']} ({results['split']}), {results['episodes']} episodes, 95 % bootstrap CI")
    fig.savefig(path, dpi=110)


def trace_pair(results: dict[str, Any]) -> list[str]:
    """The policies whose traces are plotted: best heuristic and random, else the first two."""
    best = headline(results)["best_heuristic"]
    traced = list(results["traces"])
    if best is not None and best != "random" and "random" in traced and best in traced:
        return [best, "random"]
    return traced[:2]


def plot_traces(results: dict[str, Any], path: Path) -> None:
    """Mean and minimum battery charge and jobs in the constellation over the traced episode."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 7), layout="constrained")
    ax_soc, ax_jobs = fig.subplots(2, 1, sharex=True)
    for k, name in enumerate(trace_pair(results)):
        tr = results["traces"][name]
        t_h = np.asarray(tr["t_s"]) / 3600.0
        colour = f"C{k}"
        ax_soc.plot(t_h, tr["soc_mean"], color=colour, label=f"{_short(name, 40)}: mean")
        ax_soc.plot(t_h, tr["soc_min"], color=colour, linestyle="--", label=f"{_short(name, 40)}: min")
        ax_jobs.step(t_h, tr["jobs"], where="post", color=colour, label=_short(name, 40))
    ax_soc.set_ylabel("battery state of charge")
    ax_soc.set_ylim(-0.02, 1.02)
    ax_soc.legend(fontsize=8, ncol=2)
    ax_soc.grid(alpha=0.3)
    ax_jobs.set_ylabel("jobs queued + running")
    ax_jobs.set_xlabel("time since episode start [h]")
    ax_jobs.legend(fontsize=8)
    ax_jobs.grid(alpha=0.3)
    episode = results["trace_episode"]
    fig.suptitle(f"{results['env']}: episode {episode} (seed {results['seeds'][episode]})")
    fig.savefig(path, dpi=110)


def write_outputs(results: dict[str, Any], out: Path, plots: bool = True) -> str:
    """Write every output file into ``out``; the Markdown table."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(results, out / "results.json")
    write_csv(results, out / "results.csv")
    table = markdown_table(results)
    (out / "results.md").write_text(table + "\n")
    if plots:
        plot_metrics(results, out / "metrics.png")
        if results["traces"]:
            plot_traces(results, out / "traces.png")
    return table


# -- command line ----------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    if any(p not in POLICY_NAMES for p in policies):
        import torch

        torch.set_num_threads(1)  # one observation at a time: extra threads only contend on 2 cores
    old_format = warnings.formatwarning  # one-line warnings for the command line, restored after
    warnings.formatwarning = lambda message, *rest, **kw: f"evaluate.py: warning: {message}\n"
    try:
        results = evaluate(
            env_id=args.env,
            policies=policies,
            episodes=args.episodes,
            seed=args.seed,
            split=args.split,
            env_kwargs=parse_env_kwargs(args.env_kwargs),
            ceiling=not args.no_ceiling,
            progress=True,
            trace_episode=args.trace_episode,
            ceiling_time_limit_s=args.ceiling_time_limit,
            workers=args.workers if args.workers is not None else (0 if args.ray else 1),
            ray_address=args.ray,
            deterministic=not args.stochastic,
        )
    except (SetupError, FileNotFoundError, PermissionError) as err:
        message = " ".join(str(err).split())
        print(f"evaluate.py: error: {message}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = old_format
    table = write_outputs(results, Path(args.out), plots=not args.no_plots)
    print(table)
    print(
        f"\nwrote {args.out}/results.{{json,csv,md}}" + ("" if args.no_plots else ", metrics.png, traces.png")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
