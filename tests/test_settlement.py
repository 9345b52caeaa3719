"""Every arrived job is settled exactly once (issue 15, design §3.1).

After the horizon the episode goes on until every arrived job is on time, late, expired or
rejected, so ``value_on_time + value_late + value_expired + value_rejected = value_arrived`` at
the end of every episode, whatever the policy — including one that defers everything (deferral is
not free any more) and one that rejects everything.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import orbit_env  # noqa: F401
from agents.registry import make_policy
from agents.rollout import run_episode
from orbit_env.envs.observation import ObservationLayout
from orbit_env.scenarios import SCENARIOS
from orbit_env.sim.simulator import UNSETTLED
from tests.checks import assert_jobs_conserved


class Always:
    """A policy that takes the same kind of action every time: ``"defer"`` or ``"reject"``."""

    def __init__(self, what: str) -> None:
        self.what = what

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        n = ObservationLayout.for_size(np.shape(observation)[-1]).n_sats
        return np.asarray(n if self.what == "defer" else n + 1), state


POLICIES = ("defer", "reject", "random", "eclipse_safe")
QUICK = {("Tiny-v1", p) for p in POLICIES} | {("WalkerLEO-v1", "reject"), ("WalkerLEO-v1", "eclipse_safe")}
CASES = [
    pytest.param(
        name, policy, marks=() if (name, policy) in QUICK else pytest.mark.slow, id=f"{name}-{policy}"
    )
    for name in SCENARIOS
    for policy in POLICIES
]


@pytest.mark.parametrize(("scenario", "policy_name"), CASES)
def test_every_arrived_job_is_settled_once(scenario, policy_name):
    env = gymnasium.make(f"orbit_env/{scenario}", split="test")
    seed = 1000
    policy = (
        Always(policy_name) if policy_name in ("defer", "reject") else make_policy(policy_name, env, seed)
    )
    ret, metrics, _ = run_episode(env, policy, seed)
    sim = env.unwrapped.sim
    assert_jobs_conserved(metrics)  # nothing in flight; on time + late + expired + rejected = arrived
    assert not np.isin(sim.state, UNSETTLED).any()
    assert metrics["jobs_arrived"] > 0 and metrics["jobs_settled_at_end"] == 0  # all by their deadline
    assert 0.0 <= metrics["drain_s"] <= (sim.max_steps - sim.n_steps) * sim.dt_s
    rw = sim.config.reward
    expected = (
        metrics["value_on_time"]
        - rw.miss_penalty * (metrics["value_late"] + metrics["value_expired"])
        - rw.reject_penalty * metrics["value_rejected"]
        - rw.brownout_penalty * metrics["brownouts"]
    )
    assert ret == pytest.approx(expected, rel=1e-9, abs=1e-6)  # the return counts every job once
    if policy_name == "defer":  # deferring is never free: every job expires at its deadline
        assert metrics["value_expired"] == pytest.approx(metrics["value_arrived"], rel=1e-12)
        assert ret == pytest.approx(-rw.miss_penalty * metrics["value_arrived"], rel=1e-9)
    if policy_name == "reject":
        assert metrics["value_rejected"] == pytest.approx(metrics["value_arrived"], rel=1e-12)


def test_no_job_arrives_at_or_after_the_horizon():
    env = gymnasium.make("orbit_env/Tiny-v1", split="test")
    run_episode(env, Always("reject"), 1001)
    sim = env.unwrapped.sim
    arrived = sim.state != 0  # JobState.FUTURE
    assert (sim.jobs.arrival_s[arrived] < sim.horizon_s).all()
    assert sim.now_s >= sim.horizon_s
