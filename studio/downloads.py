"""Download buttons for a finished experiment's files (shared by the Train and Results pages)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from automl_core.errors import AutoMLInputError
from automl_core.experiment import TEST_PREDICTIONS
from automl_core.export.predict import load_model


def _reader(path: Path):
    """Read the file only when the button is used, not on every rerun (models can be large)."""
    return lambda: path.read_bytes()


def artifact_paths(store: Any, experiment_id: str) -> dict[str, Path]:
    """model / model_card / test_predictions -> file, for the files that exist."""
    folder = store.artifact_dir(experiment_id)
    files = {"model": folder / "model.joblib", "model_card": folder / "model.json",
             "test_predictions": folder / TEST_PREDICTIONS}
    return {k: p for k, p in files.items() if p.is_file()}


def verified_model(store: Any, experiment_id: str) -> tuple[Any, dict[str, Any]]:
    """The experiment's model and card, unpickled only if the file's sha256 is the one the store recorded
    when the studio saved it. Every page that loads a model goes through here.

    Raises:
        AutoMLInputError: no model saved, or the file differs from what was saved.
    """
    files = artifact_paths(store, experiment_id)
    if "model" not in files:
        raise AutoMLInputError(f"experiment {experiment_id} has no saved model", "train it again")
    if not store.verify_artifact(experiment_id, files["model"]):
        raise AutoMLInputError(f"the model file of experiment {experiment_id} does not match the checksum recorded "
                               "when it was saved (changed on disk), so it is not loaded",
                               "train the experiment again, or restore the original file")
    return load_model(files["model"])


def model_downloads(store: Any, experiment_id: str) -> None:
    """model.joblib (key ``download_model``), model.json and, if scored, the test predictions CSV."""
    files = artifact_paths(store, experiment_id)
    if "model" not in files:
        st.info("No model file was saved for this experiment.", icon=":material/info:")
        return
    if not store.verify_artifact(experiment_id, files["model"]):
        st.warning("The saved model file does not match the checksum recorded when it was saved: it was changed "
                   "on disk, so it is not offered. Fix: train the experiment again, or restore the original file.",
                   icon=":material/gpp_bad:")
        return
    c1, c2, c3 = st.columns(3)
    c1.download_button("Download model (model.joblib)", _reader(files["model"]), file_name="model.joblib",
                       mime="application/octet-stream", key="download_model", type="primary",
                       icon=":material/download:", on_click="ignore", width="stretch")
    if "model_card" in files:
        c2.download_button("Model card (model.json)", _reader(files["model_card"]), file_name="model.json",
                           mime="application/json", key="download_model_card", icon=":material/description:",
                           on_click="ignore", width="stretch")
    if "test_predictions" in files:
        c3.download_button("Test predictions (CSV)", _reader(files["test_predictions"]),
                           file_name=f"{experiment_id}-test-predictions.csv", mime="text/csv",
                           key="download_test_predictions", icon=":material/table:", on_click="ignore",
                           width="stretch")
    if (store.get_experiment(experiment_id) or {}).get("task") == "image_classification":
        st.caption("An image model is a dict (load it with joblib): the fitted head, the feature spec and the "
                   "featurizer's source; its `usage` entry shows how to score images by hand, model.json lists the "
                   "package versions. Or: `python -m automl_core predict --model model.joblib IMAGES.zip --out p.csv`.")
        return
    if (store.get_experiment(experiment_id) or {}).get("task") == "multilabel":
        st.caption("A multi-label model is a dict (load it with joblib): the fitted one-vs-rest pipeline, the labels "
                   "and each label's decision threshold; its `usage` entry shows how to score by hand. Or: "
                   "`python -m automl_core predict --model model.joblib DATA.csv --out p.csv`.")
        return
    st.caption("Load the model in any Python with scikit-learn, LightGBM and pandas: "
               "`joblib.load('model.joblib').predict(df)`; model.json lists its columns, metrics and versions.")
