"""The job registry: one background thread per experiment, at most a few at once, with a stop handle.

Why a registry: Streamlit reruns scripts and drops session state on reload, so a running search
cannot live in a page. The registry is process-wide (``studio.state.get_jobs`` caches one with
``st.cache_resource``); pages start and stop jobs through it and read progress from the store only.
The training thread never calls ``st.*`` -- it writes to the store, the pages poll the store.

This module does not import streamlit, so it can be used and tested without a running app.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from automl_core.config import AutoMLConfig
from automl_core.errors import AutoMLInputError

log = logging.getLogger(__name__)

#: Keys the studio keeps in an experiment's stored config next to the AutoMLConfig fields.
#: They are removed again before ``AutoMLConfig.from_dict`` (see :func:`split_config`).
STUDIO_KEYS = ("target", "studio", "head_task")  # in a stored config, not AutoMLConfig fields (head_task: images)


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

    def studio_extras(self) -> dict[str, Any]:
        """The studio's fields recorded with the experiment's config (under ``studio``)."""
        return {"test_dataset_id": self.test_dataset_id, "validation_dataset_id": self.validation_dataset_id,
                "resumed_from": self.resumed_from}


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


#: A resumed run gets at least this many seconds, however little of its budget was left.
MIN_RESUME_SECONDS = 30.0


def resume_plan(exp: dict[str, Any], trials: Any) -> tuple[dict[str, Any], str]:
    """What Resume continues an interrupted experiment with: the budget it had not used yet.

    Returns (config changes for :func:`spec_from_experiment`, the remaining budget in words).
    The time used is the search's clock at its last finished trial; a trial count continues from
    the trials already finished.
    """
    cfg = exp.get("config") or {}
    used = 0.0 if trials.empty or trials["finished_at"].isna().all() else float(trials["finished_at"].max())
    changes: dict[str, Any] = {}
    if cfg.get("time_budget"):
        changes["time_budget"] = max(MIN_RESUME_SECONDS, float(cfg["time_budget"]) - used)
    if cfg.get("max_trials"):
        changes["max_trials"] = max(1, int(cfg["max_trials"]) - int(exp.get("n_trials") or 0))
    left = f"{changes['time_budget']:.0f} s" if "time_budget" in changes else f"{changes.get('max_trials')} trials"
    return changes, left


#: How many experiments train at once; the rest wait in line. Each uses every core, so on a small
#: machine more than two only slow each other down (and the pages).
MAX_CONCURRENT_ENV = "AUTOML_MAX_CONCURRENT_EXPERIMENTS"
DEFAULT_MAX_CONCURRENT = 2


def max_concurrent_experiments() -> int:
    """``$AUTOML_MAX_CONCURRENT_EXPERIMENTS`` (a whole number >= 1), else 2."""
    text = os.environ.get(MAX_CONCURRENT_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_CONCURRENT
    if not text.isdigit() or int(text) < 1:
        raise AutoMLInputError(f"the setting {MAX_CONCURRENT_ENV}={text!r} is not a whole number >= 1",
                               f"set {MAX_CONCURRENT_ENV} to e.g. 2, or leave it unset")
    return int(text)


@dataclass
class Job:
    """An experiment of this process: waiting in line, training, or done."""

    experiment_id: str
    thread: threading.Thread
    stop_event: threading.Event = field(default_factory=threading.Event)
    error: str = ""
    started: bool = False        # the thread was started (False while it waits in line)
    cancelled: bool = False      # taken out of the line before it started

    @property
    def alive(self) -> bool:
        """Waiting in line or training."""
        return (not self.started and not self.cancelled) or self.thread.is_alive()


class JobRegistry:
    """Starts experiments in background threads, at most ``max_concurrent`` at once; the others wait
    in line (first come, first served) and start when a slot frees. Thread-safe."""

    def __init__(self, max_concurrent: int | None = None) -> None:
        self.max_concurrent = max_concurrent or max_concurrent_experiments()
        self._jobs: dict[str, Job] = {}
        self._line: list[str] = []   # experiment ids waiting, first in line first
        self._lock = threading.Lock()

    def start(self, store: Any, spec: JobSpec, *, task: str | None = None, metric: str | None = None,
              resume_id: str | None = None) -> str:
        """Create the experiment record (status ``queued``) and start its training thread, or put it
        in line when ``max_concurrent`` experiments are already training.

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
        if resume_id is None:
            from automl_core.experiment import create_record
            experiment_id = create_record(store, target=spec.target, config=spec.config, dataset_id=spec.dataset_id,
                                          name=spec.name, task=task, metric=metric, extras=spec.studio_extras())
        else:
            experiment_id = resume_id
            store.set_status(experiment_id, "queued")
        job = Job(experiment_id, threading.Thread(target=self._run, args=(store, spec, experiment_id,
                                                                          resume_id is not None),
                                                  name=f"automl-{experiment_id}", daemon=True))
        with self._lock:
            self._jobs[experiment_id] = job
            self._line.append(experiment_id)
            self._start_waiting()
        return experiment_id

    def stop(self, experiment_id: str, store: Any = None) -> bool:
        """Stop a training experiment (finished trials are kept, the best one is refit), or take a
        waiting one out of the line (then ``store`` records it as ``cancelled``).

        Returns:
            True if this process had the experiment and it was signalled or cancelled.
        """
        with self._lock:
            job = self._jobs.get(experiment_id)
            if job is None or not job.alive:
                return False
            waiting = not job.started
            if waiting:
                job.cancelled = True
                self._line.remove(experiment_id)
        if waiting:
            if store is not None:
                store.set_status(experiment_id, "cancelled", error="cancelled while waiting in line")
            return True
        job.stop_event.set()
        return True

    def queue_position(self, experiment_id: str) -> int | None:
        """1 for the next experiment to start, 2 for the one after...; None if not waiting."""
        with self._lock:
            return self._line.index(experiment_id) + 1 if experiment_id in self._line else None

    def is_running(self, experiment_id: str) -> bool:
        """Training or waiting in line in this process."""
        with self._lock:
            job = self._jobs.get(experiment_id)
        return job is not None and job.alive

    def stopping(self, experiment_id: str) -> bool:
        """True while a stop was requested and the thread is still finishing (refit, saving)."""
        with self._lock:
            job = self._jobs.get(experiment_id)
        return job is not None and job.started and job.alive and job.stop_event.is_set()

    def running(self) -> list[str]:
        """Experiments training or waiting in line."""
        with self._lock:
            return [k for k, j in self._jobs.items() if j.alive]

    def join(self, experiment_id: str, timeout: float | None = None) -> None:
        """Wait for a job's thread (tests and shutdown); one still waiting in line is waited for too."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            job = self._jobs.get(experiment_id)
        if job is None:
            return
        while not job.started and not job.cancelled:
            if deadline is not None and time.monotonic() > deadline:
                return
            time.sleep(0.1)
        if job.started:
            job.thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _start_waiting(self, finishing: threading.Thread | None = None) -> None:
        """Start jobs from the head of the line while slots are free (caller holds the lock).

        ``finishing``: a training thread that is ending (still alive while it calls this).
        """
        training = sum(1 for j in self._jobs.values()
                       if j.started and j.thread.is_alive() and j.thread is not finishing)
        while self._line and training < self.max_concurrent:
            job = self._jobs[self._line.pop(0)]
            job.started = True
            job.thread.start()
            training += 1

    # --- the thread ----------------------------------------------------------------------------

    def _run(self, store: Any, spec: JobSpec, experiment_id: str, resume: bool = False) -> None:
        """Body of the training thread; when it ends, the next experiment in line starts. Never raises."""
        try:
            self._train(store, spec, experiment_id, resume, self._jobs[experiment_id])
        finally:
            with self._lock:
                self._start_waiting(finishing=threading.current_thread())

    def _train(self, store: Any, spec: JobSpec, experiment_id: str, resume: bool, job: Job) -> None:
        """Load the data, search, save the model; failures are recorded on the experiment."""
        from automl_core.experiment import run_experiment

        try:
            if spec.config.task == "image_classification" or (  # a zip of images, kept beside the store
                    spec.config.task == "multilabel" and image_set_path(store, spec.dataset_id).is_file()):
                self._train_images(store, spec, experiment_id, job, resume)
                return
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

    @staticmethod
    def _train_images(store: Any, spec: JobSpec, experiment_id: str, job: Job, resume: bool = False) -> None:
        """The image run of automl_core (featurize, then the tables' search) on the dataset's saved zip; a resumed
        run reads the features from the cache and continues the record's trials."""
        from automl_core.images.run import fit_images
        path = image_set_path(store, spec.dataset_id)
        if not path.is_file():
            raise AutoMLInputError(f"The images of dataset {spec.dataset_id} are no longer beside the store",
                                   "upload the .zip of images again on the Data page")
        store.set_status(experiment_id, "running")
        fit_images(store, path, spec.config, name=spec.name, stop_event=job.stop_event, dataset_id=spec.dataset_id,
                   experiment_id=experiment_id, resume=resume)


def image_set_path(store: Any, dataset_id: str) -> Path:
    """Where the studio keeps an image dataset's zip: ``<store folder>/image-sets/<dataset id>.zip`` (the
    dataset's table in the store lists its images, one row each)."""
    return Path(store.root) / "image-sets" / f"{dataset_id}.zip"


def _fail(store: Any, experiment_id: str, error: str) -> None:
    """Mark the experiment failed unless run_experiment already did (it re-raises after recording)."""
    try:
        exp = store.get_experiment(experiment_id)
        if exp is not None and exp["status"] in ("queued", "running"):
            store.set_status(experiment_id, "failed", error=error)
    except Exception:  # noqa: BLE001 -- the store itself may be the problem; the log has it
        log.exception("could not record failure of %s", experiment_id)
