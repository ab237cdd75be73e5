"""A compact neural forecaster: one global MLP across series on windows of the latest values, in plain
torch on the CPU (the N-BEATS / N-HiTS idea without their stacks: a window of L values in, the whole
horizon out, each window scaled by its own mean and spread so that series of any level share one model).

neuralforecast's N-HiTS was the named candidate; its wheel pulls ray[train,tune], pytorch-lightning and
optuna, hundreds of MB for a trial that needs none of them, so this module stays in plain torch.

Training is bounded (at most ``MAX_STEPS`` Adam steps on at most ``MAX_SAMPLES`` windows), seeded and
run on the trial's threads. The fitted object is a plain dict (``kind`` "mlp_window") whose weights are
numpy arrays: the forecast is a numpy forward pass, so the saved model loads and forecasts without torch.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .series import DS, ID, Y

HIDDEN = 256
MAX_INPUT = 256
MAX_SAMPLES = 20_000
MAX_STEPS = 600
BATCH = 256
PARAMS = {"hidden": HIDDEN, "steps": MAX_STEPS, "learning_rate": 1e-3}
#: Seconds of one fit at ``MAX_STEPS`` on two busy cores, for the search's cost estimate.
SECONDS_PER_FIT = 2.0


def input_size(season: int, horizon: int) -> int:
    """L: three seasons, or twice the horizon, whichever is longer (at least 8, at most ``MAX_INPUT``)."""
    return int(min(MAX_INPUT, max(2 * horizon, 3 * season if season > 1 else 0, 8)))


def _values(g: pd.DataFrame) -> np.ndarray:
    return g[Y].astype(float).ffill().bfill().to_numpy(np.float32)


def _pad(y: np.ndarray, size: int) -> np.ndarray:
    """``y`` with its first value repeated in front, so that a short series still fills an input window."""
    return np.concatenate([np.full(max(size - len(y), 0), y[0] if len(y) else 0.0, np.float32), y])


def _scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    loc = x.mean(axis=-1, keepdims=True)
    spread = x.std(axis=-1, keepdims=True)
    return loc, np.maximum(spread, 1e-3 * (np.abs(loc) + 1.0))


def _windows(series: list[np.ndarray], size: int, horizon: int, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for y in series:
        padded = _pad(y, size + len(y))   # a window may start before the series (its first value repeated)
        ends = np.arange(size + 1, len(padded) - horizon + 1)
        if len(ends):
            idx = ends[:, None] + np.arange(-size, horizon)[None, :]
            block = padded[idx]
            xs.append(block[:, :size])
            ys.append(block[:, size:])
    if not xs:
        raise ValueError(f"no series is longer than the horizon ({horizon}) plus one value: nothing to learn from")
    x, y = np.concatenate(xs), np.concatenate(ys)
    if len(x) > MAX_SAMPLES:
        keep = np.sort(rng.choice(len(x), MAX_SAMPLES, replace=False))
        x, y = x[keep], y[keep]
    return x, y


def fit(train: pd.DataFrame, freq: str, season: int, horizon: int, params: dict[str, Any], threads: int = 1,
        seed: int = 0) -> dict:
    """One MLP for every series of ``train`` (unique_id, ds, y); exogenous columns are not used."""
    import torch
    size = input_size(season, horizon)
    series = {uid: _values(g) for uid, g in train.groupby(ID, sort=False)}
    rng = np.random.default_rng(seed)
    x, y = _windows(list(series.values()), size, horizon, rng)
    loc, spread = _scale(x)
    x, y = (x - loc) / spread, np.clip((y - loc) / spread, -50, 50)
    hidden = int(params.get("hidden", HIDDEN))
    # about 20 passes over the windows, at least 100 steps, never more than the configured ``steps``
    steps = min(int(params.get("steps", MAX_STEPS)), max(100, 20 * math.ceil(len(x) / BATCH)))
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = torch.nn.ModuleDict({
                "mlp": torch.nn.Sequential(torch.nn.Linear(size, hidden), torch.nn.ReLU(),
                                           torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                                           torch.nn.Linear(hidden, horizon)),
                "skip": torch.nn.Linear(size, horizon)})   # a linear path: level and trend carry over as they are
            X, Y_ = torch.from_numpy(x), torch.from_numpy(y)
            order = torch.Generator().manual_seed(seed)
            adam = _Adam(list(net.parameters()), float(params.get("learning_rate", 1e-3)))
            for _ in range(steps):
                batch = torch.randint(0, len(X), (min(BATCH, len(X)),), generator=order)
                out = net["mlp"](X[batch]) + net["skip"](X[batch])
                torch.nn.functional.l1_loss(out, Y_[batch]).backward()
                adam.step()
    finally:
        torch.set_num_threads(before)
    weights = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    return {"kind": "mlp_window", "weights": weights, "input_size": size, "horizon": horizon, "freq": freq,
            "tails": {uid: v[-size:] for uid, v in series.items()},
            "last": {uid: g[DS].max() for uid, g in train.groupby(ID, sort=False)}}


class _Adam:
    """Adam, written out: ``torch.optim`` imports torch's compiler stack on first use (26 s on a busy
    2-core machine, more than the whole fit)."""

    def __init__(self, params: list, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        import torch
        self.params, self.lr, self.betas, self.eps, self.t = params, lr, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def step(self) -> None:
        import torch
        self.t += 1
        b1, b2 = self.betas
        with torch.no_grad():
            for p, m, v in zip(self.params, self.m, self.v):
                m.mul_(b1).add_(p.grad, alpha=1 - b1)
                v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                p.sub_(self.lr * (m / (1 - b1 ** self.t)) / ((v / (1 - b2 ** self.t)).sqrt() + self.eps))
                p.grad = None


def _forward(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    def dense(name: str, v: np.ndarray) -> np.ndarray:
        return v @ weights[f"{name}.weight"].T + weights[f"{name}.bias"]
    a = np.maximum(dense("mlp.0", x), 0)
    a = np.maximum(dense("mlp.2", a), 0)
    return dense("mlp.4", a) + dense("skip", x)


def predict(fitted: dict, h: int, history: pd.DataFrame | None = None) -> pd.DataFrame:
    """unique_id, ds, yhat for ``h`` steps after each series' end (of ``history`` when given); beyond the
    trained horizon the forecasts are fed back as inputs."""
    size, freq = fitted["input_size"], fitted["freq"]
    if history is not None:
        groups = list(history.groupby(ID, sort=False))
        tails = {uid: _values(g)[-size:] for uid, g in groups}
        last = {uid: g[DS].max() for uid, g in groups}
    else:
        tails, last = fitted["tails"], fitted["last"]
    uids = list(tails)
    window = np.stack([_pad(tails[u], size)[-size:] for u in uids]).astype(np.float64)
    out = np.empty((len(uids), 0))
    while out.shape[1] < h:
        loc, spread = _scale(window)
        step = _forward(fitted["weights"], (window - loc) / spread) * spread + loc
        out = np.concatenate([out, step], axis=1)
        window = np.concatenate([window, step], axis=1)[:, -size:]
    parts = [pd.DataFrame({ID: uid, DS: pd.date_range(last[uid], periods=h + 1, freq=freq)[1:], "yhat": out[k, :h]})
             for k, uid in enumerate(uids)]
    return pd.concat(parts, ignore_index=True)
