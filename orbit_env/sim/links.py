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
- ``uplink_estimate`` and ``downlink_estimate`` give, for every target, exactly the time the
  booking would give if made now: they run the booking's own search (same antennas, same
  contact rule), only without booking; bookings made later (other placements, other jobs
  finishing first) may still take a gap first.

The searches are compiled (numba ``njit``, like :mod:`orbit_env.sim.kernels`) scalar loops
over the antenna schedule's arrays, one implementation for the estimates and the bookings.
"""

from __future__ import annotations

import copy
import math
from typing import NamedTuple

import numpy as np

from orbit_env.config import LinkConfig
from orbit_env.sim.kernels import njit

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
    return np.ascontiguousarray(np.minimum.accumulate(idx[::-1], axis=0)[::-1], dtype=np.int32)


def _next_index_compact(flag: np.ndarray) -> np.ndarray:
    """:func:`next_index` in int16 when the grid allows it (these tables are [T, G, N])."""
    t = flag.shape[0]
    if t >= np.iinfo(np.int16).max:
        return next_index(flag)
    idx = np.where(flag, np.arange(t, dtype=np.int16).reshape((t,) + (1,) * (flag.ndim - 1)), np.int16(t))
    return np.ascontiguousarray(np.minimum.accumulate(idx[::-1], axis=0)[::-1])


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


# -- compiled searches (scalar; the arrays are the schedule's and the LinkModel's tables) ------------
# lo, hi: float[G, A, C] each antenna's busy intervals [s], sorted, the first count[g, a] in use;
# reach_end, next_reach: int[T, G, N] (LinkModel); times: float[T] sample times [s].


@njit
def _sample(t_s: float, dt_s: float, n_samples: int) -> int:
    """Index of the step containing ``t_s``, clipped to the grid."""
    q = t_s / dt_s
    if q >= n_samples - 1:
        return n_samples - 1
    return max(math.floor(q), 0)


@njit
def _fits(start_s: float, occupy_s: float, end_k: int, dt_s: float, n_samples: int) -> bool:
    """Whether a transfer [start, start + occupy] lies inside a contact open until sample
    ``end_k`` (exclusive): every sample k with k·dt in it is before ``end_k``."""
    q = (start_s + occupy_s) / dt_s
    return q < n_samples and math.floor(q) < end_k


@njit
def transfer_time_s(
    size_gb: float, hops: int, ground_gbps: float, isl_gbps: float, hop_latency_s: float
) -> float:
    """Time to move ``size_gb`` over a ground link and ``hops`` ISL hops [s] (the bottleneck
    rate, plus each hop's latency)."""
    rate = min(ground_gbps, isl_gbps) if hops > 0 else ground_gbps
    return size_gb * (GBIT_PER_GB / rate) + max(hops, 0) * hop_latency_s


@njit
def _arrival_s(start_s, size_gb, hops, station, sat, rates, dt_s) -> float:
    """When a transfer started at ``start_s`` over ``station``'s link to ``sat`` lands [s]: the
    bottleneck time and the hop latency over the route at that sample (``rates``: ground Gbps,
    ISL Gbps, hop latency s)."""
    h = hops[_sample(start_s, dt_s, hops.shape[0]), station, sat]
    return start_s + transfer_time_s(size_gb, h, rates[0], rates[1], rates[2])


@njit
def next_hold(t_s, occupy_s, station, sat, reach_end, next_reach, times, dt_s) -> float:
    """Earliest start ≥ ``t_s`` from which ``station`` reaches ``sat`` over a whole transfer of
    ``occupy_s`` [s] (``inf`` if never). Inside a contact a later start only ends later, so a
    start that does not fit waits for the beginning of the next contact."""
    n = reach_end.shape[0]
    for _ in range(n + 1):
        if t_s == np.inf:
            return t_s
        end = reach_end[_sample(t_s, dt_s, n), station, sat]
        if _fits(t_s, occupy_s, end, dt_s, n):
            return t_s
        k = next_reach[end, station, sat] if end < n else n
        t_s = times[k] if k < n else np.inf
    raise RuntimeError("contact search did not converge")


@njit
def earliest_gap(lo, hi, count, station, t_s, duration_s):
    """Earliest start ≥ ``t_s`` of a ``duration_s`` gap on any antenna of ``station``, and the
    antenna (the lowest-numbered on ties): from the first interval ending after t, while the
    transfer overlaps the next interval, move to its end."""
    best, best_antenna = np.inf, 0
    for a in range(count.shape[1]):
        m = count[station, a]
        j, top = 0, m  # bisect: the first interval ending after t (ends ascend)
        while j < top:
            mid = (j + top) // 2
            if hi[station, a, mid] <= t_s:
                j = mid + 1
            else:
                top = mid
        start = t_s
        while j < m:
            if start + duration_s <= lo[station, a, j]:
                break
            start = max(start, hi[station, a, j])
            j += 1
        if start < best:
            best, best_antenna = start, a
    return best, best_antenna


@njit
def book_start(lo, hi, count, reach_end, next_reach, times, dt_s, station, sat, ready_s, occupy_s):
    """Earliest start ≥ ``ready_s`` at which ``station`` holds a contact with ``sat`` over the
    transfer and has a free antenna: (start [s], ``inf`` if never; that antenna). Loop: the next
    contact that can hold the whole transfer, the earliest free antenna gap from then, and, if
    the contact closed while waiting for the antenna, the next contact."""
    n = reach_end.shape[0]
    t = ready_s
    for _ in range(_MAX_REBOOK):
        t = next_hold(t, occupy_s, station, sat, reach_end, next_reach, times, dt_s)
        if not np.isfinite(t):
            return np.inf, 0
        start, antenna = earliest_gap(lo, hi, count, station, t, occupy_s)
        if _fits(start, occupy_s, reach_end[_sample(start, dt_s, n), station, sat], dt_s, n):
            return start, antenna
        t = start
    raise RuntimeError("transfer booking did not converge")


@njit
def _first_down(t_s, occupy_s, sat, down_end, next_down, times, dt_s) -> float:
    """Earliest start ≥ ``t_s`` from which some station's contact with ``sat`` holds the whole
    transfer [s] (``inf`` if never): the least of every station's :func:`next_hold`."""
    n = down_end.shape[0]
    if not np.isfinite(t_s):
        return t_s
    k = _sample(t_s, dt_s, n)
    # no contact at k (its end is k): a transfer from t >= k dt cannot fit, no division needed
    while down_end[k, sat] <= k or not _fits(t_s, occupy_s, down_end[k, sat], dt_s, n):
        # a start later in the same step only ends later: try the next step with a contact
        if k + 1 >= n or next_down[k + 1, sat] >= n:
            return np.inf
        k = next_down[k + 1, sat]
        t_s = times[k]
    return t_s


@njit
def downlink_start(
    lo, hi, count, reach_end, next_reach, times, dt_s, down_end, next_down, sat, ready_s, occupy_s
):
    """The downlink of ``sat``'s output ready at ``ready_s``: (start [s], ``inf`` if never;
    station; antenna). Every station is tried with :func:`book_start` in the order their
    contacts can first hold the transfer (lowest-numbered first on ties); the earliest start
    wins, the station tried first on ties.

    Nearly always the first station in that order has an antenna free when its contact first
    holds, and then it wins without the others being searched.
    """
    n = reach_end.shape[0]
    t = _first_down(ready_s, occupy_s, sat, down_end, next_down, times, dt_s)
    if not np.isfinite(t):
        return np.inf, 0, 0
    k = _sample(t, dt_s, n)
    g = 0  # the first in the order: the lowest-numbered station whose contact holds from t
    while not _fits(t, occupy_s, reach_end[k, g, sat], dt_s, n):
        g += 1
    start, antenna = earliest_gap(lo, hi, count, g, t, occupy_s)
    if start == t:
        return t, g, antenna
    return _downlink_search(lo, hi, count, reach_end, next_reach, times, dt_s, sat, ready_s, occupy_s)


@njit
def _downlink_search(lo, hi, count, reach_end, next_reach, times, dt_s, sat, ready_s, occupy_s):
    """:func:`downlink_start` when its common case fails: every station tried with
    :func:`book_start` in the order of its first hold. Returns (start, station, antenna)."""
    n_stations = reach_end.shape[1]
    first = np.empty(n_stations)
    order = np.empty(n_stations, dtype=np.int64)
    for g in range(n_stations):
        first[g] = next_hold(ready_s, occupy_s, g, sat, reach_end, next_reach, times, dt_s)
        i = g  # stable insertion by first hold
        while i > 0 and first[order[i - 1]] > first[g]:
            order[i] = order[i - 1]
            i -= 1
        order[i] = g
    best, best_station, best_antenna = np.inf, 0, 0
    for i in range(n_stations):
        g = order[i]
        if first[g] >= best:  # no start of this station or a later one comes earlier
            break
        start, antenna = book_start(
            lo, hi, count, reach_end, next_reach, times, dt_s, g, sat, first[g], occupy_s
        )
        if start < best:
            best, best_station, best_antenna = start, g, antenna
    return best, best_station, best_antenna


@njit
def _uplink_arrivals(tables, station, now_s, size_gb, targets, out):
    """``out[i]``: the input arrival [s] at ``targets[i]`` if its uplink were booked now.
    ``tables``: :meth:`LinkModel._tables`."""
    lo, hi, count, reach_end, next_reach, times, dt_s, down_end, next_down, hops, rates = tables
    occupy = size_gb * GBIT_PER_GB / rates[0]
    n = reach_end.shape[0]
    # The common case, its terms taken once for every satellite (the same operations as the
    # general case below, so the same results): the station's contact is open now and holds
    # the transfer (next_hold's first round), the earliest antenna gap from now (the same for
    # every such satellite) lies within the contact, and the data lands by the hops then.
    k_now = _sample(now_s, dt_s, n)
    q_now = (now_s + occupy) / dt_s
    holds_now = q_now < n
    last_now = math.floor(q_now) if holds_now else 0
    gap = earliest_gap(lo, hi, count, station, now_s, occupy)[0]
    k_gap = _sample(gap, dt_s, n)
    q_gap = (gap + occupy) / dt_s
    fits_gap = q_gap < n
    last_gap = math.floor(q_gap) if fits_gap else 0
    ground_s = size_gb * (GBIT_PER_GB / rates[0])  # transfer_time_s with no hop
    direct = gap + ground_s
    per_gb_isl = GBIT_PER_GB / min(rates[0], rates[1])
    same_grid = hops.shape[0] == n
    for i in range(targets.shape[0]):
        sat = targets[i]
        if holds_now and last_now < reach_end[k_now, station, sat]:
            if fits_gap and last_gap < reach_end[k_gap, station, sat]:
                h = hops[k_gap, station, sat]
                out[i] = direct if h <= 0 else gap + (size_gb * per_gb_isl + h * rates[2])
                continue
        # book_start's first round written out here (a call per satellite costs more than its
        # work); book_start goes on from its start only if the contact closed meanwhile
        start = next_hold(now_s, occupy, station, sat, reach_end, next_reach, times, dt_s)
        if np.isfinite(start):
            start = earliest_gap(lo, hi, count, station, start, occupy)[0]
            k = _sample(start, dt_s, n)
            if _fits(start, occupy, reach_end[k, station, sat], dt_s, n) and same_grid:
                h = hops[k, station, sat]  # _arrival_s at sample k
                out[i] = start + (ground_s + 0.0 if h <= 0 else size_gb * per_gb_isl + h * rates[2])
                continue
            if not _fits(start, occupy, reach_end[k, station, sat], dt_s, n):
                start = book_start(
                    lo, hi, count, reach_end, next_reach, times, dt_s, station, sat, start, occupy
                )[0]
        out[i] = _arrival_s(start, size_gb, hops, station, sat, rates, dt_s)


@njit
def _inorbit_arrivals(sat_hops, now_s, isl_s, hop_latency_s, out):
    """``out[i]``: when data on board a satellite lands on the satellite ``sat_hops[i]`` ISL
    hops away [s]: now if there (0 hops), never if unreachable (−1), else the ISL transfer
    (``isl_s``) plus each hop's latency."""
    for i in range(sat_hops.shape[0]):
        h = sat_hops[i]
        if h < 0:
            out[i] = np.inf
        elif h == 0:
            out[i] = now_s + 0.0
        else:
            out[i] = now_s + (isl_s + h * hop_latency_s)


@njit
def _job_estimate(
    tables, ready_s, earliest_s, valid, work_s, size_gb, targets, start_out, finish_out, delivery_out
):
    """One job on each of ``targets`` (int[M]): it starts once its input is there
    (``ready_s[i]``) and the satellite can take it (``earliest_s[sat]``; never where not
    ``valid[sat]``), runs ``work_s`` seconds, and its output goes down as :func:`downlink_start`
    books it. Writes start, finish and delivery [s] (float[M] each, ``inf`` = never)."""
    lo, hi, count, reach_end, next_reach, times, dt_s, down_end, next_down, hops, rates = tables
    occupy = size_gb * GBIT_PER_GB / rates[0]
    n = reach_end.shape[0]
    same_grid = hops.shape[0] == n
    # transfer_time_s's terms, taken once: straight down, or relayed over ISL hops
    direct = size_gb * (GBIT_PER_GB / rates[0])
    relayed = size_gb * (GBIT_PER_GB / min(rates[0], rates[1]))
    for i in range(targets.shape[0]):
        sat = targets[i]
        start = max(ready_s[i], earliest_s[sat]) if valid[sat] else np.inf
        finish = start + work_s
        start_out[i] = start
        finish_out[i] = finish
        # downlink_start's common case written out here (a call per satellite costs ~3x its
        # work): the first station whose contact holds has an antenna free at once
        down = _first_down(finish, occupy, sat, down_end, next_down, times, dt_s)
        g = 0
        if np.isfinite(down):
            k = _sample(down, dt_s, n)
            # _fits(down, occupy, end, ...) for each station in turn; a finite down fits the
            # grid ((down + occupy) / dt < n), so only the contact's end is compared
            last = math.floor((down + occupy) / dt_s)
            while last >= reach_end[k, g, sat]:
                g += 1
            if earliest_gap(lo, hi, count, g, down, occupy)[0] == down:
                if same_grid:  # _arrival_s at sample k
                    h = hops[k, g, sat]
                    delivery_out[i] = down + (direct + 0.0 if h <= 0 else relayed + h * rates[2])
                    continue
            else:  # the full search
                down, g, _ = _downlink_search(
                    lo, hi, count, reach_end, next_reach, times, dt_s, sat, finish, occupy
                )
        delivery_out[i] = _arrival_s(down, size_gb, hops, g, sat, rates, dt_s)


@njit
def _decision_estimate(
    tables, station, hops, now_s, input_gb, isl_s, earliest_s, open_, valid_now, deadline_s,
    work_s, output_gb, targets, ready, start, finish, delivery, valid,
):  # fmt: skip
    """One job's decision on every satellite in one call: its input arrival (``ready``: the
    uplink from ``station``, or where ``station`` < 0 over ``hops`` ISL hops from the satellite
    holding it), start, finish and delivery (:func:`_job_estimate`) [s], and ``valid``: open
    (``open_``) and the input there before ``deadline_s``. ``targets``: every satellite, in order."""
    if station >= 0:
        _uplink_arrivals(tables, station, now_s, input_gb, targets, ready)
    else:
        _inorbit_arrivals(hops, now_s, isl_s, tables[10][2], ready)
    _job_estimate(tables, ready, earliest_s, valid_now, work_s, output_gb, targets, start, finish, delivery)
    for i in range(ready.shape[0]):
        valid[i] = open_[i] and ready[i] < deadline_s


@njit
def _book_search(tables, down, station, sat, ready_s, size_gb):
    """The booking of one ground transfer of ``size_gb`` from ``ready_s`` [s], without booking
    it: an uplink from ``station`` to ``sat``, or (``down``) the downlink of ``sat`` through
    the station that takes it first. Returns (arrival [s], start [s], occupancy [s], station,
    antenna), arrival and start ``inf`` if it never happens."""
    lo, hi, count, reach_end, next_reach, times, dt_s, down_end, next_down, hops, rates = tables
    occupy = size_gb * GBIT_PER_GB / rates[0]
    if down:
        start, station, antenna = downlink_start(
            lo, hi, count, reach_end, next_reach, times, dt_s, down_end, next_down, sat, ready_s, occupy
        )
    else:
        start, antenna = book_start(
            lo, hi, count, reach_end, next_reach, times, dt_s, station, sat, ready_s, occupy
        )
    if not np.isfinite(start):
        return np.inf, np.inf, occupy, station, antenna
    return _arrival_s(start, size_gb, hops, station, sat, rates, dt_s), start, occupy, station, antenna


@njit
def _book_transfer(tables, down, station, sat, ready_s, size_gb):
    """:func:`_book_search`, then the booking itself where the antenna has room (the caller
    grows the schedule and books when it has not). Returns the search's five values and
    whether it was booked."""
    arrival, start, occupy, station, antenna = _book_search(tables, down, station, sat, ready_s, size_gb)
    lo, hi, count = tables[0], tables[1], tables[2]
    booked = False
    if np.isfinite(start) and count[station, antenna] < lo.shape[2]:
        _insert(lo, hi, count, station, antenna, start, start + occupy)
        booked = True
    return arrival, start, occupy, station, antenna, booked


@njit
def _insert(lo, hi, count, station, antenna, start_s, end_s) -> None:
    """Insert the interval [start, end) in order (after equal ones, as a stable sort would)."""
    j = count[station, antenna]
    while j > 0 and (
        lo[station, antenna, j - 1] > start_s
        or (lo[station, antenna, j - 1] == start_s and hi[station, antenna, j - 1] > end_s)
    ):
        lo[station, antenna, j] = lo[station, antenna, j - 1]
        hi[station, antenna, j] = hi[station, antenna, j - 1]
        j -= 1
    lo[station, antenna, j] = start_s
    hi[station, antenna, j] = end_s
    count[station, antenna] += 1


@njit
def _release(lo, hi, count, now_s) -> None:
    """Drop the intervals that ended by ``now_s`` (on antennas whose first one has)."""
    for g in range(count.shape[0]):
        for a in range(count.shape[1]):
            m = count[g, a]
            if m == 0 or hi[g, a, 0] > now_s:
                continue
            kept = 0
            for j in range(m):
                if hi[g, a, j] > now_s:
                    lo[g, a, kept] = lo[g, a, j]
                    hi[g, a, kept] = hi[g, a, j]
                    kept += 1
            count[g, a] = kept


@njit
def _backlog(lo, hi, count, now_s, out) -> None:
    """``out[g]``: antenna time booked from ``now_s`` on at station g, per antenna [s]."""
    for g in range(count.shape[0]):
        total = 0.0
        for a in range(count.shape[1]):
            for j in range(count[g, a]):
                if hi[g, a, j] > now_s:
                    total += hi[g, a, j] - max(lo[g, a, j], now_s)
        out[g] = total / count.shape[1]


@njit
def doubled(a: np.ndarray) -> np.ndarray:
    """An antenna schedule's array (float[G, A, C]) with twice the capacity C (zeros added)."""
    return np.concatenate((a, np.zeros_like(a)), axis=2)


class AntennaSchedule:
    """Busy intervals of every antenna of every station, as arrays the compiled searches read.

    A transfer takes the earliest gap on any antenna of its station at or after the time it
    is ready. Bookings are made in decision order and never move, so a later booking may
    back-fill a gap before an earlier one, and a booking far in the future does not block
    the antenna before it.

    Attributes:
        lo, hi: float[G, A, C] each antenna's interval starts and ends [s], sorted; the first
            ``count[g, a]`` are in use (C grows as needed).
        count: int64[G, A].
    """

    def __init__(self, n_stations: int, antennas: int, capacity: int = 16):
        self.lo = np.zeros((n_stations, antennas, capacity))
        self.hi = np.zeros((n_stations, antennas, capacity))
        self.count = np.zeros((n_stations, antennas), dtype=np.int64)

    def reset(self) -> None:
        self.count[:] = 0

    @property
    def busy(self) -> list[list[list[tuple[float, float]]]]:
        """Per station and antenna, the busy intervals as (start, end) pairs [s] (a copy)."""
        pairs = np.stack([self.lo, self.hi], axis=-1)
        return [
            [[tuple(iv) for iv in pairs[g, a, :m].tolist()] for a, m in enumerate(counts)]
            for g, counts in enumerate(self.count.tolist())
        ]

    def release(self, now_s: float) -> None:
        """Forget intervals that ended before ``now_s``."""
        _release(self.lo, self.hi, self.count, float(now_s))

    def earliest(self, station: int, t_s: float, duration_s: float) -> tuple[float, int]:
        """Earliest start ≥ ``t_s`` of a ``duration_s`` gap, and the antenna that has it."""
        start, antenna = earliest_gap(self.lo, self.hi, self.count, station, float(t_s), float(duration_s))
        return float(start), int(antenna)

    def backlog_s(self, now_s: float) -> np.ndarray:
        """float[G]: antenna time booked from ``now_s`` on at each station, per antenna [s]."""
        out = np.empty(self.count.shape[0])
        _backlog(self.lo, self.hi, self.count, float(now_s), out)
        return out

    def book(self, station: int, antenna: int, start_s: float, duration_s: float) -> None:
        if self.count[station, antenna] == self.lo.shape[2]:  # full: double the capacity
            self.lo, self.hi = doubled(self.lo), doubled(self.hi)
        _insert(self.lo, self.hi, self.count, station, antenna, float(start_s), float(start_s + duration_s))


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
        if self.t_s.shape[0] != self.n_samples:
            raise ValueError(f"t_s has {self.t_s.shape[0]} samples, station_hops {self.n_samples}")
        reach = station_hops >= 0
        self.next_reach = next_index(reach)  # [T, G, N]
        #: int[T, G]: first sample >= k at which g reaches some satellite (T if never)
        self.station_first_reach_k = self.next_reach.min(axis=2)
        #: int[T, G, N]: first sample >= k at which g does not reach n (T if it does to the end)
        self.reach_end = _next_index_compact(~reach)
        #: int[T, N]: the furthest any one station's contact open at sample k lasts (k if none)
        self.down_end = self.reach_end.max(axis=1)
        #: int[T, N]: first sample >= k at which some station reaches the satellite (T if none)
        self.next_down = next_index(reach.any(axis=1))
        self.antennas = AntennaSchedule(station_hops.shape[1], cfg.antennas)
        #: (ground Gbps, ISL Gbps, hop latency s), as the compiled searches take them
        self.rates = np.array([cfg.ground_link_gbps, cfg.isl_gbps, cfg.hop_latency_s], dtype=float)
        self._all = np.arange(station_hops.shape[2], dtype=np.int64)

    def reset(self) -> None:
        """Free every antenna."""
        self.antennas.reset()

    def fork(self) -> LinkModel:
        """The same contact tables with an antenna schedule of its own (all antennas free)."""
        new = copy.copy(self)
        new.antennas = AntennaSchedule(self.hops.shape[1], self.cfg.antennas)
        return new

    # -- helpers ---------------------------------------------------------------------------
    def _tables(self) -> tuple:
        """What the compiled searches read: the antenna schedule's arrays, the contact tables,
        the grid, the hops and ``rates`` (ground Gbps, ISL Gbps, hop latency s)."""
        a = self.antennas
        return (
            a.lo, a.hi, a.count, self.reach_end, self.next_reach, self.t_s, self.dt_s,
            self.down_end, self.next_down, self.hops, self.rates,
        )  # fmt: skip

    def ground_s(self, size_gb: float) -> float:
        """Antenna occupancy of one ground transfer [s]."""
        return size_gb * GBIT_PER_GB / self.cfg.ground_link_gbps

    def first_reach_k(self, k: np.ndarray, station: np.ndarray) -> np.ndarray:
        """First sample >= ``k`` at which ``station`` reaches any satellite, directly or over
        ISLs (``n_samples`` if never); ``k``, ``station``: int[J] -> int[J]."""
        return self.station_first_reach_k[k, station]

    def station_reach(self) -> np.ndarray:
        """bool[T, G]: each station reaches some satellite (directly or over ISLs) at each sample."""
        return (self.hops >= 0).any(axis=2)

    def downlink_possible(self) -> np.ndarray:
        """bool[T]: some satellite reaches some station (directly or over ISLs) at each sample."""
        return (self.hops >= 0).any(axis=(1, 2))

    def _targets(self, targets: np.ndarray | None) -> np.ndarray:
        return self._all if targets is None else np.asarray(targets, dtype=np.int64).reshape(-1)

    # -- estimates (every target, no booking) ------------------------------------------------
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
        cols = self._targets(targets)
        out = np.empty(cols.shape[0])
        _uplink_arrivals(self._tables(), int(station), float(now_s), float(size_gb), cols, out)
        return out

    def inorbit_estimate(self, sat_hops: np.ndarray, now_s: float, size_gb: float) -> np.ndarray:
        """Input arrival [s] for data on board a satellite, given the hops ``sat_hops`` to each target."""
        out = np.empty(sat_hops.shape[0])
        isl_s = float(size_gb) * GBIT_PER_GB / self.cfg.isl_gbps
        _inorbit_arrivals(sat_hops, float(now_s), isl_s, float(self.cfg.hop_latency_s), out)
        return out

    def downlink_estimate(
        self, finish_s: np.ndarray, targets: np.ndarray | None, size_gb: float
    ) -> np.ndarray:
        """Output delivery time [s] for output ready at ``finish_s`` on ``targets`` (all if None).

        Exactly what :meth:`book_downlink` would return for each if booked now at ``finish_s``:
        the earliest start from which some station's contact holds the transfer and an antenna
        is free, given the bookings already made (later bookings may still take a gap first).

        Args:
            finish_s: float[M] output ready times [s].
            targets: int[M] satellites (all when ``None``).

        Returns:
            float[M].
        """
        finish_s = np.ascontiguousarray(finish_s, dtype=float).reshape(-1)
        cols = self._all[: finish_s.shape[0]] if targets is None else self._targets(targets)
        if cols.shape != finish_s.shape:
            raise ValueError(f"finish_s has {finish_s.shape[0]} times for {cols.shape[0]} targets")
        # a job of no work whose input is ready at finish_s, on satellites free at once
        n = self._all.shape[0]
        return self.job_estimate(finish_s, np.full(n, -np.inf), np.ones(n, dtype=bool), 0.0, size_gb, cols)[2]

    def job_estimate(
        self,
        ready_s: np.ndarray,
        earliest_s: np.ndarray,
        valid: np.ndarray,
        work_s: float,
        size_gb: float,
        targets: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start, finish and delivery [s] of a job of ``work_s`` seconds and ``size_gb`` of output
        on each target (float[M] each, ``inf`` = never): it starts at ``max(ready_s, earliest_s)``
        where ``valid``, and its output goes down as :meth:`book_downlink` would book it now.

        Args:
            ready_s: float[M] input arrival on each target [s].
            earliest_s, valid: float[N] and bool[N], per satellite (every satellite, not per target).
            targets: int[M] satellites (all when ``None``).
        """
        cols = self._targets(targets)
        start, finish, delivery = np.empty(cols.shape[0]), np.empty(cols.shape[0]), np.empty(cols.shape[0])
        _job_estimate(
            self._tables(),
            np.ascontiguousarray(ready_s, dtype=float),
            earliest_s,
            valid,
            float(work_s),
            float(size_gb),
            cols,
            start,
            finish,
            delivery,
        )
        return start, finish, delivery

    # -- bookings (one transfer each, in booking order, back-filling antenna gaps) ----------
    def _book(self, down: bool, station: int, sat: int, ready_s: float, size_gb: float) -> Transfer:
        arrival, start, occupy, station, antenna, booked = _book_transfer(
            self._tables(), down, int(station), int(sat), float(ready_s), float(size_gb)
        )
        if not np.isfinite(start):
            return NEVER
        if not booked:  # that antenna's schedule is full: grow it and book
            self.antennas.book(station, antenna, start, occupy)
        return Transfer(arrival, start, occupy)

    def book_uplink(self, station: int, target: int, ready_s: float, size_gb: float) -> Transfer:
        """Book the uplink of ``size_gb`` from ``station`` to ``target`` no earlier than ``ready_s``.

        Loop: the next contact at or after t that can hold the whole transfer, the earliest
        free antenna gap from then, and re-check the contact over the transfer from that start,
        else wait for the next contact.

        Returns:
            the :class:`Transfer` (arrival at the target [s], its start [s], antenna occupancy [s]).
        """
        return self._book(False, station, target, ready_s, size_gb)

    def book_downlink(self, sat: int, ready_s: float, size_gb: float) -> Transfer:
        """Book the downlink of ``size_gb`` from ``sat`` through the station that can take it first.

        Every station is tried with the uplink's rule (a contact that holds over the transfer
        and a free antenna) in the order their contacts can first hold it, lowest-numbered
        first on ties; the earliest start wins, the station tried first on ties.

        Returns:
            the :class:`Transfer` (delivery time [s], its start [s], antenna occupancy [s]).
        """
        return self._book(True, 0, sat, ready_s, size_gb)
