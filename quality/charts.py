"""An alert's `Chart` as a PNG (matplotlib, Agg backend), for inline images in emails.

matplotlib is imported on first use: sensors that raise alerts without charts never pay for it.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quality.alerts import Chart

# Region and channel names are Chinese: prefer a CJK font where the host has one.
_FONTS = ["Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "SimHei", "DejaVu Sans"]


def render_png(chart: Chart, width: float = 7.0, height: float = 3.2, dpi: int = 100) -> bytes:
    """The chart as PNG bytes: one line per series over `chart.x`, the threshold dashed."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    # a Figure without pyplot: no global state, safe in sensor threads
    fig = Figure(figsize=(width, height), dpi=dpi)
    with (
        matplotlib.rc_context({"font.sans-serif": _FONTS, "axes.unicode_minus": False}),
        warnings.catch_warnings(),
    ):
        # without a CJK font (Debian: fonts-noto-cjk) Chinese shows as boxes; say it once in
        # the README rather than once per glyph in every sensor log
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        warnings.filterwarnings("ignore", message="findfont")
        ax = fig.subplots()
        for name, values in chart.series.items():
            points = [float("nan") if v is None else v for v in values]  # None: a gap
            ax.plot(chart.x[: len(points)], points, marker="o", label=name)
        if chart.threshold is not None:
            ax.axhline(chart.threshold, color="#c0392b", linestyle="--", label="threshold")
        ax.set_title(chart.title)
        ax.set_ylabel(chart.y_label)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
        fig.autofmt_xdate()
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    return buf.getvalue()
