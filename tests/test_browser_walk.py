"""In a real browser: what the walk of issue 21 found on a phone and on reload.

A 390 px wide phone showed the step bar as seven stacked rows with "1. Data" under the top bar; a
reload on Task lost the chosen dataset. Screenshots go to ``test-artifacts/browser/``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from studio_fixtures import REPO, studio_server
from studio_server import CHROMIUM, CHROMIUM_ARGS, IRIS, choose

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ARTIFACTS = REPO / "test-artifacts" / "browser"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[str]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make chromium)")
    folder = tmp_path_factory.mktemp("studio-walk")
    try:
        with studio_server(folder / "store" / "store.duckdb", folder / "server.log") as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc))


def test_phone_step_bar_and_reload_on_task(server: str) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(server)
        page.locator(".st-key-sample_dataset").wait_for(timeout=60_000)
        bar = page.locator(".st-key-step_bar")
        bar.wait_for()
        links = bar.locator("a")
        links.nth(6).wait_for()
        assert links.count() == 7
        header = page.locator("[data-testid='stHeader']").bounding_box()
        first = links.first.bounding_box()
        assert first["y"] >= header["y"] + header["height"] - 1, (first, header)  # not under the top bar
        rows = {round(links.nth(i).bounding_box()["y"]) for i in range(7)}
        assert len(rows) <= 3, rows  # a compact grid, not seven stacked rows
        page.screenshot(path=str(ARTIFACTS / "walk-phone-data.png"))

        # choose a sample and the target, then reload on Task: both are still chosen
        page.set_viewport_size({"width": 1280, "height": 800})
        choose(page, "sample_dataset", IRIS)
        page.get_by_text("150 rows", exact=False).wait_for(timeout=60_000)
        bar.locator("a", has_text="Task").click()
        page.locator(".st-key-target").wait_for(timeout=60_000)
        page.wait_for_function("() => new URL(location.href).searchParams.get('target') === 'target'", timeout=30_000)
        page.reload()
        # the target is restored: its analysis shows (without one the page asks to pick a column)
        page.get_by_text("Detected multiclass", exact=False).wait_for(timeout=60_000)
        assert page.get_by_text("Pick the column you want to predict").count() == 0
        assert page.get_by_text("Choose a dataset first").count() == 0
        page.screenshot(path=str(ARTIFACTS / "walk-task-after-reload.png"))
        browser.close()
