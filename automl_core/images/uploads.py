"""Images sent to a saved model (the REST server, the studio's Predict page): files in memory -> an ``ImageSet``.

Each upload is a ``.zip`` of images or one image. A zip is written to a private temporary folder and read by
:func:`read_images`, a single image goes through the reader's per-file check, so an upload gets exactly the
checks a training set gets (unsafe paths, zip bombs, corrupt files, duplicates: dropped and counted, never a
crash).
"""
from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path, PurePath
from typing import Iterable

from ..errors import AutoMLInputError
from .reader import MAX_FILE_BYTES, ImageSet, _add, read_images


def read_uploads(files: Iterable[tuple[str, bytes]]) -> ImageSet:
    """The images in ``files`` ((file name, bytes) pairs: zips and single images), in upload order.

    Image names are the zip's name plus the path inside it (``batch.zip/cats/1.png``), or the file's name.
    Raises AutoMLInputError when nothing was sent or no image could be read."""
    files = list(files)
    if not files:
        raise AutoMLInputError("No file was sent", "send a .zip of images or image files")
    out = ImageSet(layout="unlabelled")
    with tempfile.TemporaryDirectory(prefix="automl-images-") as tmp:
        for i, (name, data) in enumerate(files):
            base = PurePath(str(name or f"upload-{i}").replace("\\", "/")).name or f"upload-{i}"
            if zipfile.is_zipfile(io.BytesIO(data)):
                path = Path(tmp) / f"{i}.zip"
                path.write_bytes(data)
                _merge(out, _read(path, base), prefix=f"{base}/")
            else:  # one image: the reader's own checks (size, type, decoding), dropped by reason
                part = ImageSet()
                if len(data) > MAX_FILE_BYTES:
                    part.drop("too_large", base)
                else:
                    _add(part, base, lambda data=data: data, "")
                _merge(out, part, prefix="")
    if not out.names:
        raise AutoMLInputError(f"No readable image in the upload ({out.summary()})",
                               "send PNG, JPEG, BMP, GIF, TIFF or WebP images, or a .zip of them")
    return out


def _read(path: Path, label: str) -> ImageSet:
    """One zip or folder; an unreadable one becomes a drop, so the other uploads still count."""
    try:
        return read_images(path, labelled=False)
    except AutoMLInputError as exc:
        empty = ImageSet()
        empty.drop("unreadable", f"{label} ({exc})")
        return empty


def _merge(out: ImageSet, part: ImageSet, prefix: str) -> None:
    seen = set(out.hashes)
    for i, h in enumerate(part.hashes):
        if h in seen:
            out.drop("duplicate", prefix + part.names[i])
            continue
        seen.add(h)
        out.names.append(prefix + part.names[i])
        for attr in ("contents", "hashes", "labels", "sizes", "grayscale"):
            getattr(out, attr).append(getattr(part, attr)[i])
    for reason, n in part.dropped.items():
        out.dropped[reason] = out.dropped.get(reason, 0) + n
        named = part.examples.get(reason, []) if reason == "unreadable" else [prefix + e for e in part.examples.get(reason, [])]
        out.examples.setdefault(reason, []).extend(named)
        out.examples[reason] = out.examples[reason][:5]


def score_uploads(bundle: dict, files: Iterable[tuple[str, bytes]], *, cache_dir: str | None = None):
    """(predictions, the images read) for uploaded files: one row per image (``image_path``, ``prediction``,
    ``proba_<class>``); what was dropped is in the ImageSet's ``dropped``/``summary()``."""
    from .run import default_cache_dir, predict_images
    read = read_uploads(files)
    return predict_images(bundle, read, cache_dir=default_cache_dir() if cache_dir is None else cache_dir), read
