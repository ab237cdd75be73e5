"""Security properties: only models the studio saved are unpickled, user strings are text not markup,
SQL takes user names only quoted, files land only under the store whatever an upload is called,
size limits hold, and XSRF protection stays on."""
from __future__ import annotations

import ast
import json
import os
import tomllib
from pathlib import Path

import joblib
import pytest
from sklearn.dummy import DummyClassifier

from automl_core.io import limits
from automl_core.export.artifacts import save_model, sha256_file
from automl_core.errors import AutoMLInputError
from automl_core.io.reader import read_table
from studio.safe import md, safe_filename
from studio_fixtures import REPO, app, texts  # noqa: F401  (fixture)

STUDIO_CODE = [REPO / "app.py", *sorted((REPO / "pages").glob("*.py")), *sorted((REPO / "studio").glob("*.py"))]


# ------------------------------------------------------------------------------ config
def test_streamlit_config_keeps_xsrf_on_and_the_upload_limit_matches_the_reader() -> None:
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"].get("enableCORS", True) is True  # never turned off (it would disable XSRF)
    assert config["server"]["maxUploadSize"] == limits.DEFAULT_MAX_FILE_MB
    assert config["client"]["showErrorDetails"] == "none"  # no tracebacks in the browser


# ------------------------------------------------------------------------------ markup
def _literal_text(node: ast.AST) -> bool:
    """A string literal, or literals joined with + (what may be split over lines): nothing computed."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) \
        and _literal_text(node.left) and _literal_text(node.right)


def _html_problems(source: str, name: str) -> list[str]:
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.keyword) and node.arg == "unsafe_allow_html":
            problems.append(f"{name}:{node.lineno}: unsafe_allow_html")
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "html":
            if not node.args or node.keywords or not all(_literal_text(a) for a in node.args):
                problems.append(f"{name}:{node.lineno}: st.html with computed content")
    return problems


def test_the_st_html_rule_refuses_computed_content() -> None:
    """The rule below is able to fail: anything but literal text handed to st.html is reported."""
    for bad in ('st.html("<b>" + name + "</b>")', 'st.html(f"<b>{name}</b>")', "st.html(page)",
                'st.html("<b>%s</b>" % name)', 'st.html("<b>{}</b>".format(name))', 'st.html(body="<b>" + name)',
                'st.markdown(text, unsafe_allow_html=True)'):
        assert _html_problems(bad, "x.py"), bad
    assert not _html_problems('st.html("<style>" "a {}" + "</style>")', "x.py")


def test_no_page_renders_raw_html_and_st_html_is_constant() -> None:
    problems = [p for path in STUDIO_CODE for p in _html_problems(path.read_text(), path.name)]
    assert not problems, problems


@pytest.mark.parametrize("text, shown", [
    ("<script>alert(1)</script>", r"\<script\>alert(1)\</script\>"),
    ("![x](http://127.0.0.1:9/x.png)", "\\!\\[x\\](http\u2060\\://127.0.0.1\\:9/x.png)"),
    ("see HTTPS://evil.example and www.evil.example, or me@evil.example",  # autolinks: escaped and joined
     "see HTTPS\u2060\\://evil.example and www\u2060\\.evil.example, or me\u2060\\@evil.example"),
    ("[click](javascript:alert(1))", r"\[click\](javascript\:alert(1))"),
    ("$x^2$ and :red[colour] **bold** `code` a|b ~~s~~", r"\$x^2\$ and \:red\[colour\] \*\*bold\*\* \`code\` a\|b \~\~s\~\~"),
    ("# heading", r"\# heading"), ("1. item", r"1\. item"), ("two\nlines", "two lines"),
    ("Fix: plain words (kept), 'quotes' too.", "Fix: plain words (kept), 'quotes' too."),
    ("branch_code and _emphasis_", r"branch_code and \_emphasis\_"),
])
def test_md_escapes_markup(text: str, shown: str) -> None:
    assert md(text) == shown


def test_hostile_names_render_as_text(app) -> None:
    """Column and file names with HTML/Markdown reach the page only escaped (AppTest sees the source)."""
    csv = "<script>alert(1)</script>,![x](http://127.0.0.1:9/x.png),y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40))
    app.file_uploader(key="upload").set_value(("<img src=x onerror=alert(1)>.csv", csv.encode(), "text/csv")).run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    shown = texts(app)
    assert r"\<img src=x onerror=alert(1)\>.csv" in shown
    assert "<img" not in shown.replace(r"\<img", "")
    app.switch_page("pages/task.py").run()
    app.selectbox(key="target").select("![x](http://127.0.0.1:9/x.png)").run()
    assert not app.exception
    assert "](http" not in texts(app).replace(r"\](http", "")


# ------------------------------------------------------------------------------ files
@pytest.mark.parametrize("name, expected", [
    ("../../x.csv", "x.csv"), ("/etc/passwd.csv", "passwd.csv"), ("C:\\Users\\me\\d.csv", "d.csv"),
    ("a\x00b.csv", "ab.csv"), ("new\nline.csv", "newline.csv"), ("..", "upload"), ("", "upload"),
])
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


def test_safe_filename_keeps_the_extension_of_long_names() -> None:
    long = safe_filename("n" * 5000 + ".parquet")
    assert len(long) <= 120 and long.endswith(".parquet")


# (A NUL in the name never gets this far: Streamlit's uploader refuses it, as browsers do.)
@pytest.mark.parametrize("name", ["../../escape.csv", "/tmp/absolute.csv", "x" * 4000 + ".csv"])
def test_uploads_are_written_only_under_the_store(app, private_store: Path, name: str) -> None:
    from studio.state import get_store

    root = private_store.parent
    outside = root.parent
    before = {p for p in outside.rglob("*") if root not in p.parents and p != root}
    data = "a,b,y\n" + "".join(f"{i},{i % 4},{i % 2}\n" for i in range(30))
    app.file_uploader(key="upload").set_value((name, data.encode(), "text/csv")).run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    after = {p for p in outside.rglob("*") if root not in p.parents and p != root}
    assert after == before, after - before
    assert not Path("/tmp/absolute.csv").exists() or name != "/tmp/absolute.csv"
    files = [p for p in (root / "datasets").iterdir()]
    assert len(files) == 1 and files[0].name.startswith("ds-") and files[0].suffix == ".parquet"
    saved = get_store().list_datasets().iloc[0]["name"]
    assert "/" not in saved and "\x00" not in saved and len(saved) <= 120


# ------------------------------------------------------------------------------ unpickling
class _Marker:
    """Unpickling this writes a file: the proof that a pickle was (or was not) loaded."""

    path = ""

    def __reduce__(self):
        return (Path(self.path).write_text, ("unpickled",))


def test_only_models_the_store_recorded_are_unpickled(tmp_path: Path) -> None:
    from storage import Store
    from studio.downloads import verified_model

    store = Store(tmp_path / "store.duckdb")
    eid = store.create_experiment("x", dataset_id=None, task="binary", metric="roc_auc", config={})
    folder = store.artifact_dir(eid)
    model_path, card_path = save_model(DummyClassifier().fit([[0], [1]], [0, 1]), {"task": "binary"}, folder)
    store.register_artifact(eid, model_path, "model")
    model, card = verified_model(store, eid)
    assert card["task"] == "binary" and list(model.predict([[0]])) in ([0], [1])
    # Someone replaces the model and, to pass the card's check, rewrites the card's sha256 too.
    marker = tmp_path / "was-unpickled"
    _Marker.path = str(marker)
    joblib.dump(_Marker(), model_path)
    card = json.loads(card_path.read_text())
    card["model_sha256"] = sha256_file(model_path)
    card_path.write_text(json.dumps(card))
    with pytest.raises(AutoMLInputError, match="does not match the checksum recorded"):
        verified_model(store, eid)
    assert not marker.exists(), "the replaced model was unpickled"
    store.close()


def test_every_model_load_in_the_studio_goes_through_verified_model() -> None:
    for path in STUDIO_CODE:
        source = path.read_text()
        if path.name == "downloads.py":
            continue
        assert "load_model(" not in source and "joblib.load(" not in source and "pickle.load" not in source, path.name


# ------------------------------------------------------------------------------ SQL
def test_sql_with_hostile_column_names_touches_nothing_else(tmp_path: Path) -> None:
    import pandas as pd
    from storage import Store

    evil = ['x"; DROP TABLE experiments; --', "a'); DELETE FROM trials; --", 'q""q', "sel\x00ect"]
    df = pd.DataFrame({name: range(5) for name in evil} | {"y": list("ababa")})
    with Store(tmp_path / "s.duckdb") as store:
        eid = store.create_experiment("keep me", dataset_id=None, task="binary", metric="roc_auc", config={})
        dataset_id = store.add_dataset('name"; DROP TABLE datasets; --', df)
        profile = store.profile_dataset(dataset_id)
        assert [p["name"] for p in profile] == [*evil, "y"]
        assert [p["n_distinct"] for p in profile[:4]] == [5, 5, 5, 5]
        assert store.get_experiment(eid)["name"] == "keep me"
        assert store.load_dataset(dataset_id).columns.tolist() == [*evil, "y"]


def test_storage_interpolates_only_whitelisted_or_quoted_names() -> None:
    """Every f-string handed to execute() in storage/ interpolates a name from the code or quote_ident."""
    # tokens: missing-value words, each through quote_literal (_profile.py)
    allowed = {"sets", "key", "table", "col", "inner", "valid", "shown", "stats_sql", "expr", "top_sql", "sql",
               "tokens"}
    for path in sorted((REPO / "storage").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                names = {n.id for v in node.values if isinstance(v, ast.FormattedValue)
                         for n in ast.walk(v.value) if isinstance(n, ast.Name)}
                text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
                if any(word in text for word in ("SELECT ", "UPDATE ", "DELETE ", "INSERT ", " FROM ")):
                    assert names <= allowed | {"_TRIAL_COLUMNS"}, f"{path.name}:{node.lineno}: {names - allowed}"


# ------------------------------------------------------------------------------ limits
def test_file_size_limit_for_paths_and_bytes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AUTOML_MAX_FILE_MB", "1")
    big = tmp_path / "big.csv"
    big.write_bytes(b"a,b\n" + b"1,2\n" * 300_000)
    for source in (big, big.read_bytes()):
        with pytest.raises(AutoMLInputError, match=r"is 1\.1 MB, more than the 1\.0 MB limit"):
            read_table(source, name="big.csv")
    monkeypatch.setenv("AUTOML_MAX_FILE_MB", "lots")
    with pytest.raises(AutoMLInputError, match="AUTOML_MAX_FILE_MB='lots' is not a number"):
        read_table(big)


def test_memory_check_runs_before_reading(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AUTOML_MEMORY_LIMIT_MB", "1")
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b\n" + b"1,2\n" * 200_000)
    with pytest.raises(AutoMLInputError, match="too large for this machine's memory") as info:
        read_table(path)
    assert "Fix:" in str(info.value)
    monkeypatch.delenv("AUTOML_MEMORY_LIMIT_MB")
    assert len(read_table(path)) == 200_000
    assert limits.available_memory() > 0


def test_worker_memory_limit_setting(monkeypatch) -> None:
    monkeypatch.setenv("AUTOML_WORKER_MEMORY_MB", "0")
    assert limits.worker_memory_limit(2) is None
    monkeypatch.setenv("AUTOML_WORKER_MEMORY_MB", "1500")
    assert limits.worker_memory_limit(2) == 1500 * 2**20
    monkeypatch.delenv("AUTOML_WORKER_MEMORY_MB")
    assert limits.worker_memory_limit(1) >= limits.worker_memory_limit(2) >= 4 * 2**30
    assert os.environ.get("AUTOML_WORKER_MEMORY_MB") is None


def test_a_memory_cap_that_cannot_be_set_is_reported(monkeypatch) -> None:
    import resource

    def refuse(*_):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(resource, "setrlimit", refuse)
    assert "failed (PermissionError: [Errno 1] Operation not permitted)" in limits.limit_this_process(2**32)
    assert limits.limit_this_process(None) == ""  # no cap asked for (AUTOML_WORKER_MEMORY_MB=0): nothing to say


@pytest.mark.slow  # over 15 s in the quick subset on the loaded 2 cores: the whole suite runs it
def test_a_run_whose_workers_have_no_memory_cap_says_so_once(monkeypatch, shared) -> None:
    """A limit past what setrlimit accepts (1e16 MB) leaves the workers uncapped: the run still works and
    says so in one message event (and the CLI prints it)."""
    import pandas as pd

    from automl_core import AutoML

    monkeypatch.setenv("AUTOML_WORKER_MEMORY_MB", "1e16")
    events = []
    df = pd.read_csv(shared / "penguins.csv")
    AutoML(time_budget=30, max_trials=2, allowed_models="linear", ensembles=False, seed=0).fit(
        df, target="species", callbacks=[events.append])
    said = [e.payload["text"] for e in events if e.kind == "message" and "memory cap" in e.payload.get("text", "")]
    assert len(said) == 1 and "without a memory cap" in said[0] and "OverflowError" in said[0], said
    monkeypatch.setenv("AUTOML_WORKER_MEMORY_MB", "2048")
    events.clear()
    AutoML(time_budget=30, max_trials=1, allowed_models="linear", ensembles=False, seed=0).fit(
        df, target="species", callbacks=[events.append])
    assert not [e for e in events if e.kind == "message" and "memory cap" in e.payload.get("text", "")]


# ------------------------------------------------------------------------------ network and login
def test_the_studio_binds_to_this_machine_unless_told_otherwise() -> None:
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    makefile = (REPO / "Makefile").read_text()
    assert "HOST ?= 127.0.0.1" in makefile and "--server.address $(HOST)" in makefile


def _login_shown(at) -> bool:
    return any(t.key == "login_password" for t in at.text_input)


def _nothing_of_a_page(at) -> None:
    """The sign-in form only: no step links, uploader, table, select box, download or page text."""
    assert not at.exception and _login_shown(at)
    assert not at.get("page_link") and not at.get("file_uploader") and not at.get("download_button")
    assert not at.dataframe and not at.selectbox and [t.value for t in at.title] == ["AutoML Studio"]
    assert "Step " not in texts(at)


def test_no_page_is_reachable_before_login(private_store, monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    from studio_fixtures import APP

    monkeypatch.setenv("AUTOML_STUDIO_PASSWORD", "correct horse battery staple")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    _nothing_of_a_page(at)
    with pytest.raises(ValueError, match=r"Known pages: \['Sign in'\]"):  # the only page there is
        at.switch_page("pages/results.py")


@pytest.mark.parametrize("page", ["data", "task", "configure", "train", "results", "predict", "experiments"])
def test_a_page_run_on_its_own_shows_only_the_login(private_store, monkeypatch, page) -> None:
    """A deep link on a fresh server runs the page file without app.py: its own header gates it."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("AUTOML_STUDIO_PASSWORD", "correct horse battery staple")
    at = AppTest.from_file(str(REPO / "pages" / f"{page}.py"), default_timeout=60)
    at.run()
    _nothing_of_a_page(at)


def test_login_with_the_password_opens_every_page(private_store, monkeypatch) -> None:
    from streamlit.testing.v1 import AppTest

    from studio_fixtures import APP

    monkeypatch.setenv("AUTOML_STUDIO_PASSWORD", "correct horse battery staple")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input(key="login_password").input("correct horse")  # a form: typed, then submitted
    at.button[0].click().run()
    assert _login_shown(at) and "Wrong password" in at.error[0].value and not at.get("file_uploader")
    at.text_input(key="login_password").input("correct horse battery staple")
    at.button[0].click().run()
    assert not at.exception and not _login_shown(at)
    assert any(u.key == "upload" for u in at.get("file_uploader"))  # the Data page
    at.switch_page("pages/experiments.py").run()
    assert not _login_shown(at) and "Step 7 of 7" in texts(at)


def test_without_a_password_there_is_no_login(app) -> None:
    assert not _login_shown(app) and any(u.key == "upload" for u in app.get("file_uploader"))


def test_the_password_is_compared_in_constant_time() -> None:
    source = (REPO / "studio" / "login.py").read_text()
    assert "hmac.compare_digest(given.encode(), expected.encode())" in source
    assert "given == expected" not in source and "== expected" not in source
