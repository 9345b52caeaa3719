"""Constellations (Walker-delta, dawn-dusk cluster, TLE catalogue) and ground stations."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from sgp4.api import WGS72, Satrec
from sgp4.exporter import export_tle

from orbit_env._checks import check_choice, check_number, check_utc
from orbit_env.config import GroundStation

# WGS72 constants, the ones sgp4's 'wgs72' gravity model uses.
_MU_KM3_S2 = 398600.8
_RE_KM = 6378.135
_J2 = 0.001082616
_XPDOTP = 1440.0 / (2.0 * math.pi)  # [rev/day] per [rad/min]
_SSO_RATE_RAD_S = 2.0 * math.pi / (365.2422 * 86400.0)
_EPOCH_1949 = datetime(1949, 12, 31, tzinfo=timezone.utc)
_UNIX_JD = 2440587.5
_MAX_SATNUM = 99999


def _quantise_epoch(epoch: datetime) -> tuple[float, datetime]:
    """Round ``epoch`` to the TLE epoch resolution (1e-8 day) so ``to_tle`` is lossless.

    Returns (days since 1949-12-31 00:00 UTC as sgp4init wants, the rounded datetime).
    """
    epoch = epoch.astimezone(timezone.utc)
    jan0 = datetime(epoch.year, 1, 1, tzinfo=timezone.utc) - timedelta(days=1)
    doy = round((epoch - jan0) / timedelta(days=1), 8)
    base = (jan0 - _EPOCH_1949).days
    return base + doy, jan0 + timedelta(days=doy)


def _q_angle(rad: float) -> float:
    """Wrap to [0, 360) deg and round to the TLE's 1e-4 deg, returned in radians."""
    deg = round(math.degrees(rad) % 360.0, 4) % 360.0
    return math.radians(deg)


def _q_mean_motion(n_rad_min: float) -> float:
    """Round a mean motion to the TLE's 1e-8 rev/day, returned in rad/min."""
    return round(n_rad_min * _XPDOTP, 8) / _XPDOTP


def _mean_motion_rad_min(altitude_km: float) -> float:
    a = _RE_KM + altitude_km
    return math.sqrt(_MU_KM3_S2 / a**3) * 60.0


def _make_satrec(
    satnum: int, epoch_1949: float, inclo: float, nodeo: float, mo: float, no_kozai: float
) -> Satrec:
    """A circular, drag-free Satrec (WGS72, improved mode) with TLE-representable elements."""
    sat = Satrec()
    sat.sgp4init(
        WGS72,
        "i",
        satnum,
        epoch_1949,
        0.0,  # bstar
        0.0,  # ndot
        0.0,  # nddot
        0.0,  # ecco
        0.0,  # argpo
        round(inclo, 12) if inclo > 0 else 0.0,
        mo,
        no_kozai,
        nodeo,
    )
    return sat


def _tle_checksum(line: str) -> int:
    return sum(int(c) if c.isdigit() else (1 if c == "-" else 0) for c in line[:68]) % 10


class Constellation:
    """A set of satellites propagated with SGP4 (WGS72).

    Build one with :meth:`walker`, :meth:`dawn_dusk_cluster` or :meth:`from_tle`.

    Attributes:
        names: one label per satellite, ``tuple[str, ...]`` of length N.
        satrecs: the ``sgp4.api.Satrec`` objects, in the order of ``names``.
        kind: ``"walker"``, ``"dawn_dusk_cluster"`` or ``"tle"``.
        planes, per_plane: Walker shells only (else ``None``).
        plane_of, slot_of: ``int64[N]`` plane and in-plane slot of each satellite (Walker only).
    """

    def __init__(
        self,
        satrecs: Sequence[Satrec],
        names: Sequence[str],
        kind: str,
        *,
        planes: int | None = None,
        per_plane: int | None = None,
        plane_of: np.ndarray | None = None,
        slot_of: np.ndarray | None = None,
    ) -> None:
        if len(satrecs) != len(names):
            raise ValueError(
                f"satrecs and names must have the same length, got {len(satrecs)} and {len(names)}"
            )
        if len(satrecs) == 0:
            raise ValueError("a constellation needs at least one satellite")
        check_choice("kind", kind, ("walker", "dawn_dusk_cluster", "tle"))
        self._satrecs = list(satrecs)
        self._names = tuple(str(n) for n in names)
        self.kind = kind
        self.planes = planes
        self.per_plane = per_plane
        self.plane_of = None if plane_of is None else np.asarray(plane_of, dtype=np.int64)
        self.slot_of = None if slot_of is None else np.asarray(slot_of, dtype=np.int64)
        for arr in (self.plane_of, self.slot_of):
            if arr is not None:
                arr.flags.writeable = False

    # ----------------------------------------------------------------- builders
    @classmethod
    def walker(
        cls,
        total: int,
        planes: int,
        phasing: int,
        altitude_km: float,
        inclination_deg: float,
        epoch: datetime,
    ) -> Constellation:
        """A Walker-delta shell i:t/p/f of circular orbits.

        Plane ``p`` has RAAN ``360 p / planes``; satellite ``s`` of plane ``p`` has mean anomaly
        ``360 s / per_plane + 360 phasing p / total`` [deg]. Elements are rounded to TLE
        resolution (1e-4 deg, 1e-8 rev/day, epoch to 1e-8 day ≈ 0.9 ms) so that :meth:`to_tle`
        is lossless; the rounding moves a satellite by at most ~6 m.

        Args:
            total: number of satellites t, a multiple of ``planes``.
            planes: number of orbital planes p.
            phasing: relative phasing f, in [0, planes - 1].
            altitude_km: altitude above the WGS72 equatorial radius [km].
            inclination_deg: inclination [deg], in [0, 180].
            epoch: timezone-aware epoch of the elements.
        """
        check_number("total", total, lo=1, hi=_MAX_SATNUM, integer=True)
        check_number("planes", planes, lo=1, hi=total, integer=True)
        if total % planes:
            raise ValueError(f"total must be a multiple of planes ({planes}), got {total}")
        check_number("phasing", phasing, lo=0, hi=planes - 1, integer=True)
        check_number("altitude_km", altitude_km, lo=0, lo_open=True, hi=50_000)
        check_number("inclination_deg", inclination_deg, lo=0, hi=180)
        check_utc("epoch", epoch)
        per_plane = total // planes
        epoch_1949, _ = _quantise_epoch(epoch)
        no = _q_mean_motion(_mean_motion_rad_min(altitude_km))
        inclo = math.radians(round(float(inclination_deg), 4))
        sats, names, plane_of, slot_of = [], [], [], []
        for p in range(planes):
            raan = _q_angle(2 * math.pi * p / planes)
            for s in range(per_plane):
                mo = _q_angle(2 * math.pi * s / per_plane + 2 * math.pi * phasing * p / total)
                sats.append(_make_satrec(len(sats) + 1, epoch_1949, inclo, raan, mo, no))
                names.append(f"W-P{p:02d}-S{s:02d}")
                plane_of.append(p)
                slot_of.append(s)
        return cls(
            sats,
            names,
            "walker",
            planes=planes,
            per_plane=per_plane,
            plane_of=np.array(plane_of),
            slot_of=np.array(slot_of),
        )

    @classmethod
    def dawn_dusk_cluster(
        cls,
        n: int,
        altitude_km: float = 650.0,
        ltan_h: float = 6.0,
        radius_km: float = 1.0,
        epoch: datetime | None = None,
    ) -> Constellation:
        """A compact cluster of ``n`` satellites in one sun-synchronous orbit.

        The inclination follows from the J2 nodal-precession condition (360° per 365.2422 d,
        WGS72 constants); the RAAN is the Sun's right ascension at ``epoch`` (from de421,
        rotated into TEME) plus ``(ltan_h - 12) * 15`` deg. Member ``j`` sits at
        ``θ_j = π (j + 0.5) / n`` on a circle of radius ``radius_km``: along-track offset
        ``radius_km cos θ_j`` (mean anomaly) and a cross-track oscillation of amplitude
        ``± radius_km sin θ_j`` (a RAAN offset; no Δi, so no differential J2 drift), with
        the along-track shift a RAAN offset causes (``a cos i ΔΩ``) removed.

        Args:
            n: number of satellites, in [1, 9999].
            altitude_km: altitude above the WGS72 equatorial radius [km], in (0, 5000].
            ltan_h: local time of the ascending node [h], in [0, 24).
            radius_km: cluster radius [km], in [0.1, 1000].
            epoch: timezone-aware epoch of the elements (required).
        """
        check_number("n", n, lo=1, hi=9999, integer=True)
        check_number("altitude_km", altitude_km, lo=0, lo_open=True, hi=5000)
        check_number("ltan_h", ltan_h, lo=0, hi=24, hi_open=True)
        check_number("radius_km", radius_km, lo=0.1, hi=1000)
        check_utc("epoch", epoch)
        from orbit_env.sim.ephemeris import sun_right_ascension_deg

        epoch_1949, epoch_q = _quantise_epoch(epoch)
        a = _RE_KM + altitude_km
        n_rad_s = math.sqrt(_MU_KM3_S2 / a**3)
        cos_i = -_SSO_RATE_RAD_S / (1.5 * n_rad_s * _J2 * (_RE_KM / a) ** 2)
        if not -1.0 <= cos_i <= 1.0:  # pragma: no cover - excluded by the altitude range
            raise ValueError(f"no sun-synchronous orbit at altitude_km={altitude_km}")
        inc = math.acos(cos_i)
        inclo = math.radians(round(math.degrees(inc), 4))
        raan0 = math.radians(sun_right_ascension_deg(epoch_q) + (ltan_h - 12.0) * 15.0)
        no = _q_mean_motion(n_rad_s * 60.0)
        sats, names = [], []
        for j in range(n):
            if n == 1:
                x = y = 0.0
            else:
                theta = math.pi * (j + 0.5) / n
                x = radius_km * math.cos(theta)
                y = radius_km * math.sin(theta) * (1 if j % 2 == 0 else -1)
            d_raan = y / (a * math.sin(inclo))
            d_mo = x / a - d_raan * math.cos(inclo)
            sats.append(_make_satrec(j + 1, epoch_1949, inclo, _q_angle(raan0 + d_raan), _q_angle(d_mo), no))
            names.append(f"DD-{j:03d}")
        return cls(sats, names, "dawn_dusk_cluster")

    @classmethod
    def from_tle(cls, path_or_text: str | os.PathLike) -> Constellation:
        """Read 2-line or 3-line (named, optional leading ``"0 "``) element sets.

        Args:
            path_or_text: a path to an existing file, or the TLE text itself.

        Raises:
            ValueError: empty input, or a malformed line (the message names the 1-based line
                number and the defect: non-ASCII text, length, checksum, missing line 2,
                unexpected line, mismatched catalogue numbers).
        """
        text = _read_tle_source(path_or_text)
        entries = _parse_tle_text(text)
        sats, names = [], []
        for name, (n1, l1), (n2, l2) in entries:
            try:
                sat = Satrec.twoline2rv(l1, l2, WGS72)
            except Exception as exc:  # sgp4 raises ValueError for fields it cannot read
                raise ValueError(f"TLE lines {n1}-{n2}: sgp4 cannot parse the element set: {exc}") from exc
            sats.append(sat)
            names.append(name if name else l1[2:7].strip())
        return cls(sats, names, "tle")

    # ----------------------------------------------------------------- accessors
    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    @property
    def satrecs(self) -> list[Satrec]:
        return list(self._satrecs)

    @property
    def epoch(self) -> datetime:
        """Epoch of the first satellite's elements, timezone-aware UTC (µs resolution)."""
        s = self._satrecs[0]
        days = (s.jdsatepoch - _UNIX_JD) + s.jdsatepochF
        return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(days=days)

    def __len__(self) -> int:
        return len(self._satrecs)

    def __repr__(self) -> str:
        return f"Constellation(kind={self.kind!r}, n={len(self)}, epoch={self.epoch.isoformat()})"

    def to_tle(self) -> list[tuple[str, str, str]]:
        """``(name, line1, line2)`` for every satellite, via ``sgp4.exporter.export_tle``."""
        out = []
        for name, sat in zip(self._names, self._satrecs, strict=True):
            l1, l2 = export_tle(sat)
            out.append((name, l1, l2))
        return out

    def geometry(
        self,
        start: datetime,
        duration_s: float,
        dt_s: float,
        stations: Sequence[GroundStation],
        isl: object | None = None,
        cache: bool = True,
    ):
        """Precompute the geometry grid; see :func:`orbit_env.sim.geometry.compute_geometry`."""
        from orbit_env.sim.geometry import compute_geometry

        return compute_geometry(self, start, duration_s, dt_s, stations, isl=isl, cache=cache)


def _read_tle_source(path_or_text: str | os.PathLike) -> str:
    if isinstance(path_or_text, os.PathLike):
        return Path(path_or_text).read_text(encoding="utf-8", errors="surrogateescape")
    if not isinstance(path_or_text, str):
        raise TypeError(f"path_or_text must be a str or a path, got {type(path_or_text).__name__}")
    if "\n" not in path_or_text and os.path.isfile(path_or_text):
        return Path(path_or_text).read_text(encoding="utf-8", errors="surrogateescape")
    return path_or_text


def _check_tle_line(number: int, line: str, which: str) -> None:
    if len(line) != 69:
        raise ValueError(f"TLE line {number}: {which} must be 69 characters long, got {len(line)}")
    if not line[68].isdigit():
        raise ValueError(f"TLE line {number}: {which} checksum (column 69) is not a digit: {line[68]!r}")
    expected = _tle_checksum(line)
    if int(line[68]) != expected:
        raise ValueError(
            f"TLE line {number}: bad checksum, {which} ends in {line[68]} but sums to {expected}"
        )


def _parse_tle_text(text: str) -> list[tuple[str, tuple[int, str], tuple[int, str]]]:
    lines = [(i + 1, raw.rstrip()) for i, raw in enumerate(text.splitlines())]
    lines = [(i, s) for i, s in lines if s.strip()]
    if not lines:
        raise ValueError("TLE input is empty")
    for i, s in lines:
        if not s.isascii():
            raise ValueError(f"TLE line {i}: non-ASCII text in {s!r}")
    entries = []
    k = 0
    while k < len(lines):
        i, s = lines[k]
        name = ""
        if not s.startswith(("1 ", "2 ")):
            name = s[2:].strip() if s.startswith("0 ") else s.strip()
            k += 1
            if k == len(lines):
                raise ValueError(f"TLE line {i}: name {name!r} is not followed by line 1")
            i, s = lines[k]
            if not s.startswith("1 "):
                raise ValueError(
                    f"TLE line {i}: expected line 1 (starting with '1 ') after a name, got {s[:20]!r}"
                )
        elif s.startswith("2 "):
            raise ValueError(f"TLE line {i}: line 2 without a preceding line 1")
        _check_tle_line(i, s, "line 1")
        if k + 1 == len(lines):
            raise ValueError(f"TLE line {i}: line 1 without a line 2 (missing line 2)")
        j, t = lines[k + 1]
        if not t.startswith("2 "):
            raise ValueError(
                f"TLE line {j}: expected line 2 (starting with '2 '), got {t[:20]!r} (missing line 2)"
            )
        _check_tle_line(j, t, "line 2")
        if s[2:7] != t[2:7]:
            raise ValueError(
                f"TLE line {j}: catalogue number {t[2:7].strip()!r} mismatched with line 1's "
                f"{s[2:7].strip()!r}"
            )
        entries.append((name, (i, s), (j, t)))
        k += 2
    return entries
