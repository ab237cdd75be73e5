"""An RBF kernel SVM family (scikit-learn's ``SVC``): a strong head on image pixels and features (issue #23).

Declarative like the other families (``families`` registers :data:`RECORD` as ``kernel_svm``): a search space
over ``C``, ``gamma`` and class weights with the classical defaults first (C = 5, gamma "scale"), a build, and a
cost model from the fold's shape, because a kernel SVM's cost grows with the square of the rows (libsvm keeps
a kernel row per training row) and it must not be started when it cannot finish.

Probabilities. ``SVC(probability=True)`` runs a 5-fold Platt scaling inside every fit (about 4x the fit), and
``CalibratedClassifierCV(cv=2, ensemble=False)`` costs 5x too (two half fits, then decision values of every row,
which for an SVC cost as much as its fit). The family instead holds out a stratified 10 % of the rows once:
``CalibratedClassifierCV(SVC, method="temperature", cv=StratifiedShuffleSplit(1, test_size=0.1))`` fits the SVC
on 90 % and one temperature (a softmax / sigmoid scale of its decision values) on the held-out 10 %, so the
probabilities are scaled on rows the SVC did not see (its own training rows sit at the margins, +-1, by
construction: overconfident). One process each, under load 7-11 (seconds are noisy, scores are not):

| form | mnist5k pixels: accuracy / log loss / fit s | digit pairs, one-vs-rest: micro-F1 (best threshold) / fit s |
|---|---|---|
| SVC, no probabilities | 0.954 / - / 1.6 | 0.910 (decision > 0) / 26-28 |
| cv=2, ensemble=False, sigmoid | 0.954 / 0.328 / 8.8 | 0.914 / 84 |
| hold out 20 %, sigmoid | 0.955 / 0.340 / 5.0 | 0.903 / 20 |
| hold out 20 %, temperature | 0.955 / 0.262 / 1.9 | 0.904 / 9-25 |
| hold out 10 %, temperature | 0.954 / 0.273 / 2.1 | 0.914 / 16 |

(mnist5k: 4,000 / 1,000 digits, C = 5; pairs: bench_images.make_pairs, 3,000 / 1,000, 32 x 32 pixels.) The
multi-label thresholds are tuned out of fold on these probabilities (a monotone scale: any would do there). The
cost: a class needs a row in the held-out tenth, so a fold of fewer than ~10 rows a class fails this family's
trial (the other heads carry such a set). skl2onnx 1.20 has no converter for the temperature scale: a table
model of this family is not exported to ONNX (the export says why); the image model has no ONNX export.

Not offered to tables by default (``opt_in``): on the shared tabular sets gradient boosting is the stronger
head, a kernel SVM's O(n^2) cost is the worst of the families on the large ones, and the warm-start portfolio
was mined without it; ``--allowed-models kernel_svm`` still allows it for a table.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..prepare.schema import Task

if TYPE_CHECKING:
    import optuna

#: libsvm's kernel cache (MB): 2,667 rows x 2,667 kernel values in float64 are 57 MB, so a fold of a few
#: thousand images keeps its whole kernel and each kernel value is computed once.
CACHE_MB = 500
#: Share of the rows held out to scale the decision values into probabilities (see the module doc).
CALIBRATION_SHARE = 0.1

#: Where the search starts the family on a table (allowed by name): scaled columns, as an RBF kernel needs
#: when columns have their own units. The image task starts it on the pixels as they are (``IMAGE_START``):
#: standardizing each pixel blows up the near-constant border pixels (mnist5k, 4,000 / 1,000, C = 5: 95.4 %
#: unscaled, 91.9 % standardized on the pixels; 96.7 % against 92.3 % on pixels and CNN features).
DEFAULTS = {"C": 5.0, "gamma_kind": "scale", "scale": "standard", "class_weight": "none"}


def space(trial: "optuna.Trial", task: Task) -> dict[str, Any]:
    # gamma relative to scikit-learn's "scale" (1 / (features x variance)) would follow the data best, but an
    # SVC takes a number: the searched value is absolute, with "scale" as the default and a choice of its own.
    params: dict[str, Any] = {"C": trial.suggest_float("C", 0.1, 100.0, log=True),
                              "gamma_kind": trial.suggest_categorical("gamma_kind", ["scale", "value"])}
    if params["gamma_kind"] == "value":
        params["gamma"] = trial.suggest_float("gamma", 1e-5, 1.0, log=True)
    params["scale"] = trial.suggest_categorical("scale", ["none", "standard"])
    if task.is_classification:
        params["class_weight"] = trial.suggest_categorical("class_weight", ["none", "balanced"])
    return params


def build(params: dict[str, Any], task: Task, threads: int, seed: int) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedShuffleSplit
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, SVR
    gamma = float(params["gamma"]) if params.get("gamma_kind") == "value" else "scale"
    C = float(params.get("C", 5.0))
    if not task.is_classification:
        model = SVR(C=C, gamma=gamma, cache_size=CACHE_MB)
    else:
        weight = params.get("class_weight", "none")
        svc = SVC(C=C, gamma=gamma, class_weight=None if weight in (None, "none") else weight, cache_size=CACHE_MB)
        model = CalibratedClassifierCV(svc, method="temperature",
                                       cv=StratifiedShuffleSplit(1, test_size=CALIBRATION_SHARE, random_state=seed))
    # the scaler inside the model, not the trial's shared scaled folds (``needs_scaling``): it is searched
    return make_pipeline(StandardScaler(), model) if params.get("scale") == "standard" else model


def fit_seconds(rows: int, features: int) -> float:
    """Estimated seconds of one fit on ``rows`` x ``features`` (with its probability scale) and of predicting a
    validation fold half its size: a kernel SVM's time grows with rows^2 x features (each kernel value is one
    pass over the features, and the support vectors grow with the rows)."""
    return SECONDS_PER_UNIT * rows * rows * max(features, 1) / 1e9


#: Seconds per 1e9 rows^2 x features (``fit_seconds``), measured in one process under load 7-11 on the 2 cores,
#: so on the safe side of a quiet machine: mnist5k pixels (4,000 x 784, ten classes) fit in 1.9 s and predicted
#: 1,000 rows in 1.1 s; digit pairs (3,000 x 1,024, ten one-vs-rest binary heads) fit in 8.8 s, 0.9 s a head.
SECONDS_PER_UNIT = 0.3

RECORD = dict(name="kernel_svm", label="RBF kernel SVM", space=space, build=build, needs_scaling=False,
              relative_cost=2.0, dense_only=True, thread_scaling=0.0, max_rows=20_000, defaults=DEFAULTS,
              opt_in=True, fit_seconds=fit_seconds)
