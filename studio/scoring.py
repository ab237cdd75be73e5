"""UI helpers for using a saved model: cached loading, the check report, the drift chart, scoring with a progress bar."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from automl_core.export.drift_checks import CheckReport
from studio.safe import md, show_error
from automl_core.export.predict import BATCH_ROWS, predict_frame


@st.cache_resource(show_spinner=False, max_entries=4)
def _load(store_path: str, experiment_id: str, path: str, mtime: float, size: int) -> tuple[Any, dict[str, Any]]:
    from studio.downloads import verified_model
    from studio.state import get_store

    return verified_model(get_store(), experiment_id)


def cached_model(experiment_id: str, path: Path) -> tuple[Any, dict[str, Any]]:
    """The experiment's model and card, checked against the store's sha256 before unpickling
    (studio.downloads.verified_model) and loaded once per file version (a re-saved file reloads)."""
    from storage import resolve_store_path

    stat = path.stat()
    return _load(str(resolve_store_path()), experiment_id, str(path), stat.st_mtime, stat.st_size)


def drift_chart(report: CheckReport) -> go.Figure:
    """PSI per column as bars, the flagging threshold as a dashed line."""
    cols = [c for c in report.columns if c.psi is not None]
    cols.sort(key=lambda c: -c.psi)
    fig = go.Figure(go.Bar(x=[c.column for c in cols], y=[c.psi for c in cols],
                           marker_color=["#c0392b" if c.drifted else "#1f3b73" for c in cols],
                           hovertemplate="%{x}: PSI %{y:.3f}<extra></extra>"))
    fig.add_hline(y=report.drift_threshold, line_dash="dash", line_color="#c0392b",
                  annotation_text=f"drift above {report.drift_threshold:g}", annotation_position="top right")
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=30, b=10), template="plotly_white",
                      yaxis_title="PSI vs training", xaxis_title=None)
    return fig


def show_report(report: CheckReport) -> None:
    """The check report: an error for missing columns, counts per kind of finding, per-column table and drift."""
    if not report.ok:
        show_error(report.error())
    c1, c2, c3, c4, c5 = st.columns(5)
    c1.metric("Rows", f"{report.n_rows:,}")
    c2.metric("Extra columns", len(report.extra_columns), help="ignored: " + (", ".join(report.extra_columns) or "none"))
    c3.metric("Type changes", len(report.type_changes))
    c4.metric("Unseen categories", sum(c.n_unseen for c in report.unseen), help="rows, all columns; encoded as unknown")
    c5.metric("Columns drifted", len(report.drifted), help=f"PSI above {report.drift_threshold:g}")
    if report.extra_columns:
        st.caption("Ignored (the model does not use them): " + md(", ".join(map(str, report.extra_columns))))
    if report.unused_absent:
        st.caption("Absent but not needed (the model drops them): " + md(", ".join(map(str, report.unused_absent))))
    if report.drift_note:
        st.caption(md(report.drift_note))
    if report.columns:
        with st.expander("Check per column", expanded=bool(report.type_changes or report.unseen or report.drifted)):
            from studio.state import EMPTY_CELL  # lazy like get_store above

            # the notes say what is wrong: the widest column, not cut after "text in training, te…"
            st.dataframe(report.table(), placeholder=EMPTY_CELL, hide_index=True, width="stretch",
                         column_config={"notes": st.column_config.TextColumn("notes", width="large")})
            if any(c.psi is not None for c in report.columns):
                st.plotly_chart(drift_chart(report), width="stretch", key="drift_chart")


def predictions_first(scored: pd.DataFrame, input_columns: Any) -> pd.DataFrame:
    """The scored table with the prediction columns first, then the uploaded ones: the page shows it so,
    and the downloaded CSV must not put ``prediction`` last."""
    inputs = [c for c in input_columns if c in scored.columns]
    return scored[[c for c in scored.columns if c not in set(inputs)] + inputs]


def with_row_flags(scored: pd.DataFrame, report: CheckReport, input_columns: Any) -> pd.DataFrame:
    """``scored`` (predictions first) with the check's per-row flags right after the prediction columns,
    before the uploaded ones, when any row has one: what in the row is not a number / date and was read as
    missing. Such a row is predicted, often confidently, as if the value were missing, and the per-column
    count alone does not say which row it is. ``prediction`` stays the first column (downloads keep it so)."""
    flags = report.row_flags()
    if len(flags) != len(scored) or not flags.str.len().any():
        return scored
    at = sum(c not in set(input_columns) for c in scored.columns)
    out = scored.copy()
    out.insert(at, flags.name, flags.to_numpy())
    return out


def score_with_progress(model: Any, card: dict[str, Any], df: pd.DataFrame, top_k: int) -> pd.DataFrame:
    """Predictions for ``df`` in batches, with a progress bar while it runs."""
    bar = st.progress(0.0, text=f"Scoring {len(df):,} rows…") if len(df) > BATCH_ROWS or top_k else None

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.progress(done / max(total, 1), text=f"Scored {done:,} of {total:,} rows")

    out = predict_frame(model, card, df, progress=progress, top_k=top_k)
    if bar is not None:
        bar.empty()
    return out


def choose_experiment(key: str) -> str | None:
    """A selectbox of the finished experiments (newest first), defaulting to ?experiment= or the wizard's.

    Returns the chosen id (also put in the query string, so a reload keeps it), or None if none finished.
    """
    from studio import live
    from studio.state import get_store, wizard

    history = get_store().list_experiments()
    done = history[history["status"].isin(("completed", "stopped"))]
    if done.empty:
        return None
    ids = list(done["experiment_id"])
    wanted = st.query_params.get("experiment") or wizard().get("experiment_id")
    if key not in st.session_state or st.session_state[key] not in ids:
        st.session_state[key] = wanted if wanted in ids else ids[0]
    names = {r.experiment_id: f"{r.name} · {live.family_label(r.best_model or '', r.task)} · {r.created_at:%Y-%m-%d %H:%M}"
             for r in done.itertuples()}
    # on_change, not after the call: the step bar above, whose links carry the choice to the next
    # step (Results -> Predict), is drawn before this line runs again.
    chosen = st.selectbox("Experiment", ids, format_func=names.get, key=key,
                          on_change=lambda: wizard().update(experiment_id=st.session_state[key]))
    st.query_params["experiment"] = chosen
    wizard()["experiment_id"] = chosen
    return chosen
