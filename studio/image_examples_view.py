"""The Results page's look inside a single-label image run (issue #23), out of fold: for a chosen class, the images
it was surest of and right, and those it called that class surely but wrongly; for a chosen validation image, the
training images most like it in the features the model reads (why a 3 can look like an 8 to it). The choosing is
automl_core's (``images.gallery.surest`` / ``nearest``); thumbnails through image_view's gallery.

Containers (stable, for tests): ``image_examples``, ``image_nearest``; widgets ``image_examples_class``,
``image_nearest_image``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from automl_core.images.gallery import nearest, surest
from studio import image_view
from studio.safe import md

NEIGHBOURS = 5
MAX_CHOICES = 300  # validation images offered to choose from, the misclassified ones first


def image_examples(store: Any, experiment_id: str, exp: dict[str, Any]) -> None:
    """Examples per class and nearest images; nothing for other runs, a sentence when the run kept no images."""
    if exp.get("task") != "image_classification" or image_view.is_multilabel_images(exp):
        return
    predictions, trial = image_view.validation_predictions(store, experiment_id, exp)
    images = image_view.experiment_images(store, exp)
    if predictions is None or images is None:
        return  # the misclassified section above says why
    rows = np.asarray(predictions.rows)
    keep = rows < len(images.names)
    classes = [str(c) for c in predictions.classes]
    codes = np.asarray(predictions.y_true, dtype=int)  # class codes: indexes into classes
    proba, truth, rows = predictions.models[trial][keep], np.asarray(classes, dtype=object)[codes][keep], rows[keep]
    st.subheader("Examples per class")
    with st.container(key="image_examples"):
        label = st.selectbox("Class", classes, key="image_examples_class")
        right, wrong = surest(proba, truth, rows, classes, label)
        st.markdown(f"**Surest and right** — validation images called **{md(label)}** that are {md(label)}")
        _gallery(images, [(i, f"{p:.0%} sure") for i, p in right], "None called right.")
        st.markdown(f"**Surest and wrong** — called **{md(label)}** but they are not")
        _gallery(images, [(i, f"is **{md(t)}** · {p:.0%} sure") for i, p, t in wrong], "None: no image was wrongly "
                 f"called {md(label)}.")
        st.caption(f"Out-of-fold probabilities of trial #{trial}: each image scored by a model that did not train on it.")
    _nearest_section(store, experiment_id, exp, images, rows, truth, proba, classes)


def _nearest_section(store: Any, experiment_id: str, exp: dict[str, Any], images: Any, rows: np.ndarray,
                     truth: np.ndarray, proba: np.ndarray, classes: list[str]) -> None:
    st.subheader("Nearest training images")
    with st.container(key="image_nearest"):
        features = _features(store, experiment_id, exp)
        if features is None:
            st.caption("Not available: the model file of this run is not in the store.")
            return
        called = np.asarray(classes)[proba.argmax(axis=1)]
        wrong_first = np.argsort(called == truth.astype(str), kind="stable")  # the mistakes are the questions
        options = [int(rows[i]) for i in wrong_first[:MAX_CHOICES]]
        names = {int(r): f"{images.names[int(r)].rsplit('/', 1)[-1]} (is {t}, called {c})"
                 for r, t, c in zip(rows, truth, called)}
        query = st.selectbox("Image", options, format_func=names.get, key="image_nearest_image",
                             help="Validation images, the misclassified ones first.")
        found = nearest(features, query, NEIGHBOURS)
        image_view.gallery([(images.contents[query], f"**this image**  \n:gray[is {md(images.labels[query])}]")]
                           + [(images.contents[i], f"**{md(images.labels[i])}**  \n:gray[{s:.2f} alike]")
                              for i, s in found])
        st.caption("The first thumbnail is the chosen image; the others are the training images most like it in the "
                   "features the model reads (cosine similarity of the standardized feature columns), with their "
                   "classes. Images of another class among them show where the classes look alike to the model.")


@st.cache_data(show_spinner="Reading the image features…", max_entries=2)
def _features_of(experiment_id: str, model_path: str, mtime: float, _store: Any, _exp: dict[str, Any]) -> Any:
    from pathlib import Path

    from automl_core.images import extract
    from automl_core.images.run import default_cache_dir
    from studio.scoring import cached_model
    bundle, _ = cached_model(experiment_id, Path(model_path))
    images = image_view.experiment_images(_store, _exp)
    return extract.featurize(images.contents, bundle["spec"], cache_dir=default_cache_dir()).to_numpy(np.float32)


def _features(store: Any, experiment_id: str, exp: dict[str, Any]) -> np.ndarray | None:
    from pathlib import Path
    path = Path(exp.get("model_path") or "")
    if not path.is_file():
        return None
    return _features_of(experiment_id, str(path), path.stat().st_mtime, store, exp)


def _gallery(images: Any, items: list[tuple[int, str]], empty: str) -> None:
    if not items:
        st.caption(empty)
        return
    image_view.gallery([(images.contents[i], f"{caption}  \n:gray[{md(images.names[i].rsplit('/', 1)[-1][:16])}]")
                        for i, caption in items])
