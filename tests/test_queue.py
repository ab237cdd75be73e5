"""The job registry's line: at most N experiments train at once, the rest wait their turn, start by
themselves when a slot frees, and can be cancelled while waiting; the Train page says where they are."""
from __future__ import annotations

import threading
import time

import pytest

from automl_core.config import AutoMLConfig
from automl_core.errors import AutoMLInputError
from studio import live
from studio.jobs import JobRegistry, JobSpec, max_concurrent_experiments
from studio_fixtures import app, status_word, stop_all_jobs, texts, wait_for  # noqa: F401  (fixture)


class GatedRegistry(JobRegistry):
    """The real registry whose training is a wait on a gate, so the line can be watched step by step."""

    def __init__(self, max_concurrent: int) -> None:
        super().__init__(max_concurrent)
        self.gates: dict[str, threading.Event] = {}
        self.order: list[str] = []

    def _train(self, store, spec, experiment_id, resume, job) -> None:
        self.order.append(experiment_id)
        self.gates.setdefault(experiment_id, threading.Event()).wait(60)


def _spec() -> JobSpec:
    return JobSpec(dataset_id="ds-x", target="y", config=AutoMLConfig(time_budget=10))


def _until(condition, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.02)


def test_line_order_slots_and_cancel(tmp_path) -> None:
    from storage import Store

    store = Store(tmp_path / "s.duckdb")
    jobs = GatedRegistry(max_concurrent=2)
    ids = [jobs.start(store, _spec()) for _ in range(4)]
    _until(lambda: len(jobs.order) == 2)
    assert jobs.order == ids[:2]
    assert [jobs.queue_position(i) for i in ids] == [None, None, 1, 2]
    assert all(jobs.is_running(i) for i in ids) and sorted(jobs.running()) == sorted(ids)
    # the 4th is cancelled while waiting: recorded, out of the line, never started
    assert jobs.stop(ids[3], store=store)
    assert jobs.queue_position(ids[3]) is None and not jobs.is_running(ids[3])
    exp = store.get_experiment(ids[3])
    assert exp["status"] == "cancelled" and "waiting in line" in exp["error"]
    assert not jobs.stop(ids[3], store=store)  # nothing left to cancel
    # a slot frees: the next in line starts by itself
    jobs.gates.setdefault(ids[0], threading.Event()).set()
    _until(lambda: len(jobs.order) == 3)
    assert jobs.order[2] == ids[2] and jobs.queue_position(ids[2]) is None
    for i in ids[1:3]:
        jobs.gates.setdefault(i, threading.Event()).set()
    for i in ids:
        jobs.join(i, 10)
    assert jobs.running() == [] and ids[3] not in jobs.order
    store.close()


def test_max_concurrent_setting(monkeypatch) -> None:
    monkeypatch.delenv("AUTOML_MAX_CONCURRENT_EXPERIMENTS", raising=False)
    assert max_concurrent_experiments() == 2
    monkeypatch.setenv("AUTOML_MAX_CONCURRENT_EXPERIMENTS", "3")
    assert max_concurrent_experiments() == 3 and JobRegistry().max_concurrent == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("AUTOML_MAX_CONCURRENT_EXPERIMENTS", bad)
        with pytest.raises(AutoMLInputError, match="AUTOML_MAX_CONCURRENT_EXPERIMENTS"):
            max_concurrent_experiments()


def test_queue_words() -> None:
    assert [live.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]
    assert live.queued_text(2) == "Queued — 2nd in line"
    assert live.status_word("cancelled") == "Cancelled"


@pytest.mark.slow
def test_train_page_shows_the_line_and_cancels(app) -> None:
    """Real training on the studio's registry with one slot: the second run waits, is shown as queued,
    and is cancelled from its page; the first completes."""
    from studio.state import get_jobs, get_store
    from test_studio_pages import start_iris

    jobs = get_jobs()
    saved, jobs.max_concurrent = jobs.max_concurrent, 1
    try:
        first = start_iris(app, budget=60)
        second = start_iris(app, budget=30)
        assert jobs.queue_position(second) == 1
        app.query_params["experiment"] = second
        app.run()
        assert "Queued — 1st in line" in texts(app)
        cancel = app.button(key="stop_training")
        assert cancel.label == "Cancel"
        cancel.click().run()
        wait_for(app, lambda a: status_word(a) == "Cancelled", timeout=30)
        assert get_store().get_experiment(second)["status"] == "cancelled"
        assert get_store().get_experiment(first)["status"] in ("queued", "running")
    finally:
        stop_all_jobs()
        jobs.max_concurrent = saved
