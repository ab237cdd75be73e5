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
