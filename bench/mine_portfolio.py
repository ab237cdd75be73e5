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

With ``--collection`` (the folder bench/collection.py writes) it mines on the shared sets *and* the wide
collection, and judges the choice leave-one-dataset-out (issue 25 item 3):

1. Candidates no set shaped: the current portfolio, every family's defaults (CatBoost and XGBoost too)
   and ``--draws`` seeded random points of each family's space (``--draws`` - 2 for families already in
   the portfolio). One search per set runs them all as its warm start (``--cv-folds`` fixed folds,
   at most ``--rows`` rows of the training part).
2. One joint greedy choice over all families' candidates, as many as the old portfolio holds.
3. For every set: the old portfolio's normalized score there, the score of the portfolio mined on all
   sets (in-sample) and of the one mined on all the *other* sets (held out). portfolio.json is
   replaced (with ``--write``) only when the held-out score beats the old portfolio's in mean
   normalized score and mean rank, on all sets and on the sets that shaped neither.
4. bench/results/portfolio-lodo-<stamp>.md/.json. ``--shard i/n`` splits step 1 over n processes
   (evaluations are cached in bench/results/.portfolio-cache-*; the run without --shard reads them all).

    python bench/collection.py && python bench/mine_portfolio.py --collection bench/.collection \
        --rows 400 --draws 2 --cv-folds 3 [--write]
"""
from __future__ import annotations

import argparse
import json
import re
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


CV_FOLDS: int | None = None  # --cv-folds: a fixed fold count instead of the engine's rule (cheaper mining)


def run(prepared, target: str, task: str, families: tuple[str, ...], trials: int,
        warm: list[tuple[str, dict]] = ()) -> pd.DataFrame:
    automl = AutoML(task=task, max_trials=trials, time_budget=None, seed=0, ensembles=False,
                    allowed_models=families, **({"cv_folds": CV_FOLDS} if CV_FOLDS else {}))
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


def sampled_candidates(sets: dict, draws: int) -> dict[str, dict[str, list[dict]]]:
    """{kind: {family: [params]}} shaped by no set: the current portfolio, each family's defaults and
    ``draws`` seeded random points of its search space (the pool for leave-one-dataset-out mining)."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    current = load_portfolio()
    found: dict[str, dict[str, list[dict]]] = {}
    for kind in ("classification", "regression"):
        task = next((p.task for p, _, t in sets.values() if KIND[t] == kind), None)
        if task is None:
            continue
        found[kind] = {}
        for i, (name, family) in enumerate(FAMILIES.items()):
            pool = list(current.get(kind, {}).get(name, []))
            if family.defaults is not None and family.defaults not in pool:
                pool.append(dict(family.defaults))
            study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1000 + i))
            for _ in range(draws if name not in current.get(kind, {}) else max(draws - 2, 0)):
                params = family.space(study.ask(), task)
                if params not in pool:
                    pool.append(params)
            found[kind][name] = pool
    return found


def collection_sets(folder: Path, rows: int) -> list[tuple[str, pd.DataFrame, str, str, str]]:
    """(name, training part, target, task, source) of bench/collection.py's tables: the same 75/25 split
    as the shared sets (random_state 0, stratified for classification), the test part never read."""
    from sklearn.model_selection import train_test_split
    manifest = pd.read_csv(folder / "MANIFEST.tsv", sep="\t")
    out = []
    for r in manifest.itertuples():
        df = pd.read_csv(folder / r.file, low_memory=False)
        df = df[df[r.target].notna()].reset_index(drop=True)
        train, _ = train_test_split(df, test_size=0.25, random_state=0,
                                    stratify=df[r.target] if r.task != "regression" else None)
        train = train.sample(min(rows, len(train)), random_state=0) if len(train) > rows else train
        out.append((r.name, train, r.target, r.task, r.source))
    return out


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


def joint_greedy(table: pd.DataFrame, size: int) -> list[str]:
    """``greedy`` over every family's candidates at once ("family|candidate" keys, one task kind),
    ``size`` of them: the warm start is one list, so families compete for its places. Once nothing
    lowers the best regret on the mining sets (few sets: soon), the places left go to the lowest mean
    regret, so the portfolio is as large as the one it is compared with."""
    regret = regret_matrix(table)
    if not regret.shape[1]:
        return []
    chosen = list(greedy(regret, size))
    rest = regret.drop(index=chosen).mean(axis=1).sort_values(kind="stable")
    return chosen + list(rest.index[: size - len(chosen)])


def cross_evaluate_jointly(sets: dict, found: dict, cache: Path, partial: bool = False) -> list[dict]:
    """Every candidate of every family on every set of its kind, in one search per set (the candidates
    as its warm start, in order; one process pool per set instead of one per family)."""
    records = []

    def done() -> dict:  # what any process (--shard) has evaluated so far
        memo: dict = {}
        base = re.sub(r"(\.\d+of\d+r?)?\.json$", "", cache.name)
        for part in sorted(cache.parent.glob(base + "*.json")):
            memo.update(json.loads(part.read_text()))
        return memo

    for stem, (prepared, target, task) in sets.items():
        metric = resolve_metric("auto", prepared.task)
        warm = [(f, c) for f, configs in found[KIND[task]].items() if f in FAMILIES for c in configs]
        index = {}
        for f, configs in found[KIND[task]].items():
            for i in range(len(configs)):
                index[len(index)] = (f, i)

        def evaluate() -> list[dict]:
            board = run(prepared, target, task, tuple(sorted({f for f, _ in warm})), len(warm), warm)
            out = []
            for t in board.itertuples():  # warm starts run first, in order: trial i is candidate i - 1
                family, candidate = index[int(t.trial_id) - 1]
                assert family == t.model, (family, t.model)
                out.append({"set": stem, "kind": KIND[task], "family": family, "candidate": candidate,
                            "loss": metric.loss(t.score), "seconds": float(t.fit_seconds)})
            return out

        key = f"joint:{stem}:{len(warm)}"
        memo = done()
        if key not in memo and partial:
            continue  # --partial: judge on the sets evaluated so far
        records += memo[key] if key in memo else cached(cache, key, evaluate)
        print(f"cross-evaluated on {stem} ({len(warm)} candidates)", flush=True)
    return records


def regret_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """Normalized regret (0 = the best candidate on that set, 1 = the worst or failed), key x set."""
    keys = table["family"] + "|" + table["candidate"].astype(str)
    matrix = table.assign(key=keys).pivot_table(index="key", columns="set", values="loss", aggfunc="first")
    matrix = matrix.replace(np.inf, np.nan)
    best, worst = matrix.min(), matrix.max()
    return ((matrix - best) / (worst - best).replace(0, 1)).fillna(1.0).clip(0, 1)


def lodo(table: pd.DataFrame, old: dict[str, list[str]], size: dict[str, int], shaped_old: set[str]) -> pd.DataFrame:
    """Per set: normalized score (1 - the portfolio's best regret there) of the old portfolio, of the
    portfolio mined on every set (in-sample) and of the one mined on all the *other* sets (held out)."""
    rows = []
    for kind, part in table.groupby("kind"):
        regret = regret_matrix(part)
        everywhere = joint_greedy(part, size[kind])
        for stem in regret.columns:
            held_out = joint_greedy(part[part["set"] != stem], size[kind])
            rows.append({"set": stem, "kind": kind, "old_shaped_by": stem in shaped_old,
                         "old": 1 - regret.loc[[k for k in old[kind] if k in regret.index], stem].min(),
                         "new_in_sample": 1 - regret.loc[everywhere, stem].min(),
                         "new_held_out": 1 - regret.loc[held_out, stem].min()})
    result = pd.DataFrame(rows)
    ranks = result[["old", "new_held_out"]].rank(axis=1, ascending=False)
    return result.assign(rank_old=ranks["old"], rank_new_held_out=ranks["new_held_out"])


def summary(result: pd.DataFrame) -> dict[str, dict[str, float]]:
    groups = {"all sets": result, "sets that shaped neither (collection)": result[~result["old_shaped_by"]],
              "shared sets (shaped the old one)": result[result["old_shaped_by"]]}
    return {name: {"sets": int(len(g)), "old": float(g["old"].mean()), "new_held_out": float(g["new_held_out"].mean()),
                   "new_in_sample": float(g["new_in_sample"].mean()), "rank_old": float(g["rank_old"].mean()),
                   "rank_new_held_out": float(g["rank_new_held_out"].mean()),
                   "new_held_out_wins": int((g["new_held_out"] > g["old"] + 1e-9).sum()),
                   "old_wins": int((g["old"] > g["new_held_out"] + 1e-9).sum())} for name, g in groups.items() if len(g)}


def report(result: pd.DataFrame, stats: dict, args, stamp: str, sources: dict[str, str], replaced: bool,
           why: str) -> Path:
    lines = [f"# Portfolio mined leave-one-dataset-out on the wide collection ({stamp})", "",
             f"`python bench/mine_portfolio.py {' '.join(sys.argv[1:])}`", "",
             "Each candidate configuration (the old portfolio's, each family's defaults, seeded random points of "
             "each search space; CatBoost and XGBoost included) is fitted on the training part (75 %, at most "
             f"{args.rows} rows) of every set, scored by {args.cv_folds or 'the engine'}-fold validation. A portfolio's "
             "score on a set is 1 - its best candidate's normalized regret there (1 = as good as the best candidate, "
             "0 = the worst). *new, held out*: the portfolio greedily mined on all the other sets (leave-one-dataset-"
             "out), judged on this one; *new, in-sample*: mined on every set including this one; *old*: the current "
             "portfolio.json (mined on the shared sets, so the shared sets are in-sample for it). Same size as the old "
             "portfolio. Timings played no part (the machine was shared with other jobs).", "",
             f"Sets judged: {result['set'].nunique()} of the {len(sources)} available"
             + (" (--partial: those evaluated before the run was stopped)" if args.partial else "") + ".", "",
             "| group | sets | old | new, held out | new, in-sample | mean rank old / new held out | wins new / old |",
             "|---|---|---|---|---|---|---|"]
    for name, g in stats.items():
        lines.append(f"| {name} | {g['sets']} | {g['old']:.4f} | {g['new_held_out']:.4f} | {g['new_in_sample']:.4f} | "
                     f"{g['rank_old']:.2f} / {g['rank_new_held_out']:.2f} | {g['new_held_out_wins']} / {g['old_wins']} |")
    lines += ["", f"**Decision:** {'portfolio.json replaced' if replaced else 'portfolio.json kept'}: {why}", "",
              "| set | kind | source | old | new, held out | new, in-sample |", "|---|---|---|---|---|---|"]
    for r in result.sort_values(["kind", "set"]).itertuples():
        lines.append(f"| {r.set}{' (shaped old)' if r.old_shaped_by else ''} | {r.kind} | {sources.get(r.set, '')} | "
                     f"{r.old:.3f} | {r.new_held_out:.3f} | {r.new_in_sample:.3f} |")
    out = REPO / "bench" / "results" / f"portfolio-lodo-{stamp}.md"
    out.write_text("\n".join(lines) + "\n")
    return out


def write_portfolio(portfolio: dict, order: dict, note: str) -> None:
    doc = {"_comment": note, **portfolio, "order": order}
    (REPO / "automl_core" / "models" / "portfolio.json").write_text(json.dumps(doc, indent=1) + "\n")


def mine_lodo(sets: dict, sources: dict[str, str], shared: set[str], args) -> None:
    """The --collection path: the sampled pool, cross-evaluated, a joint greedy choice of the old
    portfolio's size, judged leave-one-dataset-out against the old portfolio; written only if it wins
    held out (mean normalized score and mean rank, on all sets and on those that shaped neither)."""
    cache = REPO / "bench" / "results" / f".portfolio-cache-lodo-{args.draws}-{args.rows}-{args.cv_folds}.json"
    found = sampled_candidates(sets, args.draws)
    if args.shard:  # one of n processes sharing the sets: evaluate its part, report nothing
        i, n = map(int, args.shard.rstrip("r").split("/"))
        mine = [(k, v) for j, (k, v) in enumerate(sets.items()) if j % n == i]
        # "i/nr": from the last set backwards (two processes meet in the middle; each skips what is done)
        mine = dict(reversed(mine) if args.shard.endswith("r") else mine)
        cross_evaluate_jointly(mine, found, cache.with_name(cache.stem + f".{args.shard.replace('/', 'of')}.json"))
        return
    records = cross_evaluate_jointly(sets, found, cache, partial=args.partial)
    table = pd.DataFrame(records)
    current = load_portfolio()
    old = {k: [f"{f}|{i}" for f, v in current[k].items() for i in range(len(v))] for k in found}
    size = {k: len(old[k]) for k in found}
    result = lodo(table, old, size, shared)
    stats = summary(result)
    wins = [g["new_held_out"] > g["old"] and g["rank_new_held_out"] < g["rank_old"]
            for name, g in stats.items() if not name.startswith("shared")]
    replaced = bool(args.write and all(wins))
    why = ("the portfolio mined on the other sets beats the old one on the held-out set, in mean normalized score "
           "and mean rank, over all sets and over the sets that shaped neither" if all(wins) else
           "the held-out (leave-one-dataset-out) score of the newly mined portfolio does not beat the old one on "
           "every group (mean normalized score and mean rank)")
    if all(wins) and not args.write:
        why += " (not written: run with --write)"
    portfolio: dict[str, dict[str, list[dict]]] = {}
    costs = []
    for kind, part in table.groupby("kind"):
        seconds = part.assign(key=part["family"] + "|" + part["candidate"].astype(str)).groupby("key")["seconds"].mean()
        portfolio[kind] = {}
        for key in joint_greedy(part, size[kind]):
            family, candidate = key.split("|")
            level = len(portfolio[kind].setdefault(family, []))
            portfolio[kind][family].append(found[kind][family][int(candidate)])
            costs.append((float(seconds[key]), kind, family, level))
    order = {kind: [[family, level] for _, k, family, level in sorted(costs, key=lambda c: (c[3], c[0])) if k == kind]
             for kind in portfolio}
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    md = report(result, stats, args, stamp, sources, replaced, why)
    md.with_suffix(".json").write_text(json.dumps(
        {"args": {k: str(v) for k, v in vars(args).items()}, "sources": sources, "summary": stats,
         "per_set": result.to_dict("records"), "candidates": found, "evaluations": records,
         "portfolio": portfolio, "order": order, "replaced": replaced}, indent=1, default=str))
    print(md.read_text())
    if replaced:
        write_portfolio({k: portfolio.get(k, {}) for k in ("classification", "regression")}, order,
                        "Warm-start configurations, chosen by bench/mine_portfolio.py --collection: a joint greedy "
                        "choice over every family's candidates on the shared sets and the wide bench collection "
                        "(bench/collection.py), kept because it beat the previous portfolio leave-one-dataset-out "
                        f"(bench/results/{md.name}). 'order' lists the warm-start trials across families, cheapest "
                        "first. 'classification' covers binary and multiclass.")
        print("wrote automl_core/models/portfolio.json")


def main() -> None:
    global CV_FOLDS
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--per-set", type=int, default=2)
    parser.add_argument("--keep", type=int, default=3)
    parser.add_argument("--only")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--collection", type=Path, help="bench/collection.py's folder: mine on its tables too, "
                        "from a pool no set shaped, choosing by leave-one-dataset-out (see lodo)")
    parser.add_argument("--draws", type=int, default=3, help="random points per family in the --collection pool")
    parser.add_argument("--partial", action="store_true", help="judge on the sets already evaluated (cached)")
    parser.add_argument("--shard", help="i/n: evaluate only every n-th set from the i-th (parallel runs), no report")
    parser.add_argument("--cv-folds", type=int, help="a fixed fold count (cheaper than the engine's rule)")
    args = parser.parse_args()
    CV_FOLDS = args.cv_folds
    import tempfile
    only = set(args.only.split(",")) if args.only else None
    sets, sources = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for row in datasets():
            stem = Path(row["file"]).stem
            if only and stem not in only:
                continue
            train = training_part(row, args.rows, Path(tmp))
            config = AutoMLConfig(task=row["task"], max_trials=1, time_budget=None)
            sets[stem] = (prepare(train, row["target"], config), row["target"], row["task"])
            sources[stem] = "../shared/datasets"
    shared = set(sets)
    for name, train, target, task, source in (collection_sets(args.collection, args.rows) if args.collection else []):
        if not only or name in only:
            sets[name] = (prepare(train, target, AutoMLConfig(task=task, max_trials=1, time_budget=None)), target, task)
            sources[name] = source
    if args.collection:
        return mine_lodo(sets, sources, shared, args)
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
