"""Step 1 -- Data: upload a table (or pick a sample / a saved dataset), check how it was read, profile it."""
from __future__ import annotations

from typing import Any

import streamlit as st

from automl_core.errors import AutoMLInputError
from studio import datasets as ds
from studio import image_data, text_view
from studio.nav import go, step_header
from studio.state import EMPTY_CELL, friendly, get_store, load_frame, reset_wizard, wizard
from studio.safe import md, safe_filename, show_error


def _use_dataset(dataset_id: str, *, target_hint: str | None = None) -> None:
    """Make ``dataset_id`` the wizard's dataset; a new dataset starts the later steps over."""
    if wizard().get("dataset_id") != dataset_id:
        reset_wizard(dataset_id=dataset_id, target_hint=target_hint)
        st.rerun()  # the step bar above was drawn with the previous dataset's ticks


def _parse_settings(upload: Any, name: str, data: bytes) -> dict[str, Any]:
    """The parse settings widgets (delimiter, encoding, header, rows to skip), sniffed per new file."""
    if st.session_state.get("parse_file") != upload.file_id:
        sniffed = ds.sniff(data, name)  # raises AutoMLInputError for empty/binary files
        st.session_state.update(parse_file=upload.file_id, parse_delimiter=sniffed["delimiter"],
                                parse_encoding=sniffed["encoding"], parse_header=sniffed["header"],
                                parse_skip=0, parse_note=sniffed["encoding_note"])
    with st.expander("Parse settings", expanded=False, icon=":material/settings:"):
        c1, c2, c3, c4 = st.columns(4)
        delims = list(ds.DELIMITER_LABELS)
        if st.session_state["parse_delimiter"] not in delims:
            delims.append(st.session_state["parse_delimiter"])
        c1.selectbox("Delimiter", delims, key="parse_delimiter", format_func=lambda d: ds.DELIMITER_LABELS.get(d, repr(d)))
        encs = list(ds.ENCODINGS)
        if st.session_state["parse_encoding"] not in encs:
            encs.insert(0, st.session_state["parse_encoding"])
        c2.selectbox("Encoding", encs, key="parse_encoding", help=f"Detected: {st.session_state.get('parse_note', '')}")
        c3.number_input("Rows to skip", min_value=0, max_value=1000, step=1, key="parse_skip",
                        help="Lines above the header row to ignore (titles, notes).")
        c4.checkbox("First row is the header", key="parse_header")
    return {"delimiter": st.session_state["parse_delimiter"], "encoding": st.session_state["parse_encoding"],
            "header": st.session_state["parse_header"], "skip_rows": int(st.session_state["parse_skip"])}


def _upload_section() -> None:
    limit_mb = int(st.get_option("server.maxUploadSize"))
    upload = st.file_uploader(
        "Upload a table, or a .zip of images", type=[*ds.UPLOAD_TYPES, "zip"], key="upload",
        help=f"CSV, TSV, Parquet, Excel or JSON lines; or a .zip of images with one folder per class (or a "
             f"labels.csv: image_path,label); up to {limit_mb:,} MB.")
    st.caption(f"CSV · TSV · Parquet · Excel · JSON lines · a .zip of images (a folder per class) — up to "
               f"{limit_mb / 1024:g} GB per file.")
    if upload is None:
        return
    data = upload.getvalue()
    name = safe_filename(upload.name)  # the browser's name: shown and recorded, never a path
    if image_data.is_zip(name):  # an image set (issue #23)
        if st.session_state.get("parsed_key") != (upload.file_id,):
            with st.spinner(f"Reading the images in {md(name)}…"):
                dataset_id = image_data.add_image_set(get_store(), name, data)
            st.session_state["parsed_key"] = (upload.file_id,)
            _use_dataset(dataset_id)
        return
    settings: dict[str, Any] = {}
    if ds.is_text(name):
        settings = _parse_settings(upload, name, data)
    parse_key = (upload.file_id, tuple(sorted(settings.items())))
    if st.session_state.get("parsed_key") != parse_key:
        with st.spinner(f"Reading {md(name)}…"):
            df = ds.parse(data, name, settings)
            columns = ds.columns_for(df)
            dataset_id = get_store().add_dataset(name, df, columns=columns, source=f"upload:{name}")
        st.session_state["parsed_key"] = parse_key
        _use_dataset(dataset_id)


def _sample_section() -> None:
    choice = st.selectbox("…or try a sample dataset", list(ds.SAMPLES), index=None, key="sample_dataset",
                          placeholder="Choose a sample", help="Small tables that ship with scikit-learn.")
    if choice is None:
        return
    st.caption(ds.SAMPLES[choice].about)
    if st.session_state.get("sample_loaded") != choice:
        with st.spinner("Loading sample…"):
            df = ds.load_sample(choice)
            dataset_id = get_store().add_dataset(choice, df, columns=ds.columns_for(df),
                                                 source=f"sample:sklearn.datasets.{ds.SAMPLES[choice].loader}")
        st.session_state["sample_loaded"] = choice
        _use_dataset(dataset_id, target_hint=ds.SAMPLES[choice].target)


def _saved_section() -> None:
    saved = get_store().list_datasets()
    if saved.empty:
        return
    labels = {r.dataset_id: f"{r.name} · {r.n_rows:,} × {r.n_cols} · {r.created_at:%Y-%m-%d %H:%M}"
              for r in saved.itertuples()}
    choice = st.selectbox("…or pick a saved dataset", list(labels), index=None, key="saved_dataset",
                          format_func=labels.get, placeholder="Choose a saved dataset")
    if choice is not None and st.session_state.get("saved_loaded") != choice:
        st.session_state["saved_loaded"] = choice
        _use_dataset(choice)


def _schema_editor(meta: dict[str, Any]) -> None:
    """Role per column and include/exclude; choices kept in the wizard (they go into the config)."""
    w = wizard()
    roles: dict[str, str] = dict(w.get("column_roles", {}))
    excluded: list[str] = list(w.get("exclude_columns", []))
    base = ds.schema_frame(meta["columns"], roles, excluded)
    if base.empty:
        st.info("No column roles recorded for this dataset.")
        return
    edited = st.data_editor(
        base, placeholder=EMPTY_CELL, key=f"schema_{meta['dataset_id']}", hide_index=True, height=min(38 + 35 * len(base), 320),
        disabled=["column", "inferred", "why"],
        column_config={
            "include": st.column_config.CheckboxColumn("Use", help="Untick to leave the column out of training."),
            "role": st.column_config.SelectboxColumn("Role", options=ds.ROLE_OPTIONS, required=True,
                                                     help="How the column is treated; change it to override."),
            "inferred": st.column_config.TextColumn("Detected"),
            "why": st.column_config.TextColumn("Why", width="large"),
        })
    w["column_roles"] = {r.column: r.role for r in edited.itertuples() if r.role != r.inferred}
    w["exclude_columns"] = [r.column for r in edited.itertuples() if not r.include]


def _current_dataset() -> None:
    dataset_id = wizard().get("dataset_id")
    if not dataset_id:
        st.info("No dataset yet. Upload a file above, or choose a sample to see how the studio works.",
                icon=":material/upload_file:")
        return
    store = get_store()
    meta = store.get_dataset(dataset_id)
    if meta is None:
        st.warning("The chosen dataset is no longer in the store. Fix: upload it again or pick another one.")
        reset_wizard()
        return
    if image_data.is_image_dataset(meta):
        if image_data.image_dataset_section(store, meta) and st.button(
                "Next: the task →", type="primary", key="to_task"):
            go("Task")
        return
    st.subheader(md(meta["name"]))
    st.caption(f"{meta['n_rows']:,} rows × {meta['n_cols']} columns · saved as {dataset_id} · {md(meta['source'])}")
    with st.spinner("Profiling columns with DuckDB…"):
        profile = store.profile_dataset(dataset_id)
    roles = {c["name"]: wizard().get("column_roles", {}).get(c["name"], c["role"]) for c in meta["columns"]}
    text_columns = [c for c, r in roles.items() if r == "text"]
    label_columns = text_view.list_columns(dataset_id, load_frame(dataset_id))  # a list of labels per row: multi-label targets
    tabs = st.tabs(["Profile", "Preview", "Columns and roles", *(["Text"] if text_columns else []),
                    *(["Labels"] if label_columns else [])])
    tab_profile, tab_preview, tab_schema = tabs[:3]
    with tab_profile:
        frame = ds.profile_frame(profile, roles)
        st.dataframe(frame, placeholder=EMPTY_CELL, hide_index=True, height=min(38 + 35 * len(frame), 360), column_config={
            "missing %": st.column_config.ProgressColumn("Missing %", min_value=0, max_value=100, format="%.1f%%"),
            "histogram": st.column_config.BarChartColumn("Distribution"),
        })
        if note := ds.disguised_note(profile):
            st.caption(md(note))
    with tab_preview:
        st.dataframe(load_frame(dataset_id).head(50), placeholder=EMPTY_CELL, height=300)
        st.caption("The first 50 rows as read. Wrong columns? Change the parse settings above.")
    with tab_schema:
        _schema_editor(meta)
    if text_columns:
        with tabs[3]:
            text_view.text_profile_section(dataset_id, load_frame(dataset_id), text_columns)
    if label_columns:
        with tabs[-1]:
            text_view.label_lists_section(dataset_id, load_frame(dataset_id), label_columns)
    if st.button("Next: choose what to predict →", type="primary", key="to_task"):
        go("Task")


def main() -> None:
    step_header("Data")
    left, right = st.columns([3, 2], gap="large")
    with left:
        try:
            _upload_section()
        except AutoMLInputError as exc:
            show_error(exc)
            st.session_state.pop("parsed_key", None)
    with right:
        _sample_section()
        _saved_section()
    st.divider()
    _current_dataset()


friendly(main)
