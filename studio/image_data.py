"""The wizard's first three steps for a set of images (issue #23): a ``.zip`` uploaded on the Data page is read
as an image set (one sub-folder per class, or images + labels.csv: ``automl_core.images.reader``), kept beside
the store and summarised with thumbnails per class; the Task page says the task is image classification; the
Configure page shows what applies to images (metric, budget, trials) and starts the run through the same job
runner as a table (``studio.jobs``, which calls ``automl_core.images.run.fit_images``).

The dataset's table in the store lists its images (image_path, label, width, height); the zip itself is
``studio.jobs.image_set_path``. Widget keys (stable, for tests): containers ``image_summary``,
``image_thumbnails``, ``image_task``, ``image_configure``; buttons ``to_task``, ``to_configure``,
``start_training``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from automl_core.errors import AutoMLInputError
from automl_core.images.gallery import class_summary, sample_per_class, thumbnail
from automl_core.images.reader import ImageSet, read_images
from automl_core.models.metrics import metrics_for
from automl_core.prepare.schema import Task
from studio.jobs import image_set_path
from studio.safe import md
from studio.state import EMPTY_CELL, bound, remember, wizard

SOURCE = "images:"                 # the dataset record's source for an uploaded image set
TASK = "image_classification"
PER_CLASS = 6                      # thumbnails per class on the Data page
IMAGE_METRIC = "accuracy"          # a share of images right reads better than log loss for pictures
MULTILABEL_METRIC = "f1_micro"     # the labels right, over all images and labels (the multi-label default)
IMAGE_BUDGET = 120                 # seconds: features and a few heads on a few thousand images


def is_zip(name: str) -> bool:
    return name.lower().endswith(".zip")


def is_image_dataset(meta: dict[str, Any] | None) -> bool:
    return bool(meta) and str(meta.get("source") or "").startswith(SOURCE)


def add_image_set(store: Any, name: str, data: bytes) -> str:
    """Read an uploaded zip as a labelled image set, keep it beside the store; returns the dataset id.

    Raises AutoMLInputError (from the reader) when it holds no readable image or a single class."""
    with tempfile.TemporaryDirectory(prefix="automl-upload-") as tmp:
        path = Path(tmp) / "upload.zip"
        path.write_bytes(data)
        try:
            images = read_images(path)  # a labels.csv of lists is multi-label
        except AutoMLInputError as exc:  # the reader names its path: the person knows the file by its name
            raise AutoMLInputError(exc.problem.replace(str(path), name), exc.fix) from None
    table = pd.DataFrame({"image_path": images.names, "label": images.labels,
                          "width": [w for w, _ in images.sizes], "height": [h for _, h in images.sizes]})
    dataset_id = store.add_dataset(name, table, source=f"{SOURCE}{name}")
    target = image_set_path(store, dataset_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".zip.tmp")
    partial.write_bytes(data)
    os.replace(partial, target)  # a crash never leaves half a zip under the final name
    return dataset_id


@st.cache_resource(show_spinner="Reading the images…", max_entries=2)
def read_image_set(zip_path: str, stamp: float) -> ImageSet:
    """The dataset's images, read once per zip (``stamp``: its modification time). Treat as read-only."""
    return read_images(zip_path)  # as uploaded: a labels.csv of lists is multi-label, else one class per image


def dataset_images(store: Any, dataset_id: str) -> ImageSet | None:
    """The images of an image dataset in the store, or None when its zip is gone."""
    path = image_set_path(store, dataset_id)
    return read_image_set(str(path), path.stat().st_mtime) if path.is_file() else None


@st.cache_data(show_spinner=False, max_entries=4)
def _thumbnails(zip_path: str, stamp: float, per_class: int) -> dict[str, list[tuple[str, bytes]]]:
    images = read_image_set(zip_path, stamp)
    return {label: [(images.names[i], thumbnail(images.contents[i])) for i in rows]
            for label, rows in sample_per_class(images, per_class).items()}


# ------------------------------------------------------------------------------------ Data page

def image_dataset_section(store: Any, meta: dict[str, Any]) -> bool:
    """The summary and thumbnails of an image dataset; False when its zip is gone (the caller says so)."""
    path = image_set_path(store, meta["dataset_id"])
    images = dataset_images(store, meta["dataset_id"])
    if images is None:
        st.warning("The images of this dataset are no longer beside the store. Fix: upload the .zip again.")
        return False
    st.subheader(md(meta["name"]))
    kind = (f"Multi-label image set · {len(images.names):,} images, {len(images.classes)} labels, "
            f"{sum(map(len, images.label_sets)) / max(1, len(images.names)):.2f} per image"
            if images.multilabel else f"Image set · {len(images.names):,} images in {len(images.classes)} classes")
    st.caption(f"{kind} ({'one folder per class' if images.layout == 'folders' else images.layout}) · saved as "
               f"{meta['dataset_id']}")
    summary = class_summary(images)
    with st.container(key="image_summary"):
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Images", f"{len(images.names):,}")
        c2.metric("Labels" if images.multilabel else "Classes", f"{len(images.classes)}")
        sides = [max(w, h) for w, h in images.sizes]
        c3.metric("Median size", summary["median size"].mode().iloc[0] if len(summary) else "—",
                  help=f"Longer side from {min(sides)} to {max(sides)} px.")
        c4.metric("Dropped", f"{sum(images.dropped.values()):,}",
                  help="Files that could not be used (listed below with the reason).")
        st.dataframe(summary, hide_index=True, placeholder=EMPTY_CELL, key="image_classes",
                     height=min(38 + 35 * len(summary), 320),
                     column_config={"share": st.column_config.ProgressColumn("share", min_value=0.0, max_value=1.0,
                                                                             format="percent")})
        smallest = summary.sort_values("images").iloc[0]
        if smallest["images"] < 5:
            st.warning(f"Class **{md(smallest['class'])}** has only {smallest['images']} image(s): the model sees "
                       "too few to learn it. Fix: add images of that class (10 or more each is a good start).",
                       icon=":material/warning:")
        if images.dropped:
            lines = [f"- {n:,} {md(reason.replace('_', ' '))}, e.g. {md(', '.join(images.examples.get(reason, [])[:3]))}"
                     for reason, n in sorted(images.dropped.items())]
            st.warning("Some files were left out:\n" + "\n".join(lines)
                       + "\n\nFix, if you need them: re-save them as PNG or JPEG inside a class folder.",
                       icon=":material/filter_alt:")
    st.markdown(f"**A few images of each class** (up to {PER_CLASS}, spread over the class)")
    with st.container(key="image_thumbnails"):
        for label, thumbs in _thumbnails(str(path), path.stat().st_mtime, PER_CLASS).items():
            count = int(summary.loc[summary["class"] == label, "images"].iloc[0])
            name_col, *cols = st.columns([1.3] + [1] * PER_CLASS, gap="small", vertical_alignment="center")
            name_col.markdown(f"**{md(label)}**  \n:gray[{count:,} images]")
            for col, (name, png) in zip(cols, thumbs):
                col.image(png, width=72)
                col.caption(md(name.rsplit("/", 1)[-1][:18]))
    return True


# ------------------------------------------------------------------------------------ Task page

def image_task(store: Any, meta: dict[str, Any]) -> bool:
    """The Task step of an image set: image classification, its classes; returns True when ready."""
    images = dataset_images(store, meta["dataset_id"])
    if images is None:
        st.warning("The images of this dataset are no longer beside the store. Fix: upload the .zip again.")
        return False
    classes = images.classes
    with st.container(key="image_task"):
        if images.multilabel:
            st.info("**Multi-label image classification** — a list of labels per image, read from labels.csv "
                    f"({sum(map(len, images.label_sets)) / max(1, len(images.names)):.2f} labels per image on average). "
                    "Each label gets its own yes/no model and its own decision threshold.", icon=":material/image:")
        else:
            st.info(f"**Image classification** — one label per image, learned from the "
                    f"{'folder names' if images.layout == 'folders' else 'labels in labels.csv'}. There is no target "
                    f"column to choose: the label of each image is its class.", icon=":material/image:")
        st.caption(f"{len(classes)} {'labels' if images.multilabel else 'classes'}: "
                   f"{md(', '.join(classes[:30]))}{'…' if len(classes) > 30 else ''}")
    wizard().update(target="label", task="multilabel" if images.multilabel else TASK, task_effective=TASK,
                    task_reason="an image set", classes=classes, positive_class=None, ready=True)
    return True


# ------------------------------------------------------------------------------------ Configure page

def _widget(kind: Any, label: str, key: str, default: Any, **kwargs: Any) -> Any:
    bound(key, default)
    return remember(key, kind(label, key=key, **kwargs))


def head_task(classes: list[str] | None, multilabel: bool = False) -> Task:
    """The table task the heads over the image features solve."""
    return Task.MULTILABEL if multilabel else Task.BINARY if len(classes or []) == 2 else Task.MULTICLASS


def image_configure(classes: list[str] | None, multilabel: bool = False) -> None:
    """Metric and exit criteria for an image run (validation, test data, models and featurization are chosen
    by the image run itself: they are not shown)."""
    from studio.wording import metric_help, metric_label
    w = wizard()
    names = metrics_for(head_task(classes, multilabel))
    default = MULTILABEL_METRIC if multilabel else IMAGE_METRIC
    if w.get("metric") not in names:
        w["metric"] = default
        st.session_state.pop("metric", None)
    with st.container(key="image_configure"):
        metric = _widget(st.selectbox, "Primary metric", "metric", default, options=names,
                         format_func=metric_label, help="The score the heads are ranked by.")
        st.caption(metric_help(metric))
        c1, c2 = st.columns(2)
        _widget(c1.number_input, "Time budget (seconds)", "time_budget", IMAGE_BUDGET, min_value=30,
                max_value=7 * 24 * 3600, step=10,
                help="The whole run: computing the image features (cached for the next run), the search, the refit.")
        _widget(c2.number_input, "Max trials (0 = no limit)", "max_trials", 0, min_value=0, max_value=100_000, step=1)
        _widget(st.number_input, "Early termination (0 = off)", "early_stop_trials", 0, min_value=0,
                max_value=10_000, step=1, help="Stop after this many trials in a row without improvement.")
        _widget(st.toggle, "Ensembles: also try blending the best heads", "ensembles", True)
        st.caption("Chosen by the image run, not here: the features (pretrained EfficientNet-Lite0 features, and raw "
                   "pixels for small images, measured against the budget), the heads (a kernel SVM first, then "
                   "the pixel CNN for small single-label images, logistic regression, k-nearest neighbours, LightGBM) "
                   "and the validation (by the number of images).")


def image_summary_rows(spec: Any, classes: list[str] | None, metric: str) -> list[tuple[str, str]]:
    """The settings in words before Start."""
    from studio.wording import metric_label
    c = spec.config
    limits = [f"{c.time_budget:g} s" if c.time_budget else "no time limit"]
    if c.max_trials:
        limits.append(f"at most {c.max_trials} trials")
    if c.early_stop_trials:
        limits.append(f"stop after {c.early_stop_trials} trials without improvement")
    kind = (f"multi-label image classification ({len(classes or [])} labels)" if c.task == "multilabel"
            else f"image classification ({len(classes or [])} classes)")
    return [("Task", kind), ("Primary metric", metric_label(metric)),
            ("Exit criteria", "; ".join(limits)), ("Ensembles", "on" if c.ensembles else "off")]


def clone_values(exp: dict[str, Any], meta: dict[str, Any] | None) -> dict[str, Any] | None:
    """Wizard values that start a new run like an image experiment (Experiments -> Clone), or None when its
    images are not in the store (a run started from the command line)."""
    if not is_image_dataset(meta):
        return None
    cfg = exp.get("config") or {}
    return {"dataset_id": meta["dataset_id"], "metric": cfg.get("metric") or IMAGE_METRIC,
            "time_budget": int(cfg.get("time_budget") or IMAGE_BUDGET), "max_trials": int(cfg.get("max_trials") or 0),
            "early_stop_trials": int(cfg.get("early_stop_trials") or 0), "ensembles": bool(cfg.get("ensembles", True)),
            "experiment_name": f"{exp.get('name') or meta['name']} (copy)"}
