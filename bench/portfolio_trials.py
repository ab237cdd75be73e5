"""Old vs new warm-start portfolio at a fixed trial count, on collection sets that shaped neither (issue 25).

Same process, same seed, same split (75/25, random_state 0, stratified for classification), test scores as
bench_engine.py (ROC AUC / log loss / RMSE); only ``load_portfolio`` differs: the portfolio.json of
``--old`` (a git revision) or the current one. Trial counts, not seconds: the machine is shared.

    python bench/portfolio_trials.py --old 9d7fb08 --trials 8 --only wine,fair_affairs,sm_anes96
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from bench_engine import METRIC, classes_of, score  # noqa: E402

import automl_core.automl as engine  # noqa: E402
from automl_core import AutoML  # noqa: E402


def _relative(value: object) -> str:
    """An argument as recorded in the results file: paths inside the repository relative to it (no machine paths)."""
    if isinstance(value, Path) and value.is_relative_to(REPO):
        return str(value.relative_to(REPO))
    return str(value)


def markdown(table: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(f"{v:.5g}" if isinstance(v, float) else str(v) for v in row) + " |"
              for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="git revision whose portfolio.json is the old one")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--collection", type=Path, default=REPO / "bench" / ".collection")
    parser.add_argument("--only", required=True)
    args = parser.parse_args()
    old = json.loads(subprocess.run(["git", "show", f"{args.old}:automl_core/models/portfolio.json"], cwd=REPO,
                                    capture_output=True, text=True, check=True).stdout)
    new = engine.load_portfolio()
    manifest = pd.read_csv(args.collection / "MANIFEST.tsv", sep="\t").set_index("name")
    rows = []
    for name in args.only.split(","):
        r = manifest.loc[name]
        df = pd.read_csv(args.collection / r["file"], low_memory=False)
        train, test = train_test_split(df, test_size=0.25, random_state=0,
                                       stratify=df[r["target"]] if r["task"] != "regression" else None)
        classes = classes_of(train, r["target"], r["task"])
        record = {"set": name, "task": r["task"], "metric": METRIC[r["task"]]}
        for label, portfolio in (("old", old), ("new", new)):
            engine.load_portfolio = lambda p=portfolio: p
            automl = AutoML(task=r["task"], metric=METRIC[r["task"]], max_trials=args.trials, time_budget=None,
                            seed=0).fit(train, r["target"])
            X = test.drop(columns=r["target"])
            model = automl.model_
            if classes:
                proba = model.predict_proba(X)
                pred = proba[:, [list(model.classes_).index(c) for c in classes]]
            else:
                pred = model.predict(X)
            record[label] = score(r["task"], test[r["target"]].to_numpy(), pred, classes)
            record[f"{label}_best"] = str(automl.leaderboard.iloc[0]["model"])
        print(json.dumps(record), flush=True)
        rows.append(record)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = REPO / "bench" / "results" / f"portfolio-trials-{args.trials}-{stamp}"
    table = pd.DataFrame(rows)
    out.with_suffix(".json").write_text(json.dumps({"args": {k: _relative(v) for k, v in vars(args).items()},
                                                    "rows": rows}, indent=1))
    out.with_suffix(".md").write_text(
        f"# Old ({args.old}) vs new portfolio, {args.trials} trials, test scores ({stamp})\n\n"
        "Same process, seed 0, same 75/25 split; only the warm-start portfolio differs. Higher ROC AUC, lower "
        "log loss / RMSE is better. Collection sets neither portfolio was mined on. Run under load (trial "
        "counts, not seconds).\n\n" + markdown(table) + "\n")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
