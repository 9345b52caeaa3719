"""Offline skyfield helpers: the builtin timescale, de421 from skyfield-data, and frame rotations.

Everything is loaded once per process and never downloads. skyfield-data warns that its bundled
``finals2000A.all`` has expired; the builtin timescale does not read that file, so the warning is
silenced here rather than shown to every user.
"""

from __future__ import annotations

import os
import warnings
from datetime import datetime, timezone
from functools import lru_cache

import numpy as np

__all__ = ["ephemeris", "timescale", "times", "sun_teme_km", "teme_to_itrs", "sun_right_ascension_deg"]


@lru_cache(maxsize=1)
def timescale():
    """The skyfield timescale with builtin leap seconds and ΔT (no download)."""
    from skyfield.api import load

    return load.timescale(builtin=True)


@lru_cache(maxsize=1)
def ephemeris():
    """JPL de421 as shipped by skyfield-data (no download, no expiry check)."""
    from skyfield.api import load_file

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*has expired.*", category=RuntimeWarning)
        import skyfield_data

        path = os.path.join(skyfield_data.get_skyfield_data_path(), "de421.bsp")
    return load_file(path)


def times(start: datetime, t_s: np.ndarray):
    """A vector skyfield ``Time`` for ``start + t_s`` seconds (UTC)."""
    start = start.astimezone(timezone.utc)
    sec = start.second + start.microsecond * 1e-6 + np.asarray(t_s, dtype=np.float64)
    return timescale().utc(start.year, start.month, start.day, start.hour, start.minute, sec)


def sun_teme_km(t) -> np.ndarray:
    """Geometric geocentric Sun in TEME [km], ``float64[T, 3]`` for a vector Time ``t``."""
    from skyfield.sgp4lib import TEME

    eph = ephemeris()
    sun_gcrs = np.atleast_2d(np.asarray((eph["sun"] - eph["earth"]).at(t).xyz.km).T)
    r = np.asarray(TEME.rotation_at(t))
    if r.ndim == 2:
        r = r[:, :, None]
    return np.einsum("ijt,tj->ti", r, sun_gcrs)


def teme_to_itrs(t) -> np.ndarray:
    """Rotation matrices ``R`` with ``r_itrs = R @ r_teme``, ``float64[T, 3, 3]``."""
    from skyfield.framelib import itrs
    from skyfield.sgp4lib import TEME

    r_teme = np.asarray(TEME.rotation_at(t))
    r_itrs = np.asarray(itrs.rotation_at(t))
    if r_teme.ndim == 2:
        r_teme, r_itrs = r_teme[:, :, None], r_itrs[:, :, None]
    # ITRS <- GCRS <- TEME: R_itrs @ R_teme^T
    return np.einsum("ijt,kjt->tik", r_itrs, r_teme)


def sun_right_ascension_deg(when: datetime) -> float:
    """Right ascension of the Sun in the TEME frame at ``when`` [deg, 0..360), from de421."""
    s = sun_teme_km(times(when, np.zeros(1)))[0]
    return float(np.degrees(np.arctan2(s[1], s[0])) % 360.0)
