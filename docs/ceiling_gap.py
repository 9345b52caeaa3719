"""Where policies fall short of the ceiling: on-time value by job kind, and what became of the rest.

Usage::

    python docs/ceiling_gap.py --env orbit_env/WalkerLEO-v1 --episodes 3 --seed 1000 \
        --policies eclipse_safe,models/WalkerLEO-v0/maskable_ppo.zip

For each episode the ceiling's LP (``agents.ceiling``) is solved once, and its optimum says which
jobs it puts on time (``job_on_time``, a share per job); every policy then plays the same episode.
The table sums over the episodes, per job kind: value arrived, the LP's on-time value, each
policy's on-time value and the gap. A second table takes the jobs the LP puts on time (share
> 0.5) and the policy does not, and says by value where they ended: still pending, queued,
running or in downlink at the horizon, late, expired or rejected. A gap that sits in one kind and
one outcome says what a better policy would have to do (or what the LP relaxes).

A policy named ``oracle:RULE`` is RULE with the LP's admissions (a privileged policy, for
analysis only: it reads the episode's future): a job the LP puts on time less than
``--oracle-threshold`` is rejected when it is presented; one it puts on time at least that much
and RULE rejects is placed instead on the valid satellite with the most delivery slack among
those the estimate has on time (RULE's rejection stands where there is none); every other
decision is RULE's. Were it well ahead of RULE, knowing which jobs to take would be worth
learning (e.g. by cloning it); were it not, the LP's admissions are not reachable this way.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import gymnasium
import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout

import orbit_env  # noqa: E402,F401
from agents.ceiling import ceiling  # noqa: E402
from agents.registry import make_policy  # noqa: E402
from agents.rollout import resolve_env_id, run_episode  # noqa: E402
from orbit_env.sim.simulator import JobState  # noqa: E402
from orbit_env.sim.workload import KIND_NAMES  # noqa: E402

LEFT = (JobState.PENDING, JobState.QUEUED, JobState.RUNNING, JobState.DOWNLINK)
MISSED = (*LEFT, JobState.LATE, JobState.EXPIRED, JobState.REJECTED)


def play_oracle(env, rule: str, seed: int, share: np.ndarray, threshold: float) -> float:
    """One episode of ``oracle:rule`` (see the module docstring): ``rule`` that rejects every
    job whose LP on-time share is below ``threshold`` and, where it rejects one at or above it,
    places it on the valid satellite with the most delivery slack the estimate has on time;
    returns the episode's return."""
    policy = make_policy(rule, env=env)
    obs, info = env.reset(seed=seed)
    layout = env.unwrapped.layout
    reject = env.unwrapped.n_sats + 1
    total, done = 0.0, False
    while not done:
        job = info["job"]
        if job >= 0 and share[job] < threshold:
            action = reject
        else:
            action = int(np.asarray(policy.predict(obs, deterministic=True)[0]).reshape(()))
            if job >= 0 and action == reject:
                slack = layout.decode(obs, "delivery_slack")
                ok = info["action_mask"][: reject - 1] & (slack >= 0)
                if ok.any():
                    action = int(np.flatnonzero(ok)[np.argmax(slack[ok])])
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        done = terminated or truncated
    return total


def gap(
    env_id: str,
    policies: list[str],
    seeds: list[int],
    progress: bool = True,
    split: str = "test",
    oracle_threshold: float = 0.5,
) -> dict:
    """Per kind: ``arrived``, ``ceiling`` and per policy ``on_time`` value [K]; per policy the value
    of jobs the LP puts on time and the policy does not, by final state (``missed``); per policy
    each episode's return (``returns``) and the LP's return bounds (``bounds``)."""
    env = gymnasium.make(env_id, split=split)
    n_k = len(KIND_NAMES)
    out = {
        "arrived": np.zeros(n_k),
        "ceiling": np.zeros(n_k),
        "on_time": {p: np.zeros(n_k) for p in policies},
        "missed": {p: dict.fromkeys((s.name for s in MISSED), 0.0) for p in policies},
        "statuses": [],
        "returns": {p: [] for p in policies},
        "bounds": [],
    }
    bar = tqdm(total=len(seeds) * (1 + len(policies)), disable=not progress, unit="run")
    for seed in seeds:
        env.reset(seed=seed)
        sim = env.unwrapped.sim
        bound = ceiling(sim)
        out["statuses"].append(bound["status"])
        out["bounds"].append(float(bound["return"]))
        share, kind, value = bound["job_on_time"], sim.jobs.kind, sim.jobs.value
        for k in range(n_k):
            out["arrived"][k] += value[kind == k].sum()
            out["ceiling"][k] += value[kind == k] @ share[kind == k]
        bar.update()
        for name in policies:
            bar.set_description(f"{name[-40:]} (seed {seed})")
            if name.startswith("oracle:"):
                ret = play_oracle(env, name.removeprefix("oracle:"), seed, share, oracle_threshold)
            else:
                ret = run_episode(env, make_policy(name, env=env), seed)[0]
            out["returns"][name].append(ret)
            state = env.unwrapped.sim.state
            on = state == JobState.ON_TIME
            for k in range(n_k):
                out["on_time"][name][k] += value[(kind == k) & on].sum()
            for s in MISSED:
                out["missed"][name][s.name] += float(value[(share > 0.5) & (state == s)].sum())
            bar.update()
    bar.close()
    return out


def markdown(res: dict, episodes: int) -> str:
    names = list(res["on_time"])
    statuses = ", ".join(sorted(set(res["statuses"])))
    lines = [
        f"On-time value summed over {episodes} episode(s); ceiling: {statuses}.",
        "",
        "| kind | arrived | ceiling (LP) | " + " | ".join(f"{n} · gap" for n in names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for k, kind in enumerate([*KIND_NAMES, "all"]):
        sel = slice(None) if kind == "all" else k
        lp = float(np.sum(res["ceiling"][sel]))
        got = [float(np.sum(res["on_time"][n][sel])) for n in names]
        cells = " | ".join(f"{g:,.0f} · {lp - g:,.0f}" for g in got)
        lines.append(f"| {kind} | {np.sum(res['arrived'][sel]):,.0f} | {lp:,.0f} | {cells} |")
    lines += ["", "Value of the jobs the LP puts on time and the policy does not, by where they ended:", ""]
    states = [s.name.lower() for s in MISSED]
    lines += ["| policy | " + " | ".join(states) + " |", "|---|" + "---|" * len(states)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(f"{v:,.0f}" for v in res["missed"][n].values()) + " |")
    bounds = ", ".join(f"{b:,.0f}" for b in res["bounds"])
    lines += ["", f"Return per episode (the LP's bound: {bounds}):", ""]
    lines += ["| policy | mean | per episode |", "|---|---|---|"]
    for n in names:
        rets = res["returns"][n]
        lines.append(f"| {n} | {np.mean(rets):,.1f} | " + ", ".join(f"{r:,.1f}" for r in rets) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="orbit_env/WalkerLEO-v1")
    parser.add_argument("--policies", default="eclipse_safe", help="comma-separated, as in evaluate.py")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1000, help="episode i uses seed SEED + i")
    parser.add_argument("--split", default="test", choices=("train", "val", "test"))
    parser.add_argument(
        "--oracle-threshold",
        type=float,
        default=0.5,
        help="oracle:RULE rejects jobs the LP puts on time less",
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    seeds = [args.seed + i for i in range(args.episodes)]
    res = gap(
        resolve_env_id(args.env),
        policies,
        seeds,
        progress=not args.no_progress,
        split=args.split,
        oracle_threshold=args.oracle_threshold,
    )
    print(markdown(res, args.episodes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
