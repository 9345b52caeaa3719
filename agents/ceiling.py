"""Offline upper bound ("ceiling") on an episode's return, from a linear programme (design §6).

Called right after ``env.reset(seed=...)`` on ``env.unwrapped.sim``, before any job is placed,
with the whole job stream known. :func:`ceiling` returns an upper bound on the return (sum of
rewards) that any policy can reach in that episode, and one on its on-time value.

Why it bounds every policy. Take any policy's run of the episode and read off, per job, its
outcome and where its work ran, and per satellite (summed over a group) its battery at the
energy-step boundaries, its busy slot-seconds, its safe-mode savings and its brownouts. That
record is a feasible point of the LP whose objective is at least the run's return:

* Outcomes. A job earns +v on time, -v late or expired, -0.25 v rejected, and 0 only if it is
  still pending or in flight at the horizon. 0 is possible only (P) while pending if its
  deadline is after the horizon or it is presented at the horizon (expiry fires at each step
  end for pending and queued jobs with ``deadline <= t``), (R) running at the horizon, which
  needs a start before the deadline and so a slot busy over [deadline, horizon) (at most
  ``slots`` such jobs), or (D) in downlink at the horizon, which needs all its work done
  between its earliest start and min(deadline + work, horizon) (a downlink can be delayed by
  antenna contention, so any finish before the horizon is allowed). Every other outcome pays
  at most -0.25 v, which the LP charges. (The simulator now settles (R) and (D) jobs that can
  no longer be on time as late at the horizon, -v; the LP still allows them 0, which only
  loosens the bound.)
* Timing. A job cannot start before it is presented (the boundary after arrival) and its input
  has reached some satellite (the origin station's first contact with any satellite, plus the
  transfer at the ground rate, which is the fastest link), and it is on time only if it
  finishes early enough that some satellite's first downlink after the finish, plus the
  transfer, lands by min(deadline, horizon). Earliest and latest over all satellites, ignoring
  antennas, so each window contains the real one. It runs on one slot at a time, so its work in
  a bucket is at most the bucket's overlap with its window. Lost work (brownouts) only adds
  load, which the LP may ignore.
* Capacity and energy. Slots: busy slot-seconds <= slots x alive seconds, less safe-mode time.
  Energy per group and energy step: battery change <= eta_c x surplus and <= surplus / eta_d,
  where surplus = generation (solar x sunlit share, the most that can be collected) minus a
  lower bound on the load (bus and idle slots on every alive satellite, plus
  ``accelerator_w - accelerator_idle_w`` per busy slot-second; radio ignored), and the
  battery stays in [0, capacity]. Netting charge and discharge inside a step, and pooling the
  satellites of a group (summing their constraints), only enlarge the feasible set.
* Brownouts. A browned-out satellite draws less than that lower bound while in safe mode.
  Each brownout costs ``brownout_penalty`` in the objective and credits at most the saving of
  a safe-mode episode started at that time with an empty battery (simulated exactly on the
  geometry, bus load only, until the recovery charge; a fuller battery saves less); savings
  used up to any time cannot exceed the credits earned before it, and a safe satellite runs no
  work. A brownout needs an empty battery, so a battery that browns out during an energy step
  held at most one step's full-load drain at its start.

So no policy's return exceeds the LP optimum (plus what the counters already hold). The on-time
value bound is the same LP maximising on-time value with brownouts free. Both solved with HiGHS;
the result is rounded up by a small margin against solver tolerances. If a solve does not finish
within ``time_limit_s`` the bound falls back to coarser pooling and finally to the trivial bound
(every on-time-feasible job on time), and ``status`` says which was used.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from orbit_env.sim.simulator import JobState, Simulator

GBIT_PER_GB = 8.0
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


# -- geometry-derived windows ---------------------------------------------------------------------
def _presented_s(sim: Simulator) -> np.ndarray:
    """Earliest decision time of each job [s]: now for pending jobs, the boundary after arrival."""
    dt, now = sim.dt_s, sim.now_s
    arrival = sim.jobs.arrival_s
    step = np.floor(arrival / dt) - 1.0
    for _ in range(3):  # the first boundary t1 = k dt + dt with arrival < t1, as the simulator tests it
        step = np.where(arrival >= step * dt + dt, step + 1.0, step)
    nxt = step * dt + dt
    return np.where(sim.state == JobState.PENDING, now, np.maximum(nxt, now))


def _windows(sim: Simulator, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Earliest start and latest on-time finish of each job over all satellites [s]."""
    jobs, links, cfg = sim.jobs, sim.links, sim.config.links
    t_s, n_samples, dt = links.t_s, links.n_samples, sim.dt_s
    horizon = sim.n_steps * dt
    k_p = np.clip(np.rint(present / dt).astype(np.int64), 0, n_samples - 1)
    # ground input: first contact (direct or through ISLs) of the origin station with any satellite
    ground = jobs.origin_station >= 0
    st = np.maximum(jobs.origin_station, 0)
    k_reach = links.next_reach[k_p, st].min(axis=1)  # [J]
    t_reach = np.where(k_reach < n_samples, t_s[np.minimum(k_reach, n_samples - 1)], np.inf)
    up_s = jobs.input_gb * GBIT_PER_GB / cfg.ground_link_gbps
    earliest = np.where(ground, np.maximum(present, t_reach) + up_s, present)
    # output: the last sample <= tau with some satellite able to downlink bounds the finish
    any_down = (links.hops >= 0).any(axis=(1, 2))  # [T]
    idx = np.where(any_down, np.arange(n_samples), -1)
    prev_any = np.maximum.accumulate(idx)
    tau = np.minimum(jobs.deadline_s, horizon) - jobs.output_gb * GBIT_PER_GB / cfg.ground_link_gbps
    k_tau = np.clip(np.floor(tau / dt).astype(np.int64), -1, n_samples - 1)
    k_c = np.where(k_tau >= 0, prev_any[np.maximum(k_tau, 0)], -1)
    latest = np.where(k_c >= 0, np.minimum(tau, (k_c + 1) * dt), -np.inf)
    return earliest, latest


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
    base_w = p.bus_w + p.accelerators * p.accelerator_idle_w
    recover = p.recover_soc * p.battery_wh
    alive = geo.valid[k0:n_steps] & geo.valid[k0 + 1 : n_steps + 1]
    lit = geo.sunlit_fraction[k0:n_steps].astype(float) * dt * alive
    lit_first = geo.sunlit[k0:n_steps]
    energy = np.zeros((steps, n))
    saving = np.zeros((steps, n))
    active = alive.copy() & (recover > 0)
    starts = np.arange(steps)[:, None]

    def phase(dur: np.ndarray, gen_w: float, mask: np.ndarray) -> None:
        nonlocal energy
        net = gen_w - p.bus_w
        dur = np.where(mask, dur, 0.0)
        if net > 0:
            rate = net * p.charge_efficiency / 3600.0
            used = np.minimum(dur, np.maximum(recover - energy, 0.0) / rate)
            energy = energy + rate * used
            served = p.bus_w * used
            done = mask & (energy >= recover - 1e-9)
        else:
            rate = -net / p.discharge_efficiency / 3600.0
            t_empty = energy / rate if rate > 0 else np.full_like(energy, np.inf)
            on_batt = np.minimum(dur, t_empty)
            energy = np.maximum(energy - rate * dur, 0.0)
            served = p.bus_w * on_batt + gen_w * (dur - on_batt)
            used = dur
            done = np.zeros_like(mask)
        saving[:] += np.where(mask, (base_w * used - served) / 3600.0, 0.0)
        active[:] &= ~done

    for d in range(steps):
        k = starts + d  # [S, 1] step index relative to k0
        inside = (k < steps)[:, 0]
        if not (active & inside[:, None]).any():
            break
        kk = np.minimum(k[:, 0], steps - 1)
        live = active & inside[:, None] & alive[kk]
        active &= inside[:, None] & alive[kk]
        lit_len = lit[kk]
        first = lit_first[kk]
        # sunlit part first where the step starts lit, else last
        phase(np.where(first, lit_len, dt - lit_len), 0.0, live & ~first)
        phase(np.where(first, lit_len, 0.0), p.solar_array_w, live & first & active)
        phase(np.where(first, dt - lit_len, 0.0), 0.0, live & first & active)
        phase(np.where(first, 0.0, lit_len), p.solar_array_w, live & ~first & active)
    out = np.zeros((n, steps + 1))
    out[:, :steps] = saving.T
    shifted = base_w * dt / 3600.0 * alive.T + out[:, 1:]
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


# -- the LP ---------------------------------------------------------------------------------------
def _solve(
    sim: Simulator, bucket_s: float, energy_s: float | None, groups: int | None, time_limit_s: float
) -> dict | None:
    p, jobs, rw, dt = sim.power, sim.jobs, sim.config.reward, sim.dt_s
    geo = sim.geometry
    k0, n_steps = sim.step_index, sim.n_steps
    horizon, now = n_steps * dt, sim.now_s
    steps = n_steps - k0
    a_slots = p.accelerators
    base_w = p.bus_w + a_slots * p.accelerator_idle_w
    kappa = p.accelerator_w - p.accelerator_idle_w  # extra draw of a busy slot [W]
    cap = p.battery_wh
    eta_c, eta_d = p.charge_efficiency, p.discharge_efficiency
    c0 = sim.counters
    accrued = (
        c0.value_on_time
        - rw.miss_penalty * (c0.value_late + c0.value_expired)
        - rw.reject_penalty * c0.value_rejected
        - rw.brownout_penalty * c0.brownouts
    )
    if steps <= 0:
        return {
            "return": accrued,
            "value_on_time": c0.value_on_time,
            "buckets": 0,
            "groups": 0,
            "job_on_time": np.zeros(jobs.value.size),
        }

    m_big = max(1, int(round(bucket_s / dt)))
    m_e = max(1, int(round((energy_s if energy_s is not None else 2 * dt) / dt)))
    m_e = max(d for d in range(1, min(m_e, m_big) + 1) if m_big % d == 0)
    m_big = m_e * int(np.ceil(m_big / m_e))
    n_b = int(np.ceil(steps / m_big))
    n_f = int(np.ceil(steps / m_e))
    f_of_b = m_big // m_e
    b_edges = np.minimum(now + np.arange(n_b + 1) * m_big * dt, horizon)

    # ---- satellites and groups
    grp = _phase_groups(sim, k0, groups)
    n_g = int(grp.max()) + 1
    alive = (geo.valid[k0:n_steps] & geo.valid[k0 + 1 : n_steps + 1]).astype(float)  # [K, N]
    gen_wh = p.solar_array_w * geo.sunlit_fraction[k0:n_steps].astype(float) * alive * dt / 3600.0
    f_idx = np.arange(steps) // m_e
    onehot_g = np.zeros((sim.n_sats, n_g))
    onehot_g[np.arange(sim.n_sats), grp] = 1.0

    def to_gf(arr: np.ndarray) -> np.ndarray:  # [K, N] -> [G, F]
        per_f = np.zeros((n_f, arr.shape[1]))
        np.add.at(per_f, f_idx, arr)
        return (per_f @ onehot_g).T

    alive_h = to_gf(alive * dt / 3600.0)  # sat-hours
    gen_gf = to_gf(gen_wh)
    base_gf = base_w * alive_h
    surplus0 = gen_gf - base_gf  # Wh
    n_per_g = onehot_g.sum(axis=0)
    e0 = onehot_g.T @ sim.energy_wh
    saving = _safe_saving_wh(sim, k0)  # [N, K + 1]
    k_cred = np.zeros((n_g, n_f))
    for g in range(n_g):
        per_step = saving[grp == g, :steps].max(axis=0)
        np.maximum.at(k_cred[g], f_idx, per_step)
    init_credit = onehot_g.T @ np.where(sim.safe, saving[:, 0], 0.0)
    f_len_s = m_e * dt
    drain = min(cap, (p.bus_w + a_slots * p.accelerator_w + p.radio_w) * f_len_s / 3600.0 / eta_d)
    net_max = p.solar_array_w - p.bus_w
    t_rec = p.recover_soc * cap / (eta_c * net_max) * 3600.0 if net_max > 0 else np.inf
    nb_max = max(1, int(np.ceil(f_len_s / t_rec))) if t_rec > 0 else f_len_s
    alive_end = float(alive[-1].sum())

    # ---- jobs
    present = _presented_s(sim)
    earliest, latest = _windows(sim, present)
    work_h = jobs.work_s / 3600.0
    w_s = jobs.work_s
    dl = jobs.deadline_s
    v = jobs.value
    live = present < horizon - _EPS
    zero_ok = live & (dl > horizon - 1e-6)  # (P): may stay pending to the end
    charged = live & ~zero_ok
    can_y = live & (latest - earliest >= w_s - 1e-9) & np.isfinite(earliest)
    can_d = charged & (earliest < dl) & (earliest + w_s < horizon)
    can_r = charged & (np.maximum(earliest, horizon - w_s) < dl)
    d_end = np.minimum(dl + w_s, horizon)
    const = accrued - rw.reject_penalty * float(v[charged].sum())

    col = 0

    def block(size: int) -> np.ndarray:
        nonlocal col
        ids = np.arange(col, col + size)
        col += size
        return ids

    jy, jd, jr = np.flatnonzero(can_y), np.flatnonzero(can_d), np.flatnonzero(can_r)
    yv, dv, rv = block(jy.size), block(jd.size), block(jr.size)

    def spans(js: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(job, bucket, overlap [h]) of each bucket overlapping [lo, hi) of each job."""
        b_lo = np.clip(np.searchsorted(b_edges, lo[js], side="right") - 1, 0, n_b - 1)
        b_hi = np.clip(np.searchsorted(b_edges, hi[js], side="left"), 1, n_b)
        count = np.maximum(b_hi - b_lo, 0)
        rows = np.repeat(js, count)
        offs = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        bk = np.repeat(b_lo, count) + offs
        ov = np.minimum(b_edges[bk + 1], hi[rows]) - np.maximum(b_edges[bk], lo[rows])
        keep = ov > 1e-9
        return rows[keep], bk[keep], ov[keep] / 3600.0

    xy_j, xy_b, xy_ub = spans(jy, earliest, np.minimum(latest, horizon))
    xy = block(xy_j.size)
    ov = block(n_b)  # work of (D) and (R) jobs per bucket, pooled
    zr, zd = block(n_b), block(n_b)  # slacks of the release and due-date cumulative rows
    gf = n_g * n_f
    wv, uv, bv, sv, ev = block(gf), block(gf), block(gf), block(gf), block(gf)  # E at ends of f
    n_var = col

    rows, cols, vals, lo_r, hi_r = [], [], [], [], []
    n_row = 0

    def add(r: np.ndarray, c: np.ndarray, x: np.ndarray) -> None:
        rows.append(np.asarray(r, dtype=np.int64))
        cols.append(np.asarray(c, dtype=np.int64))
        vals.append(np.asarray(x, dtype=float))

    def new_rows(count: int, lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
        nonlocal n_row
        ids = np.arange(n_row, n_row + count)
        n_row += count
        lo_r.append(np.broadcast_to(np.asarray(lo, dtype=float), (count,)))
        hi_r.append(np.broadcast_to(np.asarray(hi, dtype=float), (count,)))
        return ids

    pos_y = np.full(len(jobs), -1)
    pos_y[jy] = np.arange(jy.size)
    pos_d = np.full(len(jobs), -1)
    pos_d[jd] = np.arange(jd.size)
    pos_r = np.full(len(jobs), -1)
    pos_r[jr] = np.arange(jr.size)
    # on-time work: sum_b xy = work * y
    r_y = new_rows(jy.size, 0.0, 0.0)
    add(r_y[pos_y[xy_j]], xy, np.ones(xy.size))
    add(r_y, yv, -work_h[jy])

    # (D) and (R) work, pooled per bucket: what is released at or after bucket b runs in buckets
    # >= b (Zr_b = Zr_{b+1} + O_b - released_b >= 0), what is due by the end of bucket b runs in
    # buckets <= b (Zd_b = Zd_{b-1} + O_b - due_b >= 0). (R) work lies in [deadline, horizon).
    def bucket_of(t: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(b_edges, t, side="right") - 1, 0, n_b - 1)

    req_d, req_r = work_h[jd], (horizon - dl[jr]) / 3600.0
    r_rel = new_rows(n_b, 0.0, 0.0)
    add(r_rel, zr, np.ones(n_b))
    add(r_rel[:-1], zr[1:], -np.ones(n_b - 1))
    add(r_rel, ov, -np.ones(n_b))
    add(r_rel[bucket_of(earliest[jd])], dv, req_d)
    add(r_rel[bucket_of(dl[jr])], rv, req_r)
    r_due = new_rows(n_b, 0.0, 0.0)
    add(r_due, zd, np.ones(n_b))
    add(r_due[1:], zd[:-1], -np.ones(n_b - 1))
    add(r_due, ov, -np.ones(n_b))
    add(r_due[bucket_of(d_end[jd] - 1e-6)], dv, req_d)
    add(r_due[np.full(jr.size, n_b - 1)], rv, req_r)
    # one outcome per job
    multi = np.flatnonzero(can_y.astype(int) + can_d + can_r >= 2)
    pos_m = np.full(len(jobs), -1)
    pos_m[multi] = np.arange(multi.size)
    r_m = new_rows(multi.size, -np.inf, 1.0)
    for js, vv in ((jy, yv), (jd, dv), (jr, rv)):
        sel = pos_m[js] >= 0
        add(r_m[pos_m[js[sel]]], vv[sel], np.ones(sel.sum()))
    # jobs running at the horizon each hold a slot
    if jr.size:
        r_s = new_rows(1, -np.inf, a_slots * alive_end)
        add(np.full(jr.size, r_s[0]), rv, np.ones(jr.size))
    # work in bucket b = work the groups do in its energy steps
    r_b = new_rows(n_b, 0.0, 0.0)
    add(r_b[xy_b], xy, -np.ones(xy.size))
    add(r_b, ov, -np.ones(n_b))
    gi, fi = np.divmod(np.arange(gf), n_f)
    add(r_b[fi // f_of_b], wv, np.ones(gf))
    # energy: dE <= eta_c * surplus and dE <= surplus / eta_d, surplus = s0 - kappa W + u
    s0 = surplus0[gi, fi]
    prev_e = np.where(fi > 0, ev - 1, -1)
    has_prev = prev_e >= 0
    e_start = np.where(has_prev, 0.0, e0[gi])
    for factor in (eta_c, 1.0 / eta_d):
        r_e = new_rows(gf, -np.inf, factor * s0 + e_start)
        add(r_e, ev, np.ones(gf))
        add(r_e[has_prev], prev_e[has_prev], -np.ones(has_prev.sum()))
        add(r_e, wv, factor * kappa * np.ones(gf))
        add(r_e, uv, -factor * np.ones(gf))
    # slots: W + A * (safe hours) <= A * alive hours, safe hours >= u / base_w
    r_w = new_rows(gf, -np.inf, a_slots * alive_h[gi, fi])
    add(r_w, wv, np.ones(gf))
    add(r_w, uv, a_slots / base_w * np.ones(gf))
    # brownout credits: S_f = S_{f-1} + K_f beta_f - u_f >= 0
    s_init = np.where(fi > 0, 0.0, init_credit[gi])
    r_c = new_rows(gf, s_init, s_init)
    add(r_c, sv, np.ones(gf))
    add(r_c[has_prev], (sv - 1)[has_prev], -np.ones(has_prev.sum()))
    add(r_c, bv, -k_cred[gi, fi])
    add(r_c, uv, np.ones(gf))
    # a brownout needs an empty battery: E at the step start <= one step's drain for those sats
    r_x = new_rows(gf, -np.inf, n_per_g[gi] * cap - e_start)
    add(r_x[has_prev], prev_e[has_prev], np.ones(has_prev.sum()))
    add(r_x, bv, (cap - drain) / nb_max * np.ones(gf))

    a_mat = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n_row, n_var)
    )
    row_lo, row_hi = np.concatenate(lo_r), np.concatenate(hi_r)
    lb = np.zeros(n_var)
    ub = np.full(n_var, np.inf)
    ub[yv] = ub[dv] = ub[rv] = 1.0
    ub[xy] = xy_ub
    ub[wv] = a_slots * alive_h[gi, fi]
    ub[uv] = base_gf[gi, fi]
    alive_sats_f = np.zeros((n_g, n_f))
    np.maximum.at(alive_sats_f.T, f_idx, alive @ onehot_g)
    ub[bv] = np.where(k_cred[gi, fi] > 0, alive_sats_f[gi, fi] * nb_max, 0.0)
    ub[ev] = n_per_g[gi] * cap

    obj_ret = np.zeros(n_var)
    obj_ret[yv] = np.where(charged[jy], (1.0 + rw.reject_penalty) * v[jy], v[jy])
    obj_ret[dv] = rw.reject_penalty * v[jd]
    obj_ret[rv] = rw.reject_penalty * v[jr]
    obj_ret[bv] = -rw.brownout_penalty
    obj_val = np.zeros(n_var)
    obj_val[yv] = v[jy]

    t0 = time.perf_counter()
    res_ret = _lp(obj_ret, a_mat, row_lo, row_hi, lb, ub, time_limit_s)
    if res_ret is None:
        return None
    # on-time value: every on-time-feasible job on time is always a bound; when the return LP's
    # optimum already reaches it, it is the on-time LP's optimum too, else solve that LP
    trivial_on = float(v[jy].sum())
    lp_on = float(v[jy] @ res_ret[1][yv])
    best_on = trivial_on
    if lp_on < trivial_on - 1e-6 * max(1.0, trivial_on):
        left = time_limit_s - (time.perf_counter() - t0)
        res_val = _lp(obj_val, a_mat, row_lo, row_hi, lb, ub, left) if left > 1.0 else None
        if res_val is not None:
            best_on = min(trivial_on, res_val[0])
    margin = 1e-6 * max(1.0, float(np.abs(v).sum()))
    return {
        "return": const + res_ret[0] + margin,
        "value_on_time": c0.value_on_time + best_on + margin,
        "buckets": n_b,
        "groups": n_g,
        "energy_step_s": f_len_s,
        "brownouts": float(res_ret[1][bv].sum()),
        "jobs_on_time": float(res_ret[1][yv].sum()),
        "job_on_time": _per_job(jobs.value.size, jy, res_ret[1][yv]),
        "on_time_value": lp_on,
        "variables": n_var,
        "constraints": n_row,
    }


def _lp(c, a_mat, row_lo, row_hi, lb, ub, time_limit_s: float) -> tuple[float, np.ndarray] | None:
    """max c @ x; (optimum, x) or None if HiGHS did not prove optimality in time."""
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
    present = _presented_s(sim)
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
