"""agents.tune: the coordinate search's start, grids and command-line errors (Tiny-v1, one episode)."""

from __future__ import annotations

import gymnasium
import pytest

import orbit_env  # noqa: F401
from agents import tune
from agents.heuristics import TUNED

TINY = "orbit_env/Tiny-v1"


def test_parse_grid_replaces_named_grids_and_rejects_bad_items() -> None:
    assert tune.parse_grid(["min_value_per_gb=0.1,0.2"], "link_aware") == {"min_value_per_gb": (0.1, 0.2)}
    with pytest.raises(SystemExit, match="NAME one of delivery_margin"):
        tune.parse_grid(["scarce_soc=0.1"], "link_aware")  # not one of link_aware's tuned parameters
    with pytest.raises(SystemExit, match="numbers separated by commas"):
        tune.parse_grid(["delivery_margin=0.1,x"], "link_aware")
    with pytest.raises(SystemExit, match="expected NAME=V1,V2"):
        tune.parse_grid(["delivery_margin"], "link_aware")


def test_from_tuned_starts_at_the_shipped_values_and_a_better_grid_value_wins() -> None:
    shipped = TUNED["link_aware"]
    only_shipped = {
        "delivery_margin": (shipped.delivery_margin,),
        "busy_backlog_s": (shipped.busy_backlog_s,),
        "min_value_per_gb": (shipped.min_value_per_gb,),
    }
    best, score = tune.tune(TINY, "link_aware", episodes=1, rounds=1, from_tuned=True, grid=only_shipped)
    assert best == shipped  # nothing else was tried
    env = gymnasium.make(TINY, split="train")
    assert score == tune.mean_return(env, "link_aware", shipped, [0])
    # A grid that only holds values far worse than the start cannot move it.
    reject_all = {**only_shipped, "min_value_per_gb": (1e9,)}
    best, worse_score = tune.tune(TINY, "link_aware", episodes=1, rounds=1, from_tuned=True, grid=reject_all)
    assert best == shipped and worse_score == score
