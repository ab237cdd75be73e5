"""Would a temperature fitted on the saved model's out-of-fold predictions lower test log loss (issue #25)?

    python bench/oof_temperature.py wine,digits,iris,penguins --trials 8 [--out]

Per set: one search at a fixed trial count and seed (``final_model="auto"``, the engine's own choice of the
saved model), on bench_engine.py's 75/25 split; the saved model's test log loss as is, and after scaling its
log-probabilities by one inverse temperature ``beta`` fitted (by log loss) on the chosen row's validation
(out-of-fold) predictions — what AutoGluon does for log loss on its validation rows. Also: what was saved
(refit / bag, family), the validation scores of the chosen row and of the best single LightGBM trial, and one
default LGBMClassifier on the same split. Scores do not depend on the machine's load (fixed trial counts).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
EPS = 1e-15


def sharpen(proba: np.ndarray, beta: float) -> np.ndarray:
    """Probabilities with their logs scaled by ``beta`` (softmax(beta * log p)): beta > 1 sharpens."""
    logp = beta * np.log(np.clip(proba, EPS, 1.0))
    logp -= logp.max(axis=1, keepdims=True)
    out = np.exp(logp)
    return out / out.sum(axis=1, keepdims=True)


def fit_beta(proba: np.ndarray, codes: np.ndarray) -> float:
    """The inverse temperature minimising log loss on these rows (bounded like scikit-learn's: e^-10..e^10)."""
    def loss(log_beta: float) -> float:
        p = sharpen(proba, float(np.exp(log_beta)))
        return float(-np.mean(np.log(np.clip(p[np.arange(len(codes)), codes], EPS, 1.0))))
    return float(np.exp(minimize_scalar(loss, bounds=(-3.0, 3.0), method="bounded").x))


def _loss(proba: np.ndarray, codes: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(codes)), codes], EPS, 1.0))))


def cross_fitted_gain(proba: np.ndarray, codes: np.ndarray, seed: int = 0) -> float:
    """Log loss as is minus tempered, on out-of-fold rows whose temperature was fitted on the other half
    (two halves, each scored with the other's beta): > 0 when a temperature helps rows it was not fit on."""
    half = np.random.default_rng(seed).permutation(len(codes)) % 2 == 0
    gain = 0.0
    for fit_rows in (half, ~half):
        beta = fit_beta(proba[fit_rows], codes[fit_rows])
        rest = ~fit_rows
        gain += (_loss(proba[rest], codes[rest]) - _loss(sharpen(proba[rest], beta), codes[rest])) * rest.sum()
    return gain / len(codes)


def one_set(row: dict, trials: int) -> dict:
    from automl_core import AutoML
    from bench_engine import classes_of, plain_lightgbm, score, split
    with tempfile.TemporaryDirectory() as tmp:
        _, _, train, test = split(row, Path(tmp))
    target, task = row["target"], row["task"]
    classes = classes_of(train, target, task)
    lgbm, _ = plain_lightgbm(task, train, test, target)
    began = time.perf_counter()
    a = AutoML(max_trials=trials, time_budget=None, seed=0, task=task, metric="log_loss").fit(train, target=target)
    search_s = time.perf_counter() - began
    X_test, y_test = test.drop(columns=target), test[target].to_numpy()
    proba = a.predict_proba(X_test)
    order = [list(a.classes_).index(c) for c in classes]
    proba = np.asarray(proba)[:, order]
    val = a.predictions_["validation"]
    chosen = a.final_.row
    oof = val.models[chosen.trial_id]                       # ordered like val.classes
    oof = oof[:, [list(val.classes).index(c) for c in classes]]
    codes = np.array([classes.index(c) for c in val.labels_true])
    beta = fit_beta(oof, codes)
    gain = cross_fitted_gain(oof, codes)
    lgbm_rows = [t for t in a.trials_ if t.family == "lightgbm" and t.status == "ok"]
    best_lgbm = min((t.score for t in lgbm_rows), default=None)
    out = {"set": Path(row["file"]).stem, "rows": len(train), "classes": len(classes), "trials": trials,
           "saved": f"{a.final_.final} {chosen.family}", "validation": chosen.score, "best_lgbm_validation": best_lgbm,
           "plain_lightgbm": lgbm, "ours": score(task, y_test, proba, classes), "beta": beta,
           "ours_tempered": score(task, y_test, sharpen(proba, beta), classes),
           "cross_gain": gain, "ours_guarded": score(task, y_test, sharpen(proba, beta) if gain > 0 else proba, classes),
           "oof_tempered": float(-np.mean(np.log(np.clip(sharpen(oof, beta)[np.arange(len(codes)), codes],
                                                                      EPS, 1.0)))),
           "search_s": round(search_s, 1)}
    print(json.dumps(out, default=float), flush=True)
    return out


def main() -> None:
    from bench_engine import datasets
    from same_search import collection_rows
    parser = argparse.ArgumentParser()
    parser.add_argument("sets", help="comma-separated dataset stems")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--out", help="write bench/results/<OUT>.md/.json")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    wanted = args.sets.split(",")
    rows = [r for r in datasets(bundled=True) if Path(r["file"]).stem in wanted]
    rows += collection_rows([w for w in wanted if w not in {Path(r["file"]).stem for r in rows}])
    rows = [r for r in rows if r["task"] == "multiclass"]
    table = pd.DataFrame([one_set(r, args.trials) for r in rows])
    ratio = table["ours_tempered"] / table["ours"]
    lines = [f"tempered better on {int((ratio < 0.999).sum())}, worse on {int((ratio > 1.001).sum())}, tied (0.1 %) on "
             f"{int(((ratio >= 0.999) & (ratio <= 1.001)).sum())} of {len(table)} sets; geometric mean of test log loss "
             f"ratio (tempered / as saved) {float(np.exp(np.mean(np.log(ratio)))):.4f}"]
    if "ours_guarded" in table:
        g = table["ours_guarded"] / table["ours"]
        lines.append(f"guarded (only when the cross-fitted temperature helps the out-of-fold rows): better on "
                     f"{int((g < 0.999).sum())}, worse on {int((g > 1.001).sum())} of {len(table)}; geometric mean "
                     f"{float(np.exp(np.mean(np.log(g)))):.4f}")
    vs = table["ours_tempered"] / table["plain_lightgbm"]
    lines.append(f"against one default LightGBM: as saved better on {int((table['ours'] < table['plain_lightgbm']).sum())}, "
                 f"tempered better on {int((vs < 1).sum())} of {len(table)}")
    print("\n".join(lines))
    if args.out:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        base = REPO / "bench" / "results" / f"{args.out}-{stamp}"
        base.with_suffix(".json").write_text(json.dumps({"trials": args.trials, "summary": lines,
                                                         "rows": table.to_dict("records")}, default=float, indent=1))
        base.with_suffix(".md").write_text(f"# {args.out}, {args.trials} trials, seed 0, {stamp}\n\n"
                                           + "\n".join(f"- {x}" for x in lines) + "\n\n" + table.to_markdown(index=False)
                                           + "\n")


if __name__ == "__main__":
    main()
