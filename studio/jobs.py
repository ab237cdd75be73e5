"""The job registry: one background thread per experiment, with a stop handle.

Why a registry: Streamlit reruns scripts and drops session state on reload, so a running search
cannot live in a page. The registry is process-wide (``studio.state.get_jobs`` caches one with
``st.cache_resource``); pages start and stop jobs through it and read progress from the store only.
The training thread never calls ``st.*`` -- it writes to the store, the pages poll the store.

This module does not import streamlit, so it can be used and tested without a running app.
"""
from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any


from automl_core.config import AutoMLConfig
from automl_core.errors import AutoMLInputError

log = logging.getLogger(__name__)

#: Keys the studio keeps in an experiment's stored config next to the AutoMLConfig fields.
#: They are removed again before ``AutoMLConfig.from_dict`` (see :func:`split_config`).
STUDIO_KEYS = ("target", "studio")


@dataclass(frozen=True)
class JobSpec:
    """Everything a training thread needs, all of it durable in the store (so Resume can rebuild it).

    Attributes:
        dataset_id: the training table in the store.
        target: column to predict.
        config: the validated experiment settings.
        test_dataset_id / validation_dataset_id: optional tables in the store.
        name: experiment name shown in the history.
        resumed_from: the interrupted experiment this run continues, if any.
    """

    dataset_id: str
    target: str
    config: AutoMLConfig
    test_dataset_id: str | None = None
    validation_dataset_id: str | None = None
    name: str | None = None
    resumed_from: str | None = None

    def stored_config(self) -> dict[str, Any]:
        """The config dict recorded with the experiment: engine settings plus the studio's extras."""
        return {**self.config.to_dict(), "target": self.target,
                "studio": {"test_dataset_id": self.test_dataset_id,
                           "validation_dataset_id": self.validation_dataset_id,
                           "resumed_from": self.resumed_from}}


def split_config(stored: dict[str, Any]) -> tuple[dict[str, Any], str | None, dict[str, Any]]:
    """Split a stored experiment config into (AutoMLConfig fields, target, studio extras)."""
    settings = {k: v for k, v in stored.items() if k not in STUDIO_KEYS}
    return settings, stored.get("target"), dict(stored.get("studio") or {})


def spec_from_experiment(exp: dict[str, Any], **changes: Any) -> JobSpec:
    """Rebuild the :class:`JobSpec` of a stored experiment (for Resume and Clone).

    Raises:
        AutoMLInputError: the stored config is not valid any more (e.g. an engine upgrade).
    """
    settings, target, extras = split_config(exp.get("config") or {})
    if not target:
        raise AutoMLInputError(f"Experiment {exp.get('experiment_id')} does not record its target column",
                               "start a new experiment from the wizard")
    config_changes = changes.pop("config_changes", {})
    config = AutoMLConfig.from_dict(settings).with_changes(**config_changes)
    fields = dict(dataset_id=exp["dataset_id"], target=target, config=config,
                  test_dataset_id=extras.get("test_dataset_id"),
                  validation_dataset_id=extras.get("validation_dataset_id"), name=exp.get("name"))
    fields.update(changes)
    return JobSpec(**fields)


@dataclass
class Job:
    """A running (or finished) experiment thread of this process."""

    experiment_id: str
    thread: threading.Thread
    stop_event: threading.Event = field(default_factory=threading.Event)
    error: str = ""

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()


class JobRegistry:
    """Starts experiments in background threads and stops them on request. Thread-safe."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, store: Any, spec: JobSpec, *, task: str | None = None, metric: str | None = None,
              resume_id: str | None = None) -> str:
        """Create the experiment record (status ``queued``) and start its training thread.

        The record exists before the thread runs, so the live page can show it at once.

        Args:
            store: the studio's :class:`storage.Store`.
            spec: what to train.
            task, metric: the resolved task and metric to record while the run starts (the config
                may say "auto"); the engine's final choice is written when it finishes.
            resume_id: continue this (interrupted) experiment's record instead of creating one:
                its trials are kept and the search starts from its best configurations.

        Returns:
            The experiment id.
        """
        task = task or spec.config.task
        metric = metric or spec.config.metric
        name = spec.name or f"{spec.target} ({task})"
        if resume_id is None:
            experiment_id = store.create_experiment(name, dataset_id=spec.dataset_id, task=task, metric=metric,
                                                    config=spec.stored_config())
        else:
            experiment_id = resume_id
            store.set_status(experiment_id, "queued")
        job = Job(experiment_id, threading.Thread(target=self._run, args=(store, spec, experiment_id,
                                                                          resume_id is not None),
                                                  name=f"automl-{experiment_id}", daemon=True))
        with self._lock:
            self._jobs[experiment_id] = job
        job.thread.start()
        return experiment_id

    def stop(self, experiment_id: str) -> bool:
        """Ask a running experiment to stop; finished trials are kept and the best one is refit.

        Returns:
            True if this process runs the experiment and it was signalled.
        """
        with self._lock:
            job = self._jobs.get(experiment_id)
        if job is None or not job.alive:
            return False
        job.stop_event.set()
        return True

    def is_running(self, experiment_id: str) -> bool:
        with self._lock:
            job = self._jobs.get(experiment_id)
        return job is not None and job.alive

    def stopping(self, experiment_id: str) -> bool:
        """True while a stop was requested and the thread is still finishing (refit, saving)."""
        with self._lock:
            job = self._jobs.get(experiment_id)
        return job is not None and job.alive and job.stop_event.is_set()

    def running(self) -> list[str]:
        with self._lock:
            return [k for k, j in self._jobs.items() if j.alive]

    def join(self, experiment_id: str, timeout: float | None = None) -> None:
        """Wait for a job's thread (tests and shutdown)."""
        with self._lock:
            job = self._jobs.get(experiment_id)
        if job is not None:
            job.thread.join(timeout)

    # --- the thread ----------------------------------------------------------------------------

    def _run(self, store: Any, spec: JobSpec, experiment_id: str, resume: bool = False) -> None:
        """Body of the training thread: load data, search, save test predictions. Never raises."""
        from automl_core.experiment import run_experiment

        job = self._jobs[experiment_id]
        try:
            train = store.load_dataset(spec.dataset_id)
            test = store.load_dataset(spec.test_dataset_id) if spec.test_dataset_id else None
            valid = store.load_dataset(spec.validation_dataset_id) if spec.validation_dataset_id else None
            outcome = run_experiment(store, train, spec.target, spec.config, test_data=test, validation_data=valid,
                                     dataset_id=spec.dataset_id, stop_event=job.stop_event,
                                     experiment_id=experiment_id, resume=resume)
            if outcome.error:
                job.error = outcome.error
        except AutoMLInputError as exc:  # bad input found before the search: one readable line
            job.error = str(exc)
            _fail(store, experiment_id, job.error)
        except BaseException as exc:  # noqa: BLE001 -- a thread must record, not die silently
            job.error = f"{type(exc).__name__}: {exc}"
            log.error("experiment %s crashed:\n%s", experiment_id, traceback.format_exc())
            _fail(store, experiment_id, job.error)


def _fail(store: Any, experiment_id: str, error: str) -> None:
    """Mark the experiment failed unless run_experiment already did (it re-raises after recording)."""
    try:
        exp = store.get_experiment(experiment_id)
        if exp is not None and exp["status"] in ("queued", "running"):
            store.set_status(experiment_id, "failed", error=error)
    except Exception:  # noqa: BLE001 -- the store itself may be the problem; the log has it
        log.exception("could not record failure of %s", experiment_id)
