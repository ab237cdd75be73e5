"""Turning store rows into what the Train and Results pages show: status words, progress, leaderboards.

Pure pandas, no streamlit, so the rules are easy to test.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from automl_core.forecast.families import LABELS as FORECAST_LABELS
from automl_core.models.metrics import METRICS
from automl_core.models.families import ENSEMBLE_KINDS, FAMILIES, unnest
from studio.wording import column_format, metric_help, metric_label

#: The words the live page shows (a contract with the end-to-end tests, see DESIGN.md).
STATUS_WORDS = {"queued": "Running", "running": "Running", "completed": "Completed", "stopped": "Stopped",
                "failed": "Failed", "interrupted": "Interrupted", "cancelled": "Cancelled"}
LIVE = ("queued", "running")


def status_word(status: str) -> str:
    return STATUS_WORDS.get(status, status.capitalize())


def ordinal(n: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def queued_text(position: int) -> str:
    """What the live page says while an experiment waits for a free slot."""
    return f"Queued — {ordinal(position)} in line"


def greater_is_better(metric: str | None) -> bool:
    m = METRICS.get(metric or "")
    return True if m is None else m.greater_is_better


def family_label(name: str, task: str | None = None) -> str:
    """A model family's name for people; with the run's ``task`` the one that fits it (a regression's
    linear model is ridge / elastic net, never logistic)."""
    fam = FAMILIES.get(name)
    from automl_core.forecast.partitions import FAMILY as MANY_MODELS, LABEL as MANY_MODELS_LABEL
    if name == MANY_MODELS:
        return MANY_MODELS_LABEL
    return fam.label_for(task) if fam else ENSEMBLE_KINDS.get(name) or FORECAST_LABELS.get(name, name)


def short_label(label: str) -> str:
    """'Linear (logistic / ridge / elastic net)' -> 'Linear': for narrow places such as metric cards."""
    return label.split(" (")[0]


def table_height(n_rows: int, most: int = 360) -> int:
    """Pixel height that fits ``n_rows`` rows (no empty grid below short tables), capped at ``most``."""
    return min(most, 38 + 35 * max(n_rows, 1))


def elapsed_seconds(exp: dict[str, Any], now: datetime | None = None) -> float:
    """Seconds since the run started; for a finished run, its duration."""
    start = exp.get("started_at")
    if start is None or pd.isna(start):
        return 0.0
    end = exp.get("finished_at")
    if exp.get("status") in LIVE or end is None or pd.isna(end):
        end = now or datetime.now(timezone.utc)
    return max(0.0, (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds())


def progress(exp: dict[str, Any], n_trials: int, now: datetime | None = None) -> tuple[float, str]:
    """(fraction done 0..1, text "12 s elapsed · 18 s left") from the budget or the trial limit."""
    cfg = exp.get("config") or {}
    elapsed = elapsed_seconds(exp, now)
    budget, max_trials = cfg.get("time_budget"), cfg.get("max_trials")
    if exp.get("status") not in LIVE:
        return 1.0, f"{clock(elapsed)} in total"
    fractions = []
    left = ""
    if budget:
        fractions.append(elapsed / float(budget))
        left = f" · about {clock(max(0.0, float(budget) - elapsed))} left"
    if max_trials:
        fractions.append(n_trials / float(max_trials))
        left += f" · {max(0, int(max_trials) - n_trials)} trials left"
    frac = min(0.99, max(fractions)) if fractions else 0.0
    return frac, f"{clock(elapsed)} elapsed{left}"


@dataclass(frozen=True)
class Stage:
    """A named step before or after the search (image features; refit, explanations), read from the latest events."""

    name: str                   # "featurizing", "refit" or "explaining"
    title: str                  # what the page says, e.g. "Explaining the model"
    seconds: float              # since the stage started
    budget: float | None        # seconds it may take (explaining) or is expected to take (refit)
    fraction: float = 0.0       # reported progress, 0..1
    doing: str = ""             # what it is doing now, e.g. "SHAP values of member 2 of 5"


#: Events that end the stage read by ``stage`` (a later search event means the search is still on).
_SEARCH_KINDS = ("experiment_started", "trial_started", "trial_finished")


def stage(events: pd.DataFrame, now: datetime | None = None, task: str | None = None) -> Stage | None:
    """The stage after the search an experiment is in, from its latest events (newest first, as
    ``Store.events`` returns them), or None while it searches or once the stages are over; ``task``
    names the models as the run's task has them."""
    if events.empty:
        return None
    now = pd.Timestamp(now or datetime.now(timezone.utc))
    progress: dict[str, Any] = {}
    for kind, payload, created in zip(events["kind"], events["payload"], events["created_at"]):
        p = payload or {}
        since = max(0.0, (now - pd.Timestamp(created)).total_seconds()) if created is not None and not pd.isna(created) else 0.0
        if kind == "explaining_progress" and not progress:
            progress = p
        elif kind == "explaining_started":
            return Stage("explaining", "Explaining the model", since, p.get("budget_seconds"),
                         float(progress.get("fraction") or 0.0), str(progress.get("text") or ""))
        elif kind == "featurizing_started" and "images" in p:  # an image run, before its search
            return Stage("featurizing", "Computing the image features", since, None,
                         doing=f"{int(p.get('images') or 0):,} images, {p.get('doing') or 'features'}")
        elif kind == "featurizing_started":  # a table, before its first trial
            return Stage("featurizing", "Preparing the data", since, None, doing=_table_doing(p))
        elif kind == "workers_starting":
            return Stage("workers", "Starting the trial workers", since, None, doing=_workers_doing(p))
        elif kind == "refit_started":
            members = p.get("members") or []
            what = f"the ensemble's {len(members)} models" if members else f"the best model ({unnest(family_label(str(p.get('family')), task))})"
            return Stage("refit", f"Refitting {what} on all training rows", since, p.get("estimate_seconds"))
        elif kind in ("explaining_finished", "experiment_finished") or kind in _SEARCH_KINDS:
            return None
    return None


def _table_doing(payload: dict[str, Any]) -> str:
    """'featurizing the validation folds (6,433 rows × 13 columns)'."""
    return (f"{payload.get('doing') or 'featurizing'} ({int(payload.get('rows') or 0):,} rows × "
            f"{int(payload.get('columns') or 0):,} columns)")


def _workers_doing(payload: dict[str, Any]) -> str:
    n = int(payload.get("workers") or 1)
    return f"{n} Python process{'es' if n != 1 else ''} loading the libraries and the data; the first trials follow"


def stage_progress(current: Stage) -> tuple[float, str]:
    """(fraction 0..1, text) for the progress bar during a stage: its own progress and time left."""
    fraction = current.fraction
    text = current.title + (f": {current.doing}" if current.doing else "")
    # An estimate that rounds to 0 s (a skipped or instant refit) would read "0 s of about 0 s": say nothing.
    if current.budget and round(float(current.budget)) >= 1:
        fraction = max(fraction, current.seconds / float(current.budget))
        left = max(0.0, float(current.budget) - current.seconds)
        limit = "at most" if current.name == "explaining" else "about"
        text += f" · {clock(current.seconds)} of {limit} {clock(float(current.budget))}"
        text += f" · about {clock(left)} left" if left >= 1 else " · finishing"
    return min(0.99, fraction), text


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


def leaderboard(trials: pd.DataFrame, metric: str | None, *, limit: int | None = None,
                task: str | None = None) -> pd.DataFrame:
    """Finished trials best first: rank, model, primary score, other metrics, fit seconds, trial id, and
    ``details`` (an ensemble's members, a trial's row sample) when any row has them. ``task`` names the
    models as they fit it (see ``family_label``)."""
    cols = ["rank", "model", "score", "fit_seconds", "trial_id"]
    if trials.empty:
        return pd.DataFrame(columns=cols)
    ok = trials[(trials["status"] == "ok") & trials["score"].notna()].copy()
    ok = ok.sort_values(["score", "trial_id"], ascending=[not greater_is_better(metric), True])
    ok.insert(0, "rank", range(1, len(ok) + 1))
    # The trial number goes with the name: charts and selectors call a model "#51 LightGBM" too.
    ok["model"] = [f"#{int(t)} {family_label(f, task)}" for t, f in zip(ok["trial_id"], ok["family"])]
    ok["details"] = [", ".join(filter(None, (n, again))) for n, again in
                     zip(ok["note"].fillna(""), _repeats(ok))]
    metric_cols = [c for c in ok.columns if c in METRICS and c != metric]
    details = ["details"] if ok["details"].str.len().any() else []
    # details beside the score: at the right end, past every metric, the walk never saw "same settings as #1"
    out = ok[["rank", "model", "score", *details, *metric_cols, "fit_seconds", "trial_id"]]
    out = out.rename(columns={"score": metric or "score"})
    return out.head(limit) if limit else out


def _repeats(trials: pd.DataFrame) -> list[str]:
    """'same settings as #1' for a trial that repeats an earlier one's family and settings (a resumed run
    starts by re-running the best earlier ones, so that its final model can use them); else ''."""
    keys = [json.dumps([f, p], sort_keys=True, default=str) for f, p in zip(trials["family"], trials["params"])]
    first: dict[str, int] = {}
    for t, k in sorted(zip(trials["trial_id"].astype(int), keys)):
        first.setdefault(k, t)
    return [f"same settings as #{first[k]}" if first[k] != t else "" for t, k in zip(trials["trial_id"].astype(int), keys)]


def leaderboard_columns(board: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Streamlit column settings for a :func:`leaderboard`: each metric column titled in words with its
    explanation and a precision that suits it, fit seconds as "fit s". Plain dicts (what
    ``st.column_config`` builds), so this module stays free of streamlit; the Train page showed the ids
    (``normalized_root_mean_squared_error``) where Results showed words."""
    config: dict[str, dict[str, Any]] = {
        c: {"label": metric_label(c), "help": metric_help(c),
            "type_config": {"type": "number", "format": column_format(board[c])}}
        for c in board.columns if c in METRICS}
    config["fit_seconds"] = {"label": "fit s", "type_config": {"type": "number", "format": "%.1f"}}
    config["model"] = {"label": "model", "width": "medium"}
    return config


def failed_trials(trials: pd.DataFrame, task: str | None = None) -> pd.DataFrame:
    if trials.empty:
        return pd.DataFrame(columns=["trial_id", "model", "status", "reason"])
    bad = trials[trials["status"] != "ok"]
    return pd.DataFrame({"trial_id": bad["trial_id"], "model": [family_label(f, task) for f in bad["family"]],
                         "status": bad["status"], "reason": bad["error"].fillna("")})


def best_over_time(trials: pd.DataFrame, metric: str | None, task: str | None = None) -> pd.DataFrame:
    """Each finished trial's time and score, and the best score so far (in the metric's direction)."""
    if trials.empty:
        return pd.DataFrame(columns=["seconds", "score", "best", "model", "trial_id"])
    ok = trials[(trials["status"] == "ok") & trials["score"].notna()].sort_values("finished_at")
    best = ok["score"].cummax() if greater_is_better(metric) else ok["score"].cummin()
    return pd.DataFrame({"seconds": ok["finished_at"].to_numpy(), "score": ok["score"].to_numpy(),
                         "best": best.to_numpy(), "model": [family_label(f, task) for f in ok["family"]],
                         "trial_id": ok["trial_id"].to_numpy()})


def describe_event(kind: str, payload: dict[str, Any], trial_id: Any, task: str | None = None) -> str:
    """One line per event, for the recent-events list; ``task`` names the models as the run's task has
    them (a regression's linear model is never "logistic")."""
    p = payload or {}
    if kind == "experiment_started":
        return f"Started: {p.get('task')} task, metric {p.get('metric')}, {p.get('validation')}, {p.get('n_rows', 0):,} rows"
    if kind == "trial_started":
        return f"Trial {p.get('trial_id')} started: {family_label(str(p.get('family')), task)}"
    if kind == "trial_finished":
        return f"Trial {trial_id} finished"
    if kind == "new_best":
        score = p.get("score")
        return f"New best: {family_label(str(p.get('family')), task)} scored {score:.4g}" if score is not None else "New best"
    if kind == "refit_started":
        return f"Refitting the best model ({unnest(family_label(str(p.get('family')), task))}) on all training rows"
    if kind == "featurizing_started" and "images" in p:
        return f"Image features of {int(p.get('images') or 0):,} images: {p.get('doing') or 'computing'}"
    if kind == "featurizing_started":
        return f"Preparing the data: {_table_doing(p)}"
    if kind == "workers_starting":
        return f"Starting the trial workers: {_workers_doing(payload or {})}"
    if kind == "experiment_finished":
        return f"Search and refit finished: {p.get('stopped_by')}"
    if kind == "explaining_started":
        return f"Explaining the model (at most {clock(float(p.get('budget_seconds') or 0))})"
    if kind == "explaining_finished":
        if p.get("method"):
            return f"Explained in {clock(float(p.get('seconds') or 0))}: {p['method']}"
        return f"No explanations: {p.get('skipped') or p.get('error')}"
    if kind == "message":
        return str(p.get("text") or p.get("message") or p)
    return kind.replace("_", " ")


#: Column widths of the events table: the time is a few characters, the event text needs the room.
EVENT_COLUMNS = {"at": {"label": "at", "width": 70}, "event": {"label": "event", "width": "large"}}


def events_frame(events: pd.DataFrame, limit: int = 8, task: str | None = None) -> pd.DataFrame:
    if events.empty:
        return pd.DataFrame(columns=["at", "event"])
    # the stage's progress ticks drive the progress bar; as lines they would push everything else out
    ev = events[events["kind"] != "explaining_progress"].head(limit)
    return pd.DataFrame({"at": [clock(e or 0) for e in ev["elapsed"]],
                         "event": [describe_event(k, p, t, task)
                                   for k, p, t in zip(ev["kind"], ev["payload"], ev["trial_id"])]})


def no_guardrails_text(exp: dict[str, Any]) -> str:
    """What the guardrails area says when an experiment has none stored, by its state and task."""
    if exp.get("task") == "forecasting":
        if exp.get("status") in LIVE:
            return ("A forecasting run's guardrails (leaks, short series, gaps, duplicates, known-future columns, "
                    "the model against seasonal naive) appear here when it finishes.")
        return ("This forecasting run stored no guardrails (made before they existed); what was found is listed in "
                "the notes under Model details.")
    if exp.get("task") == "image_classification":
        return ("Image runs skip the table guardrails (checks of columns, which over hundreds of pixel or CNN "
                "feature columns cost minutes and say nothing); the images read and dropped, by reason, are in the "
                "notes under Model details.")
    if exp.get("task") == "multilabel":
        return ("Multi-label runs do not run the table guardrails yet; labels left out (seen in too few rows, or "
                "beyond the most frequent 100) are listed in the notes under Model details.")
    if exp.get("status") in LIVE:
        return "Guardrails appear here once the data has been checked (just before the first trial)."
    return "This run stored no guardrails (it ended before the data checks, or was made before they existed)."
