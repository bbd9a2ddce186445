"""Learning-curve plots written as PNG files (matplotlib, Agg backend)."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from zoo.io import atomic_write_bytes


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
