"""Where trials run: a local pool of worker processes, or a Dask cluster.

Both look like a ``concurrent.futures`` executor to the search loop, which needs futures it can
wait on with a deadline. Locally, loky worker processes load the training data from a file once and
keep it; a hung or crashed trial is ended by killing the pool. On a cluster (a scheduler address),
the training data is scattered to every worker once and trials are submitted through
``Client.get_executor()``; a trial past its time limit is cancelled (Dask cannot kill a running task,
so its worker stays busy until the fit returns).
"""
from __future__ import annotations

import importlib
import os
import threading
from concurrent.futures import Future
from contextvars import ContextVar
from typing import Any, Callable

from joblib.externals.loky import ProcessPoolExecutor

from ..errors import AutoMLInputError
from ..io.limits import prepare_worker, worker_cap_problem, worker_memory_limit
from .fork_server import worker_context

#: Set while a search runs inside a worker that is itself one of many side by side (a partition of a
#: many-models run, forecast/partitions.py): its trials then run one after another in that worker.
INLINE_TRIALS: ContextVar[bool] = ContextVar("inline_trials", default=False)


def _start_worker(memory_limit: int | None, preload: tuple[str, ...], environ: dict[str, str] | None = None) -> None:
    """A loky worker's initializer: the caller's environment, its limits, then the libraries its trials import.

    ``environ``: the caller's environment when the pool was made; a worker forked from the fork server
    would otherwise see the server's, from the caller's first run (a changed cache path, say).
    Importing ``preload`` here, not in the first trial, matters twice. loky takes a worker's reference memory
    after its first task and replaces a worker that grew 300 MB past it: statsforecast + mlforecast +
    LightGBM are about that much, so on bike_share_daily every forecasting worker was replaced after one
    trial, and each next trial paid the imports again (10-15 s under load, for a naive forecast that
    takes 0.2 s); and a trial's measured seconds are then its own, which the scheduler's cost model reads."""
    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    prepare_worker(memory_limit)
    for name in preload:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 -- a missing optional library fails the trials that need it, not the pool
            pass


class LocalPool:
    """Loky worker processes; ``shutdown(kill=True)`` ends running trials at once."""

    kills_hung_trials = True

    def __init__(self, n_workers: int, preload: tuple[str, ...] = ()) -> None:
        # Each worker gets a memory (address-space) limit, so a runaway trial fails alone, and a lower
        # priority than the studio serving pages (limits.prepare_worker); then imports ``preload``.
        self._executor = ProcessPoolExecutor(max_workers=n_workers, context=worker_context(),
                                             initializer=_start_worker,
                                             initargs=(worker_memory_limit(n_workers), preload, dict(os.environ)))
        # Start the processes now, in the background: forking waits for the fork server's imports,
        # which overlap the caller's data preparation.
        self._cap_problem: Future = Future()
        self._booting = threading.Thread(target=self._boot, args=(n_workers,), name="automl-pool-start", daemon=True)
        self._booting.start()

    def _boot(self, n_workers: int) -> None:
        try:
            for _ in range(n_workers):
                self._executor.submit(os.getpid)
            problem = self._executor.submit(worker_cap_problem)
        except Exception as exc:  # noqa: BLE001 -- shut down meanwhile; the search sees it when it submits
            self._cap_problem.set_exception(exc)
            return
        problem.add_done_callback(lambda f: _copy_result(f, self._cap_problem))

    def memory_cap_problem(self, timeout: float = 60.0) -> str:
        """Why the workers have no memory cap ("" when they have one, or none was asked for)."""
        try:
            return self._cap_problem.result(timeout=timeout)
        except Exception:  # noqa: BLE001 -- a worker that did not start is reported by the trials themselves
            return ""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        self._booting.join()
        return self._executor.submit(fn, *args)

    def data_arg(self, data_path: str) -> tuple:
        return ()  # workers read the file themselves

    def shutdown(self) -> None:
        self._booting.join()
        self._executor.shutdown(wait=False, kill_workers=True)


def _copy_result(source: Future, target: Future) -> None:
    exc = source.exception()
    if exc is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())


class DaskPool:
    """Trials on a Dask cluster; the training data travels to the workers once."""

    kills_hung_trials = False

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - distributed is a runtime dependency
            raise AutoMLInputError("Running trials on a Dask cluster needs the 'distributed' package",
                                   "pip install 'dask[distributed]'") from exc
        try:
            self._client = Client(address, timeout=10, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise AutoMLInputError(f"Could not reach the Dask scheduler at {address} ({type(exc).__name__})",
                                   "start the scheduler and workers, or check the address") from exc
        self._executor = self._client.get_executor(pure=False)
        self._scattered: dict[str, Any] = {}

    @property
    def n_workers(self) -> int:
        return max(1, sum(w.get("nthreads", 1) for w in self._client.scheduler_info()["workers"].values()))

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self._executor.submit(fn, *args)

    def memory_cap_problem(self, timeout: float = 60.0) -> str:
        return ""  # a cluster's workers are capped by the cluster (dask's --memory-limit), not by us

    def data_arg(self, data_path: str) -> tuple:
        """The training data as a scattered future, so workers need no shared file system."""
        if data_path not in self._scattered:
            import joblib
            self._scattered[data_path] = self._client.scatter(joblib.load(data_path), broadcast=True)
        return (self._scattered[data_path],)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)
        self._client.close()


class InlinePool:
    """Trials run in the calling process, each on a thread of its own, one after another (the search
    gives it one trial at a time). Used inside a worker that already is the unit of parallelism: a
    partition of a many-models run would gain nothing from processes of its own on a machine its
    sibling partitions already fill. As on Dask, a trial past its time limit is abandoned, not
    killed: the search moves on while its thread finishes in the background."""

    kills_hung_trials = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        future.set_running_or_notify_cancel()  # running: a time-out's cancel() then leaves it be

        def run() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 -- the search reads it from the future, as from a worker
                future.set_exception(exc)

        threading.Thread(target=run, name="automl-inline-trial", daemon=True).start()
        return future

    def memory_cap_problem(self, timeout: float = 60.0) -> str:
        return ""  # the worker this runs in has its own cap

    def data_arg(self, data_path: str) -> tuple:
        return ()

    def shutdown(self) -> None:
        pass  # a thread cannot be killed: an abandoned trial ends on its own


def make_pool(n_workers: int, dask_scheduler: str | None,
              preload: tuple[str, ...] = ()) -> LocalPool | DaskPool | InlinePool:
    """Where trials run; local workers import ``preload`` as they start (see ``_start_worker``)."""
    if INLINE_TRIALS.get():
        return InlinePool()
    return DaskPool(dask_scheduler) if dask_scheduler else LocalPool(n_workers, preload)
