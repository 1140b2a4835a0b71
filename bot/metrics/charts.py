"""Charts as PNG bytes for Slack uploads: matplotlib with the Agg backend, no display, no Slack here.

`line_chart` draws one line per series over time; it is used by `/platform stats` and `/dora`.
Figures are built with the object API and the Agg canvas (no pyplot, no global backend
state), so charts drawn at the same time in worker threads do not share anything.
"""
from __future__ import annotations

import io
from datetime import datetime
from typing import Mapping, Sequence

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def line_chart(title: str, series: Mapping[str, Sequence[tuple[datetime, float]]], y_label: str = "",
               *, width: float = 8.0, height: float = 4.0, dpi: int = 100) -> bytes:
    """A line chart of each named series of (time, value) points, as PNG bytes.

    Empty series are left out of the plot; with no points at all the chart says "no data"
    rather than drawing an empty axis that reads like zero. Points are sorted by time.
    """
    # matplotlib is imported on first use: it costs about a second, which starting the bot
    # (and every `pavedroad shell`) should not pay.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.set_title(title)
    drawn = 0
    for name, points in series.items():
        points = sorted(points, key=lambda p: p[0])
        if not points:
            continue
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, linewidth=1.5, label=name)
        drawn += 1
    if drawn:
        locator = AutoDateLocator()
        axes.xaxis.set_major_locator(locator)
        axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        axes.grid(True, alpha=0.3)
        if drawn > 1 or len(series) > 1:
            axes.legend(loc="best", fontsize="small")
    else:
        axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes, fontsize=14, color="grey")
        axes.set_xticks([])
        axes.set_yticks([])
    if y_label:
        axes.set_ylabel(y_label)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
