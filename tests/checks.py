"""Assertions shared by the test modules."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def assert_jobs_conserved(metrics: dict) -> None:
    """Every arrived job is in exactly one bucket of an episode's ``info["episode_metrics"]``."""
    buckets = ("jobs_on_time", "jobs_late", "jobs_expired", "jobs_rejected", "jobs_in_flight")
    assert metrics["jobs_arrived"] == sum(metrics[k] for k in buckets), {k: metrics[k] for k in buckets}


def load_script(relative: str) -> ModuleType:
    """Import a script of the checkout that is not in a package (e.g. ``docs/ceiling_gap.py``)."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
