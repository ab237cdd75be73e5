"""In a real browser: the Results page of finished experiments draws the evaluation charts, the
threshold explorer follows its slider, explanations are drawn and the guardrails are listed.

Experiments are trained with the CLI (a separate process, so the studio server can open the store
afterwards). Screenshots go to ``test-artifacts/browser-results/`` (gitignored).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from studio_fixtures import CHROMIUM, CHROMIUM_ARGS, REPO, SHARED, studio_server

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ARTIFACTS = REPO / "test-artifacts" / "browser-results"


def _train(store: Path, data: str, target: str) -> str:
    out = subprocess.run([sys.executable, "-m", "automl_core", "train", str(SHARED / data), "--target", target,
                          "--test-size", "0.25", "--max-trials", "4", "--time-budget", "180", "--store", str(store), "--json"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])["experiment_id"]


@pytest.fixture(scope="module")
def studio(tmp_path_factory) -> Iterator[tuple[str, dict[str, str]]]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make chromium)")
    if not (SHARED / "islp_default.csv").is_file():
        pytest.skip(f"shared datasets not found at {SHARED}")
    folder = tmp_path_factory.mktemp("results-studio")
    store = folder / "store" / "store.duckdb"
    ids = {"binary": _train(store, "islp_default.csv", "default"),
           "regression": _train(store, "hardware_performance_machine.csv", "ERP")}
    with studio_server(store, folder / "server.log") as url:
        yield url, ids


def _open(pw, url: str):
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
    page = browser.new_page(viewport={"width": 1280, "height": 7000})  # tall: Streamlit scrolls inside the app
    page.set_default_timeout(90_000)
    return browser, page


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    time.sleep(2)  # let plotly finish drawing
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _charts(page, container: str) -> int:
    return page.locator(f".st-key-{container} .js-plotly-plot").count()


def _guardrails_text(page) -> str:
    """The guardrails list, opened: it starts collapsed, with only each alert's finding above it."""
    guard = page.locator(".st-key-guardrails")
    guard.wait_for()
    guard.get_by_text("Guardrails:", exact=False).click()
    guard.locator("[data-testid='stExpanderDetails']").wait_for()
    return guard.inner_text()


def test_binary_results_charts_threshold_explanations_guardrails(studio) -> None:
    from playwright.sync_api import sync_playwright

    url, ids = studio
    with sync_playwright() as pw:
        browser, page = _open(pw, url)
        try:
            page.goto(f"{url}/results?experiment={ids['binary']}")
            text = _guardrails_text(page)
            assert "Class imbalance — Alerted" in text and "'Yes'" in text
            assert "Validation strategy — Done" in text and "Overfitting" in text
            page.locator(".st-key-evaluation .js-plotly-plot").first.wait_for()
            assert _charts(page, "evaluation") >= 2  # threshold explorer: confusion matrix + sweep
            page.get_by_text("At 0.50:", exact=False).wait_for()
            assert "95 % interval" in page.locator(".st-key-evaluation").inner_text()
            slider = page.locator(".st-key-eval_threshold input[type='range']")
            slider.focus()
            for _ in range(10):
                slider.press("ArrowLeft")
            page.get_by_text("At 0.40:", exact=False).wait_for()
            page.locator(".st-key-explanations .js-plotly-plot").nth(3).wait_for()  # importance, beeswarm, dependence, waterfall
            _shot(page, "01-binary-results")
            page.get_by_role("tab", name="ROC").click()
            page.get_by_text("AUC 0.9", exact=False).first.wait_for()
            page.get_by_role("tab", name="Gains & lift").click()
            page.locator(".st-key-evaluation").get_by_text("lift (times better than random)").wait_for()
            _shot(page, "02-binary-gains")
            page.goto(f"{url}/train?experiment={ids['binary']}")  # the live page lists them too
            assert "Class imbalance — Alerted" in _guardrails_text(page)
            page.locator(".st-key-leaderboard [data-testid='stDataFrame']").wait_for()
            _shot(page, "04-train-guardrails")
        finally:
            browser.close()


def test_regression_results_show_residual_charts_and_the_leak(studio) -> None:
    from playwright.sync_api import sync_playwright

    url, ids = studio
    with sync_playwright() as pw:
        browser, page = _open(pw, url)
        try:
            page.goto(f"{url}/results?experiment={ids['regression']}")
            text = _guardrails_text(page)
            assert "Target leakage — Alerted" in text and "'PRP'" in text
            page.locator(".st-key-evaluation .js-plotly-plot").first.wait_for()
            assert page.locator(".st-key-evaluation").get_by_text("predicted value").count() >= 1
            page.get_by_role("tab", name="Error by decile").click()
            page.locator(".st-key-evaluation").get_by_text("tenth of the true target (range)").wait_for()
            page.locator(".st-key-explanations .js-plotly-plot").first.wait_for()
            _shot(page, "03-regression-results")
        finally:
            browser.close()
