"""How trial workers start (issue #25): forked from a server that imported their libraries once, never
re-running the caller's script, with the caller's current environment; and a run imports no heavy
library its settings do not use."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from automl_core.search import fork_server
from automl_core.search.executors import LocalPool
from automl_core.search.fork_server import start_fork_server

REPO = Path(__file__).resolve().parents[1]
# Libraries only some runs need: deep learning, other boosting families, exports, explanations, forecasting,
# date encoding. A table run with linear models alone has no use for any of them.
HEAVY = ("torch", "catboost", "xgboost", "lightgbm", "onnx", "onnxruntime", "skl2onnx", "shap",
         "statsforecast", "mlforecast", "sentence_transformers", "transformers", "skrub", "streamlit")


def _run_script(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    """A script without a ``__main__`` guard (as a person writes one), run in a fresh interpreter."""
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(body))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)


def test_a_linear_run_on_a_real_table_imports_no_heavy_library_and_runs_the_script_once(shared, tmp_path):
    out = _run_script(tmp_path, f"""
        import sys
        import pandas as pd
        from automl_core import AutoML
        print("SCRIPT RAN", flush=True)
        df = pd.read_csv({str(shared / "penguins.csv")!r})
        AutoML(max_trials=2, seed=0, allowed_models=["linear"], final_model="refit").fit(df, target="species")
        print("HEAVY", sorted(m for m in {HEAVY!r} if m in sys.modules))
    """)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "HEAVY []" in out.stdout, out.stdout
    # spawn / forkserver would import the script again in every worker (a second run); ours never does
    assert out.stdout.count("SCRIPT RAN") == 1, out.stdout


def _server_env(monkeypatch) -> dict[str, str]:
    """The import-time variables this test process's fork server started with (an earlier test, e.g. the
    fault families', may have started it), with the environment set to match them."""
    start_fork_server()
    server = dict(fork_server._server_env)
    for name in fork_server._import_env():
        if name not in server:
            monkeypatch.delenv(name)
    for name, value in server.items():
        monkeypatch.setenv(name, value)
    return server


def test_workers_come_from_the_fork_server_and_see_the_callers_current_environment(monkeypatch):
    _server_env(monkeypatch)
    assert start_fork_server()
    monkeypatch.setenv("AUTOML_TEST_MARK", "after the server started")
    pool = LocalPool(2)
    try:
        assert pool.submit(os.getenv, "AUTOML_TEST_MARK").result(timeout=120) == "after the server started"
        assert pool.submit(os.getppid).result(timeout=60) != os.getpid()  # forked by the server, not by us
        assert pool.memory_cap_problem() == ""
    finally:
        pool.shutdown()


def test_a_changed_import_time_environment_starts_workers_the_old_way(monkeypatch):
    changed = _server_env(monkeypatch).get("AUTOML_EXTRA_FAMILIES", "") + ",fault_families"
    monkeypatch.setenv("AUTOML_EXTRA_FAMILIES", changed)  # read as the family registry imports
    assert not start_fork_server()
    pool = LocalPool(1)
    try:
        assert pool.submit(os.getppid).result(timeout=120) == os.getpid()  # loky starts it from here
        assert pool.submit(os.getenv, "AUTOML_EXTRA_FAMILIES").result(timeout=60) == changed
    finally:
        pool.shutdown()


def test_the_entry_points_import_no_heavy_library() -> None:
    """``import automl_core``, the CLI and the train path's modules (experiment, storage) load none of the heavy
    libraries nor plotly: each arrives when a run's table or settings need it (bench/bench_imports.py times them)."""
    code = ("import sys, automl_core, automl_core.cli, automl_core.experiment, storage\n"
            f"print(sorted(m for m in {HEAVY + ('plotly',)!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "[]", out.stdout
