"""The report's picture (`appeals-bot report --chart FILE`): appeals per month by category
as stacked bars, and the share answered on time as a line on its own axis (0-100 %).

matplotlib is an optional extra (`pip install -e '.[chart]'` in the checkout), imported only here
and only when a chart is drawn; `require_matplotlib` says clearly when it is missing. The
figure is drawn with matplotlib's object API (no pyplot, no GUI backend), so it works on a
server without a display. DejaVu Sans, bundled with matplotlib, has Cyrillic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from handlers import texts
from handlers.figures.report import Titles
from storage.reports import MonthFigures

INSTALL_HINT = "pip install -e '.[chart]'"


class ChartUnavailable(Exception):
    """matplotlib is not installed."""


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError as error:
        raise ChartUnavailable(f"a chart needs matplotlib: {INSTALL_HINT}") from error


def draw_chart(
    titles: Titles,
    months: Sequence[tuple[date, MonthFigures]],
    start: date,
    end: date,
    path: Path,
) -> None:
    """Write the PNG: one bar per month (first day of the month, its figures)."""
    require_matplotlib()
    from matplotlib.figure import Figure

    totals: dict[str, int] = {}
    for _, month in months:
        for code, n in month.by_category:
            totals[code] = totals.get(code, 0) + n
    categories = sorted(totals, key=lambda code: (-totals[code], code))
    labels = [f"{texts.MONTHS_SHORT[first.month - 1]}\n{first.year}" for first, _ in months]
    positions = list(range(len(months)))

    figure = Figure(figsize=(max(8.0, 0.9 * len(months) + 3), 6), dpi=100, layout="constrained")
    bars = figure.add_subplot()
    bottoms = [0] * len(months)
    for code in categories:
        heights = [dict(month.by_category).get(code, 0) for _, month in months]
        bars.bar(positions, heights, bottom=bottoms, label=titles.category(code), width=0.7)
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    bars.set_xticks(positions, labels)
    bars.set_ylabel(texts.CHART_APPEALS)
    bars.set_title(
        texts.CHART_TITLE.format(start=start.strftime("%d.%m.%Y"), end=end.strftime("%d.%m.%Y"))
    )

    line = bars.twinx()
    shares = [
        100 * month.on_time / month.received if month.received else math.nan for _, month in months
    ]
    line.plot(positions, shares, color="black", marker="o", label=texts.CHART_ON_TIME)
    line.set_ylim(0, 100)
    line.set_ylabel(texts.CHART_ON_TIME)

    handles, names = bars.get_legend_handles_labels()
    more_handles, more_names = line.get_legend_handles_labels()
    bars.legend(  # categories top-down as stacked, then the line
        handles[::-1] + more_handles,
        names[::-1] + more_names,
        loc="upper left",
        bbox_to_anchor=(1.08, 1.0),
        fontsize="small",
    )
    figure.savefig(path, format="png")
