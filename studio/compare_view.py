"""The Results page's overlaid ROC and precision-recall curves of the models a person selected."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from automl_core.understand.predictions import load_predictions
from studio import compare
from studio import eval_charts as charts


def curves_of_selected(store: Any, experiment_id: str, exp: dict[str, Any], trials: pd.DataFrame,
                       picked: list[int]) -> None:
    """ROC and precision-recall curves of the selected models on one chart each (classification only).

    The validation predictions hold the best models of the search; a selected model without stored
    predictions is named, so a missing curve is not a mystery.
    """
    if exp.get("task") not in ("binary", "multiclass", "image_classification"):  # an image head classifies
        return
    p = load_predictions(store.artifact_dir(experiment_id), "validation")
    if p is None:
        return
    families = dict(zip(trials["trial_id"].astype(int), trials["family"]))
    names = {t: compare.model_name(t, families.get(t, "model")) for t in picked}
    card = exp.get("summary") or {}
    classes = [str(c) for c in p.classes or []]
    pos = classes.index(str(card["positive_class"])) if str(card.get("positive_class")) in classes else 1
    roc = compare.overlaid_curves(p, picked, names, "roc", pos)
    if not roc:
        st.caption("The selected models have no stored validation predictions, so no curves to overlay.")
        return
    which = "the positive class" if len(classes) == 2 else "micro average over classes"
    st.markdown(f"**ROC and precision-recall of the selected models** (validation, {which})")
    left, right = st.columns(2, gap="medium")
    left.plotly_chart(charts.roc_chart(roc), width="stretch", key="compare_roc")
    right.plotly_chart(charts.pr_chart(compare.overlaid_curves(p, picked, names, "pr", pos)), width="stretch",
                       key="compare_pr")
    missing = [names[t] for t in picked if t not in p.models]
    if missing:
        st.caption("No stored predictions for " + ", ".join(missing) + " (only the search's best models keep them).")
