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
- Each station serves at most ``antennas`` satellites at once. Transfers are booked in the
  order they are decided (a placement books its uplink, a finished job its downlink), each
  in the earliest gap at or after it is ready on any antenna of the station, so a later
  booking may fill a gap left before an earlier one but never moves it. ISL capacity is not
  shared between transfers.
- ``estimate`` methods are vectorised over targets and ignore antenna contention for the
  downlink (the booked transfers do not).
"""

from __future__ import annotations

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

    def reset(self) -> None:
        for station in self.busy:
            for antenna in station:
                antenna.clear()

    def release(self, now_s: float) -> None:
        """Forget intervals that ended before ``now_s``."""
        for station in self.busy:
            for i, antenna in enumerate(station):
                if antenna and antenna[0][1] <= now_s:
                    station[i] = [iv for iv in antenna if iv[1] > now_s]

    def earliest(self, station: int, t_s: float, duration_s: float) -> tuple[float, int]:
        """Earliest start ≥ ``t_s`` of a ``duration_s`` gap, and the antenna that has it."""
        best, best_antenna = np.inf, 0
        for a, intervals in enumerate(self.busy[station]):
            start = t_s
            for lo, hi in intervals:
                if start + duration_s <= lo:
                    break
                start = max(start, hi)
            if start < best:
                best, best_antenna = start, a
        return best, best_antenna

    def earliest_many(self, station: int, t_s: np.ndarray, duration_s: float) -> np.ndarray:
        """:meth:`earliest` start for each of the times ``t_s`` (vectorised over times)."""
        finite = t_s[np.isfinite(t_s)]
        if finite.size == 0:
            return t_s
        first, last = float(finite.min()), float(finite.max())
        best = None
        for intervals in self.busy[station]:
            start, reach = t_s, last
            for lo, hi in intervals:  # sorted and disjoint: pushing past one can only meet later ones
                if lo >= reach + duration_s:
                    break  # no start reaches this interval, nor any later one
                if hi <= first:
                    continue
                start = np.where((start + duration_s > lo) & (start < hi), hi, start)
                reach = max(reach, hi)
            best = start if best is None else np.minimum(best, start)
        return best

    def book(self, station: int, antenna: int, start_s: float, duration_s: float) -> None:
        intervals = self.busy[station][antenna]
        intervals.append((start_s, start_s + duration_s))
        intervals.sort()


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
        any_reach = reach.any(axis=1)  # [T, N]
        self.next_down = next_index(any_reach)  # [T, N]
        masked = np.where(reach, station_hops, np.iinfo(np.int16).max)
        self.down_hops = masked.min(axis=1)  # [T, N], meaningful where any_reach
        self.antennas = AntennaSchedule(station_hops.shape[1], cfg.antennas)
        self._uplink_cache: dict[tuple[float, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        # per-GB transfer time and hop latency of a downlink, by (sample, satellite)
        down_hops = np.where(any_reach, self.down_hops, 0)
        self._down_s_per_gb = self._s_per_gb(down_hops)
        self._down_latency_s = self._latency_s(down_hops)

    def reset(self) -> None:
        """Free every antenna."""
        self.antennas.reset()
        self._uplink_cache.clear()

    # -- helpers ---------------------------------------------------------------------------
    def sample(self, t_s: np.ndarray | float) -> np.ndarray:
        """Index of the step containing ``t_s`` (clipped to the grid)."""
        return np.clip(np.floor(np.asarray(t_s) / self.dt_s), 0, self.n_samples - 1).astype(np.int64)

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

    def downlink_possible(self) -> np.ndarray:
        """bool[T]: some satellite reaches some station (directly or over ISLs) at each sample."""
        return (self.hops >= 0).any(axis=(1, 2))

    def _time_at(self, k: np.ndarray) -> np.ndarray:
        return np.where(k < self.n_samples, self.t_s[np.minimum(k, self.n_samples - 1)], np.inf)

    # -- estimates (vectorised over targets, no booking) -----------------------------------
    def uplink_estimate(self, station: int, now_s: float, size_gb: float, targets: np.ndarray) -> np.ndarray:
        """Input arrival time [s] at each target for data at ``station``; ``inf`` if never."""
        t_reach, inv_rate_s_per_gb, latency_s = self._uplink_terms(station, now_s)
        starts = self.antennas.earliest_many(station, t_reach, self.ground_s(size_gb))
        ready = starts + size_gb * inv_rate_s_per_gb + latency_s
        return ready if targets is None else ready[targets]

    def _uplink_terms(self, station: int, now_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per satellite: first reach time from ``station`` [s], seconds per GB, hop latency [s].

        The same for every job of a station at a step boundary, so cached per (now, station).
        """
        key = (now_s, station)
        terms = self._uplink_cache.get(key)
        if terms is None:
            if self._uplink_cache and next(iter(self._uplink_cache))[0] != now_s:
                self._uplink_cache.clear()
            k = int(self.sample(now_s))
            k_reach = self.next_reach[k, station]
            t_reach = np.maximum(now_s, self._time_at(k_reach))
            hops = self.hops[np.minimum(k_reach, self.n_samples - 1), station, np.arange(k_reach.shape[0])]
            terms = (t_reach, self._s_per_gb(hops), self._latency_s(hops))
            self._uplink_cache[key] = terms
        return terms

    def inorbit_estimate(self, sat_hops: np.ndarray, now_s: float, size_gb: float) -> np.ndarray:
        """Input arrival [s] for data on board a satellite, given the hops ``sat_hops`` to each target."""
        isl_s = size_gb * GBIT_PER_GB / self.cfg.isl_gbps + sat_hops * self.cfg.hop_latency_s
        return np.where(sat_hops < 0, np.inf, now_s + np.where(sat_hops == 0, 0.0, isl_s))

    def downlink_estimate(
        self, finish_s: np.ndarray, targets: np.ndarray | None, size_gb: float
    ) -> np.ndarray:
        """Output delivery time [s] for output ready at ``finish_s`` on ``targets`` (all if None)."""
        cols = np.arange(finish_s.shape[0]) if targets is None else targets
        finite = np.isfinite(finish_s)
        k = np.minimum(np.where(finite, finish_s, 0.0) // self.dt_s, self.n_samples - 1).astype(np.intp)
        k_down = self.next_down[k, cols]
        kd = np.minimum(k_down, self.n_samples - 1)
        t_down = np.maximum(finish_s, self._time_at(k_down))
        return t_down + size_gb * self._down_s_per_gb[kd, cols] + self._down_latency_s[kd, cols]

    # -- bookings (one transfer each, in booking order, back-filling antenna gaps) ----------
    def book_uplink(self, station: int, target: int, ready_s: float, size_gb: float) -> tuple[float, float]:
        """Book the uplink of ``size_gb`` from ``station`` to ``target`` no earlier than ``ready_s``.

        Returns:
            (arrival time at the target [s], ``inf`` if never; antenna occupancy [s]).
        """
        occupy = self.ground_s(size_gb)
        t = ready_s
        for _ in range(_MAX_REBOOK):
            k_reach = int(self.next_reach[int(self.sample(t)), station, target])
            if k_reach >= self.n_samples:
                return np.inf, 0.0
            t = max(t, self.t_s[k_reach])
            start, antenna = self.antennas.earliest(station, t, occupy)
            hops = int(self.hops[int(self.sample(start)), station, target])
            if hops >= 0:
                self.antennas.book(station, antenna, start, occupy)
                return float(start + self.transfer_s(size_gb, np.asarray(hops))), occupy
            t = start  # the contact closed while waiting for an antenna: wait for the next one
        raise RuntimeError("uplink booking did not converge")  # pragma: no cover

    def book_downlink(self, sat: int, ready_s: float, size_gb: float) -> tuple[float, float]:
        """Book the downlink of ``size_gb`` from ``sat`` through the first station it reaches.

        Among the stations that reach ``sat`` at the first contact, the one with the earliest
        free antenna is used. Returns (delivery time [s], ``inf`` if never; occupancy [s]).
        """
        occupy = self.ground_s(size_gb)
        t = ready_s
        for _ in range(_MAX_REBOOK):
            k = int(self.next_down[int(self.sample(t)), sat])
            if k >= self.n_samples:
                return np.inf, 0.0
            t = max(t, self.t_s[k])
            best = (np.inf, 0, 0)
            for station in np.flatnonzero(self.hops[k, :, sat] >= 0):
                start, antenna = self.antennas.earliest(int(station), t, occupy)
                best = min(best, (start, int(station), antenna))
            start, station, antenna = best
            hops = int(self.hops[int(self.sample(start)), station, sat])
            if hops >= 0:
                self.antennas.book(station, antenna, start, occupy)
                return float(start + self.transfer_s(size_gb, np.asarray(hops))), occupy
            t = start
        raise RuntimeError("downlink booking did not converge")  # pragma: no cover
