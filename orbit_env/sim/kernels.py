"""Compiled kernels of the event loop (numba ``njit``; issue 19).

:func:`run_step` integrates one simulator step exactly (``clock.advance`` calls it):
per satellite, power is piecewise constant between events, and every event (terminator
crossing, a job starting or finishing, the battery filling, emptying or crossing the reserve
or recovery charge, an input arriving) ends a segment. It is the same algorithm as the numpy
code it replaced, operation for operation, so the results are bit-identical (pinned by
``tests/test_pinned.py``): the loops run over satellites where numpy ran over arrays, and sums
that numpy took pairwise are taken pairwise (:func:`pairwise_sum`).

What needs the rest of the simulator is handed back instead of done here: a finished job's
downlink booking (``fin_*`` buffers, in event order; bookings made during a step only draw
radio power from the next step on, so booking them after the kernel changes nothing) and the
brownout counters (``brown_*``).

``NUMBA_DISABLE_JIT=1`` runs these functions as plain Python (slow; for debugging and
coverage). Compiled code is cached beside this file (``__pycache__``) or, where that folder
is read-only, in numba's user-wide cache folder (``NUMBA_CACHE_DIR`` chooses another); where
no folder is writable, each process compiles them again (a few seconds) after one warning.
"""

from __future__ import annotations

import warnings

import numba
import numpy as np
from numba.core import types

EPS_S = 1e-9
EPS_WH = 1e-9
WH_PER_WS = 1.0 / 3600.0
# job states (orbit_env.sim.simulator.JobState)
PENDING = 1
QUEUED = 2
RUNNING = 3
DOWNLINK = 4
SETTLED_FROM = 5  # ON_TIME, LATE, EXPIRED, REJECTED: final
_cache_warned = False


def njit(fn):
    """``numba.njit(cache=True)``, or without the cache (and one warning) where none can be written."""
    global _cache_warned
    try:
        return numba.njit(cache=True, error_model="numpy")(fn)
    except RuntimeError as err:  # numba found no writable cache folder
        if not _cache_warned:
            warnings.warn(
                f"orbit_env: numba cannot cache the compiled simulation step ({err}); each process "
                "compiles it again. Set NUMBA_CACHE_DIR to a writable folder to keep it.",
                RuntimeWarning,
                stacklevel=2,
            )
            _cache_warned = True
        return numba.njit(error_model="numpy")(fn)


class Unliteral(types.StructRef):
    """A ``structref`` type whose fields keep their values' plain types (no literal ints), the
    base of the compiled states (``clock.EpisodeStateType``, ``features.FeatureStateType``)."""

    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


# run_step's status
DONE = 0
TOO_MANY_EVENTS = 1


@njit
def _block_sum(a: np.ndarray, lo: int, n: int) -> float:
    """numpy's pairwise sum of a block of at most 128 entries: 8 running sums, then the rest."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    stop = n - n % 8
    while i < stop:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit
def pairwise_sum(a: np.ndarray, lo: int, n: int) -> float:
    """Sum of ``a[lo : lo + n]`` in numpy's pairwise order (``np.add.reduce`` on a contiguous
    float64 array), so the rounding is numpy's to the last bit.

    numpy halves a range of more than 128 entries (at a multiple of 8) and adds the two sums;
    this walks the same tree with an explicit stack (numba's cache mishandles recursion).
    """
    if n <= 128:
        return _block_sum(a, lo, n)
    depth = 64  # halving: enough for any length
    los = np.empty(depth, dtype=np.int64)
    lens = np.empty(depth, dtype=np.int64)
    phase = np.zeros(depth, dtype=np.int64)
    values = np.empty(depth + 1)
    los[0], lens[0], top, n_values = lo, n, 1, 0
    while top > 0:
        f = top - 1
        m = lens[f]
        if m <= 128:
            values[n_values] = _block_sum(a, los[f], m)
            n_values += 1
            top -= 1
            continue
        half = m // 2
        half -= half % 8
        if phase[f] == 0:  # the left half first
            phase[f] = 1
            los[top], lens[top], phase[top] = los[f], half, 0
            top += 1
        elif phase[f] == 1:  # then the right half
            phase[f] = 2
            los[top], lens[top], phase[top] = los[f] + half, m - half, 0
            top += 1
        else:  # both done: left + right
            values[n_values - 2] = values[n_values - 2] + values[n_values - 1]
            n_values -= 1
            top -= 1
    return values[0]


@njit
def committed_work(
    slot_remaining_s: np.ndarray,
    queue: np.ndarray,
    work_s: np.ndarray,
    progress_s: np.ndarray,
    out: np.ndarray,
    scratch: np.ndarray,
    rows: np.ndarray,
) -> None:
    """``out[i]`` for each satellite i in ``rows``: work still to run on it, running and queued
    [slot-s] (``Simulator.committed_s``); each part summed in numpy's order. ``scratch``:
    float[Q]."""
    n_slots, depth = slot_remaining_s.shape[1], queue.shape[1]
    for i in rows:
        for q in range(depth):
            j = queue[i, q]
            scratch[q] = work_s[j] - progress_s[j] if j >= 0 else 0.0
        out[i] = pairwise_sum(slot_remaining_s[i], 0, n_slots) + pairwise_sum(scratch, 0, depth)


@njit
def decision_terms(
    energy_wh,
    safe,
    proj_free_s,
    queue,
    valid_now,
    now_s,
    max_queue,
    surplus_w,
    charge_eff,
    target_wh,
    out_start,
    out_open,
) -> None:
    """Per satellite, what every decision until the state changes shares: the earliest time
    it could start a new job [s] (a slot free, and its charge forecast back at the reserve, or
    at the recovery charge in safe mode, from its mean surplus) and whether it takes one now
    (propagating, not in safe mode, queue not full).

    Args:
        surplus_w: float[2, N] mean surplus over the episode [W] with idle slots (row 0) and
            in safe mode (row 1); the surplus after charging losses is computed in its dtype.
        target_wh: (reserve, recovery) charge [Wh].
    """
    charge_eff = surplus_w.dtype.type(charge_eff)
    tiny = surplus_w.dtype.type(1e-12)
    for i in range(energy_wh.shape[0]):
        mode = 1 if safe[i] else 0
        need = max(target_wh[mode] - energy_wh[i], 0.0)
        surplus = surplus_w[mode, i] * charge_eff  # in surplus_w's precision (float32 from the geometry)
        if need > 0:
            eta = need * 3600.0 / max(surplus, tiny) if surplus > 0 else np.inf
        else:
            eta = 0.0
        free = proj_free_s[i, 0]
        for slot in range(1, proj_free_s.shape[1]):
            free = min(free, proj_free_s[i, slot])
        out_start[i] = max(free, now_s + eta)
        queued = 0
        for q in range(queue.shape[1]):
            queued += queue[i, q] >= 0
        out_open[i] = valid_now[i] and not safe[i] and queued < max_queue


@njit
def project_free(
    now_s, slot_job, slot_remaining_s, queue, slot_of, ready_s, work_s, progress_s, free
) -> None:
    """``free[i, s]``: projected free time of each slot [s] (``Simulator._project_free``): its
    running work, then each queued job reserved on it in queue order, from its input's arrival."""
    n, n_slots = slot_job.shape
    for i in range(n):
        for s in range(n_slots):
            free[i, s] = now_s + slot_remaining_s[i, s] if slot_job[i, s] >= 0 else now_s
    for q in range(queue.shape[1]):  # queue positions, every satellite at each
        queued = False
        for i in range(n):
            j = queue[i, q]
            if j < 0:
                continue
            queued = True
            slot = slot_of[j]
            begin = max(free[i, slot], ready_s[j])
            free[i, slot] = begin + work_s[j] - progress_s[j]
        if not queued:
            break


@njit
def drop_queued(queue, target, jobs) -> None:
    """Take the queued ``jobs`` (int[K]) out of their targets' queues (int[N, Q], −1 empty),
    closing the gaps in FIFO order."""
    for j in jobs:
        row = target[j]
        w = 0
        for q in range(queue.shape[1]):
            x = queue[row, q]
            if x >= 0 and x != j:
                queue[row, w] = x
                w += 1
        for q in range(w, queue.shape[1]):
            queue[row, q] = -1


@njit
def free_slots(slot_job, slot_remaining_s, running) -> None:
    """Stop the running jobs ``running`` (int[K]): free their slots (``slot_job`` int[N, A] −1,
    ``slot_remaining_s`` 0)."""
    for n in range(slot_job.shape[0]):
        for a in range(slot_job.shape[1]):
            x = slot_job[n, a]
            if x >= 0:
                for j in running:
                    if x == j:
                        slot_job[n, a] = -1
                        slot_remaining_s[n, a] = 0.0
                        break


@njit
def pending_jobs(
    state: np.ndarray, present_s: np.ndarray, arrival_s: np.ndarray, limit_s: float, lo: int, hi: int
) -> tuple[np.ndarray, int]:
    """int64[P]: the pending jobs presented by ``limit_s`` [s], by presentation time, then
    arrival, then id (``Simulator.pending``); and the new ``lo``.

    Only jobs ``lo <= j < hi`` can be pending: the caller keeps ``hi`` past the last arrived job
    and ``lo`` at or below the first job not yet settled (settled states are final), which this
    call moves up past the settled jobs it finds at the front.
    """
    while lo < hi and state[lo] >= SETTLED_FROM:
        lo += 1
    found = np.empty(hi - lo, dtype=np.int64)
    count = 0
    for j in range(lo, hi):
        if state[j] == PENDING and present_s[j] <= limit_s:
            found[count] = j
            count += 1
    ids = found[:count].copy()
    for a in range(1, count):  # insertion sort: few jobs are pending at once
        x = ids[a]
        b = a
        while b > 0:
            y = ids[b - 1]
            if _presented_before(present_s, arrival_s, y, x):
                break
            ids[b] = y
            b -= 1
        ids[b] = x
    return ids, lo


_BYTES_1 = np.uint64(0x0101010101010101)
_BYTES_80 = np.uint64(0x8080808080808080)


@njit
def first_pending(
    state: np.ndarray,
    state_words: np.ndarray,
    present_s: np.ndarray,
    arrival_s: np.ndarray,
    limit_s: float,
    lo: int,
    hi: int,
) -> tuple[int, int, int]:
    """:func:`pending_jobs`' first job (−1: none) and how many there are, without the list:
    (first, count, the new ``lo``). ``state_words``: ``state``'s bytes as uint64[ceil(J / 8)]
    (the same memory, padded): the scan passes over 8 jobs at a time where none is pending."""
    while lo < hi and state[lo] >= SETTLED_FROM:
        lo += 1
    first, count = -1, 0
    j = lo
    while j < hi:
        if j % 8 == 0 and j + 8 <= hi:
            x = state_words[j // 8] ^ (_BYTES_1 * np.uint64(PENDING))  # a pending job's byte: 0
            if ((x - _BYTES_1) & ~x & _BYTES_80) == np.uint64(0):  # no zero byte: none pending
                j += 8
                continue
        if state[j] == PENDING and present_s[j] <= limit_s:
            if count == 0 or _presented_before(present_s, arrival_s, j, first):
                first = j
            count += 1
        j += 1
    return first, count, lo


@njit
def _presented_before(present_s: np.ndarray, arrival_s: np.ndarray, a: int, b: int) -> bool:
    """Whether job ``a`` comes before job ``b`` in presentation order: presentation time, then
    arrival, then id."""
    return present_s[a] < present_s[b] or (
        present_s[a] == present_s[b]
        and (arrival_s[a] < arrival_s[b] or (arrival_s[a] == arrival_s[b] and a < b))
    )


@njit
def radio_share(sat, undrawn_s, end_s, t0_s, t1_s, share) -> int:
    """``share`` (float[N], zeros): each satellite's share of the step [t0, t1) spent
    transmitting, at most 1, from transmissions ``i`` on ``sat[i]`` with their part from
    ``undrawn_s[i]`` to ``end_s[i]`` not yet drawn (``clock.advance``). The ones still
    going at ``t1`` are moved to the front, their undrawn part now from ``t1``; returns their
    count."""
    for i in range(sat.shape[0]):
        share[sat[i]] += max(min(end_s[i], t1_s) - undrawn_s[i], 0.0)
    kept = 0
    for i in range(sat.shape[0]):
        if end_s[i] > t1_s:
            sat[kept], undrawn_s[kept], end_s[kept] = sat[i], max(undrawn_s[i], t1_s), end_s[i]
            kept += 1
    span = t1_s - t0_s
    for s in range(share.shape[0]):
        share[s] = min(share[s] / span, 1.0)
    return kept


@njit
def settlement_scan(state, state_words, delivery_s, deadline_s, t1_s, lo, hi):
    """The jobs a step ending at ``t1_s`` settles (``clock._end_of_step``), each int64[K]
    in id order: outputs that landed (downlinking, delivered before ``t1_s``), outputs booked
    to land after a deadline that has come (downlinking, not landed), and pending, queued or
    running jobs whose deadline has come (to expire). Only jobs ``lo <= j < hi`` are looked at:
    the caller's bounds on the unsettled ones (as for :func:`pending_jobs`); ``state_words`` as
    for :func:`first_pending` (eight settled jobs at a time are passed over)."""
    n = hi - lo
    landed = np.empty(n, dtype=np.int64)
    late = np.empty(n, dtype=np.int64)
    expired = np.empty(n, dtype=np.int64)
    n_landed = n_late = n_expired = 0
    settled_top = _BYTES_1 * np.uint64(0x80 - SETTLED_FROM)  # + a settled byte (5..8): top bit set
    j = lo
    while j < hi:
        if j % 8 == 0 and j + 8 <= hi and ((state_words[j // 8] + settled_top) & _BYTES_80) == _BYTES_80:
            j += 8  # eight settled jobs
            continue
        s = state[j]
        if s == DOWNLINK:
            if delivery_s[j] < t1_s:
                landed[n_landed] = j
                n_landed += 1
            elif deadline_s[j] <= t1_s and delivery_s[j] > deadline_s[j]:
                late[n_late] = j
                n_late += 1
        elif (s == PENDING or s == QUEUED or s == RUNNING) and deadline_s[j] <= t1_s:
            expired[n_expired] = j
            n_expired += 1
        j += 1
    return landed[:n_landed].copy(), late[:n_late].copy(), expired[:n_expired].copy()


@njit
def queue_job(
    job,
    sat,
    ready_s_job,
    queue,
    state,
    target,
    ready_s,
    placed_from,
    input_station,
    input_sat,
    proj_free_s,
    slot_of,
    work_s,
    progress_s,
) -> None:
    """Queue ``job`` on ``sat`` with its input there at ``ready_s_job`` [s] (``Simulator.place``
    after the input's booking): the first free queue position, the job's state and target, where
    its input was (kept in case ``sat`` is lost first) and now is, and the slot of ``sat`` that
    frees first reserved for it, as ``Simulator._project_free`` projects the queues."""
    q = 0
    while queue[sat, q] >= 0:
        q += 1
    queue[sat, q] = job
    state[job] = QUEUED
    target[job] = sat
    ready_s[job] = ready_s_job
    placed_from[job, 0], placed_from[job, 1] = input_station[job], input_sat[job]
    input_station[job], input_sat[job] = -1, sat
    slot = 0
    for s in range(1, proj_free_s.shape[1]):
        if proj_free_s[sat, s] < proj_free_s[sat, slot]:
            slot = s
    slot_of[job] = slot
    begin = max(proj_free_s[sat, slot], ready_s[job])
    proj_free_s[sat, slot] = begin + work_s[job] - progress_s[job]


@njit
def load_w(
    busy: int, safe: bool, radio_w: float, bus_w: float, acc_w: float, idle_w: float, n_acc: int
) -> float:
    """Electrical load [W] of one satellite with ``busy`` of its ``n_acc`` accelerators working.

    In safe mode the accelerators are off and the bus runs, and a booked transfer still
    transmits, so its radio (``radio_w``, the step's average) still draws.
    """
    compute = busy * acc_w + (n_acc - busy) * idle_w
    return bus_w + radio_w + (0.0 if safe else compute)


@njit
def _checkpointed(done_s: float, checkpoint_s: float, work_s: float) -> float:
    """Work kept at the last checkpoint [s] after ``done_s`` of work (0 without checkpoints)."""
    kept = np.floor(done_s / checkpoint_s) * checkpoint_s if checkpoint_s > 0 else 0.0
    return min(max(kept, 0.0), work_s)


@njit
def run_step(
    t0, t1, dt_s, alive, sunlit, sunlit_fraction, radio_w,
    solar_w, bus_w, acc_w, idle_w, n_acc, cap_wh, charge_eff, discharge_eff, reserve_wh, recover_wh,
    energy_wh, safe, slot_job, slot_rem, queue,
    ready_s, slot_of, deadline_s, work_s, progress_s, checkpoint_s,
    state, present_s, input_station, input_sat, target, finish_s,
    generated_l, used_l, charged_l, discharged_l, curtailed_l,
    brownout_present_s, busy_slot_s, max_events,
):  # fmt: skip
    """Integrate the step [t0, t1) in place: the state arrays, the job arrays and the ledger.

    ``sunlit`` and ``sunlit_fraction`` are the geometry's rows at the step (sunlit at its start,
    the sunlit share of it; ``t1 = t0 + dt_s``): one terminator crossing at most, so each
    satellite is sunlit over one interval [a, b) of the step.

    Shapes: per satellite ``[N]`` (``slot_job``, ``slot_rem`` ``[N, A]``, ``queue`` ``[N, Q]``),
    per job ``[J]``. Times [s since epoch], energies [Wh], powers [W]; ``busy_slot_s`` is the
    episode's counter so far, ``brownout_present_s`` when a job failed by a brownout is
    presented again (the next step boundary).

    Returns:
        ``(status, busy_slot_s, fin_job, fin_sat, fin_t, brown_sat, brown_t, fail_job, fail_of,
        job_failures)``: ``DONE`` or ``TOO_MANY_EVENTS``; the counter with this step added; the
        jobs that finished (job id, satellite, time) and the brownouts (satellite, time), in
        event order; the jobs each brownout stopped (job id, index of its brownout in
        ``brown_sat``); how many running jobs went back to pending.
    """
    n_sats, n_slots = slot_job.shape
    n_queue = queue.shape[1]
    sun_a = np.empty(n_sats)
    sun_b = np.empty(n_sats)
    for n in range(n_sats):
        lit_len = np.float64(sunlit_fraction[n]) * dt_s
        sun_a[n] = t0 if sunlit[n] else t1 - lit_len  # t1 = t0 + dt_s
        sun_b[n] = sun_a[n] + lit_len
    tau = np.empty(n_sats)
    for n in range(n_sats):
        tau[n] = t0 if alive[n] else t1
    fin_job = np.empty(state.shape[0], dtype=np.int64)  # a job finishes at most once
    fin_sat = np.empty(state.shape[0], dtype=np.int64)
    fin_t = np.empty(state.shape[0])
    brown_sat = np.empty(max(n_sats, 1), dtype=np.int64)
    brown_t = np.empty(max(n_sats, 1))
    fail_job = np.empty(max(n_sats * n_slots, 1), dtype=np.int64)
    fail_of = np.empty(max(n_sats * n_slots, 1), dtype=np.int64)
    n_fin = 0
    n_brown = 0
    failures = 0
    nxt = np.empty(n_sats)
    progress = np.empty(n_sats * n_slots)
    started = np.zeros((n_sats, n_queue), dtype=np.bool_)
    # A satellite at the step's end whose events changed nothing is done for the step: its events
    # depend on its own state alone, so passing it again would change nothing either.
    quiet = np.zeros(n_sats, dtype=np.bool_)
    changed = np.zeros(n_sats, dtype=np.bool_)
    for _ in range(max_events):
        # -- the events at each satellite's tau --
        # 1. finished jobs free their slots; their downlinks are booked after the kernel
        for n in range(n_sats):
            if quiet[n]:
                continue
            for a in range(n_slots):
                job = slot_job[n, a]
                if job >= 0 and slot_rem[n, a] <= EPS_S:
                    progress_s[job] = work_s[job]
                    finish_s[job] = tau[n]
                    state[job] = DOWNLINK
                    fin_job[n_fin] = job
                    fin_sat[n_fin] = n
                    fin_t[n_fin] = tau[n]
                    n_fin += 1
                    slot_job[n, a] = -1
                    slot_rem[n, a] = 0.0
                    changed[n] = True
        # 2. recovery from safe mode
        for n in range(n_sats):
            if safe[n] and energy_wh[n] >= recover_wh - EPS_WH and not quiet[n]:
                safe[n] = False
                changed[n] = True
        # 3. starts, FIFO: on every free slot, the first job reserved for it whose input has arrived
        for n in range(n_sats):
            if quiet[n] or not (alive[n] and not safe[n] and energy_wh[n] >= reserve_wh - EPS_WH):
                continue
            any_started = False
            for a in range(n_slots):
                if slot_job[n, a] >= 0:
                    continue
                for q in range(n_queue):
                    job = queue[n, q]
                    if job >= 0 and deadline_s[job] > tau[n] and slot_of[job] == a:
                        if ready_s[job] <= tau[n] + EPS_S:
                            slot_job[n, a] = job
                            slot_rem[n, a] = work_s[job] - progress_s[job]
                            started[n, q] = True
                            any_started = True
                        break
            if any_started:
                changed[n] = True
                kept = 0
                for q in range(n_queue):
                    job = queue[n, q]
                    if started[n, q]:
                        state[job] = RUNNING
                        ready_s[job] = np.inf
                        started[n, q] = False
                    elif job >= 0:
                        queue[n, kept] = job
                        kept += 1
                for q in range(kept, n_queue):
                    queue[n, q] = -1
        # 4. brownouts: an empty battery with a deficit
        for n in range(n_sats):
            if quiet[n]:
                continue
            busy = 0
            for a in range(n_slots):
                if slot_job[n, a] >= 0:
                    busy += 1
            lit = tau[n] >= sun_a[n] and tau[n] < sun_b[n] and alive[n]
            net = (solar_w if lit else 0.0) - load_w(busy, safe[n], radio_w[n], bus_w, acc_w, idle_w, n_acc)
            if alive[n] and not safe[n] and energy_wh[n] <= EPS_WH and net < 0:
                for a in range(n_slots):
                    job = slot_job[n, a]
                    if job >= 0:
                        done = work_s[job] - slot_rem[n, a]
                        progress_s[job] = _checkpointed(done, checkpoint_s[job], work_s[job])
                        state[job] = PENDING
                        present_s[job] = brownout_present_s
                        input_station[job] = -1
                        input_sat[job] = n
                        target[job] = -1
                        if failures == fail_job.shape[0]:  # grow
                            fail_job = np.concatenate((fail_job, np.empty(failures, dtype=np.int64)))
                            fail_of = np.concatenate((fail_of, np.empty(failures, dtype=np.int64)))
                        fail_job[failures] = job
                        fail_of[failures] = n_brown
                        failures += 1
                    slot_job[n, a] = -1
                    slot_rem[n, a] = 0.0
                safe[n] = True
                energy_wh[n] = 0.0
                if n_brown == brown_sat.shape[0]:  # more than N brownouts in one step: grow
                    brown_sat = np.concatenate((brown_sat, np.empty(n_brown, dtype=np.int64)))
                    brown_t = np.concatenate((brown_t, np.empty(n_brown)))
                brown_sat[n_brown] = n
                brown_t[n_brown] = tau[n]
                n_brown += 1
                changed[n] = True
        # -- the next segment of constant power --
        live_any = False
        for n in range(n_sats):
            if tau[n] < t1:
                live_any = True
            elif not changed[n]:
                quiet[n] = True
            changed[n] = False
        if not live_any:
            return (DONE, busy_slot_s, fin_job[:n_fin], fin_sat[:n_fin], fin_t[:n_fin],
                    brown_sat[:n_brown], brown_t[:n_brown],
                    fail_job[:failures], fail_of[:failures], failures)  # fmt: skip
        for n in range(n_sats):
            if tau[n] >= t1:  # at the step's end: a segment of length 0 changes nothing
                for a in range(n_slots):
                    progress[n * n_slots + a] = 0.0
                nxt[n] = tau[n]
                continue
            live = True
            lit = tau[n] >= sun_a[n] and tau[n] < sun_b[n] and alive[n]
            gen_w = solar_w if lit else 0.0
            busy = 0
            finish = np.inf
            for a in range(n_slots):
                if slot_job[n, a] >= 0:
                    busy += 1
                    if slot_rem[n, a] < finish:
                        finish = slot_rem[n, a]
            load = load_w(busy, safe[n], radio_w[n], bus_w, acc_w, idle_w, n_acc) if alive[n] else 0.0
            net = gen_w - load
            e = energy_wh[n]
            rate_in = net * charge_eff * WH_PER_WS if net > 0 else 0.0
            rate_out = -net / discharge_eff * WH_PER_WS if net < 0 else 0.0
            to_full = (cap_wh - e) / rate_in if rate_in > 0 and e < cap_wh - EPS_WH else np.inf
            to_empty = e / rate_out if rate_out > 0 and e > EPS_WH else np.inf
            to_thr = np.inf
            for thr in (reserve_wh, recover_wh):
                if rate_in > 0 and e < thr - EPS_WH:
                    to = (thr - e) / rate_in
                elif rate_out > 0 and e > thr + EPS_WH:
                    to = (e - thr) / rate_out
                else:
                    to = np.inf
                to_thr = min(to_thr, to)
            t = tau[n]
            crossing = sun_a[n] if t < sun_a[n] else (sun_b[n] if t < sun_b[n] else t1)
            stop = min(t1, crossing)
            stop = min(stop, t + min(finish, min(to_full, to_empty)))
            stop = min(stop, t + to_thr)
            # the earliest future input arrival of a queued job whose reserved slot is free
            ready_next = np.inf
            for q in range(n_queue):
                job = queue[n, q]
                if job >= 0 and slot_job[n, max(slot_of[job], 0)] < 0:
                    r = ready_s[job]
                    if r > t and r < ready_next:
                        ready_next = r
            stop = min(stop, ready_next)
            stop = stop if live else t
            seg = stop - t
            hit_full = to_full <= seg + EPS_S and live
            hit_empty = to_empty <= seg + EPS_S and live
            # integrate the battery over the segment (power.integrate_segment)
            if net > 0:
                new = e + net * charge_eff * seg * WH_PER_WS
            else:
                new = e + net / discharge_eff * seg * WH_PER_WS
            if hit_full:
                new = cap_wh
            elif hit_empty:
                new = 0.0
            else:
                new = min(max(new, 0.0), cap_wh)
            delta = new - e
            charged = delta if delta > 0 else 0.0
            discharged = -delta if delta < 0 else 0.0
            generated = gen_w * seg * WH_PER_WS
            bus_in = charged / charge_eff
            bus_out = discharged * discharge_eff
            used = min(load * seg * WH_PER_WS, generated - bus_in + bus_out)
            generated_l[n] += generated
            used_l[n] += used
            charged_l[n] += charged
            discharged_l[n] += discharged
            curtailed_l[n] += generated - used - bus_in + bus_out
            energy_wh[n] = new
            step = 0.0 if safe[n] else seg
            for a in range(n_slots):
                p = step if slot_job[n, a] >= 0 else 0.0
                progress[n * n_slots + a] = p
                slot_rem[n, a] -= p
            nxt[n] = stop
        busy_slot_s += pairwise_sum(progress, 0, n_sats * n_slots)
        for n in range(n_sats):
            tau[n] = nxt[n]
    return (TOO_MANY_EVENTS, busy_slot_s, fin_job[:n_fin], fin_sat[:n_fin], fin_t[:n_fin],
            brown_sat[:n_brown], brown_t[:n_brown],
            fail_job[:failures], fail_of[:failures], failures)  # fmt: skip
