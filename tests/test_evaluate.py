"""evaluate.py: same seeds for every policy, the output files and their shapes, one-line errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import types
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import evaluate as ev
import orbit_env  # noqa: F401  (registers the ids)

ROOT = Path(__file__).resolve().parents[1]
TINY = "orbit_env/Tiny-v1"
POLICIES = ["random", "earliest_finish", "eclipse_safe"]
METRICS = {"return", "jobs_arrived", "value_on_time", "on_time_value_rate", "brownouts", "latency_p95_s"}


@pytest.fixture(scope="module")
def cli_out(tmp_path_factory) -> Path:
    """The real command line on Tiny-v1, 2 episodes, three heuristics, no ceiling."""
    out = tmp_path_factory.mktemp("eval")
    argv = [sys.executable, "evaluate.py", "--env", "Tiny-v1", "--episodes", "2", "--seed", "7"]
    argv += ["--policies", ",".join(POLICIES), "--out", str(out), "--no-ceiling"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "| policy | return (95 % CI) |" in done.stdout
    return out


@pytest.fixture(scope="module")
def maskable_model(tmp_path_factory) -> Path:
    import torch
    from sb3_contrib import MaskablePPO

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny network; more threads only contend when the machine is busy
    try:
        model = MaskablePPO("MlpPolicy", gym.make(TINY), n_steps=64, batch_size=32, device="cpu", seed=0)
        model.learn(128)
    finally:
        torch.set_num_threads(threads)
    path = tmp_path_factory.mktemp("model") / "maskable.zip"
    model.save(path)
    return path


def test_cli_writes_every_output_with_the_documented_json_shape(cli_out):
    for name in ("results.json", "results.csv", "results.md", "metrics.png", "traces.png"):
        assert (cli_out / name).stat().st_size > 0, name
    results = json.loads((cli_out / "results.json").read_text())
    assert results["env"] == TINY and results["episodes"] == 2 and results["seed"] == 7
    assert results["split"] == "test" and results["env_kwargs"] == {}
    assert list(results["policies"]) == POLICIES
    for metrics in results["policies"].values():
        assert METRICS <= set(metrics)
        for stat in metrics.values():
            assert set(stat) == {"mean", "ci95", "values"} and len(stat["values"]) == 2
            lo, hi = stat["ci95"]
            assert lo <= stat["mean"] + 1e-9 and stat["mean"] <= hi + 1e-9
    rows = list(csv.DictReader((cli_out / "results.csv").open()))
    assert len(rows) == len(POLICIES) * 2
    assert {r["seed"] for r in rows} == {"7", "8"}
    md = (cli_out / "results.md").read_text()
    assert "normalised score" in md and "best heuristic" in md


def test_every_policy_runs_the_same_seeds(cli_out):
    results = json.loads((cli_out / "results.json").read_text())
    arrived = [m["jobs_arrived"]["values"] for m in results["policies"].values()]
    assert all(a == arrived[0] for a in arrived)
    value = [m["value_arrived"]["values"] for m in results["policies"].values()]
    assert all(v == value[0] for v in value)


def test_traces_have_one_sample_per_simulator_step():
    results = ev.evaluate(TINY, ["random"], 1, 0, "test", {}, ceiling=False, progress=False)
    trace = results["traces"]["random"]
    dt = np.diff(trace["t_s"])
    dt_s = gym.make(TINY).unwrapped.config.dt_s
    assert np.allclose(dt, dt_s)
    assert all(0.0 <= lo <= mean <= 1.0 for lo, mean in zip(trace["soc_min"], trace["soc_mean"], strict=True))


def test_evaluate_is_reproducible_and_random_is_seeded_per_episode():
    a = ev.evaluate(TINY, ["random"], 2, 11, "test", {}, ceiling=False, progress=False)
    b = ev.evaluate(TINY, ["random"], 2, 11, "test", {}, ceiling=False, progress=False)
    assert a["policies"] == b["policies"]


def test_env_kwargs_reach_the_env():
    short = ev.evaluate(TINY, ["eclipse_safe"], 1, 3, "test", {"horizon_s": 1800.0}, False, False)
    full = ev.evaluate(TINY, ["eclipse_safe"], 1, 3, "test", {}, False, False)
    assert short["env_kwargs"] == {"horizon_s": 1800.0}
    assert (
        short["policies"]["eclipse_safe"]["jobs_arrived"]["mean"]
        < full["policies"]["eclipse_safe"]["jobs_arrived"]["mean"]
    )


def test_maskable_model_runs_through_evaluate(maskable_model):
    results = ev.evaluate(
        TINY, [str(maskable_model), "random"], 2, 0, "test", {}, ceiling=False, progress=False
    )
    assert results["kinds"] == {str(maskable_model): "model", "random": "heuristic"}
    model = results["policies"][str(maskable_model)]
    assert model["jobs_arrived"]["values"] == results["policies"]["random"]["jobs_arrived"]["values"]
    assert "return" in ev.markdown_table(results)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--policies", "random,energy-aware"], "did you mean 'energy_aware'"),
        (["--policies", "runs/nowhere/best_model.zip"], "model file not found: runs/nowhere/best_model.zip"),
        (["--env-kwargs", "battery_wh"], "must be key=value, got 'battery_wh'"),
        (["--env-kwargs", "batery_wh=10"], "did you mean 'battery_wh'"),
        (["--env", "Tny-v0"], "did you mean 'orbit_env/Tiny-v1'"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(argv, expected, capsys, tmp_path):
    code = ev.main(["--env", "Tiny-v1", "--episodes", "1", "--no-ceiling", "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("evaluate.py: error:"), err
    assert expected in err
    assert not (tmp_path / "results.json").exists()


def test_model_for_another_constellation_is_one_line_with_exit_code_2(maskable_model, tmp_path):
    argv = [sys.executable, "evaluate.py", "--env", "WalkerLEO-v1", "--episodes", "1", "--no-ceiling"]
    argv += ["--policies", str(maskable_model), "--out", str(tmp_path)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    err = done.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "103 entries" in err and "1303 entries" in err


def test_the_ceiling_row_and_headroom_line(monkeypatch):
    def fake_ceiling(sim, bucket_s=600.0, time_limit_s=60.0):
        return {"return": 100.0, "value_on_time": 90.0, "status": "optimal", "solve_s": 0.01}

    monkeypatch.setitem(sys.modules, "agents.ceiling", types.SimpleNamespace(ceiling=fake_ceiling))
    results = ev.evaluate(TINY, ["random", "eclipse_safe"], 2, 0, "test", {}, ceiling=True, progress=False)
    row = results["policies"]["ceiling"]
    assert row["return"]["values"] == [100.0, 100.0] and row["value_on_time"]["mean"] == 90.0
    assert "on_time_value_rate" not in row
    best = results["policies"]["eclipse_safe"]["return"]["mean"]
    assert ev.headline(results)["headroom"] == pytest.approx((100.0 - best) / 100.0)
    table = ev.markdown_table(results)
    assert "ceiling (offline bound)" in table and "Headroom = (ceiling − best heuristic) / ceiling" in table


def test_the_real_ceiling_bounds_every_policy_on_every_episode():
    pytest.importorskip("agents.ceiling")
    results = ev.evaluate(TINY, ["random", "eclipse_safe"], 2, 0, "test", {}, ceiling=True, progress=False)
    bound = results["policies"]["ceiling"]["return"]["values"]
    for name in ("random", "eclipse_safe"):
        returns = results["policies"][name]["return"]["values"]
        assert all(r <= b + 1e-6 for r, b in zip(returns, bound, strict=True)), name
    assert len(results["ceiling_status"]) == 2


def test_a_missing_ceiling_module_is_a_warning_not_an_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "agents.ceiling", None)  # import raises ImportError
    with pytest.warns(UserWarning, match="no ceiling row"):
        results = ev.evaluate(TINY, ["random"], 1, 0, "test", {}, ceiling=True, progress=False)
    assert "ceiling" not in results["policies"]


def test_bootstrap_interval_brackets_the_mean_and_is_deterministic():
    values = [1.0, 4.0, 2.0, 8.0, 5.0]
    lo, hi = ev.bootstrap_ci(values, np.random.default_rng(0))
    assert lo < np.mean(values) < hi
    assert (lo, hi) == ev.bootstrap_ci(values, np.random.default_rng(0))
    assert ev.bootstrap_ci([3.0, 3.0], np.random.default_rng(0)) == (3.0, 3.0)


def test_env_kwargs_values_are_typed():
    parsed = ev.parse_env_kwargs(
        ["a=3", "b=1.5", "c=true", "d=hello", "epoch=2026-12-21T00:00:00Z", "e=(1, 2)"]
    )
    assert parsed == {"a": 3, "b": 1.5, "c": True, "d": "hello", "epoch": "2026-12-21T00:00:00Z", "e": (1, 2)}


def test_env_id_with_or_without_prefix():
    assert ev.resolve_env_id("Tiny-v1") == ev.resolve_env_id("orbit_env/Tiny-v1") == TINY
    assert ev.resolve_env_id("orbit_env:orbit_env/Tiny-v1") == TINY


def test_paired_script_compares_every_policy_seed_by_seed(tmp_path):
    from tests.checks import load_script

    paired = load_script("docs/paired.py")

    def row(values):
        return {"return": {"values": values}}

    results = {"seeds": [1000, 1001, 1002], "policies": {"bar": row([10.0, 20.0, 30.0]),
               "model": row([11.0, 22.0, 29.0]), "ceiling": row([50.0, 50.0, 50.0])}}  # fmt: skip
    (tmp_path / "results.json").write_text(json.dumps(results))
    text = paired.main([str(tmp_path), "--against", "bar"])
    assert "| model | 21 | +1 [" in text and "| +3.3 | 2/3 |" in text and "ceiling" not in text
    with pytest.raises(SystemExit, match="no policy 'nope'"):
        paired.main([str(tmp_path), "--against", "nope"])


def test_stochastic_models_sample_reproducibly_and_heuristics_do_not_change(maskable_model):
    def run(deterministic: bool, workers: int = 1) -> dict:
        return ev.evaluate(
            TINY, [str(maskable_model), "random"], 2, 0, "test", {}, ceiling=False, progress=False,
            workers=workers, deterministic=deterministic,
        )  # fmt: skip

    def values(results: dict, name: str) -> list[float]:
        return results["policies"][name]["return"]["values"]

    argmax, sampled, again = run(True), run(False), run(False, workers=2)
    model = str(maskable_model)
    assert values(sampled, model) == values(again, model)  # seeded per episode, whatever the process
    assert values(sampled, model) != values(argmax, model)  # an untrained policy: sampling differs
    assert values(sampled, "random") == values(argmax, "random")
    assert sampled["deterministic"] is False and argmax["deterministic"] is True
    assert "Models sample their actions" in ev.markdown_table(sampled)
    assert "Models sample" not in ev.markdown_table(argmax)
