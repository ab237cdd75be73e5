"""What a person looks at before and after training on images (issue #23): a per-class summary of a read
set, a few images of each class, small thumbnails, and after a run the surest right and wrong images of a class
and the images nearest to one. Plain numbers and PNG bytes, no streamlit."""
from __future__ import annotations

import io
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .extract import open_image
from .reader import ImageSet

THUMB_SIDE = 72          # a thumbnail's longer side, in pixels


def members(images: ImageSet) -> list[tuple[int, str]]:
    """(image position, class) pairs: one per image, or one per label of a multi-label image (an image of
    a 3 and a 5 counts in class 3 and in class 5)."""
    if images.label_sets is not None:
        return [(i, str(label)) for i, labels in enumerate(images.label_sets) for label in labels]
    return [(i, str(label)) for i, label in enumerate(images.labels)]


def class_summary(images: ImageSet) -> pd.DataFrame:
    """One row per class: images, share of the set (of images carrying the label, for multi-label), and the
    width x height range (median in the middle)."""
    pairs = members(images)
    at = [i for i, _ in pairs]
    frame = pd.DataFrame({"class": [c for _, c in pairs], "width": [images.sizes[i][0] for i in at],
                          "height": [images.sizes[i][1] for i in at], "gray": [images.grayscale[i] for i in at]})
    rows = []
    for label, part in frame.groupby("class", sort=True):
        rows.append({"class": str(label), "images": len(part), "share": len(part) / max(1, len(images.names)),
                     "median size": f"{int(part['width'].median())} x {int(part['height'].median())}",
                     "smallest": f"{int(part['width'].min())} x {int(part['height'].min())}",
                     "largest": f"{int(part['width'].max())} x {int(part['height'].max())}",
                     "grayscale": f"{part['gray'].mean():.0%}"})
    return pd.DataFrame(rows)


def sample_per_class(images: ImageSet, per_class: int = 6) -> dict[str, list[int]]:
    """Up to ``per_class`` image positions per class, spread evenly over the class (the same every time)."""
    positions: dict[str, list[int]] = {}
    for i, label in members(images):
        positions.setdefault(label, []).append(i)
    out = {}
    for label in sorted(positions):
        rows = positions[label]
        step = max(1, len(rows) // per_class)
        out[label] = rows[::step][:per_class]
    return out


def thumbnail(content: bytes, side: int = THUMB_SIDE) -> bytes:
    """A PNG whose longer side is ``side`` pixels (tiny images are enlarged with hard pixel edges, so a
    28 x 28 digit stays readable), EXIF rotation applied."""
    from PIL import Image
    image = open_image(content)
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    w, h = image.size
    scale = side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = image.resize(size, Image.NEAREST if scale > 1 else Image.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def surest(proba: np.ndarray, y_true: Sequence[Any], rows: Sequence[int], classes: Sequence[Any], label: Any,
           n: int = 6) -> tuple[list[tuple[int, float]], list[tuple[int, float, str]]]:
    """For one class, out of fold: the images called ``label`` most surely and rightly, and those called it most
    surely but wrongly (with their true class). Each as (position in the image set, probability of ``label``).

    ``proba`` holds one row per validation image (``rows``: their positions) and one column per class (``classes``
    order); ``y_true`` their true classes."""
    names = [str(c) for c in classes]
    k = names.index(str(label))
    called = np.asarray(proba).argmax(axis=1) == k
    truth = np.asarray([str(y) for y in y_true])
    order = np.argsort(-np.asarray(proba)[:, k], kind="stable")
    right = [(int(rows[i]), float(proba[i, k])) for i in order if called[i] and truth[i] == names[k]][:n]
    wrong = [(int(rows[i]), float(proba[i, k]), truth[i]) for i in order if called[i] and truth[i] != names[k]][:n]
    return right, wrong


def nearest(features: np.ndarray, query: int, k: int = 5) -> list[tuple[int, float]]:
    """The ``k`` images most like image ``query`` (cosine similarity of standardized features, itself left out):
    (position, similarity), most alike first."""
    X = np.asarray(features, dtype=np.float64)
    X = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    similarity = X @ X[query]
    similarity[query] = -np.inf
    best = np.argsort(-similarity, kind="stable")[:k]
    return [(int(i), float(similarity[i])) for i in best]
