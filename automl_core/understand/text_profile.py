"""Text columns, understood: a profile of one column (lengths, vocabulary, empty and duplicate texts,
frequent words), the words and n-grams a TF-IDF linear model weighs most for each class, and the
validation texts a model got wrong. Plain numbers and tables; the studio draws them.

Nothing here trains: the profile reads the texts, the terms read a fitted model's coefficients,
the misclassified table reads stored out-of-fold predictions.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

#: The word pattern of scikit-learn's TfidfVectorizer (2+ word characters), so the profile counts the
#: words the text models see.
_WORD = re.compile(r"(?u)\b\w\w+\b")
#: At most this many texts are read for the profile (an even sample beyond it); counts are scaled.
PROFILE_ROWS = 20_000


@dataclass(frozen=True)
class TextProfile:
    """One text column at a glance.

    ``lengths``: words per non-empty text (of the sample); ``top_words``: (word, count) without
    English stop words; ``vocabulary``: distinct words (lower-cased); ``sampled``: texts read.
    """

    column: str
    n_texts: int
    n_empty: int
    n_duplicates: int
    vocabulary: int
    lengths: np.ndarray
    top_words: list[tuple[str, int]]
    sampled: int

    @property
    def median_words(self) -> float:
        return float(np.median(self.lengths)) if len(self.lengths) else 0.0


def profile_text(values: pd.Series, *, top: int = 20, max_rows: int = PROFILE_ROWS) -> TextProfile:
    """Profile one text column.

    Args:
        values: the column (any dtype; missing values and whitespace-only texts count as empty).
        top: how many frequent words to keep.
        max_rows: texts read at most (an evenly spaced sample beyond it) for lengths and words.

    Returns:
        A :class:`TextProfile`. Empty and duplicate counts are over every row.
    """
    texts = values.astype("string").fillna("").str.strip()
    empty = texts == ""
    filled = texts[~empty]
    duplicates = int(filled.duplicated().sum())
    sample = filled if len(filled) <= max_rows else filled.iloc[np.linspace(0, len(filled) - 1, max_rows).astype(int)]
    counts: Counter[str] = Counter()
    lengths = np.empty(len(sample), dtype=int)
    for i, text in enumerate(sample):
        words = _WORD.findall(str(text).lower())
        lengths[i] = len(words)
        counts.update(words)
    frequent = [(w, n) for w, n in counts.most_common() if w not in ENGLISH_STOP_WORDS and not w.isdigit()][:top]
    return TextProfile(str(values.name), len(texts), int(empty.sum()), duplicates, len(counts), lengths,
                       frequent, len(sample))


def length_histogram(lengths: np.ndarray, bins: int = 20) -> pd.DataFrame:
    """Texts per length bin: columns ``words`` (the bin, e.g. "10-14") and ``texts``."""
    if not len(lengths):
        return pd.DataFrame({"words": [], "texts": []})
    top = int(np.percentile(lengths, 99)) + 1  # one 1 MB text would squeeze every other bar into one
    width = max(1, int(np.ceil(top / bins)))
    edges = np.arange(0, top + width, width)
    clipped = np.minimum(lengths, edges[-1] - 1)
    counts, _ = np.histogram(clipped, bins=edges)
    labels = [f"{a}-{b - 1}" if b - 1 > a else str(a) for a, b in zip(edges[:-1], edges[1:])]
    if lengths.max() >= edges[-1]:
        labels[-1] = f"{edges[-2]}+"
    return pd.DataFrame({"words": labels, "texts": counts})


# ------------------------------------------------------------------------------------ class terms

def _vectorizers(model: Any) -> list[tuple[str, Any, int]]:
    """(column, fitted TF-IDF vectorizer, offset of its first feature in the head's input) per analyzer."""
    features = model.steps[0][1] if hasattr(model, "steps") and len(model.steps) > 1 else None
    slices = getattr(features, "output_indices_", None)
    if features is None or slices is None:
        return []
    found = []
    for name, transformer, columns in features.transformers_:
        if name not in slices or not hasattr(transformer, "steps"):
            continue
        union = transformer.steps[-1][1]
        parts = getattr(union, "transformer_list", None) or [(name, union)]
        offset = slices[name].start
        for _, vec in parts:
            if not hasattr(vec, "vocabulary_"):
                break
            found.append((str(columns[0]) if len(columns) else name, vec, offset))
            offset += len(vec.vocabulary_)
    return found


def _coefficients(head: Any) -> np.ndarray | None:
    """The head's weights per class (K or 1 rows): logistic regression's, or a calibrated linear
    SVM's averaged over its calibration folds. None for heads without linear weights."""
    if hasattr(head, "coef_"):
        return np.atleast_2d(np.asarray(head.coef_, dtype=float))
    inner = [getattr(c, "estimator", None) for c in getattr(head, "calibrated_classifiers_", [])]
    if inner and all(hasattr(e, "coef_") for e in inner):
        return np.mean([np.atleast_2d(e.coef_) for e in inner], axis=0)
    return None


def class_terms(model: Any, top: int = 10) -> pd.DataFrame | None:
    """The words and n-grams that push each class up and down in a TF-IDF + linear model.

    Args:
        model: a saved pipeline (featurizer, then a linear head).
        top: terms per class and direction.

    Returns:
        Columns ``class``, ``direction`` ("up"/"down"), ``term``, ``column``, ``weight``; a binary model
        lists its second class (the weights are for it; the first class mirrors them). None when the
        model has no TF-IDF block or its head no linear weights (trees, ensembles, embeddings).
    """
    vectorizers = _vectorizers(model)
    coef = _coefficients(model.steps[-1][1]) if vectorizers else None
    if coef is None:
        return None
    classes = list(getattr(model, "classes_", range(coef.shape[0])))
    names = classes[1:] if coef.shape[0] == 1 and len(classes) == 2 else classes
    rows = []
    for k, label in enumerate(names):
        for column, vec, offset in vectorizers:
            terms = vec.get_feature_names_out()
            w = coef[k, offset:offset + len(terms)]
            for direction, picks in (("up", np.argsort(-w)[:top]), ("down", np.argsort(w)[:top])):
                rows += [{"class": label, "direction": direction, "term": str(terms[i]), "column": column,
                          "weight": float(w[i])} for i in picks if (w[i] > 0) == (direction == "up") and w[i] != 0]
    if not rows:
        return None
    table = pd.DataFrame(rows)
    table["order"] = np.where(table["direction"] == "up", -table["weight"], table["weight"])
    table["down"] = table["direction"] == "down"  # "up" first
    return (table.sort_values(["class", "down", "order"], kind="stable").groupby(["class", "direction"], sort=False)
            .head(top).drop(columns=["order", "down"]).reset_index(drop=True))


# ------------------------------------------------------------------------------------ errors

def misclassified(proba: np.ndarray, y_codes: np.ndarray, rows: np.ndarray, classes: list[Any],
                  table: pd.DataFrame, text_columns: list[str], limit: int = 100) -> pd.DataFrame:
    """Validation rows a model got wrong, most confident mistakes first.

    Args:
        proba: (n, K) out-of-fold probabilities ordered like ``classes``.
        y_codes: true class indexes; ``rows``: each prediction's row in ``table``.
        table: the training table the predictions refer to; ``text_columns``: the columns to show.
        limit: rows kept.

    Returns:
        Columns: the text columns, ``true``, ``predicted``, ``probability`` (of the predicted class),
        ``probability_true`` (of the true class), ``row``.
    """
    predicted = proba.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y_codes)
    confidence = proba[wrong, predicted[wrong]]
    wrong = wrong[np.argsort(-confidence, kind="stable")][:limit]
    names = np.asarray([str(c) for c in classes], dtype=object)
    out = table.iloc[rows[wrong]][text_columns].astype("string").reset_index(drop=True)
    out["true"] = names[y_codes[wrong]]
    out["predicted"] = names[predicted[wrong]]
    out["probability"] = proba[wrong, predicted[wrong]].round(4)
    out["probability_true"] = proba[wrong, y_codes[wrong]].round(4)
    out["row"] = rows[wrong]
    return out


def text_columns_of(card: dict[str, Any]) -> list[str]:
    """The columns a saved model reads as text (from its card's feature list)."""
    return [str(f["name"]) for f in card.get("features") or [] if f.get("role") == "text"]
