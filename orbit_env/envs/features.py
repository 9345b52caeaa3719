"""Turns simulator state into the observation's columns (see observation.py for their meaning).

Most columns change only when the clock moves or a job is placed, so they are computed in
three tiers and cached: per step boundary (sunlight, charge, contacts), per queue change
(committed work and the charge forecasts that depend on it), and per decision (the mask, the
job's eclipse margin, hops and time estimates). A decision that defers or rejects recomputes
only the last tier. Each tier writes its satellite columns in one compiled loop over the
satellites (numba; the same forecast rules the simulator uses), bit for bit what the numpy
code before it wrote; the decision tier's call also writes the mask and the job block.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from orbit_env.envs.observation import HOUR_S, JOB_COLUMNS, ObservationLayout
from orbit_env.sim import clock, kernels
from orbit_env.sim.forecast import (
    AFTER_ECLIPSE,
    AFTER_QUEUE,
    AT_ENTRY,
    BATTERY_WH,
    ChargeForecast,
    forecast_one,
)
from orbit_env.sim.kernels import njit, pairwise_sum
from orbit_env.sim.links import _backlog
from orbit_env.sim.simulator import Simulator
from orbit_env.sim.workload import EARTH_OBSERVATION, INFERENCE, TRAINING

#: the decision tier's satellite columns, in the order :func:`_decision_tier` writes them
DECISION_COLUMNS = (
    "valid_target",
    "eclipse_margin",
    "hops",
    "start_slack",
    "finish_slack",
    "delivery_slack",
    "downlink_wait",
)


#: the job block's columns, in the order :func:`_decision_tier` writes them
JOB_BLOCK = (
    "present",
    "inference",
    "training",
    "earth_observation",
    "work",
    "input_size",
    "output_size",
    "time_to_deadline",
    "value",
    "value_density",
    "in_orbit_data",
    "progress",
    "origin_backlog",
    "origin_time_to_contact",
)
assert JOB_BLOCK == tuple(c.name for c in JOB_COLUMNS), "the job block is written in JOB_COLUMNS order"


@njit
def _decision_tier(
    sats, cols, mask, block, job_scale, valid, fc_table, fc_params, committed_s, hops, start_s,
    finish_s, delivery_s, period_s, job, now_s, log1p_value, backlog_s, station_contact,
):  # fmt: skip
    """Write the decision tier: its satellite columns (``cols``: their indices, in
    ``DECISION_COLUMNS`` order) of every row of ``sats`` (float32[N, F]), the mask (bool[N + 2];
    ``valid``: bool[N]) and the job block (float32[J], in ``JOB_BLOCK`` order; ``job_scale``:
    float[J] each column's scale, ``hops`` scale last). The job would start, finish and be
    delivered at ``start_s``, ``finish_s``, ``delivery_s`` (float[N] each) [s]; ``job``: (kind,
    value, work [s], progress [s], input GB, output GB, deadline [s], input satellite, input
    station); ``log1p_value``: log(1 + value) as numpy computes it; ``backlog_s``: float[G] each
    station's antenna backlog [s]; ``station_contact``: float[G] its time to contact [periods]."""
    kind, value, work_s, progress_s, input_gb, output_gb, deadline_s, input_sat, station = job
    work_left = work_s - progress_s
    inv_window = 1.0 / max(deadline_s - now_s, 1e-9)
    hops_scale = job_scale[job_scale.shape[0] - 1]
    n = sats.shape[0]
    for i in range(n):
        start, finish, delivery = start_s[i], finish_s[i], delivery_s[i]
        mask[i] = valid[i]
        sats[i, cols[0]] = valid[i]
        margin = forecast_one(fc_table, fc_params, i, committed_s[i] + work_left, AFTER_ECLIPSE)
        sats[i, cols[1]] = margin / fc_params[BATTERY_WH]
        sats[i, cols[2]] = hops[i] / hops_scale
        # (deadline - t) / (deadline - now); a never-reached time (inf) maps to -1
        sats[i, cols[3]] = max((deadline_s - start) * inv_window, -1.0)
        sats[i, cols[4]] = max((deadline_s - finish) * inv_window, -1.0)
        sats[i, cols[5]] = max((deadline_s - delivery) * inv_window, -1.0)
        wait = delivery - finish if np.isfinite(finish) else np.inf  # never started: no wait
        sats[i, cols[6]] = min(wait / period_s, 1.0)
    mask[n] = True
    mask[n + 1] = True
    block[0] = 1.0
    block[1] = kind == INFERENCE
    block[2] = kind == TRAINING
    block[3] = kind == EARTH_OBSERVATION
    block[4] = work_left / job_scale[4]
    block[5] = input_gb / job_scale[5]
    block[6] = output_gb / job_scale[6]
    block[7] = (deadline_s - now_s) / job_scale[7]
    block[8] = log1p_value / job_scale[8]
    block[9] = value / max(work_left / HOUR_S, 1e-6) / job_scale[9]
    block[10] = input_sat >= 0
    block[11] = progress_s / work_s if work_s > 0 else 0.0
    on_ground = station >= 0
    block[12] = backlog_s[station] / job_scale[12] if on_ground else 0.0
    block[13] = station_contact[station] if on_ground else 0.0


@njit
def _decide(
    st, job, hops, sats, cols, mask, block, job_scale, fc_table, fc_params, committed, period_s,
    backlog_s, station_contact,
):  # fmt: skip
    """``job``'s decision on the simulator's clock state ``st`` (:func:`clock.decision`: its
    estimates into ``st``'s decision buffers) and the decision tier it feeds
    (:func:`_decision_tier`), in one call; ``hops``: int16[N] its entry hops."""
    clock.decision(st, job, hops)
    fields = (
        int(st.kind[job]), st.value[job], st.work_s[job], st.progress_s[job], st.input_gb[job],
        st.output_gb[job], st.deadline_s[job], st.input_sat[job], st.input_station[job],
    )  # fmt: skip
    _decision_tier(
        sats, cols, mask, block, job_scale, st.dec_valid, fc_table, fc_params, committed, hops,
        st.dec_start, st.dec_finish, st.dec_delivery, period_s, fields,
        st.ints[clock.STEP] * st.floats[clock.DT_S], st.log1p_value[job], backlog_s, station_contact,
    )  # fmt: skip


@njit
def _live_mean(values: np.ndarray, live: np.ndarray, scratch: np.ndarray) -> float:
    """``values[live].mean()``, summed in numpy's order."""
    k = 0
    for i in range(values.shape[0]):
        if live[i]:
            scratch[k] = values[i]
            k += 1
    return pairwise_sum(scratch, 0, k) / k


#: the boundary tier's satellite columns, in the order :func:`_boundary_columns` writes them
BOUNDARY_COLUMNS = (
    "sunlit",
    "sunlit_next_orbit",
    "time_to_crossing",
    "eclipse_left",
    "soc",
    "busy_slots",
    "safe_mode",
    "in_contact",
    "time_to_contact",
)


@njit
def _boundary_columns(
    sats,
    cols,
    sun_next_orbit,
    next_crossing_s,
    eclipse_left_s,
    sunlit,
    energy_wh,
    slot_job,
    safe,
    in_contact,
    next_contact,
    grid,
    live,
    scratch,
):
    """Write the boundary tier's columns (``cols``, in ``BOUNDARY_COLUMNS`` order) of every
    satellite's row of ``sats`` and return (mean charge ÷ capacity, sunlit share) over the
    live satellites. At this sample, float[N] each: sunlit share of the next orbit, next
    terminator crossing [s], eclipse left or next eclipse's length [s]; ``next_contact``:
    int[N] first sample with a direct contact; ``grid``: (now [s], period [s], step [s],
    samples, battery [Wh], slots)."""
    now_s, period_s, dt_s, n_samples, battery_wh, slots = grid
    n = sats.shape[0]
    soc = np.empty(n)
    lit = n_live = 0
    for i in range(n):
        busy = 0
        for s in range(slot_job.shape[1]):
            busy += slot_job[i, s] >= 0
        soc[i] = energy_wh[i] / battery_wh
        sats[i, cols[0]] = sunlit[i]
        sats[i, cols[1]] = sun_next_orbit[i]
        sats[i, cols[2]] = min((next_crossing_s[i] - now_s) / period_s, 1.0)
        sats[i, cols[3]] = eclipse_left_s[i] / period_s
        sats[i, cols[4]] = soc[i]
        sats[i, cols[5]] = busy / slots
        sats[i, cols[6]] = safe[i]
        sats[i, cols[7]] = in_contact[i]
        t_contact = next_contact[i] * dt_s - now_s if next_contact[i] < n_samples else np.inf
        sats[i, cols[8]] = min(t_contact / period_s, 1.0)
        if live[i]:
            lit += sunlit[i]
            n_live += 1
    return _live_mean(soc, live, scratch), lit / n_live


#: the queue tier's satellite columns, in the order :func:`_queue_columns` writes them
QUEUE_COLUMNS = ("queued_work", "queue_fill", "soc_after_queue", "soc_at_eclipse_entry")


@njit
def _queue_columns(
    sats,
    cols,
    committed_s,
    queue,
    max_queue,
    fc_table,
    fc_params,
    live,
    gen_w,
    terms,
    scratch,
    rows,
    after,
    balance,
):
    """Write the queue tier's columns (``cols``, in ``QUEUE_COLUMNS`` order) of the rows
    ``rows`` (int[K]) of ``sats`` from the committed work [slot-s] and the queues (int[N, Q], −1
    empty), and return the globals (mean forecast charge after the next eclipse ÷ capacity,
    mean energy balance over the live satellites). ``after`` and ``balance`` (float[N]) hold
    every satellite's terms of those means; the rows' are rewritten. ``gen_w``: float[N] next
    orbit's mean generation [W]; ``terms``: (slots, queued_work scale, period [s], base load
    [W], work span [W], array power [W])."""
    slots, work_scale, period_s, base_w, span_w, solar_w = terms
    cap = fc_params[BATTERY_WH]
    for i in rows:
        c = committed_s[i]
        queued = 0
        for q in range(queue.shape[1]):
            queued += queue[i, q] >= 0
        sats[i, cols[0]] = c / (slots * work_scale)
        sats[i, cols[1]] = queued / max_queue
        sats[i, cols[2]] = forecast_one(fc_table, fc_params, i, c, AFTER_QUEUE) / cap
        sats[i, cols[3]] = forecast_one(fc_table, fc_params, i, c, AT_ENTRY) / cap
        after[i] = forecast_one(fc_table, fc_params, i, c, AFTER_ECLIPSE) / cap
        committed_w = span_w * min(c / period_s, slots)
        balance[i] = (gen_w[i] - base_w - committed_w) / max(solar_w, 1.0)
    return _live_mean(after, live, scratch), _live_mean(balance, live, scratch)


@njit
def _queue_tier(
    st, sats, cols, committed, fc_table, fc_params, live, gen_w, terms, scratch, rows, after, balance,
    backlog_s,
):  # fmt: skip
    """The queue tier on the simulator's clock state ``st`` in one call: the committed work of
    ``rows`` (``Simulator.committed_s`` into ``committed``), :func:`_queue_columns`, and each
    station's antenna backlog [s] into ``backlog_s`` (float[G]). Returns the two globals of
    :func:`_queue_columns` and the mean backlog [s] (numpy's mean)."""
    kernels.committed_work(
        st.slot_remaining_s, st.queue, st.work_s, st.progress_s, committed, np.empty(st.queue.shape[1]), rows
    )
    after_mean, balance_mean = _queue_columns(
        sats, cols, committed, st.queue, st.ints[clock.MAX_QUEUE], fc_table, fc_params, live, gen_w,
        terms, scratch, rows, after, balance,
    )  # fmt: skip
    _backlog(st.ant_lo, st.ant_hi, st.ant_count, st.ints[clock.STEP] * st.floats[clock.DT_S], backlog_s)
    n = backlog_s.shape[0]
    return after_mean, balance_mean, pairwise_sum(backlog_s, 0, n) / n


def _unique(sats: np.ndarray) -> np.ndarray:
    """``np.unique(sats)``; a single satellite (one placement, the usual case) as it is."""
    return sats if sats.shape[0] == 1 else np.unique(sats)


class FeatureBuilder:
    """Builds flat observations for one env; call :meth:`observe` after every change."""

    def __init__(self, layout: ObservationLayout) -> None:
        self.layout = layout
        n = layout.n_sats
        self.sats = np.zeros((n, layout.n_sat_features), dtype=np.float32)
        self.job = np.zeros(len(layout.job_columns), dtype=np.float32)
        self.glob = np.zeros(len(layout.global_columns), dtype=np.float32)
        self.mask = np.zeros(n + 2, dtype=bool)
        self.c = {c.name: i for i, c in enumerate(layout.sat_columns)}
        self._decision_cols = np.array([self.c[name] for name in DECISION_COLUMNS], dtype=np.int64)
        self._queue_cols = np.array([self.c[name] for name in QUEUE_COLUMNS], dtype=np.int64)
        self._boundary_cols = np.array([self.c[name] for name in BOUNDARY_COLUMNS], dtype=np.int64)
        self._scratch = np.empty(n)
        self.g = {c.name: i for i, c in enumerate(layout.global_columns)}
        # each column's scale, declared once in observation.py: entry = quantity / scale
        self.scale = {
            c.name: c.scale for c in layout.sat_columns + layout.job_columns + layout.global_columns
        }
        self._all_sats = np.arange(n, dtype=np.int64)
        #: each job column's scale, in JOB_BLOCK order, then the hops column's
        self._job_scale = np.array([self.scale[name] for name in JOB_BLOCK] + [self.scale["hops"]])
        self._after = np.empty(n)  # per satellite: the queue tier's terms of its two means
        self._balance = np.empty(n)
        self.committed = np.empty(n)
        self._boundary_key: tuple[int, int] | None = None
        self._queue_key: tuple[int, int, int] | None = None
        self._queue_terms_of: Simulator | None = None  # the simulator _queue_terms were made for
        self._queue_terms: tuple[float, ...] = ()

    def reset(self) -> None:
        """Forget cached tiers (a new episode or simulator)."""
        self._boundary_key = None
        self._queue_key = None

    def observe(self, sim: Simulator, job: int | None, pending: int) -> np.ndarray:
        """Flat float32 observation for ``job`` (``None``: no decision pending)."""
        boundary = (id(sim), sim.step_index)
        if boundary != self._boundary_key:
            self._boundary(sim)
            self._boundary_key = boundary
            self._queue_key = None
        queue = boundary + (sim.placements,)
        if queue != self._queue_key:
            # within a step only placements change queues: then only their satellites' rows
            rows = None if self._queue_key is None else _unique(sim.placed_since(self._queue_key[2]))
            self._queue(sim, rows)
            self._queue_key = queue
        self._decision(sim, job, pending)
        return self.layout.encode(self.sats, self.job, self.glob)

    # -- tier 1: the step boundary -------------------------------------------------------------
    def _boundary(self, sim: Simulator) -> None:
        g, glob = self.g, self.glob
        k, now, p = sim.step_index, sim.now_s, sim.power
        period, sun = sim.period_s, sim.sun
        sunlit = sim.geometry.sunlit[k]
        self.forecast = ChargeForecast(
            p, sim.energy_wh, now, sun.next_entry_s[k], sun.eclipse_left_s[k], sunlit, sim.safe
        )
        valid = sim.valid_now
        self.live = valid if sim.any_valid_now else np.ones_like(valid)
        grid = (
            float(now),
            float(period),
            float(sim.dt_s),
            sim.geometry.t_s.shape[0],
            float(p.battery_wh),
            float(p.accelerators),
        )
        glob[g["mean_soc"]], glob[g["sunlit_share"]] = _boundary_columns(
            self.sats,
            self._boundary_cols,
            sun.sunlit_next_orbit[k],
            sun.next_crossing_s[k],
            sun.eclipse_left_s[k],
            sunlit,
            sim.energy_wh,
            sim.slot_job,
            sim.safe,
            sim.in_contact[k],
            sim.next_contact_k[k],
            grid,
            self.live,
            self._scratch,
        )
        clock = sim.geometry.start + timedelta(seconds=now)
        hour = clock.hour + clock.minute / 60.0 + clock.second / 3600.0
        glob[g["time_of_day_sin"]] = np.sin(2 * np.pi * hour / 24.0)
        glob[g["time_of_day_cos"]] = np.cos(2 * np.pi * hour / 24.0)
        glob[g["horizon_left"]] = 1.0 - now / sim.config.horizon_s
        self.station_contact = np.minimum(sim.station_next_contact_s() / period, 1.0)
        self._gen_next_orbit_w = p.solar_array_w * sun.sunlit_next_orbit[k]

    # -- tier 2: queues --------------------------------------------------------------------------
    def _queue(self, sim: Simulator, rows: np.ndarray | None) -> None:
        """The queue tier of the satellites ``rows`` (all when ``None``) and its globals."""
        g, sats, glob = self.g, self.sats, self.glob
        rows = self._all_sats if rows is None else rows
        if self._queue_terms_of is not sim:  # constants of the simulator, made once for it
            p = sim.power
            base_w = p.bus_w + p.accelerators * p.accelerator_idle_w
            span_w = p.accelerator_w - p.accelerator_idle_w
            self._queue_terms = tuple(
                float(x)
                for x in (
                    p.accelerators,
                    self.scale["queued_work"],
                    sim.period_s,
                    base_w,
                    span_w,
                    p.solar_array_w,
                )
            )
            self._queue_terms_of = sim
            self.backlog_s = np.empty(len(sim.config.ground.stations))
        after, balance, backlog = _queue_tier(
            sim._st,
            sats,
            self._queue_cols,
            self.committed,
            self.forecast.table,
            self.forecast.params,
            self.live,
            self._gen_next_orbit_w,
            self._queue_terms,
            self._scratch,
            rows,
            self._after,
            self._balance,
            self.backlog_s,
        )
        glob[g["mean_soc_after_eclipse"]], glob[g["energy_balance"]] = after, balance
        glob[g["station_backlog"]] = backlog / self.scale["station_backlog"]

    # -- tier 3: the decision --------------------------------------------------------------------
    def _decision(self, sim: Simulator, job: int | None, pending: int) -> None:
        sats, block = self.sats, self.job
        self.glob[self.g["pending"]] = pending / self.scale["pending"]
        if job is None:
            sats[:, self._decision_cols] = 0.0
            block[:] = 0.0
            self.mask[:] = False
            return
        _decide(
            sim._st,
            job,
            sim.entry_hops(job),
            sats,
            self._decision_cols,
            self.mask,
            block,
            self._job_scale,
            self.forecast.table,
            self.forecast.params,
            self.committed,
            float(sim.period_s),
            self.backlog_s,
            self.station_contact,
        )
        sim._keep_decision(job)  # for the place() that may follow
