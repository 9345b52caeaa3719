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

WH_PER_WS = 1.0 / 3600.0


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


def load_w(power: PowerConfig, busy: np.ndarray, safe: np.ndarray, radio_w: np.ndarray) -> np.ndarray:
    """Electrical load [W] per satellite.

    Args:
        busy: int[N] busy slots.
        safe: bool[N] in safe mode (bus only, accelerators off; a booked transfer still runs,
            so its radio still draws).
        radio_w: float[N] average radio draw over the current step [W] (transmissions booked in it).
    """
    compute = busy * power.accelerator_w + (power.accelerators - busy) * power.accelerator_idle_w
    return power.bus_w + radio_w + np.where(safe, 0.0, compute)


def segment_limits(
    power: PowerConfig,
    energy_wh: np.ndarray,
    net_w: np.ndarray,
    thresholds_wh: tuple[float, ...],
    eps_wh: float = 1e-9,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seconds until the battery fills, empties, or crosses each threshold at net power ``net_w``.

    A level within ``eps_wh`` of the charge counts as already reached (the caller handles it
    at the current time), so every event lies a representable time ahead.

    Returns:
        (to_full_s, to_empty_s, to_threshold_s[K, N]); ``inf`` where it does not happen.
    """
    cap = power.battery_wh
    rate_in = np.where(net_w > 0, net_w * power.charge_efficiency * WH_PER_WS, 0.0)
    rate_out = np.where(net_w < 0, -net_w / power.discharge_efficiency * WH_PER_WS, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        to_full = np.where((rate_in > 0) & (energy_wh < cap - eps_wh), (cap - energy_wh) / rate_in, np.inf)
        to_empty = np.where((rate_out > 0) & (energy_wh > eps_wh), energy_wh / rate_out, np.inf)
        to_thr = np.stack(
            [
                np.where(
                    (rate_in > 0) & (energy_wh < thr - eps_wh),
                    (thr - energy_wh) / rate_in,
                    np.where(
                        (rate_out > 0) & (energy_wh > thr + eps_wh), (energy_wh - thr) / rate_out, np.inf
                    ),
                )
                for thr in thresholds_wh
            ]
        )
    return to_full, to_empty, to_thr


def integrate_segment(
    power: PowerConfig,
    energy_wh: np.ndarray,
    gen_w: np.ndarray,
    load: np.ndarray,
    dt_s: np.ndarray,
    hit_full: np.ndarray,
    hit_empty: np.ndarray,
    ledger: EnergyLedger,
) -> np.ndarray:
    """Advance the battery over a segment of constant power; update ``ledger`` in place.

    Args:
        energy_wh: float[N] charge at the segment start [Wh].
        gen_w, load: float[N] generation and demanded load [W].
        dt_s: float[N] segment length [s] (0 for satellites already at the step end).
        hit_full, hit_empty: bool[N] the segment ends exactly when the battery fills / empties;
            the charge is then set to the bound exactly so no rounding leaks past it.

    Returns:
        float[N] charge at the segment end [Wh], always in [0, battery_wh].

    A battery at 0 with a deficit serves only what the array generates (the rest of the
    load goes unserved: the satellite is browned out); a full battery with a surplus
    curtails it.
    """
    cap = power.battery_wh
    net = gen_w - load
    charging = net > 0
    new = energy_wh + np.where(
        charging,
        net * power.charge_efficiency * dt_s * WH_PER_WS,
        net / power.discharge_efficiency * dt_s * WH_PER_WS,
    )
    new = np.where(hit_full, cap, np.where(hit_empty, 0.0, np.clip(new, 0.0, cap)))
    delta = new - energy_wh
    charged = np.where(delta > 0, delta, 0.0)
    discharged = np.where(delta < 0, -delta, 0.0)
    generated = gen_w * dt_s * WH_PER_WS
    bus_in = charged / power.charge_efficiency
    bus_out = discharged * power.discharge_efficiency
    # Load served: all of it, unless the battery could not cover the deficit.
    used = np.minimum(load * dt_s * WH_PER_WS, generated - bus_in + bus_out)
    ledger.generated += generated
    ledger.used += used
    ledger.charged += charged
    ledger.discharged += discharged
    ledger.curtailed += generated - used - bus_in + bus_out
    return new


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
