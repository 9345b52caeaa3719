"""The core install runs the env: torch, stable-baselines3 and matplotlib unimportable (design §2)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from orbit_env.scenarios import SCENARIOS

BLOCKER = textwrap.dedent(
    """
    import importlib.abc
    import sys

    BLOCKED = ("torch", "stable_baselines3", "sb3_contrib", "matplotlib", "tensorboard")


    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked: not in the core install")
            return None


    sys.meta_path.insert(0, Block())
    """
)


def run_light(body: str) -> str:
    """Run ``body`` in a fresh interpreter where the extras cannot be imported; its stdout."""
    code = BLOCKER + textwrap.dedent(body)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_the_blocker_blocks():
    out = run_light(
        """
        for name in ("torch", "stable_baselines3", "matplotlib"):
            try:
                __import__(name)
            except ImportError:
                print("blocked", name)
        """
    )
    assert out.splitlines() == ["blocked torch", "blocked stable_baselines3", "blocked matplotlib"]


LARGE = {"Megaconstellation-v1"}


@pytest.mark.parametrize(
    "scenario",
    [pytest.param(s, marks=pytest.mark.slow) if s in LARGE else s for s in SCENARIOS],
)
def test_make_and_step_every_scenario_without_the_extras(scenario):
    out = run_light(
        f"""
        import gymnasium
        import numpy as np

        import orbit_env  # noqa: F401
        from agents.ceiling import ceiling  # noqa: F401  (nor the ceiling)
        from agents.heuristics import HEURISTICS
        from agents.rollout import run_episode  # the runner needs no extra either

        env = gymnasium.make("orbit_env/{scenario}", render_mode="ansi")
        obs, info = env.reset(seed=0)
        rng = np.random.default_rng(0)
        steps = 0
        while steps < 1000:
            action = rng.choice(np.flatnonzero(info["action_mask"]))
            obs, reward, terminated, truncated, info = env.step(action)
            assert env.observation_space.contains(obs) and np.isfinite(reward)
            steps += 1
            if terminated or truncated:
                obs, info = env.reset(seed=steps)
        assert env.render()  # the text view needs no extra
        print("stepped", steps, "with torch loaded" if "torch" in sys.modules else "without torch")
        """
    )
    assert "stepped 1000 without torch" in out


def test_rgb_render_without_matplotlib_names_the_extra():
    out = run_light(
        """
        import gymnasium

        import orbit_env  # noqa: F401

        try:
            gymnasium.make("orbit_env/Tiny-v1", render_mode="rgb_array")
        except ImportError as err:
            print(err)
        """
    )
    assert "orbit-env[plot]" in out
