"""A multi-label run's out-of-fold label sets (understand.label_sets): written and read back as they were, and
the wrong sets ordered worst first (most labels wrong, then the furthest past the thresholds)."""
from __future__ import annotations

import numpy as np

from automl_core.understand.label_sets import (LabelSets, label_set_mistakes, load_label_sets, n_wrong_sets,
                                               per_label_scores, save_label_sets, threshold_curve)


def _sets() -> LabelSets:
    Y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=np.int8)
    proba = np.array([[0.9, 0.1, 0.8],    # right
                      [0.6, 0.2, 0.1],    # 2 wrong: extra a (0.6), missed b (0.2)
                      [0.95, 0.3, 0.9],   # 2 wrong, further past: missed b (0.3 vs 0.4), extra c (0.9)
                      [0.1, 0.1, 0.45]])  # 1 wrong: missed c (0.45 vs 0.5)
    return LabelSets(["a", "b", "c"], np.array([7, 3, 5, 0]), Y, proba, np.array([0.5, 0.4, 0.5]), trial_id=4)


def test_label_sets_round_trip_through_parquet(tmp_path) -> None:
    sets = _sets()
    back = load_label_sets(save_label_sets(sets, tmp_path).parent)
    assert back.labels == sets.labels and back.trial_id == 4
    np.testing.assert_array_equal(back.Y, sets.Y)
    np.testing.assert_array_equal(back.rows, sets.rows)
    np.testing.assert_allclose(back.proba, sets.proba)
    np.testing.assert_allclose(back.thresholds, sets.thresholds)
    assert load_label_sets(tmp_path / "absent") is None  # an old run: nothing kept, no error


def test_wrong_label_sets_come_worst_first_with_missed_and_extra_labels() -> None:
    wrong = label_set_mistakes(_sets())
    assert wrong["row"].tolist() == [5, 3, 0] and n_wrong_sets(_sets()) == 3
    first = wrong.iloc[0]
    assert (first["true"], first["predicted"]) == ("a, b", "a, c")
    assert (first["missed"], first["extra"], first["n_wrong"]) == ("b (0.30)", "c (0.90)", 2)
    assert wrong.iloc[1][["missed", "extra"]].tolist() == ["b (0.20)", "a (0.60)"]
    assert wrong.iloc[2][["true", "predicted", "extra"]].tolist() == ["c", "", ""]


def test_per_label_scores_at_the_saved_thresholds_and_what_moving_one_would_do() -> None:
    scores = per_label_scores(_sets()).set_index("label")
    assert scores["rows"].tolist() == [2, 2, 2] and scores["threshold"].tolist() == [0.5, 0.4, 0.5]
    np.testing.assert_allclose(scores.loc["a", ["precision", "recall", "f1"]].astype(float), [2 / 3, 1.0, 0.8])
    assert scores.loc["b", ["precision", "recall", "f1"]].tolist() == [0.0, 0.0, 0.0]  # never called yes at 0.4
    np.testing.assert_allclose(scores.loc["c", ["precision", "recall", "f1"]].astype(float), [0.5, 0.5, 0.5])
    assert scores.loc["a", "average_precision"] == 1.0  # its two true rows have its two highest probabilities
    curve = threshold_curve(_sets(), "c").set_index("threshold")
    assert curve.loc[0.45, "predicted"] == 3 and curve.loc[0.45, "recall"] == 1.0  # the missed 0.45 row comes in
    assert curve.loc[0.45, "precision"] == 2 / 3
    assert curve.loc[0.01, ["precision", "recall", "predicted"]].tolist() == [0.5, 1.0, 4]
    assert curve.loc[0.99, ["recall", "f1", "predicted"]].tolist() == [0.0, 0.0, 0]
