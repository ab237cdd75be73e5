"""Run one trial in this process under an address-space cap ROOM_MB above what it maps, as a trial worker would, and print its outcome
as JSON: ``python capped_trial.py TABLE TARGET ROOM_MB FAMILY PARAMS_JSON TMP [THREADS]``. A process that dies prints
nothing (the caller sees its exit status), as a worker killed by the cap."""
from __future__ import annotations

import json
import sys


def main(table: str, target: str, room_mb: str, family: str, params: str, tmp: str, threads: str = "1") -> None:
    from automl_core.config import AutoMLConfig
    from automl_core.io.limits import limit_this_process
    from automl_core.prepare.tables import prepare
    from automl_core.search.data import write_search_data
    from automl_core.search.results import TrialSpec
    from automl_core.search.trial import run_trial

    config = AutoMLConfig(test_size=0.2, validation="holdout", holdout_fraction=0.25, seed=0)
    data = write_search_data(prepare(table, target, config), config, tmp)
    with open("/proc/self/status") as fh:  # the cap: this much room above what the process maps now
        size = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmSize:"))
    assert not limit_this_process(size + int(float(room_mb) * 2**20)), "the cap could not be set"
    outcome = run_trial(TrialSpec(data.path, 1, family, json.loads(params), threads=int(threads), seed=0))
    print(json.dumps({"status": outcome.status, "error": outcome.error, "note": getattr(outcome, "note", ""),
                      "n_estimators": outcome.params.get("n_estimators")}))


if __name__ == "__main__":
    main(*sys.argv[1:])
