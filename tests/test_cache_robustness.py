"""The geometry cache never changes a result: damaged files, unwritable folders and two processes
filling the same folder at once all give arrays identical to a fresh computation, with at most a
warning and no temporary files left behind. Tiny-v1's constellation keeps every case fast."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import warnings
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from orbit_env.scenarios import SCENARIOS
from orbit_env.sim import geometry
from orbit_env.sim.geometry import compute_geometry
from orbit_env.sim.simulator import LOOKAHEAD_S, build_constellation

ROOT = Path(__file__).resolve().parents[1]
EPOCH = datetime(2026, 3, 20, tzinfo=timezone.utc)
TINY = SCENARIOS["Tiny-v1"]


def tiny_geometry(cache: bool = True, epoch: datetime = EPOCH, total: int | None = None):
    """The geometry Tiny-v1 builds for one episode (4 satellites, 1 station, 4 h with look-ahead)."""
    config = TINY if total is None else TINY.replace(total=total)
    constellation = build_constellation(config, epoch)
    duration = config.steps * config.dt_s + LOOKAHEAD_S
    return compute_geometry(
        constellation, epoch, duration, config.dt_s, config.ground.stations, isl=config.links, cache=cache
    )


def digest(geo) -> str:
    """sha256 over every array (dtype, shape and bytes) and the names."""
    h = hashlib.sha256()
    for name in geometry._ARRAY_FIELDS:
        arr = np.ascontiguousarray(getattr(geo, name))
        h.update(f"{name}:{arr.dtype.str}:{arr.shape}".encode())
        h.update(arr.tobytes())
    h.update(repr((geo.names, geo.station_names, geo.start.isoformat(), geo.dt_s)).encode())
    return h.hexdigest()


@pytest.fixture(scope="module")
def fresh() -> str:
    return digest(tiny_geometry(cache=False))


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("ORBIT_ENV_CACHE", str(folder))
    return folder


def build_recording_warnings():
    """(geometry, warnings raised while building it)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        geo = tiny_geometry()
    return geo, [w for w in caught if not issubclass(w.category, ResourceWarning)]


def assert_loads_without_computing(monkeypatch, expected: str) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("the cache file should have been loaded")

    with monkeypatch.context() as m:
        m.setattr(geometry, "_compute", boom)
        geo, caught = build_recording_warnings()
    assert not caught, [str(w.message) for w in caught]
    assert digest(geo) == expected


def no_temporary_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.suffix != ".npz" or p.name.endswith(".tmp")]


# -- damaged cache files --------------------------------------------------------------------------------
def _npz_bytes(tmp: Path, **arrays) -> bytes:
    path = tmp / "x.npz"
    np.savez(path, **arrays)
    return path.read_bytes()


def damage(kind: str, data: bytes, tmp: Path) -> bytes | None:
    """Damaged versions of a good cache file's bytes (``None``: replace the file by a folder)."""
    rng = np.random.default_rng(sum(kind.encode()))
    if kind == "empty":
        return b""
    if kind == "half":
        return data[: len(data) // 2]
    if kind == "one-byte-short":
        return data[:-1]
    if kind == "header-only":
        return data[:30]
    if kind == "garbage":
        return rng.integers(0, 256, len(data), dtype=np.uint8).tobytes()
    if kind == "zip-magic-then-garbage":
        return b"PK\x03\x04" + rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    if kind == "flipped-middle":
        out = bytearray(data)
        for i in rng.integers(len(data) // 4, 3 * len(data) // 4, 16):
            out[i] ^= 0xFF
        return bytes(out)
    with np.load(tmp / "good.npz") as z:
        arrays = {k: z[k] for k in z.files}
    if kind == "missing-array":
        del arrays["station_hops"]
        return _npz_bytes(tmp, **arrays)
    if kind == "stale-version":
        meta = json.loads(str(arrays["meta"]))
        arrays["meta"] = np.array(json.dumps({**meta, "version": -1}))
        return _npz_bytes(tmp, **arrays)
    if kind == "wrong-shapes":  # another constellation's arrays under this key
        arrays["position_km"] = arrays["position_km"][:, :2]
        return _npz_bytes(tmp, **arrays)
    if kind == "pickled-object":  # allow_pickle=False must refuse it, not run it
        arrays["station_hops"] = np.array([{"x": 1}], dtype=object)
        return _npz_bytes(tmp, **{k: v for k, v in arrays.items()})
    if kind == "a-folder":
        return None
    raise ValueError(kind)


DAMAGE = [
    "empty",
    "half",
    "one-byte-short",
    "header-only",
    "garbage",
    "zip-magic-then-garbage",
    "flipped-middle",
    "missing-array",
    "stale-version",
    "wrong-shapes",
    "pickled-object",
    "a-folder",
]


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_cache_file_is_recomputed_with_at_most_a_warning(kind, cache, fresh, tmp_path, monkeypatch):
    first, caught = build_recording_warnings()
    assert not caught and digest(first) == fresh
    (path,) = cache.glob("*.npz")
    (tmp_path / "good.npz").write_bytes(path.read_bytes())
    bad = damage(kind, path.read_bytes(), tmp_path)
    if bad is None:
        path.unlink()
        path.mkdir()
        (path / "inside").write_text("x")
    else:
        path.write_bytes(bad)

    geo, caught = build_recording_warnings()
    assert digest(geo) == fresh
    messages = [str(w.message) for w in caught]
    assert all(issubclass(w.category, UserWarning) and str(path) in str(w.message) for w in caught), messages
    if kind == "flipped-middle":
        assert len(caught) <= 1, messages  # a flip may land where no check sees it, and change nothing
    elif kind == "a-folder":
        # unreadable, and then it cannot be replaced: two warnings, the folder left alone
        assert [("unreadable" in m, "could not write" in m) for m in messages] == [
            (True, False),
            (False, True),
        ]
        assert path.is_dir() and (path / "inside").is_file()
    else:
        assert len(caught) == 1 and "unreadable" in messages[0], messages
    assert no_temporary_files(cache), sorted(p.name for p in cache.iterdir())
    if kind != "a-folder":
        assert_loads_without_computing(monkeypatch, fresh)  # rewritten whole


def test_a_truncated_file_is_never_loaded_at_any_cut(cache, fresh, monkeypatch):
    tiny_geometry()
    (path,) = cache.glob("*.npz")
    data = path.read_bytes()
    cuts = sorted({0, 1, 22, 100, *np.linspace(0, len(data) - 1, 25).astype(int).tolist()})
    for cut in cuts:
        path.write_bytes(data[:cut])
        geo, caught = build_recording_warnings()
        assert digest(geo) == fresh, cut
        assert len(caught) == 1 and "unreadable" in str(caught[0].message), cut
    assert_loads_without_computing(monkeypatch, fresh)
    print(f"{len(cuts)} cuts of a {len(data):,}-byte cache file")


# -- unwritable cache folders ---------------------------------------------------------------------------
def _writable_despite_mode(folder: Path) -> bool:
    try:
        (folder / "probe").write_text("x")
    except OSError:
        return False
    (folder / "probe").unlink()
    return True


@pytest.mark.parametrize("where", ["under-a-file", "is-a-file", "read-only-folder"])
def test_unwritable_cache_location_still_gives_the_result(where, tmp_path, monkeypatch, fresh):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    if where == "under-a-file":
        target = blocker / "cache"  # mkdir fails whoever runs the test, root included
    elif where == "is-a-file":
        target = blocker
    else:
        target = tmp_path / "read_only"
        target.mkdir()
        target.chmod(0o555)
        if _writable_despite_mode(target):
            target.chmod(0o755)
            pytest.skip("running as root: a 0o555 folder stays writable (covered by under-a-file)")
    monkeypatch.setenv("ORBIT_ENV_CACHE", str(target))
    try:
        geo, caught = build_recording_warnings()
        assert digest(geo) == fresh
        assert len(caught) == 1 and "could not write the geometry cache" in str(caught[0].message)
        if where == "read-only-folder":
            assert list(target.iterdir()) == []
    finally:
        if target.is_dir():
            target.chmod(0o755)
    assert blocker.read_text() == "not a folder"


def test_read_only_folder_with_a_good_file_still_loads_it(cache, fresh, monkeypatch):
    tiny_geometry()
    cache.chmod(0o555)
    try:
        assert_loads_without_computing(monkeypatch, fresh)
    finally:
        cache.chmod(0o755)


# -- processes fill one empty cache folder at once --------------------------------------------------
CHILD = """
import json, sys, time, warnings
from pathlib import Path
ready, go = Path(sys.argv[1]), Path(sys.argv[2])
import numpy as np
from orbit_env.sim import geometry
from tests.test_cache_robustness import digest, tiny_geometry
savez, writes = np.savez, []

def slow_savez(*args, **kwargs):  # hold the temporary file open, so the writers surely overlap
    start = time.time()
    savez(*args, **kwargs)
    time.sleep(0.5)
    writes.append((start, time.time()))

geometry.np.savez = slow_savez
ready.write_text("ready")
deadline = time.monotonic() + 120
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.002)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    geo = tiny_geometry()
seen = [str(w.message) for w in caught if not issubclass(w.category, ResourceWarning)]
print(json.dumps({"digest": digest(geo), "warnings": seen, "writes": writes}))
"""


def test_processes_building_the_same_geometry_at_once(cache, fresh, tmp_path, monkeypatch):
    cache.mkdir()
    n = 3
    go = tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(n)]
    env = {**os.environ, "ORBIT_ENV_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(r), str(go)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in ready
    ]
    try:
        deadline = time.monotonic() + 120
        while not all(r.exists() for r in ready):
            assert time.monotonic() < deadline, "children did not start"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.01)
        go.write_text("go")
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    writes = []
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        assert "Traceback" not in err, err
        result = json.loads(out.strip().splitlines()[-1])
        assert result["digest"] == fresh
        assert result["warnings"] == []
        writes += result["writes"]
    # premise: at least two processes were writing the same cache file at the same time
    assert len(writes) >= 2 and max(s for s, _ in writes) < min(e for _, e in writes), writes
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 1 and files[0].endswith(".npz"), files  # one file, no *.tmp left
    with zipfile.ZipFile(cache / files[0]) as archive:
        assert archive.testzip() is None
    assert_loads_without_computing(monkeypatch, fresh)
