"""The studio's image wizard below the browser (issue #23): an uploaded zip becomes an image dataset (or a clear
message), its summary and thumbnails, and the job runner trains it through ``fit_images``. Real handwritten
digits (scikit-learn's bundled 8 x 8 ones: quick)."""
from __future__ import annotations

import io
import zipfile

import pytest

from studio_fixtures import app  # noqa: F401  (fixture)
from test_images_studio import _digits


def _zip(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def _digit_zip(per_class: int) -> bytes:
    return _zip([(f"digits/{label}/{name}", data) for label, name, data in _digits(per_class)])


def test_summary_sample_and_thumbnails_of_a_read_set(tmp_path) -> None:
    from PIL import Image

    from automl_core.images.gallery import THUMB_SIDE, class_summary, sample_per_class, thumbnail
    from automl_core.images.reader import read_images
    (tmp_path / "d.zip").write_bytes(_digit_zip(10))
    images = read_images(tmp_path / "d.zip")
    summary = class_summary(images)
    assert list(summary["class"]) == ["3", "7"] and list(summary["images"]) == [10, 10]
    assert set(summary["median size"]) == {"8 x 8"} and set(summary["grayscale"]) == {"100%"}
    picked = sample_per_class(images, 4)
    assert [len(v) for v in picked.values()] == [4, 4]
    assert all(images.labels[i] == label for label, rows in picked.items() for i in rows)
    assert len(set(picked["3"])) == 4  # spread over the class, not one image four times
    thumb = Image.open(io.BytesIO(thumbnail(images.contents[0])))
    assert thumb.size == (THUMB_SIDE, THUMB_SIDE) and thumb.mode == "L"
    assert len(set(thumb.getdata())) <= 17  # enlarged with hard edges: no blur invents new grey levels


def test_an_uploaded_zip_becomes_an_image_dataset_and_bad_zips_say_why(private_store) -> None:
    from automl_core.errors import AutoMLInputError
    from storage import Store
    from studio.image_data import add_image_set, is_image_dataset
    from studio.jobs import image_set_path
    store = Store(private_store)
    try:
        upload = _digit_zip(6)
        dataset_id = add_image_set(store, "digits.zip", upload)
        meta = store.get_dataset(dataset_id)
        assert is_image_dataset(meta) and meta["n_rows"] == 12
        assert list(store.load_dataset(dataset_id).columns) == ["image_path", "label", "width", "height"]
        assert image_set_path(store, dataset_id).read_bytes() == upload
        assert add_image_set(store, "digits.zip", upload) == dataset_id  # the same upload again: one dataset
        one_class = _zip([(f"3/{name}", data) for label, name, data in _digits(4) if label == "3"])
        with pytest.raises(AutoMLInputError, match="'threes.zip' has only one class") as err:
            add_image_set(store, "threes.zip", one_class)
        assert "/tmp" not in str(err.value) and "its own sub-folder" in str(err.value)
        with pytest.raises(AutoMLInputError, match=r"No readable image in 'notes.zip' .*not image"):
            add_image_set(store, "notes.zip", _zip([("a/readme.txt", b"hello"), ("b/x.csv", b"1,2\n")]))
        assert len(store.list_datasets()) == 1
    finally:
        store.close()


def _run_image_job(store, tmp_path, monkeypatch, file: str, data: bytes, task: str, metric: str, name: str):
    """Add an image zip to the store and train it through the studio's job runner (one linear trial, raw pixels);
    returns (the runner, the dataset id, the experiment id) once the job has ended."""
    import functools

    from automl_core.config import AutoMLConfig
    from automl_core.images import run
    from studio.image_data import add_image_set
    from studio.jobs import JobRegistry, JobSpec
    monkeypatch.setenv("AUTOML_IMAGE_CACHE", str(tmp_path / "cache"))
    # raw pixels only: loading the CNN would double the time (the browser test runs the CNN through the runner)
    monkeypatch.setattr(run, "fit_images", functools.partial(run.fit_images, cnn=False))
    dataset_id = add_image_set(store, file, data)
    config = AutoMLConfig(task=task, metric=metric, time_budget=600, max_trials=1, ensembles=False,
                          allowed_models=("linear",), seed=0)
    jobs = JobRegistry(max_concurrent=1)
    experiment_id = jobs.start(store, JobSpec(dataset_id, "label", config, name=name),
                               task="image_classification", metric=metric)
    jobs.join(experiment_id, timeout=300)
    return jobs, dataset_id, experiment_id


@pytest.mark.slow  # ~25 s on a busy 2-core machine: the search's worker start and refit, even for one trial
def test_the_job_runner_trains_and_resumes_an_image_dataset(private_store, tmp_path, monkeypatch) -> None:
    from storage import Store
    from studio.jobs import resume_plan, spec_from_experiment
    store = Store(private_store)
    try:
        jobs, dataset_id, experiment_id = _run_image_job(store, tmp_path, monkeypatch, "digits.zip", _digit_zip(8),
                                                         "image_classification", "accuracy", "digits (images)")
        exp = store.get_experiment(experiment_id)
        assert exp["status"] == "completed", exp.get("error")
        assert exp["task"] == "image_classification" and exp["dataset_id"] == dataset_id
        assert exp["name"] == "digits (images)" and exp["config"]["target"] == "label"
        assert exp["best_score"] is not None and len(store.trials(experiment_id)) == 1
        assert {"model", "model_card"} <= set(store.artifacts(experiment_id)["kind"])
        events = store.events(experiment_id, limit=1000)
        assert list(events["kind"].iloc[-2:]) == ["featurizing_started"] * 2  # the first things the live page says
        assert events["payload"].iloc[-2]["images"] == 16 and events["payload"].iloc[-2]["doing"] == "raw pixels"
        # Resume, as the Train page offers it after a server restart: the same record goes on (it used to start
        # the image run over at trial 1, beside the trial already kept)
        store.set_status(experiment_id, "interrupted")
        changes, _ = resume_plan(store.get_experiment(experiment_id), store.trials(experiment_id))
        spec = spec_from_experiment(store.get_experiment(experiment_id), config_changes=changes)
        assert jobs.start(store, spec, resume_id=experiment_id) == experiment_id
        jobs.join(experiment_id, timeout=300)
        exp = store.get_experiment(experiment_id)
        assert exp["status"] == "completed" and exp["task"] == "image_classification", exp.get("error")
        trials = store.trials(experiment_id).sort_values("trial_id")
        assert list(trials["trial_id"]) == [1, 2] and list(trials["family"]) == ["linear", "linear"]
        assert trials["params"].iloc[1] == trials["params"].iloc[0]  # it starts from the best settings so far
    finally:
        store.close()
    _results_look_inside(private_store, experiment_id, monkeypatch)


def _results_look_inside(store_path, experiment_id: str, monkeypatch) -> None:
    """Results of a studio image run: for a class, its surest right and wrong images; for a validation image (the
    misclassified first), its nearest training images, with their classes, from the real digits' features."""
    import numpy as np

    from automl_core.images.gallery import nearest, surest
    from automl_core.understand.predictions import load_predictions
    from storage import Store
    from studio_fixtures import open_experiment, texts
    at = open_experiment(store_path, "results", experiment_id, monkeypatch)
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Examples per class" in shown and "Nearest training images" in shown, shown
    assert at.selectbox(key="image_examples_class").options == ["3", "7"]
    s = Store(store_path)
    try:
        folder, best = s.artifact_dir(experiment_id), s.get_experiment(experiment_id)["best_trial_id"]
    finally:
        s.close()
    p = load_predictions(folder, "validation")
    trial = best if best in p.models else max(p.models)
    truth = np.asarray([str(c) for c in p.classes], dtype=object)[p.y_true]  # codes -> the classes
    right, wrong = surest(p.models[trial], truth, p.rows, p.classes, "3")
    assert all(p.models[trial][list(p.rows).index(i)].argmax() == 0 for i, _ in right)
    assert [prob for _, prob in right] == sorted((prob for _, prob in right), reverse=True)
    assert all(t == "7" for _, _, t in wrong)  # called 3 but a 7
    query = at.selectbox(key="image_nearest_image").value
    wrong_rows = {i for i, _, _ in surest(p.models[trial], truth, p.rows, p.classes, "3")[1]} | {
        i for i, _, _ in surest(p.models[trial], truth, p.rows, p.classes, "7")[1]}
    assert query in wrong_rows or not wrong_rows  # the misclassified are offered first


def test_a_missing_zip_fails_the_run_with_a_fix(private_store) -> None:
    from automl_core.config import AutoMLConfig
    from storage import Store
    from studio.image_data import add_image_set
    from studio.jobs import JobRegistry, JobSpec, image_set_path
    store = Store(private_store)
    try:
        dataset_id = add_image_set(store, "digits.zip", _digit_zip(3))
        image_set_path(store, dataset_id).unlink()
        jobs = JobRegistry(max_concurrent=1)
        experiment_id = jobs.start(store, JobSpec(dataset_id, "label", AutoMLConfig(task="image_classification")),
                                   task="image_classification")
        jobs.join(experiment_id, timeout=60)
        exp = store.get_experiment(experiment_id)
        assert exp["status"] == "failed" and "upload the .zip of images again" in exp["error"]
    finally:
        store.close()


def test_the_wizard_pages_take_an_image_zip_up_to_start(app) -> None:
    """AppTest: the Data page reads the zip (summary, a thumbnail per image shown), the Task page says image
    classification, Configure shows the metric and exit criteria but no table settings, and Start is there."""
    from studio_fixtures import texts
    app.file_uploader(key="upload").set_value([("digits.zip", _digit_zip(8), "application/zip")]).run()
    assert not app.exception, app.exception
    shown = texts(app)
    assert "16 images in 2 classes" in shown and "A few images of each class" in shown, shown
    assert sum(str(c.value).endswith(".png") for c in app.caption) == 12  # a thumbnail's name under each, 6 per class
    app.button(key="to_task").click().run()
    assert "Image classification" in texts(app) and "2 classes: 3, 7" in texts(app), texts(app)
    app.button(key="to_configure").click().run()
    assert not app.exception, app.exception
    keys = {w.key for w in app.selectbox} | {w.key for w in app.number_input} | {w.key for w in app.radio}
    assert {"metric", "time_budget", "max_trials"} <= keys
    assert not keys & {"validation_mode", "test_mode", "featurization_mode", "target"}
    assert app.selectbox(key="metric").value == "accuracy"
    assert "start_training" in {b.key for b in app.button}


def test_the_live_page_names_the_featurizing_stage() -> None:
    import pandas as pd

    from studio import live
    now = pd.Timestamp.now(tz="UTC")
    events = pd.DataFrame({"kind": ["featurizing_started"], "created_at": [now - pd.Timedelta(seconds=12)],
                           "payload": [{"images": 120, "doing": "raw pixels and EfficientNet-Lite0"}]})
    stage = live.stage(events, now.to_pydatetime())
    assert stage is not None and stage.name == "featurizing" and 11 <= stage.seconds <= 13
    fraction, text = live.stage_progress(stage)
    assert text == "Computing the image features: 120 images, raw pixels and EfficientNet-Lite0" and fraction == 0.0
    later = pd.concat([pd.DataFrame({"kind": ["trial_started"], "created_at": [now], "payload": [{}]}), events])
    assert live.stage(later, now.to_pydatetime()) is None  # the search has begun
    assert "120 images" in live.describe_event("featurizing_started", events["payload"][0], None)


def test_clone_values_restart_the_wizard_on_the_same_images() -> None:
    from studio.image_data import clone_values
    exp = {"name": "digits.zip (images)", "config": {"metric": "balanced_accuracy", "time_budget": 300.0,
                                                     "max_trials": 4, "ensembles": False, "target": "label"}}
    meta = {"dataset_id": "ds-1", "name": "digits.zip", "source": "images:digits.zip"}
    values = clone_values(exp, meta)
    assert values == {"dataset_id": "ds-1", "metric": "balanced_accuracy", "time_budget": 300, "max_trials": 4,
                      "early_stop_trials": 0, "ensembles": False, "experiment_name": "digits.zip (images) (copy)"}
    assert clone_values(exp, None) is None  # a run from the command line: no images in the store
    assert clone_values(exp, {**meta, "source": "upload:digits.csv"}) is None


def _pairs_zip(tmp_path, n: int) -> bytes:
    from test_images_multilabel import _pairs
    folder = _pairs(tmp_path / "pairs", n)
    return _zip([(str(p.relative_to(folder)), p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()])


def test_a_multilabel_zip_goes_through_the_wizard_pages_to_start(app, tmp_path) -> None:
    """A labels.csv of lists is read as multi-label in the studio too: per-label counts (an image counts once for
    each of its labels), a thumbnail row per label, the Task page says multi-label, Configure offers the multi-label
    metrics with micro-F1 first and the summary names the task."""
    from automl_core.images.reader import read_images
    from studio_fixtures import texts
    upload = _pairs_zip(tmp_path, 24)
    (tmp_path / "pairs.zip").write_bytes(upload)
    labels = sum(map(len, read_images(tmp_path / "pairs.zip").label_sets))  # a pair of two 3s is labelled 3 once
    app.file_uploader(key="upload").set_value([("pairs.zip", upload, "application/zip")]).run()
    assert not app.exception, app.exception
    shown = texts(app)
    assert f"Multi-label image set · 24 images, 4 labels, {labels / 24:.2f} per image" in shown, shown
    counts = next(d.value for d in app.dataframe if "class" in d.value.columns)
    assert list(counts["class"]) == ["0", "1", "2", "3"] and counts["images"].sum() == labels > 24
    app.button(key="to_task").click().run()
    assert "Multi-label image classification" in texts(app) and "4 labels: 0, 1, 2, 3" in texts(app), texts(app)
    app.button(key="to_configure").click().run()
    assert not app.exception, app.exception
    assert app.selectbox(key="metric").value == "f1_micro"
    assert "accuracy" not in app.selectbox(key="metric").options
    summary = dict(next(d.value for d in app.dataframe if "Setting" in d.value.columns).to_numpy().tolist())
    assert summary["Task"] == "multi-label image classification (4 labels)", summary
    assert app.button(key="start_training")


@pytest.mark.slow  # ~25 s on a busy 2-core machine, like the single-label runner test
def test_the_job_runner_trains_a_multilabel_image_dataset(private_store, tmp_path, monkeypatch) -> None:
    import joblib

    from storage import Store
    store = Store(private_store)
    try:
        _, _, experiment_id = _run_image_job(store, tmp_path, monkeypatch, "pairs.zip", _pairs_zip(tmp_path, 60),
                                             "multilabel", "f1_micro", "pairs (images)")
        exp = store.get_experiment(experiment_id)
        assert exp["status"] == "completed", exp.get("error")
        bundle = joblib.load(exp["model_path"])
        assert list(bundle["labels"]) == ["0", "1", "2", "3"] and len(bundle["thresholds"]) == 4
        assert exp["config"]["task"] == "multilabel"  # what a Resume or a Clone will read the labels.csv as
    finally:
        store.close()


def test_nearest_images_of_real_digits_are_mostly_the_same_digit_and_surest_orders_by_confidence() -> None:
    import numpy as np
    from sklearn.datasets import load_digits

    from automl_core.images.gallery import nearest, surest
    digits = load_digits()
    X, y = digits.data[:600], digits.target[:600]
    same = [np.mean([y[j] == y[q] for j, _ in nearest(X, q, 5)]) for q in range(0, 600, 20)]
    assert np.mean(same) >= 0.9  # pixels of a handwritten 4 are nearest other 4s
    assert all(j != 7 for j, _ in nearest(X, 7, 5))  # never itself
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.3, 0.7], [0.95, 0.05]])
    right, wrong = surest(proba, ["a", "a", "b", "b", "b"], [10, 11, 12, 13, 14], ["a", "b"], "a")
    assert right == [(10, 0.9), (11, 0.6)] and wrong == [(14, 0.95, "b"), (12, 0.8, "b")]
