"""Process-wide resources (the store, the job registry) and per-session wizard state.

The store and the registry are created once per server process with ``st.cache_resource``: DuckDB
allows one read-write connection per process, and a training thread must outlive any page run.
Wizard choices live in a plain ``st.session_state["wizard"]`` dict rather than only in widget keys,
because Streamlit drops widget-keyed state when the user leaves a page.
"""
from __future__ import annotations

from typing import Any, Callable

import pandas as pd
import streamlit as st

from storage import Store, resolve_store_path
from studio.jobs import JobRegistry

WIZARD = "wizard"
#: What a table shows for a missing value: Streamlit's default is the word "None", which reads as data.
EMPTY_CELL = "—"


@st.cache_resource(show_spinner=False)
def _open_store(path: str) -> Store:
    """One Store per file per process; experiments left running by a dead server become Interrupted."""
    store = Store(path)
    store.mark_interrupted()
    return store


def get_store() -> Store:
    """The studio's store (``$AUTOML_STORE`` or ./.automl/store.duckdb), opened once per process.

    Keyed by the resolved path so that tests pointing ``AUTOML_STORE`` elsewhere get their own store.
    """
    return _open_store(str(resolve_store_path()))


@st.cache_resource(show_spinner=False)
def get_jobs() -> JobRegistry:
    """The process-wide job registry (one thread per running experiment)."""
    return JobRegistry()


@st.cache_resource(show_spinner=False, max_entries=4)
def _load_frame(store_path: str, dataset_id: str) -> pd.DataFrame:
    return get_store().load_dataset(dataset_id)


def load_frame(dataset_id: str) -> pd.DataFrame:
    """A stored dataset as a DataFrame, shared between reruns and sessions. Treat it as read-only.

    cache_resource rather than cache_data: cache_data would copy a large frame on every rerun.
    """
    return _load_frame(str(resolve_store_path()), dataset_id)


def wizard() -> dict[str, Any]:
    """This session's wizard choices (dataset, target, task, settings); created empty."""
    return st.session_state.setdefault(WIZARD, {})


#: Wizard choices mirrored in the URL (query parameter -> wizard key): a reload starts a new session,
#: and a link someone shares starts one too; both find the dataset, target and experiment there.
URL_CHOICES = {"dataset": "dataset_id", "target": "target", "task": "task", "experiment": "experiment_id"}


def restore_from_url() -> None:
    """Fill the wizard's empty choices from the URL's query parameters, when the store still has them."""
    w, params, store = wizard(), st.query_params, get_store()
    dataset_id = params.get("dataset")
    if dataset_id and not w.get("dataset_id") and store.get_dataset(dataset_id) is not None:
        w["dataset_id"] = dataset_id
        for param in ("target", "task"):
            if params.get(param) and not w.get(URL_CHOICES[param]):
                w[URL_CHOICES[param]] = params[param]
    experiment_id = params.get("experiment")
    if experiment_id and not w.get("experiment_id") and store.get_experiment(experiment_id) is not None:
        w["experiment_id"] = experiment_id


def url_choices() -> dict[str, str]:
    """The wizard's choices as query parameters, for the URL and for links between steps."""
    w = wizard()
    values = {param: w.get(key) for param, key in URL_CHOICES.items()}
    if not values["dataset"]:
        values["target"] = values["task"] = None
    return {param: str(v) for param, v in values.items() if v}


def reset_wizard(**values: Any) -> None:
    """Start the wizard over (a new dataset), keeping only ``values``; the URL follows."""
    st.session_state[WIZARD] = dict(values)
    for param in URL_CHOICES:  # else the next run would restore the old choices from the URL
        st.query_params.pop(param, None)
    st.query_params.update(url_choices())


def bound(key: str, default: Any = None) -> None:
    """Give the widget ``key`` the wizard's remembered value before it is drawn.

    Call just before creating the widget, then :func:`remember` its returned value. Widgets must then
    not get a ``value``/``index`` argument (Streamlit warns when both are set).
    """
    w = wizard()
    if key not in st.session_state:
        st.session_state[key] = w.get(key, default)


def remember(key: str, value: Any) -> Any:
    """Store a widget's value in the wizard dict (survives page switches); returns it."""
    wizard()[key] = value
    param = next((p for p, k in URL_CHOICES.items() if k == key), None)
    if param is not None and wizard().get("dataset_id"):
        if value:
            st.query_params[param] = str(value)
        else:
            st.query_params.pop(param, None)
    return value


def friendly(body: Callable[[], None]) -> None:
    """Run a page body; an unexpected exception becomes a short message with details in an expander.

    Streamlit's control-flow exceptions (rerun, stop, switch_page) derive from BaseException, so
    ``except Exception`` lets them pass through untouched.
    """
    from automl_core.errors import AutoMLInputError

    try:
        body()
    except AutoMLInputError as exc:
        from studio.safe import show_error

        show_error(exc)
    except Exception as exc:  # noqa: BLE001 -- last line of defence: never a traceback on the page
        import logging
        import traceback

        # also into the server's log: the walk met this message once, at a run's end, and could not
        # learn why afterwards (the details lived only in that browser tab)
        logging.getLogger("studio").error("page error", exc_info=exc)
        st.error("Something went wrong on this page. Your data and experiments are safe. "
                 "Fix: reload the page; if it happens again, go back one step and try different settings.")
        with st.expander("Technical details"):
            st.code("".join(traceback.format_exception(exc)), language="text")
