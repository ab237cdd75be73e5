"""ONNX export of an image model (CNN + head) in one graph, with a parity check against the bundle's own path.

The graph takes the *preprocessed* image tensor, ``image`` (N x 3 x S x S, float32): RGB, shorter side
resized to S with Pillow's bilinear filter, centre crop, scaled to -1..1 -- exactly what ``extract._cnn_input``
does; the export ships that preparation as Python (``onnx_inputs.py``), since Pillow's resize has no exact
ONNX form. Inside the graph: EfficientNet-Lite0's pooled features (the graph ``extract._export_onnx`` makes
for the features themselves), averaged with those of the horizontally flipped tensor when the spec says
``flip``, then the head -- its featurizer and estimator converted by the tables' converters
(``export.onnx.pipeline_graph``); a bag of fold models becomes the average of its folds' graphs, as the
soft VotingClassifier averages them, or (the geometric pool, ``search/bag.py``) the softmax of the mean of
their clipped log-probabilities. Outputs: ``label`` (the class name) and ``probabilities`` (N x classes,
in the model's ``classes`` order).

Not exported, with the reason in words: a raw-pixel block (Pillow's resize of the pixels happens outside
any graph), a model without CNN features, multi-label models (per-label thresholds), and heads no
converter handles.
"""
from __future__ import annotations

import inspect
from typing import Any, Sequence

import numpy as np

from ..images import extract
from .onnx import OnnxExport, pipeline_graph

PARITY_TOL = 1e-3        # largest |ONNX - joblib| probability accepted; above it the export is refused
PARITY_IMAGES = 8        # images compared (each costs two CNN passes on each path)
_INPUT = "image"


def not_exportable(bundle: dict[str, Any]) -> str:
    """Why this image model cannot be exported to ONNX, in words ("" when it can be tried)."""
    spec = bundle.get("spec") or {}
    if "thresholds" in bundle:
        return ("it is a multi-label model: one-vs-rest heads with a tuned threshold per label, which this exporter "
                "does not convert yet")
    if spec.get("pixel_size"):
        return ("its raw pixel block is resized by Pillow outside the graph (bilinear resize to "
                f"{spec['pixel_size']} x {spec['pixel_size']} has no exact ONNX form), so the head reads numbers "
                "the graph cannot compute")
    if not spec.get("cnn"):
        return "it uses no CNN features"
    return ""


def export_image_onnx(bundle: dict[str, Any], images: Sequence[bytes]) -> OnnxExport:
    """Convert the image model to one ONNX graph and compare ONNX Runtime's probabilities with the bundle's
    (``extract.featurize`` + ``pipeline.predict_proba``) on ``images`` (bytes of real images, the first
    :data:`PARITY_IMAGES` used). Refused (``ok`` False, ``reason`` in words) above :data:`PARITY_TOL`."""
    why = not_exportable(bundle)
    if why:
        return OnnxExport(False, f"This model cannot be exported to ONNX: {why}.")
    if not images:
        return OnnxExport(False, "No images to check the export against, so it is not offered.")
    import onnx
    import onnxruntime as ort
    spec = bundle["spec"]
    try:
        model = image_graph(bundle)
        onnx.checker.check_model(model)
        data = model.SerializeToString()
        options = ort.SessionOptions()
        options.log_severity_level = 3  # no notes about unused initializers on stderr
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 -- a converter or exporter failure is reported in words
        return OnnxExport(False, f"This model cannot be exported to ONNX: the converter failed "
                                 f"({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})")
    sample = list(images)[:PARITY_IMAGES]
    expected = np.asarray(bundle["pipeline"].predict_proba(extract.featurize(sample, spec)), dtype=np.float64)
    x = np.stack([extract._cnn_input(extract.open_image(c), int(spec.get("cnn_size", 224))) for c in sample])
    labels, got = session.run(["label", "probabilities"], {_INPUT: x})
    diff = float(np.max(np.abs(np.asarray(got, dtype=np.float64) - expected)))
    classes = np.asarray(bundle["classes"], dtype=object)
    agreement = float(np.mean(np.asarray(labels).astype(str) == classes[expected.argmax(axis=1)].astype(str)))
    if not diff <= PARITY_TOL:  # also NaN
        return OnnxExport(False, f"This model was converted, but ONNX Runtime's probabilities differ from the joblib "
                                 f"model's by up to {diff:.3g} on {len(sample)} images (more than {PARITY_TOL:g}), "
                                 "so the ONNX file is not offered.", b"", diff, agreement, len(sample))
    return OnnxExport(True, "", data, diff, agreement, len(sample), ((_INPUT, "float"),), preparation_code(spec))


def image_graph(bundle: dict[str, Any]) -> Any:
    """The ONNX model: ``image`` (N x 3 x S x S, scaled to -1..1) in; ``label`` and ``probabilities`` out."""
    import onnx
    from onnx import TensorProto, helper
    spec, classes = bundle["spec"], [str(c) for c in bundle["classes"]]
    cnn = onnx.load_model_from_string(extract._export_onnx())
    nodes: list = []
    inits: list = []
    if spec.get("flip", True):  # both halves in one batch, then their mean: the flip average of extract
        inits += [helper.make_tensor(n, TensorProto.INT64, [1], [v])
                  for n, v in (("flip_start", -1), ("flip_end", -(2 ** 63)), ("flip_axis", 3), ("flip_step", -1))]
        inits.append(helper.make_tensor("pair_shape", TensorProto.INT64, [3], [2, -1, extract.CNN_DIM]))
        nodes += [helper.make_node("Slice", [_INPUT, "flip_start", "flip_end", "flip_axis", "flip_step"], ["flipped"]),
                  helper.make_node("Concat", [_INPUT, "flipped"], ["both"], axis=0)]
        cnn_in = "both"
    else:
        cnn_in = _INPUT
    made = _inline(cnn, "cnn_", {cnn.graph.input[0].name: cnn_in})
    nodes += made[0]
    inits += made[1]
    features = made[2][0]
    if spec.get("flip", True):
        nodes += [helper.make_node("Reshape", [features, "pair_shape"], ["pair"]),
                  helper.make_node("ReduceMean", ["pair"], ["pooled"], axes=[0], keepdims=0)]
        features = "pooled"
    head = _head_graph(bundle["pipeline"])
    made = _inline(head, "head_", {head.graph.input[0].name: features})
    nodes += made[0]
    inits += made[1]
    inits.append(helper.make_tensor("class_names", TensorProto.STRING, [len(classes)], [c.encode() for c in classes]))
    nodes += [helper.make_node("Identity", [made[2][0]], ["probabilities"]),
              helper.make_node("ArgMax", ["probabilities"], ["class_index"], axis=1, keepdims=0),
              helper.make_node("Gather", ["class_names", "class_index"], ["label"], axis=0)]
    size = int(spec.get("cnn_size", 224))
    graph = helper.make_graph(
        nodes, "automl_image_model",
        [helper.make_tensor_value_info(_INPUT, TensorProto.FLOAT, [None, 3, size, size])],
        [helper.make_tensor_value_info("label", TensorProto.STRING, [None]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, len(classes)])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=_opsets([cnn, head]), ir_version=max(cnn.ir_version, head.ir_version))
    model.doc_string = (f"Image classifier: input 'image' is N x 3 x {size} x {size} float32, RGB, shorter side "
                        f"resized to {size} px (Pillow bilinear), centre-cropped, scaled to -1..1 (x / 127.5 - 1), "
                        "channels first; see onnx_inputs.py. Outputs 'label' and 'probabilities' (classes in "
                        "metadata 'classes').")
    onnx.helper.set_model_props(model, {"classes": "\n".join(classes), "input_size": str(size),
                                        "input_scaling": "x / 127.5 - 1 (RGB, channels first)",
                                        "flip_average": str(bool(spec.get("flip", True)))})
    return model


def _head_graph(pipeline: Any) -> Any:
    """The head as one ONNX model: ``x`` (N x features, columns cnn_0..) in, probabilities out.

    A bag of fold models (``models.families.bag_folds``) is the weighted mean of its folds' graphs, or of
    their log-probabilities then a softmax (the geometric pool)."""
    from onnx import TensorProto, helper
    from ..models.families import bag_folds, bag_pool
    from ..search.bag import PROB_FLOOR
    folds = bag_folds(pipeline)
    geometric = bag_pool(pipeline) == "geometric"
    members = folds if folds else [pipeline]
    weights = getattr(pipeline[-1], "weights", None) if folds else None
    weights = np.ones(len(members)) if weights is None else np.asarray(weights, dtype=float)
    graphs = [_single_head(m) for m in members]
    nodes, inits, outs = [], [], []
    for i, g in enumerate(graphs):
        made = _inline(g, f"m{i}_", {g.graph.input[0].name: "x"})
        nodes += made[0]
        inits += made[1]
        outs.append(made[2][0])
    if geometric:  # the floor the Stacking learner clips at (its ceiling, 1 - 1e-15, moves a log by 1e-15)
        inits.append(helper.make_tensor("floor", TensorProto.FLOAT, [], [PROB_FLOOR]))
    for i, out in enumerate(outs):
        inits.append(helper.make_tensor(f"w{i}", TensorProto.FLOAT, [], [float(weights[i] / weights.sum())]))
        if geometric:
            nodes += [helper.make_node("Max", [out, "floor"], [f"floored{i}"]),
                      helper.make_node("Log", [f"floored{i}"], [f"log{i}"])]
            out = f"log{i}"
        nodes.append(helper.make_node("Mul", [out, f"w{i}"], [f"weighted{i}"]))
    pooled = "pooled_log" if geometric else "probabilities"
    nodes.append(helper.make_node("Sum", [f"weighted{i}" for i in range(len(outs))], [pooled]))
    if geometric:
        nodes.append(helper.make_node("Softmax", [pooled], ["probabilities"], axis=1))
    graph = helper.make_graph(nodes, "head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, extract.CNN_DIM])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, None])],
                              initializer=inits)
    return helper.make_model(graph, opset_imports=_opsets(graphs), ir_version=max(g.ir_version for g in graphs))


def _single_head(pipeline: Any) -> Any:
    """One pipeline (featurizer + estimator) on the CNN feature tensor: a Split feeds its one-column inputs."""
    from onnx import TensorProto, helper
    merged, inputs = pipeline_graph(pipeline, classification=True)
    if any(kind != "float" or not name.startswith("cnn_") for name, kind in inputs):
        raise ValueError("the head reads columns other than the CNN features")
    wanted = {name for name, _ in inputs}
    split = helper.make_node("Split", ["x"], [f"cnn_{i}" if f"cnn_{i}" in wanted else f"unused_{i}"
                                              for i in range(extract.CNN_DIM)], axis=1)
    graph = helper.make_graph([split, *merged.graph.node], "single_head",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, extract.CNN_DIM])],
                              [merged.graph.output[1]], initializer=list(merged.graph.initializer))
    return helper.make_model(graph, opset_imports=list(merged.opset_import), ir_version=merged.ir_version)


def _inline(model: Any, prefix: str, feeds: dict[str, str]) -> tuple[list, list, list[str]]:
    """``model``'s nodes and initializers with every name prefixed, its inputs fed from ``feeds``
    ({its input: a value of the outer graph}); returns (nodes, initializers, its output names)."""
    from onnx import compose, helper
    inner = compose.add_prefix(model, prefix)
    nodes = [helper.make_node("Identity", [outer], [prefix + name]) for name, outer in feeds.items()]
    return nodes + list(inner.graph.node), list(inner.graph.initializer), [o.name for o in inner.graph.output]


def _opsets(models: Sequence[Any]) -> list:
    """One opset import per domain, the highest any of ``models`` uses (their operators are unchanged by it)."""
    from onnx import helper
    versions: dict[str, int] = {}
    for m in models:
        for o in m.opset_import:
            versions[o.domain or ""] = max(versions.get(o.domain or "", 0), o.version)
    return [helper.make_opsetid(d, v) for d, v in versions.items()]


def preparation_code(spec: dict[str, Any]) -> str:
    """Python (numpy + Pillow) turning image bytes into the graph's ``image`` input, as the joblib model does."""
    size = int(spec.get("cnn_size", 224))
    return ("import io\nimport warnings\n\nimport numpy as np\n\n"
            f"MAX_PIXELS = {extract.MAX_PIXELS}\n\n\n"
            + inspect.getsource(extract.open_image) + "\n\n" + inspect.getsource(extract._cnn_input) + "\n\n"
            f"def onnx_inputs(contents, size={size}):\n"
            '    """The ONNX Runtime feeds for a list of image bytes (same preprocessing as the joblib model)."""\n'
            "    return {'image': np.stack([_cnn_input(open_image(c), size) for c in contents])}\n")
