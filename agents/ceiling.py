"""Offline upper bound ("ceiling") on an episode's return, from a linear programme (design §6).

Called right after ``env.reset(seed=...)`` on ``env.unwrapped.sim``, before any job is placed,
with the whole job stream known. :func:`ceiling` returns an upper bound on the return (sum of
rewards) that any policy can reach in that episode, and one on its on-time value.

The LP (:class:`_CeilingLP`) runs over job-timing buckets (e.g. 10 min) cut into energy steps
(e.g. 2 min), with each job's window from arrival to deadline, slot capacity, energy with
battery dynamics and brownouts, and satellites pooled into groups of similar sunlight phase
where the exact problem is too large. Why its optimum bounds every policy is argued in parts:
the class docstring gives the frame (any policy's run is a feasible point whose objective is at
least its return) and each constraint family's method says why every run satisfies it. Solved
with HiGHS; if a solve does not finish within ``time_limit_s`` the bound falls back to coarser
pooling and finally to the trivial bound (every on-time-feasible job on time), and ``status``
says which was used.

The simulator is read only through its public API: ``presentation_s()``, the link model's
``first_reach_k`` and ``downlink_possible``, the geometry, power config, jobs and counters.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from orbit_env.config import PowerConfig
from orbit_env.sim.links import GBIT_PER_GB
from orbit_env.sim.simulator import JobState, Simulator

_EPS = 1e-9
_METHOD = "highs-ds"


def ceiling(
    sim: Simulator,
    bucket_s: float = 600.0,
    time_limit_s: float = 60.0,
    groups: int | None = None,
    energy_s: float | None = None,
) -> dict:
    """Upper bounds on the return and on-time value any policy can reach in this episode.

    Args:
        sim: a simulator right after reset (no job placed yet), e.g. ``env.unwrapped.sim``.
        bucket_s: job-timing bucket [s] (a multiple of ``dt_s`` is used).
        time_limit_s: wall-clock budget for the solves [s].
        groups: satellites pooled into this many groups of similar sunlight phase; ``None`` = one
            group per satellite (no pooling).
        energy_s: energy step [s] (default ``2 dt_s``); a divisor of the bucket is used.

    Returns:
        dict with ``return`` and ``value_on_time`` (the bounds), ``status`` (``"optimal"``,
        ``"pooled"`` after a fallback, or ``"trivial"``), ``solve_s``, ``buckets``, ``groups``,
        ``energy_step_s``, ``brownouts`` (in the return LP's optimum), ``jobs_on_time`` and
        ``job_on_time`` ([J] each job's on-time share in that optimum, in [0, 1]; 1 for every
        on-time-feasible job in the trivial bound), e.g. to see which jobs a policy leaves.

    Raises:
        ValueError: a job has already been placed, rejected or finished.
    """
    t_start = time.perf_counter()
    if sim.jobs is None:
        raise ValueError("call reset() before ceiling()")
    if np.isin(sim.state, (JobState.FUTURE, JobState.PENDING), invert=True).any() or sim.progress_s.any():
        raise ValueError("ceiling() needs the state right after reset: a job was already decided")
    attempts = [(groups, bucket_s, energy_s)]
    if groups is None or groups > 8:
        attempts.append((8, max(bucket_s, 900.0), max(bucket_s, 900.0)))
    attempts.append((1, max(bucket_s, 1800.0), max(bucket_s, 1800.0)))
    for i, (g, b, e) in enumerate(attempts):
        left = time_limit_s - (time.perf_counter() - t_start)
        if left <= 1.0 and i > 0:
            break
        out = _solve(sim, b, e, g, max(left, 1.0) if i + 1 < len(attempts) else max(left, 5.0))
        if out is not None:
            out["status"] = "optimal" if i == 0 else "pooled"
            out["solve_s"] = time.perf_counter() - t_start
            return out
    out = _trivial(sim)
    out["solve_s"] = time.perf_counter() - t_start
    return out


def _solve(
    sim: Simulator, bucket_s: float, energy_s: float | None, groups: int | None, time_limit_s: float
) -> dict | None:
    """One attempt: the LP bound for this discretisation, or None if HiGHS ran out of time."""
    if sim.n_steps - sim.step_index <= 0:
        c0 = sim.counters
        return {
            "return": _accrued_return(sim),
            "value_on_time": c0.value_on_time,
            "buckets": 0,
            "groups": 0,
            "job_on_time": np.zeros(sim.jobs.value.size),
        }
    return _CeilingLP(sim, bucket_s, energy_s, groups).solve(time_limit_s)


def _accrued_return(sim: Simulator) -> float:
    """Return already held by the counters (settled jobs and brownouts so far)."""
    rw, c0 = sim.config.reward, sim.counters
    return (
        c0.value_on_time
        - rw.miss_penalty * (c0.value_late + c0.value_expired)
        - rw.reject_penalty * c0.value_rejected
        - rw.brownout_penalty * c0.brownouts
    )


# -- geometry-derived windows ---------------------------------------------------------------------
def _windows(sim: Simulator, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Earliest start and latest on-time finish of each job over all satellites [s], float[J] each.

    A job cannot start before it is presented (``present``, the boundary after arrival) and its
    input has reached some satellite: the origin station's first contact with any satellite,
    directly or over ISLs, plus the transfer at the ground rate, which is the fastest link. It is
    on time only if it finishes early enough that some satellite's first downlink after the
    finish, plus the transfer, lands by min(deadline, horizon). Earliest and latest are taken over
    all satellites, ignoring antennas, so each window contains the real one.
    """
    jobs, links, cfg = sim.jobs, sim.links, sim.config.links
    t_s, n_samples, dt = links.t_s, links.n_samples, sim.dt_s
    horizon = sim.n_steps * dt
    k_present = np.clip(np.rint(present / dt).astype(np.int64), 0, n_samples - 1)
    # ground input: first contact (direct or through ISLs) of the origin station with any satellite
    ground = jobs.origin_station >= 0
    station = np.maximum(jobs.origin_station, 0)
    k_reach = links.first_reach_k(k_present, station)  # [J]
    t_reach = np.where(k_reach < n_samples, t_s[np.minimum(k_reach, n_samples - 1)], np.inf)
    up_s = jobs.input_gb * GBIT_PER_GB / cfg.ground_link_gbps
    earliest = np.where(ground, np.maximum(present, t_reach) + up_s, present)
    # output: the last sample <= tau with some satellite able to downlink bounds the finish
    any_down = links.downlink_possible()  # [T]
    idx = np.where(any_down, np.arange(n_samples), -1)
    prev_any = np.maximum.accumulate(idx)
    tau = np.minimum(jobs.deadline_s, horizon) - jobs.output_gb * GBIT_PER_GB / cfg.ground_link_gbps
    k_tau = np.clip(np.floor(tau / dt).astype(np.int64), -1, n_samples - 1)
    k_down = np.where(k_tau >= 0, prev_any[np.maximum(k_tau, 0)], -1)
    latest = np.where(k_down >= 0, np.minimum(tau, (k_down + 1) * dt), -np.inf)
    return earliest, latest


class _SafeModeRuns:
    """Safe mode from an empty battery, one run per (start step, satellite), phase by phase.

    Attributes:
        energy_wh: float[S, N] battery of each run [Wh].
        saving_wh: float[S, N] energy saved so far against the non-safe base load [Wh].
        active: bool[S, N] runs not yet recovered (or ended).
    """

    def __init__(self, power: PowerConfig, active: np.ndarray) -> None:
        self.power = power
        self.base_w = power.bus_w + power.accelerators * power.accelerator_idle_w
        self.recover_wh = power.recover_soc * power.battery_wh
        self.energy_wh = np.zeros(active.shape)
        self.saving_wh = np.zeros(active.shape)
        self.active = active

    def phase(self, dur_s: np.ndarray, gen_w: float, mask: np.ndarray) -> None:
        """Advance the runs in ``mask`` by ``dur_s`` [s] ([S, N]) at a constant generation [W]."""
        p = self.power
        net = gen_w - p.bus_w
        dur = np.where(mask, dur_s, 0.0)
        if net > 0:
            rate = net * p.charge_efficiency / 3600.0
            used = np.minimum(dur, np.maximum(self.recover_wh - self.energy_wh, 0.0) / rate)
            self.energy_wh = self.energy_wh + rate * used
            served = p.bus_w * used
            done = mask & (self.energy_wh >= self.recover_wh - 1e-9)
        else:
            rate = -net / p.discharge_efficiency / 3600.0
            t_empty = self.energy_wh / rate if rate > 0 else np.full_like(self.energy_wh, np.inf)
            on_batt = np.minimum(dur, t_empty)
            self.energy_wh = np.maximum(self.energy_wh - rate * dur, 0.0)
            served = p.bus_w * on_batt + gen_w * (dur - on_batt)
            used = dur
            done = np.zeros_like(mask)
        self.saving_wh += np.where(mask, (self.base_w * used - served) / 3600.0, 0.0)
        self.active &= ~done


def _safe_saving_wh(sim: Simulator, k0: int) -> np.ndarray:
    """Most energy [Wh] a brownout in step k can save against the non-safe load lower bound.

    Simulates safe mode (bus load only) from an empty battery at the start of every step, per
    satellite, until the recovery charge or the horizon; a brownout later in the step saves at
    most one step of full base load more than one at the next step start.

    Returns:
        float[N, K + 1] for steps k0 .. n_steps (the last column 0).
    """
    p, geo, dt = sim.power, sim.geometry, sim.dt_s
    n_steps, n = sim.n_steps, sim.n_sats
    steps = n_steps - k0
    alive = geo.valid[k0:n_steps] & geo.valid[k0 + 1 : n_steps + 1]
    lit = geo.sunlit_fraction[k0:n_steps].astype(float) * dt * alive
    lit_first = geo.sunlit[k0:n_steps]
    runs = _SafeModeRuns(p, alive.copy() & (p.recover_soc * p.battery_wh > 0))
    starts = np.arange(steps)[:, None]
    for d in range(steps):
        k = starts + d  # [S, 1] step index relative to k0
        inside = (k < steps)[:, 0]
        if not (runs.active & inside[:, None]).any():
            break
        kk = np.minimum(k[:, 0], steps - 1)
        live = runs.active & inside[:, None] & alive[kk]
        runs.active &= inside[:, None] & alive[kk]
        lit_len = lit[kk]
        first = lit_first[kk]
        # sunlit part first where the step starts lit, else last
        runs.phase(np.where(first, lit_len, dt - lit_len), 0.0, live & ~first)
        runs.phase(np.where(first, lit_len, 0.0), p.solar_array_w, live & first & runs.active)
        runs.phase(np.where(first, dt - lit_len, 0.0), 0.0, live & first & runs.active)
        runs.phase(np.where(first, 0.0, lit_len), p.solar_array_w, live & ~first & runs.active)
    out = np.zeros((n, steps + 1))
    out[:, :steps] = runs.saving_wh.T
    shifted = runs.base_w * dt / 3600.0 * alive.T + out[:, 1:]
    out[:, :steps] = np.maximum(out[:, :steps], shifted)
    return out


def _phase_groups(sim: Simulator, k0: int, groups: int | None) -> np.ndarray:
    """Group index of each satellite: contiguous runs of similar sunlight phase."""
    n = sim.n_sats
    if groups is None or groups >= n:
        return np.arange(n)
    if groups <= 1:
        return np.zeros(n, dtype=np.int64)
    frac = sim.geometry.sunlit_fraction[k0 : sim.n_steps].astype(float)
    t = np.arange(frac.shape[0]) * sim.dt_s
    period = float(sim.period_s) if np.isfinite(sim.period_s) and sim.period_s > 0 else 5760.0
    phase = np.angle((frac * np.exp(-2j * np.pi * t / period)[:, None]).sum(axis=0))
    order = np.argsort(phase, kind="stable")
    out = np.empty(n, dtype=np.int64)
    out[order] = np.arange(n) * groups // n
    return out


# -- the LP's data: time grid, pooled satellites, jobs --------------------------------------------
@dataclass(frozen=True)
class _Grid:
    """The rest of the episode cut into buckets (job timing) and energy steps (battery).

    Attributes:
        dt_s: simulator step [s].
        steps: simulator steps left, K.
        bucket_steps: simulator steps per bucket.
        energy_steps: simulator steps per energy step (a divisor of ``bucket_steps``).
        n_buckets: B.
        n_energy_steps: F.
        energy_steps_per_bucket: energy steps in a bucket.
        bucket_edges_s: float[B + 1] bucket boundaries [s], the last at most the horizon.
        energy_step_of: int[K] energy step of each simulator step.
    """

    dt_s: float
    steps: int
    bucket_steps: int
    energy_steps: int
    n_buckets: int
    n_energy_steps: int
    energy_steps_per_bucket: int
    bucket_edges_s: np.ndarray
    energy_step_of: np.ndarray

    @classmethod
    def build(cls, sim: Simulator, bucket_s: float, energy_s: float | None) -> _Grid:
        """Bucket a multiple of ``dt_s``, energy step (default ``2 dt_s``) a divisor of it."""
        dt, horizon_s = sim.dt_s, sim.n_steps * sim.dt_s
        steps = sim.n_steps - sim.step_index
        bucket_steps = max(1, int(round(bucket_s / dt)))
        energy_steps = max(1, int(round((energy_s if energy_s is not None else 2 * dt) / dt)))
        energy_steps = max(d for d in range(1, min(energy_steps, bucket_steps) + 1) if bucket_steps % d == 0)
        bucket_steps = energy_steps * int(np.ceil(bucket_steps / energy_steps))
        n_buckets = int(np.ceil(steps / bucket_steps))
        return cls(
            dt_s=dt,
            steps=steps,
            bucket_steps=bucket_steps,
            energy_steps=energy_steps,
            n_buckets=n_buckets,
            n_energy_steps=int(np.ceil(steps / energy_steps)),
            energy_steps_per_bucket=bucket_steps // energy_steps,
            bucket_edges_s=np.minimum(sim.now_s + np.arange(n_buckets + 1) * bucket_steps * dt, horizon_s),
            energy_step_of=np.arange(steps) // energy_steps,
        )

    @property
    def energy_step_s(self) -> float:
        """Length of an energy step [s]."""
        return self.energy_steps * self.dt_s

    def bucket_of(self, t_s: np.ndarray) -> np.ndarray:
        """int[...] bucket holding each time [s], clipped to the grid."""
        return np.clip(np.searchsorted(self.bucket_edges_s, t_s, side="right") - 1, 0, self.n_buckets - 1)

    def overlaps(
        self, job_ids: np.ndarray, lo_s: np.ndarray, hi_s: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(job, bucket, overlap [h]) of each bucket overlapping [lo, hi) of each job in ``job_ids``.

        ``lo_s``, ``hi_s``: float[J] indexed by job; returns three arrays of one length X.
        """
        edges, n_b = self.bucket_edges_s, self.n_buckets
        b_lo = np.clip(np.searchsorted(edges, lo_s[job_ids], side="right") - 1, 0, n_b - 1)
        b_hi = np.clip(np.searchsorted(edges, hi_s[job_ids], side="left"), 1, n_b)
        count = np.maximum(b_hi - b_lo, 0)
        jobs = np.repeat(job_ids, count)
        offsets = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        buckets = np.repeat(b_lo, count) + offsets
        overlap = np.minimum(edges[buckets + 1], hi_s[jobs]) - np.maximum(edges[buckets], lo_s[jobs])
        keep = overlap > 1e-9
        return jobs[keep], buckets[keep], overlap[keep] / 3600.0


@dataclass(frozen=True)
class _Fleet:
    """Satellites pooled into G groups, per group and energy step: capacity and energy terms.

    Attributes:
        n_groups: G.
        sats: float[G] satellites per group.
        alive_h: float[G, F] satellite-hours alive [h].
        base_load_wh: float[G, F] bus and idle-slot energy of the alive satellites [Wh].
        surplus_wh: float[G, F] solar generation (sunlit share) minus ``base_load_wh`` [Wh].
        energy0_wh: float[G] battery now [Wh].
        credit_wh: float[G, F] most one brownout in the step can save (the group's best) [Wh].
        initial_credit_wh: float[G] saving still open for satellites in safe mode now [Wh].
        alive_sats_max: float[G, F] most satellites alive at once in the step.
        alive_sats_at_end: satellites alive in the last simulator step.
        full_load_drain_wh: one energy step's full-load drain from the battery, at most its
            capacity [Wh].
        brownouts_max_per_step: most brownouts of one satellite in an energy step.
    """

    n_groups: int
    sats: np.ndarray
    alive_h: np.ndarray
    base_load_wh: np.ndarray
    surplus_wh: np.ndarray
    energy0_wh: np.ndarray
    credit_wh: np.ndarray
    initial_credit_wh: np.ndarray
    alive_sats_max: np.ndarray
    alive_sats_at_end: float
    full_load_drain_wh: float
    brownouts_max_per_step: float

    @classmethod
    def build(cls, sim: Simulator, grid: _Grid, groups: int | None) -> _Fleet:
        """Pool the satellites into ``groups`` phase groups (``None``: one per satellite)."""
        p, geo, dt = sim.power, sim.geometry, sim.dt_s
        k0, n_steps, n_f = sim.step_index, sim.n_steps, grid.n_energy_steps
        group_of = _phase_groups(sim, k0, groups)
        n_g = int(group_of.max()) + 1
        alive = (geo.valid[k0:n_steps] & geo.valid[k0 + 1 : n_steps + 1]).astype(float)  # [K, N]
        gen_wh = p.solar_array_w * geo.sunlit_fraction[k0:n_steps].astype(float) * alive * dt / 3600.0
        onehot = np.zeros((sim.n_sats, n_g))
        onehot[np.arange(sim.n_sats), group_of] = 1.0
        alive_h = _per_group_step(grid, onehot, alive * dt / 3600.0)
        base_load_wh = (p.bus_w + p.accelerators * p.accelerator_idle_w) * alive_h
        credit_wh, initial_credit_wh = _brownout_credits_wh(sim, grid, group_of, onehot)
        alive_sats_max = np.zeros((n_g, n_f))
        np.maximum.at(alive_sats_max.T, grid.energy_step_of, alive @ onehot)
        drain_wh, brownouts_max = _brownout_limits(p, grid.energy_step_s)
        return cls(
            n_groups=n_g,
            sats=onehot.sum(axis=0),
            alive_h=alive_h,
            base_load_wh=base_load_wh,
            surplus_wh=_per_group_step(grid, onehot, gen_wh) - base_load_wh,
            energy0_wh=onehot.T @ sim.energy_wh,
            credit_wh=credit_wh,
            initial_credit_wh=initial_credit_wh,
            alive_sats_max=alive_sats_max,
            alive_sats_at_end=float(alive[-1].sum()),
            full_load_drain_wh=drain_wh,
            brownouts_max_per_step=brownouts_max,
        )


def _per_group_step(grid: _Grid, onehot: np.ndarray, per_sat_step: np.ndarray) -> np.ndarray:
    """float[G, F]: ``per_sat_step`` (float[K, N]) summed over each group's satellites and each
    energy step's simulator steps; ``onehot``: float[N, G] group membership."""
    per_f = np.zeros((grid.n_energy_steps, per_sat_step.shape[1]))
    np.add.at(per_f, grid.energy_step_of, per_sat_step)
    return (per_f @ onehot).T


def _brownout_credits_wh(
    sim: Simulator, grid: _Grid, group_of: np.ndarray, onehot: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """float[G, F] most a brownout in each energy step saves (best satellite and simulator step
    of the group and step) and float[G] the saving open for satellites in safe mode now [Wh]."""
    saving = _safe_saving_wh(sim, sim.step_index)  # [N, K + 1]
    credit_wh = np.zeros((onehot.shape[1], grid.n_energy_steps))
    for g in range(onehot.shape[1]):
        per_step = saving[group_of == g, : grid.steps].max(axis=0)
        np.maximum.at(credit_wh[g], grid.energy_step_of, per_step)
    return credit_wh, onehot.T @ np.where(sim.safe, saving[:, 0], 0.0)


def _brownout_limits(p: PowerConfig, energy_step_s: float) -> tuple[float, float]:
    """One energy step's full-load battery drain [Wh] (at most the capacity), and the most
    brownouts one satellite can have in a step: each needs a recovery charge first, which takes
    at least ``recover_soc`` of the battery at the full-sun surplus."""
    cap = p.battery_wh
    full_load_w = p.bus_w + p.accelerators * p.accelerator_w + p.radio_w
    drain_wh = min(cap, full_load_w * energy_step_s / 3600.0 / p.discharge_efficiency)
    net_max_w = p.solar_array_w - p.bus_w
    recovery_s = p.recover_soc * cap / (p.charge_efficiency * net_max_w) * 3600.0 if net_max_w > 0 else np.inf
    brownouts_max = max(1, int(np.ceil(energy_step_s / recovery_s))) if recovery_s > 0 else energy_step_s
    return drain_wh, brownouts_max


@dataclass(frozen=True)
class _JobSet:
    """The jobs' windows and the outcomes each may have (see :meth:`_CeilingLP._objectives`).

    Attributes:
        earliest_s, latest_s: float[J] earliest start and latest on-time finish [s] (:func:`_windows`).
        work_s, work_h: float[J] work [s], [h].
        deadline_s, value: float[J] deadline [s] and value.
        charged: bool[J] presented before the horizon with a deadline by it: 0 is not an outcome.
        can_on_time, can_downlink, can_run: bool[J] may be on time; (D) may be in downlink at
            the horizon; (R) may be running at the horizon.
        downlink_by_s: float[J] a (D) job's work is done by min(deadline + work, horizon) [s].
    """

    earliest_s: np.ndarray
    latest_s: np.ndarray
    work_s: np.ndarray
    work_h: np.ndarray
    deadline_s: np.ndarray
    value: np.ndarray
    charged: np.ndarray
    can_on_time: np.ndarray
    can_downlink: np.ndarray
    can_run: np.ndarray
    downlink_by_s: np.ndarray

    @classmethod
    def build(cls, sim: Simulator) -> _JobSet:
        """Windows and possible outcomes of every job, from the simulator's presentation rule."""
        jobs, horizon = sim.jobs, sim.n_steps * sim.dt_s
        present = sim.presentation_s()
        earliest, latest = _windows(sim, present)
        w_s, dl = jobs.work_s, jobs.deadline_s
        live = present < horizon - _EPS
        zero_ok = live & (dl > horizon - 1e-6)  # (P): may stay pending to the end
        charged = live & ~zero_ok
        return cls(
            earliest_s=earliest,
            latest_s=latest,
            work_s=w_s,
            work_h=jobs.work_s / 3600.0,
            deadline_s=dl,
            value=jobs.value,
            charged=charged,
            can_on_time=live & (latest - earliest >= w_s - 1e-9) & np.isfinite(earliest),
            can_downlink=charged & (earliest < dl) & (earliest + w_s < horizon),
            can_run=charged & (np.maximum(earliest, horizon - w_s) < dl),
            downlink_by_s=np.minimum(dl + w_s, horizon),
        )

    @property
    def on_time_ids(self) -> np.ndarray:
        """int[Jy] jobs that may be on time."""
        return np.flatnonzero(self.can_on_time)

    @property
    def downlink_ids(self) -> np.ndarray:
        """int[Jd] jobs that may be in downlink at the horizon (D)."""
        return np.flatnonzero(self.can_downlink)

    @property
    def running_ids(self) -> np.ndarray:
        """int[Jr] jobs that may be running at the horizon (R)."""
        return np.flatnonzero(self.can_run)


def _positions(n: int, ids: np.ndarray) -> np.ndarray:
    """int[n]: the position of each id in ``ids``, -1 for the others."""
    pos = np.full(n, -1)
    pos[ids] = np.arange(ids.size)
    return pos


class _Columns:
    """Allocates consecutive variable indices, block by block."""

    def __init__(self) -> None:
        self.count = 0

    def take(self, size: int) -> np.ndarray:
        """int[size] indices of a new block."""
        ids = np.arange(self.count, self.count + size)
        self.count += size
        return ids


class _Rows:
    """Constraint rows ``lo <= A x <= hi``, built from (row, column, value) triplets in order."""

    def __init__(self) -> None:
        self.count = 0
        self._rows: list[np.ndarray] = []
        self._cols: list[np.ndarray] = []
        self._vals: list[np.ndarray] = []
        self._lo: list[np.ndarray] = []
        self._hi: list[np.ndarray] = []

    def new(self, count: int, lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
        """int[count] indices of new rows with bounds ``lo``, ``hi`` (scalars or float[count])."""
        ids = np.arange(self.count, self.count + count)
        self.count += count
        self._lo.append(np.broadcast_to(np.asarray(lo, dtype=float), (count,)))
        self._hi.append(np.broadcast_to(np.asarray(hi, dtype=float), (count,)))
        return ids

    def add(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> None:
        """Coefficients ``vals`` at (``rows``, ``cols``), arrays of one length."""
        self._rows.append(np.asarray(rows, dtype=np.int64))
        self._cols.append(np.asarray(cols, dtype=np.int64))
        self._vals.append(np.asarray(vals, dtype=float))

    def build(self, n_var: int) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        """(A [rows, n_var], lo [rows], hi [rows])."""
        a_mat = sp.csr_matrix(
            (np.concatenate(self._vals), (np.concatenate(self._rows), np.concatenate(self._cols))),
            shape=(self.count, n_var),
        )
        return a_mat, np.concatenate(self._lo), np.concatenate(self._hi)


# -- the LP ---------------------------------------------------------------------------------------
class _CeilingLP:
    """The ceiling's linear programme for one episode, built at construction, solved by :meth:`solve`.

    Why its optimum bounds every policy. Take any policy's run of the episode and read off, per
    job, its outcome and where its work ran, and per satellite (summed over a group) its battery
    at the energy-step boundaries, its busy slot-seconds, its safe-mode savings and its
    brownouts. That record is a feasible point of this LP (each constraint method below says why
    the run satisfies its rows) whose objective is at least the run's return (:meth:`_objectives`).
    Pooling the satellites of a group sums their constraints, which only enlarges the feasible
    set. So no policy's return exceeds the LP optimum plus what the counters already hold.

    Variable blocks (int arrays of column indices, in this order; G groups, F energy steps,
    B buckets, per-(group, step) blocks indexed ``g * F + f``):
        on_time: [Jy] on-time share of each job that may be on time, in [0, 1].
        in_downlink: [Jd] share of a (D) job still in downlink at the horizon, in [0, 1].
        running_at_horizon: [Jr] share of an (R) job still running at the horizon, in [0, 1].
        on_time_work: [X] work of an on-time job in one bucket of its window [slot-h].
        pooled_work: [B] work of (D) and (R) jobs in each bucket, pooled over jobs [slot-h].
        release_slack, due_slack: [B] slacks of the release and due cumulative rows [slot-h].
        group_work: [G F] busy slot-hours of a group in an energy step [slot-h].
        safe_saving: [G F] energy safe mode saves against the load lower bound [Wh].
        brownouts: [G F] brownouts of a group in an energy step.
        credit: [G F] brownout credit not yet used at the end of an energy step [Wh].
        energy: [G F] the group's battery at the end of an energy step [Wh].
    """

    def __init__(self, sim: Simulator, bucket_s: float, energy_s: float | None, groups: int | None) -> None:
        self.sim = sim
        self.horizon_s = sim.n_steps * sim.dt_s
        self.grid = _Grid.build(sim, bucket_s, energy_s)
        self.fleet = _Fleet.build(sim, self.grid, groups)
        self.jobs = _JobSet.build(sim)
        self._variables()
        self.rows = _Rows()
        self._on_time_work()
        self._release_and_due()
        self._one_outcome_per_job()
        self._slots_held_at_horizon()
        self._work_per_bucket()
        self._energy_balance()
        self._slots_vs_safe_time()
        self._brownout_credits()
        self._empty_battery_brownouts()

    def _variables(self) -> None:
        """Allocate the variable blocks (see the class docstring) and per-(group, step) indices."""
        jobs, grid, cols = self.jobs, self.grid, _Columns()
        self.on_time_ids = jobs.on_time_ids
        self.downlink_ids = jobs.downlink_ids
        self.running_ids = jobs.running_ids
        self.on_time = cols.take(self.on_time_ids.size)
        self.in_downlink = cols.take(self.downlink_ids.size)
        self.running_at_horizon = cols.take(self.running_ids.size)
        latest_s = np.minimum(jobs.latest_s, self.horizon_s)
        self.work_job, self.work_bucket, self.work_max_h = grid.overlaps(
            self.on_time_ids, jobs.earliest_s, latest_s
        )
        self.on_time_work = cols.take(self.work_job.size)
        self.pooled_work = cols.take(grid.n_buckets)
        self.release_slack = cols.take(grid.n_buckets)
        self.due_slack = cols.take(grid.n_buckets)
        n_gf = self.fleet.n_groups * grid.n_energy_steps
        self.group_work = cols.take(n_gf)
        self.safe_saving = cols.take(n_gf)
        self.brownouts = cols.take(n_gf)
        self.credit = cols.take(n_gf)
        self.energy = cols.take(n_gf)
        self.n_var = cols.count
        # per (group, energy step): indices, the previous step's battery column, the start battery
        self.group, self.step = np.divmod(np.arange(n_gf), grid.n_energy_steps)
        self.prev_energy = np.where(self.step > 0, self.energy - 1, -1)
        self.has_prev = self.prev_energy >= 0
        self.energy_start_wh = np.where(self.has_prev, 0.0, self.fleet.energy0_wh[self.group])

    # -- constraint families, in row order ------------------------------------------------------
    def _on_time_work(self) -> None:
        """On-time work: sum over buckets of ``on_time_work`` = work [h] x ``on_time``.

        A job on time ran all its work inside its window [earliest, latest] (:func:`_windows`);
        its work in each bucket is bounded by the bucket's overlap with the window in
        :meth:`_bounds`.
        """
        jy = self.on_time_ids
        r_y = self.rows.new(jy.size, 0.0, 0.0)
        pos_y = _positions(len(self.sim.jobs), jy)
        self.rows.add(r_y[pos_y[self.work_job]], self.on_time_work, np.ones(self.on_time_work.size))
        self.rows.add(r_y, self.on_time, -self.jobs.work_h[jy])

    def _release_and_due(self) -> None:
        """(D) and (R) work, pooled per bucket, between its release and due buckets.

        A job in downlink at the horizon (D) did all its work between its earliest start and
        min(deadline + work, horizon): it started before its deadline (else it expired), and a
        downlink can be delayed by antenna contention, so any finish before the horizon is
        allowed. A job running at the horizon (R) started before its deadline and so keeps a slot
        busy over [deadline, horizon): that much of its work lies there. Pooled over jobs, the work
        released at or after bucket b runs in buckets >= b (``release_slack``: Zr_b = Zr_{b+1} +
        O_b - released_b >= 0) and the work due by the end of bucket b runs in buckets <= b
        (``due_slack``: Zd_b = Zd_{b-1} + O_b - due_b >= 0), O = ``pooled_work``.
        """
        rows, grid, jobs, n_b = self.rows, self.grid, self.jobs, self.grid.n_buckets
        jd, jr = self.downlink_ids, self.running_ids
        zr, zd, ov = self.release_slack, self.due_slack, self.pooled_work
        req_d, req_r = jobs.work_h[jd], (self.horizon_s - jobs.deadline_s[jr]) / 3600.0
        r_rel = rows.new(n_b, 0.0, 0.0)
        rows.add(r_rel, zr, np.ones(n_b))
        rows.add(r_rel[:-1], zr[1:], -np.ones(n_b - 1))
        rows.add(r_rel, ov, -np.ones(n_b))
        rows.add(r_rel[grid.bucket_of(jobs.earliest_s[jd])], self.in_downlink, req_d)
        rows.add(r_rel[grid.bucket_of(jobs.deadline_s[jr])], self.running_at_horizon, req_r)
        r_due = rows.new(n_b, 0.0, 0.0)
        rows.add(r_due, zd, np.ones(n_b))
        rows.add(r_due[1:], zd[:-1], -np.ones(n_b - 1))
        rows.add(r_due, ov, -np.ones(n_b))
        rows.add(r_due[grid.bucket_of(jobs.downlink_by_s[jd] - 1e-6)], self.in_downlink, req_d)
        rows.add(r_due[np.full(jr.size, n_b - 1)], self.running_at_horizon, req_r)

    def _one_outcome_per_job(self) -> None:
        """A job has one outcome: its on-time, (D) and (R) shares sum to at most 1."""
        jobs = self.jobs
        multi = np.flatnonzero(jobs.can_on_time.astype(int) + jobs.can_downlink + jobs.can_run >= 2)
        pos_m = _positions(len(self.sim.jobs), multi)
        r_m = self.rows.new(multi.size, -np.inf, 1.0)
        for js, shares in (
            (self.on_time_ids, self.on_time),
            (self.downlink_ids, self.in_downlink),
            (self.running_ids, self.running_at_horizon),
        ):
            sel = pos_m[js] >= 0
            self.rows.add(r_m[pos_m[js[sel]]], shares[sel], np.ones(sel.sum()))

    def _slots_held_at_horizon(self) -> None:
        """(R) jobs each hold a slot at the horizon: at most slots x satellites alive at the end."""
        jr = self.running_ids
        if jr.size:
            cap = self.sim.power.accelerators * self.fleet.alive_sats_at_end
            r_s = self.rows.new(1, -np.inf, cap)
            self.rows.add(np.full(jr.size, r_s[0]), self.running_at_horizon, np.ones(jr.size))

    def _work_per_bucket(self) -> None:
        """Work in bucket b (on-time and pooled) = the groups' busy slot-hours in its energy steps.

        Work lost to brownouts or upsets only adds busy time, which the LP may leave out.
        """
        n_b = self.grid.n_buckets
        r_b = self.rows.new(n_b, 0.0, 0.0)
        self.rows.add(r_b[self.work_bucket], self.on_time_work, -np.ones(self.on_time_work.size))
        self.rows.add(r_b, self.pooled_work, -np.ones(n_b))
        bucket = self.step // self.grid.energy_steps_per_bucket
        self.rows.add(r_b[bucket], self.group_work, np.ones(self.group_work.size))

    def _energy_balance(self) -> None:
        """Battery change per group and energy step <= eta_c x surplus and <= surplus / eta_d.

        surplus = generation (solar x sunlit share, the most that can be collected) minus a lower
        bound on the load: bus and idle slots on every alive satellite, plus ``accelerator_w -
        accelerator_idle_w`` per busy slot-hour, less what safe mode saves (``safe_saving``); the
        radio is ignored. Charging stores at most eta_c of a surplus and a deficit drains at least
        1 / eta_d of it, so netting charge and discharge inside a step only enlarges the feasible
        set; the battery stays in [0, capacity] (:meth:`_bounds`).
        """
        p, fleet, n_gf = self.sim.power, self.fleet, self.energy.size
        busy_extra_w = p.accelerator_w - p.accelerator_idle_w
        surplus_wh = fleet.surplus_wh[self.group, self.step]
        prev, has_prev = self.prev_energy, self.has_prev
        for factor in (p.charge_efficiency, 1.0 / p.discharge_efficiency):
            r_e = self.rows.new(n_gf, -np.inf, factor * surplus_wh + self.energy_start_wh)
            self.rows.add(r_e, self.energy, np.ones(n_gf))
            self.rows.add(r_e[has_prev], prev[has_prev], -np.ones(has_prev.sum()))
            self.rows.add(r_e, self.group_work, factor * busy_extra_w * np.ones(n_gf))
            self.rows.add(r_e, self.safe_saving, -factor * np.ones(n_gf))

    def _slots_vs_safe_time(self) -> None:
        """Busy slot-hours + slots x safe hours <= slots x alive hours, per group and step.

        A satellite in safe mode runs no work, and it saves at most the base load (bus and idle
        slots) per second there, so its safe hours are at least ``safe_saving`` / base load.
        """
        p, n_gf = self.sim.power, self.group_work.size
        slots, base_w = p.accelerators, p.bus_w + p.accelerators * p.accelerator_idle_w
        r_w = self.rows.new(n_gf, -np.inf, slots * self.fleet.alive_h[self.group, self.step])
        self.rows.add(r_w, self.group_work, np.ones(n_gf))
        self.rows.add(r_w, self.safe_saving, slots / base_w * np.ones(n_gf))

    def _brownout_credits(self) -> None:
        """Safe-mode savings are paid for by brownouts: S_f = S_{f-1} + K_f x brownouts_f - u_f >= 0.

        Only a browned-out satellite (in safe mode) draws less than the load lower bound. Each
        brownout credits at most the saving K_f of a safe-mode episode started then with an empty
        battery (simulated exactly on the geometry, bus load only, until the recovery charge; a
        fuller battery saves less), and savings used up to any time cannot exceed the credits
        earned before it (S = ``credit``, u = ``safe_saving``); satellites already in safe mode
        start with their open saving.
        """
        n_gf = self.credit.size
        s_init = np.where(self.step > 0, 0.0, self.fleet.initial_credit_wh[self.group])
        r_c = self.rows.new(n_gf, s_init, s_init)
        self.rows.add(r_c, self.credit, np.ones(n_gf))
        self.rows.add(r_c[self.has_prev], (self.credit - 1)[self.has_prev], -np.ones(self.has_prev.sum()))
        self.rows.add(r_c, self.brownouts, -self.fleet.credit_wh[self.group, self.step])
        self.rows.add(r_c, self.safe_saving, np.ones(n_gf))

    def _empty_battery_brownouts(self) -> None:
        """A brownout needs an empty battery: E at the step start <= (sats - n) cap + n drain.

        A satellite that browns out during an energy step held at most one step's full-load drain
        at its start, and it browns out at most ``brownouts_max_per_step`` times in the step, so
        n >= brownouts / ``brownouts_max_per_step`` of the group's satellites started that low.
        """
        fleet, n_gf, has_prev = self.fleet, self.brownouts.size, self.has_prev
        cap = self.sim.power.battery_wh
        r_x = self.rows.new(n_gf, -np.inf, fleet.sats[self.group] * cap - self.energy_start_wh)
        self.rows.add(r_x[has_prev], self.prev_energy[has_prev], np.ones(has_prev.sum()))
        per_brownout = (cap - fleet.full_load_drain_wh) / fleet.brownouts_max_per_step
        self.rows.add(r_x, self.brownouts, per_brownout * np.ones(n_gf))

    # -- bounds, objectives, solve --------------------------------------------------------------
    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """float[n_var] lower and upper bounds of the variables.

        Shares are in [0, 1]. A job runs on one slot at a time, so its work in a bucket is at most
        the bucket's overlap with its window. A group's busy slot-hours are at most slots x alive
        hours, its safe saving at most its base load, its battery in [0, sats x capacity], and
        its brownouts at most ``brownouts_max_per_step`` per alive satellite, and none where a
        brownout could save nothing.
        """
        fleet, g, f = self.fleet, self.group, self.step
        lb = np.zeros(self.n_var)
        ub = np.full(self.n_var, np.inf)
        ub[self.on_time] = ub[self.in_downlink] = ub[self.running_at_horizon] = 1.0
        ub[self.on_time_work] = self.work_max_h
        ub[self.group_work] = self.sim.power.accelerators * fleet.alive_h[g, f]
        ub[self.safe_saving] = fleet.base_load_wh[g, f]
        ub[self.brownouts] = np.where(
            fleet.credit_wh[g, f] > 0, fleet.alive_sats_max[g, f] * fleet.brownouts_max_per_step, 0.0
        )
        ub[self.energy] = fleet.sats[g] * self.sim.power.battery_wh
        return lb, ub

    def _objectives(self) -> tuple[np.ndarray, np.ndarray, float]:
        """float[n_var] return and on-time-value objectives, and the return's constant part.

        A job earns +v on time, -v late or expired, -0.25 v rejected, and 0 only if it is still
        pending or in flight at the horizon. 0 is possible only (P) while pending if its deadline
        is after the horizon or it is presented at the horizon (expiry fires at each step end for
        pending and queued jobs with ``deadline <= t``), (R) running at the horizon or (D) in
        downlink at the horizon. Every other outcome pays at most -0.25 v, which the constant
        charges to every ``charged`` job and the (R), (D) and on-time shares buy back. (The
        simulator settles (R) and (D) jobs that can no longer be on time as late at the horizon,
        -v; the LP still allows them 0, which only loosens the bound.) Each brownout costs
        ``brownout_penalty``.
        """
        rw, jobs = self.sim.config.reward, self.jobs
        v, jy, jd, jr = jobs.value, self.on_time_ids, self.downlink_ids, self.running_ids
        const = _accrued_return(self.sim) - rw.reject_penalty * float(v[jobs.charged].sum())
        obj_ret = np.zeros(self.n_var)
        obj_ret[self.on_time] = np.where(jobs.charged[jy], (1.0 + rw.reject_penalty) * v[jy], v[jy])
        obj_ret[self.in_downlink] = rw.reject_penalty * v[jd]
        obj_ret[self.running_at_horizon] = rw.reject_penalty * v[jr]
        obj_ret[self.brownouts] = -rw.brownout_penalty
        obj_val = np.zeros(self.n_var)
        obj_val[self.on_time] = v[jy]
        return obj_ret, obj_val, const

    def solve(self, time_limit_s: float) -> dict | None:
        """Solve the return LP and, when needed, the on-time-value LP; None if out of time.

        The on-time value bound is the same LP maximising on-time value with brownouts free.
        Every on-time-feasible job on time is always a bound; when the return LP's optimum
        already reaches it, it is the on-time LP's optimum too, else that LP is solved. Both
        bounds are rounded up by a small margin against solver tolerances.
        """
        a_mat, row_lo, row_hi = self.rows.build(self.n_var)
        lb, ub = self._bounds()
        obj_ret, obj_val, const = self._objectives()
        v_on = self.jobs.value[self.on_time_ids]
        t0 = time.perf_counter()
        res_ret = _lp(obj_ret, a_mat, row_lo, row_hi, lb, ub, time_limit_s)
        if res_ret is None:
            return None
        trivial_on = float(v_on.sum())
        lp_on = float(v_on @ res_ret[1][self.on_time])
        best_on = trivial_on
        if lp_on < trivial_on - 1e-6 * max(1.0, trivial_on):
            left = time_limit_s - (time.perf_counter() - t0)
            res_val = _lp(obj_val, a_mat, row_lo, row_hi, lb, ub, left) if left > 1.0 else None
            if res_val is not None:
                best_on = min(trivial_on, res_val[0])
        margin = 1e-6 * max(1.0, float(np.abs(self.jobs.value).sum()))
        return {
            "return": const + res_ret[0] + margin,
            "value_on_time": self.sim.counters.value_on_time + best_on + margin,
            "buckets": self.grid.n_buckets,
            "groups": self.fleet.n_groups,
            "energy_step_s": self.grid.energy_step_s,
            "brownouts": float(res_ret[1][self.brownouts].sum()),
            "jobs_on_time": float(res_ret[1][self.on_time].sum()),
            "job_on_time": _per_job(self.jobs.value.size, self.on_time_ids, res_ret[1][self.on_time]),
            "on_time_value": lp_on,
            "variables": self.n_var,
            "constraints": self.rows.count,
        }


def _lp(
    c: np.ndarray,
    a_mat: sp.csr_matrix,
    row_lo: np.ndarray,
    row_hi: np.ndarray,
    lb: np.ndarray,
    ub: np.ndarray,
    time_limit_s: float,
) -> tuple[float, np.ndarray] | None:
    """max c @ x s.t. row_lo <= A x <= row_hi, lb <= x <= ub; (optimum, x) or None if HiGHS did
    not prove optimality within ``time_limit_s`` [s]."""
    ineq_hi = np.isfinite(row_hi) & (row_lo != row_hi)
    ineq_lo = np.isfinite(row_lo) & (row_lo != row_hi)
    eq = row_lo == row_hi
    a_ub = sp.vstack([a_mat[ineq_hi], -a_mat[ineq_lo]]).tocsr()
    b_ub = np.concatenate([row_hi[ineq_hi], -row_lo[ineq_lo]])
    res = linprog(
        -c,
        A_ub=a_ub,
        b_ub=b_ub,
        A_eq=a_mat[eq],
        b_eq=row_lo[eq],
        bounds=np.stack([lb, ub], axis=1),
        method=_METHOD,
        options={"time_limit": float(time_limit_s), "presolve": True},
    )
    if res.status != 0:
        return None
    return -float(res.fun), res.x


def _per_job(n_jobs: int, ids: np.ndarray, share: np.ndarray) -> np.ndarray:
    """[J] on-time share of every job in the return LP's optimum (0 for jobs that cannot be)."""
    out = np.zeros(n_jobs)
    out[ids] = np.clip(share, 0.0, 1.0)
    return out


def _trivial(sim: Simulator) -> dict:
    """Every job that could be on time is, nothing else costs anything: always a bound."""
    present = sim.presentation_s()
    earliest, latest = _windows(sim, present)
    horizon = sim.n_steps * sim.dt_s
    ok = (present < horizon) & (latest - earliest >= sim.jobs.work_s - 1e-9)
    c0 = sim.counters
    total = float(sim.jobs.value[ok].sum())
    return {
        "return": c0.value_on_time + total,
        "value_on_time": c0.value_on_time + total,
        "job_on_time": ok.astype(float),
        "status": "trivial",
        "buckets": 0,
        "groups": 0,
    }
