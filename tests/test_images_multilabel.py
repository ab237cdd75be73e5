"""Multi-label images (issue #23): a labels.csv with a list of labels per image is read as multi-label
(overridable), a malformed cell is named with its line, and a tiny set of real digit pairs (scikit-learn's 8 x 8
digits pasted side by side) trains through the multilabel search, predicts from the CLI with the label lists and
one probability per label, and opens in the studio without a traceback."""
from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from automl_core.errors import AutoMLInputError
from automl_core.images.reader import read_images


def _pairs(folder: Path, n: int, seed: int = 0, labels: str = "python") -> Path:
    """``n`` images of 16 x 8: two random real digits side by side; labels.csv lists the digits in each."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    digits = load_digits()
    keep = np.flatnonzero(digits.target < 4)  # four labels: each seen in enough images for 3 folds
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = ["image_path,label"]
    for i in range(n):
        a, b = rng.choice(keep, 2, replace=False)
        pair = np.hstack([digits.images[a], digits.images[b]]) * 255 / 16
        buf = io.BytesIO()
        Image.fromarray(pair.astype("uint8"), mode="L").save(buf, format="PNG")
        (folder / "images" / f"{i:04d}.png").write_bytes(buf.getvalue())
        both = sorted({str(digits.target[a]), str(digits.target[b])})
        lines.append(f'images/{i:04d}.png,"{both!r}"' if labels == "python" else f"images/{i:04d}.png,{';'.join(both)}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_list_labels_are_read_as_multilabel_and_overridable(tmp_path: Path) -> None:
    images = read_images(_pairs(tmp_path / "a", 12))
    assert images.multilabel and images.classes == ["0", "1", "2", "3"]
    assert all(str(s) == l for s, l in zip(images.label_sets, images.labels))  # written back as read
    assert all(1 <= len(s) <= 2 for s in images.label_sets)
    assert not read_images(tmp_path / "a", task="image_classification").multilabel  # one class per cell
    # labels joined with ';' look like classes: multi-label only when asked
    joined = _pairs(tmp_path / "b", 12, labels="separator")
    assert not read_images(joined).multilabel
    forced = read_images(joined, task="multilabel")
    assert forced.multilabel and forced.label_format.separator == ";" and forced.classes == ["0", "1", "2", "3"]


def test_malformed_label_cell_names_its_line_and_a_folder_set_refuses_multilabel(tmp_path: Path, capsys) -> None:
    folder = _pairs(tmp_path / "a", 6)
    lines = (folder / "labels.csv").read_text().splitlines()
    lines[4] = 'images/0003.png,"[\'1\', \'2\'"'
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(AutoMLInputError, match=r"line 5 \(images/0003.png\).*not a readable list") as err:
        read_images(folder)
    assert "--task image_classification" in err.value.fix
    classes = tmp_path / "folders"
    for i, name in enumerate(sorted((folder / "images").iterdir())[:4]):
        (classes / str(i % 2)).mkdir(parents=True, exist_ok=True)
        (classes / str(i % 2) / name.name).write_bytes(name.read_bytes())
    from automl_core.cli import main
    assert main(["train", str(classes), "--task", "multilabel"]) == 2  # a folder is an image set: no --target asked
    said = capsys.readouterr().err
    assert "one sub-folder per class" in said and "add a labels.csv" in said and "Traceback" not in said


@pytest.fixture(scope="module")
def pairs_run(tmp_path_factory):
    """(folder, store path, experiment id, model path) of a one-trial multi-label run on 90 real digit pairs,
    uploaded as a zip the way the studio keeps it (so Results can draw the images)."""
    import zipfile
    from automl_core.config import AutoMLConfig
    from automl_core.images.run import fit_images
    from storage import Store
    from studio.image_data import add_image_set, image_set_path
    folder = _pairs(tmp_path_factory.mktemp("pairs"), 90)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for path in [folder / "labels.csv", *sorted((folder / "images").iterdir())]:
            z.write(path, path.relative_to(folder).as_posix())
    store_path = folder / "store" / "store.duckdb"
    store = Store(store_path)
    dataset_id = add_image_set(store, "pairs.zip", buf.getvalue())
    config = AutoMLConfig(task="auto", time_budget=600, max_trials=1, ensembles=False, seed=0, validation="cv",
                          cv_folds=3, allowed_models=("linear",))
    outcome = fit_images(store, image_set_path(store, dataset_id), config, cnn=False, cache_dir="",
                         dataset_id=dataset_id)
    store.close()
    return folder, store_path, outcome.experiment_id, outcome.model_path


@pytest.mark.slow
def test_multilabel_images_train_and_predict_label_lists(pairs_run, tmp_path: Path) -> None:
    from test_cli import cli
    folder, store_path, _, model_path = pairs_run
    done = cli("predict", "--model", str(model_path), str(folder), "--out", str(tmp_path / "p.csv"),
               store=tmp_path / "s.duckdb")
    assert done.returncode == 0, done.stderr
    out = pd.read_csv(tmp_path / "p.csv")
    assert list(out.columns) == ["image_path", "prediction", "proba_0", "proba_1", "proba_2", "proba_3"]
    assert len(out) == 90 and out["image_path"].iloc[0] == "images/0000.png"
    truth = pd.read_csv(folder / "labels.csv").set_index("image_path")["label"]
    assert out["prediction"].str.startswith("[").all()  # the training labels' own format
    assert (out["prediction"].to_numpy() == truth.loc[out["image_path"]].to_numpy()).mean() >= 0.5  # seen images


@pytest.mark.slow
@pytest.mark.parametrize("page", ["experiments", "train", "results", "predict"])
def test_studio_pages_open_a_multilabel_image_experiment(pairs_run, page, monkeypatch) -> None:
    from studio_fixtures import open_experiment, texts
    at = open_experiment(pairs_run[1], page, pairs_run[2], monkeypatch)
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Something went wrong" not in shown, shown


@pytest.mark.slow  # reuses the module's one-trial run (its training is the slow part)
def test_results_draw_the_images_whose_label_sets_are_wrong(pairs_run, monkeypatch) -> None:
    import ast
    from automl_core.understand.label_sets import load_label_sets
    from storage import Store
    from studio_fixtures import open_experiment, texts
    folder, store_path, experiment_id, _ = pairs_run
    s = Store(store_path)
    try:
        sets = load_label_sets(s.artifact_dir(experiment_id))
    finally:
        s.close()
    assert sets is not None and sets.labels == ["0", "1", "2", "3"] and len(sets.rows) == 90
    at = open_experiment(store_path, "results", experiment_id, monkeypatch)
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Wrong label sets" in shown and "Misclassified images" not in shown  # not the one-class gallery
    table = next(d.value for d in at.dataframe if "missed" in d.value.columns)
    assert len(table) > 0 and table["image"].str.startswith("images/").all()
    truth = pd.read_csv(folder / "labels.csv").set_index("image_path")["label"]
    for row in table.itertuples():  # the true list is the image's labels.csv cell; the prediction differs
        assert row.true == ", ".join(ast.literal_eval(truth[row.image])) and row.predicted != row.true
    captions = [m.value for m in at.markdown if m.value.startswith("true **")]  # one under each thumbnail
    assert len(captions) == min(len(table), 12)
    first = table.iloc[0]
    assert captions[0].startswith(f"true **{first['true']}**") and first["image"].rsplit("/")[-1][:4] in captions[0]
    assert ("missed" in captions[0]) == bool(first["missed"]) and ("extra" in captions[0]) == bool(first["extra"])
