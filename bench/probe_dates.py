"""The stretch before a dated table's first trial that the leakage probe's date step touches: the probe plus the
search's fold featurizing, in a fresh interpreter, with the probe encoding dates by skrub ("skrub", the old
way) or by pandas with skrub imported beside it in a thread ("calendar"); the two alternate, median of N.

    python bench/probe_dates.py ../shared/datasets/bike_sharing_hourly.csv cnt 5

Results: bench/results/probe-dates-<stem>-<UTC stamp>.md and .json.
"""
import json
import os
import statistics
import subprocess
import sys
CHILD = r'''
import sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np, pandas as pd
from sklearn.model_selection import KFold
from automl_core.config import AutoMLConfig
from automl_core.prepare.tables import prepare
from automl_core.understand import leakage
from automl_core.search.trial import featurize_folds
import lightgbm, sklearn.tree
p = prepare(pd.read_csv(sys.argv[1]), sys.argv[2], AutoMLConfig(time_budget=20))
if sys.argv[3] == "skrub":
    def enc():
        from skrub import DatetimeEncoder
        return DatetimeEncoder(resolution="hour", add_weekday=True)
    leakage.CalendarParts = enc
    leakage.threading.Thread = lambda **k: type("T", (), {"start": lambda self: None})()
t = time.perf_counter()
leakage.probe(p)
a = time.perf_counter() - t
splits = tuple(KFold(3, shuffle=True, random_state=0).split(p.X))
featurize_folds(p.X, p.codes(p.y), splits, p.columns, p.task, "auto", 0)
print(a, time.perf_counter() - t)
'''
res = {"skrub": [], "calendar": []}
load0 = os.getloadavg()[0]
for i in range(int(sys.argv[3])):
    for mode in (("skrub", "calendar") if i % 2 == 0 else ("calendar", "skrub")):
        out = subprocess.run([sys.executable, "-c", CHILD, sys.argv[1], sys.argv[2], mode], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__)))})
        res[mode].append([float(x) for x in out.stdout.split()] if out.returncode == 0 else out.stderr[-500:])
lines = []
for m, r in res.items():
    lines.append(f"- {m}: probe median {statistics.median(x[0] for x in r):.2f} s, probe + fold featurizing median "
                 f"{statistics.median(x[1] for x in r):.2f} s")
ratio = statistics.median(x[1] for x in res["calendar"]) / statistics.median(x[1] for x in res["skrub"])
lines.append(f"- calendar / skrub (probe + folds): x{ratio:.2f}, under load {load0:.1f} -> {os.getloadavg()[0]:.1f}")
stem = os.path.splitext(os.path.basename(sys.argv[1]))[0]
text = f"# Probe date step, {stem}, {sys.argv[3]} runs each (alternating)\n\n" + "\n".join(lines) + "\n"
print(text)
from datetime import datetime, timezone
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                   f"probe-dates-{stem}-{datetime.now(timezone.utc).strftime('%Y%m%d-%H%M%S')}")
open(out + ".md", "w").write(text)
open(out + ".json", "w").write(json.dumps({"runs": res, "load": [load0, os.getloadavg()[0]]}, indent=1))
