"""Credit assignment for MaskablePPO: discounting in simulated time and per-job credit (issue 18).

A decision comes every few simulated seconds while a job's value arrives hours later, so a
per-decision discount and GAE see little of it. Two switches, each off by default, set as
hyperparameters (``agents/hyperparams/maskable_ppo.yml`` or ``--hyperparams``):

* ``time_constant_h`` τ: discount in simulated time (a semi-MDP, as Decima and bsk-rl do). The
  step from decision t to t + 1 takes Δt_t simulated seconds (``info["dt_s"]``) and is
  discounted by exp(−Δt_t / τ): a reward τ hours after a decision counts 1/e, one 3τ later 5 %.
  The model's per-decision ``gamma`` is then not used; GAE's λ stays per decision.
* ``per_job_credit``: each job's settlement reward (its value on time, −miss or −reject
  penalty × value; ``info["settled"]``) is moved from the step it settles on to the step of the
  last decision on that job (the placement that ran it, or the final defer of a job that
  expired pending), when that decision is in the same rollout and episode. A job decided in an
  earlier rollout keeps its reward where it settles; one still unsettled at the end of the
  rollout is covered by the value bootstrap. Every reward is counted once, so an episode's
  undiscounted return is unchanged; only its timing moves (return-equivalent redistribution,
  RUDDER). Brownout penalties stay where they happen, unless ``brownout_credit`` is on.
* ``brownout_credit`` (with ``per_job_credit``): each brownout's penalty is split equally over
  the running jobs it stopped (``info["brownouts"]``) and each part moved to the decision that
  placed that job, as settlements are; a brownout that stopped no job keeps its penalty in
  time. A brownout is the sum of the loads on one satellite, and the jobs running then are the
  loads the policy chose; without this the penalty lands minutes and ~100 decisions after the
  placements that caused it, on whatever decision came then, and the placements' own credit
  (the value they deliver hours later) arrives without the cost they carried. Returns are again
  unchanged, only their timing.
* ``lagged_credit`` (with ``per_job_credit``): each update trains on the *previous* rollout,
  whose returns are computed over it and the rollout just collected, so a job decided in one
  rollout and settled in the next is credited to its decision too; only jobs settling more than
  a rollout after their decision keep their reward where it settles. Without it, a long job's
  value (a training job delivers hours, i.e. thousands of decisions, after its placement)
  mostly lands in a later rollout at an unrelated decision: noise there, and no credit to the
  placement. The samples are one update old when trained on (PPO's ratio and clipping use the
  policy that collected them).

* ``shared_stream`` K: the training envs form groups of K that play the same job streams and
  epochs (:class:`SharedStreamSeeds`: episode e of every env in group g has the same seed), and
  an action's advantage is its λ-return minus the mean λ-return of the other envs of its group
  at the same simulated time of the same stream (leave-one-out; Decima's time-based baseline,
  Mao et al., "Variance Reduction for RL in Input-Driven Environments", ICLR 2019), so it
  compares actions, not job streams. Where no partner covers that time in the rollout (one ran
  ahead into the next stream), the critic's GAE advantage stays. The critic's targets are
  unchanged. ``n_envs`` must be a multiple of K.

All need :class:`StepInfoRecorder` among the callbacks (train.py adds it), which hands each
step's info to the buffer before SB3 adds the step.

A fourth switch guards fine-tuning rather than assigning credit:

* ``clone_kl_coef`` β: β · KL(π_start ‖ π) joins PPO's loss, where π_start is the policy
  training started from (the behaviour clone of ``--init-from``), over the rollout's states
  and their unmasked actions (:class:`CloneAnchor`). A proximal pull towards the teacher, in
  the spirit of HEPO (Lee et al., 2024) with a fixed coefficient: what the noisy advantages
  push away from the clone is pulled back unless the advantages agree update after update.
"""

from __future__ import annotations

import copy
from typing import Any

import gymnasium
import numpy as np
import torch as th
from sb3_contrib.common.maskable.buffers import MaskableRolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback

CREDIT_KEYS = ("time_constant_h", "per_job_credit", "brownout_credit", "lagged_credit", "shared_stream")
# what a rollout holds: SB3's arrays and the step infos (the lagged update trains on the previous one)
_ROLLOUT_FIELDS = (
    "observations", "actions", "rewards", "episode_starts", "values", "log_probs", "action_masks",
    "dt_s", "decided", "time_s", "stream", "settled",
)  # fmt: skip
GUARD_KEYS = ("clone_kl_coef",)
#: training stream seeds start here, far from the validation (500+) and test (1000+) seeds
STREAM_SEED_BASE = 10_000_000


class CreditRolloutBuffer(MaskableRolloutBuffer):
    """MaskableRolloutBuffer whose returns use simulated-time discounts and per-job credit.

    Args (besides MaskableRolloutBuffer's):
        time_constant_h: τ [h], the e-folding time of the discount; ``None`` keeps SB3's
            per-decision ``gamma``.
        per_job_credit: move each job's settlement reward to its last decision (see module).
        brownout_credit: move each brownout's penalty to the placements of the jobs it stopped.
        shared_stream: envs per shared-stream group (see module).
        lagged_credit: train each update on the previous rollout, once the current one has
            shown which of its jobs settled (see module).
    """

    def __init__(
        self,
        *args: Any,
        time_constant_h: float | None = None,
        per_job_credit: bool = False,
        brownout_credit: bool = False,
        shared_stream: int = 1,
        lagged_credit: bool = False,
        **kwargs: Any,
    ) -> None:
        if time_constant_h is not None and not (np.isfinite(time_constant_h) and time_constant_h > 0):
            raise ValueError(
                f"time_constant_h must be a positive number of hours or None, got {time_constant_h}"
            )
        self.time_constant_h = None if time_constant_h is None else float(time_constant_h)
        self.per_job_credit = bool(per_job_credit)
        self.brownout_credit = bool(brownout_credit)
        self.shared_stream = int(shared_stream)
        self.lagged_credit = bool(lagged_credit)
        _check_combination(self.per_job_credit, self.brownout_credit, self.lagged_credit, self.shared_stream)
        self._previous: dict[str, Any] | None = None
        super().__init__(*args, **kwargs)
        if self.shared_stream < 1 or self.n_envs % self.shared_stream:
            raise ValueError(f"shared_stream={shared_stream} must divide n_envs={self.n_envs}")

    def reset(self) -> None:
        super().reset()
        self.dt_s = np.full((self.buffer_size, self.n_envs), np.nan)
        self.decided = np.full((self.buffer_size, self.n_envs), -1, dtype=np.int64)
        self.time_s = np.full((self.buffer_size, self.n_envs), np.nan)
        self.stream = np.full((self.buffer_size, self.n_envs), -1, dtype=np.int64)
        self.settled: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(self.buffer_size)]

    def record(self, infos: list[dict[str, Any]]) -> None:
        """The step infos of the step about to be added (``pos``); see :class:`StepInfoRecorder`."""
        if self.pos >= self.buffer_size:
            return
        missing = [k for k in ("dt_s", "decided_job", "settled") if k not in infos[0]]
        if missing:
            raise ValueError(f"credit assignment needs the env's info[{missing[0]!r}] (an orbit_env -v1 env)")
        self.dt_s[self.pos] = [info["dt_s"] for info in infos]
        self.decided[self.pos] = [info["decided_job"] for info in infos]
        self.time_s[self.pos] = [info["time_s"] for info in infos]
        self.stream[self.pos] = [info.get("stream_seed", -1) for info in infos]
        if self.brownout_credit:
            if "brownouts" not in infos[0]:
                raise ValueError("brownout_credit needs the env's info['brownouts'] (an orbit_env -v1 env)")
            self.settled[self.pos] = [_job_parts(info) for info in infos]
        else:
            self.settled[self.pos] = [(info["settled"]["jobs"], info["settled"]["reward"]) for info in infos]

    def step_discounts(self) -> np.ndarray:
        """float[T, E]: the discount of each step's next value (``gamma``, or exp(−Δt / τ))."""
        if self.time_constant_h is None:
            return np.full((self.buffer_size, self.n_envs), self.gamma, dtype=np.float32)
        self._check_recorded()
        return np.exp(-self.dt_s / (3600.0 * self.time_constant_h)).astype(np.float32)

    def credited_rewards(self) -> np.ndarray:
        """float64[T, E]: the rewards with each settled job's part (and, with ``brownout_credit``,
        each stopped job's part of a brownout) moved to the last decision on that job before it."""
        rewards = self.rewards.astype(np.float64)
        if not self.per_job_credit:
            return rewards
        self._check_recorded()
        for env in range(self.n_envs):
            last: dict[int, int] = {}  # job -> step of its last decision, this episode, this rollout
            for t in range(self.buffer_size):
                if self.episode_starts[t, env]:
                    last = {}
                job = int(self.decided[t, env])
                if job >= 0:
                    last[job] = t
                jobs, parts = self.settled[t][env]
                for j, part in zip(jobs.tolist(), parts.tolist(), strict=True):
                    src = last.get(j)
                    if src is not None and src != t:
                        rewards[t, env] -= part
                        rewards[src, env] += part
        return rewards

    def _check_recorded(self) -> None:
        if np.isnan(self.dt_s).any():
            raise RuntimeError(
                "the step infos were not recorded: add agents.credit.StepInfoRecorder to the callbacks"
            )

    def compute_returns_and_advantage(self, last_values: th.Tensor, dones: np.ndarray) -> None:
        """GAE with per-step discounts and the credited rewards (SB3's loop otherwise).

        With ``lagged_credit``, from the second rollout on, the buffer then holds the previous
        rollout with its advantages and returns computed over both (the settlements the current
        one saw credited to the previous one's decisions, the λ-returns running on into the
        current one); the current rollout waits for the next update. The first rollout is
        trained on at once and again, lagged, with the second.
        """
        if not self.lagged_credit:
            self._returns_and_advantage(last_values, dones)
            return
        current = {name: getattr(self, name) for name in _ROLLOUT_FIELDS}
        previous, self._previous = self._previous, current
        if previous is None:
            self._returns_and_advantage(last_values, dones)
            return
        size = self.buffer_size
        for name in _ROLLOUT_FIELDS:
            before, after = previous[name], current[name]
            setattr(self, name, before + after if name == "settled" else np.concatenate((before, after)))
        self.buffer_size = 2 * size
        self.advantages = np.zeros((2 * size, self.n_envs), dtype=np.float32)
        try:
            self._returns_and_advantage(last_values, dones)
        finally:
            self.buffer_size = size
        for name in _ROLLOUT_FIELDS:
            setattr(self, name, previous[name])
        self.advantages, self.returns = self.advantages[:size].copy(), self.returns[:size].copy()

    def _returns_and_advantage(self, last_values: th.Tensor, dones: np.ndarray) -> None:
        last_values = last_values.clone().cpu().numpy().flatten()
        rewards, gammas = self.credited_rewards().astype(np.float32), self.step_discounts()
        last_gae_lam = 0
        for step in reversed(range(self.buffer_size)):
            if step == self.buffer_size - 1:
                next_non_terminal = 1.0 - dones.astype(np.float32)
                next_values = last_values
            else:
                next_non_terminal = 1.0 - self.episode_starts[step + 1]
                next_values = self.values[step + 1]
            gamma = gammas[step]
            delta = rewards[step] + gamma * next_values * next_non_terminal - self.values[step]
            last_gae_lam = delta + gamma * self.gae_lambda * next_non_terminal * last_gae_lam
            self.advantages[step] = last_gae_lam
        self.returns = self.advantages + self.values
        if self.shared_stream > 1:
            self.advantages = self.shared_stream_advantages()

    def shared_stream_advantages(self) -> np.ndarray:
        """float32[T, E]: λ-return minus the group's leave-one-out λ-return at the same stream time.

        A step's time is its decision's (``time_s − dt_s`` of its info). A partner's return at
        that time is its return from its latest decision at or before it, if the partner's
        rollout reaches that time on the same stream; otherwise the GAE advantage stays.
        """
        self._check_recorded()
        if (self.stream < 0).any():
            raise RuntimeError("shared_stream needs the envs wrapped in agents.credit.SharedStreamSeeds")
        decided_at = self.time_s - self.dt_s
        advantages = self.advantages.copy()
        k = self.shared_stream
        for i in range(self.n_envs):
            group = range(i - i % k, i - i % k + k)
            total = np.zeros(self.buffer_size)
            count = np.zeros(self.buffer_size)
            for j in group:
                if j == i:
                    continue
                for stream in np.unique(self.stream[:, i]):
                    rows_i = np.flatnonzero(self.stream[:, i] == stream)
                    rows_j = np.flatnonzero(self.stream[:, j] == stream)
                    if rows_j.size == 0:
                        continue
                    t_i, t_j = decided_at[rows_i, i], decided_at[rows_j, j]
                    at = np.searchsorted(t_j, t_i, side="right") - 1
                    ok = (at >= 0) & (t_i <= t_j[-1])
                    total[rows_i[ok]] += self.returns[rows_j[at[ok]], j]
                    count[rows_i[ok]] += 1
            use = count > 0
            advantages[use, i] = self.returns[use, i] - total[use] / count[use]
        return advantages.astype(np.float32)


def _job_parts(info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """(jobs, reward parts) of one step: its settlements, then the brownouts' parts."""
    settled, brown = info["settled"], info["brownouts"]
    if brown["jobs"].size == 0:
        return settled["jobs"], settled["reward"]
    jobs = np.concatenate((settled["jobs"], brown["jobs"]))
    return jobs, np.concatenate((settled["reward"], brown["reward"]))


class SharedStreamSeeds(gymnasium.Wrapper):
    """Plays the streams ``base_seed, base_seed + 1, ...`` in order, one per episode.

    Every env of a shared-stream group gets the same ``base_seed``, so their e-th episodes have
    the same epoch and job stream whatever actions they took before. A seed passed to
    ``reset`` is ignored (the vector env's first seeding). ``info["stream_seed"]`` names the
    episode's seed in every step's info.
    """

    def __init__(self, env: gymnasium.Env, base_seed: int) -> None:
        super().__init__(env)
        self.base_seed, self.episodes, self.stream_seed = int(base_seed), 0, -1

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self.stream_seed = self.base_seed + self.episodes
        self.episodes += 1
        obs, info = self.env.reset(seed=self.stream_seed, options=options)
        return obs, {**info, "stream_seed": self.stream_seed}

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["stream_seed"] = self.stream_seed
        return obs, reward, terminated, truncated, info


def stream_base_seed(seed: int, env_index: int, group_size: int) -> int:
    """The first stream seed of training env ``env_index`` (groups of ``group_size`` share it)."""
    return STREAM_SEED_BASE + 100_000 * int(seed) + 10_000 * (env_index // group_size)


class StepInfoRecorder(BaseCallback):
    """Hands each step's infos to a :class:`CreditRolloutBuffer` (called before SB3 adds the step)."""

    def _on_step(self) -> bool:
        buffer = getattr(self.model, "rollout_buffer", None)
        if isinstance(buffer, CreditRolloutBuffer):
            buffer.record(self.locals["infos"])
        return True


def buffer_settings(algo: str, hyperparams: dict[str, Any]) -> dict[str, Any]:
    """Constructor arguments for the credit switches in ``hyperparams`` (removed from it).

    Raises:
        ValueError: a switch on an algorithm other than MaskablePPO, or with reward normalisation.
    """
    tau = hyperparams.pop("time_constant_h", None)
    per_job = hyperparams.pop("per_job_credit", False)
    if not isinstance(per_job, bool):
        raise ValueError(f"per_job_credit must be true or false, got {per_job!r}")
    brownout = hyperparams.pop("brownout_credit", False)
    if not isinstance(brownout, bool):
        raise ValueError(f"brownout_credit must be true or false, got {brownout!r}")
    lagged = hyperparams.pop("lagged_credit", False)
    if not isinstance(lagged, bool):
        raise ValueError(f"lagged_credit must be true or false, got {lagged!r}")
    shared = hyperparams.pop("shared_stream", 1)
    if shared is None:
        shared = 1
    if isinstance(shared, bool) or not isinstance(shared, int) or shared < 1:
        raise ValueError(f"shared_stream must be an integer >= 1 (envs per stream group), got {shared!r}")
    _check_combination(per_job, brownout, lagged, shared)
    if shared > 1 and int(hyperparams.get("n_envs", 1)) % shared:
        raise ValueError(f"shared_stream={shared} must divide n_envs={hyperparams.get('n_envs', 1)}")
    if tau is not None and (isinstance(tau, bool) or not isinstance(tau, int | float) or not tau > 0):
        raise ValueError(f"time_constant_h must be a positive number of hours, got {tau!r}")
    if tau is None and not per_job and shared == 1:
        return {}
    if algo != "maskable_ppo":
        raise ValueError(
            f"time_constant_h, per_job_credit and shared_stream need algo maskable_ppo, not {algo}"
        )
    if per_job and hyperparams.get("normalize"):
        raise ValueError("per_job_credit moves raw rewards: it needs normalize: false")
    return {
        "rollout_buffer_class": CreditRolloutBuffer,
        "rollout_buffer_kwargs": {
            "time_constant_h": tau,
            "per_job_credit": per_job,
            **({"brownout_credit": True} if brownout else {}),
            "shared_stream": shared,
            **({"lagged_credit": True} if lagged else {}),
        },
    }


def _check_combination(per_job: bool, brownout: bool, lagged: bool, shared: int) -> None:
    """``brownout_credit`` and ``lagged_credit`` need ``per_job_credit``; the lag does not
    combine with shared streams."""
    if brownout and not per_job:
        raise ValueError("brownout_credit moves penalties onto placements: it needs per_job_credit")
    if lagged and not per_job:
        raise ValueError("lagged_credit waits for settlements to credit them: it needs per_job_credit")
    if lagged and shared > 1:
        raise ValueError("lagged_credit and shared_stream do not combine (yet): choose one")


class CloneAnchor(BaseCallback):
    """Adds the gradient of ``coef`` · KL(π_start ‖ π) to every optimizer step of the policy.

    π_start is a frozen copy of the policy when training starts (the clone). Before each of
    PPO's optimizer steps, a pre-step hook draws a minibatch (the model's ``batch_size``) of the
    current rollout's observations, computes the KL over their unmasked actions and adds its
    gradient (clipped to the model's ``max_grad_norm``) to the PPO gradient, so Adam sees one
    combined gradient: a proximal term in the loss. (Separate optimizer steps on the KL alone
    do not work: near the clone its gradient is tiny, and Adam's normalisation blows it up into
    full-size random steps.) Logged as ``guard/kl_to_clone``, the mean KL over the last update.
    """

    def __init__(self, coef: float, seed: int = 0) -> None:
        super().__init__()
        number = isinstance(coef, int | float) and not isinstance(coef, bool)
        if not (number and np.isfinite(coef) and coef > 0):
            raise ValueError(f"clone_kl_coef must be a positive number, got {coef!r}")
        self.coef = float(coef)
        self.rng = np.random.default_rng(seed)
        self.anchor: Any = None
        self.kls: list[float] = []
        self._hook: Any = None

    def _on_training_start(self) -> None:
        self.anchor = copy.deepcopy(self.model.policy)
        self.anchor.set_training_mode(False)
        for parameter in self.anchor.parameters():
            parameter.requires_grad_(False)
        self._hook = self.model.policy.optimizer.register_step_pre_hook(self._add_kl_gradient)

    def _on_training_end(self) -> None:
        if self._hook is not None:
            self._hook.remove()
            self._hook = None

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.kls:
            self.logger.record("guard/kl_to_clone", float(np.mean(self.kls)))
        self.kls = []

    def _add_kl_gradient(self, optimizer: th.optim.Optimizer, args: Any, kwargs: Any) -> None:
        buffer, policy = self.model.rollout_buffer, self.model.policy
        if not buffer.generator_ready:  # not inside PPO's update
            return
        size = buffer.buffer_size * buffer.n_envs
        rows = self.rng.integers(0, size, min(int(self.model.batch_size), size))
        obs = buffer.to_torch(buffer.observations[rows])
        masks = buffer.action_masks[rows].reshape(len(rows), -1)
        with th.no_grad():
            ref = self.anchor.get_distribution(obs, action_masks=masks).distribution
        kl = clone_kl(ref, policy.get_distribution(obs, action_masks=masks).distribution)
        params = [p for p in policy.parameters() if p.requires_grad]
        grads = th.autograd.grad(self.coef * kl, params, allow_unused=True)
        pairs = [(p, g) for p, g in zip(params, grads, strict=True) if g is not None]
        norm = th.linalg.vector_norm(th.stack([th.linalg.vector_norm(g) for _, g in pairs]))
        scale = min(1.0, float(self.model.max_grad_norm) / (float(norm) + 1e-12))
        for parameter, grad in pairs:
            parameter.grad = grad * scale if parameter.grad is None else parameter.grad + grad * scale
        self.kls.append(float(kl.detach()))


def clone_kl(ref: th.distributions.Categorical, cur: th.distributions.Categorical) -> th.Tensor:
    """Mean KL(ref ‖ cur) over a batch of masked categoricals (masked actions have p_ref = 0)."""
    p = ref.probs
    terms = th.where(p > 0, p * (ref.logits - cur.logits), th.zeros_like(p))
    return terms.sum(dim=-1).mean()


def guard_callbacks(hyperparams: dict[str, Any], warm_started: bool) -> list[BaseCallback]:
    """The :class:`CloneAnchor` that ``clone_kl_coef`` asks for (none without it).

    Raises:
        ValueError: ``clone_kl_coef`` without a starting policy to anchor to (no ``--init-from``).
    """
    coef = hyperparams.get("clone_kl_coef")
    if coef is None:
        return []
    if not warm_started:
        raise ValueError("clone_kl_coef anchors to the starting policy: it needs --init-from")
    return [CloneAnchor(coef)]
