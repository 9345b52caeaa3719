"""bench/: the suite runs end to end on tiny sizes and yields every row with a finite ratio.

No timing is asserted (shared CI machines): only that each figure exists and is a number.
"""

from __future__ import annotations

import json
import math

import pytest

from bench import run as bench_run
from bench.profile import format_stats, profile_steps

TINY = {
    "steps": 20,
    "mega_steps": 10,
    "cartpole_steps": 2_000,
    "train_n_steps": 64,
    "train_batch_size": 32,
    "train_epochs": 1,
    "train_rollouts": 1,
    "resets": 2,
    "memory_env": "orbit_env/Tiny-v1",  # the Megaconstellation-v1 subprocess is the quick run's job
    "memory_steps": 5,
    "memory_timeout_s": 120.0,
    "scaling_sizes": (16, 32),
    "scaling_steps": 20,
    "vector_sizes": (1, 2),
    "vector_env_steps": 8,
}


def expected_keys(settings: bench_run.Settings) -> list[str]:
    keys = [f"step_rate/{name}" for name in settings.scenarios]
    keys += [f"vector/{b}" for b in settings.vector_sizes]
    b = max(settings.vector_sizes)
    keys += [f"vector/{b}_mask_infos", f"vector/{b}_vs_single", "vector/memory"]
    keys += [
        "train_fps/frozen",
        "train_fps",
        "train_fps/dummy_vs_frozen",
        "train_fps/native_vs_frozen",
        "train_fps/1_thread/frozen",
        "train_fps/1_thread",
        "train_fps/1_thread/dummy_vs_frozen",
        "train_fps/1_thread/native_vs_frozen",
        "train_fps/1_thread/satscorer_native_vs_frozen",
        "geometry",
        "reset_warm",
        "reset_disk",
        "reset_cold",
        "compile",
        "memory",
    ]
    keys += [f"scaling/{n}" for n in settings.scaling_sizes]
    return keys


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    settings = bench_run.Settings.for_mode(True, **TINY)
    out = tmp_path_factory.mktemp("bench_out")
    return bench_run.run(settings, out_dir=out), out


def test_every_row_with_a_finite_ratio(tiny_results):
    res, _ = tiny_results
    assert [r.error for r in res.rows if r.error] == []
    assert [r.key for r in res.rows] == expected_keys(res.settings)
    for row in res.rows:
        assert math.isfinite(row.measured) and row.measured > 0, row
        assert math.isfinite(row.reference) and row.reference > 0, row
        assert math.isfinite(row.ratio) and row.ratio > 0, row
        assert row.marker in ("✓", "✗", "·"), row
    targets = {r.key: r.target for r in res.rows}
    assert targets["step_rate/WalkerLEO-v1"] == (">=", 0.25)
    assert targets["step_rate/Megaconstellation-v1"] == (">=", 0.05)
    assert targets["train_fps"] == (">=", 0.7)
    assert targets["train_fps/1_thread/native_vs_frozen"] == (">=", 0.8)
    assert targets["geometry"] == ("<=", 2.5)
    assert targets["reset_warm"] == ("<=", 1.0)
    assert targets["memory"] == ("<=", 1.0)


def test_outputs_table_json_and_plot(tiny_results):
    res, out = tiny_results
    bench_run.write_outputs(res, out)
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "Machine: " in md and "| what | measured | reference | ratio | target |" in md
    table_lines = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(table_lines) == 1 + len(res.rows)  # header + one line per row
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert [r["key"] for r in data["rows"]] == expected_keys(res.settings)
    assert all(math.isfinite(r["ratio"]) for r in data["rows"])
    assert {"cpu", "cores", "python", "numpy"} <= set(data["machine"])
    assert (out / "scaling.png").stat().st_size > 0
    assert math.isfinite(data["details"]["scaling_slope"])


def test_missed_target_is_a_marker_not_an_error():
    row = bench_run.Row("x", "x", 1.0, "1", 10.0, "10", (">=", 0.25), "≥ 0.25")
    assert row.ratio == pytest.approx(0.1) and row.passed is False and row.marker == "✗"
    row = bench_run.Row("x", "x", 1.0, "1", 10.0, "10", ("<=", 0.25), "≤ 0.25")
    assert row.passed is True and row.marker == "✓"
    row = bench_run.Row("x", "x", 1.0, "1", 10.0, "10", None, "info")
    assert row.passed is None and row.marker == "·"


def test_cli_never_fails_on_a_missed_target(capsys):
    # the warm reset budget is checked, and the exit code is 0 whether or not it is met
    assert bench_run.main(["--quick", "--only", "reset"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Machine: ")
    assert "reset() WalkerLEO-v1, warm cache" in out


def test_profile_helper_lists_env_step():
    stats, summary = profile_steps("orbit_env/Tiny-v1", 30, seed=0)
    assert summary["steps"] == 30 and summary["profiled_step_s"] > 0
    text = format_stats(stats, "cumulative", 10)
    assert "ncalls" in text and "placement.py" in text


def test_the_parts_timer_times_every_part_of_a_step():
    from bench import parts
    from orbit_env.envs import batch

    before = batch.env_step
    per_step = parts.main(["--env", "orbit_env/Tiny-v1", "--steps", "60"])
    assert batch.env_step is before  # the compiled step is put back
    for label in ("batch.env_step", "batch.take_logs", "env._check_action", "env._info"):
        assert per_step[label] > 0, label


def test_the_call_counter_counts_the_kernels_of_a_step_and_puts_them_back():
    from bench import calls
    from orbit_env.envs import batch

    before = batch.env_step
    counted, arrays = calls.count_calls("orbit_env/Tiny-v1", 40, seed=0)
    assert batch.env_step is before  # the compiled functions are restored
    assert counted["batch.env_step"] == 40 and counted["batch.take_logs"] == 40  # one each per step
    assert arrays["batch.env_step"] == 4 * 40  # penalties, totals, obs, results (the states are structs)
    out = calls.main(["--env", "orbit_env/Tiny-v1", "--steps", "20", "--top", "3"])
    assert out["calls"] > 1 and out["arrays"] > 0 and out["dispatch_us"] > 0


def test_the_fingerprint_is_the_same_for_the_same_episode_and_differs_for_another():
    from bench import fingerprint

    a = fingerprint.fingerprint("orbit_env/Tiny-v1", 50, seed=3)
    assert a == fingerprint.fingerprint("orbit_env/Tiny-v1", 50, seed=3) and 0 < a[2] <= 50  # ends early
    assert fingerprint.fingerprint("orbit_env/Tiny-v1", 50, seed=4)[0] != a[0]


def test_the_cache_probe_times_the_step_with_each_filler_between_steps():
    from bench import cache

    result = cache.main(["--env", "orbit_env/Tiny-v1", "--steps", "30"])
    assert {"nothing", "JSON round trip", "sum over 2 MB"} <= result.keys()
    assert all(r["step_us"] > 0 for r in result.values())
    assert result["nothing"]["between_us"] == 0 and result["sum over 2 MB"]["between_us"] > 0
    with pytest.raises(SystemExit):
        cache.main(["--steps", "0"])
