"""Look-ahead from the precomputed geometry: terminator crossings, eclipses, contacts, charge.

Everything here is derived once per episode from ``sunlit[T, N]`` and ``sunlit_fraction[T, N]``
(vectorised, no loop over satellites), then read per step in O(N).
"""

from __future__ import annotations

import math

import numpy as np

from orbit_env.config import PowerConfig
from orbit_env.sim.kernels import njit
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


# ChargeForecast.table rows
ENERGY, SAFE, SUN_NET_WH_PER_S, SLOT_S_BEFORE, NET_BEFORE_WH, SLOT_S_ECLIPSE, ECLIPSE_BASE_WH = range(7)


@njit
def _fill_table(t, energy_wh, safe, sunlit_now, next_entry_s, eclipse_s, now_s, slots, watts) -> None:
    """The rows of :attr:`ChargeForecast.table` per satellite. ``watts``: bus in safe mode,
    bus with idle accelerators, solar array [W]. Times to the eclipse are clipped to [0, 1e7] s."""
    safe_w, idle_w, solar_w = watts
    for i in range(energy_wh.shape[0]):
        base_w = safe_w if safe[i] else idle_w
        gen_w = solar_w if sunlit_now[i] else 0.0
        to_entry = 0.0
        if sunlit_now[i]:
            to_entry = _clip(next_entry_s[i] - now_s)
        ecl = _clip(eclipse_s[i])
        sun_net = (gen_w - base_w) / 3600.0
        t[ENERGY, i] = energy_wh[i]
        t[SAFE, i] = 1.0 if safe[i] else 0.0
        t[SUN_NET_WH_PER_S, i] = sun_net
        t[SLOT_S_BEFORE, i] = slots * to_entry
        t[NET_BEFORE_WH, i] = sun_net * to_entry
        t[SLOT_S_ECLIPSE, i] = slots * ecl
        t[ECLIPSE_BASE_WH, i] = base_w * ecl / 3600.0


@njit
def _clip(x: float) -> float:
    """``x`` clipped to [0, 1e7] exactly as ``np.clip`` does it (NaN stays NaN, −0.0 gives 0.0)."""
    if math.isnan(x):
        return x
    x = x if x > 0.0 else 0.0
    return x if x < 1e7 else 1e7


# ChargeForecast.params entries
SPAN_WH_PER_S, CHARGE_EFF, DISCHARGE_EFF, BATTERY_WH, SLOTS = range(5)
# the forecasts _forecast computes
AFTER_QUEUE, AT_ENTRY, AFTER_ECLIPSE = range(3)


@njit
def _charge(e_wh: float, net_wh: float, params: np.ndarray) -> float:
    """Charge after a net energy ``net_wh`` from ``e_wh`` [Wh], capped at capacity, not floored."""
    delta = net_wh * params[CHARGE_EFF] if net_wh > 0 else net_wh / params[DISCHARGE_EFF]
    return min(e_wh + delta, params[BATTERY_WH])


@njit
def forecast_one(table: np.ndarray, params: np.ndarray, i: int, committed_s: float, which: int) -> float:
    """Satellite i's charge [Wh] once ``committed_s`` slot-seconds of work are done
    (``AFTER_QUEUE``), at its next eclipse entry (``AT_ENTRY``) or after that eclipse
    (``AFTER_ECLIPSE``): :class:`ChargeForecast`'s rule for one satellite."""
    work = 0.0 if table[SAFE, i] else committed_s
    span = params[SPAN_WH_PER_S]
    if which == AFTER_QUEUE:
        net = table[SUN_NET_WH_PER_S, i] * (work / params[SLOTS]) - work * span
        return _charge(table[ENERGY, i], net, params)
    before = min(work, table[SLOT_S_BEFORE, i])
    entry = _charge(table[ENERGY, i], table[NET_BEFORE_WH, i] - before * span, params)
    if which == AT_ENTRY:
        return entry
    during = min(work - before, table[SLOT_S_ECLIPSE, i])
    drain = table[ECLIPSE_BASE_WH, i] + during * span
    return entry - drain / params[DISCHARGE_EFF]


@njit
def _forecast(
    table: np.ndarray, params: np.ndarray, committed_s: np.ndarray, which: int, out: np.ndarray
) -> None:
    for i in range(committed_s.shape[0]):
        out[i] = forecast_one(table, params, i, committed_s[i], which)


def forecast_params(power: PowerConfig) -> np.ndarray:
    """float[5]: the forecast's constants (SPAN_WH_PER_S, CHARGE_EFF, DISCHARGE_EFF, BATTERY_WH,
    SLOTS) as :func:`forecast_one` reads them."""
    span_wh_per_s = (power.accelerator_w - power.accelerator_idle_w) / 3600.0
    return np.array(
        [
            span_wh_per_s,
            power.charge_efficiency,
            power.discharge_efficiency,
            power.battery_wh,
            power.accelerators,
        ],
        dtype=float,
    )


def forecast_watts(power: PowerConfig) -> tuple[float, float, float]:
    """The loads and generation :func:`_fill_table` takes [W]: bus in safe mode, bus with idle
    accelerators, solar array."""
    a = power.accelerators
    return float(power.bus_w), float(power.bus_w + a * power.accelerator_idle_w), float(power.solar_array_w)


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
        #: float[5]: SPAN_WH_PER_S, CHARGE_EFF, DISCHARGE_EFF, BATTERY_WH, SLOTS
        self.params = forecast_params(power)
        self.span_wh_per_s = float(self.params[SPAN_WH_PER_S])
        #: float[7, N] the per-satellite terms (rows ENERGY, SAFE, SUN_NET_WH_PER_S,
        #: SLOT_S_BEFORE, NET_BEFORE_WH, SLOT_S_ECLIPSE, ECLIPSE_BASE_WH), as the compiled
        #: :func:`forecast_one` reads them
        self.table = np.empty((7, energy_wh.shape[0]))
        _fill_table(
            self.table,
            energy_wh,
            safe,
            sunlit_now,
            next_entry_s,
            eclipse_s,
            float(now_s),
            a,
            forecast_watts(power),
        )

    def _run(self, committed_s: np.ndarray, which: int) -> np.ndarray:
        committed_s = np.asarray(committed_s, dtype=float)
        if committed_s.shape != self.energy_wh.shape:  # a scalar or a broadcastable array
            committed_s = np.broadcast_to(committed_s, self.energy_wh.shape)
        committed_s = np.ascontiguousarray(committed_s)
        out = np.empty(committed_s.shape[0])
        _forecast(self.table, self.params, committed_s, which, out)
        return out

    def after_queue(self, committed_s: np.ndarray) -> np.ndarray:
        """Charge once the committed work is done, at the current illumination."""
        return self._run(committed_s, AFTER_QUEUE)

    def at_entry(self, committed_s: np.ndarray) -> np.ndarray:
        """Charge at the next eclipse entry (now, when in eclipse)."""
        return self._run(committed_s, AT_ENTRY)

    def after_eclipse(self, committed_s: np.ndarray) -> np.ndarray:
        """Charge at the end of the next eclipse (of the current one, when in eclipse)."""
        return self._run(committed_s, AFTER_ECLIPSE)
