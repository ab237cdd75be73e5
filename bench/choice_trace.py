"""Why a choice rule kept what it kept: per set and outer window, every trial's MASE on the inner windows
(what the rule saw) and on the outer window (what peers.md scores), the kept blend of each rule named, and
the comb of the statistical models. Reads the cache of ``replay_choice.py collect``.

    python bench/choice_trace.py fred_retail,stocks [--rules "current, weights shrunk fully to equal,..."]

Writes bench/results/choice-trace-<stamp>.md.
"""
from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

import joblib
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from automl_core.forecast import choice  # noqa: E402
from replay_choice import CACHE, OUTER  # noqa: E402
from replay_rules import RULES  # noqa: E402


def _label(trial: tuple[str, dict]) -> str:
    family, params = trial
    return f"{family}:{params['transform']}" if "transform" in params else family


def trace(name: str, rules: list[str]) -> list[str]:
    cached = joblib.load(CACHE / f"{name}.joblib")
    info, trials = cached["info"], cached["trials"]
    ok = {i: f.reset_index(drop=True) for i, f in enumerate(cached["frames"]) if f is not None}
    fams = {i: trials[i][0] for i in ok}
    n, more = info["n_inner"], info["n_more"]
    lines = [f"## {name}", "", f"{info}", ""]
    for j in range(OUTER):
        fold = more + j
        inner = {i: f[(f["fold"] >= fold - n) & (f["fold"] < fold)].reset_index(drop=True) for i, f in ok.items()}
        outer = {i: f[f["fold"] == fold].reset_index(drop=True) for i, f in ok.items()}
        comb = {i: 1 / 3 for i in ok if fams[i] in choice.COMB}
        rows = [(f"#{i} {_label(trials[i])}", {i: 1.0}) for i in ok]
        rows.append(("comb (ETS, Theta, ARIMA)", comb))
        for rule in rules:
            rows.append((f"**{rule}**", choice.choose(inner, fams, "mase", False, RULES[rule][0])))
        lines += [f"outer window {j + 1} (inner folds {fold - n}..{fold - 1})", "",
                  "| trial / rule | inner MASE | outer MASE | weights |", "|---|---|---|---|"]
        for label, w in rows:
            got = [choice._value(choice.blend(x, w), "mase") for x in (inner, outer)]
            weights = ", ".join(f"#{i} {v:.2f}" for i, v in w.items()) if len(w) > 1 or label.startswith("*") else ""
            lines.append(f"| {label} | {got[0]:.3f} | {got[1]:.3f} | {weights} |")
        lines.append("")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets")
    parser.add_argument("--rules", default="current, weights shrunk fully to equal")
    args = parser.parse_args()
    rules = [r.strip() for r in args.rules.split(";")]
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    lines = [f"# Choice trace ({stamp})", "", f"`python bench/choice_trace.py {args.sets}`: rules {rules}; the "
             "trials of replay_choice.py's cache (12 per set), MASE with the engine's scale.", ""]
    for name in args.sets.split(","):
        lines += trace(name, rules)
    text = "\n".join(lines) + "\n"
    print(text)
    (REPO / "bench" / "results" / f"choice-trace-{stamp}.md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
