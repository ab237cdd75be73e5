"""The whole wizard on text in a real browser (issue 22): 600 real rotten_tomatoes reviews uploaded, the
target chosen, a 60 s run to Completed, the model downloaded, the Results page's charts and text section,
one sentence typed on Predict (class probabilities at once) and a CSV of texts scored and downloaded.
Screenshots go to ``test-artifacts/browser-text-wizard/`` (gitignored)."""
from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest

from studio_fixtures import CHROMIUM, CHROMIUM_ARGS, REPO, SHARED, studio_server
from studio_server import choose
from studio_server import wait_status as _wait_status

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ARTIFACTS = REPO / "test-artifacts" / "browser-text-wizard"
SOURCE = SHARED / "rotten_tomatoes.csv"


@pytest.fixture(scope="module")
def studio(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make chromium)")
    if not SOURCE.is_file():
        pytest.skip(f"shared datasets not found at {SHARED}")
    folder = tmp_path_factory.mktemp("text-wizard")
    df = pd.read_csv(SOURCE).dropna(subset=["text"]).sample(600, random_state=0)
    df.to_csv(folder / "reviews.csv", index=False)
    df.drop(columns="category").head(20).to_csv(folder / "new_reviews.csv", index=False)
    with studio_server(folder / "store" / "store.duckdb", folder / "server.log") as url:
        yield url, folder


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    time.sleep(1)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_text_wizard_from_upload_to_a_typed_prediction(studio) -> None:
    from playwright.sync_api import sync_playwright

    url, folder = studio
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(120_000)
        try:
            page.goto(url)
            page.locator(".st-key-upload input[type=file]").set_input_files(str(folder / "reviews.csv"))
            page.get_by_text("rows ×", exact=False).wait_for(timeout=300_000)
            _shot(page, "01-data")
            page.locator(".st-key-to_task button").click()
            choose(page, "target", "category")
            page.get_by_text("Read as text (1)", exact=False).wait_for()
            _shot(page, "02-task")
            page.locator(".st-key-to_configure button").click()
            budget = page.locator(".st-key-time_budget input")
            budget.wait_for()
            budget.fill("60")
            budget.press("Enter")
            page.get_by_text("counts them live", exact=False).wait_for()
            page.locator(".st-key-start_training button").click()
            page.wait_for_url(re.compile(r"/train\?.*experiment="), timeout=60_000)
            status = _wait_status(page, ("Completed", "Stopped", "Failed"), 400)
            _shot(page, "03-train-ended")
            assert status == "Completed", page.locator(".st-key-experiment_status").inner_text()
            page.locator(".st-key-download_model").wait_for()
            with page.expect_download() as dl:
                page.locator(".st-key-download_model button").click()
            dl.value.save_as(folder / "model.joblib")
            assert (folder / "model.joblib").stat().st_size > 1000

            page.locator(".st-key-to_results button").click()
            page.locator(".st-key-results_experiment").wait_for()
            page.get_by_text("All models", exact=False).wait_for()
            _shot(page, "04-results")
            results = page.locator(".st-key-text_results")
            results.wait_for()
            results.scroll_into_view_if_needed()
            assert "push each class up and down" in results.inner_text() or "misclassified" in results.inner_text()
            _shot(page, "05-results-text")

            page.goto(f"{url}/predict")
            box = page.locator(".st-key-text_input textarea")
            box.wait_for()
            box.fill("A moving, funny and beautifully acted film; I loved every minute.")
            box.press("Control+Enter")
            page.get_by_text("Predicted:", exact=False).wait_for()
            shown = page.locator(".st-key-text_predict").inner_text()
            assert any(f"Predicted: {c}" in shown for c in ("fresh", "rotten", "plot"))
            _shot(page, "06-predict-typed")
            page.locator(".st-key-predict_upload input[type=file]").set_input_files(str(folder / "new_reviews.csv"))
            page.locator(".st-key-download_predictions").wait_for(timeout=180_000)
            with page.expect_download() as dl:
                page.locator(".st-key-download_predictions button").click()
            dl.value.save_as(folder / "predictions.csv")
            scored = pd.read_csv(folder / "predictions.csv")
            assert len(scored) == 20 and set(scored["prediction"]) <= {"fresh", "rotten", "plot"}
            _shot(page, "07-predict-scored")
        finally:
            context.close()
            browser.close()
