"""The observation: a fixed, named layout encoded into a flat ``Box`` (or a ``Dict``).

This module is the observation contract: each :class:`Column` declares its name, meaning, scale
and unit once; the env's feature builder encodes with those scales and the heuristics decode
with them. Every entry lies in [-1, 1] (values are clipped there). Decode by name:

>>> sats = layout.satellites(obs)                    # [N, F] (or [B, N, F] for a batch)
>>> sats[:, layout.sat_index("soc")]                 # state of charge of every satellite
>>> layout.decode(obs, "job", "time_to_deadline")    # seconds to the deadline
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gymnasium import spaces

from orbit_env.sim.kernels import njit

HOUR_S = 3600.0
LOG_VALUE_SCALE = float(np.log(101.0))  # log(1 + value) of a value of 100 encodes as 1


@dataclass(frozen=True)
class Column:
    """One observation column: its name, what it holds, and how it is scaled.

    An entry is ``quantity / scale`` (``log(1 + quantity) / scale`` for ``log`` columns), clipped to
    [-1, 1]; :meth:`ObservationLayout.decode` turns it back into ``quantity`` in ``unit``.
    """

    name: str
    meaning: str
    scale: float = 1.0
    unit: str = ""
    log: bool = False

    def decode(self, entry: np.ndarray) -> np.ndarray:
        """The quantity in ``unit`` from encoded entries (clipped entries stay clipped)."""
        return np.expm1(entry * self.scale) if self.log else entry * self.scale


# units of dimensionless columns: a 0/1 flag; a share (of capacity, slots, a window, ...);
# a time in orbital periods (the env's mean period, so the scale differs by constellation)
FLAG, SHARE, PERIODS = "flag", "share", "orbital periods"

SAT_COLUMNS: tuple[Column, ...] = (
    Column(
        "valid_target", "1 if placing the current job here is a valid action (the action mask)", unit=FLAG
    ),
    Column("sunlit", "1 if in sunlight now", unit=FLAG),
    Column("sunlit_next_orbit", "sunlit share of the next orbital period", unit=SHARE),
    Column("time_to_crossing", "time to the next terminator crossing (1 = none soon)", unit=PERIODS),
    Column("eclipse_left", "length of the next eclipse (remaining, if in eclipse)", unit=PERIODS),
    Column("soc", "state of charge: battery ÷ capacity", unit=SHARE),
    Column(
        "soc_after_queue", "forecast charge once its running and queued work is done ÷ capacity", unit=SHARE
    ),
    Column("soc_at_eclipse_entry", "forecast charge at the next eclipse entry", unit=SHARE),
    Column(
        "eclipse_margin",
        "forecast charge at the end of the next eclipse with this job placed here",
        unit=SHARE,
    ),
    Column("queued_work", "running and queued work per slot", scale=6 * HOUR_S, unit="s"),
    Column("busy_slots", "busy slots ÷ slots", unit=SHARE),
    Column("queue_fill", "queued jobs ÷ max_queue", unit=SHARE),
    Column("safe_mode", "1 if browned out and recharging (takes no jobs)", unit=FLAG),
    Column("in_contact", "1 if a ground station sees it now", unit=FLAG),
    Column("time_to_contact", "time to its next direct station contact (1 = none soon)", unit=PERIODS),
    Column("hops", "ISL hops from the job's entry point (-1 = unreachable)", scale=10.0, unit="hops"),
    Column("start_slack", "(deadline − estimated start) ÷ (deadline − now); -1 = never", unit=SHARE),
    Column("finish_slack", "(deadline − estimated finish) ÷ (deadline − now); -1 = never", unit=SHARE),
    Column("delivery_slack", "(deadline − estimated delivery) ÷ (deadline − now); < 0 = late", unit=SHARE),
    Column(
        "downlink_wait",
        "estimated delivery − finish: waiting for a contact and a free antenna (1 = none soon)",
        unit=PERIODS,
    ),
)

JOB_COLUMNS: tuple[Column, ...] = (
    Column("present", "1 if a job is awaiting a decision (0 only in the final observation)", unit=FLAG),
    Column("inference", "1 if the job is inference", unit=FLAG),
    Column("training", "1 if the job is training", unit=FLAG),
    Column("earth_observation", "1 if the job is Earth observation (input on board)", unit=FLAG),
    Column("work", "remaining work", scale=6 * HOUR_S, unit="s"),
    Column("input_size", "input size", scale=50.0, unit="GB"),
    Column("output_size", "output size", scale=5.0, unit="GB"),
    Column("time_to_deadline", "time to deadline", scale=10 * HOUR_S, unit="s"),
    Column(
        "value", "value (entry = log(1 + value) ÷ log(101))", scale=LOG_VALUE_SCALE, unit="value", log=True
    ),
    Column("value_density", "value per accelerator-hour", scale=60.0, unit="value/h"),
    Column("in_orbit_data", "1 if the input is already on a satellite", unit=FLAG),
    Column("progress", "share of the work already checkpointed", unit=SHARE),
    Column(
        "origin_backlog",
        "antenna time booked from now on at the input's station, per antenna (0: input on board)",
        scale=HOUR_S,
        unit="s",
    ),
    Column(
        "origin_time_to_contact",
        "time until the input's station next reaches a satellite (0: now or input on board; 1 = none soon)",
        unit=PERIODS,
    ),
)

GLOBAL_COLUMNS: tuple[Column, ...] = (
    Column("time_of_day_sin", "sin(2π · UTC hour ÷ 24)"),
    Column("time_of_day_cos", "cos(2π · UTC hour ÷ 24)"),
    Column("pending", "jobs awaiting a decision now", scale=50.0, unit="jobs"),
    Column("horizon_left", "share of the episode left", unit=SHARE),
    Column("mean_soc", "mean state of charge of the valid satellites", unit=SHARE),
    Column(
        "mean_soc_after_eclipse", "mean forecast charge after each one's next eclipse ÷ capacity", unit=SHARE
    ),
    Column("sunlit_share", "share of valid satellites in sunlight", unit=SHARE),
    Column(
        "energy_balance",
        "next-orbit generation minus committed load ÷ array output (mean of valid satellites)",
        unit=SHARE,
    ),
    Column(
        "station_backlog",
        "antenna time booked from now on, per antenna, mean of stations",
        scale=HOUR_S,
        unit="s",
    ),
)

ALL_NAMES = tuple(c.name for c in SAT_COLUMNS + JOB_COLUMNS + GLOBAL_COLUMNS)
assert len(set(ALL_NAMES)) == len(ALL_NAMES), "observation column names must be unique"


class ObservationLayout:
    """Names, sizes and decoding of the observation for ``n_sats`` satellites."""

    def __init__(self, n_sats: int):
        self.n_sats = int(n_sats)
        self.sat_columns = SAT_COLUMNS
        self.job_columns = JOB_COLUMNS
        self.global_columns = GLOBAL_COLUMNS
        self.n_sat_features = len(SAT_COLUMNS)
        self._sat_end = self.n_sats * self.n_sat_features
        self._job_end = self._sat_end + len(JOB_COLUMNS)
        self.size = self._job_end + len(GLOBAL_COLUMNS)
        self._sat_idx = {c.name: i for i, c in enumerate(SAT_COLUMNS)}
        self._job_idx = {c.name: i for i, c in enumerate(JOB_COLUMNS)}
        self._glob_idx = {c.name: i for i, c in enumerate(GLOBAL_COLUMNS)}

    @staticmethod
    def satellites_for_size(size: int) -> int | None:
        """Satellites of the layout whose flat observation has ``size`` entries (``None``: no layout)."""
        n_sats, rest = divmod(int(size) - len(JOB_COLUMNS) - len(GLOBAL_COLUMNS), len(SAT_COLUMNS))
        return n_sats if rest == 0 and n_sats >= 1 else None

    @classmethod
    def for_size(cls, size: int) -> ObservationLayout:
        """The layout whose flat observation has ``size`` entries.

        Raises:
            ValueError: no number of satellites gives that size.
        """
        n_sats = cls.satellites_for_size(size)
        if n_sats is None:
            raise ValueError(f"an observation of {size} entries matches no orbit_env layout")
        return cls(n_sats)

    # -- spaces ----------------------------------------------------------------------------
    def flat_space(self) -> spaces.Box:
        return spaces.Box(-1.0, 1.0, shape=(self.size,), dtype=np.float32)

    def dict_space(self) -> spaces.Dict:
        return spaces.Dict(
            {
                "satellites": spaces.Box(
                    -1.0, 1.0, shape=(self.n_sats, self.n_sat_features), dtype=np.float32
                ),
                "job": spaces.Box(-1.0, 1.0, shape=(len(JOB_COLUMNS),), dtype=np.float32),
                "globals": spaces.Box(-1.0, 1.0, shape=(len(GLOBAL_COLUMNS),), dtype=np.float32),
            }
        )

    # -- names -------------------------------------------------------------------------------
    def sat_index(self, name: str) -> int:
        """Column of a per-satellite feature."""
        return self._lookup(self._sat_idx, name, "satellite")

    def job_index(self, name: str) -> int:
        return self._lookup(self._job_idx, name, "job")

    def global_index(self, name: str) -> int:
        return self._lookup(self._glob_idx, name, "global")

    @staticmethod
    def _lookup(table: dict[str, int], name: str, kind: str) -> int:
        try:
            return table[name]
        except KeyError:
            raise KeyError(f"no {kind} column {name!r}; columns: {', '.join(table)}") from None

    # -- decoding (flat or batched) ------------------------------------------------------------
    def _check(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs)
        if obs.shape[-1] != self.size:
            raise ValueError(
                f"observation has {obs.shape[-1]} entries, this layout ({self.n_sats} satellites) "
                f"has {self.size}"
            )
        return obs

    def satellites(self, obs: np.ndarray) -> np.ndarray:
        """Per-satellite block, [N, F] (or [B, N, F])."""
        obs = self._check(obs)
        return obs[..., : self._sat_end].reshape(obs.shape[:-1] + (self.n_sats, self.n_sat_features))

    def job(self, obs: np.ndarray) -> np.ndarray:
        """Job block, [J] (or [B, J])."""
        return self._check(obs)[..., self._sat_end : self._job_end]

    def globals(self, obs: np.ndarray) -> np.ndarray:
        """Global block, [G] (or [B, G])."""
        return self._check(obs)[..., self._job_end :]

    def column(self, name: str) -> Column:
        """The :class:`Column` called ``name`` (names are unique across the three blocks)."""
        for columns in (self.sat_columns, self.job_columns, self.global_columns):
            for c in columns:
                if c.name == name:
                    return c
        raise KeyError(f"no observation column {name!r}; columns: {', '.join(ALL_NAMES)}")

    def decode(self, obs: np.ndarray, name: str) -> np.ndarray:
        """Column ``name`` of a flat observation ``[D]`` (or batch ``[B, D]``) in its unit.

        Returns ``[N]`` (``[B, N]``) for a satellite column, a scalar (``[B]``) otherwise.
        """
        if name in self._sat_idx:
            return SAT_COLUMNS[self._sat_idx[name]].decode(self.satellites(obs)[..., self._sat_idx[name]])
        if name in self._job_idx:
            return JOB_COLUMNS[self._job_idx[name]].decode(self.job(obs)[..., self._job_idx[name]])
        return self.column(name).decode(self.globals(obs)[..., self.global_index(name)])

    def to_dict(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        return {"satellites": self.satellites(obs), "job": self.job(obs), "globals": self.globals(obs)}

    def from_dict(self, blocks: dict[str, np.ndarray]) -> np.ndarray:
        """The flat observation [D] (or [B, D]) of :meth:`to_dict`'s blocks."""
        sats = np.asarray(blocks["satellites"])
        lead = sats.shape[:-2]
        return np.concatenate(
            [sats.reshape(lead + (-1,)), np.asarray(blocks["job"]), np.asarray(blocks["globals"])], axis=-1
        )

    def action_mask(self, obs: np.ndarray) -> np.ndarray:
        """bool[N + 2] (or [B, N + 2]) mask from the valid-target flags; defer and reject always valid."""
        flags = self.satellites(obs)[..., self.sat_index("valid_target")] > 0.5
        tail = np.ones(flags.shape[:-1] + (2,), dtype=bool)
        return np.concatenate([flags, tail], axis=-1)

    # -- encoding --------------------------------------------------------------------------
    def encode(
        self, sats: np.ndarray, job: np.ndarray, glob: np.ndarray, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Flat float32 observation from the three blocks (values clipped to [-1, 1])."""
        if out is None:
            out = np.empty(self.size, dtype=np.float32)
        _encode(sats.reshape(-1), job, glob, out)
        return out

    # -- documentation -------------------------------------------------------------------------
    def table(self) -> str:
        """Markdown table of every column: block, index, name, meaning, scale and unit."""
        rows = [
            "| block | index | name | meaning | scale | unit |",
            "|---|---|---|---|---|---|",
        ]
        for block, cols in (("satellite i", SAT_COLUMNS), ("job", JOB_COLUMNS), ("global", GLOBAL_COLUMNS)):
            for i, c in enumerate(cols):
                scale = "log" if c.log else f"{c.scale:g}"
                rows.append(f"| {block} | {i} | `{c.name}` | {c.meaning} | {scale} | {c.unit} |")
        return "\n".join(rows)


@njit
def _encode(sats, job, glob, out) -> None:
    """``out`` (float32[D]) = the three blocks one after the other, each entry rounded to float32
    and clipped to [-1, 1] (NaN stays NaN, as with ``np.clip``)."""
    i = _copy_clipped(sats, out, 0)
    i = _copy_clipped(job, out, i)
    _copy_clipped(glob, out, i)


@njit
def _copy_clipped(src, out, i: int) -> int:
    lo, hi = np.float32(-1.0), np.float32(1.0)
    for j in range(src.shape[0]):  # selects, no branches: the loop vectorises
        v = np.float32(src[j])
        v = lo if v < lo else v
        out[i + j] = hi if v > hi else v
    return i + src.shape[0]
