"""The pixel CNN's final model on mnist5k (issue #23): refit on all rows against the bag of its fold models,
from *one* search (one trial, a fixed trial count: the comparison does not depend on the machine's load).

The image set's own split as ``bench_images`` makes it (4,000 / 1,000), the pixel table as the image run
builds it, one ``pixel_cnn`` trial with its defaults (3-fold, no time limit), then: held-out accuracy of the
bag (what the trial's fold models average to) and of the refit on all 4,000 rows (the epochs the folds ran),
the fold models' spread (``bag.Bagger.ambiguity``) and what the ``auto`` rule picks.

Timing under load is factored out against a fixed reference fitted in the same process: one multinomial
logistic regression on the same 4,000 x 784 pixels (fixed iterations), timed before and after (the
minimum). Seconds per epoch are given in reference units too, so the whole run's cost on a quiet machine is
``units x the reference's quiet seconds``.

    python bench/bench_image_final.py [--epochs 8] [--no-record]

Writes bench/results/image-final-<stamp>.md/.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_images import DATASETS, split  # noqa: E402


def reference_seconds(X: np.ndarray, y: np.ndarray) -> float:
    """One multinomial logistic regression, fixed 100 lbfgs iterations, 2 threads: the unit of time."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits
    with threadpool_limits(2), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it stops at max_iter on purpose: a fixed amount of work
        start = time.perf_counter()
        LogisticRegression(max_iter=100, tol=0.0).fit(X, y)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=None, help="the trial's planned epochs (default: the family's)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    from automl_core import AutoML
    from automl_core.images.reader import read_images
    from automl_core.images.run import TARGET, choose_spec, image_table
    from automl_core.models.image_families import DEFAULTS
    from automl_core.search.bag import decide
    from automl_core.search.finalize import RESERVE_MARGIN, FinalChoice, fit_final, label_order

    images = read_images(DATASETS / "images_mnist5k")
    train_rows, test_rows = split(images)
    train, test = images.subset(train_rows), images.subset(test_rows)
    began = time.perf_counter()
    spec, _ = choose_spec(train, None, cache_dir=None, cnn=False)
    table, held = image_table(train, spec, None), image_table(test, spec, None)
    featurize_s = time.perf_counter() - began
    X_test, y_test = held.drop(columns=TARGET), held[TARGET].astype(str).to_numpy()
    Xr, yr = table.drop(columns=TARGET).to_numpy(np.float64), table[TARGET].to_numpy()
    ref_before = reference_seconds(Xr, yr)

    params = dict(DEFAULTS, **({"epochs": args.epochs} if args.epochs else {}))
    automl = AutoML(task="multiclass", time_budget=None, max_trials=1, seed=0, final_model="bag", ensembles=False,
                    allowed_models=("pixel_cnn",),
                    featurization={c: "numeric" for c in table.columns if c.startswith("px_")})
    automl._keep_fold_models = True  # the refit below is made from the same search
    # the family's defaults: the search starts a family the portfolio does not hold from them
    from automl_core.models import image_families
    image_families.DEFAULTS.update(params)
    start = time.perf_counter()
    automl.fit(table, target=TARGET)
    run_s = time.perf_counter() - start
    trial = automl.search_.best
    bag_model, bagger = automl.model_, automl._bagger
    p, plan = automl.prepared_, automl.validation_
    y_oof = automl._y_codes[np.concatenate([v for _, v in plan.splits])]
    ids = [trial.trial_id]
    row_oof = automl.search_.oof[trial.trial_id]
    ambiguity = bagger.ambiguity(ids, None, row_oof, y_oof)
    cost = automl._cost
    refit_estimate = RESERVE_MARGIN * (cost.single(trial) + cost.featurize_seconds)
    auto = decide("auto", bagger, ids, None, refit_estimate, np.inf, row_oof, y_oof)
    start = time.perf_counter()
    refit_model, _ = fit_final(automl._refit_data, FinalChoice(trial), automl.search_.oof, y_oof,
                               label_order(p.classes, p.y), cost.refit_threads, 0, best=trial, cost=cost, mode="refit")
    refit_s = time.perf_counter() - start
    ref_after = reference_seconds(Xr, yr)
    ref = min(ref_before, ref_after)

    def accuracy(model) -> float:
        return float((np.asarray(model.predict(X_test)).astype(str) == y_test).mean())

    epochs_run = trial.params.get("epochs_run", [])
    fold_epochs = max(1, sum(epochs_run))
    per_fold_epoch = trial.fit_seconds / fold_epochs
    per_refit_epoch = refit_s / max(1, trial.params["epochs"])
    rec = {"planned_epochs": params["epochs"], "params": trial.params, "epochs_run": epochs_run,
           "validation_log_loss": trial.score, "bag_accuracy": accuracy(bag_model),
           "refit_accuracy": accuracy(refit_model), "ambiguity": ambiguity, "auto": auto[0], "auto_why": auto[1],
           "trial_fit_s": trial.fit_seconds, "refit_s": refit_s, "refit_estimate_s": refit_estimate,
           "search_and_bag_s": run_s, "featurize_s": featurize_s, "reference_s": ref,
           "reference_s_before_after": [ref_before, ref_after],
           "fold_epoch_s": per_fold_epoch, "refit_epoch_s": per_refit_epoch,
           "fold_epoch_units": per_fold_epoch / ref, "refit_epoch_units": per_refit_epoch / ref,
           "trial_units": trial.fit_seconds / ref, "refit_units": refit_s / ref,
           "load_average": os.getloadavg(), "n_train": len(train_rows), "n_test": len(test_rows)}
    print(json.dumps(rec, default=float, indent=1))
    lines = [f"# Pixel CNN final model on images_mnist5k: refit vs bag, one search ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
             f"One `pixel_cnn` trial ({', '.join(f'{k} {v}' for k, v in params.items())}), 3-fold, no time limit; "
             f"{rec['n_train']} training / {rec['n_test']} held-out digits (bench_images' split). Load average "
             f"{rec['load_average'][0]:.1f} (2 cores, shared with other helpers): seconds are inflated, the "
             "reference units are not (same process).", "",
             "| final model | held-out accuracy | seconds | reference units |", "|---|---|---|---|",
             f"| bag of the 3 fold models (each on 2/3 of the rows) | {rec['bag_accuracy']:.4f} | 0 (no fit) | 0 |",
             f"| refit on all rows, {trial.params['epochs']} epochs | {rec['refit_accuracy']:.4f} | {refit_s:.1f} | "
             f"{rec['refit_units']:.1f} |", "",
             f"- epochs the folds ran: {epochs_run}; validation log loss {trial.score:.4f}",
             f"- fold models' spread: {ambiguity:.1%} of their out-of-fold squared error; the auto rule picks "
             f"**{auto[0]}** ({auto[1] or 'refit'})",
             f"- reference (one logistic regression on the same pixels, 100 iterations, 2 threads): {ref:.2f} s "
             f"(before {ref_before:.2f}, after {ref_after:.2f})",
             f"- per epoch: a fold (2,667 rows) {per_fold_epoch:.2f} s = {rec['fold_epoch_units']:.2f} units; "
             f"all rows (4,000) {per_refit_epoch:.2f} s = {rec['refit_epoch_units']:.2f} units",
             f"- the trial (3 folds) {trial.fit_seconds:.1f} s = {rec['trial_units']:.1f} units; featurizing the "
             f"4,000 training images {featurize_s:.1f} s"]
    md = "\n".join(lines) + "\n"
    print(md)
    if not args.no_record:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        out = REPO / "bench" / "results" / f"image-final-{stamp}"
        out.with_suffix(".md").write_text(md)
        out.with_suffix(".json").write_text(json.dumps(rec, default=float, indent=1))
        print(f"wrote {out}.md / .json")


if __name__ == "__main__":
    main()
