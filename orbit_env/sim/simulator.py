"""The event loop: clock, queues, execution, power, failures and counters (design §3).

A :class:`Simulator` runs one episode over a precomputed geometry. The clock moves in steps of
``dt_s``; at each step boundary the jobs that arrived during the step (and deferred or failed
ones whose time has come) wait for a decision: :meth:`Simulator.place`, :meth:`defer` or
:meth:`reject`. :meth:`advance` then integrates the next step exactly: within it every
satellite's power is piecewise constant between events (terminator crossing, a job starting
or finishing, the battery filling, emptying, or crossing the reserve or recovery charge), so
a brownout happens at its exact time. The episode's state lives in arrays shared with a
compiled struct (:mod:`orbit_env.sim.clock`): :meth:`Simulator.next_decision` advances the
clock to the next decision in one compiled call; the estimates, bookings and queue projections
run in the compiled kernels of :mod:`kernels` and :mod:`orbit_env.sim.links`.

Job lifecycle: future -> pending (awaiting a decision) -> queued on a satellite (input in
transfer, then waiting for a slot) -> running -> downlink -> on time / late; or expired (the
deadline passed before the job started) or rejected. A job whose satellite browns out, is
upset by radiation or stops propagating goes back to pending at its last checkpoint, its data
now on that satellite. Conservation holds at every boundary:
``arrived = pending + in flight + delivered + expired + rejected``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from enum import IntEnum
from typing import NamedTuple

import numpy as np

from orbit_env.config import ScenarioConfig
from orbit_env.sim import clock, kernels
from orbit_env.sim import power as pw
from orbit_env.sim.forecast import SunSchedule, orbit_period_s
from orbit_env.sim.links import LinkModel, next_index
from orbit_env.sim.orbits import Constellation
from orbit_env.sim.workload import (
    Jobs,
    arrival_rate_per_s,
    capacity_rates_per_s,
    generate_jobs,
    load_trace,
    max_deadline_after_arrival_s,
)

_EPS_S = kernels.EPS_S  # one time tolerance for the event loop and the decisions
_MAX_EVENTS_PER_STEP = 10_000
LOOKAHEAD_S = 2 * 3600.0  # geometry beyond the drain window, for forecasts near the end
MAX_DRAIN_S = 7 * 86400.0  # a trace's drain window at most: its far deadlines cost geometry


class JobState(IntEnum):
    """Where a job is in its lifecycle."""

    FUTURE = 0
    PENDING = 1
    QUEUED = 2
    RUNNING = 3
    DOWNLINK = 4
    ON_TIME = 5
    LATE = 6
    EXPIRED = 7
    REJECTED = 8


# the states as plain ints for the hot paths: Python 3.11 looks Enum members up slowly, and
# numpy probes an Enum member's type for array protocols at every comparison
FUTURE, PENDING, QUEUED, RUNNING, DOWNLINK, ON_TIME, LATE, EXPIRED, REJECTED = (int(s) for s in JobState)
IN_FLIGHT = (QUEUED, RUNNING, DOWNLINK)
#: an arrived job in one of these states is not settled yet (PENDING up to ON_TIME, exclusive)
UNSETTLED = (PENDING, *IN_FLIGHT)
assert UNSETTLED == tuple(range(PENDING, ON_TIME))


class Estimate(NamedTuple):
    """Predicted times [s since epoch] for one job on each target; ``inf`` = never."""

    input_ready_s: np.ndarray
    start_s: np.ndarray
    finish_s: np.ndarray
    delivery_s: np.ndarray


class Decision(NamedTuple):
    """One job's decision terms on every satellite (float[N] times [s], ``inf`` = never)."""

    input_ready_s: np.ndarray
    start_s: np.ndarray
    finish_s: np.ndarray
    delivery_s: np.ndarray
    valid: np.ndarray  # bool[N]: :meth:`Simulator.valid_targets`
    hops: np.ndarray  # int16[N]: :meth:`Simulator.entry_hops`


class Counters:
    """Cumulative episode counters (the env turns their changes into rewards).

    A view of the compiled clock's scalars (``clock.INT_COUNTERS``, ``clock.FLOAT_COUNTERS``):
    reading a counter gives a Python int or float, and assigning one writes it there.
    ``latency_s`` (each delivered job's arrival-to-delivery time [s]) and ``brownout_times_s``
    (each brownout's time [s]) are lists, in event order.
    """

    __slots__ = ("_ints", "_floats", "_sim")

    def __init__(self, ints: np.ndarray, floats: np.ndarray, sim: Simulator) -> None:
        self._ints, self._floats, self._sim = ints, floats, sim

    @property
    def latency_s(self) -> list[float]:
        return self._sim._latency_s[: self._ints[clock.N_LATENCY]].tolist()

    @property
    def brownout_times_s(self) -> list[float]:
        return self._sim._brownout_t[: self._ints[clock.N_BROWNOUT_T]].tolist()

    def __repr__(self) -> str:
        names = (*clock.INT_COUNTERS, *clock.FLOAT_COUNTERS)
        return "Counters(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in names) + ")"


def _scalar(array: str, i: int, cast: type) -> property:
    """A property reading and writing entry ``i`` of the object's ``array`` attribute as ``cast``."""

    def get(self: object) -> int | float:
        return cast(getattr(self, array)[i])

    def set_(self: object, value: int | float) -> None:
        getattr(self, array)[i] = value

    return property(get, set_)


for _name, _i in clock.INT_COUNTERS.items():
    setattr(Counters, _name, _scalar("_ints", _i, int))
for _name, _i in clock.FLOAT_COUNTERS.items():
    setattr(Counters, _name, _scalar("_floats", _i, float))


class Simulator:
    """One constellation, one episode at a time.

    Args:
        config: the scenario (power, links, workload, step and horizon).
        geometry: precomputed geometry covering at least ``horizon_s`` at ``dt_s``
            (``Constellation.geometry``). Its ``station_hops`` drive every transfer.
    """

    def __init__(self, config: ScenarioConfig, geometry) -> None:
        self.config = config
        self.geometry = geometry
        self.power = config.power
        self.dt_s = float(config.dt_s)
        self.n_steps = config.steps
        if abs(float(geometry.dt_s) - self.dt_s) > 1e-9:
            raise ValueError(f"geometry dt_s={geometry.dt_s} does not match config dt_s={self.dt_s}")
        if geometry.t_s.shape[0] < self.n_steps + 1:
            raise ValueError(
                f"geometry covers {geometry.t_s[-1]:g} s, the episode needs horizon_s={config.horizon_s:g} s"
            )
        self.n_sats = geometry.position_km.shape[1]
        self._all_sats = np.arange(self.n_sats, dtype=np.int64)
        n_stations = len(config.ground.stations)
        if geometry.station_hops.shape[1] != n_stations:
            raise ValueError(
                f"geometry has {geometry.station_hops.shape[1]} stations, the config {n_stations}"
            )
        #: last step of the drain window: the episode ends once every arrived job is settled,
        #: at the latest here (the geometry's end, if shorter: jobs still unsettled then are expired)
        self.max_steps = min(geometry.t_s.shape[0] - 1, self.n_steps + drain_steps(config, self.n_sats))
        self.links = LinkModel(geometry.station_hops, geometry.t_s, self.dt_s, config.links)
        valid = geometry.valid[: self.n_steps + 1]
        frac = np.where(valid, geometry.sunlit_fraction[: self.n_steps + 1], 0.0)
        #: mean sunlit fraction per satellite over the episode, float[N]
        self.sunlit_mean = frac[:-1].mean(axis=0) if self.n_steps else frac[0]
        #: energy-limited average busy slots per satellite, float[N]
        self.sustainable_slots = pw.sustainable_slots(self.power, self.sunlit_mean) * valid[0]
        # over the horizon and the drain window after it, where the jobs drawn are served
        reach = self.links.station_reach()[: max(self.max_steps, 1)]  # [T, G]
        demand = list(config.ground.demand_indices)
        #: share of the episode (horizon and drain window) each station reaches some satellite,
        #: directly or over ISLs, float[G]
        self.station_contact_share = reach.mean(axis=0)
        #: job rates [1/s] the constellation could serve on average: (energy-limited, link-limited)
        self.capacity_rates_per_s = capacity_rates_per_s(
            config.workload,
            float(self.sustainable_slots.sum()),
            config.links.antennas * float(self.station_contact_share[demand].sum()),
            config.links.ground_link_gbps,
        )
        base_w = self.power.bus_w + self.power.accelerators * self.power.accelerator_idle_w
        # mean surplus over the episode [W], float[2, N]: with idle slots, and in safe mode
        self._surplus_w = np.stack(
            [
                self.power.solar_array_w * self.sunlit_mean - base_w,
                self.power.solar_array_w * self.sunlit_mean - self.power.bus_w,
            ]
        )
        # the charge a satellite must reach before it starts work: (reserve, recovery) [Wh]
        self._target_wh = np.array(
            [self.power.reserve_soc * self.power.battery_wh, self.power.recover_soc * self.power.battery_wh]
        )
        #: mean orbital period [s]
        self.period_s = orbit_period_s(geometry.position_km, geometry.valid)
        #: terminator crossings and eclipses on the grid
        self.sun = SunSchedule(geometry.sunlit, geometry.sunlit_fraction, self.dt_s, self.period_s)
        #: bool[T, N] some station sees the satellite directly
        self.in_contact = (geometry.station_hops == 0).any(axis=1)
        #: int[T, N] first sample >= k with a direct contact (T if none)
        self.next_contact_k = next_index(self.in_contact)
        # float[T, G]: station_next_contact_s at every sample (a function of the sample only)
        first_k = self.links.station_first_reach_k
        sample_s = (np.arange(first_k.shape[0]) * self.dt_s)[:, None]
        self._station_next_contact_s = np.where(
            first_k < self.links.n_samples, np.maximum(first_k * self.dt_s - sample_s, 0.0), np.inf
        )
        self._station_next_contact_s.flags.writeable = False
        # per sample: some satellite propagates (Python bools: read once or twice per decision)
        any_valid = geometry.valid.any(axis=1)
        self._any_valid = any_valid.tolist()
        p = self.power
        # what the compiled clock reads besides the episode (clock.FIELDS): shared by forks
        self._clock_tables = {
            "valid": geometry.valid,
            "sunlit": geometry.sunlit,
            "sunlit_fraction": geometry.sunlit_fraction,
            "any_valid": any_valid,
            "power": np.array(
                [
                    float(p.solar_array_w),
                    float(p.bus_w),
                    float(p.accelerator_w),
                    float(p.accelerator_idle_w),
                    int(p.accelerators),
                    float(p.battery_wh),
                    float(p.charge_efficiency),
                    float(p.discharge_efficiency),
                    p.reserve_soc * p.battery_wh,
                    p.recover_soc * p.battery_wh,
                    p.radio_w,
                ]
            ),  # fmt: skip
            "reach_end": self.links.reach_end,
            "next_reach": self.links.next_reach,
            "t_s": self.links.t_s,
            "down_end": self.links.down_end,
            "next_down": self.links.next_down,
            "hops": self.links.hops,
            "rates": self.links.rates,
            # entry hops from a satellite (clock.entry_hops): the all-pairs table or the ISL graph
            "sat_hops_all": geometry.sat_hops_all,
            "isl_pairs": geometry.isl_pairs,
            "isl_active": geometry.isl_active,
        }
        self._seu = self.power.seu_rate_per_hour > 0
        self.jobs: Jobs | None = None
        self._st = None  # the episode's clock.EpisodeState (reset)
        self._listeners: list[Callable[[Simulator], None]] = []

    @classmethod
    def from_config(
        cls,
        config: ScenarioConfig,
        epoch: datetime | None = None,
        cache: bool = True,
        constellation: Constellation | None = None,
    ) -> Simulator:
        """Build the constellation and its geometry for ``epoch`` (default ``config.epoch``).

        The geometry covers the horizon, the drain window after it (:func:`drain_window_s`: until
        every job that can arrive has passed its deadline) and ``LOOKAHEAD_S`` more, so forecasts
        near the end of an episode still see the next eclipse and contact.
        """
        epoch = epoch if epoch is not None else config.epoch
        if epoch is None:
            raise ValueError("epoch is None: give an epoch or set config.epoch")
        constellation = constellation if constellation is not None else build_constellation(config, epoch)
        duration = (config.steps + drain_steps(config, len(constellation))) * config.dt_s + LOOKAHEAD_S
        geometry = constellation.geometry(
            epoch, duration, config.dt_s, config.ground.stations, isl=config.links, cache=cache
        )
        return cls(config, geometry)

    def fork(self) -> Simulator:
        """A simulator over the same geometry and precomputed tables, with its own episode
        state (antenna bookings, jobs, batteries, counters) and no listeners; call :meth:`reset`.

        Forks share every read-only table, so B episodes of one epoch cost one geometry.
        """
        new = copy.copy(self)
        new.links = self.links.fork()
        new.jobs = None
        new._st = None
        new._listeners = []
        return new

    def draw_jobs(self, rng: np.random.Generator) -> Jobs:
        """The episode's job stream: the trace if configured, else drawn from ``rng``."""
        cfg = self.config
        stations = cfg.ground.stations
        if cfg.workload.trace_path is not None:
            return load_trace(cfg.workload.trace_path, len(stations), self.n_sats)
        start = self.geometry.start
        return generate_jobs(
            cfg.workload,
            rng,
            horizon_s=cfg.horizon_s,
            rate_per_s=arrival_rate_per_s(cfg.workload, *self.capacity_rates_per_s),
            start_hour_utc=start.hour + start.minute / 60.0 + start.second / 3600.0,
            station_lon_deg=np.array([s.lon_deg for s in stations]),
            demand_stations=cfg.ground.demand_indices,
            n_satellites=self.n_sats,
            sat_lon_deg=self.subpoint_lon_deg,
        )

    def subpoint_lon_deg(self, t_s: np.ndarray, sat: np.ndarray) -> np.ndarray:
        """Longitude [deg] below satellites ``sat[K]`` at times ``t_s[K]`` (nearest sample)."""
        geo = self.geometry
        k = np.clip(np.rint(np.asarray(t_s) / self.dt_s).astype(np.int64), 0, geo.t_s.shape[0] - 1)
        r = np.einsum("kij,kj->ki", geo.teme_to_itrs[k], geo.position_km[k, sat].astype(float))
        return np.degrees(np.arctan2(r[:, 1], r[:, 0]))

    # -- episode -----------------------------------------------------------------------------
    def reset(self, rng: np.random.Generator, jobs: Jobs | None = None) -> None:
        """Start an episode at t = 0: initial charge, then the job stream, drawn from ``rng``.

        Args:
            jobs: a given job stream instead of :meth:`draw_jobs`.
        """
        n, a, q = self.n_sats, self.power.accelerators, self.config.max_queue
        soc = self.power.initial_soc
        if isinstance(soc, tuple):
            soc = rng.uniform(soc[0], soc[1], n)
        self.energy_wh = np.full(n, self.power.battery_wh) * soc
        self.energy0_wh = self.energy_wh.copy()
        self.safe = np.zeros(n, dtype=bool)
        self.slot_job = np.full((n, a), -1, dtype=np.int64)
        self.slot_remaining_s = np.zeros((n, a))
        self.queue = np.full((n, q), -1, dtype=np.int64)
        self.ledger = pw.EnergyLedger.zeros(n)
        self.links.reset()
        self.rng = rng
        self.jobs = jobs = jobs if jobs is not None else self.draw_jobs(rng)
        j = len(jobs)
        self.state = np.zeros(j, dtype=np.int8)
        self.present_s = np.zeros(j)
        self.ready_s = np.full(j, np.inf)
        self.progress_s = np.zeros(j)
        self.finish_s = np.full(j, np.inf)
        self.delivery_s = np.full(j, np.inf)
        self.target = np.full(j, -1, dtype=np.int64)
        self.slot_of = np.full(j, -1, dtype=np.int64)  # slot reserved on the target
        #: int[J] where each job's input data is now: a station (−1 if not on the ground) ...
        self.input_station = jobs.origin_station.astype(np.int64).copy()
        #: int[J] ... or a satellite (−1 if not in orbit); placement moves it to the target
        self.input_sat = jobs.origin_sat.astype(np.int64).copy()
        #: int[J, 2] (station, satellite) where the input was when the job was last placed
        self.placed_from = np.full((j, 2), -1, dtype=np.int64)
        #: float[N, A] projected free time of every slot [s]: running work, then each slot's
        #: reserved jobs (the clock refreshes it at every boundary)
        self.proj_free_s = np.empty(self.slot_job.shape)
        # the clock's scalars (clock.STEP ...) and counters, and the logs it appends to
        self._ints = np.zeros(clock.N_INTS, dtype=np.int64)
        self._floats = np.zeros(clock.N_FLOATS)
        ints, floats = self._ints, self._floats
        ints[[clock.N_STEPS, clock.MAX_STEPS, clock.MAX_EVENTS, clock.SEU_ON, clock.MAX_QUEUE]] = (
            self.n_steps, self.max_steps, _MAX_EVENTS_PER_STEP, self._seu, self.config.max_queue,
        )  # fmt: skip
        ints[clock.TERMS_STEP] = ints[clock.DEC_JOB] = ints[clock.PENDING_JOB] = ints[clock.GRAPH_STEP] = -1
        floats[clock.DT_S], floats[clock.HORIZON_S] = self.dt_s, self.horizon_s
        floats[clock.CHARGE_EFF_F] = self.power.charge_efficiency
        self.counters = Counters(self._ints, self._floats, self)
        self._settled_log = np.empty(max(j, 1), dtype=np.int64)  # each job settles once
        self._latency_s = np.empty(max(j, 1))
        self._upsets = np.zeros(n, dtype=np.int64)  # radiation upsets of the next step, drawn here
        # the decision terms (clock.decision_terms) and the last decision's (clock.decision)
        self._earliest_s, self._open = np.empty(n), np.zeros(n, dtype=bool)
        self._dec, self._dec_valid = np.empty((4, n)), np.zeros(n, dtype=bool)
        self._log1p_value = np.log1p(jobs.value)  # numpy's log1p (numba's differs in the last bit)
        # clock.entry_hops' search: the sample's ISL graph (CSR) and the hops it writes
        self._graph = {
            "graph_ptr": np.empty(n + 1, dtype=np.int64),
            "graph_nbr": np.empty(2 * len(self.geometry.isl_pairs), dtype=np.int64),
            "graph_fill": np.empty(n, dtype=np.int64),
            "entry": np.empty(n, dtype=np.int16),
        }
        # the arrays the clock may replace by bigger ones (clock.GROWN): the antenna schedule,
        # the booked transmissions (satellite, not drawn before [s], end [s]: radios draw while
        # they run), the brownouts' stopped jobs and shares and times, each placement's satellite
        self._grown = {
            "ant_lo": self.links.antennas.lo,
            "ant_hi": self.links.antennas.hi,
            "radio_sat": np.empty(64, dtype=np.int64),
            "radio_start": np.empty(64),
            "radio_end": np.empty(64),
            "failed_job": np.empty(16, dtype=np.int64),
            "failed_share": np.empty(16),
            "brownout_t": np.empty(16),
            "placement_sats": np.empty(max(j, 16), dtype=np.int64),
        }
        self._build_state()
        self._input_key: tuple[int, int, int] | None = None
        self._project_free()

    # jobs from _next_arrival on have not arrived (FUTURE); jobs before _unsettled_from are settled
    _next_arrival = _scalar("_ints", clock.NEXT_ARRIVAL, int)
    _unsettled_from = _scalar("_ints", clock.UNSETTLED_FROM, int)
    #: the current step boundary (``now_s / dt_s``), the clock's
    step_index = _scalar("_ints", clock.STEP, int)

    def _build_state(self) -> None:
        """The clock's struct (``clock.EpisodeState``) over this simulator's episode arrays."""
        lg, jobs = self.ledger, self.jobs
        # the job states' bytes as uint64 words too (kernels.first_pending): the same memory,
        # padded to whole words (a copy or a pickle brings the states alone: padded again here)
        words = getattr(self, "_state_words", None)
        if words is None or self.state.base is None or self.state.base is not words.base:
            j = self.state.shape[0]
            padded = np.zeros(max(-(-j // 8), 1) * 8, dtype=np.int8)
            padded[:j] = self.state
            self.state = padded[:j]
            self._state_words = padded.view(np.uint64)
        self._st = clock.make_state(
            **self._clock_tables, **self._grown, **self._graph,
            surplus_w=self._surplus_w, target_wh=self._target_wh, all_sats=self._all_sats,
            arrival_s=jobs.arrival_s, deadline_s=jobs.deadline_s, work_s=jobs.work_s,
            checkpoint_s=jobs.checkpoint_s, output_gb=jobs.output_gb, value=jobs.value, kind=jobs.kind,
            input_gb=jobs.input_gb, log1p_value=self._log1p_value,
            energy_wh=self.energy_wh, safe=self.safe, slot_job=self.slot_job,
            slot_remaining_s=self.slot_remaining_s, queue=self.queue, proj_free_s=self.proj_free_s,
            state=self.state, state_words=self._state_words,
            present_s=self.present_s, ready_s=self.ready_s, progress_s=self.progress_s,
            finish_s=self.finish_s, delivery_s=self.delivery_s, target=self.target, slot_of=self.slot_of,
            input_station=self.input_station, input_sat=self.input_sat, placed_from=self.placed_from,
            generated=lg.generated, used=lg.used, charged=lg.charged, discharged=lg.discharged,
            curtailed=lg.curtailed, ant_count=self.links.antennas.count, settled=self._settled_log,
            latency_s=self._latency_s, upsets=self._upsets, earliest_s=self._earliest_s, open_=self._open,
            dec_ready=self._dec[0], dec_start=self._dec[1], dec_finish=self._dec[2],
            dec_delivery=self._dec[3], dec_valid=self._dec_valid, ints=self._ints, floats=self._floats,
        )  # fmt: skip
        self._generation = int(self._ints[clock.GENERATION])
        self._use_grown()
        self._mark_python_steps()

    def _refresh(self) -> None:
        """Fetch the arrays the clock grew (``clock.GROWN``) when it has grown any."""
        if self._ints[clock.GENERATION] != self._generation:
            self._grown = dict(zip(clock.GROWN, clock.grown_arrays(self._st), strict=True))
            self._generation = int(self._ints[clock.GENERATION])
            self._use_grown()

    def _use_grown(self) -> None:
        grown = self._grown
        self.links.antennas.lo, self.links.antennas.hi = grown["ant_lo"], grown["ant_hi"]
        self._failed_job, self._failed_share = grown["failed_job"], grown["failed_share"]
        self._brownout_t = grown["brownout_t"]
        self._placement_log = grown["placement_sats"]

    # -- copies and pickles: the struct is rebuilt over the copied arrays ------------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_st"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self.jobs is not None:
            self._build_state()

    # -- public read API (the env, the agents and the scripts read the state through these) --
    @property
    def placements(self) -> int:
        """Jobs placed so far this episode; it changes exactly when a queue gains a job."""
        return int(self._ints[clock.PLACEMENTS])

    def busy_slots(self) -> np.ndarray:
        """int[N] slots running a job on each satellite."""
        return (self.slot_job >= 0).sum(axis=1)

    def queued_jobs(self) -> np.ndarray:
        """int[N] jobs queued (placed, not yet started) on each satellite."""
        return (self.queue >= 0).sum(axis=1)

    def soc(self) -> np.ndarray:
        """float[N] state of charge: battery charge ÷ capacity."""
        return self.energy_wh / self.power.battery_wh

    def station_backlog_s(self) -> np.ndarray:
        """float[G] antenna time booked from now on at each station, per antenna [s]."""
        return self.links.antennas.backlog_s(self.now_s)

    def station_next_contact_s(self) -> np.ndarray:
        """float[G] time until each station next reaches a satellite, directly or over ISLs [s]
        (0: now; ``inf``: not within the geometry)."""
        return self._station_next_contact_s[self.step_index]

    def take_settled(self) -> np.ndarray:
        """int64[K]: the jobs settled since the last call, in settlement order, each once.

        ``state`` says how each settled (``ON_TIME``, ``LATE``, ``EXPIRED`` or ``REJECTED``).
        """
        n = self._ints[clock.N_SETTLED]
        self._ints[clock.N_SETTLED] = 0
        return self._settled_log[:n].copy()

    def take_brownouts(self) -> tuple[int, np.ndarray, np.ndarray]:
        """The brownouts since the last call: ``(idle, jobs, share)``.

        ``jobs`` int64[M] are the running jobs the brownouts stopped, in event order, ``share``
        float64[M] each one's part of its brownout (1 / the jobs that brownout stopped), and
        ``idle`` how many brownouts stopped no job.
        """
        ints = self._ints
        idle, m = int(ints[clock.BROWN_IDLE]), ints[clock.N_FAILED]
        ints[clock.BROWN_IDLE] = ints[clock.N_FAILED] = 0
        return idle, self._failed_job[:m].copy(), self._failed_share[:m].copy()

    def add_listener(self, listener: Callable[[Simulator], None]) -> Callable[[], None]:
        """Call ``listener(sim)`` after every :meth:`advance` (e.g. to record traces).

        Returns:
            a function that removes the listener again.
        """
        self._listeners.append(listener)
        self._mark_python_steps()

        def remove() -> None:
            self._listeners.remove(listener)
            self._mark_python_steps()

        return remove

    def _mark_python_steps(self) -> None:
        """``ints[PYTHON_STEPS]``: whether Python acts between clock steps (listeners to call,
        radiation upsets to draw), for compiled callers that step several envs at once."""
        if self.jobs is not None:
            self._ints[clock.PYTHON_STEPS] = bool(self._listeners or self._seu)

    def presentation_s(self) -> np.ndarray:
        """float[J] earliest decision time of every job [s]: now for a pending job, else the
        first step boundary after its arrival (the rule ``advance`` presents arrivals by)."""
        dt, now = self.dt_s, self.now_s
        arrival = self.jobs.arrival_s
        step = np.floor(arrival / dt) - 1.0
        for _ in range(3):  # the first boundary t1 = k dt + dt with arrival < t1, as advance() tests it
            step = np.where(arrival >= step * dt + dt, step + 1.0, step)
        nxt = step * dt + dt
        return np.where(self.state == PENDING, now, np.maximum(nxt, now))

    @property
    def now_s(self) -> float:
        """Current time [s since epoch] (a step boundary)."""
        return self.step_index * self.dt_s

    @property
    def horizon_s(self) -> float:
        """End of the arrival window [s since epoch]: no job arrives at or after it."""
        return self.n_steps * self.dt_s

    @property
    def done(self) -> bool:
        """True once the horizon is passed and every arrived job is settled (on time, late,
        expired or rejected); at the latest at ``max_steps``, or when no satellite is left."""
        if self._ints[clock.OVER]:
            return True
        return self.step_index >= self.n_steps and not self.unsettled().size

    def unsettled(self) -> np.ndarray:
        """int[U] arrived jobs not settled yet (pending or in flight)."""
        # every job before _unsettled_from is settled and every one from _next_arrival on is
        # still to arrive: only the window between can hold unsettled jobs
        lo, hi = self._unsettled_from, self._next_arrival
        window = self.state[lo:hi]
        return lo + np.flatnonzero((window >= PENDING) & (window < ON_TIME))

    @property
    def valid_now(self) -> np.ndarray:
        """bool[N] satellites propagating at the current boundary."""
        return self.geometry.valid[self.step_index]

    @property
    def any_valid_now(self) -> bool:
        """Some satellite propagates at the current boundary (``valid_now.any()``)."""
        return self._any_valid[self.step_index]

    def pending(self) -> np.ndarray:
        """Jobs awaiting a decision now, in presentation order (int[P])."""
        ids, self._unsettled_from = kernels.pending_jobs(
            self.state,
            self.present_s,
            self.jobs.arrival_s,
            self.now_s + _EPS_S,
            self._unsettled_from,
            self._next_arrival,
        )
        return ids

    # -- decisions ---------------------------------------------------------------------------
    def _check_decidable(self, job: int) -> None:
        if self.jobs is None:
            raise RuntimeError("call reset() before deciding")
        if not 0 <= job < len(self.jobs):
            raise ValueError(f"job must be in [0, {len(self.jobs)}), got {job}")
        if self.state[job] != PENDING or self.present_s[job] > self.now_s + _EPS_S:
            raise ValueError(f"job {job} is not awaiting a decision (state {JobState(self.state[job]).name})")

    def place(self, job: int, sat: int) -> float:
        """Place ``job`` on satellite ``sat``: book its input transfer and queue it.

        Returns:
            the input arrival time at ``sat`` [s].

        Raises:
            ValueError: the job is not awaiting a decision or ``sat`` is not a valid target.
        """
        self._check_decidable(job)
        if not 0 <= sat < self.n_sats:
            raise ValueError(f"sat must be in [0, {self.n_sats}), got {sat}")
        decided = self._decided(job)
        if not (self._dec_valid[sat] if decided else self.valid_targets(job)[sat]):
            raise ValueError(f"satellite {sat} is not a valid target for job {job} now")
        ready = clock.place(self._st, job, sat, self._inorbit_ready(job, sat, decided))
        self._refresh()
        return ready

    def _inorbit_ready(self, job: int, sat: int, decided: bool) -> float:
        """When ``job``'s input on board a satellite would land on ``sat`` [s], as estimated now
        (0 for input on the ground: its uplink is booked, not estimated)."""
        if self.input_station[job] >= 0:
            return 0.0
        return float(self._dec[0, sat] if decided else self._input_estimate(job)[sat])

    def _max_advances(self) -> int:
        """Clock steps a compiled call may take (:func:`clock.max_advances`)."""
        return int(clock.max_advances(self._st))

    def defer(self, job: int) -> None:
        """Present ``job`` again ``defer_s`` from now (it expires if its deadline comes first)."""
        self._check_decidable(job)
        clock.defer(self._st, job, self.config.defer_s)

    def reject(self, job: int) -> None:
        """Refuse ``job`` for good."""
        self._check_decidable(job)
        clock.reject(self._st, job)

    # -- predictions -------------------------------------------------------------------------
    def _input_estimate(self, job: int, targets: np.ndarray | None = None) -> np.ndarray:
        """Input arrival time [s] of ``job`` at each target (all when ``None``)."""
        if targets is None:  # observation then place() ask for the same job: computed once
            key = (job, self.step_index, self.placements)
            if self._input_key != key:
                if self._decided(job):  # the decision has just estimated it
                    self._input_all = self._dec[0].copy()
                else:
                    self._input_all = self._input_estimate_uncached(job, None)
                self._input_all.flags.writeable = False  # shared by every caller until the key changes
                self._input_key = key
            return self._input_all
        return self._input_estimate_uncached(job, targets)

    def _input_estimate_uncached(self, job: int, targets: np.ndarray | None) -> np.ndarray:
        jobs = self.jobs
        if self.input_station[job] >= 0:
            return self.links.uplink_estimate(
                int(self.input_station[job]), self.now_s, jobs.input_gb[job], targets
            )
        hops = clock.entry_hops(self._st, job)  # −1 everywhere from a satellite lost: never
        return self.links.inorbit_estimate(
            hops if targets is None else hops[targets], self.now_s, jobs.input_gb[job]
        )

    def entry_hops(self, job: int) -> np.ndarray:
        """int16[N] ISL hops from where the job's input is now to every satellite (−1 unreachable).

        Ground input: hops from its origin station at this sample (0 = in direct view)
        (:func:`clock.entry_hops`).
        """
        return clock.entry_hops(self._st, job).copy()

    def _decision_state(self) -> dict[str, np.ndarray]:
        """Per-satellite terms shared by every decision until the state changes (cached):
        ``earliest_start_s`` float[N] and ``open`` bool[N] (:func:`kernels.decision_terms`).
        Read them at once: the next change rewrites them in place."""
        clock.decision_terms(self._st)
        return {"earliest_start_s": self._earliest_s, "open": self._open}

    def estimate(self, job: int, targets: np.ndarray | None = None) -> Estimate:
        """Predicted input arrival, start, finish and delivery of ``job`` on each target.

        From the current queues (list-scheduled on the satellite's slots), the charge
        forecast (a satellite below its reserve or in safe mode starts work only once the
        forecast says it has recharged) and the contact schedule, for every target in one
        compiled call (:meth:`LinkModel.job_estimate`).

        Args:
            targets: int[M] satellites (all when ``None``).
        """
        if targets is not None:
            targets = np.asarray(targets, dtype=np.int64)
        ready = self._input_estimate(job, targets)
        start, finish, delivery = self.links.job_estimate(
            ready,
            self._decision_state()["earliest_start_s"],
            self.valid_now,
            self.jobs.work_s[job] - self.progress_s[job],
            self.jobs.output_gb[job],
            targets,
        )
        return Estimate(ready, start, finish, delivery)

    def decision(self, job: int) -> Decision:
        """:meth:`estimate`, :meth:`valid_targets` and :meth:`entry_hops` of ``job`` on every
        satellite, in one compiled call (:func:`clock.decision`); kept for the :meth:`place`
        that may follow, as :meth:`estimate` keeps the input arrivals."""
        hops = self.entry_hops(job)
        clock.decision(self._st, job, hops)
        ready, start, finish, delivery = self._dec.copy()
        return Decision(ready, start, finish, delivery, self._dec_valid.copy(), hops)

    def _decided(self, job: int) -> bool:
        """Whether the clock's decision buffers hold ``job``'s decision in this state
        (:func:`clock.decided`), for the :meth:`place`, :meth:`valid_targets` or input estimate
        that follows the observation's or :meth:`decision`'s."""
        return bool(clock.decided(self._st, job))

    def valid_targets(self, job: int, ready_s: np.ndarray | None = None) -> np.ndarray:
        """bool[N]: propagating, not in safe mode, queue not full, input can arrive by the deadline.

        Args:
            ready_s: the job's input arrival times on every satellite, if already estimated.
        """
        if ready_s is None:
            if self._decided(job):
                return self._dec_valid.copy()  # the decision has just computed it
            ready_s = self._input_estimate(job)
        return self._decision_state()["open"] & (ready_s < self.jobs.deadline_s[job])

    def committed_s(self, rows: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """float[N] work still to run on each satellite, running and queued [slot-s].

        Args:
            rows: int[K] only these satellites (the others of ``out`` are left as they are).
            out: float[N] to write into (a new array when ``None``).
        """
        if out is None:
            out = np.empty(self.n_sats)
        kernels.committed_work(
            self.slot_remaining_s,
            self.queue,
            self.jobs.work_s,
            self.progress_s,
            out,
            np.empty(self.queue.shape[1]),
            self._all_sats if rows is None else rows,
        )
        return out

    def placed_since(self, placements: int) -> np.ndarray:
        """int[K] the satellites the placements after the first ``placements`` of this episode
        went to, in order (the only queues that changed since then within a step)."""
        return self._placement_log[placements : self.placements].copy()

    def _project_free(self) -> None:
        """Projected free time of every slot [s] (``proj_free_s``, in place): running work, then
        each slot's reserved jobs."""
        kernels.project_free(
            self.now_s,
            self.slot_job,
            self.slot_remaining_s,
            self.queue,
            self.slot_of,
            self.ready_s,
            self.jobs.work_s,
            self.progress_s,
            self.proj_free_s,
        )

    # -- the clock ---------------------------------------------------------------------------
    def advance(self) -> None:
        """Integrate one step [t, t + dt) and move to the next boundary (:func:`clock.advance`).

        Within the step every satellite's power is piecewise constant between events, so each
        brownout happens at its exact time; the jobs that finish book their downlinks; then
        satellites lost, radiation upsets, settlement (deliveries landed, deadlines passed) and
        the arrivals of the step, presented at the new boundary.

        Raises:
            RuntimeError: the episode is over (``done``).
        """
        if self.jobs is None:
            raise RuntimeError("call reset() before advance()")
        if self.done:
            raise RuntimeError("the episode is over: call reset()")
        self._draw_upsets()
        self._check(clock.advance(self._st))
        for listener in self._listeners:
            listener(self)

    def next_decision(self) -> tuple[int | None, int]:
        """Advance the clock until a job awaits a decision or the episode ends (ending it when
        no satellite is left), in one compiled call (:func:`clock.next_decision`) unless
        listeners or radiation upsets need Python between steps.

        Returns:
            (the first pending job in presentation order, or ``None`` when the episode is over;
            how many jobs are pending).
        """
        if self.jobs is None:
            raise RuntimeError("call reset() before next_decision()")
        steps = self._max_advances()
        while True:
            job, count, status = clock.next_decision(self._st, steps)
            if status != clock.ADVANCE:
                self._check(status)
                return (int(job) if job >= 0 else None), int(count)
            self.advance()

    def _draw_upsets(self) -> None:
        """Draw the next step's radiation upsets per satellite (Poisson), as the clock reads them."""
        if self._seu:
            self._upsets[:] = self.rng.poisson(self.power.seu_rate_per_hour * self.dt_s / 3600.0, self.n_sats)

    def _check(self, status: int) -> None:
        """After a clock call: fetch grown arrays; raise if a step had too many power events."""
        self._refresh()
        if status == clock.TOO_MANY_EVENTS:
            # Only a battery too small for the load gets here: it browns out and recovers in a loop.
            p, k = self.power, int(self._ints[clock.ERROR_STEP])
            raise ValueError(
                f"more than {_MAX_EVENTS_PER_STEP} power events in step {k} (t = {k * self.dt_s:.0f} s): the "
                f"battery cycles between brownout and recovery; battery_wh={p.battery_wh:g} with recover_soc="
                f"{p.recover_soc:g} is too small for this load, raise battery_wh"
            )

    def end_episode(self) -> None:
        """End the episode now: every arrived job still unsettled is counted as expired.

        Called when the drain window ends (``max_steps``; never reached by a generated job
        stream, whose deadlines all fall inside it) or when no satellite is left to run work.
        """
        clock.end_episode(self._st)

    # -- bookkeeping -------------------------------------------------------------------------
    def job_counts(self) -> dict[str, int]:
        """Jobs per lifecycle bucket."""
        s = self.state
        return {
            "arrived": int((s != FUTURE).sum()),
            "pending": int((s == PENDING).sum()),
            "in_flight": int(np.isin(s, IN_FLIGHT).sum()),
            "on_time": int((s == ON_TIME).sum()),
            "late": int((s == LATE).sum()),
            "expired": int((s == EXPIRED).sum()),
            "rejected": int((s == REJECTED).sum()),
        }

    def check_invariants(self, rtol: float = 1e-9) -> None:
        """Raise ``AssertionError`` if jobs or energy are not conserved."""
        counts = self.job_counts()
        total = sum(counts[k] for k in ("pending", "in_flight", "on_time", "late", "expired", "rejected"))
        if counts["arrived"] != total or counts["arrived"] != self.counters.arrived:
            raise AssertionError(f"job conservation broken: {counts}, counter {self.counters.arrived}")
        battery, bus, scale = self.energy_errors()
        if battery > rtol:
            raise AssertionError("battery change != charged - discharged")
        if bus > rtol:
            raise AssertionError(f"generation != used + stored + curtailed (gap {bus * scale:g} Wh)")
        if (self.energy_wh < 0).any() or (self.energy_wh > self.power.battery_wh).any():
            raise AssertionError("battery charge outside [0, battery_wh]")

    def energy_errors(self) -> tuple[float, float, float]:
        """Largest per-satellite errors of the two energy balances, relative to ``scale``.

        Returns:
            (|battery change − (charged − discharged)| / scale, |generated − (used + stored +
            curtailed)| / scale, scale [Wh]: the largest generation or battery change, at least 1).
        """
        lg = self.ledger
        change = self.energy_wh - self.energy0_wh
        scale = max(1.0, float(np.abs(lg.generated).max()), float(np.abs(change).max()))
        battery = float(np.abs(change - (lg.charged - lg.discharged)).max()) / scale
        bus = float(np.abs(lg.generated - (lg.used + lg.stored(self.power) + lg.curtailed)).max()) / scale
        return battery, bus, scale

    def metrics(self) -> dict[str, float]:
        """Episode metrics so far (the keys of ``info["episode_metrics"]``)."""
        c, counts = self.counters, self.job_counts()
        elapsed = max(self.now_s, self.dt_s)
        n_lat = self._ints[clock.N_LATENCY]
        lat = self._latency_s[:n_lat] if n_lat else np.zeros(1)
        out = {
            "jobs_arrived": counts["arrived"],
            "jobs_on_time": counts["on_time"],
            "jobs_late": counts["late"],
            "jobs_expired": counts["expired"],
            "jobs_rejected": counts["rejected"],
            "jobs_in_flight": counts["in_flight"] + counts["pending"],
            "value_arrived": c.value_arrived,
            "value_on_time": c.value_on_time,
            "value_late": c.value_late,
            "value_expired": c.value_expired,
            "value_rejected": c.value_rejected,
            "on_time_value_rate": c.value_on_time / c.value_arrived if c.value_arrived > 0 else 0.0,
            "brownouts": c.brownouts,
            "accelerator_utilization": c.busy_slot_s / (self.n_sats * self.power.accelerators * elapsed),
            "latency_mean_s": float(lat.mean()),
            "latency_p95_s": float(np.percentile(lat, 95)),
            "job_failures": c.job_failures,
            "seu_events": c.seu_events,
            "decisions": c.decisions,
            "drain_s": max(0.0, self.now_s - self.horizon_s),
            "jobs_settled_at_end": c.settled_at_end,
        }
        out.update(self.ledger.totals_kwh())
        return out


def drain_window_s(config: ScenarioConfig, n_sats: int) -> float:
    """How long an episode may run past its horizon to settle every arrived job [s].

    A generated job stream: the longest arrival-to-deadline span it can draw. A trace: the
    latest deadline of a job arriving before the horizon, past the horizon, at most
    ``MAX_DRAIN_S`` (a trace job still unsettled then is counted as expired).
    """
    if config.workload.trace_path is None:
        return max_deadline_after_arrival_s(config.workload)
    jobs = load_trace(config.workload.trace_path, len(config.ground.stations), n_sats)
    early = jobs.arrival_s < config.horizon_s
    latest = float(jobs.deadline_s[early].max()) if early.any() else 0.0
    return min(MAX_DRAIN_S, max(0.0, latest - config.horizon_s))


def drain_steps(config: ScenarioConfig, n_sats: int) -> int:
    """The drain window in whole steps (:func:`drain_window_s` rounded up)."""
    return int(np.ceil(drain_window_s(config, n_sats) / config.dt_s - 1e-9))


def build_constellation(config: ScenarioConfig, epoch: datetime) -> Constellation:
    """The constellation a scenario describes, with ``epoch`` for generated orbits."""
    c = config.orbit
    if c.constellation == "walker":
        return Constellation.walker(c.total, c.planes, c.phasing, c.altitude_km, c.inclination_deg, epoch)
    if c.constellation == "dawn_dusk_cluster":
        return Constellation.dawn_dusk_cluster(
            c.total, altitude_km=c.altitude_km, ltan_h=c.ltan_h, radius_km=c.radius_km, epoch=epoch
        )
    return Constellation.from_tle(c.tle_path)
