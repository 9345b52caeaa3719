"""Constellation builders, TLE reading and writing."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sgp4.api import SatrecArray

from orbit_env.sim.orbits import Constellation, GroundStation

FIXTURES = Path(__file__).parent / "fixtures"
EPOCH = datetime(2026, 3, 20, 6, 30, 12, 345678, tzinfo=timezone.utc)

ISS_L1 = "1 25544U 98067A   23086.20188432  .00024982  00000+0  45015-3 0  9999"
ISS_L2 = "2 25544  51.6429  14.7356 0005804 135.3885   8.0988 15.49616489389078"
HST_L1 = "1 20580U 90037B   23064.83200083  .00007834  00000-0  43160-3 0  9992"
HST_L2 = "2 20580  28.4682 235.2297 0002557 354.3243 140.8791 15.12194387605798"


def _positions(constellation: Constellation, jd0: float, hours: float = 24.0) -> np.ndarray:
    fr = np.arange(int(hours * 60) + 1) / 1440.0
    _, r, _ = SatrecArray(constellation.satrecs).sgp4(np.full(len(fr), jd0), fr)
    return r


def test_from_tle_reads_two_and_three_line_sets_from_text_and_path(tmp_path):
    two = Constellation.from_tle(f"{ISS_L1}\n{ISS_L2}\n\n{HST_L1}\n{HST_L2}\n")
    assert len(two) == 2 and two.names == ("25544", "20580") and two.kind == "tle"
    three = Constellation.from_tle(f"0 ISS (ZARYA)\n{ISS_L1}\n{ISS_L2}\nHST  \n{HST_L1}\n{HST_L2}")
    assert three.names == ("ISS (ZARYA)", "HST")
    path = tmp_path / "mixed.tle"
    path.write_text(f"ISS (ZARYA)\n{ISS_L1}\n{ISS_L2}\n{HST_L1}\n{HST_L2}\n")
    for src in (path, str(path)):
        mixed = Constellation.from_tle(src)
        assert mixed.names == ("ISS (ZARYA)", "20580")
    real = Constellation.from_tle(FIXTURES / "real_satellites.tle")
    assert len(real) >= 20
    assert real.epoch.tzinfo is not None


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("\n  \n", "empty"),
        (f"{ISS_L1[:-2]}\n{ISS_L2}", "line 1: .*69 characters"),
        (f"{ISS_L1}\n{ISS_L2} extra", "line 2: .*69 characters"),
        (f"{ISS_L1[:-1]}0\n{ISS_L2}", "line 1: bad checksum"),
        (f"{ISS_L1}\n{ISS_L2[:-1]}0", "line 2: bad checksum"),
        (f"NAME\n{ISS_L1}", "line 2: line 1 without a line 2 .missing line 2"),
        (f"{ISS_L1}\n{HST_L1}\n{HST_L2}", "line 2: expected line 2 .*missing line 2"),
        (f"{ISS_L2}", "line 1: line 2 without a preceding line 1"),
        (f"NAME\nOTHER NAME\n{ISS_L1}\n{ISS_L2}", "line 2: expected line 1"),
        (f"NAME\n\n{ISS_L1}\n{HST_L2}", "line 4: catalogue number '20580' mismatched"),
        (f"ISS ZARYÄ\n{ISS_L1}\n{ISS_L2}", "line 1: non-ASCII"),
        (f"{ISS_L1}\n{ISS_L2}\nDANGLING NAME", "line 3: name 'DANGLING NAME' is not followed by line 1"),
    ],
)
def test_malformed_tle_raises_value_error_naming_line_and_defect(text, match):
    with pytest.raises(ValueError, match=match):
        Constellation.from_tle(text)


@settings(max_examples=60, deadline=None)
@given(pos=st.integers(0, 68), char=st.sampled_from("0123456789X-+. "))
def test_corrupted_tle_never_crashes_except_with_value_error(pos, char):
    line1 = ISS_L1[:pos] + char + ISS_L1[pos + 1 :]
    try:
        c = Constellation.from_tle(f"{line1}\n{ISS_L2}")
    except ValueError as exc:
        assert "line" in str(exc)
    else:
        assert len(c) == 1


def test_satellite_sgp4_cannot_propagate_becomes_invalid_for_good():
    from orbit_env.sim.geometry import compute_geometry

    text = (FIXTURES / "decaying.tle").read_text() + f"ISS\n{ISS_L1}\n{ISS_L2}\n"
    c = Constellation.from_tle(text)
    start = datetime(2023, 12, 3, tzinfo=timezone.utc)  # the decaying object's epoch
    geo = compute_geometry(c, start, 86400.0, 60.0, [GroundStation("g", 0.0, 0.0)], cache=False)
    valid = geo.valid[:, 0]
    assert valid[0] and not valid[-1]
    first_bad = int(np.argmin(valid))
    assert not valid[first_bad:].any()
    assert np.all(geo.position_km[first_bad:, 0] == 0.0) and np.isfinite(geo.position_km).all()
    assert not geo.sunlit[first_bad:, 0].any() and not geo.station_visible[first_bad:, :, 0].any()
    assert np.all(geo.sunlit_fraction[first_bad:, 0] == 0.0)
    assert geo.valid[:, 1].all()  # the ISS, far from its own epoch, is unaffected


def test_walker_to_tle_round_trip_reproduces_positions_within_1_m():
    w = Constellation.walker(64, 8, 1, 550.0, 53.0, EPOCH)
    back = Constellation.from_tle("\n".join("\n".join(t) for t in w.to_tle()))
    assert back.names == w.names
    jd0 = w.satrecs[0].jdsatepoch + w.satrecs[0].jdsatepochF
    err_m = np.linalg.norm(_positions(w, jd0) - _positions(back, jd0), axis=-1).max() * 1000
    print(f"walker to_tle -> from_tle max position difference over 24 h: {err_m:.2e} m")
    assert err_m < 1.0


def test_cluster_and_real_tle_round_trip_within_1_m():
    for c in (
        Constellation.dawn_dusk_cluster(6, epoch=EPOCH),
        Constellation.from_tle(FIXTURES / "real_satellites.tle"),
    ):
        back = Constellation.from_tle("\n".join("\n".join(t) for t in c.to_tle()))
        jd0 = c.satrecs[0].jdsatepoch + c.satrecs[0].jdsatepochF
        err_m = np.linalg.norm(_positions(c, jd0) - _positions(back, jd0), axis=-1).max() * 1000
        assert err_m < 1.0, c.kind


def test_walker_names_length_metadata_and_geometry():
    w = Constellation.walker(24, 4, 2, 700.0, 60.0, EPOCH)
    assert len(w) == 24 and w.kind == "walker" and w.planes == 4 and w.per_plane == 6
    assert w.names[0] == "W-P00-S00" and w.names[7] == "W-P01-S01" and w.names[-1] == "W-P03-S05"
    assert w.plane_of.tolist() == [p for p in range(4) for _ in range(6)]
    assert w.slot_of.tolist() == list(range(6)) * 4
    assert abs((w.epoch - EPOCH).total_seconds()) < 1e-3
    raan = sorted({round(math.degrees(s.nodeo), 4) for s in w.satrecs})
    assert raan == [0.0, 90.0, 180.0, 270.0]
    # phasing: slot 0 of plane 1 is 360 * f * p / t = 30 deg ahead of plane 0
    assert math.degrees(w.satrecs[6].mo) == pytest.approx(30.0, abs=1e-4)


def test_cluster_names_kind_and_sun_synchronous_inclination():
    c = Constellation.dawn_dusk_cluster(5, epoch=EPOCH)
    assert len(c) == 5 and c.kind == "dawn_dusk_cluster" and c.names[0] == "DD-000"
    assert math.degrees(c.satrecs[0].inclo) == pytest.approx(98.0, abs=0.1)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"total": 10, "planes": 3}, ValueError, "total must be a multiple of planes"),
        ({"total": 0}, ValueError, "total must be in"),
        ({"total": 12.5}, TypeError, "total must be an integer"),
        ({"phasing": 4}, ValueError, "phasing must be in"),
        ({"altitude_km": 0.0}, ValueError, "altitude_km must be in"),
        ({"altitude_km": -3.0}, ValueError, "altitude_km must be in"),
        ({"inclination_deg": 190.0}, ValueError, "inclination_deg must be in"),
        ({"epoch": datetime(2026, 1, 1)}, ValueError, "epoch must be timezone-aware"),
        ({"epoch": "2026-01-01"}, TypeError, "epoch must be a timezone-aware datetime"),
    ],
)
def test_walker_bad_arguments_name_the_argument_and_range(kwargs, exc, match):
    args = {
        "total": 12,
        "planes": 4,
        "phasing": 1,
        "altitude_km": 550.0,
        "inclination_deg": 53.0,
        "epoch": EPOCH,
    }
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        Constellation.walker(**args)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"n": 0}, ValueError, "n must be in"),
        ({"altitude_km": -1.0}, ValueError, "altitude_km must be in"),
        ({"ltan_h": 24.0}, ValueError, "ltan_h must be in"),
        ({"radius_km": 0.0}, ValueError, "radius_km must be in"),
        ({"epoch": None}, TypeError, "epoch must be a timezone-aware datetime"),
    ],
)
def test_cluster_bad_arguments_name_the_argument_and_range(kwargs, exc, match):
    args = {"n": 4, "epoch": EPOCH}
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        Constellation.dawn_dusk_cluster(**args)
