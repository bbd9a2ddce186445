"""Plot in-context learning curves (return per episode index, mean ± std over tasks) to PNG."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

from zoo.hub.files import atomic_write_bytes

from .evaluation import InContextResult

__all__ = ["plot_in_context"]


def plot_in_context(
    results: Sequence[InContextResult],
    path: str | os.PathLike[str],
    title: str = "In-context learning on held-out tasks",
    optimal: float | None = None,
) -> Path:
    """Draw one curve per result (mean return per episode, shaded ± std) and save a PNG.

    :param results: results to draw (their ``label`` goes in the legend).
    :param path: output ``.png`` path (parent folders are created).
    :param title: figure title.
    :param optimal: draw a dashed line at this return (e.g. the mean optimal return).
    :return: the written path.
    """
    if not results:
        raise ValueError("results=[] is empty; give at least one InContextResult")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(6, 4))
    for result in results:
        episodes = range(1, result.episodes + 1)
        axes.plot(episodes, result.mean, label=result.label or "?")
        axes.fill_between(episodes, result.mean - result.std, result.mean + result.std, alpha=0.2)
    if optimal is not None:
        axes.axhline(optimal, linestyle="--", color="black", linewidth=1, label="optimal")
    axes.set_xlabel("episode (in context)")
    axes.set_ylabel("return")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    image = io.BytesIO()
    figure.savefig(image, dpi=100, format=Path(path).suffix.lstrip(".") or "png")
    plt.close(figure)
    atomic_write_bytes(path, image.getvalue())
    return path
