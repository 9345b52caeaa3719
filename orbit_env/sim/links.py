"""Data movement over ground contacts and inter-satellite links (design §3.4).

Visibility and routes come from the precomputed :class:`~orbit_env.sim.geometry.Geometry`
(``station_hops[T, G, N]``: ISL hops from station g to satellite n at sample k, −1 when
unreachable); contact and route state is taken as constant over each step [t_k, t_k+1).

Model, stated once:
- Ground input enters orbit through its origin station at the earliest time that station
  reaches the target, directly (hops 0) or through a satellite it sees and the ISL shortest
  path from there; transfer time = wait + size / bottleneck rate + hops × hop latency.
- In-orbit input (Earth-observation data, or a failed job's data) moves over ISLs from the
  satellite holding it; it is routable only while an ISL path exists.
- Output goes down at the earliest time after completion that the target, or a satellite it
  reaches over ISLs, sees any station (stations are connected on the ground).
- A ground transfer (uplink or downlink) occupies its antenna for ``size·8 / ground_link_gbps``
  seconds and happens inside contact time: it starts only at a time from which the station
  reaches the satellite (``station_hops >= 0``) at every sample k with k·dt in [start, start +
  occupancy], otherwise it waits for the next contact that can hold it. A transfer must end
  inside the geometry's grid.
- Each station serves at most ``antennas`` satellites at once. Transfers are booked in the
  order they are decided (a placement books its uplink, a finished job its downlink), each
  in the earliest gap at or after it is ready on any antenna of the station, so a later
  booking may fill a gap left before an earlier one but never moves it. ISL capacity is not
  shared between transfers.
- ``uplink_estimate`` and ``downlink_estimate`` are vectorised over targets and give exactly
  the time the booking would give if made now (same antennas, same contact rule); bookings
  made later (other placements, other jobs finishing first) may still take a gap first.
"""

from __future__ import annotations

import bisect
import math
from typing import NamedTuple

import numpy as np

from orbit_env.config import LinkConfig

GBIT_PER_GB = 8.0
_MAX_REBOOK = 1000


def next_index(flag: np.ndarray) -> np.ndarray:
    """For each sample k, the first k' ≥ k where ``flag`` holds, ``T`` if none.

    Args:
        flag: bool[T, ...].

    Returns:
        int32[T, ...].
    """
    t = flag.shape[0]
    idx = np.where(flag, np.arange(t, dtype=np.int32).reshape((t,) + (1,) * (flag.ndim - 1)), t)
    return np.minimum.accumulate(idx[::-1], axis=0)[::-1].astype(np.int32)


def _next_index_compact(flag: np.ndarray) -> np.ndarray:
    """:func:`next_index` in int16 when the grid allows it (these tables are [T, G, N])."""
    t = flag.shape[0]
    if t >= np.iinfo(np.int16).max:
        return next_index(flag)
    idx = np.where(flag, np.arange(t, dtype=np.int16).reshape((t,) + (1,) * (flag.ndim - 1)), np.int16(t))
    return np.minimum.accumulate(idx[::-1], axis=0)[::-1]


class Transfer(NamedTuple):
    """One booked ground transfer; ``arrival_s = start_s = inf`` and ``occupy_s = 0`` if it never happens.

    Attributes:
        arrival_s: the data is at its destination [s].
        start_s: the antenna (and the satellite's radio) starts transmitting [s].
        occupy_s: how long the antenna and radio transmit [s].
    """

    arrival_s: float
    start_s: float
    occupy_s: float


NEVER = Transfer(np.inf, np.inf, 0.0)


def _interval_end(interval: tuple[float, float]) -> float:
    return interval[1]


class AntennaSchedule:
    """Busy intervals of every antenna of every station.

    A transfer takes the earliest gap on any antenna of its station at or after the time it
    is ready. Bookings are made in decision order and never move, so a later booking may
    back-fill a gap before an earlier one, and a booking far in the future does not block
    the antenna before it.
    """

    def __init__(self, n_stations: int, antennas: int):
        self.busy: list[list[list[tuple[float, float]]]] = [
            [[] for _ in range(antennas)] for _ in range(n_stations)
        ]
        # per station and antenna, the intervals as arrays: ends float[n] and starts float[n + 1]
        # with a +inf sentinel (None: rebuild), and the push table per transfer duration
        self._ends: list[list[tuple[np.ndarray, np.ndarray] | None]] = [
            [None] * antennas for _ in range(n_stations)
        ]
        self._push: list[list[dict[float, np.ndarray]]] = [
            [{} for _ in range(antennas)] for _ in range(n_stations)
        ]

    def reset(self) -> None:
        for g, station in enumerate(self.busy):
            for a, antenna in enumerate(station):
                antenna.clear()
                self._changed(g, a)

    def _changed(self, station: int, antenna: int) -> None:
        """Drop the array forms of an antenna's intervals after they changed."""
        self._ends[station][antenna] = None
        self._push[station][antenna].clear()

    def release(self, now_s: float) -> None:
        """Forget intervals that ended before ``now_s``."""
        for g, station in enumerate(self.busy):
            for a, antenna in enumerate(station):
                if antenna and antenna[0][1] <= now_s:
                    station[a] = [iv for iv in antenna if iv[1] > now_s]
                    self._changed(g, a)

    def _tables(self, station: int, antenna: int, duration_s: float) -> tuple[np.ndarray, ...]:
        """One antenna's intervals for a ``duration_s`` transfer: ends ``hi`` float[n], starts
        ``lo`` float[n + 1] and ``push`` float[n + 1], where ``push[j]`` is the end of the first
        interval j' ≥ j whose following gap holds the transfer (entry n: +inf sentinels)."""
        ends = self._ends[station][antenna]
        if ends is None:
            iv = np.array(self.busy[station][antenna], dtype=float).reshape(-1, 2)
            ends = self._ends[station][antenna] = (iv[:, 1].copy(), np.append(iv[:, 0], np.inf))
        hi, lo = ends
        push = self._push[station][antenna].get(duration_s)
        if push is None:
            # ends ascend, so the first interval from j whose gap holds it has the least end
            candidate = np.where(hi + duration_s <= lo[1:], hi, np.inf)
            push = np.append(np.minimum.accumulate(candidate[::-1])[::-1], np.inf)
            self._push[station][antenna][duration_s] = push
        return hi, lo, push

    def _earliest_all(self, station: int, t_s: np.ndarray, duration_s: float) -> list[np.ndarray]:
        """Per antenna, the earliest start ≥ each of ``t_s`` of a ``duration_s`` gap (float[M] each).

        The scan of :meth:`earliest` ("from t, while the transfer overlaps the next interval,
        move to its end") with sorted arrays: the first interval ending after t is the first
        that can push t; once pushed, the start is the end of the first interval from there
        whose following gap holds the transfer.
        """
        starts = []
        for a in range(len(self.busy[station])):
            hi, lo, push = self._tables(station, a, duration_s)
            i = np.searchsorted(hi, t_s, side="right")  # first interval ending after t (n: none)
            starts.append(np.where(t_s + duration_s <= lo[i], t_s, push[i]))
        return starts

    def earliest(self, station: int, t_s: float, duration_s: float) -> tuple[float, int]:
        """Earliest start ≥ ``t_s`` of a ``duration_s`` gap, and the antenna that has it."""
        best, best_antenna = np.inf, 0
        for a, intervals in enumerate(self.busy[station]):
            start = t_s
            # from the first interval ending after t: while the transfer overlaps it, move to its end
            for j in range(bisect.bisect_right(intervals, t_s, key=_interval_end), len(intervals)):
                lo, hi = intervals[j]
                if start + duration_s <= lo:
                    break
                start = max(start, hi)
            if start < best:
                best, best_antenna = start, a
        return best, best_antenna

    def earliest_many(self, station: int, t_s: np.ndarray, duration_s: float) -> np.ndarray:
        """:meth:`earliest` start for each of the times ``t_s`` (float[M], vectorised over times)."""
        if t_s.size == 0:
            return t_s
        t_min = t_s.min()
        if any(not iv or iv[-1][1] <= t_min for iv in self.busy[station]):
            return t_s  # an antenna free from the earliest t on takes every transfer when ready
        starts = self._earliest_all(station, t_s, duration_s)
        return np.minimum.reduce(starts) if len(starts) > 1 else starts[0]

    def backlog_s(self, now_s: float) -> np.ndarray:
        """float[G]: antenna time booked from ``now_s`` on at each station, per antenna [s]."""
        return np.array(
            [
                sum(hi - max(lo, now_s) for antenna in station for lo, hi in antenna if hi > now_s)
                / len(station)
                for station in self.busy
            ]
        )

    def book(self, station: int, antenna: int, start_s: float, duration_s: float) -> None:
        intervals = self.busy[station][antenna]
        intervals.append((start_s, start_s + duration_s))
        intervals.sort()
        self._changed(station, antenna)


class LinkModel:
    """Transfer times and station antenna bookings for one episode.

    Args:
        station_hops: int16[T, G, N] from the geometry.
        t_s: float[T] sample times [s].
        dt_s: step length [s].
        cfg: link rates and latency.
    """

    def __init__(self, station_hops: np.ndarray, t_s: np.ndarray, dt_s: float, cfg: LinkConfig):
        self.cfg = cfg
        self.hops = station_hops
        self.t_s = np.asarray(t_s, dtype=float)
        self.dt_s = float(dt_s)
        self.n_samples = station_hops.shape[0]
        reach = station_hops >= 0
        self.next_reach = next_index(reach)  # [T, G, N]
        #: int[T, G, N]: first sample >= k at which g does not reach n (T if it does to the end)
        self.reach_end = _next_index_compact(~reach)
        #: int[T, N]: the furthest any one station's contact open at sample k lasts (k if none)
        self.down_end = self.reach_end.max(axis=1)
        # int[T, N]: the lowest-numbered station reaching n at k: its contact's end
        first = reach.argmax(axis=1)[:, None, :]
        self.first_down_end = np.take_along_axis(self.reach_end, first, axis=1)[:, 0]
        self.next_down = next_index(reach.any(axis=1))  # [T, N]
        self.antennas = AntennaSchedule(station_hops.shape[1], cfg.antennas)
        self._hold_cache: dict[tuple[float, int, float], tuple[np.ndarray, np.ndarray]] = {}

    def reset(self) -> None:
        """Free every antenna."""
        self.antennas.reset()
        self._hold_cache.clear()

    # -- helpers ---------------------------------------------------------------------------
    def sample(self, t_s: np.ndarray | float) -> np.ndarray:
        """Index of the step containing ``t_s`` (clipped to the grid)."""
        k = np.minimum(np.maximum(np.floor(np.asarray(t_s) / self.dt_s), 0), self.n_samples - 1)
        return k.astype(np.int64)

    def _sample_one(self, t_s: float) -> int:
        """:meth:`sample` of one time."""
        q = t_s / self.dt_s
        return self.n_samples - 1 if q >= self.n_samples - 1 else max(math.floor(q), 0)

    def _s_per_gb(self, hops: np.ndarray) -> np.ndarray:
        """Seconds per GB through a ground link and ``hops`` ISL hops (the bottleneck rate)."""
        bottleneck = min(self.cfg.ground_link_gbps, self.cfg.isl_gbps)
        return GBIT_PER_GB / np.where(hops > 0, bottleneck, self.cfg.ground_link_gbps)

    def _latency_s(self, hops: np.ndarray) -> np.ndarray:
        """Switching and propagation delay of ``hops`` ISL hops [s] (none for −1 = unreachable)."""
        return np.maximum(hops, 0) * self.cfg.hop_latency_s

    def transfer_s(self, size_gb: float | np.ndarray, hops: np.ndarray) -> np.ndarray:
        """Time to move ``size_gb`` over ``hops`` ISL hops after a ground or ISL link [s]."""
        return size_gb * self._s_per_gb(hops) + self._latency_s(hops)

    def ground_s(self, size_gb: float) -> float:
        """Antenna occupancy of one ground transfer [s]."""
        return size_gb * GBIT_PER_GB / self.cfg.ground_link_gbps

    def first_reach_k(self, k: np.ndarray, station: np.ndarray) -> np.ndarray:
        """First sample >= ``k`` at which ``station`` reaches any satellite, directly or over
        ISLs (``n_samples`` if never); ``k``, ``station``: int[J] -> int[J]."""
        return self.next_reach[k, station].min(axis=1)

    def station_reach(self) -> np.ndarray:
        """bool[T, G]: each station reaches some satellite (directly or over ISLs) at each sample."""
        return (self.hops >= 0).any(axis=2)

    def downlink_possible(self) -> np.ndarray:
        """bool[T]: some satellite reaches some station (directly or over ISLs) at each sample."""
        return (self.hops >= 0).any(axis=(1, 2))

    def _time_at(self, k: np.ndarray) -> np.ndarray:
        return np.where(k < self.n_samples, self.t_s[np.minimum(k, self.n_samples - 1)], np.inf)

    def _fits(self, start_s: np.ndarray, occupy_s: float, end_k: np.ndarray) -> np.ndarray:
        """Whether each transfer [start, start + occupy] lies inside a contact open until sample
        ``end_k`` (exclusive), i.e. every sample k with k·dt in it is before ``end_k``."""
        return np.floor((start_s + occupy_s) / self.dt_s) < end_k

    def _fits_one(self, start_s: float, occupy_s: float, end_k: int) -> bool:
        """:meth:`_fits` of one transfer."""
        q = (start_s + occupy_s) / self.dt_s
        return q < self.n_samples and math.floor(q) < end_k

    # -- contacts that can hold a transfer -------------------------------------------------
    def _next_hold(
        self, t_s: np.ndarray, occupy_s: float, station: int | np.ndarray, sats: np.ndarray
    ) -> np.ndarray:
        """Earliest start ≥ ``t_s`` from which ``station`` reaches each of ``sats`` over a whole
        transfer of ``occupy_s`` [s]; float[M] (``station``: int or int[M]) -> float[M], ``inf``
        if never.

        Inside a contact a later start only ends later, so a start that does not fit waits for
        the beginning of the next contact. Loops over the contacts skipped, not satellites.
        """
        t = np.array(t_s, dtype=float)
        per_sat = np.ndim(station) > 0
        idx = np.flatnonzero(np.isfinite(t))
        while idx.size:
            g, n = (station[idx] if per_sat else station), sats[idx]
            end = self.reach_end[self.sample(t[idx]), g, n]
            miss = ~self._fits(t[idx], occupy_s, end)
            if not miss.any():
                break
            idx, n, end = idx[miss], n[miss], end[miss].astype(np.int64)
            g = g[miss] if per_sat else g
            after = np.minimum(end, self.n_samples - 1)
            k = np.where(end < self.n_samples, self.next_reach[after, g, n], self.n_samples)
            t[idx] = self._time_at(k)
            idx = idx[k < self.n_samples]
        return t

    def _next_hold_one(self, t_s: float, occupy_s: float, station: int, sat: int) -> float:
        """:meth:`_next_hold` for one satellite, written out as the booking's scalar loop."""
        for _ in range(self.n_samples + 1):
            if t_s == np.inf:
                return t_s
            end = int(self.reach_end[self._sample_one(t_s), station, sat])
            if self._fits_one(t_s, occupy_s, end):
                return t_s
            k = int(self.next_reach[end, station, sat]) if end < self.n_samples else self.n_samples
            t_s = float(self.t_s[k]) if k < self.n_samples else np.inf
        raise RuntimeError("contact search did not converge")  # pragma: no cover

    # -- estimates (vectorised over targets, no booking) -----------------------------------
    def uplink_estimate(
        self, station: int, now_s: float, size_gb: float, targets: np.ndarray | None
    ) -> np.ndarray:
        """Input arrival time [s] at each target for data at ``station``; ``inf`` if never.

        Exactly what :meth:`book_uplink` would return for each target if booked now: the
        earliest start from which the contact holds over the transfer and an antenna is free.

        Args:
            targets: int[M] satellites (all when ``None``).

        Returns:
            float[M] (float[N] when ``targets`` is None).
        """
        occupy = self.ground_s(size_gb)
        t0, arrival0 = self._first_hold(station, now_s, size_gb)
        if targets is None:
            cols = np.arange(t0.shape[0])
        else:
            cols = np.asarray(targets)
            t0, arrival0 = t0[cols], arrival0[cols]
        start = self._antenna_start(station, t0, occupy, cols)
        arrival = arrival0.copy()
        moved = np.flatnonzero(start != t0)  # an antenna is busy when the contact opens
        if moved.size:
            start, cols = start[moved], cols[moved]
            arrival[moved] = start + self.transfer_s(size_gb, self.hops[self.sample(start), station, cols])
        return arrival

    def _antenna_start(self, station: int, t0: np.ndarray, occupy_s: float, cols: np.ndarray) -> np.ndarray:
        """The booking's start [s] of transfers between ``station`` and satellites ``cols`` (int[M])
        whose contacts first hold them at ``t0`` (float[M]): the earliest free antenna gap, and,
        if the contact closes while waiting for it, the next contact that holds (float[M], ``inf``
        if never). Vectorised :meth:`_book_start`."""
        s = self.antennas.earliest_many(station, t0, occupy_s)
        moved = np.flatnonzero(s != t0)
        if moved.size == 0:
            return s
        start = np.array(t0, dtype=float)
        cols, s = cols[moved], s[moved]
        start[moved] = np.inf
        idx = np.arange(moved.size)
        for _ in range(_MAX_REBOOK):
            fits = self._fits(s, occupy_s, self.reach_end[self.sample(s), station, cols[idx]])
            start[moved[idx[fits]]] = s[fits]
            # the contact closes while waiting for an antenna: wait for the next one that holds
            idx = idx[~fits]
            t = self._next_hold(s[~fits], occupy_s, station, cols[idx])
            keep = np.isfinite(t)
            idx, t = idx[keep], t[keep]
            if idx.size == 0:
                return start
            s = self.antennas.earliest_many(station, t, occupy_s)
        raise RuntimeError("antenna search did not converge")  # pragma: no cover

    def _first_hold(self, station: int, now_s: float, size_gb: float) -> tuple[np.ndarray, np.ndarray]:
        """float[N] each: the first start ≥ ``now_s`` from which ``station``'s contact with each
        satellite holds a ``size_gb`` transfer [s], and the arrival if it starts then [s].

        The same for every job of one size at a station and step boundary, so cached per
        (now, station, size).
        """
        key = (now_s, station, float(size_gb))
        terms = self._hold_cache.get(key)
        if terms is None:
            if self._hold_cache and next(iter(self._hold_cache))[0] != now_s:
                self._hold_cache.clear()
            occupy = self.ground_s(size_gb)
            k, n = self._sample_one(now_s), self.hops.shape[2]
            t0 = np.full(n, float(now_s))
            hops = self.hops[k, station].copy()
            # who can start now, else at the start of the next contact, where nearly every
            # transfer fits; the rest search on
            end = self.reach_end[k, station]
            miss = np.flatnonzero(~self._fits(t0, occupy, end))
            end = end[miss].astype(np.int64)
            k_next = self.next_reach[np.minimum(end, self.n_samples - 1), station, miss]
            k_next = np.where(end < self.n_samples, k_next, self.n_samples)
            t0[miss] = self._time_at(k_next)
            k_next = np.minimum(k_next, self.n_samples - 1)
            later = ~self._fits(t0[miss], occupy, self.reach_end[k_next, station, miss]) & (t0[miss] < np.inf)
            if later.any():
                t0[miss[later]] = self._next_hold(t0[miss[later]], occupy, station, miss[later])
            hops[miss] = self.hops[self.sample(t0[miss]), station, miss]
            arrival0 = t0 + self.transfer_s(size_gb, hops)
            t0.flags.writeable = arrival0.flags.writeable = False
            terms = self._hold_cache[key] = (t0, arrival0)
        return terms

    def inorbit_estimate(self, sat_hops: np.ndarray, now_s: float, size_gb: float) -> np.ndarray:
        """Input arrival [s] for data on board a satellite, given the hops ``sat_hops`` to each target."""
        isl_s = size_gb * GBIT_PER_GB / self.cfg.isl_gbps + sat_hops * self.cfg.hop_latency_s
        return np.where(sat_hops < 0, np.inf, now_s + np.where(sat_hops == 0, 0.0, isl_s))

    def downlink_estimate(
        self, finish_s: np.ndarray, targets: np.ndarray | None, size_gb: float
    ) -> np.ndarray:
        """Output delivery time [s] for output ready at ``finish_s`` on ``targets`` (all if None).

        Exactly what :meth:`book_downlink` would return for each if booked now at ``finish_s``:
        the earliest start from which some station's contact holds the transfer and an antenna
        is free, given the bookings already made (later bookings may still take a gap first).
        Vectorised over targets.

        Args:
            finish_s: float[M] output ready times [s].
            targets: int[M] satellites (all when ``None``).

        Returns:
            float[M].
        """
        finish_s = np.asarray(finish_s, dtype=float)
        cols = np.arange(finish_s.shape[0]) if targets is None else np.asarray(targets)
        occupy = self.ground_s(size_gb)
        start, station = self._first_down(finish_s, cols, occupy)
        # where that station's antennas are all busy then, search every station as the booking does
        busy = np.zeros(start.shape, dtype=bool)
        finite = np.isfinite(start)
        for g in np.unique(station[finite]).tolist():
            sel = np.flatnonzero(finite & (station == g))
            busy[sel] = self.antennas.earliest_many(g, start[sel], occupy) != start[sel]
        idx = np.flatnonzero(busy)
        if idx.size:
            start[idx], station[idx] = self._contended_down(finish_s[idx], cols[idx], occupy)
        return start + self.transfer_s(size_gb, self.hops[self.sample(start), station, cols])

    def _first_down(self, finish_s: np.ndarray, cols: np.ndarray, occupy_s: float) -> tuple[np.ndarray, ...]:
        """Without antenna contention: the earliest start ≥ ``finish_s`` from which some station's
        contact with each of ``cols`` holds a ``occupy_s`` transfer (float[M], ``inf`` if never),
        and the lowest-numbered such station (int[M]), as the booking picks on ties."""
        t = finish_s.copy()
        k = self.sample(t)
        idx = np.flatnonzero(~self._fits(t, occupy_s, self.down_end[k, cols]) & np.isfinite(t))
        # a start later in the same step only ends later: try the next step with a contact
        while idx.size:  # each round moves past at least one sample with a contact
            k_next = self.next_down[np.minimum(k[idx] + 1, self.n_samples - 1), cols[idx]]
            k_next = np.where(k[idx] + 1 < self.n_samples, k_next, self.n_samples)
            t[idx] = self._time_at(k_next)
            idx = idx[k_next < self.n_samples]
            k[idx] = self.sample(t[idx])
            idx = idx[~self._fits(t[idx], occupy_s, self.down_end[k[idx], cols[idx]])]
        # nearly always the lowest-numbered station reaching the satellite is one that holds
        station = (self.hops[k, :, cols] >= 0).argmax(axis=1)
        idx = np.flatnonzero(~self._fits(t, occupy_s, self.first_down_end[k, cols]) & np.isfinite(t))
        for g in range(self.hops.shape[1]):
            if idx.size == 0:
                break
            holds = self._fits(t[idx], occupy_s, self.reach_end[k[idx], g, cols[idx]])
            station[idx[holds]] = g
            idx = idx[~holds]
        return t, station

    def _contended_down(
        self, finish_s: np.ndarray, cols: np.ndarray, occupy_s: float
    ) -> tuple[np.ndarray, ...]:
        """The booking's downlink start [s] and station for each of ``cols`` (float[M], int[M]):
        every station's first contact that holds the transfer from ``finish_s``, then its first
        free antenna gap; the earliest start wins, on ties the station whose contact holds first,
        then the lowest-numbered (:meth:`book_downlink`)."""
        n_stations, m = self.hops.shape[1], finish_s.shape[0]
        stations = np.repeat(np.arange(n_stations), m)
        first = self._next_hold(np.tile(finish_s, n_stations), occupy_s, stations, np.tile(cols, n_stations))
        first = first.reshape(n_stations, m)
        start = np.full_like(first, np.inf)
        for g in range(n_stations):
            ok = np.flatnonzero(np.isfinite(first[g]))
            if ok.size:
                start[g, ok] = self._antenna_start(g, first[g, ok], occupy_s, cols[ok])
        best = start.min(axis=0)
        tied = start == best
        first_tied = np.where(tied, first, np.inf)
        return best, (tied & (first_tied == first_tied.min(axis=0))).argmax(axis=0)

    # -- bookings (one transfer each, in booking order, back-filling antenna gaps) ----------
    def _book_start(self, station: int, sat: int, ready_s: float, occupy_s: float) -> tuple[float, int]:
        """Earliest start ≥ ``ready_s`` at which ``station`` holds a contact with ``sat`` over
        the transfer and has a free antenna: (start [s], ``inf`` if never; that antenna)."""
        t = ready_s
        for _ in range(_MAX_REBOOK):
            t = self._next_hold_one(t, occupy_s, station, sat)
            if not np.isfinite(t):
                return np.inf, 0
            start, antenna = self.antennas.earliest(station, t, occupy_s)
            if self._fits_one(start, occupy_s, int(self.reach_end[self._sample_one(start), station, sat])):
                return start, antenna
            t = start  # the contact closed while waiting for an antenna: wait for the next one
        raise RuntimeError("transfer booking did not converge")  # pragma: no cover

    def book_uplink(self, station: int, target: int, ready_s: float, size_gb: float) -> Transfer:
        """Book the uplink of ``size_gb`` from ``station`` to ``target`` no earlier than ``ready_s``.

        Loop: the next contact at or after t that can hold the whole transfer, the earliest
        free antenna gap from then, and re-check the contact over the transfer from that start,
        else wait for the next contact.

        Returns:
            the :class:`Transfer` (arrival at the target [s], its start [s], antenna occupancy [s]).
        """
        occupy = self.ground_s(size_gb)
        start, antenna = self._book_start(station, target, ready_s, occupy)
        if not np.isfinite(start):
            return NEVER
        self.antennas.book(station, antenna, start, occupy)
        hops = self.hops[self._sample_one(start), station, target]
        return Transfer(float(start + self.transfer_s(size_gb, hops)), float(start), occupy)

    def book_downlink(self, sat: int, ready_s: float, size_gb: float) -> Transfer:
        """Book the downlink of ``size_gb`` from ``sat`` through the station that can take it first.

        Every station is tried with the uplink's rule (a contact that holds over the transfer
        and a free antenna) in the order their contacts can first hold it, lowest-numbered
        first on ties; the earliest start wins, the station tried first on ties.

        Returns:
            the :class:`Transfer` (delivery time [s], its start [s], antenna occupancy [s]).
        """
        occupy = self.ground_s(size_gb)
        n_stations = self.hops.shape[1]
        first = self._next_hold(
            np.full(n_stations, float(ready_s)), occupy, np.arange(n_stations), np.full(n_stations, sat)
        )
        best = (np.inf, 0, 0)
        for g in np.argsort(first, kind="stable").tolist():
            if first[g] >= best[0]:  # no start of this station or a later one comes earlier
                break
            start, antenna = self._book_start(g, sat, float(first[g]), occupy)
            if start < best[0]:
                best = (start, g, antenna)
        start, station, antenna = best
        if not np.isfinite(start):
            return NEVER
        self.antennas.book(station, antenna, start, occupy)
        hops = self.hops[self._sample_one(start), station, sat]
        return Transfer(float(start + self.transfer_s(size_gb, hops)), float(start), occupy)
