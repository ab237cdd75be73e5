"""The studio's text pieces (issue #22): a profile per text column on the Data page, the text rule on
the Task page, a box to type one text on the Predict page, and on Results the terms that push each
class up and down and the misclassified validation texts. The numbers are automl_core's
(``understand.text_profile``); texts are drawn in tables or escaped, never as HTML or Markdown.

Widget keys (stable, for tests): ``text_input`` (the Predict page's text area), ``text_profile_column``,
``text_terms_class``; containers ``text_profile``, ``text_predict``, ``text_results``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from automl_core.understand import text_profile as tp
from studio.safe import md
from studio.state import EMPTY_CELL

TEXT_RULE = ("a column is read as text when its values are strings, at least half of them distinct, and long "
             "(a mean of 3 words or more, or more than 30 characters)")


# ------------------------------------------------------------------------------------ Data page

@st.cache_data(show_spinner="Profiling the text…", max_entries=16)
def _profile(dataset_id: str, column: str, _values: pd.Series) -> tp.TextProfile:
    return tp.profile_text(_values)


def text_profile_section(dataset_id: str, df: pd.DataFrame, text_columns: list[str]) -> None:
    """Per text column: counts, the length distribution (words), the most frequent words."""
    with st.container(key="text_profile"):
        column = text_columns[0]
        if len(text_columns) > 1:
            column = st.selectbox("Text column", text_columns, key="text_profile_column")
        p = _profile(dataset_id, column, df[column])
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Texts", f"{p.n_texts:,}")
        c2.metric("Empty", f"{p.n_empty:,}", help="Missing or whitespace only; read as an empty text.")
        c3.metric("Duplicates", f"{p.n_duplicates:,}", help="Texts that repeat an earlier one exactly.")
        c4.metric("Vocabulary", f"{p.vocabulary:,}", help="Distinct words (lower-cased, 2+ letters).")
        left, right = st.columns([3, 2], gap="medium")
        with left:
            st.markdown(f"**Length of {md(column)}** (words per text, median {p.median_words:g})")
            st.bar_chart(tp.length_histogram(p.lengths), x="words", y="texts", height=260, sort=False)  # bins in order
        with right:
            st.markdown("**Most frequent words** (English stop words aside)")
            words = pd.DataFrame(p.top_words, columns=["word", "count"])
            st.dataframe(words, placeholder=EMPTY_CELL, hide_index=True, height=260, key="text_top_words")
        if p.sampled < p.n_texts - p.n_empty:
            st.caption(f"Lengths and words from an even sample of {p.sampled:,} texts.")
        st.caption("Texts are shown as typed: markup in them (HTML tags, Markdown) is text, never rendered.")


@st.cache_data(show_spinner="Counting the labels…", max_entries=16)
def _label_profile(dataset_id: str, column: str, _values: pd.Series) -> Any:
    from automl_core.prepare.multilabel import label_profile
    return label_profile(_values)


@st.cache_data(show_spinner=False, max_entries=16)
def list_columns(dataset_id: str, _df: pd.DataFrame) -> list[str]:
    """Columns whose every cell is a bracketed list of labels (a multi-label target, read as such on Task); once
    per dataset, not on every rerun of the Data page (a 10,000-column table would check each column each time)."""
    from automl_core.prepare.multilabel import looks_like_lists
    df = _df
    return [c for c in df.columns
            if (df[c].dtype == object or pd.api.types.is_string_dtype(df[c])) and looks_like_lists(df[c].head(2000))]


def label_lists_section(dataset_id: str, df: pd.DataFrame, columns: list[str]) -> None:
    """Per list-of-labels column: counts per label, labels per row, the most common pairs (issue #22)."""
    from automl_core.errors import AutoMLInputError
    with st.container(key="label_profile"):
        column = columns[0]
        if len(columns) > 1:
            column = st.selectbox("Label column", columns, key="label_profile_column")
        try:
            p = _label_profile(dataset_id, column, df[column])
        except AutoMLInputError as exc:
            st.warning(f"{md(exc.problem)}. Fix: {md(exc.fix)}.")
            return
        c1, c2, c3 = st.columns(3)
        c1.metric("Rows", f"{p.n_rows:,}")
        c2.metric("Labels", f"{len(p.counts):,}")
        c3.metric("Labels per row", f"{(p.per_row.iloc[:, 0] * p.per_row['rows']).sum() / max(p.n_rows, 1):.2f}",
                  help="On average; the chart shows how many rows carry 0, 1, 2, … labels.")
        left, right = st.columns([3, 2], gap="medium")
        with left:
            st.markdown(f"**Rows per label** in {md(column)} (30 most frequent)")
            st.bar_chart(p.counts.head(30), x="label", y="rows", height=260, sort=False)  # most first
            st.markdown("**Labels per row**")
            st.bar_chart(p.per_row, x="labels in the row", y="rows", height=200, sort=False)
        with right:
            st.markdown("**Most common together**")
            st.dataframe(p.pairs, placeholder=EMPTY_CELL, hide_index=True, height=260, key="label_pairs")
            st.dataframe(p.counts, placeholder=EMPTY_CELL, hide_index=True, height=200, key="label_counts",
                         column_config={"share": st.column_config.ProgressColumn("share", min_value=0.0,
                                                                                 max_value=1.0, format="percent")})
        rare = int((p.counts["rows"] < 5).sum())
        if rare:
            st.caption(f"{rare} label(s) appear in fewer than 5 rows: a multi-label run leaves them out (too few rows "
                       "to train and check one out of fold) and says which.")


def text_rule_note(columns: list[dict[str, Any]], roles: dict[str, str], excluded: list[str], target: str) -> None:
    """The Task page's line: which columns will be read as text, and why (the rule, and what fired)."""
    text = [c for c in columns if roles.get(c["name"], c["role"]) == "text" and c["name"] not in excluded
            and c["name"] != target]
    if not text:
        return
    lines = []
    for c in text:
        why = "set by you on the Data page" if roles.get(c["name"]) == "text" and c["role"] != "text" else c.get("reason")
        lines.append(f"- **{md(c['name'])}** — {md(why or 'detected as text')}")
    st.info(f"Read as text ({len(text)}): text models (TF-IDF and sentence embeddings) join the search.  \n"
            + "\n".join(lines) + f"  \n:gray[The rule: {md(TEXT_RULE)}. Change a column's role on the Data page.]",
            icon=":material/notes:")


# ------------------------------------------------------------------------------------ Predict page

def text_predict_box(model: Any, card: dict[str, Any], predict: Any) -> None:
    """A text area: type one text, see the class probabilities (other columns left missing).

    ``predict(frame) -> predictions frame`` (``export.predict.predict_frame`` bound to the model).
    """
    columns = tp.text_columns_of(card)
    if not columns or card.get("task") not in ("binary", "multiclass"):
        return
    inputs = [str(c) for c in card.get("input_columns") or []]
    others = [c for c in inputs if c not in columns]
    with st.container(key="text_predict", border=True):
        st.markdown(f"**Type a text** — read as {md(columns[0])}")
        text = st.text_area("Text to classify", key="text_input", height=120,
                            placeholder="Type or paste one text, then press Ctrl+Enter")
        notes = []
        if len(columns) > 1:
            notes.append(f"the other text columns ({md(', '.join(columns[1:]))}) are left empty")
        if others:
            notes.append(f"the other columns ({md(', '.join(others[:8]))}{'…' if len(others) > 8 else ''}) "
                         "are left missing, so the model fills them in as it does for any missing value")
        if notes:
            st.caption("For this box " + "; ".join(notes) + ". Upload a table below to give them values.")
        if not text.strip():
            st.caption("The class probabilities appear here as soon as you type a text.")
            return
        row = pd.DataFrame({c: [None] for c in inputs or columns}, dtype=object)
        row[columns] = ""
        row[columns[0]] = text
        out = predict(row)
        probs = {c[len("proba_"):]: float(out[c].iloc[0]) for c in out.columns if c.startswith("proba_")}
        st.markdown(f"Predicted: **{md(out['prediction'].iloc[0])}**")
        if probs:
            table = pd.DataFrame({"class": list(probs), "probability": list(probs.values())})
            st.dataframe(table.sort_values("probability", ascending=False), hide_index=True, key="text_probabilities",
                         column_config={"probability": st.column_config.ProgressColumn(
                             "probability", min_value=0.0, max_value=1.0, format="%.3f")})


# ------------------------------------------------------------------------------------ Results page

def _terms_section(model: Any) -> None:
    terms = tp.class_terms(model, top=15)
    st.markdown("**Words and n-grams that push each class up and down**")
    if terms is None:
        st.caption("The saved model has no TF-IDF + linear head to read (an ensemble, trees or embeddings); "
                   "the explanations above cover it.")
        return
    classes = list(dict.fromkeys(terms["class"]))
    label = classes[0]
    if len(classes) > 1:
        label = st.selectbox("Class", classes, key="text_terms_class", format_func=str)
    else:
        st.caption(f"Weights towards '{md(label)}'; a term that pushes it down pushes the other class up.")
    chosen = terms[terms["class"] == label]
    up, down = st.columns(2)
    for side, direction, title in ((up, "up", "Push up"), (down, "down", "Push down")):
        rows = chosen[chosen["direction"] == direction][["term", "column", "weight"]]
        side.markdown(f"{title} ({len(rows)})")
        side.dataframe(rows.round(3), hide_index=True, placeholder=EMPTY_CELL, key=f"text_terms_{direction}")
    st.caption("The logistic (or linear SVM) head's weights over the TF-IDF vocabulary: larger means a "
               "stronger push, for a term in a text of typical length.")


def _misclassified_section(p: Any, trial: int, table: pd.DataFrame | None, why: str, columns: list[str]) -> None:
    st.markdown("**Misclassified validation texts** (most confident mistakes first)")
    if p is None or trial not in p.models:
        st.caption("Not available: this run stored no out-of-fold predictions of its best model.")
        return
    if table is None:
        st.caption(f"Not available: {why}.")
        return
    rows = np.asarray(p.rows)
    keep = rows < len(table)  # rows of a separate validation file follow the training rows
    wrong = tp.misclassified(p.models[trial][keep], np.asarray(p.y_true)[keep], rows[keep], list(p.classes),
                             table, columns)
    if wrong.empty:
        st.caption("None: every validation text was classified right.")
        return
    st.dataframe(wrong, hide_index=True, placeholder=EMPTY_CELL, key="text_misclassified", height=300,
                 column_config={c: st.column_config.TextColumn(c, width="large") for c in columns})
    st.caption(f"{len(wrong)} shown; out-of-fold probabilities of trial #{trial} (each text scored by a model "
               "that did not train on it).")


@st.cache_data(show_spinner="Reading the training texts…", max_entries=4)
def _training_table(experiment_id: str, dataset_id: str, config: dict[str, Any], fingerprint: str) -> pd.DataFrame | None:
    """The training table the stored predictions refer to, rebuilt as the run built it (same settings,
    same seeded test split); None unless its fingerprint matches the model card's."""
    from automl_core.config import AutoMLConfig
    from automl_core.prepare.tables import prepare
    from studio.state import load_frame
    settings = {k: v for k, v in config.items() if k not in ("target", "studio")}
    try:
        prepared = prepare(load_frame(dataset_id), config["target"], AutoMLConfig.from_dict(settings))
    except Exception:  # a dataset or setting that changed since the run: the table is simply not shown
        return None
    return prepared.X if prepared.fingerprint == fingerprint else None


def training_table(experiment_id: str, exp: dict[str, Any], card: dict[str, Any]) -> tuple[pd.DataFrame | None, str]:
    """:func:`_training_table` for an experiment with text columns, or None and why it is not there."""
    config = exp.get("config") or {}
    if not exp.get("dataset_id") or "target" not in config:
        return None, ("its training table is not in the store (a run started from the CLI or the Python API "
                      "keeps no copy; one started in the studio does)")
    table = _training_table(experiment_id, str(exp["dataset_id"]), config, str(card.get("data_fingerprint")))
    return table, "" if table is not None else "the stored dataset no longer gives the table this run trained on"


def text_results_section(model: Any, card: dict[str, Any], predictions: Any, table: pd.DataFrame | None,
                         why: str = "") -> None:
    """Terms per class and misclassified validation texts, for a model with text columns."""
    columns = tp.text_columns_of(card)
    if not columns or card.get("task") not in ("binary", "multiclass"):
        return
    with st.container(key="text_results"):
        _terms_section(model)
        _misclassified_section(predictions, int(card.get("best_trial_id") or -1), table, why, columns)


def text_results(store: Any, experiment_id: str, exp: dict[str, Any]) -> None:
    """The Results page's text section for an experiment whose model reads text columns (else nothing)."""
    from automl_core.understand.predictions import load_predictions
    from studio.downloads import artifact_paths
    from studio.scoring import cached_model
    card = exp.get("summary") or {}
    if not tp.text_columns_of(card) or exp.get("task") not in ("binary", "multiclass"):
        return
    files = artifact_paths(store, experiment_id)
    if "model" not in files:
        return
    model, card = cached_model(experiment_id, files["model"])
    st.subheader("Text")
    predictions = load_predictions(store.artifact_dir(experiment_id), "validation")
    text_results_section(model, card, predictions, *training_table(experiment_id, exp, card))
