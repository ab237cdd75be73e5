"""A small convolutional network on raw pixels: a model family of the one search, for image tasks only.

The image task (``automl_core.images.run``) hands the search a table whose first columns are an image's
pixels, row by row (``px_*``: ``side`` x ``side`` grayscale, or x 3 for RGB), possibly followed by the
pretrained CNN's 1,280 features. :class:`PixelCNN` is a scikit-learn classifier over that table: it finds
the pixel block from the number of columns, crops the rest, and trains two convolution blocks and a small
dense head with AdamW (warm-up then cosine decay) and random shifts of one or two pixels.

- Bounded: ``epochs`` is the plan; with ``max_seconds`` (the search sets it from the time a trial may
  take) the plan is cut after the first epoch to the epochs that fit, never below one. ``epochs_run_``
  says how many ran.
- Deterministic with ``seed`` for a given number of epochs; ``threads`` torch threads (the trial's cores).
- Portable: a fitted PixelCNN pickles as a scikit-learn Pipeline of a float32 cast and a
  ``skorch.NeuralNetClassifier`` around a plain ``torch.nn.Sequential`` (public packages only, as the
  exported model must be), so a saved model never needs this repository. It predicts class codes
  0..K-1: the family is ``label_codes``, so the pipeline wraps it in scikit-learn's label encoding.
"""
from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ..errors import AutoMLInputError
from ..prepare.schema import Task

if TYPE_CHECKING:
    import optuna

#: The pretrained CNN block that may follow the pixels (``images.extract.CNN_DIM``).
EXTRA_BLOCKS = (0, 1280)
MAX_SHIFT = 2          # pixels of random shift per batch (a digit moved a little is the same digit)
WARMUP = 0.1           # share of the steps with a rising learning rate


def pixel_shape(n_columns: int) -> tuple[int, int, int]:
    """(channels, side, columns after the pixels) for a table of ``n_columns`` columns, pixels first."""
    for extra in EXTRA_BLOCKS:
        n = n_columns - extra
        for channels in (1, 3):
            side = math.isqrt(max(n // channels, 0))
            if n > 0 and n % channels == 0 and side * side * channels == n and side >= 8:
                return channels, side, extra
    raise ValueError(f"{n_columns} columns are not the pixels of a square image (side x side, x 3 for RGB), "
                     "optionally followed by 1280 CNN features: the pixel CNN reads image tasks only")


def build_network(channels: int, side: int, extra: int, width: int, n_classes: int, dropout: float = 0.25):
    """A torch.nn.Sequential of public layers: crop the pixels, two conv blocks, a dense head (logits)."""
    from torch import nn
    layers: list[Any] = []
    if extra:
        layers.append(nn.ZeroPad1d((0, -extra)))  # negative padding crops the CNN features off the row
    inner = (side // 2) // 2
    layers += [nn.Unflatten(1, (channels, side, side)),
               nn.Conv2d(channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
               nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(), nn.MaxPool2d(2),
               nn.Flatten(), nn.Dropout(dropout), nn.Linear(2 * width * inner * inner, 4 * width), nn.ReLU(),
               nn.Dropout(dropout), nn.Linear(4 * width, n_classes)]
    return nn.Sequential(*layers)


class PixelCNN(ClassifierMixin, BaseEstimator):
    """A small CNN on the pixel columns (see the module doc). Fit on class codes or labels."""

    def __init__(self, width: int = 16, epochs: int = 8, learning_rate: float = 3e-3, batch_size: int = 64,
                 weight_decay: float = 1e-4, max_seconds: float | None = None, threads: int = 1, seed: int = 0):
        self.width = width
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.max_seconds = max_seconds
        self.threads = threads
        self.seed = seed

    def fit(self, X: Any, y: Any) -> "PixelCNN":
        start = time.perf_counter()  # torch's first import and set-up count against ``max_seconds`` too
        import torch
        X = np.array(X, dtype=np.float32)  # a writable copy (torch shares its memory)
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        channels, side, extra = pixel_shape(X.shape[1])
        self.n_features_in_ = X.shape[1]
        before = torch.get_num_threads()
        torch.set_num_threads(max(1, int(self.threads)))
        try:
            torch.manual_seed(int(self.seed))
            net = build_network(channels, side, extra, int(self.width), len(self.classes_))
            self._train(net, torch.from_numpy(X), torch.from_numpy(codes.astype(np.int64)), start)
        finally:
            torch.set_num_threads(before)
        self.net_ = net.eval()
        return self

    def _train(self, net: Any, X: Any, y: Any, start: float) -> None:
        import torch
        generator = torch.Generator().manual_seed(int(self.seed))
        optimizer = torch.optim.AdamW(net.parameters(), lr=float(self.learning_rate),
                                      weight_decay=float(self.weight_decay))
        batch = int(self.batch_size)
        per_epoch = max(1, math.ceil(len(y) / batch))
        epochs, step, self.epoch_seconds_ = max(1, int(self.epochs)), 0, []
        epoch = 0
        while epoch < epochs:
            began = time.perf_counter()
            net.train()
            order = torch.randperm(len(y), generator=generator)
            for i in range(0, len(y), batch):
                rows = order[i:i + batch]
                shift = torch.randint(-MAX_SHIFT, MAX_SHIFT + 1, (2,), generator=generator).tolist()
                xb = _shifted(net, X[rows], shift)
                for group in optimizer.param_groups:
                    group["lr"] = float(self.learning_rate) * _schedule(step, epochs * per_epoch)
                optimizer.zero_grad()
                loss = torch.nn.functional.cross_entropy(net(xb), y[rows])
                loss.backward()
                optimizer.step()
                step += 1
            self.epoch_seconds_.append(time.perf_counter() - began)
            epoch += 1
            if epoch == 1 and self.max_seconds:  # the plan cut to the epochs the time allows
                left = float(self.max_seconds) - (time.perf_counter() - start)
                epochs = max(1, min(epochs, 1 + int(left // self.epoch_seconds_[0])))
        self.epochs_run_ = epoch

    def predict_proba(self, X: Any) -> np.ndarray:
        import torch
        X = torch.from_numpy(np.array(X, dtype=np.float32))
        before = torch.get_num_threads()
        torch.set_num_threads(max(1, int(self.threads)))
        try:
            with torch.inference_mode():
                out = [torch.softmax(self.net_(X[i:i + 512]), dim=1) for i in range(0, len(X), 512)]
        finally:
            torch.set_num_threads(before)
        return torch.cat(out).numpy().astype(np.float64) if out else np.zeros((0, len(self.classes_)))

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def portable(self) -> Any:
        """The fitted network in public classes only, same predictions: a scikit-learn Pipeline of a
        float32 cast (``numpy.asarray``) and a ``skorch.NeuralNetClassifier`` around the torch.nn.Sequential."""
        import copy
        import torch
        from skorch import NeuralNetClassifier
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import FunctionTransformer
        net = NeuralNetClassifier(copy.deepcopy(self.net_).eval(), criterion=torch.nn.CrossEntropyLoss,
                                  classes=list(self.classes_), batch_size=512, train_split=None, device="cpu")
        cast = FunctionTransformer(np.asarray, kw_args={"dtype": "float32"}).fit(np.zeros((1, self.n_features_in_)))
        return Pipeline([("float32", cast), ("cnn", net.initialize())])

    def __reduce_ex__(self, protocol: int) -> Any:
        if hasattr(self, "net_"):  # fitted: what is pickled (fold models, the saved model) is the public form
            import copyreg
            public = self.portable()
            state = public.__reduce_ex__(max(2, protocol))[2:]
            # the standard library's constructor (pickle refuses ``__newobj__`` for another class than ours)
            return (copyreg._reconstructor, (type(public), object, None), *state)
        return super().__reduce_ex__(protocol)


def _shifted(net: Any, xb: Any, shift: list[int]) -> Any:
    """The batch with its images rolled by ``shift`` (rows, columns) pixels; other columns untouched."""
    import torch
    first = net[0]
    extra = -first.padding[1] if isinstance(first, torch.nn.ZeroPad1d) else 0
    unflatten = net[1 if extra else 0]
    channels, side, _ = unflatten.unflattened_size
    pixels = xb[:, :channels * side * side].reshape(-1, channels, side, side)
    pixels = torch.roll(pixels, shifts=tuple(shift), dims=(2, 3)).reshape(len(xb), -1)
    return torch.cat([pixels, xb[:, channels * side * side:]], dim=1) if extra else pixels


def _schedule(step: int, total: int) -> float:
    """Linear warm-up over the first :data:`WARMUP` of the steps, then cosine decay to zero."""
    warm = max(1, int(WARMUP * total))
    if step < warm:
        return (step + 1) / warm
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))


def space(trial: "optuna.Trial", task: Task) -> dict[str, Any]:
    return {"width": trial.suggest_categorical("width", [16, 32]),
            "epochs": trial.suggest_int("epochs", 4, 16),
            "learning_rate": trial.suggest_float("learning_rate", 1e-3, 1e-2, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [64, 128])}


def build(params: dict[str, Any], task: Task, threads: int, seed: int) -> Any:
    if not task.is_classification:
        raise AutoMLInputError("The pixel CNN classifies images; this task is " + task.value,
                               "use it for image classification")
    return PixelCNN(**{k: v for k, v in params.items() if k in ("width", "epochs", "learning_rate", "batch_size")},
                    threads=threads, seed=seed)


DEFAULTS = {"width": 16, "epochs": 8, "learning_rate": 3e-3, "batch_size": 64}
#: The family's record fields (``families`` registers it as ``pixel_cnn``; this module does not import the
#: registry, so either may be imported first). Cost: an estimate, not a measurement side by side. On mnist5k
#: (4,000 digits, 3 folds, 2 threads, load ~15) a default trial took 527 s (8 epochs, ~22 s per epoch per
#: fold) where a logistic regression trial took 19 s and LightGBM passed 45 s (bench/results/images-*).
RECORD = dict(name="pixel_cnn", label="Small CNN on pixels (PyTorch)", space=space, build=build, relative_cost=4.0,
              dense_only=True, thread_scaling=0.6, label_codes=True, pixels=True, defaults=DEFAULTS)


#: The image task's first trials, in order, each a head family's configuration (a family the run does not offer
#: is left out): cheap and strong first, so the leaderboard has a good model early and a loaded machine still
#: ends with one. Measured (bench/results/images-*; seconds under load are stated there): an RBF SVM on the
#: pixels reaches 95-97 % on mnist digits in seconds and 0.91 micro-F1 on the digit pairs, where a logistic
#: regression at the tables' first C (87) took 242 s for 0.73; the pixel CNN is the strongest single model on
#: small single-label images but costs ~25 s a trial quiet (minutes under load); LightGBM on a thousand pixel
#: columns timed out in every image run.
IMAGE_START: list[tuple[str, dict[str, Any]]] = [
    ("kernel_svm", {"C": 5.0, "gamma_kind": "scale", "scale": "none", "class_weight": "none"}),
    ("pixel_cnn", DEFAULTS),
    ("linear", {"C": 1.0, "class_weight": "none"}),
    ("knn", {"n_neighbors": 5, "weights": "distance", "p": 2}),
]


def image_start(heads: tuple[str, ...], rows_per_class: float = float("inf")) -> list[tuple[str, dict[str, Any]]]:
    """The image task's first configurations (:data:`IMAGE_START`) for the heads this run offers.

    With fewer than :data:`SVM_FIRST_ROWS` images a class (per label, one-vs-rest) the kernel SVM goes last:
    its probabilities need a few rows of each class held out of a validation fold's training rows
    (``svm_family``), and a tiny set's first trial should be one that cannot fail for that."""
    start = [(f, dict(p)) for f, p in IMAGE_START if f in heads]
    if rows_per_class < SVM_FIRST_ROWS:
        start.sort(key=lambda config: config[0] == "kernel_svm")
    return start


#: Images a class at least for the kernel SVM to go first: a held-out tenth of a 3-fold training split
#: (2/3 of the rows) holds a row of each class from about 15 a class; twice that, for uneven folds.
SVM_FIRST_ROWS = 30
