"""Does a change to the search keep its results? A fixed trial count with a fixed seed is reproducible
(trials finish in batches, in trial order), so two checkouts must give the same leaderboard.

    python bench/same_search.py > after.json     # in each checkout, then compare the two files

Prints one JSON object: per shared dataset, every leaderboard row as (trial id, family, score).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("SHARED_DATASETS", REPO.parent / "shared" / "datasets"))
SETS = [("german_credit.csv", "class", ()), ("mpg.csv", "mpg", ("name",)), ("penguins.csv", "species", ())]


def main() -> None:
    from automl_core import AutoML
    out = {}
    for name, target, drop in SETS:
        df = pd.read_csv(SHARED / name).drop(columns=list(drop))
        automl = AutoML(max_trials=8, time_budget=None, seed=0).fit(df, target=target)
        out[name] = [(t.trial_id, t.family, None if t.score is None else round(t.score, 10)) for t in automl.trials_]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
