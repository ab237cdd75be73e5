"""Image features (issue #23): the pretrained CNN offline, its cache, and a whole train -> predict run with
no network: the weights come from a package, and nothing may open a socket."""
from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl_core.images import extract
from shared_data import needs_data, DATASETS

CALTECH = DATASETS / "images_caltech256_subset"


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to reach another machine fails the test (local Unix sockets stay allowed)."""
    def refuse(self, address, *args, **kwargs):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"network access attempted: {address}")
        return real_connect(self, address, *args, **kwargs)
    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError(f"network access attempted: {a}")))


@needs_data
def test_cnn_features_offline_cached_and_flip_invariant(tmp_path: Path, no_network) -> None:
    photos = [p.read_bytes() for p in sorted(CALTECH.glob("train/*/*.jpg"))[::4][:6]]
    start = time.perf_counter()
    first = extract.cnn_features(photos, 224, True, cache_dir=str(tmp_path))
    computed = time.perf_counter() - start
    start = time.perf_counter()
    again = extract.cnn_features(photos, 224, True, cache_dir=str(tmp_path))
    cached = time.perf_counter() - start
    assert first.shape == (6, extract.CNN_DIM) and np.isfinite(first).all() and first.std() > 0
    np.testing.assert_array_equal(first, again)
    assert cached * 10 < computed
    # the flip average: a mirrored photo gets the same features (up to float rounding)
    from PIL import ImageOps
    import io
    mirrored = io.BytesIO()
    ImageOps.mirror(extract.open_image(photos[0])).save(mirrored, format="PNG")
    straight = io.BytesIO()
    extract.open_image(photos[0]).save(straight, format="PNG")
    pair = extract.cnn_features([straight.getvalue(), mirrored.getvalue()], 224, True)
    np.testing.assert_allclose(pair[0], pair[1], rtol=1e-3, atol=1e-3)


@pytest.mark.slow  # over 15 s in the quick subset on the loaded 2 cores: the whole suite runs it
@needs_data
def test_onnx_features_equal_torch_features_and_the_graph_is_kept(tmp_path: Path, no_network, monkeypatch) -> None:
    """The fast path (ONNX Runtime on the graph exported from the torch model) gives eager torch's features on
    real photos, so the cache tag stays; the graph is exported once and read back from the cache folder."""
    photos = [p.read_bytes() for p in sorted(CALTECH.glob("train/*/*.jpg"))[::4][:3]]
    monkeypatch.setattr(extract, "_MODEL", {k: v for k, v in extract._MODEL.items() if k == "lite0"})
    fast = extract.cnn_features(photos, 224, True, cache_dir=str(tmp_path))
    assert extract._MODEL["onnx"] is not None and extract._MODEL[("onnx-checked", 224)]
    assert len(list((tmp_path / "efficientnet-lite0-onnx").glob("*.onnx"))) == 1
    with monkeypatch.context() as torch_only:
        torch_only.setattr(extract, "_onnx_forward", lambda size, cache_dir: None)
        plain = extract.cnn_features(photos, 224, True)
    np.testing.assert_allclose(fast, plain, atol=1e-4)
    cosine = (fast * plain).sum(1) / np.linalg.norm(fast, axis=1) / np.linalg.norm(plain, axis=1)
    assert cosine.min() > 0.99999
    # a new process: the graph comes from the cache folder, the exporter is not called
    monkeypatch.setattr(extract, "_MODEL", {k: v for k, v in extract._MODEL.items() if k == "lite0"})
    monkeypatch.setattr(extract, "_export_onnx", lambda: pytest.fail("exported again"))
    again = extract.cnn_features(photos[:1], 160, True, cache_dir=str(tmp_path))  # another size: same graph
    assert extract._MODEL[("onnx-checked", 160)]
    with monkeypatch.context() as torch_only:
        torch_only.setattr(extract, "_onnx_forward", lambda size, cache_dir: None)
        np.testing.assert_allclose(again, extract.cnn_features(photos[:1], 160, True), atol=1e-4)


@needs_data
@pytest.mark.slow  # a second Python importing torch and exporting the graph: ~23 s under a load average of 9
def test_featurizer_source_runs_the_onnx_path_in_a_python_without_this_repository(tmp_path: Path) -> None:
    """A saved model carries extract.py's source: exec'd alone in a new Python it exports the graph into its
    cache folder and gives the features this process computes."""
    import inspect
    import subprocess
    import sys
    photos = sorted(CALTECH.glob("valid/*/*.jpg"))[:2]
    script = ("import sys, numpy as np; ns = {}; exec(open(sys.argv[1]).read(), ns); "
              "X = ns['featurize']([open(p, 'rb').read() for p in sys.argv[3:]], "
              "{'cnn': True, 'cnn_size': 224, 'flip': True}, cache_dir=sys.argv[2]); "
              "assert ns['_MODEL']['onnx'] is not None; np.save(sys.argv[2] + '/X.npy', X.to_numpy()); "
              "assert not [k for k in sys.modules if k.startswith(('automl_core', 'storage', 'studio'))]")
    (tmp_path / "extract_source.py").write_text(inspect.getsource(extract))
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "extract_source.py"), str(tmp_path),
                           *map(str, photos)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(list((tmp_path / "efficientnet-lite0-onnx").glob("*.onnx"))) == 1
    here = extract.cnn_features([p.read_bytes() for p in photos], 224, True)
    np.testing.assert_allclose(np.load(tmp_path / "X.npy"), here, atol=1e-4)


@needs_data
def test_without_onnxruntime_torch_computes_the_features(tmp_path: Path, monkeypatch) -> None:
    """A fresh venv without onnxruntime still scores: eager torch, with a warning that says why it is slower."""
    photos = [p.read_bytes() for p in sorted(CALTECH.glob("train/*/*.jpg"))[:2]]
    monkeypatch.setattr(extract, "_MODEL", {k: v for k, v in extract._MODEL.items() if k == "lite0"})
    monkeypatch.setitem(__import__("sys").modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.warns(UserWarning, match="eager torch"):
        features = extract.cnn_features(photos, 224, True, cache_dir=str(tmp_path))
    assert extract._MODEL["onnx"] is None and not (tmp_path / "efficientnet-lite0-onnx").exists()
    assert features.shape == (2, extract.CNN_DIM) and np.isfinite(features).all() and features.std() > 0


@needs_data
@pytest.mark.slow
def test_train_and_predict_images_without_network(tmp_path: Path, no_network, monkeypatch) -> None:
    """The CLI end to end on the 3-class photo set: the model file scores the held-out photos correctly,
    and it loads and predicts in a Python that never imports this repository's code."""
    from automl_core.cli import main
    monkeypatch.setenv("AUTOML_IMAGE_CACHE", str(tmp_path / "cache"))
    train = tmp_path / "train"
    for photo in CALTECH.glob("train/*/*.jpg"):
        (train / photo.parent.name).mkdir(parents=True, exist_ok=True)
        (train / photo.parent.name / photo.name).write_bytes(photo.read_bytes())
    out = tmp_path / "model"
    assert main(["train", str(train), "--task", "image_classification", "--time-budget", "900", "--max-trials", "4",
                 "--store", str(tmp_path / "s.duckdb"), "--out", str(out), "--json", "--quiet"]) == 0
    card = json.loads((out / "model.json").read_text())
    assert card["task"] == "image_classification" and card["image"]["spec"]["cnn"] is True
    assert main(["predict", "--model", str(out / "model.joblib"), str(CALTECH / "valid"),
                 "--out", str(tmp_path / "p.csv")]) == 0
    predictions = pd.read_csv(tmp_path / "p.csv")
    assert list(predictions.columns[:2]) == ["image_path", "prediction"]
    assert {f"proba_{c}" for c in ("056.dog", "060.duck", "080.frog")} <= set(predictions.columns)
    truth = predictions["image_path"].str.split("/").str[0]
    assert (predictions["prediction"] == truth).mean() >= 5 / 6
    import subprocess
    import sys
    script = ("import joblib, pathlib, sys; m = joblib.load(sys.argv[1]); ns = {}; exec(m['featurizer_code'], ns); "
              "paths = sorted(pathlib.Path(sys.argv[2]).glob('*/*.jpg')); "
              "X = ns['featurize']([p.read_bytes() for p in paths], m['spec']); "
              "print(list(m['pipeline'].predict(X))); "
              "assert not [k for k in sys.modules if k.startswith(('automl_core', 'storage', 'studio'))]")
    done = subprocess.run([sys.executable, "-c", script, str(out / "model.joblib"), str(CALTECH / "valid")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("056.dog") + done.stdout.count("060.duck") + done.stdout.count("080.frog") == 6
