"""agents.models: one algorithm table, loader, detector and size check; importable without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agents.models import ALGOS, describe_size, load_model

ROOT = Path(__file__).resolve().parents[1]


def test_models_module_imports_without_torch_or_stable_baselines3() -> None:
    code = (
        "import sys\n"
        "for name in ('torch', 'stable_baselines3', 'sb3_contrib'):\n"
        "    sys.modules[name] = None  # any import of them raises ImportError\n"
        "import agents.models as m\n"
        "assert m.ALGOS == ('maskable_ppo', 'ppo', 'a2c', 'dqn')\n"
        "print(m.describe_size(103))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "103 entries (4 satellites: Tiny-v1)"


def test_importing_agents_rl_changes_no_library_class() -> None:
    from sb3_contrib import MaskablePPO

    before = dict(MaskablePPO.policy_aliases)
    import agents.rl  # noqa: F401

    assert MaskablePPO.policy_aliases == before and "SatScorer" not in MaskablePPO.policy_aliases


def test_describe_size_names_the_layout_or_its_absence() -> None:
    assert describe_size(103) == "103 entries (4 satellites: Tiny-v1)"
    assert describe_size(97) == "97 entries (no orbit_env layout)"
    assert len(ALGOS) == 4


def test_unknown_algorithm_and_missing_file_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown algorithm 'sac'"):
        (tmp_path / "any.zip").write_bytes(b"")
        load_model(tmp_path / "any.zip", "sac")
    with pytest.raises(FileNotFoundError, match="nothing.zip"):
        load_model(tmp_path / "nothing.zip")


@pytest.mark.parametrize("scenario", ["WalkerLEO-v1", "SuncatcherEclipse-v1", "Suncatcher-v1"])
def test_each_committed_model_loads_and_places_jobs_on_valid_satellites(scenario: str) -> None:
    import gymnasium

    import orbit_env  # noqa: F401  (registers the ids)
    from agents.registry import make_policy

    root = Path(__file__).resolve().parents[1]
    env = gymnasium.make(f"orbit_env/{scenario}", horizon_s=1800.0)  # the same spaces, a short day
    policy = make_policy(str(root / f"models/{scenario}/maskable_ppo.zip"), env=env)
    obs, info = env.reset(seed=1000)
    placed = 0
    for _ in range(200):
        action, _ = policy.predict(obs, deterministic=True)
        assert info["action_mask"][int(action)]
        placed += int(action) < env.unwrapped.n_sats
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    assert placed > 0
