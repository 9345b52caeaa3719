"""Helpers shared by the benchmark suite and the profiler: machine facts, policies, step loops."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(os.path.abspath(__file__)).parent.parent  # the checkout holding bench/ (symlinks kept)

Policy = Callable[[Any, dict], Any]


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (falls back to ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def usable_cores() -> int:
    """Cores this process may run on (the affinity mask, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def git_revision() -> str:
    """Short commit of the checkout, ``+dirty`` when the work tree has changes; ``?`` without git."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return (rev or "?") + ("+dirty" if dirty else "")


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    import gymnasium

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "gymnasium": gymnasium.__version__,
        "platform": platform.platform(),
        "revision": git_revision(),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover - torch comes with stable-baselines3
        pass
    return info


def machine_line(info: dict[str, Any]) -> str:
    """One line: CPU, cores, Python, numpy (and torch, commit)."""
    parts = [
        f"{info['cpu']}",
        f"{info['cores']} cores",
        f"Python {info['python']}",
        f"numpy {info['numpy']}",
        f"gymnasium {info['gymnasium']}",
    ]
    if "torch" in info:
        parts.append(f"torch {info['torch']} ({info['torch_threads']} threads)")
    parts.append(f"orbit_env {info['revision']}")
    return "Machine: " + ", ".join(parts)


# ------------------------------------------------------------------------------------- policies


def masked_policy(rng: np.random.Generator) -> Policy:
    """A uniformly random valid action: ``rng.choice(np.flatnonzero(info["action_mask"]))``."""

    def act(env: Any, info: dict) -> Any:
        return rng.choice(np.flatnonzero(info["action_mask"]))

    return act


def random_policy(rng: np.random.Generator) -> Policy:
    """A uniformly random action of a ``Discrete`` space (no mask)."""

    def act(env: Any, info: dict) -> Any:
        return int(rng.integers(env.action_space.n))

    return act


# ------------------------------------------------------------------------------------ step loops


@dataclass
class StepTiming:
    """Wall time of ``env.step`` calls only, with resets counted separately."""

    steps: int
    step_s: float
    resets: int
    reset_s: float

    @property
    def rate(self) -> float:
        """Steps per second of ``env.step`` time."""
        return self.steps / self.step_s if self.step_s > 0 else float("nan")

    @property
    def per_step_s(self) -> float:
        return self.step_s / self.steps if self.steps else float("nan")

    def as_dict(self) -> dict[str, float]:
        return {
            "steps": self.steps,
            "step_s": self.step_s,
            "rate_per_s": self.rate,
            "per_step_us": self.per_step_s * 1e6,
            "resets": self.resets,
            "reset_s": self.reset_s,
        }


def timed_steps(
    env: Any,
    info: dict,
    steps: int,
    policy: Policy,
    on_step: Callable[[bool], None] | None = None,
) -> StepTiming:
    """Run ``steps`` steps from a reset env (``info`` from that reset), resetting on done.

    Only ``env.step`` is timed; the policy's choice is not, and resets (a new epoch may build
    geometry) are timed separately. ``on_step(True)`` / ``on_step(False)`` bracket each step
    (the profiler switches itself on and off there).
    """
    perf = time.perf_counter
    step_s = reset_s = 0.0
    resets = 0
    for _ in range(steps):
        action = policy(env, info)
        if on_step is not None:
            on_step(True)
        t0 = perf()
        _, _, terminated, truncated, info = env.step(action)
        step_s += perf() - t0
        if on_step is not None:
            on_step(False)
        if terminated or truncated:
            t0 = perf()
            _, info = env.reset()
            for _ in range(100):  # an episode without a single decision: draw another
                if "action_mask" not in info or np.any(info["action_mask"]):
                    break
                _, info = env.reset()
            reset_s += perf() - t0
            resets += 1
    return StepTiming(steps=steps, step_s=step_s, resets=resets, reset_s=reset_s)


def rss_bytes() -> int:
    """Current resident set size [bytes] (Linux ``/proc/self/statm``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):  # pragma: no cover - non-Linux
        return 0


def peak_rss_bytes() -> int:
    """High-water resident set size of this process [bytes] (``ru_maxrss``)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def step_parser(description: str, steps: int, seed: int = 0) -> argparse.ArgumentParser:
    """The options every per-step probe in ``bench/`` takes: ``--env``, ``--steps``, ``--seed``
    (add its own, then :func:`parse_step_args`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--env", default="orbit_env/WalkerLEO-v1", help="Gymnasium id")
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--seed", type=int, default=seed)
    return parser


def parse_step_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, with a clear error for ``--steps`` below 1."""
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    return args
