"""Geometry grid: agreement with skyfield, eclipses, clusters, ISLs, hop counts, cache."""

from __future__ import annotations

import dataclasses
from collections import deque
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from skyfield.api import EarthSatellite, wgs84

from orbit_env.config import LinkConfig
from orbit_env.sim import ephemeris, geometry
from orbit_env.sim.geometry import compute_geometry
from orbit_env.sim.orbits import Constellation, GroundStation

FIXTURES = Path(__file__).parent / "fixtures"
EQUINOX = datetime(2026, 3, 20, tzinfo=timezone.utc)
STATIONS = (
    GroundStation("svalbard", 78.23, 15.39, alt_m=450.0, min_elevation_deg=5.0),
    GroundStation("madrid", 40.43, -4.25, alt_m=700.0, min_elevation_deg=10.0),
    GroundStation("santiago", -33.15, -70.67, alt_m=500.0, min_elevation_deg=15.0),
    GroundStation("hawaii", 19.8, -155.5, min_elevation_deg=0.0),
)


def _skyfield_flags(constellation, geo):
    ts, eph = ephemeris.timescale(), ephemeris.ephemeris()
    t = ephemeris.times(geo.start, geo.t_s)
    lit = np.zeros_like(geo.sunlit)
    vis = np.zeros_like(geo.station_visible)
    topos = [wgs84.latlon(s.lat_deg, s.lon_deg, elevation_m=s.alt_m) for s in STATIONS]
    for n, satrec in enumerate(constellation.satrecs):
        sat = EarthSatellite.from_satrec(satrec, ts)
        lit[:, n] = sat.at(t).is_sunlit(eph)
        for g, (station, place) in enumerate(zip(STATIONS, topos, strict=True)):
            alt, _, _ = (sat - place).at(t).altaz()
            vis[:, g, n] = alt.degrees >= station.min_elevation_deg
    return lit, vis


@pytest.mark.parametrize("which", ["walker", "real_tle"])
def test_sunlit_and_visibility_agree_with_skyfield(which):
    if which == "walker":
        c = Constellation.walker(24, 4, 1, 550.0, 53.0, EQUINOX)
        start = EQUINOX + timedelta(hours=3)
    else:
        c = Constellation.from_tle(FIXTURES / "real_satellites.tle")
        start = datetime(2023, 3, 27, 0, 0, tzinfo=timezone.utc)  # around the TLEs' epochs
    assert len(c) >= 20
    geo = compute_geometry(c, start, 6 * 3600.0, 60.0, STATIONS, cache=False)
    assert geo.valid.all()
    lit, vis = _skyfield_flags(c, geo)
    sun_agree = (lit == geo.sunlit).mean()
    vis_agree = (vis == geo.station_visible).mean()
    print(
        f"{which}: sunlit agreement {100 * sun_agree:.4f} % of {lit.size} samples "
        f"({lit.mean():.3f} sunlit); visibility agreement {100 * vis_agree:.4f} % of {vis.size} "
        f"({vis.sum()} visible)"
    )
    assert sun_agree >= 0.9999
    assert vis_agree >= 0.9999
    assert 0 < lit.mean() < 1 and vis.sum() > 50  # the comparison is not vacuous


def _bisect_skyfield(sat, eph, start, lo_s, hi_s):
    ts = ephemeris.timescale()

    def lit(sec):
        return bool(sat.at(ts.from_datetime(start + timedelta(seconds=sec))).is_sunlit(eph))

    lit_lo = lit(lo_s)
    assert lit(hi_s) != lit_lo
    while hi_s - lo_s > 1e-3:
        mid = 0.5 * (lo_s + hi_s)
        if lit(mid) == lit_lo:
            lo_s = mid
        else:
            hi_s = mid
    return 0.5 * (lo_s + hi_s)


def test_eclipse_entry_and_exit_times_match_skyfield_within_2_s():
    eph, ts = ephemeris.ephemeris(), ephemeris.timescale()
    cases = [
        (Constellation.walker(24, 4, 1, 550.0, 53.0, EQUINOX), EQUINOX, [0, 7, 13]),
        (
            Constellation.from_tle(FIXTURES / "real_satellites.tle"),
            datetime(2023, 3, 27, tzinfo=timezone.utc),
            [0, 6, 26, 28],
        ),
    ]
    errors = []
    for c, start, sats in cases:
        geo = compute_geometry(c, start, 6 * 3600.0, 60.0, (), cache=False)
        for n in sats:
            sat = EarthSatellite.from_satrec(c.satrecs[n], ts)
            for entry, exit_ in geo.eclipse_intervals(n):
                for when in (entry, exit_):
                    if when in (0.0, geo.t_s[-1]):  # clipped at the grid ends
                        continue
                    k = int(when // geo.dt_s)
                    ref = _bisect_skyfield(sat, eph, start, geo.t_s[k], geo.t_s[k] + geo.dt_s)
                    errors.append(abs(when - ref))
    print(f"eclipse timing vs skyfield: {len(errors)} events, max error {max(errors):.3f} s")
    assert len(errors) >= 20
    assert max(errors) <= 2.0


def test_dawn_dusk_cluster_sunlight_and_formation_spread():
    fractions = {}
    for day in (datetime(2026, 3, 20, tzinfo=timezone.utc), datetime(2026, 12, 21, tzinfo=timezone.utc)):
        c = Constellation.dawn_dusk_cluster(8, altitude_km=650.0, ltan_h=6.0, radius_km=1.0, epoch=day)
        geo = compute_geometry(c, day, 86400.0, 60.0, (), cache=False)
        fractions[day.month] = float(geo.sunlit_fraction[:-1].mean())
        pos = geo.position_km.astype(np.float64)
        spread = np.linalg.norm(pos - pos.mean(axis=1, keepdims=True), axis=-1).max()
        print(
            f"cluster {day:%Y-%m-%d}: sunlit fraction {fractions[day.month]:.4f}, max spread {spread:.3f} km"
        )
        assert spread <= 2 * 1.0
        pair = np.linalg.norm(pos[:, :, None] - pos[:, None, :], axis=-1)
        pair[:, np.arange(8), np.arange(8)] = np.inf
        assert pair.min() > 0.05  # members never collide
    assert fractions[3] >= 0.995
    assert 0.74 <= fractions[12] <= 0.84


def test_walker_550_km_53_deg_daily_sunlit_fraction():
    w = Constellation.walker(64, 8, 1, 550.0, 53.0, EQUINOX)
    geo = compute_geometry(w, EQUINOX, 86400.0, 60.0, (), isl=LinkConfig(), cache=False)
    frac = float(geo.sunlit_fraction[:-1].mean())
    print(f"walker 64 x 550 km x 53 deg sunlit fraction over 2026-03-20: {frac:.4f}")
    assert 0.60 <= frac <= 0.72
    # +Grid: two links per satellite
    assert geo.isl_pairs.shape == (2 * len(w), 2) and geo.isl_pairs.dtype == np.int32
    assert np.all(geo.isl_pairs[:, 0] < geo.isl_pairs[:, 1])
    # isl_active is exactly: range <= max and line of sight clear of Earth + 80 km
    p = geo.position_km.astype(np.float64)
    a, b = p[:, geo.isl_pairs[:, 0]], p[:, geo.isl_pairs[:, 1]]
    d = b - a
    rng = np.linalg.norm(d, axis=-1)
    u = np.clip(-np.einsum("tpk,tpk->tp", a, d) / rng**2, 0, 1)
    clear = np.linalg.norm(a + u[..., None] * d, axis=-1) - 6378.137 - 80.0
    expected = (rng <= 5000.0) & (clear > 0)
    margin = (np.abs(rng - 5000.0) > 0.01) & (np.abs(clear) > 0.01)
    assert np.array_equal(geo.isl_active[margin], expected[margin])
    assert geo.isl_active.any() and not geo.isl_active.all()


def test_grid_pairs_include_seam_and_in_plane_neighbours():
    w = Constellation.walker(12, 3, 1, 1200.0, 60.0, EQUINOX)
    pairs = {tuple(p) for p in geometry._grid_pairs(w)}
    assert len(pairs) == 24
    assert (0, 1) in pairs and (0, 3) in pairs  # in-plane wrap (slot 3 -> 0) and next plane
    assert (0, 8) in pairs  # seam: plane 2 slot 0 <-> plane 0 slot 0


def test_isl_active_respects_range_and_earth_blockage():
    r = 7000.0

    # pair 0: 1000 km apart, clear; pair 1: opposite sides of Earth (blocked);
    # pair 2: clear but 6000 km apart (out of range); pair 3: chord passes at 6430 km (< 6378 + 80);
    # pair 4: chord passes at 6500 km (clear); pair 5: like pair 0 but one end invalid.
    def chord(min_dist, radius=6800.0):
        half = np.sqrt(radius**2 - min_dist**2)
        return [min_dist, -half, 0.0], [min_dist, half, 0.0]

    pts = [
        [r, 0, 0],
        [r, 1000.0, 0],
        [0, 0, r],
        [0, 0, -r],
        [0, r, 0],
        [0, r - 6000 / np.sqrt(2), 6000 / np.sqrt(2)],
        *chord(6430.0),
        *chord(6500.0),
        [-r, 0, 0],
        [-r, 1000.0, 0],
    ]
    pos = np.array([pts], dtype=np.float32)
    valid = np.ones((1, len(pts)), dtype=bool)
    valid[0, 11] = False
    pairs = np.array([[0, 1], [2, 3], [4, 5], [6, 7], [8, 9], [10, 11]], dtype=np.int32)
    active = geometry._isl_active(pos, valid, pairs, 5000.0, 80.0)
    assert active[0].tolist() == [True, False, False, False, True, False]
    assert np.linalg.norm(pos[0, 6] - pos[0, 7]) < 5000.0  # pair 3 is blocked, not out of range


def _bfs(adj, sources, n):
    dist = np.full(n, -1)
    queue = deque()
    for s in sources:
        dist[s] = 0
        queue.append(s)
    while queue:
        x = queue.popleft()
        for y in adj[x]:
            if dist[y] < 0:
                dist[y] = dist[x] + 1
                queue.append(y)
    return dist


def test_station_hops_match_bfs_and_sat_hops():
    w = Constellation.walker(36, 4, 1, 1000.0, 60.0, EQUINOX)
    link = LinkConfig(max_range_km=6000.0)
    geo = compute_geometry(w, EQUINOX, 6 * 3600.0, 300.0, STATIONS[:2], isl=link, cache=False)
    n = len(w)
    assert geo.station_hops.dtype == np.int16 and geo.station_hops.shape == (geo.T, 2, n)
    assert geo.station_hops.max() >= 2  # multi-hop paths exist
    for k in range(geo.T):
        adj = [[] for _ in range(n)]
        for i, j in geo.isl_pairs[geo.isl_active[k]]:
            adj[i].append(j)
            adj[j].append(i)
        for g in range(2):
            seen = np.flatnonzero(geo.station_visible[k, g])
            expected = _bfs(adj, seen, n)
            assert np.array_equal(geo.station_hops[k, g], expected), (k, g)
            via_sats = np.full(n, -1)
            for s in seen:
                h = geo.sat_hops(k, int(s))
                better = (h >= 0) & ((via_sats < 0) | (h < via_sats))
                via_sats[better] = h[better]
            assert np.array_equal(via_sats, expected)
        assert geo.sat_hops(k, 0)[0] == 0
        assert np.array_equal(geo.sat_hops(k, 0), _bfs(adj, [0], n))
    assert np.shares_memory(geo.sat_hops(3, 5), geo.sat_hops(3, 5))  # cached, not recomputed


def test_no_isl_gives_zero_pairs_and_visibility_hops():
    w = Constellation.walker(12, 3, 1, 550.0, 53.0, EQUINOX)
    for isl in (None, LinkConfig(isl_topology="none")):
        geo = compute_geometry(w, EQUINOX, 3600.0, 60.0, STATIONS, isl=isl, cache=False)
        assert geo.isl_pairs.shape == (0, 2) and geo.isl_active.shape == (geo.T, 0)
        assert np.array_equal(geo.station_hops, np.where(geo.station_visible, 0, -1))
        assert geo.sat_hops(0, 3).tolist() == [0 if i == 3 else -1 for i in range(12)]


def test_nearest_topology_on_tle_set():
    c = Constellation.from_tle(FIXTURES / "real_satellites.tle")
    link = LinkConfig(isl_neighbours=3, max_range_km=3000.0)
    geo = compute_geometry(
        c, datetime(2023, 3, 27, tzinfo=timezone.utc), 3600.0, 60.0, (), isl=link, cache=False
    )
    assert len(geo.isl_pairs) > 0 and np.all(geo.isl_pairs[:, 0] < geo.isl_pairs[:, 1])
    p = geo.position_km.astype(np.float64)
    rng = np.linalg.norm(p[:, geo.isl_pairs[:, 0]] - p[:, geo.isl_pairs[:, 1]], axis=-1)
    assert np.all(rng[geo.isl_active] <= 3000.0 + 1e-3)
    assert (rng.min(axis=0) <= 3000.0 + 1e-3).all()  # every candidate was in range at some sample


def test_grid_shapes_dtypes_and_subpoint():
    w = Constellation.walker(12, 3, 1, 550.0, 53.0, EQUINOX)
    geo = compute_geometry(w, EQUINOX, 3650.0, 60.0, STATIONS, cache=False)
    t, n, g = 62, 12, len(STATIONS)
    assert geo.t_s.dtype == np.float64 and geo.t_s.shape == (t,) and geo.t_s[-1] == 3660.0
    assert geo.position_km.dtype == np.float32 and geo.position_km.shape == (t, n, 3)
    assert geo.sun_km.shape == (t, 3) and geo.teme_to_itrs.shape == (t, 3, 3)
    assert geo.sunlit_fraction.dtype == np.float32
    assert geo.station_visible.shape == (t, g, n) and geo.station_hops.dtype == np.int16
    assert np.allclose(geo.teme_to_itrs @ geo.teme_to_itrs.transpose(0, 2, 1), np.eye(3), atol=1e-12)
    assert 1.45e8 < np.linalg.norm(geo.sun_km, axis=1).min() < 1.52e8
    assert np.array_equal(geo.sunlit_fraction[-1], geo.sunlit[-1].astype(np.float32))
    with pytest.raises(ValueError):
        geo.position_km[0, 0, 0] = 1.0
    lat, lon = geo.subpoint_deg(0).T
    assert np.all(np.abs(lat) <= 53.5) and np.all(np.abs(lon) <= 180.0)


def test_bad_arguments_raise():
    w = Constellation.walker(4, 2, 0, 550.0, 53.0, EQUINOX)
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        compute_geometry(w, datetime(2026, 1, 1), 60.0, 60.0, (), cache=False)
    with pytest.raises(ValueError, match="dt_s must be in"):
        compute_geometry(w, EQUINOX, 60.0, 0.0, (), cache=False)
    with pytest.raises(TypeError, match="stations"):
        compute_geometry(w, EQUINOX, 60.0, 60.0, ["madrid"], cache=False)
    with pytest.raises(ValueError, match="grid"):
        c = Constellation.dawn_dusk_cluster(3, epoch=EQUINOX)
        compute_geometry(c, EQUINOX, 60.0, 60.0, (), isl=LinkConfig(isl_topology="grid"), cache=False)


def _same(a, b):
    for name in geometry._ARRAY_FIELDS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.names == b.names and a.station_names == b.station_names and a.start == b.start


def test_cache_round_trip_corruption_and_opt_out(tmp_path, monkeypatch):
    monkeypatch.setenv("ORBIT_ENV_CACHE", str(tmp_path / "cache"))
    w = Constellation.walker(12, 3, 1, 550.0, 53.0, EQUINOX)
    args = (w, EQUINOX, 7200.0, 60.0, STATIONS)
    first = compute_geometry(*args, isl=LinkConfig())
    files = list((tmp_path / "cache").glob("*.npz"))
    assert len(files) == 1 and not list((tmp_path / "cache").glob("*.tmp"))

    real_compute = geometry._compute

    def boom(*a, **k):
        raise AssertionError("should have loaded from disk")

    monkeypatch.setattr(geometry, "_compute", boom)
    _same(first, compute_geometry(*args, isl=LinkConfig()))
    monkeypatch.setattr(geometry, "_compute", real_compute)

    # another input gives another file
    compute_geometry(*args)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2

    data = files[0].read_bytes()
    for bad in (b"not a zip file", data[: len(data) // 2]):
        files[0].write_bytes(bad)
        with pytest.warns(UserWarning, match="unreadable"):
            again = compute_geometry(*args, isl=LinkConfig())
        _same(first, again)
        monkeypatch.setattr(geometry, "_compute", boom)
        _same(first, compute_geometry(*args, isl=LinkConfig()))  # rewritten, loads cleanly
        monkeypatch.setattr(geometry, "_compute", real_compute)

    monkeypatch.setenv("ORBIT_ENV_CACHE", str(tmp_path / "off"))
    _same(first, compute_geometry(*args, isl=LinkConfig(), cache=False))
    assert not (tmp_path / "off").exists()


def test_unwritable_cache_dir_still_returns_result(tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    monkeypatch.setenv("ORBIT_ENV_CACHE", str(blocker / "sub"))  # cannot mkdir under a file
    w = Constellation.walker(4, 2, 0, 550.0, 53.0, EQUINOX)
    with pytest.warns(UserWarning, match="could not write"):
        geo = compute_geometry(w, EQUINOX, 600.0, 60.0, STATIONS)
    _same(geo, compute_geometry(w, EQUINOX, 600.0, 60.0, STATIONS, cache=False))


def test_on_demand_sat_hops_equal_the_all_pairs_table():
    """The compiled breadth-first search (used where N is too large to precompute every pair)
    gives the all-pairs table's hops, invalid sources and unreachable satellites included."""
    w = Constellation.walker(36, 4, 1, 1000.0, 60.0, EQUINOX)
    geo = compute_geometry(
        w, EQUINOX, 6 * 3600.0, 300.0, STATIONS[:2], isl=LinkConfig(max_range_km=6000.0), cache=False
    )
    assert geo.sat_hops_all.shape[0] == geo.T and (geo.sat_hops_all < 0).any()
    valid = geo.valid.copy()
    valid[4, 7] = False  # a satellite whose propagation failed at sample 4: no hops from it
    table = geo.sat_hops_all.copy()
    table[4, 7] = -1
    lazy = dataclasses.replace(geo, valid=valid, sat_hops_all=np.zeros((0, 0, 0), dtype=np.int16))
    for k in range(geo.T):
        for source in range(len(w)):
            hops = lazy.sat_hops(k, source)
            assert hops.dtype == np.int16 and not hops.flags.writeable
            assert np.array_equal(hops, table[k, source]), (k, source)
