"""The shipped MaskablePPO file trains under rl-baselines3-zoo (issue 14, item 10)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from agents.models import detect_algo

ROOT = Path(__file__).resolve().parents[1]


def test_zoo_trains_maskable_ppo_from_the_shipped_file(tmp_path):
    conf = ROOT / "agents" / "hyperparams" / "maskable_ppo.yml"
    cmd = [sys.executable, "-m", "agents.zoo", "--algo", "ppo_mask", "--env", "orbit_env/Tiny-v0"]
    cmd += ["--gym-packages", "orbit_env", "--conf-file", str(conf), "-n", "512", "-f", str(tmp_path)]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (model,) = tmp_path.glob("ppo_mask/orbit_env-Tiny-v0_*/orbit_env-Tiny-v0.zip")
    assert detect_algo(model) == "maskable_ppo"
    with zipfile.ZipFile(model) as archive:
        assert b"agents.rl" in archive.read("data")  # the zoo built our SatScorer policy


def test_plain_zoo_reads_the_ppo_file_unchanged(tmp_path):
    conf = ROOT / "agents" / "hyperparams" / "ppo.yml"
    cmd = [sys.executable, "-m", "rl_zoo3.train", "--algo", "ppo", "--env", "orbit_env/Tiny-v0"]
    cmd += ["--gym-packages", "orbit_env", "--conf-file", str(conf), "-n", "256", "-f", str(tmp_path)]
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(tmp_path.glob("ppo/orbit_env-Tiny-v0_*/orbit_env-Tiny-v0.zip"))
