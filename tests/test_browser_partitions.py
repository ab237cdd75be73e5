"""Many models in a real browser: oj_sales partitioned by store on the Configure page, trained, and the
per-partition results on the Results page. Screenshots go to ``test-artifacts/browser-partitions/``
(gitignored); look at them after a UI change.
"""
from __future__ import annotations

import re
import time

import pytest

from studio_fixtures import REPO, SHARED
from studio_server import choose
from test_browser_wizard import CHROMIUM, CHROMIUM_ARGS, _wait_status, server  # noqa: F401  (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ARTIFACTS = REPO / "test-artifacts" / "browser-partitions"
DATA = SHARED / "oj_sales_train.csv"


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_a_partitioned_forecast_in_the_browser(server) -> None:
    from playwright.sync_api import sync_playwright

    url, log_path = server
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            try:
                _journey(page, url)
            except BaseException:
                _shot(page, "99-failure")
                raise
            finally:
                browser.close()
    except BaseException:
        print(f"--- studio server log ({log_path}) ---\n{log_path.read_text()}")
        raise


def _journey(page, url: str) -> None:
    page.goto(url)
    page.locator(".st-key-upload input[type=file]").set_input_files(str(DATA))
    page.get_by_text("rows × 17 columns", exact=False).wait_for(timeout=120_000)
    page.locator(".st-key-to_task button").click()
    choose(page, "target", "Quantity")
    page.get_by_text("Detected", exact=False).wait_for()
    choose(page, "task", "Forecasting (future values of a series)")
    choose(page, "time_column", "WeekStarting")
    horizon = page.locator(".st-key-horizon input")
    horizon.fill("8")
    horizon.press("Enter")
    page.locator(".st-key-series_id").click()
    page.get_by_role("option", name="Store", exact=True).click()
    page.get_by_role("option", name="Brand", exact=True).click()
    page.keyboard.press("Escape")
    page.get_by_text("9 series · frequency W-THU", exact=False).wait_for(timeout=60_000)

    page.locator(".st-key-to_configure button").click()
    trials = page.locator(".st-key-max_trials input")
    trials.wait_for()
    trials.fill("3")
    trials.press("Enter")
    budget = page.locator(".st-key-time_budget input")
    budget.fill("300")
    budget.press("Enter")
    page.get_by_text("Rolling-origin windows", exact=False).wait_for()
    time.sleep(1)
    _shot(page, "00-configure")
    choose(page, "partition_by", "Store")  # reopens the list if a rerun closed it
    page.keyboard.press("Escape")
    page.locator(".st-key-partition_by").get_by_text("Store", exact=True).wait_for()
    time.sleep(2)  # the summary table (a canvas) redraws
    _shot(page, "01-configure-partition-by")
    page.locator(".st-key-start_training button").click()

    page.wait_for_url(re.compile(r"/train\?.*experiment="), timeout=60_000)
    assert _wait_status(page, ("Completed", "Stopped", "Failed"), 480) == "Completed"
    _shot(page, "02-train-completed")

    page.locator(".st-key-to_results button").click()
    table = page.locator(".st-key-partition_results [data-testid='stDataFrame']")
    table.wait_for(timeout=60_000)
    page.get_by_text("Partitions (3)", exact=False).wait_for()
    time.sleep(2)
    table.scroll_into_view_if_needed()
    _shot(page, "03-results-partitions")
    choose(page, "forecast_series", "5 / minute.maid")
    page.locator(".st-key-forecast_chart .js-plotly-plot").wait_for(timeout=60_000)
    time.sleep(2)
    chart = page.locator(".st-key-forecast_chart:not([data-stale='true'])")
    chart.scroll_into_view_if_needed()
    _shot(page, "04-results-forecast")
    assert "forecast" in chart.inner_text()
