"""In a real browser: the Predict page of a model trained on several 0/1 columns (issue 25). It shows, and
downloads, the same prediction columns in the same order and with the same values as ``python -m automl_core
predict``: ``prediction`` (the label list, DESIGN.md's contract for every prediction file), one 0/1
``prediction_<column>`` per target column, the probabilities; the page puts them before the uploaded columns
(``studio.scoring.predictions_first``), the CLI after them. Screenshots go to ``test-artifacts/browser-multilabel/``."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest

from studio_fixtures import CHROMIUM, CHROMIUM_ARGS, REPO, studio_server
from test_multilabel_indicators import LABELS, spread

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ARTIFACTS = REPO / "test-artifacts" / "browser-multilabel"


@pytest.fixture(scope="module")
def studio(tmp_path_factory) -> Iterator[tuple[str, Path, Path]]:
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make chromium)")
    folder = tmp_path_factory.mktemp("multilabel-studio")
    store = folder / "store" / "store.duckdb"
    spread("train", 300).to_csv(folder / "train.csv", index=False)
    spread("test", 20).drop(columns=LABELS).to_csv(folder / "new.csv", index=False)
    out = subprocess.run([sys.executable, "-m", "automl_core", "train", str(folder / "train.csv"), "--target",
                          ",".join(LABELS), "--max-trials", "1", "--allowed-models", "linear", "--seed", "0",
                          "--store", str(store), "--json", "--quiet"], cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    model = Path(json.loads(out.stdout.strip().splitlines()[-1])["model_path"])
    cli = subprocess.run([sys.executable, "-m", "automl_core", "predict", "--model", str(model), str(folder / "new.csv"),
                          "--out", str(folder / "cli.csv")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0, cli.stderr[-2000:]
    with studio_server(store, folder / "server.log") as url:
        yield url, folder / "new.csv", folder / "cli.csv"


def test_predict_page_matches_the_cli_for_0_1_columns(studio) -> None:
    from playwright.sync_api import sync_playwright

    url, new, cli = studio
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        page = browser.new_context(viewport={"width": 1280, "height": 1400}, accept_downloads=True).new_page()
        page.set_default_timeout(90_000)
        try:
            page.goto(url.rstrip("/") + "/predict")
            page.locator("input[type=file]").first.set_input_files(str(new))
            page.get_by_text("Predictions —", exact=False).wait_for()
            page.wait_for_timeout(1500)  # the grid draws after the heading
            page.screenshot(path=str(ARTIFACTS / "predict-0-1-columns.png"), full_page=True)
            with page.expect_download() as download:
                page.get_by_text("Download predictions (CSV)").click()
            got = pd.read_csv(download.value.path())
        finally:
            browser.close()
    expected = pd.read_csv(cli)
    wanted = ["prediction", *[f"prediction_{c}" for c in LABELS], *[f"proba_{c}" for c in LABELS]]
    inputs = list(pd.read_csv(new, nrows=0).columns)
    assert list(got.columns) == wanted + inputs
    assert [c for c in expected.columns if c not in inputs] == wanted
    assert len(got) == 20 and got[wanted[:1 + len(LABELS)]].equals(expected[wanted[:1 + len(LABELS)]])
    for label in LABELS:
        assert set(got[f"prediction_{label}"]) <= {0, 1}
