"""Step 6 -- Predict: pick a saved model, check new data against it, score it, download; ONNX and training code."""
from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd
import streamlit as st

from automl_core.export.drift_checks import check_input
from automl_core.understand.contributions import supported
from automl_core.errors import AutoMLInputError
from automl_core.export.predict import predict_frame, safe_csv, version_warnings
from automl_core.io.reader import read_table
from studio import forecast_view, image_view, live, text_view
from studio.datasets import UPLOAD_TYPES
from studio.downloads import artifact_paths
from studio.nav import step_header
from studio.safe import md, show_error
from studio.scoring import (cached_model, choose_experiment, predictions_first, score_with_progress, show_report,
                            with_row_flags)
from studio.state import EMPTY_CELL, friendly, get_store
from studio.use_model import code_section, image_onnx_section, onnx_section
from studio.wording import metric_help, metric_label, number

_RESULT = "predict_result"  # (key of what was scored, predictions frame)
_INPUT = "predict_input"    # ((upload key, model sha256), frame, check report)


def _model_summary(exp: dict[str, Any], card: dict[str, Any]) -> None:
    # Short values: a tile cuts what does not fit ("Ensemble (Car…"); the full words are in the help.
    c1, c2, c3 = st.columns(3)
    family = live.family_label(card.get("best_model") or exp.get("best_model") or "—", card.get("task"))
    trial = card.get("best_trial_id")
    c1.metric("Model", (f"#{trial} " if trial is not None else "") + live.short_label(family), help=family)
    c2.metric(f"Predicts ({card.get('task')})", str(card.get("target")))  # a metric value is plain text
    score = (card.get("validation") or {}).get("score")
    c3.metric(f"Validation {metric_label(card.get('metric'))}", number(score), help=metric_help(card.get("metric")))
    for line in version_warnings(card):
        st.warning(md(line), icon=":material/warning:")


def _scored(model: Any, card: dict[str, Any], df: pd.DataFrame, upload_key: str, top_k: int) -> pd.DataFrame:
    """Predictions for this upload, computed once (reruns reuse them)."""
    key = (upload_key, card.get("model_sha256"), top_k)
    kept = st.session_state.get(_RESULT)
    if kept is None or kept[0] != key:
        kept = (key, pd.concat([df, score_with_progress(model, card, df, top_k)], axis=1))
        st.session_state[_RESULT] = kept
    return kept[1]


def _predict(model: Any, card: dict[str, Any]) -> None:
    upload = st.file_uploader("Table to score (the training columns, in any order; the target may be absent)",
                              type=UPLOAD_TYPES, key="predict_upload")
    can_explain, why = supported(model)
    top_k = 3 if st.checkbox("Add the 3 columns contributing most to each row's prediction", key="predict_contrib",
                             disabled=not can_explain, help=why or "Exact per-row SHAP values (slower than scoring).") else 0
    if upload is None:
        st.caption("Upload a table to see the check of its columns against the model, then its predictions.")
        return
    data = upload.getvalue()
    upload_key = f"{upload.name}:{hashlib.sha256(data).hexdigest()}"
    kept = st.session_state.get(_INPUT)
    if kept is None or kept[0] != (upload_key, card.get("model_sha256")):  # read and check once per file
        df = read_table(data, name=upload.name)
        kept = ((upload_key, card.get("model_sha256")), df, check_input(df, model, card))
        st.session_state[_INPUT] = kept
    _, df, report = kept
    st.markdown("**Check before scoring**")
    show_report(report)
    if not report.ok:
        return
    scored = _scored(model, card, df, upload_key, top_k)
    st.markdown(f"**Predictions** — {len(scored):,} rows" + (", first 100 shown" if len(scored) > 100 else ""))
    scored = predictions_first(scored, df.columns)  # shown and downloaded in the same order
    scored = with_row_flags(scored, report, df.columns)
    st.dataframe(scored.head(100), placeholder=EMPTY_CELL, height=260, hide_index=True)
    if top_k:
        towards = scored.get("contribution_towards")
        st.caption("Contributions are in the model's raw units (log-odds for classification"
                   + (f", towards '{towards.iloc[0]}'" if towards is not None and card.get("task") == "binary" else "")
                   + "); positive values push the prediction up.")
    st.download_button("Download predictions (CSV)", lambda: safe_csv(scored).to_csv(index=False).encode(),
                       file_name=f"predictions-{upload.name.rsplit('.', 1)[0]}.csv", mime="text/csv",
                       key="download_predictions", type="primary", icon=":material/download:", on_click="ignore")


def main() -> None:
    step_header("Predict")
    experiment_id = choose_experiment("predict_experiment")
    if experiment_id is None:
        st.info("No saved model yet. Models appear here once an experiment completes or is stopped.",
                icon=":material/model_training:")
        st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
        return
    store = get_store()
    files = artifact_paths(store, experiment_id)
    if "model" not in files:
        st.info("No model file was saved for this experiment.", icon=":material/info:")
        return
    model, card = cached_model(experiment_id, files["model"])
    exp = store.get_experiment(experiment_id) or {}
    _model_summary(exp, card)
    if card.get("task") == "forecasting":  # the next horizon after the latest data, per series
        forecast_view.forecast_predict(files["model"], lambda path, mtime: (model, card))
        st.caption("ONNX export and generated training code are for table models. A forecaster is a dict of "
                   "statsforecast / mlforecast objects (load model.joblib with joblib): its `usage` entry says how to "
                   "forecast with them by hand, or run `python -m automl_core predict --model model.joblib DATA`.")
        return
    if card.get("task") == "image_classification":  # images in, one prediction per image out
        tab_predict, tab_onnx = st.tabs(["Predict new images", "ONNX"])
        with tab_predict:
            try:
                image_view.image_predict(model, card)
            except AutoMLInputError as exc:
                show_error(exc)
            st.caption("Generated training code is for table models. An image model is a dict (load model.joblib "
                       "with joblib): its `usage` entry says how to score images by hand, or run "
                       "`python -m automl_core predict --model model.joblib IMAGES.zip --out p.csv`.")
        with tab_onnx:
            image_onnx_section(store, experiment_id, model, card)
        return
    if card.get("task") == "multilabel":  # a table in, a list of labels per row out
        try:
            _predict(model, card)
        except AutoMLInputError as exc:
            show_error(exc)
        st.caption("ONNX export and generated training code are not available for multi-label models yet. A "
                   "multi-label model is a dict (load model.joblib with joblib): its `usage` entry says how to score "
                   "by hand, or run `python -m automl_core predict --model model.joblib DATA --out p.csv`.")
        return
    tab_predict, tab_onnx, tab_code = st.tabs(["Predict new data", "ONNX", "Training code"])
    with tab_predict:
        try:
            text_view.text_predict_box(model, card, lambda frame: predict_frame(model, card, frame))
            _predict(model, card)
        except AutoMLInputError as exc:
            show_error(exc)
    with tab_onnx:
        onnx_section(store, experiment_id, model, card)
    with tab_code:
        code_section(model, card)


friendly(main)
