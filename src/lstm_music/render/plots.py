"""Pictures in one visual style: the training loss curve, statistics, piano rolls.

Every picture draws inside `matplotlib.rc_context(STYLE)` with colours from COLORS and PALETTE
(the piano roll of `lstm_music.render.audio` too), so they read as one family. matplotlib is
imported inside the functions, and figures are made as `Figure` objects without pyplot: nothing
opens a window, a caller's backend (a notebook's, say) is left alone, and importing lstm_music
stays fast. rc_context changes process-wide settings while it lasts, so threads draw one at a time.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from lstm_music.fsutil import is_regular_file

STYLE = {
    "figure.figsize": (8, 4.5),
    "figure.dpi": 110,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10,
}
COLORS = {"train": "#4C72B0", "valid": "#DD8452"}
# one hue per series or track: the two above first, then the rest of the same (seaborn "deep")
PALETTE = (COLORS["train"], COLORS["valid"], "#55A868", "#C44E52", "#8172B3", "#937860")
WIDE_FIGSIZE = (10, 4)  # pictures along time (piano rolls): wider than STYLE's default


def plot_losses(metrics_csv: Path, png: Path | BinaryIO, title: str = "") -> Path | BinaryIO:
    """Training and validation loss (nats per token) against steps, from metrics.csv.

    `png` is a path or a binary file (training writes to memory, then renames into place)."""
    import matplotlib
    from matplotlib.figure import Figure

    steps, train, valid_steps, valid = [], [], [], []
    if not is_regular_file(metrics_csv):  # its callers skip the plot on ValueError
        raise ValueError(f"{metrics_csv}: not a regular file")
    with open(metrics_csv, newline="") as file:
        for row in csv.DictReader(file):
            if row.get("train_loss"):
                steps.append(int(row["step"]))
                train.append(float(row["train_loss"]))
            if row.get("valid_loss"):
                valid_steps.append(int(row["step"]))
                valid.append(float(row["valid_loss"]))
    with matplotlib.rc_context(STYLE):
        figure = Figure()  # no pyplot: no global figure, backend untouched
        axes = figure.subplots()
        axes.plot(steps, train, color=COLORS["train"], lw=1, alpha=0.8, label="training")
        if valid:
            axes.plot(
                valid_steps,
                valid,
                "o-",
                color=COLORS["valid"],
                lw=2,
                ms=4,
                label=f"validation (best {min(valid):.3f})",
            )
        axes.set_xlabel("step")
        axes.set_ylabel("loss (nats per token)")
        axes.set_title(title or "training loss")
        axes.legend()
        figure.tight_layout()
        figure.savefig(png, format="png")
    return png


def plot_distributions(
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    png: Path,
    title: str = "",
    xlabel: str = "",
) -> Path:
    """Distributions on common bins as side-by-side bars (e.g. reference vs generated).

    The first series is drawn in the training colour, the second in the validation colour, so
    the reference reads like the training data it comes from.
    """
    import matplotlib
    import numpy as np
    from matplotlib.figure import Figure

    colors = [COLORS["train"], COLORS["valid"]]
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(series))
    with matplotlib.rc_context(STYLE):
        figure = Figure()  # no pyplot: no global figure, backend untouched
        axes = figure.subplots()
        for i, (name, values) in enumerate(series.items()):
            shift = (i - (len(series) - 1) / 2) * width
            color = colors[i] if i < len(colors) else None
            axes.bar(x + shift, values, width, color=color, alpha=0.85, label=name)
        every = max(1, -(-len(labels) // 24))  # at most about 24 tick labels
        axes.set_xticks(x[::every], [str(label) for label in labels[::every]])
        axes.set_xlabel(xlabel)
        axes.set_ylabel("share")
        axes.set_title(title)
        axes.legend()
        figure.tight_layout()
        figure.savefig(png)
    return png
