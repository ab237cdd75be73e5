"""A boosted trial is priced by classes x rounds x leaves and given no more rounds than its worker's memory cap
holds: on the corpus' 1,000-class table a LightGBM trial is shrunk (with a note) or fails with the reason,
instead of its worker dying under the cap (which broke the pool and every trial running beside it)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from automl_core.models.families import FAMILIES
from automl_core.search.trial import MIN_ROUNDS, MODEL_SHARE, rounds_that_fit

sys.path.insert(0, str(Path(__file__).parent / "corpus"))
import make_corpus as mc  # noqa: E402

HERE = Path(__file__).parent
REPO = HERE.parent
MB = 2**20
# Trees that grow to their leaf count (min_child_samples 2): the price is for full trees.
FULL_TREES = {"learning_rate": 0.01, "num_leaves": 127, "min_child_samples": 2, "subsample": 1.0,
              "colsample_bytree": 1.0, "reg_alpha": 1e-8, "reg_lambda": 1e-8, "class_weight": "none"}
ROUND_BYTES = FAMILIES["lightgbm"].round_bytes

# VmPeak growth of one fit with every round kept (no early stopping: the model text then holds them all), run
# in a fresh process: argv = leaves, rounds.
PEAK = """
import io, sys
sys.path.insert(0, {corpus!r})
import numpy as np, pandas as pd, lightgbm as lgb, make_corpus as mc
def peak():
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmPeak"))
df = pd.read_csv(io.BytesIO(mc._classes(1000)))
X, y = np.c_[df["num"], df["cat"] == "a"].astype(float), pd.factorize(df["y"])[0]
before = peak()
lgb.LGBMClassifier(n_estimators=int(sys.argv[2]), num_leaves=int(sys.argv[1]), min_child_samples=2, n_jobs=1,
                   learning_rate=0.01, verbose=-1, deterministic=True, force_col_wise=True).fit(X, y)
print(peak() - before, len(np.unique(y)))
"""


@pytest.fixture(scope="module")
def classes_table(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("classes") / "classes.csv"
    path.write_bytes(mc._classes(1000))
    return path


def test_rounds_that_fit_shrinks_then_refuses_by_the_room_left() -> None:
    per_round = ROUND_BYTES(FULL_TREES, 993)
    assert per_round == 993 * ROUND_BYTES(FULL_TREES, 3) / 3  # one tree per class per round
    assert ROUND_BYTES(FULL_TREES, 2) == ROUND_BYTES(FULL_TREES, 1)  # binary: one tree a round
    assert rounds_that_fit(ROUND_BYTES, FULL_TREES, 993, room=None) == (3000, "")  # no cap: nothing to price
    assert rounds_that_fit(ROUND_BYTES, FULL_TREES, 10, room=12 * 2**30) == (3000, "")  # ten classes fit
    rounds, note = rounds_that_fit(ROUND_BYTES, FULL_TREES, 993, room=10 * 2**30)
    assert rounds == int(10 * 2**30 * MODEL_SHARE // per_round) and "993 classes, 127 leaves" in note
    assert rounds_that_fit(ROUND_BYTES, {**FULL_TREES, "n_estimators": 8}, 993, room=10 * 2**30) == (8, "")
    rounds, reason = rounds_that_fit(ROUND_BYTES, FULL_TREES, 993, room=int(per_round * (MIN_ROUNDS - 1) / MODEL_SHARE))
    assert rounds == 0 and "would not fit in the worker's memory" in reason


@pytest.mark.slow  # two 1,000-class fits, about 30 s on the loaded 2 cores
def test_price_of_a_round_covers_what_a_1000_class_fit_maps() -> None:
    """Ten rounds more cost at most their price and at least a third of it (the price is not idle headroom)."""
    code = PEAK.format(corpus=str(HERE / "corpus"))
    runs = [subprocess.Popen([sys.executable, "-W", "ignore", "-c", code, "31", str(r)], stdout=subprocess.PIPE,
                             text=True) for r in (5, 15)]
    (few, classes), (more, _) = [tuple(map(int, p.communicate(timeout=600)[0].split())) for p in runs]
    price = 10 * ROUND_BYTES({"num_leaves": 31}, classes)
    assert price / 3 <= more - few <= price, (more - few, price)


def _capped_trial(table: Path, room_mb: int, tmp: Path, target: str = mc.TARGET, threads: int = 1) -> dict:
    run = subprocess.run([sys.executable, "-W", "ignore", str(HERE / "capped_trial.py"), str(table), target,
                          str(room_mb), "lightgbm", json.dumps(FULL_TREES), str(tmp), str(threads)],
                         capture_output=True, text=True, timeout=600, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 0, run.stderr[-3000:]  # a worker killed by its cap ends here, without an outcome
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def house_classes(shared, tmp_path_factory) -> Path:
    """A real many-class table: California housing's first 2,500 districts, the median house value read as a class
    label (those seen at least 3 times: 774 rows, 190 classes), the other columns as features."""
    import pandas as pd
    df = pd.read_csv(shared / "california_housing.csv").iloc[:2500]
    counts = df["median_house_value"].value_counts()
    df = df[df["median_house_value"].isin(counts[counts >= 3].index)].copy()
    df["value_class"] = df.pop("median_house_value").map(lambda v: f"v{int(v)}")
    path = tmp_path_factory.mktemp("house") / "house_classes.csv"
    df.to_csv(path, index=False)
    return path


# A 1,000-class trial at 2 threads under a 1,000 or 1,300 MB cap, priced to 6-7 rounds at 500 B a leaf, died with
# SIGSEGV (2 of 4 runs): it reached the cap while its model text was copied back to the parent, where LightGBM
# crashes instead of raising. The price now counts those copies and a reserve under the cap stays unplanned.
@pytest.mark.slow  # a ~190-class fit at 2 threads: minutes when the 2 cores are loaded
def test_a_capped_many_class_trial_on_real_data_ends_with_an_outcome(house_classes, tmp_path) -> None:
    outcome = _capped_trial(house_classes, 700, tmp_path, target="value_class", threads=2)
    assert outcome["status"] == "ok", outcome
    fits = int(outcome["note"].split("at most ")[1].split()[0])
    assert MIN_ROUNDS <= fits < 3000 and 1 <= outcome["n_estimators"] <= fits
    assert " classes, 127 leaves" in outcome["note"]


def test_capped_workers_hold_few_malloc_arenas() -> None:
    """Under a cap each worker keeps at most WORKER_ARENAS malloc arenas (glibc: mallopt succeeds), and the room a
    trial may plan for leaves WORKER_RESERVE of the cap unused."""
    from automl_core.io import limits
    assert limits.limit_malloc_arenas(limits.WORKER_ARENAS)
    code = ("from automl_core.io import limits; import resource\n"
            "size = next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith('VmSize'))\n"
            "assert not limits.limit_this_process(size + 2 * limits.WORKER_RESERVE)\n"
            "print(limits.address_space_left())")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr
    assert 0 < int(run.stdout) <= limits.WORKER_RESERVE


def test_a_1000_class_trial_that_cannot_fit_fails_with_the_reason(classes_table, tmp_path) -> None:
    outcome = _capped_trial(classes_table, 200, tmp_path)
    assert outcome["status"] == "failed" and "would not fit in the worker's memory" in outcome["error"], outcome
    assert "993 classes, 127 leaves" in outcome["error"]


def test_the_trials_record_keeps_the_workers_note_beside_a_row_sample() -> None:
    import numpy as np

    from automl_core.models.metrics import METRICS
    from automl_core.search.book import Running, TrialBook
    from automl_core.search.results import TrialOutcome, TrialSpec

    class Scheduler:
        def tell(self, *args, **kwargs):
            pass

    book = TrialBook(METRICS["log_loss"], Scheduler(), lambda *a, **k: None, lambda: 0.0, oof={})
    spec = TrialSpec("data", 1, "lightgbm", dict(FULL_TREES), 1, 0, row_fraction=0.5)
    _, note = rounds_that_fit(ROUND_BYTES, FULL_TREES, 993, room=2**30)
    result = book.record(Running(spec, 0.0, 1.0), TrialOutcome(1, "ok", metrics={"log_loss": 1.0},
                                                               oof=np.zeros((3, 2)), note=note))
    assert result.note == f"fit on a 50% row sample; {note}" and result.status == "ok"
