"""Learning-curve plots written as PNG files (matplotlib, Agg backend).

:func:`plot_panels` draws the figures of ``zoo quickstart``: one panel per method, each band
saying what it is and clipped to the range the environment can pay, reference lines labelled.
:func:`plot_curves` and :func:`plot_evaluations` draw a single run's curves (``zoo train``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter

from zoo.io import atomic_write_bytes

__all__ = ["Curve", "Panel", "ReferenceLine", "plot_curves", "plot_evaluations", "plot_panels"]


@dataclass(frozen=True)
class Curve:
    """One method's line in a panel: the mean over seeds and, optionally, a band around it."""

    label: str
    """Legend label (use the same text as the results table)."""
    x: Sequence[float]
    """Positions along the x axis (env steps, episode numbers, ...)."""
    mean: Sequence[float]
    """The line."""
    low: Sequence[float] | None = None
    """Lower edge of the band (``None``: no band)."""
    high: Sequence[float] | None = None
    """Upper edge of the band."""
    style: str = "-"
    """Matplotlib line style."""


@dataclass(frozen=True)
class ReferenceLine:
    """A labelled horizontal line (optimum, threshold, teacher)."""

    y: float
    """Height."""
    label: str
    """Legend label; say what it is and its value."""
    style: str = "--"
    """Matplotlib line style."""
    color: str = "0.35"
    """Matplotlib colour."""


@dataclass(frozen=True)
class Panel:
    """One axis of a figure."""

    title: str
    """Title: name the env, the task split, the number of tasks and seeds."""
    xlabel: str
    """x-axis label."""
    ylabel: str
    """y-axis label."""
    curves: Sequence[Curve]
    """The methods."""
    band: str | None = None
    """What the bands are (``"mean ± std over 3 seeds"``), shown in the legend; required when a
    curve has a band."""
    y_range: tuple[float, float] | None = None
    """What the environment can pay: bands are clipped to it and the axis shows it."""
    references: Sequence[ReferenceLine] = field(default_factory=tuple)
    """Labelled horizontal lines."""
    integer_x: bool = False
    """Integer ticks on the x axis (episode numbers)."""
    log_x: bool = False
    """A logarithmic x axis (curves of very different lengths), ticks at 1, 2, 5, 10, 20, ... labelled
    as plain integers."""


def _check_panel(panel: Panel) -> None:
    if not panel.curves:
        raise ValueError(f"panel {panel.title!r} has no curves")
    for curve in panel.curves:
        lengths = {len(curve.x), len(curve.mean)}
        if curve.low is not None or curve.high is not None:
            if curve.low is None or curve.high is None:
                raise ValueError(f"curve {curve.label!r}: give both low and high, or neither")
            lengths |= {len(curve.low), len(curve.high)}
            if not panel.band:
                raise ValueError(
                    f"panel {panel.title!r}: curve {curve.label!r} has a band, so say what it is (band=...)"
                )
        if len(lengths) != 1:
            raise ValueError(f"curve {curve.label!r}: x, mean, low and high must have the same length")
    if panel.y_range is not None and not panel.y_range[0] < panel.y_range[1]:
        raise ValueError(
            f"panel {panel.title!r}: y_range={panel.y_range} must be (low, high) with low < high"
        )


def _draw_panel(axis: plt.Axes, panel: Panel) -> None:
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    handles = []
    for index, curve in enumerate(panel.curves):
        color = colors[index % len(colors)]
        x = np.asarray(curve.x, dtype=float)
        (line,) = axis.plot(
            x, np.asarray(curve.mean, dtype=float), curve.style, color=color, label=curve.label
        )
        handles.append(line)
        if curve.low is not None and curve.high is not None:
            low, high = np.asarray(curve.low, dtype=float), np.asarray(curve.high, dtype=float)
            if panel.y_range is not None:
                low, high = np.clip(low, *panel.y_range), np.clip(high, *panel.y_range)
            axis.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
    for reference in panel.references:
        handles.append(
            axis.axhline(reference.y, linestyle=reference.style, color=reference.color, label=reference.label)
        )
    if panel.band and any(curve.low is not None for curve in panel.curves):
        handles.append(Patch(facecolor="0.6", alpha=0.35, label=f"shaded: {panel.band}"))
    if panel.y_range is not None:
        margin = 0.03 * (panel.y_range[1] - panel.y_range[0])
        axis.set_ylim(panel.y_range[0] - margin, panel.y_range[1] + margin)
    if panel.log_x:
        axis.set_xscale("log")
        largest = max(float(np.max(np.asarray(curve.x, dtype=float))) for curve in panel.curves)
        ticks = [m * 10**e for e in range(0, 7) for m in (1, 2, 5) if m * 10**e <= largest * 1.01]
        axis.xaxis.set_major_locator(FixedLocator(ticks))
        axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        axis.xaxis.set_minor_formatter(NullFormatter())
    elif panel.integer_x:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_xlabel(panel.xlabel)
    axis.set_ylabel(panel.ylabel)
    axis.set_title(panel.title, fontsize=10)
    axis.grid(alpha=0.3)
    # Below the axes: inside, a legend of five entries hides the curves it explains.
    axis.legend(
        handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False
    )


def plot_panels(
    panels: Sequence[Panel],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    panel_size: tuple[float, float] = (6.4, 5.6),
    dpi: int = 120,
) -> Path:
    """Draw ``panels`` side by side and save the figure as a PNG, atomically.

    :param panels: one :class:`Panel` per axis.
    :param path: the ``.png`` file.
    :param title: a title above all panels.
    :param panel_size: inches per panel (width, height).
    :param dpi: resolution.
    :return: the path written.
    :raises ValueError: no panels, a curve of mismatched lengths, or a band nobody explains.
    """
    if not panels:
        raise ValueError("panels=[] is empty; give at least one Panel")
    for panel in panels:
        _check_panel(panel)
    figure, axes = plt.subplots(
        1, len(panels), figsize=(panel_size[0] * len(panels), panel_size[1]), dpi=dpi, squeeze=False
    )
    try:
        for axis, panel in zip(axes[0], panels, strict=True):
            _draw_panel(axis, panel)
        if title:
            figure.suptitle(title, fontsize=11)
        figure.tight_layout()
        image = io.BytesIO()
        # "tight" keeps the legends below the axes inside the image.
        figure.savefig(image, format="png", bbox_inches="tight", pad_inches=0.15)
    finally:
        plt.close(figure)
    return atomic_write_bytes(path, image.getvalue())


def plot_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float] | None]],
    path: str | os.PathLike[str],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
) -> Path:
    """Draw one line per curve, ``name -> (x, mean, std or None)``, and save it as a PNG.

    :return: the path written.
    """
    figure, axis = plt.subplots(figsize=(6, 4), dpi=100)
    for name, (x, mean, std) in curves.items():
        x_values, mean_values = np.asarray(x, dtype=float), np.asarray(mean, dtype=float)
        axis.plot(x_values, mean_values, label=name)
        if std is not None:
            std_values = np.asarray(std, dtype=float)
            axis.fill_between(x_values, mean_values - std_values, mean_values + std_values, alpha=0.2)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    if len(curves) > 1:
        axis.legend()
    figure.tight_layout()
    image = io.BytesIO()
    try:
        figure.savefig(image, format="png")
    finally:
        plt.close(figure)
    return atomic_write_bytes(path, image.getvalue())


def plot_evaluations(
    evaluations_npz: str | os.PathLike[str], path: str | os.PathLike[str], title: str
) -> Path:
    """Plot the mean ± std evaluation return stored by SB3's ``EvalCallback`` (``evaluations.npz``)."""
    with np.load(evaluations_npz, allow_pickle=False) as data:
        timesteps, results = data["timesteps"], data["results"]
    return plot_curves(
        {"evaluation": (timesteps, results.mean(axis=1), results.std(axis=1))},
        path,
        xlabel="environment steps",
        ylabel="episode return",
        title=title,
    )
