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
