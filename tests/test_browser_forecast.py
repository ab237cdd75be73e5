"""A forecasting run in a real browser: upload oj_sales (9 weekly series), set the forecasting fields,
train, and see the forecast chart of a chosen series on the Results page. Screenshots of each step
go to ``test-artifacts/browser-forecast/`` (gitignored); look at them after a UI change.
"""
from __future__ import annotations

import re
import time

import pytest

from studio_fixtures import REPO, SHARED
from studio_server import choose, configure_trials, drive, forecast_task, shot
from test_browser_wizard import _wait_status, server  # noqa: F401  (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ARTIFACTS = REPO / "test-artifacts" / "browser-forecast"
DATA = SHARED / "oj_sales_train.csv"


def _shot(page, name: str) -> None:
    shot(page, ARTIFACTS, name)


def test_forecasting_run_in_the_browser(server) -> None:
    drive(server, _journey, ARTIFACTS)


def _journey(page, url: str) -> None:
    forecast_task(page, url, DATA)
    _shot(page, "01-task-forecasting")

    configure_trials(page, trials=4, budget=300)
    _shot(page, "02-configure")
    page.locator(".st-key-start_training button").click()

    page.wait_for_url(re.compile(r"/train\?.*experiment="), timeout=60_000)  # the URL also holds the wizard's choices
    page.locator(".st-key-leaderboard [data-testid='stDataFrame']").wait_for(timeout=240_000)
    _shot(page, "03-train-live")
    assert _wait_status(page, ("Completed", "Stopped", "Failed"), 400) == "Completed"
    _shot(page, "04-train-completed")

    page.locator(".st-key-to_results button").click()
    page.get_by_text("Frequency W-THU · horizon 8 · 9 series", exact=False).wait_for(timeout=60_000)
    choose(page, "forecast_series", "8 / tropicana")
    page.locator(".st-key-forecast_chart .js-plotly-plot").wait_for(timeout=60_000)
    time.sleep(2)  # let plotly draw before the screenshot
    # a rerun keeps the previous chart, marked stale, until the new one is drawn
    chart = page.locator(".st-key-forecast_chart:not([data-stale='true'])")
    chart.scroll_into_view_if_needed()
    _shot(page, "05-results-forecast")
    legend = chart.inner_text()
    assert "forecast" in legend and "history" in legend and "80 % interval" in legend
