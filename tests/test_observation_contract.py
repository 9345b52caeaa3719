"""The observation contract: each column's scale and unit, declared once, decode to the sim's numbers."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import orbit_env  # noqa: F401
from orbit_env.envs.observation import ALL_NAMES, GLOBAL_COLUMNS, JOB_COLUMNS, SAT_COLUMNS, ObservationLayout


@pytest.fixture(scope="module")
def decided():
    env = gymnasium.make("orbit_env/Tiny-v1")
    obs, info = env.reset(seed=3)
    for _ in range(5):  # a few placements, so queues and charge differ between satellites
        obs, *_, info = env.step(int(np.flatnonzero(info["action_mask"])[0]))
    return env.unwrapped, obs


def test_every_column_declares_a_positive_scale_and_a_unit_or_is_a_pure_number():
    for column in SAT_COLUMNS + JOB_COLUMNS + GLOBAL_COLUMNS:
        assert column.scale > 0, column
        assert column.meaning, column
    assert len(set(ALL_NAMES)) == len(ALL_NAMES)


def test_decode_returns_the_job_in_physical_units(decided):
    env, obs = decided
    sim, job, layout = env.sim, env._job, env.layout
    jobs = sim.jobs
    rel = 1e-6  # float32 entries
    assert layout.decode(obs, "time_to_deadline") == pytest.approx(jobs.deadline_s[job] - sim.now_s, rel=rel)
    assert layout.decode(obs, "work") == pytest.approx(jobs.work_s[job] - sim.progress_s[job], rel=rel)
    assert layout.decode(obs, "input_size") == pytest.approx(jobs.input_gb[job], rel=rel)
    assert layout.decode(obs, "output_size") == pytest.approx(jobs.output_gb[job], rel=rel)
    assert layout.decode(obs, "value") == pytest.approx(jobs.value[job], rel=1e-5)
    work_h = (jobs.work_s[job] - sim.progress_s[job]) / 3600.0
    assert layout.decode(obs, "value_density") == pytest.approx(jobs.value[job] / work_h, rel=rel)


def test_decode_returns_satellites_and_globals_in_physical_units(decided):
    env, obs = decided
    sim, layout = env.sim, env.layout
    np.testing.assert_allclose(layout.decode(obs, "soc"), sim.soc(), rtol=1e-6)
    per_slot_s = sim.committed_s() / sim.power.accelerators
    np.testing.assert_allclose(layout.decode(obs, "queued_work"), per_slot_s, rtol=1e-6, atol=1e-3)
    assert layout.decode(obs, "pending") == pytest.approx(env._pending)
    hops = layout.decode(obs, "hops")
    np.testing.assert_allclose(hops, sim.entry_hops(env._job), atol=1e-5)


def test_decode_works_on_batches_and_names_unknown_columns():
    layout = ObservationLayout(3)
    batch = np.zeros((5, layout.size), dtype=np.float32)
    assert layout.decode(batch, "soc").shape == (5, 3)
    assert layout.decode(batch, "work").shape == (5,)
    assert layout.decode(batch, "mean_soc").shape == (5,)
    with pytest.raises(KeyError, match="no observation column 'charge'"):
        layout.decode(batch, "charge")


def test_for_size_round_trips_and_rejects_sizes_of_no_layout():
    for n in (1, 4, 64, 1584):
        assert ObservationLayout.for_size(ObservationLayout(n).size).n_sats == n
    with pytest.raises(ValueError, match="matches no orbit_env layout"):
        ObservationLayout.for_size(ObservationLayout(4).size + 1)
