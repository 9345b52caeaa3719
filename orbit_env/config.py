"""Frozen, validated configuration dataclasses.

Every field carries its unit in its name and is checked in ``__post_init__``: a bad value
raises ``ValueError`` (or ``TypeError`` for a wrong type) naming the field and the allowed
range. Field names are unique across all configs, so a flat keyword such as
``battery_wh=2000`` identifies exactly one field (see :func:`field_owner`).
"""

from __future__ import annotations

import ast
import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from orbit_env._checks import check_choice, check_number, check_utc

CONSTELLATION_KINDS = ("walker", "dawn_dusk_cluster", "tle")
ISL_TOPOLOGIES = ("auto", "grid", "nearest", "none")
SPLITS = ("train", "val", "test")


# Indices into DEFAULT_STATIONS of the mid- and low-latitude sites, where ground jobs originate
# by default: polar sites serve polar orbits but never see a 53° shell.
MID_LATITUDE_DEMAND: tuple[int, ...] = (3, 4, 5, 6, 7, 8, 9)


@dataclass(frozen=True)
class GroundStation:
    """A ground station on the WGS84 ellipsoid.

    Args:
        name: label used in tables and plots.
        lat_deg: geodetic latitude [deg], in [-90, 90].
        lon_deg: longitude [deg], east positive, in [-180, 360).
        alt_m: height above the ellipsoid [m].
        min_elevation_deg: a satellite is in view at or above this elevation [deg].
    """

    name: str
    lat_deg: float
    lon_deg: float
    alt_m: float = 0.0
    min_elevation_deg: float = 10.0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"GroundStation.name must be a non-empty string, got {self.name!r}")
        check_number("lat_deg", self.lat_deg, lo=-90, hi=90)
        check_number("lon_deg", self.lon_deg, lo=-180, hi=360, hi_open=True)
        check_number("alt_m", self.alt_m, lo=-500, hi=10_000)
        check_number("min_elevation_deg", self.min_elevation_deg, lo=0, hi=90, hi_open=True)


# Well-known ground-station sites (approximate public coordinates), used by the presets.
DEFAULT_STATIONS: tuple[GroundStation, ...] = (
    GroundStation("Svalbard", 78.23, 15.41, 500.0, 5.0),
    GroundStation("Fairbanks", 64.86, -147.85, 200.0, 10.0),
    GroundStation("Kiruna", 67.86, 20.96, 400.0, 10.0),
    GroundStation("Wallops", 37.94, -75.46, 10.0, 10.0),
    GroundStation("Redu", 50.00, 5.15, 380.0, 10.0),
    GroundStation("Maspalomas", 27.76, -15.63, 200.0, 10.0),
    GroundStation("Hartebeesthoek", -25.89, 27.69, 1500.0, 10.0),
    GroundStation("Santiago", -33.15, -70.67, 700.0, 10.0),
    GroundStation("Canberra", -35.40, 148.98, 680.0, 10.0),
    GroundStation("Singapore", 1.35, 103.82, 20.0, 10.0),
)


@dataclass(frozen=True)
class ConstellationConfig:
    """Which satellites fly, and where.

    Args:
        constellation: ``"walker"`` (Walker-delta i:t/p/f), ``"dawn_dusk_cluster"`` or ``"tle"``.
        total: number of satellites (Walker total, or cluster size).
        planes: Walker orbital planes; ``total`` must be a multiple.
        phasing: Walker phasing factor f, in [0, planes).
        altitude_km: circular orbit altitude above the equatorial radius [km].
        inclination_deg: Walker inclination [deg]; the cluster's is sun-synchronous.
        ltan_h: cluster local time of the ascending node [h].
        radius_km: cluster members stay within this distance of the centre [km].
        tle_path: TLE file for ``constellation="tle"``.
    """

    constellation: str = "walker"
    total: int = 64
    planes: int = 8
    phasing: int = 1
    altitude_km: float = 550.0
    inclination_deg: float = 53.0
    ltan_h: float = 6.0
    radius_km: float = 1.0
    tle_path: str | None = None

    def __post_init__(self) -> None:
        check_choice("constellation", self.constellation, CONSTELLATION_KINDS)
        check_number("total", self.total, lo=1, hi=100_000, integer=True)
        check_number("planes", self.planes, lo=1, hi=self.total, integer=True)
        check_number("phasing", self.phasing, lo=0, hi=self.planes, hi_open=True, integer=True)
        check_number("altitude_km", self.altitude_km, lo=160, hi=6000)
        check_number("inclination_deg", self.inclination_deg, lo=0, hi=180)
        check_number("ltan_h", self.ltan_h, lo=0, hi=24, hi_open=True)
        check_number("radius_km", self.radius_km, lo=0, hi=100)
        if self.constellation == "walker" and self.total % self.planes:
            raise ValueError(
                f"total must be a multiple of planes for a Walker shell, got total={self.total}, "
                f"planes={self.planes}"
            )
        if self.constellation == "tle":
            if not isinstance(self.tle_path, str | os.PathLike) or not os.path.isfile(self.tle_path):
                raise ValueError(
                    f"tle_path must name an existing TLE file when constellation='tle', got {self.tle_path!r}"
                )


@dataclass(frozen=True)
class StationConfig:
    """Ground stations.

    Args:
        stations: every station that uplinks and downlinks data.
        demand_stations: indices into ``stations`` of those where ground jobs originate;
            ``None`` means all of them.
    """

    stations: tuple[GroundStation, ...] = DEFAULT_STATIONS
    demand_stations: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.stations, tuple) or not all(
            isinstance(s, GroundStation) for s in self.stations
        ):
            raise TypeError("stations must be a tuple of GroundStation")
        if not self.stations:
            raise ValueError("stations must hold at least one GroundStation, got none")
        names = [s.name for s in self.stations]
        if len(set(names)) != len(names):
            raise ValueError(f"stations must have unique names, got {names}")
        if self.demand_stations is not None:
            if not isinstance(self.demand_stations, tuple) or not self.demand_stations:
                raise ValueError("demand_stations must be a non-empty tuple of station indices or None")
            for i in self.demand_stations:
                check_number("demand_stations", i, lo=0, hi=len(self.stations) - 1, integer=True)

    @property
    def demand_indices(self) -> tuple[int, ...]:
        """Indices of the stations where ground jobs originate."""
        if self.demand_stations is None:
            return tuple(range(len(self.stations)))
        return self.demand_stations


@dataclass(frozen=True)
class PowerConfig:
    """Power budget of one satellite (all satellites share it). Defaults: an H100-class node.

    Args:
        solar_array_w: array output in full sunlight [W].
        bus_w: avionics, attitude control and thermal load, always on [W].
        accelerators: job slots per satellite.
        accelerator_w: draw of a busy slot [W].
        accelerator_idle_w: draw of an idle slot [W].
        radio_w: extra draw while the satellite sends or receives a transfer [W].
        battery_wh: usable capacity [Wh].
        initial_soc: state of charge at reset, a value or a ``(low, high)`` range sampled
            uniformly per satellite [fraction].
        charge_efficiency: share of bus power that reaches the cells when charging.
        discharge_efficiency: share of cell energy that reaches the bus when discharging.
        reserve_soc: no job starts below this state of charge [fraction].
        recover_soc: a browned-out satellite leaves safe mode at this charge [fraction].
        seu_rate_per_hour: radiation upsets per satellite per hour (Poisson); an upset
            restarts the running jobs from their last checkpoint.
    """

    solar_array_w: float = 3600.0
    bus_w: float = 400.0
    accelerators: int = 4
    accelerator_w: float = 700.0
    accelerator_idle_w: float = 50.0
    radio_w: float = 150.0
    battery_wh: float = 2000.0
    initial_soc: float | tuple[float, float] = 0.8
    charge_efficiency: float = 0.95
    discharge_efficiency: float = 0.95
    reserve_soc: float = 0.2
    recover_soc: float = 0.3
    seu_rate_per_hour: float = 0.0

    def __post_init__(self) -> None:
        check_number("solar_array_w", self.solar_array_w, lo=0, hi=1e6)
        check_number("bus_w", self.bus_w, lo=0, hi=1e6)
        check_number("accelerators", self.accelerators, lo=1, hi=64, integer=True)
        check_number("accelerator_w", self.accelerator_w, lo=0, hi=1e5)
        check_number("accelerator_idle_w", self.accelerator_idle_w, lo=0, hi=self.accelerator_w)
        check_number("radio_w", self.radio_w, lo=0, hi=1e5)
        check_number("battery_wh", self.battery_wh, lo=0, lo_open=True, hi=1e7)
        if isinstance(self.initial_soc, tuple):
            if len(self.initial_soc) != 2:
                raise ValueError(f"initial_soc range must be (low, high), got {self.initial_soc!r}")
            low, high = self.initial_soc
            check_number("initial_soc", low, lo=0, hi=1)
            check_number("initial_soc", high, lo=low, hi=1)
        else:
            check_number("initial_soc", self.initial_soc, lo=0, hi=1)
        check_number("charge_efficiency", self.charge_efficiency, lo=0, lo_open=True, hi=1)
        check_number("discharge_efficiency", self.discharge_efficiency, lo=0, lo_open=True, hi=1)
        check_number("reserve_soc", self.reserve_soc, lo=0, hi=1, hi_open=True)
        check_number("recover_soc", self.recover_soc, lo=0, lo_open=True, hi=1)
        check_number("seu_rate_per_hour", self.seu_rate_per_hour, lo=0, hi=3600)


@dataclass(frozen=True)
class LinkConfig:
    """Ground links and inter-satellite links (ISLs).

    Args:
        ground_link_gbps: rate of one station antenna, up or down [Gbit/s].
        antennas: satellites a station serves at once; more transfers queue FIFO.
        isl_gbps: rate of one ISL [Gbit/s]. ISL capacity is not shared between transfers.
        max_range_km: longest ISL [km].
        hop_latency_s: switching and propagation delay per ISL hop [s].
        isl_grazing_altitude_km: an ISL's line of sight must clear Earth by this height [km].
        isl_topology: ``"grid"`` (+Grid: two in-plane and two cross-plane neighbours, Walker
            only), ``"nearest"`` (``isl_neighbours`` nearest within range), ``"none"``, or
            ``"auto"`` (grid for Walker shells, nearest otherwise).
        isl_neighbours: neighbours per satellite for the nearest topology.
    """

    ground_link_gbps: float = 10.0
    antennas: int = 2
    isl_gbps: float = 100.0
    max_range_km: float = 5000.0
    hop_latency_s: float = 0.02
    isl_grazing_altitude_km: float = 80.0
    isl_topology: str = "auto"
    isl_neighbours: int = 4

    def __post_init__(self) -> None:
        check_number("ground_link_gbps", self.ground_link_gbps, lo=0, lo_open=True, hi=1e5)
        check_number("antennas", self.antennas, lo=1, hi=1000, integer=True)
        check_number("isl_gbps", self.isl_gbps, lo=0, lo_open=True, hi=1e6)
        check_number("max_range_km", self.max_range_km, lo=0, lo_open=True, hi=1e5)
        check_number("hop_latency_s", self.hop_latency_s, lo=0, hi=60)
        check_number("isl_grazing_altitude_km", self.isl_grazing_altitude_km, lo=0, hi=1000)
        check_choice("isl_topology", self.isl_topology, ISL_TOPOLOGIES)
        check_number("isl_neighbours", self.isl_neighbours, lo=1, hi=32, integer=True)


@dataclass(frozen=True)
class WorkloadConfig:
    """The AI job stream (design §3.5).

    Args:
        load: average offered work as a multiple of the constellation's capacity: the smaller of
            its sustainable compute (energy-limited average busy slots) and the jobs its demand
            stations' passes can upload (link-limited), so the binding resource sets it.
        diurnal_amplitude: arrival rate × (1 + a·cos(2π(local solar time − 14 h)/24 h)).
        inference_share: share of jobs (by count) that are inference.
        training_share: share of jobs that are training.
        earth_observation_share: share of jobs that are Earth observation (data on board).
        priority_sigma: σ of the lognormal priority (median 1) multiplying every value.
        training_value_per_hour: value of a training job per hour of work (× priority).
        training_deadline_slack_s: a training job's deadline is arrival + work + this [s].
        trace_path: CSV of jobs replacing the generator (columns of :class:`Jobs`).
    """

    load: float = 1.3
    diurnal_amplitude: float = 0.5
    inference_share: float = 0.41
    training_share: float = 0.19
    earth_observation_share: float = 0.40
    priority_sigma: float = 0.5
    training_value_per_hour: float = 3.0
    training_deadline_slack_s: float = 4 * 3600.0
    trace_path: str | None = None

    def __post_init__(self) -> None:
        check_number("load", self.load, lo=0, lo_open=True, hi=100)
        check_number("diurnal_amplitude", self.diurnal_amplitude, lo=0, hi=1)
        for name in ("inference_share", "training_share", "earth_observation_share"):
            check_number(name, getattr(self, name), lo=0, hi=1)
        total = self.inference_share + self.training_share + self.earth_observation_share
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"inference_share + training_share + earth_observation_share must sum to 1, got {total:g}"
            )
        check_number("priority_sigma", self.priority_sigma, lo=0, hi=3)
        check_number("training_value_per_hour", self.training_value_per_hour, lo=0, hi=1e6)
        check_number("training_deadline_slack_s", self.training_deadline_slack_s, lo=0, hi=30 * 86400)
        if self.trace_path is not None and not os.path.isfile(self.trace_path):
            raise ValueError(f"trace_path must name an existing CSV file, got {self.trace_path!r}")


@dataclass(frozen=True)
class RewardConfig:
    """Reward weights. On-time delivery earns the job's value.

    Args:
        miss_penalty: × value, on expiry or late delivery.
        reject_penalty: × value, on reject.
        brownout_penalty: per brownout.
    """

    miss_penalty: float = 1.0
    reject_penalty: float = 0.25
    brownout_penalty: float = 5.0

    def __post_init__(self) -> None:
        check_number("miss_penalty", self.miss_penalty, lo=0, hi=1e6)
        check_number("reject_penalty", self.reject_penalty, lo=0, hi=1e6)
        check_number("brownout_penalty", self.brownout_penalty, lo=0, hi=1e6)


@dataclass(frozen=True)
class ScenarioConfig:
    """Everything one episode needs.

    Args:
        name: scenario label.
        orbit, ground, power, links, workload, reward: the sub-configs.
        epoch: episode start (timezone-aware UTC); ``None`` draws a day from ``split``.
        dt_s: geometry grid and decision interval [s].
        horizon_s: episode length [s].
        defer_s: a deferred job is presented again this much later [s].
        max_queue: jobs waiting on one satellite (queued, not running) before it is full.
        split: ``"train"``, ``"val"`` or ``"test"``: which days of the season window epochs come
            from (disjoint sets: tune and train on train, select models on val, report on test).
        season_doy: first and last day of year (1-366, inclusive, may wrap) of the window.
        year: calendar year of sampled epochs.
        start_hour_utc: hour of day of sampled epochs [h].
    """

    name: str = "custom"
    orbit: ConstellationConfig = field(default_factory=ConstellationConfig)
    ground: StationConfig = field(default_factory=lambda: StationConfig(demand_stations=MID_LATITUDE_DEMAND))
    power: PowerConfig = field(default_factory=PowerConfig)
    links: LinkConfig = field(default_factory=LinkConfig)
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    epoch: datetime | None = None
    dt_s: float = 60.0
    horizon_s: float = 12 * 3600.0
    defer_s: float = 600.0
    max_queue: int = 8
    split: str = "train"
    season_doy: tuple[int, int] = (1, 365)
    year: int = 2026
    start_hour_utc: float = 0.0

    def __post_init__(self) -> None:
        for name, kind in SUBCONFIGS.items():
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"{name} must be a {kind.__name__}, got {type(getattr(self, name)).__name__}")
        if self.epoch is not None:
            check_utc("epoch", self.epoch)
        check_number("dt_s", self.dt_s, lo=1, hi=3600)
        check_number("horizon_s", self.horizon_s, lo=self.dt_s, hi=30 * 86400)
        check_number("defer_s", self.defer_s, lo=0, lo_open=True, hi=86400)
        check_number("max_queue", self.max_queue, lo=1, hi=1024, integer=True)
        check_choice("split", self.split, SPLITS)
        if not isinstance(self.season_doy, tuple) or len(self.season_doy) != 2:
            raise ValueError(f"season_doy must be (first, last) days of year, got {self.season_doy!r}")
        for day in self.season_doy:
            check_number("season_doy", day, lo=1, hi=366, integer=True)
        check_number("year", self.year, lo=1960, hi=2100, integer=True)
        check_number("start_hour_utc", self.start_hour_utc, lo=0, hi=24, hi_open=True)

    @property
    def steps(self) -> int:
        """Decision steps in an episode."""
        return int(round(self.horizon_s / self.dt_s))

    def replace(self, **overrides: object) -> ScenarioConfig:
        """A copy with fields replaced by their own (flat) names, e.g. ``battery_wh=1000``.

        Raises:
            ValueError: an unknown name (with the closest valid names) or a bad value.
        """
        grouped: dict[str, dict[str, object]] = {}
        own: dict[str, object] = {}
        for key, value in overrides.items():
            owner = field_owner(key)
            if owner is None:
                own[key] = value
            else:
                grouped.setdefault(owner, {})[key] = value
        for owner, values in grouped.items():
            own[owner] = dataclasses.replace(getattr(self, owner), **values)
        return dataclasses.replace(self, **own)


SUBCONFIGS: dict[str, type] = {
    "orbit": ConstellationConfig,
    "ground": StationConfig,
    "power": PowerConfig,
    "links": LinkConfig,
    "workload": WorkloadConfig,
    "reward": RewardConfig,
}


def field_owner(name: str) -> str | None:
    """The ``ScenarioConfig`` attribute whose dataclass has field ``name``.

    Returns ``None`` for a field of ``ScenarioConfig`` itself.

    Raises:
        ValueError: ``name`` is no field of any config; the message lists the closest names.
    """
    for owner, kind in SUBCONFIGS.items():
        if name in {f.name for f in dataclasses.fields(kind)}:
            return owner
    if name in {f.name for f in dataclasses.fields(ScenarioConfig)} and name not in SUBCONFIGS:
        return None
    import difflib

    close = difflib.get_close_matches(name, all_field_names(), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(f"unknown config field {name!r}{hint} Valid fields: {', '.join(all_field_names())}")


def all_field_names() -> list[str]:
    """Every flat field name a scenario accepts as an override."""
    names = [f.name for kind in SUBCONFIGS.values() for f in dataclasses.fields(kind)]
    names += [f.name for f in dataclasses.fields(ScenarioConfig) if f.name not in SUBCONFIGS]
    return names


def parse_override_value(text: str) -> object:
    """A config value typed on a command line: ``"3"`` -> 3, ``"1.5"`` -> 1.5, ``"true"`` -> True,
    ``"none"`` -> None, ``"(1, 2)"`` or ``"[1, 2]"`` -> (1, 2); anything else (an ISO epoch, a
    name) stays a string for the config to validate."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.strip()[:1] in "([":
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            return text
        return tuple(value) if isinstance(value, list | tuple) else value
    return text


def parse_overrides(items: Iterable[str]) -> dict[str, object]:
    """``["battery_wh=1000", "epoch=2026-12-21T00:00:00Z"]`` -> typed dict (split on the first '=').

    Raises:
        ValueError: an entry without ``=`` or with an empty key.
    """
    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"config overrides must be key=value, got {item!r}")
        out[key.strip()] = parse_override_value(value)
    return out
