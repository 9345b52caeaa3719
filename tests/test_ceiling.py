"""The offline ceiling: exact optima on hand-made cases, and no policy ever above it, whatever the rewards."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import orbit_env  # noqa: F401  (registers the ids)
from agents.ceiling import ceiling
from agents.registry import make_policy
from agents.rollout import run_episode
from orbit_env.config import ScenarioConfig
from orbit_env.sim.simulator import Simulator
from tests.checks import load_script
from tests.synthetic import SyntheticGeometry, always_visible
from tests.test_simulator import ONE_STATION, make_jobs

PINNED = json.loads((Path(__file__).resolve().parent / "fixtures" / "pinned_ceiling.json").read_text())
#: a penalty drawn from RewardConfig's valid range
PENALTY = st.floats(min_value=0.0, max_value=1e6, allow_nan=False, allow_infinity=False)


class _Always:
    """Takes one action on every decision: ``n_sats`` defers everything, ``n_sats + 1`` rejects it."""

    def __init__(self, action: int) -> None:
        self.action = action

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, Any]:
        batch = np.shape(observation)[:-1] if not isinstance(observation, dict) else ()
        return np.full(batch, self.action, dtype=np.int64), state


class _NeverReject:
    """A heuristic whose rejections become deferrals (action ``n_sats + 1`` -> ``n_sats``)."""

    def __init__(self, policy: Any, n_sats: int) -> None:
        self.policy, self.n_sats = policy, n_sats

    def predict(
        self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True
    ) -> tuple[np.ndarray, Any]:
        action, state = self.policy.predict(observation, state, episode_start, deterministic)
        action = np.asarray(action)
        return np.where(action == self.n_sats + 1, self.n_sats, action), state


def _policies(env: gym.Env, names: list[str], seed: int, extremes: bool) -> dict[str, Any]:
    """The named heuristics, and with ``extremes`` one that defers and one that rejects everything."""
    n = env.unwrapped.n_sats
    out = {name: make_policy(name, env=env, seed=seed) for name in names}
    if extremes:
        out["defer_all"], out["reject_all"] = _Always(n), _Always(n + 1)
    return out


def _run(env, seed: int, name: str) -> tuple[float, dict]:
    ret, metrics, _ = run_episode(env, make_policy(name, env=env, seed=0), seed)
    return ret, metrics


def _assert_below(
    env_id: str,
    seeds: list[int],
    names: list[str],
    env_kwargs: dict | None = None,
    extremes: bool = False,
    **kwargs: Any,
) -> None:
    """Every policy's return and on-time value over whole episodes are at most the ceiling's."""
    env = gym.make(env_id, **(env_kwargs or {}))
    for seed in seeds:
        env.reset(seed=seed)
        bound = ceiling(env.unwrapped.sim, **kwargs)
        assert bound["status"] in ("optimal", "pooled", "trivial")
        for name, policy in _policies(env, names, seed, extremes).items():
            ret, metrics, _ = run_episode(env, policy, seed)
            assert metrics["jobs_in_flight"] == 0  # every arrived job settled: the bound's premise
            assert ret <= bound["return"] + 1e-6 * max(1.0, abs(ret)), (env_id, seed, name, ret, bound)
            assert metrics["value_on_time"] <= bound["value_on_time"] + 1e-6, (env_id, seed, name, bound)


def test_ceiling_equals_the_optimum_when_two_jobs_compete_for_one_slot():
    # one satellite with one slot, always sunlit and in contact, that stops propagating at
    # 1500 s: its slot is alive over [0, 1440) s. Two jobs presented at 60 s each need the whole
    # 1380 s left, so only one can run: the best is the valuable one on time, the other rejected.
    dt, steps = 60.0, 60
    valid = np.ones((steps + 1, 1), dtype=bool)
    valid[25:] = False
    geo = SyntheticGeometry(
        dt_s=dt,
        sunlit_fraction=np.ones((steps + 1, 1)),
        station_hops=always_visible(steps + 1, 10, 1),
        valid=valid,
    )
    sim = Simulator(ScenarioConfig(horizon_s=steps * dt, dt_s=dt).replace(accelerators=1), geo)
    jobs = make_jobs(
        arrival_s=[0.0, 0.0],
        work_s=[1380.0, 1380.0],
        input_gb=[0.0, 0.0],
        deadline_s=[1500.0, 1500.0],
        value=[3.0, 1.0],
    )
    sim.reset(np.random.default_rng(0), jobs=jobs)
    bound = ceiling(sim, bucket_s=dt)  # one-step buckets: no slack inside a bucket
    assert bound["status"] == "optimal"
    assert bound["return"] == pytest.approx(3.0 - 0.25 * 1.0, abs=1e-4)
    assert bound["value_on_time"] == pytest.approx(3.0, abs=1e-4)
    np.testing.assert_allclose(bound["job_on_time"], [1.0, 0.0], atol=1e-6)  # which job the LP runs
    # and that optimum is reached: run job 0, reject job 1
    sim.advance()
    sim.place(0, 0)
    sim.reject(1)
    while not sim.done:
        sim.advance()
    c = sim.counters
    assert c.value_on_time == 3.0 and c.value_rejected == 1.0 and c.brownouts == 0


def test_ceiling_counts_each_stations_antenna_time():
    # one station with one antenna sees the satellite only in step 1, [60, 120) s. Two jobs of
    # 50 GB (a 40 s upload each) must upload, run (1 s) and come down (0 GB) in that minute: only
    # one can. The antenna rows allow 60 s of uploads, so the LP takes job 0 whole and half of
    # job 1: -0.25·4 + 1.25·(3 + 0.5·1) = 3.375, where without them it counted both (4.0).
    dt, steps = 60.0, 10
    hops = np.full((steps + 1, 1, 1), -1, dtype=np.int16)
    hops[1] = 0
    geo = SyntheticGeometry(dt_s=dt, sunlit_fraction=np.ones((steps + 1, 1)), station_hops=hops)
    config = ScenarioConfig(ground=ONE_STATION, horizon_s=steps * dt, dt_s=dt).replace(antennas=1)
    sim = Simulator(config, geo)
    jobs = make_jobs(
        arrival_s=[0.0, 0.0], work_s=[1.0, 1.0], input_gb=[50.0, 50.0], output_gb=[0.0, 0.0],
        deadline_s=[600.0, 600.0], value=[3.0, 1.0],
    )  # fmt: skip
    sim.reset(np.random.default_rng(0), jobs=jobs)
    bound = ceiling(sim, bucket_s=dt)
    assert bound["status"] == "optimal"
    assert bound["return"] == pytest.approx(-0.25 * 4.0 + 1.25 * 3.5, abs=1e-4)
    np.testing.assert_allclose(bound["job_on_time"], [1.0, 0.5], atol=1e-6)
    # the run: job 0 uploads in [60, 100) s and is delivered at 101 s; job 1 cannot upload in time
    sim.advance()
    assert sim.valid_targets(0)[0] and sim.place(0, 0) == 100.0
    assert not sim.valid_targets(1)[0]
    sim.reject(1)
    while not sim.done:
        sim.advance()
    assert sim.counters.value_on_time == 3.0 and sim.counters.value_rejected == 1.0


def test_ceiling_charges_no_brownout_after_the_episode_ends():
    # one satellite in eclipse throughout: its battery carries the idle load for ~2.5 h, not to
    # the job's deadline at 20,000 s. Run at once, the job is delivered before the horizon
    # (1200 s), the episode ends there with no brownout, and the return is the job's value; the
    # LP still runs to the deadline (the latest end) and must not charge the brownout an idle
    # satellite would have had after the end
    dt, steps, length = 60.0, 20, 400
    geo = SyntheticGeometry(
        dt_s=dt, sunlit_fraction=np.zeros((length, 1)), station_hops=always_visible(length, 10, 1)
    )
    sim = Simulator(ScenarioConfig(horizon_s=steps * dt, dt_s=dt), geo)
    jobs = make_jobs(
        arrival_s=[0.0], work_s=[300.0], input_gb=[0.0], output_gb=[0.0], deadline_s=[20000.0], value=[1.0]
    )
    sim.reset(np.random.default_rng(0), jobs=jobs)
    bound = ceiling(sim, bucket_s=dt)
    assert bound["status"] == "optimal" and bound["buckets"] * dt >= 20000.0  # the LP runs to the deadline
    while not sim.pending().size:
        sim.advance()
    sim.place(0, 0)
    while not sim.done:
        sim.advance()
    c = sim.counters
    assert sim.step_index == steps and c.value_on_time == 1.0 and c.brownouts == 0
    assert bound["return"] >= 1.0 and bound["return"] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(("miss", "reject"), [(0.0, 1.0), (1.0, 0.25), (0.5, 3.0), (2.0, 2.0)])
def test_a_job_that_cannot_be_on_time_costs_exactly_the_cheaper_penalty(miss, reject):
    # work longer than the time to the deadline: the job ends rejected (-reject v) or, deferred
    # until its deadline, expired (-miss v); the best of the two is the ceiling, exactly
    dt, steps = 60.0, 20
    geo = SyntheticGeometry(
        dt_s=dt, sunlit_fraction=np.ones((steps + 1, 1)), station_hops=always_visible(steps + 1, 10, 1)
    )
    config = ScenarioConfig(horizon_s=steps * dt, dt_s=dt).replace(miss_penalty=miss, reject_penalty=reject)
    sim = Simulator(config, geo)
    jobs = make_jobs(arrival_s=[0.0], work_s=[3000.0], input_gb=[0.0], deadline_s=[600.0], value=[2.0])
    returns = []
    for decide in (sim.reject, sim.defer):
        sim.reset(np.random.default_rng(0), jobs=jobs)
        bound = ceiling(sim, bucket_s=dt)
        while not sim.done:
            for job in sim.pending():
                decide(int(job))
            sim.advance()
        c = sim.counters
        returns.append(c.value_on_time - miss * (c.value_late + c.value_expired) - reject * c.value_rejected)
    assert returns == [-reject * 2.0, -miss * 2.0]
    assert bound["status"] == "optimal" and bound["return"] == pytest.approx(max(returns), abs=1e-4)
    assert bound["return"] >= max(returns)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(
    miss=PENALTY,
    reject=PENALTY,
    brownout=PENALTY,
    load=st.sampled_from([0.5, 1.0, 2.0, 4.0]),
    seed=st.integers(0, 3),
)
@example(miss=0.0, reject=1.0, brownout=5.0, load=4.0, seed=1)  # reject > miss, miss = 0
@example(miss=0.5, reject=3.0, brownout=0.0, load=2.0, seed=2)  # reject > miss
@example(miss=1.0, reject=0.25, brownout=1e6, load=4.0, seed=0)  # defaults, brownouts dear
def test_no_policy_beats_the_ceiling_for_any_reward_setting(miss, reject, brownout, load, seed):
    kwargs = {"miss_penalty": miss, "reject_penalty": reject, "brownout_penalty": brownout, "load": load}
    names = ["earliest_finish", "eclipse_safe", "random"]
    _assert_below("orbit_env/Tiny-v1", [seed], names, env_kwargs=kwargs, extremes=True)


def test_ceiling_bounds_a_never_rejecting_policy_when_rejecting_costs_more_than_missing():
    # issue 15: Tiny, load 4, miss 0, reject 1, seed 1001 gave a ceiling of -30.4 on the old
    # semantics, below a policy that never rejects (misses are free there)
    kwargs = {"load": 4.0, "miss_penalty": 0.0, "reject_penalty": 1.0}
    env = gym.make("orbit_env/Tiny-v1", split="test", **kwargs)
    env.reset(seed=1001)
    bound = ceiling(env.unwrapped.sim)
    assert bound["status"] == "optimal" and bound["return"] >= 0.0
    n = env.unwrapped.n_sats
    for policy in (_Always(n), _NeverReject(make_policy("earliest_finish", env=env, seed=0), n)):
        ret, metrics, _ = run_episode(env, policy, 1001)
        assert metrics["value_rejected"] == 0.0
        assert ret <= bound["return"] + 1e-6, (ret, bound["return"])


def test_no_heuristic_beats_the_ceiling_on_tiny():
    names = ["earliest_finish", "energy_aware", "eclipse_safe", "random"]
    _assert_below("orbit_env/Tiny-v1", [0, 1, 2], names, extremes=True)


def test_no_heuristic_beats_the_ceiling_on_walker():
    # pooled phase groups and coarse steps: still a bound, and a few seconds per episode
    _assert_below(
        "orbit_env/WalkerLEO-v1", [0], ["eclipse_safe", "earliest_finish"], groups=4, bucket_s=1200.0
    )


def test_no_heuristic_beats_the_antenna_ceiling_on_a_suncatcher_quarter_day():
    names = ["link_aware", "marginal_cost", "earliest_finish"]
    _assert_below("orbit_env/Suncatcher-v1", [0], names, env_kwargs={"horizon_s": 6 * 3600.0}, groups=1)


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ["orbit_env/Suncatcher-v1", "orbit_env/SuncatcherEclipse-v1"])
def test_no_heuristic_beats_the_ceiling_on_whole_suncatcher_days(env_id):
    names = ["random", "earliest_finish", "value_density", "eclipse_safe", "link_aware", "marginal_cost"]
    _assert_below(env_id, [1000, 1001], names, env_kwargs={"split": "test"}, time_limit_s=300.0)


@pytest.mark.slow
def test_no_heuristic_beats_the_full_ceiling_on_walker_seeds():
    names = ["earliest_finish", "energy_aware", "value_density", "eclipse_safe", "random"]
    _assert_below("orbit_env/WalkerLEO-v1", [1, 2], names)


def test_ceiling_refuses_a_state_after_decisions():
    env = gym.make("orbit_env/Tiny-v1")
    env.reset(seed=1)
    env.step(env.unwrapped.n_sats + 1)  # reject the first job
    with pytest.raises(ValueError, match="after reset"):
        ceiling(env.unwrapped.sim)


def test_job_on_time_shares_add_up_to_the_lp_on_time_value_and_the_gap_script_uses_them():
    env = gym.make("orbit_env/Tiny-v1", split="test")
    env.reset(seed=1000)
    sim = env.unwrapped.sim
    bound = ceiling(sim)
    share = bound["job_on_time"]
    assert share.shape == sim.jobs.value.shape and ((share >= 0) & (share <= 1)).all()
    assert share @ sim.jobs.value == pytest.approx(bound["on_time_value"], rel=1e-9)
    module = load_script("docs/ceiling_gap.py")
    res = module.gap("orbit_env/Tiny-v1", ["eclipse_safe"], [1000], progress=False)
    assert res["ceiling"].sum() == pytest.approx(bound["on_time_value"], rel=1e-9)
    assert (res["ceiling"] <= res["arrived"] + 1e-9).all()
    _, metrics = _run(env, 1000, "eclipse_safe")
    assert res["on_time"]["eclipse_safe"].sum() == pytest.approx(metrics["value_on_time"])
    assert "| all |" in module.markdown(res, 1)
    # the privileged oracle: above 1 it rejects every job; at 0 it takes what its rule rejects
    # wherever the estimate has a satellite on time, so it rejects less
    assert module.play_oracle(env, "eclipse_safe", 1000, share, 1.01) == pytest.approx(
        -env.unwrapped.config.reward.reject_penalty * float(sim.jobs.value.sum())
    )
    assert env.unwrapped.sim.counters.rejected == len(sim.jobs.value)
    res = module.gap(
        "orbit_env/Tiny-v1",
        ["eclipse_safe", "oracle:eclipse_safe"],
        [1000],
        progress=False,
        oracle_threshold=0.0,
    )
    assert res["bounds"] == [pytest.approx(bound["return"])]
    assert res["returns"]["eclipse_safe"] == [pytest.approx(_run(env, 1000, "eclipse_safe")[0])]
    env.reset(seed=1004)  # eclipse_safe rejects 5 of 17 jobs, 3 of them with a satellite on time
    share = ceiling(env.unwrapped.sim)["job_on_time"]
    _run(env, 1004, "eclipse_safe")
    rule_rejected = env.unwrapped.sim.counters.rejected
    module.play_oracle(env, "eclipse_safe", 1004, share, 0.0)
    env.unwrapped.sim.check_invariants()
    assert env.unwrapped.sim.counters.rejected < rule_rejected


# -- pinned numbers: a regression pin of the ceiling's outputs -------------------------------------
# Re-recorded for the settled semantics (issue 15: every arrived job settled in the drain window
# after the horizon, -v1 ids) with the reworked LP, same cases as the pin taken before the LP
# refactor (issue 14), whose numbers were on the old horizon semantics and no longer apply.
def _pinned(walker: bool) -> list[dict]:
    return [c for c in PINNED["cases"] if (c["env_id"] == "orbit_env/WalkerLEO-v1") == walker]


def _case_id(case: dict) -> str:
    return f"{case['env_id'].split('/')[1]}-{case['seed']}-groups{case['groups']}"


def _ceiling_record(case: dict) -> dict:
    """Every scalar ceiling() returns (but solve_s) and the sha256 of its job_on_time bytes."""
    env = gym.make(case["env_id"], split=PINNED["split"])
    env.reset(seed=case["seed"])
    kwargs = {"bucket_s": PINNED["bucket_s"], "time_limit_s": PINNED["time_limit_s"]}
    if case["groups"] is not None:
        kwargs["groups"] = case["groups"]
    out = ceiling(env.unwrapped.sim, **kwargs)
    record = {
        k: v.item() if isinstance(v, np.generic) else v
        for k, v in out.items()
        if k not in ("solve_s", "job_on_time")
    }
    shares = np.ascontiguousarray(out["job_on_time"]).tobytes()
    record["job_on_time_sha256"] = hashlib.sha256(shares).hexdigest()
    return record


@pytest.mark.parametrize("case", _pinned(walker=False), ids=_case_id)
def test_ceiling_on_tiny_matches_the_numbers_pinned_for_the_settled_semantics(case):
    """Re-recorded for the settled semantics (issue 15); a change here must be argued."""
    assert _ceiling_record(case) == case["expected"]  # exact: ==, not approx


@pytest.mark.slow
@pytest.mark.parametrize("case", _pinned(walker=True), ids=_case_id)
def test_ceiling_on_walker_matches_the_numbers_pinned_for_the_settled_semantics(case):
    """Re-recorded for the settled semantics (issue 15); the status depends on the solve time."""
    assert _ceiling_record(case) == case["expected"]
