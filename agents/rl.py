"""Reinforcement-learning agents: model factories, hyperparameters, the SatScorer policy, cloning.

>>> hp = load_hyperparams("maskable_ppo", "orbit_env/WalkerLEO-v1", {"learning_rate": 1e-4})
>>> model = make_model("maskable_ppo", vec_env, hp, seed=0, tensorboard_log=None)
>>> stats = behaviour_clone(model, "orbit_env/WalkerLEO-v1", teacher="eclipse_safe", episodes=20)
>>> model.learn(1_000_000)

Loading and inspecting saved models is :mod:`agents.models` (``load_model``, ``detect_algo``).

Hyperparameters live in ``agents/hyperparams/<algo>.yml`` (package data), one entry per env id
with a ``default`` entry as fallback: files rl-baselines3-zoo reads as they are. Their top-level
``finetune`` section, which the zoo never reads, holds per entry the block laid over it when the
policy starts as a clone of a heuristic (small learning rate, ``target_kl``).

``SatScorer`` (:class:`SatScorerPolicy`, MaskablePPO only) is the permutation-equivariant
policy of design §3.6: one small MLP with shared weights scores every satellite's row, so
permuting the satellites permutes their logits. Its weights do not depend on the number of
satellites, but SB3 checks a model's observation shape at load time, so a saved model runs only on
constellations of the size it was trained on (copy its ``policy.state_dict()`` into a new model
to move it to another size).
"""

from __future__ import annotations

import inspect
import time
import warnings
from collections.abc import Mapping, Sequence
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch as th
import yaml
from gymnasium import spaces
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3 import DQN
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.utils import LinearSchedule
from torch import nn

import orbit_env  # noqa: F401  (registers the orbit_env/* ids)
from agents.base import defer_s_of, flatten_observation, layout_for
from agents.credit import CREDIT_KEYS, GUARD_KEYS, buffer_settings
from agents.heuristics import HEURISTICS
from agents.models import algo_class, check_algo, check_observation_space, flat_size, load_model
from orbit_env.envs.observation import GLOBAL_COLUMNS, JOB_COLUMNS, SAT_COLUMNS, ObservationLayout

# The shipped ``<algo>.yml`` files: package data of ``agents``, so an installed package finds them.
HYPERPARAMS_DIR = resources.files("agents") / "hyperparams"
# Top-level section of a hyperparams file with the fine-tuning blocks, keyed like the entries;
# rl-baselines3-zoo looks up only the env id and ``default``, so it never reads this section.
FINETUNE_SECTION = "finetune"
# Keys of a hyperparams entry that are not constructor arguments of the algorithm.
EXTRA_KEYS = ("n_envs", "n_timesteps", "normalize", "finetune", *CREDIT_KEYS, *GUARD_KEYS)
# Constructor arguments that train.py sets itself; not accepted from a yml file.
RESERVED_KEYS = ("env", "tensorboard_log", "seed", "device", "verbose", "_init_setup_model")
SCHEDULE_KEYS = ("learning_rate", "clip_range", "clip_range_vf")


# -- hyperparameters ------------------------------------------------------------------------------
def parse_value(text: str) -> Any:
    """A command-line value: YAML (``true``, ``[64, 64]``, ``{a: 1}``), with ``1e-4`` read as a float."""
    value = yaml.safe_load(text)
    return _coerce_number(value)


def parse_key_values(items: Sequence[str] | None, what: str = "argument") -> dict[str, Any]:
    """``["a=1", "b=[64, 64]"]`` -> ``{"a": 1, "b": [64, 64]}`` (values through :func:`parse_value`)."""
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} {item!r} is not key=value")
        out[key.strip()] = parse_value(text)
    return out


def _coerce_number(value: Any) -> Any:
    # PyYAML follows YAML 1.1, where "1e-4" (no dot) is a string; every user means a float.
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
        try:
            return float(value)
        except ValueError:
            return value
    return value


def allowed_keys(algo: str) -> tuple[str, ...]:
    """Hyperparameter keys ``algo`` understands: its constructor arguments plus :data:`EXTRA_KEYS`."""
    cls = algo_class(algo)
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    return tuple(p for p in params if p not in RESERVED_KEYS) + EXTRA_KEYS


def load_hyperparams(
    algo: str,
    env_id: str,
    overrides: Mapping[str, Any] | None = None,
    finetune: bool = False,
    hyperparams_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The hyperparameters of ``algo`` on ``env_id``: yml entry (or ``default``), then overrides.

    Args:
        algo: a name of :data:`agents.models.ALGOS`.
        env_id: registered id; the entry is looked up as given, with and without ``orbit_env/``.
        overrides: values that replace the file's (e.g. from ``--hyperparams key=value``).
        finetune: lay the entry's fine-tuning block over it (used when the policy starts as a
            clone of a heuristic): the file's top-level ``finetune`` section under the entry's
            key (else under ``default``), or a ``finetune`` key inside the entry (the older
            form, which rl-zoo rejects).
        hyperparams_dir: folder of ``<algo>.yml`` files (default: the package's
            ``agents/hyperparams/``, :data:`HYPERPARAMS_DIR`).

    Returns:
        A plain dict (YAML-serialisable; :func:`make_model` turns strings into objects) that
        always has ``policy`` (a name of :data:`POLICIES` for the project's own classes) and
        ``n_envs``.

    Raises:
        FileNotFoundError: no ``<algo>.yml`` in the folder (the path is named).
        ValueError: unknown algorithm or keys (named), no entry and no ``default``, a fine-tuning
            block given twice, or an invalid ``normalize``.
    """
    algo = check_algo(algo)
    path = (Path(hyperparams_dir) if hyperparams_dir else HYPERPARAMS_DIR) / f"{algo}.yml"
    if not path.is_file():
        raise FileNotFoundError(f"no hyperparameters for {algo}: {path} does not exist")
    table = yaml.safe_load(path.read_text()) or {}
    sections = table.pop(FINETUNE_SECTION, None) or {}
    short = env_id.split("/")[-1]
    key = next((k for k in (env_id, f"orbit_env/{short}", short, "default") if k in table), None)
    if key is None:
        raise ValueError(f"{path} has no entry for {env_id} and no 'default' entry")
    entry = dict(table[key] or {})
    block = entry.pop("finetune", None) or {}
    if block and sections.get(key):
        where = f"in its entry and in the {FINETUNE_SECTION!r} section"
        raise ValueError(f"{path}: {key!r} has a finetune block {where}")
    # the section's entry for this key, else its ``default``: a clone is never fine-tuned at RL's rate
    block = block or sections.get(key) or sections.get("default") or {}
    if finetune:
        entry.update(block)
    entry.update(overrides or {})
    unknown = sorted(set(entry) - set(allowed_keys(algo)))
    if unknown:
        raise ValueError(
            f"unknown {algo} hyperparameter(s): {', '.join(unknown)}; "
            f"known: {', '.join(sorted(allowed_keys(algo)))}"
        )
    entry = {k: _coerce_number(v) for k, v in entry.items()}
    entry.setdefault("policy", "MlpPolicy")
    entry.setdefault("n_envs", 1)
    entry["policy"] = policy_name(entry["policy"])
    normalize_kwargs(entry)  # only to fail here, before a run folder exists
    entry.pop("finetune", None)
    return entry


def policy_name(policy: Any) -> Any:
    """The short name of one of the project's policies given by import path (rl-zoo's form).

    ``"agents.rl.SatScorerPolicy"`` -> ``"SatScorer"``; anything else is returned unchanged.
    """
    for name, cls in POLICIES.items():
        if policy == f"{cls.__module__}.{cls.__qualname__}":
            return name
    return policy


def normalize_kwargs(hyperparams: Mapping[str, Any]) -> dict[str, Any] | None:
    """VecNormalize keyword arguments from an entry's ``normalize`` (None: no normalisation).

    ``true`` normalises the reward only (``norm_obs=False, norm_reward=True``): observations are
    already scaled to [-1, 1] and carry the action mask. rl-zoo's string and dict forms
    (``"dict(norm_obs=False, norm_reward=True)"``) give the keyword arguments themselves;
    ``gamma`` defaults to the entry's, as in rl-zoo.

    Raises:
        ValueError: not a bool, dict or dict string, or ``norm_obs`` true.
    """
    value = hyperparams.get("normalize")
    if value is None or value is False:
        return None
    if value is True:
        kwargs: Any = {"norm_obs": False, "norm_reward": True}
    elif isinstance(value, str):
        try:
            kwargs = eval(value, {"__builtins__": {}}, {"dict": dict})  # rl-zoo evaluates it too
        except Exception as err:
            raise ValueError(f"normalize: cannot read {value!r} ({err})") from None
    else:
        kwargs = value
    if not isinstance(kwargs, dict):
        raise ValueError(f"normalize must be true, false or a dict of VecNormalize arguments, got {value!r}")
    kwargs = dict(kwargs)
    kwargs.setdefault("norm_obs", False)
    if kwargs["norm_obs"]:
        raise ValueError(
            "normalize: norm_obs is not supported (observations are already scaled to [-1, 1] and carry "
            'the action mask); use normalize: true or "dict(norm_obs=False, norm_reward=True)"'
        )
    if "gamma" in hyperparams:
        kwargs.setdefault("gamma", float(hyperparams["gamma"]))
    return kwargs


def _schedule(value: Any) -> Any:
    """``"lin_3e-4"`` -> a linear schedule from 3e-4 to 0 (rl-zoo's notation); numbers unchanged."""
    if isinstance(value, str) and value.startswith("lin_"):
        return LinearSchedule(float(value[4:]), 0.0, 1.0)
    return value


def _policy_kwargs(value: Any) -> dict[str, Any]:
    """policy_kwargs from a dict or an rl-zoo string such as ``"dict(net_arch=[64, 64])"``."""
    if value is None:
        return {}
    if isinstance(value, str):
        # rl-zoo evaluates this string too; only names for building kwargs are in scope.
        value = eval(value, {"__builtins__": {}}, {"dict": dict, "nn": nn, "th": th, "list": list})
    if not isinstance(value, dict):
        raise ValueError(f"policy_kwargs must be a dict or a 'dict(...)' string, got {value!r}")
    out = dict(value)
    act = out.get("activation_fn")
    if isinstance(act, str):  # "relu", "tanh", "nn.ReLU"
        name = act.split(".")[-1].lower()
        table = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "leakyrelu": nn.LeakyReLU, "gelu": nn.GELU}
        if name not in table:
            raise ValueError(f"unknown activation_fn {act!r}; one of {', '.join(table)}")
        out["activation_fn"] = table[name]
    return out


def model_kwargs(algo: str, hyperparams: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor keyword arguments from resolved hyperparameters (schedules and policy built)."""
    algo = check_algo(algo)
    kwargs = {k: v for k, v in hyperparams.items() if k not in EXTRA_KEYS}
    kwargs.update(buffer_settings(algo, dict(hyperparams)))  # the credit switches (agents.credit)
    policy = kwargs.get("policy", "MlpPolicy")
    if policy in POLICIES:
        if algo != "maskable_ppo":
            raise ValueError(f"policy {policy!r} needs algo maskable_ppo, not {algo}")
        kwargs["policy"] = POLICIES[policy]
    for key in SCHEDULE_KEYS:
        if key in kwargs:
            kwargs[key] = _schedule(kwargs[key])
    if "policy_kwargs" in kwargs:
        kwargs["policy_kwargs"] = _policy_kwargs(kwargs["policy_kwargs"])
    if isinstance(kwargs.get("train_freq"), list):  # DQN: [1, "episode"]
        kwargs["train_freq"] = tuple(kwargs["train_freq"])
    return kwargs


def make_model(
    algo: str,
    env: Any,
    hyperparams: Mapping[str, Any],
    seed: int | None = None,
    tensorboard_log: str | Path | None = None,
    device: str = "cpu",
    verbose: int = 0,
) -> BaseAlgorithm:
    """A new ``algo`` model on ``env`` (a VecEnv or env) from :func:`load_hyperparams` output."""
    kwargs = model_kwargs(algo, hyperparams)
    policy = kwargs.pop("policy", "MlpPolicy")
    if algo == "dqn":
        warnings.warn(
            "DQN cannot use action masks: an invalid action counts as reject", UserWarning, stacklevel=2
        )
    return algo_class(algo)(
        policy,
        env,
        seed=seed,
        tensorboard_log=str(tensorboard_log) if tensorboard_log else None,
        device=device,
        verbose=verbose,
        **kwargs,
    )


# -- the SatScorer policy (design §3.6, §6) -------------------------------------------------------
class LayoutExtractor(BaseFeaturesExtractor):
    """The flat observation ``[B, N·F + J + G]``, from the flat ``Box`` or the ``obs_mode="dict"`` form."""

    def __init__(self, observation_space: spaces.Space) -> None:
        super().__init__(observation_space, flat_size(observation_space))
        self.is_dict = isinstance(observation_space, spaces.Dict)

    def forward(self, observations: Any) -> th.Tensor:
        if not self.is_dict:
            return observations.flatten(1)
        sats = observations["satellites"]
        return th.cat([sats.flatten(1), observations["job"], observations["globals"]], dim=1)


def _mlp(sizes: Sequence[int], activation_fn: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), activation_fn()]
    return nn.Sequential(*layers)


class SatScorerNet(nn.Module):
    """Actor and critic over the flat observation, shared weights across satellites.

    Each satellite's row ``[F]`` is concatenated with the job ``[J]`` and global ``[G]`` blocks
    and encoded by one MLP into ``e_i [H]``; a linear head scores it (logit of "place on i"). The
    pooled embedding ``[mean_i e_i, max_i e_i, job, globals]`` gives the two logits of defer and
    reject. The critic has its own encoder of the same shape (so fitting the value never moves
    the actor) and feeds its pooled embedding to the value head.

    ``forward_actor`` returns the logits ``[B, N + 2]`` (``latent_dim_pi = N + 2``; the policy's
    ``action_net`` is the identity); ``forward_critic`` returns ``[B, H]``.
    """

    def __init__(self, obs_dim: int, n_actions: int, net_arch: Sequence[int], activation_fn: type[nn.Module]):
        super().__init__()
        f, j, g = len(SAT_COLUMNS), len(JOB_COLUMNS), len(GLOBAL_COLUMNS)
        n_sats = ObservationLayout.satellites_for_size(obs_dim)
        if n_sats is None:
            raise ValueError(f"SatScorer: an observation of {obs_dim} entries matches no orbit_env layout")
        if n_actions != n_sats + 2:
            raise ValueError(f"SatScorer: {n_sats} satellites need {n_sats + 2} actions, got {n_actions}")
        if not net_arch:
            raise ValueError("SatScorer: net_arch needs at least one hidden layer, e.g. [64, 64]")
        self.n_sats, self.n_sat_features, self.n_context = n_sats, f, j + g
        hidden = int(net_arch[-1])
        sizes = [f + j + g, *map(int, net_arch)]
        pooled = 2 * hidden + j + g
        self.actor_encoder = _mlp(sizes, activation_fn)
        self.score_head = nn.Linear(hidden, 1)
        self.choice_head = nn.Sequential(nn.Linear(pooled, hidden), activation_fn(), nn.Linear(hidden, 2))
        self.critic_encoder = _mlp(sizes, activation_fn)
        self.critic_trunk = nn.Sequential(nn.Linear(pooled, hidden), activation_fn())
        self.latent_dim_pi = n_sats + 2
        self.latent_dim_vf = hidden

    def output_layers(self) -> list[nn.Module]:
        """The layers that produce logits (initialised small, so the first policy is near uniform)."""
        return [self.score_head, self.choice_head[-1]]

    def _rows(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        n, f = self.n_sats, self.n_sat_features
        sats = obs[:, : n * f].reshape(obs.shape[0], n, f)
        context = obs[:, n * f :]
        rows = th.cat([sats, context.unsqueeze(1).expand(-1, n, -1)], dim=-1)
        return rows, context

    @staticmethod
    def _pool(emb: th.Tensor, context: th.Tensor) -> th.Tensor:
        return th.cat([emb.mean(dim=1), emb.amax(dim=1), context], dim=-1)

    def forward_actor(self, obs: th.Tensor) -> th.Tensor:
        rows, context = self._rows(obs)
        emb = self.actor_encoder(rows)  # [B, N, H]
        scores = self.score_head(emb).squeeze(-1)  # [B, N]
        tail = self.choice_head(self._pool(emb, context))  # [B, 2]: defer, reject
        return th.cat([scores, tail], dim=-1)

    def forward_critic(self, obs: th.Tensor) -> th.Tensor:
        rows, context = self._rows(obs)
        return self.critic_trunk(self._pool(self.critic_encoder(rows), context))

    def forward(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        return self.forward_actor(obs), self.forward_critic(obs)


class SatScorerPolicy(MaskableActorCriticPolicy):
    """MaskablePPO policy with a shared-weight per-satellite scorer (``policy: SatScorer``).

    Keyword arguments as MaskableActorCriticPolicy; ``net_arch`` is the list of hidden sizes of
    the per-satellite encoder (default ``[64, 64]``; a ``dict(pi=..., vf=...)`` uses ``pi``) and
    ``activation_fn`` defaults to ReLU (max pooling works on non-saturating units). Works with the
    flat and the ``obs_mode="dict"`` observation. Permuting the satellites of an observation
    permutes the first N logits the same way and leaves defer, reject and the value unchanged.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Any,
        net_arch: Sequence[int] | dict[str, Sequence[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = LayoutExtractor,
        **kwargs: Any,
    ) -> None:
        if net_arch is None:
            net_arch = [64, 64]
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch,
            activation_fn=activation_fn,
            features_extractor_class=features_extractor_class,
            **kwargs,
        )

    def _build_mlp_extractor(self) -> None:
        arch = self.net_arch["pi"] if isinstance(self.net_arch, dict) else self.net_arch
        self.mlp_extractor = SatScorerNet(
            self.features_dim, int(self.action_space.n), list(arch), self.activation_fn
        ).to(self.device)

    def _build(self, lr_schedule: Any) -> None:
        self._build_mlp_extractor()
        self.action_net = nn.Identity()  # the scorer already outputs the N + 2 logits
        self.value_net = nn.Linear(self.mlp_extractor.latent_dim_vf, 1)
        if self.ortho_init:
            self.mlp_extractor.apply(partial(self.init_weights, gain=np.sqrt(2)))
            for layer in self.mlp_extractor.output_layers():
                layer.apply(partial(self.init_weights, gain=0.01))
            self.value_net.apply(partial(self.init_weights, gain=1.0))
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)


# Policy names a hyperparams entry may use besides SB3's own; make_model passes the class itself,
# so no library class is changed.
POLICIES: dict[str, type[MaskableActorCriticPolicy]] = {"SatScorer": SatScorerPolicy}


# -- behaviour cloning --------------------------------------------------------------------------
def collect_teacher(
    env_id: str,
    teacher: str = "eclipse_safe",
    episodes: int = 20,
    env_kwargs: Mapping[str, Any] | None = None,
    seed: int = 0,
    progress: bool = False,
    student: Any = None,
    first_episode: int = 0,
    tie_tolerance: float = 0.0,
) -> dict[str, np.ndarray]:
    """Roll out a heuristic on ``split="train"`` episodes; flat observations, actions, masks, rewards.

    Episode i uses seed ``100_000 · (seed + 1) + first_episode + i``: disjoint from the training
    envs' seeds (``seed, seed + 1, ...``), train.py's validation seeds (500–599) and evaluation
    seeds (1000+).

    With a ``student`` (a policy with SB3's ``predict``), the student's actions are played and the
    teacher only labels the states the student reaches (DAgger); ``actions`` are then the
    teacher's labels and ``played`` the student's actions.

    With ``tie_tolerance > 0``, ``ties bool[T, N + 2]`` too: the actions the teacher rates as
    good as its own (:attr:`agents.base.HeuristicPolicy.ties`).

    Returns:
        ``obs float32[T, D]``, ``actions int64[T]`` (the teacher's), ``played int64[T]``,
        ``masks bool[T, N + 2]``, ``rewards float32[T]``, ``episode_starts bool[T]``,
        ``returns float64[E]``, ``on_time_value_rate float64[E]`` (and ``ties``).
    """
    if teacher not in HEURISTICS:
        raise ValueError(f"unknown teacher {teacher!r}; heuristics: {', '.join(HEURISTICS)}")
    env = gymnasium.make(env_id, split="train", **dict(env_kwargs or {}))
    obs_l, act_l, play_l, mask_l, rew_l, start_l, returns, rates = [], [], [], [], [], [], [], []
    tie_l: list[np.ndarray] = []
    desc = f"cloning {teacher}" if student is None else f"DAgger: {teacher} labels the clone's states"
    bar = _bar(progress, episodes, desc, "ep")
    for i in range(episodes):
        policy = HEURISTICS[teacher](seed=seed + first_episode + i, defer_s=defer_s_of(env))
        policy.tie_tolerance = tie_tolerance
        obs, info = env.reset(seed=100_000 * (seed + 1) + first_episode + i)
        start, total, done = True, 0.0, False
        while not done:
            flat = flatten_observation(obs)
            mask = np.asarray(env.unwrapped.action_masks(), dtype=bool)
            action, _ = policy.predict(obs, episode_start=np.array([start]), deterministic=True)
            played = action
            if student is not None:
                played, _ = student.predict(obs, deterministic=True, **_mask_kwargs(student, mask))
            obs_l.append(flat.astype(np.float32, copy=False))
            act_l.append(int(action))
            if tie_tolerance > 0:
                tie_l.append(policy.ties[0])
            play_l.append(int(played))
            mask_l.append(mask)
            start_l.append(start)
            obs, reward, terminated, truncated, info = env.step(played)
            rew_l.append(float(reward))
            total += float(reward)
            start, done = False, terminated or truncated
        returns.append(total)
        rates.append(float(info["episode_metrics"]["on_time_value_rate"]))
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    env.close()
    ties = {"ties": np.stack(tie_l)} if tie_tolerance > 0 else {}
    return {
        **ties,
        "obs": np.stack(obs_l),
        "actions": np.asarray(act_l, dtype=np.int64),
        "played": np.asarray(play_l, dtype=np.int64),
        "masks": np.stack(mask_l),
        "rewards": np.asarray(rew_l, dtype=np.float32),
        "episode_starts": np.asarray(start_l, dtype=bool),
        "returns": np.asarray(returns),
        "on_time_value_rate": np.asarray(rates),
    }


def _mask_kwargs(policy: Any, mask: np.ndarray) -> dict[str, Any]:
    """``action_masks=mask`` for a maskable policy, nothing for the others."""
    return {"action_masks": mask} if isinstance(policy, MaskableActorCriticPolicy) else {}


def _agreement(chosen: np.ndarray, target: np.ndarray, n_sats: int) -> dict[str, float | None]:
    """How often ``chosen`` was the teacher's ``target`` action: over all decisions
    (``accuracy``) and over those where the teacher placed the job (``accuracy_placements``,
    ``None`` if it never did)."""
    placed = target < n_sats
    return {
        "accuracy": float((chosen == target).mean()),
        "accuracy_placements": float((chosen[placed] == target[placed]).mean()) if placed.any() else None,
    }


def discounted_returns(rewards: np.ndarray, episode_starts: np.ndarray, gamma: float) -> np.ndarray:
    """Monte-Carlo returns ``G_t = r_t + γ G_{t+1}`` within each episode (no bootstrap at its end)."""
    out = np.zeros(len(rewards), dtype=np.float64)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        out[t] = running
        if episode_starts[t]:
            running = 0.0
    return out


def behaviour_clone(
    model: BaseAlgorithm,
    env_id: str,
    teacher: str = "eclipse_safe",
    episodes: int = 20,
    epochs: int = 10,
    env_kwargs: Mapping[str, Any] | None = None,
    seed: int = 0,
    batch_size: int = 256,
    learning_rate: float = 1e-3,
    fit_value: bool = True,
    progress: bool = False,
    dagger_rounds: int = 0,
    dagger_episodes: int = 5,
    dagger_epochs: int | None = None,
    tie_tolerance: float = 0.0,
) -> dict[str, Any]:
    """Clone a heuristic into an actor-critic policy before RL fine-tuning (design §3.6).

    1. Roll out ``teacher`` for ``episodes`` train-split episodes (:func:`collect_teacher`).
    2. Supervised pass: minimise the cross-entropy of the policy's masked action distribution
       against the teacher's actions (Adam, ``epochs`` passes, minibatches of ``batch_size``).
       With ``tie_tolerance`` τ > 0 the target is a set: the satellites the teacher scores
       within τ·max(|its best score|, 1) of its choice, and the loss −log Σ_set π(a), so a clone that
       puts its probability on any of the teacher's near-equal satellites is not punished (on a
       cluster of near-identical satellites the teacher's argmax among them is arbitrary).
    3. DAgger (Ross et al., 2011), ``dagger_rounds`` times: the clone plays ``dagger_episodes``
       new train episodes, the teacher labels every state the clone reaches, and step 2 runs
       again on all the data so far (``dagger_epochs`` passes, default ``epochs``), so the clone
       learns the teacher's answer in the states its own mistakes lead to (a plain clone sees
       only the teacher's states).
    4. If ``fit_value``, fit the value head to the Monte-Carlo returns (``model.gamma``) of the
       episodes played, with only the parameters the actor does not use, so PPO starts from a
       clone with a critic that does not undo it in its first updates.

    Args:
        model: a MaskablePPO, PPO or A2C model (DQN has no policy distribution to clone into).
        env_id: registered env id; env_kwargs: its config overrides.

    Returns:
        ``{"teacher", "episodes", "samples", "accuracy", "accuracy_placements", "loss",
        "epoch_loss": [...], "epoch_accuracy": [...], "value_loss", "value_explained_variance",
        "teacher_return", "teacher_on_time_value_rate", "dagger": [...], "seconds"}``; accuracy
        is the share of the collected decisions where the policy's most likely valid action is
        the teacher's, ``accuracy_placements`` the same over the decisions where the teacher
        placed the job; with ``tie_tolerance``, ``accuracy_ties`` (the share whose most likely
        action is in the teacher's set) and ``mean_ties`` (the set's mean size where the teacher
        placed). Each ``dagger`` entry is one round: the clone's agreement with the
        teacher on its own states (``accuracy``, ``accuracy_placements``, before that round's
        fit), its mean ``return`` and the ``samples`` added.
    """
    if isinstance(model, DQN):
        raise ValueError("behaviour cloning needs an actor-critic model (maskable_ppo, ppo, a2c), not DQN")
    if isinstance(dagger_rounds, bool) or not isinstance(dagger_rounds, int) or dagger_rounds < 0:
        raise ValueError(f"dagger_rounds must be an integer >= 0, got {dagger_rounds!r}")
    for name, value in (("dagger_episodes", dagger_episodes), ("dagger_epochs", dagger_epochs)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    number = isinstance(tie_tolerance, int | float) and not isinstance(tie_tolerance, bool)
    if not (number and np.isfinite(tie_tolerance) and tie_tolerance >= 0):
        raise ValueError(f"tie_tolerance must be a number >= 0, got {tie_tolerance!r}")
    start_time = time.perf_counter()
    data = collect_teacher(env_id, teacher, episodes, env_kwargs, seed, progress, tie_tolerance=tie_tolerance)
    teacher_stats = {
        "teacher_return": float(data["returns"].mean()),
        "teacher_on_time_value_rate": float(data["on_time_value_rate"].mean()),
    }
    policy = model.policy
    fit = _ActorFit(policy, data, teacher, seed, batch_size, learning_rate)
    epoch_loss, epoch_acc = fit.run(epochs, progress)
    rounds = []
    for r in range(dagger_rounds):
        first = episodes + r * dagger_episodes
        new = collect_teacher(
            env_id, teacher, dagger_episodes, env_kwargs, seed, progress, policy, first, tie_tolerance
        )
        rounds.append(
            {
                **_agreement(new["played"], new["actions"], new["masks"].shape[1] - 2),
                "return": float(new["returns"].mean()),
                "samples": len(new["actions"]),
            }
        )
        data = {k: np.concatenate([data[k], new[k]]) for k in data}
        fit.set_data(data)
        epoch_loss, epoch_acc = fit.run(epochs if dagger_epochs is None else dagger_epochs, progress)
    stats: dict[str, Any] = {
        "teacher": teacher,
        "episodes": episodes,
        "tie_tolerance": float(tie_tolerance),
        **fit.evaluate(),
        "epoch_loss": epoch_loss,
        "epoch_accuracy": epoch_acc,
        **teacher_stats,
        "value_loss": None,
        "value_explained_variance": None,
        "dagger": rounds,
    }
    if fit_value and fit.critic_only:
        returns = discounted_returns(data["rewards"], data["episode_starts"], float(model.gamma))
        bar = _bar(progress, epochs, "fitting the value head", "epoch")
        stats.update(
            _fit_value(
                policy,
                fit.to_obs,
                data["obs"],
                returns,
                fit.critic_only,
                epochs,
                batch_size,
                fit.rng,
                bar=bar,
            )
        )
        if bar is not None:
            bar.close()
    elif fit_value:
        warnings.warn("actor and critic share every parameter: value head not fitted", stacklevel=2)
    policy.set_training_mode(False)
    stats["seconds"] = time.perf_counter() - start_time
    return stats


class _ActorFit:
    """The supervised pass of :func:`behaviour_clone`: the policy's masked action distribution
    fitted to the teacher's actions with Adam on the parameters the actor uses (found by a probe
    gradient); the others (``critic_only``) are left for the value fit."""

    def __init__(
        self,
        policy: Any,
        data: dict[str, np.ndarray],
        teacher: str,
        seed: int,
        batch_size: int,
        learning_rate: float,
    ) -> None:
        self.policy, self.teacher, self.batch_size = policy, teacher, batch_size
        self.masked = isinstance(policy, MaskableActorCriticPolicy)
        self.rng = np.random.default_rng(seed)
        self.device = policy.device
        self.to_obs = _obs_converter(policy.observation_space, data["obs"].shape[-1], self.device)
        self.set_data(data)
        params = [p for p in policy.parameters() if p.requires_grad]
        # Which parameters the actor uses: those that receive a gradient from the policy loss.
        policy.set_training_mode(True)
        probe = self.keep[: min(len(self.keep), batch_size)]
        policy.optimizer.zero_grad()
        self._loss(probe).backward()
        self.actor = [p for p in params if p.grad is not None]
        self.critic_only = [p for p in params if p.grad is None]
        for p in params:
            p.grad = None
        self.optimizer = th.optim.Adam(self.actor, lr=learning_rate)

    def set_data(self, data: dict[str, np.ndarray]) -> None:
        self.obs, self.actions, self.masks = data["obs"], data["actions"], data["masks"]
        self.ties = data.get("ties")  # bool[T, N + 2] set targets, or None: the teacher's action
        valid = self.masks[np.arange(len(self.actions)), self.actions]
        if not valid.all():  # a rule should never pick a masked action; drop such samples if it did
            warnings.warn(
                f"{(~valid).sum()} teacher actions were masked; dropped", RuntimeWarning, stacklevel=3
            )
        self.keep = np.flatnonzero(valid)

    def distribution(self, idx: np.ndarray) -> Any:
        x = self.to_obs(self.obs[idx])
        if self.masked:
            return self.policy.get_distribution(x, action_masks=self.masks[idx])
        return self.policy.get_distribution(x)

    def _loss(self, idx: np.ndarray, dist: Any = None, reduce: bool = True) -> th.Tensor:
        """−log π(teacher's action), or −log Σ π over its set of ties; the mean (or per sample)."""
        dist = self.distribution(idx) if dist is None else dist
        if self.ties is None:
            nll = -dist.log_prob(th.as_tensor(self.actions[idx], device=self.device))
        else:
            ties = th.as_tensor(self.ties[idx] & self.masks[idx], device=self.device)
            logp = dist.distribution.logits  # normalised log-probabilities (masked ones ~ -1e8)
            nll = -th.logsumexp(logp.masked_fill(~ties, -th.inf), dim=-1)
        return nll.mean() if reduce else nll

    def _hits(self, idx: np.ndarray, mode: th.Tensor) -> np.ndarray:
        """bool[len(idx)]: the most likely action is the teacher's (or in its set of ties)."""
        pred = mode.cpu().numpy()
        if self.ties is None:
            return pred == self.actions[idx]
        return self.ties[idx, pred]

    def run(self, epochs: int, progress: bool) -> tuple[list[float], list[float]]:
        """``epochs`` passes over the data; each epoch's mean loss and accuracy."""
        n, batch_size = len(self.keep), self.batch_size
        epoch_loss, epoch_acc = [], []
        bar = _bar(progress, epochs, f"fitting {self.teacher}", "epoch")
        self.policy.set_training_mode(True)
        for _ in range(epochs):
            order = self.rng.permutation(self.keep)
            total_loss, hits = 0.0, 0
            for b in range(0, n, batch_size):
                idx = order[b : b + batch_size]
                dist = self.distribution(idx)
                loss = self._loss(idx, dist)
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.actor, 1.0)
                self.optimizer.step()
                total_loss += float(loss.detach()) * len(idx)
                hits += int(self._hits(idx, _mode(dist)).sum())
            epoch_loss.append(total_loss / n)
            epoch_acc.append(hits / n)
            if bar is not None:
                bar.set_postfix(loss=f"{epoch_loss[-1]:.3f}", accuracy=f"{epoch_acc[-1]:.3f}")
                bar.update()
        if bar is not None:
            bar.close()
        self.policy.set_training_mode(False)
        return epoch_loss, epoch_acc

    def evaluate(self) -> dict[str, Any]:
        """Accuracy and loss over all the data with the trained policy."""
        keep, step = self.keep, 4 * self.batch_size
        pred = np.empty(len(keep), dtype=np.int64)
        loss_sum = 0.0
        self.policy.set_training_mode(False)
        with th.no_grad():
            for b in range(0, len(keep), step):
                idx = keep[b : b + step]
                dist = self.distribution(idx)
                loss_sum += float(self._loss(idx, dist, reduce=False).sum())
                pred[b : b + len(idx)] = _mode(dist).cpu().numpy()
        stats: dict[str, Any] = {
            "samples": int(len(keep)),
            **_agreement(pred, self.actions[keep], self.masks.shape[1] - 2),
            "loss": loss_sum / len(keep),
        }
        if self.ties is not None:
            placed = self.actions[keep] < self.masks.shape[1] - 2
            stats["accuracy_ties"] = float(self.ties[keep, pred].mean())
            stats["mean_ties"] = float(self.ties[keep][placed].sum(axis=1).mean()) if placed.any() else None
        return stats


def _bar(progress: bool, total: int, desc: str, unit: str) -> Any:
    """A tqdm progress bar, or ``None`` without progress output."""
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)


def _mode(dist: Any) -> th.Tensor:
    # Masked distributions put -1e8 on invalid logits, so argmax of the probabilities is the mode.
    return dist.distribution.probs.argmax(dim=-1)


def _obs_converter(space: spaces.Space, size: int, device: th.device) -> Any:
    """Flat numpy observations ``[B, D]`` -> what the policy takes (tensor, or dict for Dict spaces)."""
    if isinstance(space, spaces.Dict):
        layout = layout_for(np.zeros(size))

        def to_dict(x: np.ndarray) -> dict[str, th.Tensor]:
            return {k: th.as_tensor(v, device=device) for k, v in layout.to_dict(x).items()}

        return to_dict
    return lambda x: th.as_tensor(x, device=device)


def _fit_value(
    policy: Any,
    to_obs: Any,
    obs: np.ndarray,
    returns: np.ndarray,
    params: list[th.nn.Parameter],
    epochs: int,
    batch_size: int,
    rng: np.random.Generator,
    learning_rate: float = 1e-3,
    bar: Any = None,
) -> dict[str, float]:
    optimizer = th.optim.Adam(params, lr=learning_rate)
    policy.set_training_mode(True)
    n = len(obs)
    target_all = th.as_tensor(returns, dtype=th.float32, device=policy.device)
    for _ in range(epochs):
        order = rng.permutation(n)
        for b in range(0, n, batch_size):
            idx = order[b : b + batch_size]
            value = policy.predict_values(to_obs(obs[idx])).flatten()
            loss = nn.functional.mse_loss(value, target_all[idx])
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
        if bar is not None:
            bar.update()
    policy.set_training_mode(False)
    with th.no_grad():
        chunks = range(0, n, 4 * batch_size)
        pred = th.cat([policy.predict_values(to_obs(obs[b : b + 4 * batch_size])).flatten() for b in chunks])
    mse = float(nn.functional.mse_loss(pred, target_all))
    var = float(target_all.var())
    return {"value_loss": mse, "value_explained_variance": 1.0 - mse / var if var > 0 else None}


# -- warm start ---------------------------------------------------------------------------------
def warm_start(model: BaseAlgorithm, path: str | Path) -> BaseAlgorithm:
    """Copy a saved model's network (and optimizer state) into ``model``, e.g. a clone to fine-tune.

    The saved model must be the same algorithm with the same policy class and spaces; otherwise a
    ``ValueError`` names what differs. Returns the loaded source model (for its metadata).
    """
    path = Path(path)
    source = load_model(path)
    check_observation_space(source.observation_space, model.observation_space, path, model.get_env())
    if source.action_space != model.action_space:
        raise ValueError(f"{path} acts in {source.action_space}, the env in {model.action_space}")
    if type(source.policy) is not type(model.policy):
        raise ValueError(
            f"{path} holds a {type(source.policy).__name__} policy; this run builds "
            f"{type(model.policy).__name__} (set --hyperparams policy=... to match)"
        )
    try:
        model.set_parameters(source.get_parameters(), exact_match=True, device=model.device)
    except (RuntimeError, ValueError) as err:  # layer shapes differ (net_arch)
        raise ValueError(f"{path} does not fit this run's network ({str(err).splitlines()[0]})") from None
    return source
