"""Battery and power budget, vectorised over satellites (design §3.3).

Within a simulator step every satellite's power is piecewise constant between events
(terminator crossing, a job starting or ending, the battery filling, emptying or crossing a
threshold), so the battery is integrated exactly, not sampled. This module holds the pure
pieces: the load model, the exact integration of one constant-power segment with its energy
accounting, and the sustainable-compute estimate that scales the workload.

Energy bookkeeping [Wh], per satellite, exact by construction:
    battery change    = charged - discharged            (cell side)
    generation        = used + stored + curtailed       (bus side)
    stored            = charged / charge_efficiency - discharged * discharge_efficiency
so conversion losses are ``stored - (charged - discharged)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orbit_env.config import PowerConfig


@dataclass
class EnergyLedger:
    """Cumulative energy flows per satellite [Wh], float64[N] each."""

    generated: np.ndarray
    used: np.ndarray
    charged: np.ndarray
    discharged: np.ndarray
    curtailed: np.ndarray

    @classmethod
    def zeros(cls, n: int) -> EnergyLedger:
        return cls(*(np.zeros(n) for _ in range(5)))

    def stored(self, power: PowerConfig) -> np.ndarray:
        """Net bus energy into the battery [Wh] (negative when it gave more than it took)."""
        return self.charged / power.charge_efficiency - self.discharged * power.discharge_efficiency

    def totals_kwh(self) -> dict[str, float]:
        """Constellation totals [kWh]."""
        return {
            "energy_generated_kwh": float(self.generated.sum()) / 1000.0,
            "energy_used_kwh": float(self.used.sum()) / 1000.0,
            "energy_curtailed_kwh": float(self.curtailed.sum()) / 1000.0,
        }


def sustainable_slots(power: PowerConfig, sunlit_mean: np.ndarray) -> np.ndarray:
    """Energy-limited average busy slots per satellite, float[N] in [0, accelerators].

    The load L a satellite can carry forever balances generation over an orbit, with the
    eclipse share of L paid through the battery at both efficiencies:
    ``solar·f = L·f + L·(1 − f)/(η_c·η_d)``.

    Args:
        sunlit_mean: float[N] mean sunlit fraction of each satellite over the episode.
    """
    eta = power.charge_efficiency * power.discharge_efficiency
    f = np.asarray(sunlit_mean, dtype=float)
    carry_w = power.solar_array_w * f / (f + (1.0 - f) / eta)
    base_w = power.bus_w + power.accelerators * power.accelerator_idle_w
    span_w = power.accelerator_w - power.accelerator_idle_w
    if span_w <= 0:
        return np.where(carry_w >= base_w, float(power.accelerators), 0.0)
    return np.clip((carry_w - base_w) / span_w, 0.0, power.accelerators)
