"""User strings that are code or reserved words, through everything the engine writes or builds from them.

Penguins (a real table) with its columns renamed to the hostile-name corpus: the target closes a
docstring, a text column is called ``self``, others ``__init__``, ``remainder``, a formula, Markdown.
The run must work; the generated ``train.py``, the ONNX graph and its preparation code, the prediction
CSV and the Markdown the studio shows must carry every name as data, never as code or markup.
"""
from __future__ import annotations

import ast
import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from test_featurize import run_isolated

sys.path.insert(0, str(Path(__file__).parent / "corpus"))
import make_corpus as mc  # noqa: E402

TARGET = mc.CODE_NAMES[0]                      # a""";print("INJECTED");"""
RENAMES = {"species": TARGET, "island": "self", "sex": "__init__", "bill_length_mm": "remainder",
           "bill_depth_mm": mc.CODE_NAMES[1], "flipper_length_mm": "{d}__{e}",
           "body_mass_g": '=HYPERLINK("http://evil.example")', "year": "![x](http://127.0.0.1:9/x.png)"}
LABELS = {"Adelie": "**Adelie**", "Gentoo": 'Gen"""too', "Chinstrap": "<b>Chinstrap</b>"}
# Characters that start markup in CommonMark / Streamlit when not escaped by a backslash.
MARKUP = set("*_`[]<>!$|~&#:")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, shared):
    from automl_core import AutoML

    folder = tmp_path_factory.mktemp("hostile")
    frame = pd.read_csv(shared / "penguins.csv").rename(columns=RENAMES)
    frame[TARGET] = frame[TARGET].map(LABELS)
    data = folder / "penguins-hostile.csv"
    frame.to_csv(data, index=False)
    automl = AutoML(time_budget=60, max_trials=2, allowed_models="linear,lightgbm", ensembles=False, seed=0,
                    final_model="refit")
    automl.fit(frame, target=TARGET)
    automl.save(folder / "model")
    return automl, frame, data, folder


def test_generated_code_holds_names_only_as_literals_and_runs_clean(hostile) -> None:
    from automl_core.export.codegen import generate

    automl, frame, data, folder = hostile
    code = generate(automl.model_, automl.card_).train_py
    tree = ast.parse(code)
    doc = ast.get_docstring(tree)
    user = [*RENAMES.values(), *LABELS.values()]
    assert not [n for n in user if n in doc], doc
    literals = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)}
    assert {TARGET, "self", "__init__", *LABELS.values()} <= literals
    # The real proof: the downloaded script, run as a user runs it, prints its score and nothing else.
    (folder / "train.py").write_text(code)
    result = subprocess.run([sys.executable, "-I", "train.py", str(data), "--out", "retrained.joblib"],
                            cwd=folder, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "INJECTED" not in result.stdout + result.stderr
    import json
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["validation_score"] == pytest.approx(automl.card_["validation"]["score"], abs=1e-6)


def test_saved_model_with_reserved_names_loads_without_this_repo(hostile, tmp_path) -> None:
    automl, frame, _, _ = hostile
    X = frame.drop(columns=TARGET).head(40)
    np.testing.assert_allclose(run_isolated(tmp_path, automl.model_, X, "predict_proba"),
                               automl.predict_proba(X), atol=1e-12)


def test_onnx_names_and_preparation_code_carry_names_as_data(hostile, capsys) -> None:
    import onnx
    import onnxruntime as ort

    from automl_core.export.onnx import export_onnx

    automl, frame, _, _ = hostile
    X = frame.drop(columns=TARGET)
    result = export_onnx(automl.model_, automl.card_, X.head(100))
    assert result.ok, result.reason
    assert result.max_abs_diff < 1e-5
    graph = onnx.load_from_string(result.onnx).graph
    inputs = [i.name for i in graph.input]
    assert set(inputs) == set(X.columns)  # the raw names, exactly, as the inputs a caller feeds
    internal = [*(n.name for n in graph.node), *(o for n in graph.node for o in n.output), *(i.name for i in graph.initializer)]
    assert not [name for name in internal for user in RENAMES.values() if user in name and name not in inputs]
    namespace: dict = {}
    exec(compile(result.preparation, "onnx_inputs.py", "exec"), namespace)  # the file a user downloads
    assert "INJECTED" not in capsys.readouterr().out
    feeds = namespace["onnx_inputs"](X.head(20))
    session = ort.InferenceSession(result.onnx, providers=["CPUExecutionProvider"])
    _, proba = session.run(None, {name: feeds[name] for name in inputs})
    np.testing.assert_allclose(proba, automl.predict_proba(X.head(20)), atol=1e-5)


def test_explanations_map_back_to_the_raw_columns(hostile) -> None:
    automl, frame, _, _ = hostile
    explanation = automl.explain(sample_rows=100, budget_seconds=30)
    raw = set(frame.columns) - {TARGET}
    assert set(explanation.columns) <= raw and {"self", "__init__"} <= set(explanation.columns)
    assert set(explanation.feature_importance["column"]) <= raw


def test_prediction_csv_headers_are_safe_and_contributions_name_raw_columns(hostile, capsys, tmp_path) -> None:
    from automl_core.cli import main

    automl, frame, data, folder = hostile
    out = tmp_path / "predictions.csv"
    assert main(["predict", "--model", str(folder / "model" / "model.joblib"), str(data), "--out", str(out),
                 "--top-k", "3", "--quiet"]) == 0, capsys.readouterr().err
    with open(out, newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert "'" + RENAMES["body_mass_g"] in header and RENAMES["body_mass_g"] not in header
    predictions = pd.read_csv(out, keep_default_na=False)
    named = set(predictions[[c for c in predictions if c.endswith("_column")]].to_numpy().ravel())
    assert named and named <= set(frame.columns) | {"'" + RENAMES["body_mass_g"]}
    assert set(predictions["prediction"]) <= set(LABELS.values()) | {"'" + v for v in LABELS.values()}


def _unescaped_markup(shown: str) -> list[str]:
    """Markup characters in ``shown`` that no backslash escapes (what Markdown would act on)."""
    found, i = [], 0
    while i < len(shown):
        if shown[i] == "\\":
            i += 2
            continue
        if shown[i] in MARKUP:
            before, after = shown[i - 1:i], shown[i + 1:i + 2]
            inside_word = shown[i] == "_" and before.isalnum() and after.isalnum()
            plain_colon = shown[i] == ":" and not after.isalnum()
            # "#" only opens a heading at the start of a line
            if not inside_word and not plain_colon and not (shown[i] == "#" and i > 0):
                found.append(shown[i])
        i += 1
    return found


@pytest.mark.parametrize("name", [*mc.CODE_NAMES, *mc.RESERVED_NAMES, *RENAMES.values(), *LABELS.values(),
                                  "**bold**", "[click](javascript:alert(1))", "$x^2$", ":red[colour]", "# heading"])
def test_markdown_of_every_hostile_name_is_text(name: str) -> None:
    from studio.safe import md

    shown = md(name)
    assert not _unescaped_markup(shown), (name, shown)
    assert "\n" not in shown and "\u2028" not in shown
