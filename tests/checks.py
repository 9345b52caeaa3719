"""Assertions shared by the test modules."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def assert_jobs_conserved(metrics: dict) -> None:
    """Every arrived job is in exactly one bucket of an episode's final ``info["episode_metrics"]``:
    settled (none in flight) and counted once, ``on time + late + expired + rejected = arrived`` in
    jobs and in value (to 1e-9)."""
    buckets = ("jobs_on_time", "jobs_late", "jobs_expired", "jobs_rejected", "jobs_in_flight")
    assert metrics["jobs_arrived"] == sum(metrics[k] for k in buckets), {k: metrics[k] for k in buckets}
    assert metrics["jobs_in_flight"] == 0, "an arrived job is still unsettled at the end"
    parts = ("value_on_time", "value_late", "value_expired", "value_rejected")
    settled = sum(metrics[k] for k in parts)
    assert abs(settled - metrics["value_arrived"]) <= 1e-9 * max(1.0, metrics["value_arrived"]), metrics


def load_script(relative: str) -> ModuleType:
    """Import a script of the checkout that is not in a package (e.g. ``docs/ceiling_gap.py``)."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
