"""The HTML report's charts: matplotlib figures as inline SVG text, deterministic byte for byte
(fixed hash salt, no date in the metadata, text kept as text), so golden files can hold them."""

from __future__ import annotations

import io
from decimal import Decimal

import polars as pl

_SHORT, _LONG, _INK, _ACCENT = "#d9822b", "#2b6cb0", "#333333", "#c53030"


def _pyplot():  # type: ignore[no-untyped-def]
    """matplotlib set for reproducible SVG (imported on first use: it is slow to import)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update({
        "svg.hashsalt": "taxlens", "svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
        "axes.spines.right": False, "axes.edgecolor": "#999999", "axes.titlesize": 10, "axes.titleweight": "bold",
    })
    import matplotlib.pyplot as plt

    return plt


def _svg(fig) -> str:  # type: ignore[no-untyped-def]
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    _pyplot().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: it is inlined in HTML


def _floats(values: list[Decimal | int | None]) -> list[float]:
    # Plotting only: positions on a chart, never a reported figure.
    return [float(v) if v is not None else 0.0 for v in values]


def trades_per_week(weekly: pl.DataFrame, threshold: int) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(12, 3.2))
    weeks = weekly.get_column("week").to_list()
    trades = weekly.get_column("trades").to_list()
    colors = [_ACCENT if t > threshold else _LONG for t in trades]
    ax.bar(weeks, trades, width=5, color=colors)
    ax.axhline(threshold, color=_ACCENT, linewidth=0.8, linestyle="--")
    ax.set_title("Trades per week")
    ax.set_ylabel("trades")
    fig.autofmt_xdate()
    return _svg(fig)


def cumulative_gain(cumulative: pl.DataFrame) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(12, 3.2))
    dates = cumulative.get_column("date").to_list()
    ax.step(dates, _floats(cumulative.get_column("short").to_list()), where="post", color=_SHORT, label="short-term")
    ax.step(dates, _floats(cumulative.get_column("long").to_list()), where="post", color=_LONG, label="long-term")
    ax.axhline(0, color="#999999", linewidth=0.6)
    ax.set_title("Cumulative realized gain")
    ax.set_ylabel("USD")
    ax.legend(frameon=False)
    fig.autofmt_xdate()
    return _svg(fig)


def monthly_bars(monthly: pl.DataFrame, column: str, title: str, color: str) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    labels = [m.strftime("%b") for m in monthly.get_column("month").to_list()]
    ax.bar(labels, _floats(monthly.get_column(column).to_list()), color=color)
    ax.axhline(0, color="#999999", linewidth=0.6)
    ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=90)
    return _svg(fig)


def top_symbols(symbols: pl.DataFrame, n: int = 10) -> str:
    plt = _pyplot()
    top = symbols.head(n).reverse()
    fig, ax = plt.subplots(figsize=(12, 0.32 * max(top.height, 2) + 1.0))
    ax.barh(top.get_column("symbol").to_list(), _floats(top.get_column("tax").to_list()), color=_SHORT)
    ax.axvline(0, color="#999999", linewidth=0.6)
    ax.set_title("Tax caused, by symbol")
    ax.set_xlabel("USD")
    return _svg(fig)


def frontier(metrics: pl.DataFrame) -> str:
    """Tax plus fees against tracking error, one point per policy: dominated ones grey, the
    actual trades marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(12, 5))
    # Policies that never trigger all sit on `never`'s point: one label says how many share it.
    frontier_points: dict[tuple[float, float], list[str]] = {}
    for r in metrics.iter_rows(named=True):
        x, y = float(r["tracking_error"]) * 100, float(r["tax_and_fees"])
        if r["policy"] == "actual":
            ax.scatter([x], [y], marker="*", s=160, color=_ACCENT, zorder=3)
            ax.annotate("actual", (x, y), textcoords="offset points", xytext=(6, 4), color=_ACCENT)
        else:
            ax.scatter([x], [y], s=22, color="#bbbbbb" if r["dominated"] else _LONG, zorder=2)
            if not r["dominated"]:
                frontier_points.setdefault((x, y), []).append(r["policy"])
    for labelled, ((x, y), names) in enumerate(frontier_points.items()):
        label = names[0] if len(names) == 1 else f"{names[0]} and {len(names) - 1} more alike"
        # Frontier points often sit close together: stagger their labels.
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 6 + 11 * (labelled % 4)),
                    fontsize=7, color=_INK, arrowprops={"arrowstyle": "-", "color": "#cccccc", "lw": 0.5})
    ax.set_title("Cost against tracking error (lower left is better)")
    ax.set_xlabel("tracking error vs target, % a year")
    ax.set_ylabel("tax + fees, USD")
    return _svg(fig)
