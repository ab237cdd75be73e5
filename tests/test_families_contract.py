"""The contract every model family keeps (issue 24 item 4), tabular and forecasting alike:

built from a seeded point of its search space -> fit on a small real sample -> predict -> the same
seed gives the same predictions -> the fitted object pickles and predicts the same in a process
that cannot import this repository.

Fitting every family is cheap on these samples; starting a Python process is not (seconds each on a
busy 2-core machine), so one module fixture fits all cases and loads all their pickles in a single
isolated process, and each parametrized case asserts its own part.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import optuna
import pandas as pd
import pytest

from automl_core.config import AutoMLConfig
from automl_core.forecast import features
from automl_core.forecast import families as forecast_families
from automl_core.forecast import series
from automl_core.models.families import FAMILIES
from automl_core.prepare.tables import prepare
from automl_core.search.trial import RefitData, refit
from shared_data import DATASETS, needs_data

SEED = 3
# (file, target, rows): small real samples, one per tabular task kind that changes a family's build
TABULAR_DATA = {"multiclass": ("penguins.csv", "species", 240), "regression": ("mpg.csv", "mpg", 240)}
FORECAST_FAMILIES = forecast_families.FAMILY_NAMES
HORIZON = 6
# Boosting rounds for the contract (the search's cap is thousands; early stopping sets the real count)
ROUNDS = 40

# AutoARIMA's order search takes 6-40 s on 343 monthly rows (season 12) on a busy machine
SLOW = {"auto_arima"}
# Text families read text columns, which these tables have not: tests/test_text_families.py holds their contract
CASES = [("tabular", family, task) for family in FAMILIES
         if FAMILIES[family].text is None and not FAMILIES[family].pixels for task in TABULAR_DATA] + \
        [("forecast", family, "forecasting") for family in FORECAST_FAMILIES]
PARAMS = [pytest.param(c, id=f"{c[1]}-{c[2]}", marks=[pytest.mark.slow] if c[1] in SLOW else []) for c in CASES]


def _case_id(case: tuple[str, str, str]) -> str:
    return f"{case[1]}-{case[2]}"


@dataclass
class Outcome:
    predictions: np.ndarray | None = None       # labels / values / forecasts
    probabilities: np.ndarray | None = None
    again: np.ndarray | None = None             # a second build + fit with the same seed
    again_probabilities: np.ndarray | None = None
    classes: list[Any] = field(default_factory=list)
    truth: np.ndarray | None = None
    elsewhere: dict[str, Any] | None = None     # what the repo-free process predicted
    error: str = ""


def _sampled_params(family: str, task) -> dict[str, Any]:
    """A seeded random point of the family's search space (TPE's first trials are random too)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=SEED))
    params = FAMILIES[family].space(study.ask(), task)
    if FAMILIES[family].early_stopping is not None or "n_estimators" in params:
        params["n_estimators"] = min(int(params.get("n_estimators", ROUNDS)), ROUNDS)
    if family == "hist_gradient_boosting":
        params["max_iter"] = ROUNDS  # its build's cap (1000), like n_estimators above
    return params


_TABULAR: dict[str, tuple[Any, RefitData]] = {}


def _tabular_data(kind: str) -> tuple[Any, RefitData]:
    """The prepared sample and the refit input for one task kind (shared by every family)."""
    if kind not in _TABULAR:
        from automl_core.prepare.featurize import build_featurizer
        file, target, rows = TABULAR_DATA[kind]
        df = pd.read_csv(DATASETS / file).sample(frac=1.0, random_state=0).head(rows).reset_index(drop=True)
        p = prepare(df, target, AutoMLConfig(seed=SEED))
        cut = int(len(p.X) * 0.75)
        sample = build_featurizer(list(p.columns), mode="auto", scale=False, task=p.task, seed=SEED) \
            .fit_transform(p.X.iloc[:cut], p.codes(p.y[:cut]) if p.task.is_classification else p.y[:cut])
        _TABULAR[kind] = p, RefitData(p.X.iloc[:cut], p.y[:cut], tuple(p.columns), p.task, "auto", sample)
    return _TABULAR[kind]


def _tabular(family: str, kind: str, workdir: Path) -> tuple[Outcome, dict[str, Any]]:
    p, data = _tabular_data(kind)
    cut = len(data.X)
    params = _sampled_params(family, p.task)
    new = p.X.iloc[cut:]
    out = Outcome(truth=p.y[cut:])
    fits = [refit(data, family, params, threads=1, seed=SEED) for _ in range(2)]
    out.predictions, out.again = (np.asarray(m.predict(new)) for m in fits)
    if p.task.is_classification:
        out.probabilities, out.again_probabilities = (m.predict_proba(new) for m in fits)
        out.classes = list(fits[0].classes_)
    joblib.dump(fits[0], workdir / "model.joblib")
    new.to_pickle(workdir / "input.pkl")
    return out, {"dir": str(workdir), "kind": "tabular", "proba": p.task.is_classification}


_FORECAST: dict[str, Any] = {}


def _forecast_problem() -> tuple[pd.DataFrame, Any]:
    if not _FORECAST:
        df = pd.read_csv(DATASETS / "fred_retail_S4248SM144SCEN.csv")
        data = series.prepare_forecast(df, "S4248SM144SCEN", AutoMLConfig(task="forecasting", seed=SEED,
                                      time_column="observation_date", horizon=HORIZON))
        plan = features.plan_features(data.panel, data.freq, data.season, HORIZON, None)
        _FORECAST["panel"] = data.panel[["unique_id", "ds", "y"]]
        _FORECAST["problem"] = forecast_families.Problem(data.freq, data.season, HORIZON, plan, (), (), (), True)
    return _FORECAST["panel"], _FORECAST["problem"]


def _forecast(family: str, workdir: Path) -> tuple[Outcome, dict[str, Any]]:
    panel, problem = _forecast_problem()
    train, truth = panel.iloc[:-HORIZON], panel["y"].to_numpy()[-HORIZON:]
    rng = np.random.default_rng(SEED)
    # the lag models' search space: lgbm_lags' sampled point; linear_lags' portfolio points
    params = forecast_families.sample_params(rng)[1] if family == "lgbm_lags" else \
        next((p for f, p in [*forecast_families.portfolio(problem, len(train)), *forecast_families.OPT_IN.items()]
              if f == family), {})
    fits = [forecast_families.fit(family, params, train, problem, threads=1, seed=SEED) for _ in range(2)]
    first, second = (forecast_families.predict(f, family, HORIZON, None)["yhat"].to_numpy() for f in fits)
    joblib.dump(fits[0], workdir / "model.joblib")
    out = Outcome(predictions=first, again=second, truth=truth)
    return out, {"dir": str(workdir), "kind": "forecast", "family": family, "h": HORIZON}


# Runs with `python -I` in a folder outside the repository: neither it nor automl_core can be imported.
_ELSEWHERE = r"""
import importlib.util, json, sys, joblib, numpy as np, pandas as pd
assert importlib.util.find_spec("automl_core") is None, "the repository is importable"
out = {}
for job in json.loads(sys.stdin.read()):
    try:
        model = joblib.load(job["dir"] + "/model.joblib")
        if job["kind"] == "tabular":
            X = pd.read_pickle(job["dir"] + "/input.pkl")
            got = {"predictions": np.asarray(model.predict(X)).tolist()}
            if job["proba"]:
                got["probabilities"] = model.predict_proba(X).tolist()
        elif isinstance(model, dict) and model.get("kind") == "prophet":  # as its 'usage' says: one Prophet per series
            (uid, m), = model["models"].items()
            ds = pd.date_range(model["last"][uid], periods=job["h"] + 1, freq=model["freq"])[1:]
            got = {"predictions": m.predict(pd.DataFrame({"ds": ds}))["yhat"].tolist()}
        elif isinstance(model, dict) and model.get("kind") == "mlp_window":  # numpy weights: the MLP by hand
            w, (x,) = model["weights"], model["tails"].values()
            x = np.asarray(x, dtype=np.float64)[None, -model["input_size"]:]
            loc, spread = x.mean(axis=-1, keepdims=True), x.std(axis=-1, keepdims=True)
            spread = np.maximum(spread, 1e-3 * (np.abs(loc) + 1.0))
            z = (x - loc) / spread
            dense = lambda n, v: v @ w[n + ".weight"].T + w[n + ".bias"]
            a = np.maximum(dense("mlp.2", np.maximum(dense("mlp.0", z), 0)), 0)
            got = {"predictions": ((dense("mlp.4", a) + dense("skip", z)) * spread + loc)[0, :job["h"]].tolist()}
        else:
            got = {"predictions": model.predict(h=job["h"])[job["family"]].to_numpy().tolist()}
        out[job["dir"]] = got
    except Exception as exc:
        out[job["dir"]] = {"error": f"{type(exc).__name__}: {exc}"}
assert not [m for m in sys.modules if m.startswith("automl_core")]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory) -> dict[tuple[str, str, str], Outcome]:
    """Every selected case's outcome (deselected ones, such as slow cases under -m "not slow", are not fit)."""
    selected = {item.callspec.params["case"] for item in request.session.items
                if getattr(item, "originalname", "") == "test_family_contract"}
    results: dict[tuple[str, str, str], Outcome] = {}
    jobs = []
    for case in [c for c in CASES if c in selected]:
        started = time.perf_counter()
        workdir = tmp_path_factory.mktemp(_case_id(case))
        try:
            out, job = _tabular(case[1], case[2], workdir) if case[0] == "tabular" else _forecast(case[1], workdir)
            jobs.append(job)
        except Exception:  # noqa: BLE001 -- reported by the case's own test
            out = Outcome(error=traceback.format_exc())
        results[case] = out
        print(f"{_case_id(case)}: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-I", "-c", _ELSEWHERE], input=json.dumps(jobs), capture_output=True,
                         text=True, timeout=600, cwd=tmp_path_factory.mktemp("elsewhere"))
    assert run.returncode == 0, run.stderr
    elsewhere = json.loads(run.stdout)
    print(f"repo-free process: {time.perf_counter() - started:.1f} s")
    for case, job in zip([c for c in CASES if c in results and not results[c].error], jobs):
        results[case].elsewhere = elsewhere[job["dir"]]
    return results


@needs_data
@pytest.mark.parametrize("case", PARAMS)
def test_family_contract(case, outcomes):
    out = outcomes[case]
    assert not out.error, out.error
    pred = out.predictions
    assert pred.shape == out.truth.shape, "one prediction per row, as a vector"
    if out.probabilities is not None:
        assert set(pred) <= set(out.classes) and set(out.classes) == set(out.truth)
        assert out.probabilities.shape == (len(pred), len(out.classes))
        np.testing.assert_allclose(out.probabilities.sum(axis=1), 1.0, atol=1e-6)
        # a sampled point of the space learns something: better than always the majority class
        majority = pd.Series(out.truth).value_counts(normalize=True).iloc[0]
        assert np.mean(pred == out.truth) > majority
        np.testing.assert_allclose(out.again_probabilities, out.probabilities, rtol=1e-12, atol=1e-15)
    else:
        pred = pred.astype(float)
        assert np.isfinite(pred).all()
        truth = out.truth.astype(float)
        if case[0] == "tabular":  # beats predicting the mean
            assert np.mean((pred - truth) ** 2) < np.var(truth)
        else:  # within 25 % of the level: a forecast of this series, not of another scale
            assert np.all(np.abs(pred - truth) < 0.25 * np.abs(truth))
    # Same seed, same predictions. Forests average their trees in whichever order threads finish, so
    # values may differ in the last bit (1e-15 on mpg); a different seed moves them by far more.
    if out.probabilities is not None:
        np.testing.assert_array_equal(out.again, out.predictions)
    else:
        np.testing.assert_allclose(out.again.astype(float), out.predictions.astype(float), rtol=1e-12, atol=0)
    assert "error" not in out.elsewhere, out.elsewhere.get("error")
    if out.probabilities is not None:
        np.testing.assert_array_equal(np.asarray(out.elsewhere["predictions"], dtype=object),
                                      np.asarray(out.predictions, dtype=object))
        np.testing.assert_allclose(np.asarray(out.elsewhere["probabilities"]), out.probabilities, rtol=1e-12, atol=1e-15)
    else:
        np.testing.assert_allclose(np.asarray(out.elsewhere["predictions"], dtype=float),
                                   out.predictions.astype(float), rtol=1e-12, atol=0)


def test_every_registered_family_is_in_the_contract():
    text = {name for name, family in FAMILIES.items() if family.text is not None}  # tests/test_text_families.py
    pixels = {name for name, family in FAMILIES.items() if family.pixels}  # tests/test_images_cnn.py
    assert {c[1] for c in CASES if c[0] == "tabular"} | text | pixels == set(FAMILIES)
    assert {"xgboost", "catboost"} <= set(FAMILIES)
    assert set(FORECAST_FAMILIES) == {*forecast_families.STATS, *forecast_families.LAG_MODELS, *forecast_families.OTHER}
