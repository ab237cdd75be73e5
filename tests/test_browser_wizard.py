"""End to end in a real browser: the whole wizard on bank marketing, from upload to a model that
predicts in a separate Python with ROC AUC > 0.9.

Drives Debian's chromium (``/usr/bin/chromium``) with Python Playwright, as DESIGN.md describes. The
server runs on a free port with its own store; its log is printed when the test fails. Screenshots
of each step go to ``test-artifacts/browser/`` (gitignored).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

from studio_fixtures import REPO, SHARED, studio_server
from studio_server import CHROMIUM, CHROMIUM_ARGS, drive
from studio_server import status_text as _status
from studio_server import wait_status as _wait_status

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ARTIFACTS = REPO / "test-artifacts" / "browser"
TRAIN = SHARED / "bank_marketing_train.csv"
TEST = SHARED / "bank_marketing_test.csv"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """A studio server on a free port with a private store; yields (url, log file)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make chromium)")
    if not TRAIN.is_file():
        pytest.skip(f"shared datasets not found at {SHARED}")
    folder = tmp_path_factory.mktemp("studio-server")
    log_path = folder / "server.log"
    try:
        with studio_server(folder / "store" / "store.duckdb", log_path) as url:
            yield url, log_path
    except RuntimeError as exc:  # did not start
        pytest.fail(str(exc))


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def _score_in_fresh_python(folder: Path) -> float:
    """Load model.joblib in a Python that cannot import this repository and compute ROC AUC."""
    script = textwrap.dedent(f"""
        import json, joblib, pandas as pd
        from sklearn.metrics import roc_auc_score
        model = joblib.load("model.joblib")
        df = pd.read_csv({str(TEST)!r})
        y = (df.pop("y") == "yes").astype(int)
        proba = model.predict_proba(df)[:, list(model.classes_).index("yes")]
        try:
            import automl_core
            leaked = True
        except ImportError:
            leaked = False
        print(json.dumps({{"auc": roc_auc_score(y, proba), "repo_importable": leaked}}))
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-I", "-c", script], cwd=folder, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["repo_importable"] is False, "the check must run without this repository on the path"
    return float(result["auc"])


def test_cold_deep_link_goes_through_app_navigation(server) -> None:
    """First request to a fresh server is a deep link (a reload after a restart): still the wizard."""
    from playwright.sync_api import sync_playwright

    url, _ = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{url}/results")
        page.get_by_text("Step 5 of 7").wait_for(timeout=60_000)
        links = [e.inner_text().split("\n")[-1] for e in page.query_selector_all('[data-testid="stSidebarNavLink"]')]
        browser.close()
    assert links == ["Data", "Task", "Configure", "Train", "Results", "Predict", "Experiments"]


def test_wizard_end_to_end(server, tmp_path) -> None:
    drive(server, lambda page, url: _journey(page, url, tmp_path), ARTIFACTS,
          viewport={"width": 1280, "height": 800}, downloads=True)


def _journey(page, url: str, tmp_path: Path) -> None:
    page.goto(url)
    page.locator(".st-key-upload").wait_for()
    _shot(page, "01-data-empty")

    # 1. Data: upload, see the profile
    page.locator(".st-key-upload input[type=file]").set_input_files(str(TRAIN))
    page.get_by_text("rows × 21 columns", exact=False).wait_for(timeout=120_000)
    page.get_by_text("Profile", exact=True).first.wait_for()
    time.sleep(3)  # let the profile grid draw before the screenshot
    _shot(page, "02-data-uploaded")

    # 2. Task: target y
    page.locator(".st-key-to_task button").click()
    page.locator(".st-key-target").wait_for()
    page.locator(".st-key-target").click()
    page.get_by_role("option", name="y", exact=True).click()
    page.get_by_text("Detected", exact=False).wait_for()
    _shot(page, "03-task")

    # 3. Configure: 30 s budget, start
    page.locator(".st-key-to_configure button").click()
    budget = page.locator(".st-key-time_budget input")
    budget.wait_for()
    budget.fill("30")
    budget.press("Enter")
    page.get_by_text("counts them live", exact=False).wait_for()
    _shot(page, "04-configure")
    page.locator(".st-key-start_training button").click()

    # 4. Train: live, leaderboard fills, survives a reload
    page.wait_for_url(re.compile(r"/train\?.*experiment="), timeout=60_000)  # the URL also holds the wizard's choices
    assert _wait_status(page, ("Running", "Completed"), 60) == "Running"
    _shot(page, "05-train-running")
    page.locator(".st-key-leaderboard [data-testid='stDataFrame']").wait_for(timeout=90_000)
    was_running = "Running" in _status(page)
    _shot(page, "06-train-leaderboard")
    experiment_url = page.url
    page.reload()
    assert page.url == experiment_url
    page.locator(".st-key-experiment_status").wait_for()
    page.locator(".st-key-leaderboard [data-testid='stDataFrame']").wait_for()
    after = _wait_status(page, ("Running", "Completed"), 30)
    assert not was_running or after in ("Running", "Completed")
    _shot(page, "07-train-after-reload")
    assert _wait_status(page, ("Completed", "Stopped", "Failed"), 180) == "Completed"
    page.locator(".st-key-download_model").wait_for()
    _shot(page, "08-train-completed")

    # 5. Download the model and its card; score the test file in a separate, repo-less Python
    folder = tmp_path / "downloaded"
    folder.mkdir()
    with page.expect_download() as dl:
        page.locator(".st-key-download_model button").click()
    dl.value.save_as(folder / "model.joblib")
    with page.expect_download() as dl:
        page.locator(".st-key-download_model_card button").click()
    dl.value.save_as(folder / "model.json")
    card = json.loads((folder / "model.json").read_text())
    assert card["target"] == "y" and card["task"] == "binary"
    auc = _score_in_fresh_python(folder)
    print(f"ROC AUC of the downloaded model on bank_marketing_test.csv (fresh Python): {auc:.4f}")
    assert auc > 0.9, f"ROC AUC on bank_marketing_test.csv: {auc:.4f}"

    # 6. Results and history pages render with the experiment
    page.locator(".st-key-to_results button").click()
    page.locator(".st-key-results_experiment").wait_for()
    page.get_by_text("All models", exact=False).wait_for()
    _shot(page, "09-results")
    page.mouse.wheel(0, 900)
    time.sleep(1)
    _shot(page, "10-results-compare")
    page.goto(f"{url}/experiments")
    page.get_by_text("experiment(s) in the store", exact=False).wait_for()
    _shot(page, "11-experiments")

    # 7. Predict: an odd file (unseen job, numbers as text, extra column, reversed columns) is checked,
    # then scored; the predictions download; ONNX exports with its parity shown; the code is there
    odd = tmp_path / "odd.csv"
    import pandas as pd
    frame = pd.read_csv(TEST).drop(columns="y").assign(branch_code="B-17")
    frame["job"] = frame["job"].replace({"admin.": "astronaut"})
    frame["campaign"] = frame["campaign"].astype(str).replace({"1": "one"})
    frame[frame.columns[::-1]].to_csv(odd, index=False)
    page.goto(f"{url}/predict")
    page.locator(".st-key-predict_upload input[type=file]").set_input_files(str(odd))
    page.get_by_text("Check before scoring").wait_for(timeout=120_000)
    page.locator(".st-key-download_predictions").wait_for(timeout=120_000)
    time.sleep(2)
    _shot(page, "12-predict-checked")
    page.get_by_text("Check per column").click()
    time.sleep(2)
    page.mouse.wheel(0, 700)
    time.sleep(1)
    _shot(page, "13-predict-per-column")
    with page.expect_download() as dl:
        page.locator(".st-key-download_predictions button").click()
    dl.value.save_as(tmp_path / "predictions.csv")
    scored = pd.read_csv(tmp_path / "predictions.csv")
    assert len(scored) == len(frame) and {"prediction", "proba_yes"} <= set(scored.columns)
    # Whether this run's model converts to ONNX and has generated code is the engine's answer for the
    # downloaded model; the page must give that same answer: the file when the engine makes one (and
    # the file must work), the engine's reason when it does not.
    from automl_core.export.codegen import generate
    from automl_core.errors import AutoMLInputError
    from automl_core.export.onnx import export_onnx, prepare_inputs
    from automl_core.export.predict import load_model
    model, saved = load_model(folder / "model.joblib")
    sample = pd.read_csv(TEST).drop(columns="y").head(200)
    expected_onnx = export_onnx(model, saved, sample)
    try:
        expected_code, code_refusal = generate(model, saved).train_py, ""
    except AutoMLInputError as exc:
        expected_code, code_refusal = "", str(exc)
    print(f"ONNX: {expected_onnx.ok} {expected_onnx.reason}; code: {bool(expected_code)} {code_refusal}")
    page.get_by_role("tab", name="ONNX").click()
    page.locator(".st-key-onnx_export button").click()
    if expected_onnx.ok:
        page.locator(".st-key-download_onnx").wait_for(timeout=180_000)
        with page.expect_download() as dl:
            page.locator(".st-key-download_onnx button").click()
        dl.value.save_as(tmp_path / "model.onnx")
        import numpy as np
        import onnxruntime as ort
        session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
        feeds = prepare_inputs(model, sample)
        proba = session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})[1]
        np.testing.assert_allclose(proba, model.predict_proba(sample), atol=1e-4)
    else:
        page.get_by_text("cannot be exported to ONNX").wait_for(timeout=180_000)
        assert page.locator(".st-key-download_onnx").count() == 0
    time.sleep(1)
    _shot(page, "14-predict-onnx")
    page.get_by_role("tab", name="Training code").click()
    if expected_code:
        with page.expect_download() as dl:
            page.locator(".st-key-download_train_py button").click()
        dl.value.save_as(tmp_path / "train.py")
        assert (tmp_path / "train.py").read_text() == expected_code
        page.get_by_text("View generated code").click()
        time.sleep(2)
    else:
        page.get_by_text(code_refusal.split(":")[0].split(".")[0]).first.wait_for()
        assert page.locator(".st-key-download_train_py").count() == 0
    _shot(page, "15-predict-code")
