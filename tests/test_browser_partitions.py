"""Many models in a real browser: oj_sales partitioned by store on the Configure page, trained, and the
per-partition results on the Results page. Screenshots go to ``test-artifacts/browser-partitions/``
(gitignored); look at them after a UI change.
"""
from __future__ import annotations

import re
import time

import pytest

from studio_fixtures import REPO, SHARED
from studio_server import choose, configure_trials, drive, forecast_task, shot
from test_browser_wizard import _wait_status, server  # noqa: F401  (fixture)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ARTIFACTS = REPO / "test-artifacts" / "browser-partitions"
DATA = SHARED / "oj_sales_train.csv"


def _shot(page, name: str) -> None:
    shot(page, ARTIFACTS, name)


def test_a_partitioned_forecast_in_the_browser(server) -> None:
    drive(server, _journey, ARTIFACTS)


def _journey(page, url: str) -> None:
    forecast_task(page, url, DATA)

    configure_trials(page, trials=3, budget=300)
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
