"""evaluate.py on several processes and on Ray: the same numbers as one process, no episode lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import evaluate as ev
from agents import parallel
from agents.registry import make_policy

ROOT = Path(__file__).resolve().parents[1]
TINY = "orbit_env/Tiny-v1"
POLICIES = ["random", "earliest_finish", "eclipse_safe"]
TIMING = {"solve_s"}  # wall-clock entries differ between any two runs


def _values(results: dict) -> dict:
    """Everything of a results dict that must not depend on the workers (not timings)."""
    rows = {
        name: {k: v["values"] for k, v in metrics.items() if k not in TIMING}
        for name, metrics in results["policies"].items()
    }
    return {"rows": rows, "status": results["ceiling_status"], "traces": results["traces"]}


@pytest.fixture(scope="module")
def serial() -> dict:
    return ev.evaluate(TINY, POLICIES, 3, 1000, "test", {}, ceiling=True, progress=False)


def test_two_local_workers_give_the_serial_numbers(serial):
    results = ev.evaluate(TINY, POLICIES, 3, 1000, "test", {}, ceiling=True, progress=False, workers=2)
    assert _values(results) == _values(serial)
    assert list(results["policies"]) == [*POLICIES, "ceiling"] and results["workers"] == 2


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    parallel.connect_ray("local")
    yield ray
    ray.shutdown()


def test_ray_local_gives_the_serial_numbers(serial, ray_local):
    results = ev.evaluate(
        TINY, POLICIES, 3, 1000, "test", {}, ceiling=True, progress=False, workers=2, ray_address="local"
    )
    assert _values(results) == _values(serial)


class DiesOnce:
    """``earliest_finish``, except that the first worker process to play it dies mid-episode.

    The marker file makes the death happen once; in the process that made the policy (the
    test's), it never dies.
    """

    def __init__(self, marker: Path) -> None:
        self.marker, self.home_pid = marker, os.getpid()
        self.policy = make_policy("earliest_finish", seed=0)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        if os.getpid() != self.home_pid and not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            os._exit(3)  # as if killed: no exception, no cleanup
        return self.policy.predict(observation, state, episode_start, deterministic)


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_a_dead_worker_is_reported_and_its_episode_played_again(backend, tmp_path, request):
    if backend == "ray":
        request.getfixturevalue("ray_local")
    policies = {"dies_once": DiesOnce(tmp_path / "died"), "eclipse_safe": "eclipse_safe"}
    reference = ev.evaluate(TINY, policies, 2, 1000, "test", {}, ceiling=False, progress=False)
    ray_address = "local" if backend == "ray" else None
    # Either worker may reach the policy first, so the death lands on episode 0 or 1.
    with pytest.warns(
        UserWarning, match=r"worker died .*dies_once on episode ([01]) \(seed 100\1\) is played again"
    ):
        results = ev.evaluate(
            TINY, policies, 2, 1000, "test", {}, False, False, workers=2, ray_address=ray_address
        )
    assert (tmp_path / "died").exists()
    assert _values(results) == _values(reference)


def _square(state: int, task: int) -> int:
    return state + task * task


def _fail_on_two(state: int, task: int) -> int:
    if task == 2:
        raise ArithmeticError("two is not allowed")
    return task


def _always_die(state: int, task: int) -> int:
    os._exit(5)


def _offset(value: int) -> int:
    return value


def test_run_tasks_keeps_task_order_whatever_finishes_first():
    seen = []
    out = parallel.run_tasks(
        list(range(7)), _square, _offset, (100,), workers=2, on_result=lambda i, r: seen.append(i)
    )
    assert out == [100 + i * i for i in range(7)]
    assert sorted(seen) == list(range(7))
    assert parallel.run_tasks([3], _square, _offset, (1,)) == [10]  # one worker: this process


def test_an_exception_in_a_task_is_raised_with_the_workers_traceback():
    with pytest.raises(parallel.TaskError, match=r"(?s)task 2 failed.*ArithmeticError: two is not allowed"):
        parallel.run_tasks([0, 1, 2, 3], _fail_on_two, _offset, (0,), workers=2)


def test_a_task_whose_worker_always_dies_is_given_up_after_max_attempts():
    lost = []
    with pytest.raises(parallel.WorkerLost, match=r"task 0 \(attempt 2\).*exited with code 5"):
        parallel.run_tasks(
            [0], _always_die, _offset, (0,), workers=2, max_attempts=2, on_lost=lambda i, m: lost.append(i)
        )
    assert lost == [0]


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_bad_worker_counts_are_clear_errors(workers):
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        parallel.run_tasks([1], _square, _offset, (0,), workers=workers)
    with pytest.raises(ev.SetupError, match="workers must be an integer >= 1"):
        ev.evaluate(TINY, ["random"], 1, 0, "test", {}, ceiling=False, progress=False, workers=workers)


def test_cli_workers_zero_is_one_line_with_exit_code_2(tmp_path):
    argv = [sys.executable, "evaluate.py", "--env", "Tiny-v1", "--episodes", "1", "--workers", "0"]
    done = subprocess.run(
        argv + ["--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    err = done.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1 and "workers must be" in err, err


@pytest.mark.parametrize("backend", [["--workers", "2"], ["--ray", "local", "--workers", "2"]])
def test_cli_on_workers_writes_the_serial_numbers(tmp_path, serial, backend):
    if "--ray" in backend:
        pytest.importorskip("ray")
    argv = [sys.executable, "evaluate.py", "--env", "Tiny-v1", "--episodes", "3", "--seed", "1000"]
    argv += ["--policies", ",".join(POLICIES), *backend, "--no-plots", "--out", str(tmp_path)]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    written = json.loads((tmp_path / "results.json").read_text())
    for name in [*POLICIES, "ceiling"]:
        for metric, stat in serial["policies"][name].items():
            if metric not in TIMING:
                np.testing.assert_array_equal(written["policies"][name][metric]["values"], stat["values"])
    assert written["ceiling_status"] == serial["ceiling_status"]


def test_a_ray_address_with_no_cluster_is_a_clear_error_before_any_episode(monkeypatch):
    ray = pytest.importorskip("ray")

    def no_cluster(*args, **kwargs):
        raise ConnectionError("Could not find any running Ray instance.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    with pytest.raises(ev.SetupError, match=r"--ray: no Ray cluster at 'auto' .*ray start --head"):
        ev.evaluate(TINY, ["random"], 1, 0, "test", {}, ceiling=False, progress=False, ray_address="auto")
