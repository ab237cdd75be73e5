"""Model families that misbehave on purpose, loaded through AUTOML_EXTRA_FAMILIES in fault tests."""
from __future__ import annotations

import os
import time

from sklearn.dummy import DummyClassifier


class Raises(DummyClassifier):
    def fit(self, X, y, **kw):
        raise ValueError("this model always fails to fit")


class Crashes(DummyClassifier):
    def fit(self, X, y, **kw):
        os._exit(13)  # the worker process dies without a word


class Hangs(DummyClassifier):
    def fit(self, X, y, **kw):
        time.sleep(600)
        return super().fit(X, y)


def register(registry) -> None:
    from automl_core.models import ModelFamily

    for name, cls in (("raises", Raises), ("crashes", Crashes), ("hangs", Hangs)):
        if name not in registry:
            registry.add(ModelFamily(name, name, lambda trial, task: {}, lambda p, t, n, s, cls=cls: cls()))
