"""The simulator on hand-made geometry: exact power, job lifecycle, conservation, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from orbit_env.config import LinkConfig, PowerConfig, ScenarioConfig, StationConfig, WorkloadConfig
from orbit_env.sim import clock
from orbit_env.sim.orbits import GroundStation
from orbit_env.sim.simulator import JobState, Simulator
from orbit_env.sim.workload import Jobs
from tests.synthetic import SyntheticGeometry, always_visible

ONE_STATION = StationConfig(stations=(GroundStation("Equator", 0.0, 0.0),))


def make_jobs(**columns) -> Jobs:
    """A job stream from keyword columns (defaults: one inference-like job)."""
    n = len(np.atleast_1d(columns.get("arrival_s", [0.0])))
    base = {
        "arrival_s": np.zeros(n),
        "work_s": np.full(n, 120.0),
        "input_gb": np.full(n, 0.5),
        "output_gb": np.full(n, 0.1),
        "deadline_s": np.full(n, 1800.0),
        "value": np.ones(n),
        "kind": np.zeros(n, dtype=np.int8),
        "origin_station": np.zeros(n, dtype=np.int32),
        "origin_sat": np.full(n, -1, dtype=np.int32),
        "checkpoint_s": np.zeros(n),
    }
    base.update({k: np.asarray(v, dtype=base[k].dtype) for k, v in columns.items()})
    return Jobs(**base)


def orbit_sunlight(
    t: int, n: int, dt_s: float, period_s: float = 5760.0, eclipse: float = 0.35
) -> np.ndarray:
    """sunlit_fraction[T, N] of satellites phased around a circular orbit with one eclipse."""
    fine = 20
    times = (np.arange(t * fine) + 0.5) * dt_s / fine
    phase = (times[:, None] / period_s + np.arange(n)[None, :] / n) % 1.0
    lit = phase >= eclipse
    return lit.reshape(t, fine, n).mean(axis=1)


def periodic_sim(n: int = 8, hours: float = 24.0, dt_s: float = 60.0, **power) -> Simulator:
    t = int(hours * 3600 / dt_s) + 1
    frac = orbit_sunlight(t, n, dt_s)
    hops = always_visible(t, 10, n)
    hops[(np.arange(t) // 10) % 3 == 0] = -1  # contacts come and go
    geo = SyntheticGeometry(dt_s=dt_s, sunlit_fraction=frac, station_hops=hops)
    cfg = ScenarioConfig(horizon_s=hours * 3600, dt_s=dt_s).replace(**power)
    return Simulator(cfg, geo)


def run_random(sim: Simulator, rng: np.random.Generator, check_every_step: bool = True) -> None:
    """Random valid decisions until the horizon, checking conservation and energy each step."""
    while not sim.done:
        for job in sim.pending():
            choice = rng.integers(0, 3)
            valid = np.flatnonzero(sim.valid_targets(job))
            if choice == 0 and valid.size:
                sim.place(job, int(rng.choice(valid)))
            elif choice == 1:
                sim.defer(job)
            else:
                sim.reject(job)
        sim.advance()
        if check_every_step:
            sim.check_invariants()
            assert (sim.energy_wh >= 0).all() and (sim.energy_wh <= sim.power.battery_wh).all()
            # pending() scans only from the first unsettled job: the same jobs as a scan of all
            ids = np.flatnonzero((sim.state == JobState.PENDING) & (sim.present_s <= sim.now_s + 1e-9))
            order = np.lexsort((ids, sim.jobs.arrival_s[ids], sim.present_s[ids]))
            assert np.array_equal(sim.pending(), ids[order])


def test_brownout_happens_at_the_analytic_time():
    # 100 Wh, 1000 W load, no sun after 90 s: the battery lasts exactly 360 s into the eclipse.
    frac = np.zeros((11, 1))
    frac[0, 0] = 1.0
    frac[1, 0] = 0.5  # sunlit for the first half of step 1: eclipse entry at 90 s
    sunlit = frac > 0.9
    sunlit[1, 0] = True
    geo = SyntheticGeometry(
        dt_s=60.0, sunlit_fraction=frac, sunlit=sunlit, station_hops=always_visible(11, 1, 1)
    )
    cfg = ScenarioConfig(ground=ONE_STATION, horizon_s=600.0).replace(
        solar_array_w=2000.0,
        bus_w=1000.0,
        accelerators=1,
        accelerator_idle_w=0.0,
        radio_w=0.0,
        battery_wh=100.0,
        initial_soc=1.0,
        discharge_efficiency=1.0,
    )
    sim = Simulator(cfg, geo)
    sim.reset(np.random.default_rng(0), jobs=make_jobs(arrival_s=[1e6], deadline_s=[2e6]))
    while not sim.done:
        sim.advance()
        sim.check_invariants()
    assert sim.counters.brownouts == 1
    assert sim.counters.brownout_times_s[0] == pytest.approx(450.0, abs=1e-6)
    assert sim.safe[0]
    # sunlit for 90 s at 2000 W against a 1000 W load with a full battery: 1000 W curtailed
    assert sim.ledger.curtailed[0] == pytest.approx(1000.0 * 90 / 3600, rel=1e-12)
    assert sim.energy_wh[0] == 0.0


def test_placed_job_is_delivered_after_transfer_work_and_downlink():
    geo = SyntheticGeometry(
        dt_s=60.0, sunlit_fraction=np.ones((11, 2)), station_hops=always_visible(11, 1, 2)
    )
    cfg = ScenarioConfig(ground=ONE_STATION, horizon_s=600.0)
    sim = Simulator(cfg, geo)
    sim.reset(np.random.default_rng(0), jobs=make_jobs(arrival_s=[30.0]))
    sim.advance()
    assert list(sim.pending()) == [0]
    est = sim.estimate(0, np.array([1]))
    ready = sim.place(0, 1)
    assert ready == pytest.approx(60.0 + 0.5 * 8 / 10)
    while not sim.done:
        sim.advance()
    assert sim.state[0] == JobState.ON_TIME
    expected = 60.0 + 0.4 + 120.0 + 0.1 * 8 / 10
    assert sim.delivery_s[0] == pytest.approx(expected, abs=1e-9)
    assert est.delivery_s[0] == pytest.approx(expected, abs=1e-9)
    assert sim.counters.latency_s == [pytest.approx(expected - 30.0)]


def test_energy_and_jobs_are_conserved_over_a_day_of_random_placements():
    sim = periodic_sim(battery_wh=1500.0, load=1.5)
    sim.reset(np.random.default_rng(7))
    run_random(sim, np.random.default_rng(8))
    m = sim.metrics()
    assert m["jobs_arrived"] > 100
    assert m["jobs_arrived"] == (
        m["jobs_on_time"] + m["jobs_late"] + m["jobs_expired"] + m["jobs_rejected"] + m["jobs_in_flight"]
    )
    lg = sim.ledger
    assert lg.generated.sum() > 0 and lg.curtailed.sum() > 0
    assert m["brownouts"] > 0, "random placement at load 1.5 with small batteries should brown out"
    assert 0 < m["accelerator_utilization"] <= 1


def test_same_seed_gives_identical_jobs_and_state():
    runs = []
    for _ in range(2):
        sim = periodic_sim(hours=6.0)
        sim.reset(np.random.default_rng(3))
        run_random(sim, np.random.default_rng(4), check_every_step=False)
        runs.append(sim)
    a, b = runs
    assert a.jobs.equals(b.jobs)
    assert np.array_equal(a.state, b.state)
    assert np.array_equal(a.energy_wh, b.energy_wh)
    assert a.metrics() == b.metrics()
    other = periodic_sim(hours=6.0)
    other.reset(np.random.default_rng(5))
    assert not other.jobs.equals(a.jobs)


def test_failed_job_restarts_from_its_last_checkpoint():
    # A training job runs on a satellite whose battery dies mid-job in eclipse.
    t = 121
    frac = np.zeros((t, 1))
    geo = SyntheticGeometry(dt_s=60.0, sunlit_fraction=frac, station_hops=always_visible(t, 1, 1))
    cfg = ScenarioConfig(ground=ONE_STATION, horizon_s=7200.0).replace(
        battery_wh=1000.0, initial_soc=1.0, radio_w=0.0, reserve_soc=0.0, discharge_efficiency=1.0
    )
    sim = Simulator(cfg, geo)
    jobs = make_jobs(
        arrival_s=[0.0], work_s=[3 * 3600.0], checkpoint_s=[900.0], deadline_s=[1e5], input_gb=[0.0]
    )
    sim.reset(np.random.default_rng(0), jobs=jobs)
    sim.advance()
    sim.place(0, 0)
    while sim.counters.brownouts == 0:
        sim.advance()
    # idle for 60 s at 600 W (10 Wh), then bus 400 + one busy 700 + three idle 150 = 1250 W
    assert sim.counters.brownout_times_s[0] == pytest.approx(60.0 + 990.0 / 1250.0 * 3600.0, abs=1e-6)
    assert sim.state[0] == JobState.PENDING
    assert sim.progress_s[0] == 2700.0  # 2851.2 s of work, checkpoints every 900 s
    assert sim.input_sat[0] == 0 and sim.counters.job_failures == 1
    sim.check_invariants()


def test_deferred_job_returns_after_defer_s_and_expires_at_its_deadline():
    geo = SyntheticGeometry(
        dt_s=60.0, sunlit_fraction=np.ones((61, 1)), station_hops=always_visible(61, 1, 1)
    )
    sim = Simulator(ScenarioConfig(ground=ONE_STATION, horizon_s=3600.0, defer_s=600.0), geo)
    sim.reset(np.random.default_rng(0), jobs=make_jobs(arrival_s=[10.0], deadline_s=[1000.0]))
    sim.advance()
    sim.defer(0)
    seen = []
    while not sim.done:
        sim.advance()
        if len(sim.pending()):
            seen.append(sim.now_s)
            sim.defer(0)
    assert seen == [660.0]
    assert sim.state[0] == JobState.EXPIRED and sim.counters.expired == 1


def test_station_antennas_serve_transfers_fifo():
    # Three 20 GB uploads from one station with one antenna queue behind each other.
    geo = SyntheticGeometry(
        dt_s=60.0, sunlit_fraction=np.ones((61, 3)), station_hops=always_visible(61, 1, 3)
    )
    cfg = ScenarioConfig(ground=ONE_STATION, horizon_s=3600.0).replace(antennas=1)
    sim = Simulator(cfg, geo)
    sim.reset(np.random.default_rng(0), jobs=make_jobs(arrival_s=[1.0, 2.0, 3.0], input_gb=[20.0] * 3))
    sim.advance()
    ready = [sim.place(int(j), int(j)) for j in sim.pending()]
    assert ready == pytest.approx([60.0 + 16.0, 60.0 + 32.0, 60.0 + 48.0])


def test_invalid_decisions_raise_clear_errors():
    geo = SyntheticGeometry(
        dt_s=60.0, sunlit_fraction=np.ones((11, 1)), station_hops=always_visible(11, 1, 1)
    )
    sim = Simulator(ScenarioConfig(ground=ONE_STATION, horizon_s=600.0), geo)
    sim.reset(np.random.default_rng(0), jobs=make_jobs(arrival_s=[100.0]))
    with pytest.raises(ValueError, match="not awaiting a decision"):
        sim.place(0, 0)
    sim.advance()
    sim.advance()
    with pytest.raises(ValueError, match="sat must be in"):
        sim.place(0, 5)
    with pytest.raises(ValueError, match="job must be in"):
        sim.reject(3)


def test_geometry_too_short_for_the_horizon_is_refused():
    geo = SyntheticGeometry(
        dt_s=60.0, sunlit_fraction=np.ones((11, 1)), station_hops=always_visible(11, 1, 1)
    )
    with pytest.raises(ValueError, match="horizon_s"):
        Simulator(ScenarioConfig(ground=ONE_STATION, horizon_s=3600.0), geo)


def test_offered_load_scales_with_sustainable_compute():
    sim = periodic_sim(hours=24.0)
    sim.reset(np.random.default_rng(1))
    work_low = sim.jobs.work_s.sum()
    sim2 = periodic_sim(hours=24.0, load=2.6)
    sim2.reset(np.random.default_rng(1))
    ratio = sim2.jobs.work_s.sum() / work_low
    assert 1.6 < ratio < 2.5
    offered_slots = work_low / (24 * 3600)
    assert offered_slots == pytest.approx(1.3 * sim.sustainable_slots.sum(), rel=0.35)


def test_load_and_link_configs_reach_the_simulator():
    sim = periodic_sim(hours=1.0, isl_gbps=50.0, load=0.5)
    assert sim.config.links == LinkConfig(isl_gbps=50.0)
    assert sim.config.workload == WorkloadConfig(load=0.5)
    assert sim.power == PowerConfig()


def test_energy_and_jobs_are_conserved_over_a_real_day_of_random_placements():
    from datetime import datetime, timezone

    cfg = ScenarioConfig(horizon_s=86400.0, epoch=datetime(2026, 6, 1, tzinfo=timezone.utc)).replace(
        total=16, planes=4, battery_wh=1500.0
    )
    sim = Simulator.from_config(cfg)
    sim.reset(np.random.default_rng(0))
    run_random(sim, np.random.default_rng(1))
    m = sim.metrics()
    assert m["jobs_on_time"] > 0 and m["energy_curtailed_kwh"] > 0 and m["brownouts"] > 0
    lg = sim.ledger
    change = sim.energy_wh - sim.energy0_wh
    assert np.allclose(change, lg.charged - lg.discharged, rtol=0, atol=1e-9 * lg.generated.max())
    gap = lg.generated - (lg.used + lg.stored(sim.power) + lg.curtailed)
    assert np.abs(gap).max() <= 1e-9 * lg.generated.max()


def test_radiation_upsets_restart_running_jobs_from_their_checkpoint():
    # An upset in every step: a 120 s job without checkpoints never gets past 60 s of work,
    # while a job checkpointing every 45 s keeps what it checkpointed and finishes.
    geo = SyntheticGeometry(
        dt_s=60.0, sunlit_fraction=np.ones((121, 1)), station_hops=always_visible(121, 1, 1)
    )
    results = {}
    for rate in (0.0, 3600.0):
        cfg = ScenarioConfig(ground=ONE_STATION, horizon_s=7200.0).replace(seu_rate_per_hour=rate)
        sim = Simulator(cfg, geo)
        jobs = make_jobs(
            arrival_s=[0.0, 0.0],
            work_s=[120.0, 1000.0],
            checkpoint_s=[0.0, 45.0],
            input_gb=[0.0, 0.0],
            deadline_s=[1e5, 1e5],
        )
        sim.reset(np.random.default_rng(0), jobs=jobs)
        sim.advance()
        sim.place(0, 0)
        sim.place(1, 0)
        while not sim.done:
            sim.advance()
            sim.check_invariants()
        results[rate] = sim
    assert results[0.0].state.tolist() == [JobState.ON_TIME, JobState.ON_TIME]
    upset = results[3600.0]
    assert upset.counters.seu_events > 100
    # job 0 cannot checkpoint, so upsets restart it from zero for ever: still running when the
    # geometry (and so the drain window) ends, it is settled then as expired and its slot freed
    assert upset.state[0] == JobState.EXPIRED and upset.counters.settled_at_end == 1
    assert upset.slot_remaining_s.max() == 0 and not upset.unsettled().size
    assert upset.state[1] == JobState.ON_TIME
    assert upset.finish_s[1] > results[0.0].finish_s[1]


def test_a_lost_satellites_jobs_are_presented_at_the_loss_and_inputs_still_on_the_ground_stay_there():
    # Satellite 0 stops propagating at t = 600 s (step 10); the station sees it only from step 15,
    # satellite 1 all along. Job 0 (ground input) is placed on satellite 0 and still waits for its
    # uplink at the loss; job 1 (Earth-observation data on satellite 0) runs there.
    t, dt = 121, 60.0
    hops = np.zeros((t, 1, 2), dtype=np.int16)
    hops[:15, 0, 0] = -1
    valid = np.ones((t, 2), dtype=bool)
    valid[10:, 0] = False
    geo = SyntheticGeometry(dt_s=dt, sunlit_fraction=np.ones((t, 2)), station_hops=hops, valid=valid)
    sim = Simulator(ScenarioConfig(ground=ONE_STATION, horizon_s=7200.0), geo)
    jobs = make_jobs(
        arrival_s=[0.0, 0.0],
        work_s=[120.0, 3600.0],
        deadline_s=[1800.0, 1e5],
        kind=[0, 2],
        origin_station=[0, -1],
        origin_sat=[-1, 0],
        input_gb=[0.5, 50.0],
    )
    sim.reset(np.random.default_rng(0), jobs=jobs)
    sim.advance()
    assert sim.place(0, 0) > 900.0  # the uplink waits for the first contact, after the loss
    sim.place(1, 0)
    while sim.now_s < 600.0:
        sim.advance()
    assert sim.state[1] == JobState.PENDING and sim.present_s[1] == 600.0  # at the loss, not a step later
    assert sim.input_sat[1] == 0  # its data was on board: lost with the satellite
    assert not sim.valid_targets(1).any()
    assert sim.state[0] == JobState.PENDING and sim.present_s[0] == 600.0
    assert (sim.input_station[0], sim.input_sat[0]) == (0, -1)  # the input never left the ground
    assert sim.valid_targets(0).tolist() == [False, True]  # so it can be placed again
    assert list(sim.pending()) == [0, 1]
    sim.place(0, 1)
    while not sim.done:
        sim.advance()
    assert sim.state[0] == JobState.ON_TIME
    sim.check_invariants()


def test_radio_draws_while_transmitting_even_when_the_only_contact_is_in_eclipse():
    # One satellite in sunlight but for steps 30-49; the station sees it only in steps 40-42,
    # inside that eclipse. A job placed at t = 60 s (sunlit) uploads 50 GB (40 s at 10 Gbps)
    # at the contact: the radio must draw then, not in the sunlit steps after the placement.
    t, dt = 121, 60.0
    lit = np.ones((t, 1))
    lit[30:50] = 0.0
    hops = np.full((t, 1, 1), -1, dtype=np.int16)
    hops[40:43] = 0
    geo = SyntheticGeometry(dt_s=dt, sunlit_fraction=lit, station_hops=hops)
    cfg = ScenarioConfig(ground=ONE_STATION, horizon_s=7200.0)
    sim = Simulator(cfg, geo)
    p = cfg.power
    sim.reset(np.random.default_rng(0), jobs=make_jobs(input_gb=[50.0], work_s=[120.0], deadline_s=[1e5]))
    used = [sim.ledger.used[0]]
    remove = sim.add_listener(lambda s: used.append(float(s.ledger.used[0])))
    sim.advance()
    assert sim.place(0, 0) == pytest.approx(40 * dt + 40.0)  # arrives at the eclipse contact
    while sim.now_s < 41 * dt:
        sim.advance()
    remove()
    per_step_wh = np.diff(used)
    idle_wh = (p.bus_w + p.accelerators * p.accelerator_idle_w) * dt / 3600.0
    np.testing.assert_allclose(per_step_wh[1:40], idle_wh, rtol=1e-12)  # no radio in steps 1-39
    radio_wh = p.radio_w * 40.0 / 3600.0  # step 40, in eclipse: the 40 s upload ...
    work_wh = (p.accelerator_w - p.accelerator_idle_w) * 20.0 / 3600.0  # ... then 20 s of the job
    assert per_step_wh[40] == pytest.approx(idle_wh + radio_wh + work_wh, rel=1e-12)
    assert sim.geometry.sunlit_fraction[40, 0] == 0.0
    sim.check_invariants()


def test_safe_mode_still_powers_a_booked_transfer():
    from orbit_env.sim.kernels import load_w

    p = PowerConfig()
    watts = (p.bus_w, p.accelerator_w, p.accelerator_idle_w, p.accelerators)
    assert load_w(0, True, p.radio_w, *watts) == p.bus_w + p.radio_w  # safe: accelerators off, radio on
    assert load_w(0, False, p.radio_w, *watts) == p.bus_w + p.accelerators * p.accelerator_idle_w + p.radio_w


def test_the_kernels_job_states_are_the_simulators():
    from orbit_env.sim import kernels
    from orbit_env.sim.simulator import JobState

    assert (kernels.PENDING, kernels.QUEUED, kernels.RUNNING, kernels.DOWNLINK) == (
        JobState.PENDING, JobState.QUEUED, JobState.RUNNING, JobState.DOWNLINK,
    )  # fmt: skip
    # pending() skips the jobs before the first unsettled one: the settled states must be the last
    assert [s for s in JobState if s >= kernels.SETTLED_FROM] == [
        JobState.ON_TIME, JobState.LATE, JobState.EXPIRED, JobState.REJECTED,
    ]  # fmt: skip


def test_decision_in_one_call_equals_estimate_valid_targets_and_entry_hops():
    """``Simulator.decision`` (the env's decision tier, one compiled call) gives what the three
    separate methods give, for inputs on the ground and on board, and keeps the input arrival
    for the ``place`` that follows."""
    import gymnasium as gym

    import orbit_env  # noqa: F401

    env = gym.make("orbit_env/WalkerLEO-v1", epoch="2026-03-20T00:00:00Z")
    _, info = env.reset(seed=2)
    sim = env.unwrapped.sim
    rng = np.random.default_rng(0)
    kinds = set()
    for _ in range(400):
        job = info["job"]
        if job >= 0:
            got = sim.decision(job)
            sim._input_key, sim._ints[clock.DEC_JOB] = None, -1  # the separate methods compute it again
            est = sim.estimate(job)
            for name in ("input_ready_s", "start_s", "finish_s", "delivery_s"):
                np.testing.assert_array_equal(getattr(got, name), getattr(est, name))
            np.testing.assert_array_equal(got.valid, sim.valid_targets(job))
            np.testing.assert_array_equal(got.hops, sim.entry_hops(job))
            kinds.add(bool(sim.input_station[job] >= 0))
        _, _, terminated, _, info = env.step(rng.choice(np.flatnonzero(info["action_mask"])))
        if terminated:
            break
    assert kinds == {True, False}  # both kinds of input were checked
