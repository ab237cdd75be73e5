"""A real studio server process and a headless Chromium to drive it (browser tests and benches).

The server runs ``python -m streamlit run app.py`` on a free port with its own store, in its own
process group so that :meth:`StudioServer.kill` can SIGKILL it together with its trial workers, as a
crash or the OOM killer would. Chromium is Debian's (``/usr/bin/chromium``), launched by Playwright
with the flags DESIGN.md lists.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
IRIS = "Iris flowers (multiclass classification)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StudioServer:
    """Start, SIGKILL and restart a studio on one store folder; ``url`` is set while it runs."""

    def __init__(self, folder: Path, env: dict[str, str] | None = None) -> None:
        self.folder = Path(folder)
        self.store = self.folder / "store" / "store.duckdb"
        self.log = self.folder / "server.log"
        self.env = {**os.environ, "AUTOML_STORE": str(self.store), "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
                    **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 120) -> str:
        port = free_port()
        with open(self.log, "a") as log:
            log.write(f"\n--- start on port {port} ---\n")
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                 "--server.port", str(port), "--server.fileWatcherType", "none"],
                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return self.url
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"studio did not start:\n{self.log.read_text()}")
            time.sleep(0.5)

    def kill(self) -> None:
        """SIGKILL the server and everything it started (trial workers), then wait for it."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)
        self.proc = None
        _wait_for_group_gone()

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), SIGKILL if it does not end in 20 s."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            pass
        self.kill()


@contextmanager
def serving(server: StudioServer) -> Iterator[str]:
    """Run ``server`` for a test: yields its url, prints its log if the test fails, always stops it."""
    url = server.start()
    try:
        yield url
    except BaseException:
        print(f"--- studio server log ({server.log}) ---\n{server.log.read_text()}")
        raise
    finally:
        server.stop()


def _wait_for_group_gone() -> None:
    time.sleep(1.0)  # orphaned workers see their parent gone and exit; DuckDB's lock goes with the server


def launch(playwright):
    """Headless Debian Chromium."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


def start_sample_run(page, url: str, *, budget: int, sample: str = IRIS) -> str:
    """Drive the wizard: a sample dataset, its default target, ``budget`` seconds, Start; returns the id."""
    configure_sample_run(page, url, budget=budget, sample=sample)
    return press_start(page)


def configure_sample_run(page, url: str, *, budget: int, sample: str = IRIS) -> None:
    """The wizard up to the Configure step, ready to Start (several sessions can then start at once)."""
    page.goto(url)
    choose(page, "sample_dataset", sample)
    page.locator(".st-key-to_task button").click()
    page.locator(".st-key-target").wait_for()
    _configure(page, budget)


def start_upload_run(page, url: str, *, path: Path, target: str, budget: int) -> str:
    """Drive the wizard: upload ``path``, predict ``target``, ``budget`` seconds, Start; returns the id."""
    page.goto(url)
    page.locator(".st-key-upload input[type=file]").set_input_files(str(path))
    page.get_by_text("rows ×", exact=False).wait_for(timeout=300_000)
    page.locator(".st-key-to_task button").click()
    choose(page, "target", target)
    _configure(page, budget)
    return press_start(page)


def choose(page, key: str, option: str, attempts: int = 6) -> None:
    """Pick ``option`` in the selectbox ``key``. A rerun landing while the list is open closes it (on
    a busy machine they land late), so open it again until the option can be clicked."""
    box = page.locator(f".st-key-{key}")
    box.wait_for()
    for attempt in range(attempts):
        box.click()
        item = page.get_by_role("option", name=option, exact=True)
        try:
            item.wait_for(timeout=15_000)
            item.click(timeout=15_000)
            return
        except Exception:  # noqa: BLE001 -- closed by a rerun: try again
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")


def _configure(page, budget: int) -> None:
    page.get_by_text("Detected", exact=False).wait_for()
    page.locator(".st-key-to_configure button").click()
    budget_input = page.locator(".st-key-time_budget input")
    budget_input.wait_for()
    budget_input.fill(str(budget))
    budget_input.press("Enter")
    page.get_by_text(re.compile(rf"fits? in {budget:,} s")).wait_for()  # "1 trial fits in", "≈ 9 trials fit in"


def press_start(page) -> str:
    """Press Start on the Configure step; returns the new experiment's id once the Train page shows."""
    page.locator(".st-key-start_training button").click()
    # the URL also carries the wizard's choices: the experiment parameter may sit anywhere in it
    page.wait_for_url(lambda url: "/train?" in url and "experiment=" in url, timeout=60_000)
    return page.url.split("experiment=")[1].split("&")[0]


def status_text(page) -> str:
    """The live page's status line (Running, Queued — 1st in line, Completed, ...)."""
    return page.locator(".st-key-experiment_status").inner_text(timeout=30_000).strip()


def wait_status(page, words: tuple[str, ...], timeout: float) -> str:
    """Poll the status line until it shows one of ``words``; returns the word."""
    deadline, text = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        try:
            text = status_text(page)
        except Exception:  # noqa: BLE001 -- the fragment may be redrawing
            text = ""
        for word in words:
            if word in text:
                return word
        time.sleep(0.5)
    raise AssertionError(f"status never became one of {words}; last: {text!r}")


def trials_done(page) -> int:
    """The 'Trials done' card of the live page (0 when it is not drawn yet)."""
    try:
        return int(page.locator('[data-testid="stMetricValue"]').first.inner_text(timeout=5_000).strip())
    except Exception:  # noqa: BLE001
        return 0


def drive(server: tuple[str, Path], journey, artifacts: Path, *, viewport: dict | None = None,
          downloads: bool = False) -> None:
    """Run ``journey(page, url)`` in a fresh headless Chromium on ``server`` (url, log path); on failure
    a screenshot ``99-failure.png`` goes to ``artifacts`` and the server's log is printed."""
    from playwright.sync_api import sync_playwright

    url, log_path = server
    try:
        with sync_playwright() as pw:
            browser = launch(pw)
            context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900},
                                          accept_downloads=downloads)
            page = context.new_page()
            page.set_default_timeout(60_000)
            try:
                journey(page, url)
            except BaseException:
                shot(page, artifacts, "99-failure")
                raise
            finally:
                browser.close()
    except BaseException:
        print(f"--- studio server log ({log_path}) ---\n{log_path.read_text()}")
        raise


def shot(page, artifacts: Path, name: str, full_page: bool = True) -> None:
    artifacts.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=full_page)


def forecast_task(page, url: str, data: Path) -> None:
    """Upload oj_sales and set it up as forecasting Quantity by WeekStarting, 8 weeks, 9 series (Store x Brand)."""
    page.goto(url)
    page.locator(".st-key-upload input[type=file]").set_input_files(str(data))
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


def configure_trials(page, trials: int, budget: int) -> None:
    """On Configure: a trial count and a time budget, then wait for the validation summary."""
    page.locator(".st-key-to_configure button").click()
    box = page.locator(".st-key-max_trials input")
    box.wait_for()
    box.fill(str(trials))
    box.press("Enter")
    seconds = page.locator(".st-key-time_budget input")
    seconds.fill(str(budget))
    seconds.press("Enter")
    page.get_by_text("Rolling-origin windows", exact=False).wait_for()
    time.sleep(1)
