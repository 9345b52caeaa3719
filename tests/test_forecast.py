"""Look-ahead arrays against hand-computed crossings and charge."""

from __future__ import annotations

import numpy as np
import pytest

from orbit_env.config import PowerConfig
from orbit_env.sim.forecast import ChargeForecast, SunSchedule


def schedule_one_eclipse() -> SunSchedule:
    # 20 samples at 60 s; eclipse from 330 s to 750 s (steps 5..12).
    dt = 60.0
    t = np.arange(20) * dt
    entry, exit_ = 330.0, 750.0
    sunlit = ~((t >= entry) & (t < exit_))
    frac = np.zeros(20)
    for k in range(20):
        lo, hi = t[k], t[k] + dt
        dark = max(0.0, min(hi, exit_) - max(lo, entry))
        frac[k] = 1.0 - dark / dt
    return SunSchedule(sunlit[:, None], frac[:, None], dt, period_s=600.0)


def test_crossings_and_eclipse_lengths_follow_the_terminator():
    s = schedule_one_eclipse()
    assert s.next_entry_s[0, 0] == pytest.approx(330.0)
    assert s.next_crossing_s[0, 0] == pytest.approx(330.0)
    assert s.eclipse_left_s[0, 0] == pytest.approx(420.0)
    assert s.next_crossing_s[6, 0] == pytest.approx(750.0)  # in eclipse at 360 s: next is the exit
    assert s.eclipse_left_s[6, 0] == pytest.approx(750.0 - 360.0)
    assert s.eclipse_left_s[15, 0] == 0.0  # no eclipse ahead on the grid
    assert np.isinf(s.next_entry_s[15, 0])
    assert s.sunlit_next_orbit[0, 0] == pytest.approx((600.0 - 270.0) / 600.0)


def test_charge_forecast_matches_a_hand_computed_eclipse():
    p = PowerConfig(battery_wh=2000.0, charge_efficiency=1.0, discharge_efficiency=1.0)
    e = np.array([1000.0])
    # 600 s to the eclipse, 1800 s eclipse, 4 slots x 1800 s of committed work.
    fc = ChargeForecast(p, e, 0.0, np.array([600.0]), np.array([1800.0]), np.array([True]), np.array([False]))
    committed_s = np.array([4 * 1800.0])
    after_q, entry, after = (
        fc.after_queue(committed_s),
        fc.at_entry(committed_s),
        fc.after_eclipse(committed_s),
    )
    base = 400 + 4 * 50
    span = 650
    assert entry[0] == pytest.approx(1000 + (3600 - base) * 600 / 3600 - 4 * 600 * span / 3600)
    in_ecl_work = 4 * 1800.0 - 4 * 600.0
    assert after[0] == pytest.approx(entry[0] - (base * 1800 + in_ecl_work * span) / 3600)
    assert after_q[0] == pytest.approx(1000 + (3600 - base) * 1800 / 3600 - 4 * 1800 * span / 3600)
