"""Image classification (issue #23) against a raw-pixel logistic regression, in the same run.

For each shared image set: our search (``fit_images``, time budget ``--budget``) on the training images,
scored once on held-out images, beside two baselines fitted in this process on the same split: logistic
regression on raw pixels (32 x 32, grayscale or RGB as the set is) and, where our run used the CNN,
logistic regression on the same pretrained features. On grayscale small images, classical candidates too
(kNN and an RBF SVM on the pixels, an RBF SVM on HOG), and every trial with its seconds (the pixel CNN's
epochs and width). Also the CNN's throughput at 224 px (median of 3, no cache) by the product path (ONNX Runtime) and by
eager torch alternating in the same process, and the cache's speed-up (`--sets ""` measures that alone).
Results go to bench/results/images-<time>.{json,md}.

    python bench/bench_images.py [--budget 120] [--sets images_mnist5k,images_caltech256_subset]
                                 [--max-trials N] [--no-throughput]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from statistics import median
from unittest import mock

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATASETS = Path(os.environ.get("SHARED_DATASETS", REPO.parent / "shared" / "datasets"))

from automl_core.config import AutoMLConfig  # noqa: E402
from automl_core.images import extract  # noqa: E402
from automl_core.images.reader import read_images  # noqa: E402
from automl_core.images.run import fit_images, predict_images  # noqa: E402


def make_pairs(folder: Path, n: int, seed: int = 0, digits: Path | None = None) -> Path:
    """A multi-label image set in ``folder``: ``n`` images of 56 x 28, two random mnist5k digits pasted side by
    side (possibly the same digit: one label), ``labels.csv`` holding each image's set of digits as a list
    (``['3', '5']``). Returns ``folder``. The digits come from ``digits`` (default: the shared images_mnist5k)."""
    import io
    from PIL import Image
    source = digits or DATASETS / "images_mnist5k"
    rows = [line.split(",") for line in (source / "labels.csv").read_text().splitlines()[1:]]
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = ["image_path,label"]
    for i in range(n):
        a, b = rng.choice(len(rows), 2, replace=False)
        pair = Image.new("L", (56, 28))
        for k, row in enumerate((rows[a], rows[b])):
            pair.paste(Image.open(source / row[0]).convert("L").resize((28, 28)), (28 * k, 0))
        buf = io.BytesIO()
        pair.save(buf, format="PNG")
        (folder / "images" / f"{i:05d}.png").write_bytes(buf.getvalue())
        labels = sorted({rows[a][1], rows[b][1]})
        lines.append(f'images/{i:05d}.png,"{labels!r}"')
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder


def split(images, seed: int = 0) -> tuple[list[int], list[int]]:
    """The set's own train / valid folders when it has them, else a stratified 80 / 20 split."""
    tops = [n.split("/")[0] for n in images.names]
    if {"train", "valid"} <= set(tops):
        return [i for i, t in enumerate(tops) if t == "train"], [i for i, t in enumerate(tops) if t == "valid"]
    from sklearn.model_selection import train_test_split
    rows = np.arange(len(images.names))
    train, test = train_test_split(rows, test_size=0.2, stratify=images.labels, random_state=seed)
    return sorted(train.tolist()), sorted(test.tolist())


def logistic(X_train, y_train, X_test, y_test) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X_train, y_train)
    return float((model.predict(X_test) == np.asarray(y_test)).mean())


def hog(X: np.ndarray, side: int, cell: int = 7, bins: int = 9) -> np.ndarray:
    """Histograms of oriented gradients of grayscale pixel rows (cells of ``cell`` px, unsigned angles),
    each cell's histogram scaled to unit length: the classical digit features, in numpy."""
    images = X.reshape(-1, side, side)
    gy, gx = np.gradient(images, axis=(1, 2))
    magnitude, angle = np.hypot(gx, gy), np.mod(np.arctan2(gy, gx), np.pi)
    which = np.minimum((angle / np.pi * bins).astype(int), bins - 1)
    n, cells = len(images), side // cell
    out = np.zeros((n, cells, cells, bins))
    for i in range(cells):
        for j in range(cells):
            m = magnitude[:, i * cell:(i + 1) * cell, j * cell:(j + 1) * cell].reshape(n, -1)
            w = which[:, i * cell:(i + 1) * cell, j * cell:(j + 1) * cell].reshape(n, -1)
            for b in range(bins):
                out[:, i, j, b] = (m * (w == b)).sum(axis=1)
    out /= np.linalg.norm(out, axis=3, keepdims=True) + 1e-6
    return out.reshape(n, -1)


def candidates(train, test, side: int) -> dict[str, dict[str, float]]:
    """Classical candidates on the same split, fitted here with fixed settings (no search): kNN and an
    RBF SVM on the pixels, an RBF SVM on HOG. Accuracy and seconds (fit + predict, under load)."""
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC
    spec = {"pixel_size": side, "pixel_mode": "L"}
    Xtr, Xte = extract.featurize(train.contents, spec).to_numpy(), extract.featurize(test.contents, spec).to_numpy()
    ytr, yte = np.asarray(train.labels), np.asarray(test.labels)
    out = {}
    for label, model, a, b in [("knn_pixels", KNeighborsClassifier(3, weights="distance"), Xtr, Xte),
                               ("svc_rbf_pixels", SVC(C=5.0), Xtr, Xte),
                               ("svc_rbf_hog", SVC(C=5.0), hog(Xtr, side), hog(Xte, side))]:
        start = time.perf_counter()
        accuracy = float((model.fit(a, ytr).predict(b) == yte).mean())
        out[label] = {"accuracy": round(accuracy, 4), "seconds": round(time.perf_counter() - start, 1)}
    return out


def trial_rows(automl) -> list[dict[str, object]]:
    """Every trial: family, status, validation score, fit seconds, wall seconds, parameters."""
    return [{"id": t.trial_id, "family": t.family, "status": t.status,
             "score": None if t.score is None else round(t.score, 4), "fit_s": round(t.fit_seconds, 1),
             "wall_s": round(t.finished_at - t.started_at, 1), "params": t.params, "error": t.error[:200]}
            for t in automl.search_.trials]


def run_set(name: str, budget: float, cache_dir: str, max_trials: int | None) -> dict[str, object]:
    from storage import Store
    images = read_images(DATASETS / name)
    train_rows, test_rows = split(images)
    train, test = images.subset(train_rows), images.subset(test_rows)
    store = Store(os.path.join(tempfile.mkdtemp(prefix="bench-images-"), "store.duckdb"))
    start = time.perf_counter()
    outcome = fit_images(store, train, AutoMLConfig(task="image_classification", time_budget=budget, seed=0,
                                                      max_trials=max_trials),
                         cache_dir=cache_dir)
    import joblib
    bundle = joblib.load(outcome.model_path)
    predicted = predict_images(bundle, test, cache_dir=cache_dir)
    ours = float((predicted["prediction"].astype(str).to_numpy() == np.asarray(test.labels)).mean())
    gray = sum(images.grayscale) >= len(images.grayscale) / 2
    pixels = {"pixel_size": 32, "pixel_mode": "L" if gray else "RGB"}
    raw = logistic(extract.featurize(train.contents, pixels), train.labels,
                   extract.featurize(test.contents, pixels), test.labels)
    cnn_lr = None
    if outcome.spec["cnn"]:
        spec = {"cnn": True, "cnn_size": outcome.spec["cnn_size"], "flip": outcome.spec["flip"]}
        cnn_lr = logistic(extract.featurize(train.contents, spec, cache_dir=cache_dir), train.labels,
                          extract.featurize(test.contents, spec, cache_dir=cache_dir), test.labels)
    automl = outcome.automl
    side = outcome.spec["pixel_size"]
    classical = candidates(train, test, side) if side and outcome.spec["pixel_mode"] == "L" else {}
    return {"candidates": classical, "trials": trial_rows(automl), "wall_s": round(time.perf_counter() - start, 1),
            "dataset": name, "n_train": len(train_rows), "n_test": len(test_rows), "classes": len(images.classes),
            "budget_s": budget, "max_trials": max_trials, "features": outcome.spec, "featurize_s": round(outcome.featurize_seconds, 1),
            "search_fit_s": round(automl.wall_seconds_, 1), "best_model": automl.best_trial_.family,
            "n_trials": len(automl.search_.trials), "ours_accuracy": round(ours, 4),
            "raw_pixel_logreg_accuracy": round(raw, 4),
            "cnn_feature_logreg_accuracy": None if cnn_lr is None else round(cnn_lr, 4)}


def run_pairs(budget: float, cache_dir: str, max_trials: int | None, n_train: int = 3000,
              n_test: int = 1000) -> dict[str, object]:
    """The multi-label set (:func:`make_pairs`, built in a temp folder): our run on the first ``n_train`` images,
    scored on the last ``n_test``, beside one-vs-rest logistic regression on raw pixels (32 x 32, threshold 0.5)
    fitted here on the same split. Micro-F1 / macro-F1 / subset accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from storage import Store
    from automl_core.prepare.multilabel import indicator, multilabel_scores
    images = read_images(make_pairs(Path(tempfile.mkdtemp(prefix="bench-pairs-")), n_train + n_test))
    train, test = images.subset(list(range(n_train))), images.subset(list(range(n_train, n_train + n_test)))
    labels = images.classes
    Y_train, Y_test = indicator(train.label_sets, labels)[0], indicator(test.label_sets, labels)[0]
    store = Store(os.path.join(tempfile.mkdtemp(prefix="bench-images-"), "store.duckdb"))
    start = time.perf_counter()
    outcome = fit_images(store, train, AutoMLConfig(task="auto", time_budget=budget, seed=0, max_trials=max_trials),
                         cache_dir=cache_dir)
    import joblib
    predicted = predict_images(joblib.load(outcome.model_path), test, cache_dir=cache_dir)
    bundle = joblib.load(outcome.model_path)
    ours = multilabel_scores(Y_test, predicted[[f"proba_{l}" for l in labels]].to_numpy() >= bundle["thresholds"])
    pixels = {"pixel_size": 32, "pixel_mode": "L"}
    lr = make_pipeline(StandardScaler(), OneVsRestClassifier(LogisticRegression(max_iter=2000)))
    lr.fit(extract.featurize(train.contents, pixels).to_numpy(), Y_train)
    raw = multilabel_scores(Y_test, lr.predict_proba(extract.featurize(test.contents, pixels).to_numpy()) >= 0.5)
    automl = outcome.automl
    return {"dataset": "mnist_pairs", "n_train": n_train, "n_test": n_test, "labels": len(labels),
            "labels_per_image": round(float(Y_train.sum(axis=1).mean()), 3), "budget_s": budget,
            "max_trials": max_trials, "features": outcome.spec, "featurize_s": round(outcome.featurize_seconds, 1),
            "search_fit_s": round(automl.wall_seconds_, 1), "best_model": automl.best_trial_.family,
            "n_trials": len(automl.search_.trials), "wall_s": round(time.perf_counter() - start, 1),
            "ours": {k: round(v, 4) for k, v in ours.items()},
            "raw_pixel_ovr_logreg": {k: round(v, 4) for k, v in raw.items()}, "trials": trial_rows(automl)}


def throughput(cache_dir: str, repeats: int = 3) -> dict[str, float]:
    """CNN images/s at 224 px with the flip (median of ``repeats``, nothing cached) by the product path (ONNX
    Runtime), alternating with eager torch (the path before it) in this process; and the cache's speed-up."""
    photos = [p.read_bytes() for p in sorted((DATASETS / "images_caltech256_subset").glob("*/*/*.jpg"))][:24]
    fresh = tempfile.mkdtemp(dir=cache_dir)
    extract.cnn_features(photos[:2], cache_dir=fresh)  # weights, the ONNX graph (kept there), first-call set-up

    def torch_only() -> None:
        with mock.patch.object(extract, "_onnx_forward", lambda size, cache_dir: None):
            extract.cnn_features(photos, 224, True)

    rates, torch_rates = [], []
    for _ in range(repeats):
        for fn, out in ((lambda: extract.cnn_features(photos, 224, True), rates), (torch_only, torch_rates)):
            start = time.perf_counter()
            fn()
            out.append(len(photos) / (time.perf_counter() - start))
    start = time.perf_counter()
    extract.cnn_features(photos, 224, True, cache_dir=fresh)
    first = time.perf_counter() - start
    start = time.perf_counter()
    extract.cnn_features(photos, 224, True, cache_dir=fresh)
    second = time.perf_counter() - start
    return {"images_per_s_224_flip_median3": round(median(rates), 2), "rates": [round(r, 2) for r in rates],
            "torch_images_per_s_median3": round(median(torch_rates), 2),
            "torch_rates": [round(r, 2) for r in torch_rates],
            "speedup_vs_torch": round(median(rates) / median(torch_rates), 2),
            "cache_first_s": round(first, 2), "cache_second_s": round(second, 3),
            "cache_speedup": round(first / max(second, 1e-9), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=120.0)
    parser.add_argument("--sets", default="images_mnist5k,images_caltech256_subset,mnist_pairs",
                        help="mnist_pairs: the multi-label set built from pairs of mnist5k digits")
    parser.add_argument("--max-trials", type=int, help="also stop after N trials (a loaded machine: compare by trials)")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--no-throughput", action="store_true", help="skip the CNN throughput measurement")
    args = parser.parse_args()
    start_load = os.getloadavg()[0]  # before this bench's own work: other jobs on the 2 cores
    cache_dir = tempfile.mkdtemp(prefix="bench-images-cache-")  # a cold cache: first runs pay the CNN
    speed = throughput(cache_dir) if not args.no_throughput else \
        {"images_per_s_224_flip_median3": None, "rates": [], "cache_first_s": None, "cache_second_s": None,
         "cache_speedup": None}
    print(f"CNN throughput: {speed}", flush=True)
    results, pairs = [], []
    for name in [n for n in args.sets.split(",") if n]:  # --sets "": the throughput alone
        print(f"{name}...", flush=True)
        if name == "mnist_pairs":
            pairs.append(run_pairs(args.budget, cache_dir, args.max_trials))
        else:
            results.append(run_set(name, args.budget, cache_dir, args.max_trials))
        print(json.dumps((pairs or results)[-1] if name == "mnist_pairs" else results[-1]), flush=True)
    load = os.getloadavg()
    lines = [f"# Image classification bench ({datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC)", "",
             (f"Quiet machine: load average {start_load:.1f} as the bench started." if start_load <= 3.0 else
              f"Timings were taken under load: other jobs shared the 2 cores (load average {start_load:.1f} at the "
              f"start, {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} at the end), so seconds are inflated and images/s "
              "deflated; the accuracies compare methods on the same split in the same run."), "",
             f"Budget {args.budget:g} s per set" + (f", at most {args.max_trials} trials" if args.max_trials else "")
             + ".", "",
             (f"CNN (EfficientNet-Lite0, 224 px, flip average, ONNX Runtime): "
              f"{speed['images_per_s_224_flip_median3']} images/s (median of 3: {speed['rates']}); eager torch "
              f"alternating in the same process {speed['torch_images_per_s_median3']} images/s "
              f"({speed['torch_rates']}): {speed['speedup_vs_torch']}x; cache: first {speed['cache_first_s']} s, "
              f"second {speed['cache_second_s']} s ({speed['cache_speedup']}x)." if speed["rates"] else
              "CNN throughput not measured in this run (--no-throughput)."), "",
             "| set | train / test | budget s | features | featurize s | search s | best | trials | ours | "
             "raw-pixel logreg | CNN-feature logreg |", "|" + "---|" * 11]
    for r in results:
        f = r["features"]
        feats = " + ".join(x for x in (f"pixels {f['pixel_size']}" if f["pixel_size"] else "",
                                       f"CNN {f['cnn_size']}" if f["cnn"] else "") if x)
        lines.append(f"| {r['dataset']} | {r['n_train']} / {r['n_test']} | {r['budget_s']:g} | {feats} | "
                     f"{r['featurize_s']} | {r['search_fit_s']} | {r['best_model']} | {r['n_trials']} | "
                     f"{r['ours_accuracy']:.4f} | {r['raw_pixel_logreg_accuracy']:.4f} | "
                     f"{'' if r['cnn_feature_logreg_accuracy'] is None else format(r['cnn_feature_logreg_accuracy'], '.4f')} |")
    if pairs:
        lines += ["", "Multi-label: pairs of mnist5k digits side by side (56 x 28; labels = the set of the two digits), "
                  "first n images to train, the rest to test; ours at its saved thresholds, the baseline "
                  "one-vs-rest logistic regression on raw 32 x 32 pixels at 0.5:", "",
                  "| set | train / test | features | best | trials | ours micro-F1 / macro-F1 / subset acc | "
                  "raw-pixel OvR logreg |", "|" + "---|" * 7]
        for r in pairs:
            f, o, b = r["features"], r["ours"], r["raw_pixel_ovr_logreg"]
            feats = " + ".join(x for x in (f"pixels {f['pixel_size']}" if f["pixel_size"] else "",
                                           f"CNN {f['cnn_size']}" if f["cnn"] else "") if x)
            lines.append(f"| {r['dataset']} | {r['n_train']} / {r['n_test']} | {feats} | {r['best_model']} | "
                         f"{r['n_trials']} | {o['f1_micro']:.4f} / {o['f1_macro']:.4f} / {o['subset_accuracy']:.4f} | "
                         f"{b['f1_micro']:.4f} / {b['f1_macro']:.4f} / {b['subset_accuracy']:.4f} |")
        results_for_trials = results + pairs
    else:
        results_for_trials = results
    lines += ["", "Classical candidates on the same split (fixed settings, fitted in this process):", ""]
    lines += [f"- {r['dataset']}: " + ", ".join(f"{k} {v['accuracy']:.4f} ({v['seconds']} s)"
                                               for k, v in r["candidates"].items()) for r in results if r["candidates"]]
    lines += ["", "Trials (fit s = the trial's fit time summed over its folds; wall s = start to finish; the pixel CNN's epochs: what its folds ran, on average and per fold):", ""]
    for r in results_for_trials:
        lines.append(f"- {r['dataset']} (whole run {r['wall_s']} s): " + "; ".join(
            f"#{t['id']} {t['family']} {t['status']} {t['score']} fit {t['fit_s']} s wall {t['wall_s']} s"
            + (f" epochs {t['params'].get('epochs')} (per fold {t['params'].get('epochs_run')}) width "
               f"{t['params'].get('width')}" if t['family'] == 'pixel_cnn' else "")
            for t in r["trials"]))
    md = "\n".join(lines) + "\n"
    print(md)
    if not args.no_record:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        out = REPO / "bench" / "results" / f"images-{stamp}"
        out.with_suffix(".md").write_text(md)
        out.with_suffix(".json").write_text(json.dumps({"load_average": load, "throughput": speed,
                                                        "results": results, "pairs": pairs}, indent=1))
        print(f"wrote {out}.md / .json")


if __name__ == "__main__":
    main()
