"""The final refit never asks for more threads than the machine has free (finalize.free_cores): OpenMP
threads wait for each other, so on a busy machine two threads were 2-70x slower than one."""
from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from automl_core.search.finalize import free_cores


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_free_cores_stays_within_one_and_the_cores() -> None:
    for cores in (1, 2, 8):
        assert 1 <= free_cores(cores) <= cores


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="reads the runnable count of Linux")
def test_busy_processes_take_cores_from_the_refit() -> None:
    cores = 2
    busy = [multiprocessing.Process(target=_spin, args=(3.0,)) for _ in range(cores)]
    for p in busy:
        p.start()
    try:
        time.sleep(0.3)  # both are runnable by now
        assert free_cores(cores) == 1
    finally:
        for p in busy:
            p.join()
