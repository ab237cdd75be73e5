"""An image experiment (issue #23) beyond the CLI: the REST server takes image uploads, and the studio's
pages open one made from Python without a traceback. One model on 12 real handwritten digits (raw pixels,
one trial) is trained once for the module."""
from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest



def _digits(per_class: int, skip: int = 0) -> list[tuple[str, str, bytes]]:
    """(label, file name, PNG bytes) of real handwritten 3s and 7s (scikit-learn's bundled 8 x 8 digits, so
    the table has 64 pixel columns: quick), ``skip`` of each left out first."""
    from PIL import Image
    from sklearn.datasets import load_digits
    digits = load_digits()
    seen: dict[int, int] = {}
    out = []
    for i, (image, label) in enumerate(zip(digits.images, digits.target)):
        if label in (3, 7):
            seen[label] = seen.get(label, 0) + 1
            if skip < seen[label] <= skip + per_class:
                buf = io.BytesIO()
                Image.fromarray((image * 255 / 16).astype("uint8"), mode="L").save(buf, format="PNG")
                out.append((str(label), f"{i:04d}.png", buf.getvalue()))
    return out


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    """(store path, experiment id, model path) of a tiny raw-pixel image experiment."""
    from automl_core.config import AutoMLConfig
    from automl_core.images.run import fit_images
    from storage import Store
    folder = tmp_path_factory.mktemp("digits")
    for label, name, data in _digits(6):
        (folder / "train" / label).mkdir(parents=True, exist_ok=True)
        (folder / "train" / label / name).write_bytes(data)
    store_path = folder / "store" / "store.duckdb"
    store = Store(store_path)
    config = AutoMLConfig(task="image_classification", time_budget=600, max_trials=1, ensembles=False, seed=0,
                          allowed_models=("linear",))
    outcome = fit_images(store, folder / "train", config, name="digits 3 vs 7", cnn=False, cache_dir="")
    store.close()
    return store_path, outcome.experiment_id, outcome.model_path


def _post(app, **kw):
    import httpx

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=120) as client:
            return await client.post("/predict", **kw)
    return asyncio.run(go())


def test_rest_server_predicts_uploaded_images_and_refuses_a_table(image_run) -> None:
    from automl_core.export import serve
    from automl_core.images.run import predict_images
    from automl_core.export.predict import load_model
    model, _ = load_model(image_run[2])
    app = serve.create_app(image_run[2], api_key="k")
    key = {"X-API-Key": "k"}
    new = _digits(3, skip=6)  # digits the model has not seen
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        for label, name, data in new[1:]:
            zf.writestr(f"{label}/{name}", data)
    files = [("file", (new[0][1], new[0][2], "image/png")), ("file", ("batch.zip", zipped.getvalue(), "application/zip")),
             ("file", ("notes.txt", b"not an image", "text/plain"))]
    answer = _post(app, files=files, headers=key)
    assert answer.status_code == 200, answer.text
    got = pd.DataFrame(answer.json()["predictions"])
    assert len(got) == 6 and {"image_path", "prediction", "proba_3", "proba_7"} <= set(got.columns)
    assert got["image_path"].iloc[0] == new[0][1] and got["image_path"].iloc[1].startswith("batch.zip/")
    assert answer.json()["dropped"] == {"not_image": 1}
    # the same numbers as the CLI's scoring of the same images
    folder = Path(image_run[2]).parent / "check"
    for label, name, data in new:
        (folder / label).mkdir(parents=True, exist_ok=True)
        (folder / label / name).write_bytes(data)
    expected = predict_images(model, folder).set_index("image_path")
    got["name"] = got["image_path"].str.split("/").str[-1]
    expected.index = expected.index.str.split("/").str[-1]
    np.testing.assert_allclose(got["proba_7"], expected.loc[list(got["name"]), "proba_7"], atol=1e-9)
    assert list(got["prediction"].astype(str)) == list(expected.loc[list(got["name"]), "prediction"].astype(str))
    raw = _post(app, content=zipped.getvalue(), headers={**key, "Content-Type": "application/zip"})
    assert raw.status_code == 200 and len(raw.json()["predictions"]) == 5
    table = _post(app, json=[{"px_0": 0.0}], headers=key)
    assert table.status_code == 422 and "classifies images" in table.json()["detail"]
    junk = _post(app, files=[("file", ("a.txt", b"hello", "text/plain"))], headers=key)
    assert junk.status_code == 422 and "No readable image" in junk.json()["detail"]
    assert _post(app, content=zipped.getvalue(), headers={"Content-Type": "application/zip"}).status_code == 401


#: What each page says in words where a table's section has nothing to show for images.
PAGES = {"experiments": [], "results": ["Image runs skip the table guardrails", "an image model is not explained",
                                        "An image model is a dict"],
         "train": ["Image runs skip the table guardrails"],
         "predict": ["Upload a .zip of images", "Generated training code is for table models",
                     "raw pixel block is resized by Pillow outside the graph"]}


def _open(store_path, experiment_id, page, monkeypatch):
    from studio_fixtures import open_experiment
    return open_experiment(store_path, page, experiment_id, monkeypatch)


def _no_crash(at) -> str:
    from studio_fixtures import texts
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Something went wrong" not in shown and "changed on disk" not in shown, shown
    return shown


@pytest.mark.parametrize("page", list(PAGES))
def test_studio_pages_open_an_image_experiment(image_run, page, monkeypatch) -> None:
    at = _open(image_run[0], image_run[1], page, monkeypatch)
    shown = _no_crash(at)
    for words in PAGES[page]:
        assert words in shown, shown


def test_cloning_a_cli_image_experiment_says_how_to_train_it_in_the_studio(image_run, monkeypatch) -> None:
    at = _open(image_run[0], image_run[1], "experiments", monkeypatch)
    at.selectbox(key="experiment_pick").select(image_run[1]).run()
    at.button(key="clone_experiment").click().run()
    shown = _no_crash(at)
    assert "upload its .zip of images on the Data page" in shown and "no longer in the store" not in shown, shown


def test_predict_page_classifies_an_uploaded_zip(image_run, monkeypatch) -> None:
    at = _open(image_run[0], image_run[1], "predict", monkeypatch)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        for label, name, data in _digits(3, skip=6):
            zf.writestr(f"new/{label}/{name}", data)
        zf.writestr("new/readme.txt", "not an image")
    at.file_uploader(key="predict_images").set_value([("new.zip", zipped.getvalue(), "application/zip")]).run()
    shown = _no_crash(at)
    assert "6 images" in shown and "not image" in shown, shown
    table = at.dataframe[0].value
    assert len(table) == 6 and {"image_path", "prediction", "proba_3", "proba_7"} <= set(table.columns)
    assert (table["prediction"].astype(str) == table["image_path"].str.split("/").str[-2]).mean() >= 5 / 6
    assert "download_predictions" in {b.key for b in at.get("download_button")}
    junk = io.BytesIO()
    with zipfile.ZipFile(junk, "w") as zf:
        zf.writestr("readme.txt", "no images here")
    at.file_uploader(key="predict_images").set_value([("junk.zip", junk.getvalue(), "application/zip")]).run()
    _no_crash(at)
    assert at.error and "No readable image" in at.error[0].value


def test_a_pixel_tier_model_is_not_exported_to_onnx_and_says_why(image_run) -> None:
    """Raw pixels are resized by Pillow before the head reads them: no graph computes them, so no ONNX file."""
    from automl_core.export.image_onnx import export_image_onnx
    from automl_core.export.predict import load_model
    model, _ = load_model(image_run[2])
    result = export_image_onnx(model, [data for _, _, data in _digits(2, skip=6)])
    assert not result.ok and not result.onnx
    assert "raw pixel block is resized by Pillow outside the graph" in result.reason
