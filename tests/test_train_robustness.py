"""train.py killed with SIGKILL resumes from its newest readable checkpoint; evaluate.py refuses a
missing or damaged model with one line naming the file, never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

import evaluate as ev
import train

ROOT = Path(__file__).resolve().parents[1]
TINY = "orbit_env/Tiny-v1"
CHECKPOINT_FREQ = 64
FAST = ["--hyperparams", "n_steps=64", "batch_size=32", "n_epochs=2", "--no-progress"]
# what a resume must leave as it was (timesteps grows by design; starts gets one entry per start)
FIXED_KEYS = (
    "env",
    "env_kwargs",
    "algo",
    "seed",
    "n_envs",
    "hyperparams",
    "args",
    "validation",
    "start_time",
)


def readable_checkpoints(folder: Path) -> dict[Path, int]:
    out = {}
    for path in folder.glob("*.zip"):
        try:
            out[path] = train.saved_timesteps(path)
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            pass  # being written right now
    return out


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory) -> Path:
    """A Tiny-v1 MaskablePPO run with a 100k-step budget, SIGKILLed once two checkpoints are on disk."""
    root = tmp_path_factory.mktemp("runs")
    argv = [
        sys.executable,
        "train.py",
        "--env",
        TINY,
        "--timesteps",
        "100000",
        "--n-envs",
        "1",
        "--seed",
        "5",
    ]
    argv += ["--run-dir", str(root), "--run-name", "killed", "--eval-freq", "0"]
    argv += ["--checkpoint-freq", str(CHECKPOINT_FREQ), *FAST]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    folder = root / "killed" / "checkpoints"
    try:
        deadline = time.monotonic() + 180
        while not folder.is_dir() or len(readable_checkpoints(folder)) < 2:
            if proc.poll() is not None:
                pytest.fail(f"train.py ended before it was killed: {proc.communicate()}")
            assert time.monotonic() < deadline, "no checkpoint within 180 s"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    run = root / "killed"
    assert not (run / "model.zip").exists()  # SIGKILL: no final save
    return run


def copy_run(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / run.name
    shutil.copytree(run, dst)
    return dst


def resume(run: Path, steps: int) -> subprocess.CompletedProcess:
    argv = [sys.executable, "train.py", "--resume", str(run), "--timesteps", str(steps), "--no-progress"]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_killed_run_resumes_from_its_newest_checkpoint(killed_run, tmp_path):
    run = copy_run(killed_run, tmp_path)
    before = yaml.safe_load((run / "config.yml").read_text())
    checkpoints = readable_checkpoints(run / "checkpoints")
    # a kill while saving may have cut the newest file: resume must use the newest readable one
    newest = max(checkpoints.values())
    assert newest >= 2 * CHECKPOINT_FREQ and newest % CHECKPOINT_FREQ == 0

    done = resume(run, 128)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"at step {newest:,}" in done.stdout

    assert train.saved_timesteps(run / "model.zip") >= newest + 128
    after = yaml.safe_load((run / "config.yml").read_text())
    for key in FIXED_KEYS:
        assert after[key] == before[key], key
    assert after["timesteps"] == newest + 128
    first, second = after["starts"]
    assert first == before["starts"][0] and "to_step" not in first  # the killed start never finished
    assert second["from_step"] == newest and second["to_step"] >= newest + 128
    assert second["resumed_from"].endswith(f"rl_model_{newest}_steps.zip")
    assert second["interrupted"] is False
    # the checkpoint grid continues on the run's own step count
    later = readable_checkpoints(run / "checkpoints")
    assert {n for n in later.values() if n > newest} >= {
        newest + CHECKPOINT_FREQ,
        newest + 2 * CHECKPOINT_FREQ,
    }


def _cut(src: Path, dst: Path, keep: float) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("keep", [0.0, 0.01, 0.5, 0.99])
def test_resume_skips_a_checkpoint_cut_by_the_kill(killed_run, tmp_path, keep, recwarn):
    run = copy_run(killed_run, tmp_path)
    checkpoints = readable_checkpoints(run / "checkpoints")
    newest_path = max(checkpoints, key=checkpoints.__getitem__)
    newest = checkpoints[newest_path]
    cut = run / "checkpoints" / f"rl_model_{newest + 10 * CHECKPOINT_FREQ}_steps.zip"
    _cut(newest_path, cut, keep)
    (run / "model.zip").write_bytes(b"")  # a final save cut at its first byte
    run_dir, model = train.find_resume(str(run))
    assert run_dir == run and model == newest_path
    skipped = [str(w.message) for w in recwarn if "skipping" in str(w.message)]
    assert sorted(skipped) == [
        f"--resume: skipping {cut}: not a readable model zip",
        f"--resume: skipping {run / 'model.zip'}: not a readable model zip",
    ]


def test_resume_with_no_readable_save_is_a_one_line_error(killed_run, tmp_path):
    run = copy_run(killed_run, tmp_path)
    for path in (run / "checkpoints").glob("*.zip"):
        _cut(path, path, 0.5)
    done = resume(run, 64)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        f"train.py: error: --resume: {run} has no readable model.zip or checkpoints/*.zip"
    )
    one = next((run / "checkpoints").glob("*.zip"))
    done = resume(one, 64)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert (
        done.stderr.strip().splitlines()[-1]
        == f"train.py: error: --resume: {one} is not a readable model zip"
    )


# -- evaluate.py on missing and damaged models ----------------------------------------------------------
def assert_one_line_error(code: int, err: str, path: Path | str) -> None:
    assert code == 2, err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("evaluate.py: error:") and str(path) in last, err


@pytest.mark.parametrize("kind", ["missing", "random-bytes"])
def test_evaluate_cli_refuses_a_missing_or_corrupt_model_in_one_line(kind, tmp_path):
    path = tmp_path / "some" / "model.zip"
    if kind == "random-bytes":
        path.parent.mkdir()
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    argv = [sys.executable, "evaluate.py", "--env", TINY, "--policies", str(path), "--episodes", "1"]
    argv += ["--no-ceiling", "--out", str(tmp_path / "out")]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert_one_line_error(done.returncode, done.stderr, path)
    assert not (tmp_path / "out").exists()


def _rewrite(src: Path, dst: Path, data: bytes | None = None, drop: tuple[str, ...] = ()) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            if item.filename in drop:
                continue
            content = zin.read(item.filename)
            zout.writestr(item, data if item.filename == "data" and data is not None else content)


DAMAGED_MODELS = [
    "empty",
    "half",
    "last-byte-cut",
    "flipped-bytes",
    "data-is-a-list",
    "data-not-json",
    "data-not-utf8",
    "policy-class-a-string",
    "no-data",
    "no-policy",
    "a-folder",
]


@pytest.mark.parametrize("prefix", ["", "maskable_ppo:", "dqn:"])
@pytest.mark.parametrize("kind", DAMAGED_MODELS)
def test_evaluate_refuses_every_damaged_model_in_one_line(killed_run, tmp_path, capsys, kind, prefix):
    good = min(readable_checkpoints(killed_run / "checkpoints"))
    path = tmp_path / f"{kind}.zip"
    data = good.read_bytes()
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "half":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "last-byte-cut":
        path.write_bytes(data[:-1])
    elif kind == "flipped-bytes":
        raw = bytearray(data)
        for i in np.random.default_rng(1).integers(0, len(raw), 64):
            raw[i] ^= 0x5A
        path.write_bytes(bytes(raw))
    elif kind == "a-folder":
        path.mkdir()
    else:
        data_member = {
            "data-is-a-list": b"[]",
            "data-not-json": b"{not json",
            "data-not-utf8": b"\x80abc",
            "policy-class-a-string": json.dumps({"policy_class": "MlpPolicy"}).encode(),
        }.get(kind)
        drop = {"no-data": ("data",), "no-policy": ("policy.pth",)}.get(kind, ())
        _rewrite(good, path, data=data_member, drop=drop)
    code = ev.main([
        "--env", TINY, "--policies", prefix + str(path), "--episodes", "1", "--no-ceiling",
        "--out", str(tmp_path / "out"),
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert_one_line_error(code, err, path)
    assert len(err.strip().splitlines()) == 1, err
