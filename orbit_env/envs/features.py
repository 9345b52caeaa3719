"""Turns simulator state into the observation's columns (see observation.py for their meaning).

Most columns change only when the clock moves or a job is placed, so they are computed in
three tiers and cached: per step boundary (sunlight, charge, contacts), per queue change
(committed work and the charge forecasts that depend on it), and per decision (the mask, the
job's eclipse margin, hops and time estimates). A decision that defers or rejects recomputes
only the last tier. The whole observation is one compiled call (:func:`_observe`, numba) over
two structs: the simulator's episode state (:mod:`orbit_env.sim.clock`) and this builder's
arrays (:class:`FeatureState`); each tier writes its satellite columns in one loop over the
satellites (the same forecast rules the simulator uses), bit for bit what the numpy code
before it wrote.
"""

from __future__ import annotations

from datetime import timedelta

import numba
import numpy as np
from numba.experimental import structref

from orbit_env.envs.observation import HOUR_S, JOB_COLUMNS, ObservationLayout, _encode
from orbit_env.sim import clock, kernels
from orbit_env.sim.forecast import (
    AFTER_ECLIPSE,
    AFTER_QUEUE,
    AT_ENTRY,
    BATTERY_WH,
    _fill_table,
    forecast_one,
    forecast_params,
    forecast_watts,
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


#: the globals the tiers write, in the order of FeatureState.glob_idx
_GLOBALS = (
    "mean_soc", "sunlit_share", "time_of_day_sin", "time_of_day_cos", "horizon_left",
    "mean_soc_after_eclipse", "energy_balance", "station_backlog", "pending",
)  # fmt: skip
G_MEAN_SOC, G_SUNLIT, G_TOD_SIN, G_TOD_COS, G_HORIZON, G_SOC_AFTER, G_BALANCE, G_BACKLOG, G_PENDING = range(9)
# FeatureState.consts
(
    C_PERIOD_S,
    C_HORIZON_S,
    C_BATTERY_WH,
    C_SLOTS,
    C_BUS_W,
    C_BASE_W,
    C_SOLAR_W,
    C_BACKLOG_SCALE,
    C_PENDING_SCALE,
) = range(9)
# FeatureState.keys: the step of the boundary tier, the step and placements of the queue tier (−1: none)
K_BOUNDARY, K_QUEUE_STEP, K_QUEUE_PLACED = range(3)

#: the feature builder's struct: its blocks and their column indices, the tiers' terms, and the
#: simulator's per-sample tables the boundary tier reads
FEATURE_FIELDS = (
    "sats", "job", "glob", "mask", "dec_cols", "queue_cols", "boundary_cols", "job_scale",
    "fc_table", "fc_params", "committed", "after", "balance", "scratch", "live", "gen_w",
    "station_contact", "backlog_s", "queue_terms", "glob_idx", "consts", "keys",
    "sunlit_next_orbit", "next_crossing_s", "eclipse_left_s", "next_entry_s", "in_contact",
    "next_contact_k", "contact_share", "tod_sin", "tod_cos",
)  # fmt: skip


@structref.register
class FeatureStateType(kernels.Unliteral):
    pass


class FeatureState(structref.StructRefProxy):
    """A :class:`FeatureBuilder`'s arrays for the compiled observation (fields:
    :data:`FEATURE_FIELDS`); Python keeps its own references to them."""


structref.define_proxy(FeatureState, FeatureStateType, list(FEATURE_FIELDS))


@njit
def _make_features(*fields):
    return FeatureState(*fields)


@njit
def _boundary_tier(st, fs, k: int) -> None:
    """The boundary tier at sample ``k``: the charge forecast's table (``ChargeForecast``), the
    satellites that count in the means, the boundary columns and the globals of the moment."""
    c, glob, gi = fs.consts, fs.glob, fs.glob_idx
    now = k * st.floats[clock.DT_S]
    slots = int(c[C_SLOTS])
    _fill_table(
        fs.fc_table, st.energy_wh, st.safe, st.sunlit[k], fs.next_entry_s[k], fs.eclipse_left_s[k], now,
        slots, (c[C_BUS_W], c[C_BASE_W], c[C_SOLAR_W]),
    )  # fmt: skip
    every = st.any_valid[k]
    for i in range(fs.live.shape[0]):
        fs.live[i] = st.valid[k, i] if every else True
    grid = (now, c[C_PERIOD_S], st.floats[clock.DT_S], st.t_s.shape[0], c[C_BATTERY_WH], float(slots))
    glob[gi[G_MEAN_SOC]], glob[gi[G_SUNLIT]] = _boundary_columns(
        fs.sats, fs.boundary_cols, fs.sunlit_next_orbit[k], fs.next_crossing_s[k], fs.eclipse_left_s[k],
        st.sunlit[k], st.energy_wh, st.slot_job, st.safe, fs.in_contact[k], fs.next_contact_k[k], grid,
        fs.live, fs.scratch,
    )  # fmt: skip
    glob[gi[G_TOD_SIN]] = fs.tod_sin[k]
    glob[gi[G_TOD_COS]] = fs.tod_cos[k]
    glob[gi[G_HORIZON]] = 1.0 - now / c[C_HORIZON_S]
    fs.station_contact[:] = fs.contact_share[k]
    for i in range(fs.gen_w.shape[0]):
        fs.gen_w[i] = c[C_SOLAR_W] * fs.sunlit_next_orbit[k, i]


@njit
def _queue_rows(st, fs, k: int) -> np.ndarray:
    """The satellites whose queue rows are stale: every one after a new boundary, else the ones
    placed on since the queue tier ran (in order, each once)."""
    if fs.keys[K_QUEUE_STEP] != k:
        return st.all_sats
    placed = st.placement_sats[fs.keys[K_QUEUE_PLACED] : st.ints[clock.PLACEMENTS]]
    return placed if placed.shape[0] == 1 else np.unique(placed)


@njit
def _observe(st, fs, job: int, pending: int, out: np.ndarray) -> None:
    """The observation of ``job`` (−1: none pending) with ``pending`` jobs waiting, into ``out``
    (float32[D]), in one call: the boundary tier when the clock moved, the queue tier when a
    queue changed, the decision tier (on the job's :func:`clock.entry_hops`) and the encoding;
    also the mask (``fs.mask``)."""
    k, placed = st.ints[clock.STEP], st.ints[clock.PLACEMENTS]
    c, glob, gi = fs.consts, fs.glob, fs.glob_idx
    if fs.keys[K_BOUNDARY] != k:
        _boundary_tier(st, fs, k)
        fs.keys[K_BOUNDARY] = k
        fs.keys[K_QUEUE_STEP] = -1
    if fs.keys[K_QUEUE_STEP] != k or fs.keys[K_QUEUE_PLACED] != placed:
        rows = _queue_rows(st, fs, k)
        after, balance, backlog = _queue_tier(
            st, fs.sats, fs.queue_cols, fs.committed, fs.fc_table, fs.fc_params, fs.live, fs.gen_w,
            fs.queue_terms, fs.scratch, rows, fs.after, fs.balance, fs.backlog_s,
        )  # fmt: skip
        glob[gi[G_SOC_AFTER]], glob[gi[G_BALANCE]] = after, balance
        glob[gi[G_BACKLOG]] = backlog / c[C_BACKLOG_SCALE]
        fs.keys[K_QUEUE_STEP], fs.keys[K_QUEUE_PLACED] = k, placed
    glob[gi[G_PENDING]] = pending / c[C_PENDING_SCALE]
    if job < 0:
        for i in range(fs.sats.shape[0]):
            for col in fs.dec_cols:
                fs.sats[i, col] = 0.0
        fs.job[:] = 0.0
        fs.mask[:] = False
    else:
        _decide(
            st, job, clock.entry_hops(st, job), fs.sats, fs.dec_cols, fs.mask, fs.job, fs.job_scale,
            fs.fc_table, fs.fc_params, fs.committed, c[C_PERIOD_S], fs.backlog_s, fs.station_contact,
        )  # fmt: skip
    _encode(fs.sats.reshape(-1), fs.job, glob, out)


class FeatureBuilder:
    """Builds flat observations for one env; call :meth:`observe` after every change.

    The columns are computed in the compiled :func:`_observe`, over a :class:`FeatureState`
    holding this builder's arrays and the simulator's tables (made once per simulator).
    """

    def __init__(self, layout: ObservationLayout) -> None:
        self.layout = layout
        n = layout.n_sats
        self.sats = np.zeros((n, layout.n_sat_features), dtype=np.float32)
        self.job = np.zeros(len(layout.job_columns), dtype=np.float32)
        self.glob = np.zeros(len(layout.global_columns), dtype=np.float32)
        self.mask = np.zeros(n + 2, dtype=bool)
        self.c = {c.name: i for i, c in enumerate(layout.sat_columns)}
        self.g = {c.name: i for i, c in enumerate(layout.global_columns)}
        # each column's scale, declared once in observation.py: entry = quantity / scale
        self.scale = {
            c.name: c.scale for c in layout.sat_columns + layout.job_columns + layout.global_columns
        }
        self._keys = np.full(3, -1, dtype=np.int64)  # the tiers' keys (K_BOUNDARY ...), shared
        self._state = None  # the FeatureState, for the simulator _state_of
        self._state_of: Simulator | None = None

    def reset(self) -> None:
        """Forget cached tiers (a new episode or simulator)."""
        self._keys[:] = -1

    def __getstate__(self) -> dict:  # a copy makes its struct again at its first observation
        state = self.__dict__.copy()
        state["_state"] = state["_state_of"] = None
        return state

    def observe(self, sim: Simulator, job: int | None, pending: int) -> np.ndarray:
        """Flat float32 observation for ``job`` (``None``: no decision pending)."""
        out = np.empty(self.layout.size, dtype=np.float32)
        _observe(sim._st, self.state(sim), -1 if job is None else job, pending, out)
        return out

    def state(self, sim: Simulator):
        """The :class:`FeatureState` of this builder over ``sim`` (made when the simulator changes)."""
        if self._state_of is not sim:
            self._state = self._make_state(sim)
            self._state_of = sim
            self._keys[:] = -1
        return self._state

    def _make_state(self, sim: Simulator):
        """The :class:`FeatureState` of this builder over ``sim``'s tables."""
        n, p, sun = self.layout.n_sats, sim.power, sim.sun
        a = p.accelerators
        bus_w, base_w, solar_w = forecast_watts(p)  # safe mode, idle slots, the array
        period = float(sim.period_s)
        start = sim.geometry.start
        hours = []  # the hour of day at each sample, as datetime gives it
        for t in sim.geometry.t_s.tolist():
            clock_t = start + timedelta(seconds=t)
            hours.append(clock_t.hour + clock_t.minute / 60.0 + clock_t.second / 3600.0)
        angle = 2 * np.pi * np.array(hours) / 24.0
        fields = {
            "sats": self.sats,
            "job": self.job,
            "glob": self.glob,
            "mask": self.mask,
            "dec_cols": np.array([self.c[name] for name in DECISION_COLUMNS], dtype=np.int64),
            "queue_cols": np.array([self.c[name] for name in QUEUE_COLUMNS], dtype=np.int64),
            "boundary_cols": np.array([self.c[name] for name in BOUNDARY_COLUMNS], dtype=np.int64),
            # each job column's scale, in JOB_BLOCK order, then the hops column's
            "job_scale": np.array([self.scale[name] for name in JOB_BLOCK] + [self.scale["hops"]]),
            "fc_table": np.empty((7, n)),  # the charge forecast's terms (ChargeForecast.table)
            "fc_params": forecast_params(p),
            "committed": np.empty(n),
            "after": np.empty(n),  # per satellite: the queue tier's terms of its two means
            "balance": np.empty(n),
            "scratch": np.empty(n),
            "live": np.ones(n, dtype=bool),
            "gen_w": np.empty(n),  # next orbit's mean generation [W]
            "station_contact": np.empty(len(sim.config.ground.stations)),
            "backlog_s": np.empty(len(sim.config.ground.stations)),
            "queue_terms": np.array(
                [
                    a,
                    self.scale["queued_work"],
                    period,
                    base_w,
                    p.accelerator_w - p.accelerator_idle_w,
                    solar_w,
                ],
                dtype=float,
            ),  # fmt: skip
            "glob_idx": np.array([self.g[name] for name in _GLOBALS], dtype=np.int64),
            "consts": np.array(
                [
                    period,
                    sim.config.horizon_s,
                    p.battery_wh,
                    a,
                    bus_w,
                    base_w,
                    solar_w,
                    self.scale["station_backlog"],
                    self.scale["pending"],
                ],
                dtype=float,
            ),  # fmt: skip
            "keys": self._keys,
            "sunlit_next_orbit": sun.sunlit_next_orbit,
            "next_crossing_s": sun.next_crossing_s,
            "eclipse_left_s": sun.eclipse_left_s,
            "next_entry_s": sun.next_entry_s,
            "in_contact": sim.in_contact,
            "next_contact_k": sim.next_contact_k,
            # each station's time to contact in periods, capped at 1, at every sample
            "contact_share": np.minimum(sim._station_next_contact_s / period, 1.0),
            "tod_sin": np.sin(angle),
            "tod_cos": np.cos(angle),
        }
        if numba.config.DISABLE_JIT:
            return clock.PlainState(**fields)
        return _make_features(*(fields[name] for name in FEATURE_FIELDS))
