"""The shipped MaskablePPO file trains under rl-baselines3-zoo (issue 14, item 10)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from agents.models import detect_algo

HYPERPARAMS = Path(__file__).resolve().parents[1] / "agents" / "hyperparams"


def train_tiny(module: str, algo: str, conf: str, steps: int, folder: Path) -> None:
    """``python -m <module> --algo <algo>`` on Tiny-v1 with a shipped file, logs into ``folder``."""
    cmd = [sys.executable, "-m", module, "--algo", algo, "--env", "orbit_env/Tiny-v1", "--gym-packages"]
    cmd += ["orbit_env", "--conf-file", str(HYPERPARAMS / conf), "-n", str(steps), "-f", str(folder)]
    result = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def test_zoo_trains_maskable_ppo_from_the_shipped_file(tmp_path):
    train_tiny("agents.zoo", "ppo_mask", "maskable_ppo.yml", 512, tmp_path)
    (model,) = tmp_path.glob("ppo_mask/orbit_env-Tiny-v1_*/orbit_env-Tiny-v1.zip")
    assert detect_algo(model) == "maskable_ppo"
    with zipfile.ZipFile(model) as archive:
        assert b"agents.rl" in archive.read("data")  # the zoo built our SatScorer policy


def test_plain_zoo_reads_the_ppo_file_unchanged(tmp_path):
    train_tiny("rl_zoo3.train", "ppo", "ppo.yml", 256, tmp_path)
    assert list(tmp_path.glob("ppo/orbit_env-Tiny-v1_*/orbit_env-Tiny-v1.zip"))
