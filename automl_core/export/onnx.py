"""ONNX export of a saved model, with a parity check against the joblib pipeline.

The featurizer's cleaning steps are pandas calls (``FunctionTransformer``), which no ONNX converter
handles, and skl2onnx does not convert one-hot encoders with pooled rare levels. So the ONNX graph
takes *prepared* columns -- numbers as float (NaN when missing), text stripped with the missing
tokens turned into "" -- (:func:`prepare_inputs`; the export ships the same preparation as Python
code) and rebuilds the encoding exactly:

- the shared numeric entry: median imputation, missing indicators, scaling, as tensor operations;
- every categorical entry (one-hot with pooled levels, 0/1 booleans, ordinal codes, target
  encoding, scaling): a lookup table holding the fitted pipeline's own output for each training
  level, for missing and for an unseen level, so the encoding is the pipeline's by construction.

The estimator (LightGBM and XGBoost through onnxmltools, CatBoost through its own ONNX export,
scikit-learn models and ensembles through skl2onnx) is converted on the encoded features and the two
graphs are merged. Date and text columns are not
exported (skrub's DatetimeEncoder and TF-IDF's tokenizers have no exact ONNX form); the export says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .drift_checks import column_plan

_OPSET = 17
_ML_OPSET = 3


@dataclass(frozen=True)
class OnnxExport:
    """The outcome: ``onnx`` bytes when converted, else ``reason`` in words."""

    ok: bool
    reason: str = ""
    onnx: bytes = b""
    max_abs_diff: float | None = None   # largest |ONNX - joblib| over the checked rows (probabilities or values)
    label_agreement: float | None = None
    n_rows_checked: int = 0
    inputs: tuple[tuple[str, str], ...] = field(default_factory=tuple)   # (column, "float" | "string")
    preparation: str = ""               # Python code preparing a DataFrame for the ONNX inputs


def prepare_inputs(model: Any, df: pd.DataFrame) -> dict[str, np.ndarray]:
    """The ONNX feeds for ``df``: one (n, 1) array per column the model reads, cleaned like the pipeline does."""
    feeds = {}
    for col, (kind, cleaner) in column_plan(model).items():
        frame = df[[col]]
        cleaned = cleaner.transform(frame) if cleaner is not None else frame
        if kind == "numeric":
            feeds[col] = np.asarray(cleaned, dtype=np.float32).reshape(-1, 1)
        else:
            values = pd.DataFrame(cleaned).iloc[:, 0].astype(object)
            feeds[col] = np.array([("" if v is None or (isinstance(v, float) and v != v) else str(v))
                                   for v in values], dtype=object).reshape(-1, 1)
    return feeds


def _not_exportable(model: Any) -> str:
    from ..models.families import bag_folds, bag_pool
    folds = bag_folds(model)
    if folds:
        how = "pools" if bag_pool(model) == "geometric" else "averages"
        return (f"it {how} {len(folds)} fold models, each with its own featurizer, and the exporter converts "
                "one featurizer; train with final_model='refit' for a model ONNX can hold")
    for col, (kind, _) in column_plan(model).items():
        if kind in ("datetime", "text"):
            return (f"column {col!r} is featurized as {'date parts' if kind == 'datetime' else 'TF-IDF text'}, "
                    "which has no exact ONNX form")
    if not column_plan(model):
        return "the model has no featurizer step this exporter knows"
    if any(type(c).__name__ == "_TemperatureScaling" for c in _calibrators(model[-1])):
        return "its probabilities are temperature-scaled (the kernel SVM), which skl2onnx has no converter for"
    return ""


def _calibrators(estimator: Any) -> list:
    """The fitted calibrators of a CalibratedClassifierCV inside ``estimator`` (a pipeline's last step)."""
    while hasattr(estimator, "steps"):
        estimator = estimator.steps[-1][1]
    return [c for cc in getattr(estimator, "calibrated_classifiers_", []) for c in cc.calibrators]


def _numeric_nodes(helper: Any, entry: str, pipe: Any, cols: list[str], out: str) -> tuple[list, list]:
    """Imputation (+ indicators) (+ scaling) of the shared numeric entry, as ONNX nodes."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import StandardScaler
    from onnx import TensorProto
    nodes, inits = [], []
    name = lambda s: f"{entry}_{s}"  # noqa: E731 -- local naming helper
    nodes.append(helper.make_node("Concat", cols, [name("x")], axis=1))
    current = name("x")
    for step_name, step in pipe.steps:
        if isinstance(step, SimpleImputer):
            stats = np.nan_to_num(np.asarray(step.statistics_, dtype=np.float32), nan=0.0)
            inits.append(helper.make_tensor(name("median"), TensorProto.FLOAT, [1, len(stats)], stats))
            nodes += [helper.make_node("IsNaN", [current], [name("isnan")]),
                      helper.make_node("Where", [name("isnan"), name("median"), current], [name("imputed")])]
            parts = [name("imputed")]
            if step.indicator_ is not None and len(step.indicator_.features_):
                idx = np.asarray(step.indicator_.features_, dtype=np.int64)
                inits.append(helper.make_tensor(name("ind_idx"), TensorProto.INT64, [len(idx)], idx))
                nodes += [helper.make_node("Gather", [name("isnan"), name("ind_idx")], [name("ind_b")], axis=1),
                          helper.make_node("Cast", [name("ind_b")], [name("ind")], to=TensorProto.FLOAT)]
                parts.append(name("ind"))
            nodes.append(helper.make_node("Concat", parts, [name("imp")], axis=1))
            current = name("imp")
        elif isinstance(step, StandardScaler):
            current = _scale_nodes(helper, nodes, inits, step, current, name("scaled"))
        elif not step_name.startswith("clean"):
            raise ValueError(f"numeric step {step_name!r} ({type(step).__name__}) is not supported")
    nodes.append(helper.make_node("Identity", [current], [out]))
    return nodes, inits


def _scale_nodes(helper: Any, nodes: list, inits: list, scaler: Any, current: str, out: str) -> str:
    from onnx import TensorProto
    width = len(scaler.scale_) if scaler.scale_ is not None else scaler.n_features_in_
    mean = np.zeros(width, np.float32) if scaler.mean_ is None or not scaler.with_mean else scaler.mean_.astype(np.float32)
    scale = np.ones(width, np.float32) if scaler.scale_ is None else scaler.scale_.astype(np.float32)
    inits += [helper.make_tensor(out + "_mean", TensorProto.FLOAT, [1, width], mean),
              helper.make_tensor(out + "_scale", TensorProto.FLOAT, [1, width], scale)]
    nodes += [helper.make_node("Sub", [current, out + "_mean"], [out + "_c"]),
              helper.make_node("Div", [out + "_c", out + "_scale"], [out])]
    return out


def _lookup_nodes(helper: Any, entry: str, pipe: Any, col: str, out: str) -> tuple[list, list]:
    """A categorical entry as a lookup table of the fitted pipeline's own outputs, level by level."""
    from onnx import TensorProto
    from ..prepare.batch_featurize import cleaner_of, level_table
    cleaner = cleaner_of(pipe)
    made = level_table(pipe[len(cleaner.steps) if cleaner else 0:], col)
    if made is None:
        raise ValueError(f"column {col!r} is not a per-value encoding")
    levels, table = made
    keys = [*levels, ""]  # prepare_inputs turns missing into ""
    inits = [helper.make_tensor(f"{entry}_table", TensorProto.FLOAT, list(table.shape), table.astype(np.float32).ravel())]
    nodes = [helper.make_node("LabelEncoder", [col], [f"{entry}_idx"], domain="ai.onnx.ml", keys_strings=keys,
                              values_int64s=list(range(len(keys))), default_int64=len(keys)),
             helper.make_node("Gather", [f"{entry}_table", f"{entry}_idx"], [f"{entry}_g"], axis=0),
             helper.make_node("Squeeze", [f"{entry}_g", f"{entry}_axis"], [out])]
    inits.append(helper.make_tensor(f"{entry}_axis", TensorProto.INT64, [1], [1]))
    return nodes, inits


def featurizer_graph(model: Any) -> tuple[Any, int, list[tuple[str, str]]]:
    """The ONNX model of the featurizer (+ dense/scale steps): raw prepared columns in, ``features`` out."""
    from onnx import TensorProto, helper
    ct = model.named_steps["features"]
    plan = column_plan(model)
    nodes, inits, parts = [], [], []
    for entry, pipe, cols in ct.transformers_:
        if isinstance(pipe, str) or entry == "remainder":
            continue
        out = f"{entry}_out"
        made = (_numeric_nodes(helper, entry, pipe, list(cols), out) if plan[cols[0]][0] == "numeric"
                else _lookup_nodes(helper, entry, pipe, cols[0], out))
        nodes += made[0]
        inits += made[1]
        parts.append(out)
    nodes.append(helper.make_node("Concat", parts, ["encoded"], axis=1))
    current = "encoded"
    for step_name, step in model.steps[1:-1]:
        if step_name == "scale":
            current = _scale_nodes(helper, nodes, inits, step, current, "scaled")
        # "dense" (sparse -> dense) is a no-op: ONNX tensors are dense
    n_features = int(len(ct.get_feature_names_out()))
    nodes.append(helper.make_node("Identity", [current], ["features"]))
    inputs = [(c, "float" if kind == "numeric" else "string") for c, (kind, _) in plan.items()]
    graph = helper.make_graph(
        nodes, "automl_featurizer",
        [helper.make_tensor_value_info(c, TensorProto.FLOAT if t == "float" else TensorProto.STRING, [None, 1])
         for c, t in inputs],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, n_features])], initializer=inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET),
                                                         helper.make_opsetid("ai.onnx.ml", _ML_OPSET)],
                                   ir_version=8)  # enough for opset 17; onnx's newest IR is ahead of ONNX Runtime
    return onnx_model, n_features, inputs


def _register_lightgbm() -> None:
    from lightgbm import LGBMClassifier, LGBMRegressor
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (calculate_linear_classifier_output_shapes,
                                                  calculate_linear_regressor_output_shapes)
    update_registered_converter(LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes,
                                convert_lightgbm, options={"nocl": [True, False], "zipmap": [True, False, "columns"]})
    update_registered_converter(LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes,
                                convert_lightgbm, options={"split": None})


def _register_xgboost() -> None:
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (calculate_linear_classifier_output_shapes,
                                                  calculate_linear_regressor_output_shapes)
    from xgboost import XGBClassifier, XGBRegressor
    update_registered_converter(XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
                                convert_xgboost, options={"nocl": [True, False], "zipmap": [True, False, "columns"]})
    update_registered_converter(XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes,
                                convert_xgboost)


def _catboost_parser(scope: Any, model: Any, inputs: list, custom_parsers: Any = None) -> list:
    """Label and probabilities as two outputs (skl2onnx's own parser expects a scikit-learn classifier)."""
    from skl2onnx._parse import _apply_zipmap, _get_sklearn_operator_name
    from skl2onnx.common.data_types import Int64TensorType, guess_tensor_type
    options = scope.get_options(model, dict(zipmap=True))
    operator = scope.declare_local_operator(_get_sklearn_operator_name(type(model)), model)
    operator.inputs = inputs
    operator.outputs.append(scope.declare_local_variable("label", Int64TensorType()))
    operator.outputs.append(scope.declare_local_variable("probabilities", guess_tensor_type(inputs[0].type)))
    if isinstance(options["zipmap"], bool) and not options["zipmap"]:
        return operator.outputs
    return _apply_zipmap(options["zipmap"], scope, model, inputs[0].type, operator.outputs)


def _catboost_converter(scope: Any, operator: Any, container: Any) -> None:
    """CatBoost's own ONNX export (one TreeEnsemble node), copied into the graph skl2onnx builds."""
    from catboost.utils import convert_to_onnx_object
    from onnx.helper import get_attribute_value
    onx = convert_to_onnx_object(operator.raw_operator)
    opsets = {d.domain: d.version for d in onx.opset_import}
    nodes = [n for n in onx.graph.node if n.op_type != "ZipMap"]
    if len(nodes) != 1 or not nodes[0].op_type.startswith("TreeEnsemble") or len(onx.graph.initializer):
        raise NotImplementedError(f"CatBoost's ONNX graph has nodes {[n.op_type for n in onx.graph.node]}")
    node = nodes[0]
    attrs = {a.name: get_attribute_value(a) for a in node.attribute}
    container.add_node(node.op_type, [operator.inputs[0].full_name], [o.full_name for o in operator.outputs],
                       op_domain=node.domain, op_version=opsets.get(node.domain), **attrs)


def _register_catboost() -> None:
    from catboost import CatBoostClassifier, CatBoostRegressor
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (calculate_linear_classifier_output_shapes,
                                                  calculate_linear_regressor_output_shapes)
    update_registered_converter(CatBoostClassifier, "CatBoostCatBoostClassifier",
                                calculate_linear_classifier_output_shapes, _catboost_converter,
                                parser=_catboost_parser, options={"nocl": [True, False], "zipmap": [True, False, "columns"]})
    update_registered_converter(CatBoostRegressor, "CatBoostCatBoostRegressor", calculate_linear_regressor_output_shapes,
                                _catboost_converter)


def estimator_graph(estimator: Any, n_features: int, classification: bool) -> Any:
    """The final estimator (or ensemble) converted on a float ``features`` input, probabilities as a tensor.

    The ML opset is tried at 3 first (LightGBM's converter), then 5 (what skl2onnx needs for
    histogram gradient boosting).
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    # every converter, since an ensemble's members may be of any family
    for register in (_register_lightgbm, _register_xgboost, _register_catboost):
        register()
    if type(estimator).__name__.startswith("Voting"):
        # skl2onnx wants the weights as an array and cannot do flatten_transform, which only shapes
        # transform()'s output (predictions are unaffected): convert a copy with both adjusted.
        import copy
        estimator = copy.copy(estimator)
        if estimator.weights is not None:
            estimator.weights = np.asarray(estimator.weights, dtype=float)
        if hasattr(estimator, "flatten_transform"):
            estimator.flatten_transform = False
    options = {"zipmap": False} if classification else None
    error: Exception | None = None
    for ml_opset in (_ML_OPSET, 5):
        try:
            return convert_sklearn(estimator, initial_types=[("features", FloatTensorType([None, n_features]))],
                                   options=options, target_opset={"": _OPSET, "ai.onnx.ml": ml_opset})
        except Exception as exc:  # noqa: BLE001 -- retried with the next opset, reported if all fail
            error = exc
    raise error  # type: ignore[misc]


def _align_opsets(head: Any, tail: Any) -> None:
    """Give both graphs the same opset versions, the higher of the two per domain (merging needs them equal).

    The featurizer's operators exist unchanged from opset 13 (Squeeze with an axes input) and ML
    opset 2 (LabelEncoder with keys/values); converters' operators are unchanged by the raise.
    skl2onnx may list a domain twice: each graph ends with one entry per domain.
    """
    from onnx import helper
    versions = {"": 13, "ai.onnx.ml": 2}
    for model in (head, tail):
        for o in model.opset_import:
            versions[o.domain or ""] = max(versions.get(o.domain or "", 0), o.version)
    for model in (head, tail):
        del model.opset_import[:]
        model.opset_import.extend([helper.make_opsetid(d, v) for d, v in versions.items()])
    head.ir_version = tail.ir_version = max(head.ir_version, tail.ir_version)


def pipeline_graph(model: Any, classification: bool) -> tuple[Any, list[tuple[str, str]]]:
    """Featurizer and estimator of a (non-bagged) pipeline as one ONNX model, and its inputs (column, type).

    Outputs as skl2onnx gives them: label and probabilities (classification), else the predicted values.
    Raises whatever a converter raises on a step it cannot convert."""
    from onnx import compose
    head, n_features, inputs = featurizer_graph(model)
    tail = estimator_graph(model[-1], n_features, classification)
    _align_opsets(head, tail)
    return compose.merge_models(head, tail, io_map=[("features", tail.graph.input[0].name)]), inputs


def export_onnx(model: Any, card: dict[str, Any], sample: pd.DataFrame) -> OnnxExport:
    """Convert ``model`` and compare ONNX Runtime's outputs with the joblib pipeline's on ``sample``."""
    import onnx
    import onnxruntime as ort
    why = _not_exportable(model)
    if why:
        return OnnxExport(False, f"This model cannot be exported to ONNX: {why}.")
    classification = card.get("task") in ("binary", "multiclass")
    try:
        merged, inputs = pipeline_graph(model, classification)
        onnx.checker.check_model(merged)
        data = merged.SerializeToString()
        options = ort.SessionOptions()
        options.log_severity_level = 3  # no notes about unused initializers on stderr
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 -- a converter failure is reported in words, not raised
        return OnnxExport(False, f"This model cannot be exported to ONNX: the converter failed "
                                 f"({type(exc).__name__}: {str(exc).splitlines()[0][:160]})")
    feeds = prepare_inputs(model, sample)
    outputs = session.run(None, {name: feeds[name] for name, _ in inputs})
    if classification:
        expected = model.predict_proba(sample)
        got = np.asarray(outputs[1], dtype=np.float64)
        agreement = float(np.mean(np.asarray(outputs[0]).ravel().astype(str) == model.predict(sample).astype(str)))
    else:
        expected = model.predict(sample)
        got = np.asarray(outputs[0], dtype=np.float64).ravel()
        agreement = None
    diff = float(np.max(np.abs(got - expected))) if len(sample) else 0.0
    return OnnxExport(True, "", data, diff, agreement, len(sample), tuple(inputs), preparation_code(model))


def preparation_code(model: Any) -> str:
    """Python (pandas/numpy only) turning a raw DataFrame into the ONNX feeds, as :func:`prepare_inputs` does."""
    from .codegen import _Writer
    writer = _Writer()
    lines = []
    for col, (kind, cleaner) in column_plan(model).items():
        calls = [(writer.value(func), writer.value(kw)) for func, kw in (cleaner.steps if cleaner else [])]
        lines.append(f"    ({col!r}, {kind == 'numeric'!r}, [{', '.join(f'({f}, {k})' for f, k in calls)}]),")
    return ("import numpy as np\nimport pandas as pd\n\nCOLUMNS = [  # (column, numeric?, cleaning calls)\n"
            + "\n".join(lines) + "\n]\n\n\n"
            "def onnx_inputs(df):\n"
            '    """The ONNX Runtime feeds for a raw DataFrame (same cleaning as the joblib pipeline)."""\n'
            "    feeds = {}\n"
            "    for col, numeric, calls in COLUMNS:\n"
            "        frame = df[[col]]\n"
            "        for func, kwargs in calls:\n"
            "            frame = func(frame, **kwargs)\n"
            "        if numeric:\n"
            "            feeds[col] = np.asarray(frame, dtype=np.float32).reshape(-1, 1)\n"
            "        else:\n"
            "            values = pd.DataFrame(frame).iloc[:, 0].astype(object)\n"
            "            feeds[col] = np.array(['' if v is None or v != v else str(v) for v in values],\n"
            "                                  dtype=object).reshape(-1, 1)\n"
            "    return feeds\n")
