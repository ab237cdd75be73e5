"""From the user's table to a regular panel of series: time parsing, frequency, gaps, duplicates.

The result is a long frame ``unique_id, ds, y, <exogenous...>`` on a regular time grid per series
(the layout statsforecast and mlforecast share). Every fix-up is stated in ``notes``; input that
cannot be repaired raises :class:`AutoMLInputError` before anything is written.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..config import AutoMLConfig
from ..errors import AutoMLInputError
from ..prepare.schema import Task
from .grid import DS, ID, MIN_TRAIN_ROWS, Y, deduplicate, drop_short, regular
from .leaks import LEAK_NOTE, leaks_to_past

if TYPE_CHECKING:
    from ..models.metrics import Metric
from ..prepare.roles import UTC_OFFSET, utc_offsets

SEP = " / "  # joins several series id columns into one id


@dataclass(frozen=True, eq=False)
class ForecastData:
    """A forecasting problem ready for the search (what ``prepare`` returns for forecasting)."""

    target: str
    time_column: str                 # as the user named it ("year,month,day" when assembled)
    series_columns: tuple[str, ...]
    freq: str                        # pandas offset alias
    season: int                      # seasonal period m (1: none)
    horizon: int
    panel: pd.DataFrame              # unique_id, ds, y, exogenous columns; regular grid; y filled
    observed: pd.Series              # bool per panel row: the target was really observed (scored rows)
    static_columns: tuple[str, ...]  # exogenous, constant within each series
    future_columns: tuple[str, ...]  # exogenous, known in the future (needed in the rows to forecast)
    past_columns: tuple[str, ...]    # exogenous, known only up to now (used lagged by the horizon)
    test: pd.DataFrame | None        # the test rows (unique_id, ds, y, exogenous), raw, not regularised
    notes: list[str] = field(default_factory=list)
    fingerprint: str = ""
    task: Task = Task.FORECASTING
    task_reason: str = "chosen by the user (a time column and a horizon were given)"
    metric: Metric | None = None     # the run's metric, resolved once here from the config
    local_times: bool = False        # times with UTC offsets kept as local wall time (see parse_time)
    facts: dict = field(default_factory=dict)  # what preparing found and did, counted (grid.py; guardrails.py)

    @property
    def n_series(self) -> int:
        return int(self.panel[ID].nunique())

    @property
    def X(self) -> pd.DataFrame:  # the tabular facade and the CLI count rows through this
        return self.panel


# --- time ------------------------------------------------------------------------------------------

def time_parts(time_column: str) -> list[str]:
    return [c.strip() for c in str(time_column).split(",") if c.strip()]


def parse_time(df: pd.DataFrame, time_column: str, local_times: bool | None = None) -> pd.Series:
    """Timestamps from one column (any common format) or assembled from year/month/day/hour columns.

    Times written with a UTC offset are converted to UTC, unless ``local_times``: then the offset is
    dropped and the local wall time kept. ``None`` (training) decides by :func:`keep_local_times`;
    prediction passes what training decided, so every batch lands on the model's time axis.

    Raises:
        AutoMLInputError: a column is missing, or some values are not dates.
    """
    parts = time_parts(time_column)
    absent = [c for c in parts if c not in df.columns]
    if absent:
        raise AutoMLInputError(f"The time column '{', '.join(absent)}' is not in the data",
                               "pick the column that holds the dates (or year,month,day,hour columns)")
    if len(parts) > 1:
        return _assemble(df, parts, local_times)
    raw = df[parts[0]]
    if pd.api.types.is_datetime64_any_dtype(raw):
        return pd.to_datetime(raw).dt.tz_localize(None) if getattr(raw.dt, "tz", None) else pd.to_datetime(raw)
    numbers = pd.to_numeric(raw, errors="coerce")
    if numbers.notna().all() and (numbers == numbers.round()).all():
        parsed = _from_integers(numbers.astype("int64"))
        if parsed is not None:
            return parsed
    text = raw.astype("string").str.strip()
    local = keep_local_times(text) if local_times is None else local_times
    if local:
        text = text.str.replace(UTC_OFFSET, "", regex=True)
    # utc=True when offsets differ: pandas refuses to parse them otherwise
    parsed = pd.to_datetime(text, errors="coerce", format="mixed", utc=not local and len(utc_offsets(text)) > 1)
    if parsed.isna().mean() > 0 and text.str.fullmatch(r"\d{4}-\d{2}").fillna(False).all():
        parsed = pd.to_datetime(text, format="%Y-%m", errors="coerce")
    _check_parsed(parsed, raw, parts[0])
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert(None)
    return parsed


def keep_local_times(text: pd.Series) -> bool:
    """Whether times whose UTC offsets differ (an export spanning a daylight-saving change) keep their
    local wall time rather than move to UTC.

    Sub-daily times go to UTC: local wall-clock time repeats or skips an hour at the change. Daily or
    coarser data (every local time at the same time of day) keeps its local dates: in UTC, local midnight
    falls on the previous day and the time of day moves with the offset, which breaks the daily grid.
    """
    if len(utc_offsets(text)) < 2:
        return False
    local = pd.to_datetime(text.str.replace(UTC_OFFSET, "", regex=True), errors="coerce", format="mixed")
    return bool(local.notna().any() and local.dropna().dt.time.nunique() == 1)


def time_offsets(df: pd.DataFrame, time_column: str) -> tuple[bool, str]:
    """(keep local times, the note saying what was done) for a time column whose UTC offsets differ;
    (False, "") otherwise."""
    parts = time_parts(time_column)
    column = df[parts[0]] if parts and parts[0] in df.columns else None
    if column is None or pd.api.types.is_datetime64_any_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return False, ""
    text = column.astype("string").str.strip()
    offsets = utc_offsets(text)
    if len(offsets) < 2:
        return False, ""
    local = keep_local_times(text)
    how = (f"kept as local dates (every time is at the same time of day; the offsets {', '.join(offsets)} dropped)"
           if local else f"converted to UTC (offsets {', '.join(offsets[:4])})")
    return local, f"time column {parts[0]!r} mixes UTC offsets: {how}"


def _from_integers(values: pd.Series) -> pd.Series | None:
    """Years (1990), yyyymm (199001) or yyyymmdd (19900131) held as whole numbers."""
    lo, hi = int(values.min()), int(values.max())
    if 1000 <= lo and hi <= 2999:
        return pd.to_datetime(values.astype(str), format="%Y")
    for fmt, low, high in (("%Y%m", 100001, 299912), ("%Y%m%d", 10000101, 29991231)):
        if low <= lo and hi <= high:
            parsed = pd.to_datetime(values.astype(str), format=fmt, errors="coerce")
            if parsed.notna().all():
                return parsed
    return None


_PART_NAMES = {"year": ("year", "yr", "yyyy"), "month": ("month", "mnth", "mon", "mm"), "day": ("day", "dd", "dom"),
               "hour": ("hour", "hr", "hh"), "minute": ("minute", "min", "mi"), "second": ("second", "sec", "ss")}


def _assemble(df: pd.DataFrame, parts: list[str], local_times: bool | None = None) -> pd.Series:
    """Year / month / day / hour columns, or a date column plus hour (minute) columns, as timestamps."""
    named: dict[str, pd.Series] = {}
    base = None
    for col in parts:
        key = next((k for k, names in _PART_NAMES.items() if col.lower().rstrip("s") in names), None)
        if key is None and base is None:
            base = parse_time(df, col, local_times)
            continue
        if key is None or key in named:
            raise AutoMLInputError(f"Cannot tell which part of a date the column '{col}' holds",
                                   "name the columns year, month, day, hour (or a date column and hour)")
        named[key] = pd.to_numeric(df[col], errors="coerce")
    if base is None:
        if "year" not in named:
            raise AutoMLInputError("Assembling timestamps needs a year column or a date column",
                                   "add the year (or date) column to the time columns")
        ymd = {k: named.get(k, pd.Series(1, index=df.index)) for k in ("year", "month", "day")}
        base = pd.to_datetime(pd.DataFrame(ymd), errors="coerce")
    offset = sum((pd.to_timedelta(named[k], unit=k[0] if k != "minute" else "min")
                  for k in ("hour", "minute", "second") if k in named), pd.to_timedelta(0, unit="s"))
    parsed = base + offset
    _check_parsed(parsed, df[parts[0]], ",".join(parts))
    return parsed


def _check_parsed(parsed: pd.Series, raw: pd.Series, name: str) -> None:
    bad = parsed.isna() & raw.notna()
    if raw.isna().any() or bad.any():
        examples = ", ".join(repr(str(v)) for v in raw[bad | raw.isna()].unique()[:3])
        raise AutoMLInputError(f"{int((bad | raw.isna()).sum()):,} value(s) of the time column '{name}' are not dates "
                               f"(e.g. {examples})",
                               "fix or remove those rows, or pick the column that holds the dates")


# --- frequency -------------------------------------------------------------------------------------

#: (typical step, alias, seasonal period)
_STEPS = ((pd.Timedelta(minutes=1), "min", 60), (pd.Timedelta(hours=1), "h", 24), (pd.Timedelta(days=1), "D", 7))
_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def detect_frequency(panel: pd.DataFrame) -> str:
    """The most common step between consecutive timestamps of a series, as a pandas offset alias.

    Raises:
        AutoMLInputError: no series has two timestamps, or the steps have no recognisable unit.
    """
    diffs = panel.sort_values([ID, DS]).groupby(ID)[DS].diff().dropna()
    diffs = diffs[diffs > pd.Timedelta(0)]
    if diffs.empty:
        raise AutoMLInputError("No series has two different timestamps, so there is no history to learn from",
                               "give each series at least a few rows at different times")
    step = diffs.mode().iloc[0]
    ds = panel[DS]
    days = step / pd.Timedelta(days=1)
    if 6.5 <= days <= 7.5:
        return f"W-{_WEEKDAYS[int(ds.dt.dayofweek.mode().iloc[0])]}"
    if 27 <= days <= 32:
        return "MS" if (ds.dt.day == 1).all() else "ME" if ds.dt.is_month_end.all() else "MS"
    if 88 <= days <= 93:
        return "QS" if (ds.dt.day == 1).all() else "QE"
    if 364 <= days <= 367:
        return "YS" if (ds.dt.day == 1).all() and (ds.dt.month == 1).all() else "YE"
    for unit, alias, _ in reversed(_STEPS):
        ratio = step / unit
        if ratio >= 1 and abs(ratio - round(ratio)) < 1e-9:
            n = int(round(ratio))
            return alias if n == 1 else f"{n}{alias}"
    seconds = int(step.total_seconds())
    if seconds >= 1:
        return f"{seconds}s"
    raise AutoMLInputError(f"The time steps ({step}) are too small to forecast", "aggregate to seconds or coarser")


def season_length(freq: str) -> int:
    """The usual seasonal period of a frequency: 24 for hourly, 7 daily, 52 weekly, 12 monthly."""
    offset = pd.tseries.frequencies.to_offset(freq)
    name = offset.name.split("-")[0]
    n = max(offset.n, 1)
    if name in ("h",):
        return max(1, 24 // n)
    if name in ("min",):
        return max(1, 60 * 24 // n) if n >= 15 else max(1, 60 // n)
    if name == "D":
        return 7 if n == 1 else 1
    if name == "W":
        return 52
    if name in ("MS", "ME"):
        return 12 // n if 12 % n == 0 else 1
    if name in ("QS", "QE"):
        return 4
    return 1


def _check_frequency(freq: str) -> str:
    try:
        pd.tseries.frequencies.to_offset(freq)
    except ValueError as exc:
        raise AutoMLInputError(f"The frequency '{freq}' is not a pandas frequency",
                               "use an alias such as h, D, W-MON, MS, QS or YS, or leave it empty to detect it") from exc
    return freq


# --- the panel -------------------------------------------------------------------------------------

def series_ids(df: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    if not columns:
        return pd.Series("series", index=df.index, dtype=object)
    ids = df[list(columns)].astype(str)
    return ids.iloc[:, 0] if len(columns) == 1 else ids.agg(SEP.join, axis=1)


def long_frame(df: pd.DataFrame, target: str, time_column: str, series_columns: tuple[str, ...],
               exogenous: list[str], *, need_target: bool = True, local_times: bool | None = None) -> pd.DataFrame:
    """unique_id, ds, y and the exogenous columns of a raw table (rows in the input's order)."""
    out = pd.DataFrame({ID: series_ids(df, series_columns).to_numpy(), DS: parse_time(df, time_column, local_times).to_numpy()},
                       index=df.index)
    if target in df.columns:
        out[Y] = pd.to_numeric(df[target], errors="coerce").to_numpy()
        if need_target and out[Y].notna().sum() == 0:
            raise AutoMLInputError(f"The target '{target}' has no numeric value", "pick a numeric column to forecast")
    else:
        out[Y] = np.nan
    for col in exogenous:
        out[col] = _numeric(df[col]) if col in df.columns else np.nan
    return out


def _numeric(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values):
        return values.astype(float).to_numpy()
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)


def prepare_forecast(df: pd.DataFrame, target: str, config: AutoMLConfig, *, test: pd.DataFrame | None = None,
                     validation: pd.DataFrame | None = None) -> ForecastData:
    """Check and regularise a forecasting table. Raises AutoMLInputError naming problem and fix."""
    if not config.time_column or config.horizon is None:
        raise AutoMLInputError("Forecasting needs a time column and a horizon",
                               "set time_column (--time-column) and horizon (--horizon, rows ahead)")
    if target not in df.columns:
        raise AutoMLInputError(f"The target column '{target}' is not in the data", "pick a column of the table")
    parts = time_parts(config.time_column)
    series = tuple(config.series_id)
    absent = [c for c in (*series, *config.past_only_columns, *config.future_columns, *config.exclude_columns)
              if c not in df.columns]
    if absent:
        raise AutoMLInputError(f"Column(s) not in the data: {', '.join(absent)}",
                               "name only columns of the table as series ids, past-only, future or excluded columns")
    notes: list[str] = []
    used = {target, *parts, *series, *config.exclude_columns}
    exogenous, dropped = [], []
    for col in df.columns:
        if col in used:
            continue
        values = df[col]
        numeric = pd.to_numeric(values, errors="coerce") if not pd.api.types.is_bool_dtype(values) else values
        (exogenous if numeric.notna().sum() >= max(1, values.notna().sum() * 0.95) else dropped).append(col)
    if dropped:
        notes.append(f"non-numeric column(s) left out of the exogenous features: {', '.join(map(str, dropped[:10]))}")
    exogenous = _without_row_numbers(df, exogenous, config, notes)
    local_times, note = time_offsets(df, config.time_column)
    if note:
        notes.append(note)
    frame = long_frame(df, target, config.time_column, series, exogenous, local_times=local_times)
    if validation is not None:
        extra = long_frame(validation, target, config.time_column, series, exogenous, local_times=local_times)
        frame = pd.concat([frame, extra], ignore_index=True)
        notes.append(f"the validation file's {len(extra):,} rows were added to the history; rolling-origin "
                     "validation scores the last windows of the combined history")
    n_missing_y = int(frame[Y].isna().sum())
    facts: dict = {"missing_target": n_missing_y}
    frame = deduplicate(frame, config.aggregation, notes, validation is not None, facts)
    freq = _check_frequency(config.frequency) if config.frequency else detect_frequency(frame)
    panel, observed, n_filled = regular(frame, freq, exogenous, facts)
    if n_filled:
        notes.append(f"{n_filled:,} missing timestamp(s) inserted on the {freq} grid")
    if n_missing_y or n_filled:
        notes.append(f"{int((~observed).sum()):,} rows without a target value: forward-filled for the models' input, "
                     "never scored")
    panel, observed = drop_short(panel, observed, config.horizon, notes, facts)
    statics = tuple(c for c in exogenous if (panel.groupby(ID)[c].nunique(dropna=False) <= 1).all())
    past = tuple(c for c in config.past_only_columns if c in exogenous and c not in statics)
    # a column that reproduces the target at the same step is no known-in-future input (leaks.py)
    candidates = [c for c in exogenous if c not in (*statics, *past, *config.future_columns)]
    leaked = leaks_to_past(panel.loc[observed.to_numpy()], Y, candidates, ID, notes)
    past += leaked
    facts["leaks"] = {"columns": list(leaked), "note": next((n for n in notes if n.startswith(LEAK_NOTE)), "")}
    future = tuple(c for c in exogenous if c not in statics and c not in past)
    _role_notes(config, statics, past, future, notes)
    test_frame = None
    if test is not None:
        test_frame = long_frame(test, target, config.time_column, series, exogenous, local_times=local_times)
    elif config.test_size is not None:
        panel, observed, test_frame = _hold_out_end(panel, observed, config.test_size, config.horizon, notes)
    digest = hashlib.sha256(pd.util.hash_pandas_object(panel, index=False).to_numpy().tobytes()).hexdigest()
    from ..models.metrics import resolve_metric
    return ForecastData(target, config.time_column, series, freq, season_length(freq), config.horizon, panel,
                        observed, statics, future, past, test_frame, notes, digest,
                        metric=resolve_metric(config.metric, Task.FORECASTING), local_times=local_times, facts=facts)


def _role_notes(config: AutoMLConfig, statics: tuple[str, ...], past: tuple[str, ...], future: tuple[str, ...],
                notes: list[str]) -> None:
    """Every exogenous column's role in words (left-out columns have their own notes above)."""
    if config.exclude_columns:
        notes.append(f"column(s) excluded by you: {', '.join(map(str, config.exclude_columns))}")
    if future:
        notes.append(f"exogenous column(s) treated as known in the future (give their values in the rows to "
                     f"forecast): {', '.join(map(str, future))}")
    if past:
        notes.append(f"past-only column(s) used lagged by the horizon ({config.horizon}): {', '.join(map(str, past))}")
    if statics:
        notes.append(f"column(s) constant within each series, used as series features: {', '.join(map(str, statics))}")


def _without_row_numbers(df: pd.DataFrame, exogenous: list[str], config: AutoMLConfig, notes: list[str]) -> list[str]:
    """Exogenous columns minus row counters (1, 2, 3, ...), which the tabular roles call ids: a
    forecast row's counter lies past every value the models saw, so trees read it as the last
    one and linear models as a trend; on bike_share_daily keeping it costs LightGBM 16 % MASE."""
    from ..prepare.roles import Role, infer_roles
    overrides = {c: r for c, r in config.column_roles.items() if c in exogenous}
    counters = [info.name for info in infer_roles(df[exogenous], overrides=overrides) if info.role is Role.ID]
    if counters:
        notes.append(f"row-number column(s) left out of the features: {', '.join(counters)} (unique consecutive "
                     "integers; set the column's role to numeric to keep it)")
    return [c for c in exogenous if c not in counters]


def _hold_out_end(panel: pd.DataFrame, observed: pd.Series, fraction: float, horizon: int,
                  notes: list[str]) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """The last ``fraction`` of every series as test rows (a forecast's future is its end, not a sample)."""
    pos = panel.groupby(ID).cumcount()
    length = panel.groupby(ID)[ID].transform("size")
    n_test = np.maximum(1, np.round(length * fraction)).astype(int)
    held = (pos >= length - n_test).to_numpy()
    if (length - n_test).min() < horizon + MIN_TRAIN_ROWS:
        raise AutoMLInputError(f"Holding out {fraction:.0%} of each series as test leaves a series too short to "
                               "fit and check", "choose a smaller test fraction or a shorter horizon")
    test = panel[held & observed.to_numpy()].reset_index(drop=True)
    notes.append(f"the last {fraction:.0%} of every series ({int(held.sum()):,} rows) held out as test data")
    return panel[~held].reset_index(drop=True), observed[~held].reset_index(drop=True), test
