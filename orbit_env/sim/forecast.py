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


class ChargeForecast:
    """Charge forecasts [Wh] for one moment, cheap to evaluate for many workloads.

    The satellite runs a committed workload (slot-seconds) from now on all its slots as fast
    as they allow: in sunlight until its next eclipse entry, then through that eclipse on
    battery. Charge is capped at ``battery_wh`` at each phase boundary but not floored: a
    negative forecast is the shortfall. Satellites in safe mode run no work.

    Args:
        energy_wh: float[N] charge now.
        next_entry_s, eclipse_s: float[N] next eclipse entry [s since epoch] and its length
            (the remaining length when in eclipse now) [s].
        sunlit_now: bool[N].
        safe: bool[N] in safe mode.
    """

    def __init__(
        self,
        power: PowerConfig,
        energy_wh: np.ndarray,
        now_s: float,
        next_entry_s: np.ndarray,
        eclipse_s: np.ndarray,
        sunlit_now: np.ndarray,
        safe: np.ndarray,
    ) -> None:
        a = power.accelerators
        self.power = power
        self.energy_wh = energy_wh
        self.safe = safe
        self.slots = a
        self.span_wh_per_s = (power.accelerator_w - power.accelerator_idle_w) / 3600.0
        base_w = np.where(safe, power.bus_w, power.bus_w + a * power.accelerator_idle_w)
        gen_w = np.where(sunlit_now, power.solar_array_w, 0.0)
        self.sun_net_wh_per_s = (gen_w - base_w) / 3600.0
        to_entry = np.where(sunlit_now, np.clip(next_entry_s - now_s, 0.0, 1e7), 0.0)
        ecl = np.clip(eclipse_s, 0.0, 1e7)
        self.slot_s_before = a * to_entry
        self.slot_s_eclipse = a * ecl
        self.net_before_wh = self.sun_net_wh_per_s * to_entry
        self.eclipse_base_wh = base_w * ecl / 3600.0

    def _charge(self, e_wh: np.ndarray, net_wh: np.ndarray) -> np.ndarray:
        p = self.power
        delta = np.where(net_wh > 0, net_wh * p.charge_efficiency, net_wh / p.discharge_efficiency)
        return np.minimum(e_wh + delta, p.battery_wh)

    def _work(self, committed_s: np.ndarray) -> np.ndarray:
        return np.where(self.safe, 0.0, committed_s)

    def after_queue(self, committed_s: np.ndarray) -> np.ndarray:
        """Charge once the committed work is done, at the current illumination."""
        work = self._work(committed_s)
        net = self.sun_net_wh_per_s * (work / self.slots) - work * self.span_wh_per_s
        return self._charge(self.energy_wh, net)

    def at_entry(self, committed_s: np.ndarray) -> np.ndarray:
        """Charge at the next eclipse entry (now, when in eclipse)."""
        work = self._work(committed_s)
        before = np.minimum(work, self.slot_s_before)
        return self._charge(self.energy_wh, self.net_before_wh - before * self.span_wh_per_s)

    def after_eclipse(self, committed_s: np.ndarray) -> np.ndarray:
        """Charge at the end of the next eclipse (of the current one, when in eclipse)."""
        work = self._work(committed_s)
        before = np.minimum(work, self.slot_s_before)
        entry = self._charge(self.energy_wh, self.net_before_wh - before * self.span_wh_per_s)
        during = np.minimum(work - before, self.slot_s_eclipse)
        drain = self.eclipse_base_wh + during * self.span_wh_per_s
        return entry - drain / self.power.discharge_efficiency
