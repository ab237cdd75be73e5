"""A forecasting table onto one regular grid per series: duplicate timestamps, gaps and series too
short to check, each fix-up said in ``notes`` and counted in ``facts`` (what the forecast guardrails
read, see guardrails.py). ``series.prepare_forecast`` runs these in order.
"""
from __future__ import annotations

from typing import Any

import pandas as pd

from ..errors import AutoMLInputError

ID, DS, Y = "unique_id", "ds", "y"
#: Fewest rows a series needs to be fitted and scored at all (the rest is dropped, and said so).
MIN_TRAIN_ROWS = 4


def deduplicate(frame: pd.DataFrame, aggregation: str, notes: list[str], exact_dupes_ok: bool,
                facts: dict[str, Any]) -> pd.DataFrame:
    """One row per series and timestamp: identical repeats dropped, conflicting ones aggregated (stated)."""
    key = [ID, DS]
    exact = frame.duplicated(keep="last")
    if exact.any():
        frame = frame[~exact]
        if not exact_dupes_ok:  # the validation file repeats the history on purpose: not worth a word
            notes.append(f"{int(exact.sum()):,} exact duplicate row(s) dropped")
            facts["exact_duplicates"] = int(exact.sum())
    dup = frame.duplicated(key, keep=False)
    if not dup.any():
        return frame
    n_times = int(frame.loc[dup, key].drop_duplicates().shape[0])
    share = n_times / frame[key].drop_duplicates().shape[0]
    if aggregation == "error" or (aggregation == "auto" and share > 0.2):
        hint = ("the table looks like it holds several series: name the series id column(s)" if share > 0.2
                else "remove the duplicates, or set the aggregation to mean or sum")
        raise AutoMLInputError(f"{n_times:,} timestamp(s) ({share:.0%}) appear more than once with different targets",
                               hint)
    how = "mean" if aggregation == "auto" else aggregation
    grouped = frame.groupby(key, sort=False)
    agg = grouped.agg({c: ("sum" if c == Y and how == "sum" else "mean") for c in frame.columns if c not in key})
    notes.append(f"{n_times:,} timestamp(s) appear more than once with different targets: their target is the {how} "
                 "of the repeats (set the aggregation to sum, mean or error to choose)")
    facts["conflicting_timestamps"], facts["aggregation"] = n_times, how
    return agg.reset_index()


def regularise(frame: pd.DataFrame, freq: str, exogenous: list[str]) -> pd.DataFrame:
    """A long frame on each series' complete time grid, gaps forward-filled."""
    return regular(frame, freq, exogenous)[0]


def regular(frame: pd.DataFrame, freq: str, exogenous: list[str],
            facts: dict[str, Any] | None = None) -> tuple[pd.DataFrame, pd.Series, int]:
    """Each series on a complete grid from its first to its last timestamp; gaps filled (not scored).
    Returns the panel, which rows had a target, and how many timestamps were inserted."""
    parts, filled, snapped = [], 0, 0
    # values missing in the given rows (inserted timestamps are the gaps check's, not these)
    holes = {c: int(n) for c, n in frame[exogenous].isna().sum().items() if n}
    for uid, part in frame.sort_values(DS).groupby(ID, sort=True):
        grid = pd.date_range(part[DS].iloc[0], part[DS].iloc[-1], freq=freq)
        on_grid = part.set_index(DS)
        if not on_grid.index.isin(grid).all():  # timestamps off the grid: snap to it
            snapped += int((~on_grid.index.isin(grid)).sum())
            on_grid.index = on_grid.index.floor(freq) if not freq.startswith(("W", "M", "Q", "Y")) else on_grid.index
            on_grid = on_grid[~on_grid.index.duplicated(keep="last")]
            grid = grid.union(on_grid.index)
        full = on_grid.reindex(grid)
        filled += int(len(grid) - len(part))
        full[ID] = uid
        parts.append(full.rename_axis(DS).reset_index())
    panel = pd.concat(parts, ignore_index=True)[[ID, DS, Y, *exogenous]]
    observed = panel[Y].notna()
    if facts is not None:
        facts.update(inserted=filled, off_grid=snapped, unobserved=int((~observed).sum()), exogenous_missing=holes)
    panel[Y] = panel.groupby(ID)[Y].ffill()
    panel[Y] = panel.groupby(ID)[Y].bfill()
    for col in exogenous:
        panel[col] = panel.groupby(ID)[col].ffill()
        panel[col] = panel.groupby(ID)[col].bfill().fillna(0.0)
    return panel, observed.reset_index(drop=True), filled


def drop_short(panel: pd.DataFrame, observed: pd.Series, horizon: int, notes: list[str],
               facts: dict[str, Any]) -> tuple[pd.DataFrame, pd.Series]:
    """Series too short to fit and score one window of ``horizon`` rows are dropped, and reported."""
    lengths = panel.groupby(ID).size()
    needed = horizon + MIN_TRAIN_ROWS
    short = lengths[lengths < needed]
    if len(short) == len(lengths):
        longest = int(lengths.max())
        raise AutoMLInputError(
            f"The horizon ({horizon} rows) is too long for the history: the longest series has {longest} row(s), "
            f"and fitting and checking a forecast needs at least {needed}",
            f"use a horizon of at most {max(1, longest - MIN_TRAIN_ROWS)} rows, or give more history")
    if len(short):
        names = ", ".join(f"{k} ({v} rows)" for k, v in short.head(5).items())
        notes.append(f"{len(short)} series shorter than {needed} rows dropped (too short to fit and check): {names}")
        facts["dropped_short"] = {str(k): int(v) for k, v in short.items()}
        keep = ~panel[ID].isin(short.index)
        panel, observed = panel[keep].reset_index(drop=True), observed[keep].reset_index(drop=True)
    return panel, observed
