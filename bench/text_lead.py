"""Text lead trials (``models.text_families.LEAD_TRIALS_PER_FAMILY``) on against off, same seeds, by trial count.

A fixed count of trials (no time budget, so it holds under load) on text sets that did not shape the rule:
yelp, newsgroups_valid as its own set, rotten_tomatoes subsamples (stratified, several seeds), the first
label of arXiv's multi-label files as a multi-class set, and newsgroups_train over several split seeds. Each
set: the bench's 75/25 split (stratified), seed 0; the sentence-embedding families blocked, as a 60 s run
leaves them out (bench_text's notes). Test log loss (ROC AUC for binary) and balanced accuracy, both arms.

    python bench/text_lead.py [--max-trials 11] [--sets a,b] [--out rows.jsonl]
    python bench/text_lead.py --report rows.jsonl [more.jsonl ...]   # writes bench/results/text-lead-*.md/.json
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
from sklearn.metrics import balanced_accuracy_score, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from automl_core import AutoML  # noqa: E402
from automl_core.models import text_families  # noqa: E402

SHARED = Path(os.environ.get("SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
BLOCKED = ("text_embedding_logistic", "text_embedding_lightgbm")


def load(name: str) -> tuple[pd.DataFrame, str, int]:
    """(table, label column, split seed) of a named set."""
    if name.startswith("newsgroups_train"):
        return pd.read_csv(SHARED / "newsgroups_train.csv"), "y", int(name.rsplit("_s", 1)[1])
    if name == "newsgroups_valid":
        return pd.read_csv(SHARED / "newsgroups_valid.csv"), "y", 0
    if name == "yelp":
        return pd.read_csv(SHARED / "yelp_sentiment_train.csv"), "Sentiment", 0
    if name.startswith("rotten"):  # rotten_<rows>_s<seed>: a stratified subsample
        rows, seed = name.split("_")[1], int(name.rsplit("_s", 1)[1])
        df = pd.read_csv(SHARED / "rotten_tomatoes.csv").dropna(subset=["category"])
        sample, _ = train_test_split(df, train_size=int(rows), random_state=seed, stratify=df["category"])
        return sample, "category", 0
    if name == "arxiv_first":
        from automl_core.prepare.multilabel import parse_labels
        df = pd.concat([pd.read_csv(SHARED / f"arxiv_paper_categories_{w}.csv") for w in ("train", "valid")])
        df["first"] = [r[0] if r else None for r in parse_labels(df["terms"])[0]]
        df = df.drop(columns=["terms"]).dropna(subset=["first"])
        counts = df["first"].value_counts()
        return df[df["first"].isin(counts[counts >= 8].index)], "first", 0
    raise KeyError(name)


def run(name: str, lead: int, max_trials: int) -> dict:
    df, label, split = load(name)
    df = df[df[label].notna()]
    train, test = train_test_split(df, test_size=0.25, random_state=split, stratify=df[label])
    classes = sorted(df[label].unique().tolist())
    metric = "roc_auc" if len(classes) == 2 else "log_loss"
    text_families.LEAD_TRIALS_PER_FAMILY = lead
    start = time.perf_counter()
    automl = AutoML(metric=metric, time_budget=None, max_trials=max_trials, seed=0,
                    blocked_models=BLOCKED).fit(train, target=label)
    seconds = time.perf_counter() - start
    proba = np.zeros((len(test), len(classes)))
    proba[:, [classes.index(c) for c in automl.classes_]] = automl.predict_proba(test.drop(columns=[label]))
    y = test[label].to_numpy()
    primary = roc_auc_score(y, proba[:, 1]) if metric == "roc_auc" else log_loss(y, proba, labels=classes)
    board = automl.leaderboard
    return {"set": name, "lead": lead, "rows": len(df), "classes": len(classes), "metric": metric,
            "test": float(primary), "test_bacc": float(balanced_accuracy_score(y, np.array(classes)[proba.argmax(1)])),
            "validation": float(automl.best_trial_.score), "best": str(automl.best_trial_.family),
            "families": board["model"].tolist(), "seconds": round(seconds, 1),
            "load_average": round(os.getloadavg()[0], 1)}


SETS = ("newsgroups_train_s0,newsgroups_train_s1,newsgroups_train_s2,newsgroups_valid,yelp,"
        "rotten_600_s1,rotten_600_s2,rotten_1000_s3,arxiv_first")


def report(rows: list[dict]) -> str:
    """Markdown: per set, off against on, and the wins / losses / ties of the lead (a tie: within 0.002 in
    the primary metric, the same balanced accuracy)."""
    lines = ["| set | rows, classes | metric | off: test (bacc) · best | on: test (bacc) · best |", "|---|---|---|---|---|"]
    tally = {"primary": [0, 0, 0], "bacc": [0, 0, 0]}
    pairs = {}
    for r in rows:
        pairs.setdefault(r["set"], {})["on" if r["lead"] else "off"] = r
    for name, pair in pairs.items():
        if len(pair) < 2:
            continue
        off, on = pair["off"], pair["on"]
        sign = 1 if off["metric"] == "roc_auc" else -1  # higher is better
        for key, tol in (("primary", 0.002), ("bacc", 1e-9)):
            field = "test" if key == "primary" else "test_bacc"
            gain = sign * (on[field] - off[field]) if key == "primary" else on[field] - off[field]
            tally[key][0 if gain > tol else 1 if gain < -tol else 2] += 1
        lines.append(f"| {name} | {on['rows']}, {on['classes']} | {on['metric']} | {off['test']:.4f} ({off['test_bacc']:.3f}) · "
                     f"{off['best']} | {on['test']:.4f} ({on['test_bacc']:.3f}) · {on['best']} |")
    loads = [r["load_average"] for r in rows]
    lines += ["", f"Lead on vs off, wins / losses / ties: primary metric {'/'.join(map(str, tally['primary']))}, "
                  f"balanced accuracy {'/'.join(map(str, tally['bacc']))}. Load average {min(loads)}-{max(loads)} "
                  "(a trial count, so scores do not depend on it)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-trials", type=int, default=11)
    parser.add_argument("--sets", default=SETS)
    parser.add_argument("--out", default=None, help="a JSON lines file to append each result to")
    parser.add_argument("--report", nargs="*", default=None, help="JSON lines files to summarize (no runs)")
    args = parser.parse_args()
    if args.report:
        rows = [json.loads(line) for path in args.report for line in Path(path).read_text().splitlines() if line]
        text = (f"# Text lead trials on vs off at {args.max_trials} trials (bench/text_lead.py)\n\n"
                "Test log loss (ROC AUC for binary) and balanced accuracy on the 25 % test rows; seed 0; "
                "embedding families blocked (a 60 s run leaves them out).\n\n" + report(rows))
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        out = REPO / "bench" / "results" / f"text-lead-{args.max_trials}trials-{stamp}"
        out.with_suffix(".md").write_text(text)
        out.with_suffix(".json").write_text(json.dumps({"max_trials": args.max_trials, "rows": rows}, indent=1))
        print(text + f"wrote {out}.md/.json")
        return
    on = text_families.LEAD_TRIALS_PER_FAMILY
    for name in args.sets.split(","):
        for lead in (0, on):  # off first, then on: same seeds, same split
            row = run(name, lead, args.max_trials)
            print(json.dumps(row), flush=True)
            if args.out:
                with open(args.out, "a") as f:
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
