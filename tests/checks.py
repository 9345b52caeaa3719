"""Assertions shared by the test modules."""

from __future__ import annotations


def assert_jobs_conserved(metrics: dict) -> None:
    """Every arrived job is in exactly one bucket of an episode's ``info["episode_metrics"]``."""
    buckets = ("jobs_on_time", "jobs_late", "jobs_expired", "jobs_rejected", "jobs_in_flight")
    assert metrics["jobs_arrived"] == sum(metrics[k] for k in buckets), {k: metrics[k] for k in buckets}
