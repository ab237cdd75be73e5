"""Forecasting's guardrails: the table guardrails' verdicts (``understand.guardrails.Guardrail``:
Passed, Done or Alerted, what was found and what was done) for the checks a forecast needs.

Data checks read what preparing found (``ForecastData.facts``, counted in grid.py and series.py) and
the validation windows; the model check compares the chosen model with the seasonal-naive trial
every run starts with, on the same validation windows. A single run stores them in its card (so the
experiment's summary and ``model.json`` hold them); a partitioned run merges its partitions' checks
(``merge``) and adds one on the partitions that got no model.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from ..models.metrics import metric_label
from ..understand.guardrails import ALERTED, DONE, PASSED, Guardrail, to_json, validation_check
from ..understand.guardrails import _listed as listed, _share as share
from .choice import short_low_frequency
from ..models.families import unnest
from .families import LABELS
from .grid import ID, MIN_TRAIN_ROWS
from .series import ForecastData
from .windows import Folds

#: The chosen model must beat the simple baseline by this share of its error to count as beating it.
BEAT_MARGIN = 0.02
#: Rows without an observed target above this share of the panel are worth a look.
UNOBSERVED_SHARE = 0.1
_ORDER = (ALERTED, DONE, PASSED)


def check_data(data: ForecastData, folds: Folds) -> list[Guardrail]:
    """The data guardrails of one forecasting run, in a fixed order (known before the first trial)."""
    lengths = data.panel.groupby(ID).size()
    return [_leaks(data), _lengths(data, folds, lengths), validation_check(folds.describe(lengths)),
            _gaps(data), _duplicates(data), _future(data)]


def check_forecast(data: ForecastData, folds: Folds, trials: list[Any], best: Any) -> dict[str, list[dict]]:
    """Every forecasting guardrail of one run (data, then model), as stored (``to_json``)."""
    return to_json(check_data(data, folds), [_against_naive(data, trials, best), _final(data, best)])


def _leaks(data: ForecastData) -> Guardrail:
    name = "Target leakage"
    leaks = data.facts.get("leaks") or {}
    columns = list(leaks.get("columns") or [])
    if not columns:
        return Guardrail(name, PASSED, "No known-in-future column reproduces the target at the same time step.",
                         "Nothing to do.")
    # the note reads "possible leak: <columns> explain ... (<why>); their future values ... Fix: ..."
    note = str(leaks.get("note") or "")
    why = note.split("(", 1)[1].split("); ", 1)[0] if "(" in note and "); " in note else ""
    quoted = listed([f"'{c}'" for c in columns])
    found = (f"{quoted} {'explain' if len(columns) > 1 else 'explains'} the target at the same time step"
             + (f" ({why})" if why else "") + ".")
    return Guardrail(name, DONE, found,
                     f"Used past-only, lagged by the horizon ({data.horizon}): their future values are rarely known "
                     "before the target's. If you will truly know them when forecasting, list them as future columns; "
                     "if not even their past is usable, exclude them (Configure step).", tuple(columns))


def _lengths(data: ForecastData, folds: Folds, lengths: pd.Series) -> Guardrail:
    name = "Series length"
    needed = folds.min_train + folds.horizon + (folds.n - 1) * folds.step
    with_target = data.observed.groupby(data.panel[ID].to_numpy()).sum()
    counted = f" ({_span(with_target)} with a target)" if (with_target < lengths.reindex(with_target.index)).any() else ""
    found = (f"{data.n_series:,} series of {_span(lengths)} rows{counted}; {folds.n} validation window(s) of {folds.horizon} "
             f"rows, {folds.step} apart, need {needed:,} rows of a series ({folds.min_train} of history before "
             "the earliest).")
    dropped = data.facts.get("dropped_short") or {}
    entered = folds.windows_per_series(lengths)
    fewer = entered[entered < folds.n]
    problems = []
    if dropped:
        shown = listed([f"{k} ({v} rows)" for k, v in dropped.items()])
        problems.append(f"{len(dropped):,} series dropped as too short to fit and check one window "
                        f"(fewer than {data.horizon + MIN_TRAIN_ROWS} rows): {shown}")
    if len(fewer):
        problems.append(f"{len(fewer):,} series {'is' if len(fewer) == 1 else 'are'} scored on fewer windows "
                        f"({_span(fewer, 'window')}): {listed([str(k) for k in fewer.index])}")
    if not problems:
        return Guardrail(name, PASSED, found, "Every series is long enough for every validation window.")
    action = ("Dropped series get no forecast; give more history, or a shorter horizon. " if dropped else "") + \
        ("Series scored on fewer windows count less in the validation score; fewer windows (Configure step) "
         "would score every series on all of them." if len(fewer) else "")
    return Guardrail(name, ALERTED, found + " " + "; ".join(problems) + ".", action.strip(),
                     tuple(str(k) for k in dropped))


def _span(values: pd.Series, what: str = "") -> str:
    low, high = int(values.min()), int(values.max())
    text = f"{low:,}" if low == high else f"{low:,} to {high:,}"
    return f"{text} {what}{'s' if what and high != 1 else ''}".strip()


def _gaps(data: ForecastData) -> Guardrail:
    name = "Gaps and irregular timestamps"
    facts, rows = data.facts, len(data.panel)
    inserted, off_grid = int(facts.get("inserted", 0)), int(facts.get("off_grid", 0))
    unobserved = int((~data.observed).sum())
    if not (inserted or off_grid or unobserved):
        return Guardrail(name, PASSED, f"Every series has a target at every step of its time grid (frequency {data.freq}).",
                         "Nothing to do.")
    parts = []
    if inserted:
        parts.append(f"{inserted:,} missing timestamp(s) inserted on the time grid (frequency {data.freq})")
    if off_grid:
        parts.append(f"{off_grid:,} timestamp(s) off the grid moved onto it")
    if unobserved:
        parts.append(f"{unobserved:,} of {rows:,} rows ({share(unobserved, rows)}) have no target value")
        per = (~data.observed).groupby(data.panel[ID].to_numpy()).sum().sort_values(ascending=False)
        if data.n_series > 1 and per.nunique() == 1:
            parts[-1] += f", {int(per.iloc[0]):,} in each series"
        elif data.n_series > 1:
            parts[-1] += ", most in " + listed([f"{k} ({v:,})" for k, v in per[per > 0].head(3).items()])
    status = ALERTED if unobserved > UNOBSERVED_SHARE * rows else DONE
    action = ("Rows without a target are forward-filled as the models' input and never scored; exogenous values "
              "are carried forward from the previous step.")
    if status == ALERTED:
        action += " With this many filled rows the forecasts lean on filled values: check how the data was collected."
    return Guardrail(name, status, _sentence("; ".join(parts)), action)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _duplicates(data: ForecastData) -> Guardrail:
    name = "Duplicate timestamps"
    exact = int(data.facts.get("exact_duplicates", 0))
    conflicting = int(data.facts.get("conflicting_timestamps", 0))
    if not (exact or conflicting):
        return Guardrail(name, PASSED, "Every series has one row per timestamp.", "Nothing to do.")
    parts = [f"{exact:,} exact duplicate row(s) dropped"] if exact else []
    if conflicting:
        how = data.facts.get("aggregation", "mean")
        parts.append(f"{conflicting:,} timestamp(s) appear more than once with different targets: their target is "
                     f"the {how} of the repeats")
    return Guardrail(name, DONE, _sentence("; ".join(parts)),
                     "Set the aggregation (sum, mean, or error to refuse them) on the Configure step if this is not "
                     "how the repeats should combine; repeats of different series mean a series id column is missing.")


def _future(data: ForecastData) -> Guardrail:
    name = "Known-future columns"
    future = list(data.future_columns)
    if not future:
        return Guardrail(name, PASSED, "No column is read at the rows being forecast: a forecast needs only the "
                         "history.", "Nothing to do.")
    quoted = listed([f"'{c}'" for c in future])
    found = f"{quoted} {'are' if len(future) > 1 else 'is'} read at the rows being forecast."
    holes = {c: n for c, n in (data.facts.get("exogenous_missing") or {}).items() if c in future}
    missing_test = {}
    if data.test is not None and len(data.test):
        missing_test = {c: int(data.test[c].isna().sum()) for c in future if c in data.test and data.test[c].isna().any()}
    action = (f"To forecast, give their values for each of the next {data.horizon} step(s) of every series; a value "
              "not given is replaced by the latest known one, which is a guess.")
    if not holes and not missing_test:
        return Guardrail(name, DONE, found, action, tuple(future))
    if holes:
        found += f" Training rows lacked values: {listed([f'{c!r} {n:,}' for c, n in holes.items()])} (filled from the previous step)."
    if missing_test:
        found += (f" The test rows lack values: {listed([f'{c!r} {n:,}' for c, n in missing_test.items()])}, "
                  "so the test score used the latest known values instead.")
    return Guardrail(name, ALERTED, found, action + " If their future is not known, make them past-only.",
                     tuple(future))


def _against_naive(data: ForecastData, trials: list[Any], best: Any) -> Guardrail:
    name = "Against the simple baseline"
    metric = data.metric
    family = "seasonal_naive" if data.season > 1 else "naive"
    label = "seasonal naive" if family == "seasonal_naive" else "naive (the last value)"
    base = next((t for t in trials if t.family == family and t.status == "ok" and t.score is not None), None)
    if base is None or best is None or best.score is None:
        return Guardrail(name, PASSED, f"No {label} trial finished, so there is no baseline to compare with.",
                         "Nothing to do.")
    what = metric_label(metric.name)
    short = short_low_frequency(data.freq, data.panel.groupby(ID).size())
    if best.family == family:
        return Guardrail(name, DONE, f"The chosen model is {label} itself ({what} {best.score:.4g} on validation): no "
                         "richer model beat it.", ("Short yearly or quarterly series: " if short else "")
                         + "simple forecasts often win on short or noisy series; more history or informative "
                         "exogenous columns may let a richer model do better.")
    gain = metric.loss(base.score) - metric.loss(best.score)
    rel = gain / abs(metric.loss(base.score)) if metric.loss(base.score) else 0.0
    chosen = unnest(LABELS.get(best.family, best.family))
    found = (f"The chosen model ({chosen}) scores {what} {best.score:.4g} on the validation windows, {label} "
             f"{base.score:.4g}: {abs(rel):.0%} {'better' if rel >= 0 else 'worse'}"
             + _mase(best, base, metric.name) + ".")
    if rel >= BEAT_MARGIN:
        # issue 20: on short yearly panels (healthexp and an independent set) naive still won the years after
        caution = (" On short yearly or quarterly series simple forecasts often win the next years all the same: "
                   "compare the test scores too." if short else "")
        return Guardrail(name, PASSED, found, "The richer model earns its place over the simple forecast." + caution)
    return Guardrail(name, ALERTED, found, f"The model barely or does not beat {label}; {label} is as good a "
                     "forecast here, and simpler to trust. Try more history, or informative exogenous columns.")


def _final(data: ForecastData, best: Any) -> Guardrail:
    name = "Final model"
    wanted = data.facts.get("refit_fallback")
    label = unnest(LABELS.get(getattr(best, "family", ""), getattr(best, "family", "the best model")))
    if not wanted:
        return Guardrail(name, PASSED, f"The chosen model ({label}) was refit on all the history and forecasts.",
                         "Nothing to do.")
    return Guardrail(name, ALERTED, f"The final refit of the chosen model ({unnest(LABELS.get(wanted, wanted))}) did not fit in "
                     f"the time budget: a fallback whose refit does ({label}, trial "
                     f"{getattr(best, 'trial_id', '?')}) was refit and forecasts instead.",
                     "Give the run more time for the chosen model itself.")


def _mase(best: Any, base: Any, metric: str) -> str:
    """MASE beside another metric: its scale (the in-sample seasonal-naive error) reads the same on every set."""
    a, b = (best.metrics or {}).get("mase"), (base.metrics or {}).get("mase")
    return "" if metric == "mase" or a is None or b is None else f" (MASE {a:.3f} against {b:.3f})"


# --- partitioned runs --------------------------------------------------------------------------------

def merge(per_partition: dict[str, dict[str, list[dict]]], failed: dict[str, str],
          left_out: dict[str, str]) -> dict[str, list[dict]]:
    """One partitioned run's guardrails: each check's worst verdict over the partitions that trained, with
    the partitions behind it, and the partitions that got no model."""
    out: dict[str, list[dict]] = {}
    for kind in ("data", "model"):
        by_name: dict[str, list[tuple[str, dict]]] = {}
        for key, stored in per_partition.items():
            for g in stored.get(kind, []):
                by_name.setdefault(g["name"], []).append((key, g))
        out[kind] = [_merged(name, entries) for name, entries in by_name.items()]
    out["data"].insert(0, _partitions(len(per_partition), failed, left_out))
    return out


def _merged(name: str, entries: list[tuple[str, dict]]) -> dict:
    worst = min((g["status"] for _, g in entries), key=_ORDER.index)
    flagged = [(k, g) for k, g in entries if g["status"] == worst]
    n, shown = len(entries), 1 if worst == PASSED else 3
    listed_ = " ".join(f"Partition {k}: {_lower_first(g['finding'])}" for k, g in flagged[:shown])
    more = f" ({len(flagged) - shown} more.)" if len(flagged) > shown else ""
    if len({g["finding"] for _, g in entries}) == 1:
        finding = f"In every partition: {_lower_first(entries[0][1]['finding'])}" if n > 1 else listed_
    elif len(flagged) == n:
        finding = f"{worst} in every partition ({n}). {listed_}{more}" if worst != PASSED else \
            f"Passed in every partition ({n}), e.g. {listed_[0].lower()}{listed_[1:]}"
    else:
        finding = f"{worst} in {len(flagged)} of {n} partitions. {listed_}{more}"
    columns = sorted({c for _, g in flagged for c in g.get("columns", [])})
    return Guardrail(name, worst, finding, flagged[0][1]["action"], tuple(columns)).to_dict()


def _lower_first(text: str) -> str:
    """'No column ...' reads 'no column ...' after a colon; a name or number ('Advert', 3) stays as it is."""
    return text[:1].lower() + text[1:] if text[:2].isalpha() and text[1:2].islower() else text


def _partitions(n_ok: int, failed: dict[str, str], left_out: dict[str, str]) -> dict:
    name = "Partitions without a model"
    missing = {**left_out, **failed}
    if not missing:
        return Guardrail(name, PASSED, f"All {n_ok} partitions trained a model.", "Nothing to do.").to_dict()
    found = (f"{len(missing)} of {n_ok + len(missing)} partitions {'has' if len(missing) == 1 else 'have'} no model: "
             + listed([f"{k} ({why.rstrip('.')})" for k, why in missing.items()]) + ".")
    return Guardrail(name, ALERTED, found, "No fallback stands in for them: their rows get no forecast (predict says "
                     "which). Fix each partition's data (enough history for the horizon), or partition by other "
                     "columns.", tuple(missing)).to_dict()
