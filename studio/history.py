"""The Experiments page's tables: the history, and which experiments share a dataset.

Experiments made by the command line have no dataset in the store (``dataset_id`` is NULL); they are
grouped under one label instead of a raw ``None`` that crashed the page's select box.
"""
from __future__ import annotations

import pandas as pd

from studio import live
from studio.wording import metric_label

CLI_DATASET = "command line"  # label of experiments whose data never entered the store
_CLI_KEY = "cli:"  # their group key's prefix: a string, because a select box cannot format None


def dataset_keys(history: pd.DataFrame) -> pd.Series:
    """One string per experiment naming the dataset it ran on; command-line runs, whose data the store
    does not know, are told apart by task at least (a forecast is no rival of a classifier)."""
    cli = _CLI_KEY + history["task"].fillna("").astype(str)
    return history["dataset_id"].astype("object").where(history["dataset_id"].notna(), cli).astype(str)


def dataset_labels(history: pd.DataFrame) -> dict[str, str]:
    """Dataset key -> readable name, in the history's order (newest first)."""
    labels: dict[str, str] = {}
    for key, name in zip(dataset_keys(history), history["dataset_name"]):
        if key not in labels:
            cli = key.startswith(_CLI_KEY)
            labels[key] = f"{CLI_DATASET} · {key[len(_CLI_KEY):]}" if cli else (name if isinstance(name, str) and name else key)
    return labels


def history_table(history: pd.DataFrame) -> pd.DataFrame:
    """The experiments as the page lists them, newest first."""
    labels = dataset_labels(history)
    return pd.DataFrame({
        # the status second: at 1280 px the table's right end (where it was) is scrolled out of sight
        "name": history["name"], "status": [live.status_word(s) for s in history["status"]],
        "dataset": [CLI_DATASET if k.startswith(_CLI_KEY) else labels[k] for k in dataset_keys(history)],
        "task": history["task"], "metric": [metric_label(m) for m in history["metric"]],
        "best score": history["best_score"], "test score": history["test_score"],
        "best model": [live.family_label(m, t) if isinstance(m, str) else ""
                       for m, t in zip(history["best_model"], history["task"])],
        "trials": history["n_trials"],
        "created": history["created_at"].dt.strftime("%Y-%m-%d %H:%M"), "id": history["experiment_id"],
    })


def on_dataset(history: pd.DataFrame, key: str) -> pd.DataFrame:
    """The experiments that ran on the dataset ``key`` (a key from :func:`dataset_labels`)."""
    return history[dataset_keys(history) == key]


#: How many of a dataset's experiments the comparison starts with (the newest): a person adds or removes runs.
COMPARE_FIRST = 5


def run_labels(frame: pd.DataFrame) -> dict[str, str]:
    """Experiment id -> a label for charts and pickers. Two runs of one wizard share a name ("species
    (multiclass)"): the start time tells them apart, as the table's "created" column does."""
    return {i: f"{n} · {t:%m-%d %H:%M}" if pd.notna(t) else f"{n} · {i[-4:]}"
            for n, t, i in zip(frame["name"], frame["created_at"], frame["experiment_id"])}


def compared(frame: pd.DataFrame, picked: list[str] | None) -> pd.DataFrame:
    """The experiments of ``frame`` a person picked to compare (all of them, newest first, at most
    ``COMPARE_FIRST``, before any pick), labelled; an id no longer in ``frame`` is ignored."""
    ids = list(frame["experiment_id"])
    chosen = ids[:COMPARE_FIRST] if picked is None else [i for i in picked if i in ids]
    part = frame[frame["experiment_id"].isin(chosen)]
    return part.assign(label=part["experiment_id"].map(run_labels(frame)))
