"""The compiled clock (issue 19): one episode's state in one struct, and the calls that move it.

:class:`Simulator <orbit_env.sim.simulator.Simulator>` keeps its episode in an
:class:`EpisodeState`, a numba ``structref`` holding the same arrays the simulator exposes (shared
memory, not copies), the precomputed tables the clock reads, and its scalars in two small arrays
(``ints``, ``floats``; the index constants below). Passing it to a compiled function costs one
argument (~0.6 µs) instead of dozens, so a decision and the work up to the next one are one
call: :func:`act` places (:func:`place`: the input's booking, the radio's time, the queue),
defers or rejects the job, then :func:`next_decision` advances the clock step by step
(:func:`advance`: the exact power integration of :func:`kernels.run_step`, the downlink bookings
of the jobs that finished, the brownouts' bookkeeping, satellites lost, radiation upsets,
settlement at delivery or deadline, the arrivals) until a job awaits a decision or the episode
ends. :func:`decision` estimates a job on every satellite into the struct's decision buffers.
It is ``Simulator``'s numpy code before it, operation for operation: the results are
bit-identical (``tests/test_pinned.py``).

Arrays that grow (the antenna schedule, the radio windows, the brownouts' and placements' logs) are replaced
inside the struct; each replacement bumps ``ints[GENERATION]``, which tells the simulator to
fetch the new ones (:func:`grown_arrays`).

With ``NUMBA_DISABLE_JIT=1`` the struct is a plain Python object with the same attributes and
these functions run as Python.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.experimental import structref

from orbit_env.sim import kernels
from orbit_env.sim.geometry import _bfs_hops
from orbit_env.sim.kernels import _checkpointed, njit, pairwise_sum
from orbit_env.sim.links import GBIT_PER_GB, _book_transfer, _decision_estimate, _insert, _release, doubled

# job states (orbit_env.sim.simulator.JobState)
PENDING, QUEUED, RUNNING, DOWNLINK, ON_TIME, LATE, EXPIRED, REJECTED = 1, 2, 3, 4, 5, 6, 7, 8
# act()'s decisions besides a satellite index
DEFER, REJECT = -1, -2

# -- ints: the clock's integer scalars, then the episode's integer counters ------------------------
(
    STEP, NEXT_ARRIVAL, UNSETTLED_FROM, OVER, RADIO_COUNT, GENERATION, N_SETTLED, N_FAILED,
    BROWN_IDLE, N_LATENCY, N_BROWNOUT_T, ERROR_STEP, N_STEPS, MAX_STEPS, MAX_EVENTS, SEU_ON,
    ARRIVED, ON_TIME_C, LATE_C, EXPIRED_C, REJECTED_C, BROWNOUTS, SETTLED_AT_END, JOB_FAILURES,
    SEU_EVENTS, DECISIONS, PLACEMENTS, TERMS_STEP, TERMS_PLACEMENTS, MAX_QUEUE,
    DEC_JOB, DEC_STEP, DEC_PLACEMENTS, PENDING_JOB, PENDING_COUNT, PYTHON_STEPS, GRAPH_STEP,
) = range(37)  # fmt: skip
N_INTS = 37
#: the integer counters (``Counters`` fields) by name
INT_COUNTERS = {
    "arrived": ARRIVED, "on_time": ON_TIME_C, "late": LATE_C, "expired": EXPIRED_C,
    "rejected": REJECTED_C, "brownouts": BROWNOUTS, "settled_at_end": SETTLED_AT_END,
    "job_failures": JOB_FAILURES, "seu_events": SEU_EVENTS, "decisions": DECISIONS,
}  # fmt: skip
# -- floats: the grid, then the episode's float counters -------------------------------------------
DT_S, HORIZON_S, BUSY_SLOT_S = 0, 1, 2
VALUE_ARRIVED, VALUE_ON_TIME, VALUE_LATE, VALUE_EXPIRED, VALUE_REJECTED = 3, 4, 5, 6, 7
CHARGE_EFF_F = 8  # the charge efficiency, as decision_terms takes it
N_FLOATS = 9
FLOAT_COUNTERS = {
    "busy_slot_s": BUSY_SLOT_S, "value_arrived": VALUE_ARRIVED, "value_on_time": VALUE_ON_TIME,
    "value_late": VALUE_LATE, "value_expired": VALUE_EXPIRED, "value_rejected": VALUE_REJECTED,
}  # fmt: skip
# -- power: the power model's terms as run_step takes them ------------------------------------------
(
    SOLAR_W, BUS_W, ACC_W, IDLE_W, N_ACC, CAP_WH, CHARGE_EFF, DISCHARGE_EFF, RESERVE_WH, RECOVER_WH,
    RADIO_W,
) = range(11)  # fmt: skip
N_POWER = 11

# next_decision's status
FOUND = 0  # a job awaits a decision, or the episode is over (job -1)
TOO_MANY_EVENTS = kernels.TOO_MANY_EVENTS  # a step had more power events than MAX_EVENTS
ADVANCE = 2  # nothing pending and max_advances spent: the caller advances (listeners, upsets)

#: the struct's fields, in make_state's order: tables shared by an epoch's simulators, the
#: episode's jobs, its state, the logs and the scalars
FIELDS = (
    "valid", "sunlit", "sunlit_fraction", "any_valid", "power",
    "reach_end", "next_reach", "t_s", "down_end", "next_down", "hops", "rates",
    "sat_hops_all", "isl_pairs", "isl_active",
    "surplus_w", "target_wh", "all_sats",
    "arrival_s", "deadline_s", "work_s", "checkpoint_s", "output_gb", "value", "kind", "input_gb",
    "log1p_value",
    "energy_wh", "safe", "slot_job", "slot_remaining_s", "queue", "proj_free_s",
    "state", "state_words", "present_s", "ready_s", "progress_s", "finish_s", "delivery_s", "target",
    "slot_of",
    "input_station", "input_sat", "placed_from",
    "generated", "used", "charged", "discharged", "curtailed",
    "ant_lo", "ant_hi", "ant_count", "radio_sat", "radio_start", "radio_end",
    "settled", "failed_job", "failed_share", "latency_s", "brownout_t", "upsets",
    "earliest_s", "open_", "dec_ready", "dec_start", "dec_finish", "dec_delivery", "dec_valid",
    "placement_sats", "graph_ptr", "graph_nbr", "graph_fill", "entry", "ints", "floats",
)  # fmt: skip
#: the fields :func:`advance` may replace by bigger arrays (:func:`grown_arrays` returns them)
GROWN = (
    "ant_lo", "ant_hi", "radio_sat", "radio_start", "radio_end", "failed_job", "failed_share", "brownout_t",
    "placement_sats",
)  # fmt: skip


@structref.register
class EpisodeStateType(kernels.Unliteral):
    pass


class EpisodeState(structref.StructRefProxy):
    """One episode's arrays and scalars for the compiled clock (fields: :data:`FIELDS`).

    Python reads the arrays through the simulator's own references to them, never through
    this proxy's attributes (each would compile a getter)."""


structref.define_proxy(EpisodeState, EpisodeStateType, list(FIELDS))


class PlainState:
    """:class:`EpisodeState` as a plain Python object (``NUMBA_DISABLE_JIT=1``)."""

    def __init__(self, **fields: np.ndarray) -> None:
        self.__dict__.update(fields)


@njit
def _make(*fields):
    return EpisodeState(*fields)


def make_state(**fields: np.ndarray):
    """An :class:`EpisodeState` of ``fields`` (every name of :data:`FIELDS`, by keyword)."""
    missing = set(FIELDS) - set(fields)
    if missing or len(fields) != len(FIELDS):
        raise TypeError(f"make_state needs exactly the fields {FIELDS}; missing {sorted(missing)}")
    if numba.config.DISABLE_JIT:
        return PlainState(**fields)
    return _make(*(fields[name] for name in FIELDS))


@njit
def grown_arrays(st):
    """The arrays :func:`advance` may have replaced, in :data:`GROWN` order."""
    return (
        st.ant_lo, st.ant_hi, st.radio_sat, st.radio_start, st.radio_end, st.failed_job,
        st.failed_share, st.brownout_t, st.placement_sats,
    )  # fmt: skip


@njit
def _tables(st):
    """The antenna schedule and contact tables as the compiled link searches take them."""
    return (
        st.ant_lo, st.ant_hi, st.ant_count, st.reach_end, st.next_reach, st.t_s, st.floats[DT_S],
        st.down_end, st.next_down, st.hops, st.rates,
    )  # fmt: skip


# -- logs that grow --------------------------------------------------------------------------------
@njit
def _grown(a: np.ndarray) -> np.ndarray:
    """A log (1-D, any dtype) with twice the capacity (at least one more entry)."""
    return np.concatenate((a, np.empty(max(a.shape[0], 1), dtype=a.dtype)))


@njit
def radio_window(st, sat: int, start_s: float, occupy_s: float) -> None:
    """Book the radio of ``sat`` for a transmission of ``occupy_s`` [s] from ``start_s`` [s]
    (it draws in the steps the transmission overlaps: :func:`kernels.radio_share`)."""
    if occupy_s > 0 and np.isfinite(start_s):
        i = st.ints[RADIO_COUNT]
        if i == st.radio_sat.shape[0]:  # full: double the capacity
            st.radio_sat = _grown(st.radio_sat)
            st.radio_start = _grown(st.radio_start)
            st.radio_end = _grown(st.radio_end)
            st.ints[GENERATION] += 1
        st.radio_sat[i], st.radio_start[i], st.radio_end[i] = sat, start_s, start_s + occupy_s
        st.ints[RADIO_COUNT] = i + 1


@njit
def book_transfer(st, down: bool, station: int, sat: int, ready_s: float, size_gb: float):
    """Book one ground transfer (``LinkModel.book_uplink`` / ``book_downlink`` on the struct's
    antenna schedule, grown when full): (arrival [s], start [s], occupancy [s]), ``(inf, inf,
    0)`` if it never happens."""
    found = _book_transfer(_tables(st), down, station, sat, ready_s, size_gb)
    arrival, start, occupy, station, antenna, booked = found
    if not np.isfinite(start):
        return np.inf, np.inf, 0.0
    if not booked:  # that antenna's schedule is full: double the capacity and book
        st.ant_lo, st.ant_hi = doubled(st.ant_lo), doubled(st.ant_hi)
        st.ints[GENERATION] += 1
        _insert(st.ant_lo, st.ant_hi, st.ant_count, station, antenna, start, start + occupy)
    return arrival, start, occupy


@njit
def _log_settled(st, jobs: np.ndarray, n: int) -> None:
    """Append the first ``n`` of ``jobs`` to the settled log (``Simulator.take_settled``)."""
    m = st.ints[N_SETTLED]
    for i in range(n):
        st.settled[m + i] = jobs[i]
    st.ints[N_SETTLED] = m + n


@njit
def _log_latency(st, job: int) -> None:
    m = st.ints[N_LATENCY]
    st.latency_s[m] = st.delivery_s[job] - st.arrival_s[job]
    st.ints[N_LATENCY] = m + 1


@njit
def _value_sum(st, jobs: np.ndarray, n: int, scratch: np.ndarray) -> float:
    """``value[jobs[:n]].sum()`` in numpy's order."""
    for i in range(n):
        scratch[i] = st.value[jobs[i]]
    return pairwise_sum(scratch, 0, n)


# -- queries ---------------------------------------------------------------------------------------
@njit
def unsettled_count(st) -> int:
    """Arrived jobs not settled yet (``Simulator.unsettled().size``)."""
    count = 0
    for j in range(st.ints[UNSETTLED_FROM], st.ints[NEXT_ARRIVAL]):
        s = st.state[j]
        if s >= PENDING and s < ON_TIME:
            count += 1
    return count


@njit
def is_done(st) -> bool:
    """``Simulator.done``."""
    if st.ints[OVER]:
        return True
    return st.ints[STEP] >= st.ints[N_STEPS] and unsettled_count(st) == 0


# -- the episode's end -----------------------------------------------------------------------------
@njit
def _expire(st, ids: np.ndarray, n: int, scratch: np.ndarray) -> None:
    """Settle jobs ``ids[:n]`` as expired (their deadline passed before delivery)."""
    for i in range(n):
        st.state[ids[i]] = EXPIRED
    st.ints[EXPIRED_C] += n
    st.floats[VALUE_EXPIRED] += _value_sum(st, ids, n, scratch)
    _log_settled(st, ids, n)


@njit
def end_episode(st) -> None:
    """``Simulator.end_episode``: every arrived job still unsettled expires; the queues empty."""
    lo, hi = st.ints[UNSETTLED_FROM], st.ints[NEXT_ARRIVAL]
    left = np.empty(max(hi - lo, 0), dtype=np.int64)
    n = 0
    for j in range(lo, hi):
        s = st.state[j]
        if s >= PENDING and s < ON_TIME:
            left[n] = j
            n += 1
    if n:
        running = np.empty(n, dtype=np.int64)
        r = 0
        for i in range(n):
            if st.state[left[i]] == RUNNING:
                running[r] = left[i]
                r += 1
        if r:
            kernels.free_slots(st.slot_job, st.slot_remaining_s, running[:r])
        _expire(st, left, n, np.empty(n))
        st.ints[SETTLED_AT_END] += n
    st.queue[:] = -1
    st.ints[OVER] = 1


# -- one step --------------------------------------------------------------------------------------
@njit
def advance(st) -> int:
    """Integrate the step [t, t + dt) and move to the next boundary (``Simulator.advance``).

    Returns:
        ``kernels.DONE``, or ``TOO_MANY_EVENTS`` (``ints[ERROR_STEP]`` says which step; the
        state is then not meaningful).
    """
    k = st.ints[STEP]
    dt = st.floats[DT_S]
    t0 = k * dt
    t1 = t0 + dt
    n_sats = st.energy_wh.shape[0]
    _release(st.ant_lo, st.ant_hi, st.ant_count, t0)
    # the radios' share of the step
    share = np.zeros(n_sats)
    n_radio = st.ints[RADIO_COUNT]
    if n_radio:
        st.ints[RADIO_COUNT] = kernels.radio_share(
            st.radio_sat[:n_radio], st.radio_start[:n_radio], st.radio_end[:n_radio], t0, t1, share
        )
    p = st.power
    radio_w = p[RADIO_W] * share
    alive = np.empty(n_sats, dtype=np.bool_)
    for n in range(n_sats):
        alive[n] = st.valid[k, n] and st.valid[k + 1, n]
    status, busy, fin_job, fin_sat, fin_t, brown_sat, brown_t, fail_job, fail_of, failures = kernels.run_step(
        t0, t1, dt, alive, st.sunlit[k], st.sunlit_fraction[k], radio_w,
        p[SOLAR_W], p[BUS_W], p[ACC_W], p[IDLE_W], int(p[N_ACC]), p[CAP_WH], p[CHARGE_EFF],
        p[DISCHARGE_EFF], p[RESERVE_WH], p[RECOVER_WH],
        st.energy_wh, st.safe, st.slot_job, st.slot_remaining_s, st.queue,
        st.ready_s, st.slot_of, st.deadline_s, st.work_s, st.progress_s, st.checkpoint_s,
        st.state, st.present_s, st.input_station, st.input_sat, st.target, st.finish_s,
        st.generated, st.used, st.charged, st.discharged, st.curtailed,
        (k + 1) * dt, st.floats[BUSY_SLOT_S], st.ints[MAX_EVENTS],
    )  # fmt: skip
    st.floats[BUSY_SLOT_S] = busy
    for i in range(fin_job.shape[0]):  # the downlinks of the jobs that finished
        job = fin_job[i]
        arrival, start, occupy = book_transfer(st, True, 0, fin_sat[i], fin_t[i], st.output_gb[job])
        radio_window(st, fin_sat[i], start, occupy)
        st.delivery_s[job] = arrival
    st.ints[JOB_FAILURES] += failures
    n_brown = brown_sat.shape[0]
    if n_brown:
        st.ints[BROWNOUTS] += n_brown
        m = st.ints[N_BROWNOUT_T]
        while m + n_brown > st.brownout_t.shape[0]:
            st.brownout_t = _grown(st.brownout_t)
            st.ints[GENERATION] += 1
        for i in range(n_brown):
            st.brownout_t[m + i] = brown_t[i]
        st.ints[N_BROWNOUT_T] = m + n_brown
        stopped = np.zeros(n_brown, dtype=np.int64)
        for i in range(fail_of.shape[0]):
            stopped[fail_of[i]] += 1
        for i in range(n_brown):
            if stopped[i] == 0:
                st.ints[BROWN_IDLE] += 1
        m = st.ints[N_FAILED]
        while m + fail_job.shape[0] > st.failed_job.shape[0]:
            st.failed_job = _grown(st.failed_job)
            st.failed_share = _grown(st.failed_share)
            st.ints[GENERATION] += 1
        for i in range(fail_job.shape[0]):
            st.failed_job[m + i] = fail_job[i]
            st.failed_share[m + i] = 1.0 / stopped[fail_of[i]]
        st.ints[N_FAILED] = m + fail_job.shape[0]
    if status != kernels.DONE:
        st.ints[ERROR_STEP] = k
        return status
    st.ints[STEP] = k + 1
    _end_of_step(st, k, t1)
    if st.ints[STEP] >= st.ints[MAX_STEPS] or not st.any_valid[st.ints[STEP]]:
        end_episode(st)
    kernels.project_free(
        st.ints[STEP] * dt, st.slot_job, st.slot_remaining_s, st.queue, st.slot_of, st.ready_s,
        st.work_s, st.progress_s, st.proj_free_s,
    )  # fmt: skip
    return kernels.DONE


@njit
def _end_of_step(st, k: int, t1: float) -> None:
    """The end of step ``k`` at ``t1`` [s]: satellites lost, radiation upsets, settlement, arrivals."""
    n_sats, n_slots = st.slot_job.shape
    n_queue = st.queue.shape[1]
    # satellites that stopped propagating lose their running and queued work
    for n in range(n_sats):
        if not (st.valid[k, n] and not st.valid[k + 1, n]):
            continue
        for a in range(n_slots):  # running: back to pending at the last checkpoint, data here
            job = st.slot_job[n, a]
            if job >= 0:
                done = st.work_s[job] - st.slot_remaining_s[n, a]
                st.progress_s[job] = _checkpointed(done, st.checkpoint_s[job], st.work_s[job])
                st.state[job] = PENDING
                st.present_s[job] = t1
                st.input_station[job] = -1
                st.input_sat[job] = n
                st.target[job] = -1
                st.ints[JOB_FAILURES] += 1
            st.slot_job[n, a] = -1
            st.slot_remaining_s[n, a] = 0.0
    for n in range(n_sats):  # queued: an input that had arrived is lost with the satellite
        if not (st.valid[k, n] and not st.valid[k + 1, n]):
            continue
        for q in range(n_queue):
            job = st.queue[n, q]
            if job < 0:
                continue
            st.state[job] = PENDING
            st.present_s[job] = t1
            if st.ready_s[job] <= t1:
                st.input_station[job] = -1
                st.input_sat[job] = st.target[job]
            else:
                st.input_station[job] = st.placed_from[job, 0]
                st.input_sat[job] = st.placed_from[job, 1]
            st.target[job] = -1
            st.queue[n, q] = -1
            st.ints[JOB_FAILURES] += 1
    # radiation upsets (drawn by the caller into st.upsets): running jobs restart from their
    # last checkpoint, in place
    if st.ints[SEU_ON]:
        for n in range(n_sats):
            st.ints[SEU_EVENTS] += st.upsets[n]
            if st.upsets[n] <= 0:
                continue
            for a in range(n_slots):
                job = st.slot_job[n, a]
                if job >= 0:
                    done = st.work_s[job] - st.slot_remaining_s[n, a]
                    st.slot_remaining_s[n, a] = st.work_s[job] - _checkpointed(
                        done, st.checkpoint_s[job], st.work_s[job]
                    )
    # deliveries that landed, outputs landing after a deadline that has come, work whose
    # deadline has come
    landed, landing_late, expired = kernels.settlement_scan(
        st.state,
        st.state_words,
        st.delivery_s,
        st.deadline_s,
        t1,
        st.ints[UNSETTLED_FROM],
        st.ints[NEXT_ARRIVAL],
    )
    n_landed, n_late, n_expired = landed.shape[0], landing_late.shape[0], expired.shape[0]
    scratch = np.empty(max(n_landed, n_late, n_expired))
    if n_landed:
        on_time = np.empty(n_landed, dtype=np.int64)
        late = np.empty(n_landed, dtype=np.int64)
        n_on = n_off = 0
        for i in range(n_landed):
            job = landed[i]
            if st.delivery_s[job] <= st.deadline_s[job]:
                st.state[job] = ON_TIME
                on_time[n_on] = job
                n_on += 1
            else:
                st.state[job] = LATE
                late[n_off] = job
                n_off += 1
        st.ints[ON_TIME_C] += n_on
        st.ints[LATE_C] += n_off
        st.floats[VALUE_ON_TIME] += _value_sum(st, on_time, n_on, scratch)
        st.floats[VALUE_LATE] += _value_sum(st, late, n_off, scratch)
        _log_settled(st, landed, n_landed)
        for i in range(n_landed):
            _log_latency(st, landed[i])
    if n_late:
        for i in range(n_late):
            st.state[landing_late[i]] = LATE
        st.ints[LATE_C] += n_late
        st.floats[VALUE_LATE] += _value_sum(st, landing_late, n_late, scratch)
        _log_settled(st, landing_late, n_late)
        for i in range(n_late):
            if np.isfinite(st.delivery_s[landing_late[i]]):
                _log_latency(st, landing_late[i])
    if n_expired:
        queued = np.empty(n_expired, dtype=np.int64)
        running = np.empty(n_expired, dtype=np.int64)
        n_q = n_r = 0
        for i in range(n_expired):
            s = st.state[expired[i]]
            if s == QUEUED:
                queued[n_q] = expired[i]
                n_q += 1
            elif s == RUNNING:
                running[n_r] = expired[i]
                n_r += 1
        if n_q:
            kernels.drop_queued(st.queue, st.target, queued[:n_q])
        if n_r:
            kernels.free_slots(st.slot_job, st.slot_remaining_s, running[:n_r])
        _expire(st, expired, n_expired, scratch)
    # arrivals during the step are presented at this boundary (none at or after the horizon)
    first = st.ints[NEXT_ARRIVAL]
    limit = min(t1, st.floats[HORIZON_S])
    lo, hi = 0, st.arrival_s.shape[0]  # np.searchsorted(arrival_s, limit, side="left")
    while lo < hi:
        mid = (lo + hi) // 2
        if st.arrival_s[mid] < limit:
            lo = mid + 1
        else:
            hi = mid
    last = lo
    if last > first:
        for j in range(first, last):
            st.state[j] = PENDING
            st.present_s[j] = t1
        st.ints[ARRIVED] += last - first
        st.floats[VALUE_ARRIVED] += pairwise_sum(st.value, first, last - first)
        st.ints[NEXT_ARRIVAL] = last


# -- to the next decision --------------------------------------------------------------------------
@njit
def max_advances(st) -> int:
    """Clock steps a compiled call may take: none where Python acts between steps
    (``ints[PYTHON_STEPS]``: listeners to call, radiation upsets to draw), else as many as the
    episode has."""
    return 0 if st.ints[PYTHON_STEPS] else st.ints[MAX_STEPS] + 1


@njit
def next_decision(st, max_advances: int):
    """Advance until a job awaits a decision or the episode ends (the env's ``_next_decision``):
    ends the episode when no satellite is left; at most ``max_advances`` steps.

    Returns:
        (job, pending jobs, status): the first pending job in presentation order (−1 when the
        episode is over) and how many are pending, also kept in ``ints[PENDING_JOB]`` and
        ``ints[PENDING_COUNT]``; status ``FOUND``, ``ADVANCE`` (nothing pending after
        ``max_advances`` steps) or ``TOO_MANY_EVENTS``.
    """
    job, count, status = _next_decision(st, max_advances)
    st.ints[PENDING_JOB], st.ints[PENDING_COUNT] = job, count
    return job, count, status


@njit
def _next_decision(st, max_advances: int):
    advances = 0
    while True:
        if not is_done(st) and not st.any_valid[st.ints[STEP]]:
            end_episode(st)  # no satellite left: whatever is unsettled expires now
        if is_done(st):
            return -1, 0, FOUND
        first, count, lo = kernels.first_pending(
            st.state, st.state_words, st.present_s, st.arrival_s,
            st.ints[STEP] * st.floats[DT_S] + kernels.EPS_S, st.ints[UNSETTLED_FROM], st.ints[NEXT_ARRIVAL],
        )  # fmt: skip
        st.ints[UNSETTLED_FROM] = lo
        if count:
            return first, count, FOUND
        if advances >= max_advances:
            return -1, 0, ADVANCE
        status = advance(st)
        if status != kernels.DONE:
            return -1, 0, status
        advances += 1


# -- the decision ----------------------------------------------------------------------------------
@njit
def decision_terms(st) -> None:
    """Refresh ``earliest_s`` and ``open_`` (:func:`kernels.decision_terms`) if the clock moved or
    a job was placed since they were computed."""
    k, placed = st.ints[STEP], st.ints[PLACEMENTS]
    if st.ints[TERMS_STEP] == k and st.ints[TERMS_PLACEMENTS] == placed:
        return
    kernels.decision_terms(
        st.energy_wh, st.safe, st.proj_free_s, st.queue, st.valid[k], k * st.floats[DT_S],
        st.ints[MAX_QUEUE], st.surplus_w, st.floats[CHARGE_EFF_F], st.target_wh, st.earliest_s, st.open_,
    )  # fmt: skip
    st.ints[TERMS_STEP], st.ints[TERMS_PLACEMENTS] = k, placed


@njit
def decision(st, job: int, hops: np.ndarray) -> None:
    """``Simulator.decision`` of ``job`` into ``dec_ready``, ``dec_start``, ``dec_finish``,
    ``dec_delivery`` (float[N], [s]) and ``dec_valid`` (bool[N]); ``hops``: int16[N] its entry
    hops (``Simulator.entry_hops``). The buffers' job, step and placements go to ``ints[DEC_JOB]``,
    ``ints[DEC_STEP]`` and ``ints[DEC_PLACEMENTS]`` (:func:`decided`)."""
    decision_terms(st)
    k = st.ints[STEP]
    st.ints[DEC_JOB], st.ints[DEC_STEP], st.ints[DEC_PLACEMENTS] = job, k, st.ints[PLACEMENTS]
    input_gb = st.input_gb[job]
    _decision_estimate(
        _tables(st), st.input_station[job], hops, k * st.floats[DT_S], input_gb,
        input_gb * GBIT_PER_GB / st.rates[1], st.earliest_s, st.open_, st.valid[k], st.deadline_s[job],
        st.work_s[job] - st.progress_s[job], st.output_gb[job], st.all_sats,
        st.dec_ready, st.dec_start, st.dec_finish, st.dec_delivery, st.dec_valid,
    )  # fmt: skip


@njit
def _active_graph(pairs, active, ptr, nbr, fill) -> None:
    """The undirected graph of the active ISL ``pairs`` (int[P, 2]; ``active``: bool[P]) in CSR
    form: ``ptr`` int64[N + 1], ``nbr`` int64[2P] (``fill``: int64[N] scratch)."""
    n = fill.shape[0]
    ptr[:] = 0
    for p in range(pairs.shape[0]):
        if active[p]:
            ptr[pairs[p, 0] + 1] += 1
            ptr[pairs[p, 1] + 1] += 1
    for i in range(n):
        ptr[i + 1] += ptr[i]
        fill[i] = ptr[i]
    for p in range(pairs.shape[0]):
        if active[p]:
            a, b = pairs[p, 0], pairs[p, 1]
            nbr[fill[a]] = b
            fill[a] += 1
            nbr[fill[b]] = a
            fill[b] += 1


@njit
def entry_hops(st, job: int) -> np.ndarray:
    """int16[N] ISL hops from where ``job``'s input is now to every satellite (−1 unreachable;
    ``Simulator.entry_hops``): from its origin station at this sample for ground input (0 = in
    direct view), else from the satellite holding it, by the geometry's all-pairs table where it
    has one, else by a breadth-first search over the sample's active ISLs (the graph kept until
    the clock moves). A view: the next call may overwrite it."""
    k = st.ints[STEP]
    station = st.input_station[job]
    if station >= 0:
        return st.hops[k, station]
    src = st.input_sat[job]
    if st.valid[k, src] and st.sat_hops_all.shape[0] > 0:
        return st.sat_hops_all[k, src]
    out = st.entry
    out[:] = -1
    if st.valid[k, src]:
        if st.ints[GRAPH_STEP] != k:
            _active_graph(st.isl_pairs, st.isl_active[k], st.graph_ptr, st.graph_nbr, st.graph_fill)
            st.ints[GRAPH_STEP] = k
        _bfs_hops(st.graph_ptr, st.graph_nbr, src, out)
    return out


@njit
def decided(st, job: int) -> bool:
    """Whether the decision buffers hold ``job``'s decision in the current state (no step, no
    placement since :func:`decision` filled them)."""
    ints = st.ints
    return ints[DEC_JOB] == job and ints[DEC_STEP] == ints[STEP] and ints[DEC_PLACEMENTS] == ints[PLACEMENTS]


@njit
def place(st, job: int, sat: int, inorbit_ready_s: float) -> float:
    """Place ``job`` on ``sat`` (``Simulator.place``, its checks done): book the input's uplink
    (ground data) or the ISL transfer's radio time (data on another satellite, arriving at
    ``inorbit_ready_s`` [s]), then queue it (:func:`kernels.queue_job`). Returns the input's
    arrival at ``sat`` [s]."""
    now = st.ints[STEP] * st.floats[DT_S]
    input_gb = st.input_gb[job]
    if st.input_station[job] >= 0:
        ready, start, occupy = book_transfer(st, False, st.input_station[job], sat, now, input_gb)
        radio_window(st, sat, start, occupy)
    else:
        ready = inorbit_ready_s
        if st.input_sat[job] != sat:
            radio_window(st, sat, now, input_gb * GBIT_PER_GB / st.rates[1])
    # queued; the input now travels to / lives on sat, where it was stays on record (in case
    # sat is lost first), and the slot of sat that frees first is reserved for it
    kernels.queue_job(
        job, sat, ready, st.queue, st.state, st.target, st.ready_s, st.placed_from, st.input_station,
        st.input_sat, st.proj_free_s, st.slot_of, st.work_s, st.progress_s,
    )  # fmt: skip
    placed = st.ints[PLACEMENTS]
    if placed == st.placement_sats.shape[0]:  # the placements' log is full: double it
        st.placement_sats = _grown(st.placement_sats)
        st.ints[GENERATION] += 1
    st.placement_sats[placed] = sat
    st.ints[PLACEMENTS] = placed + 1
    st.ints[DECISIONS] += 1
    return ready


@njit
def defer(st, job: int, defer_s: float) -> None:
    """Present ``job`` again ``defer_s`` [s] from now (``Simulator.defer``, its checks done)."""
    st.present_s[job] = st.ints[STEP] * st.floats[DT_S] + defer_s
    st.ints[DECISIONS] += 1


@njit
def reject(st, job: int) -> None:
    """Refuse ``job`` for good (``Simulator.reject``, its checks done): settled now."""
    st.state[job] = REJECTED
    st.ints[REJECTED_C] += 1
    st.floats[VALUE_REJECTED] += st.value[job]
    st.ints[DECISIONS] += 1
    n = st.ints[N_SETTLED]
    st.settled[n] = job
    st.ints[N_SETTLED] = n + 1


@njit
def act(st, job: int, action: int, inorbit_ready_s: float, defer_s: float, max_advances: int):
    """Decide ``job`` (pending, ``action`` valid for it: a satellite to place it on, ``DEFER``
    or ``REJECT``) and go on to the next decision (:func:`next_decision`'s result), in one call."""
    if action >= 0:
        place(st, job, action, inorbit_ready_s)
    elif action == DEFER:
        defer(st, job, defer_s)
    else:
        reject(st, job)
    return next_decision(st, max_advances)
