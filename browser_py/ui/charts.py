"""Charts through Chart.js (vendored from npm), driven from Python.

``make(canvas, kind, ...)`` creates one; ``set_data`` replaces its labels and series and
redraws without animation. Tests read a chart's data back with ``Chart.getChart(canvas)``.
"""
from __future__ import annotations

PALETTE = ("#2364d2", "#d2642a", "#1b8a4b", "#8a3fd2", "#b3261e", "#5b6773", "#c29d00", "#0a8a8a")


from ..jsvalues import js_object as _js


def make(canvas, kind: str, series: list[str], x_title: str = "", y_title: str = "",
         y2: str | None = None, stacked: bool = False, linear_x: bool = False, whole_y: bool = False):
    """A chart with one dataset per name in ``series``; ``y2`` puts that series on a right axis.
    ``linear_x`` spaces points by their x value (time), not evenly; ``whole_y`` keeps the y
    ticks whole numbers (counts, versions)."""
    import js

    datasets = []
    for i, name in enumerate(series):
        ds = {"label": name, "data": [], "borderColor": PALETTE[i % len(PALETTE)],
              "backgroundColor": PALETTE[i % len(PALETTE)] + ("cc" if kind == "bar" else "33"),
              "pointRadius": 2, "tension": 0.2}
        if y2 is not None and name == y2:
            ds["yAxisID"] = "y2"
        datasets.append(ds)
    scales = {"x": {"title": {"display": bool(x_title), "text": x_title}, "stacked": stacked},
              "y": {"title": {"display": bool(y_title), "text": y_title}, "beginAtZero": True, "stacked": stacked}}
    if linear_x:
        scales["x"]["type"] = "linear"
    if whole_y:
        scales["y"]["ticks"] = {"precision": 0}
    if y2 is not None:
        scales["y2"] = {"position": "right", "title": {"display": True, "text": y2}, "beginAtZero": True,
                        "grid": {"drawOnChartArea": False}}
    config = {"type": kind, "data": {"labels": [], "datasets": datasets},
              "options": {"animation": False, "responsive": True, "maintainAspectRatio": False,
                          "scales": scales, "plugins": {"legend": {"display": len(series) > 1}}}}
    return js.Chart.new(canvas, _js(config))


def set_data(chart, labels: list, series: list[list]) -> None:
    linear = chart.options.scales.x.type == "linear"
    chart.data.labels = _js([] if linear else labels)
    for i, values in enumerate(series):
        points = [{"x": x, "y": y} for x, y in zip(labels, values)] if linear else values
        chart.data.datasets[i].data = _js(points)
    chart.update("none")
