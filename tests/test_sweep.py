"""sweep.py: the sweep file's checks, the trial command lines, and a real 2-trial sweep on local Ray."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import sweep as sw

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "sweeps" / "tiny_smoke.yml"


def _write(tmp_path: Path, content: dict) -> Path:
    path = tmp_path / "sweep.yml"
    path.write_text(yaml.safe_dump(content))
    return path


def test_the_committed_sweep_files_load_and_their_trials_parse(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for path in sorted((ROOT / "sweeps").glob("*.yml")):
        sweep = sw.load_sweep(path)
        # a model a sweep starts from (made by the command in its header) stands in as an empty file
        for point in sweep.get("points") or []:
            model = point.get("args.init_from") or ""
            if model.endswith(".zip"):
                (tmp_path / model).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / model).touch()
        sw.check_trials(sweep, tmp_path)  # every grid combination / each search end is a valid train.py run


def test_a_trial_is_train_py_with_the_fixed_settings_and_its_parameters(tmp_path):
    sweep = sw.load_sweep(SMOKE)
    argv = sw.trial_argv(sweep, {"hyperparams.learning_rate": 2e-4, "seed": 3}, tmp_path, "trial_x")
    assert argv[:6] == ["--env", "orbit_env/Tiny-v1", "--algo", "maskable_ppo", "--seed", "3"]
    assert ["--run-dir", str(tmp_path), "--run-name", "trial_x"] == argv[argv.index("--run-dir") :][:4]
    assert "--checkpoint-freq" in argv and argv[argv.index("--checkpoint-freq") + 1] == "0"
    hyper = argv[argv.index("--hyperparams") + 1 :]
    assert "learning_rate=0.0002" in hyper and "n_steps=128" in hyper


def test_a_grid_sweep_has_every_combination(tmp_path):
    path = _write(
        tmp_path,
        {
            "env": "Tiny-v1",
            "grid": {"seed": [0, 1], "args.init_from": [None, "eclipse_safe"]},
            "timesteps": 256,
        },
    )
    points = sw.example_points(sw.load_sweep(path))
    assert len(points) == 4 and {"seed": 1, "args.init_from": "eclipse_safe"} in points
    argv = sw.trial_argv(sw.load_sweep(path), {"seed": 1, "args.init_from": None}, tmp_path, "t")
    assert "--init-from" not in argv


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            {"search": {"hyperparams.lr": {"loguniform": [1e-5, 1e-3]}}, "grid": {"seed": [0]}},
            "exactly one of",
        ),
        ({"samples": 2}, "exactly one of"),
        ({"search": {"learning_rate": {"uniform": [0, 1]}}}, "cannot sweep 'learning_rate'"),
        ({"search": {"hyperparams.learning_rate": {"loguniform": [0, 1e-3]}}}, "low > 0 for loguniform"),
        ({"search": {"hyperparams.learning_rate": {"normal": [0, 1]}}}, "must be one of"),
        ({"grid": {"seed": []}}, "non-empty list"),
        ({"grid": {"seed": [0]}, "colour": "red"}, "unknown key"),
        ({"grid": {"seed": [0]}, "args": {"run_dir": "x"}}, "args may not set run_dir"),
        ({"grid": {"args.seed": [0]}}, "use the top-level key 'seed'"),
        ({"grid": {"seed": [0]}, "early_stop": {"patience": 3}}, "early_stop is false"),
    ],
)
def test_bad_sweep_files_are_clear_errors(tmp_path, content, message):
    with pytest.raises(sw.SweepError, match=message):
        sw.load_sweep(_write(tmp_path, content))


def test_a_bad_train_setting_fails_before_ray_starts(tmp_path):
    path = _write(tmp_path, {"env": "Tiny-v1", "grid": {"hyperparams.learning_rat": [1e-4]}})
    argv = [sys.executable, "sweep.py", "--config", str(path), "--out", str(tmp_path / "out")]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    err = done.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "unknown maskable_ppo hyperparameter(s): learning_rat" in err
    assert not (tmp_path / "out" / "tune").exists()


def test_a_two_trial_sweep_on_local_ray_writes_two_run_folders_and_the_table(tmp_path):
    pytest.importorskip("ray")
    pytest.importorskip("optuna")
    out = tmp_path / "smoke"
    argv = [sys.executable, "sweep.py", "--config", str(SMOKE), "--out", str(out), "--ray", "local"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = sorted(p for p in (out / "runs").iterdir() if p.is_dir())
    assert len(runs) == 2
    for run in runs:  # ordinary train.py run folders
        assert (
            (run / "config.yml").is_file()
            and (run / "model.zip").is_file()
            and (run / "best_model.zip").is_file()
        )
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert len(rows) == 2 and {r["run_folder"] for r in rows} == {str(r) for r in runs}
    assert all(r["status"] == "done" and r["steps"] == "512" for r in rows)
    rates = {float(r["hyperparams.learning_rate"]) for r in rows}
    assert len(rates) == 2 and all(1e-5 <= x <= 1e-3 for x in rates)  # Optuna sampled two settings
    best = [float(r["best_val_return"]) for r in rows]
    assert best == sorted(best, reverse=True)
    assert "| trial |" in (out / "trials.md").read_text()


def test_points_are_crossed_with_the_grid_and_reach_train_py(tmp_path):
    methods = [
        {},
        {"hyperparams.time_constant_h": 3.0},
        {"hyperparams.per_job_credit": True},
        {"hyperparams.shared_stream": 2},
        {
            "hyperparams.time_constant_h": 3.0,
            "hyperparams.per_job_credit": True,
            "hyperparams.shared_stream": 2,
        },
    ]
    content = {"env": "WalkerLEO-v1", "grid": {"args.init_from": ["eclipse_safe", None]}, "points": methods}
    sweep = sw.load_sweep(_write(tmp_path, content))
    points = sw.example_points(sweep)
    assert len(points) == 10
    argvs = [sw.trial_argv(sweep, p, tmp_path, "t") for p in points]
    both = [a for a in argvs if "shared_stream=2" in a and "per_job_credit=True" in a]
    assert len(both) == 2 and sum("--init-from" in a for a in both) == 1
    plain = [
        a for a in argvs if not any(x.startswith(("time_constant_h", "per_job_credit", "shared")) for x in a)
    ]
    assert len(plain) == 2


def test_points_do_not_go_with_a_search(tmp_path):
    path = _write(tmp_path, {"search": {"seed": {"randint": [0, 3]}}, "points": [{}]})
    with pytest.raises(sw.SweepError, match="points go with a grid"):
        sw.load_sweep(path)


def test_a_relative_model_path_is_taken_from_the_folder_the_sweep_started_in(tmp_path):
    path = _write(tmp_path, {"env": "Tiny-v1", "points": [{"args.init_from": "clones/a/bc_model.zip"}]})
    sweep = sw.load_sweep(path)
    argv = sw.trial_argv(sweep, {sw.POINT: 0}, tmp_path / "runs", "t", base_dir=Path("/start/here"))
    assert argv[argv.index("--init-from") + 1] == "/start/here/clones/a/bc_model.zip"
    heuristic = sw.trial_argv({**sweep, "points": [{"args.init_from": "eclipse_safe"}]}, {sw.POINT: 0},
                              tmp_path, "t", base_dir=Path("/start/here"))  # fmt: skip
    assert heuristic[heuristic.index("--init-from") + 1] == "eclipse_safe"
