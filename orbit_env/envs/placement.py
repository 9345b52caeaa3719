"""OrbitPlacementEnv: the Gymnasium layer over the simulator (design §4).

Its class docstring is the spec; the observation table in it is generated from
:mod:`orbit_env.envs.observation`.
"""

from __future__ import annotations

import numbers
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from orbit_env.config import ScenarioConfig
from orbit_env.envs.observation import ObservationLayout
from orbit_env.scenarios import SCENARIOS, sample_epoch
from orbit_env.sim.forecast import forecast_charge_wh
from orbit_env.sim.orbits import Constellation
from orbit_env.sim.simulator import Simulator, build_constellation
from orbit_env.sim.workload import EARTH_OBSERVATION, INFERENCE, TRAINING

OBS_MODES = ("flat", "dict")
REWARD_KEYS = ("on_time", "miss", "reject", "brownout")
_HOURS_6 = 6 * 3600.0


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
    ``satellites [N, F]``, ``job [J]``, ``globals [G]`` with ``obs_mode="dict"``. Decode by name
    with ``env.unwrapped.layout`` (:class:`~orbit_env.envs.observation.ObservationLayout`):

    {table}

    ## Rewards
    A job delivered by its deadline earns its ``value``; a job delivered late or expired costs
    ``miss_penalty × value``; a rejected job costs ``reject_penalty × value``; each brownout
    costs ``brownout_penalty`` (``RewardConfig``: 1.0, 0.25, 5.0). Rewards arrive when events
    happen; ``info["reward_components"]`` splits each reward into ``on_time``, ``miss``,
    ``reject`` and ``brownout``.

    ## Starting State
    The epoch is the configured one or the start of a day drawn from the ``split``'s days of
    the scenario's season window; initial charge and the job stream come from the seed. The
    first observation is the first job's decision.

    ## Episode End
    Truncated at ``horizon_s``; terminated early only if every satellite stops propagating.
    The final ``info["episode_metrics"]`` holds the episode's job, value, energy, utilisation
    and latency figures.

    ## Arguments
    ``gymnasium.make("orbit_env/WalkerLEO-v0", render_mode=None, obs_mode="flat", strict=False,
    **overrides)``: every field of every config dataclass by its own name, with its unit in
    the name (``battery_wh=1000``, ``load=1.2``, ``dt_s=30``, ``isl_gbps=400``,
    ``epoch="2026-12-21T00:00:00Z"``, ``split="test"``). ``geometry_cache=False`` disables the
    on-disk geometry cache.

    ## Version History
    * v0: initial release.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        scenario: str | ScenarioConfig = "OrbitPlacement-v0",
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
        self.render_mode = render_mode
        self.obs_mode = obs_mode
        self.strict = bool(strict)
        self.geometry_cache = bool(geometry_cache)
        self._fixed_constellation: Constellation | None = None
        if self.config.orbit.constellation == "tle":
            self._fixed_constellation = build_constellation(self.config, datetime.now().astimezone())
            n_sats = len(self._fixed_constellation)
        else:
            n_sats = self.config.orbit.total
        self.n_sats = n_sats
        self.layout = ObservationLayout(n_sats)
        self.action_space = spaces.Discrete(n_sats + 2)
        self.observation_space = self.layout.flat_space() if obs_mode == "flat" else self.layout.dict_space()
        self._sims: OrderedDict[datetime, Simulator] = OrderedDict()
        self._sim_cache_size = 4 if n_sats <= 256 else 1
        self.sim: Simulator | None = None
        self._job: int | None = None
        self._mask = np.zeros(n_sats + 2, dtype=bool)
        self._sat_block = np.zeros((n_sats, self.layout.n_sat_features), dtype=np.float32)
        self._last = dict.fromkeys(REWARD_KEYS, 0.0)

    # -- simulators per epoch -------------------------------------------------------------------
    def _simulator(self, epoch: datetime) -> Simulator:
        sim = self._sims.get(epoch)
        if sim is None:
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
        self._last = self._reward_totals()
        self._next_decision()
        obs = self._observe()
        return obs, self._info(invalid=False, components=dict.fromkeys(REWARD_KEYS, 0.0))

    def step(self, action: Any):
        if self.sim is None:
            raise RuntimeError("call reset() before step()")
        if self._job is None:
            raise RuntimeError("the episode is over: call reset()")
        a = self._parse_action(action)
        invalid = not (0 <= a < self.n_sats + 2) or not self._mask[a]
        if invalid and self.strict:
            raise ValueError(
                f"invalid action {a}: valid actions now are {np.flatnonzero(self._mask).tolist()} "
                f"(satellites 0..{self.n_sats - 1}, defer={self.n_sats}, reject={self.n_sats + 1})"
            )
        job, sim = self._job, self.sim
        if invalid or a == self.n_sats + 1:
            sim.reject(job)
        elif a == self.n_sats:
            sim.defer(job)
        else:
            sim.place(job, a)
        self._next_decision()
        components = self._reward_delta()
        reward = float(sum(components.values()))
        terminated = self._job is None and not sim.done
        truncated = self._job is None and sim.done
        obs = self._observe()  # computes the mask that the info reports
        info = self._info(invalid=invalid, components=components)
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

    def _next_decision(self) -> None:
        """Advance the clock until a job awaits a decision or the episode ends."""
        sim = self.sim
        while True:
            if sim.done or not sim.valid_now.any():
                self._job = None
                self._pending = 0
                return
            pending = sim.pending()
            if pending.size:
                self._job = int(pending[0])
                self._pending = int(pending.size)
                return
            sim.advance()

    def _reward_totals(self) -> dict[str, float]:
        c, r = self.sim.counters, self.config.reward
        return {
            "on_time": c.value_on_time,
            "miss": -r.miss_penalty * (c.value_late + c.value_expired),
            "reject": -r.reject_penalty * c.value_rejected,
            "brownout": -r.brownout_penalty * c.brownouts,
        }

    def _reward_delta(self) -> dict[str, float]:
        now = self._reward_totals()
        delta = {k: now[k] - self._last[k] for k in REWARD_KEYS}
        self._last = now
        return delta

    def _info(self, invalid: bool, components: dict[str, float]) -> dict[str, Any]:
        sim = self.sim
        return {
            "action_mask": self._mask.copy(),
            "invalid_action": invalid,
            "reward_components": components,
            "time_s": sim.now_s,
            "job": -1 if self._job is None else self._job,
            "pending": self._pending,
        }

    def _observe(self):
        sim, layout = self.sim, self.layout
        cfg, p = self.config, sim.power
        k, now = sim.step_index, sim.now_s
        n = self.n_sats
        cap = p.battery_wh
        period = sim.period_s
        valid_now = sim.valid_now
        sats = self._sat_block
        col = layout.sat_index
        committed = sim.committed_s()
        sun = sim.sun
        sunlit = sim.geometry.sunlit[k]
        after_q, at_entry, after_ecl = forecast_charge_wh(
            p, sim.energy_wh, committed, now, sun.next_entry_s[k], sun.eclipse_left_s[k], sunlit, sim.safe
        )
        busy = (sim.slot_job >= 0).sum(axis=1)
        queued = (sim.queue >= 0).sum(axis=1)
        t_contact = sim.links._time_at(sim.next_contact_k[k]) - now
        sats[:, col("sunlit")] = sunlit
        sats[:, col("sunlit_next_orbit")] = sun.sunlit_next_orbit[k]
        sats[:, col("time_to_crossing")] = np.minimum((sun.next_crossing_s[k] - now) / period, 1.0)
        sats[:, col("eclipse_left")] = sun.eclipse_left_s[k] / period
        sats[:, col("soc")] = sim.energy_wh / cap
        sats[:, col("soc_after_queue")] = after_q / cap
        sats[:, col("soc_at_eclipse_entry")] = at_entry / cap
        sats[:, col("queued_work")] = committed / (p.accelerators * _HOURS_6)
        sats[:, col("busy_slots")] = busy / p.accelerators
        sats[:, col("queue_fill")] = queued / cfg.max_queue
        sats[:, col("safe_mode")] = sim.safe
        sats[:, col("in_contact")] = sim.in_contact[k]
        sats[:, col("time_to_contact")] = np.minimum(t_contact / period, 1.0)

        job_block = np.zeros(len(layout.job_columns), dtype=np.float32)
        self._mask[:] = False
        job = self._job
        if job is None:
            for name in (
                "valid_target",
                "eclipse_margin",
                "hops",
                "start_slack",
                "finish_slack",
                "delivery_slack",
            ):
                sats[:, col(name)] = 0.0
        else:
            jobs = sim.jobs
            est = sim.estimate(job)
            valid = sim.valid_targets(job, est.input_ready_s)
            self._mask[:n] = valid
            self._mask[n:] = True
            work_left = jobs.work_s[job] - sim.progress_s[job]
            _, _, margin = forecast_charge_wh(
                p,
                sim.energy_wh,
                committed + work_left,
                now,
                sun.next_entry_s[k],
                sun.eclipse_left_s[k],
                sunlit,
                sim.safe,
            )
            to_deadline = max(jobs.deadline_s[job] - now, 1e-9)
            sats[:, col("valid_target")] = valid
            sats[:, col("eclipse_margin")] = margin / cap
            sats[:, col("hops")] = self._entry_hops(job) / 10.0
            for name, times in (
                ("start_slack", est.start_s),
                ("finish_slack", est.finish_s),
                ("delivery_slack", est.delivery_s),
            ):
                sats[:, col(name)] = np.where(
                    np.isfinite(times), (jobs.deadline_s[job] - times) / to_deadline, -1.0
                )
            kind = jobs.kind[job]
            value = float(jobs.value[job])
            jc = layout.job_index
            job_block[jc("present")] = 1.0
            job_block[jc("inference")] = kind == INFERENCE
            job_block[jc("training")] = kind == TRAINING
            job_block[jc("earth_observation")] = kind == EARTH_OBSERVATION
            job_block[jc("work")] = work_left / _HOURS_6
            job_block[jc("input_size")] = jobs.input_gb[job] / 50.0
            job_block[jc("output_size")] = jobs.output_gb[job] / 5.0
            job_block[jc("time_to_deadline")] = to_deadline / 36000.0
            job_block[jc("value")] = np.log1p(value) / np.log(101.0)
            job_block[jc("value_density")] = value / max(work_left / 3600.0, 1e-6) / 60.0
            job_block[jc("in_orbit_data")] = sim.src_sat[job] >= 0
            job_block[jc("progress")] = (
                sim.progress_s[job] / jobs.work_s[job] if jobs.work_s[job] > 0 else 0.0
            )

        glob = np.zeros(len(layout.global_columns), dtype=np.float32)
        gc = layout.global_index
        clock = sim.geometry.start + timedelta(seconds=now)
        hour = clock.hour + clock.minute / 60.0 + clock.second / 3600.0
        live = valid_now if valid_now.any() else np.ones(n, dtype=bool)
        base_w = p.bus_w + p.accelerators * p.accelerator_idle_w
        span_w = p.accelerator_w - p.accelerator_idle_w
        committed_w = span_w * np.minimum(committed / period, p.accelerators)
        balance = (p.solar_array_w * sun.sunlit_next_orbit[k] - base_w - committed_w) / max(
            p.solar_array_w, 1.0
        )
        glob[gc("time_of_day_sin")] = np.sin(2 * np.pi * hour / 24.0)
        glob[gc("time_of_day_cos")] = np.cos(2 * np.pi * hour / 24.0)
        glob[gc("pending")] = self._pending / 50.0
        glob[gc("horizon_left")] = 1.0 - now / cfg.horizon_s
        glob[gc("mean_soc")] = (sim.energy_wh[live] / cap).mean()
        glob[gc("mean_soc_after_eclipse")] = (after_ecl[live] / cap).mean()
        glob[gc("sunlit_share")] = sunlit[live].mean()
        glob[gc("energy_balance")] = balance[live].mean()

        flat = layout.encode(sats, job_block, glob)
        if self.obs_mode == "flat":
            return flat
        return {name: np.ascontiguousarray(block) for name, block in layout.to_dict(flat).items()}

    def _entry_hops(self, job: int) -> np.ndarray:
        """ISL hops from the job's data to every satellite now (−1 unreachable)."""
        sim = self.sim
        k = sim.step_index
        if sim.src_station[job] >= 0:
            return sim.geometry.station_hops[k, sim.src_station[job]].astype(np.float32)
        src = int(sim.src_sat[job])
        if not sim.valid_now[src]:
            return np.full(self.n_sats, -1.0, dtype=np.float32)
        return sim.geometry.sat_hops(k, src).astype(np.float32)


OrbitPlacementEnv.__doc__ = OrbitPlacementEnv.__doc__.replace(
    "{table}", ObservationLayout(1).table().replace("\n", "\n    ")
)
