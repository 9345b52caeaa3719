"""Regenerate the example frames in docs/img (``python docs/make_frames.py``).

Each scenario runs a greedy loop (every pending job goes to its first valid target) for two
hours from the March equinox, then :func:`orbit_env.render.render_rgb` draws the state.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from matplotlib.image import imsave

from orbit_env.render import render_rgb
from orbit_env.scenarios import SCENARIOS
from orbit_env.sim.simulator import Simulator

OUT = Path(__file__).resolve().parent / "img"
EPOCH = datetime(2026, 3, 20, tzinfo=timezone.utc)
FRAMES = {"WalkerLEO-v1": "walkerleo_frame.png", "Suncatcher-v1": "suncatcher_frame.png"}
HOURS = 2.0


def run_greedy(name: str, hours: float = HOURS) -> Simulator:
    """A simulator of scenario ``name`` after ``hours`` of first-valid-target placement."""
    sim = Simulator.from_config(SCENARIOS[name], epoch=EPOCH)
    sim.reset(np.random.default_rng(0))
    for _ in range(int(round(hours * 3600 / sim.dt_s))):
        for j in sim.pending():
            valid = np.flatnonzero(sim.valid_targets(j))
            sim.place(j, int(valid[0])) if valid.size else sim.reject(j)
        sim.advance()
    return sim


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, filename in FRAMES.items():
        sim = run_greedy(name)
        t0 = time.perf_counter()
        frame = render_rgb(sim)
        elapsed = time.perf_counter() - t0
        imsave(OUT / filename, frame)
        print(f"{name}: {frame.shape} in {elapsed * 1000:.0f} ms -> {OUT / filename}")


if __name__ == "__main__":
    main()
