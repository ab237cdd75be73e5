"""Text classification on the shared text sets: this engine against a TF-IDF + logistic regression baseline.

Protocol (../shared/peers.md, "Text classification"): a fixed 75/25 split of the file named
(random_state=0, stratified on the label), one seed, the primary metric of that table (ROC AUC for the
binary set, log loss for the others) plus balanced accuracy. The baseline -- word 1-2-grams (min_df 2,
sublinear tf) + scikit-learn's default logistic regression, no tuning -- runs in the same process, on the
same split, right before the engine, so both see the same machine load. AutoGluon Tabular's scores are the
ones recorded in peers.md (not re-run here).

Columns: metric on the test rows, seconds (fit; for the engine the whole ``fit`` within its budget),
peak MB (resident memory of this process and its trial workers, sampled every 0.2 s, during the fit),
texts/s (predicting the test rows). Timings taken while several other jobs shared the 2 cores are
inflated; the results file says so.

Multi-label (``arxiv``, issue #22): trained on arxiv_paper_categories_train + _valid (the files' own split),
scored on _test; micro-F1 (primary), macro-F1, subset accuracy over every label of the three files (labels the
engine leaves out, too rare to learn, count as never predicted). Baseline: the same TF-IDF over title + abstract,
scikit-learn's OneVsRestClassifier(LogisticRegression()) at the usual 0.5 threshold.

Throughput (``--throughput``, issue #22's targets: 200 short texts/s embedded, 5,000 texts/s predicted by the
TF-IDF tier): median of 3 on the first 128 yelp reviews (11 words on average), nothing cached between repeats,
the ways alternating in one process: the old path, sentence-transformers' ``encode`` on torch (batch 64; what a
saved model's predict runs), and the search's path, our ``EmbeddingCache.encode`` on ONNX Runtime (longest first
over every text, then batches); the ratio new/old is the median of the runs' ratios. Then the default
``text_logistic`` model (trained on the yelp file) predicting 5,000 rotten_tomatoes texts.

    python bench/bench_text.py [--budget 60 | --max-trials N] [--sets yelp,newsgroups,rotten,arxiv] [--max-rows N]
    python bench/bench_text.py --throughput --sets ""
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench_engine import PeakMemory  # noqa: E402  (same folder)
from automl_core import AutoML  # noqa: E402

SHARED = Path(os.environ.get("SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
# name -> (file, text column, label column, primary metric)
SETS = {"yelp": ("yelp_sentiment_train.csv", "ReviewText", "Sentiment", "roc_auc"),
        "newsgroups": ("newsgroups_train.csv", "X", "y", "log_loss"),
        "rotten": ("rotten_tomatoes.csv", "text", "category", "log_loss")}
# AutoGluon 1.6.3 Tabular (medium preset) at 60 s, as recorded in ../shared/peers.md: (primary, balanced accuracy)
AUTOGLUON = {"yelp": (0.6257, 0.616), "newsgroups": (1.329, 0.465), "rotten": (0.5181, 0.792)}
MULTILABEL = {"arxiv": ("arxiv_paper_categories_{}.csv", ("titles", "summaries"), "terms")}


def score(metric: str, y: np.ndarray, proba: np.ndarray, classes: list) -> float:
    if metric == "roc_auc":
        return float(roc_auc_score(y, proba[:, 1]))
    return float(log_loss(y, proba, labels=classes))


def measure(fit, predict, X_test: pd.DataFrame) -> dict:
    """Fit (timed, memory sampled), then predict the test rows (timed)."""
    memory = PeakMemory(os.getpid())
    memory.peak = memory._tree_rss()  # a fit shorter than one 0.2 s sample still has a peak
    start = time.perf_counter()
    fitted = fit()
    seconds = time.perf_counter() - start
    peak = memory.stop()
    start = time.perf_counter()
    proba = predict(fitted, X_test)
    rate = len(X_test) / max(time.perf_counter() - start, 1e-9)
    return {"fitted": fitted, "proba": proba, "seconds": round(seconds, 1), "peak_mb": round(peak),
            "texts_per_s": round(rate)}


def run_set(name: str, budget: float | None, max_rows: int | None, max_trials: int | None = None) -> dict:
    file, text, label, metric = SETS[name]
    df = pd.read_csv(SHARED / file)
    df = df[df[label].notna()]
    if max_rows and len(df) > max_rows:
        df = df.sample(max_rows, random_state=0)
    train, test = train_test_split(df, test_size=0.25, random_state=0, stratify=df[label])
    classes = sorted(df[label].unique().tolist())
    y_test = test[label].to_numpy()

    def fit_baseline():
        model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True), LogisticRegression())
        return model.fit(train[text].fillna("").astype(str), train[label])

    base = measure(fit_baseline, lambda m, X: m.predict_proba(X[text].fillna("").astype(str)), test)

    def fit_ours():
        return AutoML(metric=metric, time_budget=budget, max_trials=max_trials, seed=0).fit(train, target=label)

    row = {"set": name, "file": file, "rows": len(df), "classes": len(classes), "metric": metric,
           "baseline": score(metric, y_test, base["proba"], classes),
           "baseline_bacc": float(balanced_accuracy_score(y_test, np.array(classes)[base["proba"].argmax(1)])),
           "baseline_s": base["seconds"], "baseline_mb": base["peak_mb"], "baseline_texts_s": base["texts_per_s"],
           "autogluon": AUTOGLUON[name][0], "autogluon_bacc": AUTOGLUON[name][1],
           "load_average_before": round(os.getloadavg()[0], 1)}
    from automl_core.errors import AutoMLInputError
    try:
        ours = measure(fit_ours, lambda m, X: m.predict_proba(X.drop(columns=[label])), test)
    except AutoMLInputError as exc:  # e.g. no trial finished: a result too, recorded as such
        return {**row, "ours": None, "failure": str(exc)}
    automl = ours["fitted"]
    order = [classes.index(c) for c in automl.classes_]  # the engine's column order -> sorted labels
    proba_ours = np.zeros_like(ours["proba"])
    proba_ours[:, order] = ours["proba"]
    row.update({
           "ours": score(metric, y_test, proba_ours, classes),
           "ours_bacc": float(balanced_accuracy_score(y_test, np.array(classes)[proba_ours.argmax(1)])),
           "ours_s": ours["seconds"], "ours_mb": ours["peak_mb"], "ours_texts_s": ours["texts_per_s"],
           "best_model": str(automl.best_trial_.family), "n_trials": int(len(automl.search_.trials)),
           "notes": automl.card_.get("notes", [])})
    return row


def run_multilabel(name: str, budget: float | None, max_trials: int | None) -> dict:
    """A multi-label set: the engine (task detected from the list target) against TF-IDF + one-vs-rest LR."""
    from sklearn.multiclass import OneVsRestClassifier
    from automl_core.prepare.multilabel import indicator, multilabel_scores, parse_labels
    pattern, texts, label = MULTILABEL[name]
    train = pd.concat([pd.read_csv(SHARED / pattern.format(w)) for w in ("train", "valid")], ignore_index=True)
    test = pd.read_csv(SHARED / pattern.format("test"))
    lab_train, lab_test = parse_labels(train[label])[0], parse_labels(test[label])[0]
    Y_test, every = indicator(lab_test, sorted({x for row in lab_train + lab_test for x in row}))

    def joined(X: pd.DataFrame) -> pd.Series:
        return X[list(texts)].fillna("").astype(str).agg(" ".join, axis=1)

    def fit_baseline():
        Y, _ = indicator(lab_train, every)
        keep = Y.any(axis=0)  # a label with no training row has no head; its column stays 0
        model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                              OneVsRestClassifier(LogisticRegression()))
        return model.fit(joined(train), Y[:, keep]), keep

    def predict_baseline(fitted, X):
        (model, keep), out = fitted, np.zeros((len(X), len(every)))
        out[:, keep] = model.predict_proba(joined(X))
        return out >= 0.5

    base = measure(fit_baseline, predict_baseline, test)
    ours = measure(lambda: AutoML(time_budget=budget, max_trials=max_trials, seed=0).fit(train, target=label),
                   lambda m, X: m.predict(X.drop(columns=[label])), test)
    automl = ours["fitted"]
    Y_ours, _ = indicator(parse_labels(pd.Series(ours["proba"], name=label))[0], every)
    b, o = multilabel_scores(Y_test, base["proba"]), multilabel_scores(Y_test, Y_ours)
    return {"set": name, "file": pattern.format("{train,valid,test}"), "train_rows": len(train), "test_rows": len(test),
            "labels": len(every), "labels_learned": len(automl.classes_), "metric": "f1_micro",
            **{f"baseline_{k}": v for k, v in b.items()}, **{f"ours_{k}": v for k, v in o.items()},
            "baseline_s": base["seconds"], "ours_s": ours["seconds"], "ours_mb": ours["peak_mb"],
            "best_model": str(automl.best_trial_.family), "n_trials": int(len(automl.search_.trials)),
            "validation_f1_micro": automl.best_trial_.score}


SHORT, BATCHES, REPEATS = 128, (32, 64), 3  # a loaded machine embeds a few texts/s: more would take an hour


def throughput() -> dict:
    """Texts per second, median of 3: the product's embedding path (ORT, through ``EmbeddingCache.encode``)
    beside the old one (sentence-transformers on torch, which a saved model's predict still runs), in
    alternating runs in this process, so both see the same load; and the TF-IDF tier's predict."""
    import torch
    from automl_core.prepare import embeddings, onnx_encoder
    short = pd.read_csv(SHARED / "yelp_sentiment_train.csv")["ReviewText"].dropna().astype(str).tolist()[:SHORT]
    exported = not onnx_encoder.graph_path().exists()
    start = time.perf_counter()
    embeddings.load_search_encoder()
    rows = {"torch_threads": torch.get_num_threads(), "short_texts": len(short),
            "short_words_mean": round(float(np.mean([len(t.split()) for t in short])), 1),
            "ort_load_s": round(time.perf_counter() - start, 1), "ort_graph_exported_now": exported,
            "load_average_before": round(os.getloadavg()[0], 1)}
    encoder = embeddings.load_encoder()
    ways = {"torch_encode_b64 (old; a saved model's predict)": lambda: encoder.encode(short, batch_size=64)}
    for batch in BATCHES:
        def cached(batch: int = batch) -> None:
            embeddings.BATCH = batch
            embeddings.EmbeddingCache().encode(short)  # a fresh cache: every text embedded
        ways[f"cache_encode_ort_b{batch}" + (" (new; the search)" if batch == embeddings.BATCH else "")] = cached
    product = next(k for k in ways if k.endswith("(new; the search)"))
    default_batch = embeddings.BATCH
    for run in ways.values():  # untimed: first calls allocate (torch's and ORT's buffers)
        run()
    times: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(REPEATS):  # alternating: a change in load hits every way alike
        for name, run in ways.items():
            begin = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - begin)
    embeddings.BATCH = default_batch
    ratios = {k: [o / n for o, n in zip(times[next(iter(ways))], v)] for k, v in times.items()}
    for name, spent in times.items():
        rows[name] = round(len(short) / float(np.median(spent)), 1)
    rows["ratio_new_over_old"] = round(float(np.median(ratios[product])), 2)
    rows["load_average_after"] = round(os.getloadavg()[0], 1)
    train = pd.read_csv(SHARED / "yelp_sentiment_train.csv")
    model = AutoML(max_trials=1, time_budget=None, seed=0, ensembles=False,
                   allowed_models=("text_logistic",)).fit(train, target="Sentiment")
    texts = pd.read_csv(SHARED / "rotten_tomatoes.csv")["text"].dropna().astype(str).head(5000)
    frame = pd.DataFrame({"ReviewText": texts.to_numpy()})
    spent = []
    for _ in range(REPEATS):
        begin = time.perf_counter()
        model.predict_proba(frame)
        spent.append(time.perf_counter() - begin)
    rows["tfidf_predict"] = round(len(frame) / float(np.median(spent)), 1)
    return rows


HEADER = ("torch_threads", "short_texts", "short_words_mean", "ort_load_s", "ort_graph_exported_now",
          "load_average_before", "load_average_after", "ratio_new_over_old")


def markdown_throughput(r: dict) -> str:
    loaded = "the ORT graph exported in this run" if r.get("ort_graph_exported_now") else "the ORT graph already on disk"
    return "\n".join(["", f"Throughput, texts/s (median of {REPEATS}, the embedding ways alternating in one process; "
                            f"torch threads {r['torch_threads']}; {r['short_texts']} yelp reviews of "
                            f"{r['short_words_mean']} words on average; load average {r.get('load_average_before')} "
                            f"before, {r.get('load_average_after')} after). New over old, median of the runs' "
                            f"ratios: **{r.get('ratio_new_over_old')}x**. Loading the ORT encoder: "
                            f"{r.get('ort_load_s')} s ({loaded}).", "",
                       "| what | texts/s |", "|---|---|",
                       *[f"| {k} | {v:,} |" for k, v in r.items() if k not in HEADER]]) + "\n"


def markdown_multilabel(rows: list[dict]) -> str:
    lines = ["", "Multi-label: micro-F1 / macro-F1 / subset accuracy on the test file (see the docstring).", "",
             "| set | train, test rows | labels (learned) | TF-IDF + one-vs-rest LR | ours | ours: best model, "
             "trials, seconds |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['file']} | {r['train_rows']}, {r['test_rows']} | {r['labels']} ({r['labels_learned']}) | "
                     f"{r['baseline_f1_micro']:.4f} / {r['baseline_f1_macro']:.4f} / {r['baseline_subset_accuracy']:.3f} | "
                     f"{r['ours_f1_micro']:.4f} / {r['ours_f1_macro']:.4f} / {r['ours_subset_accuracy']:.3f} | "
                     f"{r['best_model']}, {r['n_trials']}, {r['ours_s']} s |")
    return "\n".join(lines) + "\n"


#: A 1-minute load average above this when a run started means other jobs shared the 2 cores (the
#: bench itself keeps about 2 busy).
QUIET_LOAD = 3.0


def _load_words(rows: list[dict]) -> str:
    loads = [r["load_average_before"] for r in rows if r.get("load_average_before") is not None]
    if loads and max(loads) <= QUIET_LOAD:
        return f"Quiet machine: load average {max(loads)} or less as each run started (the bench's own work)."
    return ("**Timings taken under load** (several jobs shared the 2 cores), so seconds are inflated and fewer "
            "trials ran than on an idle machine.")


def markdown(rows: list[dict], budget: float | None, max_trials: int | None = None) -> str:
    size = f"{max_trials} trials (no time budget)" if max_trials else f"{budget:.0f} s"
    lines = [f"# Text classification at {size} (bench/bench_text.py)", "",
             "75/25 split of each file (random_state=0, stratified), seed 0, 2 cores. Cell: primary metric "
             "(balanced accuracy) · fit seconds · peak MB · predict texts/s. AutoGluon Tabular: as recorded in "
             "../shared/peers.md. " + _load_words(rows), "",
             "| set | rows, classes | metric | TF-IDF + LR | ours | AutoGluon Tabular | ours: best model, trials |",
             "|---|---|---|---|---|---|---|"]
    for r in [r for r in rows if "baseline" in r]:
        if r["ours"] is None:
            lines.append(f"| {r['file']} | {r['rows']:,}, {r['classes']} | {r['metric']} | "
                         f"{r['baseline']:.4f} ({r['baseline_bacc']:.3f}) · {r['baseline_s']} s | "
                         f"no model: {r['failure']} | {r['autogluon']} ({r['autogluon_bacc']}) | — |")
            continue
        lines.append(f"| {r['file']} | {r['rows']:,}, {r['classes']} | {r['metric']} | "
                     f"{r['baseline']:.4f} ({r['baseline_bacc']:.3f}) · {r['baseline_s']} s · {r['baseline_mb']} MB · "
                     f"{r['baseline_texts_s']:,}/s | {r['ours']:.4f} ({r['ours_bacc']:.3f}) · {r['ours_s']} s · "
                     f"{r['ours_mb']} MB · {r['ours_texts_s']:,}/s | {r['autogluon']} ({r['autogluon_bacc']}) | "
                     f"{r['best_model']}, {r['n_trials']} |")
    loads = [f"{r['set']} {r['load_average_before']}" for r in rows if "load_average_before" in r]
    if loads:
        lines += ["", "Load average (1 min) of the 2 cores as each engine run started: " + ", ".join(loads) + "."]
    return "\n".join(lines) + "\n" + markdown_multilabel([r for r in rows if r["set"] in MULTILABEL])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--sets", default=",".join([*SETS, *MULTILABEL]))
    parser.add_argument("--max-rows", type=int, default=None)
    parser.add_argument("--throughput", action="store_true", help="also measure embedding and predict texts/s")
    parser.add_argument("--max-trials", type=int, default=None,
                        help="a trial count instead of a time budget (a loaded machine: quality, not speed)")
    args = parser.parse_args()
    if args.max_trials:
        args.budget = None
    rows = []
    for name in [n for n in args.sets.split(",") if n]:
        rows.append(run_multilabel(name, args.budget, args.max_trials) if name in MULTILABEL
                    else run_set(name, args.budget, args.max_rows, args.max_trials))
        print({k: v for k, v in rows[-1].items() if k in ("set", "baseline", "ours", "ours_s", "best_model", "failure")},
              flush=True)
    text = markdown(rows, args.budget, args.max_trials)
    speeds = throughput() if args.throughput else None
    if speeds:
        text += markdown_throughput(speeds)
    print(text)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    size = f"{args.max_trials}trials" if args.max_trials else f"{args.budget:.0f}s"
    out = REPO / "bench" / "results" / f"text-{size}-{stamp}"
    out.with_suffix(".md").write_text(text)
    meta = {"budget": args.budget, "max_trials": args.max_trials, "max_rows": args.max_rows, "under_load": True,
            "cores": os.cpu_count(), "load_average": os.getloadavg()}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows, "throughput": speeds}, indent=1))
    print(f"wrote {out}.md/.json")


if __name__ == "__main__":
    main()
