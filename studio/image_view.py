"""The Predict page for an image model (issue #23): upload images or zips of them, get one prediction per image
with its class probabilities, and download them as CSV. The reading and scoring are automl_core's
(``images.uploads.score_uploads``, the same as the REST server's)."""
from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

from automl_core.export.predict import safe_csv
from automl_core.images.uploads import score_uploads
from studio.safe import md
from studio.state import EMPTY_CELL

IMAGE_TYPES = ["zip", "png", "jpg", "jpeg", "bmp", "gif", "tif", "tiff", "webp"]
_RESULT = "predict_images_result"  # (key of what was scored, summary line, predictions frame)


def image_predict(model: Any, card: dict[str, Any]) -> None:
    """Uploader, the images read (and dropped, by reason), the predictions and their CSV download.
    Bad input raises AutoMLInputError (the page shows it)."""
    uploads = st.file_uploader("Images to classify: a .zip of images, or image files", type=IMAGE_TYPES,
                               accept_multiple_files=True, key="predict_images")
    if not uploads:
        st.caption("Upload a .zip of images (any folders inside) or image files to get one prediction per image, "
                   "with the probability of each class.")
        return
    parts = [(u.name, u.getvalue()) for u in uploads]
    digest = hashlib.sha256(b"".join(hashlib.sha256(n.encode() + b"\0" + d).digest() for n, d in parts)).hexdigest()
    key = (digest, card.get("model_sha256"))
    kept = st.session_state.get(_RESULT)
    if kept is None or kept[0] != key:  # scored once per upload; reruns reuse it
        with st.spinner("Reading and classifying the images…"):
            predictions, read = score_uploads(model, parts)
        kept = (key, read.summary(), predictions)
        st.session_state[_RESULT] = kept
    _, summary, predictions = kept
    st.caption(f"Read: {md(summary)}.")
    st.markdown(f"**Predictions** — {len(predictions):,} images" + (", first 100 shown" if len(predictions) > 100 else ""))
    st.dataframe(predictions.head(100), placeholder=EMPTY_CELL, height=260, hide_index=True)
    st.download_button("Download predictions (CSV)", lambda: safe_csv(predictions).to_csv(index=False).encode(),
                       file_name="image-predictions.csv", mime="text/csv", key="download_predictions",
                       type="primary", icon=":material/download:", on_click="ignore")


# ------------------------------------------------------------------------------------ Results page

GALLERY = 12  # misclassified images drawn as thumbnails (the table below lists up to 100)


def image_results(store: Any, experiment_id: str, exp: dict[str, Any]) -> None:
    """The Results page's image section: the validation images the best model got wrong, as thumbnails with
    the true class, the predicted one and its probability (out of fold), most confident mistakes first."""
    if exp.get("task") != "image_classification" or is_multilabel_images(exp):  # label sets: label_set_view
        return
    st.subheader("Misclassified images")
    with st.container(key="image_misclassified"):
        predictions, trial = validation_predictions(store, experiment_id, exp)
        if predictions is None:
            st.caption("Not available: this run stored no out-of-fold predictions.")
            return
        images = experiment_images(store, exp)
        if images is None:
            st.caption("Not available: the images of this run are not in the store (a run started from the command "
                       "line keeps no copy of them; one started in the studio does).")
            return
        wrong = _wrong(predictions, trial, images)
        if wrong.empty:
            st.success("None: every validation image was classified right.", icon=":material/check_circle:")
            return
        by_name = dict(zip(images.names, images.contents))
        gallery([(by_name[row.image], f"true **{md(row.true)}** → **:red[{md(row.predicted)}]**  \n"
                  f":gray[{row.probability:.0%} sure · {md(row.image.rsplit('/', 1)[-1][:16])}]")
                 for row in wrong.head(GALLERY).itertuples()])
        st.dataframe(wrong.rename(columns={"probability": "confidence"}), hide_index=True, height=260,
                     placeholder=EMPTY_CELL, key="image_wrong_table",
                     column_config={"confidence": st.column_config.ProgressColumn(
                         "confidence", min_value=0.0, max_value=1.0, format="%.2f"),
                         "probability_true": st.column_config.NumberColumn("probability of the true class",
                                                                           format="%.2f")})
        st.caption(f"{len(wrong)} of {len(predictions.rows):,} validation images wrong; out-of-fold probabilities "
                   f"of trial #{trial} (each image scored by a model that did not train on it), most confident "
                   "mistakes first. The confusion matrix is under Evaluation.")


def validation_predictions(store: Any, experiment_id: str, exp: dict[str, Any]) -> tuple[Any, int | None]:
    """The run's out-of-fold predictions and the trial to show (the best one, else the best that kept them), or
    (None, None) when it stored none."""
    from automl_core.understand.predictions import load_predictions
    predictions = load_predictions(store.artifact_dir(experiment_id), "validation")
    if predictions is None or not predictions.models:
        return None, None
    trial = int(exp.get("best_trial_id") or -1)
    if trial not in predictions.models:  # a model with no stored predictions: the best one that has them
        from studio.live import leaderboard
        board = leaderboard(store.trials(experiment_id), exp.get("metric") or "")
        trial = next((int(t) for t in board["trial_id"] if int(t) in predictions.models), max(predictions.models))
    return predictions, trial


def gallery(items: list[tuple[bytes, str]], per_row: int = 6) -> None:
    """Thumbnails in rows of ``per_row``, each with its caption (Markdown: escape what it quotes)."""
    for start in range(0, len(items), per_row):
        for col, (content, caption) in zip(st.columns(per_row, gap="small"), items[start:start + per_row]):
            col.image(_thumb(content), width=72)
            col.markdown(caption)


def is_multilabel_images(exp: dict[str, Any]) -> bool:
    """Whether an image experiment's images carry label lists (its heads are a multi-label model)."""
    return exp.get("task") == "image_classification" and "multilabel" in (
        (exp.get("summary") or {}).get("head_task"), (exp.get("config") or {}).get("task"))


def _wrong(predictions: Any, trial: int, images: Any):  # -> pd.DataFrame
    import numpy as np
    import pandas as pd
    from automl_core.understand.text_profile import misclassified
    rows = np.asarray(predictions.rows)
    keep = rows < len(images.names)
    table = pd.DataFrame({"image": images.names})
    return misclassified(predictions.models[trial][keep], np.asarray(predictions.y_true)[keep], rows[keep],
                         list(predictions.classes), table, ["image"])


def experiment_images(store: Any, exp: dict[str, Any]):  # -> ImageSet | None
    """The images of an experiment's dataset in the store, or None (a run from the command line keeps none)."""
    from studio.image_data import dataset_images
    dataset_id = exp.get("dataset_id")
    if not dataset_id or store.get_dataset(dataset_id) is None:
        return None
    return dataset_images(store, dataset_id)


@st.cache_data(show_spinner=False, max_entries=512)
def _thumb(content: bytes) -> bytes:
    from automl_core.images.gallery import thumbnail
    return thumbnail(content)
