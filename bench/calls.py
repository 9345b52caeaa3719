"""Count the compiled calls of ``env.step`` and what calling them costs (for the one-call core).

Usage::

    python -m bench.calls --env orbit_env/WalkerLEO-v1 --steps 3000 [--seed 0] [--top 25]

Wraps every numba function of the orbit_env modules with a counter, plays a random masked policy
and prints, per ``env.step``: the compiled calls, the arrays passed to them (a tuple's arrays
counted one by one), and per function its calls per step and arrays per call. Then it times
numba's dispatch on empty functions (no work: the call alone, best of 5) with 0, 10 and 20 array
arguments, and with one ``jitclass`` holding 10 arrays (the one-struct state a one-call core
would pass), and estimates the step's dispatch cost from the counts.
"""

from __future__ import annotations

import sys
import timeit
from collections import Counter
from collections.abc import Callable
from typing import Any

import gymnasium
import numba
import numpy as np
from numba.core.registry import CPUDispatcher

import orbit_env  # noqa: F401  (registers the ids)
from bench.common import parse_step_args, step_parser
from bench.parts import _random_action


def _arrays(args: tuple) -> int:
    n = 0
    for x in args:
        if isinstance(x, np.ndarray):
            n += 1
        elif isinstance(x, tuple):
            n += _arrays(x)
    return n


def _counting(fn: Callable[..., Any], label: str, calls: Counter, arrays: Counter) -> Callable[..., Any]:
    def wrapper(*args: Any) -> Any:
        calls[label] += 1
        arrays[label] += _arrays(args)
        return fn(*args)

    return wrapper


def count_calls(env_id: str, steps: int, seed: int) -> tuple[Counter, Counter]:
    """Calls and array arguments of each compiled function over ``steps`` random-policy steps."""
    env = gymnasium.make(env_id)
    raw = env.unwrapped
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    calls: Counter = Counter()
    arrays: Counter = Counter()
    wrapped = []
    for name, module in list(sys.modules.items()):
        if not name.startswith("orbit_env") or module is None:
            continue
        for attr, obj in list(vars(module).items()):
            if isinstance(obj, CPUDispatcher):
                label = f"{name.rsplit('.', 1)[-1]}.{attr}"
                setattr(module, attr, _counting(obj, label, calls, arrays))
                wrapped.append((module, attr, obj))
    try:
        resets = 0
        for _ in range(steps):
            if env.step(_random_action(raw, rng))[2]:
                resets += 1
                env.reset(seed=seed + resets)
    finally:  # put the compiled functions back
        for module, attr, obj in wrapped:
            setattr(module, attr, obj)
        env.close()
    return calls, arrays


def dispatch_us() -> dict[int, float]:
    """µs per call of an empty compiled function with 0, 10 and 20 array arguments (best of 5)."""

    @numba.njit
    def none(x):
        return 0

    @numba.njit
    def ten(a, b, c, d, e, f, g, h, i, j):
        return 0

    @numba.njit
    def twenty(a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t):  # noqa: E741
        return 0

    @numba.njit
    def struct(state):
        return 0

    arrs = [np.zeros(64) for _ in range(20)]
    out = {}
    cases = ((0, none, (1,)), (10, ten, arrs[:10]), (20, twenty, arrs), (-10, struct, (_state10(),)))
    for n, fn, args in cases:
        fn(*args)
        out[n] = min(timeit.repeat(lambda fn=fn, args=args: fn(*args), number=20000, repeat=5)) / 20000 * 1e6
    return out


def _state10() -> Any:
    """A ``jitclass`` instance with 10 float64[:] members (key -10 of :func:`dispatch_us`): its
    dispatch unboxes one object, whatever the number of members."""
    from numba.experimental import jitclass

    @jitclass([(name, numba.float64[:]) for name in "abcdefghij"])
    class State10:
        def __init__(self, x):
            self.a, self.b, self.c, self.d, self.e = x, x, x, x, x
            self.f, self.g, self.h, self.i, self.j = x, x, x, x, x

    return State10(np.zeros(64))


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = step_parser(__doc__.splitlines()[0], steps=3000)
    parser.add_argument("--top", type=int, default=25)
    args = parse_step_args(parser, argv)
    calls, arrays = count_calls(args.env, args.steps, args.seed)
    n_calls = sum(calls.values()) / args.steps
    n_arrays = sum(arrays.values()) / args.steps
    print(f"{args.env}: {n_calls:.1f} compiled calls and {n_arrays:.1f} array arguments per env.step")
    for label, n in calls.most_common(args.top):
        print(f"  {label:36s} {n / args.steps:6.2f} calls/step {arrays[label] / n:6.1f} arrays/call")
    cost = dispatch_us()
    per_call = cost[0]
    per_array = (cost[20] - cost[0]) / 20
    estimate = n_calls * per_call + n_arrays * per_array
    print(
        f"dispatch of an empty compiled function: {cost[0]:.2f} µs, {cost[10]:.2f} µs with 10 arrays, "
        f"{cost[20]:.2f} µs with 20: ~{per_call:.2f} µs per call + {per_array:.3f} µs per array, "
        f"so ~{estimate:.1f} µs of each step is calling the kernels; one jitclass holding 10 arrays: "
        f"{cost[-10]:.2f} µs a call"
    )
    return {"calls": n_calls, "arrays": n_arrays, "dispatch_us": estimate}


if __name__ == "__main__":
    main()
