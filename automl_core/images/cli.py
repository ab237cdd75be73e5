"""``python -m automl_core train DATA.zip|DIR [--task image_classification|multilabel]``: the CLI's image branch.

A zip or folder is an image set whatever the task (``auto`` detects a multi-label labels.csv; ``multilabel`` and
``image_classification`` force one reading or the other)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..errors import AutoMLInputError

#: Table-only options that mean nothing for a set of images: refused, not ignored.
_TABLE_OPTIONS = ("target", "validation_data", "test_data", "group_column", "exclude_columns", "time_column",
                  "horizon", "series_id", "positive_class")


def train_images(args: argparse.Namespace, config: Any, start: float) -> int:
    """Train on an image set; prints progress lines and, with ``--json``, one summary line."""
    from ..search.progress import ProgressPrinter
    from storage import Store
    from .run import fit_images
    given = [f"--{n.replace('_', '-')}" for n in _TABLE_OPTIONS if getattr(args, n, None)]
    if given:
        raise AutoMLInputError(f"{', '.join(given)} do(es) not apply to image_classification (the labels come from "
                               "the class folders or labels.csv)", "leave them out")
    from .reader import read_images
    images = read_images(args.data, task=config.task)  # before the store is opened: bad labels fail fast
    store = Store(args.store)
    printer = [] if args.quiet else [ProgressPrinter(sys.stdout)]
    outcome = fit_images(store, images, config, name=args.name,
                         callbacks=printer, out_dir=args.out)
    automl = outcome.automl
    summary = {
        "experiment_id": outcome.experiment_id, "status": outcome.status, "task": "image_classification",
        "head_task": "multilabel" if images.multilabel else "binary" if len(images.classes) == 2 else "multiclass",
        "metric": automl.metric_.name, "best_model": automl.best_trial_.family,
        "validation_score": automl.best_trial_.score, "test_score": automl.test_score_,
        "n_trials": len(automl.search_.trials), "wall_seconds": round(time.perf_counter() - start, 2),
        "fit_seconds": round(automl.wall_seconds_ + outcome.featurize_seconds, 2),
        "featurize_seconds": round(outcome.featurize_seconds, 2),
        "images_per_second": None if outcome.images_per_second is None else round(outcome.images_per_second, 2),
        "n_images": len(outcome.images.names), "dropped": outcome.images.dropped, "features": outcome.spec,
        "model_path": str(outcome.model_path), "validation": automl.validation_.description,
    }
    if not args.quiet:
        print(f"images: {outcome.images.summary()}")
    if args.json:
        from ..export.artifacts import clean_json
        print(json.dumps(clean_json(summary)))
    else:
        print(f"best model: {summary['best_model']}  validation {summary['metric']} = {summary['validation_score']:.5g}")
        print(f"model saved to {summary['model_path']}")
    return 0
