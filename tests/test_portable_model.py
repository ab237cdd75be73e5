"""A saved model loads and predicts identically in a fresh virtual environment without this repo."""
from __future__ import annotations

import json
import subprocess
import venv

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from automl_core import AutoML


@pytest.mark.slow
def test_model_loads_in_fresh_venv_with_only_public_packages(tmp_path, shared):
    train = pd.read_csv(shared / "bank_marketing_train.csv").sample(5000, random_state=1)
    test_path = shared / "bank_marketing_test.csv"
    automl = AutoML(time_budget=20, seed=0).fit(train, target="y", test_data=test_path)
    model_path, card_path = automl.save(tmp_path / "model")
    card = json.loads(card_path.read_text())
    expected = automl.predict_proba(pd.read_csv(test_path))

    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    pins = [f"{name}=={version}" for name, version in card["packages"].items()]
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *pins], check=True, timeout=900)
    script = (
        "import joblib, json, sys, pandas as pd\n"
        "model = joblib.load(sys.argv[1])\n"
        "df = pd.read_csv(sys.argv[2])\n"
        "print(json.dumps(model.predict_proba(df).tolist()))\n"
    )
    # -I: isolated mode, so neither this repository nor the user's site-packages can be imported.
    result = subprocess.run([str(python), "-I", "-c", script, str(model_path), str(test_path)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    got = np.array(json.loads(result.stdout))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    y = pd.read_csv(test_path)["y"] == "yes"
    assert roc_auc_score(y, got[:, list(card["classes"]).index("yes")]) == pytest.approx(card["test"]["score"], abs=1e-9)
    assert "automl_core" not in " ".join(card["packages"])
