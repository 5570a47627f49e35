"""Plotly figures for the console, built in Python and drawn by the bundled plotly.min.js."""

from __future__ import annotations

import datetime as dt

import plotly.graph_objects as go

PALETTE = ["#d6336c", "#6f42c1", "#0d6efd", "#20c997", "#fd7e14", "#6c757d", "#198754"]
LAYOUT = {
    "margin": {"l": 40, "r": 16, "t": 8, "b": 40},
    "height": 280,
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "font": {"family": "system-ui, -apple-system, 'PingFang SC', 'Microsoft YaHei', sans-serif", "size": 12},
}


def new_per_day(points: list[tuple[str, int]], label: str) -> str:
    fig = go.Figure(
        go.Bar(
            x=[d for d, _ in points],
            y=[n for _, n in points],
            marker_color=PALETTE[0],
            name=label,
            hovertemplate="%{x}<br>%{y:,}<extra></extra>",
        )
    )
    fig.update_layout(**LAYOUT, xaxis={"type": "date"}, yaxis={"rangemode": "tozero"}, bargap=0.15)
    return fig.to_json()


def by_channel(points: list[tuple[str, int]]) -> str:
    fig = go.Figure(
        go.Pie(
            labels=[c for c, _ in points],
            values=[n for _, n in points],
            hole=0.55,
            marker={"colors": PALETTE},
            sort=False,
            textinfo="percent",
            hovertemplate="%{label}<br>%{value:,}<extra></extra>",
        )
    )
    fig.update_layout(**LAYOUT, showlegend=True, legend={"orientation": "v"})
    return fig.to_json()


def by_store(points: list[tuple[str, int]]) -> str:
    ordered = list(reversed(points))
    fig = go.Figure(
        go.Bar(
            x=[n for _, n in ordered],
            y=[s for s, _ in ordered],
            orientation="h",
            marker_color=PALETTE[1],
            hovertemplate="%{y}<br>%{x:,}<extra></extra>",
        )
    )
    layout = {**LAYOUT, "height": max(280, 24 * len(points) + 60), "margin": {"l": 160, "r": 16, "t": 8, "b": 30}}
    fig.update_layout(**layout)
    return fig.to_json()


def layer_bars(points: list[tuple[str, int]], colors: list[str] | None = None) -> str:
    """Customers per layer value, in the given order (RFM cells, lifecycle stages)."""
    fig = go.Figure(
        go.Bar(
            x=[label for label, _ in points],
            y=[n for _, n in points],
            marker_color=colors or PALETTE[2],
            text=[f"{n:,}" for _, n in points],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{x}<br>%{y:,}<extra></extra>",
        )
    )
    fig.update_layout(**LAYOUT, yaxis={"rangemode": "tozero"}, bargap=0.3)
    return fig.to_json()


def pyramid(points: list[tuple[str, int]]) -> str:
    """The 1-9-90 community pyramid: the smallest tier on top."""
    fig = go.Figure(
        go.Funnel(
            y=[label for label, _ in points],
            x=[n for _, n in points],
            marker={"color": PALETTE[: len(points)]},
            textinfo="value+percent total",
            hovertemplate="%{y}<br>%{x:,}<extra></extra>",
        )
    )
    fig.update_layout(**{**LAYOUT, "margin": {"l": 100, "r": 16, "t": 8, "b": 20}})
    return fig.to_json()


DAY_MS = 86_400_000


def segment_trend(points: list[tuple[str, int, int, int]], labels: tuple[str, str, str]) -> str:
    """A segment's size per day (line) with the customers who entered and exited (bars, right axis)."""
    days = [d for d, *_ in points]
    fig = go.Figure(
        [
            go.Scatter(
                x=days,
                y=[size for _, size, _, _ in points],
                name=labels[0],
                mode="lines+markers",
                line={"color": PALETTE[2], "width": 2},
                hovertemplate="%{x}<br>%{y:,}<extra></extra>",
            ),
            go.Bar(
                x=days,
                y=[entered for *_, entered, _ in points],
                name=labels[1],
                marker_color=PALETTE[3],
                yaxis="y2",
                opacity=0.6,
                width=DAY_MS * 0.6,
            ),
            go.Bar(
                x=days,
                y=[-exited for *_, exited in points],
                name=labels[2],
                marker_color=PALETTE[4],
                yaxis="y2",
                opacity=0.6,
                width=DAY_MS * 0.6,
            ),
        ]
    )
    # Whole days on the axis, at least a week wide: one refresh otherwise zooms into milliseconds.
    first, last = dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[-1])
    start = min(first, last - dt.timedelta(days=6)) - dt.timedelta(days=1)
    xaxis = {"type": "date", "tickformat": "%m-%d", "range": [f"{start} 12:00", f"{last} 12:00"]}
    fig.update_layout(
        **LAYOUT,
        xaxis=xaxis,
        yaxis={"rangemode": "tozero"},
        yaxis2={"overlaying": "y", "side": "right", "showgrid": False, "zeroline": True},
        barmode="relative",
        legend={"orientation": "h", "y": -0.2},
    )
    return fig.to_json()
