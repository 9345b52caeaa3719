"""Look-ahead from the precomputed geometry: terminator crossings, eclipses, contacts, charge.

Everything here is derived once per episode from ``sunlit[T, N]`` and ``sunlit_fraction[T, N]``
(vectorised, no loop over satellites), then read per step in O(N).
"""

from __future__ import annotations

import numpy as np

from orbit_env.config import PowerConfig
from orbit_env.sim.links import next_index

MU_KM3_S2 = 398600.4418


def orbit_period_s(position_km: np.ndarray, valid: np.ndarray) -> float:
    """Mean orbital period [s] from the radii of the valid satellites at the first sample."""
    r = np.linalg.norm(position_km[0][valid[0]].astype(float), axis=1)
    a = float(r.mean()) if r.size else 6378.137 + 550.0
    return float(2 * np.pi * np.sqrt(a**3 / MU_KM3_S2))


class SunSchedule:
    """Crossings and eclipses of every satellite on the time grid.

    Args:
        sunlit: bool[T, N] at the samples.
        sunlit_fraction: float[T, N] share of step k in sunlight.
        dt_s: grid step [s].
        period_s: orbital period [s] (the window of ``sunlit_next_orbit``).

    Attributes (float64[T, N], times in seconds since epoch, ``inf`` = not on the grid):
        next_crossing_s: first terminator crossing at or after t_k.
        eclipse_left_s: if in eclipse at t_k, time until it ends; else the length of the
            next eclipse (0 if none starts on the grid).
        next_entry_s: start of the next eclipse at or after t_k.
        sunlit_next_orbit: sunlit share of [t_k, t_k + period).
    """

    def __init__(self, sunlit: np.ndarray, sunlit_fraction: np.ndarray, dt_s: float, period_s: float):
        t, n = sunlit.shape
        t_s = np.arange(t) * dt_s
        lit0, lit1 = sunlit[:-1], sunlit[1:]
        frac = sunlit_fraction[:-1].astype(float)
        k_col = t_s[:-1, None]
        entry = lit0 & ~lit1
        exit_ = ~lit0 & lit1
        entry_t = np.where(entry, k_col + frac * dt_s, np.inf)
        exit_t = np.where(exit_, k_col + dt_s - frac * dt_s, np.inf)
        pad = np.full((1, n), np.inf)
        self.next_entry_s = _next_time(np.vstack([entry_t, pad]))
        next_exit = _next_time(np.vstack([exit_t, pad]))
        self.next_crossing_s = np.minimum(self.next_entry_s, next_exit)
        # length of the eclipse that starts at each entry step: the first exit after it
        with np.errstate(invalid="ignore"):  # inf - inf where there is no entry
            entry_len = np.where(entry, next_exit[1:] - entry_t, np.inf)
        entry_idx = next_index(np.vstack([entry, np.zeros((1, n), dtype=bool)]))
        grid_end = t_s[-1]
        lengths = np.vstack([entry_len, pad])
        nxt_len = np.take_along_axis(lengths, np.minimum(entry_idx, t - 1), axis=0)
        nxt_len = np.where(entry_idx < t, np.minimum(nxt_len, grid_end - self.next_entry_s), 0.0)
        in_eclipse_left = np.minimum(next_exit, grid_end) - t_s[:, None]
        self.eclipse_left_s = np.where(sunlit, nxt_len, in_eclipse_left)
        window = max(1, int(round(period_s / dt_s)))
        csum = np.vstack([np.zeros((1, n)), np.cumsum(sunlit_fraction.astype(float), axis=0)])
        end = np.minimum(np.arange(t) + window, t)
        count = (end - np.arange(t))[:, None]
        self.sunlit_next_orbit = (csum[end] - csum[:t]) / np.maximum(count, 1)


def _next_time(times: np.ndarray) -> np.ndarray:
    """Reverse running minimum: the first finite time at or after each row."""
    return np.minimum.accumulate(times[::-1], axis=0)[::-1]


def forecast_charge_wh(
    power: PowerConfig,
    energy_wh: np.ndarray,
    committed_s: np.ndarray,
    now_s: float,
    next_entry_s: np.ndarray,
    eclipse_s: np.ndarray,
    sunlit_now: np.ndarray,
    safe: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forecast charge [Wh] running ``committed_s`` slot-seconds of work as fast as slots allow.

    The satellite runs its committed work from now on all slots, in sunlight until the next
    eclipse entry and then through that eclipse on battery. Charge is clipped to
    [0, battery_wh] at each phase boundary.

    Args:
        energy_wh: float[N] charge now.
        committed_s: float[N] work to run (running + queued, plus a candidate job) [slot-s].
        next_entry_s, eclipse_s: float[N] next eclipse entry [s since epoch] and its length
            (the remaining length when in eclipse now) [s].
        sunlit_now: bool[N].
        safe: bool[N] in safe mode (no work runs).

    Returns:
        (after_queue_wh, at_entry_wh, after_eclipse_wh), float[N] each: charge once the
        committed work is done (at current illumination), at the next eclipse entry, and at
        the end of the next eclipse.
    """
    a = power.accelerators
    span_w = power.accelerator_w - power.accelerator_idle_w
    base_w = np.where(safe, power.bus_w, power.bus_w + a * power.accelerator_idle_w)
    gen_w = np.where(sunlit_now, power.solar_array_w, 0.0)
    work = np.where(safe, 0.0, committed_s)
    cap = power.battery_wh

    def step(e_wh: np.ndarray, secs: np.ndarray, gen: np.ndarray, work_s: np.ndarray) -> np.ndarray:
        net_wh = (gen * secs - base_w * secs - work_s * span_w) / 3600.0
        delta = np.where(net_wh > 0, net_wh * power.charge_efficiency, net_wh / power.discharge_efficiency)
        return np.minimum(e_wh + delta, cap)

    busy_s = work / a  # time to clear the committed work on all slots
    after_queue = step(energy_wh, busy_s, gen_w, work)
    to_entry = np.where(sunlit_now, np.clip(next_entry_s - now_s, 0.0, 1e7), 0.0)
    work_before = np.minimum(work, a * to_entry)
    at_entry = step(energy_wh, to_entry, gen_w, work_before)
    ecl = np.clip(eclipse_s, 0.0, 1e7)
    work_in_eclipse = np.minimum(work - work_before, a * ecl)
    after_eclipse = step(at_entry, ecl, np.zeros_like(gen_w), work_in_eclipse)
    return after_queue, at_entry, after_eclipse
