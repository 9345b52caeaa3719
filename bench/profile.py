"""Profile ``env.step`` under a random masked policy (cProfile; for whoever optimises the hot paths).

Usage::

    python -m bench.profile --env orbit_env/WalkerLEO-v1 --steps 3000 [--top 25] [--seed 0]
        [--kw total=256 --kw planes=16] [--save walker.prof]

A first reset (untimed, unprofiled) warms the geometry cache; the profiler is switched on
around each ``env.step`` call only, so the policy's choice and resets stay out of the figures.
Prints the top entries by cumulative time and by total (own) time.
"""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):  # ``python bench/profile.py``: don't let bench/ shadow stdlib ``profile``
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import ast  # noqa: E402
import cProfile  # noqa: E402
import io  # noqa: E402
import pstats  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from bench.common import (  # noqa: E402
    machine_info,
    machine_line,
    masked_policy,
    parse_step_args,
    step_parser,
    timed_steps,
)


def _parse_kw(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--kw expects key=value, got {item!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def profile_steps(
    env_id: str, steps: int, seed: int = 0, **kwargs: Any
) -> tuple[pstats.Stats, dict[str, float]]:
    """Profile ``steps`` calls of ``env.step`` of ``gymnasium.make(env_id, **kwargs)``."""
    import gymnasium

    import orbit_env  # noqa: F401  (registers the scenario ids)

    env = gymnasium.make(env_id, **kwargs)
    t0 = time.perf_counter()
    _, info = env.reset(seed=seed)
    first_reset_s = time.perf_counter() - t0
    profiler = cProfile.Profile()

    def toggle(on: bool) -> None:
        if on:
            profiler.enable()
        else:
            profiler.disable()

    timing = timed_steps(env, info, steps, masked_policy(np.random.default_rng(seed)), on_step=toggle)
    env.close()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    summary = {
        "steps": float(steps),
        "first_reset_s": first_reset_s,
        "profiled_step_s": timing.step_s,
        "profiled_us_per_step": timing.per_step_s * 1e6,
        "resets": float(timing.resets),
    }
    return stats, summary


def _short_paths(text: str) -> str:
    """Paths relative to the checkout, site-packages or the standard library."""
    import sysconfig

    import orbit_env

    roots = {
        os.path.dirname(os.path.dirname(os.path.abspath(orbit_env.__file__))),
        sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["stdlib"],
    }
    for root in sorted(roots, key=len, reverse=True):
        text = text.replace(root + os.sep, "")
    return text


def format_stats(stats: pstats.Stats, sort: str, top: int) -> str:
    buf = io.StringIO()
    stats.stream = buf
    stats.sort_stats(sort).print_stats(top)
    lines = buf.getvalue().splitlines()
    # drop pstats' preamble up to the column header; keep the header and the entries
    for i, line in enumerate(lines):
        if line.lstrip().startswith("ncalls"):
            return _short_paths("\n".join(lines[i:]).rstrip())
    return _short_paths(buf.getvalue().rstrip())


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("cProfile env.step under a random masked policy.", steps=3000)
    parser.add_argument("--top", type=int, default=25, help="entries per listing")
    parser.add_argument(
        "--kw", action="append", default=[], metavar="KEY=VALUE", help="gymnasium.make override (repeatable)"
    )
    parser.add_argument("--save", help="also dump the raw stats here (for snakeviz / pstats)")
    args = parse_step_args(parser, argv)
    kwargs = _parse_kw(args.kw)

    print(machine_line(machine_info()))
    stats, summary = profile_steps(args.env, args.steps, args.seed, **kwargs)
    extra = f" {kwargs}" if kwargs else ""
    print(
        f"{args.env}{extra}: {args.steps:,} env.step calls, {summary['profiled_step_s']:.2f} s under the "
        f"profiler ({summary['profiled_us_per_step']:,.0f} µs/step, profiler overhead included), "
        f"{int(summary['resets'])} resets excluded; first reset {summary['first_reset_s'] * 1e3:.0f} ms"
    )
    for sort, title in (("cumulative", "cumulative time"), ("tottime", "total (own) time")):
        print(f"\n== top {args.top} by {title} ==")
        print(format_stats(stats, sort, args.top))
    if args.save:
        stats.dump_stats(args.save)
        print(f"\nraw stats written to {args.save}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
