"""orbit_env: place AI jobs on solar-powered satellite constellations (orbital data centres).

The simulation core (``orbit_env.sim``) is pure numpy + sgp4 + skyfield; the configs are
frozen, validated dataclasses (``orbit_env.config``).
"""

from orbit_env.config import (
    ConstellationConfig,
    GroundStation,
    LinkConfig,
    PowerConfig,
    RewardConfig,
    ScenarioConfig,
    StationConfig,
    WorkloadConfig,
)
from orbit_env.sim.orbits import Constellation
from orbit_env.sim.simulator import Estimate, JobState, Simulator
from orbit_env.sim.workload import Jobs

__version__ = "0.1.0"

__all__ = [
    "Constellation",
    "ConstellationConfig",
    "Estimate",
    "GroundStation",
    "JobState",
    "Jobs",
    "LinkConfig",
    "PowerConfig",
    "RewardConfig",
    "ScenarioConfig",
    "Simulator",
    "StationConfig",
    "WorkloadConfig",
]


def _register() -> None:
    """Register every scenario id with Gymnasium (safe to run twice)."""
    import gymnasium

    from orbit_env.scenarios import SCENARIOS

    for name in SCENARIOS:
        env_id = f"orbit_env/{name}"
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(
            id=env_id,
            entry_point="orbit_env.envs.placement:OrbitPlacementEnv",
            vector_entry_point="orbit_env.envs.vector:OrbitVectorEnv",
            kwargs={"scenario": name},
            disable_env_checker=False,
        )


_register()
