"""The pixel CNN family (issue #23): it trains on real digits, gives probabilities, stays inside its time,
pickles as public classes only (scikit-learn + skorch), and is offered for image tasks only."""
from __future__ import annotations

import csv
import pickle
import subprocess
import sys
import time

import numpy as np
import pytest

from automl_core.images import extract
from automl_core.models.families import FAMILIES, select_families
from automl_core.models.image_families import PixelCNN, pixel_shape
from shared_data import DATASETS, needs_data

MNIST = DATASETS / "images_mnist5k"


def _digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` mnist digits (a seeded sample across the classes) as 28 x 28 pixel rows, and their labels."""
    with open(MNIST / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    pick = np.random.default_rng(0).choice(len(rows), n, replace=False)
    contents = [(MNIST / rows[i]["image_path"]).read_bytes() for i in pick]
    X = extract.featurize(contents, {"pixel_size": 28, "pixel_mode": "L"}).to_numpy()
    return X, np.array([rows[i]["label"] for i in pick])


@needs_data
@pytest.mark.slow  # trains a CNN and starts a second Python: ~48 s under load
def test_pixel_cnn_learns_digits_pickles_public_and_keeps_its_time(tmp_path) -> None:
    X, y = _digits(400)
    train, test = slice(0, 300), slice(300, 400)
    model = PixelCNN(epochs=3, batch_size=32, seed=0).fit(X[train], y[train])
    proba = model.predict_proba(X[test])
    assert proba.shape == (100, len(model.classes_)) and np.allclose(proba.sum(axis=1), 1)
    assert model.epochs_run_ == 3
    assert (model.predict(X[test]) == y[test]).mean() >= 0.5  # 10 classes: chance is 0.1
    once, again = (PixelCNN(epochs=1, batch_size=32, seed=0).fit(X[:100], y[:100]) for _ in range(2))
    np.testing.assert_array_equal(again.predict_proba(X[test]), once.predict_proba(X[test]))  # seeded
    # with the CNN features after the pixels (the image task's wider table), the pixels are still found
    wide = np.hstack([X, np.zeros((len(X), extract.CNN_DIM))])
    assert pixel_shape(wide.shape[1]) == (1, 28, extract.CNN_DIM)
    assert PixelCNN(epochs=1).fit(wide[:100], y[:100]).predict_proba(wide[test]).shape == proba.shape
    # a time limit cuts the planned epochs after the first one
    start = time.perf_counter()
    capped = PixelCNN(epochs=200, batch_size=32, max_seconds=0.5).fit(X[:100], y[:100])
    assert capped.epochs_run_ < 200 and time.perf_counter() - start < 30
    # pickled, it is public classes only (a float32 cast, skorch around torch.nn.Sequential), same probabilities
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    np.save(tmp_path / "X.npy", X[test])
    script = ("import pickle, sys, numpy as np; m = pickle.load(open(sys.argv[1], 'rb')); "
              "p = m.predict_proba(np.load(sys.argv[2])); np.save(sys.argv[3], p); print(type(m).__module__); "
              "assert not [k for k in sys.modules if k.startswith(('automl_core', 'storage', 'studio'))]")
    done = subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "X.npy"), str(tmp_path / "p.npy")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "sklearn.pipeline"
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), proba, atol=1e-5)


def test_pixel_cnn_is_for_image_tasks_only() -> None:
    assert FAMILIES["pixel_cnn"].pixels
    assert "pixel_cnn" not in [f.name for f in select_families(None, (), 1000)]  # a table never gets it
    assert "pixel_cnn" in [f.name for f in select_families(("pixel_cnn", "linear"), (), 1000)]
    with pytest.raises(ValueError, match="not the pixels of a square image"):
        PixelCNN(epochs=1).fit(np.random.default_rng(0).random((20, 30)), np.arange(20) % 2)


@needs_data
@pytest.mark.slow  # a search of one CNN trial on 10 folds: ~30 s under a load average of 7 (2 cores)
def test_pixel_cnn_trial_records_its_epochs_and_the_final_form_follows_the_rule() -> None:
    """One pixel CNN trial (1 epoch, 300 digits, k folds): every fold's epochs are in the trial's record,
    the saved model is the refit or the bag as ``bag.decide`` says, and a refit trains the epochs the folds ran."""
    import math

    import pandas as pd

    from automl_core import AutoML
    from automl_core.models.families import single_member
    from automl_core.search.bag import decide
    X, y = _digits(300)
    table = pd.DataFrame(X, columns=[f"px_{i}" for i in range(X.shape[1])]).assign(label=y)
    automl = AutoML(task="multiclass", time_budget=None, max_trials=1, seed=0, ensembles=False, n_jobs=1,
                    allowed_models=("pixel_cnn",), featurization={c: "numeric" for c in table.columns[:-1]})
    automl._keep_fold_models = True  # to ask the rule again below
    from automl_core.models import image_families
    before = dict(image_families.DEFAULTS)
    image_families.DEFAULTS.update(epochs=1, batch_size=64)  # the warm start: one epoch, fast
    try:
        automl.fit(table, target="label")
    finally:
        image_families.DEFAULTS.update(before)
    trial = automl.search_.best
    plan = automl.validation_
    assert trial.family == "pixel_cnn" and trial.params["epochs"] == 1
    assert trial.params["epochs_run"] == [1] * plan.n_splits  # one per fold
    y_oof = automl._y_codes[np.concatenate([v for _, v in plan.splits])]
    rule, _ = decide("auto", automl._bagger, [trial.trial_id], None, 0.0, math.inf,
                     automl.search_.oof[trial.trial_id], y_oof)
    assert automl.final_.final == rule, (rule, automl.final_.note)
    if rule == "refit":
        cnn = single_member(automl.model_.named_steps["model"])
        assert cnn.epochs_run_ == trial.params["epochs"] and cnn.max_seconds is None



@needs_data
@pytest.mark.slow  # computes the pretrained CNN's features of 60 digits, then one small CNN trial
def test_pixel_cnn_trains_beside_the_pretrained_features_even_where_some_are_constant(tmp_path) -> None:
    """With the CNN features in the table (a quiet machine's 120 s mnist run has them), a feature no
    image lights up is constant; it must stay, or the pixel CNN cannot find the image grid by the
    column count (the run failed with '1959 columns are not the pixels of a square image')."""
    from automl_core.config import AutoMLConfig
    from automl_core.images.run import fit_images
    from storage import Store

    with open(MNIST / "labels.csv", newline="") as fh:
        every = list(csv.DictReader(fh))
    rows = [r for r in every if r["label"] == "1"][:30] + [r for r in every if r["label"] == "7"][:30]
    for r in rows:
        target = tmp_path / "set" / r["label"] / f"{len(list(tmp_path.rglob('*.png')))}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((MNIST / r["image_path"]).read_bytes())
    table = extract.featurize([p.read_bytes() for p in sorted((tmp_path / "set").rglob("*.png"))],
                              {"pixel_size": 28, "pixel_mode": "L", "cnn": True, "cnn_size": 64, "flip": True},
                              cache_dir=str(tmp_path / "cache"))  # the run below reads them from the cache
    assert (table.filter(like="cnn_").nunique() == 1).any()  # the case under test is present
    config = AutoMLConfig(task="image_classification", time_budget=None, max_trials=1, ensembles=False, seed=0,
                          allowed_models=("pixel_cnn",))
    with Store(tmp_path / "store.duckdb") as store:
        outcome = fit_images(store, tmp_path / "set", config, cnn=True, cache_dir=str(tmp_path / "cache"))
        trials = store.trials(outcome.experiment_id)
    assert trials["status"].tolist() == ["ok"], trials["error"].tolist()
