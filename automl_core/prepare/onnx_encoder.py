"""The packaged sentence encoder run by ONNX Runtime: the search's fast path (issue 22).

The torch encoder (sentence-transformers) is exported once, at first use, to an ONNX graph that holds the
whole model: the transformer, the mean pooling over real word pieces and the L2 normalisation, exactly the
modules sentence-transformers runs for all-MiniLM-L6-v2. Nothing is downloaded: the graph is built from the
weights inside the installed package and kept in a cache folder (``$AUTOML_ENCODER_CACHE``, else
~/.cache/automl-studio/encoders) under a name keyed by the package's version. Right after exporting, the graph
is checked against torch on texts of several lengths and refused if any vector differs (cosine < MIN_COSINE),
so the vectors in an embedding cache do not depend on which runtime made them.

Why ORT: on the bench's 128 short yelp reviews it embeds about twice as many texts per second as
sentence-transformers on the same 2 threads (see the README's text section), with vectors equal to torch's
to 1e-6. Tokenising uses the package's own ``tokenizer.json`` through ``tokenizers`` (no transformers import).
A saved model still embeds with torch (skrub's LLMEncoder): the graph is not a public package.
"""
from __future__ import annotations

import os
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import embeddings

#: Bumped when the exported graph changes (inputs, outputs, what is inside), so an old file is not reused.
GRAPH_FORMAT = 1
OPSET = 17
MIN_COSINE = 0.9999
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
#: Texts the export is checked on: one word to over MAX_TOKENS word pieces, in one padded batch.
CHECK_TEXTS = ("ok", "The food was delicious and the staff were friendly.",
               "  Leading and trailing spaces, UPPER case, digits 12345 and punctuation!?  ",
               "Naïve café déjà vu — accents, dashes and emoji 🙂.", " ".join(["long"] * 400))


def cache_dir() -> Path:
    """Where exported graphs live: ``$AUTOML_ENCODER_CACHE``, else ~/.cache/automl-studio/encoders."""
    return Path(os.environ.get("AUTOML_ENCODER_CACHE")
                or os.path.join(os.path.expanduser("~"), ".cache", "automl-studio", "encoders"))


def graph_path() -> Path:
    """The exported graph of the installed encoder package (it may not exist yet)."""
    tag = version(embeddings.ENCODER_PACKAGE)
    return cache_dir() / f"{embeddings.ENCODER_NAME}-{tag}-onnx{OPSET}-g{GRAPH_FORMAT}.onnx"


def export(path: Path) -> float:
    """Export the packaged encoder to ``path`` and check it against torch; returns the seconds it took.

    Raises:
        RuntimeError: the exported graph's vectors differ from torch's (cosine below ``MIN_COSINE``).
    """
    start = time.perf_counter()
    embeddings.offline()
    import torch
    from sentence_transformers import SentenceTransformer
    # eager attention (the pattern ORT's transformer fusion recognises, should it be wanted); a separate
    # load, so the torch encoder a saved model holds keeps its own settings
    model = SentenceTransformer(embeddings.model_path(), device="cpu", local_files_only=True,
                                model_kwargs={"attn_implementation": "eager"}).eval()

    class Whole(torch.nn.Module):  # positional tensors in, sentence-transformers' own modules inside
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            features = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
            return self.inner(features)["sentence_embedding"]

    sample = model.tokenize(list(CHECK_TEXTS[:2]))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp")  # processes exporting at once do not collide
    axes = {name: {0: "texts", 1: "pieces"} for name in INPUTS}
    try:
        with torch.no_grad():
            torch.onnx.export(Whole(model), tuple(sample[name] for name in INPUTS), str(tmp), input_names=list(INPUTS),
                              output_names=["embedding"], dynamic_axes={**axes, "embedding": {0: "texts"}},
                              opset_version=OPSET, dynamo=False)
        reference = model.encode(list(CHECK_TEXTS), convert_to_numpy=True)
        worst = float(cosines(OnnxEncoder(tmp).encode(list(CHECK_TEXTS)), reference).min())
        if worst < MIN_COSINE:
            raise RuntimeError(f"the exported encoder differs from torch (cosine {worst:.6f} < {MIN_COSINE})")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return time.perf_counter() - start


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two equally shaped matrices."""
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)


def load_tokenizer() -> Any:
    """The package's own word-piece tokenizer, set up as sentence-transformers uses it."""
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(str(Path(embeddings.model_path()) / "tokenizer.json"))
    # the file pads to a fixed 128 and cuts at 128; sentence-transformers pads to the batch's longest
    # and cuts at the encoder's max_seq_length
    tokenizer.enable_truncation(max_length=embeddings.MAX_TOKENS)
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]"), pad_token="[PAD]")
    return tokenizer


def features(tokenizer: Any, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """The model's inputs for one batch (sentence-transformers strips each text first)."""
    encoded = tokenizer.encode_batch([str(t).strip() for t in texts])
    return {"input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64)}


class OnnxEncoder:
    """``encode(texts)`` in ``SentenceTransformer.encode``'s form (unit-length float32 rows), on ORT."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort
        self.tokenizer = load_tokenizer()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1  # torch's default too: one per core
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def encode(self, sentences: Sequence[str], batch_size: int = 32, **kwargs: Any) -> np.ndarray:
        texts = [str(t) for t in sentences]
        out = np.empty((len(texts), embeddings.DIMENSIONS), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # like lengths together: little padding
        for i in range(0, len(order), batch_size):
            rows = order[i:i + batch_size]
            out[rows] = self.session.run(None, features(self.tokenizer, [texts[j] for j in rows]))[0]
        return out


def load() -> OnnxEncoder:
    """The ORT encoder, exporting the graph first if this machine has none for the installed package."""
    path = graph_path()
    if not path.exists():
        export(path)
    return OnnxEncoder(path)
