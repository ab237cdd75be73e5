"""The wizard's steps: the page list for ``st.navigation`` and the step indicator on every page."""
from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from studio.login import require_login
from studio.state import URL_CHOICES, restore_from_url, url_choices, wizard


@dataclass(frozen=True)
class Step:
    file: str
    title: str
    icon: str
    hint: str  # what the step is for, shown under the indicator


STEPS = (
    Step("pages/data.py", "Data", ":material/table_view:", "Bring a table (upload a file or try a sample), or a .zip of images."),
    Step("pages/task.py", "Task", ":material/target:", "Choose the column to predict and the kind of prediction."),
    Step("pages/configure.py", "Configure", ":material/tune:", "Metric, time budget, validation, models; then Start."),
    Step("pages/train.py", "Train", ":material/model_training:", "Watch models being tried, live."),
    Step("pages/results.py", "Results", ":material/leaderboard:", "Compare models and download the best one."),
    Step("pages/predict.py", "Predict", ":material/online_prediction:",
         "Check new data against a model and score it; ONNX export and the training code."),
    Step("pages/experiments.py", "Experiments", ":material/history:", "Every experiment so far: open, clone, compare, delete."),
)


def pages() -> list[st.Page]:
    """The ``st.Page`` objects, Data first (the default page)."""
    return [st.Page(s.file, title=s.title, icon=s.icon, default=(i == 0)) for i, s in enumerate(STEPS)]


def _done() -> dict[str, bool]:
    w = wizard()
    return {"Data": bool(w.get("dataset_id")), "Task": bool(w.get("target")),
            "Configure": bool(w.get("experiment_id")), "Train": bool(w.get("experiment_id")),
            "Results": False, "Predict": False, "Experiments": False}


def _ensure_app_navigation() -> None:
    """Make a deep link (``/results``) on a freshly started server go through app.py.

    Streamlit keeps its legacy behaviour for a ``pages/`` folder until some session has run
    ``st.navigation``: until then a deep link runs the page file alone, without app.py's layout and
    navigation (raw file names in the sidebar). Switching the flag and rerunning sends this session,
    and every later one, through app.py. The flag is Streamlit's own (runtime/pages_manager.py).
    """
    from streamlit.runtime.pages_manager import PagesManager

    # Only on a session's first run: a rerun later would swallow the click that caused it.
    first_run = not st.session_state.get("_app_navigation")
    st.session_state["_app_navigation"] = True
    if first_run and PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def step_header(current: str) -> None:
    """Title plus a row of links, one per step: done steps ticked, the current one marked."""
    require_login()  # again here: a page run on its own (a deep link on a fresh server) skips app.py
    _ensure_app_navigation()
    # Streamlit's default top padding wastes a fifth of a 800 px high screen. Tables' own "Download as
    # CSV" is hidden: it writes cells as they are, formulas included (=HYPERLINK...), while the studio's
    # download buttons defuse them (automl_core.export.predict.safe_csv).
    # On a phone (Streamlit stacks columns below 640 px) the seven steps became seven rows and the
    # first slid under the top bar: there they wrap as a compact grid, below the bar.
    # A metric tile's value wraps instead of being cut: a quarter-width "Best model" tile showed
    # "#8 Stackin…" and "Histogram gradi…" (numbers have no spaces, so they stay on one line).
    st.html("<style>.stMainBlockContainer {padding-top: 2.2rem;} "
            '[data-testid="stMetricValue"] .stMarkdownEllipsis, [data-testid="stMetricValue"] p '
            "{white-space: normal; overflow: visible; text-overflow: clip; line-height: 1.15;} "
            '[data-testid="stElementToolbarButton"]:has(button[aria-label^="Download as CSV"]) {display: none;}'
            "@media (max-width: 640px) {.stMainBlockContainer {padding-top: 4rem;} "
            '.st-key-step_bar [data-testid="stHorizontalBlock"] {flex-direction: row; flex-wrap: wrap; gap: 0.2rem;} '
            '.st-key-step_bar [data-testid="stColumn"] {flex: 1 1 30%; min-width: 6.5rem; width: auto;} '
            ".st-key-step_bar a {padding: 0 0.3rem;}}"
            "</style>")
    restore_from_url()
    choices = url_choices()
    # The URL holds the choices (the page's own ?experiment= wins: Train/Results/Predict pick one there).
    for param in URL_CHOICES:
        if param not in choices and param != "experiment":
            st.query_params.pop(param, None)
    st.query_params.update({k: v for k, v in choices.items() if k != "experiment" or "experiment" not in st.query_params})
    done = _done()
    cols = st.container(key="step_bar").columns(len(STEPS), gap="small")
    for i, (col, step) in enumerate(zip(cols, STEPS), start=1):
        mark = "▶" if step.title == current else ("✓" if done.get(step.title) else f"{i}.")
        with col:
            st.page_link(step.file, label=f"{mark} {step.title}", icon=None, disabled=step.title == current,
                         width="stretch", query_params=choices)
    hint = next(s.hint for s in STEPS if s.title == current)
    st.caption(f"Step {[s.title for s in STEPS].index(current) + 1} of {len(STEPS)} · {hint}")


def go(title: str, **query: str) -> None:
    """Switch to the step called ``title`` (optionally with query parameters)."""
    step = next(s for s in STEPS if s.title == title)
    st.switch_page(step.file, query_params={**url_choices(), **query} or None)
