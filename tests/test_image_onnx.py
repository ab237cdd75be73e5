"""ONNX export of an image model (issue #23 item 6): EfficientNet-Lite0 features, their flip average and the
head in one graph, checked against the joblib model's own path on real photos."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared_data import needs_data, DATASETS

CALTECH = DATASETS / "images_caltech256_subset"


@needs_data
@pytest.mark.slow  # a CNN run on 24 photos, the whole model exported three times (with and without the flip, then the page): ~2 min under load 10
def test_cnn_and_linear_head_export_to_one_onnx_graph_with_parity(tmp_path, monkeypatch) -> None:
    import onnx
    import onnxruntime as ort
    from automl_core.config import AutoMLConfig
    from automl_core.export.image_onnx import PARITY_TOL, export_image_onnx
    from automl_core.images.run import fit_images, predict_images
    from automl_core.export.predict import load_model
    from storage import Store
    store = Store(tmp_path / "s.duckdb")
    config = AutoMLConfig(task="image_classification", time_budget=900, max_trials=1, ensembles=False, seed=0,
                          allowed_models=("linear",))
    outcome = fit_images(store, CALTECH / "train", config, cnn=True, cache_dir=str(tmp_path / "cache"),
                         out_dir=tmp_path / "model")
    store.close()
    bundle, _ = load_model(outcome.model_path)
    assert bundle["spec"]["cnn"] and not bundle["spec"]["pixel_size"] and bundle["spec"]["flip"]
    photos = sorted(CALTECH.glob("valid/*/*.jpg"))  # photos the model did not train on
    result = export_image_onnx(bundle, [p.read_bytes() for p in photos])
    assert result.ok, result.reason
    assert result.n_rows_checked == 6 and result.max_abs_diff <= PARITY_TOL and result.label_agreement == 1.0
    model = onnx.load_model_from_string(result.onnx)
    assert [i.name for i in model.graph.input] == ["image"] and "-1..1" in model.doc_string
    assert {p.key: p.value for p in model.metadata_props}["classes"].split("\n") == bundle["classes"]
    # what a person does with the downloads: onnx_inputs.py (numpy + Pillow only) and ONNX Runtime
    namespace: dict = {}
    exec(result.preparation, namespace)
    assert "automl_core" not in result.preparation and "import torch" not in result.preparation
    session = ort.InferenceSession(result.onnx, providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(["label", "probabilities"],
                                        namespace["onnx_inputs"]([p.read_bytes() for p in photos]))
    expected = predict_images(bundle, CALTECH / "valid", cache_dir="")
    expected = expected.set_index("image_path").loc[[f"{p.parent.name}/{p.name}" for p in photos]]
    np.testing.assert_allclose(probabilities, expected[[f"proba_{c}" for c in bundle["classes"]]].to_numpy(),
                               atol=PARITY_TOL)
    assert list(labels.astype(str)) == list(expected["prediction"].astype(str))
    assert (np.asarray(labels).astype(str) == [p.parent.name for p in photos]).mean() >= 5 / 6
    # without the flip average (a spec may say so): the graph runs the CNN once, parity still holds
    unflipped = export_image_onnx({**bundle, "spec": {**bundle["spec"], "flip": False}}, [p.read_bytes() for p in photos])
    assert unflipped.ok and unflipped.max_abs_diff <= PARITY_TOL, unflipped.reason
    assert "flipped" not in {o for n in onnx.load_model_from_string(unflipped.onnx).graph.node for o in n.output}
    assert "flipped" in {o for n in model.graph.node for o in n.output}
    # the Predict page of this command-line run (no images in the store): checked on the uploaded photos
    import io
    import zipfile
    from studio_fixtures import open_experiment, texts
    monkeypatch.setenv("AUTOML_IMAGE_CACHE", str(tmp_path / "cache"))
    at = open_experiment(tmp_path / "s.duckdb", "predict", outcome.experiment_id, monkeypatch)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        for p in photos:
            zf.writestr(f"{p.parent.name}/{p.name}", p.read_bytes())
    at.file_uploader(key="predict_images").set_value([("new.zip", zipped.getvalue(), "application/zip")]).run()
    at.button(key="onnx_export").click().run()
    assert not at.exception, at.exception
    shown = texts(at)
    assert "Largest difference vs joblib" in [m.label for m in at.metric], shown
    assert {m.label: m.value for m in at.metric}["Same predicted class"] == "100.0%"
    assert {"download_onnx", "download_onnx_inputs"} <= {b.key for b in at.get("download_button")}


@pytest.mark.slow  # a one-trial search on 1,280 columns, 10 folds: ~30 s on two busy cores
def test_a_geometric_bag_head_is_one_graph_with_parity() -> None:
    """A head bagged under log loss (the geometric pool, search/bag.py) is exported as the softmax of its folds'
    mean log-probabilities: the ONNX head matches the saved Stacking on CNN-shaped features."""
    import onnxruntime as ort
    from sklearn.datasets import load_digits
    from automl_core import AutoML
    from automl_core.export.image_onnx import PARITY_TOL, _head_graph
    from automl_core.images.extract import CNN_DIM
    from automl_core.models.families import bag_pool
    X, y = load_digits(n_class=3, return_X_y=True)
    X = X[:240]
    noise = np.random.default_rng(0).normal(size=(len(X), CNN_DIM - X.shape[1]))
    features = np.hstack([X, noise]).astype(np.float32)
    table = pd.DataFrame(features, columns=[f"cnn_{i}" for i in range(CNN_DIM)]).assign(label=y[:240].astype(str))
    a = AutoML(task="multiclass", metric="log_loss", max_trials=1, time_budget=None, seed=0, ensembles=False,
               final_model="bag", allowed_models=("linear",),
               featurization={c: "numeric" for c in table.columns[:-1]})
    a.fit(table, target="label")
    assert bag_pool(a.model_) == "geometric"
    session = ort.InferenceSession(_head_graph(a.model_).SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = session.run(["probabilities"], {"x": features[:50]})
    np.testing.assert_allclose(got, a.model_.predict_proba(table.drop(columns="label").head(50)), atol=PARITY_TOL)
