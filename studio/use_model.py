"""The Predict page's ONNX and training-code sections (UI only: the work is in automl_core)."""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from automl_core.export.codegen import generate, member_model
from automl_core.errors import AutoMLInputError
from automl_core.export.image_onnx import PARITY_IMAGES, export_image_onnx, not_exportable
from automl_core.export.onnx import export_onnx
from automl_core.images.uploads import read_uploads
from studio.downloads import artifact_paths
from studio import live
from studio.safe import md, show_error
from studio.state import load_frame

_ONNX = "onnx_export_result"  # (model sha256, OnnxExport)
_PARITY_ROWS = 2000
#: Largest probability / value difference still called a match (ONNX computes in float32).
_PARITY_TOLERANCE = 1e-4


def _parity_rows(store: Any, experiment_id: str, card: dict[str, Any]) -> tuple[pd.DataFrame | None, str]:
    """Rows to compare ONNX with joblib on: a sample of the experiment's data (else its test predictions file)."""
    exp = store.get_experiment(experiment_id) or {}
    if exp.get("dataset_id"):
        df = load_frame(exp["dataset_id"])
        sample = df.sample(min(_PARITY_ROWS, len(df)), random_state=0) if len(df) > _PARITY_ROWS else df
        return sample.drop(columns=[card.get("target")], errors="ignore"), f"{len(sample):,} rows of the experiment's data"
    files = artifact_paths(store, experiment_id)
    if "test_predictions" in files:
        df = pd.read_csv(files["test_predictions"], keep_default_na=False, na_values=[""]).head(_PARITY_ROWS)
        return df[[c for c in card.get("input_columns") or [] if c in df.columns]], f"{len(df):,} test rows"
    return None, ""


def onnx_section(store: Any, experiment_id: str, model: Any, card: dict[str, Any]) -> None:
    """Export button, the parity check's result, and the downloads (model.onnx and its input preparation)."""
    st.markdown("Run the model without Python's scikit-learn stack (ONNX Runtime in C++, C#, Java, JavaScript…). "
                "The export is checked against the joblib model on real rows before it is offered.")
    kept = st.session_state.get(_ONNX)
    if kept is None or kept[0] != card.get("model_sha256"):
        if not st.button("Export to ONNX and check it", key="onnx_export", icon=":material/transform:"):
            return
        rows, where = _parity_rows(store, experiment_id, card)
        if rows is None:
            st.warning("No data is stored with this experiment to check the export against, so it is not offered.")
            return
        with st.spinner(f"Converting and comparing on {where}…"):
            kept = (card.get("model_sha256"), export_onnx(model, card, rows), where)
        st.session_state[_ONNX] = kept
    _show_export(kept[1], kept[2], "probabilities" if card.get("task") != "regression" else "predicted values",
                 "The ONNX model takes one input per column: numbers as float32 (NaN when missing), other columns "
                 "as strings already cleaned (stripped; missing tokens such as 'NA' or '?' as ''). "
                 "onnx_inputs.py does exactly the cleaning the joblib pipeline does:",
                 "import onnxruntime as ort, pandas as pd\nfrom onnx_inputs import onnx_inputs\n"
                 "session = ort.InferenceSession('model.onnx')\nfeeds = onnx_inputs(pd.read_csv('new.csv', "
                 "keep_default_na=False, na_values=['']))\n"
                 "outputs = session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})")


def image_onnx_section(store: Any, experiment_id: str, model: dict[str, Any], card: dict[str, Any]) -> None:
    """The image model's ONNX export (CNN + head in one graph), checked on real images, or why not."""
    st.markdown("Run the image model without Python's scikit-learn and torch (ONNX Runtime in C++, C#, Java, "
                "JavaScript…): one graph from the preprocessed image to the class probabilities. It is checked "
                "against the joblib model on real images before it is offered.")
    why = not_exportable(model)
    if why:
        st.info(md(f"This model cannot be exported to ONNX: {why}."), icon=":material/block:")
        return
    kept = st.session_state.get(_ONNX)
    if kept is None or kept[0] != card.get("model_sha256"):
        if not st.button("Export to ONNX and check it", key="onnx_export", icon=":material/transform:"):
            return
        images, where = _parity_images(store, experiment_id)
        if not images:
            st.warning("No images of this experiment are in the store (a run from the command line) to check the "
                       "export against: upload images in the Predict tab first, and it is checked on them.")
            return
        with st.spinner(f"Exporting the CNN and head, comparing on {where}…"):
            kept = (card.get("model_sha256"), export_image_onnx(model, images), where)
        st.session_state[_ONNX] = kept
    size = int(model["spec"].get("cnn_size", 224))
    _show_export(kept[1], kept[2], "probabilities",
                 f"The ONNX model takes `image`: N x 3 x {size} x {size} float32, RGB, shorter side resized to "
                 f"{size} px, centre-cropped, scaled to -1..1 (Pillow's resize stays outside the graph). "
                 "onnx_inputs.py does exactly the preparation the joblib model does (numpy and Pillow only):",
                 "import onnxruntime as ort, pathlib\nfrom onnx_inputs import onnx_inputs\n"
                 "session = ort.InferenceSession('model.onnx')\n"
                 "feeds = onnx_inputs([pathlib.Path(p).read_bytes() for p in ['photo.jpg']])\n"
                 "labels, probabilities = session.run(['label', 'probabilities'], feeds)")


def _parity_images(store: Any, experiment_id: str) -> tuple[list[bytes], str]:
    """A few images per class of the experiment's data, else the images uploaded in the Predict tab."""
    from automl_core.images.gallery import sample_per_class
    from studio.image_data import dataset_images
    dataset_id = (store.get_experiment(experiment_id) or {}).get("dataset_id")
    images = dataset_images(store, dataset_id) if dataset_id and store.get_dataset(dataset_id) else None
    if images is not None and images.names:
        per_class = max(1, -(-PARITY_IMAGES // max(1, len(images.classes))))  # every class, when they fit
        rows = [i for picked in sample_per_class(images, per_class).values() for i in picked][:PARITY_IMAGES]
        return [images.contents[i] for i in rows], f"{len(rows)} images of the experiment's data"
    uploads = st.session_state.get("predict_images") or []
    try:
        read = read_uploads([(u.name, u.getvalue()) for u in uploads]) if uploads else None
    except AutoMLInputError:
        read = None
    if read is None or not read.contents:
        return [], ""
    n = min(PARITY_IMAGES, len(read.contents))
    return list(read.contents[:n]), f"{n} uploaded images"


def _show_export(result: Any, where: str, compared: str, caption: str, usage: str) -> None:
    """The parity check's numbers, the downloads (model.onnx, onnx_inputs.py) and how to use them."""
    if not result.ok:
        st.info(md(result.reason), icon=":material/block:")
        return
    exact = result.max_abs_diff is not None and result.max_abs_diff <= _PARITY_TOLERANCE
    c1, c2, c3 = st.columns(3)
    c1.metric("Largest difference vs joblib", f"{result.max_abs_diff:.2e}", help=f"over {where}; {compared}")
    if result.label_agreement is not None:
        c2.metric("Same predicted class", f"{result.label_agreement:.1%}")
    c3.metric("Size", f"{len(result.onnx) / 1024:,.0f} KB")
    if not exact:
        st.warning(f"ONNX Runtime's results differ from the joblib model by up to {result.max_abs_diff:.3g} "
                   "(float32 arithmetic, ties between neighbours). Check them before relying on the ONNX file.")
    c1, c2 = st.columns(2)
    c1.download_button("Download ONNX (model.onnx)", result.onnx, file_name="model.onnx", key="download_onnx",
                       mime="application/octet-stream", type="primary", icon=":material/download:", on_click="ignore")
    c2.download_button("Input preparation (onnx_inputs.py)", result.preparation.encode(), file_name="onnx_inputs.py",
                       key="download_onnx_inputs", mime="text/x-python", icon=":material/code:", on_click="ignore")
    st.caption(caption)
    st.code(usage, language="python")


def code_section(model: Any, card: dict[str, Any]) -> None:
    """The generated train.py and requirements.txt, shown and downloadable; for an ensemble, of a member
    the person picks (the ensemble itself is not generated)."""
    members = [m for m in card.get("members") or [] if isinstance(m, dict) and m.get("trial_id") is not None]
    if members:
        st.caption("Code is not generated for the ensemble itself (its score comes from several members' "
                   "cross-validated predictions). Pick one of its members to get that model's code.")
        names = {int(m["trial_id"]): f"#{int(m['trial_id'])} {live.family_label(str(m.get('family')))}"
                 + (f" · weight {m['weight']:.2f}" if isinstance(m.get("weight"), (int, float)) else "")
                 for m in members}
        trial = st.selectbox("Member model", list(names), format_func=names.get, key="code_member")
        try:
            model, card = member_model(model, card, trial)
        except AutoMLInputError as exc:
            show_error(exc)
            return
    try:
        code = generate(model, card)
    except AutoMLInputError as exc:
        st.info(md(str(exc)), icon=":material/block:")
        return
    validation = (card.get("validation") or {}).get("strategy", "")
    usage = "python train.py TRAINING_FILE.csv" + (" --validation-data VALIDATION_FILE.csv"
                                                   if validation.startswith("the validation file") else "")
    score = (card.get("validation") or {}).get("score")
    st.markdown("A standalone script (public packages only) that builds the same featurization and model with the "
                "same hyperparameters and seed, repeats the validation and prints the score "
                f"(recorded: {card.get('metric')} = {'—' if score is None else f'{score:.6f}'}).")
    st.code(f"pip install -r requirements.txt\n{usage}", language="bash")
    c1, c2 = st.columns(2)
    c1.download_button("Download train.py", code.train_py.encode(), file_name="train.py", key="download_train_py",
                       mime="text/x-python", type="primary", icon=":material/download:", on_click="ignore")
    c2.download_button("Download requirements.txt", code.requirements_txt.encode(), file_name="requirements.txt",
                       key="download_requirements", mime="text/plain", icon=":material/download:", on_click="ignore")
    with st.expander("View generated code", expanded=False):
        st.code(code.train_py, language="python", line_numbers=True)
        st.code(code.requirements_txt, language="text")
