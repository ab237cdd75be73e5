"""Choose the warm-start portfolio (automl_core/models/portfolio.json) from runs on the shared datasets.

1. Candidates: on the training part of every shared classification / regression set (the bench's 75 %
   split, at most ``--rows`` rows; the test part is never read), a search of ``--trials`` trials; the
   best ``--per-set`` configurations of each family, plus the portfolio's current ones.
2. Cross-evaluation: every candidate of a family on every set of its task kind (validation score, the
   engine's own validation rule).
3. Greedy selection per family (as FLAML's zero-shot and AutoGluon's portfolios): first the
   configuration with the lowest mean normalized regret over the sets, then the one that lowers the
   mean of the per-set best regret the most, and so on, up to ``--keep`` configurations.
4. The order of the warm-start trials: each family's first choice, cheapest family (mean trial seconds)
   first, then each family's second choice, and so on.

Writes bench/results/portfolio-<stamp>.json (the matrix and the choice) and, with ``--write``, the new
automl_core/models/portfolio.json. Slow (tens of minutes): run it with nothing else busy.

    python bench/mine_portfolio.py [--trials 40] [--rows 5000] [--keep 3] [--only iris,mpg] [--write]
"""
from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_engine import REPO, datasets, split  # noqa: E402

from automl_core import AutoML, AutoMLConfig  # noqa: E402
from automl_core.models.metrics import resolve_metric  # noqa: E402
from automl_core.models.families import FAMILIES, load_portfolio  # noqa: E402
from automl_core.prepare.tables import prepare  # noqa: E402

KIND = {"binary": "classification", "multiclass": "classification", "regression": "regression"}


def training_part(row: dict[str, str], rows: int, tmp: Path) -> pd.DataFrame:
    _, _, train, _ = split(row, tmp)
    return train.sample(min(rows, len(train)), random_state=0) if len(train) > rows else train


def run(prepared, target: str, task: str, families: tuple[str, ...], trials: int,
        warm: list[tuple[str, dict]] = ()) -> pd.DataFrame:
    automl = AutoML(task=task, max_trials=trials, time_budget=None, seed=0, ensembles=False,
                    allowed_models=families)
    automl.fit(None, target, prepared=prepared, warm_start=list(warm))
    board = automl.leaderboard
    return board[board["status"] == "ok"]


def cached(cache: Path, key: str, compute):
    """``compute()``, remembered in ``cache`` (a JSON file) under ``key``: a long run that dies resumes."""
    memo = json.loads(cache.read_text()) if cache.is_file() else {}
    if key not in memo:
        memo[key] = compute()
        cache.write_text(json.dumps(memo, default=str))
    return memo[key]


def candidates(sets: dict, args, cache: Path) -> dict[str, dict[str, list[dict]]]:
    """{kind: {family: [params]}}: the search's best per set and family, plus the current portfolio."""
    current = load_portfolio()
    found: dict[str, dict[str, list[dict]]] = {k: {f: list(v) for f, v in current.get(k, {}).items()}
                                               for k in ("classification", "regression")}
    for stem, (prepared, target, task) in sets.items():
        rows = cached(cache, f"search:{stem}", lambda: run(prepared, target, task, tuple(FAMILIES), args.trials)[
            ["model", "params", "score"]].to_dict("records"))
        board = pd.DataFrame(rows)
        metric = resolve_metric("auto", prepared.task)
        board = board.assign(_loss=[metric.loss(s) for s in board["score"]]).sort_values("_loss")
        for family, group in board.groupby("model"):
            for params in group["params"].head(args.per_set):
                params = {k: v for k, v in params.items() if k != "n_estimators" or family != "lightgbm"}
                if params not in found[KIND[task]].setdefault(family, []):
                    found[KIND[task]][family].append(params)
        print(f"candidates from {stem}: {len(board)} trials", flush=True)
    return found


def cross_evaluate(sets: dict, found: dict, cache: Path) -> list[dict]:
    records = []
    for stem, (prepared, target, task) in sets.items():
        metric = resolve_metric("auto", prepared.task)
        for family, configs in found[KIND[task]].items():
            if family not in FAMILIES:
                continue

            def evaluate(family=family, configs=configs) -> list[dict]:
                board = run(prepared, target, task, (family,), len(configs), [(family, c) for c in configs])
                board = board[board["model"] == family]
                # warm starts run first, in order: trial i evaluates candidate i - 1
                return [{"set": stem, "kind": KIND[task], "family": family, "candidate": int(t.trial_id) - 1,
                         "loss": metric.loss(t.score), "seconds": float(t.fit_seconds)} for t in board.itertuples()]

            records += cached(cache, f"cross:{stem}:{family}:{len(configs)}", evaluate)
        print(f"cross-evaluated on {stem}", flush=True)
    return records


def greedy(matrix: pd.DataFrame, keep: int) -> list[int]:
    """Candidates (rows) chosen to minimise the mean over sets (columns) of the best normalized regret."""
    best, worst = matrix.min(), matrix.max()
    regret = ((matrix - best) / (worst - best).replace(0, 1)).fillna(1.0).clip(0, 1)
    chosen: list[int] = []
    current = pd.Series(1.0, index=matrix.columns)
    for _ in range(min(keep, len(matrix))):
        gains = {c: np.minimum(current, regret.loc[c]).mean() for c in regret.index if c not in chosen}
        pick = min(gains, key=gains.get)
        if chosen and gains[pick] >= current.mean() - 1e-4:
            break  # nothing left improves on the chosen ones
        chosen.append(pick)
        current = np.minimum(current, regret.loc[pick])
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--per-set", type=int, default=2)
    parser.add_argument("--keep", type=int, default=3)
    parser.add_argument("--only")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    import tempfile
    only = set(args.only.split(",")) if args.only else None
    sets = {}
    with tempfile.TemporaryDirectory() as tmp:
        for row in datasets():
            stem = Path(row["file"]).stem
            if only and stem not in only:
                continue
            train = training_part(row, args.rows, Path(tmp))
            config = AutoMLConfig(task=row["task"], max_trials=1, time_budget=None)
            sets[stem] = (prepare(train, row["target"], config), row["target"], row["task"])
    cache = REPO / "bench" / "results" / f".portfolio-cache-{args.trials}-{args.rows}-{args.per_set}.json"
    found = candidates(sets, args, cache)
    records = cross_evaluate(sets, found, cache)
    table = pd.DataFrame(records)
    portfolio: dict[str, dict[str, list[dict]]] = {"classification": {}, "regression": {}}
    costs: list[tuple[float, str, str, int]] = []
    for (kind, family), group in table.groupby(["kind", "family"]):
        matrix = group.pivot_table(index="candidate", columns="set", values="loss", aggfunc="first")
        seconds = group.groupby("candidate")["seconds"].mean()
        for level, candidate in enumerate(greedy(matrix.replace(np.inf, np.nan), args.keep)):
            portfolio[kind].setdefault(family, []).append(found[kind][family][candidate])
            costs.append((float(seconds[candidate]), kind, family, level))
    # Each family's best configuration first, cheapest family first; then the second ones, and so on.
    order = {kind: [[family, level] for _, k, family, level in sorted(costs, key=lambda c: (c[3], c[0])) if k == kind]
             for kind in ("classification", "regression")}
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out = REPO / "bench" / "results" / f"portfolio-{stamp}.json"
    out.write_text(json.dumps({"args": vars(args), "candidates": found, "evaluations": records,
                               "portfolio": portfolio, "order": order}, indent=1, default=str))
    print(json.dumps({"portfolio": portfolio, "order": order}, indent=1))
    if args.write:
        doc = {"_comment": "Warm-start configurations, chosen by bench/mine_portfolio.py from runs on the shared "
                           "datasets (see bench/results/portfolio-*.json). 'order' lists the warm-start trials "
                           "across families, cheapest first. 'classification' covers binary and multiclass.",
               **portfolio, "order": order}
        (REPO / "automl_core" / "models" / "portfolio.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote automl_core/models/portfolio.json and {out.name}")


if __name__ == "__main__":
    main()
