"""A forecasting refit that hangs when it runs in a worker process (issue #20's deadline test).

The test puts ``refit`` in place of ``forecast.runner.refit`` and sets HUNG_REFIT_PARENT to its own process id:
in the parent (the fallback's refit) it is the real refit; in a loky worker it sleeps past any deadline, as
AutoARIMA's refit on a long weekly series did (65 s where its trial had taken far less).
"""
from __future__ import annotations

import os
import time

from automl_core.forecast.windows import refit as real_refit

HANG_SECONDS = 600


def refit(path: str, members: list, threads: int, seed: int) -> dict:
    if str(os.getpid()) != os.environ.get("HUNG_REFIT_PARENT"):
        time.sleep(HANG_SECONDS)
    return real_refit(path, members, threads, seed)
