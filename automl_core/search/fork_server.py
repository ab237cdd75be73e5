"""Trial workers forked from one server process that has imported their libraries once.

Each fresh loky worker imports scikit-learn, SciPy and pandas itself: 1.5-2 s of CPU per worker, paid
again whenever a timed-out trial forces a new pool, and on a busy 2-core machine the largest part of the
wait for a run's first trial (issue #25). The server (multiprocessing's forkserver, started in the
background when a run begins) pays it once per process, while the caller prepares the data; a worker
forked from it is ready in milliseconds. A server process, not ``fork`` of the caller, keeps the caller's
threads and open files (the studio's store) out of the workers.
"""
from __future__ import annotations

import io
import multiprocessing
import os
import re
import threading
from multiprocessing import forkserver, popen_forkserver, reduction, spawn, util
from multiprocessing.context import ForkServerContext, ForkServerProcess, set_spawning_popen
from typing import Any

from joblib.externals.loky.backend.context import get_context

#: What the fork server (see :func:`worker_context`) imports once: every table trial's modules
#: (scikit-learn, SciPy, pandas, the family registry), 1.5-2 s of CPU a worker no longer pays.
FORK_SERVER_PRELOAD = ("automl_core.search.trial",)
#: Environment variables the preloaded modules read as they import (the family plug-ins, thread counts):
#: a worker forked from a server started under other values would not match a freshly started one.
_IMPORT_ENV = re.compile(r"AUTOML_EXTRA_FAMILIES|(OMP|MKL|OPENBLAS|KMP|SKLEARN|NUMEXPR)_.*|.*_NUM_THREADS")
_server_env: dict[str, str] | None = None  # those variables when this process started its fork server
_server_lock = threading.Lock()


def _import_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if _IMPORT_ENV.fullmatch(k)}


def start_fork_server() -> bool:
    """Start (once per process, in the background) the server that forks trial workers, having
    imported :data:`FORK_SERVER_PRELOAD`.

    Returns:
        False when workers must start the old way (a fresh interpreter each): no fork server on this
        platform, or the import-time environment (:data:`_IMPORT_ENV`) changed since the server started.
    """
    global _server_env
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    with _server_lock:
        if _server_env is None:
            multiprocessing.set_forkserver_preload(list(FORK_SERVER_PRELOAD))
            forkserver.ensure_running()  # returns at once; the server imports before it forks
            _server_env = _import_env()
        return _server_env == _import_env()


class _Popen(popen_forkserver.Popen):
    """The fork server's start without re-running the caller's ``__main__`` in the worker.

    multiprocessing's spawn and forkserver run the main script again in every child (as ``__mp_main__``):
    a script without a ``__main__`` guard would start a second run there, and the studio's would import
    Streamlit. loky's own start never does; nor does this one (the rest is ``popen_forkserver.Popen``'s)."""

    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_path", None)
        prep_data.pop("init_main_from_name", None)
        buf = io.BytesIO()
        set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            set_spawning_popen(None)
        self.sentinel, w = forkserver.connect_to_new_process(self._fds)
        _parent_w = os.dup(w)  # the child reads its parent's end of life from this duplicate
        self.finalizer = util.Finalize(self, util.close_fds, (_parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class _Process(ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> _Popen:
        return _Popen(process_obj)


class _Context(ForkServerContext):
    Process = _Process


def worker_context() -> Any:
    """The process start method of trial workers: the fork server when usable, else loky's own."""
    return _Context() if start_fork_server() else get_context("loky")


