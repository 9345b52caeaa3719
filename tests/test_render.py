"""The RGB map and the ANSI table of a real simulator: shape, content, the night side, no pyplot."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import pytest

from orbit_env import render
from orbit_env.render import night_alpha, render_ansi, render_rgb, subsolar_deg
from orbit_env.scenarios import SCENARIOS
from orbit_env.sim.simulator import Simulator

EPOCH = datetime(2026, 3, 20, tzinfo=timezone.utc)


def make_sim(name: str, steps: int = 30, place: bool = True) -> Simulator:
    """A simulator of ``name`` after ``steps`` of first-valid-target placement (or rejecting all)."""
    sim = Simulator.from_config(SCENARIOS[name], epoch=EPOCH, cache=False)
    sim.reset(np.random.default_rng(0))
    for _ in range(steps):
        for j in sim.pending():
            valid = np.flatnonzero(sim.valid_targets(j)) if place else np.zeros(0)
            sim.place(j, int(valid[0])) if valid.size else sim.reject(j)
        sim.advance()
    return sim


@pytest.fixture(scope="module")
def sims() -> dict[str, Simulator]:
    return {name: make_sim(name) for name in ("Tiny-v1", "WalkerLEO-v1", "Suncatcher-v1")}


def map_pixel(lon_deg: float, lat_deg: float, width_px: int = 1000, height_px: int = 560) -> tuple[int, int]:
    """Row and column of a map point in a frame of the given size."""
    x0, y0, w, h = render._layout(10.0, 10.0 * height_px / width_px)["map"]
    col = (x0 + w * (lon_deg + 180.0) / 360.0) * width_px
    row = (1.0 - (y0 + h * (lat_deg + 90.0) / 180.0)) * height_px
    return int(row), int(col)


# --------------------------------------------------------------------------------- rgb


@pytest.mark.parametrize("name", ["Tiny-v1", "WalkerLEO-v1", "Suncatcher-v1"])
def test_rgb_frame_has_default_shape_uint8_and_is_not_blank(sims, name):
    frame = render_rgb(sims[name])
    assert frame.shape == (560, 1000, 3)
    assert frame.dtype == np.uint8
    packed = frame.astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], dtype=np.int32)
    assert np.unique(packed).size > 100
    assert frame.std() > 20


@pytest.mark.parametrize("size", [(640, 480), (333, 211), (1280, 720)])
def test_rgb_frame_has_requested_shape(sims, size):
    width, height = size
    frame = render_rgb(sims["Tiny-v1"], width_px=width, height_px=height)
    assert frame.shape == (height, width, 3)
    assert frame.dtype == np.uint8


def test_rgb_rejects_tiny_frames(sims):
    with pytest.raises(ValueError, match="at least"):
        render_rgb(sims["Tiny-v1"], width_px=10, height_px=10)


def test_render_before_reset_raises():
    sim = Simulator.from_config(SCENARIOS["Tiny-v1"], epoch=EPOCH, cache=False)
    with pytest.raises(RuntimeError, match="reset"):
        render_rgb(sim)
    with pytest.raises(RuntimeError, match="reset"):
        render_ansi(sim)


def test_night_alpha_is_dark_opposite_the_sun_and_clear_below_it():
    alpha = night_alpha(10.0, 40.0)
    assert alpha.shape == (180, 360)
    assert alpha[100, 220] == 0.0  # (10.5 N, 40.5 E): the Sun overhead
    assert alpha[79, 39] == 1.0  # (10.5 S, 140.5 W): the antipode
    assert 0.3 < alpha.mean() < 0.7


def test_night_side_moves_west_over_six_hours():
    sim = make_sim("WalkerLEO-v1", steps=0)
    _, sun_lon = subsolar_deg(sim.geometry, 0)
    lon = (sun_lon - 135.0 + 180.0) % 360.0 - 180.0  # night now, day six hours later
    first = render_rgb(sim)
    for _ in range(360):  # 6 h at dt_s = 60
        for j in sim.pending():
            sim.reject(j)
        sim.advance()
    _, sun_lon_later = subsolar_deg(sim.geometry, sim.step_index)
    assert ((sun_lon - sun_lon_later) % 360.0) == pytest.approx(90.0, abs=1.0)
    second = render_rgb(sim)

    rows = slice(map_pixel(lon, 60.0)[0], map_pixel(lon, -60.0)[0])
    cols = slice(map_pixel(lon - 5.0, 0.0)[1], map_pixel(lon + 5.0, 0.0)[1])
    dark = np.median(first[rows, cols].astype(float).sum(axis=-1))
    light = np.median(second[rows, cols].astype(float).sum(axis=-1))
    assert light - dark > 150  # of 765; about 260 with the shade, 0 without
    assert (first != second).any(axis=-1).mean() > 0.2


def test_satellite_colour_follows_state_of_charge():
    sim = make_sim("Tiny-v1", steps=5)

    def red_pixels() -> int:
        f = render_rgb(sim).astype(int)
        return int(((f[..., 0] > 150) & (f[..., 1] < 60) & (f[..., 2] < 80)).sum())

    sim.energy_wh[:] = sim.power.battery_wh
    full = red_pixels()
    sim.energy_wh[:] = 0.0
    empty = red_pixels()
    assert empty > full + 40  # four satellite dots of ~25 px each turn red


def test_cluster_is_detected_for_suncatcher_only(sims):
    for name, expected in (("Suncatcher-v1", True), ("WalkerLEO-v1", False), ("Tiny-v1", False)):
        sim = sims[name]
        valid = sim.geometry.valid[sim.step_index]
        assert render._is_cluster(sim.geometry, sim.step_index, valid) is expected


def test_rgb_leaves_no_pyplot_figures_open(sims):
    import matplotlib.pyplot as plt

    render_rgb(sims["Tiny-v1"])
    assert plt.get_fignums() == []


def test_render_module_does_not_import_pyplot_or_gymnasium():
    code = (
        "import sys, importlib.util\n"
        "spec = importlib.util.spec_from_file_location('r', sys.argv[1])\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "assert 'gymnasium' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code, render.__file__], check=True)


# --------------------------------------------------------------------------------- ansi


def satellite_rows(text: str) -> list[str]:
    return [line for line in text.splitlines()[2:] if line[:4].strip().isdigit()]


def test_ansi_has_header_and_one_row_per_satellite_for_small_n(sims):
    sim = sims["Tiny-v1"]
    text = render_ansi(sim)
    header = text.splitlines()[0]
    assert "Tiny-v1" in header and "UTC" in header
    assert f"jobs arrived {sim.counters.arrived}" in header
    assert f"brownouts {sim.counters.brownouts}" in header
    rows = satellite_rows(text)
    assert len(rows) == sim.n_sats
    for i, row in enumerate(rows):
        assert row.split()[:2] == [str(i), sim.geometry.names[i]]
    assert "…" not in text


@pytest.mark.parametrize("name", ["WalkerLEO-v1", "Suncatcher-v1"])
def test_ansi_truncates_large_constellations_with_a_summary(sims, name):
    sim = sims[name]
    text = render_ansi(sim)
    assert name in text.splitlines()[0]
    assert len(satellite_rows(text)) == render.ANSI_HEAD
    assert f"({sim.n_sats - render.ANSI_HEAD} more satellites)" in text
    summary = text.splitlines()[-1]
    assert summary.startswith("summary:")
    busy = int((sim.slot_job >= 0).sum())
    assert f"busy slots {busy}/{sim.n_sats * sim.power.accelerators}" in summary
    assert f"mean soc {100 * np.mean(sim.energy_wh / sim.power.battery_wh):.1f}%" in summary
    assert "sunlit" in summary
