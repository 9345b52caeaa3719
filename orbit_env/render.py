"""Views of a running :class:`~orbit_env.sim.simulator.Simulator`: an RGB world map and a text table.

Both are pure functions of the simulator's current state (no Gymnasium, no global state):

- :func:`render_rgb` draws an equirectangular lon/lat map with matplotlib's Agg canvas (never
  pyplot, so it runs headless and leaves no open figures): the night side, ground tracks over
  the last orbit, ground stations and their current contacts, active inter-satellite links,
  satellites coloured by state of charge (safe mode ringed, invalid ones grey, eclipsed ones
  with a dark rim), and below the map one bar per satellite of busy slots and queued jobs.
  A tight cluster (all satellites within ``CLUSTER_KM``) also gets an inset of the formation
  in the local orbital frame, since on the map it is a single dot.
- :func:`render_ansi` returns a plain-text table: a header with the episode counters, one row
  per satellite (the first ``ANSI_HEAD`` when there are more than ``ANSI_MAX_ROWS``) and a
  summary line.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

try:  # matplotlib is the [plot] extra: the text view works without it
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator
except ImportError:  # checked by require_matplotlib() before any drawing
    colormaps = None

if TYPE_CHECKING:
    from orbit_env.sim.simulator import Simulator

#: satellites above which ground tracks are drawn for an evenly spaced subset only
MAX_TRACKS = 300
#: tracks drawn when there are more than ``MAX_TRACKS`` satellites
TRACK_SUBSET = 48
#: satellites all within this distance of their centroid [km] get a formation inset
CLUSTER_KM = 100.0
#: more satellites than this: the ANSI table shows the first ``ANSI_HEAD`` rows only
ANSI_MAX_ROWS = 40
ANSI_HEAD = 20

_SOC_CMAP = colormaps["RdYlGn"] if colormaps is not None else None
_SOC_NORM = Normalize(0.0, 1.0) if colormaps is not None else None
_DAY = "#e4edf5"
_NIGHT = np.array([0.05, 0.10, 0.30])
_NIGHT_ALPHA = 0.45
_TWILIGHT = 0.105  # sin(6 deg): the shade deepens over civil twilight
_GRID = "#ffffff"
_TRACK = np.array([0.30, 0.33, 0.40])
_ISL = "#f28e2b"
_CONTACT = "#1f9e89"
_STATION = "#2b2b2b"
_SAFE = "#c2188f"
_INVALID = "#9a9a9a"
_BUSY = "#33508a"
_QUEUED = "#9ecae1"

# night-side grid: 1 deg cells, centres
_LON = np.linspace(-179.5, 179.5, 360)
_LAT = np.linspace(-89.5, 89.5, 180)


# --------------------------------------------------------------------------------- geometry


def _lat_lon(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Geocentric latitude and longitude [deg] of ITRS vectors ``r[..., 3]``."""
    lat = np.degrees(np.arctan2(r[..., 2], np.hypot(r[..., 0], r[..., 1])))
    lon = np.degrees(np.arctan2(r[..., 1], r[..., 0]))
    return lat, lon


def subsolar_deg(geo, k: int) -> tuple[float, float]:
    """Latitude and longitude [deg] of the sub-solar point at sample ``k``."""
    lat, lon = _lat_lon(geo.teme_to_itrs[k] @ geo.sun_km[k])
    return float(lat), float(lon)


def night_alpha(sun_lat_deg: float, sun_lon_deg: float) -> np.ndarray:
    """Opacity of the night shade on the 1-degree grid: ``float[180, 360]`` in [0, 1].

    0 where the Sun is above the horizon, rising linearly to 1 once it is 6 deg below.
    """
    lat, lon = np.radians(_LAT)[:, None], np.radians(_LON)[None, :]
    slat, slon = np.radians(sun_lat_deg), np.radians(sun_lon_deg)
    cos_zenith = np.sin(lat) * np.sin(slat) + np.cos(lat) * np.cos(slat) * np.cos(lon - slon)
    return np.clip(-cos_zenith / _TWILIGHT, 0.0, 1.0)


def _last_valid_positions(geo, k: int) -> np.ndarray:
    """TEME position [km] of each satellite at k, or at its last valid sample: ``float[N, 3]``.

    ``valid`` is monotone in time, so the last valid sample is ``valid[:k + 1].sum() - 1``.
    Satellites never valid stay at the origin.
    """
    last = np.maximum(geo.valid[: k + 1].sum(axis=0) - 1, 0)
    n = np.arange(geo.position_km.shape[1])
    rot = geo.teme_to_itrs[last]
    return np.einsum("nij,nj->ni", rot, geo.position_km[last, n].astype(np.float64))


def _wrap_free(lon0: np.ndarray, lon1: np.ndarray) -> np.ndarray:
    """True where the segment lon0 -> lon1 does not cross the +-180 deg seam."""
    return np.abs(lon1 - lon0) <= 180.0


def _segments(lat0, lon0, lat1, lon1) -> np.ndarray:
    """``float[S, 2, 2]`` (lon, lat) line segments for a LineCollection."""
    return np.stack([np.stack([lon0, lat0], axis=-1), np.stack([lon1, lat1], axis=-1)], axis=-2)


def _polyline(lat: np.ndarray, lon: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One NaN-separated (lon, lat) polyline from tracks ``lat[m, S]``, broken at the seam and
    wherever a sample is invalid (``ok[m, S]``), so a single Line2D draws every track."""
    lon = np.where(ok, lon, np.nan)
    lat = np.where(ok, lat, np.nan)
    x = np.vstack([lon, np.full((1, lon.shape[1]), np.nan)]).T.ravel()  # satellite by satellite
    y = np.vstack([lat, np.full((1, lat.shape[1]), np.nan)]).T.ravel()
    cut = np.flatnonzero(np.abs(np.diff(x)) > 180.0) + 1
    return np.insert(x, cut, np.nan), np.insert(y, cut, np.nan)


def _tracks(
    geo, k: int, n_back: int, sats: np.ndarray, bins: int = 4
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Ground tracks of ``sats`` over samples [k - n_back, k] in ``bins`` age bands.

    Returns ``(lon, lat, age)`` polylines, ``age`` in [0, 1) from newest to oldest band.
    """
    k0 = max(0, k - n_back)
    if k - k0 < 1 or sats.size == 0:
        return []
    ks = np.arange(k0, k + 1)
    pos = geo.position_km[k0 : k + 1][:, sats].astype(np.float64)  # [m, S, 3]
    lat, lon = _lat_lon(np.einsum("kij,ksj->ksi", geo.teme_to_itrs[ks], pos))
    ok = geo.valid[k0 : k + 1][:, sats]
    edges = np.unique(np.linspace(0, len(ks) - 1, bins + 1).round().astype(int))
    out = []
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        x, y = _polyline(lat[a : b + 1], lon[a : b + 1], ok[a : b + 1])
        out.append((x, y, 1.0 - (i + 1) / (len(edges) - 1)))
    return out


# --------------------------------------------------------------------------------- state


def _state(sim: Simulator) -> dict:
    """Per-satellite quantities both views show, at the current sample."""
    if getattr(sim, "jobs", None) is None:
        raise RuntimeError("call sim.reset() before rendering")
    geo, k = sim.geometry, sim.step_index
    return {
        "k": k,
        "time": geo.start + timedelta(seconds=float(sim.now_s)),
        "soc": np.clip(sim.energy_wh / sim.power.battery_wh, 0.0, 1.0),
        "valid": np.asarray(geo.valid[k]),
        "sunlit": np.asarray(geo.sunlit[k]),
        "safe": np.asarray(sim.safe),
        "busy": sim.busy_slots(),
        "queued": sim.queued_jobs(),
        "contact": np.asarray(sim.in_contact[k]),
    }


# --------------------------------------------------------------------------------- rgb


def _layout(fig_w: float, fig_h: float) -> dict[str, list[float]]:
    """Axes rectangles (figure fractions) for a figure of ``fig_w x fig_h`` inches.

    The map keeps the 2:1 aspect of an equirectangular world; the queue bars span its width
    below it; the colorbar and legend sit in a column to its right.
    """
    left, right_col, top, gap, bottom = 0.5, 1.75, 0.62, 0.28, 0.33
    bars_h = 0.62
    map_w = min(2.0 * (fig_h - top - gap - bars_h - bottom), fig_w - left - right_col)
    map_w = max(map_w, 0.5)
    map_h = map_w / 2.0
    # a frame taller than 16:9 gives the spare height to the bars, then centres the rest
    spare = max(fig_h - top - map_h - gap - bars_h - bottom, 0.0)
    bars_h += min(spare, 0.5 * bars_h)
    spare = max(fig_h - top - map_h - gap - bars_h - bottom, 0.0)
    map_y = fig_h - spare / 2 - top - map_h
    x_col = left + map_w + 0.22

    def rect(x: float, y: float, w: float, h: float) -> list[float]:
        return [x / fig_w, y / fig_h, w / fig_w, h / fig_h]

    return {
        "map": rect(left, map_y, map_w, map_h),
        "bars": rect(left, map_y - gap - bars_h, map_w, bars_h),
        "cbar": rect(x_col, map_y + 0.45 * map_h, 0.14, 0.55 * map_h),
        "legend": rect(x_col - 0.1, map_y - gap - bars_h, right_col - 0.15, 0.45 * map_h + gap + bars_h),
        "title": rect(left, map_y + map_h + 0.42, 0.0, 0.0)[:2],
        "subtitle": rect(left, map_y + map_h + 0.17, 0.0, 0.0)[:2],
    }


def require_matplotlib() -> None:
    """Raise ``ImportError`` with the install hint when matplotlib (the ``[plot]`` extra) is missing."""
    if colormaps is None:
        raise ImportError(
            "render_mode='rgb_array' needs matplotlib, which the core install leaves out: "
            "pip install 'orbit-env[plot]'"
        )


def render_rgb(sim: Simulator, width_px: int = 1000, height_px: int = 560) -> np.ndarray:
    """Draw the current state of ``sim`` as a world map.

    Args:
        sim: a simulator after ``reset``.
        width_px, height_px: frame size [px]. Text scales with the width.

    Returns:
        ``uint8[height_px, width_px, 3]`` RGB frame.
    """
    require_matplotlib()
    if width_px < 50 or height_px < 50:
        raise ValueError(f"frame must be at least 50 x 50 px, got {width_px} x {height_px}")
    cfg = sim.config
    st = _state(sim)
    k, n = st["k"], sim.n_sats
    fig_w = 10.0
    fig_h = fig_w * height_px / width_px
    fig = Figure(figsize=(fig_w, fig_h), dpi=width_px / fig_w, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    lay = _layout(fig_w, fig_h)

    ax = fig.add_axes(lay["map"])
    cluster = _is_cluster(sim.geometry, k, st["valid"])
    _draw_map(ax, sim, st, cluster)
    if cluster:
        _cluster_inset(ax, sim, st)
    _draw_bars(fig.add_axes(lay["bars"]), sim, st)

    cax = fig.add_axes(lay["cbar"])
    cbar = fig.colorbar(ScalarMappable(norm=_SOC_NORM, cmap=_SOC_CMAP), cax=cax)
    cbar.set_label("state of charge", fontsize=7)
    cbar.ax.tick_params(labelsize=6.5)
    cbar.set_ticks([0, 0.25, 0.5, 0.75, 1.0], labels=["0 %", "25 %", "50 %", "75 %", "100 %"])
    _draw_legend(fig.add_axes(lay["legend"]))

    c = sim.counters
    fig.text(
        *lay["title"],
        f"{cfg.name}   {st['time']:%Y-%m-%d %H:%M:%S} UTC   "
        f"(t = {sim.now_s / 3600:.2f} h, step {k}/{sim.n_steps})",
        fontsize=10.5,
        fontweight="bold",
        va="center",
    )
    valid = st["valid"]
    fig.text(
        *lay["subtitle"],
        f"jobs on time {c.on_time} / arrived {c.arrived}  ·  late {c.late}  ·  expired {c.expired}  ·  "
        f"rejected {c.rejected}  ·  brownouts {c.brownouts}  ·  safe mode {int(st['safe'].sum())}/{n}  ·  "
        f"sunlit {int((st['sunlit'] & valid).sum())}/{int(valid.sum())}",
        fontsize=8,
        color="#333333",
        va="center",
    )

    canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]
    return _fit(rgb, height_px, width_px)


def _fit(rgb: np.ndarray, h: int, w: int) -> np.ndarray:
    """Crop or edge-pad to exactly ``h x w`` (Agg may round a dimension by one pixel)."""
    rgb = rgb[:h, :w]
    if rgb.shape[0] < h or rgb.shape[1] < w:
        rgb = np.pad(rgb, ((0, h - rgb.shape[0]), (0, w - rgb.shape[1]), (0, 0)), mode="edge")
    return np.ascontiguousarray(rgb, dtype=np.uint8)


def _draw_map(ax, sim: Simulator, st: dict, cluster: bool) -> None:
    geo, k, n = sim.geometry, st["k"], sim.n_sats
    ax.set_facecolor(_DAY)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-90, 90)
    ax.set_xticks(np.arange(-180, 181, 60))
    ax.set_yticks(np.arange(-90, 91, 30))
    ax.set_xticklabels(
        [f"{abs(x)}°{'W' if x < 0 else 'E' if 0 < x < 180 else ''}" for x in range(-180, 181, 60)]
    )
    ax.set_yticklabels([f"{abs(y)}°{'S' if y < 0 else 'N' if y > 0 else ''}" for y in range(-90, 91, 30)])
    ax.tick_params(labelsize=6.5, length=2, pad=1.5)
    ax.grid(True, color=_GRID, lw=0.7, zorder=1)
    ax.set_axisbelow(True)
    for spine in ax.spines.values():
        spine.set_color("#8a96a8")

    # night side
    slat, slon = subsolar_deg(geo, k)
    shade = np.empty((*_LAT.shape, *_LON.shape, 4))
    shade[..., :3] = _NIGHT
    shade[..., 3] = _NIGHT_ALPHA * night_alpha(slat, slon)
    ax.imshow(shade, extent=(-180, 180, -90, 90), origin="lower", interpolation="bilinear", zorder=0.5)
    ax.set_aspect("auto")
    ax.plot(slon, slat, marker="o", ms=7, mfc="#ffd43b", mec="#e8a100", mew=0.8, zorder=2, ls="none")

    # ground tracks over the last orbit, older samples fainter; a cluster shares one track
    if cluster:
        sats = np.flatnonzero(st["valid"])[:1]
    elif n <= MAX_TRACKS:
        sats = np.arange(n)
    else:
        sats = np.unique(np.linspace(0, n - 1, TRACK_SUBSET).astype(int))
    n_back = int(round(sim.period_s / sim.dt_s)) if np.isfinite(sim.period_s) else 0
    for x, y, age in _tracks(geo, k, n_back, sats):
        ax.plot(x, y, color=_TRACK, lw=0.6 if not cluster else 1.0, alpha=0.6 * (1.0 - age) + 0.08, zorder=2)

    r_now = _last_valid_positions(geo, k)
    lat, lon = _lat_lon(r_now)
    valid = st["valid"]

    # ground stations and what each sees now
    stations = sim.config.ground.stations
    s_lat = np.array([s.lat_deg for s in stations])
    s_lon = np.array([s.lon_deg for s in stations])
    vis = np.asarray(geo.station_visible[k]) & valid[None, :]
    g_idx, n_idx = np.nonzero(vis)
    if g_idx.size:
        ok = _wrap_free(s_lon[g_idx], lon[n_idx])
        segs = _segments(s_lat[g_idx], s_lon[g_idx], lat[n_idx], lon[n_idx])[ok]
        ax.add_collection(
            LineCollection(segs, colors=_CONTACT, linewidths=0.8, linestyles=(0, (2, 1.5)), zorder=3)
        )
    active = vis.any(axis=1)
    ax.scatter(
        s_lon,
        s_lat,
        marker="^",
        s=30,
        c=np.where(active, _CONTACT, "white"),
        edgecolors=_STATION,
        linewidths=0.8,
        zorder=9,
    )
    for s, x, y in zip(stations, s_lon, s_lat, strict=True):
        ax.text(
            x + 2.5,
            y + 2.0,
            s.name,
            fontsize=6,
            color=_STATION,
            zorder=9,
            clip_on=True,
            ha="left" if x < 150 else "right",
        )

    # active inter-satellite links
    pairs = np.asarray(geo.isl_pairs)[np.asarray(geo.isl_active[k])]
    if len(pairs):
        a, b = pairs[:, 0], pairs[:, 1]
        ok = _wrap_free(lon[a], lon[b])
        segs = _segments(lat[a], lon[a], lat[b], lon[b])[ok]
        lw, alpha = (0.9, 0.85) if n <= MAX_TRACKS else (0.3, 0.35)
        ax.add_collection(LineCollection(segs, colors=_ISL, linewidths=lw, alpha=alpha, zorder=5))

    # satellites: charge colour, eclipse rim, safe ring, invalid grey
    size, rim = (26.0, 1.3) if n <= MAX_TRACKS else (8.0, 0.6)
    lit = valid & st["sunlit"]
    dark = valid & ~st["sunlit"]
    if (~valid).any():
        ax.scatter(lon[~valid], lat[~valid], s=size, c=_INVALID, marker="X", linewidths=0, zorder=6)
    for mask, edge, lw in ((lit, "#555555", 0.4), (dark, "#000000", rim)):
        if mask.any():
            ax.scatter(
                lon[mask],
                lat[mask],
                s=size,
                c=st["soc"][mask],
                cmap=_SOC_CMAP,
                norm=_SOC_NORM,
                edgecolors=edge,
                linewidths=lw,
                zorder=7,
            )
    safe = st["safe"] & valid
    if safe.any():
        ax.scatter(
            lon[safe], lat[safe], s=size * 3.2, facecolors="none", edgecolors=_SAFE, linewidths=1.3, zorder=8
        )


def _is_cluster(geo, k: int, valid: np.ndarray) -> bool:
    """True when at least two satellites are valid and all within ``CLUSTER_KM`` of their centroid."""
    if valid.sum() < 2:
        return False
    pos = geo.position_km[k][valid].astype(np.float64)
    return bool(np.linalg.norm(pos - pos.mean(axis=0), axis=1).max() <= CLUSTER_KM)


def _cluster_inset(ax, sim: Simulator, st: dict):
    """The formation in the local orbital frame, as an inset in a corner of the map ``ax``."""
    geo, k = sim.geometry, st["k"]
    valid = st["valid"]
    pos = geo.position_km[k].astype(np.float64)
    centre = pos[valid].mean(axis=0)
    rel = pos[valid] - centre
    spread = float(np.linalg.norm(rel, axis=1).max())
    # local frame: radial, along-track (from the centroid's motion), cross-track
    k2 = k + 1 if k + 1 < geo.valid.shape[0] else k - 1
    other = geo.position_km[k2][geo.valid[k2]].astype(np.float64).mean(axis=0)
    vel = (other - centre) * (1 if k2 > k else -1)
    radial = centre / np.linalg.norm(centre)
    along = vel - vel @ radial * radial
    along /= np.linalg.norm(along)
    cross = np.cross(radial, along)
    axes = np.stack([along, cross, radial])
    local = rel @ axes.T  # [M, 3]
    names = ("along-track", "cross-track", "radial")
    i, j = np.sort(np.argsort(local.std(axis=0))[::-1][:2])
    scale, unit = (1000.0, "m") if spread < 5.0 else (1.0, "km")
    x, y = local[:, i] * scale, local[:, j] * scale

    # the corner of the map farthest from the cluster's sub-point
    clat, clon = _lat_lon(geo.teme_to_itrs[k] @ centre)
    w, h = 0.25, 0.38
    corner_x = 0.075 if clon > 0 else 0.985 - w
    corner_y = 0.12 if clat > 0 else 0.93 - h
    ins = ax.inset_axes([corner_x, corner_y, w, h], zorder=20)
    ins.set_facecolor((1, 1, 1, 0.88))
    idx = np.flatnonzero(valid)
    lookup = np.full(sim.n_sats, -1)
    lookup[idx] = np.arange(idx.size)
    pairs = np.asarray(geo.isl_pairs)[np.asarray(geo.isl_active[k])]
    if len(pairs):
        a, b = lookup[pairs[:, 0]], lookup[pairs[:, 1]]
        ok = (a >= 0) & (b >= 0)
        segs = _segments(y[a[ok]], x[a[ok]], y[b[ok]], x[b[ok]])
        ins.add_collection(LineCollection(segs, colors=_ISL, linewidths=0.5, alpha=0.7))
    sunlit = st["sunlit"][idx]
    ins.scatter(
        x,
        y,
        s=9,
        c=st["soc"][idx],
        cmap=_SOC_CMAP,
        norm=_SOC_NORM,
        edgecolors=np.where(sunlit, "#555555", "#000000"),
        linewidths=np.where(sunlit, 0.3, 1.0),
        zorder=3,
    )
    safe = st["safe"][idx]
    if safe.any():
        ins.scatter(x[safe], y[safe], s=30, facecolors="none", edgecolors=_SAFE, linewidths=1.0, zorder=4)
    ins.set_aspect("equal", adjustable="datalim")
    ins.tick_params(labelsize=5.5, length=1.5, pad=1)
    ins.set_xlabel(f"{names[i]} [{unit}]", fontsize=6, labelpad=1)
    ins.set_ylabel(f"{names[j]} [{unit}]", fontsize=6, labelpad=1)
    ins.set_title(f"{idx.size} satellites, all within {spread * scale:.0f} {unit}", fontsize=6.5, pad=2)
    ax.annotate(
        f"cluster ({idx.size})",
        (clon, clat),
        xytext=(8, -12),
        textcoords="offset points",
        fontsize=6.5,
        fontweight="bold",
        color="#222222",
        zorder=9,
    )
    return ins


def _draw_bars(ax, sim: Simulator, st: dict) -> None:
    n, slots, q = sim.n_sats, sim.power.accelerators, sim.config.max_queue
    busy, queued = st["busy"], st["queued"]
    edges = np.arange(n + 1) - 0.5
    # stairs draw one patch per series, so the cost does not grow with N
    ax.stairs(busy + queued, edges, fill=True, color=_QUEUED, label="queued", zorder=2)
    ax.stairs(busy, edges, fill=True, color=_BUSY, label="busy slots", zorder=3)
    ax.axhline(slots, color=_BUSY, lw=0.6, ls=":", zorder=4)
    invalid = ~st["valid"]
    if invalid.any():
        ax.stairs(np.where(invalid, slots + q, 0), edges, fill=True, color=_INVALID, alpha=0.25, zorder=1)
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(0, slots + q)
    ax.set_facecolor("#f7f9fb")
    ax.tick_params(labelsize=6, length=2, pad=1)
    ax.set_yticks([0, slots, slots + q])
    ax.xaxis.set_major_locator(MaxNLocator(nbins=12, integer=True))
    ax.set_ylabel("jobs", fontsize=6.5, labelpad=1)
    ax.set_xlabel(
        f"satellite index   (bars: busy of {slots} slots, then queued of {q}; dotted: all slots busy)",
        fontsize=6.5,
        labelpad=1,
    )
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)


def _draw_legend(ax) -> None:
    ax.set_axis_off()
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            ls="none",
            mfc=_SOC_CMAP(0.8),
            mec="#555555",
            mew=0.4,
            ms=5.5,
            label="satellite (sunlit)",
        ),
        Line2D(
            [],
            [],
            marker="o",
            ls="none",
            mfc=_SOC_CMAP(0.8),
            mec="#000000",
            mew=1.3,
            ms=5.5,
            label="satellite in eclipse",
        ),
        Line2D([], [], marker="o", ls="none", mfc="none", mec=_SAFE, mew=1.3, ms=9, label="safe mode"),
        Line2D([], [], marker="X", ls="none", mfc=_INVALID, mec="none", ms=6, label="not propagating"),
        Line2D([], [], color=_ISL, lw=1.0, label="active ISL"),
        Line2D([], [], color=_CONTACT, lw=0.9, ls=(0, (2, 1.5)), label="ground contact"),
        Line2D(
            [], [], marker="^", ls="none", mfc=_CONTACT, mec=_STATION, ms=5.5, label="station (in contact)"
        ),
        Line2D([], [], color=_TRACK, lw=0.8, alpha=0.6, label="ground track (1 orbit)"),
        Line2D([], [], marker="o", ls="none", mfc="#ffd43b", mec="#e8a100", ms=6, label="sub-solar point"),
        Line2D(
            [], [], marker="s", ls="none", mfc=(*_NIGHT, _NIGHT_ALPHA), mec="none", ms=7, label="night side"
        ),
    ]
    ax.legend(
        handles=handles,
        loc="upper left",
        fontsize=6.3,
        frameon=False,
        handlelength=1.6,
        borderaxespad=0.0,
        labelspacing=0.55,
    )


# --------------------------------------------------------------------------------- ansi


def render_ansi(sim: Simulator) -> str:
    """The current state of ``sim`` as a plain-text table (no escape codes).

    A header with the scenario, UTC time and episode counters; one row per satellite (index,
    name, sunlit, state of charge, busy/slots, queued, safe mode, direct ground contact), only
    the first ``ANSI_HEAD`` and a "…" line when there are more than ``ANSI_MAX_ROWS``; then a
    summary over all satellites.
    """
    st = _state(sim)
    c, n, slots = sim.counters, sim.n_sats, sim.power.accelerators
    names = sim.geometry.names
    lines = [
        f"{sim.config.name}  {st['time']:%Y-%m-%d %H:%M:%S} UTC  step {st['k']}/{sim.n_steps}  |  "
        f"jobs arrived {c.arrived}  on time {c.on_time}  late {c.late}  expired {c.expired}  "
        f"rejected {c.rejected}  |  brownouts {c.brownouts}"
    ]
    width = max(4, max((len(s) for s in names), default=4))
    lines.append(
        f"{'#':>4}  {'name':<{width}}  {'sun':<3}  {'soc':>5}  {'charge':<10}  {'busy':>5}  {'queued':>6}  "
        f"{'safe':<4}  contact"
    )
    shown = n if n <= ANSI_MAX_ROWS else ANSI_HEAD
    for i in range(shown):
        soc = float(st["soc"][i])
        if st["valid"][i]:
            sun = "yes" if st["sunlit"][i] else "no"
            contact = "yes" if st["contact"][i] else "-"
        else:
            sun, contact = "-", "invalid"
        bar = "#" * int(round(soc * 10))
        bar = bar.ljust(10, ".")
        lines.append(
            f"{i:>4}  {names[i]:<{width}}  {sun:<3}  {100 * soc:>4.0f}%  {bar:<10}  "
            f"{int(st['busy'][i]):>2}/{slots:<2}  {int(st['queued'][i]):>6}  "
            f"{'SAFE' if st['safe'][i] else '-':<4}  {contact}"
        )
    if shown < n:
        lines.append(f"{'…':>4}  ({n - shown} more satellites)")
    valid = st["valid"]
    n_valid = int(valid.sum())
    lit = int((st["sunlit"] & valid).sum())
    lines.append(
        f"summary: {n} satellites ({n_valid} valid)  mean soc {100 * float(st['soc'].mean()):.1f}%  "
        f"sunlit {lit}/{n_valid} ({100 * lit / max(n_valid, 1):.0f}%)  "
        f"busy slots {int(st['busy'].sum())}/{n * slots}  queued {int(st['queued'].sum())}  "
        f"safe {int(st['safe'].sum())}  in contact {int((st['contact'] & valid).sum())}"
    )
    return "\n".join(lines)
