"""Plotly figures for evaluation and explanations, drawn from ``automl_core.understand.evaluation`` data and
``automl_core.understand.explain.Explanation`` (plotly only: shap brings no matplotlib, see DESIGN.md)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from automl_core.models.families import unnest
from studio.charts import _LAYOUT

_DIAGONAL = dict(color="#b0b7c3", dash="dash", width=1)
_BLUE, _RED, _GREY = "#1f77b4", "#d62728", "#8c96a3"


def _layout(fig: go.Figure, x: str, y: str, **extra: Any) -> go.Figure:
    fig.update_layout(xaxis_title=x, yaxis_title=y, **{**_LAYOUT, **extra})
    return fig


# ------------------------------------------------------------------------------------ classification

def confusion_chart(cm: dict[str, Any], normalized: bool = False) -> go.Figure:
    """Heatmap, true class down, predicted class across, each cell annotated."""
    z = np.array(cm["normalized" if normalized else "counts"], dtype=float)
    counts = np.array(cm["counts"])
    text = [[f"{z[i, j]:.0%}<br>({counts[i, j]:,})" if normalized else f"{counts[i, j]:,}" for j in range(z.shape[1])]
            for i in range(z.shape[0])]
    fig = go.Figure(go.Heatmap(z=z, x=cm["classes"], y=cm["classes"], text=text, texttemplate="%{text}",
                               colorscale="Blues", showscale=False, hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", side="bottom")
    return _layout(fig, "predicted class", "true class")


def _curves(curves: list[dict[str, Any]], score_key: str, label: str) -> go.Figure:
    fig = go.Figure()
    for c in curves:
        dash = "dot" if c["name"].endswith("average") else None
        fig.add_trace(go.Scatter(x=c["x"], y=c["y"], mode="lines", name=f"{unnest(c['name'])} ({label} {c[score_key]:.3f})",
                                 line=dict(dash=dash, width=2)))
    return fig


def roc_chart(curves: list[dict[str, Any]]) -> go.Figure:
    fig = _curves(curves, "auc", "AUC")
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=_DIAGONAL, name="chance", showlegend=False))
    return _layout(fig, "false positive rate", "true positive rate")


def pr_chart(curves: list[dict[str, Any]]) -> go.Figure:
    fig = _curves(curves, "ap", "AP")
    for c in curves[:1] if len(curves) == 1 else []:
        fig.add_trace(go.Scatter(x=[0, 1], y=[c["base_rate"]] * 2, mode="lines", line=_DIAGONAL,
                                 name=f"chance ({c['base_rate']:.1%} positive)"))
    return _layout(fig, "recall", "precision", yaxis=dict(range=[0, 1.05]))


def calibration_chart(curves: list[dict[str, Any]]) -> go.Figure:
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=_DIAGONAL, name="perfectly calibrated"))
    for c in curves:
        fig.add_trace(go.Scatter(x=c["predicted"], y=c["observed"], mode="lines+markers", name=c["name"],
                                 customdata=c["count"], hovertemplate="predicted %{x:.2f}, observed %{y:.2f} (%{customdata} rows)"))
    return _layout(fig, "mean predicted probability", "share that really is the class")


def gains_chart(gains: list[dict[str, Any]], kind: str = "gain") -> go.Figure:
    """Cumulative gains (``kind="gain"``) or lift (``"lift"``) against the share of rows contacted."""
    fig = go.Figure()
    for g in gains:
        fig.add_trace(go.Scatter(x=g["share"], y=g[kind], mode="lines", name=g["name"]))
    baseline = [0, 1] if kind == "gain" else [1, 1]
    fig.add_trace(go.Scatter(x=[0, 1], y=baseline, mode="lines", line=_DIAGONAL, name="random order"))
    ytitle = "share of the class found" if kind == "gain" else "lift (times better than random)"
    return _layout(fig, "share of rows, highest probability first", ytitle, xaxis=dict(tickformat=".0%"))


def per_class_chart(table: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for metric in ("precision", "recall", "f1"):
        fig.add_trace(go.Bar(name=metric, x=table["class"].astype(str), y=table[metric],
                             text=[f"{v:.2f}" for v in table[metric]], textposition="outside"))
    return _layout(fig, "class", "score", barmode="group", yaxis=dict(range=[0, 1.1]))


THRESHOLD_TOP = 1.15


def threshold_chart(sweep: pd.DataFrame, threshold: float,
                    axis: str = "threshold on the positive class's probability") -> go.Figure:
    fig = go.Figure()
    for metric in [m for m in ("precision", "recall", "f1", "balanced_accuracy") if m in sweep.columns]:
        # the tiles above the chart say "balanced accuracy": so does its legend, not the column id
        fig.add_trace(go.Scatter(x=sweep["threshold"], y=sweep[metric], mode="lines", name=metric.replace("_", " ")))
    fig.add_vline(x=threshold, line=dict(color=_RED, width=2), annotation_text=f"threshold {threshold:.2f}")
    # room above 1 for the threshold's label: at 1.05 it sat on the curves of a label scored near 1
    # (cs.CV in the arXiv walk)
    return _layout(fig, axis, "score", yaxis=dict(range=[0, THRESHOLD_TOP], tickvals=[0, 0.2, 0.4, 0.6, 0.8, 1]))


# ------------------------------------------------------------------------------------ regression

def predicted_vs_true_chart(points: pd.DataFrame) -> go.Figure:
    low = float(min(points["true"].min(), points["predicted"].min()))
    high = float(max(points["true"].max(), points["predicted"].max()))
    fig = go.Figure(go.Scattergl(x=points["true"], y=points["predicted"], mode="markers", name="rows",
                                 marker=dict(size=5, opacity=0.45, color=_BLUE)))
    fig.add_trace(go.Scatter(x=[low, high], y=[low, high], mode="lines", line=_DIAGONAL, name="perfect"))
    return _layout(fig, "true value", "predicted value")


def residual_histogram(points: pd.DataFrame) -> go.Figure:
    fig = go.Figure(go.Histogram(x=points["residual"], nbinsx=50, marker_color=_BLUE, name="rows"))
    fig.add_vline(x=0, line=_DIAGONAL)
    return _layout(fig, "residual (true - predicted)", "rows", showlegend=False)


def residuals_vs_predicted_chart(points: pd.DataFrame) -> go.Figure:
    fig = go.Figure(go.Scattergl(x=points["predicted"], y=points["residual"], mode="markers",
                                 marker=dict(size=5, opacity=0.45, color=_BLUE), name="rows"))
    fig.add_hline(y=0, line=_DIAGONAL)
    return _layout(fig, "predicted value", "residual (true - predicted)", showlegend=False)


def error_by_decile_chart(table: pd.DataFrame) -> go.Figure:
    labels = [f"{d}: {lo:.4g}–{hi:.4g}" for d, lo, hi in zip(table["decile"], table["low"], table["high"])]
    fig = go.Figure([go.Bar(name="mean absolute error", x=labels, y=table["mae"], marker_color=_BLUE),
                     go.Bar(name="bias (mean of true - predicted)", x=labels, y=table["bias"], marker_color=_RED)])
    return _layout(fig, "tenth of the true target (range)", "error", barmode="group")


# ------------------------------------------------------------------------------------ explanations

def importance_axis(method: str, output: str) -> str:
    """What an importance bar measures, by the method that computed it: permutation importance is a
    drop in the metric, SHAP importance the mean absolute contribution in the model's output."""
    if method.startswith("permutation"):
        return output                     # e.g. "drop in rmse when the column is shuffled"
    return f"mean |SHAP value| ({output})"


def importance_chart(frame: pd.DataFrame, label: str, value: str = "importance", top: int = 20,
                     axis: str = "") -> go.Figure:
    """Horizontal bars, largest at the top; ``axis`` says what they measure (see ``importance_axis``)."""
    part = frame.head(top).iloc[::-1]
    fig = go.Figure(go.Bar(x=part[value], y=part[label].astype(str), orientation="h", marker_color=_BLUE,
                           hovertemplate="%{y}: %{x:.4g}<extra></extra>"))
    return _layout(fig, axis or value, "", showlegend=False, height=max(320, 26 * len(part) + 90))


def _colour_values(column: pd.Series) -> np.ndarray:
    """0..1 per row for the beeswarm's colour: rank of a numeric value, level order of a category."""
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().mean() > 0.5:
        ranked = numeric.rank(pct=True)
        return ranked.fillna(0.5).to_numpy()
    codes = column.astype("category").cat.codes.to_numpy(float)
    return codes / max(codes.max(), 1)


def beeswarm_chart(values: np.ndarray, rows: pd.DataFrame, order: list[str], top: int = 12) -> go.Figure:
    """One row of dots per column (most important on top): each dot a sampled row, placed at its
    contribution and coloured by the column's value (low blue, high red)."""
    columns = list(rows.columns)
    shown = order[:top]
    rng = np.random.default_rng(0)
    fig = go.Figure()
    for rank, column in enumerate(reversed(shown)):
        j = columns.index(column)
        jitter = rng.uniform(-0.3, 0.3, len(rows))
        fig.add_trace(go.Scattergl(
            x=values[:, j], y=rank + jitter, mode="markers", name=column, showlegend=False,
            marker=dict(size=4, opacity=0.6, color=_colour_values(rows[column]), colorscale="RdBu_r", cmin=0, cmax=1,
                        showscale=rank == 0, colorbar=dict(title="value", tickvals=[0, 1], ticktext=["low", "high"], len=0.6)),
            text=rows[column].astype(str), hovertemplate=f"{column} = %{{text}}<br>contribution %{{x:.4g}}<extra></extra>"))
    fig.update_yaxes(tickvals=list(range(len(shown))), ticktext=list(reversed(shown)))
    fig.add_vline(x=0, line=_DIAGONAL)
    return _layout(fig, "contribution to the prediction", "", height=max(340, 30 * len(shown) + 100))


def dependence_chart(values: np.ndarray, rows: pd.DataFrame, column: str) -> go.Figure:
    """A column's value against its contribution, one dot per sampled row."""
    j = list(rows.columns).index(column)
    x = rows[column]
    numeric = pd.to_numeric(x, errors="coerce")
    if numeric.notna().mean() > 0.5:
        fig = go.Figure(go.Scattergl(x=numeric, y=values[:, j], mode="markers", marker=dict(size=5, opacity=0.5, color=_BLUE)))
    else:
        fig = go.Figure(go.Box(x=x.astype(str), y=values[:, j], boxpoints="all", jitter=0.4, pointpos=0,
                               marker=dict(size=3, opacity=0.5), line=dict(color=_BLUE)))
    fig.add_hline(y=0, line=_DIAGONAL)
    return _layout(fig, column, f"contribution of {column}", showlegend=False)


def _short(value: Any) -> str:
    """A raw value for a label: numbers to 4 significant digits, text cut at 24 characters."""
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    return f"{number:.4g}" if pd.notna(number) else str(value)[:24]


def waterfall_chart(contributions: np.ndarray, row: pd.Series, base: float, columns: list[str],
                    output: str, top: int = 10) -> go.Figure:
    """From the average prediction to this row's: the largest contributions, the rest pooled."""
    order = np.argsort(-np.abs(contributions))
    shown, rest = order[:top], order[top:]
    labels = [f"{columns[j]} = {_short(row[columns[j]])}" for j in shown]
    steps = [float(contributions[j]) for j in shown]
    if len(rest):
        labels.append(f"{len(rest)} other columns")
        steps.append(float(contributions[rest].sum()))
    total = base + float(contributions.sum())
    fig = go.Figure(go.Waterfall(
        orientation="h", y=["average prediction", *labels, "this row"], x=[base, *steps, total],
        measure=["absolute", *["relative"] * len(steps), "total"],
        increasing=dict(marker=dict(color=_RED)), decreasing=dict(marker=dict(color=_BLUE)),
        totals=dict(marker=dict(color=_GREY)), text=[f"{base:.4g}", *[f"{s:+.3g}" for s in steps], f"{total:.4g}"],
        textposition="outside"))
    fig.update_yaxes(autorange="reversed")
    # Room for the labels outside the bars: plotly clips them at the plot's edge otherwise.
    running = base + np.cumsum([0.0, *steps])
    low, high = min(0.0, base, float(running.min())), max(0.0, base, float(running.max()))
    pad = 0.3 * (high - low or 1.0)
    fig.update_xaxes(range=[low - (pad if low < 0 else 0), high + (pad if high > 0 else 0)])
    return _layout(fig, output, "", showlegend=False, height=max(340, 30 * (len(labels) + 2) + 100))
