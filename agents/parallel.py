"""Independent tasks in this process, in local worker processes, or on a Ray cluster; none lost.

>>> results = run_tasks(tasks, play, init, init_args, workers=2)            # two local processes
>>> results = run_tasks(tasks, play, init, init_args, ray_address="local")  # Ray on this machine

A worker builds its state once (``init(*init_args)``, e.g. an env and loaded models) and then
plays tasks one at a time (``play(state, task)``); the results come back in task order,
whatever the number of workers and the order they finish in. ``init`` and ``play`` must be
module-level functions and the tasks picklable (they cross process boundaries).

A worker that dies (killed, out of memory, a segfault in a native library) is reported through
``on_lost(index, message)`` naming its task, replaced, and its task played again, up to
``max_attempts`` times in all. An exception raised *by* a task is not retried: it is raised
here as :class:`TaskError` with the worker's traceback.

Local workers are started with the ``spawn`` method (no fork of a process holding torch
threads); each costs an interpreter start and its ``init``. On Ray each worker is an actor
holding one CPU; ``ray_address="local"`` starts a Ray instance on this machine, anything else
is passed to ``ray.init(address=...)`` (e.g. ``"auto"`` on a node of a running cluster).
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from typing import Any

MAX_ATTEMPTS = 3


class TaskError(RuntimeError):
    """A task raised an exception in a worker; the message carries the worker's traceback."""


class WorkerLost(RuntimeError):
    """A task's worker died ``max_attempts`` times in a row."""


def run_tasks(
    tasks: Sequence[Any],
    play: Callable[[Any, Any], Any],
    init: Callable[..., Any],
    init_args: tuple = (),
    workers: int = 1,
    ray_address: str | None = None,
    on_result: Callable[[int, Any], None] | None = None,
    on_lost: Callable[[int, str], None] | None = None,
    max_attempts: int = MAX_ATTEMPTS,
    state: Any = None,
) -> list[Any]:
    """``[play(state, t) for t in tasks]``, spread over ``workers`` processes or Ray actors.

    Args:
        tasks: the work items, in the order of the returned results.
        play: ``play(state, task) -> result``; module-level (picklable by reference).
        init: ``init(*init_args) -> state``, run once per worker.
        workers: local processes (1 plays in this process); with ``ray_address``, Ray actors
            (``0`` = one per CPU of the cluster).
        ray_address: ``None`` for local processes, ``"local"`` to start Ray here, else a Ray
            cluster address.
        on_result: called as each task finishes, ``(index, result)``, in finishing order.
        on_lost: called when a worker dies, ``(index, message)``; its task is played again.
        max_attempts: plays of one task before :class:`WorkerLost` is raised.
        state: in-process only (``workers=1``, no Ray): use this state instead of ``init``.

    Raises:
        ValueError: ``workers`` out of range. TaskError: a task raised. WorkerLost: see above.
    """
    check_workers(workers, ray_address)
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    on_result = on_result or (lambda i, r: None)
    on_lost = on_lost or (lambda i, m: None)
    if ray_address is not None:
        pool: _Pool = _RayPool(ray_address, workers, init, init_args)
    elif workers == 1:
        return _run_here(tasks, play, init(*init_args) if state is None else state, on_result)
    else:
        pool = _LocalPool(min(workers, max(len(tasks), 1)), init, init_args)
    try:
        return _dispatch(pool, tasks, play, on_result, on_lost, max_attempts)
    finally:
        pool.close()


def check_workers(workers: Any, ray_address: str | None = None) -> None:
    """Raise ``ValueError`` unless ``workers`` is an int >= 1 (>= 0 with Ray: 0 = every CPU)."""
    least = 0 if ray_address else 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < least:
        raise ValueError(f"workers must be an integer >= {least}, got {workers!r}")


def _run_here(tasks: Sequence[Any], play: Callable, state: Any, on_result: Callable) -> list[Any]:
    results = []
    for i, task in enumerate(tasks):
        results.append(play(state, task))
        on_result(i, results[-1])
    return results


def _dispatch(
    pool: _Pool,
    tasks: Sequence[Any],
    play: Callable,
    on_result: Callable,
    on_lost: Callable,
    max_attempts: int,
) -> list[Any]:
    """Hand tasks to idle workers in order; collect results; replay the tasks of dead workers."""
    results: list[Any] = [None] * len(tasks)
    attempts = [0] * len(tasks)
    pending = deque(range(len(tasks)))
    busy: dict[int, int] = {}  # worker slot -> task index
    while pending or busy:
        for slot in range(pool.size):
            if slot not in busy and pending:
                i = pending.popleft()
                attempts[i] += 1
                pool.submit(slot, play, tasks[i])
                busy[slot] = i
        for slot, outcome in pool.wait(list(busy)):
            i = busy.pop(slot)
            kind, payload = outcome
            if kind == "ok":
                results[i] = payload
                on_result(i, payload)
            elif kind == "error":
                raise TaskError(f"task {i} failed in a worker:\n{payload}")
            else:  # the worker died
                message = f"worker died while playing task {i} (attempt {attempts[i]}): {payload}"
                if attempts[i] >= max_attempts:
                    raise WorkerLost(message)
                on_lost(i, message)
                pool.replace(slot)
                pending.appendleft(i)
    return results


class _Pool:
    size: int

    def submit(self, slot: int, play: Callable, task: Any) -> None: ...
    def wait(self, slots: list[int]) -> list[tuple[int, tuple[str, Any]]]: ...
    def replace(self, slot: int) -> None: ...
    def close(self) -> None: ...


# -- local processes -------------------------------------------------------------------------------
def _worker_main(conn: Any, init: Callable, init_args: tuple) -> None:
    """A local worker: build the state, then play tasks until told to stop (``None``)."""
    try:
        state = init(*init_args)
    except BaseException:
        conn.send(("error", "init failed:\n" + traceback.format_exc()))
        return
    while True:
        msg = conn.recv()
        if msg is None:
            return
        play, task = msg
        try:
            out = ("ok", play(state, task))
        except BaseException:
            out = ("error", traceback.format_exc())
        conn.send(out)


class _LocalPool(_Pool):
    def __init__(self, size: int, init: Callable, init_args: tuple) -> None:
        self.size, self._init, self._init_args = size, init, init_args
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: list[Any] = [None] * size
        self._conns: list[Any] = [None] * size
        for slot in range(size):
            self._start(slot)

    def _start(self, slot: int) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker_main, args=(child, self._init, self._init_args), daemon=True)
        proc.start()
        child.close()
        self._procs[slot], self._conns[slot] = proc, parent

    def submit(self, slot: int, play: Callable, task: Any) -> None:
        try:
            self._conns[slot].send((play, task))
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # the worker is already gone: wait() reports it

    def wait(self, slots: list[int]) -> list[tuple[int, tuple[str, Any]]]:
        while True:
            watch = {self._conns[s]: s for s in slots} | {self._procs[s].sentinel: s for s in slots}
            ready = {watch[obj] for obj in wait(list(watch))}
            out = []
            for slot in sorted(ready):
                outcome = self._receive(slot)
                if outcome is not None:
                    out.append((slot, outcome))
            if out:
                return out

    def _receive(self, slot: int) -> tuple[str, Any] | None:
        conn, proc = self._conns[slot], self._procs[slot]
        try:
            if conn.poll():
                return conn.recv()
        except (EOFError, ConnectionResetError, OSError):
            pass
        proc.join(timeout=5.0)
        if proc.is_alive():
            return None
        return "lost", f"process {proc.pid} exited with code {proc.exitcode}"

    def replace(self, slot: int) -> None:
        self._conns[slot].close()
        self._start(slot)

    def close(self) -> None:
        for conn, proc in zip(self._conns, self._procs, strict=True):
            try:
                conn.send(None)
            except (BrokenPipeError, ConnectionResetError, OSError):
                pass
            proc.join(timeout=5.0)
            if proc.is_alive():
                proc.terminate()
                proc.join()
            conn.close()


# -- Ray -----------------------------------------------------------------------------------------------
class _RayWorker:
    """A Ray actor holding one worker's state."""

    def __init__(self, init: Callable, init_args: tuple) -> None:
        self.state = init(*init_args)

    def play(self, play: Callable, task: Any) -> Any:
        return play(self.state, task)


def connect_ray(address: str) -> Any:
    """Import Ray and connect (``"local"`` starts an instance here); the ``ray`` module.

    Raises:
        ImportError: Ray is not installed (``pip install -e ".[ray]"``).
        ConnectionError: no Ray cluster at ``address`` (the message says how to start one).
    """
    try:
        import ray
    except ImportError as err:
        raise ImportError('Ray is not installed: pip install -e ".[ray]"') from err
    if not ray.is_initialized():
        try:
            ray.init(
                address=None if address == "local" else address, log_to_driver=False, include_dashboard=False
            )
        except ConnectionError as err:
            raise ConnectionError(
                f"no Ray cluster at {address!r} ({' '.join(str(err).split())}); start one with "
                "`ray start --head`, or use 'local' to start Ray on this machine"
            ) from None
    return ray


class _RayPool(_Pool):
    def __init__(self, address: str, size: int, init: Callable, init_args: tuple) -> None:
        self._ray = ray = connect_ray(address)
        self.size = size or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._cls = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_RayWorker)
        self._init, self._init_args = init, init_args
        self._actors = [self._cls.remote(init, init_args) for _ in range(self.size)]
        self._refs: dict[int, Any] = {}

    def submit(self, slot: int, play: Callable, task: Any) -> None:
        self._refs[slot] = self._actors[slot].play.remote(play, task)

    def wait(self, slots: list[int]) -> list[tuple[int, tuple[str, Any]]]:
        ray = self._ray
        by_ref = {self._refs[s]: s for s in slots}
        done, _ = ray.wait(list(by_ref), num_returns=1)
        out = []
        for ref in done:
            slot = by_ref[ref]
            del self._refs[slot]
            try:
                out.append((slot, ("ok", ray.get(ref))))
            except ray.exceptions.RayActorError as err:
                out.append((slot, ("lost", f"Ray actor died ({type(err).__name__})")))
            except ray.exceptions.RayTaskError as err:
                out.append((slot, ("error", str(err))))
        return out

    def replace(self, slot: int) -> None:
        self._ray.kill(self._actors[slot], no_restart=True)
        self._actors[slot] = self._cls.remote(self._init, self._init_args)

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor, no_restart=True)
