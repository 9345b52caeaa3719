"""What a worker costs: startup and per-task overhead of ``agents.parallel``, local and on Ray.

    python -m bench.parallel [--tasks 400] [--workers 2] [--no-ray]

Plays ``--tasks`` empty tasks (``play`` returns at once) in this process, on local worker
processes and on local Ray actors, and prints per backend: the startup (first result after the
pool is asked for, minus one task) and the overhead per task (the rest ÷ tasks). An episode of
evaluate.py takes 0.1 s (Tiny) to a minute (SuncatcherEclipse), so the overhead per task is
what to hold against it. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import time

from agents import parallel


def _init() -> int:
    return 0


def _play(state: int, task: int) -> int:
    return task


def measure(backend: str, tasks: int, workers: int) -> tuple[float, float]:
    """(startup [s], overhead per task [ms]) of one backend: ``here``, ``local`` or ``ray``."""
    first: list[float] = []
    start = time.perf_counter()

    def done(i: int, result: int) -> None:
        if not first:
            first.append(time.perf_counter())

    kwargs = {
        "here": {"workers": 1},
        "local": {"workers": workers},
        "ray": {"workers": workers, "ray_address": "local"},
    }
    out = parallel.run_tasks(list(range(tasks)), _play, _init, (), on_result=done, **kwargs[backend])
    end = time.perf_counter()
    assert out == list(range(tasks))
    per_task = (end - first[0]) / max(tasks - 1, 1)
    return first[0] - start - per_task, 1000.0 * per_task


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.parallel", description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=400)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--no-ray", action="store_true", help="skip Ray")
    args = p.parse_args(argv)
    backends = ["here", "local"] + ([] if args.no_ray else ["ray"])
    print(f"| backend | workers | startup [s] | overhead per task [ms] |  ({args.tasks} empty tasks)")
    print("|---|---|---|---|")
    for backend in backends:
        if backend == "ray":
            started = time.perf_counter()
            parallel.connect_ray("local")  # Ray's own start, once per script
            print(f"| ray.init (local) | — | {time.perf_counter() - started:.2f} | — |")
        startup, per_task = measure(backend, args.tasks, 1 if backend == "here" else args.workers)
        print(f"| {backend} | {1 if backend == 'here' else args.workers} | {startup:.2f} | {per_task:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
