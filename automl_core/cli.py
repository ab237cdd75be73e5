"""Command line: ``python -m automl_core train|predict|serve|list|show``.

Bad input ends with exit code 2 and one line on stderr naming the problem and the fix.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from .config import TASKS
from .errors import AutoMLInputError

EXIT_BAD_INPUT = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m automl_core", description="AutoML Studio's engine.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="search for the best model and save it")
    train.add_argument("data", help="training table: CSV, TSV, Parquet, Excel or JSON lines; for "
                       "image_classification a .zip or folder of images (one sub-folder per class, or labels.csv)")
    train.add_argument("--target", help="the column to predict (not for image_classification); several 0/1 "
                       "columns joined with commas (a,b,c) make one multi-label target")
    train.add_argument("--task", default="auto", choices=TASKS)
    train.add_argument("--metric", default="auto")
    train.add_argument("--time-budget", type=float, default=60.0, help="seconds for the whole run (default 60)")
    train.add_argument("--max-trials", type=int)
    train.add_argument("--score-threshold", type=float)
    train.add_argument("--early-stop-trials", type=int, help="stop after N trials without improvement")
    train.add_argument("--trial-timeout", type=float, help="seconds one trial may take")
    train.add_argument("--validation-data")
    train.add_argument("--cv", type=int, help="k-fold cross-validation")
    train.add_argument("--holdout", type=float, help="holdout fraction for validation")
    train.add_argument("--group-column")
    test = train.add_mutually_exclusive_group()
    test.add_argument("--test-data")
    test.add_argument("--test-size", type=float)
    train.add_argument("--allowed-models", help="comma-separated model families")
    train.add_argument("--blocked-models", help="comma-separated model families")
    train.add_argument("--exclude-columns", help="comma-separated columns to leave out")
    train.add_argument("--featurization", default="auto", choices=["auto", "off"])
    train.add_argument("--positive-class")
    train.add_argument("--no-ensembles", action="store_true")
    train.add_argument("--final-model", default="auto", choices=("auto", "refit", "bag"),
                       help="refit the chosen model on all rows, combine the k fold models the validation fit "
                            "(bag: their average, or under log loss their normalised geometric mean), or choose "
                            "per run (auto, default)")
    train.add_argument("--time-column")
    train.add_argument("--horizon", type=int)
    train.add_argument("--series-id")
    train.add_argument("--partition-by", metavar="COL[,COL]",
                       help="forecasting: train one model per partition of these columns (many models)")
    train.add_argument("--past-only", metavar="COL[,COL]",
                       help="forecasting: columns known only up to the forecast origin (used lagged by the horizon)")
    train.add_argument("--future-columns", metavar="COL[,COL]",
                       help="forecasting: columns whose future values you will give, kept as known-in-future even "
                            "when they explain the target at the same time step (the leak check)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--n-jobs", type=int, help="cores for the whole run (default: all)")
    train.add_argument("--max-concurrent-trials", type=int,
                       help="trials side by side (default: one per core on small data, else one)")
    train.add_argument("--dask-scheduler", metavar="tcp://HOST:PORT",
                       help="run trials on this Dask cluster instead of local worker processes")
    train.add_argument("--store", help="DuckDB store file (default: $AUTOML_STORE or ./.automl/store.duckdb)")
    train.add_argument("--out", help="also write model.joblib and model.json to this folder")
    train.add_argument("--name", help="experiment name")
    train.add_argument("--json", action="store_true", help="end with one JSON summary line on stdout")
    train.add_argument("--quiet", action="store_true", help="no progress lines")
    predict = sub.add_parser("predict", help="score new data with a saved model")
    predict.add_argument("--model", required=True, help="path to model.joblib")
    predict.add_argument("data")
    predict.add_argument("--out", required=True, help="CSV file for the predictions")
    predict.add_argument("--top-k", type=int, default=0,
                         help="add the K columns contributing most to each row's prediction (LightGBM / linear models)")
    predict.add_argument("--quiet", action="store_true", help="no check report or progress on stderr")
    serve = sub.add_parser("serve", help="score over HTTP: POST /predict, GET /health, OpenAPI at /docs")
    serve.add_argument("--model", required=True, help="path to model.joblib")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--api-key", help="require this key in the X-API-Key header (default: $AUTOML_API_KEY if set)")
    for name, help_text in (("list", "list experiments in the store"), ("show", "show one experiment")):
        p = sub.add_parser(name, help=help_text)
        if name == "show":
            p.add_argument("experiment_id")
        p.add_argument("--store")
        p.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "predict":
            return _predict(args)
        if args.command == "serve":
            from .export.serve import serve
            return serve(args.model, host=args.host, port=args.port, api_key=args.api_key)
        return _list_or_show(args)
    except AutoMLInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130


def _predict(args: argparse.Namespace) -> int:
    """Check the data against the model (report on stderr), then score it in batches."""
    from .export.predict import BATCH_ROWS, predict_file

    def report(check: Any) -> None:
        if not args.quiet and check.ok:  # missing columns: the error line alone says it
            for line in check.summary_lines():
                print(f"check: {line}", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        if not args.quiet and total > BATCH_ROWS:  # one line per batch, only when there are several
            print(f"scored {done:,} / {total:,} rows", file=sys.stderr)

    n = predict_file(args.model, args.data, args.out, on_report=report, progress=progress, top_k=args.top_k,
                     on_warning=None if args.quiet else lambda w: print(f"warning: {w}", file=sys.stderr))
    print(f"wrote {n:,} predictions to {args.out}")
    return 0


def _config(args: argparse.Namespace) -> Any:
    from .config import AutoMLConfig
    validation = "cv" if args.cv else "holdout" if args.holdout else "auto"
    return AutoMLConfig(
        task=args.task, metric=args.metric, time_budget=args.time_budget, max_trials=args.max_trials,
        score_threshold=args.score_threshold, early_stop_trials=args.early_stop_trials,
        trial_timeout=args.trial_timeout, validation=validation, cv_folds=args.cv, holdout_fraction=args.holdout,
        group_column=args.group_column, test_size=args.test_size,
        allowed_models=args.allowed_models, blocked_models=args.blocked_models or (),
        featurization=args.featurization, exclude_columns=args.exclude_columns or (),
        positive_class=args.positive_class, ensembles=not args.no_ensembles, final_model=args.final_model,
        n_jobs=args.n_jobs, seed=args.seed,
        max_concurrent_trials=args.max_concurrent_trials, dask_scheduler=args.dask_scheduler,
        time_column=args.time_column, horizon=args.horizon, series_id=args.series_id or (),
        partition_by=args.partition_by or (), past_only_columns=args.past_only or (),
        future_columns=args.future_columns or ())


def _train(args: argparse.Namespace) -> int:
    from .experiment import run_experiment
    from .search.progress import ProgressPrinter
    from storage import Store

    start = time.perf_counter()
    config = _config(args)
    images = Path(args.data).is_dir() or str(args.data).lower().endswith(".zip")
    if config.task == "image_classification" or (images and config.task in ("auto", "multilabel")):
        from .images.cli import train_images  # a zip or folder of images (multi-label: labels.csv lists)
        return train_images(args, config, start)
    if not args.target:
        raise AutoMLInputError("No target column given", "name the column to predict with --target COL")
    for path in (args.data, args.test_data, args.validation_data):
        if path and not Path(path).exists():
            raise AutoMLInputError(f"The file '{path}' does not exist", "check the path")
    store = Store(args.store)
    printer = [] if args.quiet else [ProgressPrinter(sys.stdout)]
    outcome = run_experiment(store, args.data, args.target, config, test_data=args.test_data,
                             validation_data=args.validation_data, name=args.name, callbacks=printer,
                             out_dir=args.out)
    if outcome.status == "failed":
        raise AutoMLInputError(outcome.error.rstrip("."), "")
    automl = outcome.automl
    summary = {
        "experiment_id": outcome.experiment_id, "status": outcome.status, "task": automl.task_.value,
        "metric": automl.metric_.name, "best_model": automl.best_trial_.family,
        "validation_score": automl.best_trial_.score, "test_score": automl.test_score_,
        "n_trials": len(automl.search_.trials), "wall_seconds": round(time.perf_counter() - start, 2),
        # the budget's part: reading and checking the data, search, ensembles, the final model (explanations after)
        "fit_seconds": round(automl.wall_seconds_, 2),
        "model_path": str(outcome.model_path), "validation": automl.validation_.description,
    }
    if args.json:
        from .export.artifacts import clean_json
        print(json.dumps(clean_json(summary)))
    else:
        print(f"best model: {summary['best_model']}  validation {summary['metric']} = {summary['validation_score']:.5g}"
              + (f"  test = {summary['test_score']:.5g}" if summary["test_score"] is not None else ""))
        print(f"model saved to {summary['model_path']}")
    return 0


def _list_or_show(args: argparse.Namespace) -> int:
    from storage import Store
    from .export.artifacts import clean_json
    store = Store(args.store)
    if args.command == "list":
        table = store.list_experiments()
        if args.json:
            print(table.to_json(orient="records", date_format="iso"))
        elif table.empty:
            print("no experiments yet: run `python -m automl_core train DATA --target COL`")
        else:
            cols = [c for c in ["experiment_id", "name", "task", "metric", "status", "best_model", "best_score",
                                "test_score", "created_at"] if c in table.columns]
            print(table[cols].to_string(index=False))
        return 0
    experiment = store.get_experiment(args.experiment_id)
    if experiment is None:
        raise AutoMLInputError(f"No experiment '{args.experiment_id}' in the store",
                               "run `python -m automl_core list` to see the ids")
    trials = store.trials(args.experiment_id)
    if args.json:
        print(json.dumps(clean_json({**experiment, "trials": trials.to_dict(orient="records")}), default=str))
    else:
        for key in ("experiment_id", "name", "task", "metric", "status", "best_model", "best_score", "test_score",
                    "created_at", "finished_at"):
            print(f"{key:>14}: {experiment.get(key)}")
        if not trials.empty:
            cols = [c for c in ["trial_id", "family", "status", "score", "fit_seconds", "error"] if c in trials.columns]
            print(trials[cols].to_string(index=False))
    return 0
