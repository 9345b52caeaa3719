"""OrbitPlacementEnv: the Gymnasium layer over the simulator (design §4).

Its class docstring is the spec; the observation table in it is generated from
:mod:`orbit_env.envs.observation`.
"""

from __future__ import annotations

import numbers
from collections import OrderedDict
from datetime import datetime
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from orbit_env.config import ScenarioConfig
from orbit_env.envs import batch
from orbit_env.envs.batch import REWARD_KEYS
from orbit_env.envs.features import FeatureBuilder
from orbit_env.envs.observation import ObservationLayout
from orbit_env.scenarios import SCENARIOS, sample_epoch
from orbit_env.sim import clock
from orbit_env.sim.orbits import Constellation
from orbit_env.sim.simulator import Simulator

OBS_MODES = ("flat", "dict")


def parse_epoch(value: Any) -> Any:
    """Accept an ISO 8601 string (``Z`` allowed) for ``epoch``; other values pass through."""
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"epoch must be an ISO 8601 date-time, got {value!r}") from None
    return value


def resolve_config(scenario: str | ScenarioConfig, overrides: dict[str, Any]) -> ScenarioConfig:
    """The scenario preset with flat keyword overrides applied and validated."""
    if isinstance(scenario, ScenarioConfig):
        base = scenario
    else:
        name = scenario.split("/")[-1]
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        base = SCENARIOS[name]
    overrides = dict(overrides)
    if "epoch" in overrides:
        overrides["epoch"] = parse_epoch(overrides["epoch"])
    if "tle_path" in overrides and "constellation" not in overrides:
        overrides["constellation"] = "tle"
    return base.replace(**overrides)


class SimulatorPool:
    """One scenario's simulators by epoch, built once and shared by the envs of a vector env:
    each env gets its own :meth:`Simulator.fork` (own episode state) over the shared geometry.

    Args:
        config: the scenario.
        cache: use the on-disk geometry cache.
        constellation: a fixed constellation (a TLE catalogue), else built per epoch.
        size: epochs kept (least recently used dropped).
    """

    def __init__(
        self, config: ScenarioConfig, cache: bool, constellation: Constellation | None, size: int
    ) -> None:
        self.config, self.cache, self.constellation, self.size = config, cache, constellation, size
        self._templates: OrderedDict[datetime, Simulator] = OrderedDict()

    def fork(self, epoch: datetime) -> Simulator:
        """A fresh simulator for ``epoch`` (reset it before use)."""
        template = self._templates.get(epoch)
        if template is None:
            template = Simulator.from_config(
                self.config, epoch, cache=self.cache, constellation=self.constellation
            )
            self._templates[epoch] = template
            while len(self._templates) > self.size:
                self._templates.popitem(last=False)
        else:
            self._templates.move_to_end(epoch)
        return template.fork()


class OrbitPlacementEnv(gym.Env):
    """Place AI jobs on the satellites of a solar-powered constellation.

    ## Description
    A constellation of satellites carrying AI accelerators flies real orbits (sgp4), in and
    out of Earth's shadow, with batteries, job slots, ground-station contacts and
    inter-satellite links (ISLs). AI jobs (inference, training, Earth observation) arrive
    from ground stations and from satellites. Each step is one decision for one pending job:
    run it on a satellite, defer it, or reject it. The simulator between decisions moves data
    over links, runs jobs, integrates every battery exactly and browns out satellites that
    run dry.

    ## Action Space
    ``Discrete(N + 2)``: ``0..N-1`` place the job on satellite i, ``N`` defer (presented again
    ``defer_s`` later), ``N + 1`` reject. ``action_masks()`` (sb3-contrib's protocol) and
    ``info["action_mask"]`` give the valid actions: a satellite is valid when it propagates, is
    not in safe mode, has a queue below ``max_queue`` and the job's input can reach it before
    the deadline; defer and reject are always valid. An invalid action counts as reject with
    ``info["invalid_action"] = True`` (or raises ``ValueError`` with ``strict=True``).

    ## Observation Space
    ``Box(-1, 1, (N·F + J + G,), float32)`` with ``obs_mode="flat"`` (default), or a ``Dict`` of
    ``satellites [N, F]``, ``job [J]``, ``globals [G]`` with ``obs_mode="dict"``. Each entry is
    ``quantity / scale`` (the table's scale and unit), clipped to [-1, 1];
    ``env.unwrapped.layout.decode(obs, name)`` returns the quantity in its unit
    (:class:`~orbit_env.envs.observation.ObservationLayout`):

    {table}

    ## Rewards
    A job delivered by its deadline earns its ``value``; a job delivered late or expired costs
    ``miss_penalty × value``; a rejected job costs ``reject_penalty × value``; each brownout
    costs ``brownout_penalty`` (``RewardConfig``: 1.0, 0.25, 5.0). Rewards arrive when events
    happen; ``info["reward_components"]`` splits each reward into ``on_time``, ``miss``,
    ``reject`` and ``brownout``.

    For credit assignment, each step's info also says which job the action decided
    (``info["decided_job"]``, −1 on the step that ends an episode without decisions; the job
    the next action decides is ``info["job"]``), how much simulated time passed since the
    previous decision (``info["dt_s"]`` [s]; at reset, the time to the first decision; the
    reset's and every step's sum to the episode's length), and which jobs settled during the
    step and for how much: ``info["settled"] = {"jobs": int64[K], "reward": float64[K]}``
    (value if on time, −miss_penalty × value if late or expired, −reject_penalty × value if
    rejected); with the brownout component they add up to the step's reward. The brownouts of
    the step, by the jobs they stopped: ``info["brownouts"] = {"jobs": int64[M], "reward":
    float64[M], "unassigned": float}``, each brownout's −brownout_penalty split equally over the
    running jobs it stopped, and ``unassigned`` the penalty of brownouts that stopped none; the
    parts and ``unassigned`` add up to ``reward_components["brownout"]``.

    ## Starting State
    The epoch is the configured one or the start of a day drawn from the ``split``'s days of
    the scenario's season window; initial charge and the job stream come from the seed. The
    first observation is the first job's decision.

    ## Episode End
    Jobs arrive during ``[0, horizon_s)``. After the horizon the episode goes on — decisions for
    jobs still pending, physics, links — until every arrived job is settled: delivered on time,
    or settled at its deadline as missed (an output booked to land late counts as late; a
    pending, queued or running job as expired, and running work stops), or rejected. Then it
    terminates (never truncated), so every arrived job is counted exactly once:
    ``value_on_time + value_late + value_expired + value_rejected = value_arrived``, and
    deferring or starting work that cannot finish is never free. The drain window is at most
    the longest arrival-to-deadline span of the workload (10 h with the default training jobs);
    if every satellite stops propagating, whatever is unsettled expires then and the episode
    ends. The final ``info["episode_metrics"]`` holds the episode's job, value, energy,
    utilisation and latency figures and ``drain_s``, how long it ran past the horizon. An
    episode in which no job awaits a decision before it ends (no arrivals, or every satellite
    lost first) offers only defer and reject after ``reset``, and its one step ends it.

    ## Arguments
    ``gymnasium.make("orbit_env/WalkerLEO-v1", render_mode=None, obs_mode="flat", strict=False,
    **overrides)``: every field of every config dataclass by its own name, with its unit in
    the name (``battery_wh=1000``, ``load=1.2``, ``dt_s=30``, ``isl_gbps=400``,
    ``epoch="2026-12-21T00:00:00Z"``, ``split="test"``). ``geometry_cache=False`` disables the
    on-disk geometry cache.

    ## Version History
    * v1: every arrived job settled (the drain window after the horizon, settlement at the
      deadline); the uplink estimate and mask follow the antenna booking rule; transfers fit in
      contact time; radio energy drawn while transmitting; jobs of a lost satellite presented at
      the loss; a ``val`` split; the download estimate sees the antenna bookings already made;
      the observation's link columns (``downlink_wait``, ``origin_backlog``,
      ``origin_time_to_contact``, ``station_backlog``); the offered load follows the binding
      resource (energy or the demand stations' antenna time). Returns are not comparable with v0.
    * v0: initial release (episodes cut at the horizon with work still in flight uncounted).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        scenario: str | ScenarioConfig = "OrbitPlacement-v1",
        render_mode: str | None = None,
        obs_mode: str = "flat",
        strict: bool = False,
        geometry_cache: bool = True,
        **overrides: Any,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}"
            )
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
        self.config = resolve_config(scenario, overrides)
        if render_mode == "rgb_array":  # fail now, not at the first frame
            from orbit_env.render import require_matplotlib

            require_matplotlib()
        self.render_mode = render_mode
        self.obs_mode = obs_mode
        self.strict = bool(strict)
        self.geometry_cache = bool(geometry_cache)
        self._fixed_constellation: Constellation | None = None
        if self.config.orbit.constellation == "tle":  # a catalogue has its own epochs: build it once
            self._fixed_constellation = Constellation.from_tle(self.config.orbit.tle_path)
            n_sats = len(self._fixed_constellation)
        else:
            n_sats = self.config.orbit.total
        self.n_sats = n_sats
        self.layout = ObservationLayout(n_sats)
        self.action_space = spaces.Discrete(n_sats + 2)
        self.observation_space = self.layout.flat_space() if obs_mode == "flat" else self.layout.dict_space()
        self._sims: OrderedDict[datetime, Simulator] = OrderedDict()
        self._sim_cache_size = 4 if n_sats <= 256 else 1
        self._pool: SimulatorPool | None = None  # set by OrbitVectorEnv
        self.sim: Simulator | None = None
        self._no_decision = False
        self._features = FeatureBuilder(self.layout)
        self._mask = self._features.mask
        r = self.config.reward
        #: the RewardConfig's penalties as batch.env_step takes them: miss, reject, brownout
        self._penalties = np.array([r.miss_penalty, r.reject_penalty, r.brownout_penalty])
        self._last = np.zeros(len(REWARD_KEYS))  # the reward totals by component at the last step
        self._results = np.zeros(batch.N_RESULTS)  # batch.env_step's

    # -- simulators per epoch -------------------------------------------------------------------
    def _simulator(self, epoch: datetime) -> Simulator:
        sim = self._sims.get(epoch)
        if sim is None:
            if self._pool is not None:  # a vector env's: its envs share each epoch's geometry
                sim = self._pool.fork(epoch)
            else:
                sim = Simulator.from_config(
                    self.config, epoch, cache=self.geometry_cache, constellation=self._fixed_constellation
                )
            if sim.n_sats != self.n_sats:  # pragma: no cover - guarded by construction
                raise RuntimeError("constellation size changed between epochs")
            self._sims[epoch] = sim
            while len(self._sims) > self._sim_cache_size:
                self._sims.popitem(last=False)
        else:
            self._sims.move_to_end(epoch)
        return sim

    # -- Gymnasium API --------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        epoch = sample_epoch(self.config, self.np_random)
        self.sim = self._simulator(epoch)
        self.sim.reset(self.np_random)
        self._features.reset()
        batch.reward_totals(self.sim._st, self._penalties, self._last)
        batch.take_logs(self.sim._st, self._penalties)  # nothing settles before the first decision
        self._next_decision()
        # An episode may hold no decision at all (no job presented before the horizon, or every
        # satellite lost first): its one step then only ends it, so defer and reject stay valid.
        self._no_decision = self._job is None
        obs = self._observe()
        if self._no_decision:
            self._mask[self.n_sats :] = True
        none = np.zeros(0, dtype=np.int64)
        logs = (none, np.zeros(0), none.copy(), np.zeros(0), -0.0)  # nothing settled; −penalty × 0
        # dt_s at reset: from the episode's start to the first decision
        info = self._info(False, dict.fromkeys(REWARD_KEYS, 0.0), self.sim.now_s, -1, logs)
        return obs, info

    def step(self, action: Any):
        if self.sim is None:
            raise RuntimeError("call reset() before step()")
        if self._job is None and not self._no_decision:
            raise RuntimeError("the episode is over: call reset()")
        a = self._parse_action(action)
        invalid = self._check_action(a)
        job, sim = self._job, self.sim
        self._no_decision = False  # (an episode without decisions ends at its one step)
        action = clock.REJECT if invalid or a == self.n_sats + 1 else clock.DEFER if a == self.n_sats else a
        # One compiled call: the decision, the clock to the next one, its observation (and the
        # mask), the reward.
        flat = np.empty(self.layout.size, dtype=np.float32)
        st, fs, results = sim._st, self._features.state(sim), self._results
        t_before = sim.now_s
        _, _, status = batch.env_step(
            st, fs, -1 if job is None else job, action, self.config.defer_s, self._penalties, self._last,
            flat, results,
        )  # fmt: skip
        sim._check(status)
        if status == clock.ADVANCE:  # Python steps the clock (listeners, radiation upsets)
            sim.next_decision()
            batch.finish_step(
                st, fs, self._job_id, self._pending, t_before, self._penalties, self._last, flat, results
            )
        reward, on_time, miss, reject, brownout, _, dt_s = results.tolist()
        components = {"on_time": on_time, "miss": miss, "reject": reject, "brownout": brownout}
        # The episode ends when every arrived job is settled: nothing is left to earn or lose, so
        # it terminates (no bootstrapping); it is never cut off by a time limit.
        terminated = self._job is None
        truncated = False
        obs = flat if self.obs_mode == "flat" else self._dict_obs(flat)
        logs = batch.take_logs(st, self._penalties)
        info = self._info(invalid, components, dt_s, -1 if job is None else job, logs)
        if terminated or truncated:
            info["episode_metrics"] = sim.metrics()
        return obs, reward, terminated, truncated, info

    def action_masks(self) -> np.ndarray:
        """bool[N + 2]: the valid actions for the current job (sb3-contrib's protocol)."""
        return self._mask.copy()

    def render(self):
        if self.render_mode is None or self.sim is None:
            return None
        from orbit_env import render

        if self.render_mode == "ansi":
            return render.render_ansi(self.sim)
        return render.render_rgb(self.sim)

    # -- internals ------------------------------------------------------------------------------
    def _parse_action(self, action: Any) -> int:
        value = action
        if isinstance(value, np.ndarray):
            if value.size != 1:
                raise ValueError(f"action must be a single integer, got an array of shape {value.shape}")
            value = value.reshape(()).item() if value.dtype.kind in "iu" else value.reshape(())[()]
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
            raise TypeError(f"action must be an integer in [0, {self.n_sats + 1}], got {action!r}")
        return int(value)

    def _check_action(self, a: int) -> bool:
        """Whether action ``a`` is invalid now (raising ``ValueError`` if so with ``strict``)."""
        invalid = not (0 <= a < self.n_sats + 2) or not self._mask[a]
        if invalid and self.strict:
            raise ValueError(
                f"invalid action {a}: valid actions now are {np.flatnonzero(self._mask).tolist()} "
                f"(satellites 0..{self.n_sats - 1}, defer={self.n_sats}, reject={self.n_sats + 1})"
            )
        return invalid

    def _next_decision(self) -> None:
        """Advance the clock until a job awaits a decision or the episode ends."""
        self.sim.next_decision()

    # the decision the env waits for: the clock's (clock.next_decision keeps it)
    @property
    def _job_id(self) -> int:
        """The job awaiting the action (−1: none, the episode is over or not started)."""
        return -1 if self.sim is None else int(self.sim._ints[clock.PENDING_JOB])

    @property
    def _job(self) -> int | None:
        job = self._job_id
        return None if job < 0 else job

    @property
    def _pending(self) -> int:
        """How many jobs await a decision now."""
        return 0 if self.sim is None else int(self.sim._ints[clock.PENDING_COUNT])

    def _info(
        self, invalid: bool, components: dict[str, float], dt_s: float, decided_job: int, logs: tuple
    ) -> dict[str, Any]:
        """A step's info as the class docstring describes it, in its order (the mask, the job
        awaiting the next action and the time from the env as it is now); ``logs``: the settled
        jobs and brownouts as :func:`batch.take_logs` returns them."""
        settled, settled_reward, failed, failed_reward, unassigned = logs
        return {
            "action_mask": self._mask.copy(),
            "invalid_action": invalid,
            "reward_components": components,
            "time_s": self.sim.now_s,
            "job": self._job_id,
            "pending": self._pending,
            "dt_s": dt_s,
            "decided_job": decided_job,
            "settled": {"jobs": settled, "reward": settled_reward},
            "brownouts": {"jobs": failed, "reward": failed_reward, "unassigned": unassigned},
        }

    def _observe(self):
        obs = self._features.observe(self.sim, self._job, self._pending)  # also updates self._mask
        return obs if self.obs_mode == "flat" else self._dict_obs(obs)

    def _current_observation(self) -> np.ndarray:
        """The flat observation of the state as it is (the last step's or reset's, computed again)."""
        obs = self._features.observe(self.sim, self._job, self._pending)
        if self._no_decision:  # as reset left the mask: only defer and reject
            self._mask[self.n_sats :] = True
        return obs

    def _dict_obs(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        return {name: np.ascontiguousarray(block) for name, block in self.layout.to_dict(flat).items()}


OrbitPlacementEnv.__doc__ = OrbitPlacementEnv.__doc__.replace(
    "{table}", ObservationLayout(1).table().replace("\n", "\n    ")
)
