"""Geometry benchmark: ``compute_geometry`` vs bare ``SatrecArray.sgp4`` on the same grid.

Usage: ``python bench/geometry.py [--quick]``. Both are timed in the same run (best of 3);
the figure of merit is their ratio (design §8 target: <= 2.5 for 1000 satellites x 1 day at
60 s with 10 stations, no ISLs, cache off).
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

import numpy as np
from sgp4.api import SatrecArray

from orbit_env.sim.geometry import _julian, compute_geometry
from orbit_env.sim.orbits import Constellation, GroundStation

TARGET_RATIO = 2.5


def _best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark and return its figures (also printed)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 satellites x 2 h (CI smoke run)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args(argv)

    n_sat, planes, duration_s = (100, 10, 7200.0) if args.quick else (1000, 40, 86400.0)
    dt_s = 60.0
    start = datetime(2026, 3, 20, tzinfo=timezone.utc)
    constellation = Constellation.walker(n_sat, planes, 1, 550.0, 53.0, start)
    stations = [
        GroundStation(f"gs{i}", lat_deg=-60.0 + 13.0 * i, lon_deg=-170.0 + 34.0 * i, min_elevation_deg=10.0)
        for i in range(10)
    ]
    t_s = np.arange(int(round(duration_s / dt_s)) + 1) * dt_s
    jd, fr = _julian(start, t_s)
    satrecs = SatrecArray(constellation.satrecs)

    compute_geometry(constellation, start, duration_s, dt_s, stations, cache=False)  # warm-up: ephemeris
    sgp4_s = _best_of(lambda: satrecs.sgp4(jd, fr), args.repeat)
    geometry_s = _best_of(
        lambda: compute_geometry(constellation, start, duration_s, dt_s, stations, cache=False), args.repeat
    )
    result = {
        "satellites": n_sat,
        "samples": len(t_s),
        "stations": len(stations),
        "geometry_s": geometry_s,
        "sgp4_s": sgp4_s,
        "ratio": geometry_s / sgp4_s,
        "target_ratio": TARGET_RATIO,
    }
    print(
        f"geometry: {n_sat} satellites x {len(t_s)} samples x {len(stations)} stations: "
        f"{geometry_s:.3f} s; bare SatrecArray.sgp4: {sgp4_s:.3f} s; "
        f"ratio {result['ratio']:.2f} (target <= {TARGET_RATIO})"
    )
    return result


if __name__ == "__main__":
    main()
