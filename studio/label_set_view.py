"""The Results page's sections for a multi-label run, all out of fold (``understand.label_sets``):

- scores per label at the saved thresholds, and a threshold explorer for one label (what moving its threshold
  would do to its precision, recall and F1);
- the validation rows whose predicted label set differs from the true one, worst first: texts as a table with an
  excerpt of each text; images as a thumbnail gallery (image_view's) above the same table.

Containers (stable, for tests): ``label_scores``, ``label_threshold_explorer``, ``label_set_mistakes``; tables
``label_score_table``, ``label_set_table``; widgets ``threshold_label`` (selectbox), ``label_threshold`` (slider).
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from automl_core.understand.label_sets import (LabelSets, label_set_mistakes, load_label_sets, n_wrong_sets,
                                              per_label_scores, threshold_curve)
from studio import eval_charts, image_view
from studio.safe import md
from studio.state import EMPTY_CELL

EXCERPT = 300  # characters of each text shown beside its labels


def is_label_set_run(exp: dict[str, Any]) -> bool:
    """A multi-label run (texts, tables or images): it keeps label sets, scored per label, not the one-target
    predictions the Evaluation charts and the explanations read."""
    return exp.get("task") == "multilabel" or image_view.is_multilabel_images(exp)


def label_set_results(store: Any, experiment_id: str, exp: dict[str, Any]) -> None:
    """Scores per label, the threshold explorer and the wrong label sets of a multi-label run (texts, tables or
    images); nothing for other runs."""
    if not is_label_set_run(exp):
        return
    images = image_view.is_multilabel_images(exp)
    sets = load_label_sets(store.artifact_dir(experiment_id))
    if sets is not None:
        _label_scores(sets)
    st.subheader("Wrong label sets")
    with st.container(key="label_set_mistakes"):
        if sets is None:
            st.caption("Not available: this run stored no out-of-fold label sets (runs made before they were kept "
                       "did not; training it again does).")
            return
        wrong = label_set_mistakes(sets)
        if wrong.empty:
            st.success("None: every validation row got exactly its labels.", icon=":material/check_circle:")
            return
        if images:
            _image_mistakes(store, exp, wrong)
        else:
            wrong = _with_texts(experiment_id, exp, wrong)
        _table(wrong)
        st.caption(f"{n_wrong_sets(sets):,} of {len(sets.rows):,} validation rows with a wrong label set"
                   f"{f', the worst {len(wrong)} shown' if len(wrong) < n_wrong_sets(sets) else ''}: out-of-fold "
                   f"probabilities of trial #{sets.trial_id} (each row scored by a model that did not train on it) "
                   "at the saved model's per-label thresholds. Most labels wrong first, then the furthest past "
                   f"the thresholds. {_thresholds(sets)}")


def _with_texts(experiment_id: str, exp: dict[str, Any], wrong: pd.DataFrame) -> pd.DataFrame:
    """``wrong`` with an excerpt of each row's text columns in front, when the training table is at hand."""
    from automl_core.understand.text_profile import text_columns_of
    from studio.text_view import training_table
    card = exp.get("summary") or {}
    columns = text_columns_of(card)
    if not columns:
        return wrong
    table, why = training_table(experiment_id, exp, card)
    if table is None:
        st.caption(f"The texts are not shown: {md(why)}. Row numbers count the training table's rows from 0.")
        return wrong
    wrong = wrong[wrong["row"] < len(table)]  # rows of a separate validation file follow the training rows
    texts = table.iloc[wrong["row"].to_numpy()][columns].astype("string").reset_index(drop=True)
    for c in columns:
        texts[c] = texts[c].str.slice(0, EXCERPT)
    return pd.concat([texts, wrong.reset_index(drop=True)], axis=1)


def _image_mistakes(store: Any, exp: dict[str, Any], wrong: pd.DataFrame) -> None:
    """The worst rows as thumbnails (true labels, then the missed and the extra ones); adds ``image`` in front."""
    images = image_view.experiment_images(store, exp)
    if images is None:
        st.caption("The thumbnails are not shown: the images of this run are not in the store (a run started from "
                   "the command line keeps no copy of them; one started in the studio does).")
        return
    wrong.insert(0, "image", [images.names[r] if r < len(images.names) else "" for r in wrong["row"]])
    by_name = dict(zip(images.names, images.contents))
    shown = wrong[wrong["image"] != ""].head(image_view.GALLERY)
    image_view.gallery([(by_name[r.image], f"true **{md(r.true) or '(none)'}**  \n"
                         + (f":red[missed {md(r.missed)}]  \n" if r.missed else "")
                         + (f":red[extra {md(r.extra)}]  \n" if r.extra else "")
                         + f":gray[{md(r.image.rsplit('/', 1)[-1][:16])}]") for r in shown.itertuples()])


_LABEL_COLUMNS = ("image", "row", "true", "predicted", "missed", "extra", "n_wrong", "margin")


def mistakes_column_order(columns: Any) -> list[str]:
    """The wrong-label-set table's columns as shown: the label columns first, the texts after. With two long
    text columns in front (arXiv titles and summaries, walked in Chromium) the true / missed / extra labels
    were scrolled out of sight."""
    return [c for c in _LABEL_COLUMNS if c in columns] + [c for c in columns if c not in _LABEL_COLUMNS]


def _table(wrong: pd.DataFrame) -> None:
    text = [c for c in wrong.columns if c not in _LABEL_COLUMNS]
    st.dataframe(wrong, hide_index=True, placeholder=EMPTY_CELL, key="label_set_table", height=300,
                 column_order=mistakes_column_order(list(wrong.columns)),
                 column_config={**{c: st.column_config.TextColumn(c, width="large") for c in text},
                                "missed": st.column_config.TextColumn(
                                    "missed", help="True labels left out, with their probabilities"),
                                "extra": st.column_config.TextColumn(
                                    "extra", help="Labels predicted but not true, with their probabilities"),
                                "n_wrong": st.column_config.NumberColumn("labels wrong"),
                                "margin": st.column_config.NumberColumn(
                                    "margin", format="%.2f",
                                    help="How far the wrong labels' probabilities sit past their thresholds "
                                         "(mean): larger is a more confident mistake")})


def _thresholds(sets: LabelSets) -> str:
    values = sorted(set(round(float(t), 2) for t in sets.thresholds))
    if len(values) == 1:
        return f"Threshold {values[0]:g} for every label."
    return f"Thresholds per label, {values[0]:g} to {values[-1]:g}."


def _label_scores(sets: LabelSets) -> None:
    """Precision, recall and F1 of every label at its saved threshold, then one label's threshold explorer."""
    st.subheader("Scores per label")
    scores = per_label_scores(sets)
    with st.container(key="label_scores"):
        st.plotly_chart(eval_charts.per_class_chart(scores.rename(columns={"label": "class"}).head(30)),
                        width="stretch", key="chart_per_label")
        st.dataframe(scores, hide_index=True, placeholder=EMPTY_CELL, key="label_score_table",
                     height=min(38 + 35 * len(scores), 300),
                     column_config={c: st.column_config.NumberColumn(c.replace("_", " "), format="%.3f")
                                    for c in ("precision", "recall", "f1", "average_precision", "threshold")})
        st.caption(f"Out of fold on {len(sets.rows):,} validation rows (trial #{sets.trial_id}), each label called "
                   "yes at or above its saved threshold; average precision does not depend on the threshold."
                   + (" The chart shows the 30 most frequent labels." if len(scores) > 30 else ""))
    st.markdown("**Threshold explorer** — what moving one label's threshold would do")
    with st.container(key="label_threshold_explorer"):
        left, right = st.columns([1, 2], gap="medium")
        label = left.selectbox("Label", list(scores["label"]), key="threshold_label")
        saved = float(scores.loc[scores["label"] == label, "threshold"].iloc[0])
        chosen = left.slider("Threshold", 0.01, 0.99, value=round(min(max(saved, 0.01), 0.99), 2), step=0.01,
                             key="label_threshold")
        sweep = threshold_curve(sets, label)
        at = sweep.iloc[(sweep["threshold"] - chosen).abs().argmin()]
        here = scores.loc[scores["label"] == label].iloc[0]
        for name in ("precision", "recall", "f1"):
            left.metric(name.capitalize() if name != "f1" else "F1", f"{at[name]:.3f}",
                        delta=f"{at[name] - here[name]:+.3f} against the saved {saved:.2f}" if chosen != round(saved, 2)
                        else None)
        left.caption(f"{int(at['predicted']):,} of {len(sets.rows):,} rows called **{md(label)}** at {chosen:.2f} "
                     f"({int(here['rows']):,} carry it). The saved model keeps its thresholds: to use another, "
                     "change its entry in model.joblib's `thresholds` (in the order of `labels`).")
        right.plotly_chart(eval_charts.threshold_chart(sweep, chosen, axis=f"threshold on the probability of {label}"),
                           width="stretch", key="chart_label_threshold")

