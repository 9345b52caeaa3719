"""Offline upper bound ("ceiling") on an episode's return, from a linear programme (design §6).

Called right after ``env.reset(seed=...)`` on ``env.unwrapped.sim``, before any job is placed,
with the whole job stream known. :func:`ceiling` returns an upper bound on the return (sum of
rewards) that any policy can reach in that episode, over the whole episode including the drain
window after the horizon, for every valid reward setting, and one on its on-time value.

The LP (:class:`_CeilingLP`) runs from now to the latest time the episode can end
(:func:`_episode_end_steps`), over job-timing buckets (e.g. 10 min) cut into energy steps (e.g.
2 min), with each job's window from its earliest start to its latest on-time finish, slot
capacity, energy with battery dynamics and brownouts, each station's antenna time over blocks
of the episode, and satellites pooled into groups of
similar sunlight phase where the exact problem is too large. Every job is either on time (+v)
or costs min(reject_penalty, miss_penalty) v. Why its optimum bounds every policy is argued in
parts: the class docstring gives the frame (any policy's run is a feasible point whose
objective is at least its return) and each constraint family's method says why every run
satisfies it. Solved with HiGHS within ``time_limit_s`` in all: an attempt that does not finish
in three quarters of the time left falls back to coarser pooling and finally to the trivial
bound (every on-time-feasible job on time, every other one charged the cheaper penalty), and
``status`` says which was used.

The simulator is read only through its public API: ``presentation_s()``, the link model's
``first_reach_k``, ``downlink_possible`` and ``station_reach``, the geometry, power config, jobs
and counters.
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

_METHOD = "highs-ds"


def ceiling(
    sim: Simulator,
    bucket_s: float = 600.0,
    time_limit_s: float = 60.0,
    groups: int | None = None,
    energy_s: float | None = None,
) -> dict:
    """Upper bounds on the return and on-time value any policy can reach in this episode.

    Both hold over the whole episode, drain window included, and the return bound for the
    episode's reward setting, whatever it is (any valid ``RewardConfig``).

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
        # each attempt but the last leaves a quarter of what is left to the coarser ones
        budget = max(0.75 * left, 1.0) if i + 1 < len(attempts) else max(left, 5.0)
        out = _solve(sim, b, e, g, budget)
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
    if sim.done or _episode_end_steps(sim)[1] <= sim.step_index:
        c0 = sim.counters
        return {
            "return": _accrued_return(sim) - _cheaper_penalty(sim) * float(sim.jobs.value[_live(sim)].sum()),
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


def _cheaper_penalty(sim: Simulator) -> float:
    """min(reject_penalty, miss_penalty): the least a job that is not on time costs, x value.

    An arrived job ends on time, late, expired or rejected (the episode settles every one), and
    the last three cost miss, miss and reject x value. Both are reachable for any job (reject
    is always valid while it is pending; deferring it until its deadline expires it), so no
    smaller charge is a bound for every reward setting and no larger one is a bound for all.
    """
    rw = sim.config.reward
    return min(rw.reject_penalty, rw.miss_penalty)


def _stop_step(sim: Simulator) -> int:
    """The step at which the episode ends whatever happens: the first boundary from now at which
    no satellite propagates, else ``max_steps`` (the end of the drain window)."""
    k0 = sim.step_index
    dead = np.flatnonzero(~sim.geometry.valid[k0 : sim.max_steps].any(axis=1))
    return k0 + int(dead[0]) if dead.size else sim.max_steps


def _live(sim: Simulator) -> np.ndarray:
    """bool[J] jobs not settled yet that arrive in this episode: pending now, or arriving before
    the horizon and before the :func:`_stop_step` boundary (no job arrives after either)."""
    arrive_by_s = min(sim.n_steps, _stop_step(sim)) * sim.dt_s
    pending = sim.state == JobState.PENDING
    return pending | ((sim.state == JobState.FUTURE) & (sim.jobs.arrival_s < arrive_by_s))


def _episode_end_steps(sim: Simulator) -> tuple[int, int]:
    """Earliest and latest simulator step at which the episode can end, whatever the policy.

    It ends at :func:`_stop_step` at the latest, and before that only once the horizon is
    passed and every arrived job is settled. A job is settled at the latest at the boundary
    ending the step that holds its deadline, so the episode is over by max(horizon, the last
    deadline) (capped at the stop step) and not before min(horizon, stop step).
    """
    stop, live = _stop_step(sim), _live(sim)
    last_deadline_s = float(sim.jobs.deadline_s[live].max()) if live.any() else 0.0
    k_last = int(np.ceil(last_deadline_s / sim.dt_s - 1e-9))
    return min(sim.n_steps, stop), min(stop, max(sim.n_steps, k_last))


# -- geometry-derived windows ---------------------------------------------------------------------
def _windows(sim: Simulator, present: np.ndarray, end_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Earliest start and latest on-time finish of each job over all satellites [s], float[J] each.

    A job cannot start before it is presented (``present``, the boundary after arrival) and its
    input has reached some satellite: the origin station's first contact with any satellite,
    directly or over ISLs, plus the transfer at the ground rate, which is the fastest link. It is
    on time only if it finishes early enough that some satellite's first downlink after the
    finish, plus the transfer, lands by min(deadline, ``end_s``), the latest end of the episode
    [s]. Earliest and latest are taken over all satellites, ignoring antennas, so each window
    contains the real one.
    """
    jobs, links, cfg = sim.jobs, sim.links, sim.config.links
    t_s, n_samples, dt = links.t_s, links.n_samples, sim.dt_s
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
    tau = np.minimum(jobs.deadline_s, end_s) - jobs.output_gb * GBIT_PER_GB / cfg.ground_link_gbps
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


def _safe_saving_wh(sim: Simulator, k0: int, k_end: int) -> np.ndarray:
    """Most energy [Wh] a brownout in step k can save against the non-safe load lower bound.

    Simulates safe mode (bus load only) from an empty battery at the start of every step, per
    satellite, until the recovery charge or step ``k_end``; a brownout later in the step saves
    at most one step of full base load more than one at the next step start.

    Returns:
        float[N, K + 1] for steps k0 .. k_end (the last column 0).
    """
    p, geo, dt = sim.power, sim.geometry, sim.dt_s
    n = sim.n_sats
    steps = k_end - k0
    alive = geo.valid[k0:k_end] & geo.valid[k0 + 1 : k_end + 1]
    lit = geo.sunlit_fraction[k0:k_end].astype(float) * dt * alive
    lit_first = geo.sunlit[k0:k_end]
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


def _phase_groups(sim: Simulator, k0: int, k_end: int, groups: int | None) -> np.ndarray:
    """Group index of each satellite: contiguous runs of similar sunlight phase."""
    n = sim.n_sats
    if groups is None or groups >= n:
        return np.arange(n)
    if groups <= 1:
        return np.zeros(n, dtype=np.int64)
    frac = sim.geometry.sunlit_fraction[k0:k_end].astype(float)
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
    """The rest of the episode, to its latest end, cut into buckets (job timing) and energy steps.

    Attributes:
        dt_s: simulator step [s].
        k0: simulator step now.
        steps: simulator steps from now to the latest end of the episode, K.
        bucket_steps: simulator steps per bucket.
        energy_steps: simulator steps per energy step (a divisor of ``bucket_steps``).
        n_buckets: B.
        n_energy_steps: F.
        energy_steps_per_bucket: energy steps in a bucket.
        bucket_edges_s: float[B + 1] bucket boundaries [s], the last the latest end of the episode.
        energy_step_of: int[K] energy step of each simulator step.
        first_end_s: earliest time the episode can end [s] (:func:`_episode_end_steps`).
    """

    dt_s: float
    k0: int
    steps: int
    bucket_steps: int
    energy_steps: int
    n_buckets: int
    n_energy_steps: int
    energy_steps_per_bucket: int
    bucket_edges_s: np.ndarray
    energy_step_of: np.ndarray
    first_end_s: float

    @classmethod
    def build(cls, sim: Simulator, bucket_s: float, energy_s: float | None) -> _Grid:
        """Bucket a multiple of ``dt_s``, energy step (default ``2 dt_s``) a divisor of it."""
        dt, k0 = sim.dt_s, sim.step_index
        k_first, k_last = _episode_end_steps(sim)
        steps = k_last - k0
        bucket_steps = max(1, int(round(bucket_s / dt)))
        energy_steps = max(1, int(round((energy_s if energy_s is not None else 2 * dt) / dt)))
        energy_steps = max(d for d in range(1, min(energy_steps, bucket_steps) + 1) if bucket_steps % d == 0)
        bucket_steps = energy_steps * int(np.ceil(bucket_steps / energy_steps))
        n_buckets = int(np.ceil(steps / bucket_steps))
        return cls(
            dt_s=dt,
            k0=k0,
            steps=steps,
            bucket_steps=bucket_steps,
            energy_steps=energy_steps,
            n_buckets=n_buckets,
            n_energy_steps=int(np.ceil(steps / energy_steps)),
            energy_steps_per_bucket=bucket_steps // energy_steps,
            bucket_edges_s=np.minimum(k0 * dt + np.arange(n_buckets + 1) * bucket_steps * dt, k_last * dt),
            energy_step_of=np.arange(steps) // energy_steps,
            first_end_s=k_first * dt,
        )

    @property
    def k_end(self) -> int:
        """Simulator step at the latest end of the episode."""
        return self.k0 + self.steps

    @property
    def end_s(self) -> float:
        """Latest end of the episode [s]."""
        return self.k_end * self.dt_s

    @property
    def energy_step_end_s(self) -> np.ndarray:
        """float[F] end of each energy step [s] (the last at most :attr:`end_s`)."""
        f = np.arange(1, self.n_energy_steps + 1)
        return np.minimum((self.k0 + f * self.energy_steps) * self.dt_s, self.end_s)

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
    full_load_drain_wh: float
    brownouts_max_per_step: float

    @classmethod
    def build(cls, sim: Simulator, grid: _Grid, groups: int | None) -> _Fleet:
        """Pool the satellites into ``groups`` phase groups (``None``: one per satellite)."""
        p, geo, dt = sim.power, sim.geometry, sim.dt_s
        k0, k_end, n_f = grid.k0, grid.k_end, grid.n_energy_steps
        group_of = _phase_groups(sim, k0, k_end, groups)
        n_g = int(group_of.max()) + 1
        alive = (geo.valid[k0:k_end] & geo.valid[k0 + 1 : k_end + 1]).astype(float)  # [K, N]
        gen_wh = p.solar_array_w * geo.sunlit_fraction[k0:k_end].astype(float) * alive * dt / 3600.0
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
    saving = _safe_saving_wh(sim, grid.k0, grid.k_end)  # [N, K + 1]
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
    """The jobs' windows and which may be on time (see :meth:`_CeilingLP._objectives`).

    Attributes:
        earliest_s, latest_s: float[J] earliest start and latest on-time finish [s] (:func:`_windows`).
        work_s, work_h: float[J] work [s], [h].
        value: float[J] value.
        live: bool[J] not settled yet and arrives in this episode (:func:`_live`).
        can_on_time: bool[J] live, and its work fits in its window.
        delivered_from_s: float[J] earliest on-time delivery: earliest start + work + the
            fastest downlink [s].
    """

    earliest_s: np.ndarray
    latest_s: np.ndarray
    work_s: np.ndarray
    work_h: np.ndarray
    value: np.ndarray
    live: np.ndarray
    can_on_time: np.ndarray
    delivered_from_s: np.ndarray

    @classmethod
    def build(cls, sim: Simulator, end_s: float) -> _JobSet:
        """Windows of every job, from the simulator's presentation rule; ``end_s``: the latest
        end of the episode [s]."""
        jobs = sim.jobs
        earliest, latest = _windows(sim, sim.presentation_s(), end_s)
        live = _live(sim)
        down_s = jobs.output_gb * GBIT_PER_GB / sim.config.links.ground_link_gbps
        return cls(
            earliest_s=earliest,
            latest_s=latest,
            work_s=jobs.work_s,
            work_h=jobs.work_s / 3600.0,
            value=jobs.value,
            live=live,
            can_on_time=live & np.isfinite(earliest) & (latest - earliest >= jobs.work_s - 1e-9),
            delivered_from_s=earliest + jobs.work_s + down_s,
        )

    @property
    def on_time_ids(self) -> np.ndarray:
        """int[Jy] jobs that may be on time."""
        return np.flatnonzero(self.can_on_time)


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

    Why its optimum bounds every policy. Take any policy's run of the episode, which ends at some
    T_end between the earliest and the latest end (:func:`_episode_end_steps`), and read off per
    job its outcome and, for an on-time job, where its work ran; per satellite (summed over a
    group) its battery at the energy-step boundaries, the busy slot-seconds of on-time work, its
    safe-mode savings and its brownouts; and the end itself: ``ended`` = 1 in the energy steps
    that end after T_end, 0 before, and ``relief`` = the base load the satellites would have drawn
    after T_end in those steps (the run is over: from T_end on the battery stays as it was, with
    no work, savings or brownouts). That record is a feasible point of this LP (each constraint
    method below says why the run satisfies its rows) whose objective is at least the run's return
    (:meth:`_objectives`). Pooling the satellites of a group sums their constraints, which only
    enlarges the feasible set. So no policy's return exceeds the LP optimum plus the constant.

    Variable blocks (int arrays of column indices, in this order; G groups, F energy steps,
    B buckets, per-(group, step) blocks indexed ``g * F + f``; the last F_a of the F energy steps
    end after the earliest end of the episode, per-(group, those steps) blocks ``g * F_a + f``):
        on_time: [Jy] on-time share of each job that may be on time, in [0, 1].
        on_time_work: [X] work of an on-time job in one bucket of its window [slot-h].
        group_work: [G F] busy slot-hours of a group in an energy step [slot-h].
        safe_saving: [G F] energy safe mode saves against the load lower bound [Wh].
        brownouts: [G F] brownouts of a group in an energy step.
        credit: [G F] brownout credit not yet used at the end of an energy step [Wh].
        energy: [G F] the group's battery at the end of an energy step [Wh].
        ended: [F_a] share of the energy step after the episode's end, in [0, 1].
        relief: [G F_a] base load not drawn in the step because the episode has ended [Wh].
    """

    def __init__(self, sim: Simulator, bucket_s: float, energy_s: float | None, groups: int | None) -> None:
        self.sim = sim
        self.grid = _Grid.build(sim, bucket_s, energy_s)
        self.fleet = _Fleet.build(sim, self.grid, groups)
        self.jobs = _JobSet.build(sim, self.grid.end_s)
        self._variables()
        self.rows = _Rows()
        self._on_time_work()
        self._work_per_bucket()
        self._energy_balance()
        self._slots_vs_safe_time()
        self._brownout_credits()
        self._empty_battery_brownouts()
        self._after_the_end()
        self._antenna_time()

    def _variables(self) -> None:
        """Allocate the variable blocks (see the class docstring) and per-(group, step) indices."""
        jobs, grid, cols = self.jobs, self.grid, _Columns()
        self.on_time_ids = jobs.on_time_ids
        self.on_time = cols.take(self.on_time_ids.size)
        self.work_job, self.work_bucket, self.work_max_h = grid.overlaps(
            self.on_time_ids, jobs.earliest_s, jobs.latest_s
        )
        self.on_time_work = cols.take(self.work_job.size)
        n_f = grid.n_energy_steps
        n_gf = self.fleet.n_groups * n_f
        self.group_work = cols.take(n_gf)
        self.safe_saving = cols.take(n_gf)
        self.brownouts = cols.take(n_gf)
        self.credit = cols.take(n_gf)
        self.energy = cols.take(n_gf)
        # energy steps f >= f_end end after the earliest end of the episode: it may be over there
        self.f_end = int(np.searchsorted(grid.energy_step_end_s, grid.first_end_s + 1e-6, side="left"))
        self.ended = cols.take(n_f - self.f_end)
        # per (group, energy step): indices, the previous step's battery column, the start battery
        self.group, self.step = np.divmod(np.arange(n_gf), n_f)
        self.after = np.flatnonzero(self.step >= self.f_end)  # [G F_a] positions in the G F blocks
        self.relief = cols.take(self.after.size)
        self.n_var = cols.count
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

    def _work_per_bucket(self) -> None:
        """On-time work in bucket b = the groups' busy slot-hours in its energy steps.

        The record counts only the busy time of on-time work: work of jobs that end late,
        expired or rejected, and work lost to brownouts or upsets, only adds busy time and load,
        which the LP may leave out (its rows bound the battery from above).
        """
        n_b = self.grid.n_buckets
        r_b = self.rows.new(n_b, 0.0, 0.0)
        self.rows.add(r_b[self.work_bucket], self.on_time_work, -np.ones(self.on_time_work.size))
        bucket = self.step // self.grid.energy_steps_per_bucket
        self.rows.add(r_b[bucket], self.group_work, np.ones(self.group_work.size))

    def _energy_balance(self) -> None:
        """Battery change per group and energy step <= eta_c x surplus and <= surplus / eta_d.

        surplus = generation (solar x sunlit share, the most that can be collected) minus a lower
        bound on the load: bus and idle slots on every alive satellite, plus ``accelerator_w -
        accelerator_idle_w`` per busy slot-hour, less what safe mode saves (``safe_saving``) and
        what is not drawn after the episode's end (``relief``); the radio is ignored. Charging
        stores at most eta_c of a surplus and a deficit drains at least 1 / eta_d of it, so
        netting charge and discharge inside a step only enlarges the feasible set; the battery
        stays in [0, capacity] (:meth:`_bounds`). In the step holding the end the run's change
        up to T_end obeys the row with the load before T_end, and ``relief`` is the rest of the
        base load; after it the change is 0 and ``relief`` the whole base load.
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
            self.rows.add(r_e[self.after], self.relief, -factor * np.ones(self.after.size))

    def _slots_vs_safe_time(self) -> None:
        """Busy slot-hours + slots x (safe + ended) hours <= slots x alive hours, per group and step.

        A satellite in safe mode runs no work, and it saves at most the base load (bus and idle
        slots) per second there, so its safe hours are at least ``safe_saving`` / base load;
        likewise no work runs after the episode's end, whose hours are ``relief`` / base load.
        """
        p, n_gf = self.sim.power, self.group_work.size
        slots, base_w = p.accelerators, p.bus_w + p.accelerators * p.accelerator_idle_w
        r_w = self.rows.new(n_gf, -np.inf, slots * self.fleet.alive_h[self.group, self.step])
        self.rows.add(r_w, self.group_work, np.ones(n_gf))
        self.rows.add(r_w, self.safe_saving, slots / base_w * np.ones(n_gf))
        self.rows.add(r_w[self.after], self.relief, slots / base_w * np.ones(self.after.size))

    def _brownout_credits(self) -> None:
        """Safe-mode savings are paid for by brownouts: S_f = S_{f-1} + K_f x brownouts_f - u_f >= 0.

        Only a browned-out satellite (in safe mode) draws less than the load lower bound before
        the episode's end. Each brownout credits at most the saving K_f of a safe-mode episode
        started then with an empty battery (simulated exactly on the geometry, bus load only,
        until the recovery charge; a fuller battery saves less), and savings used up to any time
        cannot exceed the credits earned before it (S = ``credit``, u = ``safe_saving``);
        satellites already in safe mode start with their open saving.
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

    def _after_the_end(self) -> None:
        """The episode ends once: ``relief`` <= base load x ``ended``, ``ended`` never decreases,
        and an on-time job's share + ``ended`` <= 1 in the steps that end before its delivery.

        ``ended`` is 0 up to the energy step holding T_end and 1 from it on, and ``relief`` at most
        the step's base load where it is 1. The episode ends only once every arrived job is
        settled, so after an on-time job's delivery, which comes no earlier than its earliest
        start + work + the fastest downlink (``delivered_from_s``): a step that ends by then is
        not ended if the job is on time.
        """
        rows, grid, n_a = self.rows, self.grid, self.ended.size
        f_of = self.step[self.after] - self.f_end
        base_wh = self.fleet.base_load_wh[self.group[self.after], self.step[self.after]]
        r_r = rows.new(self.after.size, -np.inf, 0.0)
        rows.add(r_r, self.relief, np.ones(self.after.size))
        rows.add(r_r, self.ended[f_of], -base_wh)
        if n_a > 1:
            r_m = rows.new(n_a - 1, -np.inf, 0.0)
            rows.add(r_m, self.ended[:-1], np.ones(n_a - 1))
            rows.add(r_m, self.ended[1:], -np.ones(n_a - 1))
        # the last energy step ending by the job's earliest delivery
        jy = self.on_time_ids
        f_j = np.searchsorted(grid.energy_step_end_s, self.jobs.delivered_from_s[jy] + 1e-6, side="right") - 1
        sel = np.flatnonzero(f_j >= self.f_end)
        if sel.size:
            r_j = rows.new(sel.size, -np.inf, 1.0)
            rows.add(r_j, self.on_time[sel], np.ones(sel.size))
            rows.add(r_j, self.ended[f_j[sel] - self.f_end], np.ones(sel.size))

    def _antenna_time(self) -> None:
        """Antenna time: in every block of a few partitions of the episode into blocks (1, 3, 6, 12
        h and the whole, each also shifted by half a block), the transfers of on-time jobs whose
        transfer window lies inside the block need at most antennas x the block's contact time:
        per demand station its uploads, and over all stations uploads and downloads together.

        A ground transfer runs only while its station reaches the satellite (in whole simulator
        steps with contact, :mod:`orbit_env.sim.links`), and a station serves at most
        ``antennas`` transfers at once, so the transfers it makes inside a block take at most
        antennas x the block's seconds of contact. An on-time job's upload runs between its
        station's first contact after its presentation and its start (at most ``latest - work``),
        its download between its finish (at least ``earliest + work``) and min(deadline, the
        latest end); whatever else a run sends (late or rejected jobs, re-uploads) only adds
        antenna time, which the rows leave out.
        """
        sim, jobs, grid, jy = self.sim, self.sim.jobs, self.grid, self.on_time_ids
        cfg = sim.config.links
        up_s = jobs.input_gb[jy] * GBIT_PER_GB / cfg.ground_link_gbps
        down_s = jobs.output_gb[jy] * GBIT_PER_GB / cfg.ground_link_gbps
        station = jobs.origin_station[jy]
        ground = station >= 0
        up_lo, up_hi = self.jobs.earliest_s[jy] - up_s, self.jobs.latest_s[jy] - self.jobs.work_s[jy]
        down_lo = self.jobs.earliest_s[jy] + self.jobs.work_s[jy]
        down_hi = np.minimum(jobs.deadline_s[jy], grid.end_s)
        reach = sim.links.station_reach()[grid.k0 : grid.k_end]  # [K, G] whole steps with contact
        contact_cum = np.vstack([np.zeros(reach.shape[1]), np.cumsum(reach, axis=0) * grid.dt_s])
        n_k, antennas = reach.shape[0], cfg.antennas
        rows, t0, dt = self.rows, grid.k0 * grid.dt_s, grid.dt_s
        for block_h in (1.0, 3.0, 6.0, 12.0, np.inf):
            block_k = n_k if not np.isfinite(block_h) else max(1, int(round(block_h * 3600.0 / dt)))
            for shift_k in sorted({0, block_k // 2}) if block_k < n_k else (0,):
                edges = np.unique(np.clip(np.arange(-shift_k, n_k + block_k, block_k), 0, n_k))
                t_edges = t0 + edges * dt
                contact = np.diff(contact_cum[edges], axis=0)  # [blocks, G] contact seconds
                b_up = np.where(ground, _block_holding(t_edges, up_lo, up_hi), -1)
                b_down = _block_holding(t_edges, down_lo, down_hi)
                n_b = edges.size - 1
                # per demand station: its uploads
                sel = np.flatnonzero(b_up >= 0)
                key = b_up[sel] * contact.shape[1] + station[sel]
                used, pos = np.unique(key, return_inverse=True)
                if used.size:
                    cap = antennas * contact[used // contact.shape[1], used % contact.shape[1]]
                    r = rows.new(used.size, -np.inf, cap)
                    rows.add(r[pos], self.on_time[sel], up_s[sel])
                # all stations: uploads and downloads
                total = antennas * contact.sum(axis=1)
                r = rows.new(n_b, -np.inf, total)
                sel_d = np.flatnonzero(b_down >= 0)
                rows.add(r[b_up[sel]], self.on_time[sel], up_s[sel])
                rows.add(r[b_down[sel_d]], self.on_time[sel_d], down_s[sel_d])

    # -- bounds, objectives, solve --------------------------------------------------------------
    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """float[n_var] lower and upper bounds of the variables.

        Shares are in [0, 1]. A job runs on one slot at a time, so its work in a bucket is at most
        the bucket's overlap with its window. A group's busy slot-hours are at most slots x alive
        hours, its safe saving and relief at most its base load, its battery in [0, sats x
        capacity], and its brownouts at most ``brownouts_max_per_step`` per alive satellite, and
        none where a brownout could save nothing.
        """
        fleet, g, f = self.fleet, self.group, self.step
        lb = np.zeros(self.n_var)
        ub = np.full(self.n_var, np.inf)
        ub[self.on_time] = ub[self.ended] = 1.0
        ub[self.on_time_work] = self.work_max_h
        ub[self.group_work] = self.sim.power.accelerators * fleet.alive_h[g, f]
        ub[self.safe_saving] = fleet.base_load_wh[g, f]
        ub[self.relief] = fleet.base_load_wh[g[self.after], f[self.after]]
        ub[self.brownouts] = np.where(
            fleet.credit_wh[g, f] > 0, fleet.alive_sats_max[g, f] * fleet.brownouts_max_per_step, 0.0
        )
        ub[self.energy] = fleet.sats[g] * self.sim.power.battery_wh
        return lb, ub

    def _objectives(self) -> tuple[np.ndarray, np.ndarray, float]:
        """float[n_var] return and on-time-value objectives, and the return's constant part.

        Every live job (:func:`_live`) arrives and is settled by the episode's end: on time
        (+v), or late, expired or rejected, which cost miss, miss and reject x v, so at least c v
        with c = min(reject_penalty, miss_penalty) (:func:`_cheaper_penalty`), whatever the
        reward setting. That holds for a job that cannot be on time too: it still ends late,
        expired or rejected. The constant charges -c v to every live job and the on-time shares
        buy it back with (1 + c) v; each brownout costs ``brownout_penalty``. The counters hold
        what is already settled; jobs that never arrive count nothing.
        """
        rw, jobs = self.sim.config.reward, self.jobs
        v, jy, c = jobs.value, self.on_time_ids, _cheaper_penalty(self.sim)
        const = _accrued_return(self.sim) - c * float(v[jobs.live].sum())
        obj_ret = np.zeros(self.n_var)
        obj_ret[self.on_time] = (1.0 + c) * v[jy]
        obj_ret[self.brownouts] = -rw.brownout_penalty
        obj_val = np.zeros(self.n_var)
        obj_val[self.on_time] = v[jy]
        return obj_ret, obj_val, const

    def solve(self, time_limit_s: float) -> dict | None:
        """Solve the return LP and, when needed, the on-time-value LP; None if out of time.

        The on-time value bound is the same LP maximising on-time value with brownouts free.
        Every on-time-feasible job on time is always a bound; when the return LP's optimum
        already reaches it, it is the on-time LP's optimum too, else that LP is solved. Both
        bounds are rounded up by a small margin against solver tolerances, relative to the
        largest the objective's job terms can reach ((1 + c) x the jobs' value).
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
        value = float(np.abs(self.jobs.value).sum())
        margin = 1e-6 * max(1.0, value)
        margin_ret = 1e-6 * max(1.0, (1.0 + _cheaper_penalty(self.sim)) * value)
        return {
            "return": const + res_ret[0] + margin_ret,
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


def _block_holding(t_edges: np.ndarray, lo_s: np.ndarray, hi_s: np.ndarray) -> np.ndarray:
    """int[M]: the block (between consecutive ``t_edges`` [s]) holding each window [lo, hi], -1
    where the window is empty or spans a block edge."""
    b = np.searchsorted(t_edges, lo_s, side="right") - 1  # block holding lo (-1: none)
    ok = (b >= 0) & (b < t_edges.size - 1) & (lo_s <= hi_s)
    return np.where(ok & (hi_s <= t_edges[np.minimum(b + 1, t_edges.size - 1)]), b, -1)


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
    """Every job that could be on time is (+v), every other live job costs the cheaper penalty
    (:meth:`_CeilingLP._objectives`), brownouts cost nothing: always a bound."""
    jobs = _JobSet.build(sim, _episode_end_steps(sim)[1] * sim.dt_s)
    ok, v = jobs.can_on_time, jobs.value
    total = float(v[ok].sum())
    missed = float(v[jobs.live & ~ok].sum())
    return {
        "return": _accrued_return(sim) + total - _cheaper_penalty(sim) * missed,
        "value_on_time": sim.counters.value_on_time + total,
        "job_on_time": ok.astype(float),
        "status": "trivial",
        "buckets": 0,
        "groups": 0,
    }
