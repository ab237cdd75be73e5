"""Model families that misbehave on purpose, loaded through AUTOML_EXTRA_FAMILIES in fault tests.

``raises`` fails to fit, ``crashes`` ends its process (os._exit), ``segfaults`` dereferences NULL
(a real SIGSEGV), ``hogs`` allocates memory until the worker's limit stops it, and ``hangs`` sleeps
past any per-trial timeout.
"""
from __future__ import annotations

import ctypes
import os
import time

import numpy as np
from sklearn.dummy import DummyClassifier

#: ``hogs`` gives up here if no limit stopped it, so a broken limit fails the test, not the machine.
HOG_CEILING_BYTES = 64 * 2**30


class Raises(DummyClassifier):
    def fit(self, X, y, **kw):
        raise ValueError("this model always fails to fit")


class Crashes(DummyClassifier):
    def fit(self, X, y, **kw):
        os._exit(13)  # the worker process dies without a word


class Segfaults(DummyClassifier):
    def fit(self, X, y, **kw):
        ctypes.string_at(0)  # reads address 0: SIGSEGV, as a buggy C extension would


class Hogs(DummyClassifier):
    def fit(self, X, y, **kw):
        # Address space is what the limit counts, so untouched (np.empty) chunks reach it as fast as
        # used ones, and without a limit they cost no real memory: the machine is safe either way.
        held, chunk = [], 256 * 2**20
        while len(held) * chunk < HOG_CEILING_BYTES:
            held.append(np.empty(chunk // 8))
        return super().fit(X, y)  # only reached when nothing limited the worker


class Hangs(DummyClassifier):
    def fit(self, X, y, **kw):
        time.sleep(600)
        return super().fit(X, y)


FAULTS = {"raises": Raises, "crashes": Crashes, "segfaults": Segfaults, "hogs": Hogs, "hangs": Hangs}


def register(registry) -> None:
    from automl_core.models.families import ModelFamily

    for name, cls in FAULTS.items():
        if name not in registry:
            registry.add(ModelFamily(name, name, lambda trial, task: {}, lambda p, t, n, s, cls=cls: cls()))
