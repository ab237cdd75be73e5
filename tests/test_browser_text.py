"""In a real browser: on the Predict page of a text model, typing one text into the ``text_input`` box shows
the class probabilities; the Results page lists the class terms and misclassified texts. The experiment is
trained with the CLI on 150 Yelp reviews (two TF-IDF + logistic regression trials). Screenshots go to
``test-artifacts/browser-text/`` (gitignored)."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Iterator

import pandas as pd
import pytest

from studio_fixtures import CHROMIUM, CHROMIUM_ARGS, REPO, SHARED, studio_server
from studio_server import choose

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ARTIFACTS = REPO / "test-artifacts" / "browser-text"


@pytest.fixture(scope="module")
def studio(tmp_path_factory) -> Iterator[tuple[str, str]]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make chromium)")
    if not (SHARED / "yelp_sentiment_train.csv").is_file():
        pytest.skip(f"shared datasets not found at {SHARED}")
    folder = tmp_path_factory.mktemp("text-studio")
    data = folder / "reviews.csv"
    pd.read_csv(SHARED / "yelp_sentiment_train.csv").head(150).to_csv(data, index=False)
    store = folder / "store" / "store.duckdb"
    out = subprocess.run([sys.executable, "-m", "automl_core", "train", str(data), "--target", "Sentiment",
                          "--allowed-models", "text_logistic", "--max-trials", "2", "--no-ensembles",
                          "--time-budget", "300", "--store", str(store), "--json"],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    experiment_id = json.loads(out.stdout.strip().splitlines()[-1])["experiment_id"]
    with studio_server(store, folder / "server.log") as url:
        yield url, experiment_id, data


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    time.sleep(1)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_typing_a_text_shows_class_probabilities(studio) -> None:
    from playwright.sync_api import sync_playwright

    url, experiment_id, _ = studio
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 2200})
        page.set_default_timeout(90_000)
        try:
            page.goto(f"{url}/predict?experiment={experiment_id}")
            box = page.locator(".st-key-text_input textarea")
            box.wait_for()
            _shot(page, "predict-empty")
            box.fill("The food was great and the staff amazing, I loved it.")
            box.press("Control+Enter")
            page.get_by_text("Predicted:", exact=False).wait_for()
            panel = page.locator(".st-key-text_predict")
            assert "Predicted: 1" in panel.inner_text()
            _shot(page, "predict-typed")
            box.fill("<b>Rude</b> staff, cold food. Would not go back.")
            box.press("Control+Enter")
            page.get_by_text("Predicted: 0", exact=False).wait_for()
            _shot(page, "predict-typed-negative")
            page.goto(f"{url}/results?experiment={experiment_id}")
            results = page.locator(".st-key-text_results")
            results.wait_for()
            results.scroll_into_view_if_needed()
            shown = results.inner_text()
            assert "push each class up and down" in shown and "Push up (15)" in shown  # tables are canvas: no text
            assert "a run started from the CLI" in shown  # the CLI keeps no copy of the training table
            _shot(page, "results-text")
        finally:
            browser.close()


def test_data_page_text_tab_and_task_rule(studio) -> None:
    from playwright.sync_api import sync_playwright

    url, _, data = studio
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 1800})
        page.set_default_timeout(90_000)
        try:
            page.goto(url)
            page.locator(".st-key-upload input[type=file]").set_input_files(str(data))
            page.get_by_text("rows ×", exact=False).wait_for(timeout=300_000)
            page.get_by_role("tab", name="Text").click()
            panel = page.locator(".st-key-text_profile")
            panel.wait_for()
            panel.get_by_text("Vocabulary").first.wait_for()
            assert "Most frequent words" in panel.inner_text()
            _shot(page, "data-text-tab")
            page.locator(".st-key-to_task button").click()
            choose(page, "target", "Sentiment")
            page.get_by_text("Read as text (1)", exact=False).wait_for()
            _shot(page, "task-text-rule")
        finally:
            browser.close()
