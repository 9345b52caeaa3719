"""AI job stream: three job kinds, Poisson arrivals with a diurnal modulation (design §3.5).

Jobs are rows of arrays (:class:`Jobs`), never Python objects, so the simulator works on
them with numpy. Times are seconds since the episode epoch.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from orbit_env.config import WorkloadConfig
from orbit_env.sim.links import GBIT_PER_GB

KIND_NAMES = ("inference", "training", "earth_observation")
INFERENCE, TRAINING, EARTH_OBSERVATION = 0, 1, 2

# Per-kind constants of design §3.5. Work is accelerator-seconds on one slot at full power.
INFERENCE_WORK_MEDIAN_S = 120.0
EO_WORK_MEDIAN_S = 600.0
WORK_SIGMA = 0.5  # lognormal σ of inference and Earth-observation work
TRAINING_WORK_RANGE_S = (3600.0, 6 * 3600.0)
TRAINING_CHECKPOINT_S = 900.0
INFERENCE_DEADLINE_S = 1800.0
EO_DEADLINE_S = 3 * 3600.0
INPUT_GB = (0.5, 20.0, 50.0)
OUTPUT_GB = (0.1, 5.0, 0.5)
BASE_VALUE = (1.0, None, 2.0)  # training: training_value_per_hour × hours
PEAK_LOCAL_HOUR = 14.0


@dataclass(frozen=True)
class Jobs:
    """A job stream, one row per job, sorted by arrival.

    Attributes (all shape [J]):
        arrival_s: arrival time [s since epoch].
        work_s: work on one slot at full power [s].
        input_gb, output_gb: data to move in and out [GB]; Earth-observation input is on board.
        deadline_s: absolute deadline [s since epoch].
        value: reward for on-time delivery (priority included).
        kind: int8 index into ``KIND_NAMES``.
        origin_station: index of the ground station the input comes from, −1 for in-orbit data.
        origin_sat: index of the satellite holding the input, −1 for ground data.
        checkpoint_s: checkpoint interval [s of work]; 0 = cannot checkpoint.
    """

    arrival_s: np.ndarray
    work_s: np.ndarray
    input_gb: np.ndarray
    output_gb: np.ndarray
    deadline_s: np.ndarray
    value: np.ndarray
    kind: np.ndarray
    origin_station: np.ndarray
    origin_sat: np.ndarray
    checkpoint_s: np.ndarray

    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])

    def equals(self, other: Jobs) -> bool:
        """True when every column is identical."""
        return all(np.array_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))


def mean_work_s(cfg: WorkloadConfig) -> float:
    """Expected work of one job [s], from the kind shares."""
    lognormal_mean = np.exp(WORK_SIGMA**2 / 2)
    return float(
        cfg.inference_share * INFERENCE_WORK_MEDIAN_S * lognormal_mean
        + cfg.training_share * np.mean(TRAINING_WORK_RANGE_S)
        + cfg.earth_observation_share * EO_WORK_MEDIAN_S * lognormal_mean
    )


def upload_s_per_job(cfg: WorkloadConfig, ground_link_gbps: float) -> float:
    """Expected antenna time of one job's input upload [s], over all kinds (Earth observation,
    whose input is on board, uploads nothing)."""
    mean_gb = cfg.inference_share * INPUT_GB[INFERENCE] + cfg.training_share * INPUT_GB[TRAINING]
    return mean_gb * GBIT_PER_GB / ground_link_gbps


def capacity_rates_per_s(
    cfg: WorkloadConfig, sustainable_slots: float, uplink_antenna_s_per_s: float, ground_link_gbps: float
) -> tuple[float, float]:
    """Job rates [1/s] the constellation could serve on average: (energy-limited, link-limited).

    Energy: the sustainable busy slots ÷ the mean work of a job. Links: the antenna time the
    demand stations' passes offer per second (antennas × share of time each reaches the
    constellation, summed) ÷ the mean upload time per job; ``inf`` without ground jobs.
    """
    energy = sustainable_slots / mean_work_s(cfg)
    per_job = upload_s_per_job(cfg, ground_link_gbps)
    link = uplink_antenna_s_per_s / per_job if per_job > 0 else np.inf
    return float(energy), float(link)


def arrival_rate_per_s(cfg: WorkloadConfig, energy_rate_per_s: float, link_rate_per_s: float) -> float:
    """Mean job arrival rate [1/s]: ``load`` × the smaller of the two capacities
    (:func:`capacity_rates_per_s`), i.e. of the binding resource. Where no demand station ever
    reaches the constellation (link capacity 0) the energy capacity sets it: the jobs still
    arrive, and cannot be served."""
    if link_rate_per_s <= 0:
        return cfg.load * energy_rate_per_s
    return cfg.load * min(energy_rate_per_s, link_rate_per_s)


def generate_jobs(
    cfg: WorkloadConfig,
    rng: np.random.Generator,
    horizon_s: float,
    rate_per_s: float,
    start_hour_utc: float,
    station_lon_deg: np.ndarray,
    demand_stations: tuple[int, ...],
    n_satellites: int,
    sat_lon_deg: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> Jobs:
    """Draw a job stream for one episode.

    Arrivals are a Poisson process thinned by the diurnal factor
    ``1 + a·cos(2π(local solar time − 14 h)/24 h)`` of each job's origin (mean local solar
    time from longitude); ground jobs pick a demand station uniformly, Earth-observation
    jobs a satellite uniformly.

    Args:
        rate_per_s: mean arrival rate [1/s] (:func:`arrival_rate_per_s`).
        start_hour_utc: UTC hour of day at the epoch [h].
        station_lon_deg: float[G] station longitudes [deg].
        sat_lon_deg: ``f(time_s[K], sat[K]) -> lon_deg[K]`` sub-satellite longitudes.
    """
    amp = cfg.diurnal_amplitude
    n_candidates = rng.poisson(rate_per_s * (1.0 + amp) * horizon_s)
    arrival = np.sort(rng.uniform(0.0, horizon_s, n_candidates))
    shares = np.array([cfg.inference_share, cfg.training_share, cfg.earth_observation_share])
    kind = rng.choice(3, size=n_candidates, p=shares / shares.sum()).astype(np.int8)
    in_orbit = kind == EARTH_OBSERVATION
    demand = np.asarray(demand_stations)
    station = np.where(in_orbit, -1, demand[rng.integers(0, len(demand), n_candidates)])
    sat = np.where(in_orbit, rng.integers(0, n_satellites, n_candidates), -1)
    lon = np.where(in_orbit, 0.0, np.asarray(station_lon_deg, dtype=float)[np.maximum(station, 0)])
    if in_orbit.any():
        lon[in_orbit] = sat_lon_deg(arrival[in_orbit], sat[in_orbit])
    local_h = (start_hour_utc + arrival / 3600.0 + lon / 15.0) % 24.0
    accept_p = (1.0 + amp * np.cos(2 * np.pi * (local_h - PEAK_LOCAL_HOUR) / 24.0)) / (1.0 + amp)
    keep = rng.uniform(size=n_candidates) < accept_p
    arrival, kind, station, sat = arrival[keep], kind[keep], station[keep], sat[keep]
    n = arrival.shape[0]

    lognormal = rng.lognormal(0.0, WORK_SIGMA, n)
    training_work = rng.uniform(*TRAINING_WORK_RANGE_S, n)
    work = np.select(
        [kind == INFERENCE, kind == TRAINING],
        [INFERENCE_WORK_MEDIAN_S * lognormal, training_work],
        EO_WORK_MEDIAN_S * lognormal,
    )
    deadline = arrival + np.select(
        [kind == INFERENCE, kind == TRAINING],
        [np.full(n, INFERENCE_DEADLINE_S), work + cfg.training_deadline_slack_s],
        EO_DEADLINE_S,
    )
    priority = rng.lognormal(0.0, cfg.priority_sigma, n)
    base_value = np.select(
        [kind == INFERENCE, kind == TRAINING],
        [np.full(n, BASE_VALUE[0]), cfg.training_value_per_hour * work / 3600.0],
        BASE_VALUE[2],
    )
    return Jobs(
        arrival_s=arrival,
        work_s=work,
        input_gb=np.asarray(INPUT_GB)[kind],
        output_gb=np.asarray(OUTPUT_GB)[kind],
        deadline_s=deadline,
        value=base_value * priority,
        kind=kind,
        origin_station=station.astype(np.int32),
        origin_sat=sat.astype(np.int32),
        checkpoint_s=np.where(kind == TRAINING, TRAINING_CHECKPOINT_S, 0.0),
    )


def max_deadline_after_arrival_s(cfg: WorkloadConfig) -> float:
    """The longest a generated job may take from arrival to deadline [s]: the drain window an
    episode needs after its horizon so that every job that arrived can be settled."""
    longest_training = TRAINING_WORK_RANGE_S[1] + cfg.training_deadline_slack_s
    return max(INFERENCE_DEADLINE_S, EO_DEADLINE_S, longest_training)


def load_trace(path: str, n_stations: int, n_satellites: int) -> Jobs:
    """Read a job trace CSV with the columns of :class:`Jobs` (``kind`` by name or index).

    Raises:
        ValueError: a missing column, an unknown kind, an origin out of range, a negative
            or non-finite number; the message names the row (1-based, header = row 1).
    """
    names = [f.name for f in fields(Jobs)]
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = set(names) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: trace is missing columns {sorted(missing)}")
        rows = list(reader)
    columns: dict[str, list[float]] = {name: [] for name in names}
    for row_no, row in enumerate(rows, start=2):
        for name in names:
            text = row[name].strip()
            if name == "kind" and text in KIND_NAMES:
                value = float(KIND_NAMES.index(text))
            else:
                try:
                    value = float(text)
                except ValueError:
                    raise ValueError(f"{path}: row {row_no}: {name} is not a number: {text!r}") from None
            if not np.isfinite(value):
                raise ValueError(f"{path}: row {row_no}: {name} must be finite, got {text!r}")
            columns[name].append(value)
    arr = {name: np.asarray(values, dtype=float) for name, values in columns.items()}
    checks = [
        ("kind", (arr["kind"] >= 0) & (arr["kind"] <= 2) & (arr["kind"] % 1 == 0), "0, 1, 2 or a kind name"),
        (
            "origin_station",
            (arr["origin_station"] >= -1) & (arr["origin_station"] < n_stations),
            "in [-1, G)",
        ),
        ("origin_sat", (arr["origin_sat"] >= -1) & (arr["origin_sat"] < n_satellites), "in [-1, N)"),
        ("origin", (arr["origin_station"] >= 0) != (arr["origin_sat"] >= 0), "exactly one of station or sat"),
        ("deadline_s", arr["deadline_s"] > arr["arrival_s"], "after arrival_s"),
    ]
    for name in ("arrival_s", "work_s", "input_gb", "output_gb", "value", "checkpoint_s"):
        checks.append((name, arr[name] >= 0, ">= 0"))
    for name, ok, allowed in checks:
        if not ok.all():
            bad = int(np.argmin(ok)) + 2
            raise ValueError(f"{path}: row {bad}: {name} must be {allowed}")
    order = np.argsort(arr["arrival_s"], kind="stable")
    out = {name: values[order] for name, values in arr.items()}
    out["kind"] = out["kind"].astype(np.int8)
    out["origin_station"] = out["origin_station"].astype(np.int32)
    out["origin_sat"] = out["origin_sat"].astype(np.int32)
    return Jobs(**out)
