"""Precomputed geometry on a time grid: positions, sunlight, station visibility, ISLs, hop counts.

Everything is vectorised over ``[T, N]`` (and ``G``); the only per-sample Python loops are the
csgraph hop computation and the k-nearest search of the ``"nearest"`` ISL topology, both only
when inter-satellite links are on. Results are cached as ``.npz`` keyed by a hash of all inputs.
Where a constellation is too large for every pair's hops, :meth:`Geometry.sat_hops` finds those
from one satellite on first use by a compiled breadth-first search.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import shortest_path
from sgp4.api import SatrecArray

from orbit_env._checks import check_number, check_utc
from orbit_env.config import GroundStation
from orbit_env.sim.kernels import njit


class Constellation(Protocol):
    """What the geometry reads of a constellation (:class:`orbit_env.sim.orbits.Constellation`).

    Declared here so the dependency runs one way: orbits builds its geometry through this
    module, which never imports orbits.
    """

    satrecs: Sequence[Any]  # sgp4.api.Satrec, in the order of names
    names: Sequence[str]
    kind: str  # "walker", "dawn_dusk_cluster" or "tle"
    planes: int | None
    per_plane: int | None
    plane_of: np.ndarray | None  # int64[N], Walker only
    slot_of: np.ndarray | None  # int64[N], Walker only

    def __len__(self) -> int: ...


__all__ = ["GEOMETRY_VERSION", "EARTH_RADIUS_KM", "Geometry", "compute_geometry", "cache_dir"]

GEOMETRY_VERSION = 2
EARTH_RADIUS_KM = 6378.137  # shadow and ISL grazing sphere (WGS84 equatorial radius)
_WGS84_A_KM = 6378.137
_WGS84_F = 1.0 / 298.257223563
_UNIX_JD = 2440587.5
_CHUNK = 96  # time samples per chunk in the [T, N, G] work (keeps temporaries ~L2/L3 sized)
_BISECT_ITERS = 18  # terminator crossing resolution: dt_s / 2**18
_ALL_PAIRS_MAX_N = 256  # up to this size, sat_hops solves every source of a sample in one call
_HOPS_CACHE_SAMPLES = 4  # sat_hops keeps the hop tables of this many recent samples

_ARRAY_FIELDS = (
    "t_s",
    "position_km",
    "valid",
    "sun_km",
    "teme_to_itrs",
    "sunlit",
    "sunlit_fraction",
    "station_visible",
    "isl_pairs",
    "isl_active",
    "station_hops",
    "sat_hops_all",
)


@dataclass(frozen=True, eq=False)
class Geometry:
    """Geometry of a constellation on the grid ``t_s = arange(T) * dt_s`` seconds after ``start``.

    Step ``k`` covers ``[t_s[k], t_s[k + 1])``. All arrays are read-only.

    Attributes:
        start: timezone-aware UTC datetime of sample 0.
        dt_s: grid spacing [s].
        t_s: ``float64[T]`` sample times [s since start].
        names: satellite names (N). station_names: station names (G).
        position_km: ``float32[T, N, 3]`` TEME position [km]; 0 where invalid.
        valid: ``bool[T, N]`` sgp4 succeeded at this and every earlier sample.
        sun_km: ``float64[T, 3]`` geocentric Sun, TEME [km].
        teme_to_itrs: ``float64[T, 3, 3]`` with ``r_itrs = R @ r_teme``.
        sunlit: ``bool[T, N]`` outside Earth's shadow (spherical Earth R = 6378.137 km, point
            Sun); False where invalid.
        sunlit_fraction: ``float32[T, N]`` share of step k in sunlight (last row: sunlit as 0/1).
        station_visible: ``bool[T, G, N]`` elevation >= the station's ``min_elevation_deg``.
        isl_pairs: ``int32[P, 2]`` candidate ISL pairs (i < j).
        isl_active: ``bool[T, P]`` both valid, in range, line of sight clears Earth + grazing height.
        sat_hops_all: ``int16[T, N, N]`` hops between every pair of satellites at every sample
            (-1 unreachable), precomputed when ISLs are on and N <= ``_ALL_PAIRS_MAX_N``; empty
            ``[0, 0, 0]`` otherwise (then :meth:`sat_hops` computes and caches per query).
        station_hops: ``int16[T, G, N]`` fewest active ISL hops from a satellite station g sees
            to satellite n (0 = g sees n), -1 unreachable.
    """

    start: datetime
    dt_s: float
    t_s: np.ndarray
    names: tuple[str, ...]
    station_names: tuple[str, ...]
    position_km: np.ndarray
    valid: np.ndarray
    sun_km: np.ndarray
    teme_to_itrs: np.ndarray
    sunlit: np.ndarray
    sunlit_fraction: np.ndarray
    station_visible: np.ndarray
    isl_pairs: np.ndarray
    isl_active: np.ndarray
    station_hops: np.ndarray
    sat_hops_all: np.ndarray
    _hops_cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in _ARRAY_FIELDS:
            getattr(self, name).flags.writeable = False

    @property
    def T(self) -> int:  # noqa: N802 - the shape letter used throughout the docs
        return len(self.t_s)

    @property
    def N(self) -> int:  # noqa: N802
        return len(self.names)

    @property
    def G(self) -> int:  # noqa: N802
        return len(self.station_names)

    def _check_k(self, k: int) -> int:
        check_number("k", k, lo=0, hi=self.T - 1, integer=True)
        return int(k)

    def sat_hops(self, k: int, source: int) -> np.ndarray:
        """Fewest active ISL hops from satellite ``source`` at sample ``k``: ``int16[N]``.

        0 for ``source`` itself, -1 where unreachable (everywhere if ``source`` is invalid).
        Read from ``sat_hops_all`` when it was precomputed; otherwise computed on first use per
        ``(k, source)``, keeping only the most recent samples.
        """
        k, source = int(k), int(source)
        if not (0 <= k < self.T and 0 <= source < self.N):
            self._check_k(k)
            check_number("source", source, lo=0, hi=self.N - 1, integer=True)
        if self.sat_hops_all.shape[0]:
            return self.sat_hops_all[k, source]
        per_k = self._hops_cache.get(k)
        if per_k is None:
            if len(self._hops_cache) >= _HOPS_CACHE_SAMPLES:
                self._hops_cache.pop(next(iter(self._hops_cache)))
            pairs = self.isl_pairs[self.isl_active[k]]
            per_k = self._hops_cache[k] = (*_adjacency(pairs, self.N), {})
        indptr, neighbours, by_source = per_k
        out = by_source.get(source)
        if out is None:
            out = np.full(self.N, -1, dtype=np.int16)
            if self.valid[k, source]:
                _bfs_hops(indptr, neighbours, source, out)
            out.flags.writeable = False
            by_source[source] = out
        return out

    def eclipse_intervals(self, sat: int) -> list[tuple[float, float]]:
        """``(entry_s, exit_s)`` of each eclipse of satellite ``sat`` within the grid.

        Crossings come from ``sunlit_fraction``; eclipses open at the grid start or end (or at
        the last valid sample) are clipped there. For tests and plots, not the hot path.
        """
        check_number("sat", sat, lo=0, hi=self.N - 1, integer=True)
        valid = self.valid[:, sat]
        n_valid = int(valid.sum())
        if n_valid == 0:
            return []
        lit = self.sunlit[:n_valid, sat]
        frac = self.sunlit_fraction[:n_valid, sat].astype(np.float64)
        t = self.t_s
        out: list[tuple[float, float]] = []
        entry = None if lit[0] else float(t[0])
        for k in np.flatnonzero(lit[:-1] != lit[1:]):
            if lit[k]:
                entry = float(t[k] + frac[k] * self.dt_s)
            else:
                out.append(
                    (float(entry if entry is not None else t[0]), float(t[k + 1] - frac[k] * self.dt_s))
                )
                entry = None
        if entry is not None:
            out.append((entry, float(t[n_valid - 1])))
        return out

    def subpoint_deg(self, k: int) -> np.ndarray:
        """Geocentric (not geodetic) latitude and longitude [deg] at sample k: ``float64[N, 2]``."""
        k = self._check_k(k)
        r = self.position_km[k].astype(np.float64) @ self.teme_to_itrs[k].T
        lat = np.degrees(np.arctan2(r[:, 2], np.hypot(r[:, 0], r[:, 1])))
        lon = np.degrees(np.arctan2(r[:, 1], r[:, 0]))
        return np.stack([lat, lon], axis=1)


# --------------------------------------------------------------------------------- public entry


def compute_geometry(
    constellation: Constellation,
    start: datetime,
    duration_s: float,
    dt_s: float,
    stations: Sequence[GroundStation],
    isl: object | None = None,
    cache: bool = True,
) -> Geometry:
    """Compute (or load from the cache) the geometry of ``constellation``.

    Args:
        constellation: the satellites.
        start: timezone-aware datetime of sample 0.
        duration_s: grid length [s]; ``T = round(duration_s / dt_s) + 1`` samples.
        dt_s: grid spacing [s], in (0, 86400].
        stations: ground stations (may be empty).
        isl: a ``LinkConfig`` (ISLs unless ``isl_topology == "none"``) or ``None`` (no ISLs).
        cache: read and write ``$ORBIT_ENV_CACHE/<sha256>.npz``.
    """
    check_utc("start", start)
    check_number("dt_s", dt_s, lo=0, lo_open=True, hi=86400)
    check_number("duration_s", duration_s, lo=0, hi=400 * 86400)
    stations = tuple(stations)
    for st in stations:
        if not isinstance(st, GroundStation):
            raise TypeError(f"stations must be GroundStation objects, got {type(st).__name__}")
    isl_params = _isl_params(isl, constellation)
    start = start.astimezone(timezone.utc)
    if not cache:
        return _compute(constellation, start, float(duration_s), float(dt_s), stations, isl_params)
    key = _cache_key(constellation, start, float(duration_s), float(dt_s), stations, isl_params)
    directory = cache_dir()
    path = directory / f"{key}.npz"
    if path.exists():
        try:
            return _load(path, constellation, stations, start, float(dt_s))
        except Exception as exc:  # corrupt, truncated, unreadable: recompute
            warnings.warn(f"geometry cache file {path} is unreadable ({exc!r}); recomputing", stacklevel=2)
    geo = _compute(constellation, start, float(duration_s), float(dt_s), stations, isl_params)
    _save(path, geo)
    return geo


def cache_dir() -> Path:
    """``$ORBIT_ENV_CACHE``, else ``$XDG_CACHE_HOME/orbit_env``, else ``~/.cache/orbit_env``."""
    env = os.environ.get("ORBIT_ENV_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "orbit_env"


# --------------------------------------------------------------------------------- computation


def _isl_params(isl: object | None, constellation: Constellation) -> dict | None:
    if isl is None:
        return None
    try:
        topology = isl.isl_topology
        params = {
            "isl_topology": topology,
            "isl_neighbours": int(isl.isl_neighbours),
            "max_range_km": float(isl.max_range_km),
            "isl_grazing_altitude_km": float(isl.isl_grazing_altitude_km),
        }
    except AttributeError as exc:
        raise TypeError(f"isl must be a LinkConfig or None, got {type(isl).__name__}") from exc
    if topology == "none":
        return None
    if topology == "auto":
        params["isl_topology"] = "grid" if constellation.kind == "walker" else "nearest"
    if params["isl_topology"] == "grid" and constellation.kind != "walker":
        raise ValueError(
            f"isl_topology 'grid' needs a Walker shell, got a {constellation.kind!r} constellation"
        )
    return params


def _julian(start: datetime, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    days = (start - datetime(1970, 1, 1, tzinfo=timezone.utc)).total_seconds() / 86400.0
    whole = math.floor(days)
    jd = np.full(len(t_s), _UNIX_JD + whole)
    fr = (days - whole) + t_s / 86400.0
    return jd, fr


def _compute(
    constellation: Constellation,
    start: datetime,
    duration_s: float,
    dt_s: float,
    stations: tuple[GroundStation, ...],
    isl: dict | None,
) -> Geometry:
    from orbit_env.sim import ephemeris

    n_t = int(round(duration_s / dt_s)) + 1
    t_s = np.arange(n_t, dtype=np.float64) * dt_s
    jd, fr = _julian(start, t_s)

    err, r, v = SatrecArray(constellation.satrecs).sgp4(jd, fr)  # [N, T], [N, T, 3]
    with np.errstate(invalid="ignore"):
        ok = (err == 0) & np.isfinite(r).all(axis=2) & np.isfinite(v).all(axis=2)
    valid = np.logical_and.accumulate(ok.T, axis=0)  # [T, N]
    pos = np.ascontiguousarray(r.transpose(1, 0, 2))  # [T, N, 3] float64
    pos[~valid] = 0.0
    vel = v.transpose(1, 0, 2)

    t = ephemeris.times(start, t_s)
    sun = ephemeris.sun_teme_km(t)
    rot = ephemeris.teme_to_itrs(t)

    g = _shadow_function(pos, sun)
    sunlit = (g > 0.0) & valid
    frac = _sunlit_fraction(g, sunlit, valid, pos, vel, sun, dt_s)
    del vel, r, v

    vis = _station_visibility(pos, rot, stations, valid)
    pos32 = pos.astype(np.float32)
    del pos

    if isl is None:
        pairs = np.zeros((0, 2), dtype=np.int32)
        active = np.zeros((n_t, 0), dtype=bool)
        hops = np.where(vis, np.int16(0), np.int16(-1)).astype(np.int16)
    else:
        if isl["isl_topology"] == "grid":
            pairs = _grid_pairs(constellation)
        else:
            pairs = _nearest_pairs(pos32, valid, isl["isl_neighbours"], isl["max_range_km"])
        active = _isl_active(pos32, valid, pairs, isl["max_range_km"], isl["isl_grazing_altitude_km"])
        hops = _station_hops(vis, pairs, active)
    all_pairs = np.zeros((0, 0, 0), dtype=np.int16)
    if isl is not None and valid.shape[1] <= _ALL_PAIRS_MAX_N:
        all_pairs = _all_pairs_hops(valid, pairs, active)

    return Geometry(
        start=start,
        dt_s=dt_s,
        t_s=t_s,
        names=tuple(constellation.names),
        station_names=tuple(s.name for s in stations),
        position_km=pos32,
        valid=valid,
        sun_km=sun,
        teme_to_itrs=rot,
        sunlit=sunlit,
        sunlit_fraction=frac,
        station_visible=vis,
        isl_pairs=pairs,
        isl_active=active,
        station_hops=hops,
        sat_hops_all=all_pairs,
    )


def _all_pairs_hops(valid: np.ndarray, pairs: np.ndarray, active: np.ndarray) -> np.ndarray:
    """``int16[T, N, N]`` ISL hops between all satellites, one csgraph call per sample."""
    n_t, n_sat = valid.shape
    out = np.full((n_t, n_sat, n_sat), -1, dtype=np.int16)
    diagonal = np.arange(n_sat)
    for k in range(n_t):
        p = pairs[active[k]]
        if len(p):
            dist = shortest_path(_sat_graph(p, n_sat), directed=False, unweighted=True)
            ok = np.isfinite(dist)
            out[k][ok] = dist[ok].astype(np.int16)
        else:
            out[k, diagonal, diagonal] = 0
        dead = ~valid[k]
        out[k, dead, :] = -1
        out[k, :, dead] = -1
    return out


def _shadow_terms(s: np.ndarray, sun: np.ndarray) -> np.ndarray:
    """Continuous shadow function g [km] (> 0 sunlit) for positions ``s[..., 3]``, Sun ``sun[..., 3]``.

    With d = Sun - s: the segment s->Sun misses the Earth sphere iff its distance to the centre
    exceeds R. Behind the terminator plane (s·d < 0) that distance is the line distance rho;
    in front of it the closest point is s itself. g = rho - R + max(s·d, 0)/|d| equals
    rho - R behind the plane, stays > 0 in front (rho + s·d/|d| >= |s| > R), and is continuous.
    """
    ss = np.einsum("...k,...k->...", s, s)
    s_sun = np.einsum("...k,...k->...", s, sun)
    sun2 = np.einsum("...k,...k->...", sun, sun)
    sd = s_sun - ss
    dd = sun2 - 2.0 * s_sun + ss
    rho2 = np.maximum(ss - sd * sd / dd, 0.0)
    return np.sqrt(rho2) - EARTH_RADIUS_KM + np.maximum(sd, 0.0) / np.sqrt(dd)


def _shadow_function(pos: np.ndarray, sun: np.ndarray) -> np.ndarray:
    return _shadow_terms(pos, sun[:, None, :])


def _sunlit_fraction(
    g: np.ndarray,
    sunlit: np.ndarray,
    valid: np.ndarray,
    pos: np.ndarray,
    vel: np.ndarray,
    sun: np.ndarray,
    dt_s: float,
) -> np.ndarray:
    """Share of each step in sunlight; crossings located on a cubic Hermite arc (positions and
    sgp4 velocities at both ends, error well under a metre at dt = 60 s) by bisection on g."""
    frac = sunlit.astype(np.float32)
    if len(g) < 2:
        return frac
    both = valid[:-1] & valid[1:]
    cross = both & ((g[:-1] > 0) != (g[1:] > 0))
    ks, ns = np.nonzero(cross)
    if len(ks) == 0:
        return frac
    p0, p1 = pos[ks, ns], pos[ks + 1, ns]
    m0, m1 = vel[ks, ns] * dt_s, vel[ks + 1, ns] * dt_s
    s0, s1 = sun[ks], sun[ks + 1]
    lit0 = g[ks, ns] > 0
    lo = np.zeros(len(ks))
    hi = np.ones(len(ks))
    for _ in range(_BISECT_ITERS):
        mid = 0.5 * (lo + hi)
        tau = mid[:, None]
        t2, t3 = tau * tau, tau * tau * tau
        p = (2 * t3 - 3 * t2 + 1) * p0 + (t3 - 2 * t2 + tau) * m0 + (-2 * t3 + 3 * t2) * p1 + (t3 - t2) * m1
        lit_mid = _shadow_terms(p, s0 + (s1 - s0) * tau) > 0
        same = lit_mid == lit0  # the crossing lies after mid
        lo = np.where(same, mid, lo)
        hi = np.where(same, hi, mid)
    tau = 0.5 * (lo + hi)
    frac[ks, ns] = np.where(lit0, tau, 1.0 - tau).astype(np.float32)
    # a satellite that becomes invalid at k+1 keeps sunlit[k] for its last step
    return frac


def _station_ecef(stations: tuple[GroundStation, ...]) -> tuple[np.ndarray, np.ndarray]:
    lat = np.radians([s.lat_deg for s in stations])
    lon = np.radians([s.lon_deg for s in stations])
    h = np.array([s.alt_m for s in stations]) / 1000.0
    e2 = _WGS84_F * (2 - _WGS84_F)
    n = _WGS84_A_KM / np.sqrt(1 - e2 * np.sin(lat) ** 2)
    xyz = np.stack(
        [
            (n + h) * np.cos(lat) * np.cos(lon),
            (n + h) * np.cos(lat) * np.sin(lon),
            (n * (1 - e2) + h) * np.sin(lat),
        ],
        axis=1,
    )
    up = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=1)
    return xyz, up


def _station_visibility(
    pos: np.ndarray, rot: np.ndarray, stations: tuple[GroundStation, ...], valid: np.ndarray
) -> np.ndarray:
    """``bool[T, G, N]``: elevation >= min_elevation_deg, from dot products (no [T, G, N, 3])."""
    n_t, n_sat = valid.shape
    n_g = len(stations)
    vis = np.zeros((n_t, n_g, n_sat), dtype=bool)
    if n_g == 0:
        return vis
    xyz, up = _station_ecef(stations)
    # columns: up vectors, then station positions; one matmul gives s·up and s·x for every g
    a = np.concatenate([up, xyz], axis=0).T.astype(np.float32)  # [3, 2G]
    x_up = np.einsum("gk,gk->g", xyz, up).astype(np.float32)
    x2 = np.einsum("gk,gk->g", xyz, xyz).astype(np.float32)
    sin_min = np.sin(np.radians([s.min_elevation_deg for s in stations])).astype(np.float32)
    sin2 = sin_min * sin_min
    for c0 in range(0, n_t, _CHUNK):
        c1 = min(c0 + _CHUNK, n_t)
        s_itrs = np.matmul(pos[c0:c1], rot[c0:c1].transpose(0, 2, 1)).astype(np.float32)  # [c, N, 3]
        m = s_itrs @ a  # [c, N, 2G]
        ss = np.einsum("tnk,tnk->tn", s_itrs, s_itrs)[:, :, None]
        du = m[:, :, :n_g] - x_up  # (s - x)·up
        d2 = ss - 2.0 * m[:, :, n_g:] + x2  # |s - x|^2
        ok = (du >= 0) & (du * du >= sin2 * d2)
        vis[c0:c1] = ok.transpose(0, 2, 1) & valid[c0:c1, None, :]
    return vis


def _grid_pairs(constellation: Constellation) -> np.ndarray:
    """Walker +Grid: next in-plane slot and same slot in the next plane (seam included)."""
    planes, per_plane = constellation.planes, constellation.per_plane
    plane_of, slot_of = constellation.plane_of, constellation.slot_of
    index = np.full((planes, per_plane), -1, dtype=np.int64)
    index[plane_of, slot_of] = np.arange(len(plane_of))
    i = np.arange(len(plane_of))
    in_plane = index[plane_of, (slot_of + 1) % per_plane]
    cross = index[(plane_of + 1) % planes, slot_of]
    return _unique_pairs(np.concatenate([i, i]), np.concatenate([in_plane, cross]))


def _unique_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keep = lo != hi
    pairs = np.unique(np.stack([lo[keep], hi[keep]], axis=1), axis=0)
    return pairs.astype(np.int32).reshape(-1, 2)


def _nearest_pairs(pos: np.ndarray, valid: np.ndarray, k: int, max_range_km: float) -> np.ndarray:
    """Union over samples of each satellite's k nearest valid others within range."""
    from scipy.spatial import cKDTree

    n_sat = pos.shape[1]
    if n_sat < 2:
        return np.zeros((0, 2), dtype=np.int32)
    kq = min(k, n_sat - 1) + 1
    codes = []
    for t in range(len(pos)):
        idx = np.flatnonzero(valid[t])
        if len(idx) < 2:
            continue
        tree = cKDTree(pos[t, idx])
        dist, nb = tree.query(pos[t, idx], k=min(kq, len(idx)), distance_upper_bound=max_range_km)
        dist, nb = dist[:, 1:], nb[:, 1:]
        ok = np.isfinite(dist)
        src = np.broadcast_to(idx[:, None], nb.shape)[ok]
        dst = idx[nb[ok]]
        lo, hi = np.minimum(src, dst), np.maximum(src, dst)
        codes.append(np.unique(lo * n_sat + hi))
    if not codes:
        return np.zeros((0, 2), dtype=np.int32)
    code = np.unique(np.concatenate(codes))
    return np.stack([code // n_sat, code % n_sat], axis=1).astype(np.int32)


def _isl_active(
    pos: np.ndarray, valid: np.ndarray, pairs: np.ndarray, max_range_km: float, grazing_km: float
) -> np.ndarray:
    n_t = len(pos)
    active = np.zeros((n_t, len(pairs)), dtype=bool)
    if len(pairs) == 0:
        return active
    i, j = pairs[:, 0], pairs[:, 1]
    r_clear2 = (EARTH_RADIUS_KM + grazing_km) ** 2
    for c0 in range(0, n_t, _CHUNK):
        c1 = min(c0 + _CHUNK, n_t)
        a = pos[c0:c1, i].astype(np.float64)
        d = pos[c0:c1, j] - a
        dd = np.einsum("tpk,tpk->tp", d, d)
        ad = np.einsum("tpk,tpk->tp", a, d)
        aa = np.einsum("tpk,tpk->tp", a, a)
        u = np.clip(-ad / np.maximum(dd, 1e-12), 0.0, 1.0)
        closest2 = aa + 2 * u * ad + u * u * dd  # |a + u d|^2
        active[c0:c1] = (dd <= max_range_km**2) & (closest2 > r_clear2) & valid[c0:c1, i] & valid[c0:c1, j]
    return active


def _sat_graph(pairs: np.ndarray, n_sat: int) -> csr_matrix:
    data = np.ones(len(pairs), dtype=np.float64)
    return csr_matrix((data, (pairs[:, 0], pairs[:, 1])), shape=(n_sat, n_sat))


def _adjacency(pairs: np.ndarray, n_sat: int) -> tuple[np.ndarray, np.ndarray]:
    """The undirected graph of ``pairs`` (int[P, 2]) on ``n_sat`` nodes in CSR form:
    (indptr int64[n_sat + 1], neighbours int64[2P])."""
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]]).astype(np.int64)
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]]).astype(np.int64)
    indptr = np.zeros(n_sat + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_sat), out=indptr[1:])
    return indptr, cols[np.argsort(rows, kind="stable")]


@njit
def _bfs_hops(indptr, neighbours, source, out) -> None:
    """Breadth-first search from ``source``: ``out[n]`` (int16[N], -1 on entry) becomes the
    fewest hops to n over the CSR graph (:func:`_adjacency`), -1 where unreachable."""
    queue = np.empty(out.shape[0], dtype=np.int64)
    out[source] = 0
    queue[0] = source
    head, tail = 0, 1
    while head < tail:
        u = queue[head]
        head += 1
        d = out[u] + 1
        for e in range(indptr[u], indptr[u + 1]):
            v = neighbours[e]
            if out[v] < 0:
                out[v] = d
                queue[tail] = v
                tail += 1


def _station_hops(vis: np.ndarray, pairs: np.ndarray, active: np.ndarray) -> np.ndarray:
    """One csgraph call per sample on N + G nodes; station nodes only have outgoing edges, so
    a path never passes through the ground."""
    n_t, n_g, n_sat = vis.shape
    hops = np.full((n_t, n_g, n_sat), -1, dtype=np.int16)
    if n_g == 0:
        return hops
    station_nodes = np.arange(n_sat, n_sat + n_g)
    for k in range(n_t):
        gs, ns = np.nonzero(vis[k])
        if len(gs) == 0:
            continue
        p = pairs[active[k]]
        rows = np.concatenate([p[:, 0], p[:, 1], n_sat + gs])
        cols = np.concatenate([p[:, 1], p[:, 0], ns])
        graph = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_sat + n_g, n_sat + n_g))
        dist = shortest_path(graph, directed=True, unweighted=True, indices=station_nodes)[:, :n_sat]
        ok = np.isfinite(dist)
        hops[k][ok] = (dist[ok] - 1).astype(np.int16)
    return hops


# --------------------------------------------------------------------------------- cache


def _cache_key(
    constellation: Constellation,
    start: datetime,
    duration_s: float,
    dt_s: float,
    stations: tuple[GroundStation, ...],
    isl: dict | None,
) -> str:
    fields = (
        "satnum",
        "jdsatepoch",
        "jdsatepochF",
        "bstar",
        "ndot",
        "nddot",
        "ecco",
        "argpo",
        "inclo",
        "mo",
        "no_kozai",
        "nodeo",
    )

    def enc(x: object) -> object:
        return x.hex() if isinstance(x, float) else x

    sats = [
        [enc(getattr(s, f)) for f in fields] + [getattr(s, "operationmode", "i")]
        for s in constellation.satrecs
    ]
    walker = None
    if constellation.plane_of is not None:
        walker = [constellation.planes, constellation.per_plane]
        walker += [constellation.plane_of.tolist(), constellation.slot_of.tolist()]
    payload = {
        "version": GEOMETRY_VERSION,
        "kind": constellation.kind,
        "names": list(constellation.names),
        "satrecs": sats,
        "walker": walker,
        "stations": [[enc(v) for v in dataclasses.astuple(s)] for s in stations],
        "start": start.isoformat(),
        "duration_s": duration_s.hex(),
        "dt_s": dt_s.hex(),
        "isl": None if isl is None else {k: enc(v) for k, v in sorted(isl.items())},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _load(
    path: Path,
    constellation: Constellation,
    stations: tuple[GroundStation, ...],
    start: datetime,
    dt_s: float,
) -> Geometry:
    with np.load(path, allow_pickle=False) as z:
        arrays = {name: np.array(z[name]) for name in _ARRAY_FIELDS}
        meta = json.loads(str(z["meta"]))
    n_t, n_sat, n_g = len(arrays["t_s"]), len(constellation), len(stations)
    n_p = len(arrays["isl_pairs"])
    expected = {
        "position_km": ((n_t, n_sat, 3), np.float32),
        "valid": ((n_t, n_sat), np.bool_),
        "sun_km": ((n_t, 3), np.float64),
        "teme_to_itrs": ((n_t, 3, 3), np.float64),
        "sunlit": ((n_t, n_sat), np.bool_),
        "sunlit_fraction": ((n_t, n_sat), np.float32),
        "station_visible": ((n_t, n_g, n_sat), np.bool_),
        "isl_pairs": ((n_p, 2), np.int32),
        "isl_active": ((n_t, n_p), np.bool_),
        "station_hops": ((n_t, n_g, n_sat), np.int16),
        "sat_hops_all": (
            arrays["sat_hops_all"].shape if arrays["sat_hops_all"].size == 0 else (n_t, n_sat, n_sat),
            np.int16,
        ),
    }
    for name, (shape, dtype) in expected.items():
        arr = arrays[name]
        if arr.shape != shape or arr.dtype != dtype:
            raise ValueError(f"{name} has shape {arr.shape} {arr.dtype}, expected {shape} {np.dtype(dtype)}")
    if meta.get("version") != GEOMETRY_VERSION or meta.get("names") != list(constellation.names):
        raise ValueError("stale metadata")
    return Geometry(
        start=start,
        dt_s=dt_s,
        names=tuple(constellation.names),
        station_names=tuple(s.name for s in stations),
        **arrays,
    )


def _save(path: Path, geo: Geometry) -> None:
    meta = json.dumps({"version": GEOMETRY_VERSION, "names": list(geo.names), "start": geo.start.isoformat()})
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem[:16] + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, meta=np.array(meta), **{name: getattr(geo, name) for name in _ARRAY_FIELDS})
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        warnings.warn(
            f"could not write the geometry cache {path} ({exc}); continuing without it", stacklevel=3
        )
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
