"""Real server, real browser: a server SIGKILLed mid-run comes back with the experiment Interrupted and
every finished trial intact, and Resume runs it to the remaining budget; two sessions training with
one slot (one trains, one waits in line) while a third browsing results stays responsive; hostile
names render as text.

Screenshots go to ``test-artifacts/robust/`` (gitignored).
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from studio_server import (CHROMIUM, REPO, StudioServer, configure_sample_run, launch, press_start, serving,
                           choose, _configure,
                           start_sample_run, status_text, trials_done, wait_status)

pytestmark = [pytest.mark.slow, pytest.mark.browser]
ARTIFACTS = REPO / "test-artifacts" / "robust"


@pytest.fixture(autouse=True)
def _chromium():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make chromium)")


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def _trials(store_path: Path, experiment_id: str):
    from storage import Store

    with Store(store_path) as store:
        return store.get_experiment(experiment_id), store.trials(experiment_id)


def test_sigkill_mid_run_then_interrupted_and_resume(tmp_path) -> None:
    from playwright.sync_api import sync_playwright

    server = StudioServer(tmp_path)
    with serving(server) as url, sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(60_000)
        experiment_id = start_sample_run(page, url, budget=60)
        assert wait_status(page, ("Running",), 60) == "Running"
        deadline = time.monotonic() + 90
        while trials_done(page) < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
        _shot(page, "01-running-before-kill")
        server.kill()  # mid-run, like a crash or the OOM killer
        before_exp, before = _trials(server.store, experiment_id)
        assert before_exp["status"] == "running" and len(before) >= 3
        url = server.start()
        page.goto(f"{url}/train?experiment={experiment_id}")
        assert wait_status(page, ("Interrupted",), 60) == "Interrupted"
        resume = page.locator(".st-key-resume_training button")
        resume.wait_for()
        _shot(page, "02-interrupted-after-restart")
        left = float(resume.inner_text().split("(")[1].split(" s")[0])  # "Resume with the remaining budget (38 s)"
        assert 30 <= left < 60, resume.inner_text()  # what was left of 60 s (at least 30 s to be useful)
        resume.click()
        assert wait_status(page, ("Running", "Completed"), 60) in ("Running", "Completed")
        assert wait_status(page, ("Completed", "Stopped", "Failed"), 180) == "Completed", status_text(page)
        _shot(page, "03-resumed-completed")
        browser.close()
    exp, after = _trials(server.store, experiment_id)
    assert exp["status"] == "completed"
    kept = after.set_index("trial_id").loc[before["trial_id"]]
    assert kept["score"].tolist() == before["score"].tolist()  # every finished trial intact
    assert kept["family"].tolist() == before["family"].tolist()
    assert len(after) > len(before) and after["trial_id"].max() > before["trial_id"].max()
    assert after["trial_id"].is_unique


def test_two_sessions_train_one_in_line_while_a_third_browses(tmp_path) -> None:
    """One slot for experiments: the second Start waits in line and starts by itself when the first ends;
    a third person browsing meanwhile stays responsive. (Three sessions on two slots proved the same in
    twice the time.)"""
    from playwright.sync_api import sync_playwright

    server = StudioServer(tmp_path, env={"AUTOML_MAX_CONCURRENT_EXPERIMENTS": "1"})
    with serving(server) as url, sync_playwright() as pw:
        browser = launch(pw)
        pages = []
        for _ in range(3):
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.set_default_timeout(90_000)
            pages.append(page)
        for page in pages[:2]:  # two sessions ready on Configure, then Start in quick succession
            configure_sample_run(page, url, budget=30)
        browse = pages[2]  # a third person already has the studio open (its scripts loaded)
        browse.goto(f"{url}/experiments")
        browse.get_by_text("Step ", exact=False).first.wait_for()
        ids = [press_start(page) for page in pages[:2]]
        words = [wait_status(page, ("Running", "Queued"), 60) for page in pages[:2]]
        assert sorted(words) == ["Queued", "Running"], words
        waiting = pages[words.index("Queued")]
        assert "Queued — 1st in line" in status_text(waiting)
        _shot(waiting, "10-queued-1st-in-line")
        # the third session browses while one experiment runs and one waits
        loads = []
        for path in ("experiments", "results", "train", ""):  # "" is the Data page
            start = time.monotonic()
            browse.goto(f"{url}/{path}")
            browse.get_by_text("Step ", exact=False).first.wait_for()
            loads.append(time.monotonic() - start)
            assert "Page not found" not in browse.content()
        _shot(browse, "11-third-session-browsing")
        print(f"page loads while training: {[round(s, 2) for s in loads]} s")
        assert max(loads) < 30, loads  # generous: the machine is shared; bench measures properly
        # the waiting one starts by itself when the slot frees, and both complete
        assert wait_status(waiting, ("Running", "Completed"), 180) in ("Running", "Completed")
        for page in pages[:2]:
            word = wait_status(page, ("Completed", "Stopped", "Failed"), 300)
            assert word == "Completed", page.locator('[data-testid="stAlertContentError"]').all_inner_texts()
        _shot(waiting, "12-queued-one-completed")
        browser.close()
    from storage import Store
    with Store(server.store) as store:
        status = store.list_experiments().set_index("experiment_id")["status"]
    assert all(status[i] == "completed" for i in ids)


def test_hostile_names_render_as_text_in_the_browser(tmp_path) -> None:
    """A column called <img onerror=...> and a file named like a script: no dialog, the text is shown."""
    from playwright.sync_api import sync_playwright

    csv_path = tmp_path / "<img src=x onerror=alert(1)>.csv"
    header = "<script>alert('col')</script>,![x](http://127.0.0.1:9/x.png),**bold**,y"
    csv_path.write_text(header + "\n" + "".join(f"{i},{i % 3},{i % 5},{'yes' if i % 2 else 'no'}\n" for i in range(40)))
    server = StudioServer(tmp_path)
    dialogs: list[str] = []
    requests: list[str] = []
    with serving(server) as url, sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(60_000)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url)
        page.locator(".st-key-upload input[type=file]").set_input_files(str(csv_path))
        page.get_by_text("<img src=x onerror=alert(1)>.csv", exact=True).wait_for()
        time.sleep(2)
        _shot(page, "20-hostile-names-data")
        page.locator(".st-key-to_task button").click()
        page.locator(".st-key-target").click()
        page.get_by_role("option", name="<script>alert('col')</script>", exact=True).wait_for()
        _shot(page, "21-hostile-names-target-options")
        page.keyboard.press("Escape")
        # a bad upload: one readable line, no traceback
        bad = tmp_path / "deep.json"
        bad.write_bytes(b"[" * 100_000 + b"]" * 100_000)
        page.goto(url)
        page.locator(".st-key-upload input[type=file]").set_input_files(str(bad))
        alert = page.locator('[data-testid="stAlertContentError"]')
        alert.wait_for()
        assert "nested too deeply" in alert.inner_text() and "Fix:" in alert.inner_text()
        assert "Traceback" not in page.content()
        _shot(page, "22-bad-upload-message")
        browser.close()
    assert dialogs == []
    assert not any("127.0.0.1:9" in r for r in requests)  # the Markdown image was never fetched


def test_a_shared_studio_shows_nothing_before_login(tmp_path) -> None:
    """AUTOML_STUDIO_PASSWORD set: a deep link and the home page show only the sign-in form (no step,
    table, sidebar page or download); the wrong password is refused; the right one opens the studio,
    for this session only."""
    from playwright.sync_api import sync_playwright

    password = "correct horse battery staple"
    server = StudioServer(tmp_path, env={"AUTOML_STUDIO_PASSWORD": password})
    with serving(server) as url, sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(60_000)
        for path in ("/experiments", "/results", "/predict", ""):  # a deep link first, on a fresh server
            page.goto(f"{url}{path}")
            page.get_by_label("Password", exact=True).wait_for()
            time.sleep(1.5)  # anything a page would render comes with the same script run
            body = page.locator("body").inner_text()
            assert "Step " not in body and "experiment(s) in the store" not in body, body
            assert page.locator('[data-testid="stDownloadButton"], [data-testid="stFileUploader"], '
                                '[data-testid="stSidebarNav"], [data-testid="stDataFrame"]').count() == 0
        _shot(page, "30-login")
        page.get_by_label("Password", exact=True).fill("wrong")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Wrong password").wait_for()
        assert "Step " not in page.locator("body").inner_text()
        page.get_by_label("Password", exact=True).fill(password)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Step 1 of 7", exact=False).wait_for()
        page.locator(".st-key-upload").wait_for()
        _shot(page, "31-after-login")
        page.goto(f"{url}/experiments")  # a new page load is a new session: signed out again
        page.get_by_label("Password", exact=True).wait_for()
        other = browser.new_page()
        other.goto(url)
        other.get_by_label("Password", exact=True).wait_for()
        assert "Step " not in other.locator("body").inner_text()


# Column names and class labels that are Markdown or HTML: on every page they must read as typed.
LEAK = "![leak](http://127.0.0.1:9/leak.png)"
HOSTILE_COLUMNS = {"island": "**island**", "bill_length_mm": "[bill](javascript:alert(1))",
                   "bill_depth_mm": "<img src=x onerror=alert(1)>", "flipper_length_mm": ":red[flipper]",
                   "body_mass_g": "$mass$", "sex": "# sex"}
HOSTILE_LABELS = {"Adelie": "**Adelie**", "Gentoo": "<b>Gentoo</b>", "Chinstrap": "[Chin](javascript:alert(2))"}


def _no_markup_from_names(page, where: str) -> None:
    """Nothing a name could have turned into: no link to javascript:, no image or bold made from a name."""
    assert page.locator("a[href^='javascript'], a[href*='127.0.0.1:9']").count() == 0, where
    assert page.locator("img[src*='127.0.0.1:9'], img[src='x']").count() == 0, where
    bolds = [t.strip() for t in page.locator("strong, b").all_inner_texts()]
    assert not {"island", "Adelie", "Gentoo"} & set(bolds), (where, bolds)
    assert page.locator("h1:has-text('sex'), h2:has-text('sex'), h3:has-text('sex')").count() == 0, where


def test_hostile_names_read_as_text_on_every_page(tmp_path, shared) -> None:
    """Penguins with Markdown/HTML column names, class labels and a leaking column (so a guardrail quotes
    it): Data, Task, Configure, Train, Results (guardrails, explanations, threshold), Predict, Experiments."""
    import pandas as pd
    from playwright.sync_api import sync_playwright

    frame = pd.read_csv(shared / "penguins.csv").dropna()
    frame["species"] = frame["species"].map(HOSTILE_LABELS)
    frame[LEAK] = frame["species"].map({v: f"k{i}" for i, v in enumerate(HOSTILE_LABELS.values())})
    frame = frame.rename(columns=HOSTILE_COLUMNS)
    data = tmp_path / "penguins-hostile.csv"
    frame.to_csv(data, index=False)
    server = StudioServer(tmp_path)
    dialogs, requests = [], []
    with serving(server) as url, sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(90_000)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(url)
        page.locator(".st-key-upload input[type=file]").set_input_files(str(data))
        page.get_by_text("rows ×", exact=False).wait_for(timeout=300_000)
        _no_markup_from_names(page, "data")
        page.locator(".st-key-to_task button").click()
        choose(page, "target", "species")
        for label in HOSTILE_LABELS.values():  # the Task page lists the classes as typed
            page.get_by_text(label, exact=False).first.wait_for()
        _no_markup_from_names(page, "task")
        _shot(page, "39-hostile-task")
        _configure(page, 25)
        _no_markup_from_names(page, "configure")
        experiment_id = press_start(page)
        _no_markup_from_names(page, "train")
        assert wait_status(page, ("Completed", "Stopped", "Failed"), 240) == "Completed"
        _shot(page, "40-hostile-train")
        page.goto(f"{url}/results?experiment={experiment_id}")
        page.get_by_text("Guardrails:", exact=False).first.wait_for()
        _shot(page, "41-hostile-results")
        page.get_by_text(LEAK, exact=False).first.wait_for()  # the leakage guardrail quotes the column as typed
        time.sleep(2)
        _no_markup_from_names(page, "results")
        _shot(page, "41-hostile-results")
        page.mouse.wheel(0, 1500)
        time.sleep(2)
        _no_markup_from_names(page, "results, lower")
        _shot(page, "42-hostile-results-lower")
        page.goto(f"{url}/predict?experiment={experiment_id}")
        page.locator(".st-key-predict_upload input[type=file]").set_input_files(str(data))
        page.locator(".st-key-download_predictions").wait_for(timeout=120_000)
        time.sleep(2)
        _no_markup_from_names(page, "predict")
        _shot(page, "43-hostile-predict")
        for path in ("/experiments", "/configure", "/task", ""):
            page.goto(f"{url}{path}")
            page.get_by_text("Step ", exact=False).first.wait_for()
            time.sleep(2)
            _no_markup_from_names(page, path or "data")
        _shot(page, "44-hostile-data")
        browser.close()
    assert dialogs == []
    assert not any("127.0.0.1:9" in r for r in requests)
