"""Fixtures and helpers shared by the studio's AppTest and browser tests.

Import the fixtures you use into the test module (``from tests.studio_fixtures import app``) or
list them with ``pytest_plugins``; conftest.py already gives every test a private store
(``AUTOML_STORE`` under tmp_path), which these rely on.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import pytest
from shared_data import DATASETS
from streamlit.testing.v1 import AppTest
from studio_server import CHROMIUM, CHROMIUM_ARGS, StudioServer, free_port  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SHARED = DATASETS  # one place decides where the shared datasets are ($SHARED_DATASETS or ../shared)
APP = str(REPO / "app.py")


def stop_all_jobs(timeout: float = 120) -> None:
    """Stop and wait for every training thread of this process.

    A daemon thread still writing to DuckDB when the interpreter exits aborts the process, and a
    job left running would leak into the next test.
    """
    from studio.state import get_jobs

    jobs = get_jobs()
    for experiment_id in jobs.running():
        jobs.stop(experiment_id)
    for experiment_id in jobs.running():
        jobs.join(experiment_id, timeout)


@pytest.fixture
def app(private_store) -> Iterator[AppTest]:
    """A fresh AppTest of the whole studio on a private store; stops leftover jobs afterwards."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    yield at
    stop_all_jobs()


def open_experiment(store_path: Path, page: str, experiment_id: str, monkeypatch) -> AppTest:
    """The studio on ``store_path`` (``AUTOML_STORE``), at ``pages/<page>.py`` for ``experiment_id``."""
    monkeypatch.setenv("AUTOML_STORE", str(store_path))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    at.query_params["experiment"] = experiment_id
    at.run()
    return at


def texts(at: AppTest) -> str:
    """Every message shown on the page (errors, warnings, infos, markdown, captions), joined."""
    parts: list[str] = []
    for kind in ("error", "warning", "info", "success", "markdown", "caption", "subheader"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def no_crash(at: AppTest) -> str:
    """Assert that no exception escaped and the friendly fallback did not fire; returns the page's messages."""
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Something went wrong" not in shown, shown
    return shown


def upload_table(at: AppTest, name: str, table: "pd.DataFrame") -> str:
    """Upload ``table`` as the CSV file ``name`` on the Data page (where the studio opens); returns its messages."""
    at.file_uploader(key="upload").set_value((name, table.to_csv(index=False).encode(), "text/csv")).run()
    return no_crash(at)


def choose_target(at: AppTest, target: str) -> str:
    """Open the Task page and pick ``target``; returns the page's messages."""
    at.switch_page("pages/task.py").run()
    at.selectbox(key="target").select(target).run()
    return no_crash(at)


def wait_for(at: AppTest, done: Callable[[AppTest], bool], timeout: float = 120, every: float = 1.0) -> None:
    """Re-run the page (timed fragments need another run in AppTest) until ``done`` or time out."""
    end = time.monotonic() + timeout
    while True:
        at.run()
        if done(at):
            return
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s; page shows:\n{texts(at)}\n{_job_stacks()}")
        time.sleep(every)


def _job_stacks() -> str:
    """Where the training threads are, for a test that timed out waiting for them."""
    import sys
    import threading
    import traceback

    names = {t.ident: t.name for t in threading.enumerate()}
    parts = [f"--- thread {names.get(ident)} ---\n" + "".join(traceback.format_stack(frame))
             for ident, frame in sys._current_frames().items() if str(names.get(ident, "")).startswith("automl-")]
    return "\n".join(parts) or "(no training thread alive)"


def status_word(at: AppTest) -> str:
    """The live page's status word (Running/Completed/Stopped/Failed/Interrupted), or ''."""
    for md in at.markdown:
        if str(md.value).startswith("### "):
            return str(md.value).split()[-1]
    return ""


@contextmanager
def studio_server(store_path: Path, log_path: Path, timeout: float = 90) -> Iterator[str]:
    """A studio server on a free port using the store at ``store_path``; yields its URL.

    The caller's process must not hold the store (DuckDB lets one process open it)."""
    server = StudioServer(Path(log_path).parent, env={"AUTOML_STORE": str(store_path)})
    server.log = Path(log_path)
    url = server.start(timeout)
    try:
        yield url
    finally:
        server.stop()
