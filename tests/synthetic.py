"""A hand-made geometry with the fields the simulator reads, for cases with known answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np


@dataclass
class SyntheticGeometry:
    """Geometry given directly: sunlit share per step, who sees whom, ISL hops.

    Args:
        sunlit_fraction: float[T, N] share of step k in sunlight (the sunlit part comes first
            when ``sunlit[k]``, last otherwise).
        station_hops: int16[T, G, N].
        sat_hops_table: int16[T, N, N] hops between satellites (default: all direct, 1 hop).
    """

    dt_s: float
    sunlit_fraction: np.ndarray
    station_hops: np.ndarray
    sunlit: np.ndarray | None = None
    valid: np.ndarray | None = None
    sat_hops_table: np.ndarray | None = None
    start: datetime = field(default_factory=lambda: datetime(2026, 3, 20, tzinfo=timezone.utc))

    def __post_init__(self) -> None:
        t, n = self.sunlit_fraction.shape
        self.t_s = np.arange(t) * self.dt_s
        if self.sunlit is None:
            self.sunlit = self.sunlit_fraction >= 0.5
        if self.valid is None:
            self.valid = np.ones((t, n), dtype=bool)
        if self.sat_hops_table is None:
            table = np.ones((t, n, n), dtype=np.int16)
            table[:, np.arange(n), np.arange(n)] = 0
            self.sat_hops_table = table
        # as Geometry holds them: the hops table (for the compiled observation), no ISL pairs
        self.sat_hops_all = self.sat_hops_table
        self.isl_pairs = np.zeros((0, 2), dtype=np.int32)
        self.isl_active = np.zeros((t, 0), dtype=bool)
        angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
        ring = np.stack([7000 * np.cos(angle), 7000 * np.sin(angle), np.zeros(n)], axis=1)
        self.position_km = np.broadcast_to(ring, (t, n, 3)).astype(np.float32)
        self.teme_to_itrs = np.broadcast_to(np.eye(3), (t, 3, 3))

    def sat_hops(self, k: int, source: int) -> np.ndarray:
        return self.sat_hops_table[k, source]


def always_visible(t: int, g: int, n: int) -> np.ndarray:
    """station_hops where every station sees every satellite."""
    return np.zeros((t, g, n), dtype=np.int16)
