"""Priors for short low-frequency series, replayed on the cached trials of ``replay_choice.py collect``.

Every candidate starts from the engine's rule (``choice.DEFAULT``) on the N windows before outer window
j and changes only what a short yearly / quarterly problem keeps; it is scored (MASE) on outer window j,
averaged over the 3 outer windows. The sets that did not shape a candidate judge it: the sets of
``short_sets.py`` and statsmodels' short panels; healthexp (the set that asked for a prior) is shown apart.
``loso``: the anchor share picked by geometric-mean MASE on all other short sets, scored on the one left out.

    CHOICE_CACHE=DIR python bench/replay_short.py     # writes bench/results/choice-short-<stamp>.md/.json
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from automl_core.forecast import choice  # noqa: E402

CACHE = Path(os.environ.get("CHOICE_CACHE", Path(tempfile.gettempdir()) / "choice-cache"))
OUTER = 3
SHAPED = ("healthexp",)
ANCHORS = (0.0, 0.1, 0.2, 1 / 3, 0.5, 2 / 3)


def _mase(frame: pd.DataFrame) -> float:
    value = choice._value(frame, "mase")
    return np.nan if value is None else value


def _mix(weights: dict[int, float], other: dict[int, float], share: float) -> dict[int, float]:
    out = {i: (1 - share) * w for i, w in weights.items()}
    for i, w in other.items():
        out[i] = out.get(i, 0.0) + share * w
    return out


def candidates(inner: dict[int, pd.DataFrame], fams: dict[int, str]) -> dict[str, dict[int, float]]:
    """Weights over trials of each candidate, from the inner windows only."""
    base = choice.choose(inner, fams, "mase", False, choice.DEFAULT, short=True)
    simple_ids = [i for i in inner if fams[i] in choice.SIMPLE]
    simple = min(simple_ids, key=lambda i: _mase(inner[i]))
    drift = [i for i in inner if fams[i] == "drift"]
    out = {f"anchor {a:.2f} to the simple model": _mix(base, {simple: 1.0}, a) for a in ANCHORS}
    out["simple model alone"] = {simple: 1.0}
    if drift:
        out["thirds: pick, simple, drift"] = _mix(_mix(base, {simple: 1.0}, 1 / 3), {drift[0]: 1.0}, 1 / 3)
    out["SN guard 20 % (the former prior)"] = choice.choose(inner, fams, "mase", False, choice.Rule(shrink=1.0, prior=0.2),
                                                         short=True)
    out["latest half of the windows"] = choice.choose(inner, fams, "mase", False, choice.Rule(shrink=1.0, recent=0.5))
    # data-driven anchors: the share read from the validation windows
    later = {i: choice.latest(f, 0.5) for i, f in inner.items()}
    fit = {a: _mase(choice.blend(later, _mix(base, {simple: 1.0}, a))) for a in (0, .25, .5, .75, 1)}
    out["anchor fitted on the later windows"] = _mix(base, {simple: 1.0}, min(fit, key=fit.get))
    folds = sorted(inner[simple]["fold"].unique())
    wins = [_mase(choice.blend({i: f[f["fold"] == k] for i, f in inner.items()}, base))
            > _mase(inner[simple][inner[simple]["fold"] == k]) for k in folds]
    out["anchor = share of windows the simple model won"] = _mix(base, {simple: 1.0}, float(np.mean(wins)))
    return out


def replay(cached: dict) -> dict[str, float]:
    info, trials = cached["info"], cached["trials"]
    ok = {i: f.reset_index(drop=True) for i, f in enumerate(cached["frames"]) if f is not None}
    fams = {i: trials[i][0] for i in ok}
    n, more = info["n_inner"], info["n_more"]
    scores: dict[str, list[float]] = {}
    for j in range(OUTER):
        fold = more + j
        inner = {i: f[(f["fold"] >= fold - n) & (f["fold"] < fold)].reset_index(drop=True) for i, f in ok.items()}
        inner = {i: f for i, f in inner.items() if len(f)}
        sizes = {len(f) for f in inner.values()}
        if len(sizes) > 1:   # a trial that skipped a window is left out, as the engine's frames share rows
            top = max(sizes)
            inner = {i: f for i, f in inner.items() if len(f) == top}
        for name, w in candidates(inner, fams).items():
            scores.setdefault(name, []).append(_mase(choice.blend({i: ok[i][ok[i]["fold"] == fold] for i in w}, w)))
        scores.setdefault("oracle (best single trial)", []).append(min(_mase(f[f["fold"] == fold]) for f in ok.values()))
    return {k: float(np.nanmean(v)) for k, v in scores.items()}


def _geo(table: pd.DataFrame) -> pd.Series:
    return np.exp(np.log(table).mean(axis=1))


def loso(table: pd.DataFrame) -> pd.DataFrame:
    """Per held-out set: the anchor share best (geo mean) on the other sets, and its score there."""
    anchors = [r for r in table.index if r.startswith("anchor 0") or r.startswith("anchor 1")]
    rows = {}
    for s in table.columns:
        pick = _geo(table.loc[anchors, [c for c in table.columns if c != s]]).idxmin()
        rows[s] = {"picked": pick, "held-out MASE": table.loc[pick, s], "current": table.loc[anchors[0], s]}
    return pd.DataFrame(rows).T


def paired(table: pd.DataFrame, base: str, seed: int = 0) -> pd.DataFrame:
    """Each candidate against ``base``, set by set: wins / losses, geo-mean ratio and its 90 % bootstrap
    interval over sets (resampling sets, the unit that varies)."""
    logs = np.log(table) - np.log(table.loc[base])
    boot = np.random.default_rng(seed).integers(0, table.shape[1], (2000, table.shape[1]))
    rows = {}
    for name, row in logs.iterrows():
        v = row.to_numpy(float)
        means = v[boot].mean(axis=1)
        rows[name] = {"wins": int((v < -1e-9).sum()), "losses": int((v > 1e-9).sum()),
                      "geo ratio": round(float(np.exp(v.mean())), 4),
                      "90 % interval": f"{np.exp(np.quantile(means, 0.05)):.3f} - {np.exp(np.quantile(means, 0.95)):.3f}"}
    return pd.DataFrame(rows).T


def main() -> int:
    results, infos = {}, {}
    for path in sorted(CACHE.glob("*.joblib")):
        cached = joblib.load(path)
        info = cached["info"]
        if not choice.short_low_frequency(info["freq"], pd.Series([info["median_length"]])):
            continue
        results[path.stem], infos[path.stem] = replay(cached), info
    table = pd.DataFrame(results)
    judged = [s for s in table.columns if s not in SHAPED]
    ranks = table.drop(index="oracle (best single trial)")[judged].rank(axis=0, method="average")
    summary = pd.DataFrame({"geo mean (judged)": _geo(table[judged]), "avg rank (judged)": ranks.mean(axis=1),
                            "sets better than current": (table[judged].lt(table.loc["anchor 0.00 to the simple model",
                                                                                    judged], axis=1)).sum(axis=1),
                            "healthexp": table[SHAPED[0]] if SHAPED[0] in table else np.nan})
    held = loso(table[judged])
    plain = table[judged].drop(index="oracle (best single trial)")
    against = paired(plain, "anchor 0.00 to the simple model")
    # a split of the collection: panels (a score averaged over many series) and single series
    panels = [s for s in judged if infos[s]["n_series"] > 1]
    split = pd.DataFrame({f"{kind} ({len(sets)} sets)": paired(plain[sets], "anchor 0.00 to the simple model")["geo ratio"]
                          for kind, sets in (("panels", panels), ("single series", [s for s in judged if s not in panels]))})
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    lines = [f"# Short low-frequency priors, replayed offline ({stamp})", "",
             "`python bench/replay_choice.py collect` (12 trials per set), then `python bench/replay_short.py`. "
             "MASE on the 3 outer windows; every candidate reads only the engine's N inner windows before each. "
             f"Judged on {len(judged)} short yearly / quarterly sets that shaped no rule; healthexp shown apart. "
             "Counted in trials, not seconds (machine shared by several helpers).", "",
             "## Summary", "", summary.round(4).to_markdown(), "",
             "## Against the engine's rule (anchor 0), set by set on the judged sets", "", against.to_markdown(), "",
             "## A split of the judged sets: geo-mean ratio to the engine's rule", "", split.to_markdown(), "",
             "## Leave one set out (anchor share picked on the other judged sets)", "", held.to_markdown(), "",
             f"geo mean held out: {np.exp(np.log(held['held-out MASE'].astype(float)).mean()):.4f} against current "
             f"{np.exp(np.log(held['current'].astype(float)).mean()):.4f}", "",
             "## Per set", "", table.round(3).to_markdown(), "", "## Sets", "", "| set | info |", "|---|---|"]
    lines += [f"| {s} | {json.dumps(i)} |" for s, i in infos.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    out = REPO / "bench" / "results" / f"choice-short-{stamp}"
    out.with_suffix(".md").write_text(text)
    out.with_suffix(".json").write_text(json.dumps({"results": results, "sets": infos, "summary": summary.to_dict(),
                                                    "loso": held.astype(str).to_dict(),
                                                    "paired": against.astype(str).to_dict()}, indent=2, default=str))
    print(f"recorded in {out.relative_to(REPO)}.md/.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
