"""Using a saved model on real data: checks, batch scoring, contributions, CLI, REST, ONNX, generated code,
version warnings. One LightGBM model on bank marketing is trained once for the module (a few seconds).

The "odd" prediction file is the bank test file with a column left out or extra, an unseen job,
a numeric column sent as text, values far outside the training range, and the columns reversed.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from automl_core import AutoML
from automl_core.export.drift_checks import check_input
from automl_core.export.predict import load_model, predict_frame, version_warnings
from automl_core.io.reader import read_table

from studio_fixtures import app  # noqa: F401  (fixture)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bank(tmp_path_factory, shared):
    """(model folder, training file, validation file, test frame) of a LightGBM model validated on a file."""
    folder = tmp_path_factory.mktemp("bank")
    train = folder / "train.csv"
    read_table(shared / "bank_marketing_train.csv").head(6000).to_csv(train, index=False)
    valid = shared / "bank_marketing_validation.csv"
    automl = AutoML(time_budget=60, max_trials=2, allowed_models="lightgbm", ensembles=False, seed=0,
                    final_model="refit")
    automl.fit(read_table(train), target="y", validation_data=read_table(valid))
    automl.save(folder / "model")
    return folder / "model", train, valid, read_table(shared / "bank_marketing_test.csv")


def odd(test: pd.DataFrame) -> pd.DataFrame:
    """Extra column, unseen category, numbers as text, out-of-range values, reversed column order."""
    df = test.drop(columns="y").assign(branch_code="B-17")
    df["job"] = df["job"].replace({"admin.": "astronaut"})
    df["campaign"] = df["campaign"].astype(str).replace({"1": "one"})
    df["duration"] = df["duration"] * 10
    return df[df.columns[::-1]]


# --- checks and batch scoring ---------------------------------------------------------------------

def test_check_report_names_every_kind_of_problem(bank):
    model, card = load_model(bank[0] / "model.joblib")
    clean = check_input(bank[3], model, card)
    assert clean.ok and clean.extra_columns == ("y",)
    assert not clean.unseen and not clean.type_changes and not clean.drifted  # same population as training
    report = check_input(odd(bank[3]), model, card)
    assert report.ok and "branch_code" in report.extra_columns
    unseen = {c.column: c for c in report.unseen}
    assert set(unseen) == {"job"} and unseen["job"].n_unseen == (bank[3]["job"] == "admin.").sum()
    assert "astronaut" in unseen["job"].unseen_examples
    changed = {c.column: c for c in report.type_changes}
    assert set(changed) == {"campaign"} and changed["campaign"].n_unparsable == (bank[3]["campaign"] == 1).sum()
    assert {c.column for c in report.out_of_range} == {"duration"}
    assert {"duration", "campaign", "job"} <= {c.column for c in report.drifted}
    missing = check_input(bank[3].drop(columns=["age", "month"]), model, card)
    assert not missing.ok and missing.missing_columns == ("age", "month")
    assert "'age', 'month'" in str(missing.error()) and "Fix:" in str(missing.error())
    assert json.dumps(report.to_dict())  # JSON-ready for the REST answer


def test_numbers_for_a_numeric_column_that_was_text_in_training_are_no_type_change() -> None:
    from automl_core.export.drift_checks import ColumnCheck

    # penguins.csv: "NA" made bill_depth_mm text in training; every clean upload showed "Type changes 4"
    clean = ColumnCheck("bill_depth_mm", "numeric", trained_type="text", got_type="number")
    assert not clean.type_changed and "type" not in clean.findings()
    bad = ColumnCheck("bill_length_mm", "numeric", trained_type="text", got_type="text", n_unparsable=1)
    assert bad.type_changed and bad.findings()["type"] == "1 value is not a number (treated as missing)"
    worse = ColumnCheck("age", "numeric", trained_type="number", got_type="text", n_unparsable=3)
    assert worse.findings()["type"] == "number in training, text here; 3 values are not numbers (treated as missing)"
    assert ColumnCheck("day", "categorical", trained_type="number", got_type="text").type_changed
    one = ColumnCheck("island", "categorical", n_unseen=1, unseen_examples=("Atlantis",)).findings()["unseen"]
    assert one.startswith("1 row with a category not seen in training (e.g. 'Atlantis')")  # not "1 rows"


def test_a_word_in_a_numeric_column_flags_its_row_beside_the_prediction(tmp_path, shared) -> None:
    """penguins.csv with "forty" as one bill length: the row was predicted confidently (read as missing)
    and only counted per column; now the check names the row and the predictions table flags it."""
    from studio.scoring import predictions_first, with_row_flags
    from automl_core.export.drift_checks import ROW_FLAG_COLUMN
    df = pd.read_csv(shared / "penguins.csv")
    AutoML(max_trials=1, allowed_models="linear", ensembles=False, seed=0).fit(df, target="species").save(tmp_path)
    model, card = load_model(tmp_path / "model.joblib")
    new = df.drop(columns="species").head(40).astype({"bill_length_mm": object})
    new.loc[6, "bill_length_mm"] = "forty"
    report = check_input(new, model, card)
    bill = {c.column: c for c in report.type_changes}["bill_length_mm"]
    assert bill.unparsable_rows == (6,) and bill.findings()["type"].endswith("treated as missing): row 7")
    scored = predictions_first(pd.concat([new, predict_frame(model, card, new)], axis=1), new.columns)
    scored = with_row_flags(scored, report, new.columns)
    # right after the predictions (prediction, one proba_ per species), before the uploaded columns
    assert list(scored.columns[:5]) == ["prediction", "proba_Adelie", "proba_Chinstrap", "proba_Gentoo",
                                        ROW_FLAG_COLUMN]
    assert scored[ROW_FLAG_COLUMN].iloc[6] == "bill_length_mm: 'forty' is not a number (read as missing)"
    assert (scored[ROW_FLAG_COLUMN].drop(index=6) == "").all()
    clean = check_input(df.drop(columns="species").head(40), model, card)  # its "NA"s are missing on purpose
    assert list(with_row_flags(new, clean, new.columns).columns) == list(new.columns)  # nothing flagged: no column
    assert json.dumps(report.to_dict())


def test_batches_and_column_order_do_not_change_predictions(bank):
    model, card = load_model(bank[0] / "model.joblib")
    test = bank[3]
    whole = predict_frame(model, card, test)
    seen = []
    batched = predict_frame(model, card, test[test.columns[::-1]].assign(extra=1), batch_rows=100,
                            progress=lambda done, total: seen.append(done))
    pd.testing.assert_frame_equal(whole, batched)
    assert seen[-1] == len(test) and len(seen) == -(-len(test) // 100)
    np.testing.assert_allclose(whole["proba_yes"], model.predict_proba(test)[:, 1], rtol=0, atol=0)
    assert (whole["prediction"] == model.predict(test)).all()


@pytest.mark.parametrize("rows", ["all", "one", "odd", "tokens", "records"])
def test_fast_featurize_equals_the_pipeline(bank, shared, rows):
    from scipy import sparse
    from automl_core.prepare.batch_featurize import featurize
    model, _ = load_model(bank[0] / "model.joblib")
    test = bank[3]
    frame = {"all": test, "one": test.head(1), "odd": odd(test)}.get(rows)
    if rows == "tokens":  # missing tokens, stray spaces, an all-missing column, in 1 and in 5 rows
        frame = test.head(5).astype(object)
        frame.loc[0, "job"], frame.loc[1, "job"], frame.loc[2, "marital"] = " NA ", "  services ", "?"
        frame["education"] = np.nan
    if rows == "records":  # as the REST server builds a request's frame (text dtype), with the same oddities
        records = json.loads(test.head(5).drop(columns="y").to_json(orient="records"))
        records[0]["job"], records[1]["job"], records[2]["marital"] = " NA ", "  services ", "?"
        for r in records:
            r["education"] = None
        frame = pd.DataFrame.from_records(records)
    for part in (frame, frame.head(1)):
        expected, got = model[:-1].transform(part), featurize(model, part)
        assert sparse.issparse(expected) == sparse.issparse(got)
        dense = lambda m: m.toarray() if sparse.issparse(m) else m  # noqa: E731
        np.testing.assert_array_equal(dense(got), dense(expected))


def test_top_contributions_add_up_to_the_log_odds(bank):
    model, card = load_model(bank[0] / "model.joblib")
    test = bank[3].head(200)
    out = predict_frame(model, card, test, top_k=3)
    assert set(out["top1_column"]) <= set(card["input_columns"])
    Xt = model[:-1].transform(test)
    raw = model[-1].predict(Xt, pred_contrib=True)
    p = out["proba_yes"].to_numpy()
    np.testing.assert_allclose(raw.sum(axis=1), np.log(p / (1 - p)), atol=1e-6)
    assert (out["top1_contribution"].abs() >= out["top2_contribution"].abs()).all()
    assert (out["contribution_towards"] == "yes").all()


# --- command line ----------------------------------------------------------------------------------

def cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "automl_core", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def test_cli_predict_reports_checks_and_refuses_missing_columns(bank, tmp_path):
    model_path = str(bank[0] / "model.joblib")
    odd_file = tmp_path / "odd.csv"
    odd(bank[3]).to_csv(odd_file, index=False)
    result = cli("predict", "--model", model_path, str(odd_file), "--out", str(tmp_path / "p.csv"))
    assert result.returncode == 0, result.stderr
    assert "unseen categories: job" in result.stderr and "branch_code" in result.stderr
    assert "Traceback" not in result.stderr
    got = pd.read_csv(tmp_path / "p.csv")
    model, card = load_model(model_path)
    expected = predict_frame(model, card, read_table(odd_file))
    np.testing.assert_allclose(got["proba_yes"], expected["proba_yes"], atol=1e-12)
    assert list(got["branch_code"]) == ["B-17"] * len(bank[3])  # input columns kept, rows in order
    missing = tmp_path / "missing.csv"
    odd(bank[3]).drop(columns=["age"]).to_csv(missing, index=False)
    result = cli("predict", "--model", model_path, str(missing), "--out", str(tmp_path / "q.csv"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "'age'" in result.stderr
    assert not (tmp_path / "q.csv").exists()


def test_version_mismatch_warns_in_cli_and_functions(bank, tmp_path):
    folder = tmp_path / "old"
    shutil.copytree(bank[0], folder)
    card = json.loads((folder / "model.json").read_text())
    card["packages"]["scikit-learn"] = "1.0.2"
    card["packages"]["nonexistent-pkg"] = "0.1"
    (folder / "model.json").write_text(json.dumps(card))
    lines = version_warnings(card)
    assert any("scikit-learn: model saved with 1.0.2, loaded with" in line for line in lines)
    assert any("nonexistent-pkg 0.1" in line and "not installed" in line for line in lines)
    test_file = tmp_path / "t.csv"
    bank[3].to_csv(test_file, index=False)
    result = cli("predict", "--model", str(folder / "model.joblib"), str(test_file), "--out", str(tmp_path / "p.csv"))
    assert result.returncode == 0 and "warning: scikit-learn: model saved with 1.0.2" in result.stderr


# --- REST ------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(bank):
    """A real `serve` process on a free loopback port, with an API key; its log is shown on failure."""
    import httpx
    port = free_port()
    log = bank[0].parent / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "automl_core", "serve", "--model", str(bank[0] / "model.joblib"),
                                 "--port", str(port), "--api-key", "s3cret"], cwd=REPO, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        else:
            raise AssertionError(f"server did not start:\n{log.read_text()}")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_rest_predicts_like_the_cli_and_explains_problems(bank, server):
    import httpx
    httpx = httpx.Client(timeout=60)  # a loaded machine answers slowly; the bench measures latency
    model, card = load_model(bank[0] / "model.joblib")
    key = {"X-API-Key": "s3cret"}
    health = httpx.get(f"{server}/health").json()
    assert health["status"] == "ok" and health["version_warnings"] == [] and "age" in health["required_columns"]
    frame = odd(bank[3]).head(50)
    records = json.loads(frame.to_json(orient="records"))
    answer = httpx.post(f"{server}/predict", json=records, headers=key)
    assert answer.status_code == 200, answer.text
    got = pd.DataFrame(answer.json()["predictions"])
    expected = predict_frame(model, card, frame)
    np.testing.assert_allclose(got["proba_yes"], expected["proba_yes"], atol=1e-12)
    assert list(got["prediction"]) == list(expected["prediction"])
    assert any("unseen categories: job" in line for line in answer.json()["checks"])
    csv = httpx.post(f"{server}/predict", content=frame.to_csv(index=False), headers={**key, "Content-Type": "text/csv"})
    assert csv.status_code == 200 and len(csv.json()["predictions"]) == 50
    missing = httpx.post(f"{server}/predict", json=[{k: v for k, v in r.items() if k != "age"} for r in records[:2]],
                         headers=key)
    assert missing.status_code == 422 and "'age'" in missing.json()["detail"]
    broken = httpx.post(f"{server}/predict", content=b"[{\"age\": 3", headers=key)
    assert broken.status_code == 422 and "not valid JSON" in broken.json()["detail"]
    assert httpx.post(f"{server}/predict", json=records[:1]).status_code == 401
    assert httpx.post(f"{server}/predict", json=records[:1], headers={"X-API-Key": "wrong"}).status_code == 401
    schema = httpx.get(f"{server}/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert {"application/json", "text/csv"} <= set(body)
    assert body["application/json"]["schema"]["items"]["properties"]["age"] == {"type": "number"}


# --- ONNX ------------------------------------------------------------------------------------------

def test_onnx_export_matches_joblib_with_the_shipped_preparation(bank):
    import onnxruntime as ort
    from automl_core.export.onnx import export_onnx
    model, card = load_model(bank[0] / "model.joblib")
    valid = read_table(bank[2]).drop(columns="y")
    result = export_onnx(model, card, valid)
    assert result.ok, result.reason
    assert result.max_abs_diff < 1e-5 and result.label_agreement == 1.0 and result.n_rows_checked == len(valid)
    namespace: dict = {}
    exec(result.preparation, namespace)  # the onnx_inputs.py a user downloads
    frame = odd(bank[3])  # unseen categories, text in a numeric column, shuffled and extra columns
    feeds = namespace["onnx_inputs"](frame)
    session = ort.InferenceSession(result.onnx, providers=["CPUExecutionProvider"])
    labels, proba = session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})
    np.testing.assert_allclose(proba, model.predict_proba(frame), atol=1e-5)


@pytest.mark.slow
def test_onnx_says_why_a_date_model_cannot_convert(shared):
    from automl_core.export.onnx import export_onnx
    taxis = read_table(shared / "nyc_taxis.csv").head(800)
    automl = AutoML(time_budget=30, max_trials=1, allowed_models="lightgbm", ensembles=False, seed=0,
                    final_model="refit").fit(taxis, target="total")
    result = export_onnx(automl.model_, automl.card_, taxis.head(50))
    assert not result.ok and "date parts" in result.reason and "pickup" in result.reason


# --- generated code --------------------------------------------------------------------------------

def run_generated(model_dir: Path, python: str, data: Path, *extra: str) -> dict:
    from automl_core.export.codegen import generate
    model, card = load_model(model_dir / "model.joblib")
    code = generate(model, card)
    work = model_dir.parent / f"code-{Path(python).parent.parent.name}"
    work.mkdir(exist_ok=True)
    (work / "train.py").write_text(code.train_py)
    (work / "requirements.txt").write_text(code.requirements_txt)
    # -I: isolated, so this repository cannot be imported: the script uses public packages only
    result = subprocess.run([python, "-I", "train.py", str(data), *extra, "--out", str(work / "model.joblib")],
                            cwd=work, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    return {**json.loads(result.stdout.strip().splitlines()[-1]), "card": card, "work": work}


@pytest.mark.slow
def test_generated_code_reproduces_cross_validated_score(tmp_path, shared):
    data = tmp_path / "penguins.csv"
    shutil.copy(shared / "penguins.csv", data)
    automl = AutoML(time_budget=60, max_trials=3, allowed_models="lightgbm,linear", ensembles=False, seed=0,
                    final_model="refit")
    automl.fit(read_table(data), target="species")
    automl.save(tmp_path / "model")
    out = run_generated(tmp_path / "model", sys.executable, data)
    assert out["card"]["validation"]["strategy"].startswith("10-fold")
    assert out["validation_score"] == pytest.approx(out["card"]["validation"]["score"], abs=1e-6)
    retrained = __import__("joblib").load(out["work"] / "model.joblib")
    original, _ = load_model(tmp_path / "model" / "model.joblib")
    frame = read_table(data).drop(columns="species")
    np.testing.assert_allclose(retrained.predict_proba(frame), original.predict_proba(frame), atol=1e-9)


@pytest.mark.slow
def test_generated_code_in_a_fresh_venv_gets_the_same_score(bank, tmp_path):
    import venv
    env = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True).create(env)
    python = str(env / "bin" / "python")
    from automl_core.export.codegen import generate
    model, card = load_model(bank[0] / "model.joblib")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(generate(model, card).requirements_txt)
    subprocess.run([python, "-m", "pip", "install", "--quiet", "-r", str(requirements)], check=True, timeout=1200)
    out = run_generated(bank[0], python, bank[1], "--validation-data", str(bank[2]))
    assert out["validation_score"] == pytest.approx(card["validation"]["score"], abs=1e-6)


@pytest.mark.slow
def test_an_ensemble_is_checked_scored_and_exported(shared, tmp_path):
    from automl_core.export.codegen import generate
    from automl_core.errors import AutoMLInputError
    from automl_core.export.onnx import export_onnx
    train = read_table(shared / "bank_marketing_train.csv").head(6000)
    # a fixed trial count makes the run reproducible; with these settings the Caruana ensemble wins.
    # HistGradientBoosting does not convert to ONNX (skl2onnx), so it is left out of this ensemble.
    automl = AutoML(time_budget=120, max_trials=12, seed=0, final_model="refit",  # ONNX holds one featurizer
                    allowed_models=("lightgbm", "linear", "random_forest", "extra_trees")).fit(train, target="y")
    automl.save(tmp_path / "model")
    model, card = load_model(tmp_path / "model" / "model.joblib")
    assert type(model[-1]).__name__ in ("VotingClassifier", "StackingClassifier"), automl.best_trial_.family
    test = read_table(shared / "bank_marketing_test.csv")
    frame = odd(test)
    report = check_input(frame, model, card)
    assert report.ok and {c.column for c in report.unseen} == {"job"}
    out = predict_frame(model, card, frame, batch_rows=250)
    np.testing.assert_allclose(out["proba_yes"], model.predict_proba(frame)[:, 1], atol=0)
    result = export_onnx(model, card, test.drop(columns="y"))
    assert result.ok, result.reason
    assert result.max_abs_diff < 1e-5
    with pytest.raises(AutoMLInputError, match="not available for ensembles"):
        generate(model, card)


# --- the Predict page ------------------------------------------------------------------------------

def test_predict_page_checks_scores_exports_and_shows_code(bank, app):
    from studio.state import get_store
    from studio_fixtures import texts
    store = get_store()
    card = json.loads((bank[0] / "model.json").read_text())
    experiment_id = store.create_experiment("bank", dataset_id=None, task="binary", metric="roc_auc", config={})
    folder = store.artifact_dir(experiment_id)
    for name in ("model.joblib", "model.json"):
        shutil.copy(bank[0] / name, folder / name)
        store.register_artifact(experiment_id, folder / name, "model")
    bank[3].to_csv(folder / "test_predictions.csv", index=False)  # the rows ONNX parity is checked on
    store.finish_experiment(experiment_id, status="completed", best_trial_id=1, best_model="lightgbm",
                            best_score=card["validation"]["score"], test_score=None,
                            model_path=str(folder / "model.joblib"), summary=card)
    app.switch_page("pages/predict.py").run()
    assert not app.exception
    assert app.selectbox(key="predict_experiment").value == experiment_id
    upload = odd(bank[3]).to_csv(index=False).encode()
    app.file_uploader(key="predict_upload").set_value(("odd.csv", upload, "text/csv")).run()
    assert not app.exception and not app.error
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Unseen categories"] == str((bank[3]["job"] == "admin.").sum())
    assert metrics["Type changes"] == "1" and metrics["Extra columns"] == "1"
    assert "branch_code" in texts(app)
    keys = {b.key for b in app.get("download_button")}
    assert {"download_predictions", "download_train_py", "download_requirements"} <= keys
    preview = app.dataframe[-1].value
    assert list(preview.columns[:4]) == ["prediction", "proba_no", "proba_yes", "input check"]
    campaign = (odd(bank[3])["campaign"].reset_index(drop=True) == "one").head(len(preview))  # sent as a word
    assert (preview["input check"].str.contains("campaign: 'one'") == campaign).all()
    app.checkbox(key="predict_contrib").check().run()
    assert "top1_column" in app.dataframe[-1].value.columns
    app.button(key="onnx_export").click().run()
    assert not app.exception
    assert float({m.label: m.value for m in app.metric}["Largest difference vs joblib"]) < 1e-5
    assert "download_onnx" in {b.key for b in app.get("download_button")}
    missing = bank[3].drop(columns=["age"]).to_csv(index=False).encode()
    app.file_uploader(key="predict_upload").set_value(("missing.csv", missing, "text/csv")).run()
    assert app.error and "'age'" in app.error[0].value
    assert "download_predictions" not in {b.key for b in app.get("download_button")}


def test_rest_refuses_a_streamed_body_past_the_limit_while_reading_it(bank, monkeypatch):
    """A chunked body (no Content-Length) past the limit is answered 413 at the chunk that crosses it: the
    rest is never read. 64 MB offered against a 1 MB limit, in 64 KB chunks, through the ASGI app itself."""
    import asyncio

    import httpx

    from automl_core.export import serve

    monkeypatch.setattr(serve, "MAX_BODY_BYTES", 2**20)
    app = serve.create_app(bank[0] / "model.joblib")
    chunk, sent = b"[" + b" " * (2**16 - 1), []

    async def body():
        for _ in range(1024):  # 64 MB if it were all read
            sent.append(len(chunk))
            yield chunk

    async def post(content, headers=None):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.post("/predict", content=content, headers=headers)

    answer = asyncio.run(post(body()))
    assert answer.status_code == 413 and "larger than 1 MB" in answer.json()["detail"]
    assert sum(sent) <= 2**20 + 2 * len(chunk), f"{sum(sent):,} bytes were read before refusing"
    # a declared length past the limit is refused before reading; a small body still predicts
    sent.clear()
    assert asyncio.run(post(body(), {"Content-Length": str(2**30)})).status_code == 413
    assert sum(sent) <= 2 * len(chunk)
    records = bank[3].drop(columns="y").head(3).to_dict(orient="records")
    small = asyncio.run(post(json.dumps(records).encode(), {"Content-Type": "application/json"}))
    assert small.status_code == 200 and len(small.json()["predictions"]) == 3
