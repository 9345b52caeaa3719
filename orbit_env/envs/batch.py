"""The env's step compiled: one env's (:func:`env_step`) and B envs' in one call (:func:`step_batch`).

A step decides the pending job (:func:`clock.act <orbit_env.sim.clock.act>`: place, defer or
reject it, then the clock up to the next decision), observes the next job
(:func:`features._observe <orbit_env.envs.features._observe>`) and takes the step's reward from
the clock's counters, split into its components. :class:`OrbitPlacementEnv
<orbit_env.envs.placement.OrbitPlacementEnv>` makes one such call per step;
:class:`OrbitVectorEnv <orbit_env.envs.vector.OrbitVectorEnv>` makes one :func:`step_batch` call
for its B envs, which also copies each env's settled jobs and brownouts out of the clock's logs
with their rewards (:func:`take_logs` for one env). The arithmetic is the Python env's before it,
operation for operation, so rewards are bit-identical.
"""

from __future__ import annotations

import numpy as np

from orbit_env.envs.features import _observe
from orbit_env.sim import clock
from orbit_env.sim.kernels import njit

#: the reward's components, in the order of :func:`reward_totals` and of the info's dict
REWARD_KEYS = ("on_time", "miss", "reject", "brownout")
# penalties: float64[3], as the RewardConfig gives them
MISS, REJECT, BROWNOUT = range(3)
# env_step's results: float64[R] the step's reward, its four components, the time after it [s] and
# the time it took [s]
R_REWARD, R_COMPONENTS, R_TIME_S, R_DT_S = 0, 1, 5, 6
N_RESULTS = 7


@njit
def reward_totals(st, penalties: np.ndarray, out: np.ndarray) -> None:
    """``out`` (float64[4], :data:`REWARD_KEYS` order): the episode's reward so far by
    component, from the clock's counters (``penalties``: miss, reject, brownout)."""
    f = st.floats
    out[0] = f[clock.VALUE_ON_TIME]
    out[1] = -penalties[MISS] * (f[clock.VALUE_LATE] + f[clock.VALUE_EXPIRED])
    out[2] = -penalties[REJECT] * f[clock.VALUE_REJECTED]
    out[3] = -penalties[BROWNOUT] * st.ints[clock.BROWNOUTS]


@njit
def finish_step(st, fs, job: int, pending: int, t_before_s: float, penalties, last, obs, res) -> None:
    """After the clock has reached the next decision (``job``, −1 when the episode is over, with
    ``pending`` jobs waiting): its observation into ``obs`` (float32[D]; the mask into
    ``fs.mask``), and into ``res`` (float64[N_RESULTS]) the reward since the totals ``last``
    (float64[4], updated), its components, the time [s] and the time since ``t_before_s``."""
    _observe(st, fs, job, pending, obs)
    now = res[R_COMPONENTS : R_COMPONENTS + 4]
    reward_totals(st, penalties, now)
    reward = 0.0  # summed in REWARD_KEYS order, as Python's sum over the components
    for i in range(4):
        total = now[i]
        now[i] = total - last[i]
        last[i] = total
        reward += now[i]
    res[R_REWARD] = reward
    res[R_TIME_S] = st.ints[clock.STEP] * st.floats[clock.DT_S]
    res[R_DT_S] = res[R_TIME_S] - t_before_s


@njit
def env_step(st, fs, job: int, action: int, defer_s: float, penalties, last, obs, res):
    """One env's step: decide ``job`` (−1: the episode offered no decision; ``action`` a valid
    satellite, ``clock.DEFER`` or ``clock.REJECT``), advance to the next decision (at most
    :func:`clock.max_advances` clock steps) and :func:`finish_step`. Returns (next job or −1,
    pending jobs, ``clock.act``'s status); on a status other than ``clock.FOUND`` nothing is
    observed (the caller goes on in Python)."""
    t_before = st.ints[clock.STEP] * st.floats[clock.DT_S]
    steps = clock.max_advances(st)
    if job < 0:
        nxt, count, status = clock.next_decision(st, steps)
    else:
        ready = 0.0  # where the input on board another satellite lands (the uplink is booked)
        if action >= 0 and st.input_station[job] < 0:
            if not clock.decided(st, job):
                clock.decision(st, job, clock.entry_hops(st, job))
            ready = st.dec_ready[action]
        nxt, count, status = clock.act(st, job, action, ready, defer_s, steps)
    if status == clock.FOUND:
        finish_step(st, fs, nxt, count, t_before, penalties, last, obs, res)
    return nxt, count, status


@njit
def _copy_logs(st, penalties, jobs, reward, at: int, failed, failed_reward, failed_at: int) -> None:
    """Copy ``st``'s settled jobs (from ``at``) and the jobs its brownouts stopped (from
    ``failed_at``) into the given arrays with their rewards, and empty the logs."""
    for j in range(st.ints[clock.N_SETTLED]):
        job = st.settled[j]
        state = st.state[job]
        scale = (
            1.0
            if state == clock.ON_TIME
            else -penalties[REJECT]
            if state == clock.REJECTED
            else -penalties[MISS]
        )
        jobs[at + j] = job
        reward[at + j] = st.value[job] * scale
    for j in range(st.ints[clock.N_FAILED]):
        failed[failed_at + j] = st.failed_job[j]
        failed_reward[failed_at + j] = -penalties[BROWNOUT] * st.failed_share[j]
    st.ints[clock.N_SETTLED] = st.ints[clock.N_FAILED] = st.ints[clock.BROWN_IDLE] = 0


@njit
def take_logs(st, penalties):
    """The jobs settled since the last call and their rewards (int64[K], float64[K]), the jobs
    the brownouts stopped and their parts of the penalty (int64[M], float64[M]), and the
    penalty of the brownouts that stopped none; the logs are emptied."""
    k, m = st.ints[clock.N_SETTLED], st.ints[clock.N_FAILED]
    unassigned = -penalties[BROWNOUT] * st.ints[clock.BROWN_IDLE]
    jobs, reward = np.empty(k, dtype=np.int64), np.empty(k)
    failed, failed_reward = np.empty(m, dtype=np.int64), np.empty(m)
    _copy_logs(st, penalties, jobs, reward, 0, failed, failed_reward, 0)
    return jobs, reward, failed, failed_reward, unassigned


@njit
def step_batch(
    sts, fss, run, decided, jobs, pending, actions, defer_s, penalties, last, obs, masks, res, invalid
):
    """:func:`env_step` for each env ``i`` with ``run[i]`` (bool[B], in: the envs not to be reset;
    out: the envs stepped) over its clock and feature structs (``sts``, ``fss``: typed lists),
    but not for an env whose simulator needs Python between clock steps
    (``ints[PYTHON_STEPS]``; ``run[i]`` becomes False). ``actions`` (int[B]) as the env's action
    space gives them (an invalid one counts as reject; ``invalid`` bool[B] says which);
    ``decided``, ``jobs``, ``pending`` (int64[B]) out: the job decided, the next one (−1: the
    episode is over) and how many are pending; ``last`` float64[B, 4] the reward totals,
    ``obs`` float32[B, D], ``masks`` bool[B, N + 2] and ``res`` float64[B, N_RESULTS] the step's
    outputs. Then the logs of the envs stepped (:func:`take_logs`, concatenated in env order).

    Returns (the first env whose clock stopped with a status other than ``clock.FOUND``, or −1;
    that status; bool[B] the envs whose clock grew an array (``Simulator._refresh``); settled
    jobs, their rewards, each env's count (int64[B]); the brownouts' jobs, their rewards, each
    env's count; each env's unassigned brownout penalty (float64[B])). An env that stops the
    batch has no logs taken and the envs after it are not run.
    """
    b, n = len(sts), masks.shape[1] - 2
    stopped, stop_status = -1, clock.FOUND
    grown = np.zeros(b, dtype=np.bool_)
    for i in range(b):
        st = sts[i]
        if not run[i] or st.ints[clock.PYTHON_STEPS]:
            run[i] = False
            continue
        fs, a = fss[i], actions[i]
        generation = st.ints[clock.GENERATION]
        bad = not (0 <= a < n + 2) or not fs.mask[a]
        invalid[i] = bad
        action = clock.REJECT if bad or a == n + 1 else clock.DEFER if a == n else a
        decided[i] = st.ints[clock.PENDING_JOB]
        nxt, count, status = env_step(st, fs, decided[i], action, defer_s, penalties, last[i], obs[i], res[i])
        grown[i] = st.ints[clock.GENERATION] != generation
        if status != clock.FOUND:
            stopped, stop_status = i, status
            break
        jobs[i], pending[i] = nxt, count
        masks[i] = fs.mask
    end = b if stopped < 0 else stopped
    n_settled, n_failed = np.zeros(b, dtype=np.int64), np.zeros(b, dtype=np.int64)
    unassigned = np.zeros(b)
    for i in range(end):
        if run[i]:
            n_settled[i], n_failed[i] = sts[i].ints[clock.N_SETTLED], sts[i].ints[clock.N_FAILED]
            unassigned[i] = -penalties[BROWNOUT] * sts[i].ints[clock.BROWN_IDLE]
    settled, settled_reward = np.empty(n_settled.sum(), dtype=np.int64), np.empty(n_settled.sum())
    failed, failed_reward = np.empty(n_failed.sum(), dtype=np.int64), np.empty(n_failed.sum())
    at = failed_at = 0
    for i in range(end):
        if run[i]:
            _copy_logs(sts[i], penalties, settled, settled_reward, at, failed, failed_reward, failed_at)
            at += n_settled[i]
            failed_at += n_failed[i]
    return (
        stopped,
        stop_status,
        grown,
        settled,
        settled_reward,
        n_settled,
        failed,
        failed_reward,
        n_failed,
        unassigned,
    )
