"""Does a prior-corrected hard decision raise balanced accuracy on the text sets? (issue #22, done-when item:
"ours >= TF-IDF + LR in balanced accuracy on every set"; newsgroups missed it by 0.019 on 49 test rows.)

Balanced accuracy is the mean recall per class, so its best hard decision is argmax p(c|x) / prior(c), not the
argmax of the probabilities that log loss optimises. This measures the rule with the bench's TF-IDF + logistic
regression (word 1-2-grams, min_df 2, sublinear tf) on each set's 75/25 split (random_state 0, the bench's),
two other splits (1, 2) and, where the set ships one, a file that shaped nothing here (yelp's test file,
newsgroups' valid file). One BLAS thread; nothing timed.

    python bench/bench_text_decision.py
"""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from threadpoolctl import threadpool_limits

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
# name -> (file, text column, label column, another file with the same columns or None)
SETS = {"yelp": ("yelp_sentiment_train.csv", "ReviewText", "Sentiment", "yelp_sentiment_test.csv"),
        "newsgroups": ("newsgroups_train.csv", "X", "y", "newsgroups_valid.csv"),
        "rotten": ("rotten_tomatoes.csv", "text", "category", None)}


def _read(name: str, text: str) -> pd.DataFrame:
    df = pd.read_csv(SHARED / name)
    df[text] = df[text].fillna("").astype(str)
    return df


def _row(name: str, y: np.ndarray, proba: np.ndarray, classes: np.ndarray, prior: np.ndarray) -> dict:
    plain, corrected = classes[proba.argmax(1)], classes[(proba / prior).argmax(1)]
    return {"test": name, "rows": len(y), "bal_acc_argmax": balanced_accuracy_score(y, plain),
            "bal_acc_prior": balanced_accuracy_score(y, corrected), "acc_argmax": accuracy_score(y, plain),
            "acc_prior": accuracy_score(y, corrected)}


def run() -> list[dict]:
    rows = []
    for name, (file, text, label, other) in SETS.items():
        df = _read(file, text)
        for seed in (0, 1, 2):
            train, test = train_test_split(df, test_size=0.25, random_state=seed, stratify=df[label])
            model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                                  LogisticRegression(max_iter=1000)).fit(train[text], train[label])
            prior = train[label].value_counts(normalize=True).reindex(model.classes_).to_numpy()
            rows.append({"set": name, **_row(f"75/25 split, seed {seed}", test[label].to_numpy(),
                                             model.predict_proba(test[text]), model.classes_, prior)})
            if other and seed == 0:
                held = _read(other, text)
                rows.append({"set": name, **_row(f"{other} (trained on 75 %)", held[label].to_numpy(),
                                                 model.predict_proba(held[text]), model.classes_, prior)})
            print(rows[-1], flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["# Prior-corrected hard decision vs argmax (bench/bench_text_decision.py)", "",
             "TF-IDF + logistic regression; balanced accuracy (accuracy) of argmax p(c|x) and of argmax p(c|x) / prior(c).",
             "", "| set | test rows | balanced acc.: argmax | prior-corrected | accuracy: argmax | prior-corrected |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['set']}: {r['test']} | {r['rows']:,} | {r['bal_acc_argmax']:.3f} | {r['bal_acc_prior']:.3f} | "
              f"{r['acc_argmax']:.3f} | {r['acc_prior']:.3f} |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    with threadpool_limits(1):
        rows = run()
    text = markdown(rows)
    print(text)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = REPO / "bench" / "results" / f"text-decision-{stamp}"
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"rows": rows}, indent=1))
    print(f"wrote {out}.md/.json")


if __name__ == "__main__":
    main()
