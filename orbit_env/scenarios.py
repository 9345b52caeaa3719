"""Named scenarios (design §5): one ``ScenarioConfig`` value each, registered as Gymnasium ids.

``split="train" | "val" | "test"`` draws epochs from disjoint sets of days inside each
scenario's season window: every fourth day of the window is a test day (days 3, 7, 11, ... of
the window, counted from 0), every eighth a validation day (days 1, 9, 17, ...), the others
are train days. Thresholds and hyperparameters are tuned on train, models selected on val,
results reported on test.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from orbit_env.config import (
    DEFAULT_STATIONS,
    ConstellationConfig,
    LinkConfig,
    PowerConfig,
    ScenarioConfig,
    StationConfig,
)

HOUR_S = 3600.0
TEST_EVERY = 4  # every fourth day of a season window is a test day ...
VAL_EVERY, VAL_OFFSET = 8, 1  # ... and every eighth, offset from them, a validation day

_BY_NAME = {s.name: s for s in DEFAULT_STATIONS}


def _stations(*names: str) -> StationConfig:
    return StationConfig(stations=tuple(_BY_NAME[n] for n in names))


CLUSTER = ConstellationConfig(
    constellation="dawn_dusk_cluster", total=81, planes=1, phasing=0, altitude_km=650.0
)
CLUSTER_LINKS = LinkConfig(isl_gbps=1600.0, max_range_km=10.0, isl_topology="nearest", isl_neighbours=4)
CLUSTER_STATIONS = _stations("Svalbard", "Fairbanks", "Wallops", "Hartebeesthoek")

SCENARIOS: dict[str, ScenarioConfig] = {
    "Tiny-v1": ScenarioConfig(
        name="Tiny-v1",
        orbit=ConstellationConfig(total=4, planes=1, phasing=0, altitude_km=550.0, inclination_deg=97.6),
        ground=_stations("Svalbard"),
        links=LinkConfig(isl_topology="nearest", isl_neighbours=2),
        horizon_s=2 * HOUR_S,
    ),
    "WalkerLEO-v1": ScenarioConfig(name="WalkerLEO-v1", horizon_s=12 * HOUR_S),
    "Suncatcher-v1": ScenarioConfig(
        name="Suncatcher-v1",
        orbit=CLUSTER,
        ground=CLUSTER_STATIONS,
        links=CLUSTER_LINKS,
        power=PowerConfig(battery_wh=1000.0),
        horizon_s=24 * HOUR_S,
        season_doy=(60, 300),
    ),
    "Megaconstellation-v1": ScenarioConfig(
        name="Megaconstellation-v1",
        orbit=ConstellationConfig(total=1584, planes=72, phasing=1, altitude_km=550.0, inclination_deg=53.0),
        horizon_s=24 * HOUR_S,
    ),
    "OrbitPlacement-v1": ScenarioConfig(name="OrbitPlacement-v1"),
}
# The same cluster in its eclipse season (December solstice for an ascending node at 06:00).
SCENARIOS["SuncatcherEclipse-v1"] = SCENARIOS["Suncatcher-v1"].replace(
    name="SuncatcherEclipse-v1", season_doy=(335, 20)
)


def season_days(config: ScenarioConfig) -> np.ndarray:
    """Days of year (1-based) of the config's split inside its season window."""
    first, last = config.season_doy
    days_in_year = 366 if _is_leap(config.year) else 365
    last = min(last, days_in_year)
    window = (
        np.arange(first, last + 1)
        if first <= last
        else np.concatenate([np.arange(first, days_in_year + 1), np.arange(1, last + 1)])
    )
    index = np.arange(window.size)
    test = index % TEST_EVERY == TEST_EVERY - 1
    val = index % VAL_EVERY == VAL_OFFSET
    return window[{"test": test, "val": val, "train": ~test & ~val}[config.split]]


def sample_epoch(config: ScenarioConfig, rng: np.random.Generator) -> datetime:
    """The configured epoch, or the start of a day drawn from the config's split."""
    if config.epoch is not None:
        return config.epoch
    doy = int(rng.choice(season_days(config)))
    start = datetime(config.year, 1, 1, tzinfo=timezone.utc)
    return start + timedelta(days=doy - 1, hours=config.start_hour_utc)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
